//! Small local models: constrained mode's schema, the `small` profile, honest endings and the
//! flags, end to end against a local server speaking the OpenAI wire format (as llama.cpp,
//! Ollama and vLLM do).

use crate::mock_model::{MockModel, Reply, anthropic, openai, openai_ending};
use crate::support::{Sandbox, TestResult};
use serde_json::Value;

fn run_openai(
    sb: &Sandbox,
    m: &MockModel,
    args: &[&str],
) -> Result<crate::support::Run, std::io::Error> {
    let url = format!("{}/v1", m.url);
    sb.cove_env(args, &[("OPENAI_BASE_URL", &url), ("COVE_MODEL", "qwen")])
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// The `arguments` schema of `tool` in a constrained request.
fn arguments_of<'a>(body: &'a Value, tool: &str) -> Option<&'a Value> {
    body["response_format"]["json_schema"]["schema"]["anyOf"]
        .as_array()?
        .iter()
        .find(|o| o["properties"]["name"]["enum"][0] == tool)
        .map(|o| &o["properties"]["arguments"])
}

/// The names a constrained request lets the model call, in the schema's order.
fn constrained_names(body: &Value) -> Vec<&str> {
    body["response_format"]["json_schema"]["schema"]["anyOf"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["properties"]["name"]["enum"][0].as_str())
        .collect()
}

