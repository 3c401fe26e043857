//! The `cove` command line. Parses flags, sets up logging, and hands off to the library; errors
//! reach the user here, through anyhow, as one clear message and a non-zero exit code.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use cove::config::Config;
use cove::dispatch::{self, ToolCall};
use cove::registry::Registry;
use cove::worktree::Worktree;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "cove",
    version,
    about = "A coding-agent host whose tools are sandboxed WebAssembly components"
)]
struct Cli {
    /// Run against this worktree instead of the git repository around the current directory.
    #[arg(long, global = true, value_name = "DIR")]
    worktree: Option<PathBuf>,
    /// Run commands WITHOUT the OS sandbox (no namespaces, Landlock or capability drop), for
    /// machines where `cove doctor` shows a wall missing. Said loudly in every run.
    #[arg(long, global = true)]
    unsandboxed: bool,
    /// More diagnostics on stderr (-v: debug, -vv: trace). RUST_LOG works too.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
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
    /// The tools available in this worktree.
    #[command(subcommand)]
    Tools(ToolsCommand),
    /// Work with plugin components.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// An offline session: a scripted model fixes a bug in a sample repository with the real tools.
    Demo,
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
enum PluginCommand {
    /// Show a component's kind, contract version, exports, imports and its manifest's asks.
    Inspect {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    // The sandbox helper must stay single-threaded and quiet until it execs: dispatch it first.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(cove::sandbox::HELPER) {
        cove::sandbox::enter_and_exec(args.get(2).map_or("", String::as_str));
    }
    // Tools run on a few blocking threads; glibc would give each its own malloc arena, which
    // costs resident memory for no gain in a process this size.
    // SAFETY: mallopt only changes allocator tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cove: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

fn run(cli: Cli) -> Result<ExitCode> {
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
        Command::Run { prompt, args } => session(cli.worktree, Some(prompt), args),
        Command::Chat { args } => session(cli.worktree, None, args),
        Command::Sessions(SessionsCommand::List { all, json }) => {
            list_sessions(cli.worktree, all, json)
        }
        Command::Tools(ToolsCommand::List { json }) => {
            let registry = open_registry(cli.worktree)?;
            list_tools(&registry, json)
        }
        Command::Tools(ToolsCommand::Call { tool, input, json }) => {
            let registry = open_registry(cli.worktree)?;
            let input = if input == "-" {
                let mut buf = String::new();
                std::io::stdin()
                    .read_to_string(&mut buf)
                    .context("reading the input from stdin")?;
                buf
            } else {
                input
            };
            // The user typed this call: their word is the permission.
            let call = cove::policy::Permitted::by_user(ToolCall { tool, input });
            let result = dispatch::call(&registry, &call);
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string(&result)?)?;
            } else if result.is_error {
                eprintln!("error: {}", result.text.trim_end());
            } else {
                write!(out, "{}", result.text)?;
                if !result.text.ends_with('\n') {
                    writeln!(out)?;
                }
            }
            Ok(if result.is_error {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Plugin(PluginCommand::Inspect { file, json }) => inspect(&file, json),
        Command::Demo => demo(),
        Command::Doctor { json } => doctor(json),
    }
}

fn open_registry(worktree: Option<PathBuf>) -> Result<Registry> {
    let wt = match worktree {
        Some(dir) => Worktree::open(&dir)?,
        None => Worktree::discover(
            &std::env::current_dir().context("cannot read the current directory")?,
        )?,
    };
    let user_dir = cove::paths::config_dir();
    let config = Config::load(user_dir.as_deref(), wt.root())?;
    let cache = cove::paths::cache_dir();
    Ok(Registry::discover(
        Arc::new(wt),
        &config,
        user_dir.as_deref(),
        cache,
    ))
}

fn list_tools(registry: &Registry, json: bool) -> Result<ExitCode> {
    let tools = registry.tools();
    let disabled: Vec<String> = registry
        .plugins()
        .iter()
        .filter(|p| !p.enabled)
        .map(|p| p.manifest.name.clone())
        .collect();
    let mut out = std::io::stdout().lock();
    if json {
        let value = serde_json::json!({
            "worktree": registry.worktree().root(),
            "tools": tools,
            "disabled_plugins": disabled,
            "problems": registry.problems(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let width = tools.iter().map(|t| t.name.len()).max().unwrap_or(4).max(4);
    let src_width = tools
        .iter()
        .map(|t| t.plugin.len() + t.source.to_string().len() + 1)
        .max()
        .unwrap_or(6)
        .max(6);
    writeln!(
        out,
        "{:width$}  {:src_width$}  {:9}  {:28}  DESCRIPTION",
        "TOOL", "SOURCE", "MODE", "CAPABILITIES"
    )?;
    for t in &tools {
        let source = format!("{}:{}", t.source, t.plugin);
        let mode = if t.read_only { "read-only" } else { "writes" };
        writeln!(
            out,
            "{:width$}  {source:src_width$}  {mode:9}  {:28}  {}",
            t.name,
            t.capabilities.summary(),
            t.description
        )?;
    }
    for p in registry
        .plugins()
        .iter()
        .filter(|p| p.enabled && !p.withheld.is_empty())
    {
        writeln!(
            out,
            "note: plugin `{}` asked for more than it was granted: {}",
            p.manifest.name,
            p.withheld.join("; ")
        )?;
    }
    if !disabled.is_empty() {
        writeln!(out, "disabled: {}", disabled.join(", "))?;
    }
    for problem in registry.problems() {
        writeln!(out, "problem: {problem}")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn inspect(file: &PathBuf, json: bool) -> Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let info = cove::contract::inspect(&bytes).with_context(|| format!("{}", file.display()))?;
    let manifest_path = file.with_file_name("plugin.toml");
    let manifest = match std::fs::read_to_string(&manifest_path) {
        Ok(text) => Some(
            cove::manifest::Manifest::parse(&text, &manifest_path)
                .map_err(|e| anyhow::anyhow!(e))?,
        ),
        Err(_) => None,
    };
    let supported = info
        .contract
        .as_deref()
        .is_some_and(cove::contract::is_supported);
    let mut out = std::io::stdout().lock();
    if json {
        let value = serde_json::json!({
            "file": file,
            "size": bytes.len(),
            "component": info,
            "supported": supported,
            "supported_contracts": cove::contract::SUPPORTED,
            "capabilities_used": cove::contract::imported_capabilities(&info),
            "manifest": manifest,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "file:     {} ({} KiB)",
        file.display(),
        bytes.len() / 1024
    )?;
    write!(out, "{info}")?;
    let support = if supported {
        "yes".to_string()
    } else {
        format!(
            "no (this cove supports {})",
            cove::contract::SUPPORTED.join(", ")
        )
    };
    writeln!(out, "loadable: {support}")?;
    let used = cove::contract::imported_capabilities(&info);
    writeln!(
        out,
        "uses host capabilities: {}",
        if used.is_empty() {
            "none".into()
        } else {
            used.join(", ")
        }
    )?;
    match manifest {
        Some(m) => {
            let caps = &m.capabilities;
            writeln!(
                out,
                "manifest: {} {} ({}), {}",
                m.name,
                m.version,
                m.kind,
                manifest_path.display()
            )?;
            writeln!(
                out,
                "  asks for: fs:{}{}{}{}{}",
                caps.fs,
                if caps.search { " search" } else { "" },
                if caps.exec { " exec" } else { "" },
                if caps.ast { " ast" } else { "" },
                if caps.net.is_empty() {
                    String::new()
                } else {
                    format!(" net:{}", caps.net.join(","))
                }
            )?;
            for t in &m.tools {
                writeln!(
                    out,
                    "  tool {}: {}{}",
                    t.name,
                    t.description,
                    if t.read_only { " (read-only)" } else { "" }
                )?;
            }
        }
        None => writeln!(
            out,
            "manifest: none beside it ({})",
            manifest_path.display()
        )?,
    }
    if !supported {
        bail!("this component cannot be loaded by this cove");
    }
    Ok(ExitCode::SUCCESS)
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
        }
    }
}

fn session_store() -> Result<cove::session::Store> {
    let dir = cove::paths::data_dir()
        .context("cannot find a data directory: set HOME or COVE_DATA_DIR")?;
    Ok(cove::session::Store::new(dir.join("sessions")))
}

fn list_sessions(worktree: Option<PathBuf>, all: bool, json: bool) -> Result<ExitCode> {
    let store = session_store()?;
    let wt = if all {
        None
    } else {
        Some(open_worktree(worktree)?)
    };
    let list = store.list(wt.as_ref().map(|w| w.root()))?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        writeln!(
            out,
            "no sessions yet{}",
            if all {
                ""
            } else {
                " in this worktree (--all shows every worktree)"
            }
        )?;
    }
    for s in list {
        let (y, mo, d, h, mi, _) = cove::session::civil(s.modified);
        let place = if all {
            format!("  {}", s.worktree.display())
        } else {
            String::new()
        };
        writeln!(
            out,
            "{}  {y:04}-{mo:02}-{d:02} {h:02}:{mi:02}  {:>3} turns  {}{place}",
            s.id, s.turns, s.title
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn open_worktree(worktree: Option<PathBuf>) -> Result<Worktree> {
    Ok(match worktree {
        Some(dir) => Worktree::open(&dir)?,
        None => Worktree::discover(
            &std::env::current_dir().context("cannot read the current directory")?,
        )?,
    })
}

/// `cove run` and `cove chat`.
fn session(worktree: Option<PathBuf>, prompt: Option<String>, args: RunArgs) -> Result<ExitCode> {
    let wt = open_worktree(worktree)?;
    let user_dir = cove::paths::config_dir();
    let config = Config::load(user_dir.as_deref(), wt.root())?;
    let mut pc = config.provider.clone();
    pc.merge(cove::config::ProviderConfig {
        kind: args.provider.clone(),
        model: args.model.clone(),
        base_url: args.base_url.clone(),
        max_turns: args.max_turns,
        token_budget: args.token_budget,
        script: args.script.clone(),
        ..Default::default()
    });
    let (provider, model) =
        cove::provider::select(&pc, &|k| std::env::var(k).ok().filter(|v| !v.is_empty()))?;
    let cwd = std::env::current_dir().unwrap_or_else(|_| wt.root().to_path_buf());
    let system = cove::context::system_prompt(wt.root(), &cwd);
    let root = wt.root().to_path_buf();
    let registry = Arc::new(Registry::discover(
        Arc::new(wt),
        &config,
        user_dir.as_deref(),
        cove::paths::cache_dir(),
    ));
    let policies = if args.policy.is_empty() {
        config.policy.clone()
    } else {
        args.policy.clone()
    };
    let gate = cove::policy::Gate::new(&registry, &policies).map_err(|e| anyhow::anyhow!(e))?;
    let settings = cove::agent::Settings {
        model: model.clone(),
        max_tokens: pc.max_tokens.unwrap_or(8192),
        max_turns: pc.max_turns.unwrap_or(50),
        token_budget: pc.token_budget,
        gate,
        assume_yes: args.yes,
        role: "main".into(),
    };
    let store = session_store()?;
    let (mut transcript, mut messages) = match (&args.resume, args.continue_) {
        (Some(id), _) => store.resume(id)?,
        (None, true) => store.resume(&store.latest(&root)?)?,
        (None, false) => (store.create(&root, provider.name(), &model)?, Vec::new()),
    };
    // Loading components runs them (describe): never on the async thread.
    let (mut agent, problems) = cove::agent::Agent::new(provider, registry, settings, system);
    for p in problems {
        eprintln!("warning: {p}");
    }
    let runtime = async_runtime()?;
    runtime.block_on(async move {
        match prompt {
            Some(prompt) => {
                one_task(
                    &mut agent,
                    &mut transcript,
                    &mut messages,
                    prompt,
                    &args,
                    &model,
                )
                .await
            }
            None => chat(&mut agent, &mut transcript, &mut messages, &model).await,
        }
    })
}

/// The loop waits on the network and runs tools on blocking threads, so one async thread is
/// enough; a small blocking pool bounds the threads (and their stacks) parallel tools can use.
fn async_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(8)
        .build()
        .context("starting the async runtime")
}

fn exit_code(outcome: &cove::agent::Outcome) -> ExitCode {
    use cove::agent::Outcome;
    match outcome {
        Outcome::Finished => ExitCode::SUCCESS,
        Outcome::Failed(_) => ExitCode::FAILURE,
        Outcome::MaxTurns(_) | Outcome::TokenBudget(_) => ExitCode::from(3),
        Outcome::Cancelled => ExitCode::from(130),
    }
}

/// Cancel `token` on Ctrl-C.
fn cancel_on_ctrl_c(token: &tokio_util::sync::CancellationToken) -> tokio::task::JoinHandle<()> {
    let token = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            token.cancel();
        }
    })
}

async fn one_task(
    agent: &mut cove::agent::Agent,
    transcript: &mut cove::session::Transcript,
    messages: &mut Vec<cove::conversation::Message>,
    prompt: String,
    args: &RunArgs,
    model: &str,
) -> Result<ExitCode> {
    use cove::ui::Format;
    let user = cove::conversation::Message::user_text(prompt);
    transcript.append(&cove::session::Record::User {
        message: user.clone(),
    })?;
    messages.push(user);
    let mut ledger = cove::cache::Ledger::default();
    let cancel = tokio_util::sync::CancellationToken::new();
    let watcher = cancel_on_ctrl_c(&cancel);
    let id = transcript.id.clone();
    let outcome = match args.output_format {
        Format::Text => {
            let mut t = cove::ui::Terminal::new(
                std::io::stdout().is_terminal(),
                std::io::stderr().is_terminal(),
            );
            let cx = cove::agent::RunContext {
                messages,
                transcript: Some(transcript),
                ledger: &mut ledger,
                observer: &mut t,
                cancel,
            };
            let outcome = agent.run(cx).await;
            t.end_line();
            eprintln!(
                "\n{} — {}\nsession {id}",
                outcome.describe(),
                ledger.summary(model)
            );
            outcome
        }
        Format::Json => {
            let mut c = cove::ui::JsonCollector::default();
            let cx = cove::agent::RunContext {
                messages,
                transcript: Some(transcript),
                ledger: &mut ledger,
                observer: &mut c,
                cancel,
            };
            let outcome = agent.run(cx).await;
            let mut v = cove::ui::end_json(&id, &outcome, &ledger, model, &agent.harness);
            v["result"] = serde_json::Value::String(c.text);
            v["tool_calls"] = serde_json::Value::Array(c.tool_calls);
            v["warnings"] = serde_json::json!(c.warnings);
            println!("{}", serde_json::to_string_pretty(&v)?);
            outcome
        }
        Format::StreamJson => {
            cove::ui::emit(
                &serde_json::json!({"type": "session_start", "session_id": id, "model": model, "unsandboxed": cove::sandbox::unsandboxed(),
                "tools": agent.tools().iter().map(|t| t.name.clone()).collect::<Vec<_>>()}),
            );
            let mut s = cove::ui::StreamJson {
                model: model.to_string(),
            };
            let cx = cove::agent::RunContext {
                messages,
                transcript: Some(transcript),
                ledger: &mut ledger,
                observer: &mut s,
                cancel,
            };
            let outcome = agent.run(cx).await;
            let mut end = cove::ui::end_json(&id, &outcome, &ledger, model, &agent.harness);
            end["type"] = "end".into();
            cove::ui::emit(&end);
            outcome
        }
    };
    watcher.abort();
    Ok(exit_code(&outcome))
}

async fn chat(
    agent: &mut cove::agent::Agent,
    transcript: &mut cove::session::Transcript,
    messages: &mut Vec<cove::conversation::Message>,
    model: &str,
) -> Result<ExitCode> {
    use tokio::io::AsyncBufReadExt;
    let color = std::io::stdout().is_terminal();
    eprintln!(
        "cove — {model} — session {} — {} tools. Ctrl-C cancels a turn, Ctrl-D exits.",
        transcript.id,
        agent.tools().len()
    );
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut ledger = cove::cache::Ledger::default();
    loop {
        eprint!("{}", if color { "\x1b[1m> \x1b[0m" } else { "> " });
        let line = tokio::select! {
            l = lines.next_line() => l?,
            _ = tokio::signal::ctrl_c() => { eprintln!("\n(Ctrl-D exits)"); continue; }
        };
        let Some(line) = line else {
            eprintln!("\n{}", ledger.summary(model));
            return Ok(ExitCode::SUCCESS);
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let user = cove::conversation::Message::user_text(line);
        transcript.append(&cove::session::Record::User {
            message: user.clone(),
        })?;
        // After a cancelled or failed turn the history ends with the user's words; the next
        // prompt joins them, as the transcript's reader does on --resume.
        match messages.last_mut() {
            Some(last) if last.role == cove::conversation::Role::User => {
                last.content.extend(user.content)
            }
            _ => messages.push(user),
        }
        let cancel = tokio_util::sync::CancellationToken::new();
        let watcher = cancel_on_ctrl_c(&cancel);
        let mut t = cove::ui::Terminal::new(color, std::io::stderr().is_terminal());
        t.can_ask = true;
        let cx = cove::agent::RunContext {
            messages,
            transcript: Some(transcript),
            ledger: &mut ledger,
            observer: &mut t,
            cancel,
        };
        let outcome = agent.run(cx).await;
        watcher.abort();
        t.end_line();
        if outcome != cove::agent::Outcome::Finished {
            eprintln!("{}", outcome.describe());
        }
    }
}

fn doctor(json: bool) -> Result<ExitCode> {
    let scratch = std::env::temp_dir().join(format!("cove-doctor-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let walls = cove::sandbox::doctor(&scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    let all = walls.iter().all(|w| w.active);
    if json {
        println!("{}", serde_json::to_string_pretty(&walls)?);
    } else {
        println!(
            "plugins: WebAssembly components, one WASI preopen (the worktree), .git and .cove read-only: always on"
        );
        for w in &walls {
            println!(
                "{} {}: {}",
                if w.active { "✓" } else { "✗" },
                w.name,
                w.detail
            );
        }
        if !all {
            println!(
                "\nCommands (the bash tool) need every wall; with one missing they are refused."
            );
        }
    }
    Ok(if all {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The offline demo: a sample repository with a bug, and a scripted model that fixes it with the
/// real built-in tools, through the real loop.
fn demo() -> Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!("cove-demo-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("src")).context("creating the demo repository")?;
    std::fs::create_dir_all(dir.join(".git"))?;
    std::fs::write(dir.join(".gitignore"), "target/\n")?;
    std::fs::write(
        dir.join("src/lib.rs"),
        "/// Adds two numbers.\npub fn add(a: i32, b: i32) -> i32 {\n    a - b // TODO: wrong operator\n}\n",
    )?;
    std::fs::write(dir.join("AGENTS.md"), "Keep changes minimal.\n")?;
    std::fs::create_dir_all(dir.join("target"))?;
    std::fs::write(
        dir.join("target/ignored.rs"),
        "// TODO: never shown, gitignored\n",
    )?;
    let script: cove::provider::scripted::Script =
        serde_json::from_str(include_str!("../demo/script.json"))?;
    let provider: Arc<dyn cove::provider::Provider> =
        Arc::new(cove::provider::scripted::Scripted::new(script));
    let wt = Worktree::open(&dir)?;
    let config = Config::load(None, wt.root())?;
    let system = cove::context::system_prompt(wt.root(), wt.root());
    let registry = Arc::new(Registry::discover(
        Arc::new(wt),
        &config,
        None,
        cove::paths::cache_dir(),
    ));
    // The demo's script is known in advance, so its calls run without asking.
    let gate = cove::policy::Gate::new(&registry, &["trusted".to_string()])
        .map_err(|e| anyhow::anyhow!(e))?;
    let settings = cove::agent::Settings {
        model: "scripted".into(),
        max_tokens: 4096,
        max_turns: 10,
        token_budget: None,
        gate,
        assume_yes: false,
        role: "main".into(),
    };
    println!(
        "cove demo: a scripted model fixes a bug in a sample repository at {}\n",
        dir.display()
    );
    let prompt = "Find the TODO in this crate and fix it.";
    println!("> {prompt}\n");
    let (mut agent, _) = cove::agent::Agent::new(provider, registry, settings, system);
    let runtime = async_runtime()?;
    let outcome = runtime.block_on(async {
        let mut messages = vec![cove::conversation::Message::user_text(prompt)];
        let mut ledger = cove::cache::Ledger::default();
        let mut t = cove::ui::Terminal::new(std::io::stdout().is_terminal(), false);
        let cancel = tokio_util::sync::CancellationToken::new();
        let cx = cove::agent::RunContext {
            messages: &mut messages,
            transcript: None,
            ledger: &mut ledger,
            observer: &mut t,
            cancel,
        };
        let outcome = agent.run(cx).await;
        println!();
        outcome
    });
    let fixed = std::fs::read_to_string(dir.join("src/lib.rs"))?;
    println!("\n{}. src/lib.rs is now:\n{fixed}", outcome.describe());
    println!(
        "With a provider configured (`cove run --help`), `cove run \"…\"` does the same with a real model."
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(exit_code(&outcome))
}
