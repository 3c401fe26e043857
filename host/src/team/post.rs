//! One member's post office: what it sends, what it receives, and its protocol state.
//!
//! Owns the member's side of the protocol over a [`Mailbox`]: `ask` (IDLE/RESPOND → REQUEST →
//! WAIT → back, with the deadline, cancellation and the answer matched by correlation id),
//! `notify` (a message that expects no answer), the router that reads the member's mailbox
//! (answers and heartbeats to whoever waits on them, cancels to the request they name, requests
//! to the worker, malformed messages answered with an error to their sender when it can be
//! told), and the worker that takes one request at a time (IDLE → RESPOND → IDLE) and answers
//! it exactly once: the answer is recorded before it is sent and the request acknowledged only
//! after, so a member that dies mid-way finds the request again when it comes back, and one
//! answered already is answered from the record instead of being worked on twice; the asker
//! takes the first answer to its request and drops any later copy.
//! Must not run an agent (a [`Handler`] does) or know which backend carries the messages.

use crate::team::fsm::{ProtocolError, Serving, State};
use crate::team::mailbox::{Mailbox, MailboxError, Presence};
use crate::team::message::{Kind, Message, now_ms};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// How long one read of the mailbox waits before the router looks around again.
const POLL: Duration = Duration::from_secs(1);
/// How often a member says it is alive, and how long that holds.
pub const BEAT: Duration = Duration::from_secs(2);
pub const BEAT_TTL: Duration = Duration::from_secs(10);
/// How often a responder tells its asker it is still at work.
const WORKING: Duration = Duration::from_secs(5);

/// The answer a [`Handler`] gives to a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub text: String,
    pub error: bool,
}

/// Works on the requests a member receives (the teammate's agent, or a test's stand-in).
pub trait Handler: Send + Sync {
    /// Work on `request` (a notice when `request.notice`: its answer is dropped) until done or
    /// `cancel`led.
    fn handle(
        &self,
        request: Message,
        cancel: CancellationToken,
    ) -> Pin<Box<dyn Future<Output = Answer> + Send>>;
}

/// The limits a member's requests are held to.
#[derive(Debug, Clone)]
pub struct Limits {
    /// How long `ask` waits for an answer.
    pub timeout: Duration,
    /// How many members may wait on one chain.
    pub max_depth: usize,
}

/// A request handed from the router to the worker, not acknowledged yet.
struct Incoming {
    delivery: String,
    message: Message,
}

/// What an `ask` came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Asked {
    /// The answer (`error`: the member answered with an error).
    Answered { text: String, error: bool },
    /// Refused before sending (a cycle, the depth bound, a bad name, a backend down, …).
    Refused(String),
    /// No answer before the deadline.
    TimedOut {
        after: Duration,
        heard: Option<Duration>,
    },
    /// The asker's turn was cancelled; the member was told to stop.
    Cancelled,
}

