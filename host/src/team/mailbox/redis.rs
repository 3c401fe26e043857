//! [`Redis`]: the mailbox backend for members in separate processes or on separate machines,
//! on Redis Streams with one consumer group per mailbox.
//!
//! Keys (all under `cove:{team}:`): `inbox:{member}` is a stream whose entries hold the raw
//! message JSON in field `m`, read through the consumer group named `{member}`;
//! `answer:{member}:{request_id}` holds a recorded answer; `presence:{member}` a presence with a
//! TTL, and the set `members` the names that ever beat.
//!
//! Owns the mapping of the [`Mailbox`] contract onto Redis commands and the connection
//! handling (reconnects, `Unavailable` errors). Must not interpret messages beyond the shared
//! checks in `team::mailbox`, and must not run blocking reads on the shared command connection
//! (a BLOCK would stall every other command behind it).

use crate::team::mailbox::{
    ANSWER_TTL, Delivery, Depth, Limits, Mailbox, MailboxError, Presence, after, check_id,
    check_name, decode_answer, decode_for, encode_answer, encode_for_send,
};
use crate::team::message::{Malformed, Message};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, Cmd, ErrorKind, Pipeline, RedisError, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;
use tracing::{debug, warn};

/// The longest single BLOCK: `receive` loops over slices this long, so a dropped connection is
/// noticed and reclaimable entries are looked for again at least this often.
const BLOCK_SLICE: Duration = Duration::from_secs(2);

/// How long a non-blocking command may take before the server counts as unreachable. Generous:
/// a loaded machine must not turn slowness into errors.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Idle blocking-read connections kept for reuse.
const MAX_IDLE_BLOCKING: usize = 8;

/// Stream entry field holding the message JSON.
const FIELD: &str = "m";

/// The Redis backend. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

struct Inner {
    /// The URL with any password masked, for messages.
    url: String,
    team: String,
    limits: Limits,
    client: Client,
    /// Every non-blocking command goes through this; it reconnects by itself after a failure.
    commands: ConnectionManager,
    /// Idle connections for blocking reads, each used by one read at a time.
    blocking: Mutex<Vec<MultiplexedConnection>>,
    /// Mailboxes whose consumer group this instance has made sure of.
    groups: Mutex<HashSet<String>>,
    /// Per (member, consumer): the consumer's unacknowledged deliveries found at this
    /// instance's first receive, still to be given back. Deliveries this instance makes are its
    /// caller's to finish, never handed out again while it runs.
    backlog: Mutex<HashMap<(String, String), VecDeque<String>>>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("url", &self.inner.url)
            .field("team", &self.inner.team)
            .field("limits", &self.inner.limits)
            .finish()
    }
}

/// One stream entry as read: its id and its message field (`None`: the entry was deleted
/// while pending; `Some(Err)`: it has no usable message field).
struct Entry {
    id: String,
    raw: Option<Result<String, String>>,
}

