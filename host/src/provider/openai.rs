//! OpenAI-compatible chat completions (OpenAI, Ollama, vLLM, llama.cpp server, OpenRouter),
//! streamed over SSE.
//!
//! Owns the wire format: messages with `tool_calls` and `tool` results, streamed `tool_calls`
//! deltas accumulated by index, usage via `stream_options.include_usage`. Small local models often
//! answer with a tool call written as JSON text: when a reply is a bare or fenced
//! `{"name": …, "arguments": …}` naming an offered tool it is taken as that call (switch off with
//! `text_tool_calls = false`); one that tries and fails is reported as malformed, so the loop can
//! tell the model the format. Constrained mode sends a `response_format` JSON schema (built by
//! `constrain`) so the server's grammar can only produce a valid call or a final answer, and
//! describes the tools in the system message instead of a `tools` field.
//! Must not run tools or touch the transcript.

use super::constrain;
use super::sse::SseEvent;
use super::textcall::{self, HoldBack};
use super::{
    BoxFuture, Decoder, Event, Post, Provider, ProviderError, Reply, Request, RetryPolicy,
    StreamFault, stream_reply,
};
use crate::conversation::{Block, Message, Role, StopReason, ToolDef, Usage};
use serde_json::{Value, json};

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// A client for one OpenAI-compatible server.
pub struct OpenAi {
    client: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    /// Treat a JSON tool call written as text as a real call.
    pub text_tool_calls: bool,
    pub retry: RetryPolicy,
}

impl OpenAi {
    pub fn new(client: reqwest::Client, base_url: Option<String>, api_key: Option<String>) -> Self {
        let base_url = base_url
            .unwrap_or_else(|| DEFAULT_BASE_URL.into())
            .trim_end_matches('/')
            .to_string();
        Self {
            client,
            base_url,
            api_key,
            text_tool_calls: true,
            retry: RetryPolicy::default(),
        }
    }
}

/// The request body. Key order is fixed (insertion order: serde_json keeps it with
/// `preserve_order`), and the history only appends, so the prefix is stable for servers with
/// automatic prefix caching.
pub fn body(req: &Request<'_>, constrained: bool) -> String {
    let mut messages = Vec::new();
    let system = if constrained {
        constrained_system(req)
    } else {
        req.system.to_string()
    };
    if !system.is_empty() {
        messages.push(json!({"role": "system", "content": system}));
    }
    for m in req.messages {
        push_message(&mut messages, m);
    }
    let mut body = json!({
        "model": req.model,
        "max_tokens": req.max_tokens,
    });
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    body["messages"] = Value::Array(messages);
    if constrained {
        // llama.cpp, vLLM and Ollama (which passes `json_schema.schema` on as its `format`) all
        // take this shape; the schema is self-contained, since none of them resolves a `$ref`
        // outside the schema it is given.
        body["response_format"] = json!({
            "type": "json_schema",
            "json_schema": {"name": "tool_call", "schema": constrain::response_schema(req.tools)},
        });
    } else if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.input_schema}}))
            .collect();
    }
    body.to_string()
}

/// In constrained mode no `tools` field goes out (servers refuse it beside a grammar, or render
/// it into a prompt the grammar then contradicts), so the system prompt says what to write and,
/// unless it already does, lists the tools.
fn constrained_system(req: &Request<'_>) -> String {
    let mut out = req.system.trim_end().to_string();
    if !out.is_empty() {
        out.push_str("\n\n");
    }
    out.push_str(&textcall::call_format(req.tools, !req.tools_in_prompt));
    out
}

fn push_message(out: &mut Vec<Value>, m: &Message) {
    match m.role {
        Role::Assistant => {
            let text = m.text();
            let calls: Vec<Value> = m
                .tool_uses()
                .map(|(id, name, input)| {
                    let args = match input {
                        Value::String(raw) => raw.clone(),
                        other => other.to_string(),
                    };
                    json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}})
                })
                .collect();
            let mut msg = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { Value::String(text) }});
            if !calls.is_empty() {
                msg["tool_calls"] = Value::Array(calls);
            }
            out.push(msg);
        }
        Role::User => {
            let mut text = String::new();
            for b in &m.content {
                match b {
                    Block::ToolResult {
                        tool_use_id,
                        content,
                        is_error,
                    } => {
                        let content = if *is_error {
                            format!("Error: {content}")
                        } else {
                            content.clone()
                        };
                        out.push(json!({"role": "tool", "tool_call_id": tool_use_id, "content": content}));
                    }
                    Block::Text { text: t } => text.push_str(t),
                    Block::ToolUse { .. } => {}
                }
            }
            if !text.is_empty() {
                out.push(json!({"role": "user", "content": text}));
            }
        }
    }
}

