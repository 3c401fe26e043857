//! cove: a coding-agent host whose tools are sandboxed WebAssembly components.
//!
//! Read the modules by name: [`manifest`] (what a plugin asks for), [`config`] (what the user and
//! project allow), [`registry`] (which plugins and tools exist here), [`runtime`] (all wasmtime
//! glue), [`search`] (the host's native search capability), [`dispatch`] (one tool call, from JSON
//! input to result), [`contract`] (WIT versions), [`worktree`] (the tree tools may touch),
//! [`agent`] (the master loop), [`provider`] (model APIs), [`conversation`] (messages),
//! [`session`] (JSONL transcripts), [`context`] (system prompt, memory files), [`cache`]
//! (token and cost accounting).

pub mod agent;
pub mod builtin;
pub mod cache;
pub mod config;
pub mod context;
pub mod contract;
pub mod conversation;
pub mod dispatch;
pub mod manifest;
pub mod paths;
pub mod policy;
pub mod provider;
pub mod registry;
pub mod runtime;
pub mod sandbox;
pub mod search;
pub mod session;
pub mod ui;
pub mod worktree;
