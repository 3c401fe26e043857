//! Subagents and the worktree isolator, end to end: the real binary against a local server
//! speaking the Anthropic wire format, whose replies are chosen by each conversation's own first
//! message, so the parent and every child follow their own scripts whatever order their requests
//! arrive in. Real git worktrees (the tests read them with the `git` CLI), real components.

use crate::mock_model::{
    MockModel, Reply, arrived, calls, done, env, last_results, requests_of, route_with, tool_names,
};
use crate::support::{Run, Sandbox, TestResult, commit_all, git};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn task(kind: &str, marker: &str, what: &str) -> Value {
    json!({"description": what, "prompt": format!("{marker} {what}"), "subagent_type": kind})
}

fn cove_run(sb: &Sandbox, m: &MockModel, extra: &[&str], prompt: &str) -> std::io::Result<Run> {
    let mut args = vec!["run", "--yes", "--max-tokens", "1000"];
    args.extend_from_slice(extra);
    args.push(prompt);
    let env = env(m);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    sb.cove_env(&args, &env)
}

fn worktrees(sb: &Sandbox) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let listed = sb.cove(&["worktrees", "list", "--json"])?;
    Ok(serde_json::from_str(listed.out())?)
}

#[test]
fn two_writers_run_side_by_side_from_the_parents_state_and_both_merge_back() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("README.md", "hello\n")?;
    commit_all(&sb)?;
    // Uncommitted: the children start from it, and it stays the parent's.
    sb.write("README.md", "hello, uncommitted\n")?;
    let index_before = std::fs::read(sb.repo().join(".git/index"))?;
    let m = MockModel::start(vec![])?;
    let overlapped = Arc::new(Mutex::new(None));
    let flag = overlapped.clone();
    route_with(
        &m,
        vec![
            (
                "PARENT-7431",
                vec![
                    calls(&[
                        ("p1", "task", task("general", "[writer-a]", "write a.txt")),
                        ("p2", "task", task("general", "[writer-b]", "write b.txt")),
                    ]),
                    done("both merged"),
                ],
            ),
            (
                "[writer-a]",
                vec![
                    calls(&[("a1", "read", json!({"file_path": "README.md"}))]),
                    calls(&[(
                        "a2",
                        "write",
                        json!({"file_path": "a.txt", "content": "A\n"}),
                    )]),
                    done("wrote a.txt"),
                ],
            ),
            (
                "[writer-b]",
                vec![
                    // A command, in the exec sandbox, confined to the task's worktree.
                    calls(&[("b1", "bash", json!({"command": "printf 'B\\n' > b.txt"}))]),
                    done("wrote b.txt"),
                ],
            ),
        ],
        move |marker, step, arrivals| {
            // Writer a's first reply waits for writer b's first request: run one after the
            // other, b's would never come.
            if marker == "[writer-a]" && step == 0 {
                let both = arrived(arrivals, "[writer-b]");
                if let Ok(mut f) = flag.lock() {
                    *f = Some(both);
                }
            }
        },
    );
    let run = cove_run(
        &sb,
        &m,
        &["--output-format", "json"],
        "PARENT-7431 split it",
    )?;
    let v: Value = serde_json::from_str(run.out())?;
    assert_eq!(*overlapped.lock().map_err(|e| e.to_string())?, Some(true));
    assert_eq!(sb.read("a.txt")?, "A\n");
    assert_eq!(sb.read("b.txt")?, "B\n");
    assert_eq!(sb.read("README.md")?, "hello, uncommitted\n");
    // The parent's index, HEAD and branches are as they were: the merge only wrote files.
    assert_eq!(std::fs::read(sb.repo().join(".git/index"))?, index_before);
    assert_eq!(git(&sb, &["rev-list", "--count", "HEAD"])?.trim(), "1");
    assert_eq!(git(&sb, &["branch", "--list", "cove/*"])?.trim(), "");
    assert!(worktrees(&sb)?.is_empty());
    // Writer a read the parent's uncommitted README in its own worktree.
    let a = requests_of(&m, "[writer-a]");
    assert!(
        last_results(&a[..2])
            .iter()
            .any(|(e, t)| !e && t.contains("hello, uncommitted")),
        "{:?}",
        last_results(&a[..2])
    );
    // Children may nest one more level by default: they are offered `task`.
    assert!(tool_names(&a[0]).contains(&"task".to_string()));
    // The parent got both answers, with their cost and the merge.
    let parent = requests_of(&m, "PARENT-7431");
    let results = last_results(&parent);
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results[0].1.contains("wrote a.txt"), "{results:?}");
    assert!(results[1].1.contains("wrote b.txt"), "{results:?}");
    assert!(
        results
            .iter()
            .all(|(e, t)| !e && t.contains("Merged 1 file(s)") && t.contains(" tokens")),
        "{results:?}"
    );
    // The end summary rolls up each agent, and their spend counts with the parent's.
    let agents = v["agents"].as_array().cloned().unwrap_or_default();
    let mut ids: Vec<&str> = agents.iter().filter_map(|a| a["agent"].as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["main.1", "main.2"]);
    assert!(
        agents
            .iter()
            .all(|a| a["parent"] == "main" && a["outcome"] == "finished")
    );
    let own = v["usage"]["output_tokens"].as_u64().unwrap_or(0)
        + v["usage"]["input_tokens"].as_u64().unwrap_or(0);
    let all = v["with_subagents"]["usage"]["output_tokens"]
        .as_u64()
        .unwrap_or(0)
        + v["with_subagents"]["usage"]["input_tokens"]
            .as_u64()
            .unwrap_or(0);
    assert!(all > own, "{v}");
    // Each child's transcript is its own session, linked to the parent's.
    let sessions: Vec<Value> =
        serde_json::from_str(sb.cove(&["sessions", "list", "--json"])?.out())?;
    assert_eq!(sessions.len(), 3, "{sessions:?}");
    let main = v["session_id"].as_str().unwrap_or_default();
    assert_eq!(
        sessions.iter().filter(|s| s["parent"] == main).count(),
        2,
        "{sessions:?}"
    );
    let tree = sb.cove(&["sessions", "list"])?;
    assert!(tree.out().contains("└ main.1"), "{}", tree.stdout);
    Ok(())
}

