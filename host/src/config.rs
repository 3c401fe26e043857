//! `config.toml`: what the user and the project allow.
//!
//! Owns reading `~/.config/cove/config.toml` then `.cove/config.toml` (later wins, field by field):
//! which plugins are on, what they are granted, and their limits. Must not look at manifests or
//! components; combining asks with grants is the registry's job.

use crate::plugins::manifest::FsAccess;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One plugin's settings. Every field is optional so layers can be merged.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// `false` switches the plugin off.
    pub enabled: Option<bool>,
    /// The most worktree access granted (the manifest's ask is the other key).
    pub fs: Option<FsAccess>,
    pub search: Option<bool>,
    pub exec: Option<bool>,
    pub ast: Option<bool>,
    /// Hosts granted for HTTP.
    pub net: Option<Vec<String>>,
    pub timeout_ms: Option<u64>,
    pub memory_mb: Option<u64>,
    pub output_kb: Option<u64>,
    /// Extra environment for the plugin's commands, on top of the allow-list.
    pub env: Option<BTreeMap<String, String>>,
}

impl PluginConfig {
    fn merge(&mut self, later: PluginConfig) {
        macro_rules! take {
            ($($f:ident),*) => { $( if later.$f.is_some() { self.$f = later.$f; } )* };
        }
        take!(
            enabled, fs, search, exec, ast, net, timeout_ms, memory_mb, output_kb, env
        );
    }
}

/// Limits for every plugin unless its own settings say otherwise.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub timeout_ms: Option<u64>,
    pub memory_mb: Option<u64>,
    pub output_kb: Option<u64>,
}

/// Which model to talk to, and the loop's limits. Every field optional so layers merge.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// `anthropic`, `openai` (any OpenAI-compatible server) or `scripted`.
    pub kind: Option<String>,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub max_tokens: Option<u32>,
    pub max_turns: Option<u32>,
    pub token_budget: Option<u64>,
    /// OpenAI-compatible: take a JSON tool call written as text as a real call (default true).
    pub text_tool_calls: Option<bool>,
    /// OpenAI-compatible: force valid calls with a `response_format` JSON schema (default false).
    pub constrained: Option<bool>,
    /// Scripted: the script file.
    pub script: Option<PathBuf>,
    /// Attempts per request before giving up (default 5).
    pub max_attempts: Option<u32>,
    /// First retry wait in milliseconds, doubling each time (default 500).
    pub retry_base_ms: Option<u64>,
}

impl ProviderConfig {
    /// Take every field `later` sets.
    pub fn merge(&mut self, later: ProviderConfig) {
        macro_rules! take {
            ($($f:ident),*) => { $( if later.$f.is_some() { self.$f = later.$f; } )* };
        }
        take!(
            kind,
            model,
            base_url,
            max_tokens,
            max_turns,
            token_budget,
            text_tool_calls,
            constrained,
            script,
            max_attempts,
            retry_base_ms
        );
    }
}

/// `policy = "name"` or `policy = ["a", "b"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    policy: Option<OneOrMany>,
    #[serde(default)]
    provider: ProviderConfig,
    #[serde(default)]
    plugins: BTreeMap<String, PluginConfig>,
    #[serde(default)]
    limits: LimitsConfig,
}

/// The merged configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Policy plugins every tool call passes (empty: the built-in `default`).
    pub policy: Vec<String>,
    pub provider: ProviderConfig,
    pub plugins: BTreeMap<String, PluginConfig>,
    pub limits: LimitsConfig,
    /// The files that were read, in order.
    pub sources: Vec<PathBuf>,
}

/// A config file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    pub file: PathBuf,
    pub message: String,
}

impl Config {
    /// Read the user's config (if `user_dir` has one) and then the project's `.cove/config.toml`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file and what is wrong in it. A missing file is not an error.
    pub fn load(user_dir: Option<&Path>, worktree_root: &Path) -> Result<Self, ConfigError> {
        let mut config = Config::default();
        let files = user_dir
            .map(|d| d.join("config.toml"))
            .into_iter()
            .chain(std::iter::once(
                worktree_root.join(".cove").join("config.toml"),
            ));
        for file in files {
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(ConfigError {
                        file,
                        message: e.to_string(),
                    });
                }
            };
            config.merge_text(&text, &file)?;
        }
        Ok(config)
    }

    /// Merge one file's text over what is already here.
    ///
    /// # Errors
    /// A [`ConfigError`] when the text is not a valid config.
    pub fn merge_text(&mut self, text: &str, file: &Path) -> Result<(), ConfigError> {
        let parsed: ConfigFile = toml::from_str(text).map_err(|e| ConfigError {
            file: file.to_path_buf(),
            message: format!(
                "{}; sections are [provider] (kind, model, base_url, max_tokens, max_turns, token_budget), [plugins.NAME] (enabled, fs, search, exec, ast, net, timeout_ms, memory_mb, output_kb) and [limits]",
                e.message()
            ),
        })?;
        self.provider.merge(parsed.provider);
        match parsed.policy {
            Some(OneOrMany::One(p)) => self.policy = vec![p],
            Some(OneOrMany::Many(ps)) => self.policy = ps,
            None => {}
        }
        for (name, pc) in parsed.plugins {
            self.plugins.entry(name).or_default().merge(pc);
        }
        let l = parsed.limits;
        self.limits.timeout_ms = l.timeout_ms.or(self.limits.timeout_ms);
        self.limits.memory_mb = l.memory_mb.or(self.limits.memory_mb);
        self.limits.output_kb = l.output_kb.or(self.limits.output_kb);
        self.sources.push(file.to_path_buf());
        Ok(())
    }

    /// Settings for one plugin (empty when the config says nothing of it).
    pub fn plugin(&self, name: &str) -> PluginConfig {
        self.plugins.get(name).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_layers_win_field_by_field() -> Result<(), ConfigError> {
        let mut c = Config::default();
        c.merge_text(
            "[plugins.fs]\nenabled = false\ntimeout_ms = 5\n[limits]\nmemory_mb = 64",
            Path::new("user"),
        )?;
        c.merge_text("[plugins.fs]\nenabled = true\n", Path::new("project"))?;
        let fs = c.plugin("fs");
        assert_eq!(fs.enabled, Some(true));
        assert_eq!(fs.timeout_ms, Some(5));
        assert_eq!(c.limits.memory_mb, Some(64));
        assert_eq!(c.plugin("other"), PluginConfig::default());
        Ok(())
    }

    #[test]
    fn unknown_plugin_field_is_an_error_naming_the_file() {
        let mut c = Config::default();
        let e = c.merge_text(
            "[plugins.fs]\nwrite = true\n",
            Path::new("/x/.cove/config.toml"),
        );
        let msg = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.starts_with("/x/.cove/config.toml:") && msg.contains("write"),
            "{msg}"
        );
    }
}
