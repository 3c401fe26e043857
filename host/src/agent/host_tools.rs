//! Host tools: tools the host answers itself, offered beside the plugin tools.
//!
//! Owns the mechanism: a [`HostTool`] has a definition (name, description, input schema) and a
//! read-only flag, and answers a call with a result and, optionally, an [`Effect`] on the agent
//! (the loop applies it and records it). A host tool's call passes the same policy gate as a
//! plugin tool's (it takes a [`Permitted`] call; policies see plugin [`PLUGIN`]) and the same
//! input validation as dispatch's. Host tools are offered after the plugin tools, in the order
//! they were added. They read what the loop hands them ([`HostCx`]: the conversation so far, the
//! active skills), never the agent itself. Also owns the `skill` tool and the `recall` tool (over
//! the compressor's archive).
//!
//! Must not run plugin tools (dispatch does) or decide permissions (the gate does). A host tool
//! runs on the loop's thread, between the calls around it: it must be quick or say why not.

use crate::agent::dispatch::{ToolResult, checked_input};
use crate::agent::policy::Permitted;
use crate::context::skills::{Activation, Active, Body, Catalog};
use crate::conversation::{Message, ToolDef};
use crate::plugins::registry::Registry;
use std::sync::{Arc, OnceLock};

/// The plugin name policies see for a host tool.
pub const PLUGIN: &str = "cove";
/// The `skill` tool's name.
pub const SKILL: &str = "skill";
pub use crate::context::compress::RECALL;
/// Every host tool this cove has, with its read-only flag (what the gate tells policies).
/// `task` counts as read-only: it changes nothing itself, and what its subagent may change is
/// decided by the subagent's own gate, which holds the parent's policies and more; so do `ask`
/// and `send`, whose teammate's own gate holds its lead's policies and its own.
pub const HOST_TOOLS: &[(&str, bool)] = &[
    (SKILL, true),
    (RECALL, true),
    (crate::agent::subagent::TASK, true),
    (crate::team::tools::ASK, true),
    (crate::team::tools::SEND, true),
    (TOOL_SEARCH, true),
];

/// The `tool_search` tool's name: MCP tools offered by name until their schemas are asked for.
pub const TOOL_SEARCH: &str = "tool_search";

/// Whether host tool `name` is read-only; `None` when there is no such host tool.
pub fn read_only(name: &str) -> Option<bool> {
    HOST_TOOLS.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

/// What a host tool may read of the agent's state for one call.
pub struct HostCx<'a> {
    /// The conversation so far (the turn under way is not in it yet).
    pub messages: &'a [Message],
    /// The skills active in the session.
    pub skills: &'a Active,
}

/// What a host tool's call changes in the agent, applied by the loop and kept in the transcript.
#[derive(Debug)]
pub enum Effect {
    /// A skill is loaded: it becomes active, its `allowed-tools` apply and the tools it bundles
    /// (with their read-only flags) are offered from the next request on.
    ActivateSkill {
        activation: Activation,
        tools: Vec<(ToolDef, bool)>,
    },
    /// Tools found by `tool_search`, offered from the next request on (appended); they may
    /// change things.
    OfferTools(Vec<ToolDef>),
}

/// A host tool's answer: the result for the model and what it changes.
#[derive(Debug)]
pub struct HostAnswer {
    pub result: ToolResult,
    pub effect: Option<Effect>,
}

impl HostAnswer {
    fn error(text: String) -> Self {
        Self {
            result: ToolResult::error(text),
            effect: None,
        }
    }
}

/// A tool the host answers itself.
pub trait HostTool: Send + Sync {
    /// Name, description and input schema, as the model is offered them. Its name must be in
    /// [`HOST_TOOLS`].
    fn def(&self) -> &ToolDef;
    /// Answer one call whose input already fits the schema.
    fn call(&self, input: serde_json::Value, cx: &HostCx<'_>) -> HostAnswer;
}

struct Entry {
    tool: Arc<dyn HostTool>,
    validator: OnceLock<Result<jsonschema::Validator, String>>,
}

/// The host tools an agent offers, in a fixed order.
#[derive(Default)]
pub struct HostTools {
    tools: Vec<Entry>,
}

impl HostTools {
    /// Offer `tool` after the ones added before.
    ///
    /// # Errors
    /// When its name is not listed in [`HOST_TOOLS`] (the gate would not know it) or is taken.
    pub fn add(&mut self, tool: Arc<dyn HostTool>) -> Result<(), String> {
        let name = tool.def().name.clone();
        if read_only(&name).is_none() || self.get(&name).is_some() {
            return Err(format!(
                "host tool `{name}` is not listed in HOST_TOOLS or is added twice"
            ));
        }
        self.tools.push(Entry {
            tool,
            validator: OnceLock::new(),
        });
        Ok(())
    }

