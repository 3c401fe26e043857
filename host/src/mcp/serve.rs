//! `cove mcp serve`: cove as an MCP *server*, offering one worktree's plugin tools (the
//! components, in their sandbox, under the configured policies) to other MCP clients over stdio
//! or Streamable HTTP.
//!
//! Owns the server side of the protocol (rmcp's `ServerHandler`): the tool list, each call
//! through the same policy gate as `cove tools call` (role `mcp`), asking the client's user
//! through `elicitation/create` when a policy asks, the MCP request's cancellation turned into
//! the plugin's, and the HTTP listener (hyper, path `/mcp`, rmcp's `Host` check against DNS
//! rebinding kept).
//!
//! Must not offer the host's own tools (`skill`, `tool_search`, `recall`, `task`, `ask`/`send`:
//! they act on a session there is none of) or this worktree's own MCP servers' tools (a client
//! that is one of them would call itself), decide a call itself (the gate and the client's user
//! do), or write anything to stdout (in stdio mode it is the protocol's).

use crate::agent::dispatch::{self, ToolCall, ToolResult};
use crate::agent::policy::{Context as PolicyContext, Decision, Gate, Pending};
use crate::plugins::registry::Registry;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ElicitRequestParams,
    ElicitResult, ElicitationAction, ElicitationSchema, Implementation, JsonObject,
    ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ProtocolVersion,
    ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use std::borrow::Cow;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_util::sync::CancellationToken;

/// The role policies see for a call that came in over MCP.
pub const ROLE: &str = "mcp";
/// Where the Streamable HTTP endpoint answers.
pub const HTTP_PATH: &str = "/mcp";
/// The property of the yes/no form a policy's question becomes.
const APPROVE: &str = "approve";

/// Why the server could not start or went down.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A policy named in the config or on the command line is not an enabled policy plugin.
    #[error("{0}")]
    Policy(String),
    /// An address other clients could reach, without `--allow-remote`.
    #[error(
        "{0} is not a loopback address: anyone who can reach it could run this worktree's tools, \
         which write files and run commands in it; serve on 127.0.0.1 or [::1], or pass \
         --allow-remote if you mean it"
    )]
    Remote(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the MCP client did not initialize the session: {0}")]
    Initialize(String),
    #[error("the server stopped: {0}")]
    Stopped(String),
}

/// One worktree's tools as an MCP server. Cheap to clone: one per HTTP session.
#[derive(Clone)]
pub struct Server {
    registry: Arc<Registry>,
    gate: Gate,
    assume_yes: bool,
    tools: Arc<Vec<Tool>>,
    offered: Arc<HashSet<String>>,
}

impl Server {
    /// A server for `registry`'s plugin tools (loading their plugins now), deciding calls with
    /// the policies `policies` (none: the default policy) and, with `assume_yes`, approving
    /// what a policy would ask about. Also gives the plugins that would not load, for stderr.
    ///
    /// # Errors
    /// [`ServeError::Policy`] when a policy is not an enabled policy plugin.
    pub fn new(
        registry: Arc<Registry>,
        policies: &[String],
        assume_yes: bool,
    ) -> Result<(Self, Vec<String>), ServeError> {
        let gate = Gate::new(&registry, policies).map_err(ServeError::Policy)?;
        // The plugin tools only: `model_tools` leaves out host tools and MCP servers' tools.
        let (defs, read_only, problems) = registry.model_tools();
        let tools: Vec<Tool> = defs
            .into_iter()
            .map(|d| {
                let schema = match d.input_schema {
                    serde_json::Value::Object(o) => o,
                    _ => JsonObject::new(),
                };
                let hint = read_only.get(&d.name).copied().unwrap_or(false);
                // MCP wants an object at the root of an output schema (structuredContent is
                // an object): a tool whose output is something else gives text only.
                let output = registry.output_schema(&d.name).and_then(|o| match o {
                    serde_json::Value::Object(o) if o.get("type") == Some(&"object".into()) => {
                        Some(o)
                    }
                    _ => None,
                });
                let tool = Tool::new(d.name, d.description, Arc::new(schema))
                    .annotate(ToolAnnotations::new().read_only(hint));
                match output {
                    Some(o) => tool.with_raw_output_schema(Arc::new(o)),
                    None => tool,
                }
            })
            .collect();
        let offered = tools.iter().map(|t| t.name.to_string()).collect();
        Ok((
            Self {
                registry,
                gate,
                assume_yes,
                tools: Arc::new(tools),
                offered: Arc::new(offered),
            },
            problems,
        ))
    }

