//! `cove run` and `cove chat`: one task, or an interactive session.

use super::{RunArgs, async_runtime, exit_code, session_store};
use anyhow::Result;
use cove::agent::workspace::Choice;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

pub(crate) fn start(
    worktree: Option<PathBuf>,
    prompt: Option<String>,
    args: RunArgs,
) -> Result<ExitCode> {
    let interactive = prompt.is_none();
    let ws = super::open_workspace(worktree, &mut |u| {
        if !interactive {
            return Choice::Refuse;
        }
        eprint!("{}", u.describe());
        match cove::ui::confirm("Trust these settings for this repository?") {
            Some(true) => Choice::Trust,
            Some(false) => {
                eprintln!(
                    "Going on without them: only settings that narrow apply. `cove trust` changes this."
                );
                Choice::Decline
            }
            None => Choice::Refuse,
        }
    })?;
    ws.registry.start_loading();
    let flags = cove::config::ProviderConfig {
        kind: args.provider.clone(),
        model: args.model.clone(),
        base_url: args.base_url.clone(),
        max_turns: args.max_turns,
        token_budget: args.token_budget,
        script: args.script.clone(),
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        constrained: args.constrained,
        profile: args.profile.clone(),
        ..Default::default()
    };
    let selection = cove::provider::select(&ws.config, &flags, &|k| {
        std::env::var(k).ok().filter(|v| !v.is_empty())
    })?;
    for w in &selection.warnings {
        eprintln!("warning: {w}");
    }
    let (provider, model) = (selection.provider, selection.model);
    let mut pc = ws.config.provider.clone();
    pc.merge(flags);
    let runtime = async_runtime()?;
    // Only a server the user did not describe is asked what it is (one GET, a few seconds at most).
    let server = if pc.profile.is_none() {
        runtime.block_on(provider.identify(&model))
    } else {
        None
    };
    let (profile, why) =
        cove::agent::profile::choose(pc.profile.as_deref(), server.as_ref(), &model)?;
    if let Some(why) = why {
        eprintln!("{why}");
    }
    let small = profile == cove::agent::profile::Profile::Small;
    let root = ws.worktree.root().to_path_buf();
    let cwd = std::env::current_dir().unwrap_or_else(|_| root.clone());
    let catalog = std::sync::Arc::new(ws.skills(cove::paths::claude_dir().as_deref()));
    for p in catalog.problems() {
        eprintln!("warning: skill not loaded: {p}");
    }
    let system = cove::context::system_prompt(&root, &cwd, &catalog);
    let config = &ws.config;
    let registry = ws.registry.clone();
    let policies = if args.policy.is_empty() {
        config.policy.clone()
    } else {
        args.policy.clone()
    };
    let gate =
        cove::agent::policy::Gate::new(&registry, &policies).map_err(|e| anyhow::anyhow!(e))?;
    let settings = cove::agent::Settings {
        model: model.clone(),
        max_tokens: pc.max_tokens.unwrap_or(if small {
            cove::agent::profile::SMALL_MAX_TOKENS
        } else {
            8192
        }),
        temperature: pc.temperature.or(small.then_some(0.0)),
        constrained: pc.constrained.unwrap_or(small),
        tools_in_prompt: small,
        max_result_bytes: if small {
            cove::agent::profile::SMALL_MAX_RESULT_BYTES
        } else {
            cove::agent::MAX_RESULT_BYTES
        },
        max_turns: pc.max_turns.unwrap_or(cove::config::DEFAULT_MAX_TURNS),
        token_budget: pc.token_budget,
        gate,
        assume_yes: args.yes,
        role: "main".into(),
    };
    let store = session_store()?;
    let resumed = match (&args.resume, args.continue_) {
        (Some(id), _) => Some(store.resume(id)?),
        (None, true) => Some(store.resume(&store.latest(&root)?)?),
        (None, false) => None,
    };
    let (mut transcript, mut messages, skills) = match resumed {
        Some(r) => {
            for d in &r.damaged {
                eprintln!("warning: {d}");
            }
            (r.transcript, r.messages, r.skills)
        }
        None => (
            store.create(&root, provider.name(), &model)?,
            Vec::new(),
            Vec::new(),
        ),
    };
    // Loading components runs them (describe): never on the async thread.
    let (mut agent, problems) = cove::agent::Agent::new(provider, registry, settings, system);
    for p in problems {
        eprintln!("warning: {p}");
    }
    agent.offer_skills(catalog).map_err(anyhow::Error::msg)?;
    for w in agent.restore_skills(&skills) {
        eprintln!("warning: {w}");
    }
    if small {
        agent.retain_tools(|name| cove::agent::profile::SMALL_TOOLS.contains(&name));
        let lean = cove::agent::profile::small_system_prompt(&root, &cwd, agent.tools());
        agent.set_system(lean);
    }
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

/// Cancel `token` on Ctrl-C.
pub(crate) fn cancel_on_ctrl_c(
    token: &tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let token = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            token.cancel();
        }
    })
}

pub(crate) async fn one_task(
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
    let mut ledger = cove::context::cache::Ledger::default();
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

pub(crate) async fn chat(
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
    let mut ledger = cove::context::cache::Ledger::default();
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
        // `# fact`: remembered for the project's later sessions, without a model turn.
        if let Some(fact) = line.strip_prefix("# ") {
            remember(agent.root(), fact);
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

/// Remember `fact` in the project's memory file and say where (chat's `# fact`).
fn remember(root: &std::path::Path, fact: &str) {
    use cove::capabilities::memory::{Remembered, Scope, remember};
    let user_dir = cove::paths::config_dir();
    match remember(Scope::Project, fact, root, user_dir.as_deref()) {
        Ok(Remembered::Added(path)) => eprintln!(
            "Remembered in {} (read at the start of every session here).",
            path.display()
        ),
        Ok(Remembered::Already(path)) => {
            eprintln!("{} already holds that; nothing written.", path.display());
        }
        Err(e) => eprintln!("cove: {e}"),
    }
}
