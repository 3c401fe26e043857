//! The master loop end to end: the real binary and components against a local server that speaks
//! the providers' exact wire formats.

use crate::mock_model::{MockModel, Reply, anthropic, openai};
use crate::support::{Sandbox, TestResult};
use serde_json::Value;

fn anthropic_env(m: &MockModel) -> Vec<(&'static str, String)> {
    vec![
        ("ANTHROPIC_BASE_URL", m.url.clone()),
        ("ANTHROPIC_API_KEY", "test-key".into()),
    ]
}

/// Borrowed pairs for `Sandbox::cove_env`.
fn refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn run(sb: &Sandbox, m: &MockModel, args: &[&str]) -> Result<crate::support::Run, std::io::Error> {
    let env = anthropic_env(m);
    let env = refs(&env);
    sb.cove_env(args, &env)
}

/// `cove ARGS` against `m`, started and left running (to be stopped mid-turn); stdout and stderr
/// are piped (`null`: thrown away).
fn start(
    sb: &Sandbox,
    m: &MockModel,
    args: &[&str],
    null: bool,
) -> Result<std::process::Child, std::io::Error> {
    let env = anthropic_env(m);
    let env = refs(&env);
    let out = || {
        if null {
            std::process::Stdio::null()
        } else {
            std::process::Stdio::piped()
        }
    };
    sb.command(&sb.repo(), args, &env)
        .stdout(out())
        .stderr(out())
        .spawn()
}

