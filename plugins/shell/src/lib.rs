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

const DEFAULT_TIMEOUT_S: u64 = 120;
/// Printed after the command with the directory it ended in, then cut from the output: the
/// working directory persists between calls.
const CWD_MARKER: &str = "\u{1e}cove-cwd:";
const MAX_TIMEOUT_S: u64 = 600;
/// The shortest timeout: models pass `10` meaning milliseconds or seconds, and a build or a test
/// run stopped after a few milliseconds tells the model nothing.
const MIN_TIMEOUT_S: u64 = 5;
/// A `timeout` this large or larger is taken as milliseconds: no command needs 1000 s here,
/// and models used to the millisecond convention send 30000.
const MS_FROM: f64 = 1000.0;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct BashInput {
    /// The command line, run with `bash -c` in the worktree.
    command: String,
    /// Seconds before the command is stopped (default 120, at least 5, at most 600).
    #[serde(default)]
    timeout: Option<f64>,
    /// What the command does, in a few words (shown to the user).
    #[serde(default)]
    description: Option<String>,
}

struct Bash;
impl Tool for Bash {
    type Input = BashInput;
    type Output = String;
    const NAME: &'static str = "bash";
    const DESCRIPTION: &'static str = "Run a bash command in the worktree, inside a sandbox: it can write only the worktree \
        and a private tmp, has no network unless the project grants it, and is stopped at its timeout in seconds (default 120, \
        at most 600). Returns stdout, stderr and the exit code.";
    const READ_ONLY: bool = false;

    fn run(input: BashInput) -> Result<String, ToolError> {
        let _ = input.description;
        let timeout = timeout_ms(input.timeout);
        let script = format!(
            "{}\n__cove_rc=$?\nprintf '\\n{CWD_MARKER}%s' \"$(pwd -P)\"\nexit $__cove_rc",
            input.command
        );
        let cmd = Command {
            argv: vec!["bash".into(), "-c".into(), script],
            cwd: String::new(),
            env: Vec::new(),
            stdin: None,
            timeout_ms: u32::try_from(timeout).unwrap_or(u32::MAX),
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
                "[timed out after {} s; the command and everything it started were stopped]",
                timeout / 1000
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

/// The timeout in milliseconds for `timeout` as the model gave it: seconds, or milliseconds when
/// it is 1000 or more; at least [`MIN_TIMEOUT_S`], at most [`MAX_TIMEOUT_S`]. Nonsense (negative,
/// not a number) gets the default.
fn timeout_ms(given: Option<f64>) -> u64 {
    let ms = match given {
        Some(t) if t.is_finite() && t >= MS_FROM => t,
        Some(t) if t.is_finite() && t > 0.0 => t * 1000.0,
        _ => (DEFAULT_TIMEOUT_S * 1000) as f64,
    };
    (ms as u64).clamp(MIN_TIMEOUT_S * 1000, MAX_TIMEOUT_S * 1000)
}

tools!(Bash);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_seconds_unless_clearly_milliseconds() {
        assert_eq!(timeout_ms(None), 120_000);
        assert_eq!(timeout_ms(Some(10.0)), 10_000);
        assert_eq!(timeout_ms(Some(1.0)), 5_000);
        assert_eq!(timeout_ms(Some(0.0)), 120_000);
        assert_eq!(timeout_ms(Some(-3.0)), 120_000);
        assert_eq!(timeout_ms(Some(999.0)), 600_000);
        assert_eq!(timeout_ms(Some(1000.0)), 5_000);
        assert_eq!(timeout_ms(Some(30_000.0)), 30_000);
        assert_eq!(timeout_ms(Some(3_600_000.0)), 600_000);
        assert_eq!(timeout_ms(Some(f64::NAN)), 120_000);
    }
}
