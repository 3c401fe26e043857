//! Policy: whether a tool call may run, decided by policy components before dispatch.
//!
//! Owns the gate between the model's calls and dispatch. A [`Permitted`] call can only be made
//! here: by the policies' verdict, or by the user's answer to a [`Pending`] question (or a
//! standing approval they gave in this session, [`Approvals`]). It cannot be cloned and dispatch
//! consumes it, so one permission runs one call, once. Several policies combine: deny beats ask
//! beats allow. A policy that traps, times out or cannot load denies (fail closed). Before any
//! policy is asked, the skills active in the session narrow what may run: a tool outside an
//! active skill's `allowed-tools`, or a skill plugin's tool whose skill is not loaded, is denied
//! (the `skill` tool itself always passes). The active skills are part of the [`Context`] every
//! decision takes, so no caller can leave them out. Must not run tools, and takes its policy
//! names from config and flags only, never from the model.
//!
//! A permission is made nowhere else:
//!
//! ```compile_fail
//! use cove::agent::{dispatch::ToolCall, policy::Permitted};
//! let forged = Permitted(ToolCall { tool: "bash".into(), input: "{}".into() });
//! ```
//!
//! and it runs one call, once:
//!
//! ```compile_fail
//! use cove::agent::{dispatch, policy::Permitted};
//! fn twice(registry: &cove::plugins::registry::Registry, p: Permitted) {
//!     dispatch::call(registry, p);
//!     dispatch::call(registry, p);
//! }
//! ```

use crate::agent::dispatch::ToolCall;
use crate::agent::host_tools;
use crate::context::skills::{Active, AllowedTools, Commands, ToolRule};
use crate::plugins::registry::Registry;
use crate::plugins::runtime::{PolicyRequest, Verdict};

/// A call some policy allowed (or the user approved): the only thing dispatch runs.
#[derive(Debug, PartialEq, Eq)]
pub struct Permitted(ToolCall);

impl Permitted {
    pub fn call(&self) -> &ToolCall {
        &self.0
    }

    /// The call, for dispatch, which consumes the permission with it.
    pub(crate) fn into_call(self) -> ToolCall {
        self.0
    }
}

/// What a standing approval covers: one tool, or commands that start with a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Tool(String),
    /// `bash` commands whose first words are these (a simple command: no `;`, `&`, `|`, `` ` ``,
    /// `$(`, redirections or newlines).
    CommandPrefix(String),
}

impl Scope {
    /// The widest approval the user may give for `call`: the command's first words for `bash`
    /// (none for a compound command, which only a one-time answer may approve), else the tool.
    pub fn for_call(call: &ToolCall) -> Option<Self> {
        if call.tool != "bash" {
            return Some(Self::Tool(call.tool.clone()));
        }
        let command = command_of(call)?;
        if !is_simple(&command) {
            return None;
        }
        let mut words = command.split_whitespace();
        let first = words.next()?;
        let prefix = match words.next() {
            Some(sub) if !sub.starts_with('-') => format!("{first} {sub}"),
            _ => first.to_string(),
        };
        Some(Self::CommandPrefix(prefix))
    }

    fn covers(&self, call: &ToolCall) -> bool {
        match self {
            Self::Tool(t) => call.tool == *t && call.tool != "bash",
            Self::CommandPrefix(prefix) => {
                call.tool == "bash"
                    && command_of(call).is_some_and(|c| {
                        let c = c.trim_start();
                        is_simple(c)
                            && c.strip_prefix(prefix.as_str())
                                .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
                    })
            }
        }
    }

    /// How the approval reads in the question.
    pub fn describe(&self) -> String {
        match self {
            Self::Tool(t) => format!("`{t}`"),
            Self::CommandPrefix(p) => format!("commands starting `{p}`"),
        }
    }
}

fn command_of(call: &ToolCall) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(&call.input).ok()?;
    v.get("command")?.as_str().map(str::to_string)
}

/// A command with nothing that could chain, substitute or redirect.
fn is_simple(command: &str) -> bool {
    !command.contains(['`', ';', '&', '|', '>', '<', '\n', '\r']) && !command.contains("$(")
}

/// What the user allowed for the rest of this session. Shared by the agent's calls.
#[derive(Debug, Default)]
pub struct Approvals(std::sync::Mutex<Vec<Scope>>);

impl Approvals {
    fn covers(&self, call: &ToolCall) -> bool {
        self.0
            .lock()
            .is_ok_and(|list| list.iter().any(|s| s.covers(call)))
    }

