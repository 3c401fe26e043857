//! WASI for plugins, with `.git` and `.cove` read-only wherever a path really leads.
//!
//! A plugin with read-write access to the worktree must still not plant `.git/hooks/pre-commit`,
//! rewrite `.git/config` (or a linked worktree's `.git` pointer file), or grant itself capabilities
//! in `.cove/`. WASI cannot leave a subdirectory out of a preopen, so this module links standard
//! wasmtime-wasi and then shadows the `wasi:filesystem/types` functions that change something.
//!
//! The decision is made on the resolved location, not on the path string: each mutating call
//! opens the parent directory of its path beneath the caller's descriptor (following links the way
//! the kernel would, and never out of the preopen, through cap-std), checks that directory and its
//! ancestors by identity (device and inode) against the protected directories, checks the final
//! entry too (a hard link to a protected file, the `.git` pointer file), and then performs the call
//! on that very directory handle with the final link not followed. A link swapped in between the
//! check and the call therefore cannot redirect it: the call fails instead.
//!
//! Owns only that check. Must not relax any wasmtime-wasi confinement: every call that passes goes
//! to wasmtime-wasi's own implementation.

use super::StoreState;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::{Descriptor, Dir, WasiFilesystemView};
use wasmtime_wasi::p2::FsError;
use wasmtime_wasi::p2::bindings::sync::filesystem::types::{
    DescriptorFlags, ErrorCode, HostDescriptor, NewTimestamp, OpenFlags, PathFlags,
};

/// The WASI filesystem interface as wasmtime-wasi 48 names it.
const TYPES: &str = "wasi:filesystem/types@0.2.12";

/// Directories no plugin may change: git's (a planted hook runs outside every sandbox) and
/// cove's own (a plugin must not grant itself capabilities or switch its policy).
pub const PROTECTED: &[&str] = &[".git", ".cove"];

/// Most links followed while resolving one path (the kernel's own limit is 40).
const MAX_LINKS: usize = 40;

/// A file's identity: device and inode.
type Id = (u64, u64);

fn id_of(fd: impl AsFd) -> std::io::Result<Id> {
    let st = rustix::fs::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// What one call protects: the identity of the worktree's root, taken when the call starts, and
/// those of its `.git` and `.cove`, taken the first time the call asks to change anything (a call
/// that only reads never pays for them). Both are of the worktree as it is during this call.
#[derive(Debug, Default)]
pub struct Guard {
    root: Option<Id>,
    root_path: Option<PathBuf>,
    protected: OnceLock<Vec<(Id, PathBuf)>>,
}

impl Guard {
    /// The guard for a worktree at `root`.
    pub fn new(root: &Path) -> Self {
        let root_id = std::fs::metadata(root).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        });
        Self {
            root: root_id,
            root_path: Some(root.to_path_buf()),
            protected: OnceLock::new(),
        }
    }

    fn protected(&self) -> &[(Id, PathBuf)] {
        self.protected.get_or_init(|| {
            let Some(root) = &self.root_path else {
                return Vec::new();
            };
            PROTECTED
                .iter()
                .filter_map(|name| {
                    let path = root.join(name);
                    // Followed: a `.git` that is a link protects what it points at.
                    let m = std::fs::metadata(&path).ok()?;
                    use std::os::unix::fs::MetadataExt;
                    Some(((m.dev(), m.ino()), path))
                })
                .collect()
        })
    }

    /// Whether both guards were taken of the same worktree directory (not one since replaced).
    pub fn same_root(&self, other: &Guard) -> bool {
        self.root == other.root
    }

    fn is_protected(&self, id: Id) -> bool {
        self.protected().iter().any(|(p, _)| *p == id)
    }

    /// Whether `dir`, or a directory above it, is a protected one.
    fn inside(&self, dir: &File) -> std::io::Result<bool> {
        use rustix::fs::{Mode, OFlags, openat};
        let mut here = id_of(dir)?;
        let mut cur = rustix::io::dup(dir)?;
        for _ in 0..4096 {
            if self.is_protected(here) {
                return Ok(true);
            }
            if Some(here) == self.root {
                return Ok(false);
            }
            let up = openat(
                &cur,
                "..",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let up_id = id_of(&up)?;
            if up_id == here {
                return Ok(false);
            }
            here = up_id;
            cur = up;
        }
        Ok(true)
    }

    /// Whether an existing file with more than one link is one of the protected files, reached
    /// through a hard link made elsewhere.
    fn hard_link_into(&self, id: Id) -> bool {
        fn walk(dir: &Path, id: Id, depth: usize) -> bool {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return false;
            };
            for e in entries.flatten() {
                let Ok(m) = e.metadata() else { continue };
                use std::os::unix::fs::MetadataExt;
                if (m.dev(), m.ino()) == id {
                    return true;
                }
                if m.is_dir() && depth < 64 && walk(&e.path(), id, depth + 1) {
                    return true;
                }
            }
            false
        }
        self.protected().iter().any(|(_, path)| walk(path, id, 0))
    }
}

