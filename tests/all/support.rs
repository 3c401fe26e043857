//! Helpers shared by the end-to-end tests: temporary repositories, running `cove`, and the paths
//! of the test guests (built by host/build.rs exactly like the real plugins).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Where build.rs put the compiled test guests.
pub fn guest(name: &str) -> PathBuf {
    Path::new(env!("COVE_TEST_GUESTS")).join(format!("cove_guest_{name}.wasm"))
}

/// A compiled first-party plugin (the same file the binary embeds).
pub fn first_party(name: &str) -> PathBuf {
    Path::new(env!("COVE_TEST_GUESTS")).join(format!("cove_plugin_{name}.wasm"))
}

/// Compiled native code is shared between tests so each component compiles once per run.
fn shared_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("cove-cache")
}

/// A temporary directory holding a git repository (`repo/`), an `outside/` sentinel tree beside it,
/// and an empty user config dir.
/// The environment that would point cove at a real model (or pick one): tests remove it.
pub const MODEL_ENV: [&str; 6] = [
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "COVE_MODEL",
    "COVE_PROVIDER",
];

pub struct Sandbox {
    pub tmp: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Result<Self, Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(&repo)?;
        let status = Command::new("git")
            .args(["init", "-q"])
            .current_dir(&repo)
            .status()?;
        assert!(status.success(), "git init failed");
        std::fs::create_dir_all(tmp.path().join("outside/dir"))?;
        std::fs::write(tmp.path().join("outside/secret.txt"), "top secret\n")?;
        std::fs::write(tmp.path().join("outside/dir/inner.txt"), "inner\n")?;
        std::fs::create_dir_all(tmp.path().join("config"))?;
        Ok(Self { tmp })
    }

    pub fn repo(&self) -> PathBuf {
        self.tmp.path().join("repo")
    }

    pub fn outside(&self) -> PathBuf {
        self.tmp.path().join("outside")
    }

    /// Write a file under the repository, creating directories.
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> Result<PathBuf, std::io::Error> {
        let path = self.repo().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, content)?;
        Ok(path)
    }

    pub fn read(&self, rel: &str) -> Result<String, std::io::Error> {
        std::fs::read_to_string(self.repo().join(rel))
    }

    /// Install a project plugin: `.cove/plugins/<name>/` with this manifest and component.
    pub fn add_plugin(&self, name: &str, manifest: &str, wasm: &Path) -> TestResult {
        let dir = self.repo().join(".cove/plugins").join(name);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("plugin.toml"), manifest)?;
        std::fs::copy(wasm, dir.join(format!("{name}.wasm")))?;
        Ok(())
    }

    /// `cove trust`: the test wrote this repository's `.cove/` itself.
    pub fn trust(&self) -> TestResult {
        let run = self.cove(&["trust"])?;
        assert!(run.ok, "cove trust failed: {run:?}");
        Ok(())
    }

    pub fn config(&self, text: &str) -> TestResult {
        self.write(".cove/config.toml", text)?;
        Ok(())
    }

    /// The evil test guest as project plugin `evil` with manifest capabilities `caps`, the project
    /// config `config` (which grants them, or not), all trusted.
    pub fn evil_plugin(&self, caps: &str, config: &str) -> TestResult {
        self.add_plugin("evil", &evil_manifest("evil", caps), &guest("evil"))?;
        if !config.is_empty() {
            self.config(config)?;
        }
        self.trust()
    }

    /// `cove ARGS` in the repository, isolated from the user's own config.
    pub fn cove(&self, args: &[&str]) -> Result<Run, std::io::Error> {
        self.cove_in(&self.repo(), args)
    }

    pub fn cove_in(&self, dir: &Path, args: &[&str]) -> Result<Run, std::io::Error> {
        Ok(Run::from(self.command(dir, args, &[]).output()?))
    }

    /// `cove ARGS` with extra environment (a model server's URL, say).
    pub fn cove_env(&self, args: &[&str], env: &[(&str, &str)]) -> Result<Run, std::io::Error> {
        Ok(Run::from(self.command(&self.repo(), args, env).output()?))
    }

    /// The command, isolated from the user's own config, sessions and keys.
    pub fn command(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_cove"));
        c.args(args).current_dir(dir);
        self.isolate(&mut c);
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    /// Give `c` (cove, or whatever starts it) this sandbox's directories and none of the user's
    /// config, sessions or keys.
    pub fn isolate(&self, c: &mut Command) {
        c.env("COVE_CONFIG_DIR", self.tmp.path().join("config"))
            .env("CLAUDE_CONFIG_DIR", self.tmp.path().join("claude"))
            .env("COVE_CACHE_DIR", shared_cache())
            .env("COVE_DATA_DIR", self.tmp.path().join("data"))
            .env("RUST_LOG", "warn");
        for k in MODEL_ENV {
            c.env_remove(k);
        }
    }

    /// Every transcript line of every session.
    pub fn transcripts(&self) -> Result<Vec<serde_json::Value>, Box<dyn std::error::Error>> {
        let mut out = Vec::new();
        let dir = self.tmp.path().join("data/sessions");
        for e in std::fs::read_dir(dir)? {
            for line in std::fs::read_to_string(e?.path())?.lines() {
                out.push(serde_json::from_str(line)?);
            }
        }
        Ok(out)
    }

    /// `cove run` with the scripted model following `script` (its turns and tool calls), stream-json
    /// output, `extra` flags and `env`.
    pub fn run_script(
        &self,
        script: &serde_json::Value,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Run, std::io::Error> {
        let path = self.script_file(script)?;
        let mut args = vec![
            "run",
            "--provider",
            "scripted",
            "--script",
            &path,
            "--output-format",
            "stream-json",
        ];
        args.extend_from_slice(extra);
        args.push("go");
        self.cove_env(&args, env)
    }

    /// `cove chat` with the scripted model following `script`, on a real terminal (`script(1)`),
    /// with `typed` typed ahead into it.
    pub fn chat_on_terminal(
        &self,
        script: &serde_json::Value,
        typed: &str,
    ) -> Result<Run, std::io::Error> {
        use std::io::Write;
        let cmd = format!(
            "{} chat --provider scripted --script {}",
            env!("CARGO_BIN_EXE_cove"),
            self.script_file(script)?
        );
        let mut c = Command::new("script");
        c.args(["-qec", &cmd, "/dev/null"])
            .current_dir(self.repo())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        self.isolate(&mut c);
        let mut child = c.spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(typed.as_bytes())?;
        }
        Ok(Run::from(child.wait_with_output()?))
    }

    /// Write a scripted model's script to this sandbox's temporary folder; its path.
    fn script_file(&self, script: &serde_json::Value) -> Result<String, std::io::Error> {
        let path = self.tmp.path().join("script.json");
        std::fs::write(&path, script.to_string())?;
        Ok(path.to_string_lossy().into_owned())
    }

    /// `cove tools call TOOL INPUT`.
    pub fn call(&self, tool: &str, input: &str) -> Result<Run, std::io::Error> {
        self.cove(&["tools", "call", tool, input])
    }

    /// Every file under `outside/`, with its bytes: compare before and after to prove nothing changed.
    pub fn outside_snapshot(&self) -> Result<BTreeMap<PathBuf, Vec<u8>>, std::io::Error> {
        snapshot(&self.outside())
    }
}

