//! The MCP servers of one session: started in parallel in the background, their tools offered
//! as `mcp__<server>__<tool>` once they are up, their calls answered.
//!
//! Owns each server's life in the session (starting, up with its tools, failed with a reason
//! said once; its tools listed again on `notifications/tools/list_changed`) and starting a
//! stdio server inside the exec sandbox: confined to the worktree like a `bash` command, no
//! network unless its config grants it, an environment of the allow-list plus what the config
//! passes, secrets hidden. A slow or broken server never delays the first request: the loop
//! takes what is up at each request.
//! Must not decide whether a call may run (the policy gate did) or whether a server may start
//! (trust and the config did, before).

use crate::agent::dispatch::{ToolProgress, ToolResult};
use crate::conversation::ToolDef;
use crate::mcp::client::{McpTool, Server};
use crate::mcp::config::{ServerSpec, Transport, qualified, split};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a server may take to answer `initialize`.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(300);

/// What a stdio server may do beyond the worktree, from its config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grants {
    /// The network (off unless granted).
    pub net: bool,
}

/// One server to start.
#[derive(Debug, Clone)]
pub struct Planned {
    pub spec: ServerSpec,
    pub grants: Grants,
}

/// How many times a server that died is started again in one session.
pub const MAX_RESTARTS: u32 = 3;

/// A server's state.
enum Slot {
    Starting,
    Up {
        server: Arc<Server>,
        tools: Vec<McpTool>,
        /// Ends the task that keeps its tools listed (the server died and is started again).
        retire: CancellationToken,
    },
    Failed(String),
}

/// A server's state as `cove mcp list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub name: String,
    /// `starting`, `up` or `failed`.
    pub state: &'static str,
    pub tools: Vec<String>,
    pub error: Option<String>,
    pub protocol: Option<String>,
}

/// The servers of a session.
pub struct Hub {
    slots: Mutex<BTreeMap<String, Slot>>,
    plans: BTreeMap<String, Planned>,
    root: PathBuf,
    resources: crate::sandbox::Resources,
    /// How many times each server was started again after it died.
    restarts: Mutex<BTreeMap<String, u32>>,
    /// Failures not told yet (each is told once).
    untold: Mutex<Vec<String>>,
    changed: tokio::sync::Notify,
    stop: CancellationToken,
    /// Fired once: the servers may start (see [`Hub::go`]).
    go: CancellationToken,
}