    fn get(&self, name: &str) -> Option<&Entry> {
        self.tools.iter().find(|e| e.tool.def().name == name)
    }

    /// Whether `name` is one of these host tools.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Their definitions, in order.
    pub fn defs(&self) -> Vec<ToolDef> {
        self.tools.iter().map(|e| e.tool.def().clone()).collect()
    }

    /// Run a permitted call of one of these tools: its input is checked against the schema as
    /// dispatch checks a plugin tool's, then the tool answers.
    pub fn call(&self, call: Permitted, cx: &HostCx<'_>) -> HostAnswer {
        let call = call.into_call();
        let Some(entry) = self.get(&call.tool) else {
            return HostAnswer::error(format!("`{}` is not a host tool", call.tool));
        };
        let def = entry.tool.def();
        let validator = entry.validator.get_or_init(|| {
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft7)
                .build(&def.input_schema)
                .map_err(|e| format!("host tool `{}` has an invalid schema: {e}", def.name))
        });
        let validator = match validator {
            Ok(v) => v,
            Err(why) => return HostAnswer::error(why.clone()),
        };
        let schema = def.input_schema.to_string();
        match checked_input(&def.name, &call.input, validator, &schema) {
            Ok((value, _)) => entry.tool.call(value, cx),
            Err(result) => HostAnswer {
                result,
                effect: None,
            },
        }
    }
}

/// Most bytes of one file of a skill folder outside the worktree given inline, and of all of them.
const INLINE_FILE: usize = 8 * 1024;
const INLINE_TOTAL: usize = 24 * 1024;

/// The files of a skill folder outside the worktree (a user's skill), which `read` cannot open:
/// their text inline, each up to [`INLINE_FILE`] and all up to [`INLINE_TOTAL`]; binary files and
/// what does not fit are only named. Its scripts cannot run from there (`bash` runs in the
/// worktree), and the model is told so.
fn inline_files(dir: &std::path::Path, files: &[String]) -> String {
    let mut out = format!(
        "Files that come with it, in {} (outside the worktree: `read` cannot open them and `bash` cannot run them there, so their text is given here):\n",
        dir.display()
    );
    let mut used = 0usize;
    let mut named = Vec::new();
    for f in files {
        let text = std::fs::read(dir.join(f))
            .ok()
            .filter(|b| !b.contains(&0))
            .and_then(|b| String::from_utf8(b).ok());
        match text {
            Some(t) if t.len() <= INLINE_FILE && used + t.len() <= INLINE_TOTAL => {
                used += t.len();
                out.push_str(&format!("<file path=\"{f}\">\n{}\n</file>\n", t.trim_end()));
            }
            _ => named.push(f.as_str()),
        }
    }
    if !named.is_empty() {
        out.push_str(&format!(
            "Also there (binary or too long to give here): {}\n",
            named.join(", ")
        ));
    }
    out
}

/// The `recall` tool: the full text of a result the compressor took out of the context.
pub struct RecallTool {
    def: ToolDef,
    compressor: Arc<std::sync::Mutex<crate::context::compress::Compressor>>,
}

impl RecallTool {
    pub fn new(compressor: Arc<std::sync::Mutex<crate::context::compress::Compressor>>) -> Self {
        Self {
            def: crate::context::compress::Compressor::recall_tool(),
            compressor,
        }
    }
}

impl HostTool for RecallTool {
    fn def(&self) -> &ToolDef {
        &self.def
    }

    fn call(&self, input: serde_json::Value, _cx: &HostCx<'_>) -> HostAnswer {
        let answer = match self.compressor.lock() {
            Ok(c) => c.recall(&input.to_string()),
            Err(_) => Err("the compressor's archive is unavailable".into()),
        };
        match answer {
            Ok(text) => HostAnswer {
                result: ToolResult::ok(text),
                effect: None,
            },
            Err(why) => HostAnswer::error(why),
        }
    }
}

/// A skill the `skill` tool loaded: the text for the model, what becomes active, and the tools
/// it bundles with their read-only flags.
#[derive(Debug)]
pub struct SkillLoad {
    pub text: String,
    pub activation: Activation,
    pub tools: Vec<(ToolDef, bool)>,
}

/// The `skill` tool: loads a skill of the catalog by name.
pub struct SkillTool {
    def: ToolDef,
    catalog: Arc<Catalog>,
    registry: Arc<Registry>,
}

impl SkillTool {
    pub fn new(catalog: Arc<Catalog>, registry: Arc<Registry>) -> Self {
        Self {
            def: ToolDef {
                name: SKILL.into(),
                description: "Load a skill from the skills index in the system prompt: its instructions, and the files \
                    in its folder (read them with `read`; run its scripts only with `bash`). Load a skill before a task it matches."
                    .into(),
                input_schema: serde_json::json!({
                    "type": "object",
                    "properties": {"name": {"type": "string", "description": "The skill's name, as the index lists it."}},
                    "required": ["name"],
                    "additionalProperties": false
                }),
            },
            catalog,
            registry,
        }
    }

