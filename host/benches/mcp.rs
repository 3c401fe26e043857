//! The MCP figures: `bash scripts/bench.sh` runs this after the team bench and rewrites the
//! "MCP servers" section of docs/PERFORMANCE.md (`-- --write FILE`), keeping every other one.
//!
//! With the release binary against a local model server that answers at once (the tests' mock):
//! - start to the first model request with three MCP servers configured, one of them slow (3 s
//!   before it answers `initialize`), against the same run with none, in the same run: servers
//!   start in the background, so the first request must not wait for any of them;
//! - the tool definitions and system prompt of the first request once a 100-tool server is up,
//!   offered eagerly (`[mcp] eager_tokens` above their size) and lazily (the default: names in
//!   `tool_search`), against the request with no MCP server.
//!
//! Medians; only meaningful on a quiet machine.

#[allow(dead_code)]
#[path = "../../tests/all/mock_model.rs"]
mod mock_model;
#[path = "common/report.rs"]
mod report;

use mock_model::{MockModel, Reply, calls, done};
use report::{median, ms, run_measured};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const RUNS: usize = 20;

fn server(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/all/servers")
        .join(file)
}

fn repo(dir: &Path) -> Res<()> {
    std::fs::create_dir_all(dir)?;
    Command::new("git")
        .args(["init", "-q"])
        .current_dir(dir)
        .status()?;
    std::fs::write(dir.join("README.md"), "A small project.\n")?;
    Ok(())
}

/// Write the user config of `tmp` (the `[mcp]` section `mcp`) and run `cove run` in a new
/// repository `name` against a model following `replies`; the requests it made, each with when
/// it arrived since the start.
fn run(tmp: &Path, name: &str, mcp: &str, replies: Vec<Reply>) -> Res<Vec<(Duration, Value)>> {
    std::fs::write(tmp.join("config/config.toml"), mcp)?;
    let dir = tmp.join(name);
    repo(&dir)?;
    let m = MockModel::start(replies)?;
    let started = std::time::Instant::now();
    let (stdout, _) = run_measured(&mut report::cove(
        &dir,
        tmp,
        &tmp.join("cache"),
        &m.url,
        &["run", "--output-format", "json", "--yes", "go"],
    ))?;
    let v: Value = serde_json::from_slice(&stdout)?;
    if v["outcome"] != "finished" {
        return Err(format!("run did not finish: {v}").into());
    }
    Ok(m.requests()
        .iter()
        .map(|r| (r.at.duration_since(started), r.json()))
        .collect())
}

/// Tool definitions + system prompt of a request, in bytes, and how many tools it offers.
fn prompt_bytes(request: &Value) -> (usize, usize) {
    (
        request["tools"].to_string().len() + request["system"].to_string().len(),
        request["tools"].as_array().map_or(0, Vec::len),
    )
}

fn main() -> Res<()> {
    let tmp = tempfile::tempdir()?;
    let tmp = tmp.path();
    std::fs::create_dir_all(tmp.join("config"))?;
    let scripted = server("scripted.py");
    let scripted = scripted.to_string_lossy();
    let three = format!(
        "[mcp.servers.one]\ncommand = \"python3\"\nargs = [{scripted:?}]\n\
         [mcp.servers.two]\ncommand = \"python3\"\nargs = [{scripted:?}]\n\
         [mcp.servers.slow]\ncommand = \"sh\"\nargs = [\"-c\", {:?}]\n",
        format!("sleep 3; exec python3 {scripted}")
    );
    // A first run fills the component cache; it is not counted.
    run(tmp, "warm", "", vec![done("done")])?;
    let mut none = Vec::new();
    let mut with_three = Vec::new();
    for i in 0..RUNS {
        // Alternating, so a change in the machine's load touches both alike.
        let r = run(tmp, &format!("none-{i}"), "", vec![done("done")])?;
        none.push(r.first().ok_or("no request")?.0);
        let r = run(tmp, &format!("three-{i}"), &three, vec![done("done")])?;
        with_three.push(r.first().ok_or("no request")?.0);
    }
    let (none, with_three) = (median(none), median(with_three));

    let many = server("many_tools.py");
    let many = format!(
        "[mcp.servers.many]\ncommand = \"python3\"\nargs = [{:?}, \"100\"]\n",
        many.to_string_lossy()
    );
    // The first reply calls one of its tools, which waits for the server; the next request
    // offers what is up.
    let script = || {
        vec![
            calls(&[(
                "c1",
                "mcp__many__list_issues_0",
                json!({"owner": "o", "repo": "r"}),
            )]),
            done("done"),
        ]
    };
    let base = run(tmp, "base", "", vec![done("done")])?;
    let (base_bytes, base_tools) = prompt_bytes(&base.first().ok_or("no request")?.1);
    let eager = run(
        tmp,
        "eager",
        &format!("[mcp]\neager_tokens = 1000000\n{many}"),
        script(),
    )?;
    let (eager_bytes, eager_tools) = prompt_bytes(&eager.get(1).ok_or("no second request")?.1);
    let lazy = run(tmp, "lazy", &many, script())?;
    let (lazy_bytes, lazy_tools) = prompt_bytes(&lazy.get(1).ok_or("no second request")?.1);
    if eager_tools != base_tools + 100 || lazy_tools != base_tools + 1 {
        return Err(format!(
            "unexpected offers: {base_tools} built-in, {eager_tools} eager, {lazy_tools} lazy"
        )
        .into());
    }

    let kb = |b: usize| format!("{:.1} KB", b as f64 / 1024.0);
    let mut report = String::new();
    writeln!(report, "## MCP servers\n")?;
    writeln!(
        report,
        "Produced by `bash scripts/bench.sh` (`host/benches/mcp.rs`): the release `cove run` against a local model\n\
         server answering at once; medians over {RUNS} runs of each kind, alternating, warm component cache.\n"
    )?;
    writeln!(report, "| figure | cove | reference (same run) | ratio |")?;
    writeln!(report, "|---|---|---|---|")?;
    writeln!(
        report,
        "| start to first model request, 3 stdio MCP servers configured (one 3 s slow to initialize) | {} | no MCP server {} | {:.2}× |",
        ms(with_three),
        ms(none),
        with_three.as_secs_f64() / none.as_secs_f64()
    )?;
    writeln!(
        report,
        "| tool definitions + system prompt once a 100-tool server is up, eager (`eager_tokens` above their size) | {} ({eager_tools} tools) | no MCP server {} ({base_tools} tools) | {:.2}× |",
        kb(eager_bytes),
        kb(base_bytes),
        eager_bytes as f64 / base_bytes as f64
    )?;
    writeln!(
        report,
        "| the same, lazy (default `eager_tokens`: names and one line each in `tool_search`) | {} ({lazy_tools} tools) | no MCP server {} | {:.2}× (eager: {:.2}×) |",
        kb(lazy_bytes),
        kb(base_bytes),
        lazy_bytes as f64 / base_bytes as f64,
        lazy_bytes as f64 / eager_bytes as f64
    )?;
    writeln!(
        report,
        "\nServers start in the background: the first request goes out with the tools that are up (none yet),\n\
         and each server's tools are appended once it is (the cached prefix holds)."
    )?;
    report::publish("## MCP servers", &report)?;
    Ok(())
}
