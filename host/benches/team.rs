//! The teammates figures: `bash scripts/bench.sh` runs this after the subagents bench and
//! rewrites the "Teammates" section of docs/PERFORMANCE.md (`-- --write FILE`).
//!
//! With a private `redis-server` (AOF on, `appendfsync everysec`, as a production one runs):
//! - the round trip of a request and its response between two members' post offices (the
//!   asker's `ask`: FSM, send, the member's router and worker, the answer recorded and sent, the
//!   asker's router; the member answers at once, so no model time), in memory and on Redis,
//!   against a plain Redis PING round trip on one connection;
//! - messages per second through one mailbox (one sender and one receiver that acknowledges
//!   each), in memory and on Redis, against Redis's own `XADD` + `XREADGROUP` + `XACK` at the
//!   same pace (one command at a time, the same connection count);
//! - the time to redeliver after a member dies: a member received a request and died without
//!   acknowledging it; from its replacement's start (a new connection) to the request in its
//!   hands.
//!
//! Medians; only meaningful on a quiet machine.

#[path = "common/report.rs"]
#[allow(dead_code)]
mod report;
#[allow(dead_code)]
#[path = "../../tests/all/support_redis.rs"]
mod support_redis;

use cove::team::mailbox::memory::Memory;
use cove::team::mailbox::redis::Redis;
use cove::team::mailbox::{Limits, Mailbox};
use cove::team::message::Message;
use cove::team::post::{Answer, Asked, Handler, Limits as PostLimits, Post};
use report::{median, ms};
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support_redis::RedisServer;
use tokio_util::sync::CancellationToken;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const ROUND_TRIPS: usize = 300;
const MESSAGES: usize = 5000;
const REDELIVERIES: usize = 20;

/// Answers at once: the round trip is the protocol's alone.
struct Echo;

impl Handler for Echo {
    fn handle(
        &self,
        request: Message,
        _cancel: CancellationToken,
    ) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
        Box::pin(async move {
            Answer {
                text: request.body,
                error: false,
            }
        })
    }
}

fn limits() -> PostLimits {
    PostLimits {
        timeout: Duration::from_secs(30),
        max_depth: 3,
    }
}

/// Median round trip of `ask` from "a" to "b", each with its own post office over `mailbox`.
async fn round_trips(mailbox: Arc<dyn Mailbox>) -> Res<Duration> {
    let stop = CancellationToken::new();
    let a = Post::new("a", mailbox.clone(), limits());
    let b = Post::new("b", mailbox, limits());
    tokio::spawn(a.clone().route(None, stop.clone()));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(b.clone().route(Some(tx), stop.clone()));
    tokio::spawn(b.serve(rx, Arc::new(Echo), stop.clone()));
    let cancel = CancellationToken::new();
    let mut times = Vec::new();
    for i in 0..ROUND_TRIPS + 10 {
        let t = Instant::now();
        match a.ask("b", "ping", &cancel).await {
            Asked::Answered { error: false, .. } => {}
            other => return Err(format!("round trip {i}: {other:?}").into()),
        }
        // The first few warm the connections up.
        if i >= 10 {
            times.push(t.elapsed());
        }
    }
    stop.cancel();
    Ok(median(times))
}

/// Messages per second from one sender to one receiver that acknowledges each.
async fn throughput(sender: Arc<dyn Mailbox>, receiver: Arc<dyn Mailbox>, to: &str) -> Res<f64> {
    let started = Instant::now();
    let to_send = to.to_string();
    let sending = tokio::spawn(async move {
        for i in 0..MESSAGES {
            let m = Message::request("a", to_send.as_str(), format!("message {i}"), 0, Vec::new());
            sender.send(&m).await?;
        }
        Ok::<(), cove::team::mailbox::MailboxError>(())
    });
    let mut got = 0;
    while got < MESSAGES {
        match receiver.receive(to, to, Duration::from_secs(10)).await? {
            Some(d) => {
                receiver.ack(to, &d.id).await?;
                got += 1;
            }
            None => return Err(format!("only {got} of {MESSAGES} arrived").into()),
        }
    }
    sending.await??;
    Ok(MESSAGES as f64 / started.elapsed().as_secs_f64())
}

