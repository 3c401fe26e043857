//! The OS sandbox for commands: what a process started through the `exec` capability may do.
//!
//! Owns both halves. The parent half ([`run`]) starts `cove __sandbox-exec` with an allow-listed
//! environment, feeds stdin, caps stdout and stderr (draining the rest so the child never blocks
//! and host memory stays bounded), and kills the whole process group at the deadline, on
//! cancellation, and when the command ends. The child half ([`enter_and_exec`]) runs in that fresh,
//! single-threaded helper process and builds the walls before `execvp`:
//! a new session; mount, PID and (unless the network is granted) network namespaces; `.git`
//! bind-mounted read-only; secrets hidden under empty tmpfs; a fresh `/proc`; rlimits and a cgroup
//! `pids` limit (RLIMIT_NPROC does not bind root); every capability dropped; no new privileges;
//! and Landlock: read everywhere, write only the worktree and a private tmp.
//!
//! Must not decide what may run (policies do) or which plugin may use it (grants do).

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
    let exe = match HELPER_EXE.get() {
        Some(exe) => exe.clone(),
        None => std::env::current_exe().map_err(SandboxError::Spawn)?,
    };
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
        }
        if cancelled || timed_out {
            kill_group(pgid);
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // Whatever the command left behind in its group goes too (its PID namespace already died
    // with its first process), and so does its pids cgroup.
    kill_group(pgid);
    for base in ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"] {
        let _ = std::fs::remove_dir(Path::new(base).join(format!("cove-{pgid}")));
    }
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
    Ok(Outcome {
        exit_code: if timed_out { None } else { exit_code },
        stdout,
        stderr,
        timed_out,
        truncated: cut_out || cut_err,
    })
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

fn fail(what: &str) -> ! {
    let err = std::io::Error::last_os_error();
    let _ = writeln!(std::io::stderr(), "cove sandbox: {what}: {err}");
    std::process::exit(HELPER_FAILED)
}

fn cstr(p: &Path) -> std::ffi::CString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

fn mount(src: &Path, target: &Path, fstype: &str, flags: libc::c_ulong, data: &str) -> bool {
    let fstype = std::ffi::CString::new(fstype).unwrap_or_default();
    let data = std::ffi::CString::new(data).unwrap_or_default();
    // SAFETY: all pointers are valid NUL-terminated strings for the duration of the call.
    unsafe {
        libc::mount(
            cstr(src).as_ptr(),
            cstr(target).as_ptr(),
            if fstype.is_empty() {
                std::ptr::null()
            } else {
                fstype.as_ptr()
            },
            flags,
            if data.is_empty() {
                std::ptr::null()
            } else {
                data.as_ptr().cast()
            },
        ) == 0
    }
}

