//! Teammates, end to end: the real binary (`cove team up`, `cove run` as the lead, `cove teammate`
//! as members in their own processes), a real `redis-server` per test, real worktrees, and a local
//! server speaking the Anthropic wire format whose replies follow each conversation's own script
//! (chosen by its first message), so the lead and every member keep to theirs whatever the order.

use crate::mock_model::{
    MockModel, arrived, calls, done, env, last_results, requests_of, route_with,
};
use crate::support::{Sandbox, TestResult, commit_all};
use crate::support_redis::RedisServer;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn ask(to: &str, request: &str) -> Value {
    json!({"to": to, "request": request})
}

fn env_pairs(m: &MockModel) -> Vec<(&'static str, String)> {
    env(m)
}

/// A `cove` process of a test, killed if the test ends before it does (a failed assertion must
/// not leave a teammate serving forever).
struct Proc(Option<Child>);

impl Proc {
    fn take(mut self) -> Result<Child, Box<dyn std::error::Error>> {
        self.0.take().ok_or_else(|| "no process".into())
    }

    fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(sb: &Sandbox, m: &MockModel, args: &[&str]) -> std::io::Result<Proc> {
    let env = env_pairs(m);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    sb.command(&sb.repo(), args, &env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map(|c| Proc(Some(c)))
}

/// The user's config: the team's mailbox on `redis`, asks waiting `timeout` seconds.
fn on_redis(sb: &Sandbox, redis: &RedisServer, timeout: u64) -> TestResult {
    std::fs::write(
        sb.tmp.path().join("config/config.toml"),
        format!(
            "[team]\nbackend = \"redis\"\nredis_url = \"{}\"\ntimeout_secs = {timeout}\n",
            redis.url()
        ),
    )?;
    Ok(())
}

fn team_file(sb: &Sandbox, text: &str) -> TestResult {
    sb.write(".cove/team.toml", text)?;
    Ok(())
}

fn status(sb: &Sandbox) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let run = sb.cove(&["team", "status", "--json"])?;
    assert!(run.ok, "{run:?}");
    Ok(serde_json::from_str(run.out())?)
}

fn row<'a>(rows: &'a [Value], member: &str) -> Option<&'a Value> {
    rows.iter().find(|r| r["member"] == member)
}

/// Wait until `cove team status` shows `member` alive and idle (30 s at most).
fn until_alive(sb: &Sandbox, member: &str) -> TestResult {
    until_state(sb, member, "idle").map(drop)
}

/// Wait until `cove team status` shows `member` in `state` (30 s at most); its row.
fn until_state(
    sb: &Sandbox,
    member: &str,
    state: &str,
) -> Result<Value, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut last = Value::Null;
    while started.elapsed() < Duration::from_secs(30) {
        if let Some(r) = row(&status(sb)?, member) {
            if r["state"] == state {
                return Ok(r.clone());
            }
            last = r.clone();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("{member} never got to {state}: {last}").into())
}

