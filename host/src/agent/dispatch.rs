//! Dispatch: one tool call, from the model's JSON input to a result the model can read.
//!
//! Owns the order of checks on the call path: the tool exists, its plugin loads, the input is JSON
//! and fits the tool's schema, then the runtime runs it. Every failure becomes a [`ToolResult`]
//! with `is_error` and a message that says what to do; nothing here panics or aborts the session.
//! It takes only a [`Permitted`] call: deciding permission is the policy gate's job.
//! Must not know about wasmtime.

use crate::agent::policy::Permitted;
use crate::plugins::registry::Registry;
use crate::plugins::runtime::{ProgressSink, ToolFailure};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// A tool call as the model asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub tool: String,
    /// JSON text.
    pub input: String,
}

impl ToolCall {
    /// A call of `tool` with the model's `input`: JSON, or (a text-parsed call's) raw JSON text.
    pub fn new(tool: &str, input: &serde_json::Value) -> Self {
        Self {
            tool: tool.into(),
            input: match input {
                serde_json::Value::String(raw) => raw.clone(),
                other => other.to_string(),
            },
        }
    }
}

/// What goes back to the model: text, and whether it reports a failure.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ToolResult {
    pub text: String,
    pub is_error: bool,
}

impl ToolResult {
    pub fn ok(text: String) -> Self {
        Self {
            text,
            is_error: false,
        }
    }

    pub fn error(text: String) -> Self {
        Self {
            text,
            is_error: true,
        }
    }
}

/// How far a running call has got, as its tool reports it (an MCP server's
/// `notifications/progress`, a plugin's `progress.report`): for the user to see, never for the
/// model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ToolProgress {
    /// Grows with each report, even when the total is unknown.
    pub progress: f64,
    /// What `progress` counts towards, when known.
    pub total: Option<f64>,
    /// What the tool says it is doing.
    pub message: Option<String>,
}

impl ToolProgress {
    /// What a status line shows: `3/10 message`, or `3 message` when the total is unknown.
    pub fn describe(&self) -> String {
        let count = match self.total {
            Some(total) => format!("{}/{}", self.progress, total),
            None => format!("{}", self.progress),
        };
        match self.message.as_deref().filter(|m| !m.trim().is_empty()) {
            Some(m) => format!("{count} {}", m.trim()),
            None => count,
        }
    }
}

impl From<crate::plugins::runtime::Progress> for ToolProgress {
    fn from(p: crate::plugins::runtime::Progress) -> Self {
        Self {
            progress: p.done as f64,
            total: p.total.map(|t| t as f64),
            message: Some(p.message).filter(|m| !m.is_empty()),
        }
    }
}

/// A call's answer, with the structured output of a tool that gives one (JSON, fitting its
/// output schema), for callers that pass it on (`cove mcp serve`); the model reads the text.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub result: ToolResult,
    pub structured: Option<serde_json::Value>,
}

impl From<ToolResult> for Answer {
    fn from(result: ToolResult) -> Self {
        Self {
            result,
            structured: None,
        }
    }
}

/// Most schema violations listed in one error.
const MAX_SCHEMA_ERRORS: usize = 5;

/// Run `call` against the registry's worktree.
pub fn call(registry: &Registry, call: Permitted) -> ToolResult {
    answer(registry, call, None, None).result
}

/// Run a permitted call: setting `cancel` stops the plugin within one epoch tick; what the
/// plugin reports of its progress goes to `progress` as it comes; its structured output is kept.
pub fn answer(
    registry: &Registry,
    call: Permitted,
    cancel: Option<Arc<AtomicBool>>,
    progress: Option<ProgressSink>,
) -> Answer {
    let call = call.into_call();
    let tool = call.tool.as_str();
    // A skill plugin's tool reaches here only once the gate saw its skill loaded.
    let Some(plugin) = registry
        .provider(tool)
        .or_else(|| registry.skill_tool_owner(tool))
    else {
        let names: Vec<String> = registry.tools().into_iter().map(|t| t.name).collect();
        return Answer::from(ToolResult::error(format!(
            "unknown tool `{tool}`; available tools: {}",
            names.join(", ")
        )));
    };
    let loaded = match registry.load(plugin) {
        Ok(l) => l,
        Err(e) => {
            return Answer::from(ToolResult::error(format!(
                "tool `{tool}` is unavailable: {e}"
            )));
        }
    };
    let Some(spec) = loaded.tools.get(tool) else {
        return Answer::from(ToolResult::error(format!(
            "tool `{tool}` is unavailable: its plugin no longer offers it"
        )));
    };
    let validator = match spec.validator() {
        Ok(v) => v,
        Err(why) => return Answer::from(ToolResult::error(why.to_string())),
    };
    let input = match checked_input(tool, &call.input, validator, &spec.spec.input_schema) {
        Ok((_, input)) => input,
        Err(e) => return e.into(),
    };
    let runtime = match registry.runtime() {
        Ok(r) => r,
        Err(e) => return Answer::from(ToolResult::error(e)),
    };
    let mut env = registry.env(plugin);
    env.cancel = cancel;
    env.progress = progress;
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
    match runtime.call(&loaded.component, &env, tool, &input) {
        Ok(Ok(out)) => Answer {
            result: ToolResult::ok(out.text),
            // A tool's own JSON that does not parse is dropped, not passed on.
            structured: out.structured.and_then(|s| serde_json::from_str(&s).ok()),
        },
        Ok(Err(failure)) => ToolResult::error(match failure {
            ToolFailure::Failed(m) => format!("`{tool}` failed: {m}"),
            other => format!("`{tool}`: {other}"),
        })
        .into(),
        Err(e) => ToolResult::error(e.to_string()).into(),
    }
}

