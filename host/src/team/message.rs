//! The teammates' wire protocol: the typed [`Message`] that members put in each other's
//! mailboxes, its JSON encoding, its size limit, and the validation a receiver applies to the
//! raw bytes it finds ([`Message::decode`] returning [`Malformed`]).
//!
//! Owns only the message shape and its checks. Must not know where messages are stored or how
//! they travel (that is `team::mailbox`), and must not do I/O.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// The protocol version every message carries in `v`; a receiver rejects any other.
pub const PROTOCOL: u32 = 1;

/// The largest encoded message accepted, in bytes: a mailbox is for instructions and answers,
/// not for bulk data (which belongs in the shared worktree).
pub const MAX_BYTES: usize = 256 * 1024;

/// The longest id accepted (a v4 uuid in simple form is 32 characters; the slack leaves room
/// for ids minted by bridges).
const MAX_ID_CHARS: usize = 128;

/// The longest member name accepted.
const MAX_NAME_CHARS: usize = 64;

/// What a message is for.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Asks the recipient to do something and answer.
    Request,
    /// The answer to a request (`correlation` names it).
    Response,
    /// The sender of a request no longer wants it done.
    Cancel,
    /// "Still working on it" for a request, so the sender keeps waiting.
    Heartbeat,
}

/// One message between members.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Message {
    /// The protocol version: [`PROTOCOL`].
    pub v: u32,
    /// Unique id (a v4 uuid, simple form).
    pub id: String,
    /// What the message is for.
    pub kind: Kind,
    /// The sending member's name.
    pub from: String,
    /// The receiving member's name (whose mailbox it goes to).
    pub to: String,
    /// For a response, cancel or heartbeat: the id of the request it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation: Option<String>,
    /// Unix ms after which the sender no longer waits; 0 = no deadline.
    pub deadline: u64,
    /// The request text, the answer, the cancel reason or the heartbeat note.
    #[serde(default)]
    pub body: String,
    /// For a request: the members already waiting up this chain of requests, so a member can
    /// refuse a request that would make it wait on itself (a cycle).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
    /// For a response: the answer is an error.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub error: bool,
    /// For a request: it expects no answer (the `send` tool).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notice: bool,
}

/// Why a message could not be encoded.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum MessageError {
    /// The encoded message is over [`MAX_BYTES`].
    #[error(
        "too large: {bytes} bytes encoded, over the {max}-byte limit; send less (a file path instead of its contents)"
    )]
    TooLarge {
        /// The encoded size.
        bytes: usize,
        /// The limit ([`MAX_BYTES`]).
        max: usize,
    },
    /// The message could not be serialised at all.
    #[error("message could not be encoded: {0}")]
    Encode(String),
}

/// Raw bytes found in a mailbox that are not a valid message.
///
/// `from` and `id` are what could be recovered from the raw JSON (only when they are a valid
/// name / id), so the receiver can tell the sender its message was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    /// What is wrong, for people and for the reply to the sender.
    pub reason: String,
    /// The sender, when the raw JSON names a valid one.
    pub from: Option<String>,
    /// The message id, when the raw JSON holds a valid one.
    pub id: Option<String>,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed message")?;
        if let Some(id) = &self.id {
            write!(f, " {id}")?;
        }
        if let Some(from) = &self.from {
            write!(f, " from {from}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for Malformed {}

/// Whether `name` is a valid member (or team) name: 1 to 64 characters of `[A-Za-z0-9_.-]`.
///
/// Names become parts of storage keys, so the alphabet is kept small and separator-free.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_CHARS && name.bytes().all(name_byte)
}

/// Whether `id` is a valid message id: 1 to 128 characters of `[A-Za-z0-9_.-]`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_CHARS && id.bytes().all(name_byte)
}

fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// Now as unix milliseconds (0 if the clock is before 1970, which only a broken clock is).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl Message {
    /// A new request from `from` to `to`.
    pub fn request(
        from: impl Into<String>,
        to: impl Into<String>,
        body: impl Into<String>,
        deadline: u64,
        chain: Vec<String>,
    ) -> Message {
        Message {
            v: PROTOCOL,
            id: new_id(),
            kind: Kind::Request,
            from: from.into(),
            to: to.into(),
            correlation: None,
            deadline,
            body: body.into(),
            chain,
            error: false,
            notice: false,
        }
    }

    /// The answer to `request`, going back to its sender, under the same deadline.
    pub fn response(request: &Message, body: impl Into<String>, error: bool) -> Message {
        Message {
            v: PROTOCOL,
            id: new_id(),
            kind: Kind::Response,
            from: request.to.clone(),
            to: request.from.clone(),
            correlation: Some(request.id.clone()),
            deadline: request.deadline,
            body: body.into(),
            chain: Vec::new(),
            error,
            notice: false,
        }
    }

    /// The sender of `request` withdrawing it, with a reason.
    pub fn cancel(request: &Message, reason: impl Into<String>) -> Message {
        Message {
            v: PROTOCOL,
            id: new_id(),
            kind: Kind::Cancel,
            from: request.from.clone(),
            to: request.to.clone(),
            correlation: Some(request.id.clone()),
            deadline: request.deadline,
            body: reason.into(),
            chain: Vec::new(),
            error: false,
            notice: false,
        }
    }

    /// A "still working on request `correlation`" note from `from` to `to`.
    pub fn heartbeat(
        from: impl Into<String>,
        to: impl Into<String>,
        correlation: impl Into<String>,
        note: impl Into<String>,
    ) -> Message {
        Message {
            v: PROTOCOL,
            id: new_id(),
            kind: Kind::Heartbeat,
            from: from.into(),
            to: to.into(),
            correlation: Some(correlation.into()),
            deadline: 0,
            body: note.into(),
            chain: Vec::new(),
            error: false,
            notice: false,
        }
    }

    /// Whether the deadline (if any) is before `now` (unix ms).
    pub fn expired(&self, now: u64) -> bool {
        self.deadline != 0 && now > self.deadline
    }

    /// The JSON encoding; refuses a message over [`MAX_BYTES`].
    pub fn encode(&self) -> Result<String, MessageError> {
        let raw = serde_json::to_string(self).map_err(|e| MessageError::Encode(e.to_string()))?;
        if raw.len() > MAX_BYTES {
            return Err(MessageError::TooLarge {
                bytes: raw.len(),
                max: MAX_BYTES,
            });
        }
        Ok(raw)
    }

    /// The checks [`Message::decode`] applies after parsing: protocol version, names, id,
    /// correlation. `Err` holds the reason. Senders run it too, so they never put in a mailbox
    /// what the receiver would refuse.
    pub fn validate(&self) -> Result<(), String> {
        if self.v != PROTOCOL {
            return Err(format!(
                "protocol version {} is not supported (this side speaks {PROTOCOL})",
                self.v
            ));
        }
        if !valid_id(&self.id) {
            return Err(format!(
                "id {:?} is not valid (1-{MAX_ID_CHARS} characters of [A-Za-z0-9_.-])",
                self.id
            ));
        }
        for (field, name) in [("from", &self.from), ("to", &self.to)] {
            if !valid_name(name) {
                return Err(format!(
                    "{field} {name:?} is not a valid member name (1-{MAX_NAME_CHARS} characters of [A-Za-z0-9_.-])"
                ));
            }
        }
        if let Some(bad) = self.chain.iter().find(|name| !valid_name(name)) {
            return Err(format!("chain holds {bad:?}, not a valid member name"));
        }
        match (&self.correlation, self.kind) {
            (None, Kind::Response | Kind::Cancel | Kind::Heartbeat) => {
                return Err(format!(
                    "a {} needs a correlation (the request's id)",
                    kind_name(self.kind)
                ));
            }
            (Some(c), _) if !valid_id(c) => {
                return Err(format!("correlation {c:?} is not a valid id"));
            }
            _ => {}
        }
        Ok(())
    }

    /// Parses and validates raw bytes from a mailbox.
    pub fn decode(raw: &str) -> Result<Message, Malformed> {
        let refuse = |reason: String| Malformed {
            reason,
            from: None,
            id: None,
        };
        if raw.len() > MAX_BYTES {
            // Still worth naming the sender so it learns why it got no answer.
            return Err(with_head(
                raw,
                refuse(format!(
                    "message is {} bytes, over the {MAX_BYTES}-byte limit",
                    raw.len()
                )),
            ));
        }
        let message: Message = match serde_json::from_str(raw) {
            Ok(message) => message,
            Err(e) => {
                return Err(with_head(raw, refuse(format!("not a valid message: {e}"))));
            }
        };
        match message.validate() {
            Ok(()) => Ok(message),
            Err(reason) => Err(with_head(raw, refuse(reason))),
        }
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Request => "request",
        Kind::Response => "response",
        Kind::Cancel => "cancel",
        Kind::Heartbeat => "heartbeat",
    }
}

