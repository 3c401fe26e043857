//! The scripted provider: replays model turns from a file, for the offline demo, tests and
//! replaying a bug without a model.
//!
//! A script is JSON: `{"turns": [{"text": "…", "tool_calls": [{"name": "read", "input": {…}}]}, …]}`.
//! Each request takes the next turn. Must not look at the request beyond counting it.

use super::{BoxFuture, Event, Provider, ProviderError, Reply, Request};
use crate::conversation::{Block, Message, Role, StopReason, Usage};
use serde::Deserialize;
use std::sync::Mutex;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedCall {
    pub name: String,
    #[serde(default)]
    pub input: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedTurn {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub tool_calls: Vec<ScriptedCall>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    pub turns: Vec<ScriptedTurn>,
}

/// Replays a [`Script`].
pub struct Scripted {
    turns: Vec<ScriptedTurn>,
    next: Mutex<usize>,
}

impl Scripted {
    pub fn new(script: Script) -> Self {
        Self {
            turns: script.turns,
            next: Mutex::new(0),
        }
    }

    /// Read a script file.
    ///
    /// # Errors
    /// [`ProviderError::Script`] naming the file and what is wrong with it.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ProviderError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ProviderError::Script(format!("cannot read script {}: {e}", path.display()))
        })?;
        let script: Script = serde_json::from_str(&text).map_err(|e| {
            ProviderError::Script(format!(
                "{}: {e}; a script looks like {{\"turns\": [{{\"text\": \"…\", \"tool_calls\": [{{\"name\": \"read\", \"input\": {{…}}}}]}}]}}",
                path.display()
            ))
        })?;
        Ok(Self::new(script))
    }
}

impl Provider for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    fn send<'a>(
        &'a self,
        req: Request<'a>,
        on: &'a mut (dyn FnMut(Event<'_>) + Send),
    ) -> BoxFuture<'a, Result<Reply, ProviderError>> {
        Box::pin(async move {
            let index = {
                let mut next = self
                    .next
                    .lock()
                    .map_err(|_| ProviderError::Script("script state poisoned".into()))?;
                let i = *next;
                *next += 1;
                i
            };
            on(Event::Sending);
            on(Event::Accepted);
            let turn = self.turns.get(index).ok_or_else(|| {
                ProviderError::Script(format!(
                    "the script has {} turns and request {} asked for another",
                    self.turns.len(),
                    index + 1
                ))
            })?;
            let mut content = Vec::new();
            if !turn.text.is_empty() {
                on(Event::Text(&turn.text));
                content.push(Block::Text {
                    text: turn.text.clone(),
                });
            }
            for (i, call) in turn.tool_calls.iter().enumerate() {
                on(Event::ToolUse { name: &call.name });
                let input = if call.input.is_null() {
                    serde_json::json!({})
                } else {
                    call.input.clone()
                };
                content.push(Block::ToolUse {
                    id: format!("toolu_{index:03}_{i}"),
                    name: call.name.clone(),
                    input,
                });
            }
            let stop = if turn.tool_calls.is_empty() {
                StopReason::EndTurn
            } else {
                StopReason::ToolUse
            };
            // A rough count so budgets and reports behave as with a real model: ~4 bytes a token.
            let prompt_bytes = req.system.len()
                + req
                    .messages
                    .iter()
                    .map(|m| serde_json::to_string(m).map_or(0, |s| s.len()))
                    .sum::<usize>();
            let usage = Usage {
                input_tokens: (prompt_bytes / 4) as u64,
                output_tokens: (turn.text.len() / 4) as u64 + 1,
                ..Usage::default()
            };
            Ok(Reply {
                message: Message {
                    role: Role::Assistant,
                    content,
                },
                stop,
                usage,
                malformed_call: None,
            })
        })
    }
}
