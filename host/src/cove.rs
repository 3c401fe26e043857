//! cove: a coding-agent host whose tools are sandboxed WebAssembly components.
//!
//! Modules by layer, each importing only from the layers below it:
//! [`agent`] (the master loop, dispatch, the policy gate) ▸
//! [`team`] (teammates, mailboxes, task worktrees) ▸ [`mcp`] (MCP servers' tools) ▸
//! [`context`] (system prompt, memory files, token and cost accounting) ▸ [`provider`] (model
//! APIs) ▸ [`plugins`] (manifests, the registry, workspace trust, and all wasmtime glue in
//! `plugins::runtime`) ▸ [`capabilities`] (what the host offers plugins natively) ▸ [`sandbox`]
//! (the OS sandbox for commands) ▸ [`session`], [`config`], [`conversation`], [`worktree`],
//! [`paths`], [`ui`].

pub mod agent;
pub mod capabilities;
pub mod config;
pub mod context;
pub mod conversation;
pub mod mcp;
pub mod paths;
pub mod plugins;
pub mod provider;
pub mod sandbox;
pub mod session;
pub mod team;
pub mod ui;
pub mod worktree;
