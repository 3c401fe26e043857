//! [`Memory`]: the in-process mailbox backend, for a team whose members all run in one process
//! (and for tests). Clones share one state, so each member can hold its own handle.
//!
//! Owns only in-process storage with the same observable behaviour as the Redis backend
//! (messages are kept as raw JSON so `send_raw` and malformed entries behave identically).
//! Must not persist anything or talk to other processes: state dies with the process.

use crate::team::mailbox::{
    ANSWER_TTL, Delivery, Depth, Limits, Mailbox, MailboxError, Presence, after, check_id,
    check_name, decode_answer, decode_for, encode_answer, encode_for_send,
};
use crate::team::message::Message;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::warn;

/// The in-process backend. Cheap to clone; clones share the mailboxes, and each clone stands
/// for a process of its own: its first receive for a consumer gives back what that consumer
/// had not acknowledged, once.
#[derive(Debug)]
pub struct Memory {
    shared: Arc<Shared>,
    /// Per (member, consumer): the consumer's unacknowledged deliveries found at this handle's
    /// first receive, still to be given back (`None`: not looked yet).
    backlog: Mutex<HashMap<(String, String), VecDeque<u64>>>,
}

impl Clone for Memory {
    fn clone(&self) -> Self {
        Memory {
            shared: self.shared.clone(),
            backlog: Mutex::new(HashMap::new()),
        }
    }
}

#[derive(Debug)]
struct Shared {
    limits: Limits,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    boxes: HashMap<String, Inbox>,
    /// (member, request id) -> (raw answer, recorded at).
    answers: HashMap<(String, String), (String, Instant)>,
    /// member -> (presence, expires at).
    presence: HashMap<String, (Presence, Instant)>,
}

#[derive(Debug, Default)]
struct Inbox {
    /// Ids are this counter's values, so they sort in arrival order like stream ids.
    next: u64,
    waiting: VecDeque<(u64, String)>,
    pending: BTreeMap<u64, Pending>,
    /// Wakes receivers blocked on this mailbox when something arrives.
    notify: Arc<Notify>,
}

#[derive(Debug)]
struct Pending {
    consumer: String,
    raw: String,
    delivered_at: Instant,
    count: u64,
}

