//! The agent's worktree: the one directory tree tools may touch.
//!
//! Owns finding the root of the git worktree around a directory, and the cap-std handle that host
//! code uses to touch it on a plugin's behalf. Must not hand out raw paths for host-side I/O: all of
//! it goes through [`Worktree::dir`], which cannot reach outside the root.

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Errors finding or opening a worktree.
#[derive(Debug, thiserror::Error)]
pub enum WorktreeError {
    #[error(
        "{0} is not inside a git repository; cove confines tools to a git worktree (run `git init`, or pass --worktree DIR)"
    )]
    NotGit(PathBuf),
    #[error("cannot open worktree {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// An open worktree: its canonical root and a capability handle on it.
#[derive(Clone, Debug)]
pub struct Worktree {
    root: PathBuf,
    dir: Arc<Dir>,
}

impl Worktree {
    /// Find the git worktree that contains `start` (the nearest ancestor holding `.git`).
    ///
    /// # Errors
    /// [`WorktreeError::NotGit`] when no ancestor has `.git`; `Open` when it cannot be opened.
    pub fn discover(start: &Path) -> Result<Self, WorktreeError> {
        let start = start.canonicalize().map_err(|source| WorktreeError::Open {
            path: start.to_path_buf(),
            source,
        })?;
        let root = start
            .ancestors()
            .find(|dir| dir.join(".git").exists())
            .ok_or_else(|| WorktreeError::NotGit(start.clone()))?;
        Self::open(root)
    }

    /// Open `root` as a worktree as it is (no git check).
    ///
    /// # Errors
    /// [`WorktreeError::Open`] when the directory cannot be opened.
    pub fn open(root: &Path) -> Result<Self, WorktreeError> {
        let root = root.canonicalize().map_err(|source| WorktreeError::Open {
            path: root.to_path_buf(),
            source,
        })?;
        let dir = Dir::open_ambient_dir(&root, ambient_authority()).map_err(|source| {
            WorktreeError::Open {
                path: root.clone(),
                source,
            }
        })?;
        Ok(Self {
            root,
            dir: Arc::new(dir),
        })
    }

    /// The canonical root path. Plugins see the worktree at this same path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The capability handle rooted at the worktree.
    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    /// `path` (relative to the root, or absolute under it) as a path relative to the root, without
    /// touching the disk. `None` when it leaves the root lexically (`..` above it, or another absolute
    /// path). Symlinks are the job of [`Worktree::dir`], which refuses to follow them out.
    pub fn relative(&self, path: &str) -> Option<PathBuf> {
        let p = Path::new(path);
        let rel = if p.is_absolute() {
            p.strip_prefix(&self.root).ok()?
        } else {
            p
        };
        let mut out = PathBuf::new();
        for c in rel.components() {
            match c {
                Component::Normal(n) => out.push(n),
                Component::CurDir => {}
                Component::ParentDir => {
                    if !out.pop() {
                        return None;
                    }
                }
                Component::RootDir | Component::Prefix(_) => return None,
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_stay_inside() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let wt = Worktree::open(tmp.path())?;
        let root = wt.root().to_string_lossy().into_owned();
        assert_eq!(wt.relative("a/b"), Some(PathBuf::from("a/b")));
        assert_eq!(wt.relative("a/../b"), Some(PathBuf::from("b")));
        assert_eq!(wt.relative("."), Some(PathBuf::new()));
        assert_eq!(wt.relative(&format!("{root}/x")), Some(PathBuf::from("x")));
        assert_eq!(wt.relative(&root), Some(PathBuf::new()));
        assert_eq!(wt.relative("../x"), None);
        assert_eq!(wt.relative("a/../../x"), None);
        assert_eq!(wt.relative("/etc/passwd"), None);
        assert_eq!(wt.relative(&format!("{root}/../x")), None);
        Ok(())
    }
}
