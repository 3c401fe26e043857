//! The `shell` plugin: the `bash` tool, through the host's `exec` capability.
//!
//! The host runs the command inside the OS sandbox (Landlock, namespaces, rlimits, no secrets in
//! the environment) and kills whatever it leaves behind. This plugin owns the tool surface:
//! parameters, the timeout's default and ceiling, and how stdout, stderr and the exit code read.
//! It must not try to be a wall.

use cove_plugin_sdk::exec::{self, Command};
use cove_plugin_sdk::{Tool, ToolError, tools};
use schemars::JsonSchema;
use serde::Deserialize;
use std::fmt::Write as _;

const DEFAULT_TIMEOUT_MS: u64 = 120_000;
/// Printed after the command with the directory it ended in, then cut from the output: the
/// working directory persists between calls.
const CWD_MARKER: &str = "\u{1e}cove-cwd:";
const MAX_TIMEOUT_MS: u64 = 600_000;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct BashInput {
    /// The command line, run with `bash -c` in the worktree.
    command: String,
    /// Milliseconds before the command is stopped (default 120000, at most 600000).
    #[serde(default)]
    timeout: Option<u64>,
    /// What the command does, in a few words (shown to the user).
    #[serde(default)]
    description: Option<String>,
}

struct Bash;
impl Tool for Bash {
    type Input = BashInput;
    const NAME: &'static str = "bash";
    const DESCRIPTION: &'static str = "Run a bash command in the worktree, inside a sandbox: it can write only the worktree \
        and a private tmp, has no network unless the project grants it, and is stopped at its timeout (default 2 min, \
        at most 10). Returns stdout, stderr and the exit code.";
    const READ_ONLY: bool = false;

    fn run(input: BashInput) -> Result<String, ToolError> {
        let _ = input.description;
        let timeout = input
            .timeout
            .unwrap_or(DEFAULT_TIMEOUT_MS)
            .clamp(1, MAX_TIMEOUT_MS);
        let script = format!(
            "{}\n__cove_rc=$?\nprintf '\\n{CWD_MARKER}%s' \"$(pwd -P)\"\nexit $__cove_rc",
            input.command
        );
        let cmd = Command {
            argv: vec!["bash".into(), "-c".into(), script],
            cwd: String::new(),
            env: Vec::new(),
            stdin: None,
            timeout_ms: timeout as u32,
        };
        let out = exec::run(&cmd).map_err(ToolError::Failed)?;
        let mut text = out.stdout;
        let mut moved = None;
        if let Some(at) = text.rfind(CWD_MARKER) {
            let dir = text[at + CWD_MARKER.len()..].trim_end().to_string();
            text.truncate(at);
            // The newline before the marker was ours.
            text.pop();
            moved = Some(exec::set_session_cwd(&dir));
        }
        if !out.stderr.is_empty() {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            let _ = write!(text, "[stderr]\n{}", out.stderr);
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        if out.truncated {
            text.push_str(
                "[output cut at the host's cap; redirect to a file and read parts of it]\n",
            );
        }
        if out.timed_out {
            let _ = writeln!(
                text,
                "[timed out after {timeout} ms; the command and everything it started were stopped]"
            );
        } else {
            match out.exit_code {
                Some(0) => {}
                Some(code) => {
                    let _ = writeln!(text, "[exit code {code}]");
                }
                None => text.push_str("[killed]\n"),
            }
        }
        if let Some(Err(e)) = moved {
            let _ = writeln!(text, "[{e}]");
        }
        if text.is_empty() {
            text.push_str("(no output)\n");
        }
        Ok(text)
    }
}

tools!(Bash);
