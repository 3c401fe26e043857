//! Subagents: the `task` tool, which starts the same loop with a clean context.
//!
//! Owns what a subagent gets and gives back. It gets: a system prompt made like its parent's
//! (cove's, the memory files) plus its agent definition's, the `prompt` as its only message and
//! nothing of its parent's conversation; its parent's policies plus its definition's (so never
//! more than its parent); the tools its definition names; a share of its parent's turns and
//! tokens; a transcript of its own linked to its parent's; a child of its parent's cancellation.
//! An agent that may write works in its own git worktree (`team::isolator`), merged back into its
//! parent's when it finishes, by the host; a read-only one reads its parent's worktree through a
//! registry of its own. It gives back its final answer, how it ended, what it cost, and what
//! became of its worktree, as the `task` call's result; its events go up to its parent's
//! observer ([`events::Up`]). Calls past `[agents] max_depth` or the budget are refused with a
//! result saying so. Must not print, prompt, or run a plugin's tool itself (its loop does).

use crate::agent::definitions::{self, Definition, Definitions};
use crate::agent::dispatch::ToolResult;
use crate::agent::events::{self, Event, Evented, Relayed, Summary, Tag, Up};
use crate::agent::{Agent, Observer, Outcome, RunContext, Settings, policy};
use crate::context::cache::{Ledger, cost};
use crate::conversation::{Message, Role, ToolDef, Usage};
use crate::plugins::registry::Registry;
use crate::provider::Provider;
use crate::session::{Link, Record, Store};
use crate::team::isolator::{Isolator, Owner, TaskTree};
use crate::worktree::Worktree;
use serde_json::{Value, json};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// The tool's name.
pub const TASK: &str = "task";
/// The fewest turns a subagent is started with; less is refused.
pub const MIN_TURNS: u32 = 2;
/// The fewest tokens a subagent is started with, when there is a token budget; less is refused.
pub const MIN_TOKENS: u64 = 4_000;

/// A subagent's run, boxed: the loop starts subagents, which run the loop.
pub type Running = Pin<Box<dyn Future<Output = Finished> + Send>>;

/// What a subagent gave back.
pub struct Finished {
    pub result: ToolResult,
    /// What it and its own subagents used.
    pub usage: Usage,
    /// Its summary, then its subagents'.
    pub agents: Vec<Summary>,
}

/// What every agent of a tree shares.
pub struct Shared {
    pub provider: Arc<dyn Provider>,
    pub provider_name: String,
    pub definitions: Arc<Definitions>,
    pub max_depth: u32,
    /// Where transcripts go (none: subagents keep none either).
    pub sessions: Option<Store>,
    /// Where task worktrees go (`<data_dir>/worktrees`); none: only read-only subagents start.
    pub worktrees: Option<PathBuf>,
}

/// One agent's power to start subagents: its place in the tree and what a child inherits.
pub struct Spawner {
    shared: Arc<Shared>,
    tag: Tag,
    depth: u32,
    registry: Arc<Registry>,
    /// This agent's policies: a child's are these and its definition's.
    policies: Vec<String>,
    /// This agent's session, once it has one.
    session: Mutex<Option<String>>,
    isolator: OnceLock<Result<Arc<Isolator>, String>>,
    started: AtomicU32,
    def: ToolDef,
}

/// A `task` call checked and given its share of the budget (or a teammate's request), ready
/// to run.
pub struct Job {
    tag: Tag,
    def: Definition,
    description: String,
    prompt: String,
    max_turns: u32,
    token_budget: Option<u64>,
    /// Gets its own worktree (else it reads its parent's).
    writes: bool,
}

impl Job {
    /// A teammate's request: `name` on the team, working as `def` says, within `parent`'s limits.
    pub fn teammate(
        name: &str,
        def: Definition,
        prompt: String,
        parent: &Settings,
        writes: bool,
    ) -> Self {
        Self {
            tag: Tag {
                agent: name.to_string(),
                parent: None,
            },
            description: format!("{name}'s request"),
            def,
            prompt,
            max_turns: parent.max_turns,
            token_budget: parent.token_budget,
            writes,
        }
    }
}

/// A teammate's turn, done: what a subagent gives back, and its conversation for the next.
pub struct Turn {
    pub finished: Finished,
    pub messages: Vec<Message>,
}

