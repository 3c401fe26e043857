//! The master loop: perceive → act → observe, until the model stops or a limit is reached.
//!
//! Owns one run of the agent over a conversation: sending the history to the provider, running
//! the tool calls of each reply through dispatch (read-only calls in parallel, mutating calls in
//! order, results in the model's order, exactly one result per call), writing each whole turn to
//! the transcript, and stopping at end of turn, max turns, the token budget, a provider failure or
//! cancellation. The states are an enum; each transition is a method. Host tools (`host_tools`)
//! are answered on the loop's thread, and what they change (a skill loaded) is applied here and
//! recorded; the skills active in the session travel with every policy decision.
//! Must not format output (an [`Observer`] does) or know a provider's wire format.

pub mod assemble;
pub mod definitions;
pub mod dispatch;
pub mod events;
pub mod host_tools;
pub mod policy;
pub mod profile;
pub mod subagent;
pub mod workspace;

use crate::context::cache::Ledger;
use crate::context::compress::{self, Compressor, Report};
use crate::context::skills::{Active, Catalog};
use crate::conversation::{Block, Message, Role, StopReason, ToolDef, Usage};
use crate::plugins::registry::Registry;
use crate::provider::{Event, Provider, Reply, Request};
use crate::session::{Record, Transcript};
use dispatch::{ToolCall, ToolResult};
use host_tools::{Effect, HostCx, HostTool, HostTools, SkillTool};
use policy::{Answer, Approvals, Decision, Gate, Pending, Permitted};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Most bytes of one tool result sent to the model; the rest is cut from the middle with a note.
pub const MAX_RESULT_BYTES: usize = 64 * 1024;
/// How many replies in a row may be malformed tool calls (each answered with the format) before
/// the run ends.
pub const MAX_MALFORMED_IN_A_ROW: u32 = 3;
/// How many replies in a row may be cut at max_tokens (each answered with a request to be
/// shorter) before the run ends.
pub const MAX_CUT_IN_A_ROW: u32 = 2;

/// Limits and model settings for a run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub model: String,
    pub max_tokens: u32,
    /// Sampling temperature (`None`: the server's default).
    pub temperature: Option<f32>,
    /// Constrain replies with a JSON schema (OpenAI-compatible servers).
    pub constrained: bool,
    /// The system prompt lists the tools itself (the `small` profile).
    pub tools_in_prompt: bool,
    /// Answer a read repeated word for word with a pointer to its earlier result, which is still
    /// in context (off in the `small` profile: a small model does not look back, and gives up).
    pub point_to_rereads: bool,
    /// Most bytes of one tool result the model sees ([`MAX_RESULT_BYTES`] by default).
    pub max_result_bytes: usize,
    pub max_turns: u32,
    /// Stop before a request once this many tokens (input + output) have been used.
    pub token_budget: Option<u64>,
    /// The policies every call passes before it runs.
    pub gate: Gate,
    /// Approve calls a policy asks about without asking (`--yes`).
    pub assume_yes: bool,
    /// The agent's role, as policies see it (`main`, `explorer`…).
    pub role: String,
    /// The context compressor's tuning.
    pub context: compress::Settings,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "snake_case")]
pub enum Outcome {
    /// The model ended its turn.
    Finished,
    MaxTurns(u32),
    /// The model's replies were cut at max_tokens this many times in a row.
    MaxTokens(u32),
    TokenBudget(u64),
    Cancelled,
    Failed(String),
}

impl Outcome {
    pub fn describe(&self) -> String {
        match self {
            Outcome::Finished => "the model finished".into(),
            Outcome::MaxTurns(n) => {
                format!("stopped at the limit of {n} turns (raise it with --max-turns)")
            }
            Outcome::TokenBudget(n) => {
                format!("stopped at the token budget of {n} (raise it with --token-budget)")
            }
            Outcome::MaxTokens(n) => format!(
                "stopped: the model's reply was cut at max_tokens ({n} tokens) {MAX_CUT_IN_A_ROW} times in a row, so it did not finish (raise it with --max-tokens)"
            ),
            Outcome::Cancelled => "cancelled; the turn in flight was not kept".into(),
            Outcome::Failed(e) => format!("failed: {e}"),
        }
    }

    pub fn tag(&self) -> &'static str {
        match self {
            Outcome::Finished => "finished",
            Outcome::MaxTurns(_) => "max_turns",
            Outcome::MaxTokens(_) => "max_tokens",
            Outcome::TokenBudget(_) => "token_budget",
            Outcome::Cancelled => "cancelled",
            Outcome::Failed(_) => "failed",
        }
    }
}

/// Receives what happens during a run, for the terminal or for stream-json.
pub trait Observer: Send {
    fn waiting(&mut self, _on: bool) {}
    fn text(&mut self, _text: &str) {}
    fn retry(&mut self, _attempt: u32, _wait: Duration, _reason: &str) {}
    fn tool_call(&mut self, _id: &str, _name: &str, _input: &Value) {}
    fn tool_result(&mut self, _id: &str, _name: &str, _result: &ToolResult) {}
    /// A running call reported how far it got (an MCP server's progress notifications, a
    /// plugin's progress reports).
    fn progress(&mut self, _id: &str, _name: &str, _progress: &dispatch::ToolProgress) {}
    fn turn_end(&mut self, _usage: &Usage, _ledger: &Ledger) {}
    fn warning(&mut self, _message: &str) {}
    /// The context was compacted.
    fn compaction(&mut self, _report: &Report) {}
    /// A policy asks the user about a call. `None`: there is nobody to ask (headless, or a
    /// subagent's run).
    fn ask(&mut self, _pending: &Pending) -> Option<Answer> {
        None
    }
    /// Something happened in a subagent's run (or its subagents').
    fn relayed(&mut self, _event: events::Relayed) {}
}

/// The loop's states. Each transition consumes the state and returns the next.
enum State {
    /// Ask the model.
    Perceive,
    /// The model answered: run what it asked for.
    Act(Reply),
    /// Tools answered: keep the whole turn and go round again (or stop, when the turn was
    /// cancelled: what ran is kept all the same).
    Observe {
        assistant: Message,
        results: Message,
        cancelled: bool,
        /// The run ends after this turn is kept (a reply cut or malformed too often).
        end: Option<Outcome>,
    },
    Done(Outcome),
}

