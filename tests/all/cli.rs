//! The command line a user meets first: `tools list`, `tools call`, `plugin inspect`, layers and config.

use crate::support::{Sandbox, TestResult, evil_manifest, first_party, guest};

#[test]
fn tools_list_shows_every_builtin_tool_with_source_mode_and_capabilities() -> TestResult {
    let sb = Sandbox::new()?;
    let run = sb.cove(&["tools", "list"])?;
    let out = run.out();
    for (tool, plugin, mode) in [
        ("read", "built-in:fs", "read-only"),
        ("write", "built-in:fs", "writes"),
        ("edit", "built-in:fs", "writes"),
        ("ls", "built-in:fs", "read-only"),
        ("grep", "built-in:search", "read-only"),
        ("glob", "built-in:search", "read-only"),
    ] {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(tool));
        let line = line.ok_or_else(|| format!("no line for {tool} in:\n{out}"))?;
        assert!(line.contains(plugin) && line.contains(mode), "{line}");
    }
    assert!(out.contains("fs:read-write"), "{out}");
    assert!(out.contains("fs:none search"), "{out}");
    // Each tool shows what it runs with: `read` holds none of the write access `write` has.
    let caps = |tool: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(tool))
            .unwrap_or_default()
            .to_string()
    };
    assert!(caps("read").contains("fs:read ") && !caps("read").contains("read-write"));
    assert!(caps("write").contains("fs:read-write"));
    Ok(())
}

#[test]
fn tools_list_json_is_machine_readable() -> TestResult {
    let sb = Sandbox::new()?;
    let run = sb.cove(&["tools", "list", "--json"])?;
    let v: serde_json::Value = serde_json::from_str(run.out())?;
    let tools = v["tools"].as_array().ok_or("tools is not an array")?;
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, crate::support::BUILT_IN_TOOLS);
    let grep = tools
        .iter()
        .find(|t| t["name"] == "grep")
        .ok_or("no grep")?;
    assert_eq!(grep["source"], "built-in");
    assert_eq!(grep["read_only"], true);
    assert_eq!(grep["capabilities"]["search"], true);
    assert_eq!(grep["capabilities"]["fs"], "none");
    Ok(())
}

#[test]
fn outside_a_git_repository_says_so() -> TestResult {
    let sb = Sandbox::new()?;
    let run = sb.cove_in(&sb.outside(), &["tools", "list"])?;
    assert!(
        run.err().contains("not inside a git repository"),
        "{}",
        run.stderr
    );
    Ok(())
}

#[test]
fn works_from_a_subdirectory_against_the_repository_root() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("a/b/note.txt", "hello\n")?;
    let run = sb.cove_in(
        &sb.repo().join("a/b"),
        &["tools", "call", "read", r#"{"file_path":"a/b/note.txt"}"#],
    )?;
    assert!(run.out().contains("hello"));
    Ok(())
}

