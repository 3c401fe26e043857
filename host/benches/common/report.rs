//! What the loop, skills and subagents benches share: running the release `cove` isolated from
//! the user's own directories (and measuring its peak RSS), medians and milliseconds, and
//! publishing their section of docs/PERFORMANCE.md (printed, and with `--write FILE` put in place
//! of its earlier version, or before the notes, keeping every other section).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// `cove ARGS` in `dir` against the model server at `url`, with `tmp`'s config and data
/// directories, `cache` as its component cache, stdout piped and stderr dropped.
pub fn cove(dir: &Path, tmp: &Path, cache: &Path, url: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cove"));
    c.args(args)
        .current_dir(dir)
        .env("ANTHROPIC_BASE_URL", url)
        .env("ANTHROPIC_API_KEY", "bench")
        .env("COVE_CONFIG_DIR", tmp.join("config"))
        .env("CLAUDE_CONFIG_DIR", tmp.join("claude"))
        .env("COVE_CACHE_DIR", cache)
        .env("COVE_DATA_DIR", tmp.join("data"))
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    c
}

/// Run `cmd` to the end; its stdout and its own peak resident set in KiB.
///
/// # Errors
/// It cannot be started or waited for.
pub fn run_measured(cmd: &mut Command) -> Result<(Vec<u8>, i64), Box<dyn std::error::Error>> {
    use std::io::Read;
    let mut child = cmd.spawn()?;
    let mut out = Vec::new();
    child
        .stdout
        .take()
        .ok_or("no stdout")?
        .read_to_end(&mut out)?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 reaps this child (not waited for elsewhere) and writes into our structs.
    let rss = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        if libc::wait4(pid, &mut status, 0, &mut u) != pid {
            return Err("wait4 failed".into());
        }
        u.ru_maxrss
    };
    Ok((out, rss))
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Print `report`, and with `--write FILE` put it in FILE as the section starting `heading`.
///
/// # Errors
/// FILE cannot be written.
pub fn publish(heading: &str, report: &str) -> std::io::Result<()> {
    // One blank line before whatever section follows.
    let report = format!("{}\n\n", report.trim_end());
    let report = report.as_str();
    println!("{report}");
    if let Some(path) = write_target() {
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(&path, replace_section(&old, heading, report))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The file named by `--write FILE`, if any.
fn write_target() -> Option<PathBuf> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--write")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
}

/// `old` with the section that starts with `heading` (up to the next `## `) replaced by
/// `report`, or `report` added before the notes (at the end without them).
fn replace_section(old: &str, heading: &str, report: &str) -> String {
    match old.find(heading) {
        Some(i) => {
            let rest = &old[i..];
            let end = rest[2..].find("\n## ").map(|j| i + 2 + j + 1);
            format!("{}{}{}", &old[..i], report, end.map_or("", |e| &old[e..]))
        }
        None => match old.find("\n## Notes") {
            Some(n) => format!("{}\n{}{}", &old[..n], report, &old[n..]),
            None => format!("{old}\n{report}"),
        },
    }
}