#[test]
fn two_writers_of_the_same_lines_get_a_conflict_that_changes_nothing_and_keeps_the_branch()
-> TestResult {
    let sb = Sandbox::new()?;
    sb.write("f.txt", "one\ntwo\nthree\n")?;
    commit_all(&sb)?;
    let m = MockModel::start(vec![])?;
    let edit = |id: &str, to: &str| {
        calls(&[(
            id,
            "edit",
            json!({"file_path": "f.txt", "old_string": "two", "new_string": to}),
        )])
    };
    route_with(
        &m,
        vec![
            (
                "PARENT-88",
                vec![
                    calls(&[
                        ("p1", "task", task("general", "[edit-a]", "edit two")),
                        ("p2", "task", task("general", "[edit-b]", "edit two")),
                    ]),
                    done("see results"),
                ],
            ),
            ("[edit-a]", vec![edit("a1", "TWO-A"), done("A done")]),
            ("[edit-b]", vec![edit("b1", "TWO-B"), done("B done")]),
        ],
        |marker, step, arrivals| {
            if marker == "[edit-a]" && step == 0 {
                arrived(arrivals, "[edit-b]");
            }
        },
    );
    let run = cove_run(&sb, &m, &[], "PARENT-88 both edit")?;
    run.out();
    let results = last_results(&requests_of(&m, "PARENT-88"));
    assert_eq!(results.len(), 2, "{results:?}");
    let conflicted: Vec<&(bool, String)> = results
        .iter()
        .filter(|(_, t)| t.contains("conflict"))
        .collect();
    assert_eq!(conflicted.len(), 1, "{results:?}");
    // The model is told plainly: work that did not reach the files is an error result; the
    // one that merged is not.
    assert!(
        conflicted[0].0,
        "a conflict must be an error result: {results:?}"
    );
    assert_eq!(
        results.iter().filter(|(is_error, _)| *is_error).count(),
        1,
        "{results:?}"
    );
    let report = &conflicted[0].1;
    assert!(
        report.contains("f.txt") && report.contains("cove/"),
        "{report}"
    );
    // The parent holds the version that merged first, byte for byte; the other waits on its branch.
    let now = sb.read("f.txt")?;
    let (merged, other) = if now.contains("TWO-A") {
        ("TWO-A", "TWO-B")
    } else {
        ("TWO-B", "TWO-A")
    };
    assert_eq!(now, format!("one\n{merged}\nthree\n"));
    assert!(report.contains(other), "{report}");
    let left = worktrees(&sb)?;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["state"], "conflict");
    let name = left[0]["name"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        git(&sb, &["branch", "--list", "cove/*"])?.lines().count(),
        1
    );
    // Its work is not thrown away without --force.
    let refused = sb.cove(&["worktrees", "drop", &name])?;
    refused.err();
    assert_eq!(worktrees(&sb)?.len(), 1);
    sb.cove(&["worktrees", "drop", &name, "--force"])?.out();
    assert!(worktrees(&sb)?.is_empty());
    assert_eq!(git(&sb, &["branch", "--list", "cove/*"])?.trim(), "");
    assert_eq!(sb.read("f.txt")?, now);
    Ok(())
}

