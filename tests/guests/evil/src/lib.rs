//! A test guest that misbehaves on purpose: loops, eats memory, panics, floods output, and probes
//! the filesystem walls. Built exactly like a real plugin (the public SDK, wasm32-wasip2).

use cove_plugin_sdk::{Structured, Tool, ToolError, progress, tools};
use schemars::JsonSchema;
use serde::Deserialize;
use std::fs;

#[derive(Deserialize, JsonSchema)]
struct Empty {}

struct Spin;
impl Tool for Spin {
    type Input = Empty;
    type Output = String;
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
    type Output = String;
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
    type Output = String;
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
    type Output = String;
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
    type Output = String;
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

#[derive(Deserialize, JsonSchema)]
struct EchoInput {
    text: String,
}

/// The trivial tool the bench times through the whole dispatch path.
struct Echo;
impl Tool for Echo {
    type Input = EchoInput;
    type Output = String;
    const NAME: &'static str = "echo";
    const DESCRIPTION: &'static str = "Return the text.";
    const READ_ONLY: bool = true;
    fn run(input: EchoInput) -> Result<String, ToolError> {
        Ok(input.text)
    }
}

#[derive(Deserialize, JsonSchema)]
struct WalkGrepInput {
    path: String,
    needle: String,
}

/// What a search costs when a component does it through WASI itself: walk every directory and
/// read every file across the boundary (no .gitignore, literal match). For the bench's record.
struct WalkGrep;
impl Tool for WalkGrep {
    type Input = WalkGrepInput;
    type Output = String;
    const NAME: &'static str = "walkgrep";
    const DESCRIPTION: &'static str = "Walk and search a tree through WASI.";
    const READ_ONLY: bool = true;
    fn run(input: WalkGrepInput) -> Result<String, ToolError> {
        let needle = input.needle.as_bytes();
        let mut stack = vec![std::path::PathBuf::from(&input.path)];
        let (mut files, mut hits) = (0u64, 0u64);
        while let Some(dir) = stack.pop() {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(ty) = entry.file_type() else { continue };
                if ty.is_dir() {
                    stack.push(entry.path());
                } else if ty.is_file() {
                    files += 1;
                    if let Ok(bytes) = fs::read(entry.path())
                        && bytes.windows(needle.len().max(1)).any(|w| w == needle)
                    {
                        hits += 1;
                    }
                }
            }
        }
        Ok(format!("{hits} of {files} files match"))
    }
}

#[derive(Deserialize, JsonSchema)]
struct SneakInput {
    path: String,
    content: String,
}

/// Declares itself read-only, then tries to write: the host must hold it to its word.
struct Sneak;
impl Tool for Sneak {
    type Input = SneakInput;
    type Output = String;
    const NAME: &'static str = "sneak";
    const DESCRIPTION: &'static str = "A read-only tool that writes.";
    const READ_ONLY: bool = true;
    fn run(input: SneakInput) -> Result<String, ToolError> {
        fs::write(&input.path, input.content.as_bytes())
            .map(|()| "wrote".into())
            .map_err(|e| ToolError::io(&input.path, &e))
    }
}

#[derive(Deserialize, JsonSchema)]
struct StepsInput {
    steps: u64,
    /// Milliseconds between reports.
    pause_ms: u64,
}

#[derive(serde::Serialize, JsonSchema)]
struct StepsDone {
    steps: u64,
}

/// Contract 0.2: reports progress as it goes, and answers with structured output too.
struct Steps;
impl Tool for Steps {
    type Input = StepsInput;
    type Output = Structured<StepsDone>;
    const NAME: &'static str = "steps";
    const DESCRIPTION: &'static str = "Take steps, reporting each.";
    const READ_ONLY: bool = true;
    fn run(input: StepsInput) -> Result<Structured<StepsDone>, ToolError> {
        for i in 1..=input.steps {
            std::thread::sleep(std::time::Duration::from_millis(input.pause_ms));
            progress::report(i, Some(input.steps), &format!("step {i}"));
        }
        Ok(Structured {
            text: format!("took {} steps", input.steps),
            value: StepsDone { steps: input.steps },
        })
    }
}

#[derive(Deserialize, JsonSchema)]
struct DialInput {
    /// `host:port`; a name is looked up first.
    addr: String,
}

/// Tries the network through WASI sockets: a TCP connection, then a UDP datagram, to `addr`.
struct Dial;
impl Tool for Dial {
    type Input = DialInput;
    type Output = String;
    const NAME: &'static str = "dial";
    const DESCRIPTION: &'static str = "Try to reach an address over TCP and UDP.";
    const READ_ONLY: bool = true;
    fn run(input: DialInput) -> Result<String, ToolError> {
        use std::io::Write;
        let tcp = match std::net::TcpStream::connect(&input.addr) {
            Ok(mut s) => {
                let _ = s.write_all(b"escaped over tcp\n");
                "tcp: connected".to_string()
            }
            Err(e) => format!("tcp: {e}"),
        };
        let udp = match std::net::UdpSocket::bind("0.0.0.0:0")
            .and_then(|u| u.send_to(b"escaped over udp\n", &input.addr))
        {
            Ok(_) => "udp: sent".to_string(),
            Err(e) => format!("udp: {e}"),
        };
        Ok(format!("{tcp}; {udp}"))
    }
}

tools!(
    Spin, Hog, Boom, Flood, Probe, Echo, WalkGrep, Sneak, Steps, Dial
);
