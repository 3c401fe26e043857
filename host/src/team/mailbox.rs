//! Teammates' mailboxes: the [`Mailbox`] trait every backend implements (at-least-once delivery
//! of typed [`Message`]s, recorded answers, presence) and the types it speaks in.
//!
//! Owns the contract and the checks shared by all backends. Must not hold storage itself (that
//! is `memory` and `redis`) and must not decide what members do with messages (retries,
//! cancellation and cycle checks belong to the team layer above).

use crate::team::message::{MAX_BYTES, Malformed, Message, MessageError, valid_id, valid_name};
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub mod memory;
pub mod redis;

/// How long an answer recorded by [`Mailbox::record_answer`] is kept at least.
pub const ANSWER_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// A store of per-member mailboxes with at-least-once delivery.
///
/// Every message stays in its recipient's mailbox until acknowledged; a delivery that is never
/// acknowledged comes back (to the same consumer after a restart, or to another consumer of the
/// member after [`Limits::reclaim_after`]). Receivers must therefore tolerate duplicates (the
/// message id makes them recognisable).
#[async_trait::async_trait]
pub trait Mailbox: Send + Sync {
    /// The backend's name: "memory" or "redis".
    fn backend(&self) -> &'static str;

    /// Validates and appends to `message.to`'s mailbox. Over [`MAX_BYTES`]: Err(TooLarge),
    /// nothing sent.
    async fn send(&self, message: &Message) -> Result<(), MailboxError>;

    /// Appends bytes as they are, unvalidated (bridges and tests of the malformed path).
    async fn send_raw(&self, member: &str, raw: &str) -> Result<(), MailboxError>;

    /// The next delivery for `member`, read as `consumer`. Order: first this consumer's own
    /// unacknowledged deliveries (a member restarted under the same consumer name gets back what
    /// it had not acknowledged), then entries pending for another consumer of `member` for
    /// longer than `reclaim_after` (a member that died, replaced under another name), then new
    /// messages. Waits up to `wait` for one; Ok(None) when none came.
    async fn receive(
        &self,
        member: &str,
        consumer: &str,
        wait: Duration,
    ) -> Result<Option<Delivery>, MailboxError>;

    /// Done with a delivery: it is never delivered again (and may be deleted). Acknowledging an
    /// unknown, malformed or already acknowledged delivery id is not an error (it is ignored).
    async fn ack(&self, member: &str, delivery_id: &str) -> Result<(), MailboxError>;

    /// How many messages `member`'s mailbox holds, by state.
    async fn depth(&self, member: &str) -> Result<Depth, MailboxError>;

    /// Records `response` as the answer to request `request_id` sent to `member` unless one is
    /// recorded already; returns the recorded one (the first wins). Kept at least a day.
    async fn record_answer(
        &self,
        member: &str,
        request_id: &str,
        response: &Message,
    ) -> Result<Message, MailboxError>;

    /// The answer recorded for request `request_id` sent to `member`, if any.
    async fn answer(&self, member: &str, request_id: &str)
    -> Result<Option<Message>, MailboxError>;

    /// Stores `presence` for `ttl` (replacing the member's previous one).
    async fn beat(&self, presence: &Presence, ttl: Duration) -> Result<(), MailboxError>;

    /// The unexpired presences, sorted by member.
    async fn presence(&self) -> Result<Vec<Presence>, MailboxError>;

    /// Removes `member`'s presence.
    async fn leave(&self, member: &str) -> Result<(), MailboxError>;
}

/// One delivery of a mailbox entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// What to pass to [`Mailbox::ack`].
    pub id: String,
    /// The message, or why the raw entry is not one (the receiver should tell `from`, when
    /// known, and acknowledge it so it does not come back).
    pub message: Result<Message, Malformed>,
    /// Times this entry has been delivered, this one included (above 1: a redelivery).
    pub deliveries: u64,
}

/// A mailbox's size.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Depth {
    /// Not yet delivered.
    pub waiting: u64,
    /// Delivered, not acknowledged.
    pub pending: u64,
}