impl Redis {
    /// Connects to the Redis at `url` for team `team` (a namespace in the keys; a valid name).
    /// Fails with `Unavailable` (naming the URL) when the server cannot be reached.
    pub async fn connect(url: &str, team: &str, limits: Limits) -> Result<Redis, MailboxError> {
        check_name(team)?;
        let shown = mask_password(url);
        let client = Client::open(url)
            .map_err(|e| MailboxError::Backend(format!("invalid redis URL {shown}: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            // Few, short retries: a server that is down should surface as `Unavailable` soon,
            // and the caller decides when to try again.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let commands = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|e| classify(&shown, &e))?;
        let redis = Redis {
            inner: Arc::new(Inner {
                url: shown,
                team: team.to_owned(),
                limits,
                client,
                commands,
                blocking: Mutex::new(Vec::new()),
                groups: Mutex::new(HashSet::new()),
                backlog: Mutex::new(HashMap::new()),
            }),
        };
        let pong = redis.query(&redis::cmd("PING")).await?;
        debug!(url = %redis.inner.url, team, ?pong, "connected to redis");
        Ok(redis)
    }

    fn key(&self, rest: &str) -> String {
        format!("cove:{}:{rest}", self.inner.team)
    }

    fn inbox(&self, member: &str) -> String {
        self.key(&format!("inbox:{member}"))
    }

    fn error(&self, e: &RedisError) -> MailboxError {
        classify(&self.inner.url, e)
    }

    /// Runs one command on the shared connection.
    async fn query(&self, cmd: &Cmd) -> Result<Value, MailboxError> {
        self.query_raw(cmd).await.map_err(|e| self.error(&e))
    }

    /// Runs one command; `Ok(None)` when the server refuses it with error `code` (an expected
    /// refusal such as BUSYGROUP).
    async fn query_unless(&self, cmd: &Cmd, code: &str) -> Result<Option<Value>, MailboxError> {
        match self.query_raw(cmd).await {
            Ok(value) => Ok(Some(value)),
            Err(e) if e.code() == Some(code) => Ok(None),
            Err(e) => Err(self.error(&e)),
        }
    }

    async fn query_raw(&self, cmd: &Cmd) -> Result<Value, RedisError> {
        let mut con = self.inner.commands.clone();
        match cmd.query_async::<Value>(&mut con).await {
            Err(e) if connection_level(&e) => {
                // The manager starts reconnecting on the failure; one more try covers a server
                // that restarted since the last call. A repeated write is within the
                // at-least-once contract.
                debug!(url = %self.inner.url, error = %e, "redis command failed; retrying once");
                cmd.query_async::<Value>(&mut con).await
            }
            other => other,
        }
    }

    /// Runs a pipeline (usually MULTI/EXEC) on the shared connection; see [`Redis::query`].
    async fn query_pipe(&self, pipe: &Pipeline) -> Result<Value, MailboxError> {
        let mut con = self.inner.commands.clone();
        match pipe.query_async::<Value>(&mut con).await {
            Err(e) if connection_level(&e) => {
                debug!(url = %self.inner.url, error = %e, "redis pipeline failed; retrying once");
                pipe.query_async::<Value>(&mut con)
                    .await
                    .map_err(|e| self.error(&e))
            }
            other => other.map_err(|e| self.error(&e)),
        }
    }

    async fn open_blocking(&self) -> Result<MultiplexedConnection, MailboxError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(BLOCK_SLICE + COMMAND_TIMEOUT));
        self.inner
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| self.error(&e))
    }

    fn park(&self, con: MultiplexedConnection) {
        let mut idle = self
            .inner
            .blocking
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_BLOCKING {
            idle.push(con);
        }
    }

    /// Runs a blocking command on a connection of its own. The connection goes back to the
    /// idle list only after the reply: a read abandoned midway (its future dropped) takes its
    /// connection with it, so no later command queues behind a stale BLOCK.
    async fn query_blocking(&self, cmd: &Cmd) -> Result<Value, MailboxError> {
        let parked = self
            .inner
            .blocking
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let (mut con, fresh) = match parked {
            Some(con) => (con, false),
            None => (self.open_blocking().await?, true),
        };
        match cmd.query_async::<Value>(&mut con).await {
            Ok(value) => {
                self.park(con);
                Ok(value)
            }
            Err(e) if connection_level(&e) && !fresh => {
                // A parked connection may have died with a server restart: one fresh try.
                debug!(url = %self.inner.url, error = %e, "idle blocking connection failed; reopening");
                let mut con = self.open_blocking().await?;
                let value = cmd
                    .query_async::<Value>(&mut con)
                    .await
                    .map_err(|e| self.error(&e))?;
                self.park(con);
                Ok(value)
            }
            Err(e) if connection_level(&e) => Err(self.error(&e)),
            Err(e) => {
                // A server-side refusal leaves the connection fine.
                self.park(con);
                Err(self.error(&e))
            }
        }
    }

    /// Makes sure `member`'s stream and consumer group exist. The group starts at id 0 so that
    /// messages sent before the member ever ran are delivered.
    async fn ensure_group(&self, member: &str) -> Result<(), MailboxError> {
        if self.known_group(member) {
            return Ok(());
        }
        let mut cmd = redis::cmd("XGROUP");
        cmd.arg("CREATE")
            .arg(self.inbox(member))
            .arg(member)
            .arg("0")
            .arg("MKSTREAM");
        // BUSYGROUP: it exists already (made by another process, or before a restart).
        self.query_unless(&cmd, "BUSYGROUP").await?;
        self.inner
            .groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(member.to_owned());
        Ok(())
    }

    fn known_group(&self, member: &str) -> bool {
        self.inner
            .groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(member)
    }

    fn forget_group(&self, member: &str) {
        self.inner
            .groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(member);
    }

