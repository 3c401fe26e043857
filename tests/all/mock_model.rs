//! A local model server for the tests: it speaks the exact wire formats (Anthropic Messages SSE,
//! OpenAI chat-completion chunks) over real HTTP on 127.0.0.1, answers from a queue of scripted
//! replies, and records every request. Only the model is mocked; everything else is real.

use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One scripted answer.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with these SSE events, then close.
    Sse(Vec<String>),
    /// 200 with the first events, then the connection is cut.
    SseCut(Vec<String>),
    /// A status with headers and a body.
    Status(u16, Vec<(String, String)>, String),
    /// Accept the request and never answer (until the server is dropped).
    Hang,
    /// An Anthropic reply (text, tool calls) whose usage simulates Anthropic's prompt cache:
    /// the longest earlier prefix ending at a breakpoint is read from the cache, the rest up to
    /// this request's last breakpoint is written to it; about 4 bytes a token.
    AnthropicCached(String, Vec<(String, String, String)>),
}

/// A recorded request.
#[derive(Clone, Debug)]
pub struct Seen {
    /// When the whole request had arrived (the loop bench times start-up with it).
    #[allow(dead_code)]
    pub at: std::time::Instant,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

pub struct MockModel {
    pub url: String,
    replies: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Fixed answers by path suffix: `GET …/models` (404 when absent), Ollama's `POST /api/show`;
    /// neither recorded nor using a reply.
    models: Arc<Mutex<Vec<(String, String)>>>,
    /// Answers summary requests (cove's compressor) apart from the queue, when set.
    summariser: Summariser,
    /// Refuse requests over this many tokens as Anthropic does ("prompt is too long").
    window: Arc<Mutex<Option<usize>>>,
    /// Chooses a reply from the request itself, before the queue is asked.
    router: Router,
}

/// Chooses the reply to a request from its own content (each agent of a tree follows its own
/// script whatever order their requests come in); `None` leaves it to the queue.
pub type Router =
    Arc<Mutex<Option<Arc<dyn Fn(&serde_json::Value) -> Option<Reply> + Send + Sync>>>>;

/// Writes the summary for a compressor's request: chosen by the conversation's own content, so
/// the scripted replies stay in order whenever cove compacts.
pub type Summariser = Arc<Mutex<Option<Box<dyn Fn(&str) -> String + Send>>>>;

/// What begins cove's summary requests' system prompt.
pub const SUMMARY_MARK: &str = "You summarise the earlier part of a coding agent's session";

/// How far back from a breakpoint the provider looks for an earlier cache entry, in blocks.
const LOOKBACK_BLOCKS: usize = 20;

/// A request body without its `cache_control` markers (they place breakpoints but are not part
/// of what is cached), and where each breakpoint falls in that text.
pub fn unmarked(body: &str) -> (String, Vec<usize>) {
    const MARK: &str = ",\"cache_control\":{\"type\":\"ephemeral\"}";
    let mut text = String::with_capacity(body.len());
    let mut breakpoints = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find(MARK) {
        text.push_str(&rest[..i]);
        breakpoints.push(text.len());
        rest = &rest[i + MARK.len()..];
    }
    text.push_str(rest);
    (text, breakpoints)
}

/// Usage for `body` given the prefixes cached so far, as Anthropic's cache works: an earlier
/// prefix is read when it ends at most [`LOOKBACK_BLOCKS`] blocks before one of this request's
/// breakpoints; the prefix up to each breakpoint is written. About 4 bytes a token.
fn simulate_cache(body: &str, cached: &mut Vec<String>) -> (u64, u64, u64) {
    let (body, breakpoints) = unmarked(body);
    // Blocks start with `{"type":"` (tool definitions with `{"name":"`) outside strings.
    let blocks_between = |from: usize, to: usize| {
        let span = &body[from..to];
        span.matches("{\"type\":\"").count() + span.matches("{\"name\":\"").count()
    };
    let read = cached
        .iter()
        .filter(|p| body.starts_with(p.as_str()))
        .filter(|p| {
            breakpoints
                .iter()
                .any(|&b| b >= p.len() && blocks_between(p.len(), b) <= LOOKBACK_BLOCKS)
        })
        .map(String::len)
        .max()
        .unwrap_or(0);
    let last = breakpoints.last().copied().unwrap_or(0);
    for b in breakpoints {
        cached.push(body[..b].to_string());
    }
    let write = last.saturating_sub(read);
    let input = body.len().saturating_sub(read + write);
    ((input / 4) as u64, (read / 4) as u64, (write / 4) as u64)
}

impl MockModel {
    pub fn start(replies: Vec<Reply>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let replies = Arc::new(Mutex::new(VecDeque::from(replies)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let models = Arc::new(Mutex::new(Vec::new()));
        let summariser: Summariser = Arc::new(Mutex::new(None));
        let window = Arc::new(Mutex::new(None));
        let router: Router = Arc::new(Mutex::new(None));
        let rt = router.clone();
        let (r, s, m, w, win) = (
            replies.clone(),
            seen.clone(),
            models.clone(),
            summariser.clone(),
            window.clone(),
        );
        let cache = Arc::new(Mutex::new(Vec::new()));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let (r, s, c, m, w) = (r.clone(), s.clone(), cache.clone(), m.clone(), w.clone());
                let (win, rt) = (win.clone(), rt.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &r, &s, &c, &m, &w, &win, &rt);
                });
            }
        });
        Ok(Self {
            url,
            replies,
            seen,
            models,
            summariser,
            window,
            router,
        })
    }

    /// Answer by script: a request follows the script whose marker its first message holds, at
    /// the step its conversation has reached (how many replies it holds), so each agent of a
    /// tree follows its own script whatever order their requests arrive in.
    pub fn set_scripts(&self, scripts: Vec<(&'static str, Vec<Reply>)>) {
        self.set_router(move |request| {
            let first = first_user_text(request);
            let (_, script) = scripts.iter().find(|(k, _)| first.contains(*k))?;
            script.get(step(request)).cloned()
        });
    }

    /// Choose replies with `route(the request's JSON body)` before the queue.
    pub fn set_router(
        &self,
        route: impl Fn(&serde_json::Value) -> Option<Reply> + Send + Sync + 'static,
    ) {
        if let Ok(mut r) = self.router.lock() {
            *r = Some(Arc::new(route));
        }
    }

    /// Answer `GET …/models` with this JSON, as a local runtime describing itself does.
    pub fn set_models(&self, body: &str) {
        self.set_answer("/models", body);
    }

    /// Answer every request whose path ends with `suffix` with this JSON (`/api/show`: Ollama's
    /// model details), outside the queue and unrecorded.
    pub fn set_answer(&self, suffix: &str, body: &str) {
        if let Ok(mut m) = self.models.lock() {
            m.retain(|(s, _)| s != suffix);
            m.push((suffix.to_string(), body.to_string()));
        }
    }

    /// Answer cove's summary requests with `write(the request's body)`, outside the queue.
    pub fn set_summariser(&self, write: impl Fn(&str) -> String + Send + 'static) {
        if let Ok(mut w) = self.summariser.lock() {
            *w = Some(Box::new(write));
        }
    }

    /// Refuse requests of more than `tokens` (about 4 bytes a token) with Anthropic's 400.
    pub fn set_window(&self, tokens: usize) {
        if let Ok(mut w) = self.window.lock() {
            *w = Some(tokens);
        }
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Block until `n` requests have arrived (a minute at most, then panic: the test has failed).
    pub fn wait_for_requests(&self, n: usize) {
        let started = std::time::Instant::now();
        while self.requests().len() < n {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "request {n} never came"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn remaining(&self) -> usize {
        self.replies.lock().map(|r| r.len()).unwrap_or(0)
    }
}

#[allow(clippy::too_many_arguments)]
fn serve(
    stream: TcpStream,
    replies: &Mutex<VecDeque<Reply>>,
    seen: &Mutex<Vec<Seen>>,
    cache: &Mutex<Vec<String>>,
    models: &Mutex<Vec<(String, String)>>,
    summariser: &Summariser,
    window: &Mutex<Option<usize>>,
    router: &Router,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut headers = Vec::new();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                if k == "content-length" {
                    len = v.parse().unwrap_or(0);
                }
                headers.push((k, v));
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        let body = String::from_utf8_lossy(&body).into_owned();
        let fixed = models.lock().ok().and_then(|m| {
            m.iter()
                .find(|(suffix, _)| path.ends_with(suffix.as_str()))
                .map(|(_, text)| text.clone())
        });
        if line.starts_with("GET ") || fixed.is_some() {
            let (code, text) = match fixed {
                Some(t) => (200, t),
                None => (404, "{}".to_string()),
            };
            write!(
                out,
                "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
                text.len()
            )?;
            out.flush()?;
            continue;
        }
        if let Ok(mut s) = seen.lock() {
            s.push(Seen {
                at: std::time::Instant::now(),
                path,
                headers,
                body: body.clone(),
            });
        }
        let limit = window.lock().ok().and_then(|w| *w);
        let size = unmarked(&body).0.len() / 4;
        if let Some(limit) = limit.filter(|l| size > *l) {
            let text = format!(
                r#"{{"type":"error","error":{{"type":"invalid_request_error","message":"prompt is too long: {size} tokens > {limit} maximum"}}}}"#
            );
            write!(
                out,
                "HTTP/1.1 400 X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
                text.len()
            )?;
            out.flush()?;
            return Ok(());
        }
        let summary = if body.contains(SUMMARY_MARK) {
            summariser
                .lock()
                .ok()
                .and_then(|w| w.as_ref().map(|write| write(&body)))
        } else {
            None
        };
        // The lock is not held while the route runs: a route may wait for another request.
        let route = router.lock().ok().and_then(|r| r.clone());
        let routed = match (&summary, route) {
            (None, Some(route)) => serde_json::from_str(&body).ok().and_then(|v| route(&v)),
            _ => None,
        };
        let mut reply = match (summary, routed) {
            (Some(text), _) => Some(Reply::AnthropicCached(text, Vec::new())),
            (None, Some(r)) => Some(r),
            (None, None) => replies.lock().ok().and_then(|mut r| r.pop_front()),
        };
        if let Some(Reply::AnthropicCached(text, calls)) = &reply {
            let usage = cache
                .lock()
                .map(|mut c| simulate_cache(&body, &mut c))
                .unwrap_or_default();
            let calls: Vec<(&str, &str, &str)> = calls
                .iter()
                .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
                .collect();
            reply = Some(Reply::Sse(anthropic(text, &calls, usage)));
        }
        match reply {
            Some(Reply::Sse(events)) => {
                write!(
                    out,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
                )?;
                for e in events {
                    out.write_all(e.as_bytes())?;
                    out.flush()?;
                }
                return Ok(());
            }
            Some(Reply::SseCut(events)) => {
                // Claim a longer body than is sent, so the client sees the connection cut mid-reply.
                write!(
                    out,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 100000\r\n\r\n"
                )?;
                for e in events {
                    out.write_all(e.as_bytes())?;
                }
                out.flush()?;
                return Ok(());
            }
            Some(Reply::Status(code, hs, text)) => {
                write!(
                    out,
                    "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
                    text.len()
                )?;
                for (k, v) in hs {
                    write!(out, "{k}: {v}\r\n")?;
                }
                write!(out, "\r\n{text}")?;
                out.flush()?;
            }
            Some(Reply::AnthropicCached(..)) => return Ok(()),
            Some(Reply::Hang) => {
                std::thread::sleep(Duration::from_secs(120));
                return Ok(());
            }
            None => {
                let text = r#"{"type":"error","error":{"type":"invalid_request_error","message":"mock: no reply left"}}"#;
                write!(
                    out,
                    "HTTP/1.1 400 X\r\ncontent-length: {}\r\n\r\n{text}",
                    text.len()
                )?;
                return Ok(());
            }
        }
    }
}

/// The text of a request's first user message: whose conversation it is.
pub fn first_user_text(request: &serde_json::Value) -> String {
    match &request["messages"][0]["content"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// How many replies a request's conversation already holds: the step of its script.
pub fn step(request: &serde_json::Value) -> usize {
    request["messages"]
        .as_array()
        .map_or(0, |m| m.iter().filter(|m| m["role"] == "assistant").count())
}

fn ev(event: &str, data: serde_json::Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

/// The events of one Anthropic reply: optional text, then tool calls `(id, name, raw input JSON)`.
pub fn anthropic(text: &str, calls: &[(&str, &str, &str)], usage: (u64, u64, u64)) -> Vec<String> {
    let (input, cache_read, cache_write) = usage;
    let mut out = vec![ev(
        "message_start",
        serde_json::json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"mock",
            "stop_reason":null,"usage":{"input_tokens":input,"cache_read_input_tokens":cache_read,"cache_creation_input_tokens":cache_write,"output_tokens":1}}}),
    )];
    out.push(ev("ping", serde_json::json!({"type":"ping"})));
    let mut index = 0;
    if !text.is_empty() {
        out.push(ev("content_block_start", serde_json::json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})));
        let mid = text.len() / 2;
        let split = (0..=mid)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        for piece in [&text[..split], &text[split..]] {
            out.push(ev("content_block_delta", serde_json::json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":piece}})));
        }
        out.push(ev(
            "content_block_stop",
            serde_json::json!({"type":"content_block_stop","index":0}),
        ));
        index = 1;
    }
    for (i, (id, name, input)) in calls.iter().enumerate() {
        let idx = index + i;
        out.push(ev("content_block_start", serde_json::json!({"type":"content_block_start","index":idx,"content_block":{"type":"tool_use","id":id,"name":name,"input":{}}})));
        let mid = input.len() / 2;
        for piece in [&input[..mid], &input[mid..]] {
            out.push(ev("content_block_delta", serde_json::json!({"type":"content_block_delta","index":idx,"delta":{"type":"input_json_delta","partial_json":piece}})));
        }
        out.push(ev(
            "content_block_stop",
            serde_json::json!({"type":"content_block_stop","index":idx}),
        ));
    }
    let stop = if calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    };
    out.push(ev("message_delta", serde_json::json!({"type":"message_delta","delta":{"stop_reason":stop,"stop_sequence":null},"usage":{"output_tokens":42}})));
    out.push(ev(
        "message_stop",
        serde_json::json!({"type":"message_stop"}),
    ));
    out
}

/// The chunks of one OpenAI chat-completion stream: text, then tool calls `(id, name, args)`.
pub fn openai(text: &str, calls: &[(&str, &str, &str)]) -> Vec<String> {
    openai_ending(text, calls, None)
}

/// The same, ending with this `finish_reason` (`length`: cut at max_tokens).
pub fn openai_ending(
    text: &str,
    calls: &[(&str, &str, &str)],
    finish: Option<&str>,
) -> Vec<String> {
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        format!(
            "data: {}\n\n",
            serde_json::json!({"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":delta,"finish_reason":finish}]})
        )
    };
    let mut out = vec![chunk(
        serde_json::json!({"role":"assistant","content":""}),
        None,
    )];
    if !text.is_empty() {
        let mid = (0..=text.len() / 2)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        out.push(chunk(serde_json::json!({"content": &text[..mid]}), None));
        out.push(chunk(serde_json::json!({"content": &text[mid..]}), None));
    }
    for (i, (id, name, args)) in calls.iter().enumerate() {
        out.push(chunk(serde_json::json!({"tool_calls":[{"index":i,"id":id,"type":"function","function":{"name":name,"arguments":""}}]}), None));
        let mid = args.len() / 2;
        out.push(chunk(
            serde_json::json!({"tool_calls":[{"index":i,"function":{"arguments":&args[..mid]}}]}),
            None,
        ));
        out.push(chunk(
            serde_json::json!({"tool_calls":[{"index":i,"function":{"arguments":&args[mid..]}}]}),
            None,
        ));
    }
    let finish = finish.unwrap_or(if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    });
    out.push(chunk(serde_json::json!({}), Some(finish)));
    out.push(format!("data: {}\n\n", serde_json::json!({"id":"c","choices":[],"usage":{"prompt_tokens":120,"completion_tokens":9,"prompt_tokens_details":{"cached_tokens":100}}})));
    out.push("data: [DONE]\n\n".into());
    out
}

