//! `cove worktrees list|merge|drop|clean`: the task worktrees subagents left behind (a conflict,
//! a cancelled or crashed task), shown, merged back or removed by hand.

use super::open_worktree;
use anyhow::{Context, Result};
use cove::team::isolator::{Entry, Isolator, State};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

fn isolator(worktree: Option<PathBuf>) -> Result<Isolator> {
    let wt = open_worktree(worktree)?;
    let dir = cove::paths::data_dir()
        .context("cannot find a data directory: set HOME or COVE_DATA_DIR")?
        .join("worktrees");
    Ok(Isolator::new(wt.root(), &dir)?)
}

fn state(e: &Entry) -> &'static str {
    match (e.alive, &e.state) {
        (true, _) => "running",
        (false, State::Conflict) => "conflict",
        (false, State::Kept) => "kept",
        (false, State::Running) => "interrupted",
    }
}

pub(crate) fn list(worktree: Option<PathBuf>, json: bool) -> Result<ExitCode> {
    let entries = isolator(worktree)?.list()?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&entries)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        writeln!(out, "no task worktrees for this repository")?;
    }
    for e in &entries {
        let (y, mo, d, h, mi, _) = cove::session::civil(e.created);
        writeln!(
            out,
            "{}  {:<11}  {y:04}-{mo:02}-{d:02} {h:02}:{mi:02}  branch {}  {} changed file(s)  pid {}\n    {}",
            e.name,
            state(e),
            e.branch,
            e.changed.len(),
            e.owner_pid,
            e.path.display()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn merge(worktree: Option<PathBuf>, name: &str) -> Result<ExitCode> {
    let outcome = isolator(worktree)?.merge(name)?;
    println!("{}", outcome.describe());
    Ok(
        if matches!(outcome, cove::team::isolator::MergeOutcome::Conflict { .. }) {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        },
    )
}

pub(crate) fn drop_task(worktree: Option<PathBuf>, name: &str, force: bool) -> Result<ExitCode> {
    isolator(worktree)?.drop_task(name, force)?;
    println!("dropped {name}: its worktree and branch are removed");
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn clean(worktree: Option<PathBuf>, force: bool, json: bool) -> Result<ExitCode> {
    let cleaned = isolator(worktree)?.clean(force)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&cleaned)?);
        return Ok(ExitCode::SUCCESS);
    }
    for r in &cleaned.removed {
        println!("removed {r}");
    }
    for (name, why) in &cleaned.kept {
        println!("kept {name}: {why}");
    }
    if cleaned.removed.is_empty() && cleaned.kept.is_empty() {
        println!("nothing to clean");
    }
    Ok(ExitCode::SUCCESS)
}

/// A note for a resumed session about task worktrees nobody is working in.
pub(crate) fn left_over(root: &std::path::Path) -> Option<String> {
    let dir = cove::paths::data_dir()?.join("worktrees");
    let entries = Isolator::new(root, &dir).ok()?.list().ok()?;
    let names: Vec<String> = entries
        .iter()
        .filter(|e| !e.alive)
        .map(|e| format!("{} ({})", e.name, state(e)))
        .collect();
    (!names.is_empty()).then(|| {
        format!(
            "note: subagents left task worktrees here: {}; `cove worktrees list` shows them, `cove worktrees merge NAME` or `cove worktrees drop NAME` settles each",
            names.join(", ")
        )
    })
}
