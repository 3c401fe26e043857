//! `cove mcp serve` driven by real MCP clients: the official Python SDK (PyPI `mcp`, through
//! `tests/all/servers/serve_client.py`) over stdio and Streamable HTTP, and the inspector's CLI
//! (npm `@modelcontextprotocol/inspector`) over both.
//!
//! Installs both once per run into `<target>/mcp-servers/` (`py-client/`, `inspector/`; skipped
//! when present) and fails, saying how to install them, when that cannot be done. Must not
//! depend on timing: every wait is bounded generously and nothing asserts how fast something was.

use crate::mcp::servers_dir;
use crate::support::{Sandbox, TestResult};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const PY_MCP: &str = "mcp==1.30.0";
const INSPECTOR: &str = "@modelcontextprotocol/inspector@0.21.2";
/// Bound for one client run (a server start, a few calls); generous for a loaded machine.
const RUN: Duration = Duration::from_secs(180);

/// Run `command` unless `ready` exists; say how to do it by hand when it fails.
fn install(ready: &Path, command: Command, by_hand: &str) -> Result<(), String> {
    if ready.exists() {
        return Ok(());
    }
    crate::mcp::run_install(command, by_hand)?;
    if ready.exists() {
        Ok(())
    } else {
        Err(format!(
            "{} is missing after the install; install by hand: {by_hand}",
            ready.display()
        ))
    }
}

/// The `--target` directory holding the Python SDK, installed on first use.
fn py_client() -> Result<&'static PathBuf, String> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = servers_dir()?.join("py-client");
        let mut pip = Command::new("python3");
        pip.args(["-m", "pip", "install", "--quiet", "--target"])
            .arg(&dir)
            .arg(PY_MCP);
        install(
            &dir.join("mcp/client/session.py"),
            pip,
            &format!(
                "python3 -m pip install --target {} '{PY_MCP}' (needs Python 3.10+ and pip)",
                dir.display()
            ),
        )?;
        Ok(dir)
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// The inspector's launcher (run with `node`), installed on first use.
fn inspector() -> Result<&'static PathBuf, String> {
    static CLI: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    CLI.get_or_init(|| {
        let dir = servers_dir()?.join("inspector");
        let cli = dir.join("node_modules/@modelcontextprotocol/inspector/cli/build/cli.js");
        let mut npm = Command::new("npm");
        npm.args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg(INSPECTOR);
        install(
            &cli,
            npm,
            &format!(
                "npm install --prefix {} {INSPECTOR} (needs Node and npm)",
                dir.display()
            ),
        )?;
        Ok(cli)
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Wait for `child` at most `bound`, killing it past that; its output.
fn bounded(mut child: Child, bound: Duration) -> Result<Output, Box<dyn std::error::Error>> {
    // Drain both pipes on threads so a chatty child never blocks on a full pipe.
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut buf);
        }
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut buf);
        }
        buf
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > bound {
            child.kill()?;
            child.wait()?;
            return Err(format!("still running after {bound:?}: killed").into());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ok(Output {
        status,
        stdout: out.join().map_err(|_| "stdout reader panicked")?,
        stderr: err.join().map_err(|_| "stderr reader panicked")?,
    })
}

/// `serve_client.py` with `scenario`; its JSON report.
fn py(sb: &Sandbox, scenario: &Value) -> Result<Value, Box<dyn std::error::Error>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/all/servers/serve_client.py");
    let mut c = Command::new("python3");
    c.arg("-u")
        .arg(script)
        .arg(scenario.to_string())
        .current_dir(sb.repo())
        .env("PYTHONPATH", py_client()?)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The server the client starts inherits this: the sandbox's config, none of the user's.
    sb.isolate(&mut c);
    let output = bounded(c.spawn()?, RUN)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("the client failed ({}):\n{stdout}\n{stderr}", output.status).into());
    }
    let last = stdout
        .lines()
        .last()
        .ok_or_else(|| format!("no report; stderr:\n{stderr}"))?;
    Ok(serde_json::from_str(last)
        .map_err(|e| format!("report is not JSON ({e}): {last}\nstderr:\n{stderr}"))?)
}

/// A scenario over stdio: the client starts `cove mcp serve FLAGS` in the sandbox's repository.
fn stdio(sb: &Sandbox, flags: &[&str], elicit: Value, steps: Value) -> Value {
    let repo = sb.repo().display().to_string();
    let mut command = vec![
        env!("CARGO_BIN_EXE_cove"),
        "--worktree",
        repo.as_str(),
        "mcp",
        "serve",
    ];
    command.extend_from_slice(flags);
    json!({"stdio": command, "cwd": repo, "elicit": elicit, "steps": steps})
}

