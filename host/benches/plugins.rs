//! Plugins in three languages: `bash scripts/bench.sh` runs this after the MCP bench and rewrites
//! the "Plugins in Rust, JavaScript and Python" section of docs/PERFORMANCE.md (`-- --write
//! FILE`), keeping every other one.
//!
//! The release `cove` makes the same example tool (`word_count`, from `cove plugin new`) in each
//! language and builds it (`cove plugin build`: cargo, componentize-js, componentize-py, which
//! must be installed or installable). Then, through the runtime as a session uses it:
//! - compile: wasmtime compiles the component with an empty cache (once for JavaScript and
//!   Python, which take seconds; the median of five for Rust);
//! - cold load from the on-disk cache: a new engine each time, so nothing is warm (deserialise
//!   the cached native code and pre-link), and the first call after it (instantiate, call);
//! - warm call: the call of an agent, whose instance was made ahead of it.
//!
//! The Rust tool is the reference each other figure is a ratio of. Medians; only meaningful on a
//! quiet machine.

#[path = "common/report.rs"]
#[allow(dead_code)]
mod report;

use cove::plugins::contract::Version;
use cove::plugins::runtime::{CallEnv, CodeOrigin, Grants, Limits, Loaded, Runtime};
use cove::worktree::Worktree;
use report::{median, ms};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const INPUT: &str = r#"{"text":"a b a","unique":true}"#;
const ANSWER: &str = "3 words (2 unique)";

/// One language's figures.
struct Figures {
    lang: &'static str,
    bytes: usize,
    compile: Duration,
    cold: Duration,
    first_call: Duration,
    warm: Duration,
}

