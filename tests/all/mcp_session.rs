//! MCP servers in a session, through the `cove` binary: a call's progress shown as it comes,
//! Ctrl-C cancelling a call in flight at the server, tool names made to fit the providers' limit,
//! `[mcp] net` letting a server out (and only that server), and `tool_search`'s offers kept across
//! `--resume`. The server is `tests/all/servers/sdk_server.py`, on the official Python SDK
//! (installed with `mcp-server-time`, which depends on it).
//!
//! Must not depend on timing: every wait is bounded generously and nothing asserts how fast.

use crate::mock_model::{
    MockModel, Reply, calls, done, env, last_results, requests_of, route_with,
};
use crate::support::{Run, Sandbox, TestResult, progress_between_call_and_result};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The user config naming the SDK server `sdk` (its log file `mcp.log`, in the worktree), plus
/// `extra` lines of `[mcp]`.
fn sdk_config(sb: &Sandbox, extra: &str) -> TestResult {
    let installed = crate::mcp::installed()?;
    std::fs::write(
        sb.tmp.path().join("config/config.toml"),
        format!(
            "[mcp]\n{extra}\n[mcp.servers.sdk]\ncommand = \"python3\"\nargs = [{:?}]\nenv = {{ PYTHONPATH = {:?}, LOG = \"mcp.log\" }}\n",
            crate::mcp::test_server("sdk_server.py").to_string_lossy(),
            installed.python_path.to_string_lossy(),
        ),
    )?;
    Ok(())
}

