//! End-to-end tests: the real `cove` binary and the real components, in temporary git repositories.
//! One binary (submodules below) keeps link time down.

mod cli;
mod faults;
mod fs_tools;
mod sandbox;
mod search_tools;
mod support;