    /// Serve one client over this process's stdin and stdout until it closes stdin or `stop`
    /// is cancelled.
    ///
    /// # Errors
    /// The client never initialized, or the service task failed.
    pub async fn serve_stdio(self, stop: CancellationToken) -> Result<(), ServeError> {
        let transport = (tokio::io::stdin(), tokio::io::stdout());
        let running = tokio::select! {
            r = rmcp::serve_server(self, transport) => {
                r.map_err(|e| ServeError::Initialize(e.to_string()))?
            }
            () = stop.cancelled() => return Ok(()),
        };
        let guard = running.cancellation_token();
        tokio::select! {
            r = running.waiting() => r.map(|_| ()).map_err(|e| ServeError::Stopped(e.to_string())),
            () = stop.cancelled() => {
                guard.cancel();
                Ok(())
            }
        }
    }

    /// Serve Streamable HTTP at [`HTTP_PATH`] on `listener` until `stop` is cancelled. Requests
    /// must name a loopback `Host` unless `remote_hosts` widens the list (`None`: any host,
    /// for a wildcard address served with `--allow-remote`).
    ///
    /// # Errors
    /// Accepting connections failed.
    pub async fn serve_http(
        self,
        listener: tokio::net::TcpListener,
        remote_hosts: HostCheck,
        stop: CancellationToken,
    ) -> Result<(), ServeError> {
        let mut config = StreamableHttpServerConfig::default();
        config.cancellation_token = stop.child_token();
        match remote_hosts {
            HostCheck::Loopback => {}
            HostCheck::Also(host) => config.allowed_hosts.push(host),
            HostCheck::Any => config = config.disable_allowed_hosts(),
        }
        let service = StreamableHttpService::new(
            move || Ok(self.clone()),
            Arc::new(LocalSessionManager::default()),
            config,
        );
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    // A connection that failed before it was accepted (reset, out of
                    // descriptors): the next may work.
                    Err(e) => {
                        tracing::warn!("accepting a connection: {e}");
                        continue;
                    }
                },
                () = stop.cancelled() => return Ok(()),
            };
            let service = service.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let handler = hyper::service::service_fn(move |req| {
                    let service = service.clone();
                    async move {
                        if req.uri().path() == HTTP_PATH {
                            Ok::<_, std::convert::Infallible>(service.handle(req).await)
                        } else {
                            Ok(not_found())
                        }
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, handler);
                tokio::select! {
                    r = conn => if let Err(e) = r {
                        tracing::debug!("MCP HTTP connection: {e}");
                    },
                    () = stop.cancelled() => {}
                }
            });
        }
    }

    /// One call from the client: offered, permitted, run (cancellable, its progress sent as
    /// `notifications/progress` when the client gave a token), as an MCP result.
    async fn run(
        &self,
        request: CallToolRequestParams,
        cx: &RequestContext<RoleServer>,
    ) -> dispatch::Answer {
        let tool = request.name.to_string();
        if !self.offered.contains(&tool) {
            let mut names: Vec<&str> = self.offered.iter().map(String::as_str).collect();
            names.sort_unstable();
            return dispatch::Answer::from(ToolResult::error(format!(
                "unknown tool `{tool}`; this server offers: {}",
                names.join(", ")
            )));
        }
        let input = serde_json::Value::Object(request.arguments.unwrap_or_default()).to_string();
        let call = ToolCall { tool, input };
        let (registry, gate) = (self.registry.clone(), self.gate.clone());
        // Policies are components: deciding runs wasm, off the async thread.
        let decision = match tokio::task::spawn_blocking(move || {
            gate.decide(&registry, call, &PolicyContext::outside_session(ROLE))
        })
        .await
        {
            Ok(d) => d,
            Err(e) => return ToolResult::error(format!("deciding the call failed: {e}")).into(),
        };
        let permitted = match decision {
            Decision::Allow(p) => p,
            Decision::Deny(why) => {
                return ToolResult::error(format!("denied by policy: {why}")).into();
            }
            Decision::Ask(pending) if self.assume_yes => pending.approve(),
            Decision::Ask(pending) => match self.ask(pending, cx).await {
                Ok(p) => p,
                Err(refused) => return refused.into(),
            },
        };
        let cancel = Arc::new(AtomicBool::new(false));
        // Also set if rmcp drops this request's future (the session ended, the server stops):
        // the plugin stops instead of running on for nobody.
        let _stop = SetOnDrop(cancel.clone());
        let registry = self.registry.clone();
        let flag = cancel.clone();
        // The plugin's progress reports, sent below as notifications on the client's token.
        let token = cx.meta.get_progress_token();
        let (tx, mut reports) = tokio::sync::mpsc::unbounded_channel();
        let progress = token.is_some().then(|| {
            crate::plugins::runtime::ProgressSink::new(move |p| {
                let _ = tx.send(p);
            })
        });
        let job = tokio::task::spawn_blocking(move || {
            dispatch::answer(&registry, permitted, Some(flag), progress)
        });
        tokio::pin!(job);
        let result = loop {
            // Reports first: the call's reports are all queued before it ends, so each is sent
            // before the result.
            tokio::select! {
                biased;
                Some(p) = reports.recv() => {
                    if let Some(token) = &token {
                        let _ = cx.peer.notify_progress(progress_note(token.clone(), p)).await;
                    }
                }
                r = &mut job => break r,
                () = cx.ct.cancelled() => {
                    cancel.store(true, Ordering::Relaxed);
                    // Wait for it to stop (within an epoch tick, or its command's process-group
                    // kill), so nothing of this call still runs once its request is over.
                    break (&mut job).await;
                }
            }
        };
        result.unwrap_or_else(|e| ToolResult::error(format!("the call failed: {e}")).into())
    }

    /// Ask the client's user about `pending` with a yes/no form; the permission on yes, else the
    /// result that says why the call did not run.
    async fn ask(
        &self,
        pending: Pending,
        cx: &RequestContext<RoleServer>,
    ) -> Result<crate::agent::policy::Permitted, ToolResult> {
        let call = pending.call();
        let can_ask = cx
            .client_capabilities()
            .is_some_and(|c| c.elicitation.is_some());
        if !can_ask {
            return Err(ToolResult::error(format!(
                "policy asks before this call ({}), and this MCP client cannot be asked: it did \
                 not declare the elicitation capability. Nothing ran. To allow it, restart \
                 `cove mcp serve` with `--policy trusted` or `--yes`, or use a policy that \
                 allows `{}` (policies now: {})",
                pending.question,
                call.tool,
                self.gate.names().join(", ")
            )));
        }
        let schema = ElicitationSchema::builder()
            .required_bool_with(APPROVE, |b| {
                b.title(format!("Run `{}`", call.tool))
                    .description("Yes runs this call once; no refuses it.")
            })
            .build()
            .map_err(|e| ToolResult::error(format!("cannot build the question: {e}")))?;
        let message = format!(
            "cove: a policy asks before `{}` runs in {}.\n{}\nInput: {}",
            call.tool,
            self.registry.worktree().root().display(),
            pending.question,
            call.input
        );
        let request = cx
            .peer
            .create_elicitation(ElicitRequestParams::FormElicitationParams {
                meta: None,
                message,
                requested_schema: schema,
            });
        let answer: ElicitResult = tokio::select! {
            r = request => r.map_err(|e| ToolResult::error(format!(
                "policy asks before this call ({}), and asking the client's user failed: {e}. Nothing ran.",
                pending.question
            )))?,
            () = cx.ct.cancelled() => return Err(ToolResult::error("cancelled while asking the user; nothing ran".into())),
        };
        let yes = matches!(answer.action, ElicitationAction::Accept)
            && answer
                .content
                .as_ref()
                .and_then(|c| c.get(APPROVE))
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
        if yes {
            Ok(pending.approve())
        } else {
            Err(ToolResult::error(format!(
                "denied: the user declined ({}). Nothing ran.",
                pending.question
            )))
        }
    }
}