fn system_of(body: &Value) -> String {
    body["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn constrained_mode_sends_a_self_contained_ordered_schema_and_describes_the_tools() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("a.txt", "alpha\n")?;
    sb.config("[provider]\nconstrained = true\n")?;
    let m = MockModel::start(vec![
        Reply::Sse(openai(
            r#"{"name":"read","arguments":{"file_path":"a.txt"}}"#,
            &[],
        )),
        Reply::Sse(openai(
            r#"{"name":"final_answer","arguments":{"text":"It says alpha."}}"#,
            &[],
        )),
    ])?;
    let out = run_openai(&sb, &m, &["run", "go"])?;
    assert!(out.ok, "{out:?}");
    assert!(out.stdout.contains("It says alpha."), "{}", out.stdout);
    let first = m.requests()[0].json();
    let schema = &first["response_format"]["json_schema"]["schema"];
    let text = schema.to_string();
    // llama.cpp refused the grep tool's `$ref` once nested under the wrapper.
    assert!(!text.contains("$ref") && !text.contains("$defs"), "{text}");
    let names = constrained_names(&first);
    for tool in [
        "bash",
        "edit",
        "glob",
        "grep",
        "ls",
        "read",
        "write",
        "final_answer",
    ] {
        assert!(names.contains(&tool), "{tool} missing from {names:?}");
    }
    for o in schema["anyOf"].as_array().ok_or("anyOf")? {
        assert_eq!(keys(&o["properties"]), ["name", "arguments"], "{o}");
    }
    let edit = arguments_of(&first, "edit").ok_or("edit")?;
    assert_eq!(
        keys(&edit["properties"]),
        ["file_path", "old_string", "new_string", "replace_all"]
    );
    let grep = arguments_of(&first, "grep").ok_or("grep")?;
    assert_eq!(keys(&grep["properties"])[0], "pattern");
    assert_eq!(
        grep["properties"]["output_mode"]["enum"],
        serde_json::json!(["content", "files_with_matches", "count"])
    );
    // No `tools` field beside the grammar, so the system prompt says what each tool takes.
    assert!(first.get("tools").is_none());
    let system = system_of(&first);
    assert!(
        system.contains("- read(file_path, offset?: integer, limit?: integer): Read a text file."),
        "{system}"
    );
    assert!(
        system.contains("- edit(file_path, old_string, new_string, replace_all?: boolean)"),
        "{system}"
    );
    assert!(system.contains("final_answer"), "{system}");
    Ok(())
}

#[test]
fn a_reply_cut_at_max_tokens_is_retold_then_ends_as_max_tokens_not_finished() -> TestResult {
    let sb = Sandbox::new()?;
    let m = MockModel::start(vec![
        Reply::Sse(openai_ending(
            r#"{"name":"write","arguments":{"file_path":"a.txt","content":"aaa"#,
            &[],
            Some("length"),
        )),
        Reply::Sse(openai_ending(
            "I will now write a very long",
            &[],
            Some("length"),
        )),
    ])?;
    let out = run_openai(&sb, &m, &["run", "--output-format", "json", "go"])?;
    assert_eq!(out.code, Some(3), "{out:?}");
    let v: Value = serde_json::from_str(&out.stdout)?;
    assert_eq!(v["outcome"], "max_tokens");
    assert!(
        v["detail"].as_str().unwrap_or("").contains("--max-tokens"),
        "{v}"
    );
    assert!(!sb.repo().join("a.txt").exists(), "a cut call never runs");
    let reqs = m.requests();
    assert_eq!(reqs.len(), 2);
    let msgs = reqs[1].json()["messages"].clone();
    let last = msgs.as_array().and_then(|m| m.last()).ok_or("messages")?;
    assert_eq!(last["role"], "user");
    assert!(
        last["content"]
            .as_str()
            .unwrap_or("")
            .contains("cut off at the limit of 8192 output tokens"),
        "{last}"
    );
    Ok(())
}

#[test]
fn a_cut_reply_followed_by_an_answer_finishes() -> TestResult {
    let sb = Sandbox::new()?;
    let m = MockModel::start(vec![
        Reply::Sse(openai_ending("Let me expl", &[], Some("length"))),
        Reply::Sse(openai("Short answer.", &[])),
    ])?;
    let out = run_openai(&sb, &m, &["run", "--output-format", "json", "go"])?;
    assert!(out.ok, "{out:?}");
    let v: Value = serde_json::from_str(&out.stdout)?;
    assert_eq!(v["outcome"], "finished");
    Ok(())
}

#[test]
fn a_malformed_text_call_is_answered_with_the_format_a_bounded_number_of_times() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("a.txt", "alpha\n")?;
    let broken = r#"{"name": "read", "arguments": {"file_path": "a.txt"}"#;
    let m = MockModel::start(vec![
        Reply::Sse(openai(broken, &[])),
        Reply::Sse(openai(
            r#"{"name": "cat", "arguments": {"file_path": "a.txt"}}"#,
            &[],
        )),
        Reply::Sse(openai(broken, &[])),
        Reply::Sse(openai("never asked for", &[])),
    ])?;
    let out = run_openai(&sb, &m, &["run", "--output-format", "json", "go"])?;
    assert_eq!(out.code, Some(1), "{out:?}");
    let v: Value = serde_json::from_str(&out.stdout)?;
    assert_eq!(v["outcome"], "failed");
    assert!(
        v["detail"]
            .as_str()
            .unwrap_or("")
            .contains("3 malformed tool calls in a row"),
        "{v}"
    );
    let reqs = m.requests();
    assert_eq!(reqs.len(), 3, "the run stops at the bound");
    let note = |i: usize| -> String {
        let b = reqs[i].json();
        b["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    let first = note(1);
    assert!(first.contains("not valid JSON"), "{first}");
    assert!(
        first.contains(r#"{"name": "<tool>", "arguments": {…}}"#),
        "{first}"
    );
    assert!(first.contains("- read(file_path"), "{first}");
    assert!(note(2).contains("no tool called `cat`"), "{}", note(2));
    Ok(())
}

#[test]
fn text_parsed_calls_get_unique_ids() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("a.txt", "alpha\n")?;
    let call = r#"{"name":"read","arguments":{"file_path":"a.txt"}}"#;
    let m = MockModel::start(vec![
        Reply::Sse(openai(call, &[])),
        Reply::Sse(openai(call, &[])),
        Reply::Sse(openai("Read twice.", &[])),
    ])?;
    let out = run_openai(&sb, &m, &["run", "go"])?;
    assert!(out.ok, "{out:?}");
    let third = m.requests()[2].json();
    let ids: Vec<String> = third["messages"]
        .as_array()
        .ok_or("messages")?
        .iter()
        .filter(|m| m["role"] == "tool")
        .filter_map(|m| m["tool_call_id"].as_str().map(String::from))
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    Ok(())
}

#[test]
fn flags_set_constrained_mode_max_tokens_and_temperature() -> TestResult {
    let sb = Sandbox::new()?;
    let m = MockModel::start(vec![Reply::Sse(openai(
        r#"{"name":"final_answer","arguments":{"text":"ok"}}"#,
        &[],
    ))])?;
    let out = run_openai(
        &sb,
        &m,
        &[
            "run",
            "--constrained",
            "--max-tokens",
            "321",
            "--temperature",
            "0.2",
            "go",
        ],
    )?;
    assert!(out.ok, "{out:?}");
    let first = m.requests()[0].json();
    assert_eq!(first["max_tokens"], 321);
    assert!((first["temperature"].as_f64().unwrap_or(9.0) - 0.2).abs() < 1e-6);
    assert_eq!(first["response_format"]["type"], "json_schema");
    Ok(())
}

#[test]
fn the_small_profile_is_lean() -> TestResult {
    let sb = Sandbox::new()?;
    let m = MockModel::start(vec![Reply::Sse(openai(
        r#"{"name":"final_answer","arguments":{"text":"ok"}}"#,
        &[],
    ))])?;
    let out = run_openai(&sb, &m, &["run", "--profile", "small", "go"])?;
    assert!(out.ok, "{out:?}");
    let first = m.requests()[0].json();
    assert_eq!(first["temperature"], 0.0);
    assert_eq!(first["max_tokens"], 2048);
    let names = constrained_names(&first);
    assert_eq!(
        names,
        [
            "bash",
            "edit",
            "grep",
            "ls",
            "read",
            "write",
            "final_answer"
        ]
    );
    let system = system_of(&first);
    assert_eq!(
        system.matches("- read(").count(),
        1,
        "tools listed once: {system}"
    );
    assert!(!system.contains("- glob("), "{system}");
    // The whole first request, tools included, is a few hundred tokens.
    assert!(system.len() < 2000, "{} bytes: {system}", system.len());
    Ok(())
}

#[test]
fn a_small_model_on_a_local_runtime_gets_the_small_profile_and_is_told() -> TestResult {
    let sb = Sandbox::new()?;
    let m = MockModel::start(vec![Reply::Sse(openai(
        r#"{"name":"final_answer","arguments":{"text":"ok"}}"#,
        &[],
    ))])?;
    // What llama-server answers to GET /v1/models.
    m.set_models(
        r#"{"models":[{"name":"qwen.gguf","model":"qwen.gguf"}],"object":"list","data":[{"id":"qwen.gguf","object":"model","created":1764576000,"owned_by":"llamacpp","meta":{"vocab_type":2,"n_vocab":151936,"n_ctx_train":32768,"n_embd":1536,"n_params":1543714304,"size":1117320736}}]}"#,
    );
    let out = run_openai(&sb, &m, &["run", "go"])?;
    assert!(out.ok, "{out:?}");
    assert!(
        out.stderr
            .contains("profile small: llama.cpp serves qwen (1.5B parameters)"),
        "{}",
        out.stderr
    );
    let first = m.requests()[0].json();
    assert_eq!(first["temperature"], 0.0);
    assert_eq!(first["response_format"]["type"], "json_schema");
    // A big model on the same runtime keeps the default profile.
    m.set_models(r#"{"object":"list","data":[{"id":"big.gguf","owned_by":"llamacpp","meta":{"n_params":32763876352}}]}"#);
    let m2 = MockModel::start(vec![Reply::Sse(openai("ok", &[]))])?;
    m2.set_models(r#"{"object":"list","data":[{"id":"big.gguf","owned_by":"llamacpp","meta":{"n_params":32763876352}}]}"#);
    let out = run_openai(&sb, &m2, &["run", "go"])?;
    assert!(out.ok, "{out:?}");
    assert!(!out.stderr.contains("profile small"), "{}", out.stderr);
    assert!(m2.requests()[0].json().get("tools").is_some());
    Ok(())
}

#[test]
fn a_server_error_about_a_tool_schema_names_the_plugin_and_tool() -> TestResult {
    let sb = Sandbox::new()?;
    let m = MockModel::start(vec![Reply::Status(
        400,
        vec![],
        r#"{"error":{"code":400,"message":"JSON schema conversion failed:\ncannot resolve $ref #/$defs/OutputMode, $defs not found","type":"invalid_request_error"}}"#.into(),
    )])?;
    let out = run_openai(&sb, &m, &["run", "go"])?;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("tool `grep` (plugin `search`)"),
        "{}",
        out.stderr
    );
    // About tools, but no tool's: no plugin is blamed.
    let m = MockModel::start(vec![Reply::Status(
        400,
        vec![],
        r#"{"error":{"code":400,"message":"tools param requires --jinja flag","type":"invalid_request_error"}}"#.into(),
    )])?;
    let out = run_openai(&sb, &m, &["run", "go"])?;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("--jinja") && !out.stderr.contains("plugin `"),
        "{}",
        out.stderr
    );
    Ok(())
}

#[test]
fn the_first_request_stays_within_12_kb_of_tools_and_system_prompt() -> TestResult {
    let sb = Sandbox::new()?;
    let m = MockModel::start(vec![
        Reply::Sse(openai("ok", &[])),
        Reply::Sse(openai(
            r#"{"name":"final_answer","arguments":{"text":"ok"}}"#,
            &[],
        )),
    ])?;
    assert!(run_openai(&sb, &m, &["run", "go"])?.ok);
    let out = run_openai(&sb, &m, &["run", "--constrained", "go"])?;
    assert!(out.ok, "{out:?}");
    for req in m.requests() {
        let b = req.json();
        let size = system_of(&b).len()
            + b.get("tools").map_or(0, |t| t.to_string().len())
            + b.get("response_format").map_or(0, |t| t.to_string().len());
        assert!(size <= 12 * 1024, "{size} bytes");
    }
    Ok(())
}

#[test]
fn a_number_or_boolean_written_as_a_string_is_taken_as_one() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("a.txt", "one\ntwo\nthree\n")?;
    let out = sb.cove(&[
        "tools",
        "call",
        "read",
        r#"{"file_path":"a.txt","offset":"2","limit":"1"}"#,
    ])?;
    assert!(out.ok, "{out:?}");
    assert!(
        out.stdout.contains("two") && !out.stdout.contains("three"),
        "{}",
        out.stdout
    );
    let out = sb.cove(&[
        "tools",
        "call",
        "read",
        r#"{"file_path":"a.txt","limit":"many"}"#,
    ])?;
    assert!(
        !out.ok && out.stderr.contains("does not match its schema"),
        "{out:?}"
    );
    Ok(())
}

/// Replies recorded from a real small model (llama.cpp serving Qwen2.5-Coder, by
/// `scripts/bench-small.sh` with RECORD set), replayed byte for byte over the same wire: the
/// parsing, schema and profile paths must still turn them into the same fix.
#[test]
fn recorded_small_model_sessions_still_fix_their_bugs() -> TestResult {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/small-models");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let f: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        let sb = Sandbox::new()?;
        for (name, text) in f["files"].as_object().ok_or("files")? {
            sb.write(name, text.as_str().unwrap_or_default())?;
        }
        let replies: Vec<Reply> = f["replies"]
            .as_array()
            .ok_or("replies")?
            .iter()
            .map(|r| Reply::Sse(vec![r.as_str().unwrap_or_default().to_string()]))
            .collect();
        let n = replies.len();
        let m = MockModel::start(replies)?;
        m.set_models(f["models"].as_str().unwrap_or("{}"));
        let mut args = vec!["run", "--output-format", "json", "--policy", "trusted"];
        args.push(f["prompt"].as_str().unwrap_or("go"));
        let out = match f["endpoint"].as_str() {
            Some("anthropic") => run_anthropic(&sb, &m, &args)?,
            _ => run_openai(&sb, &m, &args)?,
        };
        let v: Value = serde_json::from_str(&out.stdout)?;
        assert_eq!(v["outcome"], f["outcome"], "{}: {out:?}", path.display());
        assert_eq!(m.requests().len(), n, "{}", path.display());
        for (name, text) in f["expect"].as_object().ok_or("expect")? {
            assert_eq!(
                sb.read(name)?,
                text.as_str().unwrap_or_default(),
                "{}",
                path.display()
            );
        }
        seen += 1;
    }
    assert!(seen > 0, "no fixtures in {}", dir.display());
    Ok(())
}