/// One agent: a provider, the tools of a registry, and its limits.
pub struct Agent {
    provider: Arc<dyn Provider>,
    registry: Arc<Registry>,
    settings: Settings,
    system: String,
    tools: Vec<ToolDef>,
    read_only: HashMap<String, bool>,
    /// What the user approved for the rest of this session.
    approvals: Approvals,
    /// Keeps requests under the window; `recall` answers from its archive.
    compressor: Arc<std::sync::Mutex<Compressor>>,
    /// Builds the system prompt again from disk (memory files), after a compaction.
    system_source: Option<SystemSource>,
    /// Tools the host answers itself (offered after the plugin tools).
    host: HostTools,
    /// The `skill` tool, when there are skills to offer.
    skill_tool: Option<Arc<SkillTool>>,
    /// The skills the model loaded in this session, oldest first.
    skills: Active,
    /// Starts subagents (the `task` tool), when this agent may.
    spawner: Option<Arc<subagent::Spawner>>,
    /// Reaches teammates (`ask`, `send`), when this agent is on a team.
    team: Option<Arc<crate::team::tools::TeamTools>>,
    /// The session's MCP servers, whose tools join the offer as each comes up.
    mcp: Option<Arc<crate::mcp::hub::Hub>>,
    /// Above this many tokens of MCP tool schemas, they are offered through `tool_search`.
    mcp_eager_tokens: u64,
    /// MCP tools a resumed session's `tool_search` had offered, not up again yet.
    mcp_promised: std::collections::BTreeSet<String>,
    /// Every subagent this agent started (and theirs), in the order they ended.
    pub subagents: Vec<events::Summary>,
    /// What subagents used since the ledger last took it in.
    children_usage: Usage,
    /// Harness time per turn: from a reply being whole to the next request going out, less the
    /// time spent in tools.
    pub harness: Vec<Duration>,
}

/// When [`Agent::compact`] compacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum When {
    /// Only if the next request would pass `compact_at` of the window (before every request).
    Due,
    /// Now, every layer, with an optional focus for the summary (`/compact [focus]`).
    Now { focus: Option<String> },
}

/// Builds the system prompt from what is on disk now.
pub type SystemSource = Box<dyn Fn() -> String + Send + Sync>;

/// What a run needs that outlives it.
pub struct RunContext<'a> {
    pub messages: &'a mut Vec<Message>,
    pub transcript: Option<&'a mut Transcript>,
    pub ledger: &'a mut Ledger,
    pub observer: &'a mut dyn Observer,
    pub cancel: CancellationToken,
}

impl Agent {
    /// An agent offering every tool of `registry` that loads (in a fixed order: by name).
    pub fn new(
        provider: Arc<dyn Provider>,
        registry: Arc<Registry>,
        settings: Settings,
        system: String,
    ) -> (Self, Vec<String>) {
        let (mut tools, mut read_only, problems) = registry.model_tools();
        // The first request goes out meanwhile; the first call finds its validator ready.
        let prepare = registry.clone();
        std::thread::spawn(move || prepare.prepare_validators());
        let compressor = Arc::new(std::sync::Mutex::new(Compressor::new(
            settings.context.clone(),
        )));
        let mut host = HostTools::default();
        if settings.context.enabled {
            let recall = Arc::new(host_tools::RecallTool::new(compressor.clone()));
            if host.add(recall.clone()).is_ok() {
                read_only.insert(compress::RECALL.into(), true);
                tools.push(recall.def().clone());
            }
        }
        (
            Self {
                provider,
                registry,
                settings,
                system,
                tools,
                read_only,
                approvals: Approvals::default(),
                compressor,
                system_source: None,
                host,
                skill_tool: None,
                skills: Active::default(),
                spawner: None,
                team: None,
                mcp: None,
                mcp_eager_tokens: 0,
                mcp_promised: Default::default(),
                subagents: Vec::new(),
                children_usage: Usage::default(),
                harness: Vec::new(),
            },
            problems,
        )
    }

    pub fn tools(&self) -> &[ToolDef] {
        &self.tools
    }

    /// Offer the `skill` tool over `catalog` (nothing when it has no skills); its index belongs
    /// in the system prompt (`context::system_prompt`).
    ///
    /// # Errors
    /// When the `skill` tool is offered already.
    pub fn offer_skills(&mut self, catalog: Arc<Catalog>) -> Result<(), String> {
        if catalog.is_empty() {
            return Ok(());
        }
        let tool = Arc::new(SkillTool::new(catalog, self.registry.clone()));
        self.host.add(tool.clone())?;
        self.tools.push(tool.def().clone());
        self.skill_tool = Some(tool);
        Ok(())
    }

