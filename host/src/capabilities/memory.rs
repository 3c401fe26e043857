//! The memory store: what the agent learns about a project, or about the user, kept across
//! sessions in plain Markdown files a person can read and edit.
//!
//! Owns where those files are (`.agent_memory.md` at the worktree root; `memory.md` in the
//! user's config directory), reading them for the system prompt with a size cap that keeps the
//! newest content, and appending a dated entry that is not there yet. Must not rewrite or
//! reorder what is already in a file (a person may have written it), and must not decide when
//! something is worth remembering.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The project's memory file, at the worktree root.
pub const PROJECT_FILE: &str = ".agent_memory.md";
/// The user's memory file, in cove's config directory.
pub const USER_FILE: &str = "memory.md";
/// Most of a memory file the system prompt carries; the oldest content is left out past it.
pub const MAX_BYTES: usize = 16 * 1024;

/// Whose memory a fact belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// This repository: `.agent_memory.md` at the worktree root.
    Project,
    /// Every session of this user: `memory.md` in the config directory.
    User,
}

/// A memory file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error(
        "there is no user config directory to keep the user's memory in (set HOME or XDG_CONFIG_HOME)"
    )]
    NoUserDir,
    #[error("the fact to remember is empty")]
    Empty,
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where `scope`'s memory lives for a worktree at `root`.
pub fn file(scope: Scope, root: &Path, user_dir: Option<&Path>) -> Option<PathBuf> {
    match scope {
        Scope::Project => Some(root.join(PROJECT_FILE)),
        Scope::User => user_dir.map(|d| d.join(USER_FILE)),
    }
}

/// The memory files for the system prompt, in order (the project's, then the user's): a name to
/// show and the text, cut to its newest [`MAX_BYTES`].
pub fn read(root: &Path, user_dir: Option<&Path>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let files = [
        (
            PROJECT_FILE.to_string(),
            file(Scope::Project, root, user_dir),
        ),
        (
            format!("~user/{USER_FILE}"),
            file(Scope::User, root, user_dir),
        ),
    ];
    for (name, path) in files {
        // The project's file is the repository's: read through its wall, so a link to a file
        // outside is not read; the user's is the user's own.
        let read = |p: PathBuf| match p.strip_prefix(root) {
            Ok(rel) => crate::worktree::read_within(root, rel, 16 * 1024 * 1024),
            Err(_) => std::fs::read(&p),
        };
        let Some(bytes) = path.and_then(|p| read(p).ok()) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        if text.trim().is_empty() {
            continue;
        }
        out.push((name, newest(&text, MAX_BYTES)));
    }
    out
}

/// `text` if it fits in `max` bytes, else its last whole lines that do, after a line saying how
/// much was left out.
fn newest(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    // From the start of the next whole line.
    if let Some(nl) = text[start..].find('\n') {
        start += nl + 1;
    }
    format!(
        "[the oldest {start} bytes of this file are not shown]\n{}",
        &text[start..]
    )
}

/// What [`remember`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remembered {
    /// A new entry was appended to this file.
    Added(PathBuf),
    /// The file already holds this fact; nothing was written.
    Already(PathBuf),
}

/// Append `fact` to `scope`'s memory file as `- DATE: fact`, unless an entry with the same words
/// is already there. Creates the file (and its directory) when missing; never changes what is in
/// it. Whitespace inside the fact is collapsed to single spaces, so it stays one entry.
///
/// # Errors
/// An empty fact, no user directory for [`Scope::User`], or the file cannot be written.
pub fn remember(
    scope: Scope,
    fact: &str,
    root: &Path,
    user_dir: Option<&Path>,
) -> Result<Remembered, MemoryError> {
    let fact = collapse(fact);
    if fact.is_empty() {
        return Err(MemoryError::Empty);
    }
    let path = file(scope, root, user_dir).ok_or(MemoryError::NoUserDir)?;
    let existing = std::fs::read(&path).unwrap_or_default();
    let existing = String::from_utf8_lossy(&existing);
    if existing
        .lines()
        .any(|l| entry_text(l).as_ref() == Some(&fact))
    {
        return Ok(Remembered::Already(path));
    }
    let date = jiff::Zoned::now().date();
    append(&path, &existing, &format!("- {date}: {fact}\n"))?;
    Ok(Remembered::Added(path))
}