/// What a running member says about itself, refreshed by [`Mailbox::beat`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Presence {
    /// The member's name.
    pub member: String,
    /// The consumer name it receives as.
    pub consumer: String,
    /// Its state, e.g. "idle" or "working".
    pub state: String,
    /// The request id it is working on, if any.
    pub working_on: Option<String>,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// Unix ms when it started.
    pub since: u64,
    /// Unix ms of this beat.
    pub beat: u64,
}

/// Backend settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// How long a delivery may stay unacknowledged by one consumer before another consumer of
    /// the same member may take it over.
    pub reclaim_after: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            reclaim_after: Duration::from_secs(30),
        }
    }
}

/// Why a mailbox operation failed.
#[derive(thiserror::Error, Debug)]
pub enum MailboxError {
    /// The encoded message is over the size limit; nothing was sent.
    #[error(
        "too large: {bytes} bytes encoded, over the {max}-byte limit; send less (a file path instead of its contents)"
    )]
    TooLarge {
        /// The encoded size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A member, consumer or team name is not valid.
    #[error("{0:?} is not a valid name (1-64 characters of [A-Za-z0-9_.-])")]
    BadName(String),
    /// The message breaks the protocol (a receiver would refuse it); nothing was sent.
    #[error("invalid message: {0}")]
    Invalid(String),
    /// The backend cannot be reached: retry later.
    #[error("mailbox unavailable: {0}")]
    Unavailable(String),
    /// The backend answered with an error.
    #[error("mailbox backend error: {0}")]
    Backend(String),
}

impl From<MessageError> for MailboxError {
    fn from(e: MessageError) -> Self {
        match e {
            MessageError::TooLarge { bytes, max } => MailboxError::TooLarge { bytes, max },
            MessageError::Encode(reason) => MailboxError::Invalid(reason),
        }
    }
}

/// `wait` from now, capped at a year so an absurd `Duration` cannot overflow the clock.
pub(crate) fn after(wait: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(wait.min(Duration::from_secs(365 * 24 * 60 * 60)))
        .unwrap_or(now)
}

/// Refuses a name that is not [`valid_name`].
pub(crate) fn check_name(name: &str) -> Result<(), MailboxError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(MailboxError::BadName(name.to_owned()))
    }
}

/// The checks both backends make before recording `response` as the answer to `request_id`
/// sent to `member`; the response encoded.
pub(crate) fn encode_answer(
    member: &str,
    request_id: &str,
    response: &Message,
) -> Result<String, MailboxError> {
    check_name(member)?;
    check_id(request_id)?;
    response.validate().map_err(MailboxError::Invalid)?;
    Ok(response.encode()?)
}

/// Refuses a request id that is not [`valid_id`] (ids become parts of storage keys).
pub(crate) fn check_id(id: &str) -> Result<(), MailboxError> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(MailboxError::Invalid(format!(
            "request id {id:?} is not valid"
        )))
    }
}

/// What `send` puts in the mailbox: the checked encoding of `message`.
pub(crate) fn encode_for_send(message: &Message) -> Result<String, MailboxError> {
    check_name(&message.to)?;
    message.validate().map_err(MailboxError::Invalid)?;
    let raw = message.encode()?;
    debug_assert!(raw.len() <= MAX_BYTES);
    Ok(raw)
}

/// Decodes an entry found in `member`'s mailbox; a message addressed to someone else is
/// refused too (a bridge or a bug put it in the wrong mailbox, and its sender should know).
pub(crate) fn decode_for(member: &str, raw: &str) -> Result<Message, Malformed> {
    let message = Message::decode(raw)?;
    if message.to != member {
        return Err(Malformed {
            reason: format!(
                "addressed to {:?} but found in {member:?}'s mailbox",
                message.to
            ),
            from: Some(message.from),
            id: Some(message.id),
        });
    }
    Ok(message)
}

/// Decodes a recorded answer, which this side wrote itself: a bad one is a backend fault.
pub(crate) fn decode_answer(raw: &str) -> Result<Message, MailboxError> {
    Message::decode(raw).map_err(|m| MailboxError::Backend(format!("recorded answer: {m}")))
}
