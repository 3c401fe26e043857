//! Worktree isolation for subagents.
//!
//! This module owns the task worktrees of one repository: it snapshots the parent's working tree
//! (HEAD plus staged, unstaged and untracked-but-not-ignored changes, deletions included) into a
//! base commit, gives a subagent its own linked git worktree on a `cove/<name>` branch made from
//! it, and merges the subagent's work back into the parent's working tree as ordinary uncommitted
//! changes. Files ignored by `.gitignore`, and untracked nested repositories, are not carried into
//! a task worktree (and so are never touched by a merge either).
//!
//! It must not run tools or talk to the model. It must not write anywhere in the parent worktree
//! except through the merge's confined writes (a [`cap_std::fs::Dir`] opened on the parent root,
//! checked in full before the first write), must never write the parent's index, HEAD or refs
//! other than its own `cove/*` branches, and must never resolve a conflict by overwriting: a
//! conflict is reported and the task's branch and worktree are kept.
//!
//! State lives in `<state_dir>/<repo-key>/`: one `<name>.json` metadata file and one worktree
//! directory per task, and a `lock` file. Every change (create, merge-back, merge, drop, clean) runs
//! under an exclusive `flock` on that file taken on a freshly opened descriptor, so threads of one
//! process and separate processes are serialised alike. The lock names its owner pid and is broken
//! when that process is gone: the kernel releases a `flock` when its holder dies, so a stale `lock`
//! file left by a killed process never blocks anyone.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use cap_std::fs::{Dir, PermissionsExt as _};
use git2::{
    BranchType, ErrorCode, FileMode, IndexAddOption, MergeFileInput, MergeFileOptions, Oid,
    Repository, Signature, Tree, WorktreeAddOptions, WorktreePruneOptions,
};
use serde::{Deserialize, Serialize};

/// What went wrong, phrased for the person who has to act on it.
#[derive(Debug, thiserror::Error)]
pub enum IsolatorError {
    /// The parent root is not a git working tree.
    #[error(
        "{path} is not the working tree of a git repository ({source}); run cove inside a git checkout or run `git init` first"
    )]
    NotARepository { path: PathBuf, source: git2::Error },
    /// The state directory would sit inside the parent's working tree.
    #[error(
        "the task worktree directory {state_dir} lies inside the project {parent_root}; configure a cove data directory outside the project"
    )]
    StateInsideWorktree {
        state_dir: PathBuf,
        parent_root: PathBuf,
    },
    /// A git operation failed.
    #[error("git failed while {action}: {source}")]
    Git { action: String, source: git2::Error },
    /// A file system operation failed.
    #[error("could not {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A metadata file could not be read or written as JSON.
    #[error(
        "the task metadata file {path} is damaged ({source}); delete it and run `git worktree prune` in the project"
    )]
    Metadata {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// No task of that name exists for this repository.
    #[error(
        "there is no task worktree named {name} for this repository; `cove worktrees list` shows the existing ones"
    )]
    UnknownTask { name: String },
    /// The task's owner process still runs.
    #[error(
        "task {name} is still in use by process {pid}; wait for it to finish or stop that process first"
    )]
    OwnerAlive { name: String, pid: u32 },
    /// The task holds work that was never merged.
    #[error(
        "task {name} holds changes that were not merged ({files}); merge them with `cove worktrees merge {name}` or discard them with `cove worktrees drop {name} --force`"
    )]
    UnmergedChanges { name: String, files: String },
    /// Applying the task's work would write outside the parent's worktree.
    #[error(
        "task {name} would write outside the project through {path}: {reason}. Nothing in the project was changed; the work stays on branch cove/{name} for inspection, discard it with `cove worktrees drop {name} --force`"
    )]
    UnsafePath {
        name: String,
        path: PathBuf,
        reason: String,
    },
    /// Writing the merged files failed part-way.
    #[error(
        "merging task {name} stopped part-way: could not write {path} ({source}). Some of the task's files may already be in the project (see `git status`); the task's work stays on branch cove/{name}, and `cove worktrees merge {name}` finishes the merge once the cause is fixed"
    )]
    ApplyFailed {
        name: String,
        path: PathBuf,
        source: io::Error,
    },
}

type Result<T, E = IsolatorError> = std::result::Result<T, E>;

trait GitContext<T> {
    fn ctx(self, action: impl FnOnce() -> String) -> Result<T>;
}

impl<T> GitContext<T> for std::result::Result<T, git2::Error> {
    fn ctx(self, action: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| IsolatorError::Git {
            action: action(),
            source,
        })
    }
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> IsolatorError {
    let path = path.to_path_buf();
    move |source| IsolatorError::Io {
        action,
        path,
        source,
    }
}

/// The process (and optional cove session) a task belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: u32,
    pub session: Option<String>,
}

/// A task worktree handed to a subagent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskTree {
    pub name: String,
    pub branch: String,
    pub path: PathBuf,
    /// Hex oid of the snapshot commit the branch started from.
    pub base: String,
}

/// What merging a task back did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MergeOutcome {
    /// Applied to the parent's working tree. `fast_forward`: the parent had not changed since the task started.
    Merged {
        files: Vec<PathBuf>,
        fast_forward: bool,
    },
    NoChanges,
    /// Nothing in the parent was changed; the branch and worktree are kept.
    Conflict {
        files: Vec<ConflictFile>,
        branch: String,
        path: PathBuf,
    },
}

/// One file both sides changed incompatibly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictFile {
    pub path: PathBuf,
    pub hunks: Vec<Hunk>,
}

/// One conflicting region: the parent's text ("ours") against the task's ("theirs").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hunk {
    /// 1-based line in the parent's file where the region starts.
    pub line: usize,
    pub ours: String,
    pub theirs: String,
}

/// Lifecycle state recorded in a task's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
    Conflict,
    Kept,
}

/// A task worktree as `list` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    pub branch: String,
    pub path: PathBuf,
    pub base: String,
    pub parent_root: PathBuf,
    pub owner_pid: u32,
    pub session: Option<String>,
    pub created: u64,
    pub state: State,
    pub alive: bool,
    /// Files differing from the base, committed or not.
    pub changed: Vec<PathBuf>,
}

/// What `clean` removed, and what it kept with the reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cleaned {
    pub removed: Vec<String>,
    pub kept: Vec<(String, String)>,
}

/// The on-disk record of one task, `<name>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    name: String,
    branch: String,
    path: PathBuf,
    base: String,
    parent_root: PathBuf,
    owner_pid: u32,
    session: Option<String>,
    created: u64,
    state: State,
}

impl Meta {
    fn tree(&self) -> TaskTree {
        TaskTree {
            name: self.name.clone(),
            branch: self.branch.clone(),
            path: self.path.clone(),
            base: self.base.clone(),
        }
    }
}

/// One parent worktree's isolator.
#[derive(Debug, Clone)]
pub struct Isolator {
    parent_root: PathBuf,
    key_dir: PathBuf,
}

/// Held while the repository's task state is being changed; dropping it releases the `flock`.
struct LockGuard {
    file: fs::File,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock too; unlocking first just makes it prompt.
        let _ = rustix::fs::flock(&self.file, rustix::fs::FlockOperation::Unlock);
    }
}

static NAME_COUNTER: AtomicU32 = AtomicU32::new(0);

