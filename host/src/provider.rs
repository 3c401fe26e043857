//! Model providers: one trait, one module each (Anthropic Messages, OpenAI-compatible chat
//! completions, scripted replay), plus what they share: SSE framing and retries.
//!
//! Owns turning a provider-neutral [`Request`] into one streamed assistant [`Reply`], reporting
//! text as it arrives. Retries (429, 529, 5xx, connection errors) happen only before any content
//! has arrived, so a retry can never make a tool run twice: tools run after the reply is whole.
//! Must not run tools, write transcripts or decide when the loop stops.

pub mod anthropic;
pub mod constrain;
pub mod openai;
pub mod scripted;
pub mod sse;
pub mod textcall;

use crate::conversation::{Message, StopReason, ToolDef, Usage};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Everything a provider needs for one model turn.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub model: &'a str,
    pub system: &'a str,
    pub tools: &'a [ToolDef],
    pub messages: &'a [Message],
    pub max_tokens: u32,
    /// Sampling temperature; `None` leaves the server's default.
    pub temperature: Option<f32>,
    /// Constrain the reply with a JSON schema (OpenAI-compatible servers; others ignore it).
    pub constrained: bool,
    /// The system prompt already lists the tools one line each (the `small` profile), so a
    /// provider that must describe them in text (constrained mode) need not repeat them.
    pub tools_in_prompt: bool,
}

/// What a provider reports while a reply streams in.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// A piece of the model's text.
    Text(&'a str),
    /// The model began a tool call.
    ToolUse { name: &'a str },
    /// The request is going out (the harness's clock stops here).
    Sending,
    /// The server took the request (its response began); the reply is on its way.
    Accepted,
    /// A failed attempt will be retried after `wait`.
    Retry {
        attempt: u32,
        wait: Duration,
        reason: &'a str,
    },
}

/// One whole assistant turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub message: Message,
    pub stop: StopReason,
    pub usage: Usage,
    /// The reply's text looked like a tool call written as JSON but was not a valid one: why.
    pub malformed_call: Option<String>,
}

/// Why a model turn failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ProviderError {
    #[error("{provider}: HTTP {status} after {attempts} attempt(s): {body}")]
    Http {
        provider: String,
        status: u16,
        attempts: u32,
        body: String,
    },
    #[error("{provider}: cannot connect to {url} after {attempts} attempt(s): {message}")]
    Connect {
        provider: String,
        url: String,
        attempts: u32,
        message: String,
    },
    #[error(
        "{provider}: the stream broke off mid-reply ({message}); nothing from this turn was kept"
    )]
    Stream { provider: String, message: String },
    #[error("{provider}: the API reported an error mid-stream: {kind}: {message}")]
    Api {
        provider: String,
        kind: String,
        message: String,
    },
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Script(String),
}

/// A boxed future, so providers can be chosen at run time.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A model provider.
pub trait Provider: Send + Sync {
    /// Short name for messages: `anthropic`, `openai`, `scripted`.
    fn name(&self) -> &str;

    /// Send one request and stream the reply, reporting progress to `on`.
    fn send<'a>(
        &'a self,
        req: Request<'a>,
        on: &'a mut (dyn FnMut(Event<'_>) + Send),
    ) -> BoxFuture<'a, Result<Reply, ProviderError>>;

    /// Whether this provider can constrain replies with a JSON schema (constrained mode).
    fn constrains(&self) -> bool {
        false
    }

    /// What serves the model, when the server says (a local runtime, and how big the model is).
    /// Asked once, before a session, to choose a profile; `None` when it cannot tell.
    fn identify<'a>(&'a self, _model: &'a str) -> BoxFuture<'a, Option<Server>> {
        Box::pin(async { None })
    }
}

/// A model server as it describes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// `llama.cpp`, `Ollama`, `vLLM`…: a runtime serving local models.
    pub runtime: String,
    /// The model's parameter count, when the server reports it.
    pub params: Option<u64>,
    /// The context the server gives the model, in tokens, when it says (llama.cpp's `n_ctx`,
    /// vLLM's `max_model_len`): what the compressor must keep each request under.
    pub context: Option<u64>,
}

/// What a server answers to `get` (its `GET …/models`), read by [`server_from_models`]; `None`
/// when it does not answer in time or says nothing a local runtime would.
async fn models_answer(get: reqwest::RequestBuilder, model: &str) -> Option<Server> {
    let resp = get.send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&resp.text().await.ok()?).ok()?;
    server_from_models(&v, model)
}