/// A path resolved for a mutating call: the directory it lands in and the entry's name there.
struct Resolved {
    parent: File,
    name: String,
}

/// Split `path` into its parent and last component; `.`-only or empty paths name the directory.
fn split(path: &str) -> (&str, &str) {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((parent, name)) => (if parent.is_empty() { "/" } else { parent }, name),
        None => (".", trimmed),
    }
}

fn io_code(e: &std::io::Error) -> ErrorCode {
    match e.kind() {
        std::io::ErrorKind::NotFound => ErrorCode::NoEntry,
        std::io::ErrorKind::PermissionDenied => ErrorCode::NotPermitted,
        std::io::ErrorKind::NotADirectory => ErrorCode::NotDirectory,
        _ => match e.raw_os_error() {
            Some(libc::ELOOP) => ErrorCode::Loop,
            Some(libc::EXDEV) | Some(libc::EPERM) => ErrorCode::NotPermitted,
            Some(libc::EACCES) => ErrorCode::Access,
            _ => ErrorCode::Io,
        },
    }
}

/// Resolve `path` beneath `base` the way the kernel would (links followed, `..` applied to the
/// real directory), never leaving `base`. With `follow`, a link in the last component is followed
/// too, so the result names the file a write would reach.
fn resolve(base: &File, path: &str, follow: bool) -> Result<Resolved, ErrorCode> {
    let base = cap_std::fs::Dir::from_std_file(base.try_clone().map_err(|e| io_code(&e))?);
    let mut path = path.to_string();
    for _ in 0..MAX_LINKS {
        let (parent_rel, name) = split(&path);
        if parent_rel.starts_with('/') {
            // Absolute paths are refused by WASI itself; keep that answer.
            return Err(ErrorCode::NotPermitted);
        }
        let parent = base.open_dir(parent_rel).map_err(|e| io_code(&e))?;
        if follow && !name.is_empty() && name != "." && name != ".." {
            // Not a link (EINVAL) or not there (ENOENT): the name is final.
            if let Ok(target) = rustix::fs::readlinkat(&parent, name, Vec::new()) {
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    return Err(ErrorCode::NotPermitted);
                }
                path = if parent_rel == "." {
                    target
                } else {
                    format!("{parent_rel}/{target}")
                };
                continue;
            }
        }
        return Ok(Resolved {
            parent: parent.into_std_file(),
            name: name.to_string(),
        });
    }
    Err(ErrorCode::Loop)
}

impl StoreState {
    fn refuse(&self, op: &str, path: &str) -> ErrorCode {
        tracing::warn!(
            plugin = &*self.host.plugin,
            op,
            path,
            "refused: .git and .cove are read-only for plugins"
        );
        ErrorCode::NotPermitted
    }

    fn base_dir(&self, fd: &Resource<Descriptor>) -> Result<(File, Dir), ErrorCode> {
        match self.table.get(fd) {
            Ok(Descriptor::Dir(d)) => {
                let file = d.dir.try_clone().map_err(|e| io_code(&e))?;
                let template = Dir::new(
                    d.dir.try_clone().map_err(|e| io_code(&e))?,
                    d.perms,
                    d.open_mode,
                    true,
                );
                Ok((file, template))
            }
            Ok(Descriptor::File(_)) => Err(ErrorCode::NotDirectory),
            Err(_) => Err(ErrorCode::BadDescriptor),
        }
    }