/// Wait for `child` to end by itself (90 s at most); its output.
fn finish(child: Proc) -> Result<std::process::Output, Box<dyn std::error::Error>> {
    let mut child = child.take()?;
    let started = Instant::now();
    while child.try_wait()?.is_none() {
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let out = child.wait_with_output()?;
            return Err(format!("did not end: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(child.wait_with_output()?)
}

/// Stop a teammate the way a user does (SIGTERM), and its output.
fn stop(child: Proc) -> Result<std::process::Output, Box<dyn std::error::Error>> {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(status.success());
    finish(child)
}

fn kill_9(child: Proc) -> TestResult {
    let mut child = child.take()?;
    child.kill()?;
    child.wait()?;
    Ok(())
}

/// Results of the lead's `ask` calls (what its last request carries back).
fn results_of(m: &MockModel, marker: &str) -> Vec<(bool, String)> {
    last_results(&requests_of(m, marker))
}

#[test]
fn team_up_the_lead_asks_a_member_whose_work_in_its_own_worktree_merges_back() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("README.md", "hello\n")?;
    commit_all(&sb)?;
    team_file(
        &sb,
        "[[member]]\nname = \"dev\"\ndescription = \"writes code\"\n[[member]]\nname = \"rev\"\nagent = \"explorer\"\n",
    )?;
    let head = crate::support::git(&sb, &["rev-parse", "HEAD"])?;
    let m = MockModel::start(vec![])?;
    route_with(
        &m,
        vec![
            (
                "LEAD-5120",
                vec![
                    calls(&[("l1", "ask", ask("dev", "[dev-job] write notes.txt"))]),
                    calls(&[("l2", "ask", ask("dev", "[dev-job-2] what did you write?"))]),
                    done("dev did it"),
                ],
            ),
            (
                "[dev-job]",
                vec![
                    calls(&[
                        (
                            "d0",
                            "send",
                            json!({"to": "lead", "message": "[note] starting on it"}),
                        ),
                        (
                            "d1",
                            "write",
                            json!({"file_path": "notes.txt", "content": "N\n"}),
                        ),
                    ]),
                    done("wrote notes.txt"),
                    // The second request comes in the same conversation: its context is kept.
                    done("notes.txt, as you asked before"),
                ],
            ),
        ],
        |_, _, _| {},
    );
    let env = env_pairs(&m);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = sb.cove_env(
        &[
            "team",
            "up",
            "--yes",
            "--max-tokens",
            "1000",
            "--output-format",
            "stream-json",
            "LEAD-5120 get dev to write notes",
        ],
        &env,
    )?;
    assert!(run.ok, "{run:?}");
    // The member's change is in the lead's worktree, uncommitted; HEAD did not move.
    assert_eq!(sb.read("notes.txt")?, "N\n");
    assert_eq!(crate::support::git(&sb, &["rev-parse", "HEAD"])?, head);
    let results = results_of(&m, "LEAD-5120");
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(
        !results[0].0 && results[0].1.contains("wrote notes.txt"),
        "{results:?}"
    );
    assert!(results[0].1.contains("teammate dev"), "{results:?}");
    // What dev sent meanwhile (expecting no answer) rides along with the answer.
    assert!(
        results[0]
            .1
            .contains("[message from dev: [note] starting on it]"),
        "{results:?}"
    );
    assert!(results[1].1.contains("as you asked before"), "{results:?}");
    // The member's second request was one more turn of its first conversation.
    let dev = requests_of(&m, "[dev-job]");
    let last = dev
        .last()
        .map(|r| r["messages"].to_string())
        .unwrap_or_default();
    assert!(
        last.contains("[dev-job-2]") && last.contains("wrote notes.txt"),
        "{last}"
    );
    // The lead and the members are offered `ask` and `send`; a member's `to` lists the others.
    let lead = requests_of(&m, "LEAD-5120");
    let tools = crate::mock_model::tool_names(&lead[0]);
    assert!(tools.iter().any(|t| t == "ask") && tools.iter().any(|t| t == "send"));
    let dev_ask = dev[0]["tools"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "ask"))
        .map(|t| t["input_schema"]["properties"]["to"]["enum"].clone());
    assert_eq!(dev_ask, Some(json!(["lead", "rev"])));
    // Its events show up tagged with its name.
    assert!(
        run.out()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|e| e["agent"] == "dev" && e["type"] == "tool_call"),
        "{}",
        run.out()
    );
    Ok(())
}

