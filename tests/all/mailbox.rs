//! The mailbox conformance suite: one set of behaviours every `Mailbox` backend must show,
//! run against the in-process `Memory` backend and against `Redis` (each Redis test on a
//! private `redis-server`), plus the Redis-only restart and unreachable-server cases.
//!
//! Owns only black-box checks through the public API. Must not reach into backend internals,
//! must not touch any Redis it did not start, and must not assert that anything is fast (the
//! suite runs on loaded machines): waits are generous and only lower bounds on time are checked.

use crate::support_redis::RedisServer;
use cove::team::mailbox::memory::Memory;
use cove::team::mailbox::redis::Redis;
use cove::team::mailbox::{Delivery, Depth, Limits, Mailbox, MailboxError, Presence};
use cove::team::message::{MAX_BYTES, Message, now_ms};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type TestResult = Result<(), BoxError>;

/// Long enough that a receive expecting a message never gives up early on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(20);

/// A shared store that hands out mailbox handles; each `open` stands for a new process (a
/// fresh connection for Redis, a clone of the shared state for Memory).
trait Store: Sync {
    fn open(
        &self,
        limits: Limits,
    ) -> impl Future<Output = Result<Arc<dyn Mailbox>, BoxError>> + Send;
}

struct MemoryStore(Memory);

impl MemoryStore {
    fn new() -> Self {
        MemoryStore(Memory::new(Limits::default()))
    }

    fn with_limits(limits: Limits) -> Self {
        MemoryStore(Memory::new(limits))
    }
}

impl Store for MemoryStore {
    /// Memory's limits are fixed when the shared state is made (see `with_limits`), so every
    /// handle shares them whatever `limits` says.
    async fn open(&self, _limits: Limits) -> Result<Arc<dyn Mailbox>, BoxError> {
        Ok(Arc::new(self.0.clone()))
    }
}

struct RedisStore {
    server: RedisServer,
    team: String,
}

impl RedisStore {
    async fn start() -> Result<Self, BoxError> {
        let server = tokio::task::spawn_blocking(RedisServer::start).await??;
        Ok(RedisStore {
            server,
            team: "conformance".to_owned(),
        })
    }
}

impl Store for RedisStore {
    async fn open(&self, limits: Limits) -> Result<Arc<dyn Mailbox>, BoxError> {
        Ok(Arc::new(
            Redis::connect(&self.server.url(), &self.team, limits).await?,
        ))
    }
}

fn got(delivery: Option<Delivery>, what: &str) -> Result<Delivery, BoxError> {
    delivery.ok_or_else(|| format!("expected {what}, got nothing").into())
}

fn message(delivery: &Delivery) -> Result<&Message, BoxError> {
    delivery
        .message
        .as_ref()
        .map_err(|m| format!("expected a valid message, got {m}").into())
}

fn presence(member: &str, state: &str) -> Presence {
    Presence {
        member: member.to_owned(),
        consumer: format!("{member}-1"),
        state: state.to_owned(),
        working_on: None,
        host: "test-host".to_owned(),
        pid: std::process::id(),
        since: now_ms(),
        beat: now_ms(),
    }
}

