//! WASI for plugins, with everything inside `.git` read-only.
//!
//! A plugin with read-write access to the worktree must still not plant `.git/hooks/pre-commit` or
//! rewrite `.git/config`: git would run that outside any sandbox on the user's next command. WASI
//! cannot leave a subdirectory out of a preopen, so this module links standard wasmtime-wasi and
//! then shadows the path-taking `wasi:filesystem/types` functions with checks that run first:
//! a path with a `.git` component, or any path under a descriptor opened inside `.git`, may be
//! read but not created, written, truncated, renamed, linked, removed or re-timed.
//!
//! Owns only that check. Must not relax any wasmtime-wasi confinement: every call that passes the
//! check goes to wasmtime-wasi's own implementation unchanged.

use super::StoreState;
use std::collections::HashSet;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::FsError;
use wasmtime_wasi::p2::bindings::sync::filesystem::preopens::Host as _;
use wasmtime_wasi::p2::bindings::sync::filesystem::types::{
    Descriptor, DescriptorFlags, ErrorCode, HostDescriptor, NewTimestamp, OpenFlags, PathFlags,
};

/// The WASI filesystem interfaces as wasmtime-wasi 48 names them.
const TYPES: &str = "wasi:filesystem/types@0.2.12";
const PREOPENS: &str = "wasi:filesystem/preopens@0.2.12";

/// Descriptors (by resource index) that were opened inside `.git`.
#[derive(Debug, Default)]
pub struct Protected(HashSet<u32>);

/// Directories no plugin may change: git's (a planted hook runs outside every sandbox) and
/// cove's own (a plugin must not grant itself capabilities or switch its policy).
const PROTECTED: &[&str] = &[".git", ".cove"];

fn names_git(path: &str) -> bool {
    path.split('/').any(|c| PROTECTED.contains(&c))
}

impl StoreState {
    fn guarded(&self, fd: &Resource<Descriptor>, path: &str) -> bool {
        names_git(path) || self.host.protected.0.contains(&fd.rep())
    }

    fn refuse(&self, op: &str, path: &str) -> ErrorCode {
        tracing::warn!(
            plugin = &*self.host.plugin,
            op,
            path,
            "refused: .git is read-only for plugins"
        );
        ErrorCode::NotPermitted
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

/// Link WASI 0.2 (sync) with the `.git` guard in front of the filesystem's mutating calls.
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
            let inside = s.guarded(&fd, &path);
            let writes = of.intersects(OpenFlags::CREATE | OpenFlags::TRUNCATE)
                || df.intersects(DescriptorFlags::WRITE | DescriptorFlags::MUTATE_DIRECTORY);
            if inside && writes {
                return Ok((Err(s.refuse("open for writing", &path)),));
            }
            let r = HostDescriptor::open_at(&mut s.filesystem(), fd, pf, path, of, df);
            if let Ok(new) = &r {
                // Resource indices are reused: record the answer for this index either way.
                if inside {
                    s.host.protected.0.insert(new.rep());
                } else {
                    s.host.protected.0.remove(&new.rep());
                }
            }
            lower(r)
        },
    )?;
    types.func_wrap(
        "[method]descriptor.create-directory-at",
        |mut cx: Ctx<'_>, (fd, path): (Resource<Descriptor>, String)| {
            let s = cx.data_mut();
            if s.guarded(&fd, &path) {
                return Ok((Err(s.refuse("create directory", &path)),));
            }
            lower(HostDescriptor::create_directory_at(
                &mut s.filesystem(),
                fd,
                path,
            ))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.unlink-file-at",
        |mut cx: Ctx<'_>, (fd, path): (Resource<Descriptor>, String)| {
            let s = cx.data_mut();
            if s.guarded(&fd, &path) {
                return Ok((Err(s.refuse("unlink", &path)),));
            }
            lower(HostDescriptor::unlink_file_at(
                &mut s.filesystem(),
                fd,
                path,
            ))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.remove-directory-at",
        |mut cx: Ctx<'_>, (fd, path): (Resource<Descriptor>, String)| {
            let s = cx.data_mut();
            if s.guarded(&fd, &path) {
                return Ok((Err(s.refuse("remove directory", &path)),));
            }
            lower(HostDescriptor::remove_directory_at(
                &mut s.filesystem(),
                fd,
                path,
            ))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.symlink-at",
        |mut cx: Ctx<'_>, (fd, target, path): (Resource<Descriptor>, String, String)| {
            let s = cx.data_mut();
            if s.guarded(&fd, &path) || names_git(&target) {
                return Ok((Err(s.refuse("symlink", &path)),));
            }
            lower(HostDescriptor::symlink_at(
                &mut s.filesystem(),
                fd,
                target,
                path,
            ))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.rename-at",
        |mut cx: Ctx<'_>, (fd, old, new_fd, new): (Resource<Descriptor>, String, Resource<Descriptor>, String)| {
            let s = cx.data_mut();
            if s.guarded(&fd, &old) || s.guarded(&new_fd, &new) {
                return Ok((Err(s.refuse("rename", &old)),));
            }
            lower(HostDescriptor::rename_at(&mut s.filesystem(), fd, old, new_fd, new))
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
            let s = cx.data_mut();
            if s.guarded(&fd, &old) || s.guarded(&new_fd, &new) {
                return Ok((Err(s.refuse("link", &old)),));
            }
            lower(HostDescriptor::link_at(
                &mut s.filesystem(),
                fd,
                pf,
                old,
                new_fd,
                new,
            ))
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
            let s = cx.data_mut();
            if s.guarded(&fd, &path) {
                return Ok((Err(s.refuse("set times", &path)),));
            }
            lower(HostDescriptor::set_times_at(
                &mut s.filesystem(),
                fd,
                pf,
                path,
                atime,
                mtime,
            ))
        },
    )?;

    let mut preopens = linker.instance(PREOPENS)?;
    preopens.func_wrap("get-directories", |mut cx: Ctx<'_>, (): ()| {
        let s = cx.data_mut();
        let dirs = s.filesystem().get_directories()?;
        for (fd, _) in &dirs {
            s.host.protected.0.remove(&fd.rep());
        }
        Ok((dirs,))
    })?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::names_git;

    #[test]
    fn finds_git_components() {
        assert!(names_git(".git"));
        assert!(names_git(".git/hooks/pre-commit"));
        assert!(names_git("src/../.git/config"));
        assert!(names_git("sub/.git"));
        assert!(!names_git(".github/workflows/ci.yml"));
        assert!(!names_git("x.git"));
        assert!(!names_git("src/git/x"));
        assert!(names_git(".cove/config.toml"));
        assert!(!names_git(".cover"));
    }
}
