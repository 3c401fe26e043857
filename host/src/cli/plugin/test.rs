//! `cove plugin test`: load a plugin with the real runtime, through the registry's checks, and
//! run the samples in its manifest.
//!
//! It runs in a scratch worktree (an empty temporary folder, so a tool that writes cannot touch
//! the plugin's own sources), granted everything its manifest asks for, as if the config granted
//! it: the samples test the plugin, not a particular user's grants. Calls go through the same
//! path as `cove tools call` (the policy gate, with the built-in `trusted` policy, then dispatch:
//! schema validation and the runtime), so a sample whose input the schema refuses fails as the
//! model's call would.

use super::{find, granting_asks, read_manifest, registry_of};
use anyhow::{Result, anyhow, bail};
use cove::agent::dispatch::{self, ToolCall};
use cove::agent::policy::{Context as PolicyContext, Decision, Gate};
use cove::context::skills::Activation;
use cove::plugins::manifest::{Expected, Kind, TestCase};
use cove::plugins::registry::{Plugin, Registry};
use cove::plugins::runtime::{PolicyRequest, ProgressSink, Verdict};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub(crate) fn run(dir: &Path) -> Result<ExitCode> {
    let (manifest, dir) = read_manifest(dir)?;
    let component = dir.join(manifest.component_file());
    if !component.is_file() {
        bail!(
            "{} does not exist; build it first with `cove plugin build`",
            component.display()
        );
    }
    println!(
        "testing {} {} ({} plugin, contract {}) in a scratch worktree, granted what plugin.toml asks",
        manifest.name,
        manifest.version,
        manifest.kind,
        manifest
            .contract
            .as_deref()
            .unwrap_or("none: a plain component")
    );
    let config = granting_asks(&manifest);
    let (registry, scratch) = registry_of(&dir, &manifest, &config)?;
    let plugin = find(&registry, &scratch, &manifest, &dir)?;
    let unlink = |e: &dyn std::fmt::Display| scratch.unlink(&e.to_string(), &manifest.name, &dir);
    let started = Instant::now();
    let mut failed = 0usize;
    let mut passed = 0usize;
    let mut tally = |ok: bool, line: String| {
        if ok {
            passed += 1;
            println!("pass  {line}");
        } else {
            failed += 1;
            println!("FAIL  {line}");
        }
    };
    match manifest.kind {
        Kind::Policy => {
            registry
                .load_policy(plugin)
                .map_err(|e| anyhow!("{}", unlink(&e)))?;
            println!("loaded in {:.1} s", started.elapsed().as_secs_f64());
            for (i, case) in manifest.tests.iter().enumerate() {
                let (ok, line) = policy_case(&registry, plugin, case);
                tally(ok, format!("{} {line}", label(i, case)));
            }
        }
        Kind::Tool | Kind::Skill => {
            let loaded = registry
                .load(plugin)
                .map_err(|e| anyhow!("{}", unlink(&e)))?;
            println!("loaded in {:.1} s", started.elapsed().as_secs_f64());
            let mut names: Vec<&String> = loaded.tools.keys().collect();
            names.sort();
            println!(
                "describe: {} (as plugin.toml lists them)",
                names
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut cx = PolicyContext::outside_session("main");
            if manifest.kind == Kind::Skill {
                let (text, tools) = registry
                    .skill_instructions(plugin)
                    .map_err(|e| anyhow!("{}", unlink(&e)))?;
                for (what, value) in [
                    ("name", &text.name),
                    ("description", &text.description),
                    ("instructions", &text.instructions),
                ] {
                    let first = value.lines().next().unwrap_or_default();
                    tally(!value.trim().is_empty(), format!("skill {what}: {first}"));
                }
                if text.name != manifest.name {
                    println!(
                        "note: the component calls the skill `{}`; cove lists it by its plugin.toml name, `{}`",
                        text.name, manifest.name
                    );
                }
                cx.skills.push(Activation {
                    name: manifest.name.clone(),
                    text: text.instructions,
                    allowed_tools: None,
                    tools: tools.into_iter().map(|(d, _)| d.name).collect(),
                });
            }
            let gate = Gate::new(&registry, &["trusted".to_string()]).map_err(|e| anyhow!(e))?;
            for (i, case) in manifest.tests.iter().enumerate() {
                let (ok, line) = tool_case(&registry, &gate, &cx, case);
                tally(ok, format!("{} {line}", label(i, case)));
            }
        }
    }
    if manifest.tests.is_empty() {
        println!("note: plugin.toml has no [[test]] samples; add some (see docs/PLUGINS.md)");
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `sample N (tool {input})`.
fn label(i: usize, case: &TestCase) -> String {
    format!("sample {} ({} {}):", i + 1, case.tool, case.input)
}

/// Whether `text` (a result, or a verdict's reason) holds what the sample expects.
fn expected_text(case: &TestCase, text: &str) -> Option<String> {
    let want = case.expect.as_deref()?;
    (!text.contains(want)).then(|| format!("expected {want:?} in it"))
}

/// A result as one line shows it: long ones cut, several lines indented beneath.
fn one_line(text: &str) -> String {
    const MAX: usize = 300;
    let mut text = text.trim_end().to_string();
    if text.len() > MAX {
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(" …");
    }
    if text.contains('\n') {
        format!("\n      {}", text.replace('\n', "\n      "))
    } else {
        text.to_string()
    }
}

fn tool_case(
    registry: &Registry,
    gate: &Gate,
    cx: &PolicyContext,
    case: &TestCase,
) -> (bool, String) {
    let call = ToolCall {
        tool: case.tool.clone(),
        input: case.input.to_string(),
    };
    let permitted = match gate.decide(registry, call, cx) {
        Decision::Allow(p) => p,
        Decision::Ask(p) => p.approve(),
        Decision::Deny(why) => return (false, format!("refused before it ran: {why}")),
    };
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let reports = reports.clone();
        ProgressSink::new(move |p| {
            if let Ok(mut r) = reports.lock() {
                r.push(p);
            }
        })
    };
    let answer = dispatch::answer(registry, permitted, None, Some(sink));
    let result = answer.result;
    // What the model would not see: the progress reports and the structured output.
    let mut extra = String::new();
    if let Ok(reports) = reports.lock() {
        for p in reports.iter() {
            let total = p.total.map(|t| format!("/{t}")).unwrap_or_default();
            extra.push_str(&format!(
                "\n      progress: {}{total} {}",
                p.done, p.message
            ));
        }
    }
    if let Some(structured) = &answer.structured {
        extra.push_str(&format!("\n      structured: {structured}"));
    }
    let mut problems = Vec::new();
    if result.is_error != case.error {
        problems.push(if case.error {
            "expected an error".to_string()
        } else {
            "failed".to_string()
        });
    }
    problems.extend(expected_text(case, &result.text));
    let shown = format!(
        "{}{}{extra}",
        if result.is_error { "error: " } else { "" },
        one_line(&result.text)
    );
    if problems.is_empty() {
        (true, shown)
    } else {
        (false, format!("{}; got {shown}", problems.join(", ")))
    }
}

fn policy_case(registry: &Registry, plugin: &Plugin, case: &TestCase) -> (bool, String) {
    let outcome = registry
        .load_policy(plugin)
        .map_err(|e| e.to_string())
        .and_then(|loaded| {
            let runtime = registry.runtime()?;
            let req = PolicyRequest {
                tool: case.tool.clone(),
                plugin: case.plugin.clone().unwrap_or_else(|| "sample".into()),
                input: case.input.to_string(),
                read_only: case.read_only,
                role: "main".into(),
                turns_left: 100,
                tokens_left: 1_000_000,
            };
            runtime
                .decide(&loaded, &registry.env(plugin), &req)
                .map_err(|e| e.to_string())
        });
    let verdict = match outcome {
        Ok(v) => v,
        Err(e) => return (false, format!("the policy failed: {e}")),
    };
    let (got, reason) = match &verdict {
        Verdict::Allow => (Expected::Allow, ""),
        Verdict::Deny(r) => (Expected::Deny, r.as_str()),
        Verdict::Ask(r) => (Expected::Ask, r.as_str()),
    };
    let shown = if reason.is_empty() {
        got.to_string()
    } else {
        format!("{got}: {reason}")
    };
    let mut problems = Vec::new();
    if let Some(want) = case.verdict
        && want != got
    {
        problems.push(format!("expected {want}"));
    }
    problems.extend(expected_text(case, reason));
    if problems.is_empty() {
        (true, shown)
    } else {
        (false, format!("{}; got {shown}", problems.join(", ")))
    }
}
