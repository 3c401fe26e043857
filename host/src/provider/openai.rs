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

use super::constrain::{self, FINAL_ANSWER};
use super::sse::SseEvent;
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
    out.push_str(&call_format(req.tools, !req.tools_in_prompt));
    out
}

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
    /// Text not shown yet because it may be a tool call written as JSON.
    held: bool,
    /// Hold back text that starts like JSON until the reply is whole.
    may_hold: bool,
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
                if !self.content && self.may_hold {
                    let start = piece.trim_start();
                    self.held = start.starts_with('{') || start.starts_with('`');
                }
                self.content = true;
                if !self.held {
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
        constrained: bool,
        on: &mut (dyn FnMut(Event<'_>) + Send),
    ) -> Reply {
        let mut content = Vec::new();
        let mut malformed_call = None;
        let mut stop = match s.finish.as_deref() {
            Some("tool_calls") | Some("function_call") => StopReason::ToolUse,
            Some("length") => StopReason::MaxTokens,
            Some("stop") | None => StopReason::EndTurn,
            Some(other) => StopReason::Other(other.into()),
        };
        // A reply cut at max_tokens is not read as a call: it is cut, and the loop says so.
        let text_call = if s.calls.is_empty()
            && stop != StopReason::MaxTokens
            && (self.text_tool_calls || constrained)
        {
            text_tool_call(&s.text, tools)
        } else {
            TextCall::NotACall
        };
        match text_call {
            TextCall::Call(name, args) if name == FINAL_ANSWER => {
                let text = args["text"].as_str().unwrap_or_default().to_string();
                on(Event::Text(&text));
                content.push(Block::Text { text });
                stop = StopReason::EndTurn;
            }
            TextCall::Call(name, input) => {
                on(Event::ToolUse { name: &name });
                content.push(Block::ToolUse {
                    id: format!("call_text_{turn}"),
                    name,
                    input,
                });
                stop = StopReason::ToolUse;
            }
            other => {
                if let TextCall::Malformed(why) = other {
                    malformed_call = Some(why);
                }
                if s.held && !s.text.is_empty() {
                    on(Event::Text(&s.text));
                }
                if !s.text.is_empty() {
                    content.push(Block::Text { text: s.text });
                }
            }
        }
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
                may_hold,
                ..StreamState::default()
            };
            let state = stream_reply(&post, on, new).await?;
            Ok(self.finish(state, req.tools, req.messages.len(), req.constrained, on))
        })
    }

    fn identify<'a>(&'a self, model: &'a str) -> BoxFuture<'a, Option<super::Server>> {
        Box::pin(async move {
            let mut get = self
                .client
                .get(format!("{}/models", self.base_url))
                .timeout(std::time::Duration::from_secs(3));
            if let Some(key) = &self.api_key {
                get = get.bearer_auth(key);
            }
            let resp = get.send().await.ok()?;
            if !resp.status().is_success() {
                return None;
            }
            let v: Value = serde_json::from_str(&resp.text().await.ok()?).ok()?;
            server_from_models(&v, model)
        })
    }
}

/// Which local runtime answered `GET /models` (llama.cpp says `owned_by: "llamacpp"` and gives
/// `meta.n_params` and `meta.n_ctx`; vLLM says `"vllm"` and gives `max_model_len`; Ollama names
/// the namespace, `"library"` for its own models), and the size and context of `model` (or of
/// the only model served) when they are given.
pub fn server_from_models(v: &Value, model: &str) -> Option<super::Server> {
    let data = v["data"].as_array()?;
    let entry = data
        .iter()
        .find(|m| m["id"].as_str() == Some(model))
        .or_else(|| data.first())?;
    let runtime = match entry["owned_by"].as_str()? {
        "llamacpp" => "llama.cpp",
        "vllm" => "vLLM",
        "library" | "ollama" => "Ollama",
        _ => return None,
    };
    Some(super::Server {
        runtime: runtime.into(),
        params: entry["meta"]["n_params"].as_u64(),
        context: entry["meta"]["n_ctx"]
            .as_u64()
            .or_else(|| entry["max_model_len"].as_u64())
            .filter(|n| *n > 0),
    })
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

    fn tools() -> Vec<ToolDef> {
        vec![ToolDef {
            name: "read".into(),
            description: "r".into(),
            input_schema: json!({"type":"object"}),
        }]
    }

    #[test]
    fn local_runtimes_say_what_they_serve_and_in_what_context() {
        // llama-server (b7000s): the slot's context is `meta.n_ctx`.
        let llama = json!({"object":"list","data":[{"id":"qwen.gguf","owned_by":"llamacpp",
            "meta":{"n_ctx":8192,"n_ctx_train":32768,"n_params":1543714304}}]});
        assert_eq!(
            server_from_models(&llama, "qwen.gguf"),
            Some(crate::provider::Server {
                runtime: "llama.cpp".into(),
                params: Some(1_543_714_304),
                context: Some(8192),
            })
        );
        // vLLM: `max_model_len`.
        let vllm = json!({"object":"list","data":[{"id":"Qwen/Qwen2.5-Coder-7B-Instruct","owned_by":"vllm","max_model_len":16384}]});
        let s = server_from_models(&vllm, "Qwen/Qwen2.5-Coder-7B-Instruct");
        assert_eq!(s.and_then(|s| s.context), Some(16384));
        // An older llama-server without `n_ctx`: its training context is not the server's.
        let old = json!({"data":[{"id":"m","owned_by":"llamacpp","meta":{"n_ctx_train":32768}}]});
        assert_eq!(server_from_models(&old, "m").and_then(|s| s.context), None);
        // Not a local runtime.
        assert_eq!(
            server_from_models(
                &json!({"data":[{"id":"gpt-4o","owned_by":"openai"}]}),
                "gpt-4o"
            ),
            None
        );
    }

    #[test]
    fn json_text_naming_a_tool_is_a_call() {
        let t = tools();
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

    #[test]
    fn deltas_accumulate_by_index() {
        let mut s = StreamState {
            may_hold: true,
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
        let r = p.finish(s, &tools(), 3, false, &mut on);
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
