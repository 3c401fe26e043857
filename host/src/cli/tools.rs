//! `cove tools list` and `cove tools call`.

use anyhow::{Context, Result};
use cove::agent::dispatch::{self, ToolCall};
use cove::plugins::registry::Registry;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// `cove tools call TOOL INPUT`: one call the user typed. It passes the configured policies like
/// any call; a question they would ask is answered yes (the user typed it), a denial stands.
pub(crate) fn call(
    worktree: Option<PathBuf>,
    tool: String,
    input: String,
    json: bool,
) -> Result<ExitCode> {
    let ws = super::open_narrowed(worktree)?;
    let registry = ws.registry.clone();
    let input = if input == "-" {
        let mut buf = String::new();
        std::io::stdin()
            .read_to_string(&mut buf)
            .context("reading the input from stdin")?;
        buf
    } else {
        input
    };
    use cove::agent::policy::{Context as PolicyContext, Decision, Gate};
    let gate = Gate::new(&registry, &ws.config.policy).map_err(anyhow::Error::msg)?;
    let cx = PolicyContext::outside_session("user");
    let permitted = match gate.decide(&registry, ToolCall { tool, input }, &cx) {
        Decision::Allow(permitted) => Ok(permitted),
        // The user typed this call: that is their answer to the policy's question.
        Decision::Ask(pending) => Ok(pending.approve()),
        Decision::Deny(why) => Err(dispatch::ToolResult {
            text: format!("denied by policy: {why}"),
            is_error: true,
        }),
    };
    let answer: dispatch::Answer = match permitted {
        // An MCP server's tool: its servers are started, and waited for (bounded).
        Ok(p) if cove::mcp::config::split(&p.call().tool).is_some() => {
            super::mcp::call(&ws, p)?.into()
        }
        Ok(p) => {
            // What the plugin reports of its progress, on stderr as it comes.
            let progress = cove::plugins::runtime::ProgressSink::new(|p| {
                let p = dispatch::ToolProgress::from(p);
                eprintln!("progress: {}", cove::ui::printable(&p.describe()));
            });
            dispatch::answer(&registry, p, None, Some(progress))
        }
        Err(denied) => denied.into(),
    };
    let result = &answer.result;
    let mut out = std::io::stdout().lock();
    if json {
        // The result, and a tool's structured output when it gives one.
        let mut value = serde_json::to_value(result)?;
        if let (Some(structured), Some(obj)) = (&answer.structured, value.as_object_mut()) {
            obj.insert("structured".into(), structured.clone());
        }
        writeln!(out, "{value}")?;
    } else if result.is_error {
        eprintln!("error: {}", result.text.trim_end());
    } else {
        write!(out, "{}", result.text)?;
        if !result.text.ends_with('\n') {
            writeln!(out)?;
        }
    }
    Ok(if result.is_error {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub(crate) fn list(ws: &cove::agent::workspace::Workspace, json: bool) -> Result<ExitCode> {
    let registry: &Registry = &ws.registry;
    let tools = registry.tools();
    // The MCP servers' tools too: their servers are started, and waited for (bounded).
    let (mcp, mcp_problems) = super::mcp::tools(ws)?;
    let disabled: Vec<String> = registry
        .plugins()
        .iter()
        .filter(|p| !p.enabled)
        .map(|p| p.manifest.name.clone())
        .collect();
    let mut out = std::io::stdout().lock();
    if json {
        let value = serde_json::json!({
            "worktree": registry.worktree().root(),
            "tools": tools,
            "mcp_tools": mcp.iter().map(|(name, description)| serde_json::json!({"name": name, "description": description})).collect::<Vec<_>>(),
            "disabled_plugins": disabled,
            "problems": registry.problems().iter().cloned().chain(mcp_problems.iter().cloned()).collect::<Vec<_>>(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let width = tools
        .iter()
        .map(|t| t.name.len())
        .chain(mcp.iter().map(|(n, _)| n.len()))
        .max()
        .unwrap_or(4)
        .max(4);
    let src_width = tools
        .iter()
        .map(|t| t.plugin.len() + t.source.to_string().len() + 1)
        .max()
        .unwrap_or(6)
        .max(6);
    writeln!(
        out,
        "{:width$}  {:src_width$}  {:9}  {:28}  DESCRIPTION",
        "TOOL", "SOURCE", "MODE", "CAPABILITIES"
    )?;
    for t in &tools {
        let source = format!("{}:{}", t.source, t.plugin);
        let mode = if t.read_only { "read-only" } else { "writes" };
        writeln!(
            out,
            "{:width$}  {source:src_width$}  {mode:9}  {:28}  {}",
            t.name,
            t.capabilities.summary(),
            t.description
        )?;
    }
    for (name, description) in &mcp {
        let server = cove::mcp::config::split(name).map_or("", |(s, _)| s);
        let source = format!("mcp:{server}");
        writeln!(
            out,
            "{name:width$}  {source:src_width$}  {:9}  {:28}  {}",
            "writes",
            "its server's (see `cove mcp list`)",
            description.lines().next().unwrap_or("")
        )?;
    }
    for problem in &mcp_problems {
        writeln!(out, "problem: {problem}")?;
    }
    for p in registry
        .plugins()
        .iter()
        .filter(|p| p.enabled && !p.withheld.is_empty())
    {
        writeln!(
            out,
            "note: plugin `{}` asked for more than it was granted: {}",
            p.manifest.name,
            p.withheld.join("; ")
        )?;
    }
    if !disabled.is_empty() {
        writeln!(out, "disabled: {}", disabled.join(", "))?;
    }
    for problem in registry.problems() {
        writeln!(out, "problem: {problem}")?;
    }
    Ok(ExitCode::SUCCESS)
}
