//! `cove sessions list`.

use super::{open_worktree, session_store};
use anyhow::Result;
use cove::session::SessionInfo;
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
    // Each session, then the subagents' it started beneath it.
    let ids: std::collections::HashSet<&str> = list.iter().map(|s| s.id.as_str()).collect();
    let roots: Vec<&SessionInfo> = list
        .iter()
        .filter(|s| s.parent.as_deref().is_none_or(|p| !ids.contains(p)))
        .collect();
    for s in roots {
        print_tree(&mut out, &list, s, 0, all)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_tree(
    out: &mut impl Write,
    list: &[SessionInfo],
    s: &SessionInfo,
    depth: usize,
    all: bool,
) -> Result<()> {
    let (y, mo, d, h, mi, _) = cove::session::civil(s.modified);
    let place = if all {
        format!("  {}", s.worktree.display())
    } else {
        String::new()
    };
    let indent = "  ".repeat(depth);
    let agent = s
        .agent
        .as_deref()
        .map_or(String::new(), |a| format!("└ {a}  "));
    writeln!(
        out,
        "{indent}{agent}{}  {y:04}-{mo:02}-{d:02} {h:02}:{mi:02}  {:>3} turns  {}{place}",
        s.id, s.turns, s.title
    )?;
    let mut children: Vec<&SessionInfo> = list
        .iter()
        .filter(|c| c.parent.as_deref() == Some(s.id.as_str()))
        .collect();
    children.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
    for c in children {
        print_tree(out, list, c, depth + 1, all)?;
    }
    Ok(())
}