    /// Resolve `path` under `fd` for a call that changes something, refusing anything inside a
    /// protected directory or naming a protected entry. Returns a descriptor for the directory
    /// the call must act on (the caller removes it from the table) and the entry's name there.
    fn guard(
        &mut self,
        op: &str,
        fd: &Resource<Descriptor>,
        path: &str,
        follow: bool,
        writes_existing: bool,
    ) -> Result<(Resource<Descriptor>, String), ErrorCode> {
        let (base, template) = self.base_dir(fd)?;
        let r = resolve(&base, path, follow)?;
        let guard = &self.host.guard;
        if path.split('/').any(|c| PROTECTED.contains(&c))
            || guard.inside(&r.parent).unwrap_or(true)
        {
            return Err(self.refuse(op, path));
        }
        let parent_id = id_of(&r.parent).map_err(|e| io_code(&e))?;
        if Some(parent_id) == guard.root && PROTECTED.contains(&r.name.as_str()) {
            return Err(self.refuse(op, path));
        }
        if !r.name.is_empty()
            && let Ok(st) = rustix::fs::statat(
                &r.parent,
                r.name.as_str(),
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
        {
            let id = (st.st_dev, st.st_ino);
            if guard.is_protected(id)
                || (writes_existing
                    && st.st_nlink > 1
                    && (st.st_mode & libc::S_IFMT) == libc::S_IFREG
                    && guard.hard_link_into(id))
            {
                return Err(self.refuse(op, path));
            }
        }
        let dir = Descriptor::Dir(Dir::new(r.parent, template.perms, template.open_mode, true));
        let res = self.table.push(dir).map_err(|_| ErrorCode::Io)?;
        Ok((res, r.name))
    }

    /// Whether a link at `path` (beneath `fd`) with this `target` would point into a protected
    /// directory: by name, with `..` applied, and by identity where the target exists.
    fn leads_into_protected(&self, fd: &Resource<Descriptor>, path: &str, target: &str) -> bool {
        let (parent_rel, _) = split(path);
        let joined = if parent_rel == "." {
            target.to_string()
        } else {
            format!("{parent_rel}/{target}")
        };
        let mut parts: Vec<&str> = Vec::new();
        for c in joined.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                c => parts.push(c),
            }
        }
        if parts.first().is_some_and(|c| PROTECTED.contains(c)) {
            return true;
        }
        let Ok((base, _)) = self.base_dir(fd) else {
            return true;
        };
        let Ok(r) = resolve(&base, &joined, true) else {
            return false;
        };
        let guard = &self.host.guard;
        if guard.inside(&r.parent).unwrap_or(true) {
            return true;
        }
        rustix::fs::statat(&r.parent, r.name.as_str(), rustix::fs::AtFlags::empty())
            .is_ok_and(|st| guard.is_protected((st.st_dev, st.st_ino)))
    }

    fn release(&mut self, res: Resource<Descriptor>) {
        let _ = self.table.delete(res);
    }

    /// One guarded call: check `(op, fd, path, follow)` as [`Self::guard`] does, run `call` on
    /// the checked directory and the last name (the last link is never followed there), then
    /// drop the directory. A refusal never reaches `call`.
    fn guarded<T>(
        &mut self,
        (op, fd, path, follow): (&str, &Resource<Descriptor>, &str, bool),
        writes_existing: bool,
        call: impl FnOnce(&mut Self, Resource<Descriptor>, String) -> Result<T, FsError>,
    ) -> wasmtime::Result<(Result<T, ErrorCode>,)> {
        let (dir, name) = match self.guard(op, fd, path, follow, writes_existing) {
            Ok(g) => g,
            Err(code) => return Ok((Err(code),)),
        };
        let r = call(self, borrow(&dir), name);
        self.release(dir);
        lower(r)
    }

    /// As [`Self::guarded`] for a call on two paths (rename, link): both are checked before
    /// `call` runs; the second is never followed.
    fn guarded_pair<T>(
        &mut self,
        (op, fd, path, follow): (&str, &Resource<Descriptor>, &str, bool),
        (op2, fd2, path2): (&str, &Resource<Descriptor>, &str),
        call: impl FnOnce(
            &mut Self,
            (Resource<Descriptor>, String),
            (Resource<Descriptor>, String),
        ) -> Result<T, FsError>,
    ) -> wasmtime::Result<(Result<T, ErrorCode>,)> {
        let (from, name) = match self.guard(op, fd, path, follow, false) {
            Ok(g) => g,
            Err(code) => return Ok((Err(code),)),
        };
        let (to, name2) = match self.guard(op2, fd2, path2, false, false) {
            Ok(g) => g,
            Err(code) => {
                self.release(from);
                return Ok((Err(code),));
            }
        };
        let r = call(self, (borrow(&from), name), (borrow(&to), name2));
        self.release(from);
        self.release(to);
        lower(r)
    }
}