impl Isolator {
    /// Opens the isolator for the worktree at `parent_root` (a main or linked worktree), keeping
    /// its task worktrees under `state_dir/<repo-key>/`.
    ///
    /// # Errors
    /// Fails when `parent_root` is not a git working tree, when the state directory cannot be
    /// created, or when it would lie inside the parent's working tree.
    pub fn new(parent_root: &Path, state_dir: &Path) -> Result<Self, IsolatorError> {
        let repo =
            Repository::open(parent_root).map_err(|source| IsolatorError::NotARepository {
                path: parent_root.to_path_buf(),
                source,
            })?;
        let workdir = repo
            .workdir()
            .ok_or_else(|| IsolatorError::NotARepository {
                path: parent_root.to_path_buf(),
                source: git2::Error::from_str("the repository is bare"),
            })?;
        let parent_root = fs::canonicalize(workdir).map_err(io_err("resolve", workdir))?;
        let common =
            fs::canonicalize(repo.commondir()).map_err(io_err("resolve", repo.commondir()))?;
        let key_dir = state_dir.join(repo_key(&common));
        fs::create_dir_all(&key_dir).map_err(io_err("create", &key_dir))?;
        let key_dir = fs::canonicalize(&key_dir).map_err(io_err("resolve", &key_dir))?;
        if key_dir.starts_with(&parent_root) {
            return Err(IsolatorError::StateInsideWorktree {
                state_dir: key_dir,
                parent_root,
            });
        }
        Ok(Self {
            parent_root,
            key_dir,
        })
    }

    /// The parent's worktree root (canonical).
    pub fn parent_root(&self) -> &Path {
        &self.parent_root
    }

    /// Snapshots the parent's working tree as it is now into a base commit, creates branch
    /// `cove/<name>` at it and a linked worktree at `state_dir/<repo-key>/<name>` on that branch.
    /// Ignored files are not carried over. The parent's index, HEAD and other refs are untouched.
    ///
    /// # Errors
    /// Fails when the parent cannot be read (for example it is in the middle of a merge with
    /// unresolved conflicts) or the worktree cannot be created.
    pub fn create(&self, label: &str, owner: Owner) -> Result<TaskTree, IsolatorError> {
        let _lock = self.lock()?;
        let repo = open(&self.parent_root)?;
        let name = self.unique_name(&repo, label);
        let tree_id = snapshot_tree(&repo).ctx(|| "reading the project's working tree".into())?;
        let tree = repo
            .find_tree(tree_id)
            .ctx(|| "reading the snapshot tree".into())?;
        let head = match repo.head().and_then(|h| h.peel_to_commit()) {
            Ok(c) => Some(c),
            Err(e) if matches!(e.code(), ErrorCode::UnbornBranch | ErrorCode::NotFound) => None,
            Err(e) => return Err(e).ctx(|| "reading HEAD".into()),
        };
        let sig = signature(&repo)?;
        let parents: Vec<_> = head.iter().collect();
        let msg = format!("cove: snapshot for task {name}");
        let base = repo
            .commit(None, &sig, &sig, &msg, &tree, &parents)
            .ctx(|| "writing the snapshot commit".into())?;
        let base_commit = repo
            .find_commit(base)
            .ctx(|| "reading the snapshot commit".into())?;
        let branch_name = format!("cove/{name}");
        let branch = repo
            .branch(&branch_name, &base_commit, false)
            .ctx(|| format!("creating branch {branch_name}"))?;
        let path = self.key_dir.join(&name);
        let mut opts = WorktreeAddOptions::new();
        opts.reference(Some(branch.get()));
        if let Err(e) = repo.worktree(&name, &path, Some(&opts)) {
            // Leave no half-made task behind: the branch alone would look like a left-over.
            drop(branch);
            delete_branch(&repo, &branch_name);
            return Err(e).ctx(|| format!("creating the worktree {}", path.display()));
        }
        let meta = Meta {
            name: name.clone(),
            branch: branch_name,
            path,
            base: base.to_string(),
            parent_root: self.parent_root.clone(),
            owner_pid: owner.pid,
            session: owner.session,
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            state: State::Running,
        };
        self.write_meta(&meta)?;
        tracing::debug!(task = %name, "created task worktree");
        Ok(meta.tree())
    }

    /// Commits what the task worktree holds on its branch, then merges it into the parent's
    /// working tree. On `Merged`/`NoChanges` the task (worktree, branch, metadata) is removed; on
    /// `Conflict` nothing in the parent changes and the task is kept in state "conflict".
    ///
    /// # Errors
    /// Fails when git cannot commit or merge, when the task is unknown, or when the task's work
    /// would write outside the parent's worktree ([`IsolatorError::UnsafePath`]); the parent is
    /// untouched in that last case.
    pub fn finish(&self, tree: &TaskTree, message: &str) -> Result<MergeOutcome, IsolatorError> {
        let _lock = self.lock()?;
        let meta = self.read_meta(&tree.name)?;
        self.finish_locked(meta, message)
    }

    /// Commits what the task worktree holds on its branch and keeps it (state "kept").
    ///
    /// # Errors
    /// Fails when the task is unknown or git cannot commit.
    pub fn keep(&self, tree: &TaskTree, message: &str) -> Result<(), IsolatorError> {
        let _lock = self.lock()?;
        let mut meta = self.read_meta(&tree.name)?;
        commit_task(&meta, message)?;
        meta.state = State::Kept;
        self.write_meta(&meta)
    }

    /// Every task worktree of this repository, with whether its owner is alive and which files
    /// differ from its base.
    ///
    /// # Errors
    /// Fails when the state directory or a metadata file cannot be read.
    pub fn list(&self) -> Result<Vec<Entry>, IsolatorError> {
        let repo = open(&self.parent_root)?;
        self.metas()?
            .into_iter()
            .map(|m| {
                let changed = changed_files(&repo, &m, false)?;
                Ok(Entry {
                    alive: pid_alive(m.owner_pid),
                    changed,
                    name: m.name,
                    branch: m.branch,
                    path: m.path,
                    base: m.base,
                    parent_root: m.parent_root,
                    owner_pid: m.owner_pid,
                    session: m.session,
                    created: m.created,
                    state: m.state,
                })
            })
            .collect()
    }

    /// Merges a left-over task by name as `finish` would, into the worktree it was made from.
    ///
    /// # Errors
    /// Refuses when the task's owner process is alive; otherwise as [`Isolator::finish`].
    pub fn merge(&self, name: &str) -> Result<MergeOutcome, IsolatorError> {
        let _lock = self.lock()?;
        let meta = self.read_meta(name)?;
        if pid_alive(meta.owner_pid) {
            return Err(IsolatorError::OwnerAlive {
                name: meta.name,
                pid: meta.owner_pid,
            });
        }
        self.finish_locked(meta, "")
    }

    /// Removes a left-over task: worktree, branch and metadata.
    ///
    /// # Errors
    /// Refuses when the owner is alive, and when the task holds unmerged changes unless `force`.
    pub fn drop_task(&self, name: &str, force: bool) -> Result<(), IsolatorError> {
        let _lock = self.lock()?;
        let meta = self.read_meta(name)?;
        let repo = open(&self.parent_root)?;
        if let Some(reason) = removal_refusal(&repo, &meta, force)? {
            return Err(reason);
        }
        self.remove_task(&repo, &meta)
    }

    /// Removes every left-over task that may be removed: owner gone, and no unmerged changes
    /// unless `force`.
    ///
    /// # Errors
    /// Fails when the state cannot be read or a removal fails.
    pub fn clean(&self, force: bool) -> Result<Cleaned, IsolatorError> {
        let _lock = self.lock()?;
        let repo = open(&self.parent_root)?;
        let mut cleaned = Cleaned::default();
        for meta in self.metas()? {
            match removal_refusal(&repo, &meta, force)? {
                Some(why) => cleaned.kept.push((meta.name, why.to_string())),
                None => {
                    self.remove_task(&repo, &meta)?;
                    cleaned.removed.push(meta.name);
                }
            }
        }
        Ok(cleaned)
    }

