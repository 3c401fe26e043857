//! `plugin.toml`: what a plugin is and what it asks for.
//!
//! Owns parsing and checking one manifest, with errors that name the file, the field and the fix.
//! Must not read `.wasm` files or decide what is granted: that is the registry's and config's job.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// The three kinds of plugin the contract knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Tool,
    Skill,
    Policy,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Tool => "tool",
            Kind::Skill => "skill",
            Kind::Policy => "policy",
        })
    }
}

/// Access to the worktree through WASI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FsAccess {
    /// No preopened directory at all.
    None,
    /// The worktree, read-only.
    #[default]
    Read,
    /// The worktree, read-write (needs the project's grant too).
    ReadWrite,
}

impl fmt::Display for FsAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FsAccess::None => "none",
            FsAccess::Read => "read",
            FsAccess::ReadWrite => "read-write",
        })
    }
}

/// Capabilities a manifest asks for. Asking is one key; the config's grant is the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    #[serde(default)]
    pub fs: FsAccess,
    /// The host's native walk-and-match over the worktree.
    #[serde(default)]
    pub search: bool,
    /// Run processes in the OS sandbox.
    #[serde(default)]
    pub exec: bool,
    /// Tree-sitter parsing in the host.
    #[serde(default)]
    pub ast: bool,
    /// Append to the memory store (the project's and the user's). Built-in plugins only.
    #[serde(default)]
    pub memory: bool,
    /// Hosts the plugin may reach over HTTP.
    #[serde(default)]
    pub net: Vec<String>,
}

/// Resource limits a manifest may ask for (the config can override them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub timeout_ms: Option<u64>,
    pub memory_mb: Option<u64>,
    pub output_kb: Option<u64>,
}

/// One tool as the manifest lists it, so `cove tools list` needs no compilation.
///
/// A plain component's entries are optional: when there are some, only the functions they name
/// are offered, each with the entry's description (if it gives one) and read-only flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolEntry {
    pub name: String,
    /// One line for listings; the model gets the component's own description (a plain
    /// component's function gets this one, when given). Required for a cove plugin.
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub read_only: bool,
}

/// A parsed, checked `plugin.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub kind: Kind,
    /// The contract version the component was built against, e.g. `0.1.0`. None for a plain
    /// component: a tool plugin whose component exports plain typed functions (written for
    /// another host), each offered as a tool.
    #[serde(default)]
    pub contract: Option<String>,
    #[serde(default)]
    pub description: String,
    /// The component file, relative to the manifest (default `<name>.wasm`).
    #[serde(default)]
    pub component: Option<String>,
    #[serde(default)]
    pub capabilities: Capabilities,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default, rename = "tool")]
    pub tools: Vec<ToolEntry>,
    /// Set by the registry when it filled `tools` from a plain component's exports (the
    /// manifest listed none); never read from plugin.toml.
    #[serde(skip)]
    pub tools_from_component: bool,
    /// Samples `cove plugin test` runs; the host ignores them otherwise.
    #[serde(default, rename = "test", skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<TestCase>,
}

/// One sample for `cove plugin test`: a call of one of the plugin's tools (or, for a policy, a
/// call to decide about) and what must come of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// The tool called (a policy: the tool of the call it decides about).
    pub tool: String,
    /// The call's input (a table; default `{}`).
    #[serde(default = "empty_object")]
    pub input: serde_json::Value,
    /// A substring the result (a policy: the verdict's reason) must contain.
    #[serde(default)]
    pub expect: Option<String>,
    /// Whether the call must fail (tools; default false).
    #[serde(default)]
    pub error: bool,
    /// Policies: whether the call is read-only (default false).
    #[serde(default)]
    pub read_only: bool,
    /// Policies: the plugin the tool belongs to, as the policy is told (default `sample`).
    #[serde(default)]
    pub plugin: Option<String>,
    /// Policies: the verdict it must give.
    #[serde(default)]
    pub verdict: Option<Expected>,
}

/// The verdict a policy sample expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expected {
    Allow,
    Deny,
    Ask,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expected::Allow => "allow",
            Expected::Deny => "deny",
            Expected::Ask => "ask",
        })
    }
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// A manifest that could not be used, naming the file, the field and the fix.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ManifestError {
    pub file: PathBuf,
    pub message: String,
}

