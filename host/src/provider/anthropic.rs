//! The Anthropic Messages API, streamed over SSE.
//!
//! Owns the wire format: the request body (field order fixed so the prefix is byte-stable between
//! turns, with `cache_control` breakpoints on the last tool, the system prompt, the end of the
//! previous request and the newest message) and the event stream (`message_start`, `content_block_*` with `text_delta` and
//! `input_json_delta`, `message_delta`, `message_stop`, `ping`, `error`; unknown events ignored).
//! Pointed at a local server (llama.cpp serves `/v1/messages`), it asks the server what it serves
//! as the OpenAI-compatible provider does, and reads a tool call a small model wrote as JSON text
//! (`textcall`). It cannot constrain replies: the Messages API has no grammar field, and
//! llama.cpp's `/v1/messages` passes none on.
//! Must not run tools or touch the transcript.

use super::sse::SseEvent;
use super::textcall::{self, HoldBack};
use super::{
    BoxFuture, Decoder, Event, Post, Provider, ProviderError, Reply, Request, RetryPolicy,
    StreamFault, stream_reply,
};
use crate::conversation::{Block, Message, Role, StopReason, ToolDef, Usage};
use serde::Serialize;
use serde_json::Value;

pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
const API_VERSION: &str = "2023-06-01";

/// A client for one API key and base URL.
pub struct Anthropic {
    client: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    /// Treat a JSON tool call written as text as a real call (default: only when the base URL is
    /// not Anthropic's own, i.e. a local server).
    pub text_tool_calls: bool,
    pub retry: RetryPolicy,
}

impl Anthropic {
    pub fn new(client: reqwest::Client, base_url: Option<String>, api_key: Option<String>) -> Self {
        let base_url = base_url
            .unwrap_or_else(|| DEFAULT_BASE_URL.into())
            .trim_end_matches('/')
            .to_string();
        let mut a = Self {
            client,
            base_url,
            api_key,
            text_tool_calls: false,
            retry: RetryPolicy::default(),
        };
        a.text_tool_calls = !a.hosted();
        a
    }

    /// Whether requests go to Anthropic's own API (which never serves a local runtime).
    pub fn hosted(&self) -> bool {
        self.base_url == DEFAULT_BASE_URL
    }
}

#[derive(Serialize, Clone, Copy)]
struct CacheControl {
    #[serde(rename = "type")]
    kind: &'static str,
}

const EPHEMERAL: Option<CacheControl> = Some(CacheControl { kind: "ephemeral" });

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    stream: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<WireBlock<'a>>,
    messages: Vec<WireMessage<'a>>,
}

#[derive(Serialize)]
struct WireTool<'a> {
    name: &'a str,
    description: &'a str,
    input_schema: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_control: Option<CacheControl>,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: Role,
    content: Vec<WireBlock<'a>>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlock<'a> {
    Text {
        text: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    ToolResult {
        tool_use_id: &'a str,
        content: &'a str,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
}

static EMPTY_OBJECT: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| Value::Object(Default::default()));

fn wire_block(b: &Block) -> WireBlock<'_> {
    match b {
        Block::Text { text } => WireBlock::Text {
            text,
            cache_control: None,
        },
        // A tool call whose input was not a JSON object is kept in the transcript as it came, but
        // the API only accepts objects; the tool result already told the model what was wrong.
        Block::ToolUse { id, name, input } => WireBlock::ToolUse {
            id,
            name,
            input: if input.is_object() {
                input
            } else {
                &EMPTY_OBJECT
            },
            cache_control: None,
        },
        Block::ToolResult {
            tool_use_id,
            content,
            is_error,
        } => WireBlock::ToolResult {
            tool_use_id,
            content,
            is_error: *is_error,
            cache_control: None,
        },
    }
}

fn set_cache(b: &mut WireBlock<'_>) {
    match b {
        WireBlock::Text { cache_control, .. }
        | WireBlock::ToolUse { cache_control, .. }
        | WireBlock::ToolResult { cache_control, .. } => *cache_control = EPHEMERAL,
    }
}