/// A 30-turn session over files `f0.txt`… it writes in `dir`: reads, every third step an edit,
/// then an answer. Usage comes from the prompt-cache simulation.
pub fn thirty_turn_session(dir: &std::path::Path) -> std::io::Result<Vec<Reply>> {
    let mut replies = Vec::new();
    for i in 0..29 {
        std::fs::write(dir.join(format!("f{i}.txt")), format!("value {i}\n"))?;
        let (name, input) = if i % 3 == 2 {
            (
                "edit",
                format!(r#"{{"file_path":"f{i}.txt","old_string":"value","new_string":"VALUE"}}"#),
            )
        } else {
            ("read", format!(r#"{{"file_path":"f{i}.txt"}}"#))
        };
        replies.push(Reply::AnthropicCached(
            format!("Step {i}."),
            vec![(format!("t{i}"), name.into(), input)],
        ));
    }
    replies.push(Reply::AnthropicCached("All done.".into(), vec![]));
    Ok(replies)
}

// Scripts, shared by the tests of many agents (subagents, teammates).

pub fn calls(calls: &[(&str, &str, Value)]) -> Reply {
    Reply::AnthropicCached(
        String::new(),
        calls
            .iter()
            .map(|(id, name, input)| (id.to_string(), name.to_string(), input.to_string()))
            .collect(),
    )
}

pub fn done(text: &str) -> Reply {
    Reply::AnthropicCached(text.into(), vec![])
}

/// Scripts by marker. Every request's first message is kept, in order of arrival, in the list
/// [`route_with`] returns.
pub type Scripts = Vec<(&'static str, Vec<Reply>)>;

/// As [`MockModel::set_scripts`], calling `before(marker, step, arrivals)` before answering
/// (to hold a reply back).
pub fn route_with(
    m: &MockModel,
    scripts: Scripts,
    before: impl Fn(&str, usize, &Mutex<Vec<String>>) + Send + Sync + 'static,
) -> Arc<Mutex<Vec<String>>> {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let seen = arrivals.clone();
    let scripts: HashMap<&'static str, Vec<Reply>> = scripts.into_iter().collect();
    m.set_router(move |request| {
        let first = first_user_text(request);
        if let Ok(mut a) = seen.lock() {
            a.push(first.clone());
        }
        let (marker, script) = scripts.iter().find(|(k, _)| first.contains(**k))?;
        let n = step(request);
        before(marker, n, &seen);
        script.get(n).cloned()
    });
    arrivals
}

/// Wait until a request whose first message holds `marker` has arrived (20 s at most); whether
/// it did.
pub fn arrived(arrivals: &Mutex<Vec<String>>, marker: &str) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if arrivals
            .lock()
            .is_ok_and(|a| a.iter().any(|t| t.contains(marker)))
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

pub fn env(m: &MockModel) -> Vec<(&'static str, String)> {
    vec![
        ("ANTHROPIC_BASE_URL", m.url.clone()),
        ("ANTHROPIC_API_KEY", "test-key".into()),
    ]
}

/// The requests of the conversation whose first message holds `marker`.
pub fn requests_of(m: &MockModel, marker: &str) -> Vec<Value> {
    m.requests()
        .iter()
        .map(|s| s.json())
        .filter(|r| first_user_text(r).contains(marker))
        .collect()
}

/// The results (is_error, text) the last request of a conversation carries.
pub fn last_results(requests: &[Value]) -> Vec<(bool, String)> {
    let Some(last) = requests.last() else {
        return Vec::new();
    };
    let msgs = last["messages"].as_array().cloned().unwrap_or_default();
    msgs.iter()
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .filter(|b| b["type"] == "tool_result")
        .map(|b| {
            let text = match &b["content"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (b["is_error"] == true, text)
        })
        .collect()
}

pub fn tool_names(request: &Value) -> Vec<String> {
    request["tools"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
