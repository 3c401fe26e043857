//! The multi-agent layer's shared parts: the worktree isolator (one git worktree and branch per
//! task, merged back when it ends), and teammates: the protocol's messages, the mailbox (in
//! memory, or Redis Streams), the protocol state machine, each member's post office, the `ask`
//! and `send` tools and the members themselves. Must not run the loop (that is `agent`).

pub mod fsm;
pub mod isolator;
pub mod mailbox;
pub mod member;
pub mod message;
pub mod post;
pub mod roster;
pub mod tools;