#[test]
fn a_cycle_between_members_is_refused_not_deadlocked() -> TestResult {
    let sb = Sandbox::new()?;
    commit_all_empty(&sb)?;
    team_file(
        &sb,
        "[[member]]\nname = \"dev\"\n[[member]]\nname = \"rev\"\n",
    )?;
    let m = MockModel::start(vec![])?;
    route_with(
        &m,
        vec![
            (
                "LEAD-7702",
                vec![
                    calls(&[("l1", "ask", ask("dev", "[dev-7702] build it"))]),
                    done("ok"),
                ],
            ),
            (
                "[dev-7702]",
                vec![
                    calls(&[("d1", "ask", ask("rev", "[rev-7702] review it"))]),
                    done("built and reviewed"),
                ],
            ),
            (
                "[rev-7702]",
                vec![
                    // Back to dev, who waits on this very answer: a cycle.
                    calls(&[("r1", "ask", ask("dev", "[dev-again] and you?"))]),
                    done("reviewed"),
                ],
            ),
        ],
        |_, _, _| {},
    );
    let env = env_pairs(&m);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let started = Instant::now();
    let run = sb.cove_env(
        &[
            "team",
            "up",
            "--yes",
            "--max-tokens",
            "1000",
            "LEAD-7702 go",
        ],
        &env,
    )?;
    assert!(run.ok, "{run:?}");
    let rev = results_of(&m, "[rev-7702]");
    assert!(
        rev.iter()
            .any(|(err, t)| *err && t.contains("cycle") && t.contains("lead → dev → rev → dev")),
        "{rev:?}"
    );
    let dev = results_of(&m, "[dev-7702]");
    assert!(
        dev.iter().any(|(err, t)| !err && t.contains("reviewed")),
        "{dev:?}"
    );
    // Refused at once, not after the ask timeout (600 s by default).
    assert!(started.elapsed() < Duration::from_secs(300));
    Ok(())
}

fn commit_all_empty(sb: &Sandbox) -> TestResult {
    sb.write("README.md", "x\n")?;
    commit_all(sb)
}

#[test]
fn an_ask_to_a_member_that_never_comes_times_out_clearly_and_the_request_waits_for_it() -> TestResult
{
    let s = scene(
        vec![(
            "LEAD-3391",
            vec![
                calls(&[("l1", "ask", ask("dev", "[dev-3391] anything"))]),
                done("gave up on dev"),
            ],
        )],
        "[dev-3391]",
        |_, _| false,
    )?;
    on_redis(&s.sb, &s.redis, 2)?;
    let run = s.run("LEAD-3391 ask")?;
    assert!(run.ok, "{run:?}");
    let results = results_of(&s.m, "LEAD-3391");
    assert!(
        results.iter().any(|(err, t)| *err
            && t.contains("no answer from dev after 2 s")
            && t.contains("cove teammate --name dev")),
        "{results:?}"
    );
    // dev is down, and the request waits in its mailbox for when it comes.
    let dev = row_of(&s.sb, "dev")?;
    assert_eq!(dev["alive"], false, "{dev}");
    assert_eq!(dev["depth"]["waiting"], 1, "{dev}");
    Ok(())
}

/// A teammate process for `dev`, with the mock model.
fn teammate(sb: &Sandbox, m: &MockModel, name: &str) -> std::io::Result<Proc> {
    spawn(
        sb,
        m,
        &["teammate", "--name", name, "--yes", "--max-tokens", "1000"],
    )
}

