//! The `cove` command line: flags and subcommands (clap), one file per subcommand under `cli/`.
//! Errors reach the user here, through anyhow, as one clear message and a non-zero exit code.
//! Must not hold logic a subagent or teammate would need: that belongs in the library.

mod demo;
mod doctor;
mod mcp;
mod plugin;
mod session;
mod sessions;
mod skills;
mod team;
mod tools;
mod trust;
mod worktrees;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use cove::agent::workspace::{Choice, Undecided, Workspace};
use cove::worktree::Worktree;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "cove",
    version,
    about = "A coding-agent host whose tools are sandboxed WebAssembly components"
)]
pub(crate) struct Cli {
    /// Run against this worktree instead of the git repository around the current directory.
    #[arg(long, global = true, value_name = "DIR")]
    worktree: Option<PathBuf>,
    /// Run commands WITHOUT the OS sandbox (no namespaces, Landlock or capability drop), for
    /// machines where `cove doctor` shows a wall missing. Said loudly in every run.
    #[arg(long, global = true)]
    unsandboxed: bool,
    /// More diagnostics on stderr (-v: debug, -vv: trace). RUST_LOG works too.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// Resume this session (see `cove sessions list`).
    #[arg(long, value_name = "ID", conflicts_with = "continue_")]
    resume: Option<String>,
    /// Continue the most recent session in this worktree.
    #[arg(long = "continue", short = 'c')]
    continue_: bool,
    #[arg(long, value_enum, default_value = "text")]
    output_format: cove::ui::Format,
    /// Stop after this many model turns.
    #[arg(long)]
    max_turns: Option<u32>,
    /// Stop before a request once this many tokens have been used.
    #[arg(long)]
    token_budget: Option<u64>,
    /// anthropic | openai | scripted (overrides COVE_PROVIDER and the config).
    #[arg(long)]
    provider: Option<String>,
    /// The model name (overrides COVE_MODEL and the config).
    #[arg(long)]
    model: Option<String>,
    /// The provider's base URL.
    #[arg(long)]
    base_url: Option<String>,
    /// A script for the scripted provider.
    #[arg(long, value_name = "FILE")]
    script: Option<PathBuf>,
    /// The policy deciding each tool call (repeat for several: deny beats ask beats allow);
    /// overrides `policy` in the config. Built in: default, read-only, trusted.
    #[arg(long, value_name = "NAME")]
    policy: Vec<String>,
    /// Approve every call a policy would ask the user about.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Most tokens of one reply (default 8192; 2048 in the small profile).
    #[arg(long, value_name = "N")]
    max_tokens: Option<u32>,
    /// Sampling temperature (default: the server's; 0 in the small profile).
    #[arg(long, value_name = "T")]
    temperature: Option<f32>,
    /// OpenAI-compatible servers: constrain each reply to a valid tool call or a final answer with
    /// a JSON schema (`--constrained=false` turns it off where a profile turns it on).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    constrained: Option<bool>,
    /// Compact the context before a request would pass this share of the model's window
    /// (default 0.92; `[context] compact_at`).
    #[arg(long, value_name = "SHARE", value_parser = share)]
    compact_at: Option<f64>,
    /// `small` (small local models: lean prompt, few tools, constrained, temperature 0) or
    /// `default`. Unset: small when a local runtime serves a small model.
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
}