impl Memory {
    /// An empty set of mailboxes.
    pub fn new(limits: Limits) -> Memory {
        Memory {
            shared: Arc::new(Shared {
                limits,
                state: Mutex::new(State::default()),
            }),
            backlog: Mutex::new(HashMap::new()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind, still consistent enough to
        // use: every mutation below is a single insert/remove.
        self.shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn append(&self, member: &str, raw: String) {
        let mut state = self.state();
        let inbox = state.boxes.entry(member.to_owned()).or_default();
        inbox.next += 1;
        let id = inbox.next;
        inbox.waiting.push_back((id, raw));
        inbox.notify.notify_waiters();
    }
}

/// The outcome of one look at a mailbox under the lock.
enum Look {
    Got(Delivery),
    /// Nothing yet: wait for this notify, but no later than the instant (when a pending entry
    /// of another consumer becomes reclaimable).
    Wait(Arc<Notify>, Option<Instant>),
}

impl Inbox {
    fn take(
        &mut self,
        member: &str,
        consumer: &str,
        reclaim_after: Duration,
        backlog: &mut VecDeque<u64>,
    ) -> Look {
        let now = Instant::now();
        // Own unacknowledged deliveries from before this handle first, then ones another
        // consumer left too long. Deliveries made through this handle are its caller's to
        // finish: never handed out again while it runs.
        let mut own = None;
        while let Some(id) = backlog.pop_front() {
            if self
                .pending
                .get(&id)
                .is_some_and(|p| p.consumer == consumer)
            {
                own = Some(id);
                break;
            }
        }
        let chosen = own.or_else(|| {
            self.pending
                .iter()
                .find(|(_, p)| {
                    p.consumer != consumer
                        && now.saturating_duration_since(p.delivered_at) >= reclaim_after
                })
                .map(|(id, _)| *id)
        });
        if let Some(id) = chosen
            && let Some(p) = self.pending.get_mut(&id)
        {
            p.consumer = consumer.to_owned();
            p.count += 1;
            p.delivered_at = now;
            return Look::Got(Delivery {
                id: id.to_string(),
                message: decode_for(member, &p.raw),
                deliveries: p.count,
            });
        }
        if let Some((id, raw)) = self.waiting.pop_front() {
            let message = decode_for(member, &raw);
            self.pending.insert(
                id,
                Pending {
                    consumer: consumer.to_owned(),
                    raw,
                    delivered_at: now,
                    count: 1,
                },
            );
            return Look::Got(Delivery {
                id: id.to_string(),
                message,
                deliveries: 1,
            });
        }
        let next_reclaim = self
            .pending
            .values()
            .filter(|p| p.consumer != consumer)
            .filter_map(|p| p.delivered_at.checked_add(reclaim_after))
            .min();
        Look::Wait(self.notify.clone(), next_reclaim)
    }
}

#[async_trait::async_trait]
impl Mailbox for Memory {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn send(&self, message: &Message) -> Result<(), MailboxError> {
        let raw = encode_for_send(message)?;
        self.append(&message.to, raw);
        Ok(())
    }

    async fn send_raw(&self, member: &str, raw: &str) -> Result<(), MailboxError> {
        check_name(member)?;
        self.append(member, raw.to_owned());
        Ok(())
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
        loop {
            let look = {
                let mut state = self.state();
                let inbox = state.boxes.entry(member.to_owned()).or_default();
                let mut backlogs = self
                    .backlog
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let backlog = backlogs
                    .entry((member.to_owned(), consumer.to_owned()))
                    .or_insert_with(|| {
                        inbox
                            .pending
                            .iter()
                            .filter(|(_, p)| p.consumer == consumer)
                            .map(|(id, _)| *id)
                            .collect()
                    });
                inbox.take(member, consumer, self.shared.limits.reclaim_after, backlog)
            };
            let (notify, next_reclaim) = match look {
                Look::Got(delivery) => return Ok(Some(delivery)),
                Look::Wait(notify, next_reclaim) => (notify, next_reclaim),
            };
            let now = Instant::now();
            if now >= until {
                return Ok(None);
            }
            let wake = next_reclaim.map_or(until, |at| at.min(until));
            let notified = notify.notified();
            tokio::pin!(notified);
            // Registers before looking again, so a send between the look above and the wait
            // below is not missed.
            notified.as_mut().enable();
            let arrived = {
                let state = self.state();
                state
                    .boxes
                    .get(member)
                    .is_some_and(|inbox| !inbox.waiting.is_empty())
            };
            if !arrived {
                let _ = tokio::time::timeout_at(wake, notified).await;
            }
        }
    }

    async fn ack(&self, member: &str, delivery_id: &str) -> Result<(), MailboxError> {
        check_name(member)?;
        let Ok(id) = delivery_id.parse::<u64>() else {
            // Not an id this backend handed out: nothing to acknowledge.
            warn!(member, delivery_id, "ack of an unknown delivery id ignored");
            return Ok(());
        };
        let mut state = self.state();
        if let Some(inbox) = state.boxes.get_mut(member) {
            inbox.pending.remove(&id);
        }
        Ok(())
    }

    async fn depth(&self, member: &str) -> Result<Depth, MailboxError> {
        check_name(member)?;
        let state = self.state();
        Ok(state
            .boxes
            .get(member)
            .map(|inbox| Depth {
                waiting: inbox.waiting.len() as u64,
                pending: inbox.pending.len() as u64,
            })
            .unwrap_or_default())
    }

    async fn record_answer(
        &self,
        member: &str,
        request_id: &str,
        response: &Message,
    ) -> Result<Message, MailboxError> {
        let raw = encode_answer(member, request_id, response)?;
        let now = Instant::now();
        let mut state = self.state();
        state
            .answers
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < ANSWER_TTL);
        let (recorded, _) = state
            .answers
            .entry((member.to_owned(), request_id.to_owned()))
            .or_insert((raw, now));
        decode_answer(recorded)
    }

    async fn answer(
        &self,
        member: &str,
        request_id: &str,
    ) -> Result<Option<Message>, MailboxError> {
        check_name(member)?;
        check_id(request_id)?;
        let state = self.state();
        match state
            .answers
            .get(&(member.to_owned(), request_id.to_owned()))
        {
            Some((raw, at)) if at.elapsed() < ANSWER_TTL => decode_answer(raw).map(Some),
            _ => Ok(None),
        }
    }

    async fn beat(&self, presence: &Presence, ttl: Duration) -> Result<(), MailboxError> {
        check_name(&presence.member)?;
        let expires = after(ttl);
        self.state()
            .presence
            .insert(presence.member.clone(), (presence.clone(), expires));
        Ok(())
    }

    async fn presence(&self) -> Result<Vec<Presence>, MailboxError> {
        let now = Instant::now();
        let mut state = self.state();
        state.presence.retain(|_, (_, expires)| *expires > now);
        let mut all: Vec<Presence> = state.presence.values().map(|(p, _)| p.clone()).collect();
        all.sort_by(|a, b| a.member.cmp(&b.member));
        Ok(all)
    }

    async fn leave(&self, member: &str) -> Result<(), MailboxError> {
        check_name(member)?;
        self.state().presence.remove(member);
        Ok(())
    }
}