/// Every file under `dir` (links as their targets' text), recursively.
pub fn snapshot(dir: &Path) -> Result<BTreeMap<PathBuf, Vec<u8>>, std::io::Error> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let path = entry.path();
            let ty = entry.file_type()?;
            if ty.is_dir() {
                out.insert(path.clone(), b"<dir>".to_vec());
                stack.push(path);
            } else if ty.is_symlink() {
                out.insert(
                    path.clone(),
                    std::fs::read_link(&path)?
                        .to_string_lossy()
                        .as_bytes()
                        .to_vec(),
                );
            } else {
                out.insert(path.clone(), std::fs::read(&path)?);
            }
        }
    }
    Ok(out)
}

/// The outcome of one `cove` run.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    /// The exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            ok: o.status.success(),
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Assert success and return stdout.
    #[track_caller]
    pub fn out(&self) -> &str {
        assert!(
            self.ok,
            "cove failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// The tool results of a stream-json run, in order: (is_error, text).
    pub fn tool_results(&self) -> Vec<(bool, String)> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["type"] == "tool_result")
            .map(|e| {
                (
                    e["is_error"] == true,
                    e["text"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// Assert failure and return stderr.
    #[track_caller]
    pub fn err(&self) -> &str {
        assert!(
            !self.ok,
            "cove unexpectedly succeeded:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        &self.stderr
    }
}

/// Every built-in tool, in the order the model is offered them (by name).
pub const BUILT_IN_TOOLS: [&str; 10] = [
    "bash",
    "edit",
    "find_symbol",
    "glob",
    "grep",
    "ls",
    "outline",
    "read",
    "remember",
    "write",
];

/// The tools the host answers itself that every session offers, after the plugins' (`recall`:
/// the compressor's; `skill` only where there are skills).
pub const HOST_TOOLS: [&str; 2] = ["recall", "task"];

/// The evil guest's tools and their read-only flags.
pub const EVIL_TOOLS: [(&str, bool); 10] = [
    ("spin", true),
    ("hog", true),
    ("boom", true),
    ("flood", true),
    ("probe", false),
    ("echo", true),
    ("walkgrep", true),
    ("sneak", true),
    ("steps", true),
    ("dial", true),
];

/// The `tool_progress` events of a stream-json run, checked to come after the call's
/// `tool_call` and before its `tool_result`.
pub fn progress_between_call_and_result(stdout: &str) -> Vec<serde_json::Value> {
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let at = |t: &str| events.iter().position(|e| e["type"] == t);
    let first = at("tool_progress");
    assert!(first.is_some() && at("tool_call") < first, "{stdout}");
    let last = events
        .iter()
        .rposition(|e| e["type"] == "tool_progress")
        .unwrap_or(usize::MAX);
    assert!(at("tool_result").is_some_and(|r| r > last), "{stdout}");
    events
        .into_iter()
        .filter(|e| e["type"] == "tool_progress")
        .collect()
}

/// The manifest of the `oldast` test guest, a tool component built for contract 0.1.0.
pub const OLD_MANIFEST: &str = "name = \"old\"\nversion = \"0.1.0\"\nkind = \"tool\"\ncontract = \"0.1.0\"\n\
    [capabilities]\nfs = \"none\"\nast = true\nsearch = true\n\
    [[tool]]\nname = \"old_outline\"\ndescription = \"d\"\nread_only = true\n\
    [[tool]]\nname = \"old_query\"\ndescription = \"d\"\nread_only = true\n\
    [[tool]]\nname = \"old_grep\"\ndescription = \"d\"\nread_only = true\n";

/// A manifest for the `evil` test guest with the given `[capabilities]` lines.
pub fn evil_manifest(name: &str, caps: &str) -> String {
    let mut m = format!(
        "name = \"{name}\"\nversion = \"0.1.0\"\nkind = \"tool\"\ncontract = \"0.2.0\"\n[capabilities]\n{caps}\n"
    );
    for (tool, ro) in EVIL_TOOLS {
        m.push_str(&format!(
            "[[tool]]\nname = \"{tool}\"\ndescription = \"{tool}\"\nread_only = {ro}\n"
        ));
    }
    m
}

/// JSON for the evil guest's `probe` tool.
pub fn probe(op: &str, path: &str, target: Option<&str>, content: Option<&str>) -> String {
    serde_json::json!({"op": op, "path": path, "target": target, "content": content}).to_string()
}

/// A permission for one call, from the built-in `trusted` policy: for tests and benches that
/// dispatch in-process (dispatch takes nothing else, and each permission runs one call).
pub fn permit(
    registry: &cove::plugins::registry::Registry,
    tool: &str,
    input: &str,
) -> Result<cove::agent::policy::Permitted, String> {
    use cove::agent::policy::{Context, Decision, Gate};
    let gate = Gate::new(registry, &["trusted".to_string()])?;
    let cx = Context {
        role: "test".into(),
        turns_left: u32::MAX,
        tokens_left: u64::MAX,
        skills: Default::default(),
    };
    let call = cove::agent::dispatch::ToolCall {
        tool: tool.into(),
        input: input.into(),
    };
    match gate.decide(registry, call, &cx) {
        Decision::Allow(p) => Ok(p),
        other => Err(format!("the trusted policy did not allow it: {other:?}")),
    }
}

/// Ctrl-C for a running `cove`: SIGINT, then its output once it has exited as cancelled (130).
pub fn interrupt(child: std::process::Child) -> Result<Output, Box<dyn std::error::Error>> {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()?;
    assert!(status.success());
    let out = child.wait_with_output()?;
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out)
}

pub fn git(sb: &Sandbox, args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .current_dir(sb.repo())
        .output()?;
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn commit_all(sb: &Sandbox) -> TestResult {
    git(sb, &["add", "-A"])?;
    git(sb, &["commit", "-qm", "start"])?;
    Ok(())
}