/// Just the fields a refusal needs. Unknown fields are skipped without being kept, so even an
/// oversized body costs one linear scan and no large allocation.
#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    from: Option<serde_json::Value>,
    #[serde(default)]
    id: Option<serde_json::Value>,
}

/// Fills `from` and `id` of a refusal from the raw JSON, when they are there and valid.
fn with_head(raw: &str, mut malformed: Malformed) -> Malformed {
    if let Ok(head) = serde_json::from_str::<Head>(raw) {
        malformed.from = head
            .from
            .and_then(|v| v.as_str().map(str::to_owned))
            .filter(|s| valid_name(s));
        malformed.id = head
            .id
            .and_then(|v| v.as_str().map(str::to_owned))
            .filter(|s| valid_id(s));
    }
    malformed
}

#[cfg(test)]
mod tests {
    use super::*;

    type Result = std::result::Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn round_trip_keeps_fields_and_omits_defaults() -> Result {
        let request = Message::request("lead", "dev-1", "build it", 42, vec!["lead".into()]);
        let raw = request.encode()?;
        assert!(!raw.contains("correlation") && !raw.contains("\"error\""));
        assert_eq!(Message::decode(&raw)?, request);
        let response = Message::response(&request, "done", true);
        assert_eq!(
            (response.from.as_str(), response.to.as_str()),
            ("dev-1", "lead")
        );
        assert_eq!(response.correlation.as_deref(), Some(request.id.as_str()));
        assert_eq!(Message::decode(&response.encode()?)?, response);
        let cancel = Message::cancel(&request, "no longer needed");
        assert_eq!(
            (cancel.from.as_str(), cancel.to.as_str()),
            ("lead", "dev-1")
        );
        let beat = Message::heartbeat("dev-1", "lead", &request.id, "halfway");
        assert_eq!(Message::decode(&beat.encode()?)?, beat);
        Ok(())
    }

    #[test]
    fn refusals_name_the_sender_when_they_can() {
        let bad_version =
            r#"{"v":9,"id":"abc","kind":"request","from":"lead","to":"dev","deadline":0}"#;
        match Message::decode(bad_version) {
            Err(m) => {
                assert!(m.reason.contains("protocol version 9"), "{m}");
                assert_eq!(m.from.as_deref(), Some("lead"));
                assert_eq!(m.id.as_deref(), Some("abc"));
            }
            Ok(m) => panic!("accepted {m:?}"),
        }
        let no_correlation =
            r#"{"v":1,"id":"abc","kind":"response","from":"a","to":"b","deadline":0}"#;
        assert!(
            matches!(Message::decode(no_correlation), Err(m) if m.reason.contains("correlation"))
        );
        let bad_from = r#"{"v":1,"id":"abc","kind":"request","from":"a b","to":"b","deadline":0}"#;
        assert!(
            matches!(Message::decode(bad_from), Err(m) if m.from.is_none() && m.reason.contains("from"))
        );
        assert!(matches!(Message::decode("{nope"), Err(m) if m.from.is_none() && m.id.is_none()));
    }

    #[test]
    fn size_limit_applies_both_ways() {
        let big = Message::request("a", "b", "x".repeat(MAX_BYTES), 0, Vec::new());
        assert!(matches!(
            big.encode(),
            Err(MessageError::TooLarge { max: MAX_BYTES, .. })
        ));
        let raw = format!(
            r#"{{"v":1,"id":"big1","kind":"request","from":"a","to":"b","deadline":0,"body":"{}"}}"#,
            "x".repeat(MAX_BYTES)
        );
        assert!(
            matches!(Message::decode(&raw), Err(m) if m.reason.contains("limit") && m.id.as_deref() == Some("big1"))
        );
    }

    #[test]
    fn names_and_deadlines() {
        assert!(valid_name("dev-1.a_b"));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
        assert!(!valid_name("a:b"));
        assert!(!valid_name(&"a".repeat(65)));
        assert!(valid_name(&"a".repeat(64)));
        let mut m = Message::request("a", "b", "", 0, Vec::new());
        assert!(!m.expired(u64::MAX));
        m.deadline = 10;
        assert!(!m.expired(10) && m.expired(11));
        assert!(now_ms() > 1_600_000_000_000);
    }
}