/// Append a session summary (the compressor's) to the project's memory file as a dated section.
/// Never changes what is already in the file.
///
/// # Errors
/// The file cannot be written.
pub fn append_summary(root: &Path, summary: &str) -> Result<PathBuf, MemoryError> {
    let path = root.join(PROJECT_FILE);
    let existing = std::fs::read(&path).unwrap_or_default();
    let existing = String::from_utf8_lossy(&existing);
    let date = jiff::Zoned::now().date();
    let section = format!(
        "{}## Session summary, {date}\n\n{}\n",
        if existing.is_empty() { "" } else { "\n" },
        summary.trim()
    );
    append(&path, &existing, &section)?;
    Ok(path)
}

/// Append `text` to `path` (holding `existing`), on a line of its own, and sync it.
fn append(path: &Path, existing: &str, text: &str) -> Result<(), MemoryError> {
    let mut entry = String::new();
    if !existing.is_empty() && !existing.ends_with('\n') {
        entry.push('\n');
    }
    entry.push_str(text);
    let write_err = |source| MemoryError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(write_err)?;
    f.write_all(entry.as_bytes()).map_err(write_err)?;
    f.sync_data().map_err(write_err)?;
    Ok(())
}

/// The fact of an entry line `- YYYY-MM-DD: fact`, whitespace collapsed; `None` for other lines.
fn entry_text(line: &str) -> Option<String> {
    let rest = line.trim().strip_prefix("- ")?;
    let (date, fact) = rest.split_once(": ")?;
    let is_date = date.len() == 10
        && date.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    is_date.then(|| collapse(fact))
}

/// `text` with every run of whitespace made one space, trimmed.
fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fact_is_appended_once_dated_and_nothing_else_changes()
    -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let root = tmp.path();
        let written_by_a_person = "# Notes\nThe API lives in src/api.\n";
        std::fs::write(root.join(PROJECT_FILE), written_by_a_person.trim_end())?;
        let first = remember(Scope::Project, "run  tests with\n`make check`", root, None)?;
        assert_eq!(first, Remembered::Added(root.join(PROJECT_FILE)));
        let again = remember(Scope::Project, "run tests with `make check`", root, None)?;
        assert_eq!(again, Remembered::Already(root.join(PROJECT_FILE)));
        let text = std::fs::read_to_string(root.join(PROJECT_FILE))?;
        assert!(text.starts_with(written_by_a_person), "{text}");
        let entries: Vec<String> = text.lines().filter_map(entry_text).collect();
        assert_eq!(entries, ["run tests with `make check`"]);
        let date = jiff::Zoned::now().date().to_string();
        assert!(text.contains(&format!("- {date}: run tests")), "{text}");
        Ok(())
    }

    #[test]
    fn user_memory_needs_a_user_directory_and_empty_facts_are_refused()
    -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        assert!(matches!(
            remember(Scope::User, "x", tmp.path(), None),
            Err(MemoryError::NoUserDir)
        ));
        assert!(matches!(
            remember(Scope::Project, " \n ", tmp.path(), None),
            Err(MemoryError::Empty)
        ));
        let user = tmp.path().join("config");
        remember(Scope::User, "prefers tabs", tmp.path(), Some(&user))?;
        assert!(std::fs::read_to_string(user.join(USER_FILE))?.contains(": prefers tabs"));
        Ok(())
    }

    #[test]
    fn a_long_file_keeps_its_newest_lines_and_says_so() {
        let text: String = (0..2000).map(|i| format!("- line {i}\n")).collect();
        let cut = newest(&text, 1000);
        assert!(cut.len() <= 1000 + 60, "{}", cut.len());
        assert!(cut.starts_with("[the oldest "), "{cut}");
        assert!(cut.ends_with("- line 1999\n"));
        // Whole lines only.
        assert!(cut.lines().nth(1).is_some_and(|l| l.starts_with("- line ")));
        assert_eq!(newest("short", 1000), "short");
        // A multi-byte character at the cut.
        let wide = "é".repeat(600);
        assert!(newest(&wide, 101).len() < 200);
    }
}