impl Spawner {
    /// The main agent's spawner.
    pub fn main(shared: Arc<Shared>, registry: Arc<Registry>, policies: Vec<String>) -> Self {
        Self::new(
            shared,
            Tag {
                agent: events::MAIN.into(),
                parent: None,
            },
            0,
            registry,
            policies,
        )
    }

    fn new(
        shared: Arc<Shared>,
        tag: Tag,
        depth: u32,
        registry: Arc<Registry>,
        policies: Vec<String>,
    ) -> Self {
        let def = tool_def(&shared.definitions);
        Self {
            shared,
            tag,
            depth,
            registry,
            policies,
            session: Mutex::new(None),
            isolator: OnceLock::new(),
            started: AtomicU32::new(0),
            def,
        }
    }

    /// The agent definition `name` (for a teammate made like a subagent).
    pub fn definition(&self, name: &str) -> Option<Definition> {
        self.shared.definitions.get(name).cloned()
    }

    /// The `task` tool's definition.
    pub fn def(&self) -> &ToolDef {
        &self.def
    }

    /// Whether this agent may start subagents at all (it is above `[agents] max_depth`).
    pub fn may_start(&self) -> bool {
        self.depth < self.shared.max_depth
    }

    /// Whether this is a subagent's spawner (a subagent cannot put questions to the user).
    pub fn is_subagent(&self) -> bool {
        self.depth > 0
    }

    /// Link the subagents' transcripts to this agent's session.
    pub fn set_session(&self, id: &str) {
        if let Ok(mut s) = self.session.lock() {
            *s = Some(id.to_string());
        }
    }

    fn session(&self) -> Option<String> {
        self.session.lock().ok().and_then(|s| s.clone())
    }

