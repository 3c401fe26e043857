//! Which walls this machine can build, in one set of words shared by `cove doctor` and by the
//! refusal a command meets when a wall is missing.
//!
//! Owns the checks (Landlock ABI, namespaces, the process limit, the memory cap) and the decision
//! that a missing wall refuses commands. Must not build walls: the helper does.

use super::cgroup::{self, Controller};
use super::{Spec, run};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// The oldest Landlock ABI cove accepts: ABI 3 is the first that can stop a command truncating a
/// file outside the worktree.
pub const MIN_LANDLOCK_ABI: i64 = 3;

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

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn landlock() -> Wall {
    match landlock_abi() {
        Ok(v) if v >= MIN_LANDLOCK_ABI => Wall {
            name: "Landlock",
            active: true,
            detail: format!(
                "ABI {v}: writes only to the worktree and a private tmp{}",
                if v >= 4 {
                    "; TCP closed unless granted"
                } else {
                    ""
                }
            ),
        },
        Ok(v) => Wall {
            name: "Landlock",
            active: false,
            detail: format!(
                "ABI {v} cannot stop a command truncating files outside the worktree: needs ABI {MIN_LANDLOCK_ABI} (Linux 6.2+)"
            ),
        },
        Err(e) => Wall {
            name: "Landlock",
            active: false,
            detail: format!("{e}: needs Linux 6.2+ with landlock in the lsm= boot list"),
        },
    }
}

fn namespaces() -> Wall {
    if is_root() {
        return Wall {
            name: "namespaces",
            active: true,
            detail: "running as root: mount, PID and network namespaces without a user namespace; every capability is dropped before the command runs".into(),
        };
    }
    let userns = std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    match userns {
        Some(n) if n > 0 => Wall {
            name: "namespaces",
            active: true,
            detail: "unprivileged user namespaces are enabled".into(),
        },
        _ => Wall {
            name: "namespaces",
            active: false,
            detail: "unprivileged user namespaces are off (sysctl user.max_user_namespaces / kernel.unprivileged_userns_clone)".into(),
        },
    }
}

fn process_limit() -> Wall {
    match cgroup::writable(Controller::Pids) {
        Some(at) => Wall {
            name: "process limit",
            active: true,
            detail: format!("pids cgroup under {}, plus RLIMIT_NPROC", at.display()),
        },
        None if !is_root() => Wall {
            name: "process limit",
            active: true,
            detail: "RLIMIT_NPROC (no writable pids cgroup)".into(),
        },
        None => Wall {
            name: "process limit",
            active: false,
            detail: "running as root, where RLIMIT_NPROC does not bind, and no writable pids cgroup (mount a writable cgroup fs, or run cove as a normal user)".into(),
        },
    }
}

fn memory_cap() -> Wall {
    Wall {
        name: "memory cap",
        active: true,
        detail: match cgroup::writable(Controller::Memory) {
            Some(at) => format!(
                "memory cgroup under {} caps the whole command ([sandbox] memory_mb)",
                at.display()
            ),
            None => {
                "RLIMIT_DATA per process (no writable memory cgroup; [sandbox] memory_mb)".into()
            }
        },
    }
}

/// The walls every command needs, checked without running one.
fn required() -> Vec<Wall> {
    vec![landlock(), namespaces(), process_limit(), memory_cap()]
}

/// The refusal for a missing wall: the doctor's own words, and what to do.
pub fn refusal(w: &Wall) -> String {
    format!(
        "commands are refused on this machine: {}: {}. `cove doctor` lists every wall; `--unsandboxed` runs commands without the OS sandbox",
        w.name, w.detail
    )
}

/// Whether commands may run here (checked once per process).
///
/// # Errors
/// The refusal of the first missing wall.
pub fn preflight() -> Result<(), String> {
    static CHECKED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    CHECKED
        .get_or_init(|| match required().iter().find(|w| !w.active) {
            Some(w) => Err(refusal(w)),
            None => Ok(()),
        })
        .clone()
}

/// Check every wall on this machine, the last one by running a real command in the sandbox.
pub fn doctor(scratch: &Path) -> Vec<Wall> {
    let mut walls = required();
    let tmp = scratch.join("tmp");
    let _ = std::fs::create_dir_all(&tmp);
    let spec = Spec {
        argv: vec![
            "sh".into(),
            "-c".into(),
            "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status".into(),
        ],
        cwd: scratch.to_path_buf(),
        worktree: scratch.to_path_buf(),
        tmp,
        net: false,
        deny: Vec::new(),
        max_procs: 64,
        max_file_bytes: 1 << 20,
        cpu_secs: 10,
        memory_bytes: 256 << 20,
        disk_bytes: 16 << 20,
        env: Vec::new(),
        unsandboxed: false,
    };
    if walls.iter().all(|w| w.active) {
        walls.push(match run(&spec, None, Duration::from_secs(20), None) {
            Ok(o)
                if o.exit_code == Some(0)
                    && o.stdout.contains("CapEff:\t0000000000000000")
                    && o.stdout.contains("CapBnd:\t0000000000000000")
                    && o.stdout.contains("NoNewPrivs:\t1") =>
            {
                Wall {
                    name: "sandboxed command",
                    active: true,
                    detail: "a test command ran with no capabilities, and no_new_privs".into(),
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
    }
    walls
}
