//! Model profiles: what a run looks like for the model it talks to.
//!
//! Owns choosing the profile (`[provider] profile`, `--profile`, or, when neither says, `small`
//! for a local runtime serving a small model) and what each profile sets: for `small`, a lean
//! system prompt listing each tool on one line, the tools a coding task needs and no others,
//! short tool results, temperature 0, a shorter reply limit and constrained replies. Explicit
//! settings (flags, config) always win over what a profile suggests.
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

/// The tools the `small` profile offers (those that exist): enough to read, search, change and
/// test code, and few enough that a small model chooses well.
pub const SMALL_TOOLS: &[&str] = &["read", "edit", "write", "ls", "grep", "bash"];
/// Most bytes of one tool result a small model sees.
pub const SMALL_MAX_RESULT_BYTES: usize = 4 * 1024;
/// The `small` profile's reply limit: a call, or a short file.
pub const SMALL_MAX_TOKENS: u32 = 2048;
/// Largest model, in parameters, that counts as small.
pub const SMALL_MAX_PARAMS: u64 = 4_000_000_000;

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
/// serving a small `model`, with the line that tells the user so.
///
/// # Errors
/// [`UnknownProfile`] for a configured name that is neither `small` nor `default`.
pub fn choose(
    configured: Option<&str>,
    server: Option<&Server>,
    model: &str,
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
                "profile small: {} serves {model} ({:.1}B parameters), so cove uses a lean prompt, {} tools, constrained replies and temperature 0 (--profile default to change)",
                server.runtime,
                p as f64 / 1e9,
                SMALL_TOOLS.len()
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

const SMALL_INSTRUCTIONS: &str = "You are a coding agent working in a git worktree. \
You cannot see any file until you read it: start by reading the files the task names, with read. \
Edit only text you have read, copying old_string exactly. Then run the tests with bash. \
Call one tool per reply.";

/// The `small` profile's system prompt: a few lines of instructions, the worktree, each tool on
/// one line with its arguments, then the memory files as in the default prompt.
pub fn small_system_prompt(root: &Path, cwd: &Path, tools: &[ToolDef]) -> String {
    let mut out = format!(
        "{SMALL_INSTRUCTIONS}\nWorktree: {}\nTools:\n",
        root.display()
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
        let (p, why) = choose(None, Some(&llama), "x")?;
        assert_eq!(p, Profile::Small);
        assert!(why.is_some_and(|w| w.contains("llama.cpp") && w.contains("1.5B")));
        let ollama = Server {
            runtime: "Ollama".into(),
            params: None,
            context: None,
        };
        assert_eq!(
            choose(None, Some(&ollama), "qwen2.5:14b")?.0,
            Profile::Default
        );
        assert_eq!(choose(None, None, "qwen2.5:1.5b")?.0, Profile::Default);
        assert_eq!(
            choose(Some("default"), Some(&llama), "x")?,
            (Profile::Default, None)
        );
        assert!(choose(Some("tiny"), None, "x").is_err());
        Ok(())
    }
}
