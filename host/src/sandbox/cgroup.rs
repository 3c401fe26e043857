//! Cgroups for one command: a `pids` cap (the only process limit that binds root) and a memory
//! cap, each in a fresh child of cove's own cgroup (so it works inside a container or a systemd
//! slice), cgroup v1 or v2, wherever the kernel lets cove write them.
//!
//! Owns placing the helper there, reading whether the memory cap killed something, and removing
//! the cgroups afterwards. Must not decide whether a missing cgroup is acceptable: `walls` does.

use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";

/// The largest pid Linux can hand out (`PID_MAX_LIMIT` on 64-bit).
const PID_MAX_LIMIT: u32 = 1 << 22;

/// A controller and the file its limit goes in, per hierarchy version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    Pids,
    Memory,
}

impl Controller {
    fn name(self) -> &'static str {
        match self {
            Self::Pids => "pids",
            Self::Memory => "memory",
        }
    }

    fn limit_file(self, v2: bool) -> &'static str {
        match (self, v2) {
            (Self::Pids, _) => "pids.max",
            (Self::Memory, true) => "memory.max",
            (Self::Memory, false) => "memory.limit_in_bytes",
        }
    }
}

/// This process's cgroup path for `controller` (v1) or in the unified hierarchy (v2).
fn own_path(controller: Controller, v2: bool) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = if v2 {
            controllers.is_empty()
        } else {
            controllers.split(',').any(|c| c == controller.name())
        };
        matches.then(|| path.to_string())
    })
}

/// Where the cgroup for the command run by helper `pid` may be, most specific first, with
/// whether that hierarchy is v2.
pub fn candidates(controller: Controller, pid: u32) -> Vec<(PathBuf, bool)> {
    let leaf = format!("cove-{pid}");
    let v1_base = Path::new(ROOT).join(controller.name());
    let (base, v2) = if v1_base.is_dir() {
        (v1_base, false)
    } else if Path::new(ROOT).join("cgroup.controllers").exists() {
        (PathBuf::from(ROOT), true)
    } else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(own) = own_path(controller, v2) {
        let own = own.trim_start_matches('/');
        if !own.is_empty() {
            out.push((base.join(own).join(&leaf), v2));
        }
    }
    out.push((base.join(&leaf), v2));
    out
}

/// Put process `pid` in a new cgroup of `controller` limited to `limit`. Returns the directory,
/// or `None` where no hierarchy lets this process do that.
pub fn enter(controller: Controller, pid: u32, limit: u64) -> Option<PathBuf> {
    for (dir, v2) in candidates(controller, pid) {
        if let Some(parent) = dir.parent() {
            sweep(parent, pid);
        }
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            // v2: the pids and memory caps share one directory.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && v2 => {}
            Err(_) => continue,
        }
        let file = dir.join(controller.limit_file(v2));
        if file.exists()
            && std::fs::write(&file, limit.to_string()).is_ok()
            && std::fs::write(dir.join("cgroup.procs"), pid.to_string()).is_ok()
        {
            return Some(dir);
        }
        let _ = std::fs::remove_dir(&dir);
    }
    None
}

/// Remove the cgroups under `parent` left by commands whose cove was killed before it could
/// clean up (kill -9): those named for `me` (pids are unique among the living, so one named for
/// this helper is stale and would make its own cgroup fail) and those of helpers no longer alive.
/// A cgroup that still holds a process cannot be removed, and is left.
fn sweep(parent: &Path, me: u32) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("cove-"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // Above the kernel's largest pid: `writable`'s probes, not a command's.
        if pid > PID_MAX_LIMIT {
            continue;
        }
        if pid == me || !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

/// Whether a cgroup of `controller` can be made and limited here (probed with a throwaway one).
pub fn writable(controller: Controller) -> Option<PathBuf> {
    let probe = u32::MAX - std::process::id();
    for (dir, v2) in candidates(controller, probe) {
        if std::fs::create_dir(&dir).is_err() {
            continue;
        }
        let ok = dir.join(controller.limit_file(v2)).exists();
        let _ = std::fs::remove_dir(&dir);
        if ok {
            return dir.parent().map(Path::to_path_buf);
        }
    }
    None
}

/// After the command: whether the memory cap killed a process, then remove its cgroups (retrying
/// while the last processes finish exiting).
pub fn finish(pid: u32) -> bool {
    let mut oom = false;
    for controller in [Controller::Memory, Controller::Pids] {
        for (dir, v2) in candidates(controller, pid) {
            if !dir.is_dir() {
                continue;
            }
            if controller == Controller::Memory {
                let events = if v2 {
                    "memory.events"
                } else {
                    "memory.oom_control"
                };
                oom |= std::fs::read_to_string(dir.join(events)).is_ok_and(|t| {
                    t.lines().any(|l| {
                        l.strip_prefix("oom_kill ")
                            .and_then(|n| n.trim().parse::<u64>().ok())
                            .is_some_and(|n| n > 0)
                    })
                });
            }
            for _ in 0..50 {
                match std::fs::remove_dir(&dir) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    _ => break,
                }
            }
        }
    }
    oom
}
