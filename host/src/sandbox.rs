//! The OS sandbox for commands: what a process started through the `exec` capability may do.
//!
//! Owns both halves. The parent half ([`run`], here) refuses outright where a wall cannot be built
//! (`walls`), starts `cove __sandbox-exec` with an allow-listed environment, feeds stdin, caps
//! stdout and stderr (draining the rest so the child never blocks and host memory stays bounded),
//! watches how much the command adds to the disk, and kills the whole process group at the
//! deadline, on cancellation, past the disk bound, and when the command ends. The child half
//! (`helper`) builds the walls before `execvp`; `cgroup` holds the pids and memory caps.
//!
//! Must not decide what may run (policies do) or which plugin may use it (grants do).

mod cgroup;
mod helper;
pub mod walls;

pub use helper::enter_and_exec;
pub use walls::{Wall, doctor, landlock_abi};

use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The hidden subcommand the helper runs as.
pub const HELPER: &str = "__sandbox-exec";
/// Variables a command may inherit from cove's environment; nothing else reaches it.
pub const ENV_ALLOW: &[&str] = &[
    "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "USER", "LOGNAME", "TZ", "SHELL",
];
static HELPER_EXE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Use `exe` (a `cove` binary) as the sandbox helper instead of the running executable: for
/// programs that embed cove as a library and are not themselves `cove`.
pub fn set_helper_exe(exe: PathBuf) {
    let _ = HELPER_EXE.set(exe);
}

/// Most bytes kept of stdout and of stderr.
pub const OUTPUT_CAP: usize = 512 * 1024;

/// The bounds on what one command may take, from `[sandbox]` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resources {
    /// The memory cap of the whole command (0: none).
    pub memory_bytes: u64,
    /// Most bytes one command may add to the disk (0: none).
    pub disk_bytes: u64,
}

/// Everything the helper needs, passed as JSON in its argv.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Spec {
    pub argv: Vec<String>,
    /// Absolute, inside the worktree.
    pub cwd: PathBuf,
    pub worktree: PathBuf,
    /// Private temporary directory (writable), also `TMPDIR`.
    pub tmp: PathBuf,
    pub net: bool,
    /// Paths hidden from the command (secrets).
    pub deny: Vec<PathBuf>,
    pub max_procs: u64,
    pub max_file_bytes: u64,
    pub cpu_secs: u64,
    /// The memory cap of the whole command (0: none).
    #[serde(default)]
    pub memory_bytes: u64,
    /// Most bytes the command may add to the disk holding the worktree and its tmp (0: none).
    #[serde(default)]
    pub disk_bytes: u64,
    /// Environment on top of the allow-list (from the project's config).
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// Skip the namespaces, mounts, Landlock and capability drop (`--unsandboxed`).
    #[serde(default)]
    pub unsandboxed: bool,
}

static UNSANDBOXED: AtomicBool = AtomicBool::new(false);

/// Run commands without the OS sandbox from now on (the user's `--unsandboxed`).
pub fn set_unsandboxed(on: bool) {
    UNSANDBOXED.store(on, Ordering::Relaxed);
}

/// Whether `--unsandboxed` is in force.
pub fn unsandboxed() -> bool {
    UNSANDBOXED.load(Ordering::Relaxed)
}

/// The secrets hidden by default, relative to `$HOME`.
pub const DEFAULT_DENY: &[&str] = &[
    ".ssh",
    ".aws",
    ".gnupg",
    ".config/cove",
    ".config/gcloud",
    ".azure",
    ".kube",
    ".docker",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    ".config/gh",
    ".local/share/keyrings",
    ".mozilla",
    ".config/google-chrome",
    ".config/chromium",
    ".cargo/credentials.toml",
];

/// What a finished command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    pub truncated: bool,
    /// Why cove stopped the command early, besides the deadline (the memory or disk bound).
    pub stopped: Option<String>,
}