fn results(report: &Value) -> Result<Vec<(bool, String)>, String> {
    report["results"]
        .as_array()
        .ok_or_else(|| format!("no results in {report}"))?
        .iter()
        .map(|r| -> Result<(bool, String), String> {
            Ok((
                r["isError"]
                    .as_bool()
                    .ok_or_else(|| format!("no isError in {r}"))?,
                r["text"]
                    .as_str()
                    .ok_or_else(|| format!("no text in {r}"))?
                    .to_string(),
            ))
        })
        .collect()
}

/// The tools `cove tools list --json` shows: (name, read-only), by name.
fn listed_tools(sb: &Sandbox) -> Result<Vec<(String, bool)>, Box<dyn std::error::Error>> {
    let run = sb.cove(&["tools", "list", "--json"])?;
    let v: Value = serde_json::from_str(run.out())?;
    let mut tools: Vec<(String, bool)> = v["tools"]
        .as_array()
        .ok_or("no tools in `cove tools list --json`")?
        .iter()
        .map(|t| -> Result<(String, bool), &str> {
            Ok((
                t["name"]
                    .as_str()
                    .ok_or("a tool without a name")?
                    .to_string(),
                t["read_only"].as_bool().ok_or("a tool without read_only")?,
            ))
        })
        .collect::<Result<_, &str>>()?;
    tools.sort();
    Ok(tools)
}

fn served_tools(report: &Value) -> Result<Vec<(String, bool)>, String> {
    let mut tools: Vec<(String, bool)> = report["tools"]
        .as_array()
        .ok_or_else(|| format!("no tool list in {report}"))?
        .iter()
        .map(|t| -> Result<(String, bool), String> {
            Ok((
                t["name"]
                    .as_str()
                    .ok_or("a tool without a name")?
                    .to_string(),
                t["readOnlyHint"]
                    .as_bool()
                    .ok_or("a tool without readOnlyHint")?,
            ))
        })
        .collect::<Result<_, String>>()?;
    tools.sort();
    Ok(tools)
}

/// A repository with `notes.txt` and `out.txt`, a link to `outside/secret.txt`.
fn repo_with_notes() -> Result<Sandbox, Box<dyn std::error::Error>> {
    let sb = Sandbox::new()?;
    sb.write("notes.txt", "alpha\nbeta\n")?;
    std::os::unix::fs::symlink(sb.outside().join("secret.txt"), sb.repo().join("out.txt"))?;
    Ok(sb)
}

#[test]
fn python_sdk_over_stdio_lists_the_tools_reads_writes_and_stays_inside() -> TestResult {
    let sb = repo_with_notes()?;
    let before = sb.outside_snapshot()?;
    let secret = sb.outside().join("secret.txt").display().to_string();
    let escape = sb.outside().join("written.txt").display().to_string();
    let report = py(
        &sb,
        &stdio(
            &sb,
            &["--policy", "trusted"],
            Value::Null,
            json!([
                {"list": true},
                {"call": "read", "args": {"file_path": "notes.txt"}},
                {"call": "write", "args": {"file_path": "made.txt", "content": "made by mcp\n"}},
                {"call": "read", "args": {"file_path": secret}},
                {"call": "read", "args": {"file_path": "out.txt"}},
                {"call": "write", "args": {"file_path": escape, "content": "escaped\n"}},
                {"call": "read", "args": {"path": "notes.txt"}},
                {"call": "read", "args": {"file_path": "made.txt"}},
                {"call": "task", "args": {"prompt": "x"}},
            ]),
        ),
    )?;
    assert_eq!(report["server"], "cove", "{report}");
    // The same tools `cove tools list` shows, with their read-only flags as hints, and nothing
    // of the host's own (task, recall, skill).
    assert_eq!(served_tools(&report)?, listed_tools(&sb)?, "{report}");
    let read = report["tools"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["name"] == "read"))
        .ok_or("no read tool")?;
    assert!(
        read["inputSchema"]["properties"]["file_path"].is_object(),
        "{read}"
    );
    let r = results(&report)?;
    assert_eq!(r.len(), 8, "{r:?}");
    assert!(
        !r[0].0 && r[0].1.contains("alpha") && r[0].1.contains("beta"),
        "{r:?}"
    );
    assert!(!r[1].0, "{r:?}");
    assert_eq!(sb.read("made.txt")?, "made by mcp\n");
    // Out of the worktree: an absolute path, a link pointing out, a write there.
    for (i, what) in [(2, "absolute path"), (3, "link out"), (4, "write out")] {
        assert!(r[i].0, "{what} was not refused: {r:?}");
        assert!(!r[i].1.contains("top secret"), "{what} leaked: {r:?}");
    }
    assert_eq!(sb.outside_snapshot()?, before, "something outside changed");
    // A malformed input is an error result, and the server goes on.
    assert!(r[5].0 && r[5].1.contains("schema"), "{r:?}");
    assert!(!r[6].0 && r[6].1.contains("made by mcp"), "{r:?}");
    // A host tool is not offered, so not callable either.
    assert!(r[7].0 && r[7].1.contains("unknown tool `task`"), "{r:?}");
    Ok(())
}

