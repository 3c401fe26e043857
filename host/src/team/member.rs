//! Teammates: long-lived agents that serve the requests in their mailbox.
//!
//! Owns a team in this process: opening its mailbox (in memory, or Redis Streams), starting
//! members (each a post office with its router, worker and heartbeat, and an agent that keeps
//! its context from one request to the next, works in a worktree of its own per request, merged
//! back when it answers, as a subagent's is), the lead's side (`ask` and `send` without a
//! worker), and stopping them all. A member is made as a subagent is, through the lead's
//! [`Spawner`]: its policies are the lead's plus its own, so it never has more than the lead.
//! Must not parse arguments or print (events go to the channel the caller drains).

use crate::agent::definitions::{self, Definition};
use crate::agent::events::Relayed;
use crate::agent::subagent::{Job, Spawner};
use crate::agent::{Agent, Settings};
use crate::config::{TeamBackend, TeamConfig};
use crate::conversation::Message as Turn;
use crate::team::mailbox::{self, Mailbox, Presence};
use crate::team::message::Message;
use crate::team::post::{Answer, Handler, Limits, Post};
use crate::team::roster::{Member, Roster};
use crate::team::tools::{Reachable, TeamTools};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A team that cannot be started, with what to do.
#[derive(Debug, thiserror::Error)]
pub enum TeamError {
    #[error("{0}")]
    Config(String),
    #[error("the team's mailbox cannot be opened: {0}")]
    Mailbox(#[from] mailbox::MailboxError),
}

/// Open the mailbox `config` names, for team `name`.
///
/// # Errors
/// Redis chosen without a URL, or a server that cannot be reached.
pub async fn open_mailbox(config: &TeamConfig, name: &str) -> Result<Arc<dyn Mailbox>, TeamError> {
    let limits = mailbox::Limits::default();
    match config.backend() {
        TeamBackend::Memory => Ok(Arc::new(mailbox::memory::Memory::new(limits))),
        TeamBackend::Redis => {
            let url = config.redis_url.as_deref().ok_or_else(|| {
                TeamError::Config(
                    "[team] backend = \"redis\" needs redis_url = \"redis://HOST:PORT\" in cove's config".into(),
                )
            })?;
            Ok(Arc::new(
                mailbox::redis::Redis::connect(url, name, limits).await?,
            ))
        }
    }
}

/// The team's name: `[team] name`, else the repository folder's.
pub fn team_name(config: &TeamConfig, root: &std::path::Path) -> String {
    config.name.clone().unwrap_or_else(|| {
        let base: String = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .take(64)
            .collect();
        if base.is_empty() { "team".into() } else { base }
    })
}

/// What every member made in this process is made from: the lead's (or the main agent's).
#[derive(Clone)]
pub struct Maker {
    spawner: Arc<Spawner>,
    settings: Settings,
    read_only: Arc<dyn Fn(&str) -> bool + Send + Sync>,
}

impl Maker {
    /// Members made like `agent`'s subagents.
    ///
    /// # Errors
    /// When `agent` may not start others (the `small` profile).
    pub fn from_agent(agent: &Agent) -> Result<Self, TeamError> {
        let spawner = agent.spawner().cloned().ok_or_else(|| {
            TeamError::Config(
                "teammates need the default profile (the small profile runs one agent alone)"
                    .into(),
            )
        })?;
        let tools: std::collections::HashMap<String, bool> = agent
            .tools()
            .iter()
            .map(|t| (t.name.clone(), agent.is_read_only(&t.name)))
            .collect();
        Ok(Self {
            spawner,
            settings: agent.settings().clone(),
            read_only: Arc::new(move |n: &str| tools.get(n).copied().unwrap_or(false)),
        })
    }
}

/// A team in this process.
pub struct Team {
    pub name: String,
    pub roster: Roster,
    mailbox: Arc<dyn Mailbox>,
    limits: Limits,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    events: mpsc::UnboundedSender<Relayed>,
    /// Members running that the team file does not list (general-purpose ones).
    others: Vec<Reachable>,
}

impl Team {
    /// A team named `name` over `mailbox`; members' events go to `events`.
    pub fn new(
        name: String,
        roster: Roster,
        mailbox: Arc<dyn Mailbox>,
        config: &TeamConfig,
        events: mpsc::UnboundedSender<Relayed>,
    ) -> Self {
        Self {
            name,
            roster,
            mailbox,
            limits: Limits {
                timeout: config.timeout(),
                max_depth: config.max_depth(),
            },
            stop: CancellationToken::new(),
            tasks: Vec::new(),
            events,
            others: Vec::new(),
        }
    }

    /// Make members that run now but are not in the team file reachable too (`cove teammate
    /// --name` of a name the file does not list).
    ///
    /// # Errors
    /// When the mailbox cannot be read.
    pub async fn discover(&mut self) -> Result<(), TeamError> {
        let known = self.roster.names();
        for p in self.mailbox.presence().await? {
            if !known.contains(&p.member) && !self.others.iter().any(|o| o.name == p.member) {
                self.others.push(Reachable {
                    description: format!("a general-purpose agent (running on {})", p.host),
                    name: p.member,
                });
            }
        }
        Ok(())
    }

    pub fn mailbox(&self) -> &Arc<dyn Mailbox> {
        &self.mailbox
    }