#[test]
fn a_failing_call_repeated_word_for_word_is_told_so() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("calc.py", "def add(a, b):\n    return a - b\n")?;
    let edit = r#"{"name":"edit","arguments":{"file_path":"calc.py","old_string":"assert 1 + 1 == 2","new_string":"x"}}"#;
    let m = MockModel::start(vec![
        Reply::Sse(openai(edit, &[])),
        Reply::Sse(openai(edit, &[])),
        Reply::Sse(openai("Giving up.", &[])),
    ])?;
    let out = run_openai(&sb, &m, &["run", "--yes", "go"])?;
    assert!(out.ok, "{out:?}");
    let result = |i: usize| -> String {
        let b = m.requests()[i].json();
        b["messages"]
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["role"] == "tool"))
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    assert!(!result(1).contains("exact call before"), "{}", result(1));
    assert!(result(2).contains("exact call before"), "{}", result(2));
    Ok(())
}

/// What llama-server answers to `GET /v1/models` for the 1.5B.
const LLAMA_MODELS: &str = r#"{"object":"list","data":[{"id":"qwen.gguf","object":"model","owned_by":"llamacpp","meta":{"n_ctx":8192,"n_params":1543714304}}]}"#;

fn run_anthropic(
    sb: &Sandbox,
    m: &MockModel,
    args: &[&str],
) -> Result<crate::support::Run, std::io::Error> {
    sb.cove_env(
        args,
        &[("ANTHROPIC_BASE_URL", &m.url), ("COVE_MODEL", "qwen")],
    )
}

