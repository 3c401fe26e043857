//! The context the model starts from: the system prompt and the memory files.
//!
//! Owns what goes into the system prompt: fixed instructions, the worktree's path, the memory
//! files (`AGENTS.md`, `CLAUDE.md`) from the repository root down to the working directory, then
//! the memory store's files (`capabilities::memory`), then the skills index (`skills`). Nothing
//! time-dependent or random goes in, so the prompt prefix stays cacheable. Must not build
//! provider requests.

pub mod cache;
pub mod compress;
pub mod skills;
pub mod tokens;

use crate::capabilities::memory;

use std::path::Path;

/// Memory file names, read in this order in each directory.
pub const MEMORY_FILES: &[&str] = &["AGENTS.md", "CLAUDE.md"];
/// Largest memory file read whole; longer ones are cut with a note.
const MAX_MEMORY_BYTES: usize = 64 * 1024;
/// Largest memory file read at all (it is cut to [`MAX_MEMORY_BYTES`]).
const MAX_MEMORY_FILE: u64 = 16 * 1024 * 1024;

const INSTRUCTIONS: &str = "You are cove, a coding agent working in a git worktree on the user's behalf. \
Use the tools to look before you change anything: read files before editing them, search with grep and glob, map code with outline and find_symbol. \
Make the smallest change that does the job, then check it. Paths may be relative to the worktree. \
When the task is done, say briefly what you changed and stop.";

/// The system prompt for a session in `root`, started from `cwd` (inside `root`), with the
/// user's memory from cove's config directory and the index of `skills` (names and
/// descriptions only: a skill's body comes with the `skill` tool).
pub fn system_prompt(root: &Path, cwd: &Path, skills: &skills::Catalog) -> String {
    let mut out = prompt(root, cwd, crate::paths::config_dir().as_deref());
    out.push_str(&skills.index());
    out
}

/// The system prompt without skills, with the user's memory from `user_dir`.
fn prompt(root: &Path, cwd: &Path, user_dir: Option<&Path>) -> String {
    let mut out = format!("{INSTRUCTIONS}\n\nWorktree: {}\n", root.display());
    let files = memory_files(root, cwd)
        .into_iter()
        .chain(memory::read(root, user_dir));
    for (rel, text) in files {
        out.push_str(&format!(
            "\n<memory file=\"{rel}\">\n{}\n</memory>\n",
            text.trim_end()
        ));
    }
    out
}

/// `(path relative to root, contents)` of every memory file from `root` down to `cwd`.
pub fn memory_files(root: &Path, cwd: &Path) -> Vec<(String, String)> {
    let mut dirs = vec![root.to_path_buf()];
    if let Ok(rel) = cwd.strip_prefix(root) {
        let mut d = root.to_path_buf();
        for c in rel.components() {
            d.push(c);
            dirs.push(d.clone());
        }
    }
    let mut out = Vec::new();
    for dir in dirs {
        for name in MEMORY_FILES {
            let path = dir.join(name);
            // Through the worktree's wall: a memory file linked from outside is not read.
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let Ok(bytes) = crate::worktree::read_within(root, rel, MAX_MEMORY_FILE) else {
                continue;
            };
            let mut text = String::from_utf8_lossy(&bytes).into_owned();
            if text.len() > MAX_MEMORY_BYTES {
                text = crate::plugins::runtime::cut(&text, MAX_MEMORY_BYTES).into_owned();
            }
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            out.push((rel, text));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_memory_files_from_root_down_to_cwd() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let root = tmp.path();
        std::fs::create_dir_all(root.join("a/b"))?;
        std::fs::write(root.join("AGENTS.md"), "root rules")?;
        std::fs::write(root.join("a/CLAUDE.md"), "a rules")?;
        std::fs::write(root.join("a/b/AGENTS.md"), "b rules")?;
        std::fs::write(root.join("other.md"), "not memory")?;
        let none = skills::Catalog::default();
        let p = system_prompt(root, &root.join("a/b"), &none);
        let (r, a, b) = (p.find("root rules"), p.find("a rules"), p.find("b rules"));
        assert!(r.is_some() && r < a && a < b, "{p}");
        assert!(!p.contains("not memory"));
        assert!(!system_prompt(root, root, &none).contains("a rules"));
        assert_eq!(
            system_prompt(root, root, &none),
            system_prompt(root, root, &none)
        );
        Ok(())
    }

    #[test]
    fn the_memory_store_follows_the_memory_files() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let (root, user) = (tmp.path().join("repo"), tmp.path().join("config"));
        std::fs::create_dir_all(&root)?;
        std::fs::create_dir_all(&user)?;
        std::fs::write(root.join("AGENTS.md"), "project rules")?;
        std::fs::write(root.join(memory::PROJECT_FILE), "- 2026-01-02: learned")?;
        std::fs::write(user.join(memory::USER_FILE), "- 2026-01-03: the user's own")?;
        let p = prompt(&root, &root, Some(&user));
        let (rules, learned, own) = (
            p.find("project rules"),
            p.find("<memory file=\".agent_memory.md\">\n- 2026-01-02: learned"),
            p.find("<memory file=\"~user/memory.md\">\n- 2026-01-03: the user's own"),
        );
        assert!(rules.is_some() && rules < learned && learned < own, "{p}");
        assert!(!prompt(&root, &root, None).contains("the user's own"));
        Ok(())
    }
}
