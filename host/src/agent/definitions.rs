//! Agent definitions: what kinds of subagent the `task` tool can start.
//!
//! Owns reading them, Claude Code-compatible: a markdown file per agent with YAML front matter
//! (`name`, `description`, `tools`, `model`, and cove's own `policy`) and the agent's system
//! prompt after it, from `.cove/agents/` and `.claude/agents/` in the repository, then the user's
//! `agents/` in cove's config directory and Claude Code's, then the built-ins `general` and
//! `explorer`; an earlier place wins a name. A definition can only narrow: its `tools` pick from
//! the parent's, and its `policy` is added to the parent's policies (deny beats ask beats allow),
//! so no definition, a repository's included, gives a subagent more than its parent has. A
//! broken file is reported and skipped. Must not start agents (`subagent` does).

use crate::config::OneOrMany;
use crate::context::skills::{AllowedTools, ToolRule, split_front_matter};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The largest definition file read.
const MAX_FILE: u64 = 1024 * 1024;

/// The definition used when a `task` call names none.
pub const GENERAL: &str = "general";
/// The built-in read-only explorer.
pub const EXPLORER: &str = "explorer";
/// The policy that makes an agent read-only.
pub const READ_ONLY: &str = "read-only";

/// Where a definition comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    BuiltIn,
    File(PathBuf),
}

/// One kind of subagent.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Definition {
    pub name: String,
    pub description: String,
    /// The tools it gets, in cove's names (`None`: every tool its parent has).
    pub tools: Option<Vec<String>>,
    /// Its model (`None` or `inherit`: its parent's).
    pub model: Option<String>,
    /// Policies added to its parent's for it.
    pub policy: Vec<String>,
    /// Its system prompt, after cove's own.
    pub prompt: String,
    pub origin: Origin,
}

impl Definition {
    /// Whether it is held to reading: its policy says so, or it has no tool that writes.
    pub fn read_only(&self, tool_is_read_only: impl Fn(&str) -> bool) -> bool {
        self.policy.iter().any(|p| p == READ_ONLY)
            || self
                .tools
                .as_ref()
                .is_some_and(|t| t.iter().all(|n| tool_is_read_only(n)))
    }
}

/// The front matter keys cove reads; others (Claude Code's `color`, …) are ignored.
#[derive(Deserialize)]
struct Front {
    name: Option<String>,
    description: Option<String>,
    tools: Option<OneOrMany>,
    model: Option<String>,
    policy: Option<OneOrMany>,
}

/// Every definition of a workspace.
#[derive(Debug, Clone, Default)]
pub struct Definitions {
    list: Vec<Definition>,
    problems: Vec<String>,
}

fn built_in() -> Vec<Definition> {
    vec![
        Definition {
            name: GENERAL.into(),
            description: "General-purpose: researches, edits and runs commands on its own, in its own copy of the repository; its changes are merged back when it finishes".into(),
            tools: None,
            model: None,
            policy: Vec::new(),
            prompt: "You are a subagent started for one task. Do it completely with your tools, then answer with what you found or changed, concisely: your answer is all the agent that started you will see.".into(),
            origin: Origin::BuiltIn,
        },
        Definition {
            name: EXPLORER.into(),
            description: "Read-only: finds files, searches and reads code, answers questions about it; changes nothing".into(),
            tools: Some(
                ["read", "ls", "grep", "glob", "outline", "find_symbol"]
                    .map(String::from)
                    .to_vec(),
            ),
            model: None,
            policy: vec![READ_ONLY.into()],
            prompt: "You are a read-only subagent exploring a codebase for one question. Search and read as much as you need, then answer precisely, naming files and lines: your answer is all the agent that started you will see.".into(),
            origin: Origin::BuiltIn,
        },
    ]
}