/// The helper: build every wall, then become the command. Never returns.
pub fn enter_and_exec(spec_json: &str) -> ! {
    let spec: Spec = match serde_json::from_str(spec_json) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "cove sandbox: bad spec: {e}");
            std::process::exit(HELPER_FAILED)
        }
    };
    // SAFETY (whole block): plain syscalls in a fresh single-threaded process, before exec.
    unsafe {
        if libc::setsid() < 0 {
            fail("setsid");
        }
        // A pids cgroup bounds the process count even for root, which RLIMIT_NPROC does not.
        limit_pids(spec.max_procs);
        if spec.unsandboxed {
            let r = libc::rlimit {
                rlim_cur: spec.cpu_secs,
                rlim_max: spec.cpu_secs,
            };
            libc::setrlimit(libc::RLIMIT_CPU, &r);
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            exec_now(&spec);
        }
        let root = libc::geteuid() == 0;
        let (uid, gid) = (libc::getuid(), libc::getgid());
        let mut flags = libc::CLONE_NEWNS | libc::CLONE_NEWPID;
        if !spec.net {
            flags |= libc::CLONE_NEWNET;
        }
        if !root {
            flags |= libc::CLONE_NEWUSER;
        }
        if libc::unshare(flags) != 0 {
            fail("unshare (namespaces unavailable; run `cove doctor`)");
        }
        if !root {
            let _ = std::fs::write("/proc/self/setgroups", "deny");
            if std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1")).is_err()
                || std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1")).is_err()
            {
                fail("user namespace id maps");
            }
        }
        // The first child is PID 1 of the new namespace: when it ends, everything it left ends.
        let pid = libc::fork();
        if pid < 0 {
            fail("fork");
        }
        if pid > 0 {
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
            if libc::WIFEXITED(status) {
                std::process::exit(libc::WEXITSTATUS(status));
            }
            std::process::exit(128 + libc::WTERMSIG(status));
        }
        let none = Path::new("");
        if !mount(
            none,
            Path::new("/"),
            "",
            libc::MS_REC | libc::MS_PRIVATE,
            "",
        ) {
            fail("make mounts private");
        }
        let _ = mount(
            Path::new("proc"),
            Path::new("/proc"),
            "proc",
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            "",
        );
        // git's directory (a planted hook runs outside every sandbox) and cove's own (grants and
        // policies) are read-only; the parent made sure `.cove` exists so it cannot be created.
        for name in [".git", ".cove"] {
            let dir = spec.worktree.join(name);
            if !dir.exists() {
                continue;
            }
            if !mount(&dir, &dir, "", libc::MS_BIND | libc::MS_REC, "") {
                fail("bind a protected directory");
            }
            if !mount(
                none,
                &dir,
                "",
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                "",
            ) {
                fail("make a protected directory read-only");
            }
        }
        for p in &spec.deny {
            match std::fs::symlink_metadata(p) {
                Ok(m) if m.is_dir() => {
                    if !mount(
                        Path::new("tmpfs"),
                        p,
                        "tmpfs",
                        libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
                        "size=4k,mode=000",
                    ) {
                        fail("hide a secret directory");
                    }
                }
                Ok(_) => {
                    if !mount(Path::new("/dev/null"), p, "", libc::MS_BIND, "") {
                        fail("hide a secret file");
                    }
                }
                Err(_) => {}
            }
        }
        let limit = |res, v: u64| {
            let r = libc::rlimit {
                rlim_cur: v,
                rlim_max: v,
            };
            libc::setrlimit(res, &r);
        };
        limit(libc::RLIMIT_NPROC, spec.max_procs);
        limit(libc::RLIMIT_FSIZE, spec.max_file_bytes);
        limit(libc::RLIMIT_CPU, spec.cpu_secs);
        limit(libc::RLIMIT_CORE, 0);
        drop_capabilities();
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            fail("no_new_privs");
        }
        if let Err(e) = landlock(&spec) {
            let _ = writeln!(
                std::io::stderr(),
                "cove sandbox: Landlock: {e} (run `cove doctor`)"
            );
            std::process::exit(HELPER_FAILED);
        }
        exec_now(&spec)
    }
}

/// Change to the working directory and become the command.
fn exec_now(spec: &Spec) -> ! {
    // SAFETY: chdir/execvp with valid NUL-terminated strings and a NULL-terminated argv.
    unsafe {
        if libc::chdir(cstr(&spec.cwd).as_ptr()) != 0 {
            fail("chdir to the working directory");
        }
        let args: Vec<std::ffi::CString> = spec
            .argv
            .iter()
            .map(|a| std::ffi::CString::new(a.as_str()).unwrap_or_default())
            .collect();
        let Some(prog) = args.first() else {
            let _ = writeln!(std::io::stderr(), "cove sandbox: empty command");
            std::process::exit(HELPER_FAILED)
        };
        let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        libc::execvp(prog.as_ptr(), ptrs.as_ptr());
        let err = std::io::Error::last_os_error();
        let _ = writeln!(std::io::stderr(), "{}: {err}", spec.argv[0]);
        std::process::exit(127)
    }
}

/// Put this process in a fresh `pids` cgroup capped at `max` (cgroup v1 or v2, where writable).
fn limit_pids(max: u64) {
    let name = format!("cove-{}", std::process::id());
    for base in ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"] {
        let dir = Path::new(base).join(&name);
        if std::fs::create_dir(&dir).is_err() {
            continue;
        }
        if std::fs::write(dir.join("pids.max"), max.to_string()).is_ok()
            && std::fs::write(dir.join("cgroup.procs"), std::process::id().to_string()).is_ok()
        {
            return;
        }
        let _ = std::fs::remove_dir(&dir);
    }
}

/// Drop every capability: effective, permitted, inheritable, ambient and the bounding set.
unsafe fn drop_capabilities() {
    // SAFETY: prctl/capset with valid arguments in this process only.
    unsafe {
        for cap in 0..64 {
            libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
        }
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        let header = Header {
            version: 0x2008_0522,
            pid: 0,
        };
        let data = [Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        libc::syscall(libc::SYS_capset, &header, data.as_ptr());
    }
}

fn landlock(spec: &Spec) -> Result<(), landlock::RulesetError> {
    use landlock::{
        ABI, Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetCreatedAttr,
        path_beneath_rules,
    };
    let abi = ABI::V5;
    let mut ruleset = Ruleset::default().handle_access(AccessFs::from_all(abi))?;
    if !spec.net {
        ruleset = ruleset.handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)?;
    }
    let writable = [spec.worktree.as_path(), spec.tmp.as_path()];
    let devices = [
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/tty",
        "/dev/pts",
        "/dev/ptmx",
    ];
    ruleset
        .create()?
        .add_rules(path_beneath_rules(["/"], AccessFs::from_read(abi)))?
        .add_rules(path_beneath_rules(writable, AccessFs::from_all(abi)))?
        .add_rules(path_beneath_rules(devices, AccessFs::from_all(abi)))?
        .restrict_self()?;
    Ok(())
}