/// The same pace with plain Redis commands: XADD, and XREADGROUP + XACK + XDEL one at a time.
async fn redis_plain(url: &str) -> Res<f64> {
    let client = redis::Client::open(url)?;
    let mut send = client.get_multiplexed_async_connection().await?;
    let mut recv = client.get_multiplexed_async_connection().await?;
    let key = "plain:inbox";
    let _: Result<(), _> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(key)
        .arg("g")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut send)
        .await;
    let started = Instant::now();
    let sending = tokio::spawn(async move {
        for i in 0..MESSAGES {
            let _: String = redis::cmd("XADD")
                .arg(key)
                .arg("*")
                .arg("m")
                .arg(format!("{{\"body\":\"message {i}\"}}"))
                .query_async(&mut send)
                .await?;
        }
        Ok::<(), redis::RedisError>(())
    });
    let mut got = 0;
    while got < MESSAGES {
        let reply: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg("c")
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(10_000)
            .arg("STREAMS")
            .arg(key)
            .arg(">")
            .query_async(&mut recv)
            .await?;
        let id = first_id(&reply).ok_or("no entry")?;
        let _: i64 = redis::cmd("XACK")
            .arg(key)
            .arg("g")
            .arg(&id)
            .query_async(&mut recv)
            .await?;
        let _: i64 = redis::cmd("XDEL")
            .arg(key)
            .arg(&id)
            .query_async(&mut recv)
            .await?;
        got += 1;
    }
    sending.await??;
    Ok(MESSAGES as f64 / started.elapsed().as_secs_f64())
}

/// The id of the first entry of an XREADGROUP reply.
fn first_id(reply: &redis::Value) -> Option<String> {
    use redis::Value::{Array, BulkString, Map};
    let stream = match reply {
        Array(s) => s.first()?,
        Map(m) => return first_entry_id(&m.first()?.1),
        _ => return None,
    };
    let Array(parts) = stream else { return None };
    let entries = parts.get(1)?;
    match first_entry_id(entries) {
        Some(id) => Some(id),
        None => match entries {
            BulkString(b) => String::from_utf8(b.clone()).ok(),
            _ => None,
        },
    }
}

