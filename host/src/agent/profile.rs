//! Model profiles: what a run looks like for the model it talks to.
//!
//! Owns choosing the profile (`[provider] profile`, `--profile`, or, when neither says, `small`
//! for a local runtime serving a small model) and what each profile sets: for `small`, a lean
//! system prompt listing the worktree's files and each tool on one line, the tools a coding task
//! needs and no others (`[provider] small_tools` to choose them), short tool results,
//! temperature 0, a shorter reply limit and constrained replies where the provider can constrain
//! them. Explicit settings (flags, config) always win over what a profile suggests.
//! Must not talk to the server (the provider identifies it) or build requests.

use crate::conversation::ToolDef;
use crate::provider::Server;
use std::path::Path;

/// How a run is shaped for its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Everything cove offers: full prompt, every tool, native tool calls.
    Default,
    /// For small local models (a few billion parameters).
    Small,
}

/// The tools the `small` profile offers by default (those that exist): enough to read, search,
/// change and test code, and few enough that a small model chooses well.
pub const SMALL_TOOLS: &[&str] = &["read", "edit", "write", "ls", "grep", "bash"];
/// Most bytes of one tool result a small model sees.
pub const SMALL_MAX_RESULT_BYTES: usize = 4 * 1024;
/// The `small` profile's reply limit: a call, or a short file.
pub const SMALL_MAX_TOKENS: u32 = 2048;
/// Largest model, in parameters, that counts as small.
pub const SMALL_MAX_PARAMS: u64 = 4_000_000_000;
/// Most worktree files the `small` prompt names (deeper or further ones: `ls`).
const SMALL_MAX_FILES: usize = 30;
/// How deep below the worktree root the `small` prompt looks for files.
const SMALL_FILES_DEPTH: usize = 3;

/// An unknown profile name.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("unknown profile `{0}`; use `small` (small local models) or `default`")]
pub struct UnknownProfile(pub String);

impl std::str::FromStr for Profile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Self, UnknownProfile> {
        match s {
            "small" => Ok(Profile::Small),
            "default" => Ok(Profile::Default),
            other => Err(UnknownProfile(other.into())),
        }
    }
}

/// The profile for a run: `configured` when set; else `small` when `server` is a local runtime
/// serving a small `model`, with the line that tells the user so (`constrained`: whether its
/// replies will be constrained).
///
/// # Errors
/// [`UnknownProfile`] for a configured name that is neither `small` nor `default`.
pub fn choose(
    configured: Option<&str>,
    server: Option<&Server>,
    model: &str,
    constrained: bool,
) -> Result<(Profile, Option<String>), UnknownProfile> {
    if let Some(name) = configured {
        return Ok((name.parse()?, None));
    }
    let Some(server) = server else {
        return Ok((Profile::Default, None));
    };
    let params = server.params.or_else(|| params_from_name(model));
    match params {
        Some(p) if p <= SMALL_MAX_PARAMS => Ok((
            Profile::Small,
            Some(format!(
                "profile small: {} serves {model} ({:.1}B parameters), so cove uses a lean prompt, few tools, {} and temperature 0 (--profile default to change)",
                server.runtime,
                p as f64 / 1e9,
                if constrained {
                    "constrained replies"
                } else {
                    "calls read from text"
                }
            )),
        )),
        _ => Ok((Profile::Default, None)),
    }
}

/// The size a model's name gives, like `qwen2.5-coder:1.5b` or `Qwen2.5-Coder-0.5B-Instruct`:
/// a number followed by `b`, standing alone between separators.
pub fn params_from_name(name: &str) -> Option<u64> {
    let lower = name.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    for (i, _) in lower.match_indices('b') {
        let after_ok = bytes.get(i + 1).is_none_or(|c| !c.is_ascii_alphanumeric());
        let start = lower[..i]
            .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
            .map_or(0, |j| j + 1);
        let number = &lower[start..i];
        let before_ok = start == 0 || matches!(bytes[start - 1], b'-' | b'_' | b':' | b'/' | b' ');
        if after_ok
            && before_ok
            && !number.is_empty()
            && let Ok(b) = number.parse::<f64>()
        {
            return Some((b * 1e9) as u64);
        }
    }
    None
}

/// Steps, not advice: a small model follows a numbered procedure where it ignores a principle.
const SMALL_INSTRUCTIONS: &str = "You are a coding agent in a git worktree. You see no file until you read it. \
Work in these steps, one tool call per reply:
1. Read the files the task names, tests too, with read.
2. Change the code with edit: copy old_string exactly from what read showed, without the line numbers. \
Change the code, not its tests, unless the task asks for that.
3. Run the tests with bash and read what they print. If they fail, go back to step 2.
4. Finish, saying what you changed.";

