//! The context compressor, end to end: the real binary against a local server speaking the
//! Anthropic wire format, whose usage figures count about 4 bytes a token. Sessions that would
//! pass a small window finish with every request under it; each layer (mask, structure, summary)
//! and the unchanged re-read are seen in the requests; `recall` gives the bytes back; the user's
//! words, the memory files and a resumed session survive compaction.

use crate::mock_model::{MockModel, Reply, Seen, unmarked};
use crate::support::{Run, Sandbox, TestResult};
use serde_json::{Value, json};

/// A Rust file of `fns` small functions (about 100 bytes each) named `{tag}_step_N`.
fn rust_file(tag: &str, fns: usize) -> String {
    (0..fns)
        .map(|f| {
            format!(
                "/// Doubles after adding {f}.\npub fn {tag}_step_{f}(x: u64) -> u64 {{\n    let y = x + {f};\n    y * 2\n}}\n\n"
            )
        })
        .collect()
}

/// Four Rust files of 110 functions (`src/a.rs` … `src/d.rs`, about 4k tokens each read), and
/// a reply reading each (`t0` … `t3`).
fn four_big_reads(sb: &Sandbox) -> Result<Vec<Reply>, std::io::Error> {
    let mut replies = Vec::new();
    for (i, tag) in ["a", "b", "c", "d"].iter().enumerate() {
        sb.write(&format!("src/{tag}.rs"), rust_file(tag, 110))?;
        replies.push(read(&format!("t{i}"), &format!("src/{tag}.rs")));
    }
    Ok(replies)
}

fn read(id: &str, path: &str) -> Reply {
    Reply::AnthropicCached(
        String::new(),
        vec![(
            id.into(),
            "read".into(),
            json!({ "file_path": path }).to_string(),
        )],
    )
}

fn call(id: &str, name: &str, input: Value) -> Reply {
    Reply::AnthropicCached(
        String::new(),
        vec![(id.into(), name.into(), input.to_string())],
    )
}

fn done(text: &str) -> Reply {
    Reply::AnthropicCached(text.into(), vec![])
}

/// The tokens the server counted for a request (its usage figures: about 4 bytes a token).
fn tokens(seen: &Seen) -> usize {
    unmarked(&seen.body).0.len() / 4
}

/// The content of the result for call `id` in a request, if it has one.
fn result_in(request: &Value, id: &str) -> Option<String> {
    request["messages"]
        .as_array()?
        .iter()
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .find(|b| b["type"] == "tool_result" && b["tool_use_id"] == id)
        .and_then(|b| b["content"].as_str().map(str::to_string))
}

