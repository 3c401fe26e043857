//! A test guest that misbehaves on purpose: loops, eats memory, panics, floods output, and probes
//! the filesystem walls. Built exactly like a real plugin (the public SDK, wasm32-wasip2).

use cove_plugin_sdk::{Tool, ToolError, tools};
use schemars::JsonSchema;
use serde::Deserialize;
use std::fs;

#[derive(Deserialize, JsonSchema)]
struct Empty {}

struct Spin;
impl Tool for Spin {
    type Input = Empty;
    const NAME: &'static str = "spin";
    const DESCRIPTION: &'static str = "Loop forever.";
    const READ_ONLY: bool = true;
    fn run(_: Empty) -> Result<String, ToolError> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

struct Hog;
impl Tool for Hog {
    type Input = Empty;
    const NAME: &'static str = "hog";
    const DESCRIPTION: &'static str = "Allocate memory until stopped.";
    const READ_ONLY: bool = true;
    fn run(_: Empty) -> Result<String, ToolError> {
        let mut keep: Vec<Vec<u8>> = Vec::new();
        loop {
            keep.push(vec![1u8; 16 << 20]);
            std::hint::black_box(&keep);
        }
    }
}

struct Boom;
impl Tool for Boom {
    type Input = Empty;
    const NAME: &'static str = "boom";
    const DESCRIPTION: &'static str = "Panic.";
    const READ_ONLY: bool = true;
    fn run(_: Empty) -> Result<String, ToolError> {
        panic!("deliberate panic from the boom tool")
    }
}

#[derive(Deserialize, JsonSchema)]
struct FloodInput {
    bytes: usize,
}

struct Flood;
impl Tool for Flood {
    type Input = FloodInput;
    const NAME: &'static str = "flood";
    const DESCRIPTION: &'static str = "Return this many bytes of output.";
    const READ_ONLY: bool = true;
    fn run(input: FloodInput) -> Result<String, ToolError> {
        let line = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n";
        Ok(line.repeat(input.bytes / line.len() + 1))
    }
}

#[derive(Deserialize, JsonSchema)]
struct ProbeInput {
    /// read | write | append | mkdir | symlink | hardlink | rename | remove | list
    op: String,
    path: String,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    content: Option<String>,
}

struct Probe;
impl Tool for Probe {
    type Input = ProbeInput;
    const NAME: &'static str = "probe";
    const DESCRIPTION: &'static str = "Try one filesystem operation and report what happened.";
    const READ_ONLY: bool = false;
    fn run(input: ProbeInput) -> Result<String, ToolError> {
        let p = input.path.as_str();
        let target = input.target.as_deref().unwrap_or("");
        let io = |e: std::io::Error| ToolError::Denied(format!("{} {p}: {e}", input.op));
        match input.op.as_str() {
            "read" => fs::read_to_string(p).map_err(io),
            "write" => fs::write(p, input.content.unwrap_or_default())
                .map(|_| "written".into())
                .map_err(io),
            "append" => {
                use std::io::Write;
                let mut f = fs::OpenOptions::new().append(true).open(p).map_err(io)?;
                f.write_all(input.content.unwrap_or_default().as_bytes())
                    .map_err(io)?;
                Ok("appended".into())
            }
            "mkdir" => fs::create_dir_all(p).map(|_| "made".into()).map_err(io),
            "symlink" => symlink(target, p).map(|_| "linked".into()).map_err(io),
            "hardlink" => fs::hard_link(target, p)
                .map(|_| "linked".into())
                .map_err(io),
            "rename" => fs::rename(p, target).map(|_| "renamed".into()).map_err(io),
            "remove" => fs::remove_file(p).map(|_| "removed".into()).map_err(io),
            "list" => {
                let mut names: Vec<String> = fs::read_dir(p)
                    .map_err(io)?
                    .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                    .collect();
                names.sort();
                Ok(names.join("\n"))
            }
            other => Err(ToolError::InvalidInput(format!("unknown op {other}"))),
        }
    }
}

/// `symlink(2)` from wasi-libc (std's wrapper is unstable on WASI).
fn symlink(target: &str, link: &str) -> std::io::Result<()> {
    use std::ffi::{CString, c_char, c_int};
    unsafe extern "C" {
        fn symlink(target: *const c_char, link: *const c_char) -> c_int;
    }
    let t = CString::new(target).map_err(std::io::Error::other)?;
    let l = CString::new(link).map_err(std::io::Error::other)?;
    // SAFETY: both pointers are valid NUL-terminated strings for the duration of the call.
    if unsafe { symlink(t.as_ptr(), l.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

tools!(Spin, Hog, Boom, Flood, Probe);
