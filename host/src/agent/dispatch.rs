//! Dispatch: one tool call, from the model's JSON input to a result the model can read.
//!
//! Owns the order of checks on the call path: the tool exists, its plugin loads, the input is JSON
//! and fits the tool's schema, then the runtime runs it. Every failure becomes a [`ToolResult`]
//! with `is_error` and a message that says what to do; nothing here panics or aborts the session.
//! It takes only a [`Permitted`] call: deciding permission is the policy gate's job.
//! Must not know about wasmtime.

use crate::agent::policy::Permitted;
use crate::plugins::registry::Registry;
use crate::plugins::runtime::ToolFailure;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// A tool call as the model asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub tool: String,
    /// JSON text.
    pub input: String,
}

/// What goes back to the model: text, and whether it reports a failure.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ToolResult {
    pub text: String,
    pub is_error: bool,
}

impl ToolResult {
    fn ok(text: String) -> Self {
        Self {
            text,
            is_error: false,
        }
    }

    fn error(text: String) -> Self {
        Self {
            text,
            is_error: true,
        }
    }
}

/// Most schema violations listed in one error.
const MAX_SCHEMA_ERRORS: usize = 5;

/// Run `call` against the registry's worktree.
pub fn call(registry: &Registry, call: Permitted) -> ToolResult {
    call_cancellable(registry, call, None)
}

/// Run a permitted call; setting `cancel` stops the plugin within one epoch tick.
pub fn call_cancellable(
    registry: &Registry,
    call: Permitted,
    cancel: Option<Arc<AtomicBool>>,
) -> ToolResult {
    let call = call.into_call();
    let tool = call.tool.as_str();
    let Some(plugin) = registry.provider(tool) else {
        let names: Vec<String> = registry.tools().into_iter().map(|t| t.name).collect();
        return ToolResult::error(format!(
            "unknown tool `{tool}`; available tools: {}",
            names.join(", ")
        ));
    };
    let loaded = match registry.load(plugin) {
        Ok(l) => l,
        Err(e) => return ToolResult::error(format!("tool `{tool}` is unavailable: {e}")),
    };
    let Some(spec) = loaded.tools.get(tool) else {
        return ToolResult::error(format!(
            "tool `{tool}` is unavailable: its plugin no longer offers it"
        ));
    };
    let value: serde_json::Value = match serde_json::from_str(&call.input) {
        Ok(v) => v,
        Err(e) => {
            return ToolResult::error(format!(
                "input for `{tool}` is not valid JSON ({e}); send one JSON object matching this schema: {}",
                spec.spec.input_schema
            ));
        }
    };
    let validator = match spec.validator() {
        Ok(v) => v,
        Err(why) => return ToolResult::error(why.to_string()),
    };
    let problems: Vec<String> = if validator.is_valid(&value) {
        Vec::new()
    } else {
        validator
            .iter_errors(&value)
            .take(MAX_SCHEMA_ERRORS)
            .map(|e| {
                let at = e.instance_path.to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("at {at}: {e}")
                }
            })
            .collect()
    };
    if !problems.is_empty() {
        return ToolResult::error(format!(
            "input for `{tool}` does not match its schema: {}. Schema: {}",
            problems.join("; "),
            spec.spec.input_schema
        ));
    }
    let runtime = match registry.runtime() {
        Ok(r) => r,
        Err(e) => return ToolResult::error(e),
    };
    let mut env = registry.env(plugin);
    env.cancel = cancel;
    // A read-only tool runs with the least of its plugin's privileges: `read` never holds the
    // write access `fs` has for `write`. Declaring a tool read-only can only narrow.
    let read_only = spec.spec.read_only
        || plugin
            .manifest
            .tools
            .iter()
            .any(|t| t.name == tool && t.read_only);
    if read_only {
        env.grants = Arc::new(env.grants.for_read_only_tool());
    }
    match runtime.call(&loaded.component, &env, tool, &call.input) {
        Ok(Ok(text)) => ToolResult::ok(text),
        Ok(Err(failure)) => ToolResult::error(match failure {
            ToolFailure::Failed(m) => format!("`{tool}` failed: {m}"),
            other => format!("`{tool}`: {other}"),
        }),
        Err(e) => ToolResult::error(e.to_string()),
    }
}
