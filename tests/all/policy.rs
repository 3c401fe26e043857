//! Policies decide every call before it runs: the built-in ones, several at once, a policy that
//! fails, and a model trying to change its own policy. The model here is scripted.

use crate::support::{Run, Sandbox, TestResult, guest};
use serde_json::{Value, json};

/// Run `cove run` with a scripted model that makes `calls` (name, input) in one turn, then stops.
fn scripted(sb: &Sandbox, calls: &[(&str, Value)], extra: &[&str]) -> Result<Run, std::io::Error> {
    let tool_calls: Vec<Value> = calls
        .iter()
        .map(|(n, i)| json!({"name": n, "input": i}))
        .collect();
    let script =
        json!({"turns": [{"text": "Working.", "tool_calls": tool_calls}, {"text": "Done."}]});
    sb.run_script(&script, extra, &[])
}

fn edit_call() -> (&'static str, Value) {
    (
        "edit",
        json!({"file_path": "a.txt", "old_string": "one", "new_string": "two"}),
    )
}

#[test]
fn the_default_policy_allows_reads_and_asks_for_writes_which_headless_means_no() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("a.txt", "one\n")?;
    let run = scripted(
        &sb,
        &[("read", json!({"file_path": "a.txt"})), edit_call()],
        &[],
    )?;
    assert!(run.ok, "{run:?}");
    let r = run.tool_results();
    assert!(!r[0].0 && r[0].1.contains("one"), "{r:?}");
    assert!(
        r[1].0 && r[1].1.contains("needs the user's approval") && r[1].1.contains("--yes"),
        "{r:?}"
    );
    assert_eq!(sb.read("a.txt")?, "one\n");
    let run = scripted(&sb, &[edit_call()], &["--yes"])?;
    assert!(!run.tool_results()[0].0, "{run:?}");
    assert_eq!(sb.read("a.txt")?, "two\n");
    Ok(())
}

#[test]
fn read_only_denies_writes_and_commands_with_its_reason() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("a.txt", "one\n")?;
    let calls = [
        edit_call(),
        ("bash", json!({"command": "touch made"})),
        ("grep", json!({"pattern": "one"})),
    ];
    let run = scripted(&sb, &calls, &["--policy", "read-only", "--yes"])?;
    let r = run.tool_results();
    assert!(
        r[0].0 && r[0].1.contains("denied by policy") && r[0].1.contains("read-only"),
        "{r:?}"
    );
    assert!(r[1].0 && r[1].1.contains("denied by policy"), "{r:?}");
    assert!(!r[2].0, "{r:?}");
    assert_eq!(sb.read("a.txt")?, "one\n");
    assert!(!sb.repo().join("made").exists());
    Ok(())
}

#[test]
fn deny_beats_ask_beats_allow_across_policies() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("a.txt", "one\n")?;
    sb.config("policy = [\"trusted\", \"read-only\"]\n")?;
    sb.trust()?;
    let r = scripted(&sb, &[edit_call()], &["--yes"])?.tool_results();
    assert!(
        r[0].0 && r[0].1.contains("read-only"),
        "deny must win: {r:?}"
    );
    sb.config("policy = [\"trusted\", \"default\"]\n")?;
    sb.trust()?;
    let r = scripted(&sb, &[edit_call()], &[])?.tool_results();
    assert!(
        r[0].0 && r[0].1.contains("approval"),
        "ask must win over allow: {r:?}"
    );
    sb.config("policy = \"trusted\"\n")?;
    sb.trust()?;
    let r = scripted(&sb, &[edit_call()], &[])?.tool_results();
    assert!(!r[0].0, "{r:?}");
    assert_eq!(sb.read("a.txt")?, "two\n");
    Ok(())
}

#[test]
fn a_policy_that_traps_or_hangs_denies() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("a.txt", "one\n")?;
    let manifest = "name = \"bad\"\nversion = \"0.1.0\"\nkind = \"policy\"\ncontract = \"0.2.0\"\n[limits]\ntimeout_ms = 300\n";
    sb.add_plugin("bad", manifest, &guest("badpolicy"))?;
    sb.trust()?;
    let calls = [
        ("read", json!({"file_path": "a.txt"})),
        ("glob", json!({"pattern": "*.txt"})),
        ("ls", json!({})),
        ("grep", json!({"pattern": "one"})),
    ];
    let run = scripted(&sb, &calls, &["--policy", "bad"])?;
    assert!(run.ok, "{run:?}");
    let r = run.tool_results();
    assert!(
        r[0].0 && r[0].1.contains("policy `bad` failed") && r[0].1.contains("deliberate panic"),
        "{r:?}"
    );
    assert!(
        r[1].0 && r[1].1.contains("policy `bad` failed") && r[1].1.contains("deadline"),
        "{r:?}"
    );
    assert!(!r[2].0, "{r:?}");
    assert!(r[3].0 && r[3].1.contains("bad says no to grep"), "{r:?}");
    Ok(())
}