    /// Let this agent start subagents through `spawner` (the `task` tool is offered while it is
    /// above `[agents] max_depth`; past it a call is refused with a result saying so).
    pub fn offer_subagents(&mut self, spawner: Arc<subagent::Spawner>) {
        if spawner.may_start() && !self.tools.iter().any(|t| t.name == subagent::TASK) {
            self.tools.push(spawner.def().clone());
        }
        self.spawner = Some(spawner);
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether tool `name` only reads (false for a tool this agent does not offer).
    pub fn is_read_only(&self, name: &str) -> bool {
        self.read_only.get(name).copied().unwrap_or(false)
    }

    /// What starts this agent's subagents (teammates are started the same way).
    pub fn spawner(&self) -> Option<&Arc<subagent::Spawner>> {
        self.spawner.as_ref()
    }

    /// Offer the tools of `hub`'s servers, each server's from the first request after it is up
    /// (appended after the others, so the prompt's cached prefix holds). When their schemas
    /// would take more than `eager_tokens`, only their names are offered, in `tool_search`.
    pub fn offer_mcp(&mut self, hub: Arc<crate::mcp::hub::Hub>, eager_tokens: u64) {
        self.mcp = Some(hub);
        self.mcp_eager_tokens = eager_tokens;
        self.take_mcp_tools();
    }

    /// Append the MCP tools that came up since the last request (or `tool_search`, once they
    /// are too many).
    fn take_mcp_tools(&mut self) {
        let Some(hub) = self.mcp.clone() else {
            return;
        };
        let defs = hub.defs();
        if defs.is_empty() {
            return;
        }
        if self.host.has(host_tools::TOOL_SEARCH) {
            return self.take_promised(defs);
        }
        let tokens: u64 = defs
            .iter()
            .map(|d| {
                crate::context::tokens::estimate(&d.description)
                    + crate::context::tokens::estimate(&d.input_schema.to_string())
            })
            .sum();
        if tokens > self.mcp_eager_tokens {
            let search = Arc::new(host_tools::ToolSearch::new(hub));
            if self.host.add(search.clone()).is_ok() {
                self.read_only.insert(host_tools::TOOL_SEARCH.into(), true);
                self.tools.push(search.def().clone());
            }
            return self.take_promised(defs);
        }
        for def in defs {
            if !self.tools.iter().any(|t| t.name == def.name) {
                // A server's readOnlyHint is a hint: to the gate every MCP tool may change things.
                self.read_only.insert(def.name.clone(), false);
                self.tools.push(def);
            }
        }
    }

    /// Offer those of `defs` that a resumed session's `tool_search` had offered.
    fn take_promised(&mut self, defs: Vec<ToolDef>) {
        if self.mcp_promised.is_empty() {
            return;
        }
        for def in defs {
            if self.mcp_promised.remove(&def.name) {
                self.read_only.insert(def.name.clone(), false);
                self.tools.push(def);
            }
        }
    }

    /// Offer again, once their servers are up, the MCP tools a resumed session's `tool_search`
    /// had offered (its transcript's `offer` records).
    pub fn restore_offers(&mut self, names: &[String]) {
        self.mcp_promised.extend(
            names
                .iter()
                .filter(|n| !self.tools.iter().any(|t| &t.name == *n))
                .cloned(),
        );
        self.take_mcp_tools();
    }

    /// Put this agent on a team: it is offered `ask` and `send`.
    pub fn offer_team(&mut self, team: Arc<crate::team::tools::TeamTools>) {
        for def in team.defs() {
            if !self.tools.iter().any(|t| t.name == def.name) {
                self.read_only.insert(def.name.clone(), true);
                self.tools.push(def.clone());
            }
        }
        self.team = Some(team);
    }

    /// This agent's session, to which its subagents' transcripts are linked.
    pub fn link_session(&self, id: &str) {
        if let Some(s) = &self.spawner {
            s.set_session(id);
        }
    }

    /// Load again the skills a resumed session had loaded (its transcript's `skill` records).
    /// Returns a warning for each that cannot be loaded any more.
    pub fn restore_skills(&mut self, names: &[String]) -> Vec<String> {
        let mut warnings = Vec::new();
        for name in names {
            let loaded = match &self.skill_tool {
                Some(tool) => tool.load(name),
                None => Err("this session offers no skills".into()),
            };
            match loaded {
                Ok(load) => self.activate(load.activation, load.tools),
                Err(why) => warnings.push(format!(
                    "the resumed session had skill `{name}` loaded, but it cannot be loaded again: {why}"
                )),
            }
        }
        warnings
    }

    /// The skills loaded in this session, oldest first (the compressor re-injects them).
    pub fn active_skills(&self) -> &Active {
        &self.skills
    }

    fn activate(
        &mut self,
        activation: crate::context::skills::Activation,
        tools: Vec<(ToolDef, bool)>,
    ) {
        for (def, read_only) in tools {
            if !self.tools.iter().any(|t| t.name == def.name) {
                self.read_only.insert(def.name.clone(), read_only);
                self.tools.push(def);
            }
        }
        self.skills.push(activation);
    }

    /// Apply what a host tool changed, recording it first.
    fn apply(
        &mut self,
        effect: Effect,
        transcript: Option<&mut Transcript>,
        observer: &mut dyn Observer,
    ) {
        match effect {
            Effect::OfferTools(defs) => {
                let tools: Vec<String> = defs
                    .iter()
                    .filter(|d| !self.tools.iter().any(|t| t.name == d.name))
                    .map(|d| d.name.clone())
                    .collect();
                if !tools.is_empty() {
                    record(transcript, &Record::Offer { tools }, observer);
                }
                for def in defs {
                    if !self.tools.iter().any(|t| t.name == def.name) {
                        self.read_only.insert(def.name.clone(), false);
                        self.tools.push(def);
                    }
                }
            }
            Effect::ActivateSkill { activation, tools } => {
                record(
                    transcript,
                    &Record::Skill {
                        name: activation.name.clone(),
                    },
                    observer,
                );
                self.activate(activation, tools);
            }
        }
    }

    /// Offer only the tools `keep` accepts (the `small` profile's few).
    pub fn retain_tools(&mut self, keep: impl Fn(&str) -> bool) {
        self.tools.retain(|t| keep(&t.name));
        let offered = self.tools.iter().any(|t| t.name == compress::RECALL);
        if let Ok(mut c) = self.compressor.lock() {
            c.recall_offered = offered;
        }
    }

    /// Replace the system prompt (one made from the tools offered, say).
    pub fn set_system(&mut self, system: String) {
        self.system = system;
    }

    pub fn system(&self) -> &str {
        &self.system
    }

    /// Where the system prompt comes from, read again after each compaction so that rules in
    /// the memory files survive it.
    pub fn set_system_source(&mut self, source: SystemSource) {
        self.system_source = Some(source);
    }

    /// Results a resumed session's compactions took out of its context (for `recall`).
    pub fn restore_archive(&mut self, results: Vec<(String, String)>) {
        if let Ok(mut c) = self.compressor.lock() {
            c.restore(results);
        }
    }

    /// The worktree this agent works in.
    pub fn root(&self) -> &std::path::Path {
        self.registry.worktree().root()
    }

    /// Run until the model stops or a limit is reached. The user's prompt is already the last
    /// message of `cx.messages`.
    pub async fn run(&mut self, cx: RunContext<'_>) -> Outcome {
        let RunContext {
            messages,
            mut transcript,
            ledger,
            observer,
            cancel,
        } = cx;
        let mut turns = 0u32;
        let mut state = State::Perceive;
        let mut turn_started: Option<(Instant, Duration)> = None;
        let mut strikes = Strikes::default();
        loop {
            state = match state {
                State::Perceive => {
                    self.take_mcp_tools();
                    if let Some(hub) = &self.mcp {
                        for failure in hub.take_failures() {
                            observer.warning(&failure);
                        }
                    }
                    self.compact(
                        messages,
                        transcript.as_deref_mut(),
                        ledger,
                        observer,
                        &cancel,
                        When::Due,
                    )
                    .await;
                    let (next, sent_at) = self
                        .perceive(messages, &mut turns, ledger, observer, &cancel)
                        .await;
                    if let (Some((since, tools)), Some(sent)) = (turn_started.take(), sent_at) {
                        self.harness
                            .push(sent.saturating_duration_since(since).saturating_sub(tools));
                    }
                    next
                }
                State::Act(reply) => {
                    let started = Instant::now();
                    let (next, tool_time) = self
                        .act(
                            reply,
                            turns,
                            &mut strikes,
                            ledger,
                            observer,
                            &cancel,
                            transcript.as_deref_mut(),
                            messages,
                        )
                        .await;
                    turn_started = Some((started, tool_time));
                    next
                }
                State::Observe {
                    assistant,
                    results,
                    cancelled,
                    end,
                } => self.observe(
                    assistant,
                    results,
                    cancelled,
                    end,
                    messages,
                    transcript.as_deref_mut(),
                    ledger,
                    observer,
                ),
                State::Done(outcome) => {
                    if let Some(t) = transcript.as_deref_mut()
                        && let Err(e) = t.append(&Record::End {
                            outcome: outcome.tag().into(),
                            usage: ledger.total,
                        })
                    {
                        observer.warning(&e.to_string());
                    }
                    return outcome;
                }
            };
        }
    }

    async fn perceive(
        &self,
        messages: &[Message],
        turns: &mut u32,
        ledger: &Ledger,
        observer: &mut dyn Observer,
        cancel: &CancellationToken,
    ) -> (State, Option<Instant>) {
        if *turns >= self.settings.max_turns {
            return (
                State::Done(Outcome::MaxTurns(self.settings.max_turns)),
                None,
            );
        }
        if let Some(budget) = self.settings.token_budget {
            let used = ledger.spent();
            if used >= budget {
                return (State::Done(Outcome::TokenBudget(budget)), None);
            }
        }
        *turns += 1;
        if let Ok(mut c) = self.compressor.lock() {
            let estimate = c.estimate(&self.system, &self.tools, messages);
            let raw = c.meter.raw(estimate);
            c.meter.sending(raw);
        }
        let req = Request {
            model: &self.settings.model,
            system: &self.system,
            tools: &self.tools,
            messages,
            max_tokens: self.settings.max_tokens,
            temperature: self.settings.temperature,
            constrained: self.settings.constrained,
            tools_in_prompt: self.settings.tools_in_prompt,
        };
        observer.waiting(true);
        let mut first = true;
        let mut sent_at = None;
        let mut on = |e: Event<'_>| {
            if first && matches!(e, Event::Text(_) | Event::ToolUse { .. }) {
                first = false;
                observer.waiting(false);
            }
            match e {
                Event::Text(t) => observer.text(t),
                Event::Retry {
                    attempt,
                    wait,
                    reason,
                } => observer.retry(attempt, wait, reason),
                Event::Sending => {
                    sent_at.get_or_insert_with(Instant::now);
                }
                // The server has the request: the MCP servers may start now without delaying
                // it (they share this thread).
                Event::Accepted => {
                    if let Some(hub) = &self.mcp {
                        hub.go();
                    }
                }
                Event::ToolUse { .. } => {}
            }
        };
        let sent = tokio::select! {
            r = self.provider.send(req, &mut on) => Some(r),
            () = cancel.cancelled() => None,
        };
        observer.waiting(false);
        let next = match sent {
            None => State::Done(Outcome::Cancelled),
            Some(Ok(reply)) => State::Act(reply),
            Some(Err(e)) => State::Done(Outcome::Failed(self.explain(&e))),
        };
        (next, sent_at)
    }