/// Which local runtime answered `GET /models` (llama.cpp says `owned_by: "llamacpp"` and gives
/// `meta.n_params` and `meta.n_ctx`; vLLM says `"vllm"` and gives `max_model_len`; Ollama names
/// the namespace, `"library"` for its own models), and the size and context of `model` (or of
/// the only model served) when they are given.
pub fn server_from_models(v: &serde_json::Value, model: &str) -> Option<Server> {
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
    Some(Server {
        runtime: runtime.into(),
        params: entry["meta"]["n_params"].as_u64(),
        context: entry["meta"]["n_ctx"]
            .as_u64()
            .or_else(|| entry["max_model_len"].as_u64())
            .filter(|n| *n > 0),
    })
}

/// How far a setting is trusted: the user's own (flags, environment, `~/.config/cove`) or a
/// trusted project's `.cove/config.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Trust {
    Project,
    User,
}

/// The chosen provider, its model, and what the user should know about the choice.
pub struct Selection {
    pub provider: std::sync::Arc<dyn Provider>,
    pub model: String,
    /// E.g. a key that was not sent to a project's endpoint.
    pub warnings: Vec<String>,
}

/// Pick and build the provider. Where requests go (kind, base URL, script) is decided by, most
/// trusted first: `flags`, the environment (`COVE_PROVIDER`, `ANTHROPIC_BASE_URL`,
/// `OPENAI_BASE_URL`), the user's config, then a trusted project's `config.project_endpoint`; the
/// rest (model, limits) by flags, then `COVE_MODEL`, then the config. An API key (from the
/// environment) is sent only to a base URL from the user's own settings or the provider's default,
/// never to one a project chose.
///
/// # Errors
/// [`ProviderError::Config`] saying exactly how to configure one when none is.
pub fn select(
    config: &crate::config::Config,
    flags: &crate::config::ProviderConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Selection, ProviderError> {
    let mut cfg = config.provider.clone();
    cfg.merge(flags.clone());
    let project = config.project_endpoint.clone().unwrap_or_default();
    let user = |v: Option<String>| v.map(|v| (v, Trust::User));
    let anthropic_key = env("ANTHROPIC_API_KEY");
    let openai_key = env("OPENAI_API_KEY");
    let inferred = if anthropic_key.is_some() || env("ANTHROPIC_BASE_URL").is_some() {
        Some("anthropic".to_string())
    } else if openai_key.is_some() || env("OPENAI_BASE_URL").is_some() {
        Some("openai".to_string())
    } else {
        None
    };
    let kind = user(flags.kind.clone())
        .or_else(|| user(env("COVE_PROVIDER")))
        .or_else(|| user(config.provider.kind.clone()))
        .or_else(|| project.kind.clone().map(|k| (k, Trust::Project)))
        .or_else(|| user(inferred))
        .map(|(k, _)| k);
    let base_url = |env_var: &str| {
        user(flags.base_url.clone())
            .or_else(|| user(env(env_var)))
            .or_else(|| user(config.provider.base_url.clone()))
            .or_else(|| project.base_url.clone().map(|u| (u, Trust::Project)))
    };
    let mut warnings = Vec::new();
    // A key goes only where the user's own settings (or the provider's default) point.
    let mut key_for = |key: Option<String>, key_var: &str, url: &Option<(String, Trust)>| match url
    {
        Some((u, Trust::Project)) if key.is_some() => {
            warnings.push(format!(
                "{key_var} is not sent to {u}: that URL comes from the project's .cove/config.toml, and a key goes only to a URL from your own settings (set it with --base-url, the environment or ~/.config/cove/config.toml to send the key there)"
            ));
            None
        }
        _ => key,
    };
    let mut retry = RetryPolicy::default();
    if let Some(n) = cfg.max_attempts {
        retry.max_attempts = n.max(1);
    }
    if let Some(ms) = cfg.retry_base_ms {
        retry.base = Duration::from_millis(ms);
    }
    let model = |default: &str| {
        flags
            .model
            .clone()
            .or_else(|| env("COVE_MODEL"))
            .or_else(|| cfg.model.clone())
            .unwrap_or_else(|| default.to_string())
    };
    let client = || {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(20))
            .read_timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| ProviderError::Config(format!("cannot set up HTTP: {e}")))
    };
    let (provider, model): (std::sync::Arc<dyn Provider>, String) = match kind.as_deref() {
        Some("anthropic") => {
            let url = base_url("ANTHROPIC_BASE_URL");
            let key = key_for(anthropic_key, "ANTHROPIC_API_KEY", &url);
            let base = url.map(|(u, _)| u);
            if key.is_none() && base.is_none() {
                return Err(ProviderError::Config("provider `anthropic` needs ANTHROPIC_API_KEY (or ANTHROPIC_BASE_URL for a compatible server)".into()));
            }
            let mut p = anthropic::Anthropic::new(client()?, base, key);
            if let Some(on) = cfg.text_tool_calls {
                p.text_tool_calls = on;
            }
            p.retry = retry;
            (std::sync::Arc::new(p), model("claude-sonnet-4-5"))
        }
        Some("openai") => {
            let url = base_url("OPENAI_BASE_URL");
            let key = key_for(openai_key, "OPENAI_API_KEY", &url);
            let base = url.map(|(u, _)| u);
            if key.is_none() && base.is_none() {
                return Err(ProviderError::Config("provider `openai` needs OPENAI_API_KEY, or OPENAI_BASE_URL for a local server (e.g. http://localhost:11434/v1 for Ollama)".into()));
            }
            let mut p = openai::OpenAi::new(client()?, base, key);
            p.text_tool_calls = cfg.text_tool_calls.unwrap_or(true);
            p.retry = retry;
            (std::sync::Arc::new(p), model("gpt-4o"))
        }
        Some("scripted") => {
            let path = flags
                .script
                .clone()
                .or_else(|| config.provider.script.clone())
                .or_else(|| project.script.clone())
                .ok_or_else(|| ProviderError::Config("provider `scripted` needs a script: --script FILE or [provider] script = \"FILE\"".into()))?;
            (
                std::sync::Arc::new(scripted::Scripted::from_file(&path)?),
                model("scripted"),
            )
        }
        Some(other) => {
            return Err(ProviderError::Config(format!(
                "unknown provider `{other}`; use anthropic, openai or scripted"
            )));
        }
        None => return Err(ProviderError::Config(NOT_CONFIGURED.into())),
    };
    Ok(Selection {
        provider,
        model,
        warnings,
    })
}