fn redis_cli(redis: &RedisServer, args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
    let out = Command::new("redis-cli")
        .args(["-p", &redis.port().to_string()])
        .args(args)
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn malformed_and_oversized_messages_are_rejected_to_their_sender_and_the_mailbox_goes_on()
-> TestResult {
    let big = "x".repeat(300 * 1024);
    let s = scene(
        vec![
            (
                "LEAD-2217",
                vec![
                    calls(&[("l1", "ask", ask("dev", &format!("[dev-2217] {big}")))]),
                    calls(&[("l2", "ask", ask("dev", "[dev-2217b] small one"))]),
                    done("done"),
                ],
            ),
            ("[dev-2217b]", vec![done("dev answered the small one")]),
        ],
        "[dev-2217b]",
        |_, _| false,
    )?;
    let (redis, m) = (&s.redis, &s.m);
    let dev = s.member("dev")?;
    // Garbage straight into dev's stream, and a message missing its deadline from "lead".
    redis_cli(
        redis,
        &["XADD", "cove:repo:inbox:dev", "*", "m", "{not json"],
    )?;
    redis_cli(
        redis,
        &[
            "XADD",
            "cove:repo:inbox:dev",
            "*",
            "m",
            r#"{"v":1,"id":"bad-1","kind":"request","from":"lead","to":"dev"}"#,
        ],
    )?;
    // The malformed one from "lead" is answered with an error naming what was wrong.
    let started = Instant::now();
    let mut lead_box = String::new();
    while started.elapsed() < Duration::from_secs(30) && !lead_box.contains("bad-1") {
        std::thread::sleep(Duration::from_millis(100));
        lead_box = redis_cli(redis, &["XRANGE", "cove:repo:inbox:lead", "-", "+"])?;
    }
    assert!(
        lead_box.contains("bad-1") && lead_box.contains("rejected"),
        "{lead_box}"
    );
    // The mailbox goes on: an oversized request is refused to its sender, a small one answered.
    let run = s.run("LEAD-2217 go")?;
    assert!(run.ok, "{run:?}");
    let results = results_of(m, "LEAD-2217");
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(
        results[0].0 && results[0].1.contains("too large"),
        "{results:?}"
    );
    assert!(
        !results[1].0 && results[1].1.contains("dev answered the small one"),
        "{results:?}"
    );
    let dev_box = redis_cli(redis, &["XLEN", "cove:repo:inbox:dev"])?;
    let out = stop(dev)?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("malformed"), "{stderr}");
    // Nothing stays in dev's mailbox.
    assert_eq!(dev_box.trim(), "0", "{dev_box}");
    Ok(())
}

fn row_of(sb: &Sandbox, member: &str) -> Result<Value, Box<dyn std::error::Error>> {
    row(&status(sb)?, member)
        .cloned()
        .ok_or_else(|| format!("no {member} row").into())
}

#[test]
fn team_up_chat_shows_the_in_memory_team_with_slash_team() -> TestResult {
    use std::io::Write;
    let sb = Sandbox::new()?;
    commit_all_empty(&sb)?;
    team_file(
        &sb,
        "[[member]]\nname = \"dev\"\n[[member]]\nname = \"rev\"\nagent = \"explorer\"\n",
    )?;
    let m = MockModel::start(vec![])?;
    let env = env_pairs(&m);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut child = sb
        .command(&sb.repo(), &["team", "up"], &env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        // Members beat within a moment of starting; give them that before asking.
        std::thread::sleep(Duration::from_millis(500));
        stdin.write_all(b"/team\n")?;
    }
    let out = child.wait_with_output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("team repo (memory): dev, rev here, ready"),
        "{err}"
    );
    for line in ["lead ", "dev ", "rev "] {
        assert!(
            err.lines()
                .any(|l| l.starts_with(line) && l.contains("idle")),
            "{line}: {err}"
        );
    }
    // Outside it, nobody can see an in-memory team, and `cove team status` says so.
    let run = sb.cove(&["team", "status"])?;
    assert!(!run.ok && run.err().contains("/team"), "{run:?}");
    Ok(())
}

/// A team on a private Redis, with dev (and whoever `members` adds) in the team file, whose
/// model holds a reply of the conversation marked `held` while `hold(step, arrivals of held)`
/// says so, until `release` is set.
struct Scene {
    sb: Sandbox,
    redis: RedisServer,
    m: MockModel,
    release: Arc<AtomicBool>,
    arrivals: Arc<std::sync::Mutex<Vec<String>>>,
}