#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    args: String,
}

#[derive(Default)]
struct StreamState {
    text: String,
    calls: Vec<PartialCall>,
    usage: Usage,
    finish: Option<String>,
    done: bool,
    content: bool,
    /// Text that starts like JSON is held back until the reply is whole.
    hold: HoldBack,
}

impl StreamState {
    fn handle(&mut self, data: &str, on: &mut (dyn FnMut(Event<'_>) + Send)) -> Result<(), String> {
        if data.trim() == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        let v: Value = serde_json::from_str(data).map_err(|e| format!("chunk is not JSON: {e}"))?;
        if let Some(err) = v.get("error") {
            return Err(err["message"]
                .as_str()
                .map_or_else(|| err.to_string(), String::from));
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            let prompt = u["prompt_tokens"].as_u64().unwrap_or(0);
            let cached = u["prompt_tokens_details"]["cached_tokens"]
                .as_u64()
                .unwrap_or(0);
            self.usage = Usage {
                input_tokens: prompt.saturating_sub(cached),
                cache_read_tokens: cached,
                cache_write_tokens: 0,
                output_tokens: u["completion_tokens"].as_u64().unwrap_or(0),
            };
        }
        for choice in v["choices"].as_array().into_iter().flatten() {
            let d = &choice["delta"];
            if let Some(piece) = d["content"].as_str().filter(|p| !p.is_empty()) {
                self.content = true;
                if self.hold.show(piece) {
                    on(Event::Text(piece));
                }
                self.text.push_str(piece);
            }
            for tc in d["tool_calls"].as_array().into_iter().flatten() {
                self.content = true;
                let idx = tc["index"].as_u64().unwrap_or(self.calls.len() as u64) as usize;
                while self.calls.len() <= idx {
                    self.calls.push(PartialCall::default());
                }
                let call = &mut self.calls[idx];
                if let Some(id) = tc["id"].as_str() {
                    call.id = id.to_string();
                }
                if let Some(name) = tc["function"]["name"].as_str() {
                    call.name.push_str(name);
                    on(Event::ToolUse { name });
                }
                if let Some(args) = tc["function"]["arguments"].as_str() {
                    call.args.push_str(args);
                }
            }
            if let Some(f) = choice["finish_reason"].as_str() {
                self.finish = Some(f.to_string());
            }
        }
        Ok(())
    }
}

impl OpenAi {
    /// The whole reply. `turn` (how many messages came before it) makes ids the server did not
    /// give unique within the session.
    fn finish(
        &self,
        s: StreamState,
        tools: &[ToolDef],
        turn: usize,
        on: &mut (dyn FnMut(Event<'_>) + Send),
    ) -> Reply {
        let mut stop = match s.finish.as_deref() {
            Some("tool_calls") | Some("function_call") => StopReason::ToolUse,
            Some("length") => StopReason::MaxTokens,
            Some("stop") | None => StopReason::EndTurn,
            Some(other) => StopReason::Other(other.into()),
        };
        let (mut content, malformed_call) = if s.calls.is_empty() {
            let read = textcall::read_reply(s.text, stop, &s.hold, tools, turn, on);
            stop = read.stop;
            (read.blocks, read.malformed)
        } else {
            (textcall::as_text(s.text, &s.hold, on), None)
        };
        for (i, c) in s.calls.into_iter().enumerate() {
            let input = if c.args.trim().is_empty() {
                json!({})
            } else {
                serde_json::from_str(&c.args).unwrap_or(Value::String(c.args))
            };
            let id = if c.id.is_empty() {
                format!("call_{turn}_{i}")
            } else {
                c.id
            };
            content.push(Block::ToolUse {
                id,
                name: c.name,
                input,
            });
        }
        if stop != StopReason::MaxTokens
            && content.iter().any(|b| matches!(b, Block::ToolUse { .. }))
        {
            stop = StopReason::ToolUse;
        }
        Reply {
            message: Message {
                role: Role::Assistant,
                content,
            },
            stop,
            usage: s.usage,
            malformed_call,
        }
    }
}

impl Provider for OpenAi {
    fn name(&self) -> &str {
        "openai"
    }

    fn send<'a>(
        &'a self,
        req: Request<'a>,
        on: &'a mut (dyn FnMut(Event<'_>) + Send),
    ) -> BoxFuture<'a, Result<Reply, ProviderError>> {
        Box::pin(async move {
            let url = format!("{}/chat/completions", self.base_url);
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(
                "content-type",
                reqwest::header::HeaderValue::from_static("application/json"),
            );
            if let Some(key) = &self.api_key {
                let v = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}")).map_err(
                    |_| {
                        ProviderError::Config(
                            "OPENAI_API_KEY contains characters a header cannot carry".into(),
                        )
                    },
                )?;
                headers.insert("authorization", v);
            }
            let post = Post {
                client: &self.client,
                provider: "openai",
                url: &url,
                headers,
                body: body(&req, req.constrained),
                policy: self.retry,
            };
            let may_hold = req.constrained || self.text_tool_calls;
            let new = || StreamState {
                hold: HoldBack::new(may_hold),
                ..StreamState::default()
            };
            let state = stream_reply(&post, on, new).await?;
            Ok(self.finish(state, req.tools, req.messages.len(), on))
        })
    }

    fn constrains(&self) -> bool {
        true
    }

    fn identify<'a>(&'a self, model: &'a str) -> BoxFuture<'a, Option<super::Server>> {
        Box::pin(async move {
            // OpenAI's own API never serves a local runtime: no request before the first.
            if self.base_url == DEFAULT_BASE_URL {
                return None;
            }
            let mut get = self
                .client
                .get(format!("{}/models", self.base_url))
                .timeout(std::time::Duration::from_secs(3));
            if let Some(key) = &self.api_key {
                get = get.bearer_auth(key);
            }
            let mut server = super::models_answer(get, model).await?;
            if server.runtime == "Ollama" && server.params.is_none() {
                // Ollama's `/v1/models` gives no size; its own API does.
                let root = self.base_url.trim_end_matches("/v1");
                let show = self
                    .client
                    .post(format!("{root}/api/show"))
                    .header("content-type", "application/json")
                    .body(json!({ "model": model }).to_string())
                    .timeout(std::time::Duration::from_secs(3))
                    .send()
                    .await;
                if let Ok(resp) = show
                    && resp.status().is_success()
                    && let Ok(text) = resp.text().await
                    && let Ok(v) = serde_json::from_str::<Value>(&text)
                {
                    server.params = v["details"]["parameter_size"]
                        .as_str()
                        .and_then(parameter_size);
                }
            }
            Some(server)
        })
    }
}