/// The model's `input` for `tool` as JSON that fits the tool's schema (`schema` is its text, for
/// the error), and that JSON's text: a top-level string that spells the number or boolean the
/// schema asks for is taken as one. Host tools pass the same check.
///
/// # Errors
/// The result for the model: not JSON, or what does not fit, with the schema.
pub(crate) fn checked_input(
    tool: &str,
    input: &str,
    validator: &jsonschema::Validator,
    schema: &str,
) -> Result<(serde_json::Value, String), ToolResult> {
    let mut input = input.to_string();
    let mut value: serde_json::Value = match serde_json::from_str(&input) {
        Ok(v) => v,
        Err(e) => {
            return Err(ToolResult::error(format!(
                "input for `{tool}` is not valid JSON ({e}); send one JSON object matching this schema: {schema}"
            )));
        }
    };
    // Small models write `"limit": "20"` or `"replace_all": "true"`: a string that is plainly
    // the number or boolean the schema asks for is taken as one.
    if !validator.is_valid(&value)
        && let Ok(schema) = serde_json::from_str::<serde_json::Value>(schema)
        && let Some(coerced) = coerce_scalars(&value, &schema)
        && validator.is_valid(&coerced)
    {
        input = coerced.to_string();
        value = coerced;
    }
    if validator.is_valid(&value) {
        return Ok((value, input));
    }
    let problems: Vec<String> = validator
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
        .collect();
    Err(ToolResult::error(format!(
        "input for `{tool}` does not match its schema: {}. Schema: {schema}",
        problems.join("; ")
    )))
}

/// `value` with each top-level string that spells a number or boolean its property's schema asks
/// for turned into one; `None` when nothing changed.
fn coerce_scalars(
    value: &serde_json::Value,
    schema: &serde_json::Value,
) -> Option<serde_json::Value> {
    use serde_json::Value;
    let props = schema.get("properties")?.as_object()?;
    let mut out = value.as_object()?.clone();
    let mut changed = false;
    for (k, v) in out.iter_mut() {
        let Value::String(s) = v else { continue };
        let types: Vec<&str> = match props.get(k).and_then(|p| p.get("type")) {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => continue,
        };
        if types.contains(&"string") {
            continue;
        }
        let s = s.trim();
        let new = if types.contains(&"integer") {
            s.parse::<i64>().ok().map(Value::from)
        } else {
            None
        }
        .or_else(|| {
            types
                .contains(&"number")
                .then(|| s.parse::<f64>().ok().map(Value::from))
                .flatten()
        })
        .or_else(|| {
            types
                .contains(&"boolean")
                .then(|| s.parse::<bool>().ok().map(Value::from))
                .flatten()
        });
        if let Some(n) = new {
            *v = n;
            changed = true;
        }
    }
    changed.then_some(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_that_spell_the_asked_scalar_are_coerced() {
        let schema = json!({"properties": {"limit": {"type": ["integer", "null"]}, "t": {"type": "number"},
            "all": {"type": "boolean"}, "path": {"type": "string"}}});
        assert_eq!(
            coerce_scalars(
                &json!({"limit": "20", "t": "2.5", "all": "true", "path": "7"}),
                &schema
            ),
            Some(json!({"limit": 20, "t": 2.5, "all": true, "path": "7"}))
        );
        assert_eq!(coerce_scalars(&json!({"limit": "many"}), &schema), None);
        assert_eq!(coerce_scalars(&json!({"path": "a"}), &schema), None);
    }
}