/// The request body, as bytes. Same inputs, same bytes; a longer history only appends.
pub fn body(req: &Request<'_>) -> String {
    let mut tools: Vec<WireTool<'_>> = req
        .tools
        .iter()
        .map(|t: &ToolDef| WireTool {
            name: &t.name,
            description: &t.description,
            input_schema: &t.input_schema,
            cache_control: None,
        })
        .collect();
    if let Some(last) = tools.last_mut() {
        last.cache_control = EPHEMERAL;
    }
    let system = if req.system.is_empty() {
        Vec::new()
    } else {
        vec![WireBlock::Text {
            text: req.system,
            cache_control: EPHEMERAL,
        }]
    };
    let mut messages: Vec<WireMessage<'_>> = req
        .messages
        .iter()
        .map(|m: &Message| WireMessage {
            role: m.role,
            content: m.content.iter().map(wire_block).collect(),
        })
        .collect();
    // The newest block, and the last block of the request before this turn: a wide turn (many
    // parallel calls and their results) adds more blocks than the provider looks back (about
    // 20) from one breakpoint, so the previous request's end carries one of its own, at
    // exactly the place the previous request had it.
    let last_assistant = messages.iter().rposition(|m| m.role == Role::Assistant);
    if let Some(prev) = last_assistant.and_then(|i| i.checked_sub(1))
        && prev + 1 < messages.len()
        && let Some(block) = messages[prev].content.last_mut()
    {
        set_cache(block);
    }
    if let Some(last) = messages.last_mut().and_then(|m| m.content.last_mut()) {
        set_cache(last);
    }
    let body = Body {
        model: req.model,
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        stream: true,
        tools,
        system,
        messages,
    };
    serde_json::to_string(&body).unwrap_or_default()
}

enum Partial {
    Text(String),
    Tool {
        id: String,
        name: String,
        json: String,
    },
}

/// Reads one streamed reply. `content` tells whether anything reached the user yet.
#[derive(Default)]
struct StreamState {
    blocks: Vec<Partial>,
    usage: Usage,
    stop: Option<StopReason>,
    done: bool,
    content: bool,
    /// Text that starts like JSON is held back until the reply is whole.
    hold: HoldBack,
}