    /// Run the reply's tool calls. Returns the next state and the time spent in tools.
    #[allow(clippy::too_many_arguments)]
    async fn act(
        &mut self,
        reply: Reply,
        turns: u32,
        strikes: &mut Strikes,
        ledger: &mut Ledger,
        observer: &mut dyn Observer,
        cancel: &CancellationToken,
        mut transcript: Option<&mut Transcript>,
        messages: &[Message],
    ) -> (State, Duration) {
        ledger.record(&reply.usage);
        if let Ok(mut c) = self.compressor.lock() {
            c.meter.replied(reply.usage.total_input());
        }
        observer.turn_end(&reply.usage, ledger);
        if reply.stop == StopReason::MaxTokens {
            return (self.cut(reply, strikes, observer), Duration::ZERO);
        }
        strikes.cut = 0;
        let calls: Vec<(String, String, Value)> = reply
            .message
            .tool_uses()
            .map(|(id, name, input)| (id.to_string(), name.to_string(), input.clone()))
            .collect();
        if calls.is_empty() {
            if let Some(why) = &reply.malformed_call {
                return (
                    self.malformed(reply.message.clone(), why, strikes, observer),
                    Duration::ZERO,
                );
            }
            let results = Message {
                role: Role::User,
                content: Vec::new(),
            };
            return (
                State::Observe {
                    assistant: reply.message,
                    results,
                    cancelled: false,
                    end: None,
                },
                Duration::ZERO,
            );
        }
        strikes.malformed = 0;
        // The calls are on disk before any of them runs.
        record(
            transcript.as_deref_mut(),
            &Record::Assistant {
                message: reply.message.clone(),
                usage: reply.usage,
            },
            observer,
        );
        let started = Instant::now();
        let mut cx = policy::Context {
            role: self.settings.role.clone(),
            turns_left: self.settings.max_turns.saturating_sub(turns),
            tokens_left: self
                .settings
                .token_budget
                .map_or(u64::MAX, |b| b.saturating_sub(ledger.spent())),
            skills: self.skills.clone(),
        };
        let results = self
            .run_tools(&calls, &mut cx, messages, observer, cancel, transcript)
            .await;
        ledger
            .children
            .add(&std::mem::take(&mut self.children_usage));
        let tool_time = started.elapsed();
        let content = calls
            .iter()
            .zip(results)
            .map(|((id, name, input), r)| {
                let mut text =
                    crate::plugins::runtime::cut(&r.text, self.settings.max_result_bytes)
                        .into_owned();
                // A read the model already has in front of it, word for word.
                if !r.is_error
                    && self.settings.point_to_rereads
                    && self.read_only.get(name).copied().unwrap_or(false)
                    && let Some(note) = compress::unchanged(messages, name, input, &text)
                {
                    text = note;
                }
                // At temperature 0 a small model repeats a failing call word for word, forever.
                if r.is_error {
                    let key = (name.clone(), input.clone());
                    if strikes.failed.contains(&key) {
                        text.push_str(REPEATED_FAILURE);
                    } else {
                        strikes.failed.push(key);
                    }
                }
                Block::ToolResult {
                    tool_use_id: id.clone(),
                    content: text,
                    is_error: r.is_error,
                }
            })
            .collect();
        (
            State::Observe {
                assistant: reply.message,
                results: Message {
                    role: Role::User,
                    content,
                },
                cancelled: cancel.is_cancelled(),
                end: None,
            },
            tool_time,
        )
    }

