//! The built-in plugins, compiled into the binary by build.rs.
//!
//! Owns nothing but the embedded bytes; the registry decides what to do with them.

include!(concat!(env!("OUT_DIR"), "/builtin.rs"));
