//! The workspace an agent runs in: its worktree, the configuration that applies there (after the
//! trust decision), and the registry of its plugins.
//!
//! Owns assembling those in the right order: read what the repository's `.cove/` holds, work out
//! what it asks that needs trust, get the user's decision (through a callback: the CLI prompts,
//! a headless run refuses), and only then apply the project's settings and plugins. The CLI, and
//! later subagents and teammates, build agents from a `Workspace`.
//!
//! Must not prompt or print (the callback does) or run the loop.

use crate::config::{Config, ConfigError};
use crate::plugins::registry::Registry;
use crate::plugins::trust::{self, Decision, Project, State, TrustError};
use crate::worktree::Worktree;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A repository whose `.cove/` asks for something the user has not decided about.
pub struct Undecided<'a> {
    pub root: &'a Path,
    pub asks: &'a [String],
    /// The user decided about an earlier `.cove/`, which has changed since.
    pub changed: bool,
    /// All it asks is to offer the repository's skills and MCP servers: going on without them
    /// (a headless run) leaves nothing else out.
    pub only_optional: bool,
}

impl Undecided<'_> {
    /// What it asks for, as the prompt and the refusal say it.
    pub fn describe(&self) -> String {
        trust::describe(self.root, self.asks, self.changed)
    }
}

/// What to do about an undecided repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The user trusts it: record that and apply everything.
    Trust,
    /// The user declines: record that and apply only what narrows.
    Decline,
    /// Apply only what narrows this time, recording nothing (`cove tools …`).
    NarrowOnce,
    /// Stop: nobody can decide here (`cove run`).
    Refuse,
}

/// Opening a workspace failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error(
        "{0}Nothing was sent and nothing ran. Review them, then `cove trust` to apply them, or `cove trust --revoke` to go on without them (only settings that narrow apply then)."
    )]
    Untrusted(String),
}

/// Everything an agent runs in.
pub struct Workspace {
    pub worktree: Arc<Worktree>,
    pub config: Config,
    pub project: Project,
    /// What the project asks that needs trust (empty: nothing).
    pub asks: Vec<String>,
    /// Whether the project's widening settings and plugins apply.
    pub trusted: bool,
    pub registry: Arc<Registry>,
    pub user_dir: Option<PathBuf>,
}

impl Workspace {
    /// Open `worktree` with the user's config from `user_dir`, asking `decide` when the
    /// repository's `.cove/` needs a decision nobody has made yet.
    ///
    /// # Errors
    /// A [`WorkspaceError`] for a broken config, an unreadable `.cove/`, a decision that cannot be
    /// recorded, or [`Choice::Refuse`].
    pub fn open(
        worktree: Worktree,
        user_dir: Option<&Path>,
        cache_dir: Option<PathBuf>,
        decide: &mut dyn FnMut(&Undecided<'_>) -> Choice,
    ) -> Result<Self, WorkspaceError> {
        let project = Project::read(&worktree)?;
        let user = Config::load(user_dir, None, false)?;
        let asks = project.asks(&user, &crate::plugins::builtin::names());
        let store = user_dir.map(trust::Store::new);
        let root = worktree.root();
        let state = match &store {
            Some(s) => s.state(root, &project.hash, &asks),
            None if asks.is_empty() => State::NotNeeded,
            None => State::Undecided { changed: false },
        };
        let trusted = match state {
            State::NotNeeded | State::Trusted => true,
            State::Declined => false,
            State::Undecided { changed } => {
                let undecided = Undecided {
                    root,
                    asks: &asks,
                    changed,
                    only_optional: asks.len() == project.optional_asks(),
                };
                match decide(&undecided) {
                    Choice::Refuse => {
                        return Err(WorkspaceError::Untrusted(undecided.describe()));
                    }
                    Choice::NarrowOnce => false,
                    choice @ (Choice::Trust | Choice::Decline) => {
                        let decision = if choice == Choice::Trust {
                            Decision::Trusted
                        } else {
                            Decision::Declined
                        };
                        if let Some(s) = &store {
                            s.record(root, &project.hash, &asks, decision)?;
                        }
                        choice == Choice::Trust
                    }
                }
            }
        };
        let config = Config::load(
            user_dir,
            project.config.as_ref().map(|(f, p)| (f, p.as_path())),
            trusted,
        )?;
        let worktree = Arc::new(worktree);
        let registry = Arc::new(Registry::discover(
            worktree.clone(),
            &config,
            user_dir,
            cache_dir,
            trusted.then_some(project.plugins.as_slice()),
        ));
        Ok(Self {
            worktree,
            config,
            project,
            asks,
            trusted,
            registry,
            user_dir: user_dir.map(Path::to_path_buf),
        })
    }

    /// Every skill of this workspace: the repository's (offered only when trusted), the user's
    /// (cove's config directory and Claude Code's `claude_dir`) and the skill plugins. Reads
    /// files and manifests; compiles nothing.
    pub fn skills(&self, claude_dir: Option<&Path>) -> crate::context::skills::Catalog {
        crate::context::skills::Catalog::discover(crate::context::skills::Sources {
            project: &self.project.skills,
            trusted: self.trusted,
            user_dir: self.user_dir.as_deref(),
            claude_dir,
            registry: Some(&self.registry),
        })
    }

    /// Project settings and plugins that were left out because the repository is not trusted.
    pub fn withheld(&self) -> &[String] {
        if self.trusted { &[] } else { &self.asks }
    }
}