impl StreamState {
    fn handle(
        &mut self,
        event: &str,
        data: &str,
        on: &mut (dyn FnMut(Event<'_>) + Send),
    ) -> Result<(), (String, String)> {
        let v: Value = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(_) if event == "ping" || data.is_empty() => return Ok(()),
            Err(e) => {
                return Err((
                    "invalid_event".into(),
                    format!("event `{event}` is not JSON: {e}"),
                ));
            }
        };
        let kind = v["type"].as_str().unwrap_or(event);
        match kind {
            "message_start" => self.read_usage(&v["message"]["usage"]),
            "content_block_start" => {
                let b = &v["content_block"];
                match b["type"].as_str() {
                    Some("tool_use") => {
                        let name = b["name"].as_str().unwrap_or_default().to_string();
                        on(Event::ToolUse { name: &name });
                        self.blocks.push(Partial::Tool {
                            id: b["id"].as_str().unwrap_or_default().to_string(),
                            name,
                            json: String::new(),
                        });
                    }
                    _ => {
                        let text = b["text"].as_str().unwrap_or_default().to_string();
                        if !text.is_empty() && self.hold.show(&text) {
                            on(Event::Text(&text));
                        }
                        self.blocks.push(Partial::Text(text));
                    }
                }
                self.content = true;
            }
            "content_block_delta" => {
                let d = &v["delta"];
                match (d["type"].as_str(), self.blocks.last_mut()) {
                    (Some("text_delta"), Some(Partial::Text(t))) => {
                        let piece = d["text"].as_str().unwrap_or_default();
                        if self.hold.show(piece) {
                            on(Event::Text(piece));
                        }
                        t.push_str(piece);
                    }
                    (Some("input_json_delta"), Some(Partial::Tool { json, .. })) => {
                        json.push_str(d["partial_json"].as_str().unwrap_or_default());
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(s) = v["delta"]["stop_reason"].as_str() {
                    self.stop = Some(match s {
                        "end_turn" | "stop_sequence" => StopReason::EndTurn,
                        "tool_use" => StopReason::ToolUse,
                        "max_tokens" => StopReason::MaxTokens,
                        other => StopReason::Other(other.into()),
                    });
                }
                self.read_usage(&v["usage"]);
            }
            "message_stop" => self.done = true,
            "error" => {
                let e = &v["error"];
                return Err((
                    e["type"].as_str().unwrap_or("error").into(),
                    e["message"].as_str().unwrap_or("unknown error").into(),
                ));
            }
            _ => {} // ping, content_block_stop and events added after this was written
        }
        Ok(())
    }

    fn read_usage(&mut self, u: &Value) {
        let get = |k: &str| u[k].as_u64();
        if let Some(n) = get("input_tokens") {
            self.usage.input_tokens = n;
        }
        if let Some(n) = get("cache_read_input_tokens") {
            self.usage.cache_read_tokens = n;
        }
        if let Some(n) = get("cache_creation_input_tokens") {
            self.usage.cache_write_tokens = n;
        }
        if let Some(n) = get("output_tokens") {
            self.usage.output_tokens = n;
        }
    }

    /// The whole reply. A reply of text alone may be a tool call written as JSON (only read so
    /// when the reply may hold one: see [`HoldBack`]); `turn` makes its id unique.
    fn finish(
        self,
        tools: &[ToolDef],
        turn: usize,
        on: &mut (dyn FnMut(Event<'_>) + Send),
    ) -> Reply {
        let mut stop = self.stop.unwrap_or(StopReason::EndTurn);
        let mut malformed_call = None;
        // Joined only when it may be read as a call: otherwise each block stays as it came.
        let text_only = self.blocks.iter().all(|b| matches!(b, Partial::Text(_)));
        let content = if text_only && self.hold.may_hold {
            let text: String = self
                .blocks
                .into_iter()
                .filter_map(|p| match p {
                    Partial::Text(t) => Some(t),
                    Partial::Tool { .. } => None,
                })
                .collect();
            let read = textcall::read_reply(text, stop, &self.hold, tools, turn, on);
            stop = read.stop;
            malformed_call = read.malformed;
            read.blocks
        } else {
            let hold = self.hold;
            self.blocks
                .into_iter()
                .flat_map(|p| match p {
                    Partial::Text(text) => textcall::as_text(text, &hold, on),
                    Partial::Tool { id, name, json } => {
                        let input = if json.trim().is_empty() {
                            Value::Object(Default::default())
                        } else {
                            serde_json::from_str(&json).unwrap_or(Value::String(json))
                        };
                        vec![Block::ToolUse { id, name, input }]
                    }
                })
                .collect()
        };
        Reply {
            message: Message {
                role: Role::Assistant,
                content,
            },
            stop,
            usage: self.usage,
            malformed_call,
        }
    }
}

impl Provider for Anthropic {
    fn name(&self) -> &str {
        "anthropic"
    }

    fn send<'a>(
        &'a self,
        req: Request<'a>,
        on: &'a mut (dyn FnMut(Event<'_>) + Send),
    ) -> BoxFuture<'a, Result<Reply, ProviderError>> {
        Box::pin(async move {
            let url = format!("{}/v1/messages", self.base_url);
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(
                "content-type",
                reqwest::header::HeaderValue::from_static("application/json"),
            );
            headers.insert(
                "anthropic-version",
                reqwest::header::HeaderValue::from_static(API_VERSION),
            );
            if let Some(key) = &self.api_key {
                let v = reqwest::header::HeaderValue::from_str(key).map_err(|_| {
                    ProviderError::Config(
                        "ANTHROPIC_API_KEY contains characters a header cannot carry".into(),
                    )
                })?;
                headers.insert("x-api-key", v);
            }
            let post = Post {
                client: &self.client,
                provider: "anthropic",
                url: &url,
                headers,
                body: body(&req),
                policy: self.retry,
            };
            let may_hold = self.text_tool_calls;
            let new = || StreamState {
                hold: HoldBack::new(may_hold),
                ..StreamState::default()
            };
            let state = stream_reply(&post, on, new).await?;
            Ok(state.finish(req.tools, req.messages.len(), on))
        })
    }

    fn identify<'a>(&'a self, model: &'a str) -> BoxFuture<'a, Option<super::Server>> {
        Box::pin(async move {
            if self.hosted() {
                return None;
            }
            let mut get = self
                .client
                .get(format!("{}/v1/models", self.base_url))
                .header("anthropic-version", API_VERSION)
                .timeout(std::time::Duration::from_secs(3));
            if let Some(key) = &self.api_key {
                get = get.header("x-api-key", key);
            }
            super::models_answer(get, model).await
        })
    }
}

impl Decoder for StreamState {
    const END: &'static str = "message_stop";

