//! One connected MCP server, through the official Rust SDK (`rmcp`): start it (a child process
//! over stdio, or a Streamable HTTP endpoint), offering protocol version 2025-11-25 and refusing
//! an answer outside [`SUPPORTED_PROTOCOL_VERSIONS`], list its tools, call them with a timeout and
//! cancellation, and pass on its progress and tool-list-changed notifications.
//!
//! Owns the child's pipes and its end: stderr is drained into a small tail (for error messages)
//! and logged at debug; stdout is watched for lines that are not JSON-RPC, so a server that
//! prints a banner or crashes with text on stdout gets an error that says so instead of a
//! silent hang; `stop` closes stdin, then sends SIGTERM, then SIGKILL.
//!
//! Must not build the child's command (the caller does, inside its sandbox), decide whether a
//! tool may run, or read configuration (that is `config`).

mod http_client;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig,
    ClientRequest, ContentBlock, Implementation, ProgressNotificationParam, ProtocolVersion,
    ResourceContents, ServerResult, Tool,
};
use rmcp::service::{
    ClientInitializeError, NotificationContext, PeerRequestOptions, RequestHandle, RunningService,
};
use rmcp::transport::streamable_http_client::{
    StreamableHttpClientTransportConfig, StreamableHttpError,
};
use rmcp::transport::{DynamicTransportError, StreamableHttpClientTransport};
use rmcp::{ClientHandler, RoleClient, ServiceError, ServiceExt};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::process::{Child, ChildStderr, Command};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How much of a stdio server's stderr is kept for error messages.
const STDERR_TAIL_BYTES: usize = 2048;
/// How long `stop` waits after closing stdin, and again after SIGTERM.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// How long a failed start waits for the child's exit status and the rest of its stderr (long
/// enough for a loaded machine: the status is what tells a crash from garbage).
const DEATH_GRACE: Duration = Duration::from_secs(5);
/// How long sending `notifications/cancelled` may take before it is given up.
const CANCEL_SEND_LIMIT: Duration = Duration::from_secs(5);
/// Progress notifications buffered per receiver before the slowest loses the oldest.
const PROGRESS_BUFFER: usize = 256;
/// The protocol version cove offers in `initialize`: the newest that still has that handshake,
/// which is what rmcp's `serve` performs (rmcp's default, 2026-07-28, has none).
pub const OFFERED_PROTOCOL_VERSION: ProtocolVersion = ProtocolVersion::V_2025_11_25;
/// The versions a server may answer `initialize` with, newest first: the one offered and the
/// older ones rmcp still speaks (a server that cannot speak the offered version answers with
/// another it supports). Any other answer is refused: rmcp itself would take it as it is.
pub const SUPPORTED_PROTOCOL_VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_03_26,
    ProtocolVersion::V_2024_11_05,
];
/// Headers the Streamable HTTP transport sets itself.
const RESERVED_HEADERS: &[&str] = &[
    "accept",
    "content-type",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
];

/// A tool of a server, as `tools/list` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct McpTool {
    /// The server's own name for it (not qualified with `mcp__<server>__`).
    pub name: String,
    /// A human-readable title: the tool's `title`, else its annotations' `title`.
    pub title: Option<String>,
    /// Empty when the server gives none.
    pub description: String,
    /// A JSON Schema object for the arguments.
    pub input_schema: Value,
    /// A JSON Schema for `structuredContent`, when the tool promises one.
    pub output_schema: Option<Value>,
    /// The server's hint that the tool changes nothing. A hint only: never a permission.
    pub read_only_hint: Option<bool>,
}

/// What a tool call returned.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutput {
    /// All content as text, one block per line: text blocks as they are, images as
    /// `[image: MIME, N bytes]` (audio alike), resource links as `[resource: URI (NAME)]`,
    /// embedded resources as their text (binary ones as `[resource: URI, MIME, N bytes]`).
    /// When there is no content but structured content, that JSON.
    pub text: String,
    /// `structuredContent`, when the tool returned it.
    pub structured: Option<Value>,
    /// The tool reports failure (`isError`): the text says why, for the model to read.
    pub is_error: bool,
}