    /// The next of this consumer's deliveries left unacknowledged before this instance first
    /// received for it (a member restarted under the same name gets them back, once each).
    async fn own_pending(
        &self,
        member: &str,
        consumer: &str,
    ) -> Result<Option<Delivery>, MailboxError> {
        let key = self.inbox(member);
        let slot = (member.to_owned(), consumer.to_owned());
        let looked = self
            .inner
            .backlog
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&slot);
        if !looked {
            let mut cmd = redis::cmd("XPENDING");
            cmd.arg(&key)
                .arg(member)
                .arg("-")
                .arg("+")
                .arg(10_000)
                .arg(consumer);
            let ids: VecDeque<String> = items(self.query(&cmd).await?)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|row| items(row).and_then(|r| r.into_iter().next()).and_then(text))
                .collect();
            self.inner
                .backlog
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(slot.clone(), ids);
        }
        loop {
            let next = self
                .inner
                .backlog
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_mut(&slot)
                .and_then(VecDeque::pop_front);
            let Some(id) = next else {
                return Ok(None);
            };
            if let Some(d) = self.claim(&key, member, consumer, 0, &id).await? {
                return Ok(Some(d));
            }
        }
    }

    /// Claim entry `id` for `consumer` if it has been idle `min_idle` ms (counting a delivery);
    /// `None` when it is gone (acknowledged, or deleted: then it is acknowledged too).
    async fn claim(
        &self,
        key: &str,
        member: &str,
        consumer: &str,
        min_idle: u64,
        id: &str,
    ) -> Result<Option<Delivery>, MailboxError> {
        let mut cmd = redis::cmd("XCLAIM");
        cmd.arg(key).arg(member).arg(consumer).arg(min_idle).arg(id);
        let reply = self.query(&cmd).await?;
        let entries = items(reply).unwrap_or_default();
        for value in entries {
            if value == Value::Nil {
                continue;
            }
            let entry = entry(value).map_err(|e| self.bad_reply("XCLAIM", &e))?;
            match entry.raw {
                None => self.xack(key, member, &entry.id).await?,
                Some(raw) => {
                    let deliveries = self.delivery_count(key, member, &entry.id).await?;
                    return Ok(Some(delivery(member, entry.id, raw, deliveries)));
                }
            }
        }
        Ok(None)
    }

    /// Takes over an entry pending for another consumer for longer than `reclaim_after` (never
    /// one of this consumer's own: those are its caller's to finish).
    async fn reclaim(
        &self,
        member: &str,
        consumer: &str,
    ) -> Result<Option<Delivery>, MailboxError> {
        let key = self.inbox(member);
        let min_idle =
            u64::try_from(self.inner.limits.reclaim_after.as_millis()).unwrap_or(u64::MAX);
        let mut cmd = redis::cmd("XPENDING");
        cmd.arg(&key)
            .arg(member)
            .arg("IDLE")
            .arg(min_idle)
            .arg("-")
            .arg("+")
            .arg(64);
        let rows = items(self.query(&cmd).await?).unwrap_or_default();
        for row in rows {
            let mut row = items(row).unwrap_or_default().into_iter();
            let (Some(id), Some(owner)) = (row.next().and_then(text), row.next().and_then(text))
            else {
                continue;
            };
            if owner == consumer {
                continue;
            }
            if let Some(d) = self.claim(&key, member, consumer, min_idle, &id).await? {
                debug!(member, consumer, id = %d.id, from = %owner, "reclaimed a delivery");
                return Ok(Some(d));
            }
        }
        Ok(None)
    }

    /// The next new entry, waiting up to `block` (None: do not wait).
    async fn read_new(
        &self,
        member: &str,
        consumer: &str,
        block: Option<Duration>,
    ) -> Result<Option<Delivery>, MailboxError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(member)
            .arg(consumer)
            .arg("COUNT")
            .arg(1);
        if let Some(block) = block {
            // BLOCK 0 would mean forever.
            let ms = u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1);
            cmd.arg("BLOCK").arg(ms);
        }
        cmd.arg("STREAMS").arg(self.inbox(member)).arg(">");
        let reply = match block {
            Some(_) => self.query_blocking(&cmd).await?,
            None => self.query(&cmd).await?,
        };
        let entry = first_entry(reply).map_err(|e| self.bad_reply("XREADGROUP", &e))?;
        Ok(entry.map(|entry| {
            let raw = entry
                .raw
                .unwrap_or_else(|| Err("entry was deleted".to_owned()));
            delivery(member, entry.id, raw, 1)
        }))
    }

    async fn delivery_count(&self, key: &str, member: &str, id: &str) -> Result<u64, MailboxError> {
        let mut cmd = redis::cmd("XPENDING");
        cmd.arg(key).arg(member).arg(id).arg(id).arg(1);
        let reply = self.query(&cmd).await?;
        // [[id, consumer, idle ms, count]]; an entry acknowledged meanwhile has none: count it once.
        let count = items(reply)
            .and_then(|rows| rows.into_iter().next())
            .and_then(items)
            .and_then(|row| row.into_iter().nth(3))
            .and_then(int);
        Ok(count.map_or(1, |c| u64::try_from(c).unwrap_or(1)))
    }

    async fn xack(&self, key: &str, member: &str, id: &str) -> Result<(), MailboxError> {
        let mut cmd = redis::cmd("XACK");
        cmd.arg(key).arg(member).arg(id);
        self.query(&cmd).await.map(drop)
    }

    fn bad_reply(&self, command: &str, detail: &str) -> MailboxError {
        MailboxError::Backend(format!(
            "redis at {}: unexpected {command} reply: {detail}",
            self.inner.url
        ))
    }

    /// One pass (or one slice of waiting) of `receive`, in the contract's order.
    async fn receive_once(
        &self,
        member: &str,
        consumer: &str,
        own_first: bool,
        block: Option<Duration>,
    ) -> Result<Option<Delivery>, MailboxError> {
        if own_first && let Some(d) = self.own_pending(member, consumer).await? {
            return Ok(Some(d));
        }
        if let Some(d) = self.reclaim(member, consumer).await? {
            return Ok(Some(d));
        }
        self.read_new(member, consumer, block).await
    }
}

