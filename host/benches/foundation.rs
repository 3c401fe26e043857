//! The foundation's figures, measured, never guessed: `bash scripts/bench.sh` (or
//! `cargo bench -p cove --bench foundation -- --write docs/PERFORMANCE.md`).
//!
//! Every figure is a median over repeated runs on a release build, reported beside a reference
//! measured in the same run on the same machine (a plain process spawn, ripgrep), so a reader can
//! judge it on their own hardware. `BENCH_TREE` picks the large tree for the search figures
//! (default: the cargo registry sources on this machine).

use cove::agent::dispatch;
use cove::plugins::builtin::BUILTIN;
use cove::plugins::contract::Version;
use cove::plugins::runtime::{CodeOrigin, Runtime};
use cove::worktree::Worktree;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "../../tests/all/support.rs"]
mod support;

use support::{evil_manifest as manifest, first_party, guest};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Median and 99th percentile of samples.
struct Stats {
    median: Duration,
    p99: Duration,
    n: usize,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let n = samples.len();
    let at = |q: f64| samples[((n as f64 - 1.0) * q).round() as usize];
    Stats {
        median: at(0.5),
        p99: at(0.99),
        n,
    }
}

fn time<F: FnMut() -> Res<()>>(n: usize, mut f: F) -> Res<Stats> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f()?;
        samples.push(t.elapsed());
    }
    Ok(stats(samples))
}

fn us(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 10.0 {
        format!("{us:.2} µs")
    } else if us < 10_000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.1} ms", us / 1000.0)
    }
}

fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.2}×", a.as_secs_f64() / b.as_secs_f64())
}

fn run_quiet(cmd: &mut Command) -> Res<()> {
    let status = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status()?;
    // rg exits 1 for "no match", which is still a completed search.
    if !(status.success() || status.code() == Some(1)) {
        return Err(format!("{cmd:?} failed: {status}").into());
    }
    Ok(())
}

fn git_repo(dir: &Path) -> Res<()> {
    std::fs::create_dir_all(dir)?;
    run_quiet(Command::new("git").args(["init", "-q"]).current_dir(dir))
}