// 1. send -> receive -> ack, order and fields kept, empty receive waits.
async fn send_receive_ack(store: &impl Store) -> TestResult {
    let mb = store.open(Limits::default()).await?;
    assert!(matches!(mb.backend(), "memory" | "redis"));
    // Sent before carol ever received: must still be delivered, in order, intact.
    let request = Message::request(
        "lead",
        "carol",
        "build the parser",
        now_ms() + 60_000,
        vec!["lead".into()],
    );
    // The answer to a question carol asked lead earlier.
    let asked = Message::request("carol", "lead", "which parser?", 0, Vec::new());
    let response = Message::response(&asked, "the fast one", true);
    let heartbeat = Message::heartbeat("lead", "carol", &request.id, "still on it");
    let cancel = Message::cancel(&request, "plans changed");
    let sent = [request, response, heartbeat, cancel];
    for m in &sent {
        mb.send(m).await?;
    }
    for expected in &sent {
        let d = got(mb.receive("carol", "carol-1", PATIENCE).await?, "a message")?;
        assert_eq!(message(&d)?, expected);
        assert_eq!(d.deliveries, 1);
        mb.ack("carol", &d.id).await?;
    }

    // Nothing waiting: None after about `wait` (only the lower bound is checked).
    let wait = Duration::from_millis(300);
    let started = Instant::now();
    assert!(mb.receive("carol", "carol-1", wait).await?.is_none());
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "returned early"
    );
    assert!(
        mb.receive("carol", "carol-1", Duration::ZERO)
            .await?
            .is_none()
    );

    // A receive already waiting is woken by a send.
    let receiver = mb.clone();
    let waiting = tokio::spawn(async move { receiver.receive("carol", "carol-1", PATIENCE).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let late = Message::request("lead", "carol", "one more", 0, Vec::new());
    mb.send(&late).await?;
    let d = got(waiting.await??, "the message sent while waiting")?;
    assert_eq!(message(&d)?, &late);
    mb.ack("carol", &d.id).await?;
    assert_eq!(mb.depth("carol").await?, Depth::default());
    Ok(())
}

// 2. An unacknowledged delivery comes back to the same consumer after a restart.
async fn redelivery_after_restart(store: &impl Store) -> TestResult {
    let first = store.open(Limits::default()).await?;
    let m1 = Message::request("lead", "dave", "one", 0, Vec::new());
    let m2 = Message::request("lead", "dave", "two", 0, Vec::new());
    first.send(&m1).await?;
    first.send(&m2).await?;
    let d = got(first.receive("dave", "dave-1", PATIENCE).await?, "m1")?;
    assert_eq!(message(&d)?, &m1);
    assert_eq!(d.deliveries, 1);
    // Not acknowledged: the running handle never hands it out again (its caller is on it),
    // and gives the next message instead; then nothing.
    let d2 = got(first.receive("dave", "dave-1", PATIENCE).await?, "m2")?;
    assert_eq!(message(&d2)?, &m2);
    assert!(
        first
            .receive("dave", "dave-1", Duration::from_millis(300))
            .await?
            .is_none()
    );
    drop(first);

    // Restarted under the same consumer name: both come back, in order, once each.
    let restarted = store.open(Limits::default()).await?;
    for (want, what) in [(&m1, "m1 after restart"), (&m2, "m2 after restart")] {
        let d = got(restarted.receive("dave", "dave-1", PATIENCE).await?, what)?;
        assert_eq!(message(&d)?, want);
        assert!(d.deliveries >= 2, "deliveries {}", d.deliveries);
        restarted.ack("dave", &d.id).await?;
    }
    assert!(
        restarted
            .receive("dave", "dave-1", Duration::from_millis(300))
            .await?
            .is_none()
    );
    drop(restarted);

    // Acknowledged deliveries never come back.
    let third = store.open(Limits::default()).await?;
    assert!(
        third
            .receive("dave", "dave-1", Duration::from_millis(300))
            .await?
            .is_none()
    );
    assert_eq!(third.depth("dave").await?, Depth::default());
    Ok(())
}

// 3. Another consumer of the member takes over an entry only after `reclaim_after`.
async fn reclaim(store: &impl Store) -> TestResult {
    let limits = Limits {
        reclaim_after: Duration::from_millis(500),
    };
    let a = store.open(limits.clone()).await?;
    let b = store.open(limits.clone()).await?;
    let m = Message::request("lead", "erin", "take me over", 0, Vec::new());
    a.send(&m).await?;
    let a_started = Instant::now();
    let d = got(a.receive("erin", "erin-a", PATIENCE).await?, "m for a")?;
    assert_eq!(message(&d)?, &m);
    // a never acknowledges (it "died").

    // Right away, b normally finds nothing; if the machine stalled long enough, b may take it,
    // but never before `reclaim_after` has passed since a got it.
    let early = b.receive("erin", "erin-b", Duration::ZERO).await?;
    if let Some(early) = &early {
        assert!(
            a_started.elapsed() >= limits.reclaim_after,
            "reclaimed too soon"
        );
        assert_eq!(message(early)?, &m);
    }
    let b_started = Instant::now();
    let taken = match early {
        Some(d) => d,
        None => got(
            b.receive("erin", "erin-b", PATIENCE).await?,
            "m reclaimed by b",
        )?,
    };
    assert!(
        a_started.elapsed() >= limits.reclaim_after,
        "reclaimed too soon"
    );
    assert_eq!(message(&taken)?, &m);
    assert_eq!(taken.id, d.id);
    assert!(taken.deliveries >= 2, "deliveries {}", taken.deliveries);

    // a no longer holds it: a may only get it back by reclaiming it from b in turn.
    if let Some(back) = a.receive("erin", "erin-a", Duration::ZERO).await? {
        assert_eq!(back.id, d.id);
        assert!(
            b_started.elapsed() >= limits.reclaim_after,
            "reclaimed from b too soon"
        );
    }
    b.ack("erin", &taken.id).await?;
    assert_eq!(b.depth("erin").await?, Depth::default());
    assert!(
        a.receive("erin", "erin-a", Duration::from_millis(200))
            .await?
            .is_none()
    );
    Ok(())
}

// 4. depth moves with sends, deliveries and acks.
async fn depth(store: &impl Store) -> TestResult {
    let mb = store.open(Limits::default()).await?;
    assert_eq!(mb.depth("nobody").await?, Depth::default());
    for i in 0..3 {
        mb.send(&Message::request(
            "lead",
            "fay",
            format!("task {i}"),
            0,
            Vec::new(),
        ))
        .await?;
    }
    let depth = |waiting, pending| Depth { waiting, pending };
    assert_eq!(mb.depth("fay").await?, depth(3, 0));
    let d1 = got(mb.receive("fay", "fay-1", PATIENCE).await?, "first")?;
    assert_eq!(mb.depth("fay").await?, depth(2, 1));
    // A second consumer takes the next one.
    let d2 = got(mb.receive("fay", "fay-2", PATIENCE).await?, "second")?;
    assert_ne!(d2.id, d1.id);
    assert_eq!(mb.depth("fay").await?, depth(1, 2));
    mb.ack("fay", &d1.id).await?;
    assert_eq!(mb.depth("fay").await?, depth(1, 1));
    // Acknowledging twice, or an id never handed out, is harmless.
    mb.ack("fay", &d1.id).await?;
    mb.ack("fay", "no-such-delivery").await?;
    mb.ack("fay", &d2.id).await?;
    assert_eq!(mb.depth("fay").await?, depth(1, 0));
    let d3 = got(mb.receive("fay", "fay-1", PATIENCE).await?, "third")?;
    assert_eq!(message(&d3)?.body, "task 2");
    mb.ack("fay", &d3.id).await?;
    assert_eq!(mb.depth("fay").await?, depth(0, 0));
    Ok(())
}

// 5. record_answer: the first answer wins, also under concurrency.
async fn record_answer(store: &impl Store) -> TestResult {
    let mb = store.open(Limits::default()).await?;
    let request = Message::request("gus", "hal", "what is 6*7", 0, Vec::new());
    assert!(mb.answer("hal", &request.id).await?.is_none());
    let mut tasks = Vec::new();
    for i in 0..8 {
        let handle = store.open(Limits::default()).await?;
        let answer = Message::response(&request, format!("answer {i}"), i % 2 == 1);
        let request_id = request.id.clone();
        tasks.push(tokio::spawn(async move {
            handle.record_answer("hal", &request_id, &answer).await
        }));
    }
    let mut recorded = Vec::new();
    for task in tasks {
        recorded.push(task.await??);
    }
    let first = recorded.first().ok_or("no answers")?.clone();
    assert!(
        recorded.iter().all(|r| r == &first),
        "answers differ: {recorded:?}"
    );
    assert!(first.body.starts_with("answer "));
    assert_eq!(first.correlation.as_deref(), Some(request.id.as_str()));
    assert_eq!(mb.answer("hal", &request.id).await?, Some(first.clone()));
    let late = Message::response(&request, "too late", false);
    assert_eq!(mb.record_answer("hal", &request.id, &late).await?, first);
    // Answers are per member and request.
    assert!(mb.answer("gus", &request.id).await?.is_none());
    Ok(())
}

// 6. Presence: beat, list sorted, replace, expiry, leave.
async fn presence_lifecycle(store: &impl Store) -> TestResult {
    let mb = store.open(Limits::default()).await?;
    assert!(mb.presence().await?.is_empty());
    let long = Duration::from_secs(60);
    mb.beat(&presence("zed", "idle"), long).await?;
    mb.beat(&presence("amy", "idle"), long).await?;
    let listed = mb.presence().await?;
    let names: Vec<&str> = listed.iter().map(|p| p.member.as_str()).collect();
    assert_eq!(names, ["amy", "zed"]);

    let mut working = presence("amy", "working");
    working.working_on = Some("req-1".into());
    mb.beat(&working, long).await?;
    let listed = mb.presence().await?;
    assert_eq!(presence_like(&listed, "amy")?, working);

    // A short beat replaces the long one and runs out.
    mb.beat(&presence("zed", "idle"), Duration::from_millis(300))
        .await?;
    let beaten = Instant::now();
    loop {
        let names: Vec<String> = mb.presence().await?.into_iter().map(|p| p.member).collect();
        if names == ["amy"] {
            break;
        }
        assert_eq!(names, ["amy", "zed"]);
        assert!(beaten.elapsed() < PATIENCE, "zed's presence never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        beaten.elapsed() >= Duration::from_millis(250),
        "expired early"
    );

    mb.leave("amy").await?;
    assert!(mb.presence().await?.is_empty());
    mb.leave("amy").await?;
    Ok(())
}

fn presence_like(listed: &[Presence], member: &str) -> Result<Presence, BoxError> {
    listed
        .iter()
        .find(|p| p.member == member)
        .cloned()
        .ok_or_else(|| format!("{member} not present").into())
}

// 7. Malformed entries are delivered as such, and the mailbox keeps working.
async fn malformed(store: &impl Store) -> TestResult {
    let mb = store.open(Limits::default()).await?;
    let oversized = format!(
        r#"{{"v":1,"id":"m3","kind":"request","from":"joe","to":"ivy","deadline":0,"body":"{}"}}"#,
        "x".repeat(MAX_BYTES)
    );
    let cases: [(&str, &str, Option<&str>, Option<&str>); 5] = [
        ("garbage", "not json at all", None, None),
        (
            "missing kind",
            r#"{"v":1,"id":"m1","from":"joe","to":"ivy","deadline":0}"#,
            Some("joe"),
            Some("m1"),
        ),
        (
            "bad from",
            r#"{"v":1,"id":"m2","kind":"request","from":"bad name!","to":"ivy","deadline":0}"#,
            None,
            Some("m2"),
        ),
        ("oversized", &oversized, Some("joe"), Some("m3")),
        (
            "wrong version",
            r#"{"v":2,"id":"m4","kind":"request","from":"joe","to":"ivy","deadline":0}"#,
            Some("joe"),
            Some("m4"),
        ),
    ];
    let reasons = [
        "not a valid message",
        "kind",
        "from",
        "limit",
        "protocol version",
    ];
    for (_, raw, _, _) in &cases {
        mb.send_raw("ivy", raw).await?;
    }
    let valid = Message::request("joe", "ivy", "a real one", 0, Vec::new());
    mb.send(&valid).await?;

    for ((name, _, from, id), reason) in cases.iter().zip(reasons) {
        let d = got(mb.receive("ivy", "ivy-1", PATIENCE).await?, name)?;
        let Err(bad) = &d.message else {
            return Err(format!("{name}: accepted as {:?}", d.message).into());
        };
        assert!(
            bad.reason.contains(reason),
            "{name}: reason {:?}",
            bad.reason
        );
        assert_eq!(bad.from.as_deref(), *from, "{name}: from");
        assert_eq!(bad.id.as_deref(), *id, "{name}: id");
        assert!(!bad.to_string().is_empty());
        mb.ack("ivy", &d.id).await?;
    }
    let d = got(
        mb.receive("ivy", "ivy-1", PATIENCE).await?,
        "the valid message",
    )?;
    assert_eq!(message(&d)?, &valid);
    mb.ack("ivy", &d.id).await?;

    // Refused at the sender: nothing queued.
    let big = Message::request("joe", "ivy", "x".repeat(MAX_BYTES), 0, Vec::new());
    match mb.send(&big).await {
        Err(MailboxError::TooLarge { bytes, max }) => assert!(bytes > max && max == MAX_BYTES),
        other => return Err(format!("oversized send gave {other:?}").into()),
    }
    let misaddressed = Message::request("joe", "not valid", "hi", 0, Vec::new());
    assert!(matches!(
        mb.send(&misaddressed).await,
        Err(MailboxError::BadName(_))
    ));
    assert_eq!(mb.depth("ivy").await?, Depth::default());
    assert!(
        mb.receive("ivy", "ivy-1", Duration::from_millis(200))
            .await?
            .is_none()
    );
    Ok(())
}

// 8. Many concurrent senders, two consumers: each message delivered exactly once.
async fn many_senders(store: &impl Store) -> TestResult {
    const SENDERS: usize = 8;
    const EACH: usize = 50;
    const TOTAL: usize = SENDERS * EACH;
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let mb = store.open(Limits::default()).await?;
        senders.push(tokio::spawn(async move {
            for i in 0..EACH {
                let m =
                    Message::request(format!("sender-{s}"), "kim", format!("{i}"), 0, Vec::new());
                mb.send(&m).await?;
            }
            Ok::<(), MailboxError>(())
        }));
    }
    let received = Arc::new(AtomicUsize::new(0));
    let mut consumers = Vec::new();
    for c in 0..2 {
        let mb = store.open(Limits::default()).await?;
        let received = received.clone();
        consumers.push(tokio::spawn(async move {
            let mut seen: Vec<Message> = Vec::new();
            let started = Instant::now();
            while received.load(Ordering::SeqCst) < TOTAL {
                if started.elapsed() > Duration::from_secs(120) {
                    return Err(format!(
                        "consumer {c} gave up after {} messages",
                        seen.len()
                    ));
                }
                let consumer = format!("kim-{c}");
                let got = mb
                    .receive("kim", &consumer, Duration::from_millis(500))
                    .await
                    .map_err(|e| e.to_string())?;
                let Some(d) = got else { continue };
                mb.ack("kim", &d.id).await.map_err(|e| e.to_string())?;
                seen.push(d.message.map_err(|m| m.to_string())?);
                received.fetch_add(1, Ordering::SeqCst);
            }
            Ok(seen)
        }));
    }
    for sender in senders {
        sender.await??;
    }
    let mut ids = HashSet::new();
    let mut total = 0;
    for consumer in consumers {
        let seen = consumer.await??;
        // Each consumer sees every sender's messages in the order they were sent.
        let mut last: HashMap<String, i64> = HashMap::new();
        for m in &seen {
            let n: i64 = m.body.parse()?;
            let previous = last.insert(m.from.clone(), n).unwrap_or(-1);
            assert!(
                n > previous,
                "{} out of order: {n} after {previous}",
                m.from
            );
            assert!(ids.insert(m.id.clone()), "{} delivered twice", m.id);
        }
        total += seen.len();
    }
    assert_eq!(total, TOTAL);
    let mb = store.open(Limits::default()).await?;
    assert_eq!(mb.depth("kim").await?, Depth::default());
    assert!(
        mb.receive("kim", "kim-0", Duration::from_millis(200))
            .await?
            .is_none()
    );
    Ok(())
}

/// Runs each conformance case against both backends.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() -> TestResult {
                super::$case(&MemoryStore::new()).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() -> TestResult {
                let store = RedisStore::start().await?;
                super::$case(&store).await
            }
        }
    )*};
}