/// llama.cpp serves the Messages API too (`/v1/messages`). A small model behind it gets the
/// small profile, chosen from the same `GET /v1/models`; its replies cannot be constrained
/// there, so what it writes as a JSON call in text is read as one, and the user is told how it
/// runs.
#[test]
fn a_small_model_behind_the_messages_api_gets_the_small_profile_and_its_text_calls() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("calc.py", "def add(a, b):\n    return a - b\n")?;
    let edit = r#"{"name": "edit", "arguments": {"file_path": "calc.py", "old_string": "a - b", "new_string": "a + b"}}"#;
    let m = MockModel::start(vec![
        Reply::Sse(anthropic(
            &format!("```json\n{edit}\n```"),
            &[],
            (300, 0, 0),
        )),
        Reply::Sse(anthropic(
            r#"{"name": "final_answer", "arguments": {"text": "Fixed add."}}"#,
            &[],
            (40, 300, 0),
        )),
    ])?;
    m.set_models(LLAMA_MODELS);
    let out = run_anthropic(&sb, &m, &["run", "--yes", "fix calc.py"])?;
    assert!(out.ok, "{out:?}");
    assert!(
        out.stderr.contains(
            "profile small: llama.cpp serves qwen (1.5B parameters), so cove uses a lean prompt, few tools, calls read from text"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(sb.read("calc.py")?, "def add(a, b):\n    return a + b\n");
    // The final answer is the answer, not JSON.
    assert!(out.stdout.contains("Fixed add."), "{}", out.stdout);
    assert!(!out.stdout.contains("final_answer"), "{}", out.stdout);
    let reqs = m.requests();
    assert_eq!(reqs.len(), 2);
    let first = reqs[0].json();
    assert_eq!(first["temperature"], 0.0);
    assert_eq!(first["max_tokens"], 2048);
    assert!(first.get("response_format").is_none(), "{first}");
    let names: Vec<&str> = first["tools"]
        .as_array()
        .ok_or("tools")?
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["bash", "edit", "grep", "ls", "read", "write"]);
    let system = first["system"][0]["text"].as_str().unwrap_or_default();
    assert!(system.contains("Files: calc.py\n"), "{system}");
    assert!(system.contains("not its tests"), "{system}");
    // The call went back to the server as a tool_use with its result.
    let second = reqs[1].json();
    let text = second["messages"].to_string();
    assert!(
        text.contains(r#""type":"tool_use","id":"call_text_1","name":"edit""#),
        "{text}"
    );
    assert!(text.contains("Edited"), "{text}");
    Ok(())
}

/// `text_tool_calls = false` keeps a JSON-looking reply as text on the Messages API too: shown
/// to the user as it came, nothing run.
#[test]
fn text_calls_can_be_switched_off_on_the_messages_api() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("x", "secret plan\n")?;
    sb.config("[provider]\ntext_tool_calls = false\n")?;
    sb.trust()?;
    let reply = r#"{"name": "read", "arguments": {"file_path": "x"}}"#;
    let m = MockModel::start(vec![Reply::Sse(anthropic(reply, &[], (10, 0, 0)))])?;
    m.set_models(LLAMA_MODELS);
    let out = run_anthropic(&sb, &m, &["run", "--yes", "go"])?;
    assert!(out.ok, "{out:?}");
    assert!(out.stdout.contains(reply), "{}", out.stdout);
    assert_eq!(m.requests().len(), 1);
    Ok(())
}

