//! `cove skills list` and `cove skills show`: what skills this worktree has, from their files and
//! manifests (nothing is compiled to list them).

use anyhow::{Result, bail};
use cove::context::skills::{Body, Catalog, Skill};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

fn catalog(worktree: Option<PathBuf>) -> Result<(cove::agent::workspace::Workspace, Catalog)> {
    let ws = super::open_narrowed(worktree)?;
    let catalog = ws.skills(cove::paths::claude_dir().as_deref());
    Ok((ws, catalog))
}

fn entry(s: &Skill) -> serde_json::Value {
    serde_json::json!({
        "name": s.name,
        "source": s.source,
        "path": s.path,
        "description": s.description,
        "warnings": s.warnings,
    })
}

/// `cove skills list [--json]`.
pub(crate) fn list(worktree: Option<PathBuf>, json: bool) -> Result<ExitCode> {
    let (_, catalog) = catalog(worktree)?;
    let mut out = std::io::stdout().lock();
    if json {
        let value = serde_json::json!({
            "skills": catalog.listed().map(entry).collect::<Vec<_>>(),
            "problems": catalog.problems(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let width = catalog
        .listed()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(out, "{:width$}  {:14}  DESCRIPTION", "SKILL", "SOURCE")?;
    for s in catalog.listed() {
        writeln!(
            out,
            "{:width$}  {:14}  {}",
            s.name,
            s.source.to_string(),
            s.description
        )?;
        for w in &s.warnings {
            writeln!(out, "{:width$}  warning: {w}", "")?;
        }
    }
    for p in catalog.problems() {
        writeln!(out, "problem: {p}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `cove skills show NAME`: where it comes from, its front matter and its instructions.
pub(crate) fn show(worktree: Option<PathBuf>, name: &str) -> Result<ExitCode> {
    let (ws, catalog) = catalog(worktree)?;
    let Some(s) = catalog.listed().find(|s| s.name == name) else {
        let names: Vec<&str> = catalog.listed().map(|s| s.name.as_str()).collect();
        bail!("no skill `{name}`; the skills are: {}", names.join(", "));
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "name:        {}", s.name)?;
    writeln!(out, "source:      {}", s.source)?;
    writeln!(out, "path:        {}", s.path.display())?;
    writeln!(out, "description: {}", s.description)?;
    if let Some(l) = &s.license {
        writeln!(out, "license:     {l}")?;
    }
    if let Some(a) = &s.allowed_tools {
        writeln!(out, "allowed-tools: {}", a.describe())?;
    }
    for w in &s.warnings {
        writeln!(out, "warning:     {w}")?;
    }
    writeln!(out)?;
    match &s.body {
        Body::Markdown { dir, text } => {
            writeln!(out, "{text}")?;
            let files = cove::context::skills::files(dir);
            if !files.is_empty() {
                writeln!(out, "\nfiles in {}:", dir.display())?;
                for f in files {
                    writeln!(out, "  {f}")?;
                }
            }
        }
        Body::Wasm { plugin } => {
            let Some(p) = ws.registry.skill_plugin(plugin) else {
                bail!("skill `{name}`: its plugin `{plugin}` is not enabled");
            };
            let (text, tools) = ws.registry.skill_instructions(p)?;
            writeln!(out, "{}", text.instructions.trim_end())?;
            if !tools.is_empty() {
                let names: Vec<&str> = tools.iter().map(|(d, _)| d.name.as_str()).collect();
                writeln!(out, "\ntools it brings: {}", names.join(", "))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
