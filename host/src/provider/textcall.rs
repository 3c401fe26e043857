//! Tool calls written as text: what small local models write when native tool calls or a grammar
//! are not there to shape their reply (a bare or fenced `{"name": …, "arguments": …}`).
//!
//! Owns reading a whole reply's text as such a call (or as `final_answer`, or as a failed try at
//! one), holding back streamed text that may turn out to be a call so the user never sees raw JSON,
//! and the words that tell a model the format. Shared by every provider that reads text calls
//! (the OpenAI-compatible one, and the Anthropic one pointed at a local server).
//! Must not know a wire format, run tools or decide when the loop stops.

use super::Event;
use super::constrain::FINAL_ANSWER;
use crate::conversation::{Block, StopReason, ToolDef};
use serde_json::{Value, json};

/// How to write a call as JSON text, with one line per tool when `list` (the agent tells a model
/// that got it wrong in the same words).
pub fn call_format(tools: &[ToolDef], list: bool) -> String {
    let mut out = format!(
        "Reply with exactly one JSON object and nothing else: {{\"name\": \"<tool>\", \"arguments\": {{…}}}}. \
One tool call per reply; its result comes back in the next message. \
When the task is done, reply {{\"name\": \"{FINAL_ANSWER}\", \"arguments\": {{\"text\": \"<what you did>\"}}}}."
    );
    if list {
        out.push_str("\nTools:\n");
        for t in tools {
            out.push_str("- ");
            out.push_str(&t.one_line());
            out.push('\n');
        }
        out.push_str(&format!(
            "- {FINAL_ANSWER}(text): finish, saying what you did.\n"
        ));
    }
    out
}

/// What a reply's text is, read as a tool call written as JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum TextCall {
    /// A call of an offered tool (or `final_answer`): name and arguments.
    Call(String, Value),
    /// It tries to be a call (a JSON object, bare or in a ```json fence) but is not a valid one.
    Malformed(String),
    /// Prose (or code) meant for the user.
    NotACall,
}

/// A tool call written as JSON text (bare, or in a ``` fence) naming one of `tools`. When the
/// model wrote more than one object, the first is taken.
pub fn text_tool_call(text: &str, tools: &[ToolDef]) -> TextCall {
    let t = text.trim();
    let fenced = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .map(|s| s.trim_end().strip_suffix("```").unwrap_or(s));
    let t = fenced.unwrap_or(t).trim();
    if !t.starts_with('{') {
        return TextCall::NotACall;
    }
    let names = || {
        let mut n: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        n.push(FINAL_ANSWER);
        n.join(", ")
    };
    let first = serde_json::Deserializer::from_str(t)
        .into_iter::<Value>()
        .next();
    let v = match first {
        Some(Ok(v)) => v,
        Some(Err(e)) => return TextCall::Malformed(format!("it is not valid JSON ({e})")),
        None => return TextCall::NotACall,
    };
    let Some(name) = v.get("name").and_then(Value::as_str) else {
        return TextCall::Malformed("the object has no \"name\" string".into());
    };
    if name != FINAL_ANSWER && !tools.iter().any(|tool| tool.name == name) {
        return TextCall::Malformed(format!(
            "there is no tool called `{name}` (the tools are: {})",
            names()
        ));
    }
    let args = ["arguments", "parameters", "input"]
        .iter()
        .find_map(|k| v.get(*k).cloned())
        .unwrap_or(json!({}));
    let args = match args {
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(parsed) => parsed,
            Err(e) => {
                return TextCall::Malformed(format!(
                    "\"arguments\" is a string that is not a JSON object ({e})"
                ));
            }
        },
        other => other,
    };
    if !args.is_object() {
        return TextCall::Malformed("\"arguments\" must be a JSON object".into());
    }
    TextCall::Call(name.to_string(), args)
}

/// Streamed text held back while it may still be a call written as JSON.
#[derive(Debug, Default)]
pub struct HoldBack {
    /// Whether this reply may be read as a text call at all.
    pub may_hold: bool,
    started: bool,
    held: bool,
}

impl HoldBack {
    pub fn new(may_hold: bool) -> Self {
        Self {
            may_hold,
            ..Self::default()
        }
    }

    /// Whether `piece`, the next piece of the reply's text, may be shown now: text that starts
    /// like JSON (or a fence) is held until the reply is whole.
    pub fn show(&mut self, piece: &str) -> bool {
        if !self.started && self.may_hold {
            let start = piece.trim_start();
            self.held = start.starts_with('{') || start.starts_with('`');
        }
        self.started |= !piece.is_empty();
        !self.held
    }