/// Which `Host` headers the HTTP server answers, besides loopback names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostCheck {
    /// `localhost`, `127.0.0.1`, `::1` (rmcp's default, against DNS rebinding).
    Loopback,
    /// Those and this host (the address served with `--allow-remote`).
    Also(String),
    /// Any (a wildcard address served with `--allow-remote`: its names are unknown).
    Any,
}

/// Whether `addr` may be served: loopback always, anything else only with `allow_remote`; and
/// which hosts requests may then name.
///
/// # Errors
/// [`ServeError::Remote`] for a non-loopback address without `allow_remote`.
pub fn host_check(addr: SocketAddr, allow_remote: bool) -> Result<HostCheck, ServeError> {
    let ip = addr.ip();
    if ip.is_loopback() {
        return Ok(HostCheck::Loopback);
    }
    if !allow_remote {
        return Err(ServeError::Remote(addr));
    }
    Ok(if ip.is_unspecified() {
        HostCheck::Any
    } else {
        HostCheck::Also(ip.to_string())
    })
}

/// Bind `addr` for [`Server::serve_http`].
///
/// # Errors
/// [`ServeError::Bind`].
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

fn not_found()
-> http::Response<http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>> {
    let mut response = http::Response::new(
        Full::new(Bytes::from(format!(
            "not found: cove serves MCP at {HTTP_PATH}\n"
        )))
        .boxed(),
    );
    *response.status_mut() = http::StatusCode::NOT_FOUND;
    response
}

