//! cove: a coding-agent host whose tools are sandboxed WebAssembly components.
//!
//! Read the modules by name: [`manifest`] (what a plugin asks for), [`config`] (what the user and
//! project allow), [`registry`] (which plugins and tools exist here), [`runtime`] (all wasmtime
//! glue), [`search`] (the host's native search capability), [`dispatch`] (one tool call, from JSON
//! input to result), [`contract`] (WIT versions), [`worktree`] (the tree tools may touch).

pub mod builtin;
pub mod config;
pub mod contract;
pub mod dispatch;
pub mod manifest;
pub mod paths;
pub mod registry;
pub mod runtime;
pub mod search;
pub mod worktree;
