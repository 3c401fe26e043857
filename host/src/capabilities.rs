//! What the host offers plugins natively, behind their grants: `search` (walk and match the
//! worktree), `ast` (tree-sitter parsing: outlines, queries, finding a name) and `memory` (the
//! memory store). Each capability works on a [`crate::worktree::Worktree`] and never reaches past
//! it, except `memory`'s user scope, which appends to one file in cove's own config directory
//! (granted to built-in plugins only).
//!
//! Must not know about wasmtime: `plugins::runtime` binds these to the WIT contract.

pub mod ast;
pub mod memory;
pub mod search;

/// Walk `builder`'s tree on the machine's threads (at most 8): `visit` sees each regular file,
/// with the state `init` made for its thread; `error` hears each entry the walk could not read.
/// `visit` decides whether the walk goes on.
pub(crate) fn walk_files<S: Send>(
    builder: &mut ignore::WalkBuilder,
    init: impl Fn() -> S + Sync,
    error: impl Fn(String) + Sync,
    visit: impl Fn(&mut S, &std::path::Path) -> ignore::WalkState + Sync,
) {
    use ignore::WalkState;
    builder.threads(std::thread::available_parallelism().map_or(2, |n| n.get().min(8)));
    builder.build_parallel().run(|| {
        let (init, error, visit) = (&init, &error, &visit);
        let mut state = init();
        Box::new(move |entry| {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    error(e.to_string());
                    return WalkState::Continue;
                }
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return WalkState::Continue;
            }
            visit(&mut state, entry.path())
        })
    });
}