conformance!(
    send_receive_ack,
    redelivery_after_restart,
    depth,
    record_answer,
    presence_lifecycle,
    malformed,
    many_senders,
);

// The reclaim case needs the short limit in the shared Memory itself (Memory's limits are
// fixed when the shared state is made), so it is wired by hand.
mod reclaim {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory() -> TestResult {
        let store = MemoryStore::with_limits(Limits {
            reclaim_after: Duration::from_millis(500),
        });
        super::reclaim(&store).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis() -> TestResult {
        let store = RedisStore::start().await?;
        super::reclaim(&store).await
    }
}

// 9. Redis restarted mid-conversation with AOF: unacknowledged and pending entries survive,
// and the same instance reports `Unavailable` while it is down and recovers by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_keeps_messages() -> TestResult {
    let mut store = RedisStore::start().await?;
    let mb = store.open(Limits::default()).await?;
    let m1 = Message::request("lead", "lou", "one", 0, Vec::new());
    let m2 = Message::request("lead", "lou", "two", 0, Vec::new());
    let m3 = Message::request("lead", "lou", "three", 0, Vec::new());
    for m in [&m1, &m2, &m3] {
        mb.send(m).await?;
    }
    let d1 = got(mb.receive("lou", "lou-1", PATIENCE).await?, "m1")?;
    assert_eq!(message(&d1)?, &m1);
    let request = Message::request("lou", "lead", "q", 0, Vec::new());
    let answer = Message::response(&request, "a", false);
    mb.record_answer("lead", &request.id, &answer).await?;