/// Constrained replies need a grammar, which only the OpenAI-compatible endpoint can carry:
/// asked for on the Messages API, the run refuses before any request, saying what to do.
#[test]
fn constrained_mode_on_the_messages_api_is_refused_with_what_to_do() -> TestResult {
    let sb = Sandbox::new()?;
    let m = MockModel::start(vec![Reply::Sse(anthropic("hi", &[], (1, 0, 0)))])?;
    let out = run_anthropic(&sb, &m, &["run", "--constrained", "go"])?;
    assert!(!out.ok, "{out:?}");
    assert!(
        out.stderr
            .contains("constrained replies need an OpenAI-compatible server"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("provider `openai`"), "{}", out.stderr);
    assert!(m.requests().is_empty());
    Ok(())
}

/// `[provider] small_tools` chooses the small profile's tools; a name no plugin offers is
/// reported, not silently dropped.
#[test]
fn small_tools_chooses_the_small_profiles_tools() -> TestResult {
    let sb = Sandbox::new()?;
    sb.config("[provider]\nsmall_tools = [\"read\", \"outline\", \"nope\"]\n")?;
    sb.trust()?;
    let m = MockModel::start(vec![Reply::Sse(openai(
        r#"{"name":"final_answer","arguments":{"text":"ok"}}"#,
        &[],
    ))])?;
    let out = run_openai(&sb, &m, &["run", "--profile", "small", "go"])?;
    assert!(out.ok, "{out:?}");
    assert!(
        out.stderr
            .contains("small_tools names `nope`, which no loaded plugin offers"),
        "{}",
        out.stderr
    );
    let first = m.requests()[0].json();
    let names = constrained_names(&first);
    assert_eq!(names, ["outline", "read", "final_answer"]);
    let system = system_of(&first);
    assert!(system.contains("- outline("), "{system}");
    assert!(!system.contains("- bash("), "{system}");
    Ok(())
}

/// Ollama's `/v1/models` gives no size, and its model names often give none either
/// (`qwen2.5-coder` is the 7B, `qwen2.5-coder:1.5b` says it); its own `POST /api/show` does.
#[test]
fn ollama_is_asked_the_size_its_models_list_leaves_out() -> TestResult {
    let sb = Sandbox::new()?;
    let answer = || {
        Reply::Sse(openai(
            r#"{"name":"final_answer","arguments":{"text":"ok"}}"#,
            &[],
        ))
    };
    let m = MockModel::start(vec![answer(), answer()])?;
    // What Ollama 0.12 answers to GET /v1/models and POST /api/show.
    m.set_models(r#"{"object":"list","data":[{"id":"coder","object":"model","created":1764576000,"owned_by":"library"}]}"#);
    m.set_answer(
        "/api/show",
        r#"{"details":{"parent_model":"","format":"gguf","family":"qwen2","families":["qwen2"],"parameter_size":"1.5B","quantization_level":"Q4_K_M"},"capabilities":["completion","tools"]}"#,
    );
    let run = |model: &str| {
        let url = format!("{}/v1", m.url);
        sb.cove_env(
            &["run", "go"],
            &[("OPENAI_BASE_URL", &url), ("COVE_MODEL", model)],
        )
    };
    let out = run("coder")?;
    assert!(out.ok, "{out:?}");
    assert!(
        out.stderr
            .contains("profile small: Ollama serves coder (1.5B parameters)"),
        "{}",
        out.stderr
    );
    m.set_answer(
        "/api/show",
        r#"{"details":{"family":"qwen2","parameter_size":"32.8B"}}"#,
    );
    let out = run("coder")?;
    assert!(out.ok, "{out:?}");
    assert!(!out.stderr.contains("profile small"), "{}", out.stderr);
    Ok(())
}

/// A small model that reads a file again wants the file: told "unchanged since turn 1" instead,
/// the 1.5B gave up and claimed a fix. The default profile keeps the pointer (it saves context).
#[test]
fn the_small_profile_answers_a_repeated_read_with_the_file() -> TestResult {
    let sb = Sandbox::new()?;
    // Long enough to be worth pointing at (200 bytes or more).
    let body: String = (0..12).map(|i| format!("# note {i}\n")).collect();
    sb.write(
        "calc.py",
        format!("{body}def add(a, b):\n    return a - b\n"),
    )?;
    let read = r#"{"name":"read","arguments":{"file_path":"calc.py"}}"#;
    for (profile, pointer) in [("small", false), ("default", true)] {
        let m = MockModel::start(vec![
            Reply::Sse(openai(read, &[])),
            Reply::Sse(openai(read, &[])),
            Reply::Sse(openai(
                r#"{"name":"final_answer","arguments":{"text":"ok"}}"#,
                &[],
            )),
        ])?;
        let out = run_openai(
            &sb,
            &m,
            &["run", "--profile", profile, "--constrained", "go"],
        )?;
        assert!(out.ok, "{out:?}");
        let last = m.requests()[2].json();
        let result = last["messages"]
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["role"] == "tool"))
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_string();
        assert_eq!(
            result.contains("unchanged since turn"),
            pointer,
            "{profile}: {result}"
        );
        assert_eq!(
            result.contains("return a - b"),
            !pointer,
            "{profile}: {result}"
        );
    }
    Ok(())
}