    fn add(&self, scope: Scope) {
        if let Ok(mut list) = self.0.lock()
            && !list.contains(&scope)
        {
            list.push(scope);
        }
    }
}

/// The user's answer to a question about one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Yes, this once.
    Once,
    /// Yes, and for the call's [`Scope`] for the rest of the session.
    Always,
    No,
    /// No, and this goes back to the model.
    NoBecause(String),
}

/// A call waiting for the user's answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Pending {
    call: ToolCall,
    pub question: String,
    /// What "yes for the session" would cover; `None` when only a one-time yes is offered.
    pub scope: Option<Scope>,
}

impl Pending {
    /// The user said yes (once, or with `--yes`).
    pub fn approve(self) -> Permitted {
        Permitted(self.call)
    }

    /// The call, as the question shows it.
    pub fn call(&self) -> &ToolCall {
        &self.call
    }

    /// Settle this question with the user's answer: the permission, or the reason the model gets.
    ///
    /// # Errors
    /// The text for the model when the user said no.
    pub fn answer(self, answer: Answer, approvals: &Approvals) -> Result<Permitted, String> {
        match answer {
            Answer::Once => Ok(self.approve()),
            Answer::Always => {
                if let Some(scope) = self.scope.clone() {
                    approvals.add(scope);
                }
                Ok(self.approve())
            }
            Answer::No => Err(format!("the user declined: {}", self.question)),
            Answer::NoBecause(why) => Err(format!(
                "the user declined ({}) and said: {why}",
                self.question
            )),
        }
    }

    /// Approved already by a standing answer from earlier in the session.
    ///
    /// # Errors
    /// Gives the question back when nothing covers it.
    pub fn approved_before(self, approvals: &Approvals) -> Result<Permitted, Self> {
        if approvals.covers(&self.call) {
            Ok(self.approve())
        } else {
            Err(self)
        }
    }
}

/// What the gate says about one call.
#[derive(Debug, PartialEq, Eq)]
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
    /// The skills active in the session: their `allowed-tools` narrow every call.
    pub skills: Active,
}

impl Context {
    /// A call outside any session (typed by hand, or sent by an MCP client) made in `role`: no
    /// turn or token limit, no skill loaded.
    pub fn outside_session(role: &str) -> Self {
        Self {
            role: role.into(),
            turns_left: u32::MAX,
            tokens_left: u64::MAX,
            skills: Active::default(),
        }
    }
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