    fn event(
        &mut self,
        ev: &SseEvent,
        on: &mut (dyn FnMut(Event<'_>) + Send),
    ) -> Result<(), StreamFault> {
        self.handle(&ev.event, &ev.data, on)
            .map_err(|(kind, message)| StreamFault {
                retryable: kind == "overloaded_error" || kind == "api_error",
                kind,
                message,
            })
    }

    fn started(&self) -> bool {
        self.content
    }

    fn done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(tools: &'a [ToolDef], messages: &'a [Message]) -> Request<'a> {
        Request {
            model: "m",
            system: "sys",
            tools,
            messages,
            max_tokens: 100,
            temperature: None,
            constrained: false,
            tools_in_prompt: false,
        }
    }

    #[test]
    fn text_calls_are_read_only_from_a_server_other_than_anthropics() {
        let hosted = Anthropic::new(reqwest::Client::new(), None, Some("k".into()));
        assert!(hosted.hosted() && !hosted.text_tool_calls);
        let local = Anthropic::new(
            reqwest::Client::new(),
            Some("http://127.0.0.1:8080/".into()),
            None,
        );
        assert!(!local.hosted() && local.text_tool_calls);
        let tools = crate::provider::textcall::read_tool();
        let call = r#"{"name":"read","arguments":{"file_path":"a"}}"#;
        let events = [
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#.to_string(),
            ),
            (
                "content_block_delta",
                serde_json::json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":call}}).to_string(),
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"}}"#.to_string(),
            ),
        ];
        for may_hold in [true, false] {
            let mut s = StreamState {
                hold: HoldBack::new(may_hold),
                ..StreamState::default()
            };
            let mut shown = String::new();
            let mut on = |e: Event<'_>| {
                if let Event::Text(t) = e {
                    shown.push_str(t);
                }
            };
            for (e, d) in &events {
                assert!(s.handle(e, d, &mut on).is_ok());
            }
            let r = s.finish(&tools, 4, &mut on);
            if may_hold {
                assert_eq!(r.stop, StopReason::ToolUse);
                assert_eq!(
                    r.message.tool_uses().collect::<Vec<_>>(),
                    vec![("call_text_4", "read", &serde_json::json!({"file_path":"a"}))]
                );
                assert_eq!(shown, "", "a call is not shown as text");
            } else {
                assert_eq!(r.stop, StopReason::EndTurn);
                assert_eq!(r.message.text(), call);
                assert_eq!(shown, call);
            }
        }
    }

    #[test]
    fn body_has_breakpoints_and_a_stable_appending_prefix() {
        let tools = vec![
            ToolDef {
                name: "a".into(),
                description: "A".into(),
                input_schema: serde_json::json!({"type":"object"}),
            },
            ToolDef {
                name: "b".into(),
                description: "B".into(),
                input_schema: serde_json::json!({"type":"object"}),
            },
        ];
        let mut msgs = vec![Message::user_text("hi")];
        let first = body(&req(&tools, &msgs));
        assert_eq!(first.matches("cache_control").count(), 3);
        assert!(
            first.find("\"tools\"") < first.find("\"system\"")
                && first.find("\"system\"") < first.find("\"messages\"")
        );
        msgs.push(Message {
            role: Role::Assistant,
            content: vec![Block::Text { text: "yo".into() }],
        });
        msgs.push(Message::user_text("more"));
        let second = body(&req(&tools, &msgs));
        let cut = first.rfind(",\"cache_control\"").unwrap_or(0);
        assert!(cut > 0 && second.as_bytes()[..cut] == first.as_bytes()[..cut]);
        // The previous request's end keeps its breakpoint: four, the most the API takes.
        assert_eq!(second.matches("cache_control").count(), 4);
        let end_of_first = first.rfind("}]}]").unwrap_or(0);
        assert_eq!(
            second.as_bytes()[..end_of_first],
            first.as_bytes()[..end_of_first]
        );
    }

    #[test]
    fn stream_state_assembles_text_and_tool_calls() {
        let mut s = StreamState::default();
        let mut seen = String::new();
        let mut on = |e: Event<'_>| {
            if let Event::Text(t) = e {
                seen.push_str(t)
            }
        };
        let events = [
            (
                "message_start",
                r#"{"type":"message_start","message":{"usage":{"input_tokens":10,"cache_read_input_tokens":90,"cache_creation_input_tokens":5,"output_tokens":1}}}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            ),
            ("ping", r#"{"type":"ping"}"#),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t1","name":"read","input":{}}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"file_"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"path\":\"a\"}"}}"#,
            ),
            ("brand_new_event", r#"{"type":"brand_new_event"}"#),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":20}}"#,
            ),
            ("message_stop", r#"{"type":"message_stop"}"#),
        ];
        for (e, d) in events {
            assert!(s.handle(e, d, &mut on).is_ok());
        }
        assert!(s.done);
        let r = s.finish(&[], 1, &mut on);
        assert_eq!(seen, "Hello");
        assert_eq!(r.stop, StopReason::ToolUse);
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 10,
                cache_read_tokens: 90,
                cache_write_tokens: 5,
                output_tokens: 20
            }
        );
        assert_eq!(r.message.text(), "Hello");
        let calls: Vec<_> = r.message.tool_uses().collect();
        assert_eq!(
            calls,
            vec![("t1", "read", &serde_json::json!({"file_path":"a"}))]
        );
    }
}