/// How long servers wait for [`Hub::go`] before they start anyway.
const GO_AT_THE_LATEST: Duration = Duration::from_millis(500);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Hub {
    /// Start every planned server in the background, stdio ones in the sandbox over `worktree`
    /// (memory and disk bounds from `resources`), once [`Hub::go`] is called (or half a second
    /// has passed). Returns at once.
    pub fn start(
        planned: Vec<Planned>,
        worktree: &Path,
        resources: crate::sandbox::Resources,
    ) -> Arc<Hub> {
        let hub = Arc::new(Hub {
            slots: Mutex::new(
                planned
                    .iter()
                    .map(|p| (p.spec.name.clone(), Slot::Starting))
                    .collect(),
            ),
            plans: planned
                .iter()
                .map(|p| (p.spec.name.clone(), p.clone()))
                .collect(),
            root: worktree.to_path_buf(),
            resources,
            restarts: Mutex::new(BTreeMap::new()),
            untold: Mutex::new(Vec::new()),
            changed: tokio::sync::Notify::new(),
            stop: CancellationToken::new(),
            go: CancellationToken::new(),
        });
        for p in planned {
            tokio::spawn(hub.clone().run(p.spec.name));
        }
        hub
    }

    /// Start server `name` again after it died, after a pause that doubles each time, at most
    /// [`MAX_RESTARTS`] times; says so once each time.
    fn restart(self: &Arc<Self>, name: &str, why: &str) {
        let n = {
            let mut restarts = lock(&self.restarts);
            let n = restarts.entry(name.to_string()).or_default();
            *n += 1;
            *n
        };
        if let Some(Slot::Up { retire, .. }) = lock(&self.slots).get(name) {
            retire.cancel();
        }
        if n > MAX_RESTARTS {
            return self.fail(
                name,
                format!(
                    "{why}; it died {MAX_RESTARTS} times, so it is not started again this session"
                ),
            );
        }
        lock(&self.untold).push(format!("{why}; starting it again ({n} of {MAX_RESTARTS})"));
        lock(&self.slots).insert(name.to_string(), Slot::Starting);
        let (hub, name) = (self.clone(), name.to_string());
        tokio::spawn(async move {
            let pause = Duration::from_millis(250) * 2u32.pow(n - 1);
            tokio::select! {
                () = hub.stop.cancelled() => {}
                () = tokio::time::sleep(pause) => hub.run(name).await,
            }
        });
    }

    /// Let the servers start. A session calls it once the model's server has its first
    /// request, so that starting them (a sandboxed process each, on the session's one thread)
    /// does not delay that request; waiting for servers (`settle`, a call) calls it too.
    pub fn go(&self) {
        self.go.cancel();
    }

    /// Bring one server up, keep its tools listed, and report its failure.
    async fn run(self: Arc<Self>, name: String) {
        let Some(p) = self.plans.get(&name) else {
            return;
        };
        tokio::select! {
            () = self.stop.cancelled() => return,
            () = self.go.cancelled() => {}
            () = tokio::time::sleep(GO_AT_THE_LATEST) => {}
        }
        let started = tokio::select! {
            () = self.stop.cancelled() => return,
            s = connect(p, &self.root, self.resources) => s,
        };
        // The tmp directory goes when this task ends (the server stopped, or the session ended).
        let (server, _tmp) = match started {
            Ok((s, tmp)) => (Arc::new(s), tmp),
            Err(e) => return self.fail(&name, e),
        };
        let retire = CancellationToken::new();
        let mut changed = server.tools_changed();
        loop {
            match server.tools().await {
                Ok(tools) => {
                    lock(&self.slots).insert(
                        name.clone(),
                        Slot::Up {
                            server: server.clone(),
                            tools,
                            retire: retire.clone(),
                        },
                    );
                    self.changed.notify_waiters();
                }
                Err(e) => return self.fail(&name, e.to_string()),
            }
            tokio::select! {
                () = self.stop.cancelled() => break,
                () = retire.cancelled() => break,
                c = changed.changed() => if c.is_err() { break },
            }
        }
        if self.stop.is_cancelled() {
            lock(&self.slots).remove(&name);
        }
        if let Ok(server) = Arc::try_unwrap(server) {
            server.stop().await;
        }
    }

    fn fail(&self, name: &str, why: String) {
        tracing::warn!("MCP server `{name}`: {why}");
        lock(&self.slots).insert(name.to_string(), Slot::Failed(why.clone()));
        lock(&self.untold).push(why);
        self.changed.notify_waiters();
    }

    /// Failures not told yet, each once.
    pub fn take_failures(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.untold))
    }

    /// Wait until no server is starting any more, for `bound` at most.
    pub async fn settle(&self, bound: Duration) {
        self.go();
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let notified = self.changed.notified();
            if !lock(&self.slots)
                .values()
                .any(|s| matches!(s, Slot::Starting))
            {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    /// The tools of every server up now, as the model is offered them: by server, then in the
    /// server's order.
    pub fn defs(&self) -> Vec<ToolDef> {
        lock(&self.slots)
            .iter()
            .flat_map(|(name, slot)| match slot {
                Slot::Up { tools, .. } => tools
                    .iter()
                    .map(|t| ToolDef {
                        name: qualified(name, &t.name),
                        description: if t.description.is_empty() {
                            t.title.clone().unwrap_or_default()
                        } else {
                            t.description.clone()
                        },
                        input_schema: t.input_schema.clone(),
                    })
                    .collect(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// Every server's state.
    pub fn status(&self) -> Vec<Status> {
        lock(&self.slots)
            .iter()
            .map(|(name, slot)| match slot {
                Slot::Starting => Status {
                    name: name.clone(),
                    state: "starting",
                    tools: Vec::new(),
                    error: None,
                    protocol: None,
                },
                Slot::Up { server, tools, .. } => Status {
                    name: name.clone(),
                    state: "up",
                    tools: tools.iter().map(|t| t.name.clone()).collect(),
                    error: None,
                    protocol: Some(server.protocol_version()),
                },
                Slot::Failed(e) => Status {
                    name: name.clone(),
                    state: "failed",
                    tools: Vec::new(),
                    error: Some(e.clone()),
                    protocol: None,
                },
            })
            .collect()
    }

    /// Answer a permitted call of `mcp__<server>__<tool>` (the permission is spent on it); the
    /// server's progress notifications for it go to `progress` as they come.
    pub async fn call(
        self: &Arc<Self>,
        permitted: crate::agent::policy::Permitted,
        cancel: &CancellationToken,
        progress: &mut (dyn FnMut(&ToolProgress) + Send),
    ) -> ToolResult {
        let call = permitted.into_call();
        let input = match serde_json::from_str::<Value>(&call.input) {
            Ok(v) => v,
            Err(e) => return ToolResult::error(format!("invalid input: not JSON ({e})")),
        };
        self.call_tool(&call.tool, input, cancel, progress).await
    }

    async fn call_tool(
        self: &Arc<Self>,
        name: &str,
        input: Value,
        cancel: &CancellationToken,
        on_progress: &mut (dyn FnMut(&ToolProgress) + Send),
    ) -> ToolResult {
        let Some((server_name, tool)) = split(name) else {
            return ToolResult::error(format!("`{name}` is not an MCP tool name"));
        };
        // A call of a server still starting waits for it (its start is bounded).
        let starting = matches!(lock(&self.slots).get(server_name), Some(Slot::Starting));
        if starting {
            tokio::select! {
                () = self.settle(INIT_TIMEOUT + Duration::from_secs(5)) => {}
                () = cancel.cancelled() => return ToolResult::error("cancelled".into()),
            }
        }
        let (server, tool) = match lock(&self.slots).get(server_name) {
            // The server's own name of the tool: the model's may have been made to fit.
            Some(Slot::Up { server, tools, .. }) => match tools
                .iter()
                .find(|t| qualified(server_name, &t.name) == name || t.name == tool)
            {
                Some(t) => (server.clone(), t.name.clone()),
                None => {
                    return ToolResult::error(format!(
                        "MCP server `{server_name}` has no tool `{tool}`; its tools: {}",
                        tools
                            .iter()
                            .map(|t| qualified(server_name, &t.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            },
            Some(Slot::Starting) => {
                return ToolResult::error(format!(
                    "MCP server `{server_name}` is still starting; try again in a moment"
                ));
            }
            Some(Slot::Failed(e)) => return ToolResult::error(e.clone()),
            None => return ToolResult::error(format!("no MCP server `{server_name}`")),
        };
        // Subscribed before the call goes out, so its first notification is not missed. A
        // notification is this call's when it names a running call of the same tool (calls of
        // one agent run one at a time).
        let mut notes = Some(server.progress());
        let output = {
            let call = server.call(&tool, input, cancel.child_token(), CALL_TIMEOUT);
            tokio::pin!(call);
            loop {
                tokio::select! {
                    // What the server said before it answered is shown before the answer.
                    biased;
                    note = async {
                        use tokio::sync::broadcast::error::RecvError;
                        match notes.as_mut()?.recv().await {
                            Ok(p) => Some(Some(p)),
                            // Some were missed: the next one says where the call is.
                            Err(RecvError::Lagged(_)) => Some(None),
                            Err(RecvError::Closed) => None,
                        }
                    }, if notes.is_some() => match note {
                        Some(Some(p)) if p.tool.as_ref() == Some(&tool) => on_progress(&ToolProgress {
                            progress: p.progress,
                            total: p.total,
                            message: p.message,
                        }),
                        Some(_) => {}
                        None => notes = None,
                    },
                    out = &mut call => break out,
                }
            }
        };
        match output {
            Ok(out) => ToolResult {
                text: out.text,
                is_error: out.is_error,
            },
            Err(e @ crate::mcp::client::McpError::Closed { .. }) => {
                let tail = server.stderr_tail();
                let why = if tail.trim().is_empty() {
                    e.to_string()
                } else {
                    format!("{e}; its last words: {}", tail.trim())
                };
                drop(server);
                self.restart(server_name, &why);
                ToolResult::error(why)
            }
            Err(e) => ToolResult::error(e.to_string()),
        }
    }

    /// Stop every server.
    pub async fn stop(&self) {
        self.stop.cancel();
        let servers: Vec<Arc<Server>> = std::mem::take(&mut *lock(&self.slots))
            .into_values()
            .filter_map(|s| match s {
                Slot::Up { server, .. } => Some(server),
                _ => None,
            })
            .collect();
        drop(servers);
    }
}

/// Connect to one server: a stdio one started in the sandbox, with its own tmp directory (kept
/// as long as the server runs).
async fn connect(
    p: &Planned,
    root: &Path,
    resources: crate::sandbox::Resources,
) -> Result<(Server, Option<crate::sandbox::PrivateTmp>), String> {
    match &p.spec.transport {
        Transport::Http { url, headers } => Server::http(&p.spec.name, url, headers, INIT_TIMEOUT)
            .await
            .map(|s| (s, None))
            .map_err(|e| e.to_string()),
        Transport::Stdio { command, args, env } => {
            let tmp = crate::sandbox::PrivateTmp::new(&format!("mcp-{}", p.spec.name))
                .map_err(|e| format!("MCP server `{}`: no tmp directory: {e}", p.spec.name))?;
            let spec = crate::sandbox::Spec {
                argv: std::iter::once(command.clone())
                    .chain(args.iter().cloned())
                    .collect(),
                cwd: root.to_path_buf(),
                worktree: root.to_path_buf(),
                tmp: tmp.path().to_path_buf(),
                net: p.grants.net,
                deny: crate::sandbox::default_deny(),
                max_procs: 512,
                max_file_bytes: 1 << 30,
                // A server runs as long as the session: no CPU-time bound.
                cpu_secs: u64::MAX,
                memory_bytes: resources.memory_bytes,
                disk_bytes: resources.disk_bytes,
                env: env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                unsandboxed: crate::sandbox::unsandboxed(),
            };
            let cmd = crate::sandbox::command(&spec)
                .map_err(|e| format!("MCP server `{}` was not started: {e}", p.spec.name))?;
            Server::stdio(
                &p.spec.name,
                tokio::process::Command::from(cmd),
                INIT_TIMEOUT,
            )
            .await
            .map(|s| (s, Some(tmp)))
            .map_err(|e| e.to_string())
        }
    }
}

/// The servers a session starts: `.mcp.json`'s (`mcp_json`: given only when the repository is
/// trusted), then `[mcp.servers]` of cove's config (a name in both: the config's), less the
/// disabled ones, each with its grants; with what could not be used, one line each.
pub fn plan(
    config: &crate::config::McpConfig,
    mcp_json: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Vec<Planned>, Vec<String>) {
    let mut problems = Vec::new();
    let mut specs: BTreeMap<String, ServerSpec> = BTreeMap::new();
    if let Some(text) = mcp_json {
        match crate::mcp::config::parse_mcp_json(text, env) {
            Ok(list) => specs.extend(list.into_iter().map(|s| (s.name.clone(), s))),
            Err(e) => problems.push(format!(".mcp.json: {e}")),
        }
    }
    for (name, entry) in &config.servers.0 {
        match entry.resolve(name, env) {
            Ok(spec) => {
                specs.insert(name.clone(), spec);
            }
            Err(e) => problems.push(format!("[mcp.servers.{name}]: {e}")),
        }
    }
    let planned = specs
        .into_values()
        .filter(|s| !config.disabled.contains(&s.name))
        .map(|spec| Planned {
            grants: Grants {
                net: config.net.contains(&spec.name),
            },
            spec,
        })
        .collect();
    (planned, problems)
}