    /// Whether anything was held back (it must be shown if it turns out not to be a call).
    pub fn held(&self) -> bool {
        self.held
    }
}

/// A whole reply's text, read as a call when it is one.
#[derive(Debug, PartialEq)]
pub struct Read {
    /// The blocks that stand for the text: a tool call, the final answer's text, or the text.
    pub blocks: Vec<Block>,
    /// The reply's stop reason, as the reading leaves it (`ToolUse` for a call, `EndTurn` for a
    /// final answer, else the server's).
    pub stop: StopReason,
    /// It tried to be a call and was not a valid one: why.
    pub malformed: Option<String>,
}

/// Read `text`, the whole text of a reply with no native tool call that ended with `stop`, as a
/// call of one of `tools`, with id `call_text_{turn}` (`turn`: how many messages came before the
/// reply, unique in a session), reporting to `on` what the user should see. Only a reply `hold`
/// may hold a call is read so, and never one cut at max_tokens: it is cut, and the loop says so.
pub fn read_reply(
    text: String,
    stop: StopReason,
    hold: &HoldBack,
    tools: &[ToolDef],
    turn: usize,
    on: &mut (dyn FnMut(Event<'_>) + Send),
) -> Read {
    let call = if hold.may_hold && stop != StopReason::MaxTokens {
        text_tool_call(&text, tools)
    } else {
        TextCall::NotACall
    };
    match call {
        TextCall::Call(name, args) if name == FINAL_ANSWER => {
            let text = args["text"].as_str().unwrap_or_default().to_string();
            on(Event::Text(&text));
            Read {
                blocks: vec![Block::Text { text }],
                stop: StopReason::EndTurn,
                malformed: None,
            }
        }
        TextCall::Call(name, input) => {
            on(Event::ToolUse { name: &name });
            Read {
                blocks: vec![Block::ToolUse {
                    id: format!("call_text_{turn}"),
                    name,
                    input,
                }],
                stop: StopReason::ToolUse,
                malformed: None,
            }
        }
        other => Read {
            malformed: match other {
                TextCall::Malformed(why) => Some(why),
                _ => None,
            },
            blocks: as_text(text, hold, on),
            stop,
        },
    }
}

/// `text` as it came, shown now if it was held back.
pub fn as_text(
    text: String,
    hold: &HoldBack,
    on: &mut (dyn FnMut(Event<'_>) + Send),
) -> Vec<Block> {
    if text.is_empty() {
        return Vec::new();
    }
    if hold.held() {
        on(Event::Text(&text));
    }
    vec![Block::Text { text }]
}

/// One `read` tool: what the providers' tests offer a model that writes its calls as text.
#[cfg(test)]
pub(crate) fn read_tool() -> Vec<ToolDef> {
    vec![ToolDef {
        name: "read".into(),
        description: "r".into(),
        input_schema: json!({"type":"object"}),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_text_naming_a_tool_is_a_call() {
        let t = read_tool();
        assert_eq!(
            text_tool_call(r#"{"name":"read","arguments":{"file_path":"a"}}"#, &t),
            TextCall::Call("read".into(), json!({"file_path":"a"}))
        );
        let fenced =
            "```json\n{\"name\": \"read\", \"arguments\": \"{\\\"file_path\\\": \\\"b\\\"}\"}\n```";
        assert_eq!(
            text_tool_call(fenced, &t),
            TextCall::Call("read".into(), json!({"file_path":"b"}))
        );
        assert!(matches!(
            text_tool_call(r#"{"name":"rm_rf","arguments":{}}"#, &t),
            TextCall::Malformed(why) if why.contains("no tool called `rm_rf`")
        ));
        assert!(matches!(
            text_tool_call(r#"{"name":"read","arguments":{"file_path":"a"}"#, &t),
            TextCall::Malformed(why) if why.contains("not valid JSON")
        ));
        assert_eq!(
            text_tool_call(
                r#"{"name":"read","arguments":{}} {"name":"read","arguments":{}}"#,
                &t
            ),
            TextCall::Call("read".into(), json!({}))
        );
        assert_eq!(
            text_tool_call("Here is {\"name\":\"read\"}", &t),
            TextCall::NotACall
        );
    }
}