/// What to do when no provider is configured.
pub const NOT_CONFIGURED: &str = "no model provider is configured. Either:
  export ANTHROPIC_API_KEY=sk-ant-...                  # Anthropic
  export OPENAI_API_KEY=sk-...                         # OpenAI
  export OPENAI_BASE_URL=http://localhost:11434/v1 COVE_MODEL=qwen2.5-coder   # Ollama, vLLM, llama.cpp...
or put it in ~/.config/cove/config.toml:
  [provider]
  kind = \"openai\"
  base_url = \"http://localhost:8080/v1\"
  model = \"my-model\"
`cove demo` shows cove at work offline, with a scripted model.";

/// How often and how long to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base: Duration::from_millis(500),
            max_wait: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`: the server's retry-after when it gave one (capped),
    /// else exponential backoff.
    pub fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        retry_after
            .unwrap_or_else(|| {
                self.base
                    .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            })
            .min(self.max_wait)
    }
}

/// Whether an HTTP status is worth retrying: rate limits, overload and server errors.
pub fn retryable(status: u16) -> bool {
    status == 429 || status == 529 || status == 408 || (500..600).contains(&status)
}

/// The `retry-after` header (seconds, possibly fractional).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get("retry-after")?.to_str().ok()?;
    let secs: f64 = v.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// POST `body` to `url` with `headers`, retrying per `policy` until a successful status arrives.
/// Returns the response whose body is yet to be read: once it streams, nothing is retried.
///
/// # Errors
/// [`ProviderError::Http`] for a final non-success status, [`ProviderError::Connect`] when the
/// server could not be reached.
pub async fn post_with_retries(
    client: &reqwest::Client,
    provider: &str,
    url: &str,
    headers: reqwest::header::HeaderMap,
    body: String,
    policy: RetryPolicy,
    on: &mut (dyn FnMut(Event<'_>) + Send),
) -> Result<reqwest::Response, ProviderError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        if attempt == 1 {
            on(Event::Sending);
        }
        let sent = client
            .post(url)
            .headers(headers.clone())
            .body(body.clone())
            .send()
            .await;
        let (reason, wait_hint, final_err) = match sent {
            Ok(resp) if resp.status().is_success() => {
                on(Event::Accepted);
                return Ok(resp);
            }
            Ok(resp) => {
                let status = resp.status().as_u16();
                let hint = retry_after(resp.headers());
                let text = resp.text().await.unwrap_or_default();
                let err = ProviderError::Http {
                    provider: provider.into(),
                    status,
                    attempts: attempt,
                    body: crate::plugins::runtime::cut(text.trim(), 2000).into_owned(),
                };
                if !retryable(status) {
                    return Err(err);
                }
                (format!("HTTP {status}"), hint, err)
            }
            Err(e) => {
                let err = ProviderError::Connect {
                    provider: provider.into(),
                    url: url.into(),
                    attempts: attempt,
                    message: error_chain(&e),
                };
                (format!("connection failed: {}", error_chain(&e)), None, err)
            }
        };
        if attempt >= policy.max_attempts {
            return Err(final_err);
        }
        let wait = policy.wait(attempt, wait_hint);
        on(Event::Retry {
            attempt,
            wait,
            reason: &reason,
        });
        tracing::warn!(provider, attempt, ?wait, "{reason}; retrying");
        tokio::time::sleep(wait).await;
    }
}

/// A fault a provider's decoder found in a streamed reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamFault {
    pub kind: String,
    pub message: String,
    /// Worth another attempt when nothing has reached the user yet (an overloaded server, say).
    pub retryable: bool,
}

/// How a provider reads its streamed reply, one SSE event at a time.
pub trait Decoder {
    /// What marks the end of a reply, for messages (`message_stop`, `[DONE]`).
    const END: &'static str;
    /// Take one event.
    ///
    /// # Errors
    /// A [`StreamFault`] the server reported in the stream.
    fn event(
        &mut self,
        ev: &sse::SseEvent,
        on: &mut (dyn FnMut(Event<'_>) + Send),
    ) -> Result<(), StreamFault>;
    /// Whether anything reached the user: after that a retry would show it twice.
    fn started(&self) -> bool;
    /// Whether the end marker arrived.
    fn done(&self) -> bool;
}

/// One streamed POST: where, what, and how to retry.
pub struct Post<'a> {
    pub client: &'a reqwest::Client,
    pub provider: &'a str,
    pub url: &'a str,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
    pub policy: RetryPolicy,
}

/// Send `post` and read the reply with a fresh decoder from `new` until it is done. A stream that
/// breaks or faults before anything reached the user is tried again; after that it is an error.
///
/// # Errors
/// [`ProviderError`] for HTTP, connection, stream and in-stream API failures.
pub async fn stream_reply<D: Decoder>(
    post: &Post<'_>,
    on: &mut (dyn FnMut(Event<'_>) + Send),
    mut new: impl FnMut() -> D,
) -> Result<D, ProviderError> {
    use futures_util::StreamExt;
    let provider = post.provider;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let resp = post_with_retries(
            post.client,
            provider,
            post.url,
            post.headers.clone(),
            post.body.clone(),
            post.policy,
            on,
        )
        .await?;
        let mut decoder = new();
        let mut parser = sse::SseParser::default();
        let mut stream = resp.bytes_stream();
        let mut broke: Option<String> = None;
        'read: while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    broke = Some(error_chain(&e));
                    break;
                }
            };
            for ev in parser.push(&chunk) {
                if let Err(f) = decoder.event(&ev, on) {
                    if f.retryable && !decoder.started() && attempt < post.policy.max_attempts {
                        broke = Some(format!("{}: {}", f.kind, f.message));
                        break 'read;
                    }
                    return Err(ProviderError::Api {
                        provider: provider.into(),
                        kind: f.kind,
                        message: f.message,
                    });
                }
                if decoder.done() {
                    return Ok(decoder);
                }
            }
        }
        let message = broke.unwrap_or_else(|| format!("the stream ended before {}", D::END));
        // Nothing reached the user yet: the same request can go again without doubling anything.
        if !decoder.started() && attempt < post.policy.max_attempts {
            let wait = post.policy.wait(attempt, None);
            on(Event::Retry {
                attempt,
                wait,
                reason: &message,
            });
            tokio::time::sleep(wait).await;
            continue;
        }
        return Err(ProviderError::Stream {
            provider: provider.into(),
            message,
        });
    }
}

/// An error and its sources on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn waits_honour_retry_after_then_back_off() {
        let p = RetryPolicy::default();
        assert_eq!(p.wait(1, None), Duration::from_millis(500));
        assert_eq!(p.wait(3, None), Duration::from_secs(2));
        assert_eq!(
            p.wait(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            p.wait(1, Some(Duration::from_secs(7000))),
            Duration::from_secs(60)
        );
        assert!(
            retryable(429)
                && retryable(529)
                && retryable(503)
                && !retryable(400)
                && !retryable(401)
        );
    }

    #[test]
    fn local_runtimes_say_what_they_serve_and_in_what_context() {
        // llama-server (b7000s): the slot's context is `meta.n_ctx`.
        let llama = json!({"object":"list","data":[{"id":"qwen.gguf","owned_by":"llamacpp",
            "meta":{"n_ctx":8192,"n_ctx_train":32768,"n_params":1543714304}}]});
        assert_eq!(
            server_from_models(&llama, "qwen.gguf"),
            Some(Server {
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
}
