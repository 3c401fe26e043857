//! The `search` plugin: `grep` and `glob`, through the host's `search` capability.
//!
//! Bulk file I/O across the WASI boundary is about ten times slower than native, so the host walks
//! and matches the worktree (ripgrep's crates) and hands back the hits in one crossing. This plugin
//! owns the tool surface: parameters, defaults, limits and how results read. It must not walk the
//! tree itself.

use cove_plugin_sdk::search::{self, Mode, Request, Response};
use cove_plugin_sdk::{Tool, ToolError, tools};
use schemars::JsonSchema;
use serde::Deserialize;
use std::fmt::Write as _;

/// Most files `glob` lists.
const GLOB_LIMIT: u32 = 100;
/// Default cap on output lines/entries for `grep` when head_limit is not given.
const GREP_DEFAULT_LIMIT: u32 = 500;
/// Most context lines around a match: more is a file read, not a search.
const MAX_CONTEXT: u32 = 50;

#[derive(Deserialize, JsonSchema, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum OutputMode {
    /// Matching lines (with -n line numbers and -A/-B/-C context).
    Content,
    /// Paths of files that match (default).
    #[default]
    FilesWithMatches,
    /// Number of matching lines per file.
    Count,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GrepInput {
    /// Regular expression to search for (ripgrep syntax).
    pattern: String,
    /// File or directory to search, absolute or relative to the worktree (default: the worktree).
    #[serde(default)]
    path: Option<String>,
    /// Only search files matching this glob, e.g. `*.rs` or `src/**/*.{ts,tsx}`.
    #[serde(default)]
    glob: Option<String>,
    /// Only search files of this ripgrep type, e.g. `rust`, `py`, `js`.
    #[serde(default, rename = "type")]
    file_type: Option<String>,
    /// content, files_with_matches (default) or count.
    #[serde(default)]
    output_mode: OutputMode,
    /// Case-insensitive search.
    #[serde(default, rename = "-i")]
    case_insensitive: bool,
    /// Show line numbers in content mode (default true).
    #[serde(default, rename = "-n")]
    line_numbers: Option<bool>,
    /// Lines of context after each match (content mode, at most 50).
    #[serde(default, rename = "-A")]
    after: Option<u32>,
    /// Lines of context before each match (content mode, at most 50).
    #[serde(default, rename = "-B")]
    before: Option<u32>,
    /// Lines of context before and after each match (content mode, at most 50).
    #[serde(default, rename = "-C")]
    context: Option<u32>,
    /// Let patterns span lines and `.` match newlines.
    #[serde(default)]
    multiline: bool,
    /// Show only the first N lines or entries of the result.
    #[serde(default)]
    head_limit: Option<u32>,
}

struct Grep;
impl Tool for Grep {
    type Input = GrepInput;
    type Output = String;
    const NAME: &'static str = "grep";
    const DESCRIPTION: &'static str = "Search file contents with a regular expression (ripgrep). Honours .gitignore. \
        output_mode: files_with_matches (default, newest first), content (matching lines, -n/-A/-B/-C), or count.";
    const READ_ONLY: bool = true;

    fn run(input: GrepInput) -> Result<String, ToolError> {
        let limit = input
            .head_limit
            .filter(|l| *l > 0)
            .unwrap_or(GREP_DEFAULT_LIMIT);
        let mode = match input.output_mode {
            OutputMode::Content => Mode::Content,
            OutputMode::FilesWithMatches => Mode::FilesWithMatches,
            OutputMode::Count => Mode::Count,
        };
        let content = input.output_mode == OutputMode::Content;
        let req = Request {
            mode,
            pattern: input.pattern,
            path: input.path.unwrap_or_else(|| ".".into()),
            globs: input.glob.into_iter().collect(),
            file_types: input.file_type.into_iter().collect(),
            case_insensitive: input.case_insensitive,
            multiline: input.multiline,
            before_context: if content {
                input.before.or(input.context).unwrap_or(0).min(MAX_CONTEXT)
            } else {
                0
            },
            after_context: if content {
                input.after.or(input.context).unwrap_or(0).min(MAX_CONTEXT)
            } else {
                0
            },
            hidden: false,
            max_files: if content { 0 } else { limit },
            max_lines: if content { limit } else { 0 },
        };
        let resp = search::run(&req).map_err(ToolError::InvalidInput)?;
        Ok(render_grep(
            &resp,
            input.output_mode,
            input.line_numbers.unwrap_or(true),
            limit,
        ))
    }
}