/// One wall, as `cove doctor` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Wall {
    pub name: &'static str,
    pub active: bool,
    pub detail: String,
}

/// The Landlock ABI version this kernel offers, or why there is none.
pub fn landlock_abi() -> Result<i64, String> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: the documented way to ask for the ABI version: null attr, size 0, VERSION flag.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if v < 0 {
        Err(format!(
            "not available: {}",
            std::io::Error::last_os_error()
        ))
    } else {
        Ok(v)
    }
}

/// Check every wall on this machine, the last one by running `true` in a real sandbox.
pub fn doctor(scratch: &Path) -> Vec<Wall> {
    let mut walls = Vec::new();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    walls.push(match landlock_abi() {
        Ok(v) if v >= 4 => Wall { name: "Landlock", active: true, detail: format!("ABI {v}: writes only to the worktree and a private tmp; TCP closed unless granted") },
        Ok(v) => Wall { name: "Landlock", active: true, detail: format!("ABI {v}: filesystem rules only (TCP rules need ABI 4; the network namespace still closes it)") },
        Err(e) => Wall { name: "Landlock", active: false, detail: format!("{e}: needs Linux 5.13+ with landlock in the lsm= boot list") },
    });
    let userns = std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    walls.push(if root {
        Wall { name: "namespaces", active: true, detail: "running as root: mount, PID and network namespaces without a user namespace; every capability is dropped before the command runs".into() }
    } else {
        match userns {
            Some(n) if n > 0 => Wall { name: "namespaces", active: true, detail: "unprivileged user namespaces are enabled".into() },
            _ => Wall { name: "namespaces", active: false, detail: "unprivileged user namespaces are off (sysctl user.max_user_namespaces / kernel.unprivileged_userns_clone)".into() },
        }
    });
    let cgroup = ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"].iter().find(|b| {
        let probe = Path::new(b).join(format!("cove-doctor-{}", std::process::id()));
        let ok = std::fs::create_dir(&probe).is_ok() && probe.join("pids.max").exists();
        let _ = std::fs::remove_dir(&probe);
        ok
    });
    walls.push(match cgroup {
        Some(b) => Wall {
            name: "process limit",
            active: true,
            detail: format!("pids cgroup at {b}, plus RLIMIT_NPROC"),
        },
        None if !root => Wall {
            name: "process limit",
            active: true,
            detail: "RLIMIT_NPROC (no writable pids cgroup)".into(),
        },
        None => Wall {
            name: "process limit",
            active: false,
            detail:
                "running as root, where RLIMIT_NPROC does not bind, and no writable pids cgroup"
                    .into(),
        },
    });
    let tmp = scratch.join("tmp");
    let _ = std::fs::create_dir_all(&tmp);
    let spec = Spec {
        argv: vec![
            "sh".into(),
            "-c".into(),
            "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status".into(),
        ],
        cwd: scratch.to_path_buf(),
        worktree: scratch.to_path_buf(),
        tmp,
        net: false,
        deny: Vec::new(),
        max_procs: 64,
        max_file_bytes: 1 << 20,
        cpu_secs: 10,
        env: Vec::new(),
        unsandboxed: false,
    };
    walls.push(match run(&spec, None, Duration::from_secs(20), None) {
        Ok(o)
            if o.exit_code == Some(0)
                && o.stdout.contains("CapEff:\t0000000000000000")
                && o.stdout.contains("NoNewPrivs:\t1") =>
        {
            Wall {
                name: "sandboxed command",
                active: true,
                detail: "a test command ran with no capabilities and no_new_privs".into(),
            }
        }
        Ok(o) => Wall {
            name: "sandboxed command",
            active: false,
            detail: format!(
                "the test command did not run as expected: {}{}",
                o.stdout, o.stderr
            ),
        },
        Err(e) => Wall {
            name: "sandboxed command",
            active: false,
            detail: e.to_string(),
        },
    });
    walls
}
