//! Policy: whether a tool call may run, decided by policy components before dispatch.
//!
//! Owns the gate between the model's calls and dispatch. A [`Permitted`] call can only be made
//! here (or by [`Permitted::by_user`] for a call the user typed), and dispatch takes nothing else,
//! so a call no policy allowed cannot run. Several policies combine: deny beats ask beats allow.
//! A policy that traps, times out or cannot load denies (fail closed). Must not run tools, and
//! takes its policy names from config and flags only, never from the model.

use crate::agent::dispatch::ToolCall;
use crate::plugins::registry::Registry;
use crate::plugins::runtime::{PolicyRequest, Verdict};

/// A call some policy allowed (or the user approved): the only thing dispatch runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permitted(ToolCall);

impl Permitted {
    /// A call the user typed themselves (`cove tools call`): their word is the permission.
    pub fn by_user(call: ToolCall) -> Self {
        Self(call)
    }

    pub fn call(&self) -> &ToolCall {
        &self.0
    }
}

/// A call waiting for the user's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    call: ToolCall,
    pub question: String,
}

impl Pending {
    /// The user said yes.
    pub fn approve(self) -> Permitted {
        Permitted(self.call)
    }
}

/// What the gate says about one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(Permitted),
    /// The reason goes back to the model.
    Deny(String),
    Ask(Pending),
}

/// Who is asking, for the policy's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub role: String,
    pub turns_left: u32,
    pub tokens_left: u64,
}

/// The policies in force, by plugin name.
#[derive(Debug, Clone)]
pub struct Gate {
    names: Vec<String>,
}

/// The policy when the config and flags name none.
pub const DEFAULT: &str = "default";

impl Gate {
    /// A gate of the named policy plugins.
    ///
    /// # Errors
    /// The names that are not enabled policy plugins, with the ones that are.
    pub fn new(registry: &Registry, names: &[String]) -> Result<Self, String> {
        let names: Vec<String> = if names.is_empty() {
            vec![DEFAULT.to_string()]
        } else {
            names.to_vec()
        };
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| registry.policy_plugin(n).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "no policy plugin named {}; available: {}",
                missing
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                registry.policy_names().join(", ")
            ));
        }
        Ok(Self { names })
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Ask every policy about `call`; deny beats ask beats allow.
    pub fn decide(&self, registry: &Registry, call: ToolCall, cx: &Context) -> Decision {
        let (plugin, read_only) = match registry.provider(&call.tool) {
            Some(p) => (
                p.manifest.name.clone(),
                p.manifest
                    .tools
                    .iter()
                    .find(|t| t.name == call.tool)
                    .is_some_and(|t| t.read_only),
            ),
            // Unknown tools fail in dispatch with the list of tools; nothing can run anyway.
            None => (String::new(), true),
        };
        let req = PolicyRequest {
            tool: call.tool.clone(),
            plugin,
            input: call.input.clone(),
            read_only,
            role: cx.role.clone(),
            turns_left: cx.turns_left,
            tokens_left: cx.tokens_left,
        };
        let verdicts: Vec<(String, Verdict)> = self
            .names
            .iter()
            .map(|n| (n.clone(), ask_one(registry, n, &req)))
            .collect();
        combine(call, verdicts)
    }
}

fn ask_one(registry: &Registry, name: &str, req: &PolicyRequest) -> Verdict {
    let fail = |why: String| {
        Verdict::Deny(format!(
            "policy `{name}` failed ({why}), so the call is denied"
        ))
    };
    let Some(plugin) = registry.policy_plugin(name) else {
        return fail("it is not loaded".into());
    };
    let loaded = match registry.load_policy(plugin) {
        Ok(l) => l,
        Err(e) => return fail(e.to_string()),
    };
    let runtime = match registry.runtime() {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    match runtime.decide(&loaded, &registry.env(plugin), req) {
        Ok(v) => v,
        Err(e) => fail(e.to_string()),
    }
}

/// Deny beats ask beats allow; every denial's reason is kept.
fn combine(call: ToolCall, verdicts: Vec<(String, Verdict)>) -> Decision {
    let denials: Vec<String> = verdicts
        .iter()
        .filter_map(|(n, v)| match v {
            Verdict::Deny(why) => Some(format!("{why} (policy `{n}`)")),
            _ => None,
        })
        .collect();
    if !denials.is_empty() {
        return Decision::Deny(denials.join("; "));
    }
    let questions: Vec<String> = verdicts
        .iter()
        .filter_map(|(_, v)| match v {
            Verdict::Ask(q) => Some(q.clone()),
            _ => None,
        })
        .collect();
    if !questions.is_empty() {
        return Decision::Ask(Pending {
            call,
            question: questions.join("; "),
        });
    }
    Decision::Allow(Permitted(call))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> ToolCall {
        ToolCall {
            tool: "edit".into(),
            input: "{}".into(),
        }
    }

    #[test]
    fn deny_beats_ask_beats_allow() {
        let v = |list: &[Verdict]| {
            combine(
                call(),
                list.iter()
                    .enumerate()
                    .map(|(i, v)| (format!("p{i}"), v.clone()))
                    .collect(),
            )
        };
        assert_eq!(
            v(&[Verdict::Allow, Verdict::Allow]),
            Decision::Allow(Permitted(call()))
        );
        assert!(
            matches!(v(&[Verdict::Allow, Verdict::Ask("sure?".into())]), Decision::Ask(p) if p.question == "sure?")
        );
        let d = v(&[
            Verdict::Ask("sure?".into()),
            Verdict::Deny("no".into()),
            Verdict::Allow,
        ]);
        assert_eq!(d, Decision::Deny("no (policy `p1`)".into()));
    }
}
