//! Contract versions side by side: a plugin built for 0.1 (the `oldast` guest, its own copy of
//! that WIT) and plugins built for 0.2 (the built-ins and the `evil` guest) in one worktree, each
//! through its own bindings; 0.2's progress reports and structured output reaching the user; and
//! a component built for a contract newer than this cove, refused with the version it needs.

use crate::support::{
    OLD_MANIFEST, Sandbox, TestResult, evil_manifest, guest, progress_between_call_and_result,
};
use serde_json::json;

#[test]
fn a_0_1_plugin_works_beside_0_2_plugins() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("src/lib.rs", "pub fn one() {}\n\npub struct Two;\n")?;
    sb.add_plugin("old", OLD_MANIFEST, &guest("oldast"))?;
    sb.evil_plugin("fs = \"read\"", "")?;
    let list = sb.cove(&["tools", "list"])?;
    for tool in [
        "old_outline",
        "old_query",
        "old_grep",
        "steps",
        "read",
        "outline",
    ] {
        assert!(
            list.out()
                .lines()
                .any(|l| l.starts_with(&format!("{tool} "))),
            "{tool} missing:\n{}",
            list.stdout
        );
    }
    // 0.1's `search` records, converted to the newest and back.
    let grep = sb.call("old_grep", &json!({"pattern": "struct T"}).to_string())?;
    assert_eq!(
        grep.out().trim_end(),
        "src/lib.rs:3:pub struct Two;",
        "{grep:?}"
    );
    // 0.1's captures: the newest contract's columns left out.
    let query = sb.call(
        "old_query",
        &json!({"file_path": "src/lib.rs", "query": "(function_item name: (identifier) @name)"})
            .to_string(),
    )?;
    assert_eq!(query.out().trim_end(), "name 1-1 one", "{query:?}");
    // A 0.1 tool's failure is the same failure in the newest types.
    let missing = sb.call(
        "old_outline",
        &json!({"file_path": "no/such.rs"}).to_string(),
    )?;
    assert!(
        !missing.ok && missing.err().contains("old_outline"),
        "{missing:?}"
    );
    // 0.2 tools in the same process.
    let outline = sb.call("outline", &json!({"file_path": "src/lib.rs"}).to_string())?;
    assert!(outline.ok && outline.out().contains("one"), "{outline:?}");
    Ok(())
}

#[test]
fn a_0_2_tools_progress_and_structured_output_reach_the_user() -> TestResult {
    let sb = Sandbox::new()?;
    sb.evil_plugin("fs = \"read\"", "")?;
    let input = json!({"steps": 3, "pause_ms": 5}).to_string();
    let run = sb.call("steps", &input)?;
    assert_eq!(run.out().trim_end(), "took 3 steps", "{run:?}");
    let progress: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("progress: "))
        .collect();
    assert_eq!(
        progress,
        [
            "progress: 1/3 step 1",
            "progress: 2/3 step 2",
            "progress: 3/3 step 3"
        ],
        "{run:?}"
    );
    let json_run = sb.cove(&["tools", "call", "steps", &input, "--json"])?;
    let value: serde_json::Value = serde_json::from_str(json_run.out().trim())?;
    assert_eq!(value["text"], "took 3 steps", "{value}");
    assert_eq!(value["structured"], json!({"steps": 3}), "{value}");
    // The model reads the text only; its schema is offered like any tool's input schema.
    let listed = sb.cove(&["tools", "list", "--json"])?;
    let listed: serde_json::Value = serde_json::from_str(listed.out())?;
    assert!(
        listed["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["name"] == "steps"))
    );
    Ok(())
}

/// `wasm` with its `cove:plugin/…@0.2.0` names (imports and exports) renamed `@0.3.0`, as a
/// component built for a contract 0.3.0 would name them. Same length, so still a valid component.
fn as_if_built_for_0_3(mut wasm: Vec<u8>) -> Vec<u8> {
    let (prefix, old, new) = (b"cove:plugin/", b"@0.2.0", b"@0.3.0");
    let mut at = 0;
    while let Some(p) = wasm[at..].windows(prefix.len()).position(|w| w == prefix) {
        let start = at + p;
        let window = (start + 64).min(wasm.len());
        if let Some(v) = wasm[start..window]
            .windows(old.len())
            .position(|w| w == old)
        {
            wasm[start + v..start + v + old.len()].copy_from_slice(new);
        }
        at = start + prefix.len();
    }
    wasm
}

#[test]
fn a_component_built_for_a_newer_contract_is_refused_with_the_version_it_needs() -> TestResult {
    let sb = Sandbox::new()?;
    let future = sb.tmp.path().join("future.wasm");
    std::fs::write(&future, as_if_built_for_0_3(std::fs::read(guest("evil"))?))?;
    let inspect = sb.cove(&["plugin", "inspect", &future.to_string_lossy()])?;
    assert!(!inspect.ok, "{inspect:?}");
    assert!(inspect.stdout.contains("contract: 0.3.0"), "{inspect:?}");
    assert!(
        inspect.stdout.contains(
            "loadable: no: it needs contract 0.3.0, newer than this cove knows (it loads 0.1.0, 0.2.0); upgrade cove to use it"
        ),
        "{inspect:?}"
    );
    // Its manifest claims 0.2.0: the component itself is read, and refused when first used.
    sb.add_plugin("future", &evil_manifest("future", "fs = \"read\""), &future)?;
    sb.trust()?;
    let run = sb.call("echo", &json!({"text": "hi"}).to_string())?;
    assert!(!run.ok, "{run:?}");
    assert!(
        run.err().contains("it needs contract 0.3.0") && run.err().contains("upgrade cove"),
        "{run:?}"
    );
    // Everything else still works.
    sb.write("a.txt", "fine\n")?;
    assert!(
        sb.call("read", &json!({"file_path": "a.txt"}).to_string())?
            .ok
    );
    Ok(())
}

#[test]
fn a_plugins_progress_reaches_a_session_between_its_call_and_its_result() -> TestResult {
    let sb = Sandbox::new()?;
    sb.evil_plugin("fs = \"read\"", "")?;
    let script = json!({"turns": [
        {"text": "Stepping.", "tool_calls": [
            {"name": "steps", "input": {"steps": 2, "pause_ms": 5}},
        ]},
        {"text": "Done."},
    ]});
    let run = sb.run_script(&script, &[], &[])?;
    assert!(run.ok, "{run:?}");
    let progress = progress_between_call_and_result(&run.stdout);
    assert_eq!(progress.len(), 2, "{}", run.stdout);
    for (i, p) in progress.iter().enumerate() {
        assert_eq!(p["name"], "steps", "{p}");
        assert_eq!(p["progress"], json!((i + 1) as f64), "{p}");
        assert_eq!(p["total"], json!(2.0), "{p}");
        assert_eq!(p["message"], format!("step {}", i + 1), "{p}");
    }
    // The model reads the text only.
    assert_eq!(
        run.tool_results(),
        vec![(false, "took 2 steps".to_string())]
    );
    Ok(())
}
