//! The subagent figures: `bash scripts/bench.sh` runs this after the skills bench and rewrites
//! the "Subagents" section of docs/PERFORMANCE.md (`-- --write FILE`), keeping every other one.
//!
//! In a repository of 1000 committed files (about 4 MB) with some uncommitted work:
//! - starting a writing subagent, worktree included: from the parent's request (whose reply is
//!   the `task` call) arriving at a local model server to the child's first request arriving
//!   there, with the release binary; against `git worktree add -b` of the same repository, the
//!   plain git CLI making the same kind of checkout;
//! - peak RSS of `cove run` with one subagent and with 8 at once, against the same run with no
//!   subagent;
//! - merge-back of a 100-file change (`Isolator::finish`: commit on the task's branch, snapshot
//!   of the parent, merge, files written), against the git CLI doing the same (`git add -A`,
//!   `git commit` in the task worktree, `git merge` in the parent).
//!
//! Medians; only meaningful on a quiet machine.

#[allow(dead_code)]
#[path = "../../tests/all/mock_model.rs"]
mod mock_model;
#[path = "common/report.rs"]
mod report;

use cove::team::isolator::{Isolator, Owner};
use mock_model::{MockModel, Reply, calls, done};
use report::{median, ms, run_measured};
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const FILES: usize = 1000;
const RUNS: usize = 10;