fn cove_cmd(cache: &Path, config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cove"));
    c.env("COVE_CACHE_DIR", cache)
        .env("COVE_CONFIG_DIR", config)
        .env("RUST_LOG", "error");
    c
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let write_to = args
        .iter()
        .position(|a| a == "--write")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let tmp = tempfile::tempdir()?;
    let config_dir = tmp.path().join("config");
    std::fs::create_dir_all(&config_dir)?;
    let mut report = String::new();
    let mut rows: Vec<[String; 5]> = Vec::new();

    // Reference: a plain process spawn.
    let spawn = time(200, || run_quiet(&mut Command::new("true")))?;
    eprintln!("process spawn: {}", us(spawn.median));

    // In-process figures: a repository with the echo tool, a warm cache.
    let repo = tmp.path().join("repo");
    git_repo(&repo)?;
    let plugin_dir = repo.join(".cove/plugins/bench");
    std::fs::create_dir_all(&plugin_dir)?;
    std::fs::write(
        plugin_dir.join("plugin.toml"),
        manifest("bench", "fs = \"read\""),
    )?;
    std::fs::copy(guest("evil"), plugin_dir.join("bench.wasm"))?;
    let cache = tmp.path().join("cache");
    let ws = cove::agent::workspace::Workspace::open(
        Worktree::open(&repo)?,
        None,
        Some(cache.clone()),
        &mut |_| cove::agent::workspace::Choice::Trust,
    )?;
    let registry = ws.registry;
    // Each permission runs one call: make them before the clock starts.
    let permits = |tool: &str, input: &str, n: usize| -> Res<Vec<_>> {
        (0..n)
            .map(|_| support::permit(&registry, tool, input).map_err(Into::into))
            .collect()
    };
    let echo = r#"{"text":"hi"}"#;
    let first = dispatch::call(&registry, support::permit(&registry, "echo", echo)?);
    if first.is_error || first.text != "hi" {
        return Err(format!("echo failed: {}", first.text).into());
    }
    let plugin = registry.provider("echo").ok_or("no echo")?;
    let loaded = registry.load(plugin)?;
    // 1000 warm + 300 paused + 5000 back-to-back calls, one permission each, and some spare.
    let ready = std::cell::RefCell::new(permits("echo", echo, 6600)?);
    let call_echo = || -> Res<()> {
        let permit = ready.borrow_mut().pop().ok_or("out of permissions")?;
        let r = dispatch::call(&registry, permit);
        if r.is_error {
            Err(r.text.into())
        } else {
            Ok(())
        }
    };
    // Wait (untimed) until the next instance is ready. When the background thread was behind,
    // the last call asked for none (its queue is bounded): an untimed call asks again.
    let spare_ready = || -> Res<()> {
        for _ in 0..50 {
            let waited = Instant::now();
            while waited.elapsed() < Duration::from_millis(200) {
                if loaded.component.has_spare() {
                    return Ok(());
                }
                std::thread::yield_now();
            }
            call_echo()?;
        }
        Err("no instance was prepared ahead of the call".into())
    };
    // A call as an agent makes one: the previous call has returned and its plugin's next
    // instance is ready (waiting for it is not timed; a model turn between calls takes seconds).
    let mut warm = Vec::with_capacity(1000);
    for _ in 0..1000 {
        spare_ready()?;
        let t = Instant::now();
        call_echo()?;
        warm.push(t.elapsed());
    }
    let warm = stats(warm);
    // The same, but the call comes 10 ms after its instance was made, as it does after a model
    // turn: caches and the CPU have moved on to other work in between.
    let mut paused = Vec::with_capacity(300);
    for _ in 0..300 {
        spare_ready()?;
        std::thread::sleep(Duration::from_millis(10));
        let t = Instant::now();
        call_echo()?;
        paused.push(t.elapsed());
    }
    let paused = stats(paused);
    // The same calls back to back: the next instance is still being made when the call arrives,
    // so this is bounded by instantiation.
    let burst = time(5000, call_echo)?;
    eprintln!(
        "warm call: {} (p99 {}); after a pause {}; back to back {}",
        us(warm.median),
        us(warm.p99),
        us(paused.median),
        us(burst.median)
    );
    rows.push([
        "warm call of a trivial tool, whole dispatch path (lookup, JSON parse, schema validation, the instance made ahead of the call, call)".into(),
        format!("{} (p99 {}, n={})", us(warm.median), us(warm.p99), warm.n),
        "≤ 5 µs".into(),
        format!("process spawn {}", us(spawn.median)),
        ratio(warm.median, spawn.median),
    ]);
    rows.push([
        "the same call 10 ms after its instance was made (as after a model turn: caches gone cold)"
            .into(),
        format!(
            "{} (p99 {}, n={})",
            us(paused.median),
            us(paused.p99),
            paused.n
        ),
        "—".into(),
        format!("warm call {}", us(warm.median)),
        ratio(paused.median, warm.median),
    ]);
    rows.push([
        "the same calls back to back, with no time between them for the next instance".into(),
        format!(
            "{} (p99 {}, n={})",
            us(burst.median),
            us(burst.p99),
            burst.n
        ),
        "—".into(),
        format!("warm call {}", us(warm.median)),
        ratio(burst.median, warm.median),
    ]);

    let runtime = registry.runtime()?;
    let env = registry.env(plugin);
    let inst = time(5000, || {
        runtime
            .instantiate(&loaded.component, &env)
            .map_err(Into::into)
    })?;
    eprintln!("instantiate: {}", us(inst.median));
    rows.push([
        "instantiate from InstancePre (fresh store with WASI context, pooling allocator)".into(),
        format!("{} (p99 {}, n={})", us(inst.median), us(inst.p99), inst.n),
        "≤ 20 µs".into(),
        format!("process spawn {}", us(spawn.median)),
        ratio(inst.median, spawn.median),
    ]);

    // `true` through the bash tool (component → exec → sandbox helper → namespaces, Landlock,
    // bash) against spawning `true` directly.
    cove::sandbox::set_helper_exe(env!("CARGO_BIN_EXE_cove").into());
    let bash_true = r#"{"command":"true"}"#;
    let first = dispatch::call(&registry, support::permit(&registry, "bash", bash_true)?);
    if first.is_error {
        return Err(format!("bash failed: {}", first.text).into());
    }
    let mut ready = permits("bash", bash_true, 200)?;
    let sandboxed = time(200, || {
        let r = dispatch::call(&registry, ready.pop().ok_or("out of permissions")?);
        if r.is_error {
            Err(r.text.into())
        } else {
            Ok(())
        }
    })?;
    let plain = time(200, || run_quiet(&mut Command::new("true")))?;
    eprintln!(
        "bash true: {} vs plain {}",
        us(sandboxed.median),
        us(plain.median)
    );
    rows.push([
        "`true` through the bash tool, sandboxed (Landlock, namespaces, rlimits, caps dropped)"
            .into(),
        format!(
            "{} (p99 {}); added: {} median, {} p99",
            us(sandboxed.median),
            us(sandboxed.p99),
            us(sandboxed.median.saturating_sub(plain.median)),
            us(sandboxed.p99.saturating_sub(plain.p99))
        ),
        "≤ 5 ms added".into(),
        format!(
            "`std::process::Command` of `true`: {} (p99 {})",
            us(plain.median),
            us(plain.p99)
        ),
        ratio(sandboxed.median, plain.median),
    ]);

    // Cold load of a Rust tool from the on-disk cache: a new engine each time, so nothing is warm.
    let fs_wasm = std::fs::read(first_party("fs"))?;
    let cold_cache = tmp.path().join("cold-cache");
    Runtime::new(Some(cold_cache.clone()))?.load("fs", Version::V0_2, &fs_wasm, None)?;
    let compile = time(5, || {
        let rt = Runtime::new(None)?;
        rt.load("fs", Version::V0_2, &fs_wasm, None)?;
        Ok(())
    })?;
    let mut cold = Vec::new();
    for _ in 0..50 {
        let rt = Runtime::new(Some(cold_cache.clone()))?;
        let t = Instant::now();
        let l = rt.load("fs", Version::V0_2, &fs_wasm, None)?;
        cold.push(t.elapsed());
        if l.origin != CodeOrigin::Cache {
            return Err("expected a cache hit".into());
        }
    }
    let cold = stats(cold);
    // The same tool from the native code built into the binary: what a new machine does.
    let fs_builtin = BUILTIN
        .iter()
        .find(|b| b.wasm == fs_wasm.as_slice())
        .ok_or("the fs plugin is not built in")?;
    let mut embedded = Vec::new();
    for _ in 0..50 {
        let rt = Runtime::new(None)?;
        let t = Instant::now();
        let l = rt.load("fs", Version::V0_2, fs_builtin.wasm, fs_builtin.native)?;
        embedded.push(t.elapsed());
        if l.origin != CodeOrigin::Embedded {
            return Err("the native code built into the binary was not used".into());
        }
    }
    let embedded = stats(embedded);
    eprintln!("cold load from the binary: {}", us(embedded.median));
    rows.push([
        format!(
            "cold load of a built-in tool ({} KiB) from the native code built into the binary (no cache: a new machine)",
            fs_wasm.len() / 1024
        ),
        format!(
            "{} (p99 {}, n={})",
            us(embedded.median),
            us(embedded.p99),
            embedded.n
        ),
        "≤ 2 ms".into(),
        format!("compiling it instead: {}", us(compile.median)),
        ratio(embedded.median, compile.median),
    ]);
    eprintln!(
        "cold load from cache: {} (compile {})",
        us(cold.median),
        us(compile.median)
    );
    rows.push([
        format!(
            "cold load of a Rust tool ({} KiB) from the on-disk cache (deserialize + pre-link)",
            fs_wasm.len() / 1024
        ),
        format!("{} (p99 {}, n={})", us(cold.median), us(cold.p99), cold.n),
        "≤ 2 ms".into(),
        format!("compiling it instead: {}", us(compile.median)),
        ratio(cold.median, compile.median),
    ]);

    // `cove tools list` with 10 plugins (2 built-in + 8 project) and an empty cache each time.
    let list_repo = tmp.path().join("list-repo");
    git_repo(&list_repo)?;
    for i in 0..8 {
        let dir = list_repo.join(format!(".cove/plugins/p{i}"));
        std::fs::create_dir_all(&dir)?;
        let m = manifest(&format!("p{i}"), "fs = \"read\"")
            .replace("name = \"", &format!("name = \"p{i}"))
            .replacen(&format!("name = \"p{i}p{i}"), &format!("name = \"p{i}"), 1);
        std::fs::write(dir.join("plugin.toml"), m)?;
        std::fs::copy(guest("evil"), dir.join(format!("p{i}.wasm")))?;
    }
    let mut n = 0;
    let list = time(50, || {
        n += 1;
        let empty = tmp.path().join(format!("empty-cache-{n}"));
        run_quiet(
            cove_cmd(&empty, &config_dir)
                .args(["tools", "list"])
                .current_dir(&list_repo),
        )?;
        if empty.exists() {
            return Err("tools list wrote to the cache: something compiled".into());
        }
        Ok(())
    })?;
    eprintln!("tools list: {}", us(list.median));
    rows.push([
        "`cove tools list`, 10 plugins, empty cache (nothing compiles)".into(),
        format!(
            "{} wall (p99 {}, n={})",
            us(list.median),
            us(list.p99),
            list.n
        ),
        "≤ 30 ms".into(),
        format!("process spawn {}", us(spawn.median)),
        ratio(list.median, spawn.median),
    ]);

    // Search over a large tree against ripgrep.
    let tree = match std::env::var_os("BENCH_TREE") {
        Some(t) => PathBuf::from(t),
        None => {
            let home = std::env::var_os("CARGO_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
                .ok_or("no CARGO_HOME or HOME")?;
            let src = home.join("registry/src");
            std::fs::read_dir(&src)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.is_dir())
                .ok_or("no registry sources")?
        }
    };
    let (files, bytes) = tree_size(&tree)?;
    eprintln!("tree {}: {files} files, {} MB", tree.display(), bytes >> 20);
    let pattern = r"fn\s+\w+_unchecked\(";
    let search_cache = tmp.path().join("search-cache");
    let grep_input = serde_json::json!({"pattern": pattern, "head_limit": 1_000_000}).to_string();
    let tree_s = tree.to_string_lossy().into_owned();
    let cove_grep = || {
        run_quiet(cove_cmd(&search_cache, &config_dir).args([
            "--worktree",
            &tree_s,
            "tools",
            "call",
            "grep",
            &grep_input,
        ]))
    };
    cove_grep()?; // compile + warm the page cache
    let rg_l = || {
        run_quiet(
            Command::new("rg")
                .args(["-j1", "-l", pattern])
                .current_dir(&tree),
        )
    };
    rg_l()?;
    let reps = 7;
    let g_cove = time(reps, cove_grep)?;
    let g_rg1 = time(reps, rg_l)?;
    let g_rg = time(reps, || {
        run_quiet(Command::new("rg").args(["-l", pattern]).current_dir(&tree))
    })?;
    // Check they agree before comparing their speed.
    let ours = Command::new(env!("CARGO_BIN_EXE_cove"))
        .env("COVE_CACHE_DIR", &search_cache)
        .env("COVE_CONFIG_DIR", &config_dir)
        .args(["--worktree", &tree_s, "tools", "call", "grep", &grep_input])
        .output()?;
    let theirs = Command::new("rg")
        .args(["-l", pattern])
        .current_dir(&tree)
        .output()?;
    let count = |o: &[u8]| {
        String::from_utf8_lossy(o)
            .lines()
            .filter(|l| !l.starts_with('(') && !l.is_empty())
            .count()
    };
    let (n_ours, n_rg) = (count(&ours.stdout), count(&theirs.stdout));
    if n_ours != n_rg {
        return Err(format!("grep found {n_ours} files, rg {n_rg}").into());
    }
    eprintln!(
        "grep: cove {} rg -j1 {} rg {}",
        us(g_cove.median),
        us(g_rg1.median),
        us(g_rg.median)
    );
    rows.push([
        format!("`grep` tool end to end (process start, load from cache, host search, output) — `{pattern}`, {n_rg} files match"),
        us(g_cove.median),
        "≤ 1.5× `rg -j1`".into(),
        format!("`rg -j1 -l` {} · `rg -l` {}", us(g_rg1.median), us(g_rg.median)),
        ratio(g_cove.median, g_rg1.median),
    ]);

    let glob_input = serde_json::json!({"pattern": "**/*.rs"}).to_string();
    let f_cove = time(reps, || {
        run_quiet(cove_cmd(&search_cache, &config_dir).args([
            "--worktree",
            &tree_s,
            "tools",
            "call",
            "glob",
            &glob_input,
        ]))
    })?;
    let f_rg1 = time(reps, || {
        run_quiet(
            Command::new("rg")
                .args(["-j1", "--files", "-g", "**/*.rs"])
                .current_dir(&tree),
        )
    })?;
    let f_rg = time(reps, || {
        run_quiet(
            Command::new("rg")
                .args(["--files", "-g", "**/*.rs"])
                .current_dir(&tree),
        )
    })?;
    eprintln!(
        "glob: cove {} rg -j1 {} rg {}",
        us(f_cove.median),
        us(f_rg1.median),
        us(f_rg.median)
    );
    rows.push([
        "`glob` tool end to end — `**/*.rs` (newest first: one stat per file, which `rg --files` skips)".into(),
        us(f_cove.median),
        "≤ 1.5× `rg -j1 --files`".into(),
        format!("`rg -j1 --files -g` {} · `rg --files -g` {}", us(f_rg1.median), us(f_rg.median)),
        ratio(f_cove.median, f_rg1.median),
    ]);

    // Code intelligence over the same tree: find_symbol (walk, parse only the files holding the
    // name, in a fresh process, so nothing is cached) against rg for the same word.
    let name = "new_unchecked";
    let find_input = serde_json::json!({"name": name}).to_string();
    let cove_find = || {
        run_quiet(cove_cmd(&search_cache, &config_dir).args([
            "--worktree",
            &tree_s,
            "tools",
            "call",
            "find_symbol",
            &find_input,
        ]))
    };
    cove_find()?;
    let s_cove = time(reps, cove_find)?;
    let s_rg1 = time(reps, || {
        run_quiet(
            Command::new("rg")
                .args(["-j1", "-l", "-w", name])
                .current_dir(&tree),
        )
    })?;
    let s_rg = time(reps, || {
        run_quiet(
            Command::new("rg")
                .args(["-l", "-w", name])
                .current_dir(&tree),
        )
    })?;
    let found = Command::new(env!("CARGO_BIN_EXE_cove"))
        .env("COVE_CACHE_DIR", &search_cache)
        .env("COVE_CONFIG_DIR", &config_dir)
        .args([
            "--worktree",
            &tree_s,
            "tools",
            "call",
            "find_symbol",
            &find_input,
        ])
        .output()?;
    let defs = String::from_utf8_lossy(&found.stdout)
        .lines()
        .filter(|l| l.contains(&format!("fn {name}")))
        .count();
    eprintln!(
        "find_symbol: cove {} ({defs} definitions) rg -j1 {} rg {}",
        us(s_cove.median),
        us(s_rg1.median),
        us(s_rg.median)
    );
    rows.push([
        format!("`find_symbol` tool end to end, nothing cached (walk, parse each file holding the name, definitions) — `{name}`, {defs} definitions"),
        us(s_cove.median),
        "≤ 3× `rg -j1 -w`".into(),
        format!("`rg -j1 -l -w` {} · `rg -l -w` {}", us(s_rg1.median), us(s_rg.median)),
        ratio(s_cove.median, s_rg1.median),
    ]);

    // outline of a large hand-written Rust file (the largest under 256 KB: bigger ones here are
    // generated tables), against rg listing its `fn` lines.
    let largest = largest_rs(&tree, 256 << 10)?;
    let largest_s = largest.to_string_lossy().into_owned();
    let outline_input = serde_json::json!({"file_path": largest_s}).to_string();
    let o_cove = time(reps, || {
        run_quiet(cove_cmd(&search_cache, &config_dir).args([
            "--worktree",
            &tree_s,
            "tools",
            "call",
            "outline",
            &outline_input,
        ]))
    })?;
    let o_rg = time(reps, || {
        run_quiet(Command::new("rg").args(["-n", r"^\s*(pub )?fn ", &largest_s]))
    })?;
    let size = std::fs::metadata(&largest)?.len();
    eprintln!("outline: cove {} rg {}", us(o_cove.median), us(o_rg.median));
    rows.push([
        format!(
            "`outline` tool end to end on the tree's largest `.rs` under 256 KB ({} KB), nothing cached",
            size >> 10
        ),
        us(o_cove.median),
        "≤ 100 ms".into(),
        format!("`rg -n '^\\s*(pub )?fn '` {}", us(o_rg.median)),
        ratio(o_cove.median, o_rg.median),
    ]);

    // For the record: the same kind of search inside a component through WASI (every read
    // crosses the boundary). The component sees only its worktree, so the tree is the worktree and
    // the plugin comes from the user layer.
    let user_plugins = config_dir.join("plugins/walker");
    std::fs::create_dir_all(&user_plugins)?;
    std::fs::write(
        user_plugins.join("plugin.toml"),
        manifest("walker", "fs = \"read\""),
    )?;
    std::fs::copy(guest("evil"), user_plugins.join("walker.wasm"))?;
    std::fs::write(
        config_dir.join("config.toml"),
        "[plugins.walker]\ntimeout_ms = 600000\nmemory_mb = 1024\n",
    )?;
    let walk_input = serde_json::json!({"path": ".", "needle": "_unchecked("}).to_string();
    let walk = |cache: &Path| -> Res<()> {
        run_quiet(cove_cmd(cache, &config_dir).args([
            "--worktree",
            &tree_s,
            "tools",
            "call",
            "walkgrep",
            &walk_input,
        ]))
    };
    walk(&search_cache)?;
    let w = time(3, || walk(&search_cache))?;
    eprintln!("pure-WASI walk+search: {}", us(w.median));
    rows.push([
        "for the record: the same kind of search inside a component through WASI (walk + read every file, literal match, no .gitignore)".into(),
        us(w.median),
        "—".into(),
        format!("`rg -j1 -l` {}", us(g_rg1.median)),
        ratio(w.median, g_rg1.median),
    ]);

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    writeln!(report, "# Performance\n")?;
    writeln!(
        report,
        "Produced by `bash scripts/bench.sh` (release build; `host/benches/foundation.rs`). Medians unless noted; each figure"
    )?;
    writeln!(
        report,
        "is shown beside a reference measured in the same run, and the ratio is figure ÷ reference.\n"
    )?;
    writeln!(
        report,
        "Machine: {cpu}, {cores} cores. Search tree: {} ({files} files, {} MB).\n",
        tree.display(),
        bytes >> 20
    )?;
    writeln!(
        report,
        "| figure | measured | target | reference (same run) | ratio |"
    )?;
    writeln!(report, "|---|---|---|---|---|")?;
    for r in &rows {
        writeln!(
            report,
            "| {} | {} | {} | {} | {} |",
            r[0], r[1], r[2], r[3], r[4]
        )?;
    }
    println!("{report}");
    if let Some(path) = write_to {
        // Every later section (the other benches' and the notes) is kept as it is.
        let rest = std::fs::read_to_string(&path)
            .ok()
            .and_then(|old| old.find("\n## ").map(|i| old[i..].to_string()))
            .unwrap_or_default();
        std::fs::write(&path, format!("{report}{rest}"))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The largest `.rs` file under `root` no bigger than `max` bytes (links not followed).
fn largest_rs(root: &Path, max: u64) -> Res<PathBuf> {
    let mut best: Option<(u64, PathBuf)> = None;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)?.filter_map(Result::ok) {
            let Ok(ty) = entry.file_type() else { continue };
            let path = entry.path();
            if ty.is_dir() {
                stack.push(path);
            } else if ty.is_file() && path.extension().is_some_and(|e| e == "rs") {
                let len = entry.metadata().map_or(0, |m| m.len());
                if len <= max && best.as_ref().is_none_or(|(b, _)| len > *b) {
                    best = Some((len, path));
                }
            }
        }
    }
    best.map(|(_, p)| p)
        .ok_or_else(|| "no .rs file in the tree".into())
}

fn tree_size(root: &Path) -> Res<(u64, u64)> {
    let (mut files, mut bytes) = (0, 0);
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)?.filter_map(Result::ok) {
            let ty = e.file_type()?;
            if ty.is_dir() {
                stack.push(e.path());
            } else if ty.is_file() {
                files += 1;
                bytes += e.metadata()?.len();
            }
        }
    }
    Ok((files, bytes))
}
