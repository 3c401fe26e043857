//! The multi-agent layer's shared parts: the worktree isolator (one git worktree and branch per
//! task, merged back when it ends). Must not run the loop (that is `agent`).

pub mod isolator;
