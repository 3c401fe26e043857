//! The master loop's figures: `bash scripts/bench.sh` runs this after the foundation bench.
//!
//! The real release binary runs against a local model server (the tests' mock, speaking the
//! Anthropic SSE wire format) that answers at once, so what is timed is cove itself. Figures are
//! medians over repeated runs, beside a plain process spawn measured in the same run. Each start-up
//! figure is measured cold (an empty `COVE_CACHE_DIR` every run: a new machine, a fresh HOME, CI)
//! and warm (a cache that earlier runs filled).

#[allow(dead_code)]
#[path = "../../tests/all/mock_model.rs"]
mod mock_model;
#[path = "common/report.rs"]
mod report;

use mock_model::{MockModel, Reply};
use report::{median, ms};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn repo(dir: &Path) -> Res<()> {
    std::fs::create_dir_all(dir.join("src"))?;
    Command::new("git")
        .args(["init", "-q"])
        .current_dir(dir)
        .status()?;
    std::fs::write(
        dir.join("src/lib.rs"),
        "pub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n",
    )?;
    std::fs::write(dir.join("AGENTS.md"), "Run the tests after every change.\n")?;
    Ok(())
}

fn four_step() -> Vec<Reply> {
    vec![
        Reply::AnthropicCached(
            "Reading the code.".into(),
            vec![(
                "t1".into(),
                "read".into(),
                r#"{"file_path":"src/lib.rs"}"#.into(),
            )],
        ),
        Reply::AnthropicCached(
            "Fixing it.".into(),
            vec![(
                "t2".into(),
                "edit".into(),
                r#"{"file_path":"src/lib.rs","old_string":"a - b","new_string":"a + b"}"#.into(),
            )],
        ),
        Reply::AnthropicCached(
            "Running the tests.".into(),
            vec![(
                "t3".into(),
                "bash".into(),
                r#"{"command":"grep -q 'a + b' src/lib.rs && echo 'test add ... ok'"}"#.into(),
            )],
        ),
        Reply::AnthropicCached("Fixed `add`; the tests pass.".into(), vec![]),
    ]
}

fn thirty_turns(dir: &Path) -> Res<Vec<Reply>> {
    Ok(mock_model::thirty_turn_session(dir)?)
}

struct RunFigures {
    first_request: Duration,
    harness: Vec<Duration>,
    share: f64,
    prompt_bytes: usize,
    tool_count: usize,
    rss_kib: i64,
}

fn run_once(
    tmp: &Path,
    cache: &Path,
    name: &str,
    replies: impl FnOnce(&Path) -> Res<Vec<Reply>>,
) -> Res<RunFigures> {
    let dir = tmp.join(name);
    repo(&dir)?;
    let replies = replies(&dir)?;
    let m = MockModel::start(replies)?;
    let started = Instant::now();
    let (stdout, rss_kib) = report::run_measured(&mut report::cove(
        &dir,
        tmp,
        cache,
        &m.url,
        &[
            "run",
            "--output-format",
            "json",
            "--max-turns",
            "40",
            "--yes",
            "fix the bug",
        ],
    ))?;
    let v: serde_json::Value = serde_json::from_slice(&stdout)?;
    if v["outcome"] != "finished" {
        return Err(format!("run did not finish: {v}").into());
    }
    let reqs = m.requests();
    let first = reqs.first().ok_or("no request")?;
    let body = first.json();
    let prompt_bytes = body["tools"].to_string().len() + body["system"].to_string().len();
    let tool_count = body["tools"].as_array().map_or(0, Vec::len);
    let harness = v["harness_us"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_u64())
        .map(Duration::from_micros)
        .collect();
    Ok(RunFigures {
        first_request: first.at.duration_since(started),
        harness,
        share: v["cache_read_share"].as_f64().unwrap_or(0.0),
        prompt_bytes,
        tool_count,
        rss_kib,
    })
}