impl Definitions {
    /// Read every place, in order (see the module's docs): the repository at `root`, the
    /// user's `user_dir` (cove's config directory) and `claude_dir` (Claude Code's).
    pub fn discover(root: &Path, user_dir: Option<&Path>, claude_dir: Option<&Path>) -> Self {
        let mut out = Self::default();
        // The repository's through its wall (a link out is not followed); the user's own as is.
        for rel in [".cove/agents", ".claude/agents"] {
            let Ok(names) = crate::worktree::list_within(root, Path::new(rel)) else {
                continue;
            };
            for name in names.iter().filter(|n| n.ends_with(".md")) {
                let rel = Path::new(rel).join(name);
                let file = root.join(&rel);
                let parsed = crate::worktree::read_within(root, &rel, MAX_FILE)
                    .map_err(|e| format!("{}: {e}", file.display()))
                    .and_then(|bytes| {
                        String::from_utf8(bytes)
                            .map_err(|_| format!("{}: not UTF-8 text", file.display()))
                    })
                    .and_then(|text| parse(&text, &file));
                out.take(parsed);
            }
        }
        let mut dirs = Vec::new();
        dirs.extend(user_dir.map(|d| d.join("agents")));
        dirs.extend(claude_dir.map(|d| d.join("agents")));
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "md") && p.is_file())
                .collect();
            files.sort();
            for file in files {
                let parsed = std::fs::read_to_string(&file)
                    .map_err(|e| format!("{}: {e}", file.display()))
                    .and_then(|text| parse(&text, &file));
                out.take(parsed);
            }
        }
        for d in built_in() {
            if out.get(&d.name).is_none() {
                out.list.push(d);
            }
        }
        out.list.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Keep a parsed definition unless an earlier place had its name; keep a problem as one.
    fn take(&mut self, parsed: Result<Definition, String>) {
        match parsed {
            Ok(d) if self.get(&d.name).is_none() => self.list.push(d),
            Ok(_) => {}
            Err(e) => self.problems.push(e),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Definition> {
        self.list.iter().find(|d| d.name == name)
    }

    pub fn all(&self) -> &[Definition] {
        &self.list
    }

    /// Files that could not be read as definitions (`FILE: what is wrong`).
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

/// Parse one definition file.
///
/// # Errors
/// `FILE: what is wrong; the fix`.
pub fn parse(text: &str, file: &Path) -> Result<Definition, String> {
    let at = file.display();
    let Some((yaml, _, body)) = split_front_matter(text) else {
        return Err(format!(
            "{at}: no front matter; start the file with a `---` line, `name:` and `description:`, then a closing `---` line and the agent's system prompt"
        ));
    };
    let options = serde_saphyr::options! { with_snippet: false };
    let front: Front = serde_saphyr::from_str_with_options(yaml, options).map_err(|e| {
        let message = e.to_string();
        format!(
            "{at}: the front matter is not valid YAML ({}); quote a value that holds `: ` or `#`",
            message.lines().next().unwrap_or_default()
        )
    })?;
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = front.name.unwrap_or(stem);
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "{at}: name `{name}` must be letters, digits, `-` and `_`"
        ));
    }
    let Some(description) = front.description.filter(|d| !d.trim().is_empty()) else {
        return Err(format!(
            "{at}: no `description`; add one saying when to use this agent"
        ));
    };
    let tools = front.tools.map(|t| {
        let (allowed, _) = AllowedTools::parse(&t.into_vec());
        let mut names: Vec<String> = allowed
            .rules
            .into_iter()
            .map(|r| match r {
                ToolRule::Tool(n) => n,
                ToolRule::Bash(_) => "bash".into(),
            })
            .collect();
        names.dedup();
        names
    });
    let policy = front.policy.map(OneOrMany::into_vec).unwrap_or_default();
    let model = front
        .model
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty() && m != "inherit");
    Ok(Definition {
        name,
        description: description.split_whitespace().collect::<Vec<_>>().join(" "),
        tools,
        model,
        policy,
        prompt: body.trim().to_string(),
        origin: Origin::File(file.to_path_buf()),
    })
}

/// A Claude Code model alias (`sonnet`, `opus`, `haiku`) as the Anthropic model it names; any
/// other name as it is.
pub fn model_name(alias: &str) -> &str {
    match alias {
        "sonnet" => "claude-sonnet-4-5",
        "opus" => "claude-opus-4-1",
        "haiku" => "claude-haiku-4-5",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_code_definitions_read_as_cove_ones() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let agents = tmp.path().join(".claude/agents");
        std::fs::create_dir_all(&agents)?;
        std::fs::write(
            agents.join("reviewer.md"),
            "---\nname: reviewer\ndescription: Reviews\n  a diff\ntools: Read, Grep, Bash\nmodel: inherit\ncolor: blue\n---\nYou review.\n",
        )?;
        std::fs::write(
            agents.join("broken.md"),
            "---\ndescription: [unclosed\n---\n",
        )?;
        let cove = tmp.path().join(".cove/agents");
        std::fs::create_dir_all(&cove)?;
        std::fs::write(
            cove.join("explorer.md"),
            "---\ndescription: Mine\npolicy: [read-only, default]\n---\nLook only.\n",
        )?;
        let defs = Definitions::discover(tmp.path(), None, None);
        let r = defs.get("reviewer").ok_or("reviewer")?;
        assert_eq!(
            r.tools.as_deref(),
            Some(&["read".to_string(), "grep".into(), "bash".into()][..])
        );
        assert_eq!(r.model, None);
        assert_eq!(r.description, "Reviews a diff");
        assert_eq!(r.prompt, "You review.");
        // The repository's own explorer wins the name, and keeps its policies.
        let e = defs.get(EXPLORER).ok_or("explorer")?;
        assert_eq!(e.description, "Mine");
        assert_eq!(e.policy, vec!["read-only".to_string(), "default".into()]);
        assert!(e.read_only(|_| false));
        assert!(defs.get(GENERAL).is_some_and(|g| !g.read_only(|_| false)));
        assert_eq!(defs.problems().len(), 1, "{:?}", defs.problems());
        assert!(defs.problems()[0].contains("broken.md"));
        Ok(())
    }
}
