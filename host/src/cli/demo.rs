//! `cove demo`: an offline session with a scripted model and the real tools.

use super::{async_runtime, exit_code};
use anyhow::{Context, Result};
use cove::worktree::Worktree;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

/// The offline demo: a sample repository with a bug, and a scripted model that fixes it with the
/// real built-in tools, through the real loop.
pub(crate) fn run() -> Result<ExitCode> {
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
        serde_json::from_str(include_str!("../../demo/script.json"))?;
    let provider: Arc<dyn cove::provider::Provider> =
        Arc::new(cove::provider::scripted::Scripted::new(script));
    let ws = cove::agent::workspace::Workspace::open(
        Worktree::open(&dir)?,
        None,
        cove::paths::cache_dir(),
        // The demo's repository is made above and has no .cove/: nothing to decide.
        &mut |_| cove::agent::workspace::Choice::Refuse,
    )?;
    let system = cove::context::system_prompt(
        ws.worktree.root(),
        ws.worktree.root(),
        &cove::context::skills::Catalog::default(),
    );
    let registry = ws.registry.clone();
    // The demo's script is known in advance, so its calls run without asking.
    let gate = cove::agent::policy::Gate::new(&registry, &["trusted".to_string()])
        .map_err(|e| anyhow::anyhow!(e))?;
    let settings = cove::agent::Settings {
        model: "scripted".into(),
        max_tokens: 4096,
        temperature: None,
        constrained: false,
        tools_in_prompt: false,
        point_to_rereads: true,
        max_result_bytes: cove::agent::MAX_RESULT_BYTES,
        max_turns: 10,
        token_budget: None,
        gate,
        assume_yes: false,
        role: "main".into(),
        context: ws.config.context.settings("scripted", 4096, None, None),
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
        let mut ledger = cove::context::cache::Ledger::default();
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
