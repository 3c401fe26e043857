//! What the loop and skills benches share: medians and milliseconds, and publishing their section
//! of docs/PERFORMANCE.md (printed, and with `--write FILE` put in place of its earlier version,
//! or before the notes, keeping every other section).

use std::path::PathBuf;
use std::time::Duration;

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