    /// A provider error, with the tool and plugin named when the server's complaint points at an
    /// input schema cove sent (a `$ref` it cannot resolve, a keyword its grammar lacks): the
    /// user then knows which plugin to switch off or report, instead of suspecting cove's request.
    fn explain(&self, e: &crate::provider::ProviderError) -> String {
        let text = e.to_string();
        let crate::provider::ProviderError::Http {
            status: 400..=499,
            body,
            ..
        } = e
        else {
            return text;
        };
        let lower = body.to_ascii_lowercase();
        let about_schema = [
            "schema",
            "$ref",
            "$defs",
            "grammar",
            "parameters",
            "response_format",
            "tools",
        ]
        .iter()
        .any(|w| lower.contains(w));
        if !about_schema {
            return text;
        }
        let words: Vec<&str> = body
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .filter(|w| w.len() >= 3)
            .collect();
        // What only one tool's schema has and a server would quote: a definition's name
        // (`OutputMode`), a path to a property (`properties/output_mode`), the tool's name in
        // quotes. Bare words are not enough: `type` or `read` turn up in any message.
        let names = |t: &ToolDef| -> Vec<String> {
            let mut n = Vec::new();
            for key in ["$defs", "definitions"] {
                if let Some(o) = t.input_schema.get(key).and_then(Value::as_object) {
                    n.extend(o.keys().filter(|k| words.contains(&k.as_str())).cloned());
                }
            }
            if let Some(o) = t.input_schema.get("properties").and_then(Value::as_object) {
                n.extend(
                    o.keys()
                        .filter(|k| {
                            body.contains(&format!("properties/{k}"))
                                || body.contains(&format!("properties.{k}"))
                        })
                        .map(|k| format!("properties/{k}")),
                );
            }
            for q in ['`', '\'', '"'] {
                if body.contains(&format!("{q}{}{q}", t.name)) {
                    n.push(format!("tool {}", t.name));
                }
            }
            n
        };
        let all: Vec<Vec<String>> = self.tools.iter().map(names).collect();
        let culprit = self.tools.iter().zip(&all).find(|(_, mine)| {
            mine.iter()
                .any(|n| all.iter().filter(|other| other.contains(n)).count() == 1)
        });
        match culprit {
            Some((tool, _)) => {
                let plugin = self
                    .registry
                    .provider(&tool.name)
                    .map_or_else(|| "?".to_string(), |p| p.manifest.name.clone());
                format!(
                    "{text}\nThis points at the input schema of tool `{}` (plugin `{plugin}`), which cove sent as given; \
                     switch the plugin off with [plugins.{plugin}] enabled = false, or report it to its author",
                    tool.name
                )
            }
            // Nothing in it is one tool's: better no hint than a wrong one ("tools param
            // requires --jinja" is llama.cpp's own setting, say).
            None => text,
        }
    }

    /// A reply cut at max_tokens: whatever calls it began are not run (their input is cut too).
    /// The model is told and asked again, shorter, up to [`MAX_CUT_IN_A_ROW`] times in a row;
    /// then the run ends as [`Outcome::MaxTokens`], never as finished.
    fn cut(&self, reply: Reply, strikes: &mut Strikes, observer: &mut dyn Observer) -> State {
        strikes.cut += 1;
        let limit = self.settings.max_tokens;
        observer.warning(&format!(
            "the model's reply was cut at max_tokens ({limit} tokens){}",
            if strikes.cut >= MAX_CUT_IN_A_ROW {
                ""
            } else {
                "; asking it again, shorter"
            }
        ));
        let mut text = reply.message.text();
        if text.trim().is_empty() {
            text = "(a reply cut off at max_tokens)".into();
        }
        let assistant = Message {
            role: Role::Assistant,
            content: vec![Block::Text { text }],
        };
        let note = format!(
            "Your reply was cut off at the limit of {limit} output tokens, so none of it was run. \
             Reply again, shorter: one tool call at a time, and write a large file in several smaller edits."
        );
        State::Observe {
            assistant,
            results: Message::user_text(note),
            cancelled: false,
            end: (strikes.cut >= MAX_CUT_IN_A_ROW).then_some(Outcome::MaxTokens(limit)),
        }
    }

    /// A reply that tried to be a tool call written as JSON and is not a valid one: the model is
    /// told why and the exact format, up to [`MAX_MALFORMED_IN_A_ROW`] times in a row; then the
    /// run fails, saying so.
    fn malformed(
        &self,
        assistant: Message,
        why: &str,
        strikes: &mut Strikes,
        observer: &mut dyn Observer,
    ) -> State {
        strikes.malformed += 1;
        observer.warning(&format!("the model wrote a malformed tool call: {why}"));
        let note = format!(
            "Your reply was not run: it looks like a tool call, but {why}.\n{}",
            crate::provider::textcall::call_format(&self.tools, true)
        );
        let end = (strikes.malformed >= MAX_MALFORMED_IN_A_ROW).then(|| {
            Outcome::Failed(format!(
                "the model wrote {MAX_MALFORMED_IN_A_ROW} malformed tool calls in a row (the last: {why})"
            ))
        });
        State::Observe {
            assistant,
            results: Message::user_text(note),
            cancelled: false,
            end,
        }
    }

    /// Keep the whole turn: transcript first, then the in-memory history. A turn with calls has
    /// its message on disk already; its results follow it. A turn answered by a note (a cut or
    /// malformed reply) is kept whole in one record.
    #[allow(clippy::too_many_arguments)]
    fn observe(
        &self,
        assistant: Message,
        results: Message,
        cancelled: bool,
        end: Option<Outcome>,
        messages: &mut Vec<Message>,
        transcript: Option<&mut Transcript>,
        ledger: &Ledger,
        observer: &mut dyn Observer,
    ) -> State {
        let has_results = !results.content.is_empty();
        let rec = if assistant.tool_uses().next().is_some() {
            Record::ToolResults {
                message: results.clone(),
            }
        } else {
            Record::Turn {
                assistant: assistant.clone(),
                tool_results: has_results.then(|| results.clone()),
                usage: ledger.last,
            }
        };
        record(transcript, &rec, observer);
        messages.push(assistant);
        if has_results {
            messages.push(results);
        }
        if let Some(end) = end {
            State::Done(end)
        } else if cancelled {
            State::Done(Outcome::Cancelled)
        } else if has_results {
            State::Perceive
        } else {
            State::Done(Outcome::Finished)
        }
    }