#[test]
fn an_explorer_reads_the_parents_worktree_cannot_write_and_sees_nothing_of_its_conversation()
-> TestResult {
    let sb = Sandbox::new()?;
    sb.write("README.md", "the answer is 42\n")?;
    commit_all(&sb)?;
    let m = MockModel::start(vec![])?;
    m.set_scripts(vec![
        (
            "SECRET-PARENT-55",
            vec![
                calls(&[(
                    "p1",
                    "task",
                    task("explorer", "[explore]", "find the answer"),
                )]),
                done("it is 42"),
            ],
        ),
        (
            "[explore]",
            vec![
                calls(&[(
                    "e1",
                    "write",
                    json!({"file_path": "x.txt", "content": "no"}),
                )]),
                calls(&[("e2", "read", json!({"file_path": "README.md"}))]),
                done("README says 42"),
            ],
        ),
    ]);
    let run = cove_run(
        &sb,
        &m,
        &["--output-format", "stream-json"],
        "SECRET-PARENT-55 ask an explorer",
    )?;
    run.out();
    assert!(!sb.repo().join("x.txt").exists());
    let explorer = requests_of(&m, "[explore]");
    assert_eq!(explorer.len(), 3);
    let tools = tool_names(&explorer[0]);
    for t in ["write", "edit", "bash"] {
        assert!(!tools.contains(&t.to_string()), "{tools:?}");
    }
    assert!(tools.contains(&"read".to_string()), "{tools:?}");
    let denied = last_results(&explorer[..2]);
    assert!(denied[0].0 && denied[0].1.contains("denied"), "{denied:?}");
    let read = last_results(&explorer);
    assert!(
        read.iter()
            .any(|(e, t)| !e && t.contains("the answer is 42"))
    );
    // A clean context: nothing of the parent's conversation, its prompt and its role instead.
    for r in &explorer {
        assert!(!r.to_string().contains("SECRET-PARENT-55"));
    }
    assert!(
        explorer[0]["system"]
            .to_string()
            .contains("read-only subagent")
    );
    // A read-only subagent needs no worktree of its own.
    assert!(worktrees(&sb)?.is_empty());
    // stream-json tags every event with its agent and the agent's parent.
    let events: Vec<Value> = run
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let from_child = |kind: &str| {
        events
            .iter()
            .any(|e| e["type"] == kind && e["agent"] == "main.1" && e["parent_agent"] == "main")
    };
    assert!(from_child("subagent_start") && from_child("subagent_end"));
    assert!(from_child("tool_call") && from_child("usage"));
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "tool_result" && e["name"] == "task" && e["agent"] == "main")
    );
    Ok(())
}

#[test]
fn nesting_past_max_depth_and_starting_past_the_budget_are_refused() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("README.md", "x\n")?;
    commit_all(&sb)?;
    sb.config("[agents]\nmax_depth = 1\n")?;
    let m = MockModel::start(vec![])?;
    m.set_scripts(vec![
        (
            "PARENT-3",
            vec![
                calls(&[("p1", "task", task("explorer", "[child]", "go on"))]),
                done("ok"),
            ],
        ),
        (
            "[child]",
            vec![
                calls(&[("c1", "task", task("explorer", "[grandchild]", "deeper"))]),
                done("could not nest"),
            ],
        ),
        ("[grandchild]", vec![done("should never run")]),
        (
            "PARENT-4",
            vec![
                calls(&[
                    ("q1", "task", task("explorer", "[poor-1]", "one")),
                    ("q2", "task", task("explorer", "[poor-2]", "two")),
                ]),
                done("ok"),
            ],
        ),
    ]);
    cove_run(&sb, &m, &[], "PARENT-3 nest")?.out();
    let child = requests_of(&m, "[child]");
    assert!(!tool_names(&child[0]).contains(&"task".to_string()));
    let refused = last_results(&child);
    assert!(
        refused[0].0 && refused[0].1.contains("nest only 1 deep"),
        "{refused:?}"
    );
    assert!(requests_of(&m, "[grandchild]").is_empty());

    // Two turns in all: one left after the first, too few to split between two subagents.
    cove_run(&sb, &m, &["--max-turns", "2"], "PARENT-4 split")?;
    let results = last_results(&requests_of(&m, "PARENT-4"));
    assert_eq!(results.len(), 2);
    assert!(
        results
            .iter()
            .all(|(e, t)| *e && t.contains("too little of the budget")),
        "{results:?}"
    );
    assert!(requests_of(&m, "[poor-").is_empty());
    Ok(())
}