/// The `small` profile's system prompt: a few lines of instructions, the worktree and the files
/// in it (a small model that sees no file names makes them up), each tool on one line with its
/// arguments, then the memory files as in the default prompt.
pub fn small_system_prompt(root: &Path, cwd: &Path, tools: &[ToolDef]) -> String {
    let mut out = format!(
        "{SMALL_INSTRUCTIONS}\nWorktree: {}\n{}Tools:\n",
        root.display(),
        files_line(root)
    );
    for t in tools {
        out.push_str("- ");
        out.push_str(&t.one_line());
        out.push('\n');
    }
    for (rel, text) in crate::context::memory_files(root, cwd) {
        out.push_str(&format!(
            "\n<memory file=\"{rel}\">\n{}\n</memory>\n",
            text.trim_end()
        ));
    }
    out
}

/// `Files: a.py, src/b.py, …` for up to [`SMALL_MAX_FILES`] files the worktree shows (not
/// ignored, not hidden, at most [`SMALL_FILES_DEPTH`] deep, shallowest first), with a note when
/// there are more; empty for an empty worktree.
fn files_line(root: &Path) -> String {
    let mut files: Vec<(usize, String)> = Vec::new();
    let mut more = false;
    let walk = ignore::WalkBuilder::new(root)
        .max_depth(Some(SMALL_FILES_DEPTH))
        .require_git(false)
        .sort_by_file_path(|a, b| a.cmp(b))
        .build();
    for entry in walk.flatten() {
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        if files.len() == SMALL_MAX_FILES * 4 {
            more = true;
            break;
        }
        if let Ok(rel) = entry.path().strip_prefix(root) {
            let rel = rel.to_string_lossy().into_owned();
            files.push((rel.matches('/').count(), rel));
        }
    }
    if files.is_empty() {
        return String::new();
    }
    // Shallowest first: the top of a big tree says more than one deep corner of it.
    files.sort();
    more |= files.len() > SMALL_MAX_FILES;
    files.truncate(SMALL_MAX_FILES);
    let names: Vec<String> = files.into_iter().map(|(_, f)| f).collect();
    format!(
        "Files: {}{}\n",
        names.join(", "),
        if more { ", … (ls shows more)" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_come_from_names() {
        assert_eq!(params_from_name("qwen2.5-coder:1.5b"), Some(1_500_000_000));
        assert_eq!(
            params_from_name("Qwen2.5-Coder-0.5B-Instruct-Q4_K_M.gguf"),
            Some(500_000_000)
        );
        assert_eq!(params_from_name("llama3.1:70b"), Some(70_000_000_000));
        assert_eq!(params_from_name("gpt-4o"), None);
        assert_eq!(params_from_name("qwen2.5-coder"), None);
        assert_eq!(params_from_name("bert-base"), None);
    }

    #[test]
    fn small_only_for_a_small_model_on_a_local_runtime() -> Result<(), UnknownProfile> {
        let llama = Server {
            runtime: "llama.cpp".into(),
            params: Some(1_543_714_304),
            context: Some(8192),
        };
        let (p, why) = choose(None, Some(&llama), "x", true)?;
        assert_eq!(p, Profile::Small);
        assert!(why.is_some_and(|w| w.contains("llama.cpp") && w.contains("1.5B")));
        let ollama = Server {
            runtime: "Ollama".into(),
            params: None,
            context: None,
        };
        assert_eq!(
            choose(None, Some(&ollama), "qwen2.5:14b", true)?.0,
            Profile::Default
        );
        assert_eq!(
            choose(None, None, "qwen2.5:1.5b", true)?.0,
            Profile::Default
        );
        assert_eq!(
            choose(Some("default"), Some(&llama), "x", true)?,
            (Profile::Default, None)
        );
        assert!(choose(Some("tiny"), None, "x", true).is_err());
        Ok(())
    }

    #[test]
    fn the_small_prompt_names_the_files_shallowest_first() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        std::fs::create_dir_all(root.join("src/deep/er/still"))?;
        std::fs::write(root.join("calc.py"), "x")?;
        std::fs::write(root.join("src/lib.py"), "x")?;
        std::fs::write(root.join("src/deep/er/still/far.py"), "x")?;
        std::fs::write(root.join(".hidden"), "x")?;
        std::fs::write(root.join(".gitignore"), "build.log\n")?;
        std::fs::write(root.join("build.log"), "x")?;
        std::fs::create_dir(root.join(".git"))?;
        assert_eq!(files_line(root), "Files: calc.py, src/lib.py\n");
        for i in 0..40 {
            std::fs::write(root.join(format!("f{i:02}.py")), "x")?;
        }
        let line = files_line(root);
        assert!(line.starts_with("Files: calc.py, f00.py,"), "{line}");
        assert!(line.ends_with(", … (ls shows more)\n"), "{line}");
        assert!(!line.contains("src/lib.py"), "{line}");
        assert_eq!(line.matches(", ").count(), SMALL_MAX_FILES, "{line}");
        let empty = tempfile::tempdir()?;
        assert_eq!(files_line(empty.path()), "");
        Ok(())
    }
}
