//! `cove team up`, `cove teammate --name NAME`, `cove team status`, and putting the agent of
//! `cove run`/`cove chat` on the team when the team's mailbox is shared (Redis).

use super::{RunArgs, async_runtime, open_narrowed};
use anyhow::{Context, Result, bail};
use cove::agent::Agent;
use cove::agent::workspace::Workspace;
use cove::config::TeamBackend;
use cove::team::mailbox::{Depth, Presence};
use cove::team::member::{Maker, Team, open_mailbox, team_name};
use cove::team::roster::Roster;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// How a session takes part in its team.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `cove run`/`cove chat`: on the team as its lead when the mailbox is shared (Redis);
    /// the members run elsewhere (`cove teammate`).
    Session,
    /// `cove team up`: every member not running elsewhere is started in this process.
    Up,
}

/// A team this process takes part in, and the task that shows its members' events.
pub(crate) struct Joined {
    team: Team,
    shows: tokio::task::JoinHandle<()>,
}

impl Joined {
    /// The status table, on stderr (chat's `/team`).
    pub(crate) async fn show_status(&self) -> Result<()> {
        let rows = rows(&self.team).await?;
        print(&self.team, &rows, &mut std::io::stderr().lock())?;
        Ok(())
    }

    pub(crate) async fn leave(self) {
        self.team.stop().await;
        self.shows.abort();
    }
}

/// Show members' events as they come: on stderr in text, as stream-json lines on stdout.
fn show(
    format: cove::ui::Format,
    model: &str,
) -> (
    tokio::sync::mpsc::UnboundedSender<cove::agent::events::Relayed>,
    tokio::task::JoinHandle<()>,
) {
    use cove::agent::Observer;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let model = model.to_string();
    let shows = tokio::spawn(async move {
        let mut observer: Box<dyn Observer> = match format {
            cove::ui::Format::StreamJson => Box::new(cove::ui::stream_json(&model)),
            _ => Box::new(cove::ui::Terminal::new(false, false)),
        };
        while let Some(event) = rx.recv().await {
            observer.relayed(event);
        }
    });
    (tx, shows)
}

/// Put `agent` on its team as the lead (`Up`: and start the members here).
pub(crate) async fn join(
    ws: &Workspace,
    agent: &mut Agent,
    mode: Mode,
    format: cove::ui::Format,
    model: &str,
) -> Result<Option<Joined>> {
    let roster = Roster::read(&ws.worktree)?;
    let config = &ws.config.team;
    let roster = match (roster, mode) {
        (Some(r), _) => r,
        (None, Mode::Up) => bail!(
            "no team here: write {} with the members (see `cove team --help` and the README)",
            cove::team::roster::FILE
        ),
        (None, Mode::Session) => return Ok(None),
    };
    if mode == Mode::Session && config.backend() == TeamBackend::Memory {
        eprintln!(
            "note: this repository has a team; `cove team up` starts it (its mailbox is in memory)"
        );
        return Ok(None);
    }
    let maker = Maker::from_agent(agent)?;
    let name = team_name(config, ws.worktree.root());
    let mailbox = open_mailbox(config, &name).await?;
    let (tx, shows) = show(format, model);
    let mut team = Team::new(name, roster, mailbox, config, tx);
    // Answers come back to the lead's mailbox: two leads would take each other's.
    let lead = team.roster.lead().to_string();
    if let Some(p) = team.running_elsewhere(&lead).await? {
        bail!(
            "team {} has a lead already, on {} (pid {}): one lead per team; stop that session, or give this one another team with [team] name",
            team.name,
            p.host,
            p.pid
        );
    }
    team.discover().await?;
    agent.offer_team(team.lead());
    if mode == Mode::Up {
        let members: Vec<String> = team.roster.members.iter().map(|m| m.name.clone()).collect();
        let mut here = Vec::new();
        for m in members {
            if let Some(p) = team.running_elsewhere(&m).await? {
                eprintln!("{m} runs on {} (pid {}): not started here", p.host, p.pid);
                continue;
            }
            team.start(&m, &maker)?;
            here.push(m);
        }
        eprintln!(
            "team {} ({}): {} here{}",
            team.name,
            team.mailbox().backend(),
            if here.is_empty() {
                "nobody".into()
            } else {
                here.join(", ")
            },
            if here.is_empty() { "" } else { ", ready" }
        );
    }
    Ok(Some(Joined { team, shows }))
}

