//! The `memory` plugin: the `remember` tool, through the host's `memory` capability.
//!
//! The host owns the files (`.agent_memory.md` at the worktree root, `memory.md` in the user's
//! config directory), the date and de-duplication. This plugin owns the tool surface: its
//! parameters and when the model should use it. It must not touch files itself.

use cove_plugin_sdk::memory::{self, Scope};
use cove_plugin_sdk::{Tool, ToolError, tools};
use schemars::JsonSchema;
use serde::Deserialize;

/// Longest fact kept: a memory entry is one line, not a document.
const MAX_FACT: usize = 500;

#[derive(Deserialize, JsonSchema, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum ScopeInput {
    /// This repository (default).
    #[default]
    Project,
    /// Every project of this user.
    User,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RememberInput {
    /// The fact, one self-contained sentence.
    fact: String,
    /// project (default) or user.
    #[serde(default)]
    scope: ScopeInput,
}

struct Remember;
impl Tool for Remember {
    type Input = RememberInput;
    type Output = String;
    const NAME: &'static str = "remember";
    const DESCRIPTION: &'static str = "Keep a fact for later sessions (how to build or test, a convention, a decision and \
        why): it goes into the system prompt of every later session. scope user: about the user, for all projects.";
    const READ_ONLY: bool = false;

    fn run(input: RememberInput) -> Result<String, ToolError> {
        let fact = input.fact.trim();
        if fact.is_empty() {
            return Err(ToolError::InvalidInput("`fact` is empty".into()));
        }
        if fact.len() > MAX_FACT {
            return Err(ToolError::InvalidInput(format!(
                "`fact` is {} bytes; keep it to one sentence (at most {MAX_FACT})",
                fact.len()
            )));
        }
        let scope = match input.scope {
            ScopeInput::Project => Scope::Project,
            ScopeInput::User => Scope::User,
        };
        memory::remember(fact, scope).map_err(ToolError::Failed)
    }
}

tools!(Remember);