/// Start `cove run PROMPT` against `m` in the background.
fn spawn_run(sb: &Sandbox, m: &MockModel, prompt: &str) -> std::io::Result<std::process::Child> {
    let env = env(m);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    sb.command(&sb.repo(), &["run", "--yes", prompt], &env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
}

/// A parent whose one child writes `a.txt` and then waits on the model forever.
fn stuck_child(m: &MockModel, marker: &'static str) {
    m.set_scripts(vec![
        (
            marker,
            vec![calls(&[(
                "p1",
                "task",
                task("general", "[stuck]", "write and wait"),
            )])],
        ),
        (
            "[stuck]",
            vec![
                calls(&[(
                    "s1",
                    "write",
                    json!({"file_path": "a.txt", "content": "A\n"}),
                )]),
                Reply::Hang,
            ],
        ),
    ]);
}

fn wait_for_second_request(m: &MockModel, marker: &str) {
    let started = Instant::now();
    while requests_of(m, marker).len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no second request"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ctrl_c_cancels_the_whole_tree_and_keeps_the_childs_work_on_its_branch() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("README.md", "x\n")?;
    commit_all(&sb)?;
    let m = MockModel::start(vec![])?;
    stuck_child(&m, "PARENT-C");
    let child = spawn_run(&sb, &m, "PARENT-C go")?;
    wait_for_second_request(&m, "[stuck]");
    crate::support::interrupt(child)?;
    // Not merged: a cancelled task's work waits on its branch.
    assert!(!sb.repo().join("a.txt").exists());
    let left = worktrees(&sb)?;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["state"], "kept");
    assert_eq!(left[0]["alive"], false);
    assert_eq!(left[0]["changed"], json!(["a.txt"]));
    // The transcripts are whole: the parent's and the child's both end cancelled.
    let ends: Vec<Value> = sb
        .transcripts()?
        .into_iter()
        .filter(|l| l["type"] == "end")
        .collect();
    assert_eq!(ends.len(), 2, "{ends:?}");
    assert!(ends.iter().all(|e| e["outcome"] == "cancelled"));
    // Merged by hand, later.
    let name = left[0]["name"].as_str().unwrap_or_default().to_string();
    let merged = sb.cove(&["worktrees", "merge", &name])?;
    assert!(merged.out().contains("a.txt"), "{}", merged.stdout);
    assert_eq!(sb.read("a.txt")?, "A\n");
    assert!(worktrees(&sb)?.is_empty());
    Ok(())
}

#[test]
fn kill_9_mid_task_leaves_a_worktree_that_list_shows_and_clean_removes_only_when_forced()
-> TestResult {
    let sb = Sandbox::new()?;
    sb.write("README.md", "x\n")?;
    commit_all(&sb)?;
    let m = MockModel::start(vec![])?;
    stuck_child(&m, "PARENT-K");
    let mut child = spawn_run(&sb, &m, "PARENT-K go")?;
    wait_for_second_request(&m, "[stuck]");
    child.kill()?;
    child.wait()?;
    let left = worktrees(&sb)?;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["alive"], false);
    assert_eq!(left[0]["changed"], json!(["a.txt"]));
    let listed = sb.cove(&["worktrees", "list"])?;
    assert!(listed.out().contains("interrupted"), "{}", listed.stdout);
    // The dead process held the lock: it is free again, and unmerged work survives a plain clean.
    let kept = sb.cove(&["worktrees", "clean", "--json"])?;
    let kept: Value = serde_json::from_str(kept.out())?;
    assert_eq!(kept["removed"], json!([]));
    assert_eq!(kept["kept"].as_array().map(Vec::len), Some(1));
    assert_eq!(worktrees(&sb)?.len(), 1);
    sb.cove(&["worktrees", "clean", "--force"])?.out();
    assert!(worktrees(&sb)?.is_empty());
    assert_eq!(git(&sb, &["branch", "--list", "cove/*"])?.trim(), "");
    assert!(!sb.repo().join("a.txt").exists());
    Ok(())
}
