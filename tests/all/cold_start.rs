//! A new machine, a fresh HOME, CI: with an empty cache the built-in components run from the
//! native code built into the binary. Nothing is compiled, so nothing is written to the cache;
//! a component that is not built in still compiles and is cached, which shows the cache is watched.

use crate::support::{Sandbox, TestResult, evil_manifest, guest};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Every file under `dir`, or none if it does not exist.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>, std::io::Error> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for e in entries {
        let path = e?.path();
        if path.is_dir() {
            out.extend(files_under(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}

#[test]
fn built_in_tools_run_from_an_empty_cache_without_compiling() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("a.txt", "hello from a cold start\n")?;
    let cache = sb.tmp.path().join("fresh-cache");
    let cache_env = cache.to_string_lossy().into_owned();
    let env = [("COVE_CACHE_DIR", cache_env.as_str())];

    let read = sb.cove_env(&["tools", "call", "read", r#"{"file_path":"a.txt"}"#], &env)?;
    assert!(read.out().contains("hello from a cold start"));
    assert_eq!(files_under(&cache)?, Vec::<PathBuf>::new());

    // A whole session: every tool plugin described for the model, the default policy asked,
    // a read and a search run.
    let script = json!({"turns": [
        {"text": "Looking.", "tool_calls": [
            {"name": "read", "input": {"file_path": "a.txt"}},
            {"name": "grep", "input": {"pattern": "cold start"}}
        ]},
        {"text": "Done."}
    ]});
    let run = sb.run_script(&script, &[], &env)?;
    assert!(run.ok, "{run:?}");
    let results = run.tool_results();
    assert_eq!(results.len(), 2, "{}", run.stdout);
    for ((is_error, text), expected) in results.iter().zip(["cold start", "a.txt"]) {
        assert!(!is_error && text.contains(expected), "{results:?}");
    }
    assert_eq!(files_under(&cache)?, Vec::<PathBuf>::new());

    // A project plugin has no native code in the binary: it compiles, and the cache shows it.
    sb.add_plugin("echoer", &evil_manifest("echoer", ""), &guest("evil"))?;
    sb.trust()?;
    let echo = sb.cove_env(&["tools", "call", "echo", r#"{"text":"hi"}"#], &env)?;
    assert!(echo.out().contains("hi"));
    let cached = files_under(&cache)?;
    assert_eq!(cached.len(), 1, "{cached:?}");
    Ok(())
}
