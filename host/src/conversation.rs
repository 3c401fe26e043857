//! The conversation: messages, content blocks and token usage, independent of any provider.
//!
//! Owns the shapes the loop, the transcript and the providers share. Field order is serialization
//! order and is part of the prompt-cache contract: never reorder fields or add time-dependent data.
//! Must not know any provider's wire format (each provider maps these to its own).

use serde::{Deserialize, Serialize};

/// Who said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// One piece of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: serde_json::Value,
    },
    ToolResult {
        tool_use_id: String,
        content: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Block>,
}

impl Message {
    pub fn user_text(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: vec![Block::Text { text: text.into() }],
        }
    }

    /// All text blocks, joined.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|b| match b {
                Block::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("")
    }

    /// The tool calls in this message, in the model's order.
    pub fn tool_uses(&self) -> impl Iterator<Item = (&str, &str, &serde_json::Value)> {
        self.content.iter().filter_map(|b| match b {
            Block::ToolUse { id, name, input } => Some((id.as_str(), name.as_str(), input)),
            _ => None,
        })
    }
}

/// Tokens one request cost, as the provider reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens neither read from nor written to the cache.
    pub input_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub output_tokens: u64,
}

impl Usage {
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.output_tokens += other.output_tokens;
    }

    /// Every input token, cached or not.
    pub fn total_input(&self) -> u64 {
        self.input_tokens + self.cache_read_tokens + self.cache_write_tokens
    }

    /// Share of input tokens read from the cache (0 when there was no input).
    pub fn cache_read_share(&self) -> f64 {
        let total = self.total_input();
        if total == 0 {
            0.0
        } else {
            self.cache_read_tokens as f64 / total as f64
        }
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    Other(String),
}

/// A tool as the model is told about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolDef {
    pub name: String,
    pub description: String,
    pub input_schema: serde_json::Value,
}

impl ToolDef {
    /// The tool on one line, for a prompt that lists tools instead of sending their schemas:
    /// `read(file_path, offset?: integer, limit?: integer): Read a text file.` Arguments come
    /// required first, each group in the schema's order; strings go untyped (most are).
    pub fn one_line(&self) -> String {
        let props = self.input_schema["properties"].as_object();
        let required: Vec<&str> = self.input_schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(serde_json::Value::as_str).collect())
            .unwrap_or_default();
        let mut args = Vec::new();
        for want in [true, false] {
            for (k, v) in props.into_iter().flatten() {
                if required.contains(&k.as_str()) != want {
                    continue;
                }
                let ty = match &v["type"] {
                    serde_json::Value::String(t) => Some(t.as_str()),
                    serde_json::Value::Array(ts) => ts
                        .iter()
                        .filter_map(serde_json::Value::as_str)
                        .find(|t| *t != "null"),
                    _ => None,
                };
                let mut arg = k.clone();
                if !want {
                    arg.push('?');
                }
                if let Some(t) = ty.filter(|t| *t != "string") {
                    arg.push_str(": ");
                    arg.push_str(t);
                }
                args.push(arg);
            }
        }
        format!(
            "{}({}): {}",
            self.name,
            args.join(", "),
            first_sentence(&self.description)
        )
    }
}

/// Up to the first full stop or colon followed by a space (or the whole text), on one line.
fn first_sentence(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match [". ", ": "].iter().filter_map(|p| text.find(p)).min() {
        Some(i) => format!("{}.", &text[..i]),
        None => text,
    }
}
