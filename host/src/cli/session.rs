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
    mode: super::team::Mode,
) -> Result<ExitCode> {
    let interactive = prompt.is_none();
    let ws = super::open_workspace(worktree, &mut |u| {
        if !interactive {
            // Many repositories carry `.claude/skills` or `.mcp.json`: a headless run goes on
            // without them rather than refuse, since leaving them out narrows and nothing else
            // is asked.
            if u.only_optional {
                eprintln!(
                    "note: {}These are not offered until you run `cove trust`.",
                    u.describe()
                );
                return Choice::NarrowOnce;
            }
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
    let runtime = async_runtime()?;
    let prepared = prepare(&ws, &args, &runtime)?;
    let root = ws.worktree.root().to_path_buf();
    let model = prepared.model.clone();
    let store = session_store()?;
    let resumed = match (&args.resume, args.continue_) {
        (Some(id), _) => Some(store.resume(id)?),
        (None, true) => Some(store.resume(&store.latest(&root)?)?),
        (None, false) => None,
    };
    let (mut transcript, mut messages, archive, skills, offered) = match resumed {
        Some(r) => {
            for d in &r.damaged {
                eprintln!("warning: {d}");
            }
            if let Some(note) = super::worktrees::left_over(&root) {
                eprintln!("{note}");
            }
            (r.transcript, r.messages, r.results, r.skills, r.offered)
        }
        None => (
            store.create(&root, &prepared.provider_name, &model)?,
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        ),
    };
    let (mut agent, problems) = prepared.build(&ws);
    for p in problems {
        eprintln!("warning: {p}");
    }
    agent.link_session(&transcript.id);
    agent.restore_archive(archive);
    for w in agent.restore_skills(&skills) {
        eprintln!("warning: {w}");
    }
    runtime.block_on(async move {
        let hub = super::mcp::start(&ws);
        if let Some(hub) = &hub {
            agent.offer_mcp(hub.clone(), ws.config.mcp.eager_tokens());
            agent.restore_offers(&offered);
        }
        let joined = super::team::join(&ws, &mut agent, mode, args.output_format, &model).await?;
        let done = match prompt {
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
            None => {
                chat(
                    &mut agent,
                    &mut transcript,
                    &mut messages,
                    &model,
                    joined.as_ref(),
                )
                .await
            }
        };
        if let Some(j) = joined {
            j.leave().await;
        }
        if let Some(hub) = hub {
            hub.stop().await;
        }
        done
    })
}

/// Every choice for an agent from `args` and the workspace, with what the user should be told
/// said on stderr.
fn prepare(
    ws: &cove::agent::workspace::Workspace,
    args: &RunArgs,
    runtime: &tokio::runtime::Runtime,
) -> Result<cove::agent::assemble::Prepared> {
    let choices = cove::agent::assemble::Choices {
        flags: cove::config::ProviderConfig {
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
        },
        policy: args.policy.clone(),
        assume_yes: args.yes,
        compact_at: args.compact_at,
        role: "main".into(),
    };
    let root = ws.worktree.root().to_path_buf();
    let cwd = std::env::current_dir().unwrap_or_else(|_| root.clone());
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let prepared = cove::agent::assemble::prepare(ws, choices, &env, &cwd, runtime)?;
    for w in &prepared.warnings {
        eprintln!("warning: {w}");
    }
    for n in &prepared.notes {
        eprintln!("{n}");
    }
    Ok(prepared)
}

/// An agent over `ws` as `args` choose (a teammate's maker): its model's name too.
pub(crate) fn assemble(
    ws: &cove::agent::workspace::Workspace,
    args: &RunArgs,
    runtime: &tokio::runtime::Runtime,
) -> Result<(cove::agent::Agent, String)> {
    let prepared = prepare(ws, args, runtime)?;
    let model = prepared.model.clone();
    let (agent, problems) = prepared.build(ws);
    for p in problems {
        eprintln!("warning: {p}");
    }
    Ok((agent, model))
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
            for s in &agent.subagents {
                eprintln!("{}", cove::ui::describe_summary(s));
            }
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
            let mut v = cove::ui::end_json(
                &id,
                &outcome,
                &ledger,
                model,
                &agent.harness,
                &agent.subagents,
            );
            v["result"] = serde_json::Value::String(c.text);
            v["tool_calls"] = serde_json::Value::Array(c.tool_calls);
            v["warnings"] = serde_json::json!(c.warnings);
            v["compactions"] = serde_json::Value::Array(c.compactions);
            println!("{}", serde_json::to_string_pretty(&v)?);
            outcome
        }
        Format::StreamJson => {
            cove::ui::emit(
                &serde_json::json!({"type": "session_start", "agent": cove::agent::events::MAIN, "session_id": id, "model": model, "unsandboxed": cove::sandbox::unsandboxed(),
                "tools": agent.tools().iter().map(|t| t.name.clone()).collect::<Vec<_>>()}),
            );
            let mut s = cove::ui::stream_json(model);
            let cx = cove::agent::RunContext {
                messages,
                transcript: Some(transcript),
                ledger: &mut ledger,
                observer: &mut s,
                cancel,
            };
            let outcome = agent.run(cx).await;
            let mut end = cove::ui::end_json(
                &id,
                &outcome,
                &ledger,
                model,
                &agent.harness,
                &agent.subagents,
            );
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
    team: Option<&super::team::Joined>,
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
        // `/team`: the team's members, their state and mailboxes.
        if line == "/team" {
            match team {
                Some(t) => {
                    if let Err(e) = t.show_status().await {
                        eprintln!("cove: {e}");
                    }
                }
                None => eprintln!("This session is on no team (`cove team up` starts one)."),
            }
            continue;
        }
        // `/compact [focus]`: compact the context now.
        if line == "/compact" || line.starts_with("/compact ") {
            let focus = line["/compact".len()..].trim();
            let focus = (!focus.is_empty()).then(|| focus.to_string());
            let cancel = tokio_util::sync::CancellationToken::new();
            let watcher = cancel_on_ctrl_c(&cancel);
            let mut t = cove::ui::Terminal::new(color, std::io::stderr().is_terminal());
            let done = agent
                .compact(
                    messages,
                    Some(&mut *transcript),
                    &mut ledger,
                    &mut t,
                    &cancel,
                    cove::agent::When::Now { focus },
                )
                .await;
            watcher.abort();
            if done.is_none() {
                eprintln!("Nothing to compact yet.");
            }
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