    fn isolator(&self) -> Result<Arc<Isolator>, String> {
        self.isolator
            .get_or_init(|| {
                let dir = self.shared.worktrees.as_deref().ok_or(
                    "cove has no data directory to keep task worktrees in (set XDG_DATA_HOME or COVE_DATA_DIR)",
                )?;
                Isolator::new(self.registry.worktree().root(), dir)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
    }

    /// Check each permitted `task` call's input and give the ones that may start a share of
    /// what is left of this agent's budget (`cx`); `read_only` says which tools only read.
    pub fn plan(
        &self,
        calls: Vec<policy::Permitted>,
        parent: &Settings,
        cx: &policy::Context,
        read_only: &dyn Fn(&str) -> bool,
    ) -> Vec<Result<Job, String>> {
        // Each permission is spent here, on its own call.
        let parsed: Vec<Result<(Definition, String, String), String>> = calls
            .into_iter()
            .map(|p| {
                serde_json::from_str::<Value>(&p.into_call().input)
                    .map_err(|e| format!("invalid input: not JSON ({e})"))
                    .and_then(|input| self.parse(&input))
            })
            .collect();
        let starting = parsed.iter().filter(|p| p.is_ok()).count().max(1) as u64;
        let turns = cx.turns_left / starting as u32;
        let tokens = parent.token_budget.map(|_| cx.tokens_left / starting);
        parsed
            .into_iter()
            .map(|p| {
                let (def, description, prompt) = p?;
                if !self.may_start() {
                    return Err(format!(
                        "refused: subagents may nest only {} deep ([agents] max_depth), and this agent is at depth {}; do this part yourself",
                        self.shared.max_depth, self.depth
                    ));
                }
                if turns < MIN_TURNS || tokens.is_some_and(|t| t < MIN_TOKENS) {
                    return Err(format!(
                        "refused: too little of the budget is left to start {starting} subagent(s) ({} turns, {} left); do this part yourself or start fewer",
                        cx.turns_left,
                        tokens.map_or("no token limit".into(), |_| format!("{} tokens", cx.tokens_left)),
                    ));
                }
                let n = self.started.fetch_add(1, Ordering::Relaxed) + 1;
                let writes = !def.read_only(read_only);
                Ok(Job {
                    tag: Tag {
                        agent: format!("{}.{n}", self.tag.agent),
                        parent: Some(self.tag.agent.clone()),
                    },
                    def,
                    description,
                    prompt,
                    max_turns: turns,
                    token_budget: tokens,
                    writes,
                })
            })
            .collect()
    }

    fn parse(&self, input: &Value) -> Result<(Definition, String, String), String> {
        let text = |key: &str| {
            input
                .get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let (Some(description), Some(prompt)) = (text("description"), text("prompt")) else {
            return Err(
                "invalid input: `task` needs `description` (a few words) and `prompt` (the whole task) as strings"
                    .into(),
            );
        };
        let kind = text("subagent_type").unwrap_or_else(|| definitions::GENERAL.into());
        let def = self.shared.definitions.get(&kind).cloned().ok_or_else(|| {
            format!(
                "no agent type `{kind}`; the types are {}",
                self.shared
                    .definitions
                    .all()
                    .iter()
                    .map(|d| format!("`{}`", d.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        Ok((def, description, prompt))
    }

    /// Run `job` to its end: `parent` is the settings of the agent that started it, `cancel` its
    /// cancellation (the child's is a child of it), `tx` where its events go.
    pub fn run(
        self: &Arc<Self>,
        job: Job,
        parent: &Settings,
        cancel: &CancellationToken,
        tx: tokio::sync::mpsc::UnboundedSender<Relayed>,
    ) -> Running {
        let me = self.clone();
        let parent = parent.clone();
        let cancel = cancel.child_token();
        Box::pin(async move {
            me.run_job(job, parent, cancel, tx, Vec::new(), None)
                .await
                .finished
        })
    }

    /// Run a teammate's request `job` after its conversation so far (`history`), offering it
    /// `team` (its `ask` and `send`); gives back its conversation with this turn.
    pub async fn run_turn(
        self: &Arc<Self>,
        job: Job,
        history: Vec<Message>,
        parent: &Settings,
        cancel: CancellationToken,
        tx: tokio::sync::mpsc::UnboundedSender<Relayed>,
        team: Arc<crate::team::tools::TeamTools>,
    ) -> Turn {
        self.clone()
            .run_job(job, parent.clone(), cancel, tx, history, Some(team))
            .await
    }

    async fn run_job(
        self: Arc<Self>,
        job: Job,
        parent: Settings,
        cancel: CancellationToken,
        tx: tokio::sync::mpsc::UnboundedSender<Relayed>,
        history: Vec<Message>,
        team: Option<Arc<crate::team::tools::TeamTools>>,
    ) -> Turn {
        let started = Instant::now();
        let kept = history.clone();
        let refused = |text: String| Turn {
            finished: Finished {
                result: ToolResult::error(text),
                usage: Usage::default(),
                agents: Vec::new(),
            },
            messages: kept.clone(),
        };
        // Its worktree: its own, or its parent's to read.
        let (tree, isolator) = if job.writes {
            let isolator = match self.isolator() {
                Ok(i) => i,
                Err(e) => return refused(format!("the subagent was not started: {e}")),
            };
            let owner = Owner {
                pid: std::process::id(),
                session: self.session(),
            };
            let (iso, label) = (isolator.clone(), job.def.name.clone());
            match tokio::task::spawn_blocking(move || iso.create(&label, owner)).await {
                Ok(Ok(t)) => (Some(t), Some(isolator)),
                Ok(Err(e)) => {
                    return refused(format!(
                        "the subagent was not started: its worktree could not be made: {e}"
                    ));
                }
                Err(e) => return refused(format!("the subagent was not started: {e}")),
            }
        } else {
            (None, None)
        };
        let root = match &tree {
            Some(t) => t.path.clone(),
            None => self.registry.worktree().root().to_path_buf(),
        };
        let assembled = self.assemble(&job, &parent, &root, team).await;
        let (mut agent, spawner, model) = match assembled {
            Ok(a) => a,
            Err(e) => {
                let kept = finish_tree(&isolator, tree, false, &job).await;
                return refused(format!(
                    "the subagent was not started: {e}{}",
                    kept.map(|k| format!(" ({})", k.text)).unwrap_or_default()
                ));
            }
        };
        let opened = self.shared.sessions.as_ref().map(|store| {
            let link = Link {
                session: self.session(),
                agent: job.tag.agent.clone(),
                subagent_type: job.def.name.clone(),
                description: job.description.clone(),
            };
            store.create_linked(&root, &self.shared.provider_name, &model, Some(link))
        });
        let mut observer = Evented {
            model: model.clone(),
            sink: Up {
                tag: job.tag.clone(),
                tx: tx.clone(),
            },
        };
        let mut transcript = match opened {
            Some(Ok(t)) => {
                spawner.set_session(&t.id);
                Some(t)
            }
            // It runs all the same; the user is told its transcript is missing.
            Some(Err(e)) => {
                observer.warning(&format!("the subagent keeps no transcript: {e}"));
                None
            }
            None => None,
        };
        let _ = tx.send(Relayed {
            from: job.tag.clone(),
            event: Event::SubagentStart {
                subagent_type: job.def.name.clone(),
                description: job.description.clone(),
                session: transcript.as_ref().map(|t| t.id.clone()),
                worktree: root.display().to_string(),
                model: model.clone(),
            },
        });
        let user = Message::user_text(job.prompt.clone());
        if let Some(t) = transcript.as_mut()
            && let Err(e) = t.append(&Record::User {
                message: user.clone(),
            })
        {
            observer.warning(&e.to_string());
        }
        let mut messages = history;
        messages.push(user);
        let mut ledger = Ledger::default();
        let outcome = agent
            .run(RunContext {
                messages: &mut messages,
                transcript: transcript.as_mut(),
                ledger: &mut ledger,
                observer: &mut observer,
                cancel,
            })
            .await;
        let answer = messages
            .iter()
            .rev()
            .find(|m| m.role == Role::Assistant && !m.text().trim().is_empty())
            .map(Message::text)
            .unwrap_or_default();
        let (worktree, merged) =
            match finish_tree(&isolator, tree, outcome == Outcome::Finished, &job).await {
                Some(Merge { text, merged }) => (Some(text), merged),
                None => (None, true),
            };
        let summary = Summary {
            agent: job.tag.agent.clone(),
            parent: job.tag.parent.clone().unwrap_or_default(),
            subagent_type: job.def.name.clone(),
            description: job.description.clone(),
            session: transcript.as_ref().map(|t| t.id.clone()),
            model: model.clone(),
            outcome: outcome.tag().into(),
            turns: ledger.turns,
            usage: ledger.total,
            cost_usd: cost(&model, &ledger.total),
            worktree: worktree.clone(),
            elapsed_ms: started.elapsed().as_millis() as u64,
        };
        let _ = tx.send(Relayed {
            from: job.tag.clone(),
            event: Event::SubagentEnd(summary.clone()),
        });
        let mut usage = ledger.total;
        usage.add(&ledger.children);
        let mut text = if answer.trim().is_empty() {
            "(no answer was given)".to_string()
        } else {
            answer
        };
        text.push_str(&format!(
            "\n\n[{} {} ({}): {}; {} turn(s), {} tokens{}{}]",
            if job.tag.parent.is_some() {
                "subagent"
            } else {
                "teammate"
            },
            job.tag.agent,
            job.def.name,
            outcome.describe(),
            ledger.turns,
            usage.total_input() + usage.output_tokens,
            summary
                .cost_usd
                .map_or(String::new(), |c| format!(", ≈ ${c:.4}")),
            worktree.map(|w| format!("; {w}")).unwrap_or_default()
        ));
        let mut agents = vec![summary];
        agents.append(&mut agent.subagents);
        Turn {
            finished: Finished {
                // Work that did not reach the parent's files (a conflict, a failed merge) is a
                // failure the model must see, even when the subagent finished.
                result: ToolResult {
                    text,
                    is_error: outcome != Outcome::Finished || !merged,
                },
                usage,
                agents,
            },
            messages,
        }
    }

    /// Build the child agent over `root` (its registry loads plugins: a blocking thread).
    async fn assemble(
        self: &Arc<Self>,
        job: &Job,
        parent: &Settings,
        root: &Path,
        team: Option<Arc<crate::team::tools::TeamTools>>,
    ) -> Result<(Agent, Arc<Spawner>, String), String> {
        let worktree = Arc::new(Worktree::open(root).map_err(|e| e.to_string())?);
        let registry = Arc::new(self.registry.child(worktree));
        let mut policies = self.policies.clone();
        if policies.is_empty() {
            policies.push(policy::DEFAULT.into());
        }
        for p in &job.def.policy {
            if !policies.contains(p) {
                policies.push(p.clone());
            }
        }
        let gate = policy::Gate::new(&registry, &policies)?;
        let model = match &job.def.model {
            Some(m) if self.shared.provider_name == "anthropic" => {
                definitions::model_name(m).to_string()
            }
            Some(m) => m.clone(),
            None => parent.model.clone(),
        };
        let settings = Settings {
            model: model.clone(),
            max_turns: job.max_turns,
            token_budget: job.token_budget,
            gate,
            role: job.def.name.clone(),
            ..parent.clone()
        };
        // Made again from disk after a compaction, as its parent's is.
        let (role, prompt, at) = (
            job.def.name.clone(),
            job.def.prompt.clone(),
            root.to_path_buf(),
        );
        let make = move || {
            let mut system = crate::context::system_prompt(
                &at,
                &at,
                &crate::context::skills::Catalog::default(),
            );
            if !prompt.is_empty() {
                system.push_str(&format!("\n\n# Your role: {role}\n{prompt}\n"));
            }
            system
        };
        let spawner = Arc::new(Spawner::new(
            self.shared.clone(),
            job.tag.clone(),
            self.depth + 1,
            registry.clone(),
            policies,
        ));
        let (provider, tools, child) = (
            self.shared.provider.clone(),
            job.def.tools.clone(),
            spawner.clone(),
        );
        let agent = tokio::task::spawn_blocking(move || {
            let (mut agent, _problems) = Agent::new(provider, registry, settings, make());
            if let Some(keep) = tools {
                agent.retain_tools(|t| {
                    keep.iter().any(|k| k == t) || t == crate::context::compress::RECALL
                });
            }
            agent.offer_subagents(child);
            if let Some(team) = team {
                agent.offer_team(team);
            }
            agent.set_system_source(Box::new(make));
            agent
        })
        .await
        .map_err(|e| e.to_string())?;
        Ok((agent, spawner, model))
    }
}

/// Merge a writing subagent's worktree back (it finished) or keep it on its branch (it did
/// not); `None` for a subagent that had none. Says what happened, for the result.
async fn finish_tree(
    isolator: &Option<Arc<Isolator>>,
    tree: Option<TaskTree>,
    finished: bool,
    job: &Job,
) -> Option<Merge> {
    let (Some(iso), Some(tree)) = (isolator.clone(), tree) else {
        return None;
    };
    let message = format!("cove task {}: {}", job.tag.agent, job.description);
    let name = tree.name.clone();
    let done = tokio::task::spawn_blocking(move || {
        if finished {
            iso.finish(&tree, &message).map(|m| Merge {
                merged: !matches!(m, crate::team::isolator::MergeOutcome::Conflict { .. }),
                text: m.describe(),
            })
        } else {
            iso.keep(&tree, &message).map(|()| Merge {
                // Not merged on purpose: the subagent did not finish, which the outcome says.
                merged: true,
                text: format!(
                    "its changes are kept on branch {} in {} and were not merged: `cove worktrees merge {name}` merges them, `cove worktrees drop {name}` drops them",
                    tree.branch,
                    tree.path.display()
                ),
            })
        }
    })
    .await;
    Some(match done {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => Merge {
            text: format!("its worktree could not be merged back: {e}"),
            merged: false,
        },
        Err(e) => Merge {
            text: format!("its worktree could not be merged back: {e}"),
            merged: false,
        },
    })
}

/// What became of a subagent's worktree, for its result.
struct Merge {
    text: String,
    /// False when its work did not reach the parent's files though it should have.
    merged: bool,
}

fn tool_def(definitions: &Definitions) -> ToolDef {
    let types: Vec<String> = definitions.all().iter().map(|d| d.name.clone()).collect();
    let list: String = definitions
        .all()
        .iter()
        .map(|d| format!("\n- {}: {}", d.name, d.description))
        .collect();
    ToolDef {
        name: TASK.into(),
        description: format!(
            "Start a subagent on a self-contained task. It sees none of this conversation: put all it needs in `prompt`. \
             A subagent that writes works in its own copy of the repository, merged back when it ends. \
             Returns its answer and cost. Task calls in one reply run at the same time. Types:{list}"
        ),
        input_schema: json!({
            "type": "object",
            "properties": {
                "description": {"type": "string", "description": "A few words naming it"},
                "prompt": {"type": "string", "description": "The whole task, every detail included"},
                "subagent_type": {"type": "string", "enum": types, "description": "Which agent (default general)"}
            },
            "required": ["description", "prompt"]
        }),
    }
}