fn main() -> Res<()> {
    let tmp = tempfile::tempdir()?;
    std::fs::create_dir_all(tmp.path().join("config"))?;
    // The compressor's figures are token counts, not times: they need no quiet machine.
    if std::env::args().any(|a| a == "--compressor-only") {
        let compressor = compressor_figures(tmp.path(), &tmp.path().join("cache"))?;
        report::publish("## The context compressor", &compressor)?;
        return Ok(());
    }

    let mut spawn = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        Command::new("true").status()?;
        spawn.push(t.elapsed());
    }
    let spawn = median(spawn);

    // Cold: every run starts with an empty cache directory, as on a new machine.
    let mut cold_firsts = Vec::new();
    let mut rss_cold = 0;
    for i in 0..20 {
        let cache = tmp.path().join(format!("cache-cold-{i}"));
        let f = run_once(
            tmp.path(),
            &cache,
            &format!("cold-{i}"),
            |_| Ok(four_step()),
        )?;
        cold_firsts.push(f.first_request);
        rss_cold = rss_cold.max(f.rss_kib);
        let left = cache.join("components");
        if left.read_dir().is_ok_and(|mut d| d.next().is_some()) {
            return Err("a cold run compiled a built-in component into the cache".into());
        }
    }
    // Warm: one cache shared by every run, filled by a first run that is not counted.
    let cache = tmp.path().join("cache");
    run_once(tmp.path(), &cache, "warm", |_| Ok(four_step()))?;
    let mut firsts = Vec::new();
    let mut harness4 = Vec::new();
    let mut prompt_bytes = 0;
    let mut tool_count = 0;
    let mut rss_four = 0;
    for i in 0..20 {
        let f = run_once(
            tmp.path(),
            &cache,
            &format!("four-{i}"),
            |_| Ok(four_step()),
        )?;
        firsts.push(f.first_request);
        harness4.extend(f.harness);
        prompt_bytes = f.prompt_bytes;
        tool_count = f.tool_count;
        rss_four = rss_four.max(f.rss_kib);
    }
    let mut harness30 = Vec::new();
    let mut share = 0.0;
    let mut rss_all = 0;
    for i in 0..3 {
        let f = run_once(tmp.path(), &cache, &format!("thirty-{i}"), thirty_turns)?;
        harness30.extend(f.harness);
        share = f.share;
        rss_all = rss_all.max(f.rss_kib);
    }
    let max = |v: &[Duration]| v.iter().max().copied().unwrap_or_default();

    let mb = |kib: i64| format!("{:.1} MB", kib as f64 / 1024.0);
    let spawn_ratio = |d: Duration| {
        format!(
            "process spawn {} ({:.1}×)",
            ms(spawn),
            d.as_secs_f64() / spawn.as_secs_f64()
        )
    };
    let (cold_first, warm_first) = (median(cold_firsts), median(firsts));
    let start_rows: Vec<[String; 5]> = vec![
        [
            "start to first model request (4-step task: read, edit, run its tests with bash, answer)"
                .into(),
            ms(cold_first),
            ms(warm_first),
            "≤ 30 ms".into(),
            format!(
                "cold: {} · warm: {}",
                spawn_ratio(cold_first),
                spawn_ratio(warm_first)
            ),
        ],
        [
            "peak RSS, 4-step task (largest of 20 runs)".into(),
            mb(rss_cold),
            mb(rss_four),
            "≤ 40 MB".into(),
            "—".into(),
        ],
    ];
    let mut rows: Vec<[String; 4]> = Vec::new();
    rows.push([
        "peak RSS, 30-turn session (largest of 3 runs, warm)".into(),
        mb(rss_all),
        "≤ 40 MB".into(),
        "—".into(),
    ]);
    rows.push([
        "harness time per turn, reply whole → next request out, less tool time (4-step)".into(),
        format!(
            "{} (max {})",
            ms(median(harness4.clone())),
            ms(max(&harness4))
        ),
        "≤ 3 ms".into(),
        format!("n = {}", harness4.len()),
    ]);
    rows.push([
        "harness time per turn (30-turn session)".into(),
        format!(
            "{} (max {})",
            ms(median(harness30.clone())),
            ms(max(&harness30))
        ),
        "≤ 3 ms".into(),
        format!("n = {}", harness30.len()),
    ]);
    rows.push([
        "tool definitions + system prompt in the first request".into(),
        format!("{prompt_bytes} bytes (≈ {} tokens)", prompt_bytes / 4),
        "≤ 12 KB".into(),
        format!("{tool_count} tools"),
    ]);
    rows.push([
        "cache-read share of input tokens over the 30-turn session".into(),
        format!("{share:.3}"),
        "≥ 0.9".into(),
        "mock simulates Anthropic's prefix cache from the request bytes".into(),
    ]);

    let mut report = String::new();
    writeln!(report, "## The master loop\n")?;
    writeln!(
        report,
        "Produced by `bash scripts/bench.sh` (`host/benches/agent_loop.rs`): the release `cove run` against a local"
    )?;
    writeln!(
        report,
        "model server answering at once (Anthropic SSE), medians over 20 four-step runs and 3 thirty-turn runs.\n"
    )?;
    writeln!(
        report,
        "Cold: every run starts with an empty cache directory (a new machine, a fresh HOME, CI). Warm: a cache\n\
         that earlier runs filled. The built-in components' native code is in the binary, so neither compiles.\n"
    )?;
    writeln!(
        report,
        "| figure | cold (empty cache) | warm | target | reference (same run) |"
    )?;
    writeln!(report, "|---|---|---|---|---|")?;
    for r in &start_rows {
        writeln!(
            report,
            "| {} | {} | {} | {} | {} |",
            r[0], r[1], r[2], r[3], r[4]
        )?;
    }
    writeln!(report)?;
    writeln!(
        report,
        "| figure | measured | target | reference (same run) |"
    )?;
    writeln!(report, "|---|---|---|---|")?;
    for r in &rows {
        writeln!(report, "| {} | {} | {} | {} |", r[0], r[1], r[2], r[3])?;
    }
    report::publish("## The master loop", &report)?;
    let compressor = compressor_figures(tmp.path(), &cache)?;
    report::publish("## The context compressor", &compressor)?;
    Ok(())
}