#[test]
fn a_contract_0_2_tools_progress_and_structured_output_reach_the_client() -> TestResult {
    let sb = Sandbox::new()?;
    sb.evil_plugin("fs = \"read\"", "")?;
    let report = py(
        &sb,
        &stdio(
            &sb,
            &["--policy", "trusted"],
            Value::Null,
            json!([
                {"list": true},
                {"call": "steps", "args": {"steps": 3, "pause_ms": 20}},
                {"call": "echo", "args": {"text": "plain"}},
            ]),
        ),
    )?;
    let tools = report["tools"].as_array().ok_or("no tools")?;
    let schema_of = |name: &str| {
        tools
            .iter()
            .find(|t| t["name"] == name)
            .map(|t| t["outputSchema"].clone())
    };
    // The output schema comes from the tool's own Rust type, through the SDK and the contract.
    let steps = schema_of("steps").ok_or("no steps tool")?;
    assert_eq!(steps["type"], "object", "{steps}");
    assert!(steps["properties"]["steps"].is_object(), "{steps}");
    assert_eq!(
        schema_of("echo"),
        Some(Value::Null),
        "a text-only tool has none"
    );
    let results = report["results"].as_array().ok_or("no results")?;
    assert_eq!(results[0]["isError"], false, "{report}");
    assert_eq!(results[0]["text"], "took 3 steps", "{report}");
    assert_eq!(results[0]["structured"], json!({"steps": 3}), "{report}");
    assert_eq!(
        results[0]["progress"],
        json!(["1/3 step 1", "2/3 step 2", "3/3 step 3"]),
        "{report}"
    );
    assert_eq!(results[1]["structured"], Value::Null, "{report}");
    assert_eq!(results[1]["progress"], json!([]), "{report}");
    Ok(())
}

#[test]
fn the_read_only_policy_denies_a_write() -> TestResult {
    let sb = repo_with_notes()?;
    let report = py(
        &sb,
        &stdio(
            &sb,
            &["--policy", "read-only"],
            Value::Null,
            json!([
                {"call": "write", "args": {"file_path": "nope.txt", "content": "x"}},
                {"call": "read", "args": {"file_path": "notes.txt"}},
            ]),
        ),
    )?;
    let r = results(&report)?;
    assert!(r[0].0 && r[0].1.starts_with("denied by policy:"), "{r:?}");
    assert!(r[0].1.contains("read-only"), "{r:?}");
    assert!(!sb.repo().join("nope.txt").exists());
    assert!(!r[1].0 && r[1].1.contains("alpha"), "{r:?}");
    Ok(())
}

#[test]
fn a_policy_question_goes_to_the_clients_user_who_accepts() -> TestResult {
    let sb = repo_with_notes()?;
    let report = py(
        &sb,
        &stdio(
            &sb,
            &[],
            json!("accept"),
            json!([
                {"call": "read", "args": {"file_path": "notes.txt"}},
                {"call": "write", "args": {"file_path": "asked.txt", "content": "yes\n"}},
            ]),
        ),
    )?;
    let r = results(&report)?;
    assert!(!r[0].0, "{r:?}");
    assert!(!r[1].0, "{r:?}");
    assert_eq!(sb.read("asked.txt")?, "yes\n");
    // One question, for the write only (the default policy lets reads run), naming the tool
    // and its input.
    let asked = report["elicitations"].as_array().ok_or("no elicitations")?;
    assert_eq!(asked.len(), 1, "{report}");
    let message = asked[0].as_str().ok_or("not a message")?;
    assert!(
        message.contains("`write`") && message.contains("asked.txt"),
        "{message}"
    );
    Ok(())
}