    /// Who one may reach: every member, and the lead.
    fn reachable(&self) -> Vec<Reachable> {
        let mut all = vec![Reachable {
            name: self.roster.lead().to_string(),
            description: "the lead, who talks to the user (takes messages, not requests)".into(),
        }];
        all.extend(self.roster.members.iter().map(|m| {
            Reachable {
                name: m.name.clone(),
                description: m
                    .description
                    .clone()
                    .or_else(|| m.agent.clone().map(|a| format!("a `{a}` agent")))
                    .unwrap_or_else(|| "a general-purpose agent".into()),
            }
        }));
        all.extend(self.others.iter().cloned());
        all
    }

    /// The lead's `ask` and `send`: a post office that reads answers and takes no requests.
    pub fn lead(&mut self) -> Arc<TeamTools> {
        let post = Post::new(
            self.roster.lead(),
            self.mailbox.clone(),
            self.limits.clone(),
        );
        self.tasks
            .push(tokio::spawn(post.clone().route(None, self.stop.clone())));
        self.tasks
            .push(tokio::spawn(post.clone().beat(self.stop.clone())));
        Arc::new(TeamTools::new(post, self.reachable()))
    }

    /// Start member `name` here: the team file's entry, or a general-purpose member.
    ///
    /// # Errors
    /// An unknown agent definition.
    pub fn start(&mut self, name: &str, maker: &Maker) -> Result<(), TeamError> {
        let member = self
            .roster
            .member(name)
            .cloned()
            .unwrap_or_else(|| Member::general(name));
        let kind = member
            .agent
            .clone()
            .unwrap_or_else(|| definitions::GENERAL.into());
        let mut def = maker.spawner.definition(&kind).ok_or_else(|| {
            TeamError::Config(format!(
                "member {name}: no agent definition `{kind}` (see .cove/agents or .claude/agents)"
            ))
        })?;
        for p in member.policies() {
            if !def.policy.contains(&p) {
                def.policy.push(p);
            }
        }
        if member.model.is_some() {
            def.model = member.model.clone();
        }
        let writes = !def.read_only(|t| (maker.read_only)(t));
        let post = Post::new(name, self.mailbox.clone(), self.limits.clone());
        let tools = Arc::new(TeamTools::new(post.clone(), self.reachable()));
        let teammate = Arc::new(Teammate {
            name: name.to_string(),
            maker: maker.clone(),
            def,
            writes,
            tools,
            history: tokio::sync::Mutex::new(Vec::new()),
            events: self.events.clone(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let handler: Arc<dyn Handler> = Arc::new(TeammateHandler(teammate));
        self.tasks.push(tokio::spawn(
            post.clone().route(Some(tx), self.stop.clone()),
        ));
        self.tasks.push(tokio::spawn(post.clone().serve(
            rx,
            handler,
            self.stop.clone(),
        )));
        self.tasks.push(tokio::spawn(post.beat(self.stop.clone())));
        Ok(())
    }

    /// Whether `name` is running elsewhere now (on another machine, or in a live process).
    ///
    /// # Errors
    /// When the mailbox cannot be read.
    pub async fn running_elsewhere(&self, name: &str) -> Result<Option<Presence>, TeamError> {
        let here = crate::team::post::host_name();
        // On this machine a dead process's presence lingers until its ttl: not running.
        Ok(self.mailbox.presence().await?.into_iter().find(|p| {
            p.member == name && p.pid != std::process::id() && (p.host != here || pid_alive(p.pid))
        }))
    }

    /// Stop every member started here (a request being worked on stays unacknowledged, and is
    /// found again when the member runs next), waiting for them to let go.
    pub async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), t).await;
        }
    }
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// A member's agent and its conversation.
struct Teammate {
    name: String,
    maker: Maker,
    def: Definition,
    writes: bool,
    tools: Arc<TeamTools>,
    /// Its conversation, kept from one request to the next.
    history: tokio::sync::Mutex<Vec<Turn>>,
    events: mpsc::UnboundedSender<Relayed>,
}

struct TeammateHandler(Arc<Teammate>);

impl Handler for TeammateHandler {
    fn handle(
        &self,
        request: Message,
        cancel: CancellationToken,
    ) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
        let me = self.0.clone();
        Box::pin(async move { me.handle(request, cancel).await })
    }
}

impl Teammate {
    async fn handle(&self, request: Message, cancel: CancellationToken) -> Answer {
        let prompt = if request.notice {
            format!(
                "A message from {} (it expects no answer):\n\n{}",
                request.from, request.body
            )
        } else {
            format!(
                "A request from {}. Do it; your last message is your answer, sent back to {} as it is.\n\n{}",
                request.from, request.from, request.body
            )
        };
        let mut history = self.history.lock().await;
        let job = Job::teammate(
            &self.name,
            self.def.clone(),
            prompt,
            &self.maker.settings,
            self.writes,
        );
        let turn = self
            .maker
            .spawner
            .run_turn(
                job,
                history.clone(),
                &self.maker.settings,
                cancel,
                self.events.clone(),
                self.tools.clone(),
            )
            .await;
        *history = turn.messages;
        Answer {
            text: turn.finished.result.text,
            error: turn.finished.result.is_error,
        }
    }
}
