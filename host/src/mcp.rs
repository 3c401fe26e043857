//! MCP (Model Context Protocol) servers: the tools of servers the user configured, next to cove's
//! own plugins.
//!
//! Owns talking to MCP servers: `config` reads what the user wrote (Claude Code's `.mcp.json`
//! and `[mcp.servers.NAME]` in cove's TOML) and edits `.mcp.json` for `cove mcp add/remove`;
//! `client` connects to one server (a child process over stdio, or a Streamable HTTP endpoint)
//! and lists and calls its tools; `hub` runs a session's servers (stdio ones in the exec
//! sandbox) and answers the loop's calls of their tools; `serve` is the other direction, cove
//! as a server offering this worktree's plugin tools to other MCP clients (`cove mcp serve`).
//!
//! Must not decide whether a server may start or a tool may run (policies and the trust prompt
//! do), build the sandbox a stdio server runs in (the caller hands `client` a ready `Command`),
//! or present tools to the model (the agent loop does, under the names from
//! [`config::qualified`]).

pub mod client;
pub mod config;
pub mod hub;
pub mod serve;