/// `cove plugin new` and `cove plugin build` of the example tool in `lang`, in `dir`; the
/// component's path.
fn build(dir: &Path, lang: &str) -> Res<PathBuf> {
    let name = format!("wc-{lang}");
    let cove = env!("CARGO_BIN_EXE_cove");
    let run = |args: &[&str]| -> Res<()> {
        let out = Command::new(cove).args(args).current_dir(dir).output()?;
        if !out.status.success() {
            return Err(format!(
                "cove {} failed:\n{}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(())
    };
    run(&["plugin", "new", &name, "--lang", lang])?;
    run(&["plugin", "build", &name])?;
    Ok(dir.join(&name).join(format!("{name}.wasm")))
}

fn env(wt: &Arc<Worktree>, plugin: &str) -> CallEnv {
    CallEnv {
        plugin: plugin.into(),
        worktree: Some(wt.clone()),
        grants: Arc::new(Grants::default()),
        limits: Limits::default(),
        session_cwd: Arc::default(),
        cancel: None,
        commands: cove::sandbox::Resources::default(),
        progress: None,
    }
}

fn call(rt: &Runtime, loaded: &Loaded, env: &CallEnv) -> Res<()> {
    let out = rt
        .call(loaded, env, "word_count", INPUT)?
        .map_err(|e| format!("word_count failed: {e}"))?;
    if out.text != ANSWER {
        return Err(format!("word_count answered {:?}", out.text).into());
    }
    Ok(())
}

fn measure(lang: &'static str, wasm: &Path, wt: &Arc<Worktree>, tmp: &Path) -> Res<Figures> {
    let bytes = std::fs::read(wasm)?;
    let plugin = format!("wc-{lang}");
    let env = env(wt, &plugin);
    let cache = tmp.join(format!("cache-{lang}"));
    // Compile with an empty cache; the last one fills the cache for the cold loads.
    let compiles = if lang == "rust" { 5 } else { 1 };
    let mut compile = Vec::new();
    for i in 0..compiles {
        let rt = Runtime::new((i + 1 == compiles).then(|| cache.clone()))?;
        let t = Instant::now();
        let l = rt.load(&plugin, Version::V0_2, &bytes, None)?;
        compile.push(t.elapsed());
        if l.origin != CodeOrigin::Compiled {
            return Err("expected a compile".into());
        }
    }
    let (mut cold, mut first) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let rt = Runtime::new(Some(cache.clone()))?;
        let t = Instant::now();
        let l = rt.load(&plugin, Version::V0_2, &bytes, None)?;
        cold.push(t.elapsed());
        if l.origin != CodeOrigin::Cache {
            return Err("expected a cache hit".into());
        }
        let t = Instant::now();
        call(&rt, &l, &env)?;
        first.push(t.elapsed());
    }
    // Warm: one runtime, each call finding the instance made after the previous one (waiting
    // for it is not timed: a model turn between calls takes seconds).
    let rt = Runtime::new(Some(cache.clone()))?;
    let loaded = rt.load(&plugin, Version::V0_2, &bytes, None)?;
    call(&rt, &loaded, &env)?;
    let mut warm = Vec::new();
    for _ in 0..500 {
        let waited = Instant::now();
        while !loaded.has_spare() {
            if waited.elapsed() > Duration::from_secs(10) {
                return Err("no instance was made ahead of the call".into());
            }
            std::thread::yield_now();
        }
        let t = Instant::now();
        call(&rt, &loaded, &env)?;
        warm.push(t.elapsed());
    }
    let f = Figures {
        lang,
        bytes: bytes.len(),
        compile: median(compile),
        cold: median(cold),
        first_call: median(first),
        warm: median(warm),
    };
    eprintln!(
        "{lang}: {} KiB, compile {}, cold load {}, first call {}, warm call {}",
        f.bytes / 1024,
        ms(f.compile),
        ms(f.cold),
        ms(f.first_call),
        us(f.warm)
    );
    Ok(f)
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn ratio(a: Duration, reference: Duration) -> String {
    format!(
        "{:.1}×",
        a.as_secs_f64() / reference.as_secs_f64().max(1e-9)
    )
}

fn main() -> Res<()> {
    let tmp = tempfile::tempdir()?;
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo)?;
    let wt = Arc::new(Worktree::open(&repo)?);
    let mut figures = Vec::new();
    for lang in ["rust", "js", "python"] {
        let wasm = build(tmp.path(), lang)?;
        figures.push(measure(lang, &wasm, &wt, tmp.path())?);
    }
    let reference = figures.first().ok_or("no Rust figures")?;
    let (rc, rl, rf, rw) = (
        reference.compile,
        reference.cold,
        reference.first_call,
        reference.warm,
    );
    let mut report = String::from(
        "## Plugins in Rust, JavaScript and Python\n\n\
         The example tool of `cove plugin new` (`word_count`, the same in each language, input \
         `{\"text\":\"a b a\",\"unique\":true}`), built by `cove plugin build`, through the runtime \
         as a session uses it (`cargo bench -p cove --bench plugins`, release build, medians). \
         Ratios are of the Rust tool, measured in the same run.\n\n\
         | language | component | compile (empty cache) | cold load from the on-disk cache | first call after it | warm call |\n\
         |---|---|---|---|---|---|\n",
    );
    for f in &figures {
        let name = match f.lang {
            "rust" => "Rust (wit-bindgen)",
            "js" => "JavaScript (componentize-js)",
            _ => "Python (componentize-py)",
        };
        writeln!(
            report,
            "| {name} | {} KiB | {} ({}) | {} ({}) | {} ({}) | {} ({}) |",
            f.bytes / 1024,
            ms(f.compile),
            ratio(f.compile, rc),
            ms(f.cold),
            ratio(f.cold, rl),
            ms(f.first_call),
            ratio(f.first_call, rf),
            us(f.warm),
            ratio(f.warm, rw),
        )?;
    }
    report.push_str(
        "\nCold load is what a session pays for a plugin it has seen before (a new process, its \
         code in the cache); the compile happens once per component and engine. JavaScript and \
         Python components carry their language's runtime, hence their size, their compile \
         time and their first call (which instantiates it). Every call runs in an instance of its own \
         (made ahead of it, dropped after it: one call cannot leave anything for the next), so a \
         warm call of a JavaScript or Python tool still pays for its runtime touching its memory \
         afresh, and its JSON work in an interpreter: hundreds of microseconds, where Rust takes \
         microseconds.\n",
    );
    report::publish("## Plugins in Rust, JavaScript and Python", &report)?;
    Ok(())
}