fn git(dir: &Path, args: &[&str]) -> Res<()> {
    let out = Command::new("git")
        .args(["-c", "user.name=b", "-c", "user.email=b@b"])
        .args(args)
        .current_dir(dir)
        .output()?;
    if !out.status.success() {
        return Err(format!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

/// A repository of [`FILES`] committed files of about 4 KB in 20 folders, and one uncommitted
/// change.
fn repo(dir: &Path) -> Res<()> {
    std::fs::create_dir_all(dir)?;
    git(dir, &["init", "-q"])?;
    for i in 0..FILES {
        let folder = dir.join(format!("src/m{:02}", i % 20));
        std::fs::create_dir_all(&folder)?;
        let body: String = (0..100)
            .map(|l| format!("pub fn f_{i}_{l}(x: u64) -> u64 {{ x + {l} }}\n"))
            .collect();
        std::fs::write(folder.join(format!("f{i}.rs")), body)?;
    }
    git(dir, &["add", "-A"])?;
    git(dir, &["commit", "-qm", "start"])?;
    std::fs::write(dir.join("src/m00/f0.rs"), "// work in progress\n")?;
    Ok(())
}

/// A parent whose first reply starts `n` writing subagents (each writes one file and ends),
/// or with `n` = 0 writes the file itself.
fn scripts(n: usize) -> Vec<(&'static str, Vec<Reply>)> {
    const MARKERS: [&str; 8] = [
        "[w0]", "[w1]", "[w2]", "[w3]", "[w4]", "[w5]", "[w6]", "[w7]",
    ];
    let write = |id: &str, k: usize| {
        calls(&[(
            id,
            "write",
            json!({"file_path": format!("out{k}.txt"), "content": "x\n"}),
        )])
    };
    let first = if n == 0 {
        write("p1", 0)
    } else {
        let tasks: Vec<(String, &str, serde_json::Value)> = (0..n)
            .map(|k| {
                (
                    format!("p{k}"),
                    "task",
                    json!({"description": "write", "prompt": format!("{} write out{k}.txt", MARKERS[k]), "subagent_type": "general"}),
                )
            })
            .collect();
        let refs: Vec<(&str, &str, serde_json::Value)> = tasks
            .iter()
            .map(|(a, b, c)| (a.as_str(), *b, c.clone()))
            .collect();
        calls(&refs)
    };
    let mut s = vec![("PARENT", vec![first, done("done")])];
    for (k, marker) in MARKERS.iter().enumerate().take(n) {
        s.push((*marker, vec![write("c1", k), done("wrote it")]));
    }
    s
}

/// One `cove run` with `n` subagents in a fresh copy of the repository: the time from the
/// parent's first request to the first child's first request, and the run's peak RSS (KiB).
fn run(template: &Path, tmp: &Path, n: usize, k: usize) -> Res<(Option<Duration>, i64)> {
    let dir = tmp.join(format!("run-{n}-{k}"));
    copy_repo(template, &dir)?;
    let m = MockModel::start(vec![])?;
    m.set_scripts(scripts(n));
    let (_, rss) = run_measured(&mut report::cove(
        &dir,
        tmp,
        &tmp.join("cache"),
        &m.url,
        &["run", "--yes", "PARENT go"],
    ))?;
    let requests = m.requests();
    let first = |marker: &str| {
        requests
            .iter()
            .find(|r| mock_model::first_user_text(&r.json()).contains(marker))
            .map(|r| r.at)
    };
    let start = match (first("PARENT"), first("[w0]")) {
        (Some(p), Some(c)) => Some(c.saturating_duration_since(p)),
        _ => None,
    };
    for i in 0..n.max(1) {
        if !dir.join(format!("out{i}.txt")).exists() {
            return Err(format!("run with {n} subagents: out{i}.txt was not merged").into());
        }
    }
    Ok((start, rss))
}

fn copy_repo(from: &Path, to: &Path) -> Res<()> {
    let status = Command::new("cp").arg("-a").arg(from).arg(to).status()?;
    if !status.success() {
        return Err("cp failed".into());
    }
    Ok(())
}

fn main() -> Res<()> {
    let tmp = tempfile::tempdir()?;
    std::fs::create_dir_all(tmp.path().join("config"))?;
    let template = tmp.path().join("template");
    repo(&template)?;

    // Starting a subagent, against `git worktree add`.
    let mut starts = Vec::new();
    let mut rss_one = Vec::new();
    for k in 0..RUNS {
        let (start, rss) = run(&template, tmp.path(), 1, k)?;
        starts.push(start.ok_or("the child's request never came")?);
        rss_one.push(rss);
    }
    let mut adds = Vec::new();
    for k in 0..RUNS {
        let dir = tmp.path().join(format!("plain-{k}"));
        copy_repo(&template, &dir)?;
        let t = Instant::now();
        git(
            &dir,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                "plain",
                &tmp.path().join(format!("wt-{k}")).to_string_lossy(),
            ],
        )?;
        adds.push(t.elapsed());
    }
    let mut rss_none = Vec::new();
    let mut rss_eight = Vec::new();
    for k in 0..RUNS / 2 {
        rss_none.push(run(&template, tmp.path(), 0, k)?.1);
        rss_eight.push(run(&template, tmp.path(), 8, k)?.1);
    }

    // Merge-back of 100 files, against the git CLI.
    let mut merges = Vec::new();
    let mut cli = Vec::new();
    for k in 0..RUNS {
        let dir = tmp.path().join(format!("merge-{k}"));
        copy_repo(&template, &dir)?;
        let iso = Isolator::new(&dir, &tmp.path().join("state"))?;
        let task = iso.create(
            "bench",
            Owner {
                pid: std::process::id(),
                session: None,
            },
        )?;
        change_100(&task.path)?;
        let t = Instant::now();
        let outcome = iso.finish(&task, "bench")?;
        merges.push(t.elapsed());
        if !outcome.describe().contains("Merged 100 file(s)") {
            return Err(format!("merge-back: {}", outcome.describe()).into());
        }

        let dir = tmp.path().join(format!("cli-{k}"));
        copy_repo(&template, &dir)?;
        git(&dir, &["stash", "-q"])?;
        let wt = tmp.path().join(format!("cli-wt-{k}"));
        git(
            &dir,
            &["worktree", "add", "-q", "-b", "task", &wt.to_string_lossy()],
        )?;
        change_100(&wt)?;
        let t = Instant::now();
        git(&wt, &["add", "-A"])?;
        git(&wt, &["commit", "-qm", "task"])?;
        git(&dir, &["merge", "-q", "task"])?;
        cli.push(t.elapsed());
    }

    let med = |mut v: Vec<i64>| {
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    };
    let (none, one, eight) = (med(rss_none), med(rss_one), med(rss_eight));
    let mb = |kib: i64| format!("{:.1} MB", kib as f64 / 1024.0);
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    let (start, add) = (median(starts), median(adds));
    let (merge, by_cli) = (median(merges), median(cli));

    let mut report = String::new();
    writeln!(report, "## Subagents\n")?;
    writeln!(
        report,
        "Produced by `bash scripts/bench.sh` (`host/benches/subagents.rs`): a repository of {FILES} committed files (about 4 MB)\n\
         with uncommitted work, the release binary against a local model server, medians over {RUNS} runs (RSS: {} runs).\n\
         Only meaningful on a quiet machine.\n",
        RUNS / 2
    )?;
    writeln!(
        report,
        "| figure | measured | reference (same run) | ratio |"
    )?;
    writeln!(report, "|---|---|---|---|")?;
    writeln!(
        report,
        "| starting a writing subagent: the parent's request (answered with a `task` call) to the child's first request — snapshot of the working tree, branch, worktree checkout, its registry, agent and transcript | {} | `git worktree add -b` of the same repository {} | {:.2}× |",
        ms(start),
        ms(add),
        ratio(start, add)
    )?;
    writeln!(
        report,
        "| peak RSS of `cove run` with one writing subagent | {} | the same task with no subagent {} | {:.2}× |",
        mb(one),
        mb(none),
        one as f64 / none.max(1) as f64
    )?;
    writeln!(
        report,
        "| peak RSS of `cove run` with 8 writing subagents at once | {} | the same task with no subagent {} | {:.2}× |",
        mb(eight),
        mb(none),
        eight as f64 / none.max(1) as f64
    )?;
    writeln!(
        report,
        "| merge-back of a 100-file change (commit on the task branch, snapshot of the parent, merge, files written) | {} | git CLI: `add -A`, `commit`, `merge` {} | {:.2}× |",
        ms(merge),
        ms(by_cli),
        ratio(merge, by_cli)
    )?;
    report::publish("## Subagents\n", &report)?;
    Ok(())
}

/// Change 100 of the files (every tenth) under `root`.
fn change_100(root: &Path) -> Res<()> {
    for i in (0..FILES).step_by(FILES / 100) {
        let path = root.join(format!("src/m{:02}/f{i}.rs", i % 20));
        let mut text = std::fs::read_to_string(&path)?;
        text.push_str("// changed by the task\n");
        std::fs::write(path, text)?;
    }
    Ok(())
}