    fn finish_locked(&self, mut meta: Meta, message: &str) -> Result<MergeOutcome> {
        commit_task(&meta, message)?;
        let repo = open(&meta.parent_root)?;
        let outcome = match merge_back(&repo, &meta) {
            Ok(outcome) => outcome,
            Err(e) => {
                // No longer running, and not merged: show it as kept in `list`.
                meta.state = State::Kept;
                if let Err(e) = self.write_meta(&meta) {
                    tracing::warn!(task = %meta.name, error = %e, "could not record the task as kept");
                }
                return Err(e);
            }
        };
        match outcome {
            MergeOutcome::Conflict { .. } => {
                meta.state = State::Conflict;
                self.write_meta(&meta)?;
            }
            MergeOutcome::Merged { .. } | MergeOutcome::NoChanges => {
                // The work is in the parent now; a failed clean-up must not report the merge as failed.
                if let Err(e) = self.remove_task(&repo, &meta) {
                    tracing::warn!(task = %meta.name, error = %e, "merged, but could not remove the task");
                }
            }
        }
        Ok(outcome)
    }

    fn lock(&self) -> Result<LockGuard> {
        let path = self.key_dir.join("lock");
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("open the lock file", &path))?;
        loop {
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive) {
                Ok(()) => break,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(io_err("lock", &path)(e.into())),
            }
        }
        // The pid is for people inspecting a stuck lock; the flock itself is what excludes.
        file.set_len(0)
            .and_then(|()| write!(file, "{}", std::process::id()))
            .map_err(io_err("write the lock file", &path))?;
        Ok(LockGuard { file })
    }

    fn unique_name(&self, repo: &Repository, label: &str) -> String {
        let label = sanitize(label);
        let pid = std::process::id();
        loop {
            let n = NAME_COUNTER.fetch_add(1, Ordering::Relaxed);
            let name = format!("{label}-{pid:x}-{n}");
            // Names from an earlier process with a reused pid may linger; skip any that exist.
            let taken = self.key_dir.join(&name).exists()
                || self.meta_path(&name).exists()
                || repo
                    .find_branch(&format!("cove/{name}"), BranchType::Local)
                    .is_ok()
                || repo.find_worktree(&name).is_ok();
            if !taken {
                return name;
            }
        }
    }

    fn meta_path(&self, name: &str) -> PathBuf {
        self.key_dir.join(format!("{name}.json"))
    }

    fn read_meta(&self, name: &str) -> Result<Meta> {
        // Names come from users too; anything else could point outside the state directory.
        let plain = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if name.is_empty() || name.starts_with('-') || !name.chars().all(plain) {
            return Err(IsolatorError::UnknownTask { name: name.into() });
        }
        let path = self.meta_path(name);
        let bytes = match fs::read(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(IsolatorError::UnknownTask { name: name.into() });
            }
            r => r.map_err(io_err("read", &path))?,
        };
        serde_json::from_slice(&bytes).map_err(|source| IsolatorError::Metadata { path, source })
    }

    fn write_meta(&self, meta: &Meta) -> Result<()> {
        let path = self.meta_path(&meta.name);
        let tmp = self.key_dir.join(format!("{}.json.tmp", meta.name));
        let json = serde_json::to_vec_pretty(meta).map_err(|source| IsolatorError::Metadata {
            path: path.clone(),
            source,
        })?;
        // Write then rename so a reader never sees half a file.
        fs::write(&tmp, json).map_err(io_err("write", &tmp))?;
        fs::rename(&tmp, &path).map_err(io_err("write", &path))
    }

    fn metas(&self) -> Result<Vec<Meta>> {
        let mut metas = Vec::new();
        let entries = fs::read_dir(&self.key_dir).map_err(io_err("read", &self.key_dir))?;
        for entry in entries {
            let entry = entry.map_err(io_err("read", &self.key_dir))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            match self.read_meta(name) {
                // Removed by another process since the directory was read.
                Err(IsolatorError::UnknownTask { .. }) => {}
                meta => metas.push(meta?),
            }
        }
        metas.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
        Ok(metas)
    }

    fn remove_task(&self, repo: &Repository, meta: &Meta) -> Result<()> {
        if let Ok(wt) = repo.find_worktree(&meta.name) {
            let mut opts = WorktreePruneOptions::new();
            opts.valid(true).working_tree(true);
            wt.prune(Some(&mut opts))
                .ctx(|| format!("removing the worktree of task {}", meta.name))?;
        }
        // Only ever delete a directory of our own, never a path a damaged metadata file names.
        let dir = self.key_dir.join(&meta.name);
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))?;
        }
        delete_branch(repo, &meta.branch);
        let path = self.meta_path(&meta.name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", &path)(e)),
            _ => Ok(()),
        }
    }
}

impl MergeOutcome {
    /// A result text for the model or user.
    pub fn describe(&self) -> String {
        match self {
            Self::NoChanges => "The task made no changes; nothing was merged.".into(),
            Self::Merged {
                files,
                fast_forward,
            } => {
                let how = if *fast_forward {
                    "fast-forward"
                } else {
                    "three-way merge"
                };
                let mut s = format!(
                    "Merged {} file(s) from the task into the working tree ({how}); they are uncommitted changes there:\n",
                    files.len()
                );
                for f in files {
                    s.push_str(&format!("  {}\n", f.display()));
                }
                s
            }
            Self::Conflict {
                files,
                branch,
                path,
            } => {
                let name = branch.strip_prefix("cove/").unwrap_or(branch);
                let mut s = String::from(
                    "The task's changes conflict with changes made in the working tree since the task started. Nothing in the working tree was changed.\n",
                );
                for f in files {
                    s.push_str(&format!("\n{}:\n", f.path.display()));
                    for h in &f.hunks {
                        s.push_str(&format!(
                            "  at line {}:\n    working tree (ours):\n",
                            h.line
                        ));
                        s.push_str(&indent(&h.ours));
                        s.push_str("    task (theirs):\n");
                        s.push_str(&indent(&h.theirs));
                    }
                }
                s.push_str(&format!(
                    "\nThe task's work is kept on branch {branch} in the worktree {}. To resolve, make each conflicting region read the same on both sides (edit the working tree's file, or the file in the task worktree, to the text you want), then run `cove worktrees merge {name}`; the task's other changes are applied then. Or discard the task's work with `cove worktrees drop {name} --force`.\n",
                    path.display()
                ));
                s
            }
        }
    }
}

fn indent(text: &str) -> String {
    if text.is_empty() {
        return "      (nothing)\n".into();
    }
    text.lines().map(|l| format!("      {l}\n")).collect()
}

fn open(root: &Path) -> Result<Repository> {
    Repository::open(root).map_err(|source| IsolatorError::NotARepository {
        path: root.to_path_buf(),
        source,
    })
}

fn signature(repo: &Repository) -> Result<Signature<'static>> {
    repo.signature()
        .or_else(|_| Signature::now("cove", "cove@localhost"))
        .ctx(|| "making a commit signature".into())
}

/// The working tree as a tree object, built in an in-memory copy of the index: the index file
/// on disk is never written, so the repository's own state is unchanged.
fn snapshot_tree(repo: &Repository) -> std::result::Result<Oid, git2::Error> {
    let mut index = repo.index()?;
    stage_worktree(&mut index)?;
    index.write_tree()
}

/// `git add -A` into `index` (in memory), leaving out untracked nested repositories: libgit2
/// refuses to add them, and a task has no business with another repository's checkout.
fn stage_worktree(index: &mut git2::Index) -> std::result::Result<(), git2::Error> {
    // libgit2 reports an untracked nested repository as one path ending in '/'.
    let mut skip_nested =
        |path: &Path, _: &[u8]| i32::from(path.as_os_str().as_encoded_bytes().ends_with(b"/"));
    index.add_all(["*"], IndexAddOption::DEFAULT, Some(&mut skip_nested))?;
    index.update_all(["*"], None)
}

fn sanitize(label: &str) -> String {
    let mut out = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= 24 {
            break;
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "task".into()
    } else {
        out.into()
    }
}

fn repo_key(common_dir: &Path) -> String {
    let base = match common_dir.file_name().and_then(|n| n.to_str()) {
        Some(".git") => common_dir
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str()),
        other => other.map(|n| n.strip_suffix(".git").unwrap_or(n)),
    };
    // FNV-1a: stable across Rust versions, unlike the std hasher, so keys survive upgrades.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in common_dir.as_os_str().as_encoded_bytes() {
        hash = (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}-{:012x}", sanitize(base.unwrap_or("repo")), hash >> 16)
}