    /// Load skill `name`: the text for the model, and what becomes active.
    ///
    /// # Errors
    /// The text for the model: no such skill, or a skill plugin that would not load.
    pub fn load(&self, name: &str) -> Result<SkillLoad, String> {
        let Some(skill) = self.catalog.get(name) else {
            let names: Vec<&str> = self
                .catalog
                .skills()
                .iter()
                .map(|s| s.name.as_str())
                .collect();
            return Err(format!(
                "no skill `{name}`; the skills are: {}",
                names.join(", ")
            ));
        };
        let root = self.registry.worktree().root();
        let allowed = skill
            .allowed_tools
            .as_ref()
            .map(|a| format!(" While it is active, only these tools may run (its allowed-tools): {}; `skill` always may.", a.describe()))
            .unwrap_or_default();
        let (body, tools) = match &skill.body {
            Body::Markdown { dir, text } => {
                let files = crate::context::skills::files(dir);
                let mut out = format!("<skill name=\"{name}\">\n{text}\n</skill>\n");
                if !files.is_empty() {
                    match dir.strip_prefix(root) {
                        Ok(rel) => {
                            out.push_str("Files that come with it (read them with `read`; run its scripts only with `bash`):\n");
                            for f in &files {
                                out.push_str(&format!("- {}\n", rel.join(f).display()));
                            }
                        }
                        Err(_) => out.push_str(&inline_files(dir, &files)),
                    }
                }
                (out, Vec::new())
            }
            Body::Wasm { plugin } => {
                let Some(p) = self.registry.skill_plugin(plugin) else {
                    return Err(format!(
                        "skill `{name}`: its plugin `{plugin}` is not enabled"
                    ));
                };
                let (text, tools) = self
                    .registry
                    .skill_instructions(p)
                    .map_err(|e| format!("skill `{name}` could not be loaded: {e}"))?;
                let mut out = format!(
                    "<skill name=\"{name}\">\n{}\n</skill>\n",
                    text.instructions.trim()
                );
                if !tools.is_empty() {
                    let names: Vec<&str> = tools.iter().map(|(d, _)| d.name.as_str()).collect();
                    out.push_str(&format!(
                        "Tools it brings, offered from now on: {}\n",
                        names.join(", ")
                    ));
                }
                (out, tools)
            }
        };
        let text = format!("Skill `{name}` is loaded.{allowed}\n{body}");
        let activation = Activation {
            name: name.to_string(),
            text: body,
            allowed_tools: skill.allowed_tools.clone(),
            tools: tools.iter().map(|(d, _)| d.name.clone()).collect(),
        };
        Ok(SkillLoad {
            text,
            activation,
            tools,
        })
    }
}

impl HostTool for SkillTool {
    fn def(&self) -> &ToolDef {
        &self.def
    }

    fn call(&self, input: serde_json::Value, cx: &HostCx<'_>) -> HostAnswer {
        let name = input["name"].as_str().unwrap_or_default().trim();
        match self.load(name) {
            Ok(SkillLoad {
                text,
                activation,
                tools,
            }) => HostAnswer {
                result: ToolResult::ok(text),
                // Loading it again gives the text again and changes nothing.
                effect: cx
                    .skills
                    .get(name)
                    .is_none()
                    .then_some(Effect::ActivateSkill { activation, tools }),
            },
            Err(why) => HostAnswer::error(why),
        }
    }
}

/// The `tool_search` tool: when the MCP servers' tools would take more of the prompt than
/// `[mcp] eager_tokens`, the model sees their names and one-line descriptions here, and a search
/// gives the full schemas of the matching ones, which are offered from then on.
pub struct ToolSearch {
    hub: Arc<crate::mcp::hub::Hub>,
    def: ToolDef,
}

/// Most tools one search gives.
const MAX_FOUND: usize = 8;

impl ToolSearch {
    /// Over `hub`'s servers, listing the tools up now (more are found as servers come up).
    pub fn new(hub: Arc<crate::mcp::hub::Hub>) -> Self {
        let listing: String = hub
            .defs()
            .iter()
            .map(|d| format!("\n- {}: {}", d.name, first_sentence(&d.description)))
            .collect();
        let def = ToolDef {
            name: TOOL_SEARCH.into(),
            description: format!(
                "Find tools of the MCP servers by words of their names or descriptions; gives their full input schemas, and offers them from then on. Call it before using one of these:{listing}"
            ),
            input_schema: serde_json::json!({
                "type": "object",
                "properties": {"query": {"type": "string", "description": "Words to look for, or a tool's exact name"}},
                "required": ["query"]
            }),
        };
        Self { hub, def }
    }
}