fn scene(
    scripts: crate::mock_model::Scripts,
    held: &'static str,
    hold: impl Fn(usize, usize) -> bool + Send + Sync + 'static,
) -> Result<Scene, Box<dyn std::error::Error>> {
    let sb = Sandbox::new()?;
    commit_all_empty(&sb)?;
    let redis = RedisServer::start()?;
    on_redis(&sb, &redis, 120)?;
    team_file(&sb, "[[member]]\nname = \"dev\"\n")?;
    let m = MockModel::start(vec![])?;
    let release = Arc::new(AtomicBool::new(false));
    let released = release.clone();
    let arrivals = route_with(&m, scripts, move |marker, step, arrivals| {
        let seen = arrivals
            .lock()
            .map(|a| a.iter().filter(|t| t.contains(held)).count())
            .unwrap_or(0);
        if marker == held && hold(step, seen) {
            while !released.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    });
    Ok(Scene {
        sb,
        redis,
        m,
        release,
        arrivals,
    })
}

impl Scene {
    /// Start teammate `name`, and wait until it is up.
    fn member(&self, name: &str) -> Result<Proc, Box<dyn std::error::Error>> {
        let p = teammate(&self.sb, &self.m, name)?;
        until_alive(&self.sb, name)?;
        Ok(p)
    }

    /// Start a lead on `prompt`, and wait until the held conversation's request has arrived.
    fn lead(&self, prompt: &str, held: &str) -> Result<Proc, Box<dyn std::error::Error>> {
        let lead = spawn(
            &self.sb,
            &self.m,
            &["run", "--yes", "--max-tokens", "1000", prompt],
        )?;
        if !arrived(&self.arrivals, held) {
            let mut child = lead.take()?;
            let _ = child.kill();
            let out = child.wait_with_output()?;
            return Err(format!(
                "{held} never got its request; the lead said: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(lead)
    }

    /// `cove run` of a lead on `prompt`, to its end.
    fn run(&self, prompt: &str) -> Result<crate::support::Run, Box<dyn std::error::Error>> {
        let env = env_pairs(&self.m);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Ok(self
            .sb
            .cove_env(&["run", "--yes", "--max-tokens", "1000", prompt], &env)?)
    }

    fn arrivals_of(&self, marker: &str) -> usize {
        self.arrivals
            .lock()
            .map(|a| a.iter().filter(|t| t.contains(marker)).count())
            .unwrap_or(0)
    }
}

fn ok(out: &std::process::Output) -> TestResult {
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned().into())
    }
}

#[test]
fn kill_9_of_a_teammate_mid_request_then_a_restart_answers_the_asker_exactly_once() -> TestResult {
    // The first member's first request is held until it has been killed.
    let s = scene(
        vec![
            (
                "LEAD-6610",
                vec![
                    calls(&[("l1", "ask", ask("dev", "[dev-6610] write a.txt"))]),
                    done("done"),
                ],
            ),
            (
                "[dev-6610]",
                vec![
                    calls(&[(
                        "d1",
                        "write",
                        json!({"file_path": "a.txt", "content": "A\n"}),
                    )]),
                    done("dev wrote a.txt"),
                ],
            ),
        ],
        "[dev-6610]",
        |step, seen| step == 0 && seen == 1,
    )?;
    let first = s.member("dev")?;
    let lead = s.lead("LEAD-6610 go", "[dev-6610]")?;
    // In RESPOND: status says so, and what it works on.
    let dev = until_state(&s.sb, "dev", "respond")?;
    assert!(
        dev["working_on"]
            .as_str()
            .is_some_and(|w| w.contains("[dev-6610]")),
        "{dev}"
    );
    assert_eq!(dev["depth"]["pending"], 1, "{dev}");
    kill_9(first)?;
    s.release.store(true, Ordering::Relaxed);
    let second = teammate(&s.sb, &s.m, "dev")?;
    ok(&finish(lead)?)?;
    ok(&stop(second)?)?;
    // The request was worked on again by the restarted member, and answered once.
    let seen = s.arrivals_of("[dev-6610]");
    assert!(seen >= 2, "not redelivered: {seen}");
    let results = results_of(&s.m, "LEAD-6610");
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(
        !results[0].0 && results[0].1.contains("dev wrote a.txt"),
        "{results:?}"
    );
    assert_eq!(s.sb.read("a.txt")?, "A\n");
    // Nothing is left waiting or unacknowledged in dev's mailbox.
    assert_eq!(
        row_of(&s.sb, "dev")?["depth"],
        json!({"waiting": 0, "pending": 0})
    );
    Ok(())
}

#[test]
fn redis_restarted_mid_conversation_and_the_team_goes_on() -> TestResult {
    let mut s = scene(
        vec![
            (
                "LEAD-4804",
                vec![
                    calls(&[("l1", "ask", ask("dev", "[dev-4804] think"))]),
                    done("done"),
                ],
            ),
            ("[dev-4804]", vec![done("dev thought it through")]),
        ],
        "[dev-4804]",
        |_, _| true,
    )?;
    let dev = s.member("dev")?;
    let lead = s.lead("LEAD-4804 go", "[dev-4804]")?;
    s.redis.restart()?;
    s.release.store(true, Ordering::Relaxed);
    ok(&finish(lead)?)?;
    let results = results_of(&s.m, "LEAD-4804");
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(
        !results[0].0 && results[0].1.contains("dev thought it through"),
        "{results:?}"
    );
    ok(&stop(dev)?)
}

#[test]
fn ctrl_c_of_the_lead_mid_ask_tells_the_member_to_stop_and_nothing_is_left_pending() -> TestResult {
    let s = scene(
        vec![
            (
                "LEAD-9025",
                vec![calls(&[("l1", "ask", ask("dev", "[dev-9025] a long job"))])],
            ),
            ("[dev-9025]", vec![done("never sent")]),
        ],
        "[dev-9025]",
        |_, _| true,
    )?;
    let dev = s.member("dev")?;
    let lead = s.lead("LEAD-9025 go", "[dev-9025]")?;
    until_state(&s.sb, "dev", "respond")?;
    let out = crate::support::interrupt(lead.take()?)?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cancel"), "{err}");
    // dev stops working on it, answers that it stopped, and acknowledges it.
    until_state(&s.sb, "dev", "idle")?;
    let started = Instant::now();
    let mut depth = row_of(&s.sb, "dev")?["depth"].clone();
    while depth != json!({"waiting": 0, "pending": 0})
        && started.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(100));
        depth = row_of(&s.sb, "dev")?["depth"].clone();
    }
    assert_eq!(depth, json!({"waiting": 0, "pending": 0}));
    s.release.store(true, Ordering::Relaxed);
    ok(&stop(dev)?)
}