#[test]
fn a_declined_question_runs_nothing() -> TestResult {
    let sb = repo_with_notes()?;
    for elicit in ["decline", "no"] {
        let report = py(
            &sb,
            &stdio(
                &sb,
                &[],
                json!(elicit),
                json!([{"call": "write", "args": {"file_path": "refused.txt", "content": "x"}}]),
            ),
        )?;
        let r = results(&report)?;
        assert!(r[0].0 && r[0].1.contains("declined"), "{elicit}: {r:?}");
        assert!(!sb.repo().join("refused.txt").exists(), "{elicit}: written");
    }
    Ok(())
}

#[test]
fn a_question_to_a_client_without_elicitation_says_how_to_allow_the_call() -> TestResult {
    let sb = repo_with_notes()?;
    let report = py(
        &sb,
        &stdio(
            &sb,
            &[],
            Value::Null,
            json!([{"call": "write", "args": {"file_path": "unasked.txt", "content": "x"}}]),
        ),
    )?;
    let r = results(&report)?;
    assert!(r[0].0, "{r:?}");
    for needle in [
        "cannot be asked",
        "elicitation",
        "--policy trusted",
        "--yes",
    ] {
        assert!(r[0].1.contains(needle), "no {needle:?} in {r:?}");
    }
    assert!(!sb.repo().join("unasked.txt").exists());
    // `--yes` answers the question itself.
    let report = py(
        &sb,
        &stdio(
            &sb,
            &["--yes"],
            Value::Null,
            json!([{"call": "write", "args": {"file_path": "unasked.txt", "content": "x"}}]),
        ),
    )?;
    assert!(!results(&report)?[0].0, "{report}");
    assert_eq!(sb.read("unasked.txt")?, "x");
    Ok(())
}

#[test]
fn a_cancelled_request_stops_its_command() -> TestResult {
    let sb = repo_with_notes()?;
    let report = py(
        &sb,
        &stdio(
            &sb,
            &["--policy", "trusted"],
            Value::Null,
            json!([
                {"call": "bash", "args": {"command": "touch started.txt; sleep 5; touch finished.txt"},
                 "cancel_when": "started.txt"},
                // Outlasts what is left of the first command's sleep: had the cancellation not
                // stopped it, `finished.txt` would exist by the time this returns.
                {"call": "bash", "args": {"command": "sleep 8; echo slept"}},
            ]),
        ),
    )?;
    let r = results(&report)?;
    assert!(r[1].1.contains("slept") && !r[1].0, "{r:?}");
    assert!(sb.repo().join("started.txt").exists());
    assert!(
        !sb.repo().join("finished.txt").exists(),
        "the cancelled command ran on"
    );
    Ok(())
}

/// `cove mcp serve --http 127.0.0.1:0 FLAGS`, and the URL it says it listens on.
struct HttpServer {
    child: Child,
    url: String,
    stderr: mpsc::Receiver<String>,
}

impl HttpServer {
    fn start(sb: &Sandbox, flags: &[&str]) -> Result<Self, Box<dyn std::error::Error>> {
        let mut args = vec!["mcp", "serve", "--http", "127.0.0.1:0"];
        args.extend_from_slice(flags);
        let mut child = sb
            .command(&sb.repo(), &args, &[])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let url = loop {
            match rx.recv_timeout(RUN) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("listening on ") {
                        break url.to_string();
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("no `listening on` line; stderr: {seen:?}").into());
                }
            }
        };
        Ok(Self {
            child,
            url,
            stderr: rx,
        })
    }

    /// SIGTERM; whether it exited successfully, and what it said on stderr since it started.
    fn stop(mut self) -> Result<(bool, String), Box<dyn std::error::Error>> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        assert!(status.success(), "kill failed");
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait()? {
                break s;
            }
            if start.elapsed() > RUN {
                self.child.kill()?;
                self.child.wait()?;
                return Err("cove mcp serve did not stop on SIGTERM".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let said: Vec<String> = self.stderr.try_iter().collect();
        Ok((status.success(), said.join("\n")))
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        // A failed assertion must not leave the server running (it would hold the port and,
        // under lcargo, the build lock).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One raw HTTP/1.1 request; the response's status code.
fn status_of(authority: &str, path: &str, host: &str) -> Result<u16, Box<dyn std::error::Error>> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}})
    .to_string();
    let mut stream = std::net::TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(RUN))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| format!("no status in {line:?}"))?
        .parse()?)
}