/// Sets the flag when dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn progress_note(
    token: rmcp::model::ProgressToken,
    p: crate::plugins::runtime::Progress,
) -> ProgressNotificationParam {
    let mut note = ProgressNotificationParam::new(token, p.done as f64);
    if let Some(total) = p.total {
        note = note.with_total(total as f64);
    }
    if !p.message.is_empty() {
        note = note.with_message(p.message);
    }
    note
}

fn to_mcp(answer: dispatch::Answer) -> CallToolResult {
    let result = answer.result;
    let content = vec![ContentBlock::text(result.text)];
    let mut out = if result.is_error {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    };
    // The tool's own JSON, when it is an object (what an output schema describes).
    out.structured_content = answer.structured.filter(serde_json::Value::is_object);
    out
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
            .with_server_info(Implementation::new("cove", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "cove's sandboxed tools over the worktree {}: each call passes cove's policies.",
                self.registry.worktree().root().display()
            ))
    }

    /// The versions with `initialize`: a policy's question is a server-to-client request
    /// (`elicitation/create`), which later versions forbid.
    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        ProtocolVersion::KNOWN_VERSIONS
            .iter()
            .filter(|v| v.has_initialize())
            .cloned()
            .collect()
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _cx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        Ok(to_mcp(self.run(request, &cx).await).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_without_allow_remote() -> Result<(), String> {
        let local: SocketAddr = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
        let v6: SocketAddr = "[::1]:8765".parse().map_err(|e| format!("{e}"))?;
        let lan: SocketAddr = "192.168.1.5:8765".parse().map_err(|e| format!("{e}"))?;
        let any: SocketAddr = "0.0.0.0:8765".parse().map_err(|e| format!("{e}"))?;
        assert_eq!(host_check(local, false).ok(), Some(HostCheck::Loopback));
        assert_eq!(host_check(v6, false).ok(), Some(HostCheck::Loopback));
        let refused = host_check(lan, false).err().map(|e| e.to_string());
        assert!(
            refused
                .as_deref()
                .is_some_and(|m| m.contains("--allow-remote") && m.contains("run commands")),
            "{refused:?}"
        );
        assert!(host_check(any, false).is_err());
        assert_eq!(
            host_check(lan, true).ok(),
            Some(HostCheck::Also("192.168.1.5".into()))
        );
        assert_eq!(host_check(any, true).ok(), Some(HostCheck::Any));
        Ok(())
    }
}