    /// Every call gets exactly one result, in the model's order. Consecutive read-only calls run
    /// in parallel; a mutating call runs alone, after what came before it.
    /// The policy gate's answer for one call: permitted, or the error result for the model.
    async fn permit(
        &self,
        call: ToolCall,
        cx: &policy::Context,
        observer: &mut dyn Observer,
    ) -> Result<Permitted, ToolResult> {
        let denied = |text: String| ToolResult {
            text,
            is_error: true,
        };
        // Policies are components: like tools, they run on a blocking thread, never on the
        // async one (wasmtime-wasi's sync calls would try to block on the runtime).
        let (gate, registry, cx) = (
            self.settings.gate.clone(),
            self.registry.clone(),
            cx.clone(),
        );
        let decision = tokio::task::spawn_blocking(move || gate.decide(&registry, call, &cx))
            .await
            .unwrap_or_else(|e| {
                Decision::Deny(format!("the policy check crashed in the host ({e})"))
            });
        match decision {
            Decision::Allow(p) => Ok(p),
            Decision::Deny(why) => Err(denied(format!("denied by policy: {why}"))),
            Decision::Ask(pending) if self.settings.assume_yes => Ok(pending.approve()),
            Decision::Ask(pending) => {
                let pending = match pending.approved_before(&self.approvals) {
                    Ok(p) => return Ok(p),
                    Err(pending) => pending,
                };
                match observer.ask(&pending) {
                    Some(answer) => pending.answer(answer, &self.approvals).map_err(denied),
                    None => Err(denied(format!(
                        "this call needs the user's approval ({}) and nobody can answer {}; \
                         the user can rerun with --yes or choose another policy (--policy trusted)",
                        pending.question,
                        if self.spawner.as_ref().is_some_and(|s| s.is_subagent()) {
                            "a subagent's questions"
                        } else {
                            "in a headless run"
                        }
                    ))),
                }
            }
        }
    }

    async fn run_tools(
        &mut self,
        calls: &[(String, String, Value)],
        cx: &mut policy::Context,
        messages: &[Message],
        observer: &mut dyn Observer,
        cancel: &CancellationToken,
        mut transcript: Option<&mut Transcript>,
    ) -> Vec<ToolResult> {
        let flag = Arc::new(AtomicBool::new(false));
        let watcher = {
            let flag = flag.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                cancel.cancelled().await;
                flag.store(true, Ordering::Relaxed);
            })
        };
        let mut results: Vec<Option<ToolResult>> = vec![None; calls.len()];
        let mut i = 0;
        while i < calls.len() {
            // Consecutive `task` calls: their subagents run at the same time.
            if calls[i].1 == subagent::TASK
                && let Some(spawner) = self.spawner.clone()
            {
                let mut end = i + 1;
                while end < calls.len() && calls[end].1 == subagent::TASK {
                    end += 1;
                }
                let answers = self
                    .run_tasks(
                        &spawner,
                        &calls[i..end],
                        cx,
                        observer,
                        cancel,
                        transcript.as_deref_mut(),
                    )
                    .await;
                for (k, r) in answers.into_iter().enumerate() {
                    let (id, name, _) = &calls[i + k];
                    observer.tool_result(id, name, &r);
                    results[i + k] = Some(r);
                }
                i = end;
                if cancel.is_cancelled() {
                    break;
                }
                continue;
            }
            // A teammate's `ask`/`send` or an MCP server's tool: one at a time, each waiting
            // for what answers it.
            if let Some(remote) = self.remote(&calls[i].1) {
                let (id, name, input) = &calls[i];
                observer.tool_call(id, name, input);
                let r = match self.permit(ToolCall::new(name, input), cx, observer).await {
                    Ok(permitted) => {
                        self.record_start(transcript.as_deref_mut(), id, name, observer);
                        let r = remote
                            .answer(permitted, cancel, &mut |p| observer.progress(id, name, p))
                            .await;
                        self.record_done(transcript.as_deref_mut(), id, &r, observer);
                        r
                    }
                    Err(denied) => denied,
                };
                observer.tool_result(id, name, &r);
                results[i] = Some(r);
                i += 1;
                if cancel.is_cancelled() {
                    break;
                }
                continue;
            }
            let parallel = self.read_only.get(&calls[i].1).copied().unwrap_or(false);
            let mut end = i + 1;
            if parallel {
                while end < calls.len()
                    && self.read_only.get(&calls[end].1).copied().unwrap_or(false)
                {
                    end += 1;
                }
            }
            // Each call of the batch: running (a handle) or already answered (a denial).
            let mut running = Vec::new();
            // Progress the batch's plugins report, by their place in the batch.
            let (progress_tx, mut progress_rx) =
                tokio::sync::mpsc::unbounded_channel::<(usize, dispatch::ToolProgress)>();
            for (k, (id, name, input)) in calls[i..end].iter().enumerate() {
                observer.tool_call(id, name, input);
                let call = ToolCall::new(name, input);
                let permitted = match self.permit(call, cx, observer).await {
                    Ok(p) => p,
                    Err(denied) => {
                        results[i + k] = Some(denied);
                        running.push(None);
                        continue;
                    }
                };
                // A host tool answers here, in order: what it changes (a skill loaded) holds for
                // the calls after it.
                if self.host.has(name) {
                    let answer = self.host.call(
                        permitted,
                        &HostCx {
                            messages,
                            skills: &self.skills,
                        },
                    );
                    if let Some(effect) = answer.effect {
                        self.apply(effect, transcript.as_deref_mut(), observer);
                        cx.skills = self.skills.clone();
                    }
                    results[i + k] = Some(answer.result);
                    running.push(None);
                    continue;
                }
                if !parallel {
                    // A call that changes something is marked before it starts, so a crash
                    // leaves a trace that it may have partly happened.
                    self.record_start(transcript.as_deref_mut(), id, name, observer);
                }
                let registry = self.registry.clone();
                let flag = flag.clone();
                let tx = progress_tx.clone();
                let progress = crate::plugins::runtime::ProgressSink::new(move |p| {
                    let _ = tx.send((k, p.into()));
                });
                running.push(Some(tokio::task::spawn_blocking(move || {
                    dispatch::answer(&registry, permitted, Some(flag), Some(progress)).result
                })));
            }
            // Results are reported in the model's order, denials included.
            for (k, handle) in running.into_iter().enumerate() {
                let handle_ran = handle.is_some();
                let r = match handle {
                    Some(mut h) => {
                        let joined = loop {
                            // Reports first: a call's reports are all queued before it ends,
                            // so none is left behind once its result is taken.
                            tokio::select! {
                                biased;
                                Some((j, p)) = progress_rx.recv() => {
                                    // A call already answered may have queued a last report.
                                    if j >= k {
                                        let (id, name, _) = &calls[i + j];
                                        observer.progress(id, name, &p);
                                    }
                                }
                                joined = &mut h => break joined,
                            }
                        };
                        joined.unwrap_or_else(|e| ToolResult {
                            text: format!("the tool call crashed in the host: {e}"),
                            is_error: true,
                        })
                    }
                    None => results[i + k].take().unwrap_or_else(|| ToolResult {
                        text: "denied".into(),
                        is_error: true,
                    }),
                };
                let (id, name, _) = &calls[i + k];
                if !parallel && handle_ran {
                    self.record_done(transcript.as_deref_mut(), id, &r, observer);
                }
                observer.tool_result(id, name, &r);
                results[i + k] = Some(r);
            }
            i = end;
            if cancel.is_cancelled() {
                break;
            }
        }
        watcher.abort();
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| ToolResult {
                    text: "not run: the turn was cancelled".into(),
                    is_error: true,
                })
            })
            .collect()
    }
}