fn pid_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    // EPERM means it exists under another user: still alive.
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

fn delete_branch(repo: &Repository, branch: &str) {
    if let Ok(mut b) = repo.find_branch(branch, BranchType::Local)
        && let Err(e) = b.delete()
    {
        tracing::warn!(branch, error = %e, "could not delete task branch");
    }
}

fn branch_ref(meta: &Meta) -> String {
    format!("refs/heads/{}", meta.branch)
}

/// Commits the task worktree's current state on the task branch, if it differs from the tip.
fn commit_task(meta: &Meta, message: &str) -> Result<()> {
    if !meta.path.exists() {
        return Ok(());
    }
    let ctx = || format!("committing the work of task {}", meta.name);
    let repo = open(&meta.path)?;
    let refname = branch_ref(meta);
    let mut index = repo.index().ctx(ctx)?;
    stage_worktree(&mut index).ctx(ctx)?;
    let tree_id = index.write_tree().ctx(ctx)?;
    let tip = repo
        .find_reference(&refname)
        .and_then(|r| r.peel_to_commit())
        .ctx(ctx)?;
    if tip.tree_id() == tree_id {
        return Ok(());
    }
    let tree = repo.find_tree(tree_id).ctx(ctx)?;
    let sig = signature(&repo)?;
    let default_msg = format!("cove: work of task {}", meta.name);
    let msg = if message.trim().is_empty() {
        default_msg.as_str()
    } else {
        message
    };
    repo.commit(Some(&refname), &sig, &sig, msg, &tree, &[&tip])
        .ctx(ctx)?;
    // Keeps `git status` in the task worktree clean; the index is the task's own.
    index.write().ctx(ctx)
}

fn tip_tree(repo: &Repository, meta: &Meta) -> Option<Oid> {
    let tip = repo
        .find_reference(&branch_ref(meta))
        .and_then(|r| r.peel_to_tree());
    tip.ok().map(|t| t.id())
}

fn changed_files(repo: &Repository, meta: &Meta, strict: bool) -> Result<Vec<PathBuf>> {
    let ctx = || format!("comparing task {} with its base", meta.name);
    let Ok(base) = Oid::from_str(&meta.base).and_then(|o| repo.find_commit(o)) else {
        return Ok(Vec::new());
    };
    let current = match Repository::open(&meta.path) {
        Ok(task) => match snapshot_tree(&task) {
            Ok(tree) => Some(tree),
            // Listing must survive a damaged worktree; removal must not guess about lost work.
            Err(e) if strict => return Err(e).ctx(ctx),
            Err(e) => {
                tracing::warn!(task = %meta.name, error = %e, "could not read the task worktree");
                tip_tree(repo, meta)
            }
        },
        Err(_) => tip_tree(repo, meta),
    };
    let Some(current) = current else {
        return Ok(Vec::new());
    };
    let base_tree = base.tree().ctx(ctx)?;
    let current = repo.find_tree(current).ctx(ctx)?;
    let diff = repo
        .diff_tree_to_tree(Some(&base_tree), Some(&current), None)
        .ctx(ctx)?;
    Ok(diff
        .deltas()
        .filter_map(|d| {
            d.new_file()
                .path()
                .or(d.old_file().path())
                .map(Path::to_path_buf)
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect())
}

fn removal_refusal(repo: &Repository, meta: &Meta, force: bool) -> Result<Option<IsolatorError>> {
    if pid_alive(meta.owner_pid) {
        return Ok(Some(IsolatorError::OwnerAlive {
            name: meta.name.clone(),
            pid: meta.owner_pid,
        }));
    }
    let changed = changed_files(repo, meta, true)?;
    if !force && !changed.is_empty() {
        let files = changed
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Ok(Some(IsolatorError::UnmergedChanges {
            name: meta.name.clone(),
            files,
        }));
    }
    Ok(None)
}

/// Three-way merge of the task branch into the parent's working tree, written through `cap_std`.
fn merge_back(repo: &Repository, meta: &Meta) -> Result<MergeOutcome> {
    let ctx = || format!("merging task {}", meta.name);
    let ours_id = snapshot_tree(repo).ctx(|| "reading the project's working tree".into())?;
    let ours = repo.find_tree(ours_id).ctx(ctx)?;
    let base = Oid::from_str(&meta.base)
        .and_then(|o| repo.find_commit(o))
        .and_then(|c| c.tree())
        .ctx(ctx)?;
    let theirs = repo
        .find_reference(&branch_ref(meta))
        .and_then(|r| r.peel_to_tree())
        .ctx(ctx)?;
    if theirs.id() == base.id() {
        return Ok(MergeOutcome::NoChanges);
    }
    let conflict = |files| MergeOutcome::Conflict {
        files,
        branch: meta.branch.clone(),
        path: meta.path.clone(),
    };
    let (result_id, fast_forward) = if ours.id() == base.id() {
        (theirs.id(), true)
    } else {
        let mut index = repo.merge_trees(&base, &ours, &theirs, None).ctx(ctx)?;
        if index.has_conflicts() {
            return Ok(conflict(conflict_files(repo, &index).ctx(ctx)?));
        }
        (index.write_tree_to(repo).ctx(ctx)?, false)
    };
    if result_id == ours.id() {
        return Ok(MergeOutcome::NoChanges);
    }
    let result = repo.find_tree(result_id).ctx(ctx)?;
    let changes = tree_changes(repo, &ours, &result).ctx(ctx)?;
    let root = Dir::open_ambient_dir(&meta.parent_root, cap_std::ambient_authority())
        .map_err(io_err("open", &meta.parent_root))?;
    let stale = check_changes(repo, &root, meta, &changes)?;
    if !stale.is_empty() {
        return Ok(conflict(stale));
    }
    apply_changes(repo, &root, &changes).map_err(|(path, source)| IsolatorError::ApplyFailed {
        name: meta.name.clone(),
        path: meta.parent_root.join(path),
        source,
    })?;
    let files = changes
        .iter()
        .map(|c| c.path.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(MergeOutcome::Merged {
        files,
        fast_forward,
    })
}

/// One path's move from the parent's state (`old`) to the merged state (`new`): `(blob, mode)`.
struct Change {
    path: PathBuf,
    old: Option<(Oid, i32)>,
    new: Option<(Oid, i32)>,
}

fn tree_changes(
    repo: &Repository,
    from: &Tree,
    to: &Tree,
) -> std::result::Result<Vec<Change>, git2::Error> {
    let diff = repo.diff_tree_to_tree(Some(from), Some(to), None)?;
    let side = |f: git2::DiffFile| f.exists().then(|| (f.id(), i32::from(f.mode())));
    Ok(diff
        .deltas()
        .filter_map(|d| {
            let path = d.new_file().path().or(d.old_file().path())?.to_path_buf();
            Some(Change {
                path,
                old: side(d.old_file()),
                new: side(d.new_file()),
            })
        })
        .collect())
}

/// Checks every change before anything is written: paths and symlink targets must stay inside the
/// root (else an error), and each path must still hold what the snapshot saw (else it is reported
/// as a conflict rather than overwritten, e.g. an ignored file in the way or an edit since).
fn check_changes(
    repo: &Repository,
    root: &Dir,
    meta: &Meta,
    changes: &[Change],
) -> Result<Vec<ConflictFile>> {
    let unsafe_path = |path: &Path, reason: String| IsolatorError::UnsafePath {
        name: meta.name.clone(),
        path: path.to_path_buf(),
        reason,
    };
    let removed: Vec<&Path> = changes
        .iter()
        .filter(|c| c.old.is_some() && c.new.is_none())
        .map(|c| c.path.as_path())
        .collect();
    let mut stale = Vec::new();
    for change in changes {
        if !change
            .path
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(unsafe_path(
                &change.path,
                "the path is not a plain relative path".into(),
            ));
        }
        if let Some((id, mode)) = change.new
            && mode == i32::from(FileMode::Link)
        {
            let target = blob(repo, id)?;
            if !link_stays_inside(&change.path, &target) {
                let shown = String::from_utf8_lossy(&target);
                return Err(unsafe_path(
                    &change.path,
                    format!("it is a symbolic link to {shown}, which leads outside the project"),
                ));
            }
        }
        // Removals run first, so a path at or under a removed one is created fresh (a type change
        // or a file turned directory); the removal's own check covers what is there now.
        if change.old.is_none() && removed.iter().any(|r| change.path.starts_with(r)) {
            continue;
        }
        let current = match root.symlink_metadata(&change.path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                Some(b"(a file is in the way)".to_vec())
            }
            Err(e) => return Err(unsafe_path(&change.path, e.to_string())),
            Ok(md) if md.is_symlink() => Some(
                root.read_link_contents(&change.path)
                    .map(|t| t.into_os_string().into_encoded_bytes())
                    .map_err(|e| unsafe_path(&change.path, e.to_string()))?,
            ),
            Ok(md) if md.is_file() => Some(
                root.read(&change.path)
                    .map_err(io_err("read", &change.path))?,
            ),
            Ok(_) => Some(b"(a directory)".to_vec()),
        };
        let expected = change.old.map(|(id, _)| blob(repo, id)).transpose()?;
        if current != expected {
            let theirs = change
                .new
                .map(|(id, _)| blob(repo, id))
                .transpose()?
                .unwrap_or_default();
            stale.push(ConflictFile {
                path: change.path.clone(),
                hunks: vec![whole_file_hunk(&current.unwrap_or_default(), &theirs)],
            });
        }
    }
    Ok(stale)
}

fn blob(repo: &Repository, id: Oid) -> Result<Vec<u8>> {
    repo.find_blob(id)
        .map(|b| b.content().to_vec())
        .ctx(|| format!("reading blob {id}"))
}

/// Whether a relative symlink at `path` with `target` resolves inside the worktree root.
fn link_stays_inside(path: &Path, target: &[u8]) -> bool {
    let Ok(target) = std::str::from_utf8(target) else {
        return false;
    };
    let target = Path::new(target);
    let mut depth = path.components().count().saturating_sub(1);
    for c in target.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir if depth > 0 => depth -= 1,
            _ => return false,
        }
    }
    true
}