/// `cove teammate --name NAME`: serve one member's requests until Ctrl-C or SIGTERM.
pub(crate) fn teammate(worktree: Option<PathBuf>, name: String, args: RunArgs) -> Result<ExitCode> {
    if !cove::team::message::valid_name(&name) {
        bail!("{name:?} is not a member name: use 1 to 64 letters, digits, `-`, `_` or `.`");
    }
    let ws = super::open_workspace(worktree, &mut |u| {
        eprintln!(
            "note: {}A teammate runs unattended: these are not applied until you run `cove trust`.",
            u.describe()
        );
        cove::agent::workspace::Choice::NarrowOnce
    })?;
    let config = ws.config.team.clone();
    if config.backend() == TeamBackend::Memory {
        bail!(
            "a teammate in its own process needs a shared mailbox: set [team] backend = \"redis\" and redis_url in cove's config (`cove team up` runs a whole team in one process in memory)"
        );
    }
    let roster = Roster::read(&ws.worktree)?.unwrap_or_default();
    if name == roster.lead() {
        bail!("{name} is the team's lead: start a session (`cove chat`) for it");
    }
    ws.registry.start_loading();
    let runtime = async_runtime()?;
    let (agent, model) = super::session::assemble(&ws, &args, &runtime)?;
    let format = args.output_format;
    runtime.block_on(async move {
        let maker = Maker::from_agent(&agent)?;
        let team_id = team_name(&config, ws.worktree.root());
        let mailbox = open_mailbox(&config, &team_id).await?;
        let (tx, shows) = show(format, &model);
        let mut team = Team::new(team_id, roster, mailbox, &config, tx);
        if let Some(p) = team.running_elsewhere(&name).await? {
            bail!(
                "{name} is running already on {} (pid {}); stop it first",
                p.host,
                p.pid
            );
        }
        let general = team.roster.member(&name).is_none();
        team.discover().await?;
        team.start(&name, &maker)?;
        eprintln!(
            "{name} serves team {} on {}{}. Ctrl-C stops.",
            team.name,
            team.mailbox().backend(),
            if general {
                " (a general-purpose member: the team file does not list it)"
            } else {
                ""
            }
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot watch for SIGTERM")?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("{name} stops");
        team.stop().await;
        shows.abort();
        Ok(ExitCode::SUCCESS)
    })
}

/// One member's line in `cove team status`.
#[derive(serde::Serialize)]
struct Row {
    member: String,
    role: &'static str,
    alive: bool,
    state: String,
    working_on: Option<String>,
    depth: Depth,
    host: Option<String>,
    pid: Option<u32>,
    /// Seconds since it was last heard from.
    heard_s: Option<f64>,
}

async fn rows(team: &Team) -> Result<Vec<Row>> {
    let presence: Vec<Presence> = team.mailbox().presence().await?;
    let mut names = team.roster.names();
    for p in &presence {
        if !names.contains(&p.member) {
            names.push(p.member.clone());
        }
    }
    let now = cove::team::message::now_ms();
    let mut rows = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        let p = presence.iter().find(|p| p.member == name);
        rows.push(Row {
            role: if i == 0 {
                "lead"
            } else if team.roster.member(&name).is_some() {
                "member"
            } else {
                "general"
            },
            alive: p.is_some(),
            state: p.map_or("down".into(), |p| p.state.clone()),
            working_on: p.and_then(|p| p.working_on.clone()),
            depth: team.mailbox().depth(&name).await?,
            host: p.map(|p| p.host.clone()),
            pid: p.map(|p| p.pid),
            heard_s: p.map(|p| now.saturating_sub(p.beat) as f64 / 1000.0),
            member: name,
        });
    }
    Ok(rows)
}

fn print(team: &Team, rows: &[Row], out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "team {} ({})", team.name, team.mailbox().backend())?;
    writeln!(
        out,
        "{:<16} {:<8} {:<8} {:>7} {:>7}  WORKING ON",
        "MEMBER", "ROLE", "STATE", "WAITING", "PENDING"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:<16} {:<8} {:<8} {:>7} {:>7}  {}{}",
            r.member,
            r.role,
            r.state,
            r.depth.waiting,
            r.depth.pending,
            r.working_on.clone().unwrap_or_default(),
            match (&r.host, r.pid) {
                (Some(h), Some(p)) => format!("  [{h} pid {p}]"),
                _ => String::new(),
            }
        )?;
    }
    Ok(())
}

/// `cove team status`: each member, its state, its mailbox's depth and what it works on;
/// refreshed every second in a terminal (`--once`: printed once).
pub(crate) fn status(worktree: Option<PathBuf>, json: bool, once: bool) -> Result<ExitCode> {
    let ws = open_narrowed(worktree)?;
    let roster = Roster::read(&ws.worktree)?.unwrap_or_default();
    let config = ws.config.team.clone();
    if config.backend() == TeamBackend::Memory {
        bail!(
            "this team's mailbox is in memory, inside `cove team up`, and no other process can see it: type /team in that session, or set [team] backend = \"redis\" to watch a team from here"
        );
    }
    let runtime = async_runtime()?;
    runtime.block_on(async move {
        let name = team_name(&config, ws.worktree.root());
        let mailbox = open_mailbox(&config, &name).await?;
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let team = Team::new(name, roster, mailbox, &config, tx);
        let live = !json && !once && std::io::stdout().is_terminal();
        loop {
            let rows = rows(&team).await?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            } else {
                if live {
                    // Home and clear: the table is drawn again in place.
                    write!(out, "\x1b[H\x1b[2J")?;
                }
                print(&team, &rows, &mut out)?;
            }
            out.flush()?;
            drop(out);
            if !live {
                return Ok(ExitCode::SUCCESS);
            }
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
        }
    })
}
