//! The helper half of the sandbox: `cove __sandbox-exec SPEC` builds every wall in a fresh,
//! single-threaded process and then becomes the command.
//!
//! In order: a new session; the pids and memory cgroups; mount, PID and (unless the network is
//! granted) network namespaces; `.git` and `.cove` read-only; secrets, cove's own directories and
//! (without the network) every listening unix socket outside the worktree hidden; a fresh `/proc`;
//! rlimits; every capability dropped; no new privileges; Landlock, fully enforced; every
//! descriptor above stderr closed; exec. The result of every call that builds a wall is checked:
//! a wall that cannot be built stops the helper with exit code [`HELPER_FAILED`] and a message.
//!
//! Must not run anything of the command's before every wall stands.

use super::cgroup::{self, Controller};
use super::{HELPER_FAILED, Spec};
use std::io::Write;
use std::path::{Path, PathBuf};

fn fail(what: &str) -> ! {
    let err = std::io::Error::last_os_error();
    fail_with(&format!("{what}: {err}"))
}

fn fail_with(msg: &str) -> ! {
    let _ = writeln!(std::io::stderr(), "cove sandbox: {msg}");
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

fn set_limit(res: libc::__rlimit_resource_t, v: u64, what: &str) {
    let r = libc::rlimit {
        rlim_cur: v,
        rlim_max: v,
    };
    // SAFETY: setrlimit with a valid struct, on this process.
    if unsafe { libc::setrlimit(res, &r) } != 0 {
        fail(what);
    }
}

/// Pathname unix sockets that something is listening on, outside the worktree and the tmp: read
/// from this network namespace's table before leaving it.
fn listening_sockets(spec: &Spec) -> Vec<PathBuf> {
    let Ok(table) = std::fs::read_to_string("/proc/net/unix") else {
        fail("read /proc/net/unix to hide the host's unix sockets")
    };
    let mut out: Vec<PathBuf> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            // Num RefCount Protocol Flags Type St Inode Path: the path is all after the 7th field.
            let mut rest = l.trim_start();
            for _ in 0..7 {
                let i = rest.find(char::is_whitespace)?;
                rest = rest[i..].trim_start();
            }
            rest.starts_with('/').then(|| PathBuf::from(rest))
        })
        .filter(|p| !p.starts_with(&spec.worktree) && !p.starts_with(&spec.tmp))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The helper: build every wall, then become the command. Never returns.
pub fn enter_and_exec(spec_json: &str) -> ! {
    let spec: Spec = match serde_json::from_str(spec_json) {
        Ok(s) => s,
        Err(e) => fail_with(&format!("bad spec: {e}")),
    };
    let pid = std::process::id();
    // SAFETY: setsid in this fresh process.
    if unsafe { libc::setsid() } < 0 {
        fail("setsid");
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    // A pids cgroup bounds the process count even for root, which RLIMIT_NPROC does not.
    if cgroup::enter(Controller::Pids, pid, spec.max_procs).is_none() && root && !spec.unsandboxed {
        fail_with(
            "no writable pids cgroup, and as root RLIMIT_NPROC does not bind (run `cove doctor`)",
        );
    }
    let memory_cgroup = spec.memory_bytes > 0
        && cgroup::enter(Controller::Memory, pid, spec.memory_bytes).is_some();
    if spec.memory_bytes > 0 && !memory_cgroup {
        set_limit(libc::RLIMIT_DATA, spec.memory_bytes, "RLIMIT_DATA");
    }
    if spec.unsandboxed {
        set_limit(libc::RLIMIT_CPU, spec.cpu_secs, "RLIMIT_CPU");
        // SAFETY: prctl on this process.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            fail("no_new_privs");
        }
        exec_now(&spec);
    }
    let sockets = if spec.net {
        Vec::new()
    } else {
        listening_sockets(&spec)
    };
    // SAFETY (whole block): plain syscalls in a fresh single-threaded process, before exec.
    unsafe {
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
        let child = libc::fork();
        if child < 0 {
            fail("fork");
        }
        if child > 0 {
            let mut status = 0;
            libc::waitpid(child, &mut status, 0);
            if libc::WIFEXITED(status) {
                std::process::exit(libc::WEXITSTATUS(status));
            }
            std::process::exit(128 + libc::WTERMSIG(status));
        }
    }
    build_mounts(&spec, &sockets);
    set_limit(libc::RLIMIT_NPROC, spec.max_procs, "RLIMIT_NPROC");
    set_limit(
        libc::RLIMIT_FSIZE,
        spec.max_file_bytes.min(spec.disk_bytes.max(1 << 20)),
        "RLIMIT_FSIZE",
    );
    set_limit(libc::RLIMIT_CPU, spec.cpu_secs, "RLIMIT_CPU");
    set_limit(libc::RLIMIT_CORE, 0, "RLIMIT_CORE");
    drop_capabilities();
    // SAFETY: prctl on this process.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        fail("no_new_privs");
    }
    if let Err(e) = landlock(&spec) {
        fail_with(&format!("Landlock: {e} (run `cove doctor`)"));
    }
    exec_now(&spec)
}