#[async_trait::async_trait]
impl Mailbox for Redis {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn send(&self, message: &Message) -> Result<(), MailboxError> {
        let raw = encode_for_send(message)?;
        self.ensure_group(&message.to).await?;
        let mut cmd = redis::cmd("XADD");
        cmd.arg(self.inbox(&message.to))
            .arg("*")
            .arg(FIELD)
            .arg(raw);
        self.query(&cmd).await.map(drop)
    }

    async fn send_raw(&self, member: &str, raw: &str) -> Result<(), MailboxError> {
        check_name(member)?;
        self.ensure_group(member).await?;
        let mut cmd = redis::cmd("XADD");
        cmd.arg(self.inbox(member)).arg("*").arg(FIELD).arg(raw);
        self.query(&cmd).await.map(drop)
    }

    async fn receive(
        &self,
        member: &str,
        consumer: &str,
        wait: Duration,
    ) -> Result<Option<Delivery>, MailboxError> {
        check_name(member)?;
        check_name(consumer)?;
        let until = after(wait);
        let mut own_first = true;
        let mut regrouped = false;
        loop {
            self.ensure_group(member).await?;
            let remaining = until.saturating_duration_since(Instant::now());
            let block = (!remaining.is_zero()).then(|| remaining.min(BLOCK_SLICE));
            match self.receive_once(member, consumer, own_first, block).await {
                Ok(Some(d)) => return Ok(Some(d)),
                Ok(None) => {}
                Err(MailboxError::Backend(e)) if !regrouped => {
                    // Most likely NOGROUP: the stream was deleted under us, or the server lost
                    // its data. Make sure of the group again, once, and start over; any other
                    // refusal will simply repeat and be reported.
                    warn!(member, error = %e, "receive refused; making sure of the consumer group");
                    self.forget_group(member);
                    regrouped = true;
                    continue;
                }
                Err(e) => return Err(e),
            }
            // Own deliveries only come from this consumer's own reads, none of which returned
            // anything since: looking once is enough.
            own_first = false;
            if Instant::now() >= until {
                return Ok(None);
            }
        }
    }

    async fn ack(&self, member: &str, delivery_id: &str) -> Result<(), MailboxError> {
        check_name(member)?;
        if !stream_id(delivery_id) {
            // Not an id this backend handed out: nothing to acknowledge.
            warn!(member, delivery_id, "ack of an unknown delivery id ignored");
            return Ok(());
        }
        let key = self.inbox(member);
        // One group per stream, so an acknowledged entry is of no further use: delete it, in
        // the same transaction so the stream never holds an acknowledged entry.
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("XACK")
            .arg(&key)
            .arg(member)
            .arg(delivery_id)
            .cmd("XDEL")
            .arg(&key)
            .arg(delivery_id);
        self.query_pipe(&pipe).await.map(drop)
    }