/// A `notifications/progress` for a running call.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The call's progress token (each call sends its own).
    pub token: String,
    /// The tool of the call, when the token belongs to a call of this `Server` still running.
    pub tool: Option<String>,
    /// Grows with each notification, even when the total is unknown.
    pub progress: f64,
    /// What `progress` counts towards, when known.
    pub total: Option<f64>,
    /// What the server says it is doing.
    pub message: Option<String>,
}

/// Why a server could not be used; every message names the server.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// Could not spawn or connect, or the server died (or refused) before answering
    /// `initialize`. `stderr_tail` holds the last ~2 KB it wrote to stderr (stdio only).
    #[error("MCP server `{server}` could not start: {message}{tail}", tail = tail_section(.stderr_tail))]
    Start {
        /// The server's name, as given to `stdio`/`http`.
        server: String,
        /// What went wrong, for people.
        message: String,
        /// The end of its stderr (empty over HTTP).
        stderr_tail: String,
    },
    /// No answer to `initialize` in time.
    #[error("MCP server `{server}` did not answer `initialize` within {}s", .after.as_secs_f32())]
    InitTimeout {
        /// The server's name.
        server: String,
        /// The init timeout that passed.
        after: Duration,
    },
    /// The server broke the protocol: text that is not JSON-RPC on stdout, a reply of the
    /// wrong kind.
    #[error("MCP server `{server}`: {message}")]
    Protocol {
        /// The server's name.
        server: String,
        /// What it did wrong, for people.
        message: String,
    },
    /// The server answered a call (or a listing) with a JSON-RPC error, or the request could
    /// not be sent.
    #[error("MCP server `{server}`: `{tool}` failed: {message}")]
    Call {
        /// The server's name.
        server: String,
        /// The tool (or the request, such as `tools/list`).
        tool: String,
        /// The server's error message, or why the request could not be sent.
        message: String,
    },
    /// The server answered `initialize` with a protocol version cove does not speak; the
    /// connection was closed.
    #[error(
        "MCP server `{server}` answered `initialize` with protocol version `{version}`, which cove does not speak (it offered {offered}; it accepts {accepted})",
        offered = OFFERED_PROTOCOL_VERSION,
        accepted = supported_versions_text()
    )]
    UnsupportedVersion {
        /// The server's name.
        server: String,
        /// The version it answered with.
        version: String,
    },
    /// The connection ended: the server exited (see [`Server::stderr_tail`] for why).
    #[error("MCP server `{server}` closed the connection (it may have exited)")]
    Closed {
        /// The server's name.
        server: String,
    },
    /// The caller cancelled the call; the server was sent `notifications/cancelled`.
    #[error("the MCP call was cancelled")]
    Cancelled,
    /// The call took longer than its timeout; the server was sent `notifications/cancelled`.
    #[error("the MCP call timed out")]
    Timeout,
}

fn supported_versions_text() -> String {
    SUPPORTED_PROTOCOL_VERSIONS
        .iter()
        .map(ProtocolVersion::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn tail_section(stderr_tail: &str) -> String {
    if stderr_tail.trim().is_empty() {
        String::new()
    } else {
        format!(
            "\n--- its stderr (last lines) ---\n{}",
            stderr_tail.trim_end()
        )
    }
}

/// Lock a mutex that a panicking thread may have left poisoned: the data here (counters, text)
/// stays usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An error and its sources, on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// What went wrong in a transport, without rmcp's wrapping (whose text names Rust types) and
/// with the causes of an HTTP failure (refused connection, DNS, TLS) that rmcp leaves out.
fn transport_error_text(error: &DynamicTransportError) -> String {
    let inner = error.error.as_ref();
    match inner.downcast_ref::<StreamableHttpError<reqwest::Error>>() {
        Some(StreamableHttpError::Client(e)) => chain(e),
        _ => chain(inner),
    }
}

fn init_error_text(error: &ClientInitializeError) -> String {
    match error {
        ClientInitializeError::TransportError { error, context } => {
            format!("{} ({context})", transport_error_text(error))
        }
        other => chain(other),
    }
}

/// Progress tokens of running calls, to their tools.
type Calls = Arc<Mutex<HashMap<String, String>>>;

/// Forgets a call's progress token when the call ends, however it ends.
struct CallGuard {
    calls: Calls,
    token: String,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        lock(&self.calls).remove(&self.token);
    }
}

/// rmcp's side of the connection: what the server may tell us.
struct Handler {
    server: String,
    tools_changed: watch::Sender<u64>,
    progress: broadcast::Sender<Progress>,
    calls: Calls,
}

impl ClientHandler for Handler {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let token = params.progress_token.0.to_string();
        let tool = lock(&self.calls).get(&token).cloned();
        // No receiver is fine: nobody is watching progress.
        let _ = self.progress.send(Progress {
            token,
            tool,
            progress: params.progress,
            total: params.total,
            message: params.message,
        });
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        tracing::debug!(server = %self.server, "MCP server's tool list changed");
        self.tools_changed
            .send_modify(|generation| *generation += 1);
    }

    fn get_info(&self) -> ClientConfig {
        // No capabilities: cove answers no sampling, elicitation or roots requests, so servers
        // must not plan on them.
        let mut info = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION")),
        );
        info.protocol_version = OFFERED_PROTOCOL_VERSION;
        info
    }
}

