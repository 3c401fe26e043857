//! rmcp's Streamable HTTP client transport over cove's reqwest 0.12: the HTTP requests the
//! transport's worker asks for (POST a message, GET the server's event stream, DELETE the
//! session), with rmcp's size limits on what comes back.
//!
//! rmcp ships this for reqwest 0.13 only, which would put a second reqwest (and a second TLS
//! stack) into cove; this follows rmcp 3.11's own `reqwest` client, without the OAuth and
//! `server/discover` fallbacks cove does not use. Must not parse JSON-RPC beyond telling an
//! error reply from a body that is not one, nor retry or reconnect (the worker does both).

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use rmcp::model::{ClientJsonRpcMessage, JsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::common::http_header::{
    EVENT_STREAM_MIME_TYPE, HEADER_LAST_EVENT_ID, HEADER_SESSION_ID, JSON_MIME_TYPE,
};
use rmcp::transport::streamable_http_client::{
    AuthRequiredError, HttpStatusError, InsufficientScopeError, SseError, StreamableHttpClient,
    StreamableHttpError, StreamableHttpPostResponse, StreamableHttpResponseLimits,
};
use sse_stream::{Sse, SseStream};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

type Error = StreamableHttpError<reqwest::Error>;
type EventStream = BoxStream<'static, Result<Sse, SseError>>;

/// rmcp's default limit on one server-sent event (its own constant is private).
const MAX_SSE_EVENT_SIZE: usize = 16 * 1024 * 1024;
/// Redirects followed for one request.
const MAX_REDIRECTS: usize = 10;

/// A reqwest 0.12 client as rmcp's `StreamableHttpClient`.
#[derive(Clone)]
pub(super) struct Http(reqwest::Client);

impl Http {
    /// A client like rmcp's default one: no idle connections kept (a half-read response on a
    /// reused connection stalls the next request behind delayed ACKs), and only same-origin
    /// 307/308 redirects followed, which keep the method and body and do not hand the session
    /// id or the user's headers to another host.
    pub(super) fn new() -> Result<Self, reqwest::Error> {
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            let keeps_body = matches!(
                attempt.status(),
                StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
            );
            let same_origin = attempt
                .previous()
                .first()
                .is_some_and(|first| first.origin() == attempt.url().origin());
            if !keeps_body || !same_origin {
                attempt.stop()
            } else if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else {
                attempt.follow()
            }
        });
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .connect_timeout(Duration::from_secs(30))
            .redirect(redirects)
            .build()
            .map(Self)
    }
}

fn with_headers(
    mut request: reqwest::RequestBuilder,
    auth: Option<String>,
    custom: HashMap<HeaderName, HeaderValue>,
) -> reqwest::RequestBuilder {
    if let Some(token) = auth {
        request = request.bearer_auth(token);
    }
    for (name, value) in custom {
        request = request.header(name, value);
    }
    request
}

/// The errors of a 401/403 that carries a challenge, and of a 429/5xx.
fn status_error(status: StatusCode, headers: &HeaderMap) -> Option<Error> {
    let challenge = headers
        .get(WWW_AUTHENTICATE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    match (status, challenge) {
        (StatusCode::UNAUTHORIZED, Some(challenge)) => Some(StreamableHttpError::AuthRequired(
            AuthRequiredError::new(challenge),
        )),
        (StatusCode::FORBIDDEN, Some(challenge)) => {
            let scope = scope_of(&challenge);
            Some(StreamableHttpError::InsufficientScope(
                InsufficientScopeError::new(challenge, scope),
            ))
        }
        (status, _) if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() => {
            let retry_after = headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            Some(HttpStatusError::new(status.as_u16(), retry_after).into())
        }
        _ => None,
    }
}

/// `scope="a b"` (or unquoted) of a `WWW-Authenticate` challenge.
fn scope_of(challenge: &str) -> Option<String> {
    let at = challenge.to_ascii_lowercase().find("scope=")?;
    let value = &challenge[at + "scope=".len()..];
    match value.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next().map(str::to_owned),
        None => value
            .split([',', ' '])
            .next()
            .filter(|v| !v.is_empty())
            .map(str::to_owned),
    }
}

/// Whether a `Content-Type` is `expected`, ignoring case and parameters.
fn media_type_is(value: Option<&HeaderValue>, expected: &str) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(expected))
}