    // A receive blocked on an empty mailbox when the server dies fails instead of hanging.
    let blocked = mb.clone();
    let blocked = tokio::spawn(async move { blocked.receive("max", "max-1", PATIENCE).await });
    tokio::time::sleep(Duration::from_millis(300)).await;

    store.server.stop()?;
    let port = store.server.url();
    match blocked.await? {
        Err(MailboxError::Unavailable(text)) => assert!(text.contains(&port), "{text}"),
        other => return Err(format!("blocked receive gave {other:?}").into()),
    }
    let down = [
        mb.send(&Message::request("lead", "lou", "lost", 0, Vec::new()))
            .await
            .err(),
        mb.depth("lou").await.err(),
        mb.receive("lou", "lou-1", Duration::from_millis(500))
            .await
            .err(),
    ];
    for e in down {
        match e {
            Some(MailboxError::Unavailable(text)) => {
                assert!(
                    text.contains(&port),
                    "error does not name the server: {text}"
                );
            }
            other => return Err(format!("expected Unavailable while down, got {other:?}").into()),
        }
    }

    store.server.restart()?;
    // The same instance, not rebuilt. It may take a moment to reconnect; it must not need more.
    // Its delivery of m1 survived, still pending (its caller is still on it), and so did the
    // two never delivered.
    let started = Instant::now();
    let depth = loop {
        match mb.depth("lou").await {
            Ok(d) => break d,
            Err(MailboxError::Unavailable(e)) if started.elapsed() < PATIENCE => {
                eprintln!("still reconnecting: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    assert_eq!(
        depth,
        Depth {
            waiting: 2,
            pending: 1
        }
    );
    // A process started now (a fresh instance) gets m1 again.
    let fresh = store.open(Limits::default()).await?;
    let d = got(
        fresh.receive("lou", "lou-1", PATIENCE).await?,
        "m1 after the restart",
    )?;
    assert_eq!(message(&d)?, &m1);
    assert_eq!(d.id, d1.id);
    assert!(d.deliveries >= 2, "deliveries {}", d.deliveries);
    drop(fresh);
    mb.ack("lou", &d1.id).await?;
    for expected in [&m2, &m3] {
        let d = got(
            mb.receive("lou", "lou-1", PATIENCE).await?,
            "a message from before",
        )?;
        assert_eq!(message(&d)?, expected);
        mb.ack("lou", &d.id).await?;
    }
    assert_eq!(mb.answer("lead", &request.id).await?, Some(answer));
    let after = Message::request("lead", "lou", "after", 0, Vec::new());
    mb.send(&after).await?;
    let d = got(
        mb.receive("lou", "lou-1", PATIENCE).await?,
        "a message from after",
    )?;
    assert_eq!(message(&d)?, &after);
    mb.ack("lou", &d.id).await?;
    assert_eq!(mb.depth("lou").await?, Depth::default());
    Ok(())
}

// 10. Connecting where nothing listens fails clearly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_connect_refused() -> TestResult {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let url = format!("redis://127.0.0.1:{port}/");
    match Redis::connect(&url, "team", Limits::default()).await {
        Err(MailboxError::Unavailable(text)) => {
            assert!(text.contains(&url), "error does not name the URL: {text}");
            Ok(())
        }
        Err(other) => Err(format!("expected Unavailable, got {other:?}").into()),
        Ok(_) => Err("connected to nothing".into()),
    }
}

#[test]
fn bad_names_are_refused() -> TestResult {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mb = Memory::new(Limits::default());
        assert!(matches!(
            mb.receive("a b", "c", Duration::ZERO).await,
            Err(MailboxError::BadName(_))
        ));
        assert!(matches!(
            mb.send_raw("", "{}").await,
            Err(MailboxError::BadName(_))
        ));
        assert!(matches!(
            Redis::connect("redis://127.0.0.1:1/", "bad team", Limits::default()).await,
            Err(MailboxError::BadName(_))
        ));
        Ok(())
    })
}