fn apply_changes(
    repo: &Repository,
    root: &Dir,
    changes: &[Change],
) -> std::result::Result<(), (PathBuf, io::Error)> {
    let fail = |path: &Path| {
        let path = path.to_path_buf();
        move |e: io::Error| (path, e)
    };
    // Removals first, so a file can become a directory (and back) in one merge.
    for c in changes
        .iter()
        .filter(|c| c.old.is_some() && c.new.is_none())
    {
        if let Err(e) = root.remove_file(&c.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            return Err((c.path.clone(), e));
        }
        // Git does not track directories: drop the ones this left empty, as a checkout would.
        let mut dir = c.path.parent();
        while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
            if root.remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }
    for c in changes {
        let Some((id, mode)) = c.new else { continue };
        let content = repo
            .find_blob(id)
            .map(|b| b.content().to_vec())
            .map_err(|e| (c.path.clone(), io::Error::other(e)))?;
        if let Some(parent) = c.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            root.create_dir_all(parent).map_err(fail(parent))?;
        }
        let link = i32::from(FileMode::Link);
        // Writing over a symlink would write to its target instead of replacing it.
        if c.old.is_some_and(|(_, m)| m == link || mode == link)
            && let Err(e) = root.remove_file(&c.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            return Err((c.path.clone(), e));
        }
        if mode == link {
            let target = PathBuf::from(String::from_utf8_lossy(&content).into_owned());
            root.symlink(target, &c.path).map_err(fail(&c.path))?;
        } else if mode == i32::from(FileMode::Blob) || mode == i32::from(FileMode::BlobExecutable) {
            root.write(&c.path, &content).map_err(fail(&c.path))?;
            let mut perm = root.metadata(&c.path).map_err(fail(&c.path))?.permissions();
            let bits = perm.mode();
            let exec = if mode == i32::from(FileMode::BlobExecutable) {
                bits | ((bits & 0o444) >> 2)
            } else {
                bits & !0o111
            };
            perm.set_mode(exec);
            root.set_permissions(&c.path, perm).map_err(fail(&c.path))?;
        } else {
            tracing::warn!(path = %c.path.display(), "not applying a submodule change from a task");
        }
    }
    Ok(())
}

fn whole_file_hunk(ours: &[u8], theirs: &[u8]) -> Hunk {
    const MAX: usize = 4000;
    let cut = |b: &[u8]| {
        let s = String::from_utf8_lossy(b);
        if s.len() > MAX {
            let end = (0..=MAX)
                .rev()
                .find(|i| s.is_char_boundary(*i))
                .unwrap_or(0);
            format!("{}\n(... truncated)\n", &s[..end])
        } else {
            s.into_owned()
        }
    };
    Hunk {
        line: 1,
        ours: cut(ours),
        theirs: cut(theirs),
    }
}

fn conflict_files(
    repo: &Repository,
    index: &git2::Index,
) -> std::result::Result<Vec<ConflictFile>, git2::Error> {
    let mut files = Vec::new();
    for conflict in index.conflicts()? {
        let conflict = conflict?;
        let sides = [&conflict.ancestor, &conflict.our, &conflict.their];
        let Some(path) = sides
            .iter()
            .find_map(|e| e.as_ref())
            .map(|e| String::from_utf8_lossy(&e.path).into_owned())
        else {
            continue;
        };
        let mut contents = Vec::new();
        for side in sides {
            contents.push(match side {
                Some(e) => repo.find_blob(e.id)?.content().to_vec(),
                None => Vec::new(),
            });
        }
        fn input<'a>(c: &'a [u8], path: &str) -> MergeFileInput<'a> {
            let mut i = MergeFileInput::new();
            i.content(c).path(path);
            i
        }
        let (a, o, t) = (
            input(&contents[0], &path),
            input(&contents[1], &path),
            input(&contents[2], &path),
        );
        let mut opts = MergeFileOptions::new();
        opts.our_label("ours").their_label("theirs");
        let hunks = git2::merge_file(&a, &o, &t, Some(&mut opts))
            .map(|r| parse_conflict_markers(r.content()))
            .unwrap_or_default();
        let hunks = if hunks.is_empty() {
            vec![whole_file_hunk(&contents[1], &contents[2])]
        } else {
            hunks
        };
        files.push(ConflictFile {
            path: PathBuf::from(path),
            hunks,
        });
    }
    Ok(files)
}