/// The window of the long session's model, in tokens.
const SMALL_WINDOW: usize = 40_000;

/// A long session (81 turns) over 60 Rust files: each read once, every fifth then edited, and
/// every seventh step reads the file before it again.
fn long_session(dir: &Path) -> Res<Vec<Reply>> {
    let mut replies = Vec::new();
    let mut t = 0;
    let mut call = |name: &str, input: serde_json::Value, replies: &mut Vec<Reply>| {
        t += 1;
        replies.push(Reply::AnthropicCached(
            format!("Step {t}."),
            vec![(format!("c{t}"), name.into(), input.to_string())],
        ));
    };
    for i in 0..60 {
        let body: String = (0..55)
            .map(|f| {
                format!(
                    "/// Step {f} of module {i}.\npub fn m{i}_step_{f}(x: u64) -> u64 {{\n    let y = x.wrapping_add({f});\n    y.wrapping_mul(2)\n}}\n\n"
                )
            })
            .collect();
        std::fs::write(dir.join(format!("src/m{i}.rs")), body)?;
        let path = format!("src/m{i}.rs");
        call(
            "read",
            serde_json::json!({ "file_path": path }),
            &mut replies,
        );
        if i % 5 == 4 {
            call(
                "edit",
                serde_json::json!({"file_path": path, "old_string": format!("m{i}_step_0("), "new_string": format!("m{i}_step_zero(")}),
                &mut replies,
            );
        }
        if i % 7 == 6 {
            let again = format!("src/m{}.rs", i - 1);
            call(
                "read",
                serde_json::json!({ "file_path": again }),
                &mut replies,
            );
        }
    }
    replies.push(Reply::AnthropicCached(
        "Mapped every module.".into(),
        vec![],
    ));
    Ok(replies)
}

