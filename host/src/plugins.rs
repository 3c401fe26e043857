//! Plugins: what a component is (`manifest`, `contract`), which ones exist for a worktree and
//! what they are granted (`registry`), the ones built into the binary (`builtin`), and every line
//! of wasmtime glue (`runtime`).
//!
//! Must not run the loop or decide whether a call may run (that is `agent::policy`).

pub mod builtin;
pub mod contract;
pub mod manifest;
pub mod registry;
pub mod runtime;
pub mod trust;
