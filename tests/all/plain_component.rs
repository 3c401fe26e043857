//! A plain component written for another host (Microsoft wassette's `filesystem.wasm`: plain
//! typed exports, no cove world) installed as a project plugin with a minimal manifest: its four
//! functions are tools, with schemas from their WIT types, confined to the worktree.

use crate::mock_model::{MockModel, Reply, anthropic, last_results};
use crate::support::{Sandbox, TestResult};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/wassette/filesystem.wasm")
}

/// Nothing but what a plugin must say: no `contract` (a plain component) and no `[[tool]]`.
const MINIMAL: &str = "name = \"filesystem\"\nversion = \"0.1.0\"\nkind = \"tool\"\n";

const FUNCTIONS: [&str; 4] = [
    "list-directory",
    "read-file",
    "search-file",
    "get-file-info",
];

fn installed(manifest: &str) -> Result<Sandbox, Box<dyn std::error::Error>> {
    let sb = Sandbox::new()?;
    sb.write("README.md", "# The project\nhello from the worktree\n")?;
    sb.write("src/lib.rs", "pub fn f() {}\n")?;
    sb.add_plugin("filesystem", manifest, &fixture())?;
    sb.trust()?;
    Ok(sb)
}

#[test]
fn its_functions_are_listed_as_tools_without_a_tool_list_in_the_manifest() -> TestResult {
    let sb = installed(MINIMAL)?;
    let listed: Value = serde_json::from_str(sb.cove(&["tools", "list", "--json"])?.out())?;
    let tools = listed["tools"].as_array().cloned().unwrap_or_default();
    for name in FUNCTIONS {
        let tool = tools
            .iter()
            .find(|t| t["name"] == name)
            .ok_or_else(|| format!("`{name}` not listed: {listed}"))?;
        assert_eq!(tool["plugin"], "filesystem");
        // A plain function is a writer unless its manifest entry says otherwise.
        assert_eq!(tool["read_only"], false);
        let description = tool["description"].as_str().unwrap_or_default();
        assert!(
            description.starts_with(&format!("{name}(path: string")),
            "{description}"
        );
    }
    let search = tools.iter().find(|t| t["name"] == "search-file");
    assert_eq!(
        search.map(|t| t["description"].clone()),
        Some(json!(
            "search-file(path: string, pattern: string) -> result<string, string>"
        ))
    );
    assert_eq!(listed["problems"], json!([]), "{listed}");
    Ok(())
}

