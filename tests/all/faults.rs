//! Plugins that misbehave: loop forever, eat memory, panic, flood output, describe themselves
//! wrongly, or ship a broken manifest. Each gives a clear error naming the plugin; the host and the
//! other tools carry on.

use crate::support::{Sandbox, TestResult, evil_manifest, guest};
use cove::agent::dispatch;

fn with_evil(config: &str) -> Result<Sandbox, Box<dyn std::error::Error>> {
    let sb = Sandbox::new()?;
    sb.write("hello.txt", "hello\n")?;
    sb.evil_plugin("fs = \"read\"", config)?;
    Ok(sb)
}

#[test]
fn an_infinite_loop_is_stopped_at_the_deadline() -> TestResult {
    let sb = with_evil("[plugins.evil]\ntimeout_ms = 300\n")?;
    let started = std::time::Instant::now();
    let run = sb.call("spin", "{}")?;
    let err = run.err();
    assert!(
        err.contains("plugin `evil` ran past its 0.3s deadline"),
        "{err}"
    );
    assert!(err.contains("timeout_ms"), "{err}");
    // Not a timing assertion on speed: only that the deadline fired rather than the test hanging.
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    Ok(())
}

#[test]
fn a_memory_hog_hits_its_cap() -> TestResult {
    let sb = with_evil("[plugins.evil]\nmemory_mb = 64\n")?;
    let err = sb.call("hog", "{}")?.err().to_string();
    assert!(
        err.contains("plugin `evil` tried to use more than its 64 MiB memory cap"),
        "{err}"
    );
    Ok(())
}

#[test]
fn a_panic_is_a_trap_with_its_message() -> TestResult {
    let sb = with_evil("")?;
    let err = sb.call("boom", "{}")?.err().to_string();
    assert!(err.contains("plugin `evil` crashed (trap)"), "{err}");
    assert!(err.contains("deliberate panic from the boom tool"), "{err}");
    Ok(())
}