/// One long session: (outcome, requests, weighted input tokens, compactions with their layers,
/// cache-read share).
fn long_run(
    tmp: &Path,
    cache: &Path,
    name: &str,
    config: &str,
    enforce: bool,
) -> Res<(String, u64, f64, String, f64)> {
    let dir = tmp.join(name);
    repo(&dir)?;
    let config_dir = tmp.join(format!("config-{name}"));
    std::fs::create_dir_all(&config_dir)?;
    std::fs::write(config_dir.join("config.toml"), config)?;
    let m = MockModel::start(long_session(&dir)?)?;
    m.set_summariser(|_| "## Goal\nMap every module.\n## Next step\nRead the next module.".into());
    if enforce {
        m.set_window(SMALL_WINDOW);
    }
    let mut cmd = report::cove(
        &dir,
        tmp,
        cache,
        &m.url,
        &[
            "run",
            "--output-format",
            "json",
            "--max-turns",
            "200",
            "--max-tokens",
            "2000",
            "--yes",
            "map the modules",
        ],
    );
    cmd.env("COVE_CONFIG_DIR", &config_dir);
    let (stdout, _) = report::run_measured(&mut cmd)?;
    let v: serde_json::Value = serde_json::from_slice(&stdout)?;
    let u = &v["usage"];
    let n = |k: &str| u[k].as_f64().unwrap_or(0.0);
    let weighted =
        n("input_tokens") + 1.25 * n("cache_write_tokens") + 0.1 * n("cache_read_tokens");
    Ok((
        v["outcome"].as_str().unwrap_or("?").to_string(),
        v["turns"].as_u64().unwrap_or(0),
        weighted,
        compactions(&v["compactions"]),
        v["cache_read_share"].as_f64().unwrap_or(0.0),
    ))
}

/// `N (mask M, structure S, summary U)`: how many compactions, and how often each layer ran.
fn compactions(list: &serde_json::Value) -> String {
    let all = list.as_array().cloned().unwrap_or_default();
    if all.is_empty() {
        return "0".into();
    }
    let count = |layer: &str| {
        all.iter()
            .filter(|c| {
                c["layers"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|x| x == layer))
            })
            .count()
    };
    format!(
        "{} (mask {}, structure {}, summary {})",
        all.len(),
        count("mask"),
        count("structure"),
        count("summary")
    )
}

fn compressor_figures(tmp: &Path, cache: &Path) -> Res<String> {
    let small = format!("[context]\nwindow_tokens = {SMALL_WINDOW}\n");
    let on = long_run(tmp, cache, "long-on", &small, true)?;
    let off = long_run(
        tmp,
        cache,
        "long-off",
        &format!("{small}compact = false\n"),
        true,
    )?;
    let unlimited = long_run(
        tmp,
        cache,
        "long-unlimited",
        "[context]\ncompact = false\n",
        false,
    )?;
    let count = tmp.join("long-count");
    repo(&count)?;
    let turns = long_session(&count)?.len();
    let mut report = String::new();
    writeln!(report, "## The context compressor\n")?;
    writeln!(
        report,
        "Produced by `bash scripts/bench.sh` (`host/benches/agent_loop.rs`; this section alone: `cargo bench -p cove --bench agent_loop -- --compressor-only --write docs/PERFORMANCE.md`): one scripted {turns}-turn session reading 60\n\
         Rust files of 7 KB (every fifth then edited; every seventh step reads the file before it again), against the local\n\
         server, whose usage figures simulate Anthropic's prompt cache at about 4 bytes a token and which refuses a\n\
         request over the window as Anthropic does. Weighted input tokens: uncached + 1.25 × cache writes + 0.1 ×\n\
         cache reads. The model's summaries are a fixed short text.\n"
    )?;
    writeln!(
        report,
        "| run | outcome | requests (summaries included) | weighted input tokens | vs unlimited window | compactions (layers run) | cache-read share |"
    )?;
    writeln!(report, "|---|---|---|---|---|---|---|")?;
    for (label, r) in [
        (format!("compressor on, {SMALL_WINDOW}-token window"), &on),
        (format!("compressor off, {SMALL_WINDOW}-token window"), &off),
        (
            "compressor off, unlimited window (reference)".to_string(),
            &unlimited,
        ),
    ] {
        writeln!(
            report,
            "| {label} | {} | {} | {:.0} | {:.2}× | {} | {:.3} |",
            r.0,
            r.1,
            r.2,
            r.2 / unlimited.2.max(1.0),
            r.3,
            r.4
        )?;
    }
    Ok(report)
}