/// All text of the first user message of a request.
fn first_user_text(request: &Value) -> String {
    request["messages"][0]["content"]
        .as_array()
        .map(|bs| {
            bs.iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

fn events(run: &Run, kind: &str) -> Vec<Value> {
    run.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["type"] == kind)
        .collect()
}

/// `cove run PROMPT` against `m` with stream-json output, replies of at most 1000 tokens and `extra` flags.
fn run(sb: &Sandbox, m: &MockModel, extra: &[&str], prompt: &str) -> Result<Run, std::io::Error> {
    let mut args = vec![
        "run",
        "--output-format",
        "stream-json",
        "--max-tokens",
        "1000",
        "--yes",
    ];
    args.extend_from_slice(extra);
    args.push(prompt);
    sb.cove_env(
        &args,
        &[
            ("ANTHROPIC_BASE_URL", m.url.as_str()),
            ("ANTHROPIC_API_KEY", "test-key"),
        ],
    )
}

const PROMPT: &str = "Map the step functions. Never edit anything under vendor/.";

#[test]
fn a_session_that_would_pass_its_window_stays_under_it_by_masking_and_recall_and_resume_work()
-> TestResult {
    let sb = Sandbox::new()?;
    sb.config("[context]\nwindow_tokens = 24000\n")?;
    let mut replies = Vec::new();
    for i in 0..14 {
        sb.write(&format!("src/f{i}.rs"), rust_file(&format!("f{i}"), 60))?;
        replies.push(read(&format!("t{i}"), &format!("src/f{i}.rs")));
    }
    replies.push(call("r0", "recall", json!({"handle": "t0"})));
    replies.push(done("Mapped."));
    let m = MockModel::start(replies)?;
    m.set_summariser(|_| "unexpected".into());
    let r = run(&sb, &m, &[], PROMPT)?;
    assert!(r.ok, "{r:?}");
    let requests = m.requests();
    assert_eq!(requests.len(), 16, "no summary was needed: {r:?}");

    // Without the compressor the last request would hold every file: far past the window.
    let first_read = result_in(&requests[1].json(), "t0").ok_or("t0's result")?;
    assert!(
        first_read.len() * 14 / 4 > 24_000,
        "the files are too small to test anything"
    );
    for (i, req) in requests.iter().enumerate() {
        assert!(
            tokens(req) <= 23_000,
            "request {i} holds {} tokens, over the window less the reply",
            tokens(req)
        );
        // The user's words, verbatim, in every request.
        assert_eq!(req.json()["messages"][0]["content"][0]["text"], PROMPT);
    }

    // The oldest results were masked to stubs naming their call and handle.
    let last = requests[15].json();
    let stub = result_in(&last, "t1").ok_or("t1")?;
    assert!(stub.starts_with("[masked to save context: read"), "{stub}");
    assert!(
        stub.contains("src/f1.rs") && stub.contains(r#"recall {"handle":"t1"}"#),
        "{stub}"
    );
    // The newest three were not.
    assert_eq!(
        result_in(&last, "t13"),
        result_in(&requests[14].json(), "t13")
    );
    // recall gave back the exact bytes the model first saw.
    assert_eq!(result_in(&last, "r0").as_deref(), Some(first_read.as_str()));

    let compactions = events(&r, "compaction");
    assert!(!compactions.is_empty(), "{r:?}");
    let c = &compactions[0];
    assert_eq!(c["layers"][0], "mask", "{c}");
    assert!(
        c["tokens_after"].as_u64() < c["tokens_before"].as_u64(),
        "{c}"
    );
    assert!(c["masked"].as_array().is_some_and(|a| a.len() >= 4), "{c}");
    let records = sb.transcripts()?;
    assert!(records.iter().any(|l| l["type"] == "compaction"));
    let session = records
        .iter()
        .find(|l| l["type"] == "session")
        .and_then(|l| l["id"].as_str())
        .ok_or("no session")?
        .to_string();

    // Resumed, the session goes on from the compacted state, and recall still answers.
    let m2 = MockModel::start(vec![
        call("r1", "recall", json!({"handle": "t1"})),
        done("Still mapped."),
    ])?;
    let r2 = run(&sb, &m2, &["--resume", &session], "And f1 again?")?;
    assert!(r2.ok, "{r2:?}");
    let resumed = m2.requests();
    let first = resumed[0].json();
    let stub = result_in(&first, "t1").ok_or("t1 after resume")?;
    assert!(stub.starts_with("[masked to save context:"), "{stub}");
    assert!(tokens(&resumed[0]) <= 23_000);
    let original = result_in(&requests[2].json(), "t1").ok_or("t1's result")?;
    assert_eq!(result_in(&resumed[1].json(), "r1"), Some(original));
    Ok(())
}

#[test]
fn a_re_read_of_an_unchanged_file_points_back_and_a_changed_one_is_sent() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("src/a.rs", rust_file("a", 10))?;
    let m = MockModel::start(vec![
        read("t0", "src/a.rs"),
        read("t1", "src/a.rs"),
        call(
            "t2",
            "edit",
            json!({"file_path": "src/a.rs", "old_string": "a_step_3(", "new_string": "a_step_three("}),
        ),
        read("t3", "src/a.rs"),
        done("Done."),
    ])?;
    let r = run(&sb, &m, &[], "Rename step 3.")?;
    assert!(r.ok, "{r:?}");
    let last = m.requests().last().ok_or("no request")?.json();
    let first = result_in(&last, "t0").ok_or("t0")?;
    assert!(first.contains("a_step_3("), "{first}");
    let again = result_in(&last, "t1").ok_or("t1")?;
    assert!(
        again.starts_with(
            "[unchanged since turn 1: the same as the result of this call then (id t0)"
        ),
        "{again}"
    );
    let changed = result_in(&last, "t3").ok_or("t3")?;
    assert!(changed.contains("a_step_three("), "{changed}");
    Ok(())
}

#[test]
fn file_contents_the_model_moved_past_become_their_outlines() -> TestResult {
    let sb = Sandbox::new()?;
    // Room for the reads' outlines to be enough: a summary is not due before the last read.
    sb.config("[context]\nwindow_tokens = 16400\ntarget = 0.7\n")?;
    let mut replies = four_big_reads(&sb)?;
    replies.push(done("Read them."));
    let m = MockModel::start(replies)?;
    m.set_summariser(|_| "SUMMARY".into());
    let r = run(&sb, &m, &[], PROMPT)?;
    assert!(r.ok, "{r:?}");
    let requests = m.requests();
    let sizes: Vec<usize> = requests.iter().map(tokens).collect();
    assert_eq!(
        requests.len(),
        5,
        "{sizes:?} {:?}",
        events(&r, "compaction")
    );
    for req in &requests {
        assert!(tokens(req) <= 15_000, "{}", tokens(req));
    }
    let last = requests[4].json();
    let outline = result_in(&last, "t1").ok_or("t1")?;
    assert!(
        outline.starts_with("[outline shown to save context: src/b.rs as read was"),
        "{outline}"
    );
    assert!(outline.contains(r#"recall {"handle":"t1"}"#), "{outline}");
    // Signatures with their line ranges, far smaller than the file.
    assert!(
        outline.contains("\n2-5 pub fn b_step_0(x: u64) -> u64\n"),
        "{outline}"
    );
    assert!(
        outline.contains("pub fn b_step_109(x: u64) -> u64"),
        "{outline}"
    );
    let original = result_in(&requests[2].json(), "t1").ok_or("t1 original")?;
    assert!(outline.len() * 2 < original.len());
    // The newest file's bytes are still there.
    let newest = result_in(&last, "t3").ok_or("t3")?;
    assert!(
        newest.contains("pub fn d_step_109(x: u64) -> u64 {"),
        "{newest}"
    );
    let c = &events(&r, "compaction")[0];
    assert_eq!(c["layers"], json!(["structure"]), "{c}");
    Ok(())
}

/// Planted early in a long session, each must still be reachable after compaction: in the
/// request itself, or behind a handle the request names (`recall`).
const NEEDLES: [(&str, &str); 4] = [
    ("a user constraint", "Never edit anything under vendor/."),
    ("an exact path", "src/deep/needle_7f3a.rs"),
    ("an error string", "needle_missing_9c1e.rs"),
    (
        "a rejected approach",
        "Rejected: parsing with a regex, it breaks on nested braces.",
    ),
];

#[test]
fn a_summary_replaces_old_turns_keeps_the_users_words_and_rules_are_read_again() -> TestResult {
    let sb = Sandbox::new()?;
    sb.config("[context]\nwindow_tokens = 16000\n")?;
    sb.write("AGENTS.md", "RULE-ONE: run the tests.\n")?;
    sb.write("src/deep/needle_7f3a.rs", "pub fn needle() {}\n")?;
    // The model thinks aloud at length: its own words cannot be masked, only summarised.
    let musing = |i: usize| {
        format!(
            "Turn {i}: {}",
            "I weigh the design of the step functions. ".repeat(200)
        )
    };
    let mut replies = vec![
        Reply::AnthropicCached(
            format!("{}\n{}", musing(0), NEEDLES[3].1),
            vec![(
                "t0".into(),
                "read".into(),
                json!({"file_path": NEEDLES[1].1}).to_string(),
            )],
        ),
        call("t1", "read", json!({"file_path": NEEDLES[2].1})),
        call(
            "t2",
            "write",
            json!({"file_path": "AGENTS.md", "content": "RULE-TWO: run the tests twice.\n"}),
        ),
    ];
    for i in 3..9 {
        replies.push(Reply::AnthropicCached(
            musing(i),
            vec![(
                format!("t{i}"),
                "glob".into(),
                json!({"pattern": "src/*.rs"}).to_string(),
            )],
        ));
    }
    replies.push(done("Finished."));
    let m = MockModel::start(replies)?;
    // The server's summariser keeps what a careful model would: here, every line it is given
    // that names a needle (the test is of cove's plumbing, not of a model's judgement).
    m.set_summariser(|body| {
        let v: Value = serde_json::from_str(body).unwrap_or_default();
        let text = v["messages"][0]["content"][0]["text"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let mut out = String::from("## Goal\nMap the step functions (SUMMARY-MARK).\n");
        for line in text.lines() {
            if NEEDLES.iter().any(|(_, n)| line.contains(n)) {
                out.push_str(&format!("- {}\n", &line[..line.len().min(300)]));
            }
        }
        out
    });
    let r = run(&sb, &m, &[], PROMPT)?;
    assert!(r.ok, "{r:?}");
    let requests = m.requests();
    let summary_requests: Vec<&Seen> = requests
        .iter()
        .filter(|s| s.body.contains(crate::mock_model::SUMMARY_MARK))
        .collect();
    assert!(!summary_requests.is_empty(), "no summary: {r:?}");
    for s in &summary_requests {
        let v = s.json();
        assert!(
            v.get("tools")
                .is_none_or(|t| t.as_array().is_none_or(Vec::is_empty)),
            "a summary request has no tools"
        );
        assert!(tokens(s) <= 15_000);
    }
    let work: Vec<&Seen> = requests
        .iter()
        .filter(|s| !s.body.contains(crate::mock_model::SUMMARY_MARK))
        .collect();
    for req in &work {
        assert!(tokens(req) <= 15_000, "{}", tokens(req));
    }
    let last = work.last().ok_or("no request")?.json();
    let first = first_user_text(&last);
    assert!(
        first.starts_with(PROMPT),
        "the user's words first, verbatim: {first}"
    );
    assert!(first.contains("SUMMARY-MARK"), "{first}");
    // The oldest turns are gone from the request.
    assert!(!last.to_string().contains("Turn 0: I weigh"));
    // The summary is in the memory file, and the rules were read again after the compaction.
    assert!(sb.read(".agent_memory.md")?.contains("SUMMARY-MARK"));
    let system = last["system"].to_string();
    assert!(system.contains("RULE-TWO"), "{system}");
    let c = events(&r, "compaction");
    assert!(
        c.iter().any(|c| c["layers"]
            .as_array()
            .is_some_and(|l| l.contains(&json!("summary")))),
        "{c:?}"
    );

    // Needle recall: each planted fact is still reachable.
    let text = last.to_string();
    let mut reachable = Vec::new();
    for (what, needle) in NEEDLES {
        let needle_json = serde_json::to_string(needle)?;
        let needle_json = needle_json.trim_matches('"');
        let found = if first.contains(needle) {
            "summary or the user's message"
        } else if text.contains(needle_json) {
            "context"
        } else {
            "nowhere"
        };
        eprintln!("needle: {what}: {found}");
        reachable.push((what, found));
    }
    assert!(
        reachable.iter().all(|(_, f)| *f != "nowhere"),
        "{reachable:?}"
    );
    Ok(())
}

#[test]
fn compact_in_chat_summarises_now_with_a_focus() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("a.txt", "alpha\n")?;
    let script = json!({"turns": [
        {"text": "Reading.", "tool_calls": [{"name": "read", "input": {"file_path": "a.txt"}}]},
        {"text": "It says alpha."},
        {"text": "SCRIPTED-SUMMARY of the chat"},
    ]});
    let r = sb.chat_on_terminal(&script, "what is in a.txt?\n/compact the file names\n\x04")?;
    assert!(r.stdout.contains("context compacted (summary)"), "{r:?}");
    let records = sb.transcripts()?;
    let c = records
        .iter()
        .find(|l| l["type"] == "compaction")
        .ok_or("no compaction record")?;
    assert_eq!(c["report"]["forced"], true);
    assert_eq!(c["report"]["focus"], "the file names");
    assert_eq!(c["report"]["summarised_turns"], 1);
    let history = c["history"].to_string();
    assert!(
        history.contains("SCRIPTED-SUMMARY of the chat"),
        "{history}"
    );
    assert!(history.contains("what is in a.txt?"), "{history}");
    Ok(())
}

#[test]
fn compaction_can_be_turned_off() -> TestResult {
    let sb = Sandbox::new()?;
    sb.config("[context]\nwindow_tokens = 16000\ncompact = false\n")?;
    let mut replies = four_big_reads(&sb)?;
    replies.push(done("Read them."));
    let m = MockModel::start(replies)?;
    let r = run(&sb, &m, &[], PROMPT)?;
    assert!(r.ok, "{r:?}");
    assert!(events(&r, "compaction").is_empty());
    let requests = m.requests();
    // A server that holds to the window refuses the session at the request that passes it.
    let strict = MockModel::start(four_big_reads(&sb)?)?;
    strict.set_window(15_000);
    let refused = run(&sb, &strict, &[], PROMPT)?;
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(refused.stdout.contains("prompt is too long"), "{refused:?}");
    let first = requests[0].json();
    let tools: Vec<&str> = first["tools"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(!tools.contains(&"recall"), "{tools:?}");
    assert!(
        tokens(&requests[4]) > 15_000,
        "the window would have been passed"
    );
    // And `--compact-at` must be a share.
    let bad = run(&sb, &m, &["--compact-at", "1.5"], "x")?;
    assert!(bad.stderr.contains("not a share of the window"), "{bad:?}");
    Ok(())
}

#[test]
fn a_skill_in_use_survives_compaction() -> TestResult {
    let sb = Sandbox::new()?;
    sb.config("[context]\nwindow_tokens = 16000\n")?;
    let skill = sb.tmp.path().join("config/skills/release");
    std::fs::create_dir_all(&skill)?;
    std::fs::write(
        skill.join("SKILL.md"),
        format!(
            "---\nname: release\ndescription: Cut a release.\n---\nRELEASE-BODY-MARKER\n{}",
            "Check the changelog before tagging.\n".repeat(40)
        ),
    )?;
    let mut replies = vec![call("s0", "skill", json!({"name": "release"}))];
    replies.extend(four_big_reads(&sb)?);
    replies.push(done("Released."));
    let m = MockModel::start(replies)?;
    m.set_summariser(|_| "SUMMARY".into());
    let r = run(&sb, &m, &[], "Cut the release.")?;
    assert!(r.ok, "{r:?}");
    assert!(!events(&r, "compaction").is_empty(), "{r:?}");
    let requests = m.requests();
    let system = |i: usize| requests[i].json()["system"].to_string();
    assert!(
        !system(0).contains("RELEASE-BODY-MARKER"),
        "only the index at first"
    );
    let last = requests.last().ok_or("no request")?.json();
    // The skill's result went with the compaction; its instructions are back in the system prompt.
    let messages = last["messages"].to_string();
    assert!(!messages.contains("RELEASE-BODY-MARKER"), "{messages}");
    assert!(last["system"].to_string().contains("RELEASE-BODY-MARKER"));
    Ok(())
}
