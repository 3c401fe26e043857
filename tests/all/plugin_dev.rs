//! `cove plugin new|build|test|install`: a third-party plugin from nothing, in each language,
//! with the real toolchains (cargo for wasm32-wasip2, componentize-js from npm, componentize-py),
//! outside any repository, then installed into a repository and called through `cove tools`.
//!
//! What the toolchains download is kept under the target directory (`plugin-dev/`): the Rust
//! example's cargo target dir, shared by every run so it compiles its dependencies once, and
//! componentize-js's node_modules, installed by the first run's `cove plugin build` and linked
//! into the later runs' plugin folders.

use crate::support::{Run, Sandbox, TestResult};
use std::path::{Path, PathBuf};

/// Shared between tests and runs.
fn cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-dev")
}

/// `cove ARGS` in `dir` (outside the sandbox's repository), isolated like every test's cove, with
/// the Rust example's cargo target dir shared.
fn cove_at(sb: &Sandbox, dir: &Path, args: &[&str]) -> Result<Run, std::io::Error> {
    let target = cache().join("cargo-target");
    let target = target.to_string_lossy().into_owned();
    let mut env = vec![("CARGO_TARGET_DIR", target)];
    if let Some(path) = node_path() {
        env.push(("PATH", path));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Ok(Run::from(sb.command(dir, args, &env).output()?))
}

/// componentize-js needs node 18 or newer: when the system's is older, a PATH with the node 22
/// the MCP tests install first (npm, run by it, then uses it too).
fn node_path() -> Option<String> {
    let version = std::process::Command::new("node")
        .arg("--version")
        .output()
        .ok()?;
    let version = String::from_utf8_lossy(&version.stdout);
    let major: u32 = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()?;
    if major >= 18 {
        return None;
    }
    let node = &crate::mcp::installed().ok()?.node_22;
    let path = std::env::var("PATH").unwrap_or_default();
    Some(format!("{}:{path}", node.parent()?.display()))
}

#[track_caller]
fn ok(run: &Run, what: &str) {
    assert!(
        run.ok,
        "{what} failed ({:?}):\nstdout: {}\nstderr: {}",
        run.code, run.stdout, run.stderr
    );
}

/// Folder `work/` beside the sandbox's repository: in no git repository.
fn work(sb: &Sandbox) -> Result<PathBuf, std::io::Error> {
    let dir = sb.tmp.path().join("work");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Link the cached componentize-js into `plugin` (when a run before this one installed it).
fn reuse_node_modules(plugin: &Path) -> TestResult {
    let cached = cache().join("js/node_modules");
    if cached.join(".bin/componentize-js").exists() {
        std::os::unix::fs::symlink(&cached, plugin.join("node_modules"))?;
    }
    Ok(())
}

/// Keep what `cove plugin build` installed into `plugin` for the next run.
fn keep_node_modules(plugin: &Path) -> TestResult {
    let here = plugin.join("node_modules");
    if here.is_symlink() || !here.is_dir() {
        return Ok(());
    }
    let cached = cache().join("js");
    std::fs::create_dir_all(&cached)?;
    if !cached.join("node_modules").exists() {
        std::fs::rename(&here, cached.join("node_modules"))?;
        std::os::unix::fs::symlink(cached.join("node_modules"), &here)?;
    }
    Ok(())
}

/// new → build → test → install → tools list → tools call, for a tool plugin in `lang`.
fn word_count_end_to_end(lang: &str) -> TestResult {
    let sb = Sandbox::new()?;
    let work = work(&sb)?;
    let name = format!("wc-{lang}");
    if lang == "rust" {
        // Inside someone else's cargo workspace: the plugin's own [workspace] keeps it apart.
        std::fs::write(work.join("Cargo.toml"), "[workspace]\nmembers = []\n")?;
    }
    let run = cove_at(&sb, &work, &["plugin", "new", &name, "--lang", lang])?;
    ok(&run, "plugin new");
    let dir = work.join(&name);
    for file in [
        "plugin.toml",
        "README.md",
        ".gitignore",
        "wit/types.wit",
        "wit/worlds.wit",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing: {run:?}");
    }
    let manifest = std::fs::read_to_string(dir.join("plugin.toml"))?;
    assert!(manifest.contains("contract = \"0.2.0\""), "{manifest}");
    assert_eq!(
        std::fs::read_to_string(dir.join("wit/worlds.wit"))?,
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit/v0.2/worlds.wit")
        )?
    );
    if lang == "js" {
        reuse_node_modules(&dir)?;
    }

    // Nothing built yet: install refuses, saying what to do.
    let run = sb.cove(&["plugin", "install", &dir.to_string_lossy()])?;
    assert!(!run.ok, "{run:?}");
    assert!(
        run.stderr.contains("has no component") && run.stderr.contains("cove plugin build"),
        "{run:?}"
    );

    let run = cove_at(&sb, &dir, &["plugin", "build"])?;
    if lang == "js" {
        keep_node_modules(&dir)?;
    }
    ok(&run, "plugin build");
    assert!(run.stdout.contains("kind tool, contract 0.2.0"), "{run:?}");
    assert!(dir.join(format!("{name}.wasm")).is_file());

    let run = cove_at(&sb, &dir, &["plugin", "test"])?;
    ok(&run, "plugin test");
    assert!(run.stdout.contains("describe: word_count"), "{run:?}");
    assert!(
        run.stdout.contains("pass  sample 2") && run.stdout.contains("3 words (2 unique)"),
        "{run:?}"
    );
    assert!(run.stdout.contains("4 passed, 0 failed"), "{run:?}");
    // Contract 0.2: the progress report and the structured output, which the model never sees.
    assert!(
        run.stdout.contains("progress: 0/3 counting words")
            && run.stdout.contains(r#"structured: {"words":3,"unique":2}"#),
        "{run:?}"
    );

    let run = sb.cove(&["plugin", "install", &dir.to_string_lossy()])?;
    ok(&run, "plugin install");
    assert!(run.stdout.contains("cove trust"), "{run:?}");
    assert!(run.stdout.contains("it asks for: fs:none"), "{run:?}");
    let installed = sb.repo().join(".cove/plugins").join(&name);
    let mut files: Vec<String> = std::fs::read_dir(&installed)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    files.sort();
    assert_eq!(
        files,
        vec!["plugin.toml".to_string(), format!("{name}.wasm")]
    );
    sb.trust()?;

    let run = sb.cove(&["tools", "list"])?;
    let line = run
        .out()
        .lines()
        .find(|l| l.starts_with("word_count"))
        .unwrap_or_default();
    assert!(line.contains(&format!("project:{name}")), "{run:?}");
    let run = sb.cove(&["tools", "call", "word_count", r#"{"text":"a b a"}"#])?;
    assert_eq!(run.out().trim(), "3 words");
    let run = sb.cove(&[
        "tools",
        "call",
        "word_count",
        r#"{"text":"a b a","unique":true}"#,
    ])?;
    assert_eq!(run.out().trim(), "3 words (2 unique)");
    // Programs get the structured output too; the progress report goes to stderr.
    let run = sb.cove(&[
        "tools",
        "call",
        "--json",
        "word_count",
        r#"{"text":"a b a"}"#,
    ])?;
    let value: serde_json::Value = serde_json::from_str(run.out())?;
    assert_eq!(
        value["structured"],
        serde_json::json!({"words": 3}),
        "{run:?}"
    );
    assert!(run.stderr.contains("counting words"), "{run:?}");
    Ok(())
}

#[test]
fn a_rust_tool_from_new_to_a_call() -> TestResult {
    word_count_end_to_end("rust")
}

#[test]
fn a_javascript_tool_from_new_to_a_call() -> TestResult {
    word_count_end_to_end("js")
}

#[test]
fn a_python_tool_from_new_to_a_call_and_a_wrong_sample_fails() -> TestResult {
    word_count_end_to_end("python")?;
    // The same plugin, with a sample that expects what it does not say.
    let sb = Sandbox::new()?;
    let work = work(&sb)?;
    ok(
        &cove_at(&sb, &work, &["plugin", "new", "wc", "--lang", "python"])?,
        "plugin new",
    );
    let dir = work.join("wc");
    ok(&cove_at(&sb, &dir, &["plugin", "build"])?, "plugin build");
    let manifest = std::fs::read_to_string(dir.join("plugin.toml"))?;
    std::fs::write(
        dir.join("plugin.toml"),
        manifest.replace("expect = \"3 words (2 unique)\"", "expect = \"4 words\""),
    )?;
    let run = cove_at(&sb, &work, &["plugin", "test", "wc"])?;
    assert!(!run.ok, "{run:?}");
    let fail = run
        .stdout
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .unwrap_or_default();
    assert!(
        fail.contains("sample 2")
            && fail.contains("expected \"4 words\"")
            && fail.contains("3 words (2 unique)"),
        "{run:?}"
    );
    assert!(run.stdout.contains("3 passed, 1 failed"), "{run:?}");

    // Something else installed under that name is not replaced without --force.
    sb.write(
        ".cove/plugins/wc/plugin.toml",
        "name = \"other\"\nversion = \"1\"\nkind = \"policy\"\ncontract = \"0.2.0\"\n",
    )?;
    let run = sb.cove(&["plugin", "install", &dir.to_string_lossy()])?;
    assert!(!run.ok && run.stderr.contains("--force"), "{run:?}");
    assert!(sb.read(".cove/plugins/wc/plugin.toml")?.contains("other"));
    let run = sb.cove(&["plugin", "install", "--force", &dir.to_string_lossy()])?;
    ok(&run, "plugin install --force");
    assert!(
        sb.read(".cove/plugins/wc/plugin.toml")?
            .contains("name = \"wc\"")
    );
    // An earlier build of the same plugin is replaced; the same bytes are left as they are.
    let run = sb.cove(&["plugin", "install", &dir.to_string_lossy()])?;
    assert!(run.out().contains("unchanged"), "{run:?}");

    // A manifest that lists other tools than the component describes: test says so, and fails.
    let listed = std::fs::read_to_string(dir.join("plugin.toml"))?;
    std::fs::write(
        dir.join("plugin.toml"),
        listed.replace("word_count", "word_counter"),
    )?;
    let run = cove_at(&sb, &dir, &["plugin", "test"])?;
    assert!(!run.ok, "{run:?}");
    assert!(
        run.stderr
            .contains("the component offers tool `word_count` that plugin.toml does not list"),
        "{run:?}"
    );
    std::fs::write(dir.join("plugin.toml"), listed)?;

    // A build that fails: the toolchain's own error, and a non-zero exit naming the step.
    let app = std::fs::read_to_string(dir.join("app.py"))?;
    std::fs::write(dir.join("app.py"), format!("{app}\ndef broken(:\n"))?;
    let run = cove_at(&sb, &dir, &["plugin", "build"])?;
    assert!(!run.ok, "{run:?}");
    assert!(
        run.stderr.contains("SyntaxError") && run.stderr.contains("`componentize-py -d wit"),
        "{run:?}"
    );
    assert!(!run.stdout.contains("built "), "{run:?}");
    Ok(())
}

#[test]
fn a_python_skill_and_a_python_policy_build_and_pass_their_samples() -> TestResult {
    skill_and_policy("python")
}

#[test]
fn a_rust_skill_and_a_rust_policy_build_and_pass_their_samples() -> TestResult {
    skill_and_policy("rust")
}

/// new → build → test for the skill and the policy kinds in `lang`, then each installed for the
/// user: the skill is listed, the policy in force decides calls typed by hand.
fn skill_and_policy(lang: &str) -> TestResult {
    let sb = Sandbox::new()?;
    let work = work(&sb)?;
    for (kind, name, passed) in [
        ("skill", "commits", "5 passed"),
        ("policy", "no-push", "3 passed"),
    ] {
        // The policy is written inside a git repository (the sandbox's), the skill outside any.
        let work = if kind == "policy" {
            sb.repo().join("plugins-src")
        } else {
            work.clone()
        };
        let workdir = work.to_string_lossy().into_owned();
        let run = sb.cove_in(
            sb.tmp.path(),
            &[
                "plugin", "new", name, "--lang", lang, "--kind", kind, "--dir", &workdir,
            ],
        )?;
        ok(&run, "plugin new");
        let dir = work.join(name);
        let run = cove_at(&sb, &dir, &["plugin", "build"])?;
        ok(&run, "plugin build");
        assert!(
            run.stdout.contains(&format!("kind {kind}, contract 0.2.0")),
            "{run:?}"
        );
        let run = cove_at(&sb, &dir, &["plugin", "test"])?;
        ok(&run, "plugin test");
        assert!(
            run.stdout.contains(&format!("{passed}, 0 failed")),
            "{kind}: {run:?}"
        );
        if kind == "policy" {
            assert!(
                run.stdout.contains("pass  sample 1 (bash")
                    && run
                        .stdout
                        .contains("deny: this project does not let the agent run `git push`"),
                "{run:?}"
            );
            // The policy in force denies a push typed by hand, and lets the rest through.
            ok(
                &sb.cove(&["plugin", "install", "--user", &dir.to_string_lossy()])?,
                "plugin install --user",
            );
            sb.config("policy = [\"trusted\", \"no-push\"]\n")?;
            sb.trust()?;
            let run = sb.cove(&[
                "tools",
                "call",
                "bash",
                r#"{"command":"git push origin main"}"#,
            ])?;
            assert!(!run.ok && run.stderr.contains("git push"), "{run:?}");
            sb.write("notes.txt", "kept\n")?;
            let run = sb.cove(&["tools", "call", "read", r#"{"file_path":"notes.txt"}"#])?;
            assert!(run.out().contains("kept"), "{run:?}");
        } else {
            assert!(
                run.stdout.contains("skill instructions: # Commit messages")
                    && run.stdout.contains("ok (14 characters)"),
                "{run:?}"
            );
            ok(
                &sb.cove(&["plugin", "install", "--user", &dir.to_string_lossy()])?,
                "plugin install --user",
            );
            let run = sb.cove(&["skills", "list"])?;
            assert!(
                run.out().contains("commits") && run.out().contains("user-plugin"),
                "{run:?}"
            );
        }
    }
    Ok(())
}

#[test]
fn new_refuses_a_bad_name_and_a_folder_in_the_way() -> TestResult {
    let sb = Sandbox::new()?;
    let work = work(&sb)?;
    for bad in ["Word", "a_b", "../up", "-x"] {
        let run = cove_at(&sb, &work, &["plugin", "new", bad, "--lang", "rust"])?;
        assert!(!run.ok, "{bad}: {run:?}");
        if !bad.starts_with('-') {
            assert!(run.stderr.contains("not a valid plugin name"), "{run:?}");
        }
    }
    assert_eq!(std::fs::read_dir(&work)?.count(), 0);
    std::fs::create_dir_all(work.join("taken"))?;
    std::fs::write(work.join("taken/notes.txt"), "mine")?;
    let run = cove_at(&sb, &work, &["plugin", "new", "taken", "--lang", "js"])?;
    assert!(!run.ok && run.stderr.contains("not empty"), "{run:?}");
    assert_eq!(
        std::fs::read_to_string(work.join("taken/notes.txt"))?,
        "mine"
    );
    assert!(!work.join("taken/plugin.toml").exists());
    // An empty folder is fine.
    std::fs::create_dir_all(work.join("empty"))?;
    ok(
        &cove_at(
            &sb,
            &work,
            &["plugin", "new", "empty", "--lang", "js", "--kind", "policy"],
        )?,
        "plugin new into an empty folder",
    );
    assert!(std::fs::read_to_string(work.join("empty/src/index.js"))?.contains("policyApi"));
    Ok(())
}

#[test]
fn build_without_a_toolchain_says_how_to_get_one() -> TestResult {
    let sb = Sandbox::new()?;
    let work = work(&sb)?;
    ok(
        &cove_at(&sb, &work, &["plugin", "new", "lonely", "--lang", "python"])?,
        "plugin new",
    );
    // A PATH of stubs: no componentize-py, and a python3 whose pip cannot install anything.
    let stubs = sb.tmp.path().join("stubs");
    std::fs::create_dir_all(&stubs)?;
    let python = stubs.join("python3");
    std::fs::write(
        &python,
        "#!/bin/sh\necho \"pip: no network here\" >&2\nexit 1\n",
    )?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755))?;
    let path = stubs.to_string_lossy().into_owned();
    let run = Run::from(
        sb.command(
            &work.join("lonely"),
            &["plugin", "build"],
            &[("PATH", path.as_str())],
        )
        .output()?,
    );
    assert!(!run.ok, "{run:?}");
    assert!(
        run.stderr
            .contains("python3 -m pip install componentize-py==0.25.1")
            && run.stderr.contains("pip: no network here")
            && run.stderr.contains("pip install componentize-py==0.25.1"),
        "{run:?}"
    );
    assert!(!work.join("lonely/lonely.wasm").exists());

    // The same for JavaScript without node, and Rust without its wasm32-wasip2 target.
    let rustup = stubs.join("rustup");
    std::fs::write(&rustup, "#!/bin/sh\necho x86_64-unknown-linux-gnu\n")?;
    std::fs::set_permissions(&rustup, std::fs::Permissions::from_mode(0o755))?;
    for (lang, says) in [
        ("js", "neither componentize-js nor node was found"),
        ("rust", "rustup target add wasm32-wasip2"),
    ] {
        let name = format!("no-{lang}");
        ok(
            &cove_at(&sb, &work, &["plugin", "new", &name, "--lang", lang])?,
            "plugin new",
        );
        let run = Run::from(
            sb.command(
                &work.join(&name),
                &["plugin", "build"],
                &[("PATH", path.as_str())],
            )
            .output()?,
        );
        assert!(!run.ok && run.stderr.contains(says), "{lang}: {run:?}");
    }
    Ok(())
}
