//! Assembling an agent from a workspace and what the user chose: provider and model, profile,
//! limits, policies, the compressor's tuning, the system prompt (and where to read it again after
//! a compaction), the tool set and what its subagents share (agent definitions, depth, where
//! their transcripts and worktrees go).
//!
//! Owns the order of those choices and their defaults, so that `cove run`, `cove chat` and later
//! subagents and teammates build agents the same way. Must not parse arguments, prompt or print:
//! what the user should be told comes back in [`Assembled`].

use crate::agent::definitions::Definitions;
use crate::agent::profile::{self, Profile, UnknownProfile};
use crate::agent::subagent::{Shared, Spawner};
use crate::agent::workspace::Workspace;
use crate::agent::{Agent, MAX_RESULT_BYTES, Settings, policy::Gate};
use crate::config::{DEFAULT_MAX_TURNS, ProviderConfig};
use crate::context::skills::Catalog;
use crate::provider::ProviderError;
use crate::session::Store;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The default reply limit (the `small` profile's is [`profile::SMALL_MAX_TOKENS`]).
pub const DEFAULT_MAX_TOKENS: u32 = 8192;

/// What the user chose for this agent, beyond the workspace's config.
#[derive(Debug, Clone, Default)]
pub struct Choices {
    /// Provider and model settings from flags: they win over the environment and the config.
    pub flags: ProviderConfig,
    /// Policies from flags (empty: the config's).
    pub policy: Vec<String>,
    /// Approve what a policy would ask about (`--yes`).
    pub assume_yes: bool,
    /// `--compact-at`.
    pub compact_at: Option<f64>,
    /// The agent's role, as policies see it.
    pub role: String,
}

/// Every choice made, before the agent is built: building waits for the tool plugins to load,
/// so a caller can do its own work (open the session) while they do.
pub struct Prepared {
    pub model: String,
    /// The provider's short name (`anthropic`, `openai`, `scripted`).
    pub provider_name: String,
    /// What the user should be warned about (the provider's choice, skills that would not load).
    pub warnings: Vec<String>,
    /// What the user should know (the profile chosen, and why).
    pub notes: Vec<String>,
    provider: std::sync::Arc<dyn crate::provider::Provider>,
    settings: Settings,
    /// The `small` profile's tools; `None` in the default profile.
    small: Option<Vec<String>>,
    skills: Arc<Catalog>,
    definitions: Arc<Definitions>,
    max_depth: u32,
    root: PathBuf,
    cwd: PathBuf,
}

/// Why no agent could be assembled.
#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Profile(#[from] UnknownProfile),
    #[error("{0}")]
    Policy(String),
    #[error("{0}")]
    Setting(String),
}