/// What a `Server` keeps of its handler's channels.
struct Channels {
    tools_changed: watch::Receiver<u64>,
    progress: broadcast::Sender<Progress>,
    calls: Calls,
}

fn handler(server: &str) -> (Handler, Channels) {
    let (tools_changed, tools_changed_rx) = watch::channel(0);
    let (progress, _) = broadcast::channel(PROGRESS_BUFFER);
    let calls = Calls::default();
    let handler = Handler {
        server: server.to_owned(),
        tools_changed,
        progress: progress.clone(),
        calls: calls.clone(),
    };
    let channels = Channels {
        tools_changed: tools_changed_rx,
        progress,
        calls,
    };
    (handler, channels)
}

/// The last bytes a child wrote to stderr.
#[derive(Default)]
struct Tail {
    bytes: VecDeque<u8>,
    cut: bool,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend(chunk);
        let excess = self.bytes.len().saturating_sub(STDERR_TAIL_BYTES);
        if excess > 0 {
            self.bytes.drain(..excess);
            self.cut = true;
        }
    }

    fn text(&self) -> String {
        let bytes: Vec<u8> = self.bytes.iter().copied().collect();
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        if self.cut {
            // Start at a whole line when one begins near the cut.
            if let Some(newline) = text.find('\n').filter(|at| *at < 200) {
                text.drain(..=newline);
            }
            text.insert(0, '…');
        }
        text
    }
}

/// Read a child's stderr to its end: keep the tail, log each line at debug.
async fn drain_stderr(server: String, mut stderr: ChildStderr, tail: Arc<Mutex<Tail>>) {
    let mut buf = [0u8; 4096];
    let mut line = Vec::new();
    loop {
        let n = match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        lock(&tail).push(&buf[..n]);
        for &byte in &buf[..n] {
            if byte == b'\n' {
                tracing::debug!(server = %server, "MCP server stderr: {}", String::from_utf8_lossy(&line));
                line.clear();
            } else if line.len() < 4096 {
                line.push(byte);
            }
        }
    }
    if !line.is_empty() {
        tracing::debug!(server = %server, "MCP server stderr: {}", String::from_utf8_lossy(&line));
    }
}

/// Lines on a child's stdout that cannot be JSON-RPC.
#[derive(Default)]
struct Garbage {
    lines: usize,
    first: String,
}

impl Garbage {
    /// ", and wrote N line(s) to stdout that are not JSON-RPC, the first: `...`", or nothing.
    fn summary(&self) -> Option<String> {
        (self.lines > 0).then(|| {
            format!(
                "it wrote {} line{} to stdout that {} not JSON-RPC, the first: `{}` (an MCP stdio \
                 server must write only JSON-RPC messages to stdout; logs belong on stderr)",
                self.lines,
                if self.lines == 1 { "" } else { "s" },
                if self.lines == 1 { "is" } else { "are" },
                self.first
            )
        })
    }
}