/// A command that could not be run.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot start the sandbox helper: {0}")]
    Spawn(std::io::Error),
    #[error("the command was cancelled")]
    Cancelled,
    #[error("{0}")]
    Setup(String),
    /// A wall this machine cannot build: the words `cove doctor` uses.
    #[error("{0}")]
    Refused(String),
}

/// The command that runs `spec` in the sandbox: the helper, with the allow-listed environment
/// and the spec's own, stdio piped, in a process group of its own. [`run`] runs one to its end; a
/// long-running server (an MCP server over stdio) is started from it by its caller, who must
/// kill its process group when done.
///
/// # Errors
/// [`SandboxError::Refused`] where a wall cannot be built on this machine; `Spawn`/`Setup` when
/// cove's own executable or the spec cannot be handed over.
pub fn command(spec: &Spec) -> Result<Command, SandboxError> {
    let exe = match HELPER_EXE.get() {
        Some(exe) => exe.clone(),
        None => std::env::current_exe().map_err(SandboxError::Spawn)?,
    };
    if !spec.unsandboxed {
        walls::preflight().map_err(SandboxError::Refused)?;
    }
    let json = serde_json::to_string(spec).map_err(|e| SandboxError::Setup(e.to_string()))?;
    // `.cove` is mounted read-only in the sandbox; it must exist so a command cannot create it.
    std::fs::create_dir_all(spec.worktree.join(".cove")).map_err(SandboxError::Spawn)?;
    let mut cmd = Command::new(exe);
    cmd.arg(HELPER)
        .arg(json)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for k in ENV_ALLOW {
        if let Some(v) = std::env::var_os(k) {
            cmd.env(k, v);
        }
    }
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    cmd.env("TMPDIR", &spec.tmp);
    Ok(cmd)
}

/// End what a command started from [`command`] (as process `pid`) left behind: its process
/// group and its cgroups.
pub fn end(pid: u32) {
    kill_group(pid as libc::pid_t);
    let _ = cgroup::finish(pid);
}

/// A command's own tmp directory (its `TMPDIR`, writable inside the sandbox), removed with
/// everything in it when dropped.
#[derive(Debug)]
pub struct PrivateTmp(PathBuf);