/// A share of the window: a number above 0 and at most 1.
fn share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a share of the window: give a number above 0 and at most 1, like 0.5"
        )),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent on one task and stop when the model is done.
    Run {
        prompt: String,
        #[command(flatten)]
        args: RunArgs,
    },
    /// An interactive session (the default with no command). Ctrl-C cancels a turn, Ctrl-D exits.
    Chat {
        #[command(flatten)]
        args: RunArgs,
    },
    /// Saved sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// MCP servers: `.mcp.json` and `[mcp.servers.NAME]` in cove's config.
    #[command(subcommand)]
    Mcp(McpCommand),
    /// Teammates: long-lived agents in `.cove/team.toml` that the lead asks for work.
    #[command(subcommand)]
    Team(TeamCommand),
    /// Run one member of the team as its own process, serving its requests until stopped
    /// (needs `[team] backend = "redis"`; a name the team file does not list is a
    /// general-purpose member).
    Teammate {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        args: RunArgs,
    },
    /// The tools available in this worktree.
    #[command(subcommand)]
    Tools(ToolsCommand),
    /// Task worktrees subagents left behind: list, merge back, drop, clean.
    #[command(subcommand)]
    Worktrees(WorktreesCommand),
    /// The skills available in this worktree (SKILL.md folders and skill plugins).
    #[command(subcommand)]
    Skills(SkillsCommand),
    /// Work with plugin components.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// An offline session: a scripted model fixes a bug in a sample repository with the real tools.
    Demo,
    /// Trust this repository's `.cove/` settings and plugins (they apply only once trusted).
    Trust {
        /// Take the trust back: only settings that narrow apply.
        #[arg(long, conflicts_with = "list")]
        revoke: bool,
        /// Every repository you decided about.
        #[arg(long)]
        list: bool,
        #[arg(long)]
        json: bool,
    },
    /// Which sandbox walls are active on this machine, and why any is missing.
    Doctor {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// Sessions of this worktree, newest first (`--all`: every worktree).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum McpCommand {
    /// Each server: its state, protocol version and tools (started, waited for up to 30 s).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add a server to `.mcp.json`: `cove mcp add NAME -- COMMAND ARGS…` or `--url URL`.
    Add {
        name: String,
        /// A Streamable HTTP server's URL.
        #[arg(long, conflicts_with = "command")]
        url: Option<String>,
        /// KEY=VALUE for a stdio server's environment (repeat).
        #[arg(long)]
        env: Vec<String>,
        /// The command and its arguments, after `--`.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Remove a server from `.mcp.json`.
    Remove { name: String },
    /// Serve this worktree's tools (the plugins, sandboxed, under the policies) to other MCP
    /// clients: over stdio, or over Streamable HTTP at http://ADDR/mcp with `--http`.
    Serve {
        /// Serve Streamable HTTP on this address (e.g. 127.0.0.1:8765; port 0 picks one)
        /// instead of stdio.
        #[arg(long, value_name = "ADDR")]
        http: Option<std::net::SocketAddr>,
        /// Allow `--http` on an address that is not loopback: whoever reaches it can run the
        /// tools, which write files and run commands in this worktree.
        #[arg(long, requires = "http")]
        allow_remote: bool,
        /// The policy deciding each call (repeat for several: deny beats ask beats allow);
        /// overrides `policy` in the config. Built in: default, read-only, trusted.
        #[arg(long, value_name = "NAME")]
        policy: Vec<String>,
        /// Approve every call a policy would ask about, instead of asking the client's user.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

// Parsed once per process: the size of a variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum TeamCommand {
    /// Start every member of `.cove/team.toml` in this process, then a session (one task with
    /// PROMPT, else interactive) whose agent leads them with `ask` and `send`.
    Up {
        prompt: Option<String>,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Each member: alive or not, its state, its mailbox's depth, what it works on (refreshed
    /// every second in a terminal).
    Status {
        #[arg(long)]
        json: bool,
        /// Print once, even in a terminal.
        #[arg(long)]
        once: bool,
    },
}

#[derive(Subcommand)]
enum WorktreesCommand {
    /// Every task worktree of this repository: name, state, branch, changed files, path.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Merge a left-over task's changes into this worktree (a conflict changes nothing here).
    Merge { name: String },
    /// Remove a left-over task's worktree and branch (`--force` when it holds unmerged changes).
    Drop {
        name: String,
        #[arg(long)]
        force: bool,
    },
    /// Remove every left-over task worktree without unmerged changes (`--force`: with them too).
    Clean {
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ToolsCommand {
    /// List every tool: name, description, source, read-only or not, capabilities.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Run one tool against the worktree and print its result.
    Call {
        tool: String,
        /// The input as JSON text, or `-` to read it from stdin.
        input: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SkillsCommand {
    /// Every skill: name, source, path, description and warnings, then what could not load.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One skill's front matter, instructions and files.
    Show { name: String },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Show a component's kind, contract version, exports, imports and its manifest's asks.
    Inspect {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Start a plugin: folder NAME with a manifest, a working example, the contract's WIT, and
    /// samples for `cove plugin test`.
    New {
        /// Lowercase letters, digits and `-`.
        name: String,
        #[arg(long, value_enum)]
        lang: plugin::new::Lang,
        #[arg(long, value_enum, default_value = "tool")]
        kind: plugin::new::KindArg,
        /// Where to create the folder (default: the current directory).
        #[arg(long, value_name = "PARENT")]
        dir: Option<PathBuf>,
    },
    /// Build the plugin in DIR (Rust, JavaScript or Python) into the component its manifest names.
    Build {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Load the plugin in DIR with cove's runtime and run the samples in its manifest.
    Test {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Check the built plugin at PATH and copy it into this repository's .cove/plugins/ (or the
    /// user's plugins with --user).
    Install {
        path: PathBuf,
        /// Into your own plugins folder, for every repository.
        #[arg(long)]
        user: bool,
        /// Replace whatever is installed under that name.
        #[arg(long)]
        force: bool,
    },
}

pub(crate) fn run(cli: Cli) -> Result<ExitCode> {
    if cli.unsandboxed {
        cove::sandbox::set_unsandboxed(true);
        eprintln!(
            "warning: --unsandboxed: commands run WITHOUT the OS sandbox (no namespaces, no Landlock, capabilities kept)"
        );
    }
    let command = cli.command.unwrap_or(Command::Chat {
        args: RunArgs::default_args(),
    });
    match command {
        Command::Run { prompt, args } => {
            session::start(cli.worktree, Some(prompt), args, team::Mode::Session)
        }
        Command::Chat { args } => session::start(cli.worktree, None, args, team::Mode::Session),
        Command::Team(TeamCommand::Up { prompt, args }) => {
            session::start(cli.worktree, prompt, args, team::Mode::Up)
        }
        Command::Team(TeamCommand::Status { json, once }) => team::status(cli.worktree, json, once),
        Command::Teammate { name, args } => team::teammate(cli.worktree, name, args),
        Command::Mcp(McpCommand::List { json }) => mcp::list(cli.worktree, json),
        Command::Mcp(McpCommand::Add {
            name,
            url,
            env,
            command,
        }) => mcp::add(cli.worktree, &name, url, command, env),
        Command::Mcp(McpCommand::Remove { name }) => mcp::remove(cli.worktree, &name),
        Command::Mcp(McpCommand::Serve {
            http,
            allow_remote,
            policy,
            yes,
        }) => mcp::serve(
            cli.worktree,
            mcp::Serve {
                http,
                allow_remote,
                policy,
                yes,
            },
        ),
        Command::Sessions(SessionsCommand::List { all, json }) => {
            sessions::list(cli.worktree, all, json)
        }
        Command::Worktrees(WorktreesCommand::List { json }) => worktrees::list(cli.worktree, json),
        Command::Worktrees(WorktreesCommand::Merge { name }) => {
            worktrees::merge(cli.worktree, &name)
        }
        Command::Worktrees(WorktreesCommand::Drop { name, force }) => {
            worktrees::drop_task(cli.worktree, &name, force)
        }
        Command::Worktrees(WorktreesCommand::Clean { force, json }) => {
            worktrees::clean(cli.worktree, force, json)
        }
        Command::Tools(ToolsCommand::List { json }) => {
            let ws = open_narrowed(cli.worktree)?;
            tools::list(&ws, json)
        }
        Command::Tools(ToolsCommand::Call { tool, input, json }) => {
            tools::call(cli.worktree, tool, input, json)
        }
        Command::Skills(SkillsCommand::List { json }) => skills::list(cli.worktree, json),
        Command::Skills(SkillsCommand::Show { name }) => skills::show(cli.worktree, &name),
        Command::Plugin(PluginCommand::Inspect { file, json }) => plugin::inspect(&file, json),
        Command::Plugin(PluginCommand::New {
            name,
            lang,
            kind,
            dir,
        }) => plugin::new::run(&name, lang, kind, dir),
        Command::Plugin(PluginCommand::Build { dir }) => plugin::build::run(&dir),
        Command::Plugin(PluginCommand::Test { dir }) => plugin::test::run(&dir),
        Command::Plugin(PluginCommand::Install { path, user, force }) => {
            plugin::install::run(cli.worktree, &path, user, force)
        }
        Command::Demo => demo::run(),
        Command::Doctor { json } => doctor::run(json),
        Command::Trust { revoke, list, json } => trust::run(cli.worktree, revoke, list, json),
    }
}

/// The workspace for `worktree` (or the repository around the current directory), deciding
/// about an untrusted `.cove/` with `decide`.
pub(crate) fn open_workspace(
    worktree: Option<PathBuf>,
    decide: &mut dyn FnMut(&Undecided<'_>) -> Choice,
) -> Result<Workspace> {
    let wt = open_worktree(worktree)?;
    let user_dir = cove::paths::config_dir();
    Ok(Workspace::open(
        wt,
        user_dir.as_deref(),
        cove::paths::cache_dir(),
        decide,
    )?)
}

/// The workspace for a command the user runs by hand: an undecided `.cove/` applies only where
/// it narrows, and the user is told what was left out.
pub(crate) fn open_narrowed(worktree: Option<PathBuf>) -> Result<Workspace> {
    open_workspace(worktree, &mut |u| {
        eprintln!(
            "note: {}These are not applied until you run `cove trust`.",
            u.describe()
        );
        Choice::NarrowOnce
    })
}

impl RunArgs {
    fn default_args() -> Self {
        Self {
            resume: None,
            continue_: false,
            output_format: cove::ui::Format::Text,
            max_turns: None,
            token_budget: None,
            provider: None,
            model: None,
            base_url: None,
            script: None,
            policy: Vec::new(),
            yes: false,
            max_tokens: None,
            temperature: None,
            constrained: None,
            profile: None,
            compact_at: None,
        }
    }
}

pub(crate) fn session_store() -> Result<cove::session::Store> {
    let dir = cove::paths::data_dir()
        .context("cannot find a data directory: set HOME or COVE_DATA_DIR")?;
    Ok(cove::session::Store::new(dir.join("sessions")))
}

pub(crate) fn open_worktree(worktree: Option<PathBuf>) -> Result<Worktree> {
    Ok(match worktree {
        Some(dir) => Worktree::open(&dir)?,
        None => Worktree::discover(
            &std::env::current_dir().context("cannot read the current directory")?,
        )?,
    })
}

/// `cove run` and `cove chat`.
/// The loop waits on the network and runs tools on blocking threads, so one async thread is
/// enough; a small blocking pool bounds the threads (and their stacks) parallel tools can use.
pub(crate) fn async_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(8)
        .build()
        .context("starting the async runtime")
}

pub(crate) fn exit_code(outcome: &cove::agent::Outcome) -> ExitCode {
    use cove::agent::Outcome;
    match outcome {
        Outcome::Finished => ExitCode::SUCCESS,
        Outcome::Failed(_) => ExitCode::FAILURE,
        Outcome::MaxTurns(_) | Outcome::TokenBudget(_) | Outcome::MaxTokens(_) => ExitCode::from(3),
        Outcome::Cancelled => ExitCode::from(130),
    }
}