/// Make every choice for an agent in `ws`, started from `cwd`, reading the environment
/// through `env`. Asking a server what it serves needs `runtime` (one GET, only when no profile
/// is set).
///
/// # Errors
/// [`AssembleError`] for no usable provider, an unknown profile or a policy that will not load.
pub fn prepare(
    ws: &Workspace,
    choices: Choices,
    env: &dyn Fn(&str) -> Option<String>,
    cwd: &Path,
    runtime: &tokio::runtime::Runtime,
) -> Result<Prepared, AssembleError> {
    let selection = crate::provider::select(&ws.config, &choices.flags, env)?;
    let (provider, model) = (selection.provider, selection.model);
    let mut warnings = selection.warnings;
    let mut notes = Vec::new();
    let mut pc = ws.config.provider.clone();
    pc.merge(choices.flags);
    // Only a server the user did not describe is asked what it is.
    let server = if pc.profile.is_none() {
        runtime.block_on(provider.identify(&model))
    } else {
        None
    };
    let (chosen, why) = profile::choose(
        pc.profile.as_deref(),
        server.as_ref(),
        &model,
        pc.constrained.unwrap_or(provider.constrains()),
    )?;
    notes.extend(why);
    let small = chosen == Profile::Small;
    if pc.constrained == Some(true) && !provider.constrains() {
        return Err(AssembleError::Setting(format!(
            "constrained replies need an OpenAI-compatible server: provider `{}` has no way to send a grammar (llama.cpp's /v1/messages drops one). Point provider `openai` at the same server's /v1 (llama.cpp, vLLM and Ollama all serve /v1/chat/completions), or leave constrained off",
            provider.name()
        )));
    }
    let policies = if choices.policy.is_empty() {
        ws.config.policy.clone()
    } else {
        choices.policy
    };
    let gate = Gate::new(&ws.registry, &policies).map_err(AssembleError::Policy)?;
    let max_tokens = pc.max_tokens.unwrap_or(if small {
        profile::SMALL_MAX_TOKENS
    } else {
        DEFAULT_MAX_TOKENS
    });
    let settings = Settings {
        model: model.clone(),
        max_tokens,
        temperature: pc.temperature.or(small.then_some(0.0)),
        constrained: pc.constrained.unwrap_or(small && provider.constrains()),
        tools_in_prompt: small,
        point_to_rereads: !small,
        max_result_bytes: if small {
            profile::SMALL_MAX_RESULT_BYTES
        } else {
            MAX_RESULT_BYTES
        },
        max_turns: pc.max_turns.unwrap_or(DEFAULT_MAX_TURNS),
        token_budget: pc.token_budget,
        gate,
        assume_yes: choices.assume_yes,
        role: if choices.role.is_empty() {
            "main".into()
        } else {
            choices.role
        },
        context: ws.config.context.settings(
            &model,
            max_tokens,
            choices.compact_at,
            server.as_ref().and_then(|s| s.context),
        ),
    };
    let skills = Arc::new(ws.skills(crate::paths::claude_dir().as_deref()));
    warnings.extend(
        skills
            .problems()
            .iter()
            .map(|p| format!("skill not loaded: {p}")),
    );
    let definitions = Arc::new(Definitions::discover(
        ws.worktree.root(),
        ws.user_dir.as_deref(),
        crate::paths::claude_dir().as_deref(),
    ));
    warnings.extend(
        definitions
            .problems()
            .iter()
            .map(|p| format!("agent definition not loaded: {p}")),
    );
    Ok(Prepared {
        model,
        provider_name: provider.name().to_string(),
        warnings,
        notes,
        provider,
        settings,
        small: small.then(|| {
            pc.small_tools
                .clone()
                .unwrap_or_else(|| profile::SMALL_TOOLS.iter().map(|t| t.to_string()).collect())
        }),
        skills,
        definitions,
        max_depth: ws.config.agents.max_depth(),
        root: ws.worktree.root().to_path_buf(),
        cwd: cwd.to_path_buf(),
    })
}

impl Prepared {
    /// Build the agent over `ws`'s registry: waits for its tool plugins to load (they run
    /// `describe`), so never call it on an async thread. Returns the problems of plugins that
    /// would not load (their tools are left out).
    pub fn build(self, ws: &Workspace) -> (Agent, Vec<String>) {
        let Self {
            provider,
            provider_name,
            settings,
            small,
            skills,
            definitions,
            max_depth,
            root,
            cwd,
            ..
        } = self;
        let system = crate::context::system_prompt(&root, &cwd, &skills);
        let policies = settings.gate.names().to_vec();
        let (mut agent, mut problems) =
            Agent::new(provider.clone(), ws.registry.clone(), settings, system);
        // Subagents before skills: the `skill` tool is offered last.
        if small.is_none() {
            let data = crate::paths::data_dir();
            let shared = Shared {
                provider,
                provider_name,
                definitions,
                max_depth,
                sessions: data.as_ref().map(|d| Store::new(d.join("sessions"))),
                worktrees: data.map(|d| d.join("worktrees")),
            };
            agent.offer_subagents(Arc::new(Spawner::main(
                Arc::new(shared),
                ws.registry.clone(),
                policies,
            )));
        }
        if let Err(e) = agent.offer_skills(skills.clone()) {
            problems.push(e);
        }
        if let Some(names) = small {
            for missing in names
                .iter()
                .filter(|n| !agent.tools().iter().any(|t| &&t.name == n))
            {
                problems.push(format!(
                    "[provider] small_tools names `{missing}`, which no loaded plugin offers"
                ));
            }
            agent.retain_tools(|name| names.iter().any(|n| n == name));
            let tools = agent.tools().to_vec();
            agent.set_system(profile::small_system_prompt(&root, &cwd, &tools));
            agent.set_system_source(Box::new(move || {
                profile::small_system_prompt(&root, &cwd, &tools)
            }));
        } else {
            agent.set_system_source(Box::new(move || {
                crate::context::system_prompt(&root, &cwd, &skills)
            }));
        }
        (agent, problems)
    }
}
