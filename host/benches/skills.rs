//! The skills figures: `bash scripts/bench.sh` runs this after the loop bench and rewrites the
//! "Skills" section of docs/PERFORMANCE.md (`-- --write FILE`), keeping every other section.
//!
//! A repository with 50 skills of a realistic size (a description of about 150 characters, a
//! body of about 2 KB): the bytes they add to the first request (the index in the system prompt
//! and the `skill` tool's definition; no body), measured from what the real release binary sends
//! to a local model server, and the time `cove skills list --json` takes, which must compile no
//! component (checked: the component cache stays empty). Medians; only meaningful on a quiet
//! machine.

#[allow(dead_code)]
#[path = "../../tests/all/mock_model.rs"]
mod mock_model;
#[allow(dead_code)]
#[path = "common/report.rs"]
mod report;

use mock_model::{MockModel, Reply};
use report::{median, ms};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const SKILLS: usize = 50;
const RUNS: usize = 20;

fn cove(dir: &Path, tmp: &Path, url: &str, args: &[&str]) -> Command {
    report::cove(dir, tmp, &tmp.join("cache"), url, args)
}

/// A git repository at `dir`, with `n` skills in `.cove/skills`, trusted.
fn repo(dir: &Path, tmp: &Path, n: usize) -> Res<()> {
    std::fs::create_dir_all(dir)?;
    Command::new("git")
        .args(["init", "-q"])
        .current_dir(dir)
        .status()?;
    for i in 0..n {
        let name = format!("skill-{i:02}");
        let folder = dir.join(".cove/skills").join(&name);
        std::fs::create_dir_all(folder.join("scripts"))?;
        let description = format!(
            "Skill number {i:02} handles the kind of task it is named for, step by step. Use it when the user asks for \
             that task or a file of that kind turns up."
        );
        let body = "Follow these steps, checking each before the next.\n".repeat(40);
        std::fs::write(
            folder.join("SKILL.md"),
            format!("---\nname: {name}\ndescription: {description}\nlicense: MIT\n---\n{body}"),
        )?;
        std::fs::write(folder.join("scripts/run.sh"), "echo run\n")?;
    }
    if n > 0 {
        cove(dir, tmp, "http://127.0.0.1:9", &["trust"]).status()?;
    }
    Ok(())
}

/// Bytes of the first request `cove run` sends in `dir`.
fn first_request_bytes(dir: &Path, tmp: &Path) -> Res<usize> {
    let m = MockModel::start(vec![Reply::Sse(mock_model::anthropic(
        "Hi.",
        &[],
        (1, 0, 0),
    ))])?;
    let status = cove(dir, tmp, &m.url, &["run", "hello"]).status()?;
    if !status.success() {
        return Err(format!("cove run failed in {}", dir.display()).into());
    }
    let first = m.requests().first().cloned().ok_or("no request")?;
    Ok(first.body.len())
}

fn main() -> Res<()> {
    let tmp = tempfile::tempdir()?;
    std::fs::create_dir_all(tmp.path().join("config"))?;
    // Names of one length: the worktree's path is in the system prompt.
    let (bare, skilled) = (tmp.path().join("repo-a"), tmp.path().join("repo-b"));
    repo(&bare, tmp.path(), 0)?;
    repo(&skilled, tmp.path(), SKILLS)?;

    let added = first_request_bytes(&skilled, tmp.path())? as i64
        - first_request_bytes(&bare, tmp.path())? as i64;

    let mut spawn = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        Command::new("true").status()?;
        spawn.push(t.elapsed());
    }
    let mut list = Vec::new();
    let mut listed = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let out = cove(
            &skilled,
            tmp.path(),
            "http://127.0.0.1:9",
            &["skills", "list", "--json"],
        )
        .output()?;
        list.push(t.elapsed());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        listed = v["skills"].as_array().map_or(0, Vec::len);
    }
    if listed != SKILLS {
        return Err(format!("listed {listed} skills, not {SKILLS}").into());
    }
    let components = tmp.path().join("cache/components");
    if components.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        return Err("listing skills compiled a component".into());
    }

    let mut report = String::new();
    writeln!(report, "## Skills\n")?;
    writeln!(
        report,
        "Produced by `bash scripts/bench.sh` (`host/benches/skills.rs`): a repository with {SKILLS} SKILL.md skills\n\
         (descriptions of about 150 characters, bodies of about 2 KB), the release binary, medians over {RUNS} runs.\n\
         Only meaningful on a quiet machine.\n"
    )?;
    writeln!(report, "| figure | measured | reference (same run) |")?;
    writeln!(report, "|---|---|---|")?;
    writeln!(
        report,
        "| bytes the {SKILLS}-skill index adds to the first request (index in the system prompt + the `skill` tool; no body) | {added} bytes (≈ {} tokens) | the same request without skills |",
        added / 4
    )?;
    writeln!(
        report,
        "| `cove skills list --json` with {SKILLS} skills, whole process (no component compiled: the cache stays empty) | {} | process spawn {} |",
        ms(median(list)),
        ms(median(spawn))
    )?;
    report::publish("## Skills\n", &report)?;
    Ok(())
}