impl PrivateTmp {
    /// A new empty directory `cove-LABEL-PID-N` in the system's tmp.
    ///
    /// # Errors
    /// It cannot be created.
    pub fn new(label: &str) -> std::io::Result<Self> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("cove-{label}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateTmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What commands never see: [`DEFAULT_DENY`] under `$HOME`, and cove's own config (keys, trust
/// decisions) and data (transcripts), wherever they are.
pub fn default_deny() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut deny: Vec<PathBuf> = home
        .map(|h| DEFAULT_DENY.iter().map(|d| h.join(d)).collect())
        .unwrap_or_default();
    deny.extend(crate::paths::config_dir());
    deny.extend(crate::paths::data_dir());
    deny
}

/// Run `spec` in the sandbox with `stdin`, stopping it at `timeout` or when `cancel` is set.
///
/// # Errors
/// [`SandboxError`] when the helper cannot start or the walls cannot be built (the helper's own
/// message says which wall and why).
pub fn run(
    spec: &Spec,
    stdin: Option<&str>,
    timeout: Duration,
    cancel: Option<&Arc<AtomicBool>>,
) -> Result<Outcome, SandboxError> {
    let mut cmd = command(spec)?;
    let mut child = cmd.spawn().map_err(SandboxError::Spawn)?;
    let pgid = child.id() as libc::pid_t;
    if let Some(mut pipe) = child.stdin.take() {
        let input = stdin.unwrap_or_default().to_string();
        std::thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    let out = child
        .stdout
        .take()
        .map(|p| std::thread::spawn(move || capped(p)));
    let err = child
        .stderr
        .take()
        .map(|p| std::thread::spawn(move || capped(p)));
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let mut cancelled = false;
    let mut disk = DiskWatch::new(spec);
    let mut over_disk = false;
    let mut polls = 0u32;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(_) => break None,
        }
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            cancelled = true;
        } else if Instant::now() >= deadline {
            timed_out = true;
        } else if polls.is_multiple_of(8) && disk.exceeded() {
            over_disk = true;
        }
        polls = polls.wrapping_add(1);
        if cancelled || timed_out || over_disk {
            kill_group(pgid);
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // Whatever the command left behind in its group goes too (its PID namespace already died
    // with its first process), and so do its cgroups.
    kill_group(pgid);
    let oom = cgroup::finish(child.id());
    let (stdout, cut_out) = out.and_then(|h| h.join().ok()).unwrap_or_default();
    let (stderr, cut_err) = err.and_then(|h| h.join().ok()).unwrap_or_default();
    if cancelled {
        return Err(SandboxError::Cancelled);
    }
    use std::os::unix::process::ExitStatusExt;
    let exit_code = status.and_then(|s| s.code().or_else(|| s.signal().map(|sig| 128 + sig)));
    if exit_code == Some(HELPER_FAILED) && stdout.is_empty() && stderr.starts_with("cove sandbox:")
    {
        return Err(SandboxError::Setup(stderr.trim().to_string()));
    }
    let stopped = if over_disk {
        Some(format!(
            "cove stopped the command: it added more than {} MB to the disk ([sandbox] disk_mb); the files it wrote are still there, nothing that existed before was removed",
            spec.disk_bytes >> 20
        ))
    } else if oom {
        Some(format!(
            "cove stopped the command: it went past the memory cap of {} MB ([sandbox] memory_mb)",
            spec.memory_bytes >> 20
        ))
    } else {
        None
    };
    Ok(Outcome {
        exit_code: if timed_out { None } else { exit_code },
        stdout,
        stderr,
        timed_out,
        truncated: cut_out || cut_err,
        stopped,
    })
}

/// How much a command has added to the filesystems of the worktree and its tmp: their free space
/// when it started against now. Writes by other programs count too; the bound is generous.
struct DiskWatch {
    limit: u64,
    /// (path, fsid, free bytes at the start), one per filesystem.
    start: Vec<(PathBuf, u64, u64)>,
}

impl DiskWatch {
    fn new(spec: &Spec) -> Self {
        let mut start: Vec<(PathBuf, u64, u64)> = Vec::new();
        if spec.disk_bytes > 0 {
            for p in [&spec.worktree, &spec.tmp] {
                if let Ok(st) = rustix::fs::statvfs(p.as_path())
                    && !start.iter().any(|(_, id, _)| *id == st.f_fsid)
                {
                    start.push((p.clone(), st.f_fsid, st.f_bfree * st.f_frsize));
                }
            }
        }
        Self {
            limit: spec.disk_bytes,
            start,
        }
    }

    fn exceeded(&mut self) -> bool {
        let added: u64 = self
            .start
            .iter()
            .filter_map(|(p, _, before)| {
                let st = rustix::fs::statvfs(p.as_path()).ok()?;
                Some(before.saturating_sub(st.f_bfree * st.f_frsize))
            })
            .sum();
        self.limit > 0 && added > self.limit
    }
}

fn kill_group(pgid: libc::pid_t) {
    // SAFETY: signalling a process group we created; a stale group id fails with ESRCH.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}

/// Read all of `pipe`, keeping the first [`OUTPUT_CAP`] bytes.
fn capped(mut pipe: impl Read) -> (String, bool) {
    let mut kept = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let mut cut = false;
    loop {
        match pipe.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = OUTPUT_CAP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                cut |= n > room;
            }
        }
    }
    (String::from_utf8_lossy(&kept).into_owned(), cut)
}

/// The exit code the helper uses when it could not build the sandbox.
pub const HELPER_FAILED: i32 = 125;