/// A model server that follows `replies` in the conversation whose first message holds `marker`,
/// and the environment that points cove at it.
fn model(
    marker: &'static str,
    replies: Vec<Reply>,
) -> std::io::Result<(MockModel, Vec<(&'static str, String)>)> {
    let m = MockModel::start(vec![])?;
    route_with(&m, vec![(marker, replies)], |_, _, _| {});
    let env = env(&m);
    Ok((m, env))
}

fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Wait (60 s at most) until `path` holds `line`; whether it did.
fn logged(path: &Path, line: &str) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if std::fs::read_to_string(path).is_ok_and(|t| t.lines().any(|l| l == line)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn a_calls_progress_shows_as_it_comes() -> TestResult {
    let sb = Sandbox::new()?;
    sdk_config(&sb, "")?;
    let (_model, env) = model(
        "PROGRESS-4410",
        vec![
            calls(&[("c1", "mcp__sdk__count", json!({"n": 3}))]),
            done("done"),
        ],
    )?;
    let env = pairs(&env);
    let run = sb.cove_env(
        &[
            "run",
            "--yes",
            "--output-format",
            "stream-json",
            "PROGRESS-4410 go",
        ],
        &env,
    )?;
    assert!(run.ok, "{run:?}");
    let progress = progress_between_call_and_result(&run.stdout);
    assert_eq!(progress.len(), 3, "{}", run.stdout);
    for (i, p) in progress.iter().enumerate() {
        assert_eq!(p["name"], "mcp__sdk__count", "{p}");
        assert_eq!(p["id"], "c1", "{p}");
        assert_eq!(p["progress"], json!((i + 1) as f64), "{p}");
        assert_eq!(p["total"], json!(3.0), "{p}");
        assert_eq!(p["message"], format!("step {}", i + 1), "{p}");
    }
    assert_eq!(
        run.tool_results(),
        vec![(false, "counted to 3".to_string())]
    );
    // In text mode, on stderr beneath the call (a line a second at most off a terminal).
    let run = sb.cove_env(&["run", "--yes", "PROGRESS-4410 go"], &env)?;
    assert!(run.ok, "{run:?}");
    assert!(run.stderr.contains("⋯ 1/3 step 1"), "{}", run.stderr);
    Ok(())
}

#[test]
fn ctrl_c_cancels_an_mcp_call_in_flight_at_the_server() -> TestResult {
    let sb = Sandbox::new()?;
    sdk_config(&sb, "")?;
    let (_model, env) = model(
        "CANCEL-5520",
        vec![
            calls(&[("c1", "mcp__sdk__sleep", json!({}))]),
            done("never reached"),
        ],
    )?;
    let env = pairs(&env);
    let child = sb
        .command(&sb.repo(), &["run", "--yes", "CANCEL-5520 go"], &env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let log = sb.repo().join("mcp.log");
    if !logged(&log, "started") {
        let out = child.wait_with_output();
        return Err(format!("the call never reached the server: {out:?}").into());
    }
    let out = crate::support::interrupt(child)?;
    // The server was told, and stopped the call, before cove stopped it.
    assert!(
        logged(&log, "cancelled"),
        "{}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default(),
        String::from_utf8_lossy(&out.stderr)
    );
    // The transcript keeps the call, answered as cut off.
    let lines = sb.transcripts()?;
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "tool_start" && l["id"] == "c1"),
        "{lines:?}"
    );
    Ok(())
}

#[test]
fn a_tool_name_too_long_for_providers_is_made_to_fit_and_still_calls_the_tool() -> TestResult {
    let sb = Sandbox::new()?;
    sdk_config(&sb, "")?;
    let run = sb.cove(&["tools", "list", "--json"])?;
    assert!(run.ok, "{run:?}");
    let listed: Value = serde_json::from_str(&run.stdout)?;
    let names: Vec<String> = listed["mcp_tools"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let long = names
        .iter()
        .find(|n| n.starts_with("mcp__sdk__project_files_very_long_segment"))
        .ok_or_else(|| format!("no long-named tool in {names:?}"))?;
    assert_eq!(long.len(), 64, "{long}");
    assert!(
        long.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
        "{long}"
    );
    let run = sb.cove(&["tools", "call", long, r#"{"path": "README"}"#])?;
    assert_eq!(run.out().trim(), "long-named tool read README");
    Ok(())
}

#[test]
fn mcp_net_lets_the_named_server_reach_the_network_and_only_it() -> TestResult {
    let sb = Sandbox::new()?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let outside = sb.outside().join("escaped.txt");
    let scripted = crate::mcp::test_server("scripted.py");
    let servers = format!(
        "[mcp.servers.open]\ncommand = \"python3\"\nargs = [{p:?}]\n[mcp.servers.shut]\ncommand = \"python3\"\nargs = [{p:?}]\n",
        p = scripted.to_string_lossy()
    );
    std::fs::write(
        sb.tmp.path().join("config/config.toml"),
        format!("[mcp]\nnet = [\"open\"]\n{servers}"),
    )?;
    let input =
        json!({"path": outside.to_string_lossy(), "host": "127.0.0.1", "port": port}).to_string();
    let run = sb.cove(&["tools", "call", "mcp__open__escape", &input])?;
    // Granted the network, it connects; the worktree wall still stands.
    assert!(
        run.out().contains("connect: done") && run.out().contains("write: refused"),
        "{run:?}"
    );
    let run = sb.cove(&["tools", "call", "mcp__shut__escape", &input])?;
    assert!(run.out().contains("connect: refused"), "{run:?}");
    assert!(!outside.exists());
    Ok(())
}

#[test]
fn tools_tool_search_offered_are_offered_again_on_resume() -> TestResult {
    let sb = Sandbox::new()?;
    sdk_config(&sb, "eager_tokens = 10")?;
    let (m, env) = model(
        "RESUME-6630",
        vec![
            // Waits for the server, so `tool_search` is offered from the next request.
            calls(&[("c1", "mcp__sdk__count", json!({"n": 1}))]),
            calls(&[("c2", "tool_search", json!({"query": "count"}))]),
            done("found it"),
            // The resumed session: one call that waits for the server again.
            calls(&[("c3", "mcp__sdk__count", json!({"n": 1}))]),
            done("done"),
        ],
    )?;
    let env = pairs(&env);
    let run = sb.cove_env(&["run", "--yes", "RESUME-6630 go"], &env)?;
    assert!(run.ok, "{run:?}");
    let first = requests_of(&m, "RESUME-6630");
    assert_eq!(first.len(), 3);
    assert_eq!(
        crate::mock_model::tool_names(&first[2])
            .last()
            .map(String::as_str),
        Some("mcp__sdk__count")
    );
    let run = sb.cove_env(&["run", "--yes", "--continue", "and again"], &env)?;
    assert!(run.ok, "{run:?}");
    let all = requests_of(&m, "RESUME-6630");
    assert_eq!(all.len(), 5, "{all:?}");
    // Once the server is up again, the tool found before is offered without a new search.
    let tools = crate::mock_model::tool_names(&all[4]);
    assert!(tools.iter().any(|t| t == "tool_search"), "{tools:?}");
    assert!(tools.iter().any(|t| t == "mcp__sdk__count"), "{tools:?}");
    assert_eq!(
        last_results(&all).last(),
        Some(&(false, "counted to 1".to_string()))
    );
    Ok(())
}

#[test]
fn a_stdio_servers_private_tmp_is_removed_when_it_stops() -> TestResult {
    let sb = Sandbox::new()?;
    sdk_config(&sb, "")?;
    let tmp = sb.tmp.path().join("system-tmp");
    std::fs::create_dir_all(&tmp)?;
    let tmp_text = tmp.to_string_lossy().into_owned();
    let run = Run::from(
        sb.command(
            &sb.repo(),
            &["tools", "call", "mcp__sdk__tmpdir", "{}"],
            &[("TMPDIR", &tmp_text)],
        )
        .output()?,
    );
    // The server had a directory of its own in the system's tmp, and it is gone.
    let its = run.out().trim().to_string();
    assert!(
        its.starts_with(&tmp_text) && its.len() > tmp_text.len(),
        "{its}"
    );
    assert!(!Path::new(&its).exists(), "{its} is left behind");
    let left: Vec<_> = std::fs::read_dir(&tmp)?
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    Ok(())
}