#[test]
fn the_python_sdk_and_the_inspector_over_streamable_http() -> TestResult {
    let sb = repo_with_notes()?;
    let server = HttpServer::start(&sb, &["--policy", "trusted"])?;
    let report = py(
        &sb,
        &json!({"http": server.url, "elicit": null, "steps": [
            {"list": true},
            {"call": "read", "args": {"file_path": "notes.txt"}},
            {"call": "write", "args": {"file_path": "over-http.txt", "content": "http\n"}},
            {"call": "read", "args": {"file_path": "out.txt"}},
        ]}),
    )?;
    assert_eq!(served_tools(&report)?, listed_tools(&sb)?, "{report}");
    let r = results(&report)?;
    assert!(!r[0].0 && r[0].1.contains("alpha"), "{r:?}");
    assert!(!r[1].0, "{r:?}");
    assert_eq!(sb.read("over-http.txt")?, "http\n");
    assert!(r[2].0 && !r[2].1.contains("top secret"), "{r:?}");
    // DNS rebinding: a page on another name that resolves here is refused; and only /mcp.
    let authority = server
        .url
        .strip_prefix("http://")
        .and_then(|a| a.strip_suffix("/mcp"))
        .ok_or_else(|| format!("unexpected URL {}", server.url))?
        .to_string();
    let port = authority.rsplit(':').next().ok_or("no port")?;
    assert_eq!(
        status_of(&authority, "/mcp", &format!("evil.example:{port}"))?,
        403
    );
    assert_eq!(status_of(&authority, "/elsewhere", &authority)?, 404);
    // The inspector's CLI over the same endpoint.
    let mut c = Command::new("node");
    c.arg(inspector()?)
        .args(["--cli", &server.url, "--transport", "http"])
        .args(["--method", "tools/call", "--tool-name", "read"])
        .args(["--tool-arg", "file_path=over-http.txt"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    sb.isolate(&mut c);
    let called = bounded(c.spawn()?, RUN)?;
    let stdout = String::from_utf8_lossy(&called.stdout);
    assert!(
        called.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&called.stderr)
    );
    let v: Value = serde_json::from_str(&stdout)?;
    assert_ne!(v["isError"], true, "{stdout}");
    assert!(
        v["content"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("http")),
        "{stdout}"
    );
    let (ok, said) = server.stop()?;
    assert!(ok, "cove mcp serve did not exit cleanly on SIGTERM: {said}");
    Ok(())
}

#[test]
fn http_on_a_non_loopback_address_needs_allow_remote() -> TestResult {
    let sb = Sandbox::new()?;
    let run = sb.cove(&["mcp", "serve", "--http", "0.0.0.0:0"])?;
    let err = run.err();
    assert!(
        err.contains("not a loopback address") && err.contains("--allow-remote"),
        "{err}"
    );
    assert!(err.contains("run commands"), "{err}");
    Ok(())
}

#[test]
fn the_inspector_cli_lists_and_calls_over_stdio() -> TestResult {
    let sb = repo_with_notes()?;
    let cli = inspector()?;
    let inspect = |extra: &[&str]| -> Result<Output, Box<dyn std::error::Error>> {
        let mut c = Command::new("node");
        c.arg(cli)
            .args(["--cli", env!("CARGO_BIN_EXE_cove"), "mcp", "serve"])
            .args(extra)
            .current_dir(sb.repo())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        sb.isolate(&mut c);
        bounded(c.spawn()?, RUN)
    };
    let listed = inspect(&["--method", "tools/list"])?;
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let v: Value = serde_json::from_str(&stdout)?;
    let mut names: Vec<String> = v["tools"]
        .as_array()
        .ok_or_else(|| format!("no tools in {stdout}"))?
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    let expected: Vec<String> = listed_tools(&sb)?.into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, expected);
    let called = inspect(&[
        "--method",
        "tools/call",
        "--tool-name",
        "read",
        "--tool-arg",
        "file_path=notes.txt",
    ])?;
    let stdout = String::from_utf8_lossy(&called.stdout);
    assert!(
        called.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&called.stderr)
    );
    let v: Value = serde_json::from_str(&stdout)?;
    assert_ne!(v["isError"], true, "{stdout}");
    let text = v["content"][0]["text"]
        .as_str()
        .ok_or_else(|| format!("no text in {stdout}"))?;
    assert!(text.contains("alpha") && text.contains("beta"), "{text}");
    Ok(())
}