/// Every tool_use in request N is answered exactly once, in order, at the start of request N+1.
fn assert_every_call_answered(reqs: &[crate::mock_model::Seen]) {
    for pair in reqs.windows(2) {
        let (a, b) = (pair[0].json(), pair[1].json());
        let b_msgs = b["messages"].as_array().cloned().unwrap_or_default();
        let n = a["messages"].as_array().map_or(0, Vec::len);
        // b = a's messages + the assistant turn + one user message of results.
        let assistant = &b_msgs[n];
        let ids: Vec<&str> = assistant["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["type"] == "tool_use")
            .filter_map(|c| c["id"].as_str())
            .collect();
        if ids.is_empty() {
            continue;
        }
        let answered: Vec<&str> = b_msgs[n + 1]["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["type"] == "tool_result")
            .filter_map(|c| c["tool_use_id"].as_str())
            .collect();
        assert_eq!(
            answered, ids,
            "every tool_use answered exactly once, in order"
        );
    }
}

/// Request N+1 starts with the same bytes as request N up to N's last cache breakpoint (the
/// `cache_control` markers aside: they say where to cache, not what).
fn assert_prefix_stable(reqs: &[crate::mock_model::Seen]) {
    use crate::mock_model::unmarked;
    for pair in reqs.windows(2) {
        let ((a, marks), (b, _)) = (unmarked(&pair[0].body), unmarked(&pair[1].body));
        let cut = marks.last().copied().unwrap_or(0);
        assert!(cut > 0, "request has breakpoints");
        assert!(b.as_bytes()[..cut] == a.as_bytes()[..cut], "prefix changed");
    }
}

#[test]
fn a_multi_turn_task_edits_a_file_with_the_real_components() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write(
        "src/lib.rs",
        "pub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n",
    )?;
    sb.write("AGENTS.md", "Always run the tests.\n")?;
    let m = MockModel::start(vec![
        Reply::Sse(anthropic(
            "Reading.",
            &[("toolu_1", "read", r#"{"file_path":"src/lib.rs"}"#)],
            (500, 0, 400),
        )),
        Reply::Sse(anthropic(
            "",
            &[(
                "toolu_2",
                "edit",
                r#"{"file_path":"src/lib.rs","old_string":"a - b","new_string":"a + b"}"#,
            )],
            (50, 400, 100),
        )),
        Reply::Sse(anthropic(
            "Fixed the operator in `add`.",
            &[],
            (20, 500, 50),
        )),
    ])?;
    let out = run(&sb, &m, &["run", "--yes", "fix add"])?;
    assert!(out.ok, "{out:?}");
    assert!(
        out.stdout.contains("Reading.") && out.stdout.contains("Fixed the operator in `add`."),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("the model finished"), "{}", out.stderr);
    assert!(out.stderr.contains("cache-read share"), "{}", out.stderr);
    assert_eq!(
        sb.read("src/lib.rs")?,
        "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n"
    );
    let reqs = m.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(m.remaining(), 0);
    assert!(reqs.iter().all(|r| r.path == "/v1/messages"));
    assert!(
        reqs[0]
            .headers
            .iter()
            .any(|(k, v)| k == "x-api-key" && v == "test-key")
    );
    assert!(
        reqs[0]
            .headers
            .iter()
            .any(|(k, _)| k == "anthropic-version")
    );
    let first = reqs[0].json();
    assert_eq!(first["stream"], true);
    assert!(
        first["system"][0]["text"]
            .as_str()
            .unwrap_or("")
            .contains("Always run the tests.")
    );
    let tools: Vec<&str> = first["tools"]
        .as_array()
        .ok_or("tools")?
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    // The plugins' tools by name, then the host's own (no skills here: no `skill` tool).
    let offered: Vec<&str> = crate::support::BUILT_IN_TOOLS
        .iter()
        .chain(crate::support::HOST_TOOLS.iter())
        .copied()
        .collect();
    assert_eq!(tools, offered);
    // The host reads built-in schemas as draft 7 (cheaper to compile); they must be valid both
    // as that and as 2020-12, which any other reader assumes.
    for t in first["tools"].as_array().ok_or("tools")? {
        let schema = &t["input_schema"];
        assert!(
            jsonschema::draft7::meta::is_valid(schema)
                && jsonschema::draft202012::meta::is_valid(schema),
            "{t}"
        );
    }
    // Every byte of these goes out on every request: the budget for tools + system prompt.
    let weight = first["tools"].to_string().len() + first["system"].to_string().len();
    assert!(
        weight <= 12 * 1024,
        "tools + system prompt weigh {weight} bytes"
    );
    let second = reqs[1].json();
    let result = &second["messages"][2]["content"][0];
    assert_eq!(result["tool_use_id"], "toolu_1");
    assert!(result["content"].as_str().unwrap_or("").contains("a - b"));
    assert_every_call_answered(&reqs);
    assert_prefix_stable(&reqs);
    Ok(())
}

#[test]
fn parallel_read_only_calls_come_back_in_the_models_order() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("a.txt", "alpha\n")?;
    sb.write("b.txt", "beta\n")?;
    let m = MockModel::start(vec![
        Reply::Sse(anthropic(
            "",
            &[
                ("t1", "read", r#"{"file_path":"a.txt"}"#),
                ("t2", "grep", r#"{"pattern":"beta"}"#),
                ("t3", "read", r#"{"file_path":"b.txt"}"#),
                ("t4", "nosuch", r#"{}"#),
            ],
            (10, 0, 0),
        )),
        Reply::Sse(anthropic("ok", &[], (10, 0, 0))),
    ])?;
    let out = run(&sb, &m, &["run", "look"])?;
    assert!(out.ok, "{out:?}");
    let reqs = m.requests();
    let results = reqs[1].json()["messages"][2]["content"].clone();
    let ids: Vec<&str> = results
        .as_array()
        .ok_or("results")?
        .iter()
        .filter_map(|r| r["tool_use_id"].as_str())
        .collect();
    assert_eq!(ids, ["t1", "t2", "t3", "t4"]);
    assert!(
        results[0]["content"]
            .as_str()
            .unwrap_or("")
            .contains("alpha")
    );
    assert!(
        results[1]["content"]
            .as_str()
            .unwrap_or("")
            .contains("b.txt")
    );
    assert!(
        results[2]["content"]
            .as_str()
            .unwrap_or("")
            .contains("beta")
    );
    assert_eq!(results[3]["is_error"], true);
    assert!(
        results[3]["content"]
            .as_str()
            .unwrap_or("")
            .contains("unknown tool `nosuch`")
    );
    assert_every_call_answered(&reqs);
    Ok(())
}

#[test]
fn malformed_tool_input_gets_an_error_result_and_the_loop_goes_on() -> TestResult {
    let sb = Sandbox::new()?;
    let m = MockModel::start(vec![
        Reply::Sse(anthropic(
            "",
            &[
                ("t1", "read", r#"{"file_path": "a.txt"#),
                ("t2", "read", r#"{"path":"x"}"#),
            ],
            (10, 0, 0),
        )),
        Reply::Sse(anthropic("I'll stop.", &[], (10, 0, 0))),
    ])?;
    let out = run(&sb, &m, &["run", "go"])?;
    assert!(out.ok, "{out:?}");
    let reqs = m.requests();
    let second = reqs[1].json();
    let results = second["messages"][2]["content"]
        .as_array()
        .cloned()
        .ok_or("results")?;
    assert_eq!(results[0]["is_error"], true);
    assert!(
        results[0]["content"]
            .as_str()
            .unwrap_or("")
            .contains("not valid JSON"),
        "{results:?}"
    );
    assert!(
        results[1]["content"]
            .as_str()
            .unwrap_or("")
            .contains("does not match its schema"),
        "{results:?}"
    );
    // The broken call goes back to the API as an object, as the API requires.
    assert!(second["messages"][1]["content"][0]["input"].is_object());
    Ok(())
}

#[test]
fn a_stream_cut_mid_message_is_a_clear_error_and_earlier_turns_stay() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("a.txt", "alpha\n")?;
    let mut cut = anthropic(
        "This reply will be cut off half way through",
        &[],
        (10, 0, 0),
    );
    cut.truncate(4);
    let m = MockModel::start(vec![
        Reply::Sse(anthropic(
            "",
            &[("t1", "read", r#"{"file_path":"a.txt"}"#)],
            (10, 0, 0),
        )),
        Reply::SseCut(cut),
    ])?;
    let out = run(&sb, &m, &["run", "go"])?;
    assert!(!out.ok);
    assert!(
        out.stderr.contains("broke off mid-reply") || out.stderr.contains("ended before"),
        "{}",
        out.stderr
    );
    let lines = sb.transcripts()?;
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["type"].as_str()).collect();
    assert_eq!(
        kinds,
        ["session", "user", "assistant", "tool_results", "end"]
    );
    assert_eq!(lines[4]["outcome"], "failed");
    Ok(())
}

#[test]
fn a_429_with_retry_after_is_retried_then_succeeds() -> TestResult {
    let sb = Sandbox::new()?;
    let limited = r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#;
    let m = MockModel::start(vec![
        Reply::Status(
            429,
            vec![("retry-after".into(), "0.2".into())],
            limited.into(),
        ),
        Reply::Status(
            529,
            vec![],
            r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#.into(),
        ),
        Reply::Sse(anthropic("Done after waiting.", &[], (10, 0, 0))),
    ])?;
    let env = anthropic_env(&m);
    let mut env = refs(&env);
    env.push(("COVE_PROVIDER", "anthropic"));
    sb.config("[provider]\nretry_base_ms = 50\n")?;
    let out = sb.cove_env(&["run", "go"], &env)?;
    assert!(out.ok, "{out:?}");
    assert!(out.stdout.contains("Done after waiting."));
    assert!(
        out.stderr.contains("HTTP 429") && out.stderr.contains("retry 1"),
        "{}",
        out.stderr
    );
    assert_eq!(m.requests().len(), 3);
    Ok(())
}

#[test]
fn a_server_that_fails_forever_gives_a_clear_error_and_a_whole_transcript() -> TestResult {
    let sb = Sandbox::new()?;
    let fail = Reply::Status(
        500,
        vec![],
        r#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#.into(),
    );
    let m = MockModel::start(vec![fail.clone(), fail.clone(), fail.clone(), fail])?;
    sb.config("[provider]\nretry_base_ms = 10\nmax_attempts = 4\n")?;
    let out = run(&sb, &m, &["run", "go"])?;
    assert!(!out.ok);
    assert!(
        out.stderr.contains("HTTP 500 after 4 attempt(s)") && out.stderr.contains("boom"),
        "{}",
        out.stderr
    );
    let lines = sb.transcripts()?;
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["type"].as_str()).collect();
    assert_eq!(kinds, ["session", "user", "end"]);
    Ok(())
}

#[test]
fn an_api_error_event_mid_stream_is_reported() -> TestResult {
    let sb = Sandbox::new()?;
    let mut events = anthropic("partial", &[], (1, 0, 0));
    events.truncate(4);
    events.push("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"prompt too long\"}}\n\n".into());
    let m = MockModel::start(vec![Reply::Sse(events)])?;
    let out = run(&sb, &m, &["run", "go"])?;
    assert!(!out.ok);
    assert!(
        out.stderr
            .contains("invalid_request_error: prompt too long"),
        "{}",
        out.stderr
    );
    Ok(())
}

#[test]
fn a_small_models_text_tool_call_is_run_over_the_openai_format() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("a.txt", "alpha\n")?;
    let m = MockModel::start(vec![
        Reply::Sse(openai(
            "```json\n{\"name\": \"read\", \"arguments\": {\"file_path\": \"a.txt\"}}\n```",
            &[],
        )),
        Reply::Sse(openai("", &[("call_9", "grep", r#"{"pattern":"alpha"}"#)])),
        Reply::Sse(openai("All read.", &[])),
    ])?;
    let url = format!("{}/v1", m.url);
    let out = sb.cove_env(
        &["run", "--output-format", "json", "go"],
        &[("OPENAI_BASE_URL", &url), ("COVE_MODEL", "qwen-small")],
    )?;
    assert!(out.ok, "{out:?}");
    let v: Value = serde_json::from_str(&out.stdout)?;
    assert_eq!(v["outcome"], "finished");
    assert_eq!(v["result"], "All read.");
    assert_eq!(v["usage"]["cache_read_tokens"], 300);
    let reqs = m.requests();
    assert_eq!(reqs[0].path, "/v1/chat/completions");
    let second = reqs[1].json();
    assert_eq!(second["model"], "qwen-small");
    let msgs = second["messages"].as_array().ok_or("messages")?;
    let tool_msg = msgs
        .iter()
        .find(|m| m["role"] == "tool")
        .ok_or("no tool message")?;
    assert!(tool_msg["content"].as_str().unwrap_or("").contains("alpha"));
    let third = reqs[2].json();
    let tool_msgs: Vec<&Value> = third["messages"]
        .as_array()
        .ok_or("messages")?
        .iter()
        .filter(|m| m["role"] == "tool")
        .collect();
    assert_eq!(tool_msgs.len(), 2);
    assert_eq!(tool_msgs[1]["tool_call_id"], "call_9");
    assert!(third["tools"].as_array().is_some_and(|t| !t.is_empty()));
    assert_eq!(third["stream_options"]["include_usage"], true);
    Ok(())
}

#[test]
fn stream_json_emits_one_event_per_line() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("a.txt", "alpha\n")?;
    let m = MockModel::start(vec![
        Reply::Sse(anthropic(
            "Look:",
            &[("t1", "read", r#"{"file_path":"a.txt"}"#)],
            (100, 0, 80),
        )),
        Reply::Sse(anthropic("Done.", &[], (10, 180, 5))),
    ])?;
    let out = run(&sb, &m, &["run", "--output-format", "stream-json", "go"])?;
    assert!(out.ok, "{out:?}");
    let events: Vec<Value> = out
        .stdout
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"session_start"));
    assert_eq!(kinds.last(), Some(&"end"));
    for k in ["text_delta", "tool_call", "tool_result", "usage"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    let end = events.last().ok_or("no end")?;
    assert_eq!(end["usage"]["cache_read_tokens"], 180);
    assert_eq!(end["usage"]["cache_write_tokens"], 85);
    assert_eq!(end["turns"], 2);
    // One harness measurement: between the first reply and the second request.
    assert_eq!(end["harness_us"].as_array().map(Vec::len), Some(1));
    Ok(())
}

#[test]
fn max_turns_stops_the_loop_and_says_so() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("a.txt", "alpha\n")?;
    let call = || {
        Reply::Sse(anthropic(
            "",
            &[("t", "read", r#"{"file_path":"a.txt"}"#)],
            (1, 0, 0),
        ))
    };
    let m = MockModel::start(vec![call(), call(), call()])?;
    let out = run(&sb, &m, &["run", "--max-turns", "2", "loop"])?;
    assert!(!out.ok);
    assert!(out.stderr.contains("limit of 2 turns"), "{}", out.stderr);
    assert_eq!(m.requests().len(), 2);
    Ok(())
}

#[test]
fn without_a_provider_run_says_how_to_configure_one() -> TestResult {
    let sb = Sandbox::new()?;
    let out = sb.cove(&["run", "hello"])?;
    let err = out.err();
    assert!(
        err.contains("ANTHROPIC_API_KEY")
            && err.contains("OPENAI_BASE_URL")
            && err.contains("cove demo"),
        "{err}"
    );
    Ok(())
}

#[test]
fn kill_9_mid_turn_then_resume_keeps_earlier_turns() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("a.txt", "alpha\n")?;
    let m = MockModel::start(vec![
        Reply::Sse(anthropic(
            "First I read.",
            &[("t1", "read", r#"{"file_path":"a.txt"}"#)],
            (10, 0, 0),
        )),
        Reply::Hang,
        Reply::Sse(anthropic("Resumed and done.", &[], (10, 0, 0))),
    ])?;
    let mut child = start(&sb, &m, &["run", "read a.txt"], true)?;
    // Once the second request (the one that hangs) has arrived, kill -9.
    m.wait_for_requests(2);
    child.kill()?;
    child.wait()?;
    let lines = sb.transcripts()?;
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["type"].as_str()).collect();
    assert_eq!(kinds, ["session", "user", "assistant", "tool_results"]);
    let id = lines[0]["id"].as_str().ok_or("id")?.to_string();
    let list = sb.cove(&["sessions", "list"])?;
    assert!(
        list.out().contains(&id) && list.stdout.contains("read a.txt"),
        "{}",
        list.stdout
    );
    let out = run(&sb, &m, &["run", "--resume", &id, "carry on"])?;
    assert!(out.ok, "{out:?}");
    assert!(out.stdout.contains("Resumed and done."));
    let last = m.requests().last().cloned().ok_or("no request")?.json();
    let msgs = last["messages"].as_array().ok_or("messages")?;
    assert_eq!(msgs[0]["content"][0]["text"], "read a.txt");
    assert_eq!(msgs[1]["content"][1]["id"], "t1");
    assert_eq!(msgs[2]["content"][0]["tool_use_id"], "t1");
    assert_eq!(msgs[3]["content"][0]["text"], "carry on");
    // --continue picks the same session.
    let m2 = MockModel::start(vec![Reply::Sse(anthropic("again", &[], (1, 0, 0)))])?;
    let out = run(&sb, &m2, &["run", "--continue", "once more"])?;
    assert!(out.ok && out.stderr.contains(&id), "{out:?}");
    Ok(())
}

/// A 30-turn session of reads and edits: every request keeps the previous one's prefix, so the
/// simulated prompt cache serves most input tokens.
#[test]
fn a_thirty_turn_session_keeps_the_cache_warm() -> TestResult {
    let sb = Sandbox::new()?;
    let replies = crate::mock_model::thirty_turn_session(&sb.repo())?;
    let m = MockModel::start(replies)?;
    let out = run(
        &sb,
        &m,
        &[
            "run",
            "--output-format",
            "json",
            "--max-turns",
            "40",
            "--yes",
            "work through the files",
        ],
    )?;
    assert!(out.ok, "{out:?}");
    let v: Value = serde_json::from_str(&out.stdout)?;
    assert_eq!(v["turns"], 30);
    let reqs = m.requests();
    assert_eq!(reqs.len(), 30);
    assert_every_call_answered(&reqs);
    assert_prefix_stable(&reqs);
    let share = v["cache_read_share"].as_f64().unwrap_or(0.0);
    assert!(share >= 0.9, "cache-read share {share}");
    assert_eq!(sb.read("f2.txt")?, "VALUE 2\n");
    Ok(())
}

#[test]
fn ctrl_c_cancels_the_turn_and_keeps_the_transcript_whole() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("a.txt", "alpha\n")?;
    let m = MockModel::start(vec![
        Reply::Sse(anthropic(
            "",
            &[("t1", "read", r#"{"file_path":"a.txt"}"#)],
            (10, 0, 0),
        )),
        Reply::Hang,
    ])?;
    let child = start(&sb, &m, &["run", "go"], false)?;
    m.wait_for_requests(2);
    let out = crate::support::interrupt(child)?;
    assert!(String::from_utf8_lossy(&out.stderr).contains("cancelled"));
    let lines = sb.transcripts()?;
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["type"].as_str()).collect();
    assert_eq!(
        kinds,
        ["session", "user", "assistant", "tool_results", "end"]
    );
    assert_eq!(lines[4]["outcome"], "cancelled");
    Ok(())
}

/// A turn that edits a file and then runs a long command, stopped during the command.
fn edit_then_sleep(sb: &Sandbox) -> Result<MockModel, Box<dyn std::error::Error>> {
    sb.write("a.txt", "alpha\n")?;
    Ok(MockModel::start(vec![
        Reply::Sse(anthropic(
            "",
            &[
                (
                    "t1",
                    "edit",
                    r#"{"file_path":"a.txt","old_string":"alpha","new_string":"beta"}"#,
                ),
                ("t2", "bash", r#"{"command":"touch started; sleep 30"}"#),
                ("t3", "bash", r#"{"command":"touch never"}"#),
            ],
            (10, 0, 0),
        )),
        Reply::Sse(anthropic("Picked up.", &[], (10, 0, 0))),
    ])?)
}

/// Wait until the long command has begun.
fn wait_for(path: &std::path::Path) {
    let started = std::time::Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The tool results the resumed session sent for t1, t2, t3.
fn resumed_answers(m: &MockModel) -> Result<Vec<(String, bool)>, Box<dyn std::error::Error>> {
    let last = m.requests().last().cloned().ok_or("no request")?.json();
    let msgs = last["messages"].as_array().ok_or("messages")?;
    let results = msgs
        .iter()
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .filter(|b| b["type"] == "tool_result")
        .map(|b| {
            (
                b["content"].as_str().unwrap_or_default().to_string(),
                b["is_error"] == true,
            )
        })
        .collect();
    Ok(results)
}

#[test]
fn after_ctrl_c_mid_tools_the_transcript_says_what_ran() -> TestResult {
    let sb = Sandbox::new()?;
    let m = edit_then_sleep(&sb)?;
    let child = start(&sb, &m, &["run", "--yes", "go"], false)?;
    wait_for(&sb.repo().join("started"));
    crate::support::interrupt(child)?;
    let lines = sb.transcripts()?;
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["type"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "session",
            "user",
            "assistant",
            "tool_start",
            "tool_done",
            "tool_start",
            "tool_done",
            "tool_results",
            "end"
        ]
    );
    assert_eq!(sb.read("a.txt")?, "beta\n");
    assert!(!sb.repo().join("never").exists());
    // Resumed, the model learns that the edit happened, the command was cut short and the
    // last call never ran.
    let id = lines[0]["id"].as_str().ok_or("id")?.to_string();
    let out = run(&sb, &m, &["run", "--resume", &id, "go on"])?;
    assert!(out.ok, "{out:?}");
    let answers = resumed_answers(&m)?;
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert!(
        answers[0].0.contains("Edited a.txt") && !answers[0].1,
        "{answers:?}"
    );
    assert!(answers[1].1 && answers[2].1, "{answers:?}");
    assert!(answers[2].0.contains("not run"), "{answers:?}");
    Ok(())
}

#[test]
fn after_kill_9_mid_tools_a_resume_neither_repeats_nor_forgets() -> TestResult {
    let sb = Sandbox::new()?;
    let m = edit_then_sleep(&sb)?;
    let mut child = start(&sb, &m, &["run", "--yes", "go"], true)?;
    wait_for(&sb.repo().join("started"));
    child.kill()?;
    child.wait()?;
    let lines = sb.transcripts()?;
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["type"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "session",
            "user",
            "assistant",
            "tool_start",
            "tool_done",
            "tool_start"
        ]
    );
    let id = lines[0]["id"].as_str().ok_or("id")?.to_string();
    let out = run(&sb, &m, &["run", "--resume", &id, "go on"])?;
    assert!(out.ok, "{out:?}");
    let answers = resumed_answers(&m)?;
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert!(
        answers[0].0.contains("Edited a.txt") && !answers[0].1,
        "{answers:?}"
    );
    assert!(
        answers[1].0.starts_with("interrupted") && answers[1].1,
        "{answers:?}"
    );
    assert!(
        answers[2].0.starts_with("not run") && answers[2].1,
        "{answers:?}"
    );
    Ok(())
}

#[test]
fn a_damaged_line_in_the_middle_is_reported_on_resume() -> TestResult {
    let sb = Sandbox::new()?;
    let m = MockModel::start(vec![
        Reply::Sse(anthropic("One.", &[], (10, 0, 0))),
        Reply::Sse(anthropic("Two.", &[], (10, 0, 0))),
    ])?;
    assert!(run(&sb, &m, &["run", "first"])?.ok);
    let lines = sb.transcripts()?;
    let id = lines[0]["id"].as_str().ok_or("id")?.to_string();
    let path = sb.tmp.path().join(format!("data/sessions/{id}.jsonl"));
    let text = std::fs::read_to_string(&path)?;
    let mut damaged: Vec<String> = text.lines().map(str::to_string).collect();
    damaged[1] = damaged[1].replace("\"type\"", "\"typ");
    std::fs::write(&path, damaged.join("\n") + "\n")?;
    let out = run(&sb, &m, &["run", "--resume", &id, "second"])?;
    assert!(out.ok, "{out:?}");
    assert!(
        out.stderr.contains("line 2 is damaged") && out.stderr.contains("left out"),
        "{}",
        out.stderr
    );
    Ok(())
}

#[test]
fn chat_reads_prompts_until_end_of_input() -> TestResult {
    use std::io::Write;
    let sb = Sandbox::new()?;
    let m = MockModel::start(vec![
        Reply::Sse(anthropic("Hello there.", &[], (10, 0, 0))),
        Reply::Sse(anthropic("Second answer.", &[], (10, 0, 0))),
    ])?;
    let env = anthropic_env(&m);
    let env = refs(&env);
    let mut child = sb
        .command(&sb.repo(), &[], &env)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or("stdin")?;
    stdin.write_all(b"hi\nand again\n")?;
    drop(stdin);
    let out = child.wait_with_output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Hello there.") && stdout.contains("Second answer."),
        "{stdout}"
    );
    // The second request carries the first exchange.
    let second = m.requests()[1].json();
    assert_eq!(second["messages"].as_array().map(Vec::len), Some(3));
    Ok(())
}

#[test]
fn a_transcript_that_cannot_be_written_is_a_clear_error_before_anything_runs() -> TestResult {
    let sb = Sandbox::new()?;
    let m = MockModel::start(vec![Reply::Sse(anthropic("never", &[], (1, 0, 0)))])?;
    // The data directory is a file: nothing can be created under it.
    let blocker = sb.tmp.path().join("not-a-dir");
    std::fs::write(&blocker, "x")?;
    let blocker = blocker.to_string_lossy().into_owned();
    let env = anthropic_env(&m);
    let mut env = refs(&env);
    env.push(("COVE_DATA_DIR", &blocker));
    let out = sb.cove_env(&["run", "go"], &env)?;
    assert!(
        out.err().contains("cannot write the transcript"),
        "{}",
        out.stderr
    );
    assert!(
        m.requests().is_empty(),
        "no model request without a transcript"
    );
    Ok(())
}

/// A turn of many parallel calls adds more blocks than Anthropic looks back from one breakpoint
/// (about 20): the next request must still read the previous one from the cache.
#[test]
fn a_wide_turn_of_parallel_calls_still_reads_the_cache() -> TestResult {
    let sb = Sandbox::new()?;
    let mut calls = Vec::new();
    for i in 0..15 {
        sb.write(&format!("f{i}.txt"), format!("file {i}\n"))?;
        calls.push((
            format!("toolu_{i}"),
            "read".to_string(),
            format!(r#"{{"file_path":"f{i}.txt"}}"#),
        ));
    }
    let again: Vec<(String, String, String)> = calls
        .iter()
        .map(|(id, n, i)| (format!("{id}_again"), n.clone(), i.clone()))
        .collect();
    let m = MockModel::start(vec![
        Reply::AnthropicCached("Reading them all.".into(), calls),
        Reply::AnthropicCached("Once more.".into(), again),
        Reply::AnthropicCached("Done.".into(), vec![]),
    ])?;
    let out = run(
        &sb,
        &m,
        &["run", "--output-format", "stream-json", "read all"],
    )?;
    assert!(out.ok, "{out:?}");
    let turns: Vec<Value> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["type"] == "usage")
        .map(|e| e["turn"].clone())
        .collect();
    assert_eq!(turns.len(), 3, "{}", out.stdout);
    let reqs = m.requests();
    // Each request reads back all of the one before it, up to its last breakpoint, though a
    // whole wide turn (30 blocks) lies between.
    for n in 1..3 {
        let before = crate::mock_model::unmarked(&reqs[n - 1].body)
            .1
            .last()
            .copied()
            .unwrap_or(0) as u64
            / 4;
        let read = turns[n]["cache_read_tokens"].as_u64().unwrap_or(0);
        assert!(
            read >= before,
            "request {} read {read} tokens from the cache; the one before cached {before}",
            n + 1
        );
    }
    assert_prefix_stable(&reqs);
    Ok(())
}