#[test]
fn a_project_adds_its_own_plugin_and_switches_a_builtin_off() -> TestResult {
    let sb = Sandbox::new()?;
    sb.evil_plugin("fs = \"read\"", "[plugins.search]\nenabled = false\n")?;
    let out = sb.cove(&["tools", "list"])?.out().to_string();
    assert!(out.contains("project:evil"), "{out}");
    assert!(!out.lines().any(|l| l.starts_with("grep ")), "{out}");
    assert!(out.contains("disabled: search"), "{out}");
    let run = sb.call("grep", r#"{"pattern":"x"}"#)?;
    assert!(run.err().contains("unknown tool `grep`"), "{}", run.stderr);
    // The project's tool runs.
    let run = sb.call("flood", r#"{"bytes": 10}"#)?;
    assert!(run.out().starts_with("0123456789"));
    Ok(())
}

#[test]
fn a_project_plugin_replaces_a_builtin_of_the_same_name() -> TestResult {
    let sb = Sandbox::new()?;
    // A project plugin named `search` that offers different tools replaces the built-in one.
    sb.add_plugin(
        "search",
        &evil_manifest("search", "fs = \"read\""),
        &guest("evil"),
    )?;
    sb.trust()?;
    let out = sb.cove(&["tools", "list"])?.out().to_string();
    assert!(!out.lines().any(|l| l.starts_with("grep ")), "{out}");
    assert!(out.contains("project:search"), "{out}");
    Ok(())
}

#[test]
fn user_layer_plugins_load_and_project_overrides_them() -> TestResult {
    let sb = Sandbox::new()?;
    let user = sb.tmp.path().join("config/plugins/evil");
    std::fs::create_dir_all(&user)?;
    std::fs::write(
        user.join("plugin.toml"),
        evil_manifest("evil", "fs = \"read\""),
    )?;
    std::fs::copy(guest("evil"), user.join("evil.wasm"))?;
    let out = sb.cove(&["tools", "list"])?.out().to_string();
    assert!(out.contains("user:evil"), "{out}");
    sb.evil_plugin("fs = \"read\"", "")?;
    let out = sb.cove(&["tools", "list"])?.out().to_string();
    assert!(
        out.contains("project:evil") && !out.contains("user:evil"),
        "{out}"
    );
    Ok(())
}

#[test]
fn withheld_grants_are_shown_with_the_line_that_grants_them() -> TestResult {
    let sb = Sandbox::new()?;
    sb.evil_plugin("fs = \"read-write\"\nnet = [\"example.com\"]", "")?;
    let out = sb.cove(&["tools", "list"])?.out().to_string();
    assert!(out.contains("[plugins.evil] fs = \"read-write\""), "{out}");
    // A host list is never granted: nothing could hold the plugin to it.
    assert!(
        out.contains("net host `example.com` (this cove cannot hold a plugin to a list of hosts"),
        "{out}"
    );
    sb.config("[plugins.evil]\nfs = \"read-write\"\n")?;
    sb.trust()?;
    let out = sb.cove(&["tools", "list"])?.out().to_string();
    assert!(!out.contains("fs = \"read-write\""), "{out}");
    Ok(())
}

#[test]
fn tools_call_reads_input_from_stdin_and_prints_json() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("x.txt", "one\n")?;
    let run = sb.cove(&[
        "tools",
        "call",
        "--json",
        "read",
        r#"{"file_path":"x.txt"}"#,
    ])?;
    let v: serde_json::Value = serde_json::from_str(run.out())?;
    assert_eq!(v["is_error"], false);
    assert!(v["text"].as_str().unwrap_or_default().contains("one"));

    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cove"))
        .args(["tools", "call", "read", "-"])
        .current_dir(sb.repo())
        .env("COVE_CONFIG_DIR", sb.tmp.path().join("config"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(br#"{"file_path":"x.txt"}"#)?;
    let out = child.wait_with_output()?;
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("one"));
    Ok(())
}

#[test]
fn bad_tool_input_gets_an_error_the_model_can_act_on() -> TestResult {
    let sb = Sandbox::new()?;
    let run = sb.call("read", "{not json")?;
    assert!(
        run.err().contains("not valid JSON") && run.stderr.contains("\"file_path\""),
        "{}",
        run.stderr
    );
    let run = sb.call("read", r#"{"path":"x"}"#)?;
    let err = run.err();
    assert!(
        err.contains("does not match its schema") && err.contains("file_path"),
        "{err}"
    );
    let run = sb.call("read", r#"{"file_path":"x","offset":"ten"}"#)?;
    assert!(run.err().contains("/offset"), "{}", run.stderr);
    let run = sb.call("nosuch", "{}")?;
    assert!(
        run.err().contains("unknown tool `nosuch`") && run.stderr.contains("read"),
        "{}",
        run.stderr
    );
    Ok(())
}

#[test]
fn plugin_inspect_shows_kind_contract_exports_and_asks() -> TestResult {
    let sb = Sandbox::new()?;
    let dir = sb.tmp.path().join("inspect");
    std::fs::create_dir_all(&dir)?;
    let wasm = dir.join("fs.wasm");
    std::fs::copy(first_party("fs"), &wasm)?;
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/fs/plugin.toml"),
        dir.join("plugin.toml"),
    )?;
    let run = sb.cove(&["plugin", "inspect", &wasm.to_string_lossy()])?;
    let out = run.out();
    assert!(out.contains("kind:     tool"), "{out}");
    assert!(out.contains("contract: 0.2.0"), "{out}");
    assert!(out.contains("cove:plugin/tool-api@0.2.0"), "{out}");
    assert!(out.contains("loadable: yes"), "{out}");
    assert!(out.contains("asks for: fs:read-write"), "{out}");
    assert!(out.contains("tool edit:"), "{out}");

    let run = sb.cove(&[
        "plugin",
        "inspect",
        "--json",
        &first_party("search").to_string_lossy(),
    ])?;
    let v: serde_json::Value = serde_json::from_str(run.out())?;
    assert_eq!(v["component"]["kind"], "tool");
    let used: Vec<&str> = v["capabilities_used"]
        .as_array()
        .ok_or("no capabilities_used")?
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert!(
        used.contains(&"search") && !used.contains(&"exec"),
        "{used:?}"
    );
    Ok(())
}

#[test]
fn plugin_inspect_refuses_what_is_not_a_component() -> TestResult {
    let sb = Sandbox::new()?;
    let file = sb.write("core.wasm", b"\0asm\x01\0\0\0")?;
    let run = sb.cove(&["plugin", "inspect", &file.to_string_lossy()])?;
    assert!(
        run.err()
            .contains("core WebAssembly module, not a component"),
        "{}",
        run.stderr
    );
    let file = sb.write("junk.wasm", b"hello")?;
    let run = sb.cove(&["plugin", "inspect", &file.to_string_lossy()])?;
    assert!(
        run.err().contains("not a WebAssembly component"),
        "{}",
        run.stderr
    );
    Ok(())
}

#[test]
fn a_plugin_built_for_another_contract_version_is_refused_by_name() -> TestResult {
    let sb = Sandbox::new()?;
    let manifest = evil_manifest("future", "fs = \"read\"")
        .replace("contract = \"0.2.0\"", "contract = \"0.9.0\"");
    sb.add_plugin("future", &manifest, &guest("evil"))?;
    sb.trust()?;
    let out = sb.cove(&["tools", "list"])?.out().to_string();
    assert!(
        out.contains(
            "plugin `future` 0.1.0 is not loaded: it needs contract 0.9.0, newer than this cove knows (it loads 0.1.0, 0.2.0); upgrade cove to use it"
        ),
        "{out}"
    );
    // The rest still works.
    assert!(out.lines().any(|l| l.starts_with("read ")), "{out}");
    Ok(())
}

#[test]
fn the_offline_demo_runs_a_real_session_with_a_scripted_model() -> TestResult {
    let sb = Sandbox::new()?;
    let run = sb.cove(&["demo"])?;
    let out = run.out();
    assert!(
        out.contains("Find the TODO in this crate and fix it."),
        "{out}"
    );
    assert!(out.contains("the model finished"), "{out}");
    assert!(out.contains("    a + b\n}"), "{out}");
    assert!(run.stderr.contains("● edit src/lib.rs"), "{}", run.stderr);
    assert!(
        run.stderr.contains("outside the worktree"),
        "{}",
        run.stderr
    );
    assert!(!out.contains("ignored.rs") && !run.stderr.contains("ignored.rs"));
    Ok(())
}
