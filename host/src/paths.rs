//! Where cove keeps things on disk: the user's config and cache directories.
//!
//! Owns the XDG lookups (config, cache, data), Claude Code's directory (`~/.claude`, for its
//! skills) and the `COVE_*` overrides tests use. Must not create or read anything.

use std::path::PathBuf;

/// `$COVE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/cove`, else `~/.config/cove`.
pub fn config_dir() -> Option<PathBuf> {
    dir_from("COVE_CONFIG_DIR", "XDG_CONFIG_HOME", ".config")
}

/// `$COVE_CACHE_DIR`, else `$XDG_CACHE_HOME/cove`, else `~/.cache/cove`.
pub fn cache_dir() -> Option<PathBuf> {
    dir_from("COVE_CACHE_DIR", "XDG_CACHE_HOME", ".cache")
}

/// `$COVE_DATA_DIR`, else `$XDG_DATA_HOME/cove`, else `~/.local/share/cove`. Sessions live here.
pub fn data_dir() -> Option<PathBuf> {
    dir_from("COVE_DATA_DIR", "XDG_DATA_HOME", ".local/share")
}

/// Claude Code's own directory, whose `skills/` cove reads too: `$CLAUDE_CONFIG_DIR` (Claude
/// Code's own override), else `~/.claude`.
pub fn claude_dir() -> Option<PathBuf> {
    let non_empty = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    non_empty("CLAUDE_CONFIG_DIR").or_else(|| non_empty("HOME").map(|h| h.join(".claude")))
}

fn dir_from(own: &str, xdg: &str, home_rel: &str) -> Option<PathBuf> {
    let non_empty = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = non_empty(own) {
        return Some(dir);
    }
    if let Some(base) = non_empty(xdg) {
        return Some(base.join("cove"));
    }
    non_empty("HOME").map(|h| h.join(home_rel).join("cove"))
}
