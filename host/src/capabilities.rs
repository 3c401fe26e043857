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