fn render_grep(resp: &Response, mode: OutputMode, numbers: bool, limit: u32) -> String {
    let mut out = String::new();
    if resp.files.is_empty() {
        out.push_str("No matches found\n");
    }
    match mode {
        OutputMode::FilesWithMatches => {
            let mut files: Vec<_> = resp.files.iter().collect();
            files.sort_by(|a, b| {
                b.mtime_ms
                    .cmp(&a.mtime_ms)
                    .then_with(|| a.path.cmp(&b.path))
            });
            for f in files {
                out.push_str(&f.path);
                out.push('\n');
            }
        }
        OutputMode::Count => {
            for f in &resp.files {
                let _ = writeln!(out, "{}:{}", f.path, f.matches);
            }
        }
        OutputMode::Content => {
            for f in &resp.files {
                let mut prev: Option<u64> = None;
                for line in &f.lines {
                    if prev.is_some_and(|p| line.number > p + 1) {
                        out.push_str("--\n");
                    }
                    prev = Some(line.number);
                    let sep = if line.context { '-' } else { ':' };
                    if numbers {
                        let _ = writeln!(out, "{}{sep}{}{sep}{}", f.path, line.number, line.text);
                    } else {
                        let _ = writeln!(out, "{}{sep}{}", f.path, line.text);
                    }
                }
            }
        }
    }
    if resp.truncated {
        let _ = writeln!(
            out,
            "(results cut at {limit}; narrow the search or raise head_limit)"
        );
    }
    for err in resp.errors.iter().take(5) {
        let _ = writeln!(out, "(skipped: {err})");
    }
    out
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GlobInput {
    /// Glob to match file paths against, e.g. `**/*.rs` or `src/**/*.ts`.
    pattern: String,
    /// Directory to search in, absolute or relative to the worktree (default: the worktree).
    #[serde(default)]
    path: Option<String>,
}

struct Glob;
impl Tool for Glob {
    type Input = GlobInput;
    type Output = String;
    const NAME: &'static str = "glob";
    const DESCRIPTION: &'static str = "Find files by name with a glob pattern such as `**/*.rs`. Honours .gitignore. \
        Returns paths, most recently modified first.";
    const READ_ONLY: bool = true;

    fn run(input: GlobInput) -> Result<String, ToolError> {
        let req = Request {
            mode: Mode::Files,
            pattern: String::new(),
            path: input.path.unwrap_or_else(|| ".".into()),
            globs: vec![input.pattern],
            file_types: Vec::new(),
            case_insensitive: false,
            multiline: false,
            before_context: 0,
            after_context: 0,
            hidden: false,
            max_files: 0,
            max_lines: 0,
        };
        let mut resp = search::run(&req).map_err(ToolError::InvalidInput)?;
        if resp.files.is_empty() {
            return Ok("No files found\n".into());
        }
        resp.files.sort_by(|a, b| {
            b.mtime_ms
                .cmp(&a.mtime_ms)
                .then_with(|| a.path.cmp(&b.path))
        });
        let total = resp.files.len();
        let mut out = String::new();
        for f in resp.files.iter().take(GLOB_LIMIT as usize) {
            out.push_str(&f.path);
            out.push('\n');
        }
        if total > GLOB_LIMIT as usize {
            let _ = writeln!(
                out,
                "({} more files not shown; use a more specific pattern or path)",
                total - GLOB_LIMIT as usize
            );
        }
        Ok(out)
    }
}

tools!(Grep, Glob);