    async fn depth(&self, member: &str) -> Result<Depth, MailboxError> {
        check_name(member)?;
        let key = self.inbox(member);
        let mut cmd = redis::cmd("XLEN");
        cmd.arg(&key);
        let length = int(self.query(&cmd).await?).unwrap_or(0);
        let mut cmd = redis::cmd("XPENDING");
        cmd.arg(&key).arg(member);
        // NOGROUP: no group yet, so nothing was ever delivered.
        let pending = self
            .query_unless(&cmd, "NOGROUP")
            .await?
            .and_then(items)
            .and_then(|row| row.into_iter().next())
            .and_then(int)
            .unwrap_or(0);
        let pending = u64::try_from(pending).unwrap_or(0);
        let length = u64::try_from(length).unwrap_or(0);
        Ok(Depth {
            // The two reads are not atomic; saturate rather than report nonsense.
            waiting: length.saturating_sub(pending),
            pending,
        })
    }

    async fn record_answer(
        &self,
        member: &str,
        request_id: &str,
        response: &Message,
    ) -> Result<Message, MailboxError> {
        let raw = encode_answer(member, request_id, response)?;
        let key = self.key(&format!("answer:{member}:{request_id}"));
        // SET NX then GET: the GET can find nothing only if the answer expired in between,
        // so a couple of rounds settle it.
        for _ in 0..3 {
            let mut cmd = redis::cmd("SET");
            cmd.arg(&key)
                .arg(&raw)
                .arg("NX")
                .arg("EX")
                .arg(ANSWER_TTL.as_secs());
            if matches!(self.query(&cmd).await?, Value::Okay) {
                return Ok(response.clone());
            }
            let mut cmd = redis::cmd("GET");
            cmd.arg(&key);
            if let Some(recorded) = text(self.query(&cmd).await?) {
                return decode_answer(&recorded);
            }
        }
        Err(MailboxError::Backend(format!(
            "redis at {}: answer {key} kept vanishing",
            self.inner.url
        )))
    }

    async fn answer(
        &self,
        member: &str,
        request_id: &str,
    ) -> Result<Option<Message>, MailboxError> {
        check_name(member)?;
        check_id(request_id)?;
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(&format!("answer:{member}:{request_id}")));
        match text(self.query(&cmd).await?) {
            Some(raw) => decode_answer(&raw).map(Some),
            None => Ok(None),
        }
    }

    async fn beat(&self, presence: &Presence, ttl: Duration) -> Result<(), MailboxError> {
        check_name(&presence.member)?;
        let json = serde_json::to_string(presence)
            .map_err(|e| MailboxError::Invalid(format!("presence: {e}")))?;
        // Redis refuses absurd expiries; a year is as good as forever for a heartbeat.
        let ttl = ttl.min(Duration::from_secs(365 * 24 * 60 * 60));
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(self.key(&format!("presence:{}", presence.member)))
            .arg(json)
            .arg("PX")
            .arg(ttl_ms)
            .cmd("SADD")
            .arg(self.key("members"))
            .arg(&presence.member);
        self.query_pipe(&pipe).await.map(drop)
    }

    async fn presence(&self) -> Result<Vec<Presence>, MailboxError> {
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(self.key("members"));
        let mut members: Vec<String> = items(self.query(&cmd).await?)
            .unwrap_or_default()
            .into_iter()
            .filter_map(text)
            .collect();
        members.sort();
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("MGET");
        for member in &members {
            cmd.arg(self.key(&format!("presence:{member}")));
        }
        let values = items(self.query(&cmd).await?).unwrap_or_default();
        // A member whose key expired stays in the set (removing it here could race with its
        // next beat); the set only grows by member names, which a team has few of.
        let mut all = Vec::new();
        for (member, value) in members.iter().zip(values) {
            let Some(json) = text(value) else { continue };
            match serde_json::from_str::<Presence>(&json) {
                Ok(p) => all.push(p),
                Err(e) => warn!(member, error = %e, "unreadable presence; ignoring it"),
            }
        }
        all.sort_by(|a, b| a.member.cmp(&b.member));
        Ok(all)
    }

    async fn leave(&self, member: &str) -> Result<(), MailboxError> {
        check_name(member)?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("DEL")
            .arg(self.key(&format!("presence:{member}")))
            .cmd("SREM")
            .arg(self.key("members"))
            .arg(member);
        self.query_pipe(&pipe).await.map(drop)
    }
}