/// The whole body, refused past `max` bytes.
async fn read_bounded(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, Error> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(StreamableHttpError::ResponseBodyTooLarge { max_size: max });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(StreamableHttpError::Client)?
    {
        if chunk.len() > max.saturating_sub(body.len()) {
            return Err(StreamableHttpError::ResponseBodyTooLarge { max_size: max });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The first `max` bytes of the body, for an error message.
async fn read_prefix(mut response: reqwest::Response, max: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < max {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = max - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    body
}

/// The response body as server-sent events, failing an event larger than `max` bytes before it
/// is buffered whole.
fn event_stream(response: reqwest::Response, max: usize) -> EventStream {
    // Counted like rmcp does: the bytes of the event's lines, which an empty line ends.
    let (mut line_len, mut event_len, mut previous, mut failed) = (0usize, 0usize, 0u8, false);
    let bytes = response.bytes_stream().map(move |chunk| {
        if failed {
            return Err(std::io::Error::other("the event stream already failed"));
        }
        let chunk = chunk.map_err(std::io::Error::other)?;
        for &byte in chunk.iter() {
            let crlf_tail = byte == b'\n' && previous == b'\r';
            previous = byte;
            if crlf_tail {
                continue;
            }
            if byte == b'\n' || byte == b'\r' {
                if line_len == 0 {
                    event_len = 0;
                }
                line_len = 0;
            } else {
                line_len += 1;
                event_len += 1;
                if event_len > max {
                    failed = true;
                    return Err(std::io::Error::other(format!(
                        "a server-sent event is larger than {max} bytes"
                    )));
                }
            }
        }
        Ok(chunk)
    });
    SseStream::from_bytes_stream(bytes).boxed()
}

impl StreamableHttpClient for Http {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, Error> {
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            StreamableHttpResponseLimits::default(),
        )
        .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, Error> {
        let mut limits = StreamableHttpResponseLimits::default();
        limits.max_sse_event_size = max_sse_event_size;
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            limits,
        )
        .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, Error> {
        let mut request = self.0.post(uri.as_ref()).header(
            ACCEPT,
            format!("{EVENT_STREAM_MIME_TYPE}, {JSON_MIME_TYPE}"),
        );
        request = with_headers(request, auth_header, custom_headers);
        let had_session = session_id.is_some();
        if let Some(session_id) = session_id {
            request = request.header(HEADER_SESSION_ID, session_id.as_ref());
        }
        // Serialized here: reqwest's `json` feature is not one cove turns on.
        let body = serde_json::to_vec(&message)?;
        let response = request
            .header(CONTENT_TYPE, JSON_MIME_TYPE)
            .body(body)
            .send()
            .await
            .map_err(StreamableHttpError::Client)?;
        let status = response.status();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
            && let Some(error) = status_error(status, response.headers())
        {
            return Err(error);
        }
        if matches!(status, StatusCode::ACCEPTED | StatusCode::NO_CONTENT) {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        if status == StatusCode::NOT_FOUND && had_session {
            return Err(StreamableHttpError::SessionExpired);
        }
        let content_type = response.headers().get(CONTENT_TYPE).cloned();
        let new_session = response
            .headers()
            .get(HEADER_SESSION_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Notifications and replies leave nothing outstanding: any 2xx will do for them.
        let awaits_nothing = !matches!(message, JsonRpcMessage::Request(_));
        if !status.is_success() {
            let status_error = match status_error(status, response.headers()) {
                // Rate limits say nothing more in their body.
                Some(error) if status == StatusCode::TOO_MANY_REQUESTS => return Err(error),
                other => other,
            };
            // A JSON-RPC error in the body says more than the status does.
            let body = if media_type_is(content_type.as_ref(), JSON_MIME_TYPE) {
                read_bounded(response, limits.max_json_response_size)
                    .await
                    .unwrap_or_default()
            } else {
                read_prefix(response, limits.max_error_response_size).await
            };
            if let Ok(reply @ JsonRpcMessage::Error(_)) =
                serde_json::from_slice::<ServerJsonRpcMessage>(&body)
            {
                return Ok(StreamableHttpPostResponse::Json(reply, new_session));
            }
            if let Some(error) = status_error {
                return Err(error);
            }
            let shown = &body[..body.len().min(limits.max_error_response_size)];
            return Err(StreamableHttpError::UnexpectedServerResponse(Cow::Owned(
                format!("HTTP {status}: {}", String::from_utf8_lossy(shown)),
            )));
        }
        if awaits_nothing && response.content_length() == Some(0) {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        if media_type_is(content_type.as_ref(), EVENT_STREAM_MIME_TYPE) {
            let events = event_stream(response, limits.max_sse_event_size);
            return Ok(StreamableHttpPostResponse::Sse(events, new_session));
        }
        if media_type_is(content_type.as_ref(), JSON_MIME_TYPE) {
            let body = read_bounded(response, limits.max_json_response_size).await?;
            return match serde_json::from_slice::<ServerJsonRpcMessage>(&body) {
                Ok(reply) => Ok(StreamableHttpPostResponse::Json(reply, new_session)),
                Err(_) if awaits_nothing => Ok(StreamableHttpPostResponse::Accepted),
                Err(e) => Err(StreamableHttpError::UnexpectedServerResponse(Cow::Owned(
                    format!(
                        "the reply is not JSON-RPC ({e}): {}",
                        String::from_utf8_lossy(&body[..body.len().min(256)])
                    ),
                ))),
            };
        }
        if awaits_nothing {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        Err(StreamableHttpError::UnexpectedContentType(
            content_type.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        ))
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), Error> {
        let request = with_headers(self.0.delete(uri.as_ref()), auth_header, custom_headers)
            .header(HEADER_SESSION_ID, session_id.as_ref());
        let response = request.send().await.map_err(StreamableHttpError::Client)?;
        if response.status() == StatusCode::METHOD_NOT_ALLOWED {
            tracing::debug!("the MCP server does not support deleting its session");
            return Ok(());
        }
        response
            .error_for_status()
            .map(drop)
            .map_err(StreamableHttpError::Client)
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<EventStream, Error> {
        self.get_stream_with_max_sse_event_size(
            uri,
            session_id,
            last_event_id,
            auth_header,
            custom_headers,
            MAX_SSE_EVENT_SIZE,
        )
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<EventStream, Error> {
        let mut request = self.0.get(uri.as_ref()).header(
            ACCEPT,
            format!("{EVENT_STREAM_MIME_TYPE}, {JSON_MIME_TYPE}"),
        );
        if let Some(session_id) = session_id {
            request = request.header(HEADER_SESSION_ID, session_id.as_ref());
        }
        if let Some(last_event_id) = last_event_id {
            request = request.header(HEADER_LAST_EVENT_ID, last_event_id);
        }
        let response = with_headers(request, auth_header, custom_headers)
            .send()
            .await
            .map_err(StreamableHttpError::Client)?;
        let status = response.status();
        if status == StatusCode::METHOD_NOT_ALLOWED {
            return Err(StreamableHttpError::ServerDoesNotSupportSse);
        }
        if let Some(error) = status_error(status, response.headers()) {
            return Err(error);
        }
        let response = response
            .error_for_status()
            .map_err(StreamableHttpError::Client)?;
        let content_type = response.headers().get(CONTENT_TYPE);
        if !media_type_is(content_type, EVENT_STREAM_MIME_TYPE)
            && !media_type_is(content_type, JSON_MIME_TYPE)
        {
            return Err(StreamableHttpError::UnexpectedContentType(
                content_type.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            ));
        }
        Ok(event_stream(response, max_sse_event_size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_of_challenges() {
        assert_eq!(
            scope_of(r#"Bearer realm="x", scope="files:read files:write""#).as_deref(),
            Some("files:read files:write")
        );
        assert_eq!(
            scope_of("Bearer scope=read:data, realm=x").as_deref(),
            Some("read:data")
        );
        assert_eq!(scope_of("Bearer realm=x"), None);
    }

    #[test]
    fn media_types_ignore_case_and_parameters() {
        let json = HeaderValue::from_static("Application/JSON; charset=utf-8");
        assert!(media_type_is(Some(&json), JSON_MIME_TYPE));
        assert!(!media_type_is(Some(&json), EVENT_STREAM_MIME_TYPE));
        assert!(!media_type_is(None, JSON_MIME_TYPE));
    }
}
