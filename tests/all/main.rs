//! End-to-end tests: the real `cove` binary and the real components, in temporary git repositories.
//! One binary (submodules below) keeps link time down.

mod agent;
mod cli;
mod code_tools;
mod cold_start;
mod compaction;
mod contracts;
mod exec_sandbox;
mod faults;
mod fs_tools;
mod mailbox;
mod mcp;
mod mcp_conformance;
mod mcp_serve;
mod mcp_session;
mod memory;
mod mock_model;
mod plain_component;
mod plugin_dev;
mod policy;
mod sandbox;
mod search_tools;
mod skills;
mod small;
mod subagents;
mod support;
mod support_redis;
mod team;
mod trust;