/// Reads `<<<<<<<`/`=======`/`>>>>>>>` regions, numbering lines as they are in "ours".
fn parse_conflict_markers(merged: &[u8]) -> Vec<Hunk> {
    enum Part {
        Outside,
        Ours,
        Base,
        Theirs,
    }
    let text = String::from_utf8_lossy(merged);
    let (mut hunks, mut part, mut line) = (Vec::new(), Part::Outside, 0usize);
    let mut current = Hunk::default();
    for l in text.split_inclusive('\n') {
        match part {
            Part::Outside if l.starts_with("<<<<<<< ours") => {
                current = Hunk {
                    line: line + 1,
                    ..Hunk::default()
                };
                part = Part::Ours;
            }
            Part::Outside => line += 1,
            Part::Ours | Part::Base if l.trim_end() == "=======" => part = Part::Theirs,
            Part::Ours if l.starts_with("||||||| ") => part = Part::Base,
            Part::Ours => {
                current.ours.push_str(l);
                line += 1;
            }
            Part::Base => {}
            Part::Theirs if l.starts_with(">>>>>>> theirs") => {
                hunks.push(std::mem::take(&mut current));
                part = Part::Outside;
            }
            Part::Theirs => current.theirs.push_str(l),
        }
    }
    hunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;
    use std::os::unix::fs::{PermissionsExt as _, symlink};
    use std::sync::{Arc, Barrier, mpsc};
    use std::time::Duration;

    type TestResult = Result<(), Box<dyn Error>>;

    struct Fixture {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        iso: Isolator,
    }

    fn fixture() -> Result<Fixture, Box<dyn Error>> {
        let tmp = tempfile::tempdir()?;
        let root = tmp.path().join("proj");
        let repo = Repository::init(&root)?;
        put(&root, "a.txt", "a\nb\nc\n")?;
        put(&root, "b.txt", "one\n")?;
        put(&root, "gone.txt", "x\n")?;
        put(&root, ".gitignore", "*.log\nlink\n")?;
        commit_all(&repo)?;
        let iso = Isolator::new(&root, &tmp.path().join("state"))?;
        let root = iso.parent_root().to_path_buf();
        Ok(Fixture {
            _tmp: tmp,
            root,
            iso,
        })
    }

    fn put(root: &Path, rel: &str, text: &str) -> Result<(), Box<dyn Error>> {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().ok_or("path to write has no parent")?)?;
        fs::write(path, text)?;
        Ok(())
    }

    fn get(root: &Path, rel: &str) -> Result<String, Box<dyn Error>> {
        Ok(fs::read_to_string(root.join(rel))?)
    }

    fn commit_all(repo: &Repository) -> Result<(), Box<dyn Error>> {
        let mut index = repo.index()?;
        index.add_all(["*"], IndexAddOption::DEFAULT, None)?;
        index.update_all(["*"], None)?;
        index.write()?;
        let tree = repo.find_tree(index.write_tree()?)?;
        let sig = Signature::now("t", "t@example.com")?;
        let head = repo.head().and_then(|h| h.peel_to_commit()).ok();
        let parents: Vec<_> = head.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, "c", &tree, &parents)?;
        Ok(())
    }

    fn me() -> Owner {
        Owner {
            pid: std::process::id(),
            session: Some("s1".into()),
        }
    }

    fn dead() -> Result<Owner, Box<dyn Error>> {
        let mut child = std::process::Command::new("true").spawn()?;
        let pid = child.id();
        child.wait()?;
        Ok(Owner { pid, session: None })
    }

    /// Index file, HEAD and status of the parent.
    type ParentState = (Vec<u8>, Vec<u8>, Vec<(String, git2::Status)>);

    /// Everything that must stay byte-identical in the parent: index file, HEAD, status.
    fn parent_state(root: &Path) -> Result<ParentState, Box<dyn Error>> {
        let index = fs::read(root.join(".git/index"))?;
        let head = fs::read(root.join(".git/HEAD"))?;
        let repo = Repository::open(root)?;
        let mut opts = git2::StatusOptions::new();
        opts.include_untracked(true).recurse_untracked_dirs(true);
        let status = repo.statuses(Some(&mut opts))?;
        let status = status
            .iter()
            .map(|e| -> Result<_, Box<dyn Error>> { Ok((e.path()?.to_string(), e.status())) })
            .collect::<Result<_, _>>()?;
        Ok((index, head, status))
    }

    fn branch_exists(root: &Path, branch: &str) -> Result<bool, Box<dyn Error>> {
        Ok(Repository::open(root)?
            .find_branch(branch, BranchType::Local)
            .is_ok())
    }

    #[test]
    fn create_carries_uncommitted_state_without_touching_the_parent() -> TestResult {
        let f = fixture()?;
        let repo = Repository::open(&f.root)?;
        put(&f.root, "staged.txt", "staged\n")?;
        let mut index = repo.index()?;
        index.add_path(Path::new("staged.txt"))?;
        index.write()?;
        put(&f.root, "a.txt", "a\nB\nc\n")?;
        put(&f.root, "dir/new.txt", "untracked\n")?;
        put(&f.root, "debug.log", "ignored\n")?;
        fs::remove_file(f.root.join("gone.txt"))?;
        let head_before = repo.head()?.target().ok_or("HEAD has no target")?;
        let before = parent_state(&f.root)?;

        let task = f.iso.create("Explorer: look around!", me())?;
        assert!(
            task.name.starts_with("explorer-look-around-"),
            "{}",
            task.name
        );
        assert_eq!(task.branch, format!("cove/{}", task.name));
        assert!(!task.path.starts_with(&f.root));
        assert_eq!(get(&task.path, "a.txt")?, "a\nB\nc\n");
        assert_eq!(get(&task.path, "staged.txt")?, "staged\n");
        assert_eq!(get(&task.path, "dir/new.txt")?, "untracked\n");
        assert!(!task.path.join("gone.txt").exists());
        assert!(!task.path.join("debug.log").exists());
        let tip = repo.find_branch(&task.branch, BranchType::Local)?;
        assert_eq!(
            tip.get()
                .target()
                .ok_or("task branch has no target")?
                .to_string(),
            task.base
        );
        assert_eq!(parent_state(&f.root)?, before);
        assert_eq!(
            repo.head()?.target().ok_or("HEAD has no target")?,
            head_before
        );

        assert_eq!(f.iso.finish(&task, "nothing")?, MergeOutcome::NoChanges);
        assert_eq!(parent_state(&f.root)?, before);
        assert!(!task.path.exists());
        assert!(!branch_exists(&f.root, &task.branch)?);
        Ok(())
    }

    #[test]
    fn finish_fast_forwards_into_the_working_tree_only() -> TestResult {
        let f = fixture()?;
        put(&f.root, "b.txt", "one\nparent edit\n")?;
        let before = parent_state(&f.root)?;
        let task = f.iso.create("worker", me())?;
        put(&task.path, "src/new.rs", "fn main() {}\n")?;
        put(&task.path, "b.txt", "one\nparent edit\ntask edit\n")?;
        put(&task.path, "run.sh", "#!/bin/sh\n")?;
        fs::set_permissions(task.path.join("run.sh"), fs::Permissions::from_mode(0o755))?;
        fs::remove_file(task.path.join("gone.txt"))?;

        let outcome = f.iso.finish(&task, "task work")?;
        let MergeOutcome::Merged {
            files,
            fast_forward,
        } = &outcome
        else {
            panic!("{outcome:?}")
        };
        assert!(*fast_forward);
        let names: Vec<_> = ["b.txt", "gone.txt", "run.sh", "src/new.rs"]
            .map(PathBuf::from)
            .into();
        assert_eq!(files, &names);
        assert!(outcome.describe().contains("src/new.rs"));
        assert_eq!(get(&f.root, "src/new.rs")?, "fn main() {}\n");
        assert_eq!(get(&f.root, "b.txt")?, "one\nparent edit\ntask edit\n");
        assert!(!f.root.join("gone.txt").exists());
        let mode = fs::metadata(f.root.join("run.sh"))?.permissions().mode();
        assert_eq!(mode & 0o100, 0o100);
        let after = parent_state(&f.root)?;
        assert_eq!((&after.0, &after.1), (&before.0, &before.1));
        assert!(!task.path.exists());
        assert!(!branch_exists(&f.root, &task.branch)?);
        assert!(!f.iso.meta_path(&task.name).exists());
        assert!(f.iso.list()?.is_empty());
        assert_eq!(Repository::open(&f.root)?.worktrees()?.len(), 0);
        Ok(())
    }

    #[test]
    fn sibling_tasks_merge_three_way() -> TestResult {
        let f = fixture()?;
        let t1 = f.iso.create("one", me())?;
        let t2 = f.iso.create("two", me())?;
        put(&t1.path, "a.txt", "A\nb\nc\n")?;
        put(&t2.path, "a.txt", "a\nb\nC\n")?;
        put(&t2.path, "t2.txt", "two\n")?;
        assert!(matches!(
            f.iso.finish(&t1, "")?,
            MergeOutcome::Merged {
                fast_forward: true,
                ..
            }
        ));
        let outcome = f.iso.finish(&t2, "")?;
        assert!(
            matches!(
                outcome,
                MergeOutcome::Merged {
                    fast_forward: false,
                    ..
                }
            ),
            "{outcome:?}"
        );
        assert_eq!(get(&f.root, "a.txt")?, "A\nb\nC\n");
        assert_eq!(get(&f.root, "t2.txt")?, "two\n");
        Ok(())
    }

    #[test]
    fn conflict_is_reported_and_touches_nothing() -> TestResult {
        let f = fixture()?;
        let t1 = f.iso.create("one", me())?;
        let t2 = f.iso.create("two", dead()?)?;
        put(&t1.path, "a.txt", "a\none\nc\n")?;
        put(&t2.path, "a.txt", "a\ntwo\nc\n")?;
        put(&t2.path, "other.txt", "other\n")?;
        f.iso.finish(&t1, "")?;
        let before = fs::read(f.root.join("a.txt"))?;

        let outcome = f.iso.finish(&t2, "")?;
        let MergeOutcome::Conflict {
            files,
            branch,
            path,
        } = &outcome
        else {
            panic!("{outcome:?}")
        };
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, PathBuf::from("a.txt"));
        let hunk = Hunk {
            line: 2,
            ours: "one\n".into(),
            theirs: "two\n".into(),
        };
        assert_eq!(files[0].hunks, vec![hunk]);
        assert_eq!((branch, path), (&t2.branch, &t2.path));
        let text = outcome.describe();
        assert!(
            text.contains("at line 2")
                && text.contains(&format!("cove worktrees merge {}", t2.name))
        );
        assert_eq!(fs::read(f.root.join("a.txt"))?, before);
        assert!(!f.root.join("other.txt").exists());
        assert!(t2.path.exists() && branch_exists(&f.root, &t2.branch)?);
        let list = f.iso.list()?;
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].state, State::Conflict);
        assert_eq!(
            list[0].changed,
            vec![PathBuf::from("a.txt"), PathBuf::from("other.txt")]
        );
        assert!(serde_json::to_string(&list)?.contains("\"conflict\""));

        // Resolving: the working tree takes the task's line, so the rest of the task applies.
        put(&f.root, "a.txt", "a\ntwo\nc\n")?;
        let outcome = f.iso.merge(&t2.name)?;
        assert!(
            matches!(outcome, MergeOutcome::Merged { .. }),
            "{outcome:?}"
        );
        assert_eq!(get(&f.root, "other.txt")?, "other\n");
        assert!(!t2.path.exists());
        Ok(())
    }

    #[test]
    fn concurrent_creates_and_finishes() -> TestResult {
        let f = fixture()?;
        // Every task edits its own line of one file, so unserialised merges would lose lines.
        let shared = |edited: &[usize]| -> String {
            (0..32)
                .map(|l| {
                    if l % 4 == 0 && edited.contains(&(l / 4)) {
                        format!("task {}\n", l / 4)
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect()
        };
        put(&f.root, "shared.txt", &shared(&[]))?;
        let iso = Arc::new(f.iso.clone());
        let barrier = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (iso, barrier) = (iso.clone(), barrier.clone());
                std::thread::spawn(move || -> Result<(TaskTree, MergeOutcome), String> {
                    barrier.wait();
                    let prepared =
                        iso.create("par", me())
                            .map_err(|e| e.to_string())
                            .and_then(|task| {
                                put(&task.path, &format!("out/{i}.txt"), &format!("{i}\n"))
                                    .and_then(|()| put(&task.path, "shared.txt", &shared(&[i])))
                                    .map_err(|e| e.to_string())?;
                                Ok(task)
                            });
                    // Wait before returning any error: a failing thread must not strand the others here.
                    barrier.wait();
                    let task = prepared?;
                    let outcome = iso.finish(&task, "").map_err(|e| e.to_string())?;
                    Ok((task, outcome))
                })
            })
            .collect();
        let mut results = Vec::new();
        for handle in handles {
            results.push(handle.join().map_err(|_| "thread panicked")??);
        }
        let names: BTreeSet<_> = results.iter().map(|(t, _)| t.name.clone()).collect();
        assert_eq!(names.len(), 8);
        for (task, outcome) in &results {
            assert!(
                matches!(outcome, MergeOutcome::Merged { .. }),
                "{outcome:?}"
            );
            assert!(!task.path.exists());
        }
        for i in 0..8 {
            assert_eq!(get(&f.root, &format!("out/{i}.txt"))?, format!("{i}\n"));
        }
        assert_eq!(
            get(&f.root, "shared.txt")?,
            shared(&[0, 1, 2, 3, 4, 5, 6, 7])
        );
        Ok(())
    }

    #[test]
    fn symlinks_leading_outside_are_refused_before_any_write() -> TestResult {
        let f = fixture()?;
        let outside = f._tmp.path().join("outside");
        fs::create_dir(&outside)?;
        for target in [outside.to_str().ok_or("temp path is not UTF-8")?, "../../x"] {
            let task = f.iso.create("escape", me())?;
            symlink(target, task.path.join("esc"))?;
            put(&task.path, "ok.txt", "fine\n")?;
            let err = f
                .iso
                .finish(&task, "")
                .err()
                .ok_or("finish succeeded through an escaping symlink")?;
            assert!(matches!(err, IsolatorError::UnsafePath { .. }), "{err}");
            let entry = f
                .iso
                .list()?
                .into_iter()
                .find(|e| e.name == task.name)
                .ok_or("refused task missing from list")?;
            assert_eq!(entry.state, State::Kept);
            assert!(
                !f.root.join("ok.txt").exists()
                    && fs::symlink_metadata(f.root.join("esc")).is_err()
            );
            assert!(task.path.exists());
        }
        // An ignored symlink in the parent must not let a task's file be written through it.
        symlink(&outside, f.root.join("link"))?;
        let task = f.iso.create("escape", me())?;
        fs::remove_file(task.path.join(".gitignore"))?;
        put(&task.path, "link/pwned", "gotcha\n")?;
        let err = f
            .iso
            .finish(&task, "")
            .err()
            .ok_or("finish succeeded through a parent symlink")?;
        assert!(matches!(err, IsolatorError::UnsafePath { .. }), "{err}");
        assert_eq!(fs::read_dir(&outside)?.count(), 0);
        assert!(f.root.join(".gitignore").exists());
        // A link that stays inside is fine.
        let task = f.iso.create("inside", me())?;
        fs::create_dir(task.path.join("sub"))?;
        symlink("../a.txt", task.path.join("sub/to-a"))?;
        assert!(matches!(
            f.iso.finish(&task, "")?,
            MergeOutcome::Merged { .. }
        ));
        assert_eq!(get(&f.root, "sub/to-a")?, "a\nb\nc\n");
        Ok(())
    }

    #[test]
    fn list_clean_drop_and_merge_leftovers() -> TestResult {
        let f = fixture()?;
        let empty = f.iso.create("empty", dead()?)?;
        let kept = f.iso.create("kept", dead()?)?;
        let changed = f.iso.create("changed", dead()?)?;
        let mine = f.iso.create("mine", me())?;
        put(&kept.path, "kept.txt", "kept\n")?;
        f.iso.keep(&kept, "cancelled")?;
        put(&changed.path, "changed.txt", "uncommitted\n")?;

        let list = f.iso.list()?;
        let by_name = |n: &str| -> Result<Entry, Box<dyn Error>> {
            Ok(list
                .iter()
                .find(|e| e.name == n)
                .ok_or("task missing from list")?
                .clone())
        };
        assert_eq!(by_name(&kept.name)?.state, State::Kept);
        assert_eq!(
            by_name(&kept.name)?.changed,
            vec![PathBuf::from("kept.txt")]
        );
        assert_eq!(
            by_name(&changed.name)?.changed,
            vec![PathBuf::from("changed.txt")]
        );
        assert!(by_name(&mine.name)?.alive && !by_name(&empty.name)?.alive);
        assert_eq!(by_name(&mine.name)?.session.as_deref(), Some("s1"));

        let cleaned = f.iso.clean(false)?;
        assert_eq!(cleaned.removed, vec![empty.name.clone()]);
        assert_eq!(cleaned.kept.len(), 3);
        assert!(
            cleaned
                .kept
                .iter()
                .any(|(n, why)| n == &changed.name && why.contains("not merged"))
        );
        assert!(serde_json::to_string(&cleaned)?.contains("removed"));
        assert!(!empty.path.exists() && !branch_exists(&f.root, &empty.branch)?);

        assert!(matches!(
            f.iso.merge(&mine.name),
            Err(IsolatorError::OwnerAlive { .. })
        ));
        assert!(matches!(
            f.iso.drop_task(&mine.name, true),
            Err(IsolatorError::OwnerAlive { .. })
        ));
        assert!(matches!(
            f.iso.drop_task(&changed.name, false),
            Err(IsolatorError::UnmergedChanges { .. })
        ));
        assert!(matches!(
            f.iso.merge("nope"),
            Err(IsolatorError::UnknownTask { .. })
        ));

        assert!(matches!(
            f.iso.merge(&kept.name)?,
            MergeOutcome::Merged { .. }
        ));
        assert_eq!(get(&f.root, "kept.txt")?, "kept\n");

        let cleaned = f.iso.clean(true)?;
        assert_eq!(cleaned.removed, vec![changed.name.clone()]);
        assert_eq!(cleaned.kept.len(), 1);
        assert!(!f.root.join("changed.txt").exists());
        let left: Vec<_> = f.iso.list()?.into_iter().map(|e| e.name).collect();
        assert_eq!(left, vec![mine.name.clone()]);
        Ok(())
    }

    #[test]
    fn stale_lock_file_does_not_block_and_a_held_lock_does() -> TestResult {
        let f = fixture()?;
        fs::write(f.iso.key_dir.join("lock"), dead()?.pid.to_string())?;
        f.iso.create("after-stale", me())?;

        let guard = f.iso.lock()?;
        let (tx, rx) = mpsc::channel();
        let iso = f.iso.clone();
        let handle =
            std::thread::spawn(move || tx.send(iso.create("blocked", me()).map(|t| t.name)));
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "create ran while the lock was held"
        );
        drop(guard);
        assert!(rx.recv_timeout(Duration::from_secs(20))?.is_ok());
        handle.join().map_err(|_| "thread panicked")??;
        let pid = fs::read_to_string(f.iso.key_dir.join("lock"))?;
        assert_eq!(pid, std::process::id().to_string());
        Ok(())
    }

    #[test]
    fn works_from_a_linked_parent_worktree() -> TestResult {
        let f = fixture()?;
        let state = f._tmp.path().join("state");
        let linked = f._tmp.path().join("linked");
        Repository::open(&f.root)?.worktree("linked", &linked, None)?;
        let iso = Isolator::new(&linked, &state)?;
        assert_eq!(iso.key_dir, f.iso.key_dir);
        let task = iso.create("nested", me())?;
        put(&task.path, "from-task.txt", "hi\n")?;
        assert!(matches!(
            iso.finish(&task, "")?,
            MergeOutcome::Merged { .. }
        ));
        assert_eq!(get(&linked, "from-task.txt")?, "hi\n");
        assert!(!f.root.join("from-task.txt").exists());
        Ok(())
    }

    #[test]
    fn type_changes_replace_links_instead_of_writing_through_them() -> TestResult {
        let f = fixture()?;
        symlink("a.txt", f.root.join("ln"))?;
        let task = f.iso.create("types", me())?;
        fs::remove_file(task.path.join("ln"))?;
        put(&task.path, "ln", "now a file\n")?;
        fs::remove_file(task.path.join("b.txt"))?;
        symlink("a.txt", task.path.join("b.txt"))?;
        let outcome = f.iso.finish(&task, "")?;
        assert!(
            matches!(outcome, MergeOutcome::Merged { .. }),
            "{outcome:?}"
        );
        assert!(fs::symlink_metadata(f.root.join("ln"))?.is_file());
        assert_eq!(get(&f.root, "ln")?, "now a file\n");
        assert_eq!(get(&f.root, "a.txt")?, "a\nb\nc\n");
        assert_eq!(fs::read_link(f.root.join("b.txt"))?, PathBuf::from("a.txt"));
        Ok(())
    }

    #[test]
    fn nested_repository_in_parent() -> TestResult {
        let f = fixture()?;
        let inner = Repository::init(f.root.join("vendor/inner"))?;
        put(&f.root, "vendor/inner/x.txt", "x\n")?;
        commit_all(&inner)?;
        let task = f.iso.create("nested", me())?;
        assert!(!task.path.join("vendor/inner").exists());
        put(&task.path, "top.txt", "top\n")?;
        let outcome = f.iso.finish(&task, "")?;
        assert!(
            matches!(outcome, MergeOutcome::Merged { .. }),
            "{outcome:?}"
        );
        assert_eq!(get(&f.root, "vendor/inner/x.txt")?, "x\n");
        Ok(())
    }

    #[test]
    fn ignored_file_in_the_way_is_a_conflict_not_overwritten() -> TestResult {
        let f = fixture()?;
        put(&f.root, "debug.log", "parent's ignored log\n")?;
        let task = f.iso.create("logs", me())?;
        fs::remove_file(task.path.join(".gitignore"))?;
        put(&task.path, "debug.log", "task log\n")?;
        let outcome = f.iso.finish(&task, "")?;
        let MergeOutcome::Conflict { files, .. } = &outcome else {
            panic!("{outcome:?}")
        };
        let paths: Vec<_> = files.iter().map(|c| c.path.clone()).collect();
        assert_eq!(paths, vec![PathBuf::from("debug.log")]);
        assert_eq!(files[0].hunks[0].ours, "parent's ignored log\n");
        assert_eq!(get(&f.root, "debug.log")?, "parent's ignored log\n");
        assert!(f.root.join(".gitignore").exists());
        Ok(())
    }

    #[test]
    fn works_on_a_repository_without_commits() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let root = tmp.path().join("fresh");
        Repository::init(&root)?;
        put(&root, "draft.txt", "draft\n")?;
        let iso = Isolator::new(&root, &tmp.path().join("state"))?;
        let task = iso.create("first", me())?;
        assert_eq!(get(&task.path, "draft.txt")?, "draft\n");
        put(&task.path, "draft.txt", "final\n")?;
        assert!(matches!(
            iso.finish(&task, "")?,
            MergeOutcome::Merged { .. }
        ));
        assert_eq!(get(&root, "draft.txt")?, "final\n");
        assert!(Repository::open(&root)?.head().is_err());
        Ok(())
    }

    #[test]
    fn marker_parsing_and_link_containment() -> TestResult {
        let merged = b"a\n<<<<<<< ours\none\n=======\ntwo\n>>>>>>> theirs\nb\n<<<<<<< ours\n=======\nadded\n>>>>>>> theirs\n";
        let hunks = parse_conflict_markers(merged);
        assert_eq!(
            hunks[0],
            Hunk {
                line: 2,
                ours: "one\n".into(),
                theirs: "two\n".into()
            }
        );
        assert_eq!(
            hunks[1],
            Hunk {
                line: 4,
                ours: String::new(),
                theirs: "added\n".into()
            }
        );
        assert!(link_stays_inside(Path::new("a/b"), b"../c"));
        assert!(!link_stays_inside(Path::new("a/b"), b"../../c"));
        assert!(!link_stays_inside(Path::new("b"), b"/etc"));
        assert_eq!(sanitize("  "), "task");
        assert_eq!(sanitize("A b//c-"), "a-b-c");
        Ok(())
    }
}
