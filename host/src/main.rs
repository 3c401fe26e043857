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
    /// More diagnostics on stderr (-v: debug, -vv: trace). RUST_LOG works too.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The tools available in this worktree.
    #[command(subcommand)]
    Tools(ToolsCommand),
    /// Work with plugin components.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Walk through the built-in tools on a sample repository (offline).
    Demo,
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
    match cli.command {
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
            let result = dispatch::call(&registry, &ToolCall { tool, input });
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

/// The offline demo: a sample repository, and the built-in tools at work on it.
fn demo() -> Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!("cove-demo-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("src")).context("creating the demo repository")?;
    std::fs::create_dir_all(dir.join(".git"))?;
    std::fs::write(dir.join(".gitignore"), "target/\n")?;
    std::fs::write(
        dir.join("src/lib.rs"),
        "/// Adds two numbers.\npub fn add(a: i32, b: i32) -> i32 {\n    a - b // TODO: wrong operator\n}\n",
    )?;
    std::fs::write(
        dir.join("README.md"),
        "# demo\nA tiny crate with a bug for cove to fix.\n",
    )?;
    std::fs::create_dir_all(dir.join("target"))?;
    std::fs::write(
        dir.join("target/ignored.rs"),
        "// TODO: never shown, gitignored\n",
    )?;

    let registry = open_registry(Some(dir.clone()))?;
    let color = std::io::stdout().is_terminal();
    let steps: [(&str, &str, String); 6] = [
        ("Find the TODOs", "grep", r#"{"pattern":"TODO","output_mode":"content"}"#.into()),
        ("List Rust files", "glob", r#"{"pattern":"**/*.rs"}"#.into()),
        ("Read the file", "read", r#"{"file_path":"src/lib.rs"}"#.into()),
        ("Fix the bug", "edit", r#"{"file_path":"src/lib.rs","old_string":"a - b // TODO: wrong operator","new_string":"a + b"}"#.into()),
        ("Try to escape the worktree", "read", r#"{"file_path":"/etc/passwd"}"#.into()),
        ("Send malformed input", "read", r#"{"path":"src/lib.rs"}"#.into()),
    ];
    println!(
        "cove demo: built-in tools on a sample repository at {}\n",
        dir.display()
    );
    for (title, tool, input) in steps {
        let heading = format!("▶ {title}: {tool} {input}");
        println!(
            "{}",
            if color {
                format!("\x1b[1m{heading}\x1b[0m")
            } else {
                heading
            }
        );
        let result = dispatch::call(
            &registry,
            &ToolCall {
                tool: tool.into(),
                input,
            },
        );
        let tag = if result.is_error { "error" } else { "ok" };
        println!("[{tag}]\n{}\n", result.text.trim_end());
    }
    println!("Now `cove tools list` in any git repository shows what its agent could use.");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ExitCode::SUCCESS)
}