/// wasmtime-wasi's result, as the component model wants it: a trap stays a trap.
fn lower<T>(r: Result<T, FsError>) -> wasmtime::Result<(Result<T, ErrorCode>,)> {
    match r {
        Ok(v) => Ok((Ok(v),)),
        Err(e) => Ok((Err(e.downcast()?.into()),)),
    }
}

type Ctx<'a> = StoreContextMut<'a, StoreState>;

/// The temporary directory descriptor made by `guard`, as the borrow wasmtime-wasi takes.
fn borrow(res: &Resource<Descriptor>) -> Resource<Descriptor> {
    Resource::new_borrow(res.rep())
}

/// Link WASI 0.2 (sync) with the guard in front of every filesystem call that changes something.
///
/// # Errors
/// When wasmtime-wasi's interfaces cannot be linked or shadowed (a version mismatch).
pub fn add_wasi_to_linker(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    linker.allow_shadowing(true);
    let mut types = linker.instance(TYPES)?;

    types.func_wrap(
        "[method]descriptor.open-at",
        |mut cx: Ctx<'_>,
         (fd, pf, path, of, df): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            let s = cx.data_mut();
            let writes = of.intersects(OpenFlags::CREATE | OpenFlags::TRUNCATE)
                || df.intersects(DescriptorFlags::WRITE | DescriptorFlags::MUTATE_DIRECTORY);
            if !writes {
                return lower(HostDescriptor::open_at(
                    &mut s.filesystem(),
                    fd,
                    pf,
                    path,
                    of,
                    df,
                ));
            }
            let follow = pf.contains(PathFlags::SYMLINK_FOLLOW);
            s.guarded(
                ("open for writing", &fd, &path, follow),
                true,
                |s, dir, name| {
                    // The last link was followed by the check; a link appearing there now fails.
                    let nofollow = pf & !PathFlags::SYMLINK_FOLLOW;
                    HostDescriptor::open_at(&mut s.filesystem(), dir, nofollow, name, of, df)
                },
            )
        },
    )?;
    types.func_wrap(
        "[method]descriptor.create-directory-at",
        |mut cx: Ctx<'_>, (fd, path): (Resource<Descriptor>, String)| {
            cx.data_mut().guarded(
                ("create directory", &fd, &path, false),
                false,
                |s, dir, name| HostDescriptor::create_directory_at(&mut s.filesystem(), dir, name),
            )
        },
    )?;
    types.func_wrap(
        "[method]descriptor.unlink-file-at",
        |mut cx: Ctx<'_>, (fd, path): (Resource<Descriptor>, String)| {
            cx.data_mut()
                .guarded(("unlink", &fd, &path, false), false, |s, dir, name| {
                    HostDescriptor::unlink_file_at(&mut s.filesystem(), dir, name)
                })
        },
    )?;
    types.func_wrap(
        "[method]descriptor.remove-directory-at",
        |mut cx: Ctx<'_>, (fd, path): (Resource<Descriptor>, String)| {
            cx.data_mut().guarded(
                ("remove directory", &fd, &path, false),
                false,
                |s, dir, name| HostDescriptor::remove_directory_at(&mut s.filesystem(), dir, name),
            )
        },
    )?;
    types.func_wrap(
        "[method]descriptor.symlink-at",
        |mut cx: Ctx<'_>, (fd, target, path): (Resource<Descriptor>, String, String)| {
            let s = cx.data_mut();
            // A link is harmless to the guard itself (writes through it are resolved), but one
            // aimed at `.git` or `.cove` is only ever a way in for something less careful.
            if s.leads_into_protected(&fd, &path, &target) {
                return Ok((Err(s.refuse("symlink to", &target)),));
            }
            s.guarded(("symlink", &fd, &path, false), false, |s, dir, name| {
                HostDescriptor::symlink_at(&mut s.filesystem(), dir, target, name)
            })
        },
    )?;
    types.func_wrap(
        "[method]descriptor.rename-at",
        |mut cx: Ctx<'_>,
         (fd, old, new_fd, new): (
            Resource<Descriptor>,
            String,
            Resource<Descriptor>,
            String,
        )| {
            cx.data_mut().guarded_pair(
                ("rename", &fd, &old, false),
                ("rename onto", &new_fd, &new),
                |s, (from, old_name), (to, new_name)| {
                    // Replacing a file keeps its permission bits: WASI has no chmod, so a plugin
                    // that writes a new version beside a script and renames it over must not
                    // lose `x`.
                    keep_mode(s, &from, &old_name, &to, &new_name);
                    HostDescriptor::rename_at(&mut s.filesystem(), from, old_name, to, new_name)
                },
            )
        },
    )?;
    types.func_wrap(
        "[method]descriptor.link-at",
        |mut cx: Ctx<'_>,
         (fd, pf, old, new_fd, new): (
            Resource<Descriptor>,
            PathFlags,
            String,
            Resource<Descriptor>,
            String,
        )| {
            let follow = pf.contains(PathFlags::SYMLINK_FOLLOW);
            // Linking a protected file elsewhere would make it writable there.
            cx.data_mut().guarded_pair(
                ("link from", &fd, &old, follow),
                ("link", &new_fd, &new),
                |s, (from, old_name), (to, new_name)| {
                    let nofollow = pf & !PathFlags::SYMLINK_FOLLOW;
                    HostDescriptor::link_at(
                        &mut s.filesystem(),
                        from,
                        nofollow,
                        old_name,
                        to,
                        new_name,
                    )
                },
            )
        },
    )?;
    types.func_wrap(
        "[method]descriptor.set-times-at",
        |mut cx: Ctx<'_>,
         (fd, pf, path, atime, mtime): (
            Resource<Descriptor>,
            PathFlags,
            String,
            NewTimestamp,
            NewTimestamp,
        )| {
            let follow = pf.contains(PathFlags::SYMLINK_FOLLOW);
            cx.data_mut()
                .guarded(("set times", &fd, &path, follow), false, |s, dir, name| {
                    let nofollow = pf & !PathFlags::SYMLINK_FOLLOW;
                    HostDescriptor::set_times_at(
                        &mut s.filesystem(),
                        dir,
                        nofollow,
                        name,
                        atime,
                        mtime,
                    )
                })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Give the file `from/old` the permission bits of the regular file it is about to replace at
/// `to/new` (nothing when there is none). Set-id bits are never carried over.
fn keep_mode(
    s: &StoreState,
    from: &Resource<Descriptor>,
    old: &str,
    to: &Resource<Descriptor>,
    new: &str,
) {
    let dir_of = |r: &Resource<Descriptor>| match s.table.get(r) {
        Ok(Descriptor::Dir(d)) => Some(d.dir.clone()),
        _ => None,
    };
    let (Some(from), Some(to)) = (dir_of(from), dir_of(to)) else {
        return;
    };
    use rustix::fs::{AtFlags, Mode, statat};
    let nofollow = AtFlags::SYMLINK_NOFOLLOW;
    let (Ok(target), Ok(source)) = (statat(&*to, new, nofollow), statat(&*from, old, nofollow))
    else {
        return;
    };
    let regular = |m: u32| (m & libc::S_IFMT) == libc::S_IFREG;
    if !(regular(target.st_mode) && regular(source.st_mode)) {
        return;
    }
    // Opened without following a link, so a swap cannot aim the chmod elsewhere.
    use rustix::fs::{OFlags, openat};
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    if let Ok(file) = openat(&*from, old, flags, Mode::empty())
        && rustix::fs::fstat(&file).is_ok_and(|st| regular(st.st_mode))
    {
        let _ = rustix::fs::fchmod(&file, Mode::from_raw_mode(target.st_mode & 0o777));
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn splits_paths_into_parent_and_name() {
        assert_eq!(split("a/b/c"), ("a/b", "c"));
        assert_eq!(split("c"), (".", "c"));
        assert_eq!(split("a/b/"), ("a", "b"));
        assert_eq!(split("/abs"), ("/", "abs"));
        assert_eq!(split("."), (".", "."));
    }
}