/// What the listing says of a tool: the first sentence of its description (its first line when
/// that is shorter), at most 100 bytes and `…`. The full description comes with the schema.
fn first_sentence(description: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 100;
    let line = description.lines().next().unwrap_or("").trim();
    let sentence = match line.find(". ") {
        Some(end) => &line[..=end],
        None => line,
    };
    if sentence.len() <= MAX {
        return sentence.into();
    }
    let end = crate::plugins::runtime::floor_char_boundary(sentence, MAX);
    format!("{}…", &sentence[..end]).into()
}

impl HostTool for ToolSearch {
    fn def(&self) -> &ToolDef {
        &self.def
    }

    fn call(&self, input: serde_json::Value, _cx: &HostCx<'_>) -> HostAnswer {
        let query = input["query"].as_str().unwrap_or("").to_lowercase();
        let words: Vec<&str> = query.split_whitespace().collect();
        let all = self.hub.defs();
        let mut scored: Vec<(usize, ToolDef)> = all
            .into_iter()
            .filter_map(|d| {
                let name = d.name.to_lowercase();
                if name == query {
                    return Some((usize::MAX, d));
                }
                let text = format!("{name} {}", d.description.to_lowercase());
                let score = words.iter().filter(|w| text.contains(**w)).count();
                (score > 0).then_some((score, d))
            })
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
        let found: Vec<ToolDef> = scored.into_iter().take(MAX_FOUND).map(|(_, d)| d).collect();
        if found.is_empty() {
            return HostAnswer::error(format!(
                "no MCP tool matches {query:?}; the tools are listed in this tool's description"
            ));
        }
        let text = found
            .iter()
            .map(|d| {
                format!(
                    "{}: {}\ninput schema: {}",
                    d.name, d.description, d.input_schema
                )
            })
            .collect::<Vec<_>>()
            .join("\n\n");
        HostAnswer {
            result: ToolResult::ok(format!("{text}\n\n(These tools are offered from now on.)")),
            effect: Some(Effect::OfferTools(found)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_keeps_a_descriptions_first_sentence() {
        assert_eq!(
            first_sentence("List issues of a repository. Returns them as JSON, paginated."),
            "List issues of a repository."
        );
        assert_eq!(first_sentence("Get a file\nwith more lines"), "Get a file");
        assert_eq!(
            first_sentence("v1.2 of the API is used"),
            "v1.2 of the API is used"
        );
        let text = "é".repeat(300);
        let long = first_sentence(&text);
        assert!(long.len() <= 104 && long.ends_with('…'), "{long}");
    }

    struct Named(ToolDef);
    impl HostTool for Named {
        fn def(&self) -> &ToolDef {
            &self.0
        }
        fn call(&self, input: serde_json::Value, cx: &HostCx<'_>) -> HostAnswer {
            HostAnswer {
                result: ToolResult::ok(format!("{input} after {} messages", cx.messages.len())),
                effect: None,
            }
        }
    }

    fn named(name: &str) -> Arc<dyn HostTool> {
        Arc::new(Named(ToolDef {
            name: name.into(),
            description: "d".into(),
            input_schema: serde_json::json!({"type": "object", "required": ["name"]}),
        }))
    }

    #[test]
    fn a_skill_folder_outside_the_worktree_is_given_inline_within_caps()
    -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        std::fs::write(tmp.path().join("REFERENCE.md"), "REF-MARKER\n")?;
        std::fs::write(tmp.path().join("big.txt"), "x".repeat(INLINE_FILE + 1))?;
        std::fs::write(tmp.path().join("logo.png"), [0u8, 1, 2])?;
        let files = ["REFERENCE.md", "big.txt", "logo.png"].map(String::from);
        let out = inline_files(tmp.path(), &files);
        assert!(
            out.contains("<file path=\"REFERENCE.md\">\nREF-MARKER\n</file>"),
            "{out}"
        );
        assert!(out.contains("Also there (binary or too long to give here): big.txt, logo.png"));
        assert!(!out.contains("xxxx"));
        Ok(())
    }

    #[test]
    fn only_listed_host_tools_are_added_and_once() {
        let mut tools = HostTools::default();
        assert!(tools.add(named("remember")).is_err(), "not in HOST_TOOLS");
        assert!(tools.add(named(SKILL)).is_ok());
        assert!(tools.add(named(SKILL)).is_err(), "twice");
        assert!(tools.has(SKILL) && !tools.has("read"));
        assert_eq!(tools.defs().len(), 1);
        assert_eq!(read_only(SKILL), Some(true));
        assert_eq!(read_only("read"), None);
    }
}
