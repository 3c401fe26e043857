//! What the benches share for docs/PERFORMANCE.md: the `--write FILE` argument, and putting one
//! section in place of its earlier version (or before the notes), keeping every other section.

use std::path::PathBuf;

/// The file named by `--write FILE`, if any.
pub fn write_target() -> Option<PathBuf> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--write")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
}

/// `old` with the section that starts with `heading` (up to the next `## `) replaced by
/// `report`, or `report` added before the notes (at the end without them).
pub fn replace_section(old: &str, heading: &str, report: &str) -> String {
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
