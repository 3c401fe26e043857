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

/// Read `rel` under `root` as a regular file of at most `max` bytes, never following a link out
/// of `root`: what the host reads of a repository on its own account (memory files, agent
/// definitions) is held to the same wall as the plugins, so a link to a file of the user's is
/// refused, not read into a prompt.
///
/// # Errors
/// Missing, a link leading out, not a regular file, or larger than `max`.
pub fn read_within(root: &Path, rel: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let dir = Dir::open_ambient_dir(root, ambient_authority())?;
    let file = dir.open(rel)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::other(format!("larger than {max} bytes")));
    }
    Ok(bytes)
}

/// The names of the entries of folder `rel` under `root`, sorted, never following a link out of
/// `root`.
///
/// # Errors
/// Missing, a link leading out, or not a folder.
pub fn list_within(root: &Path, rel: &Path) -> std::io::Result<Vec<String>> {
    let dir = Dir::open_ambient_dir(root, ambient_authority())?;
    let mut names: Vec<String> = dir
        .read_dir(rel)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_within_refuses_links_out_and_reads_links_in()
    -> Result<(), Box<dyn std::error::Error>> {
        let outside = tempfile::tempdir()?;
        std::fs::write(outside.path().join("secret"), "top secret")?;
        let tmp = tempfile::tempdir()?;
        let root = tmp.path();
        std::fs::write(root.join("a.md"), "inside")?;
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join("out.md"))?;
        std::os::unix::fs::symlink(outside.path(), root.join("outdir"))?;
        std::os::unix::fs::symlink("a.md", root.join("in.md"))?;
        assert_eq!(read_within(root, Path::new("in.md"), 100)?, b"inside");
        assert!(read_within(root, Path::new("out.md"), 100).is_err());
        assert!(read_within(root, Path::new("outdir/secret"), 100).is_err());
        assert!(read_within(root, Path::new("../x"), 100).is_err());
        assert!(read_within(root, Path::new("a.md"), 3).is_err());
        assert!(list_within(root, Path::new("outdir")).is_err());
        assert_eq!(list_within(root, Path::new("."))?.len(), 4);
        Ok(())
    }

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