impl Manifest {
    /// Parse and check manifest text; `file` is only used in errors.
    ///
    /// # Errors
    /// A [`ManifestError`] naming the field at fault and how to fix it.
    pub fn parse(text: &str, file: &Path) -> Result<Self, ManifestError> {
        let err = |message: String| ManifestError {
            file: file.to_path_buf(),
            message,
        };
        let manifest: Manifest = toml::from_str(text).map_err(|e| {
            let span = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            err(format!(
                "{}{span}; a manifest needs name, version, kind (tool | skill | policy) and contract \
                 (left out for a plain component), and may have description, component, [capabilities], [limits], [[tool]] and [[test]] entries",
                e.message()
            ))
        })?;
        if !is_plugin_name(&manifest.name) {
            return Err(err(format!(
                "field `name`: `{}` is not a valid plugin name; use lowercase letters, digits, `-` and `_`",
                manifest.name
            )));
        }
        if manifest.contract.is_none() && manifest.kind != Kind::Tool {
            return Err(err(format!(
                "field `contract`: a {} plugin is built against cove's contract: add contract = \"0.1.0\" \
                 (only a tool plugin may leave it out, for a plain component)",
                manifest.kind
            )));
        }
        if manifest.kind == Kind::Tool && manifest.tools.is_empty() && !manifest.is_plain() {
            return Err(err(
                "a tool plugin lists its tools: add a [[tool]] entry with name, description and read_only for each".into(),
            ));
        }
        if manifest.kind == Kind::Skill && manifest.description.trim().is_empty() {
            return Err(err(
                "field `description`: a skill plugin describes itself in one line, shown in the skills index                  before it is loaded: add description = \"what it does and when to use it\""
                    .into(),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for t in &manifest.tools {
            if !is_tool_name(&t.name) {
                return Err(err(format!(
                    "field `tool.name`: `{}` is not a valid tool name; use letters, digits, `-` and `_` (at most 64)",
                    t.name
                )));
            }
            if t.description.trim().is_empty() && !manifest.is_plain() {
                return Err(err(format!(
                    "field `tool.description`: tool `{}` needs a one-line description",
                    t.name
                )));
            }
            if !seen.insert(t.name.as_str()) {
                return Err(err(format!(
                    "field `tool.name`: `{}` is listed twice",
                    t.name
                )));
            }
        }
        for (i, t) in manifest.tests.iter().enumerate() {
            let n = i + 1;
            if !t.input.is_object() {
                return Err(err(format!(
                    "test {n} (`{}`): field `input` must be a table, like input = {{ text = \"a b\" }}",
                    t.tool
                )));
            }
            if manifest.kind == Kind::Policy && t.error {
                return Err(err(format!(
                    "test {n} (`{}`): `error` is for tools; a policy's sample says its verdict = \"deny\" instead",
                    t.tool
                )));
            }
            match (manifest.kind, t.verdict) {
                (Kind::Policy, None) => {
                    return Err(err(format!(
                        "test {n} (`{}`): a policy's sample says what it must decide: add verdict = \"allow\" (or \"deny\", \"ask\")",
                        t.tool
                    )));
                }
                (Kind::Tool | Kind::Skill, Some(_)) => {
                    return Err(err(format!(
                        "test {n} (`{}`): `verdict` is for policies; a {} plugin's sample says `expect` and `error`",
                        t.tool, manifest.kind
                    )));
                }
                // A plain component without [[tool]] entries: its functions are its tools, and
                // only loading it says which (a sample naming another fails there).
                (Kind::Tool | Kind::Skill, None)
                    if !(manifest.is_plain() && manifest.tools.is_empty()
                        || manifest.tools.iter().any(|e| e.name == t.tool)) =>
                {
                    return Err(err(format!(
                        "test {n}: tool `{}` is not listed in a [[tool]] entry",
                        t.tool
                    )));
                }
                _ => {}
            }
        }
        if let Some(c) = &manifest.component
            && (Path::new(c).is_absolute() || c.contains(".."))
        {
            return Err(err(format!(
                "field `component`: `{c}` must be a file name beside plugin.toml"
            )));
        }
        for host in &manifest.capabilities.net {
            if host.is_empty() || host.contains('/') || host.contains(char::is_whitespace) {
                return Err(err(format!(
                    "field `capabilities.net`: `{host}` is not a host name; write hosts like \"api.example.com\""
                )));
            }
        }
        Ok(manifest)
    }

    /// Whether the component is a plain one (no `contract`): its exported functions are its tools.
    pub fn is_plain(&self) -> bool {
        self.contract.is_none()
    }

    /// The component file name beside the manifest.
    pub fn component_file(&self) -> String {
        self.component
            .clone()
            .unwrap_or_else(|| format!("{}.wasm", self.name))
    }
}

fn is_plugin_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Tool names as the model APIs accept them: `^[a-zA-Z0-9_-]{1,64}$`.
pub fn is_tool_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "fs"
version = "0.1.0"
kind = "tool"
contract = "0.1.0"
[capabilities]
fs = "read-write"
[[tool]]
name = "read"
description = "Read a file"
read_only = true
"#;

    #[test]
    fn parses_a_good_manifest() -> Result<(), ManifestError> {
        let m = Manifest::parse(GOOD, Path::new("plugin.toml"))?;
        assert_eq!(m.capabilities.fs, FsAccess::ReadWrite);
        assert_eq!(m.tools.len(), 1);
        assert_eq!(m.component_file(), "fs.wasm");
        Ok(())
    }

    #[test]
    fn a_tool_plugin_without_contract_is_a_plain_component() -> Result<(), ManifestError> {
        let plain = "name = \"filesystem\"\nversion = \"1.0.0\"\nkind = \"tool\"\n";
        let m = Manifest::parse(plain, Path::new("plugin.toml"))?;
        assert!(m.is_plain() && m.tools.is_empty());
        assert_eq!(m.capabilities.fs, FsAccess::Read);
        // Its [[tool]] entries may narrow and describe, without a description even.
        let m = Manifest::parse(
            &format!("{plain}[[tool]]\nname = \"read-file\"\nread_only = true\n"),
            Path::new("plugin.toml"),
        )?;
        assert!(m.tools[0].read_only && m.tools[0].description.is_empty());
        // A cove plugin's entry still needs one.
        let bad = GOOD.replace("description = \"Read a file\"\n", "");
        let e = Manifest::parse(&bad, Path::new("plugin.toml"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("field `tool.description`"), "{e}");
        // Skills and policies are always built against the contract.
        let e = Manifest::parse(
            &plain.replace("kind = \"tool\"", "kind = \"policy\""),
            Path::new("plugin.toml"),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            e.contains("field `contract`") && e.contains("policy"),
            "{e}"
        );
        Ok(())
    }

    #[test]
    fn errors_name_file_field_and_fix() {
        let bad = GOOD.replace("kind = \"tool\"", "kind = \"gadget\"");
        let e = Manifest::parse(&bad, Path::new("/p/plugin.toml"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.starts_with("/p/plugin.toml:"), "{e}");
        assert!(e.contains("gadget") && e.contains("line 4"), "{e}");

        let bad = GOOD.replace("name = \"fs\"", "name = \"Bad Name\"");
        let e = Manifest::parse(&bad, Path::new("plugin.toml"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("field `name`") && e.contains("lowercase"), "{e}");

        let bad = GOOD.replace("fs = \"read-write\"", "fs = \"everything\"");
        assert!(Manifest::parse(&bad, Path::new("plugin.toml")).is_err());

        let bad = GOOD.replace("[capabilities]", "[capabilities]\nnet = [\"http://x\"]");
        let e = Manifest::parse(&bad, Path::new("plugin.toml"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("capabilities.net"), "{e}");
    }

    #[test]
    fn test_samples_are_checked_against_the_kind() -> Result<(), ManifestError> {
        let with = |extra: &str| format!("{GOOD}\n{extra}");
        let m = Manifest::parse(
            &with("[[test]]\ntool = \"read\"\ninput = { path = \"a\", n = 2 }\nexpect = \"x\""),
            Path::new("plugin.toml"),
        )?;
        assert_eq!(m.tests.len(), 1);
        assert_eq!(m.tests[0].input, serde_json::json!({"path": "a", "n": 2}));
        assert!(!m.tests[0].error);
        let e = |text: &str| {
            Manifest::parse(&with(text), Path::new("plugin.toml"))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(e("[[test]]\ntool = \"nope\"").contains("not listed"));
        assert!(e("[[test]]\ntool = \"read\"\nverdict = \"deny\"").contains("for policies"));
        assert!(e("[[test]]\ntool = \"read\"\nwhat = 1").contains("what"));
        let policy = "name = \"p\"\nversion = \"1\"\nkind = \"policy\"\ncontract = \"0.2.0\"\n[[test]]\ntool = \"bash\"\n";
        let e = Manifest::parse(policy, Path::new("plugin.toml"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("verdict = \"allow\""), "{e}");
        let e = Manifest::parse(
            &format!("{policy}verdict = \"deny\"\nerror = true"),
            Path::new("p"),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("`error` is for tools"), "{e}");
        let m = Manifest::parse(&format!("{policy}verdict = \"ask\""), Path::new("p"))?;
        assert_eq!(m.tests[0].verdict, Some(Expected::Ask));
        Ok(())
    }
}
