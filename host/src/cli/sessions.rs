//! `cove sessions list`.

use super::{open_worktree, session_store};
use anyhow::Result;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

pub(crate) fn list(worktree: Option<PathBuf>, all: bool, json: bool) -> Result<ExitCode> {
    let store = session_store()?;
    let wt = if all {
        None
    } else {
        Some(open_worktree(worktree)?)
    };
    let list = store.list(wt.as_ref().map(|w| w.root()))?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        writeln!(
            out,
            "no sessions yet{}",
            if all {
                ""
            } else {
                " in this worktree (--all shows every worktree)"
            }
        )?;
    }
    for s in list {
        let (y, mo, d, h, mi, _) = cove::session::civil(s.modified);
        let place = if all {
            format!("  {}", s.worktree.display())
        } else {
            String::new()
        };
        writeln!(
            out,
            "{}  {y:04}-{mo:02}-{d:02} {h:02}:{mi:02}  {:>3} turns  {}{place}",
            s.id, s.turns, s.title
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