/// What answers a tool the loop waits on outside this process's plugins.
enum Remote {
    Team(Arc<crate::team::tools::TeamTools>),
    Mcp(Arc<crate::mcp::hub::Hub>),
}

impl Remote {
    /// Answer a permitted call; the permission is spent on it. What the call reports of its
    /// progress goes to `progress` as it comes.
    async fn answer(
        &self,
        permitted: Permitted,
        cancel: &CancellationToken,
        progress: &mut (dyn FnMut(&dispatch::ToolProgress) + Send),
    ) -> ToolResult {
        match self {
            Remote::Mcp(hub) => hub.call(permitted, cancel, progress).await,
            Remote::Team(team) => {
                let call = permitted.into_call();
                match serde_json::from_str::<Value>(&call.input) {
                    Ok(input) => team.call(&call.tool, &input, cancel).await,
                    Err(e) => ToolResult::error(format!("invalid input: not JSON ({e})")),
                }
            }
        }
    }
}

impl Agent {
    /// What answers `tool`, when a teammate or an MCP server does.
    fn remote(&self, tool: &str) -> Option<Remote> {
        if tool == crate::team::tools::ASK || tool == crate::team::tools::SEND {
            self.team.clone().map(Remote::Team)
        } else if crate::mcp::config::split(tool).is_some() {
            self.mcp.clone().map(Remote::Mcp)
        } else {
            None
        }
    }

    /// Mark a call that changes something, or waits on others, as started in the transcript
    /// before it runs, so a crash leaves a trace that it may have partly happened.
    fn record_start(
        &self,
        transcript: Option<&mut Transcript>,
        id: &str,
        name: &str,
        observer: &mut dyn Observer,
    ) {
        record(
            transcript,
            &Record::ToolStart {
                id: id.to_string(),
                name: name.to_string(),
            },
            observer,
        );
    }

    /// Mark a call that changes something, or waits on others, as done in the transcript.
    fn record_done(
        &self,
        transcript: Option<&mut Transcript>,
        id: &str,
        r: &ToolResult,
        observer: &mut dyn Observer,
    ) {
        record(
            transcript,
            &Record::ToolDone {
                id: id.to_string(),
                content: crate::plugins::runtime::cut(&r.text, self.settings.max_result_bytes)
                    .into_owned(),
                is_error: r.is_error,
            },
            observer,
        );
    }

    /// Run consecutive `task` calls: each passes the gate, gets its share of the budget, and
    /// its subagent runs beside the others; their events reach `observer` as they happen. Each
    /// call is marked in the transcript before its subagent starts, as a mutating call is.
    async fn run_tasks(
        &mut self,
        spawner: &Arc<subagent::Spawner>,
        calls: &[(String, String, Value)],
        cx: &policy::Context,
        observer: &mut dyn Observer,
        cancel: &CancellationToken,
        mut transcript: Option<&mut Transcript>,
    ) -> Vec<ToolResult> {
        let mut answers: Vec<Option<ToolResult>> = vec![None; calls.len()];
        let mut permitted = Vec::new();
        let mut at = Vec::new();
        for (k, (id, name, input)) in calls.iter().enumerate() {
            observer.tool_call(id, name, input);
            let call = ToolCall::new(name, input);
            match self.permit(call, cx, observer).await {
                Ok(p) => {
                    permitted.push(p);
                    at.push(k);
                }
                Err(denied) => answers[k] = Some(denied),
            }
        }
        let read_only = |n: &str| self.read_only.get(n).copied().unwrap_or(false);
        let jobs = spawner.plan(permitted, &self.settings, cx, &read_only);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut running = Vec::new();
        let mut started = Vec::new();
        for (k, job) in at.into_iter().zip(jobs) {
            match job {
                Ok(job) => {
                    let (id, name, _) = &calls[k];
                    self.record_start(transcript.as_deref_mut(), id, name, observer);
                    running.push(spawner.run(job, &self.settings, cancel, tx.clone()));
                    started.push(k);
                }
                Err(text) => answers[k] = Some(ToolResult::error(text)),
            }
        }
        drop(tx);
        let mut all = std::pin::pin!(futures_util::future::join_all(running));
        let finished = loop {
            tokio::select! {
                done = &mut all => break done,
                Some(event) = rx.recv() => observer.relayed(event),
            }
        };
        while let Ok(event) = rx.try_recv() {
            observer.relayed(event);
        }
        for (k, f) in started.into_iter().zip(finished) {
            self.children_usage.add(&f.usage);
            self.subagents.extend(f.agents);
            self.record_done(transcript.as_deref_mut(), &calls[k].0, &f.result, observer);
            answers[k] = Some(f.result);
        }
        answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| ToolResult::error("not run".into())))
            .collect()
    }
}

