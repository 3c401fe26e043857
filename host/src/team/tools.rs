//! The `ask` and `send` tools: how an agent on a team reaches its teammates.
//!
//! Owns the tools' definitions (the members one may reach, with what each is for), checking a
//! call's input, and turning what the post office did into the tool's result: the answer, or a
//! refusal, a timeout or a cancellation said plainly. `ask` waits for the answer; `send` does
//! not expect one. Must not send or wait itself (that is `team::post`), nor decide whether the
//! call may run (the policy gate did, before).

use crate::agent::dispatch::ToolResult;
use crate::conversation::ToolDef;
use crate::team::post::{Asked, Post};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub const ASK: &str = "ask";
pub const SEND: &str = "send";

/// A teammate one may reach, and what it is for.
#[derive(Debug, Clone)]
pub struct Reachable {
    pub name: String,
    pub description: String,
}

/// An agent's side of its team.
pub struct TeamTools {
    post: Arc<Post>,
    members: Vec<Reachable>,
    defs: [ToolDef; 2],
}

impl TeamTools {
    /// The tools of `post`'s member, reaching `members` (itself left out).
    pub fn new(post: Arc<Post>, members: Vec<Reachable>) -> Self {
        let members: Vec<Reachable> = members
            .into_iter()
            .filter(|m| m.name != post.me())
            .collect();
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        let list: String = members
            .iter()
            .map(|m| format!("\n- {}: {}", m.name, m.description))
            .collect();
        let defs = [
            ToolDef {
                name: ASK.into(),
                description: format!(
                    "Ask a teammate to do something and wait for its answer, which is this call's result. \
                     A teammate keeps its own context between requests and works in its own copy of the \
                     repository, merged back when it answers. Put everything it needs in `request`. Teammates:{list}"
                ),
                input_schema: json!({
                    "type": "object",
                    "properties": {
                        "to": {"type": "string", "enum": names, "description": "The teammate"},
                        "request": {"type": "string", "description": "What to do, every detail included"}
                    },
                    "required": ["to", "request"]
                }),
            },
            ToolDef {
                name: SEND.into(),
                description: "Send a teammate a message that expects no answer (a note, a heads-up); it returns at once.".into(),
                input_schema: json!({
                    "type": "object",
                    "properties": {
                        "to": {"type": "string", "enum": names, "description": "The teammate"},
                        "message": {"type": "string", "description": "The message"}
                    },
                    "required": ["to", "message"]
                }),
            },
        ];
        Self {
            post,
            members,
            defs,
        }
    }

    pub fn defs(&self) -> &[ToolDef] {
        &self.defs
    }

    pub fn post(&self) -> &Arc<Post> {
        &self.post
    }

    fn target(&self, input: &Value, key: &str) -> Result<(String, String), String> {
        let text = |k: &str| {
            input
                .get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let (Some(to), Some(body)) = (text("to"), text(key)) else {
            return Err(format!(
                "invalid input: needs `to` (a teammate) and `{key}` as strings"
            ));
        };
        if !self.members.iter().any(|m| m.name == to) {
            return Err(format!(
                "no teammate `{to}`; the teammates are {}",
                self.members
                    .iter()
                    .map(|m| format!("`{}`", m.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok((to, body))
    }

    /// Answer one permitted call of `ask` or `send`.
    pub async fn call(&self, tool: &str, input: &Value, cancel: &CancellationToken) -> ToolResult {
        let result = if tool == SEND {
            match self.target(input, "message") {
                Err(e) => ToolResult::error(e),
                Ok((to, body)) => match self.post.notify(&to, &body).await {
                    Ok(()) => ToolResult::ok(format!("sent to {to}")),
                    Err(e) => ToolResult::error(format!("not sent to {to}: {e}")),
                },
            }
        } else {
            match self.target(input, "request") {
                Err(e) => ToolResult::error(e),
                Ok((to, body)) => describe(&to, self.post.ask(&to, &body, cancel).await),
            }
        };
        self.with_notices(result)
    }

    /// Messages that came meanwhile and expect no answer ride along with a result.
    fn with_notices(&self, mut result: ToolResult) -> ToolResult {
        for n in self.post.take_notices() {
            result
                .text
                .push_str(&format!("\n\n[message from {}: {}]", n.from, n.body));
        }
        result
    }
}

fn describe(to: &str, asked: Asked) -> ToolResult {
    match asked {
        Asked::Answered { text, error: false } => ToolResult::ok(text),
        Asked::Answered { text, error: true } => {
            ToolResult::error(format!("{to} answered with an error: {text}"))
        }
        Asked::Refused(why) => ToolResult::error(why),
        Asked::TimedOut { after, heard } => ToolResult::error(format!(
            "no answer from {to} after {} s ([team] timeout_secs); {}",
            after.as_secs(),
            match heard {
                Some(ago) => format!(
                    "it was still at work {} s ago: ask again later or do this part yourself",
                    ago.as_secs()
                ),
                None => format!(
                    "nothing was heard from it: it may not be running (`cove team status`; start it with `cove teammate --name {to}`)"
                ),
            }
        )),
        Asked::Cancelled => ToolResult::error(format!(
            "cancelled: {to} was told to stop working on the request"
        )),
    }
}