fn first_entry_id(entries: &redis::Value) -> Option<String> {
    use redis::Value::{Array, BulkString, SimpleString};
    let Array(entries) = entries else { return None };
    let Array(entry) = entries.first()? else {
        return None;
    };
    match entry.first()? {
        BulkString(b) => String::from_utf8(b.clone()).ok(),
        SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// Median PING round trip on one connection.
async fn pings(url: &str) -> Res<Duration> {
    let client = redis::Client::open(url)?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let mut times = Vec::new();
    for i in 0..ROUND_TRIPS + 10 {
        let t = Instant::now();
        let _: String = redis::cmd("PING").query_async(&mut con).await?;
        if i >= 10 {
            times.push(t.elapsed());
        }
    }
    Ok(median(times))
}

/// A member received a request and died without acknowledging it: from its replacement's
/// start (connecting) to the request in its hands.
async fn redelivery(url: &str) -> Res<Duration> {
    let mut times = Vec::new();
    for k in 0..REDELIVERIES {
        let team = format!("redeliver{k}");
        let first = Redis::connect(url, &team, Limits::default()).await?;
        first
            .send(&Message::request("a", "b", "work", 0, Vec::new()))
            .await?;
        let taken = first.receive("b", "b", Duration::from_secs(5)).await?;
        if taken.is_none() {
            return Err("the first member got nothing".into());
        }
        drop(first);
        let t = Instant::now();
        let second = Redis::connect(url, &team, Limits::default()).await?;
        let again = second.receive("b", "b", Duration::from_secs(5)).await?;
        times.push(t.elapsed());
        let again = again.ok_or("not redelivered")?;
        second.ack("b", &again.id).await?;
    }
    Ok(median(times))
}

fn main() -> Res<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut server = RedisServer::start()?;
    let url = server.url();
    // As a production server runs: AOF on, fsync once a second (the tests fsync every write).
    let status = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &server.port().to_string(),
            "CONFIG",
            "SET",
            "appendfsync",
            "everysec",
        ])
        .output()?;
    if !status.status.success() {
        return Err("redis-cli CONFIG SET failed".into());
    }
    let figures = runtime.block_on(async {
        let memory: Arc<dyn Mailbox> = Arc::new(Memory::new(Limits::default()));
        let rt_memory = round_trips(memory).await?;
        let on_redis: Arc<dyn Mailbox> =
            Arc::new(Redis::connect(&url, "bench", Limits::default()).await?);
        let rt_redis = round_trips(on_redis).await?;
        let ping = pings(&url).await?;
        let memory: Arc<dyn Mailbox> = Arc::new(Memory::new(Limits::default()));
        let tp_memory = throughput(memory.clone(), memory, "m").await?;
        let sender: Arc<dyn Mailbox> =
            Arc::new(Redis::connect(&url, "tp", Limits::default()).await?);
        let receiver: Arc<dyn Mailbox> =
            Arc::new(Redis::connect(&url, "tp", Limits::default()).await?);
        let tp_redis = throughput(sender, receiver, "r").await?;
        let tp_plain = redis_plain(&url).await?;
        let redeliver = redelivery(&url).await?;
        Ok::<_, Box<dyn std::error::Error>>((
            rt_memory, rt_redis, ping, tp_memory, tp_redis, tp_plain, redeliver,
        ))
    })?;
    server.stop()?;
    let (rt_memory, rt_redis, ping, tp_memory, tp_redis, tp_plain, redeliver) = figures;
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);

    let mut report = String::new();
    writeln!(report, "## Teammates\n")?;
    writeln!(
        report,
        "Produced by `bash scripts/bench.sh` (`host/benches/team.rs`): post offices and mailboxes in one process, a private\n\
         `redis-server` (AOF on, fsync every second) on this machine; the member answers at once, so no model time.\n\
         Medians over {ROUND_TRIPS} round trips and {REDELIVERIES} redeliveries; {MESSAGES} messages for throughput.\n\
         Only meaningful on a quiet machine.\n"
    )?;
    writeln!(
        report,
        "| figure | measured | reference (same run) | ratio |"
    )?;
    writeln!(report, "|---|---|---|---|")?;
    writeln!(
        report,
        "| round trip of a request and its response between two members, in memory | {} | Redis PING round trip {} | {:.2}× |",
        ms(rt_memory),
        ms(ping),
        ratio(rt_memory, ping)
    )?;
    writeln!(
        report,
        "| round trip of a request and its response between two members, on Redis (send, read, answer recorded, sent, read, both acknowledged) | {} | Redis PING round trip {} | {:.2}× |",
        ms(rt_redis),
        ms(ping),
        ratio(rt_redis, ping)
    )?;
    writeln!(
        report,
        "| messages per second through one mailbox, in memory (send; receive + ack) | {tp_memory:.0}/s | plain Redis XADD; XREADGROUP + XACK + XDEL {tp_plain:.0}/s | {:.2}× |",
        tp_memory / tp_plain.max(1e-9)
    )?;
    writeln!(
        report,
        "| messages per second through one mailbox, on Redis | {tp_redis:.0}/s | plain Redis XADD; XREADGROUP + XACK + XDEL {tp_plain:.0}/s | {:.2}× |",
        tp_redis / tp_plain.max(1e-9)
    )?;
    writeln!(
        report,
        "| redelivery after a member died mid-request: its replacement's connect to the request in its hands | {} | Redis PING round trip {} | {:.2}× |",
        ms(redeliver),
        ms(ping),
        ratio(redeliver, ping)
    )?;
    report::publish("## Teammates\n", &report)?;
    Ok(())
}