/// The context compressor's side of the loop: when to compact, the summary requests, the record.
impl Agent {
    fn estimate(&self, messages: &[Message]) -> u64 {
        self.compressor
            .lock()
            .map(|mut c| c.estimate(&self.system, &self.tools, messages))
            .unwrap_or(0)
    }

    /// Compact `messages` when the next request would pass `compact_at` of the window, or now
    /// (`/compact`, with an optional focus for the summary): mask, then structure, then
    /// summary, each only while the request is still over the target (all three, now). The
    /// memory files are read again, the transcript records the compacted history, and the
    /// observer hears what was done. `None` when nothing was due or nothing could be done.
    pub async fn compact(
        &mut self,
        messages: &mut Vec<Message>,
        transcript: Option<&mut Transcript>,
        ledger: &mut Ledger,
        observer: &mut dyn Observer,
        cancel: &CancellationToken,
        when: When,
    ) -> Option<Report> {
        let forced = match when {
            When::Due => None,
            When::Now { focus } => Some(focus),
        };
        let before = self.estimate(messages);
        let (due, goal, ratio, limit) = match self.compressor.lock() {
            Ok(c) => (
                c.due(before),
                c.settings.goal(),
                c.meter.ratio(),
                c.settings.limit(),
            ),
            Err(_) => return None,
        };
        if forced.is_none() && !due {
            return None;
        }
        let focus = forced.clone().flatten();
        let mut report = Report {
            tokens_before: before,
            forced: forced.is_some(),
            focus: focus.clone(),
            ..Report::default()
        };
        // Tokens still to free, in the estimator's units, with a margin of 5 % of the window
        // so that a layer that reaches the target does not leave the next one to run for a few
        // tokens short; everything it can, when forced.
        let need = |now: u64| {
            if forced.is_some() {
                u64::MAX
            } else {
                ((now.saturating_sub(goal) + limit / 20) as f64 / ratio).ceil() as u64
            }
        };
        if let Ok(mut c) = self.compressor.lock() {
            c.mask(messages, need(before), &mut report);
        }
        let now = self.estimate(messages);
        if (forced.is_some() || now > goal)
            && let Ok(mut c) = self.compressor.lock()
        {
            c.structure(messages, need(now), &mut report);
        }
        let now = self.estimate(messages);
        if forced.is_some() || now > goal {
            // Each piece the summariser reads fits half the window, with room for its reply.
            let chunk = (limit as f64 / 2.0 / ratio) as u64;
            let plan = self
                .compressor
                .lock()
                .ok()
                .and_then(|mut c| c.plan_summary(&self.system, &self.tools, messages, chunk));
            if let Some(plan) = plan {
                match self.summarise(&plan, focus.as_deref(), ledger, cancel).await {
                    Ok(summary) => {
                        if let Err(e) = crate::capabilities::memory::append_summary(
                            self.root(),
                            &summary,
                        ) {
                            observer.warning(&format!(
                                "the summary could not be kept in the memory file: {e}"
                            ));
                        }
                        if let Ok(mut c) = self.compressor.lock() {
                            c.apply_summary(messages, &plan, &summary, &mut report);
                        }
                    }
                    Err(e) => observer.warning(&format!(
                        "the context could not be summarised ({e}); going on with what masking freed"
                    )),
                }
            }
        }
        if report.layers.is_empty() {
            if forced.is_none() {
                observer.warning(&format!(
                    "the context is at ~{before} tokens of {limit} and nothing more can be compacted"
                ));
            }
            return None;
        }
        // Rules survive: the memory files as they are on disk now, and the skills in use.
        if let Some(source) = &self.system_source {
            self.system = source();
            self.system.push_str(&reinjected(&self.skills));
        }
        report.tokens_after = self.estimate(messages);
        record(
            transcript,
            &Record::Compaction {
                report: report.clone(),
                history: messages.clone(),
            },
            observer,
        );
        observer.compaction(&report);
        Some(report)
    }

    /// Ask the model for the summary of `plan`, piece by piece (each piece's request fits the
    /// window; the summary so far goes into the next), without tools.
    async fn summarise(
        &self,
        plan: &compress::SummaryPlan,
        focus: Option<&str>,
        ledger: &mut Ledger,
        cancel: &CancellationToken,
    ) -> Result<String, String> {
        let mut summary: Option<String> = None;
        for chunk in &plan.chunks {
            let messages = [compress::summary_request(chunk, summary.as_deref(), focus)];
            let req = Request {
                model: &self.settings.model,
                system: compress::SUMMARY_SYSTEM,
                tools: &[],
                messages: &messages,
                max_tokens: self.settings.max_tokens.min(4096),
                temperature: self.settings.temperature,
                constrained: false,
                tools_in_prompt: false,
            };
            let mut quiet = |_: Event<'_>| {};
            let reply = tokio::select! {
                r = self.provider.send(req, &mut quiet) => r.map_err(|e| e.to_string())?,
                () = cancel.cancelled() => return Err("cancelled".into()),
            };
            ledger.record(&reply.usage);
            let text = reply.message.text();
            if text.trim().is_empty() {
                return Err("the model's summary was empty".into());
            }
            summary = Some(text);
        }
        summary.ok_or_else(|| "there was nothing to summarise".into())
    }
}

/// The instructions of the skills in use, for the system prompt after a compaction (their
/// `skill` results may have been masked or summarised away).
fn reinjected(skills: &Active) -> String {
    let mut out = String::new();
    for r in skills.reinjection() {
        out.push_str(&format!(
            "\n<skill name=\"{}\" loaded=\"earlier in this session\">\n{}\n</skill>\n",
            r.name,
            r.text.trim_end()
        ));
    }
    out
}

/// Replies in a row that could not be run, each kind counted apart, and the calls that failed.
#[derive(Default)]
struct Strikes {
    malformed: u32,
    cut: u32,
    failed: Vec<(String, Value)>,
}

/// Added to the result of a call that already failed once with the very same input.
const REPEATED_FAILURE: &str = "\n[You made this exact call before and it failed then too: it will keep failing. \
Do something else first (read the file again, or change the input).]";

/// Append `rec` to the transcript, if there is one; a failure is a warning, and the run goes on.
fn record(transcript: Option<&mut Transcript>, rec: &Record, observer: &mut dyn Observer) {
    if let Some(t) = transcript
        && let Err(e) = t.append(rec)
    {
        observer.warning(&format!(
            "{e}; the session goes on, but this part of it is not saved"
        ));
    }
}