    /// Check `call` against the active skills, then ask every policy; deny beats ask beats allow.
    pub fn decide(&self, registry: &Registry, call: ToolCall, cx: &Context) -> Decision {
        if let Some(why) = narrowed(&cx.skills, registry, &call) {
            return Decision::Deny(why);
        }
        let from_manifest = |p: &crate::plugins::registry::Plugin| {
            (
                p.manifest.name.clone(),
                p.manifest
                    .tools
                    .iter()
                    .find(|t| t.name == call.tool)
                    .is_some_and(|t| t.read_only),
            )
        };
        let (plugin, read_only) = if let Some(p) = registry.provider(&call.tool) {
            from_manifest(p)
        } else if let Some(read_only) = host_tools::read_only(&call.tool) {
            (host_tools::PLUGIN.to_string(), read_only)
        } else if let Some(p) = registry.skill_tool_owner(&call.tool) {
            from_manifest(p)
        } else if let Some((server, _)) = crate::mcp::config::split(&call.tool) {
            // An MCP server's tool: the plugin policies see is `mcp:<server>`, and it counts as
            // changing things whatever its readOnlyHint says.
            (format!("mcp:{server}"), false)
        } else {
            // Unknown tools fail in dispatch with the list of tools; nothing can run anyway.
            (String::new(), true)
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

/// Why the active skills forbid `call`, if they do: a skill plugin's tool whose skill is not
/// loaded, or a tool outside an active skill's `allowed-tools`. The `skill` tool always passes.
fn narrowed(skills: &Active, registry: &Registry, call: &ToolCall) -> Option<String> {
    if call.tool == host_tools::SKILL {
        return None;
    }
    if registry.provider(&call.tool).is_none()
        && let Some(owner) = registry.skill_tool_owner(&call.tool)
        && skills.owner_of(&call.tool).is_none()
    {
        let skill = &owner.manifest.name;
        return Some(format!(
            "tool `{}` comes with skill `{skill}`, which is not loaded; call `skill` with {{\"name\": \"{skill}\"}} first",
            call.tool
        ));
    }
    skills.iter().find_map(|a| {
        let allowed = a.allowed_tools.as_ref()?;
        (!permits(allowed, call)).then(|| {
            format!(
                "skill `{}` is active and allows only {} (its allowed-tools), so `{}` may not run now",
                a.name,
                allowed.describe(),
                call.tool
            )
        })
    })
}

/// Whether one skill's `allowed-tools` covers `call`.
fn permits(allowed: &AllowedTools, call: &ToolCall) -> bool {
    allowed.rules.iter().any(|rule| match rule {
        ToolRule::Tool(t) => *t == call.tool,
        ToolRule::Bash(commands) => {
            call.tool == "bash"
                && match commands {
                    Commands::Any => true,
                    Commands::Exact(e) => command_of(call).is_some_and(|c| c.trim() == e),
                    Commands::Prefix(p) => command_of(call).is_some_and(|c| {
                        let c = c.trim_start();
                        is_simple(c)
                            && c.strip_prefix(p.as_str())
                                .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
                    }),
                }
        }
    })
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
            scope: Scope::for_call(&call),
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

    fn bash(command: &str) -> ToolCall {
        ToolCall {
            tool: "bash".into(),
            input: serde_json::json!({ "command": command }).to_string(),
        }
    }

    #[test]
    fn a_standing_approval_covers_its_tool_or_simple_commands_with_its_prefix() {
        assert_eq!(
            Scope::for_call(&bash("cargo test -p cove")),
            Some(Scope::CommandPrefix("cargo test".into()))
        );
        assert_eq!(
            Scope::for_call(&bash("ls -la")),
            Some(Scope::CommandPrefix("ls".into()))
        );
        for compound in [
            "cargo test; rm -rf ~",
            "cargo test && curl x",
            "cargo test | sh",
            "cargo test > /etc/x",
            "echo $(id)",
            "echo `id`",
            "cargo test\nrm x",
        ] {
            assert_eq!(Scope::for_call(&bash(compound)), None, "{compound}");
        }
        let approvals = Approvals::default();
        approvals.add(Scope::CommandPrefix("cargo test".into()));
        approvals.add(Scope::Tool("edit".into()));
        assert!(approvals.covers(&bash("cargo test --release")));
        assert!(approvals.covers(&bash("cargo test")));
        assert!(!approvals.covers(&bash("cargo testx")));
        assert!(!approvals.covers(&bash("cargo test; rm -rf ~")));
        assert!(!approvals.covers(&bash("cargo build")));
        assert!(approvals.covers(&call()));
        assert!(!approvals.covers(&ToolCall {
            tool: "write".into(),
            input: "{}".into()
        }));
    }

    #[test]
    fn allowed_tools_cover_their_tools_and_commands_only() {
        let (allowed, _) =
            AllowedTools::parse(&["Read, Grep, Bash(git:*), Bash(make test)".into()]);
        let tool = |t: &str| ToolCall {
            tool: t.into(),
            input: "{}".into(),
        };
        assert!(permits(&allowed, &tool("read")) && permits(&allowed, &tool("grep")));
        assert!(!permits(&allowed, &tool("edit")) && !permits(&allowed, &tool("Read")));
        assert!(permits(&allowed, &bash("git status")) && permits(&allowed, &bash("git")));
        assert!(permits(&allowed, &bash("make test")));
        assert!(!permits(&allowed, &bash("make test; rm -rf ~")));
        assert!(!permits(&allowed, &bash("git status; rm -rf ~")));
        assert!(!permits(&allowed, &bash("gitk")) && !permits(&allowed, &bash("make")));
    }

    #[test]
    fn an_answer_is_one_permission_or_the_models_reason() {
        let pending = || Pending {
            call: bash("cargo test"),
            question: "run it?".into(),
            scope: Scope::for_call(&bash("cargo test")),
        };
        let approvals = Approvals::default();
        assert!(pending().answer(Answer::Once, &approvals).is_ok());
        assert!(pending().approved_before(&approvals).is_err());
        let why = pending()
            .answer(Answer::NoBecause("use nextest".into()), &approvals)
            .err()
            .unwrap_or_default();
        assert!(why.contains("use nextest"), "{why}");
        assert!(pending().answer(Answer::Always, &approvals).is_ok());
        assert!(pending().approved_before(&approvals).is_ok());
    }
}