/// Ollama's `parameter_size` (`"1.5B"`, `"494.03M"`, `"70B"`) as a count.
fn parameter_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (number, scale) = match t.chars().last()? {
        'B' | 'b' => (&t[..t.len() - 1], 1e9),
        'M' | 'm' => (&t[..t.len() - 1], 1e6),
        'K' | 'k' => (&t[..t.len() - 1], 1e3),
        _ => (t, 1.0),
    };
    let n: f64 = number.trim().parse().ok()?;
    (n.is_finite() && n > 0.0).then_some((n * scale) as u64)
}

impl Decoder for StreamState {
    const END: &'static str = "[DONE]";

    fn event(
        &mut self,
        ev: &SseEvent,
        on: &mut (dyn FnMut(Event<'_>) + Send),
    ) -> Result<(), StreamFault> {
        self.handle(&ev.data, on).map_err(|message| StreamFault {
            kind: "error".into(),
            message,
            retryable: false,
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
    use crate::provider::textcall::read_tool;

    #[test]
    fn ollama_sizes_are_read() {
        assert_eq!(parameter_size("1.5B"), Some(1_500_000_000));
        assert_eq!(parameter_size("494.03M"), Some(494_030_000));
        assert_eq!(parameter_size("70B"), Some(70_000_000_000));
        assert_eq!(parameter_size("big"), None);
        assert_eq!(parameter_size(""), None);
    }

    #[test]
    fn deltas_accumulate_by_index() {
        let mut s = StreamState {
            hold: HoldBack::new(true),
            ..StreamState::default()
        };
        let mut on = |_: Event<'_>| {};
        for d in [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"Let me look."}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c0","type":"function","function":{"name":"read","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"c1","function":{"name":"read","arguments":"{\"file_path\":"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"file_path\":\"a\"}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"\"b\"}"}}]},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":100,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":80}}}"#,
            "[DONE]",
        ] {
            assert!(s.handle(d, &mut on).is_ok());
        }
        let p = OpenAi::new(reqwest::Client::new(), None, None);
        let r = p.finish(s, &read_tool(), 3, &mut on);
        let calls: Vec<_> = r.message.tool_uses().collect();
        assert_eq!(
            calls,
            vec![
                ("c0", "read", &json!({"file_path":"a"})),
                ("c1", "read", &json!({"file_path":"b"}))
            ]
        );
        assert_eq!(r.stop, StopReason::ToolUse);
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 20,
                cache_read_tokens: 80,
                cache_write_tokens: 0,
                output_tokens: 7
            }
        );
    }
}