/// One member's post office.
pub struct Post {
    me: String,
    consumer: String,
    mailbox: Arc<dyn Mailbox>,
    limits: Limits,
    state: Mutex<State>,
    /// Asks waiting for their answer, by request id; and when their member was last heard.
    waiters: Mutex<HashMap<String, oneshot::Sender<Message>>>,
    heard: Mutex<HashMap<String, Instant>>,
    /// Requests being worked on, by id, to cancel them.
    running: Mutex<HashMap<String, CancellationToken>>,
    /// Deliveries handed to the worker and not acknowledged yet (a backend may deliver one again).
    in_flight: Mutex<HashSet<String>>,
    /// Messages that expect no answer, received by a member that takes no requests.
    notices: Mutex<Vec<Message>>,
    /// Wakes the heartbeat when the state changes, so `cove team status` shows it at once.
    changed: tokio::sync::Notify,
    since: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these leaves plain data behind: go on with it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Post {
    /// The post office of member `me` (read as `consumer`: its name, so that a member started
    /// again finds what it had not acknowledged).
    pub fn new(me: &str, mailbox: Arc<dyn Mailbox>, limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            me: me.to_string(),
            consumer: me.to_string(),
            mailbox,
            limits,
            state: Mutex::new(State::Idle),
            waiters: Mutex::new(HashMap::new()),
            heard: Mutex::new(HashMap::new()),
            running: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashSet::new()),
            notices: Mutex::new(Vec::new()),
            changed: tokio::sync::Notify::new(),
            since: now_ms(),
        })
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    pub fn mailbox(&self) -> &Arc<dyn Mailbox> {
        &self.mailbox
    }

    /// The protocol state now.
    pub fn state(&self) -> State {
        lock(&self.state).clone()
    }

    /// Apply a transition to the state; a refused one leaves it as it was.
    fn step(
        &self,
        f: impl FnOnce(State) -> Result<State, ProtocolError>,
    ) -> Result<(), ProtocolError> {
        let mut guard = lock(&self.state);
        let now = std::mem::take(&mut *guard);
        match f(now) {
            Ok(next) => {
                *guard = next;
                self.changed.notify_one();
                Ok(())
            }
            Err(e) => {
                *guard = (*e.state).clone();
                Err(e)
            }
        }
    }

    /// Messages that expected no answer, received since the last call.
    pub fn take_notices(&self) -> Vec<Message> {
        std::mem::take(&mut *lock(&self.notices))
    }

    /// Ask `to` and wait for its answer (REQUEST → WAIT → back), until the deadline or `cancel`.
    pub async fn ask(&self, to: &str, body: &str, cancel: &CancellationToken) -> Asked {
        let deadline = now_ms() + self.limits.timeout.as_millis() as u64;
        let mut request = Message::request(&self.me, to, body, deadline, Vec::new());
        let id = request.id.clone();
        if let Err(e) = self.step(|s| s.request(&self.me, to, &id, self.limits.max_depth)) {
            return Asked::Refused(e.why);
        }
        if let State::Request { asking, .. } = self.state() {
            request.chain = asking.chain;
        }
        let (tx, rx) = oneshot::channel();
        lock(&self.waiters).insert(id.clone(), tx);
        if let Err(e) = self.mailbox.send(&request).await {
            lock(&self.waiters).remove(&id);
            let _ = self.step(State::unsent);
            return Asked::Refused(format!("the request could not be sent to {to}: {e}"));
        }
        let _ = self.step(State::sent);
        let started = Instant::now();
        let outcome = tokio::select! {
            answer = rx => match answer {
                Ok(m) => Asked::Answered { text: m.body, error: m.error },
                Err(_) => Asked::Refused("the mailbox stopped before an answer came".into()),
            },
            () = tokio::time::sleep(self.limits.timeout) => Asked::TimedOut {
                after: started.elapsed(),
                heard: lock(&self.heard).get(&id).map(|t| t.elapsed()),
            },
            () = cancel.cancelled() => {
                // Tell it to stop; if it cannot be told, its answer is dropped when it comes.
                let _ = self.mailbox.send(&Message::cancel(&request, "the asker's turn was cancelled")).await;
                Asked::Cancelled
            }
        };
        lock(&self.waiters).remove(&id);
        lock(&self.heard).remove(&id);
        if let Err(e) = self.step(|s| s.answered(&id)) {
            tracing::error!("team protocol: {e}");
        }
        outcome
    }

    /// Send `to` a message that expects no answer.
    ///
    /// # Errors
    /// When it cannot be sent.
    pub async fn notify(&self, to: &str, body: &str) -> Result<(), MailboxError> {
        let chain = self
            .state()
            .serving()
            .map(|s| s.chain.clone())
            .unwrap_or_default();
        let mut m = Message::request(&self.me, to, body, 0, chain);
        m.notice = true;
        self.mailbox.send(&m).await
    }

    /// Read the mailbox until `stop`: answers to their asks, cancels to their requests,
    /// requests to `work` (none: this member takes no requests and says so to the asker).
    pub async fn route(
        self: Arc<Self>,
        work: Option<mpsc::UnboundedSender<(String, Message)>>,
        stop: CancellationToken,
    ) {
        let mut down_since: Option<Instant> = None;
        loop {
            let got = tokio::select! {
                () = stop.cancelled() => return,
                got = self.mailbox.receive(&self.me, &self.consumer, POLL) => got,
            };
            let delivery = match got {
                Ok(Some(d)) => {
                    if let Some(t) = down_since.take() {
                        tracing::warn!(
                            "{}: the mailbox is back after {:.1} s",
                            self.me,
                            t.elapsed().as_secs_f64()
                        );
                    }
                    d
                }
                Ok(None) => continue,
                Err(e) => {
                    if down_since.is_none() {
                        tracing::warn!("{}: the mailbox is unavailable, retrying: {e}", self.me);
                        down_since = Some(Instant::now());
                    }
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_millis(250)) => continue,
                    }
                }
            };
            if lock(&self.in_flight).contains(&delivery.id) {
                continue;
            }
            let message = match delivery.message {
                Ok(m) => m,
                Err(bad) => {
                    tracing::warn!("{}: a malformed message was rejected: {bad}", self.me);
                    if let (Some(from), Some(id)) = (&bad.from, &bad.id) {
                        // Answered as a response to what its sender would have asked.
                        let asked = Message {
                            id: id.clone(),
                            ..Message::request(from.as_str(), self.me.as_str(), "", 0, Vec::new())
                        };
                        let reply = Message::response(
                            &asked,
                            format!("your message to {} was rejected: {bad}", self.me),
                            true,
                        );
                        let _ = self.mailbox.send(&reply).await;
                    }
                    self.ack(&delivery.id).await;
                    continue;
                }
            };
            match message.kind {
                Kind::Response => {
                    let waiter = message
                        .correlation
                        .as_ref()
                        .and_then(|c| lock(&self.waiters).remove(c));
                    match waiter {
                        Some(tx) => {
                            let _ = tx.send(message);
                        }
                        // A copy of an answer already taken, or one that came too late.
                        None => tracing::debug!(
                            "{}: an answer to {:?} nobody waits on was dropped",
                            self.me,
                            message.correlation
                        ),
                    }
                    self.ack(&delivery.id).await;
                }
                Kind::Heartbeat => {
                    if let Some(c) = &message.correlation {
                        lock(&self.heard).insert(c.clone(), Instant::now());
                    }
                    self.ack(&delivery.id).await;
                }
                Kind::Cancel => {
                    if let Some(token) = message
                        .correlation
                        .as_ref()
                        .and_then(|c| lock(&self.running).get(c).cloned())
                    {
                        token.cancel();
                    }
                    self.ack(&delivery.id).await;
                }
                Kind::Request => match &work {
                    Some(work) => {
                        lock(&self.in_flight).insert(delivery.id.clone());
                        if work.send((delivery.id.clone(), message)).is_err() {
                            return;
                        }
                    }
                    None if message.notice => {
                        lock(&self.notices).push(message);
                        self.ack(&delivery.id).await;
                    }
                    None => {
                        let answer = Message::response(
                            &message,
                            format!("{} takes no requests; send it a message instead", self.me),
                            true,
                        );
                        let _ = self.mailbox.send(&answer).await;
                        self.ack(&delivery.id).await;
                    }
                },
            }
        }
    }

    async fn ack(&self, delivery: &str) {
        // An acknowledgement that does not arrive means a delivery again, which is answered
        // from the record: retry a little, then leave it to that.
        for _ in 0..20 {
            match self.mailbox.ack(&self.me, delivery).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::debug!("{}: ack of {delivery} failed: {e}", self.me);
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
        lock(&self.in_flight).remove(delivery);
    }

    /// Send `m`, retrying while the backend is down, until `stop`.
    async fn send_surely(&self, m: &Message, stop: &CancellationToken) -> bool {
        let mut wait = Duration::from_millis(100);
        loop {
            match self.mailbox.send(m).await {
                Ok(()) => return true,
                Err(MailboxError::Unavailable(e)) => {
                    tracing::warn!("{}: cannot send yet, retrying: {e}", self.me);
                }
                Err(e) => {
                    tracing::error!("{}: cannot send to {}: {e}", self.me, m.to);
                    return false;
                }
            }
            tokio::select! {
                () = stop.cancelled() => return false,
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(Duration::from_secs(2));
        }
    }

    /// Take the requests the router hands over, one at a time, until `stop`, and answer each
    /// with `handler`.
    pub async fn serve(
        self: Arc<Self>,
        mut work: mpsc::UnboundedReceiver<(String, Message)>,
        handler: Arc<dyn Handler>,
        stop: CancellationToken,
    ) {
        loop {
            let (delivery, request) = tokio::select! {
                () = stop.cancelled() => return,
                next = work.recv() => match next {
                    Some(n) => n,
                    None => return,
                },
            };
            let incoming = Incoming {
                delivery,
                message: request,
            };
            if !self.clone().answer(incoming, &handler, &stop).await {
                return;
            }
        }
    }

    /// Answer one request; false when stopped half-way (it stays unacknowledged).
    async fn answer(
        self: Arc<Self>,
        incoming: Incoming,
        handler: &Arc<dyn Handler>,
        stop: &CancellationToken,
    ) -> bool {
        let Incoming { delivery, message } = incoming;
        if message.deadline != 0 && message.expired(now_ms()) {
            tracing::info!(
                "{}: request {} expired before it was taken",
                self.me,
                message.id
            );
            self.ack(&delivery).await;
            return true;
        }
        // Answered before (this member died between answering and acknowledging): the same
        // answer again, which the asker drops if it has it.
        let mut wait = Duration::from_millis(100);
        let recorded = loop {
            match self.mailbox.answer(&self.me, &message.id).await {
                Ok(r) => break r,
                Err(e) => tracing::warn!("{}: cannot read the answers record yet: {e}", self.me),
            }
            tokio::select! {
                () = stop.cancelled() => return false,
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(Duration::from_secs(2));
        };
        if let Some(recorded) = recorded {
            if self.send_surely(&recorded, stop).await {
                self.ack(&delivery).await;
            }
            return !stop.is_cancelled();
        }
        if message.notice {
            let cancel = stop.child_token();
            let _ = handler.handle(message, cancel).await;
            self.ack(&delivery).await;
            return !stop.is_cancelled();
        }
        let serving = Serving {
            id: message.id.clone(),
            from: message.from.clone(),
            chain: message.chain.clone(),
            about: about(&message.body),
        };
        let answer = match self.step(|s| s.take(&self.me, serving)) {
            Err(e) => Answer {
                text: e.why,
                error: true,
            },
            Ok(()) => {
                let cancel = stop.child_token();
                lock(&self.running).insert(message.id.clone(), cancel.clone());
                let ticking = self.clone().tell_working(message.clone(), cancel.clone());
                let answer = handler.handle(message.clone(), cancel.clone()).await;
                ticking.abort();
                lock(&self.running).remove(&message.id);
                if let Err(e) = self.step(|s| s.responded(&message.id)) {
                    tracing::error!("team protocol: {e}");
                }
                if stop.is_cancelled() {
                    // Stopped, not answered: the request is found again when the member is back.
                    return false;
                }
                if cancel.is_cancelled() {
                    Answer {
                        text: format!("{} stopped: the asker cancelled the request", self.me),
                        error: true,
                    }
                } else {
                    answer
                }
            }
        };
        let response = Message::response(&message, &answer.text, answer.error);
        let response = match self
            .mailbox
            .record_answer(&self.me, &message.id, &response)
            .await
        {
            Ok(first) => first,
            Err(e) => {
                tracing::warn!("{}: the answer could not be recorded: {e}", self.me);
                response
            }
        };
        if self.send_surely(&response, stop).await {
            self.ack(&delivery).await;
        }
        !stop.is_cancelled()
    }

    /// While a request is worked on, tell its asker now and then.
    fn tell_working(
        self: Arc<Self>,
        request: Message,
        done: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let started = Instant::now();
            loop {
                tokio::select! {
                    () = done.cancelled() => return,
                    () = tokio::time::sleep(WORKING) => {}
                }
                let beat = Message::heartbeat(
                    &self.me,
                    &request.from,
                    &request.id,
                    format!("working for {} s", started.elapsed().as_secs()),
                );
                let _ = self.mailbox.send(&beat).await;
            }
        })
    }

    /// Say this member is alive, what state it is in and how deep its mailbox is, every
    /// [`BEAT`] until `stop`; then say it left.
    pub async fn beat(self: Arc<Self>, stop: CancellationToken) {
        let host = host_name();
        loop {
            let state = self.state();
            let presence = Presence {
                member: self.me.clone(),
                consumer: self.consumer.clone(),
                state: state.name().to_string(),
                working_on: state.working_on(),
                host: host.clone(),
                pid: std::process::id(),
                since: self.since,
                beat: now_ms(),
            };
            if let Err(e) = self.mailbox.beat(&presence, BEAT_TTL).await {
                tracing::debug!("{}: heartbeat failed: {e}", self.me);
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(BEAT) => {}
                () = self.changed.notified() => {}
            }
        }
        let _ = self.mailbox.leave(&self.me).await;
    }
}

/// A few words on what a request is about.
fn about(body: &str) -> String {
    let line = body
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if line.chars().count() > 60 {
        format!("{}…", line.chars().take(60).collect::<String>())
    } else {
        line.to_string()
    }
}

/// This machine's name, as `cove team status` shows it.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}