/// Judge what is left of a dead server's stdout once rmcp lets go of it (bounded by
/// [`DEATH_GRACE`]).
async fn read_rest<R: AsyncRead + Unpin>(
    salvaged: tokio::sync::oneshot::Receiver<R>,
    server: &str,
    garbage: Arc<Mutex<Garbage>>,
) {
    let _ = tokio::time::timeout(DEATH_GRACE, async {
        let Ok(rest) = salvaged.await else {
            return;
        };
        let mut rest = WatchedStdout::new(rest, server, garbage);
        let mut buf = [0u8; 4096];
        while matches!(rest.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// A child's stdout, passed through to rmcp as it is, noting lines that do not start like a
/// JSON-RPC message. rmcp skips such lines without a word, and a server whose every line is
/// skipped would otherwise look like one that is merely slow.
struct WatchedStdout<R> {
    /// Taken only when it is handed back through `salvage`.
    inner: Option<R>,
    /// Where the pipe goes when rmcp lets go of it (a start that failed, say), so what the
    /// server wrote that rmcp never read can still be judged.
    salvage: Option<tokio::sync::oneshot::Sender<R>>,
    server: String,
    garbage: Arc<Mutex<Garbage>>,
    /// Whether the current line's first non-blank byte has been seen.
    judged: bool,
    /// The start of the current line, when it is garbage.
    current: Option<Vec<u8>>,
}

impl<R> WatchedStdout<R> {
    fn new(inner: R, server: &str, garbage: Arc<Mutex<Garbage>>) -> Self {
        Self {
            inner: Some(inner),
            salvage: None,
            server: server.to_owned(),
            garbage,
            judged: false,
            current: None,
        }
    }

    fn observe(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if byte == b'\n' {
                self.end_line();
            } else if !self.judged {
                if !matches!(byte, b' ' | b'\t' | b'\r') {
                    self.judged = true;
                    if byte != b'{' && byte != b'[' {
                        self.current = Some(vec![byte]);
                    }
                }
            } else if let Some(line) = self.current.as_mut().filter(|line| line.len() < 200) {
                line.push(byte);
            }
        }
    }

    fn end_line(&mut self) {
        self.judged = false;
        let Some(line) = self.current.take() else {
            return;
        };
        let line = String::from_utf8_lossy(&line).trim_end().to_owned();
        tracing::warn!(server = %self.server, "MCP server wrote a line that is not JSON-RPC to stdout: {line}");
        let mut garbage = lock(&self.garbage);
        garbage.lines += 1;
        if garbage.lines == 1 {
            garbage.first = line;
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for WatchedStdout<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let poll = Pin::new(inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            let read = &buf.filled()[before..];
            if read.is_empty() {
                // End of stdout: a last line without a newline counts too.
                this.end_line();
            } else {
                this.observe(read);
            }
        }
        poll
    }
}

impl<R> Drop for WatchedStdout<R> {
    fn drop(&mut self) {
        if let (Some(tx), Some(inner)) = (self.salvage.take(), self.inner.take()) {
            // Nobody waiting is fine: then nobody wants the rest.
            let _ = tx.send(inner);
        }
    }
}

/// A stdio server's process and what is read from its stderr.
struct ChildProcess {
    child: Child,
    stderr: Arc<Mutex<Tail>>,
    stderr_task: JoinHandle<()>,
}

impl ChildProcess {
    /// Send `signal` to the child, and to its whole process group when it leads one (cove's
    /// sandbox helper calls `setsid`), so what it started goes too. The group is never made
    /// here: a child already leading a group could not `setsid`.
    fn signal(&self, signal: rustix::process::Signal) {
        let Some(pid) = self
            .child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw)
        else {
            return;
        };
        let leads_group = rustix::process::getpgid(Some(pid)).is_ok_and(|group| group == pid);
        let sent = if leads_group {
            rustix::process::kill_process_group(pid, signal)
        } else {
            rustix::process::kill_process(pid, signal)
        };
        if let Err(e) = sent {
            tracing::debug!(
                pid = pid.as_raw_nonzero().get(),
                "could not signal an MCP server: {e}"
            );
        }
    }

    async fn exited_within(&mut self, grace: Duration) -> Option<ExitStatus> {
        tokio::time::timeout(grace, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    }

    /// Stop a child whose stdin is already closed: wait, SIGTERM, wait, SIGKILL.
    async fn shut_down(&mut self, server: &str) {
        if self.exited_within(EXIT_GRACE).await.is_some() {
            return;
        }
        tracing::debug!(
            server,
            "MCP server still running after stdin closed: SIGTERM"
        );
        self.signal(rustix::process::Signal::TERM);
        if self.exited_within(EXIT_GRACE).await.is_some() {
            return;
        }
        tracing::debug!(server, "MCP server still running after SIGTERM: SIGKILL");
        self.kill().await;
    }

    async fn kill(&mut self) {
        self.signal(rustix::process::Signal::KILL);
        if let Err(e) = self.child.kill().await {
            tracing::debug!("could not kill an MCP server: {e}");
        }
    }

    /// The stderr tail once the child's stderr has ended (or after a short wait).
    async fn final_tail(&mut self) -> String {
        let _ = tokio::time::timeout(DEATH_GRACE, &mut self.stderr_task).await;
        lock(&self.stderr).text()
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        // `kill_on_drop` kills the child itself; its group, if it leads one, is killed here.
        if matches!(self.child.try_wait(), Ok(None)) {
            self.signal(rustix::process::Signal::KILL);
        }
    }
}

/// One connected MCP server. Dropping it kills a stdio server at once; [`Server::stop`] lets it
/// exit cleanly first.
pub struct Server {
    name: String,
    service: RunningService<RoleClient, Handler>,
    protocol_version: String,
    /// The bound on requests without a timeout of their own (listing tools): the init timeout.
    request_timeout: Duration,
    channels: Channels,
    child: Option<ChildProcess>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("name", &self.name)
            .field("protocol_version", &self.protocol_version)
            .field("stdio", &self.child.is_some())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Stdio: the caller builds the child's Command (cove wraps it in its sandbox), so take a
    /// tokio::process::Command as is. Its stdin, stdout and stderr are replaced by pipes, and it
    /// is killed when the `Server` is dropped.
    pub async fn stdio(
        name: &str,
        mut command: Command,
        init_timeout: Duration,
    ) -> Result<Server, McpError> {
        let program = command
            .as_std()
            .get_program()
            .to_string_lossy()
            .into_owned();
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let start_error = |message: String, stderr_tail: String| McpError::Start {
            server: name.to_owned(),
            message,
            stderr_tail,
        };
        let mut child = command
            .spawn()
            .map_err(|e| start_error(format!("could not run `{program}`: {e}"), String::new()))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(start_error(
                "its pipes could not be opened".into(),
                String::new(),
            ));
        };
        let tail = Arc::new(Mutex::new(Tail::default()));
        let stderr_task = tokio::spawn(drain_stderr(name.to_owned(), stderr, tail.clone()));
        let mut process = ChildProcess {
            child,
            stderr: tail,
            stderr_task,
        };
        let garbage = Arc::new(Mutex::new(Garbage::default()));
        let (salvage, salvaged) = tokio::sync::oneshot::channel();
        let mut stdout = WatchedStdout::new(stdout, name, garbage.clone());
        stdout.salvage = Some(salvage);
        let (handler, channels) = handler(name);
        let started = tokio::time::timeout(init_timeout, handler.serve((stdout, stdin))).await;
        let error = match started {
            Ok(Ok(service)) => {
                tracing::debug!(server = name, "MCP server started");
                return Server::new(name, service, channels, Some(process), init_timeout)
                    .checked()
                    .await;
            }
            Ok(Err(e)) => {
                // Most often the child died: wait for its status and the rest of its stderr,
                // so the error can say why.
                let status = process.exited_within(DEATH_GRACE).await;
                if status.is_some() {
                    // It may have died before rmcp read what it wrote (writing `initialize` to
                    // it failed first): read the rest of its stdout now, to its end.
                    read_rest(salvaged, name, garbage.clone()).await;
                }
                process.kill().await;
                let stderr_tail = process.final_tail().await;
                let garbage = lock(&garbage).summary();
                match (status, garbage) {
                    (Some(status), garbage) => start_error(
                        format!(
                            "`{program}` exited before answering `initialize` ({status}){}",
                            garbage.map(|g| format!("; {g}")).unwrap_or_default()
                        ),
                        stderr_tail,
                    ),
                    (None, Some(garbage)) => McpError::Protocol {
                        server: name.to_owned(),
                        message: format!(
                            "`initialize` failed ({}); {garbage}",
                            init_error_text(&e)
                        ),
                    },
                    (None, None) => start_error(
                        format!("`initialize` failed: {}", init_error_text(&e)),
                        stderr_tail,
                    ),
                }
            }
            Err(_elapsed) => {
                process.kill().await;
                match lock(&garbage).summary() {
                    Some(garbage) => McpError::Protocol {
                        server: name.to_owned(),
                        message: format!(
                            "no answer to `initialize` within {}s; {garbage}",
                            init_timeout.as_secs_f32()
                        ),
                    },
                    None => McpError::InitTimeout {
                        server: name.to_owned(),
                        after: init_timeout,
                    },
                }
            }
        };
        Err(error)
    }

    /// Streamable HTTP at `url`, sending `headers` (typically `Authorization`) with every
    /// request.
    pub async fn http(
        name: &str,
        url: &str,
        headers: &BTreeMap<String, String>,
        init_timeout: Duration,
    ) -> Result<Server, McpError> {
        let start_error = |message: String| McpError::Start {
            server: name.to_owned(),
            message,
            stderr_tail: String::new(),
        };
        let mut custom = HashMap::new();
        for (key, value) in headers {
            if RESERVED_HEADERS.contains(&key.to_ascii_lowercase().as_str()) {
                return Err(start_error(format!(
                    "header `{key}` is set by the MCP transport itself"
                )));
            }
            let header_name = http::HeaderName::from_bytes(key.as_bytes())
                .map_err(|e| start_error(format!("header name `{key}`: {e}")))?;
            let value = http::HeaderValue::from_str(value)
                .map_err(|e| start_error(format!("the value of header `{key}`: {e}")))?;
            custom.insert(header_name, value);
        }
        let client = http_client::Http::new()
            .map_err(|e| start_error(format!("no HTTP client: {}", chain(&e))))?;
        let config = StreamableHttpClientTransportConfig::with_uri(url).custom_headers(custom);
        let transport = StreamableHttpClientTransport::with_client(client, config);
        let (handler, channels) = handler(name);
        match tokio::time::timeout(init_timeout, handler.serve(transport)).await {
            Ok(Ok(service)) => {
                tracing::debug!(server = name, url, "MCP server connected");
                Server::new(name, service, channels, None, init_timeout)
                    .checked()
                    .await
            }
            Ok(Err(e)) => Err(start_error(format!(
                "`initialize` at {url} failed: {}",
                init_error_text(&e)
            ))),
            Err(_elapsed) => Err(McpError::InitTimeout {
                server: name.to_owned(),
                after: init_timeout,
            }),
        }
    }

    fn new(
        name: &str,
        service: RunningService<RoleClient, Handler>,
        channels: Channels,
        child: Option<ChildProcess>,
        request_timeout: Duration,
    ) -> Server {
        let protocol_version = service
            .peer_info()
            .map(|info| info.protocol_version.to_string())
            .unwrap_or_default();
        Server {
            name: name.to_owned(),
            service,
            protocol_version,
            request_timeout,
            channels,
            child,
        }
    }

    /// This server, when it answered `initialize` with a version cove speaks; else it is
    /// stopped (rmcp accepts any answer, and the spec has the client disconnect).
    async fn checked(self) -> Result<Server, McpError> {
        let supported = SUPPORTED_PROTOCOL_VERSIONS
            .iter()
            .any(|v| v.as_str() == self.protocol_version);
        if supported {
            return Ok(self);
        }
        let error = McpError::UnsupportedVersion {
            server: self.name.clone(),
            version: self.protocol_version.clone(),
        };
        self.stop().await;
        Err(error)
    }

    /// The server's name, as given when it was started.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The protocol version the server chose in its `initialize` answer.
    pub fn protocol_version(&self) -> String {
        self.protocol_version.clone()
    }

    /// The last ~2 KB the (stdio) server wrote to stderr, for showing after [`McpError::Closed`].
    pub fn stderr_tail(&self) -> String {
        self.child
            .as_ref()
            .map(|process| lock(&process.stderr).text())
            .unwrap_or_default()
    }

    /// Every tool, across all pages of `tools/list`; bounded by the init timeout given at start.
    pub async fn tools(&self) -> Result<Vec<McpTool>, McpError> {
        let listed =
            tokio::time::timeout(self.request_timeout, self.service.peer().list_all_tools())
                .await
                .map_err(|_| McpError::Timeout)?
                .map_err(|e| self.service_error("tools/list", e))?;
        Ok(listed.into_iter().map(tool).collect())
    }

    /// Call `tool` with `arguments` (a JSON object, or null for none). A progress token goes
    /// with every call, so its progress shows on [`Server::progress`]. When `cancel` fires
    /// first, the server is sent `notifications/cancelled` and this returns
    /// [`McpError::Cancelled`]; after `timeout`, the same with [`McpError::Timeout`].
    pub async fn call(
        &self,
        tool: &str,
        arguments: Value,
        cancel: CancellationToken,
        timeout: Duration,
    ) -> Result<CallOutput, McpError> {
        let arguments = match arguments {
            Value::Object(arguments) => Some(arguments),
            Value::Null => None,
            other => {
                return Err(self.call_error(
                    tool,
                    format!("the arguments must be a JSON object, not `{other}`"),
                ));
            }
        };
        if cancel.is_cancelled() {
            return Err(McpError::Cancelled);
        }
        let mut params = CallToolRequestParams::new(tool.to_owned());
        params.arguments = arguments;
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let mut handle = self
            .service
            .peer()
            .send_request_with_option(request, PeerRequestOptions::no_options())
            .await
            .map_err(|e| self.service_error(tool, e))?;
        let token = handle.progress_token.0.to_string();
        lock(&self.channels.calls).insert(token.clone(), tool.to_owned());
        let _call = CallGuard {
            calls: self.channels.calls.clone(),
            token,
        };
        // The reply, or why the wait ended without one: decided in the `select!` (which holds
        // `handle.rx` borrowed), acted on after it.
        enum Interrupted {
            Cancelled,
            TimedOut,
        }
        let outcome = tokio::select! {
            biased;
            reply = &mut handle.rx => Ok(reply),
            () = cancel.cancelled() => Err(Interrupted::Cancelled),
            () = tokio::time::sleep(timeout) => Err(Interrupted::TimedOut),
        };
        match outcome {
            Ok(Ok(Ok(result))) => self.output(tool, result),
            Ok(Ok(Err(e))) => Err(self.service_error(tool, e)),
            // rmcp dropped the request: its connection ended.
            Ok(Err(_)) => Err(self.closed()),
            Err(Interrupted::Cancelled) => {
                self.send_cancel(handle, "cancelled by the user".into())
                    .await;
                Err(McpError::Cancelled)
            }
            Err(Interrupted::TimedOut) => {
                let reason = format!("timed out after {}s", timeout.as_secs_f32());
                self.send_cancel(handle, reason).await;
                Err(McpError::Timeout)
            }
        }
    }

    /// Bumped on every `notifications/tools/list_changed`; list the tools again then.
    pub fn tools_changed(&self) -> watch::Receiver<u64> {
        self.channels.tools_changed.clone()
    }

    /// Progress notifications of this server's calls, from now on.
    pub fn progress(&self) -> broadcast::Receiver<Progress> {
        self.channels.progress.subscribe()
    }

    /// Close the connection (ending the session, over HTTP) and let a stdio server exit: its
    /// stdin is closed, then it gets SIGTERM after 2 s, then SIGKILL after 2 s more.
    pub async fn stop(mut self) {
        match self
            .service
            .close_with_timeout(Duration::from_secs(5))
            .await
        {
            Ok(Some(_)) => {}
            Ok(None) => tracing::debug!(server = %self.name, "MCP connection slow to close"),
            Err(e) => tracing::debug!(server = %self.name, "MCP connection task failed: {e}"),
        }
        if let Some(process) = self.child.as_mut() {
            process.shut_down(&self.name).await;
        }
    }

    async fn send_cancel(&self, handle: RequestHandle<RoleClient>, reason: String) {
        match tokio::time::timeout(CANCEL_SEND_LIMIT, handle.cancel(Some(reason))).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(server = %self.name, "could not send notifications/cancelled: {e}");
            }
            Err(_) => {
                tracing::debug!(server = %self.name, "notifications/cancelled not sent in time")
            }
        }
    }

    fn output(&self, tool: &str, result: ServerResult) -> Result<CallOutput, McpError> {
        match result {
            ServerResult::CallToolResult(result) => Ok(output(result)),
            // `{}` (no content at all) decodes as the empty result.
            ServerResult::EmptyResult(_) => Ok(output(CallToolResult::default())),
            _ => Err(McpError::Protocol {
                server: self.name.clone(),
                message: format!(
                    "answered the call of `{tool}` with something else than a tool result"
                ),
            }),
        }
    }

    fn closed(&self) -> McpError {
        McpError::Closed {
            server: self.name.clone(),
        }
    }

    fn call_error(&self, tool: &str, message: String) -> McpError {
        McpError::Call {
            server: self.name.clone(),
            tool: tool.to_owned(),
            message,
        }
    }

    fn service_error(&self, tool: &str, error: ServiceError) -> McpError {
        match error {
            ServiceError::TransportClosed => self.closed(),
            // A stdio server whose stdin cannot be written to has gone.
            ServiceError::TransportSend(_) if self.child.is_some() => self.closed(),
            ServiceError::McpError(error) => self.call_error(
                tool,
                format!("{} (JSON-RPC error {})", error.message, error.code.0),
            ),
            ServiceError::Cancelled { .. } => McpError::Cancelled,
            ServiceError::Timeout { .. } => McpError::Timeout,
            ServiceError::UnexpectedResponse => McpError::Protocol {
                server: self.name.clone(),
                message: format!("answered `{tool}` with a reply of the wrong kind"),
            },
            ServiceError::TransportSend(error) => {
                self.call_error(tool, transport_error_text(&error))
            }
            other => self.call_error(tool, chain(&other)),
        }
    }
}

fn tool(tool: Tool) -> McpTool {
    let annotations = tool.annotations.unwrap_or_default();
    McpTool {
        name: tool.name.into_owned(),
        title: tool.title.or(annotations.title),
        description: tool.description.map(|d| d.into_owned()).unwrap_or_default(),
        input_schema: Value::Object(tool.input_schema.as_ref().clone()),
        output_schema: tool
            .output_schema
            .map(|schema| Value::Object(schema.as_ref().clone())),
        read_only_hint: annotations.read_only_hint,
    }
}

/// Decoded size of base64 `data`, without decoding it.
fn base64_len(data: &str) -> usize {
    let digits = data.bytes().filter(|b| !b.is_ascii_whitespace()).count();
    let padding = data
        .trim_end()
        .bytes()
        .rev()
        .take_while(|&b| b == b'=')
        .count()
        .min(2);
    digits.saturating_sub(padding) * 3 / 4
}

fn output(result: CallToolResult) -> CallOutput {
    let mut parts: Vec<String> = Vec::new();
    for block in result.content {
        match block {
            ContentBlock::Text(text) => parts.push(text.text),
            ContentBlock::Image(image) => parts.push(format!(
                "[image: {}, {} bytes]",
                image.mime_type,
                base64_len(&image.data)
            )),
            ContentBlock::Audio(audio) => parts.push(format!(
                "[audio: {}, {} bytes]",
                audio.mime_type,
                base64_len(&audio.data)
            )),
            ContentBlock::ResourceLink(link) => {
                parts.push(format!("[resource: {} ({})]", link.uri, link.name));
            }
            ContentBlock::Resource(embedded) => match embedded.resource {
                ResourceContents::TextResourceContents { text, .. } => parts.push(text),
                ResourceContents::BlobResourceContents {
                    uri,
                    mime_type,
                    blob,
                    ..
                } => parts.push(format!(
                    "[resource: {uri}, {}, {} bytes]",
                    mime_type.as_deref().unwrap_or("application/octet-stream"),
                    base64_len(&blob)
                )),
                _ => parts.push("[resource of an unknown kind]".into()),
            },
            _ => parts.push("[content of an unknown kind]".into()),
        }
    }
    let mut text = parts.join("\n");
    if text.is_empty()
        && let Some(structured) = &result.structured_content
    {
        text = structured.to_string();
    }
    CallOutput {
        text,
        structured: result.structured_content,
        is_error: result.is_error.unwrap_or(false),
    }
}
