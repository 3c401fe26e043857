//! `cove mcp list|add|remove|serve`, and starting a session's MCP servers.

use anyhow::{Context, Result};
use cove::agent::workspace::Workspace;
use cove::mcp::hub::{Hub, plan};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// How long `cove mcp list` and `cove tools …` wait for servers to come up.
const WAIT: Duration = Duration::from_secs(30);

/// Start the servers of `ws` in the background (none: there are none). `.mcp.json` counts only
/// when the repository is trusted. Must be called inside the async runtime.
pub(crate) fn start(ws: &Workspace) -> Option<Arc<Hub>> {
    let env = |k: &str| std::env::var(k).ok();
    let mcp_json = ws
        .trusted
        .then(|| ws.project.mcp.as_ref().map(|(text, _)| text.as_str()))
        .flatten();
    let (planned, problems) = plan(&ws.config.mcp, mcp_json, &env);
    for p in problems {
        eprintln!("warning: {p}");
    }
    if planned.is_empty() {
        return None;
    }
    Some(Hub::start(
        planned,
        ws.worktree.root(),
        ws.registry.commands(),
    ))
}

/// `cove mcp list`: each server, its state and its tools (starting them, bounded).
pub(crate) fn list(worktree: Option<PathBuf>, json: bool) -> Result<ExitCode> {
    let ws = super::open_narrowed(worktree)?;
    let runtime = super::async_runtime()?;
    runtime.block_on(async move {
        let Some(hub) = start(&ws) else {
            if json {
                println!("[]");
            } else {
                println!("no MCP servers (.mcp.json, or [mcp.servers.NAME] in cove's config)");
            }
            return Ok(ExitCode::SUCCESS);
        };
        hub.settle(WAIT).await;
        let status = hub.status();
        hub.stop().await;
        let mut out = std::io::stdout().lock();
        if json {
            writeln!(out, "{}", serde_json::to_string_pretty(&status)?)?;
            return Ok(ExitCode::SUCCESS);
        }
        for s in &status {
            writeln!(
                out,
                "{}  {}{}",
                s.name,
                s.state,
                s.protocol
                    .as_ref()
                    .map(|p| format!(" (protocol {p})"))
                    .unwrap_or_default()
            )?;
            for t in &s.tools {
                writeln!(out, "  {}", cove::mcp::config::qualified(&s.name, t))?;
            }
            if let Some(e) = &s.error {
                writeln!(out, "  {e}")?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `cove mcp add NAME -- COMMAND ARGS…` or `cove mcp add NAME --url URL`: into `.mcp.json`.
pub(crate) fn add(
    worktree: Option<PathBuf>,
    name: &str,
    url: Option<String>,
    command: Vec<String>,
    env: Vec<String>,
) -> Result<ExitCode> {
    let wt = super::open_worktree(worktree)?;
    let file = wt.root().join(cove::plugins::trust::MCP_FILE);
    let old = match std::fs::read_to_string(&file) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    let spec = match (url, command.split_first()) {
        (Some(url), None) => serde_json::json!({"type": "http", "url": url}),
        (None, Some((cmd, args))) => {
            let mut envs = serde_json::Map::new();
            for kv in env {
                let (k, v) = kv
                    .split_once('=')
                    .with_context(|| format!("--env {kv:?}: give KEY=VALUE"))?;
                envs.insert(k.to_string(), v.into());
            }
            let mut spec = serde_json::json!({"command": cmd, "args": args});
            if !envs.is_empty() {
                spec["env"] = envs.into();
            }
            spec
        }
        _ => anyhow::bail!(
            "give either --url URL or a command after `--` (cove mcp add NAME -- npx -y some-server)"
        ),
    };
    let text = cove::mcp::config::add_server(old.as_deref(), name, spec)?;
    std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
    eprintln!(
        "added MCP server `{name}` to {}; it runs once this repository is trusted (`cove trust`)",
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `cove mcp remove NAME`: out of `.mcp.json`.
pub(crate) fn remove(worktree: Option<PathBuf>, name: &str) -> Result<ExitCode> {
    let wt = super::open_worktree(worktree)?;
    let file = wt.root().join(cove::plugins::trust::MCP_FILE);
    let old =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let text = cove::mcp::config::remove_server(&old, name)?;
    std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
    eprintln!("removed MCP server `{name}` from {}", file.display());
    Ok(ExitCode::SUCCESS)
}

/// MCP tools as `cove tools` shows them (`mcp__server__tool`, description), and the failures of
/// servers that would not start.
pub(crate) type Listed = (Vec<(String, String)>, Vec<String>);

/// The tools of `ws`'s MCP servers, after starting them and waiting (bounded); none when there
/// are no servers.
pub(crate) fn tools(ws: &Workspace) -> Result<Listed> {
    let runtime = super::async_runtime()?;
    Ok(runtime.block_on(async {
        let Some(hub) = start(ws) else {
            return (Vec::new(), Vec::new());
        };
        hub.settle(WAIT).await;
        let tools = hub
            .defs()
            .into_iter()
            .map(|d| (d.name, d.description))
            .collect();
        let failures = hub.take_failures();
        hub.stop().await;
        (tools, failures)
    }))
}

/// Run one permitted call of an MCP server's tool by hand (`cove tools call`).
pub(crate) fn call(
    ws: &Workspace,
    permitted: cove::agent::policy::Permitted,
) -> Result<cove::agent::dispatch::ToolResult> {
    let runtime = super::async_runtime()?;
    Ok(runtime.block_on(async {
        let Some(hub) = start(ws) else {
            return cove::agent::dispatch::ToolResult::error(
                "no MCP servers here (.mcp.json once trusted, or [mcp.servers.NAME])".into(),
            );
        };
        let cancel = tokio_util::sync::CancellationToken::new();
        let watcher = super::session::cancel_on_ctrl_c(&cancel);
        let result = hub
            .call(permitted, &cancel, &mut |p| {
                eprintln!("progress: {}", cove::ui::printable(&p.describe()));
            })
            .await;
        watcher.abort();
        hub.stop().await;
        result
    }))
}

/// `cove mcp serve`'s flags.
pub(crate) struct Serve {
    pub(crate) http: Option<std::net::SocketAddr>,
    pub(crate) allow_remote: bool,
    pub(crate) policy: Vec<String>,
    pub(crate) yes: bool,
}

/// `cove mcp serve`: this worktree's plugin tools to one MCP client over stdio, or to any
/// number over Streamable HTTP with `--http`, until the client leaves (stdio), Ctrl-C or SIGTERM.
/// Nothing but the protocol goes to stdout.
pub(crate) fn serve(worktree: Option<PathBuf>, flags: Serve) -> Result<ExitCode> {
    use cove::mcp::serve::{HTTP_PATH, Server, bind, host_check};
    // Checked before anything loads: a refused address costs nothing.
    let hosts = flags
        .http
        .map(|addr| host_check(addr, flags.allow_remote))
        .transpose()?;
    let ws = super::open_narrowed(worktree)?;
    let policies = if flags.policy.is_empty() {
        ws.config.policy.clone()
    } else {
        flags.policy
    };
    let (server, problems) = Server::new(ws.registry.clone(), &policies, flags.yes)?;
    for p in problems {
        eprintln!("warning: {p}");
    }
    if flags.yes {
        eprintln!("note: --yes: calls a policy would ask about run without asking anyone");
    }
    let runtime = super::async_runtime()?;
    let stop = tokio_util::sync::CancellationToken::new();
    let root = ws.worktree.root().display().to_string();
    let served: Result<()> = runtime.block_on(async {
        let watcher = stop_on_signals(&stop)?;
        let served = match (flags.http, hosts) {
            (Some(addr), Some(hosts)) => {
                let listener = bind(addr).await?;
                let local = listener
                    .local_addr()
                    .with_context(|| format!("the address of the listener on {addr}"))?;
                eprintln!("serving the tools of {root}");
                eprintln!("listening on http://{local}{HTTP_PATH}");
                server.serve_http(listener, hosts, stop.clone()).await
            }
            _ => {
                eprintln!("serving the tools of {root} over stdio");
                server.serve_stdio(stop.clone()).await
            }
        };
        watcher.abort();
        Ok(served?)
    });
    // A read of stdin blocked on a blocking thread would hold the runtime's drop forever; a
    // tool call still running was told to stop when its request was dropped.
    runtime.shutdown_timeout(Duration::from_secs(2));
    served?;
    Ok(ExitCode::SUCCESS)
}

/// Cancel `stop` on Ctrl-C or SIGTERM.
fn stop_on_signals(
    stop: &tokio_util::sync::CancellationToken,
) -> Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("watching for SIGTERM")?;
    let stop = stop.clone();
    Ok(tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        stop.cancel();
    }))
}
