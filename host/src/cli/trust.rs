//! `cove trust`, `cove trust --revoke`, `cove trust --list`.

use super::open_worktree;
use anyhow::{Context, Result};
use cove::config::Config;
use cove::plugins::trust::{Decision, Project, Store};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

pub(crate) fn run(
    worktree: Option<PathBuf>,
    revoke: bool,
    list: bool,
    json: bool,
) -> Result<ExitCode> {
    let user_dir = cove::paths::config_dir().context(
        "cannot find a config directory to keep trust decisions in: set HOME or COVE_CONFIG_DIR",
    )?;
    let store = Store::new(&user_dir);
    let mut out = std::io::stdout().lock();
    if list {
        let entries = store.list();
        if json {
            writeln!(out, "{}", serde_json::to_string_pretty(&entries)?)?;
            return Ok(ExitCode::SUCCESS);
        }
        if entries.is_empty() {
            writeln!(out, "no trust decisions yet")?;
        }
        for (path, e) in entries {
            let (y, mo, d, h, mi, _) = cove::session::civil(e.at);
            let word = match e.decision {
                Decision::Trusted => "trusted",
                Decision::Declined => "not trusted",
            };
            writeln!(
                out,
                "{}  {word}  {y:04}-{mo:02}-{d:02} {h:02}:{mi:02}",
                path.display()
            )?;
            for a in &e.asks {
                writeln!(out, "    - {a}")?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let wt = open_worktree(worktree)?;
    let project = Project::read(&wt)?;
    let user = Config::load(Some(&user_dir), None, false)?;
    let asks = project.asks(&user, &cove::plugins::builtin::names());
    let root = wt.root();
    if asks.is_empty() {
        writeln!(
            out,
            "{}: its .cove/ asks for nothing that needs trust",
            root.display()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let decision = if revoke {
        Decision::Declined
    } else {
        Decision::Trusted
    };
    store.record(root, &project.hash, &asks, decision)?;
    if revoke {
        writeln!(
            out,
            "{} is not trusted: of its .cove/ only settings that narrow apply. Left out:",
            root.display()
        )?;
    } else {
        writeln!(
            out,
            "trusted {} as its .cove/ is now (a change to it is asked about again):",
            root.display()
        )?;
    }
    for a in &asks {
        writeln!(out, "  - {a}")?;
    }
    Ok(ExitCode::SUCCESS)
}