#[test]
fn a_teammate_the_team_file_does_not_list_is_a_general_member_and_a_team_has_one_lead() -> TestResult
{
    let s = scene(
        vec![
            (
                "LEAD-1184",
                vec![
                    calls(&[("l1", "ask", ask("helper", "[helper-1184] lend a hand"))]),
                    done("done"),
                ],
            ),
            ("[helper-1184]", vec![done("helper here")]),
        ],
        "[helper-1184]",
        |_, _| true,
    )?;
    let helper = s.member("helper")?;
    let lead = s.lead("LEAD-1184 go", "[helper-1184]")?;
    // A second lead of the same team at the same time is refused: answers would cross.
    let env = env_pairs(&s.m);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let second =
        s.sb.cove_env(&["run", "--yes", "--max-tokens", "1000", "LEAD-2 go"], &env)?;
    assert!(
        !second.ok && second.err().contains("has a lead already"),
        "{second:?}"
    );
    s.release.store(true, Ordering::Relaxed);
    ok(&finish(lead)?)?;
    let results = results_of(&s.m, "LEAD-1184");
    assert!(
        results
            .iter()
            .any(|(err, t)| !err && t.contains("helper here")),
        "{results:?}"
    );
    assert_eq!(row_of(&s.sb, "helper")?["role"], json!("general"));
    ok(&stop(helper)?)
}
