//! What the host offers plugins natively, behind their grants: `search` (walk and match the
//! worktree) and `ast` (tree-sitter parsing: outlines, queries, finding a name). Each capability
//! works on a [`crate::worktree::Worktree`] and never reaches past it.
//!
//! Must not know about wasmtime: `plugins::runtime` binds these to the WIT contract.

pub mod ast;
pub mod search;