#[test]
fn read_file_reads_the_worktree_and_nothing_outside_it() -> TestResult {
    let sb = installed(MINIMAL)?;
    let before = sb.outside_snapshot()?;
    let read = sb.call("read-file", r#"{"path":"README.md"}"#)?;
    assert_eq!(read.out(), "# The project\nhello from the worktree\n");

    std::os::unix::fs::symlink(sb.outside().join("secret.txt"), sb.repo().join("link"))?;
    let absolute = sb.outside().join("secret.txt");
    for path in [
        "../outside/secret.txt",
        absolute.to_str().unwrap_or_default(),
        "link",
    ] {
        let input = json!({ "path": path }).to_string();
        let run = sb.call("read-file", &input)?;
        let err = run.err();
        assert!(err.contains("`read-file` failed"), "{path}: {err}");
        assert!(!run.stdout.contains("top secret") && !err.contains("top secret"));
    }
    assert_eq!(sb.outside_snapshot()?, before);

    let listed = sb.call("list-directory", r#"{"path":"."}"#)?;
    let names: Vec<String> = serde_json::from_str(listed.out())?;
    assert!(
        names.iter().any(|n| n.contains("README.md")) && names.iter().any(|n| n.contains("src")),
        "{names:?}"
    );
    Ok(())
}

#[test]
fn arguments_that_do_not_fit_the_wit_types_are_refused_by_the_schema() -> TestResult {
    let sb = installed(MINIMAL)?;
    let err = sb.call("read-file", "{}")?.err().to_string();
    assert!(
        err.contains("read-file") && err.contains("\"path\" is a required property"),
        "{err}"
    );
    let err = sb.call("read-file", r#"{"path": 7}"#)?.err().to_string();
    assert!(err.contains("is not of type \"string\""), "{err}");
    let err = sb
        .call("search-file", r#"{"path": "README.md"}"#)?
        .err()
        .to_string();
    assert!(err.contains("\"pattern\" is a required property"), "{err}");
    Ok(())
}

#[test]
fn a_manifest_tool_list_narrows_describes_and_marks_read_only() -> TestResult {
    let sb = installed(&format!(
        "{MINIMAL}[[tool]]\nname = \"read-file\"\ndescription = \"Read one file of the project\"\nread_only = true\n"
    ))?;
    let listed: Value = serde_json::from_str(sb.cove(&["tools", "list", "--json"])?.out())?;
    let plain: Vec<&Value> = listed["tools"]
        .as_array()
        .map(|t| t.iter().filter(|t| t["plugin"] == "filesystem").collect())
        .unwrap_or_default();
    assert_eq!(plain.len(), 1, "{listed}");
    assert_eq!(plain[0]["name"], "read-file");
    assert_eq!(plain[0]["read_only"], true);
    assert_eq!(plain[0]["description"], "Read one file of the project");
    // Read-only, so the default policy lets a headless session run it without --yes.
    let script = json!({"turns": [
        {"text": "Reading.", "tool_calls": [{"name": "read-file", "input": {"path": "README.md"}}]},
        {"text": "Done."},
    ]});
    let run = sb.run_script(&script, &[], &[])?;
    assert!(run.ok, "{run:?}");
    assert_eq!(
        run.tool_results(),
        [(
            false,
            "# The project\nhello from the worktree\n".to_string()
        )]
    );
    // A listed name the component does not export is a load error naming what it does export.
    let sb = installed(&format!("{MINIMAL}[[tool]]\nname = \"delete-file\"\n"))?;
    let err = sb.call("delete-file", "{}")?.err().to_string();
    assert!(
        err.contains("lists tool `delete-file` but the component exports no such function")
            && err.contains("read-file"),
        "{err}"
    );
    Ok(())
}

#[test]
fn a_model_is_offered_the_functions_with_schemas_and_reads_a_file() -> TestResult {
    let sb = installed(MINIMAL)?;
    let m = MockModel::start(vec![
        Reply::Sse(anthropic(
            "Reading.",
            &[("toolu_1", "read-file", r#"{"path":"README.md"}"#)],
            (100, 0, 20),
        )),
        Reply::Sse(anthropic("It says hello.", &[], (20, 100, 10))),
    ])?;
    let env = crate::mock_model::env(&m);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Not read-only: the default policy asks, and --yes answers.
    let run = sb.cove_env(&["run", "--yes", "what does the readme say?"], &env)?;
    assert!(run.ok, "{run:?}");
    let requests: Vec<Value> = m.requests().iter().map(|s| s.json()).collect();
    let first = requests.first().ok_or("no request")?;
    let tools = first["tools"].as_array().cloned().unwrap_or_default();
    let tool = |name: &str| tools.iter().find(|t| t["name"] == name).cloned();
    for name in FUNCTIONS {
        assert!(tool(name).is_some(), "{name} not offered");
    }
    assert_eq!(
        tool("search-file").map(|t| t["input_schema"].clone()),
        Some(json!({
            "type": "object",
            "properties": {"path": {"type": "string"}, "pattern": {"type": "string"}},
            "required": ["path", "pattern"],
            "additionalProperties": false,
        }))
    );
    assert_eq!(
        last_results(&requests),
        [(
            false,
            "# The project\nhello from the worktree\n".to_string()
        )]
    );
    Ok(())
}

#[test]
fn a_cove_plugin_declared_plain_or_the_reverse_is_refused_saying_which() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("a.txt", "a\n")?;
    // The fs plugin (a cove world) under a manifest with no contract.
    sb.add_plugin(
        "fsplain",
        "name = \"fsplain\"\nversion = \"0.1.0\"\nkind = \"tool\"\n[[tool]]\nname = \"read2\"\n",
        &crate::support::first_party("fs"),
    )?;
    // The plain component under a manifest that says it speaks contract 0.1.0.
    sb.add_plugin(
        "filesystem",
        "name = \"filesystem\"\nversion = \"0.1.0\"\nkind = \"tool\"\ncontract = \"0.1.0\"\n[[tool]]\nname = \"read-file\"\ndescription = \"d\"\n",
        &fixture(),
    )?;
    sb.trust()?;
    let err = sb.call("read2", "{}")?.err().to_string();
    assert!(
        err.contains("plugin.toml has no `contract`")
            && err.contains(&format!(
                "add contract = \"{}\"",
                cove::plugins::contract::NEWEST
            )),
        "{err}"
    );
    let err = sb
        .call("read-file", r#"{"path":"a.txt"}"#)?
        .err()
        .to_string();
    assert!(
        err.contains("exports no cove world: it is a plain component")
            && err.contains("remove `contract`"),
        "{err}"
    );
    Ok(())
}

#[test]
fn plugin_inspect_says_it_loads_as_a_plain_component_and_what_it_offers() -> TestResult {
    let sb = Sandbox::new()?;
    let run = sb.cove(&["plugin", "inspect", &fixture().to_string_lossy()])?;
    let out = run.out();
    assert!(out.contains("contract: none"), "{out}");
    assert!(
        out.contains("loadable: yes, as a plain component (leave `contract` out of plugin.toml)"),
        "{out}"
    );
    assert!(
        out.contains(
            "  search-file: search-file(path: string, pattern: string) -> result<string, string>"
        ),
        "{out}"
    );
    Ok(())
}

#[test]
fn cove_plugin_test_runs_a_plain_components_samples() -> TestResult {
    let sb = Sandbox::new()?;
    let dir = sb.tmp.path().join("dev/filesystem");
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(fixture(), dir.join("filesystem.wasm"))?;
    std::fs::write(
        dir.join("plugin.toml"),
        format!(
            "{MINIMAL}[[test]]\ntool = \"list-directory\"\ninput = {{ path = \".\" }}\n\
             [[test]]\ntool = \"read-file\"\ninput = {{ path = \"../../etc/hostname\" }}\nerror = true\n"
        ),
    )?;
    let run = sb.cove_in(
        &sb.tmp.path().join("dev"),
        &["plugin", "test", "filesystem"],
    )?;
    let out = run.out();
    assert!(out.contains("contract none: a plain component"), "{out}");
    assert!(out.contains("2 passed, 0 failed"), "{out}");
    Ok(())
}