#[test]
fn huge_output_is_capped_with_a_note() -> TestResult {
    let sb = with_evil("[plugins.evil]\noutput_kb = 16\n")?;
    let out = sb.call("flood", r#"{"bytes": 1000000}"#)?.out().to_string();
    assert!(out.len() < 17 * 1024, "{}", out.len());
    assert!(
        out.contains("cut from the middle of this output"),
        "{}",
        &out[..200]
    );
    Ok(())
}

#[test]
fn the_host_goes_on_after_traps_timeouts_and_memory_caps() -> TestResult {
    let sb = with_evil("[plugins.evil]\ntimeout_ms = 200\nmemory_mb = 32\n")?;
    // In one process, one registry: the failures must not poison anything else.
    let cache = Some(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cove-cache"));
    // The test wrote this repository's .cove/ itself: trust it without recording anything.
    let ws = cove::agent::workspace::Workspace::open(
        cove::worktree::Worktree::open(&sb.repo())?,
        None,
        cache,
        &mut |_| cove::agent::workspace::Choice::Trust,
    )?;
    let registry = ws.registry;
    let call = |tool: &str, input: &str| match crate::support::permit(&registry, tool, input) {
        Ok(p) => dispatch::call(&registry, p),
        Err(e) => dispatch::ToolResult {
            text: e,
            is_error: true,
        },
    };
    for (tool, needle) in [
        ("boom", "trap"),
        ("spin", "deadline"),
        ("hog", "memory cap"),
        ("boom", "trap"),
    ] {
        let r = call(tool, "{}");
        assert!(r.is_error && r.text.contains(needle), "{tool}: {}", r.text);
        let ok = call("read", r#"{"file_path":"hello.txt"}"#);
        assert!(!ok.is_error && ok.text.contains("hello"), "{}", ok.text);
        let ok = call("flood", r#"{"bytes": 10}"#);
        assert!(!ok.is_error, "{}", ok.text);
    }
    Ok(())
}

#[test]
fn a_malformed_manifest_is_reported_and_the_rest_still_load() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("hello.txt", "hello\n")?;
    let dir = sb.repo().join(".cove/plugins/broken");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("plugin.toml"),
        "name = \"broken\"\nversion = 1\nkind = \"tool\"\n",
    )?;
    let dir = sb.repo().join(".cove/plugins/nowasm");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("plugin.toml"), evil_manifest("nowasm", ""))?;
    sb.trust()?;
    let out = sb.cove(&["tools", "list"])?.out().to_string();
    assert!(out.contains(".cove/plugins/broken/plugin.toml"), "{out}");
    assert!(
        out.contains("invalid type") && out.contains("line 2"),
        "{out}"
    );
    assert!(out.contains("nowasm.wasm does not exist"), "{out}");
    assert!(
        sb.call("read", r#"{"file_path":"hello.txt"}"#)?
            .out()
            .contains("hello")
    );
    Ok(())
}

#[test]
fn a_malformed_schema_from_describe_is_refused() -> TestResult {
    let sb = Sandbox::new()?;
    let manifest = "name = \"bad\"\nversion = \"0.1.0\"\nkind = \"tool\"\ncontract = \"0.2.0\"\n[[tool]]\nname = \"broken\"\ndescription = \"d\"\nread_only = true\n";
    sb.add_plugin("bad", manifest, &guest("badschema"))?;
    sb.trust()?;
    let err = sb.call("broken", "{}")?.err().to_string();
    assert!(
        err.contains("plugin `bad`") && err.contains("input schema that is not JSON"),
        "{err}"
    );
    sb.write("a.txt", "a")?;
    assert!(sb.call("read", r#"{"file_path":"a.txt"}"#)?.ok);
    Ok(())
}

#[test]
fn a_manifest_that_disagrees_with_its_component_is_refused() -> TestResult {
    let sb = Sandbox::new()?;
    let manifest = evil_manifest("liar", "")
        + "[[tool]]\nname = \"ghost\"\ndescription = \"d\"\nread_only = true\n";
    sb.add_plugin("liar", &manifest, &guest("evil"))?;
    sb.trust()?;
    let err = sb.call("ghost", "{}")?.err().to_string();
    assert!(
        err.contains("plugin.toml lists tool `ghost` but the component does not offer it"),
        "{err}"
    );

    let sb = Sandbox::new()?;
    let manifest = evil_manifest("liar", "").replace(
        "name = \"probe\"\ndescription = \"probe\"\nread_only = false",
        "name = \"probe\"\ndescription = \"probe\"\nread_only = true",
    );
    sb.add_plugin("liar", &manifest, &guest("evil"))?;
    sb.trust()?;
    let err = sb.call("flood", r#"{"bytes":1}"#)?.err().to_string();
    assert!(
        err.contains(
            "tool `probe`: plugin.toml says read_only = true but the component says false"
        ),
        "{err}"
    );

    let sb = Sandbox::new()?;
    let manifest = evil_manifest("liar", "").replace("kind = \"tool\"", "kind = \"policy\"");
    sb.add_plugin("liar", &manifest, &guest("evil"))?;
    sb.trust()?;
    // A policy plugin offers no tools; it is listed as a plugin, not a tool.
    let out = sb.cove(&["tools", "list", "--json"])?.out().to_string();
    assert!(!out.contains("\"spin\""), "{out}");
    Ok(())
}

#[test]
fn a_file_that_is_not_a_component_is_refused_by_name() -> TestResult {
    let sb = Sandbox::new()?;
    let junk = sb.tmp.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm\x01\0\0\0")?;
    sb.add_plugin("junk", &evil_manifest("junk", ""), &junk)?;
    sb.trust()?;
    let err = sb.call("spin", "{}")?.err().to_string();
    assert!(
        err.contains("plugin `junk`") && err.contains("not a component"),
        "{err}"
    );
    Ok(())
}

#[test]
fn a_corrupt_cache_entry_is_recompiled() -> TestResult {
    let sb = Sandbox::new()?;
    // A project plugin: built-ins carry their native code and never use the cache.
    sb.add_plugin("echoer", &evil_manifest("echoer", ""), &guest("evil"))?;
    sb.trust()?;
    let cache = sb.tmp.path().join("cache");
    let run = |sb: &Sandbox| -> Result<String, Box<dyn std::error::Error>> {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cove"))
            .args(["tools", "call", "echo", r#"{"text":"cached"}"#])
            .current_dir(sb.repo())
            .env("COVE_CONFIG_DIR", sb.tmp.path().join("config"))
            .env("COVE_CACHE_DIR", &cache)
            .output()?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    assert!(run(&sb)?.contains("cached"));
    let entries: Vec<_> = std::fs::read_dir(cache.join("components"))?
        .filter_map(Result::ok)
        .collect();
    assert!(!entries.is_empty(), "nothing compiled was cached");
    for e in &entries {
        std::fs::write(e.path(), b"garbage")?;
    }
    assert!(run(&sb)?.contains("cached"));
    Ok(())
}
