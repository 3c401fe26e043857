//! What a run reports, as owned events, and who in a tree of agents reported it.
//!
//! Owns the one mapping from [`Observer`] calls to [`Event`]s ([`Evented`]), used twice: by
//! stream-json, which prints each event as a JSON line tagged with its agent, and by a subagent,
//! whose events are relayed up a channel to its parent's observer (and so on up the tree).
//! Must not decide anything about the run, or print (a [`Sink`] does).

use crate::agent::Observer;
use crate::agent::dispatch::{ToolProgress, ToolResult};
use crate::context::cache::{self, Ledger};
use crate::context::compress::Report;
use crate::conversation::Usage;
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// The main agent's id; a subagent's is its parent's and a number (`main.1`, `main.1.2`).
pub const MAIN: &str = "main";

/// Which agent an event is from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tag {
    pub agent: String,
    pub parent: Option<String>,
}

/// How a subagent ended, for its parent's result and the run's summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub agent: String,
    pub parent: String,
    pub subagent_type: String,
    pub description: String,
    /// Its own transcript, when the run keeps transcripts.
    pub session: Option<String>,
    pub model: String,
    pub outcome: String,
    pub turns: u32,
    /// What it used itself (its own subagents are in the summary beside it).
    pub usage: Usage,
    pub cost_usd: Option<f64>,
    /// What became of its worktree (merged, a conflict, kept), if it had its own.
    pub worktree: Option<String>,
    pub elapsed_ms: u64,
}

/// One thing that happened in a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A subagent started.
    SubagentStart {
        subagent_type: String,
        description: String,
        session: Option<String>,
        worktree: String,
        model: String,
    },
    /// A subagent ended.
    SubagentEnd(Summary),
    TextDelta {
        text: String,
    },
    Retry {
        attempt: u32,
        wait_ms: u64,
        reason: String,
    },
    ToolCall {
        id: String,
        name: String,
        input: Value,
    },
    ToolResult {
        id: String,
        name: String,
        is_error: bool,
        text: String,
    },
    /// A running call reported how far it got (an MCP server's progress).
    ToolProgress {
        id: String,
        name: String,
        #[serde(flatten)]
        progress: ToolProgress,
    },
    Usage {
        turn: Usage,
        total: Usage,
        cost_usd: Option<f64>,
    },
    Warning {
        message: String,
    },
    Compaction(Report),
}

/// An event from a subagent, on its way to the top.
#[derive(Debug, Clone)]
pub struct Relayed {
    pub from: Tag,
    pub event: Event,
}

/// Where events go.
pub trait Sink: Send {
    /// `from`: the agent that reported it, `None` for the agent this sink belongs to.
    fn put(&mut self, from: Option<&Tag>, event: Event);
}

/// An observer that turns every call into an [`Event`] for its sink.
pub struct Evented<S> {
    /// The model of the agent observed (for the cost of its turns).
    pub model: String,
    pub sink: S,
}

impl<S: Sink> Observer for Evented<S> {
    fn text(&mut self, text: &str) {
        self.sink.put(None, Event::TextDelta { text: text.into() });
    }
    fn retry(&mut self, attempt: u32, wait: Duration, reason: &str) {
        self.sink.put(
            None,
            Event::Retry {
                attempt,
                wait_ms: wait.as_millis() as u64,
                reason: reason.into(),
            },
        );
    }
    fn tool_call(&mut self, id: &str, name: &str, input: &Value) {
        self.sink.put(
            None,
            Event::ToolCall {
                id: id.into(),
                name: name.into(),
                input: input.clone(),
            },
        );
    }
    fn tool_result(&mut self, id: &str, name: &str, r: &ToolResult) {
        self.sink.put(
            None,
            Event::ToolResult {
                id: id.into(),
                name: name.into(),
                is_error: r.is_error,
                text: r.text.clone(),
            },
        );
    }
    fn progress(&mut self, id: &str, name: &str, progress: &ToolProgress) {
        self.sink.put(
            None,
            Event::ToolProgress {
                id: id.into(),
                name: name.into(),
                progress: progress.clone(),
            },
        );
    }
    fn turn_end(&mut self, usage: &Usage, ledger: &Ledger) {
        self.sink.put(
            None,
            Event::Usage {
                turn: *usage,
                total: ledger.total,
                cost_usd: cache::cost(&self.model, &ledger.total),
            },
        );
    }
    fn warning(&mut self, message: &str) {
        self.sink.put(
            None,
            Event::Warning {
                message: message.into(),
            },
        );
    }
    fn compaction(&mut self, report: &Report) {
        self.sink.put(None, Event::Compaction(report.clone()));
    }
    fn relayed(&mut self, r: Relayed) {
        self.sink.put(Some(&r.from), r.event);
    }
}

/// A subagent's sink: everything goes up the channel to its parent, tagged.
pub struct Up {
    pub tag: Tag,
    pub tx: tokio::sync::mpsc::UnboundedSender<Relayed>,
}

impl Sink for Up {
    fn put(&mut self, from: Option<&Tag>, event: Event) {
        let from = from.unwrap_or(&self.tag).clone();
        // The parent stops listening only once every child has ended.
        let _ = self.tx.send(Relayed { from, event });
    }
}

/// An event as stream-json's line: its fields, `type`, and the agent it is from.
pub fn json(from: Option<&Tag>, event: &Event) -> Value {
    let mut v = serde_json::to_value(event).unwrap_or_default();
    match from {
        Some(tag) => {
            v["agent"] = tag.agent.clone().into();
            v["parent_agent"] = tag.parent.clone().into();
        }
        None => v["agent"] = MAIN.into(),
    }
    v
}