/// Whether hiding `p` under an empty mount would also hide the worktree or the tmp.
fn covers_work(spec: &Spec, p: &Path) -> bool {
    spec.worktree.starts_with(p) || spec.tmp.starts_with(p)
}

/// The mount namespace: private mounts, a fresh /proc, protected directories read-only, secrets
/// and sockets hidden.
fn build_mounts(spec: &Spec, sockets: &[PathBuf]) {
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
    if !mount(
        Path::new("proc"),
        Path::new("/proc"),
        "proc",
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        "",
    ) {
        fail("mount a fresh /proc");
    }
    // git's directory (a planted hook runs outside every sandbox) and cove's own (grants and
    // policies) are read-only; the parent made sure `.cove` exists so it cannot be created.
    for name in [".git", ".cove"] {
        let dir = spec.worktree.join(name);
        if std::fs::symlink_metadata(&dir).is_err() {
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
        if covers_work(spec, p) {
            continue;
        }
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
    // Without the network, the host's unix sockets (docker, ssh-agent, a database) are the
    // network too: each becomes /dev/null, where a connect is refused.
    use std::os::unix::fs::FileTypeExt;
    for p in sockets {
        if std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket())
            && !mount(Path::new("/dev/null"), p, "", libc::MS_BIND, "")
        {
            fail("hide a unix socket");
        }
    }
}

/// Change to the working directory, close every inherited descriptor above stderr, and become
/// the command.
fn exec_now(spec: &Spec) -> ! {
    close_inherited();
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
            fail_with("empty command")
        };
        let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        libc::execvp(prog.as_ptr(), ptrs.as_ptr());
        let err = std::io::Error::last_os_error();
        let _ = writeln!(std::io::stderr(), "{}: {err}", spec.argv[0]);
        std::process::exit(127)
    }
}

/// Close every descriptor above stderr: whatever launched cove may have left some open, and a
/// command must not read what they lead to.
fn close_inherited() {
    // SAFETY: close_range on this process's own descriptor table, before exec.
    let r = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if r == 0 {
        return;
    }
    // Kernels before 5.9: close them one by one.
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|fd| *fd > 2)
                .collect()
        })
        .unwrap_or_else(|_| fail("list open descriptors"));
    for fd in fds {
        // SAFETY: closing a descriptor of this process; EBADF (the listing's own) is fine.
        unsafe {
            libc::close(fd);
        }
    }
}

/// Drop every capability: the bounding set, ambient, effective, permitted and inheritable.
fn drop_capabilities() {
    let last: libc::c_ulong = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(63);
    // SAFETY (whole block): prctl/capset with valid arguments, on this process only.
    unsafe {
        for cap in 0..=last {
            if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 {
                fail("drop the capability bounding set");
            }
        }
        if libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        ) != 0
        {
            fail("clear ambient capabilities");
        }
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
        if libc::syscall(libc::SYS_capset, &header, data.as_ptr()) != 0 {
            fail("capset");
        }
    }
}

/// Landlock, fully enforced or not at all: read everywhere, write only the worktree, the tmp and
/// a few devices; TCP closed without the network (ABI 4+); abstract sockets and signals scoped to
/// the sandbox (ABI 6+).
fn landlock(spec: &Spec) -> Result<(), String> {
    use landlock::{
        ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr,
        RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
    };
    let have = super::walls::landlock_abi()?;
    if have < super::walls::MIN_LANDLOCK_ABI {
        return Err(format!(
            "ABI {have} is too old (needs {})",
            super::walls::MIN_LANDLOCK_ABI
        ));
    }
    let abi = match have {
        3 => ABI::V3,
        4 => ABI::V4,
        _ => ABI::V5,
    };
    let err = |e: landlock::RulesetError| e.to_string();
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))
        .map_err(err)?;
    if !spec.net && have >= 4 {
        ruleset = ruleset
            .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)
            .map_err(err)?;
    }
    if have >= 6 {
        ruleset = ruleset
            .scope(Scope::AbstractUnixSocket | Scope::Signal)
            .map_err(err)?;
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
    let status = ruleset
        .create()
        .map_err(err)?
        .add_rules(path_beneath_rules(["/"], AccessFs::from_read(abi)))
        .map_err(err)?
        .add_rules(path_beneath_rules(writable, AccessFs::from_all(abi)))
        .map_err(err)?
        .add_rules(path_beneath_rules(devices, AccessFs::from_all(abi)))
        .map_err(err)?
        .restrict_self()
        .map_err(err)?;
    if status.ruleset != RulesetStatus::FullyEnforced || !status.no_new_privs {
        return Err(format!(
            "the kernel enforced only part of the rules ({:?})",
            status.ruleset
        ));
    }
    Ok(())
}