/// Whether `id` looks like a stream entry id (`ms-seq` or `ms`), so XACK will not refuse it.
fn stream_id(id: &str) -> bool {
    let mut parts = id.splitn(2, '-');
    let number =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let ms = parts.next();
    let seq = parts.next();
    number(ms) && (seq.is_none() || number(seq))
}

/// Whether `e` means the server could not be reached or did not answer (as opposed to refusing
/// a command): the caller should retry later.
fn connection_level(e: &RedisError) -> bool {
    use redis::ServerErrorKind as S;
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::Server(S::BusyLoading | S::TryAgain | S::MasterDown | S::ClusterDown)
        )
}

/// The mailbox error for a Redis failure at `url` (shown masked).
fn classify(url: &str, e: &RedisError) -> MailboxError {
    if connection_level(e) {
        MailboxError::Unavailable(format!("redis at {url} is unreachable: {e}"))
    } else {
        MailboxError::Backend(format!("redis at {url}: {e}"))
    }
}

/// `url` with the password (if any) replaced, fit for logs and errors.
fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => url.to_owned(),
    }
}

fn delivery(member: &str, id: String, raw: Result<String, String>, deliveries: u64) -> Delivery {
    let message = match raw {
        Ok(raw) => decode_for(member, &raw),
        Err(reason) => Err(Malformed {
            reason,
            from: None,
            id: None,
        }),
    };
    Delivery {
        id,
        message,
        deliveries,
    }
}

fn items(value: Value) -> Option<Vec<Value>> {
    match value {
        Value::Array(items) | Value::Set(items) => Some(items),
        Value::Map(pairs) => Some(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        _ => None,
    }
}

fn text(value: Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
        Value::SimpleString(s) => Some(s),
        Value::VerbatimString { text, .. } => Some(text),
        _ => None,
    }
}

fn int(value: Value) -> Option<i64> {
    match value {
        Value::Int(i) => Some(i),
        other => text(other).and_then(|s| s.parse().ok()),
    }
}

/// `[id, [field, value, ...] | nil]`.
fn entry(value: Value) -> Result<Entry, String> {
    let mut parts = items(value).ok_or("entry is not an array")?.into_iter();
    let id = parts.next().and_then(text).ok_or("entry has no id")?;
    let raw = match parts.next() {
        None | Some(Value::Nil) => None,
        Some(fields) => {
            let fields = items(fields).ok_or("entry fields are not an array")?;
            let mut raw = Err(format!("stream entry has no {FIELD:?} field"));
            let mut fields = fields.into_iter();
            while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
                if text(name).as_deref() == Some(FIELD) {
                    raw = match value {
                        Value::BulkString(bytes) => {
                            String::from_utf8(bytes).map_err(|_| "message is not UTF-8".to_owned())
                        }
                        other => text(other).ok_or_else(|| "message is not a string".to_owned()),
                    };
                    break;
                }
            }
            Some(raw)
        }
    };
    Ok(Entry { id, raw })
}

/// The first entry of an XREADGROUP reply on one stream: `nil` or `[[key, [entry...]]]`.
fn first_entry(reply: Value) -> Result<Option<Entry>, String> {
    let streams = match reply {
        Value::Nil => return Ok(None),
        Value::Map(pairs) => pairs.into_iter().map(|(_, entries)| entries).collect(),
        other => items(other)
            .ok_or("reply is not an array")?
            .into_iter()
            .filter_map(|stream| items(stream).and_then(|kv| kv.into_iter().nth(1)))
            .collect::<Vec<_>>(),
    };
    let Some(entries) = streams.into_iter().next() else {
        return Ok(None);
    };
    match items(entries).and_then(|e| e.into_iter().next()) {
        Some(first) => entry(first).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_password("redis://:secret@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(
            mask_password("redis://user:p@ss@host/"),
            "redis://user:***@host/"
        );
        assert_eq!(
            mask_password("redis://127.0.0.1:1/"),
            "redis://127.0.0.1:1/"
        );
    }

    #[test]
    fn stream_ids_are_recognised() {
        assert!(stream_id("1700000000000-0"));
        assert!(stream_id("17"));
        assert!(!stream_id(""));
        assert!(!stream_id("1-"));
        assert!(!stream_id("a-1"));
        assert!(!stream_id("1-2-3"));
    }
}