#[test]
fn an_unknown_policy_is_refused_before_anything_runs() -> TestResult {
    let sb = Sandbox::new()?;
    let run = scripted(&sb, &[], &["--policy", "nosuch"])?;
    let err = run.err();
    assert!(
        err.contains("no policy plugin named `nosuch`")
            && err.contains("read-only")
            && err.contains("trusted"),
        "{err}"
    );
    Ok(())
}

#[test]
fn the_model_cannot_change_its_policy_or_grants() -> TestResult {
    let sb = Sandbox::new()?;
    sb.config("policy = \"trusted\"\n")?;
    sb.trust()?;
    let config = sb.repo().join(".cove/config.toml");
    let before = std::fs::read(&config)?;
    let calls = [
        (
            "write",
            json!({"file_path": ".cove/config.toml", "content": "[plugins.shell]\nnet = [\"*\"]\n"}),
        ),
        (
            "edit",
            json!({"file_path": ".cove/config.toml", "old_string": "trusted", "new_string": "anything"}),
        ),
        (
            "bash",
            json!({"command": "echo 'policy = \"trusted\"' >> .cove/config.toml; mkdir -p .cove/plugins/x"}),
        ),
    ];
    let run = scripted(&sb, &calls, &[])?;
    let r = run.tool_results();
    assert!(r[0].0 && r[1].0, "{r:?}");
    assert!(r[2].1.contains("[exit code"), "{r:?}");
    assert_eq!(std::fs::read(&config)?, before);
    assert!(!sb.repo().join(".cove/plugins").exists());
    Ok(())
}

/// The example third-party policy, written in Python and built by scripts/test.sh with
/// componentize-py, loads and decides like any other.
#[test]
fn a_python_policy_written_by_a_third_party_decides() -> TestResult {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let wasm = root.join("target/examples/no-push.wasm");
    assert!(
        wasm.exists(),
        "{} is missing: scripts/test.sh builds it with componentize-py",
        wasm.display()
    );
    let manifest = std::fs::read_to_string(root.join("examples/policy-python/plugin.toml"))?;
    let sb = Sandbox::new()?;
    let dir = sb.repo().join(".cove/plugins/no-push");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("plugin.toml"), manifest)?;
    std::fs::copy(&wasm, dir.join("no-push.wasm"))?;
    sb.config("policy = [\"trusted\", \"no-push\"]\n")?;
    sb.trust()?;
    let calls = [
        ("bash", json!({"command": "git push origin main"})),
        ("bash", json!({"command": "rm -rf / --no-preserve-root"})),
        ("bash", json!({"command": "echo allowed"})),
        (
            "write",
            json!({"file_path": ".github/workflows/ci.yml", "content": "on: push"}),
        ),
        (
            "write",
            json!({"file_path": "src/ok.txt", "content": "fine"}),
        ),
    ];
    let run = scripted(&sb, &calls, &[])?;
    assert!(run.ok, "{run:?}");
    let r = run.tool_results();
    assert!(r[0].0 && r[0].1.contains("git push"), "{r:?}");
    assert!(r[1].0 && r[1].1.contains("never allowed"), "{r:?}");
    assert!(!r[2].0 && r[2].1.contains("allowed"), "{r:?}");
    assert!(r[3].0 && r[3].1.contains("CI configuration"), "{r:?}");
    assert!(!r[4].0, "{r:?}");
    assert!(!sb.repo().join(".github").exists());
    assert_eq!(sb.read("src/ok.txt")?, "fine");
    Ok(())
}

#[test]
fn chat_asks_with_once_session_no_and_no_with_a_reason() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("a.txt", "one\n")?;
    let edit = |from: &str, to: &str| json!({"name": "edit", "input": {"file_path": "a.txt", "old_string": from, "new_string": to}});
    let script = json!({"turns": [
        {"text": "", "tool_calls": [edit("one", "two")]},
        {"text": "", "tool_calls": [edit("two", "three")]},
        {"text": "", "tool_calls": [{"name": "bash", "input": {"command": "git status; rm -rf src"}}]},
        {"text": "", "tool_calls": [{"name": "bash", "input": {"command": "git status"}}]},
        {"text": "All done."}
    ]});
    // The prompt; `a` for the first edit (not asked again for the second); the compound
    // command is offered no session-wide yes, and gets `n`; `r` and a reason for the last.
    let run = sb.chat_on_terminal(&script, "go\na\nn\nr\nuse the read tool instead\n\x04")?;
    let out = &run.stdout;
    assert_eq!(sb.read("a.txt")?, "three\n", "{out}");
    assert_eq!(
        out.matches("[a] yes, and for `edit` this session").count(),
        1,
        "asked once for edit: {out}"
    );
    let compound = out
        .find("git status; rm -rf src")
        .ok_or("the compound command was not shown")?;
    let options = &out[compound..];
    let line_end = options.find("[r] no").ok_or("no options shown")?;
    assert!(
        !options[..line_end].contains("[a] yes"),
        "a compound command must not be approvable for the session: {out}"
    );
    assert!(
        out.contains("the user declined: ") && out.contains("and said: use the read tool instead"),
        "{out}"
    );
    assert!(out.contains("All done."), "{out}");
    Ok(())
}
