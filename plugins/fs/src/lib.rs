//! The `fs` plugin: `read`, `write`, `edit` and `ls`, over plain WASI.
//!
//! The host preopens the agent's worktree (at its real path, and as `.` for relative paths) and
//! nothing else, so every path here is confined by the runtime, not by checks in this file. This
//! plugin only decides what the tools do and how their output reads; it must not try to be a wall.

use cove_plugin_sdk::{Tool, ToolError, resolve_path, tools, write_atomic};
use schemars::JsonSchema;
use serde::Deserialize;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read};

/// Default number of lines `read` returns.
const DEFAULT_LIMIT: usize = 2000;
/// Longest line `read` shows before cutting it.
const MAX_LINE_CHARS: usize = 2000;
/// Largest file `read` returns whole without offset/limit.
const MAX_WHOLE_BYTES: u64 = 256 * 1024;
/// How many bytes are sniffed for NUL to call a file binary.
const SNIFF_BYTES: usize = 8192;
/// Most entries `ls` lists.
const MAX_LS_ENTRIES: usize = 1000;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReadInput {
    /// Path of the file, absolute or relative to the worktree.
    file_path: String,
    /// Line number to start at (1-based). Use for files too large to read at once.
    #[serde(default)]
    offset: Option<u64>,
    /// How many lines to read (default 2000; 0 means the default).
    #[serde(default)]
    limit: Option<u64>,
}

struct ReadFile;
impl Tool for ReadFile {
    type Input = ReadInput;
    type Output = String;
    const NAME: &'static str = "read";
    const DESCRIPTION: &'static str = "Read a text file. Returns numbered lines (like cat -n), at most 2000 from offset; \
        lines over 2000 characters are cut. Use offset and limit for large files.";
    const READ_ONLY: bool = true;

    fn run(input: ReadInput) -> Result<String, ToolError> {
        let path = &resolve_path(&input.file_path)?;
        let meta = fs::metadata(path).map_err(|e| ToolError::io(path, &e))?;
        if meta.is_dir() {
            return Err(ToolError::InvalidInput(format!(
                "{path} is a directory; use `ls` to list it"
            )));
        }
        let paged = input.offset.is_some() || input.limit.is_some();
        if !paged && meta.len() > MAX_WHOLE_BYTES {
            return Err(ToolError::InvalidInput(format!(
                "{path} is {} KiB, more than the {} KiB read returns at once; pass offset and limit to read it in parts, or use grep to find the lines you need",
                meta.len() / 1024,
                MAX_WHOLE_BYTES / 1024
            )));
        }
        let mut file = fs::File::open(path).map_err(|e| ToolError::io(path, &e))?;
        let mut head = vec![0u8; SNIFF_BYTES];
        let n = read_up_to(&mut file, &mut head).map_err(|e| ToolError::io(path, &e))?;
        head.truncate(n);
        if head.contains(&0) {
            return Ok(format!(
                "{path} is a binary file ({} bytes); its content is not shown",
                meta.len()
            ));
        }
        if meta.len() == 0 {
            return Ok(format!("{path} is empty"));
        }
        let reader = BufReader::new(std::io::Cursor::new(head).chain(file));
        let start = input.offset.unwrap_or(1).max(1);
        // `limit: 0` reads as "no limit given", not as "nothing".
        let limit = input
            .limit
            .filter(|l| *l > 0)
            .map_or(DEFAULT_LIMIT, |l| usize::try_from(l).unwrap_or(usize::MAX));
        let mut out = String::new();
        let mut shown = 0usize;
        let mut last = 0u64;
        for (idx, line) in reader.split(b'\n').enumerate() {
            let number = idx as u64 + 1;
            let line = line.map_err(|e| ToolError::io(path, &e))?;
            last = number;
            if number < start {
                continue;
            }
            if shown == limit {
                // Keep counting so the note below can say how long the file is.
                continue;
            }
            let text = String::from_utf8_lossy(&line);
            numbered(&mut out, number, text.strip_suffix('\r').unwrap_or(&text));
            shown += 1;
        }
        if shown == 0 {
            return Ok(format!(
                "{path} has {last} lines; offset {start} is past the end"
            ));
        }
        let end = start + shown as u64 - 1;
        if end < last {
            let _ = writeln!(
                out,
                "... ({} more lines; continue with offset {})",
                last - end,
                end + 1
            );
        }
        Ok(out)
    }
}

fn read_up_to(file: &mut fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// One line as `read` shows it: its number right-aligned in six columns, a tab, the text (cut at
/// [`MAX_LINE_CHARS`]). [`strip_read_numbers`] undoes it.
fn numbered(out: &mut String, number: u64, line: &str) {
    let _ = writeln!(out, "{number:>6}\t{}", cut_chars(line, MAX_LINE_CHARS));
}

fn cut_chars(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}… [line cut at {max} characters]", &text[..at]).into(),
        None => text.into(),
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WriteInput {
    /// Path of the file to write, absolute or relative to the worktree. Parent directories are created.
    file_path: String,
    /// The whole new content of the file.
    content: String,
}

struct WriteFile;
impl Tool for WriteFile {
    type Input = WriteInput;
    type Output = String;
    const NAME: &'static str = "write";
    const DESCRIPTION: &'static str =
        "Write a file, replacing it if it exists. Prefer `edit` for changes to an existing file.";
    const READ_ONLY: bool = false;

    fn run(mut input: WriteInput) -> Result<String, ToolError> {
        let path = &resolve_path(&input.file_path)?;
        let note = match strip_read_numbers(&input.content) {
            Some(text) => {
                input.content = text;
                "; the line numbers `read` shows were taken out of content"
            }
            None => "",
        };
        if let Some(parent) = std::path::Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            fs::create_dir_all(parent).map_err(|e| ToolError::io(&parent.to_string_lossy(), &e))?;
        }
        let existed = fs::metadata(path).is_ok();
        write_atomic(path, input.content.as_bytes()).map_err(|e| ToolError::io(path, &e))?;
        let lines = input.content.lines().count();
        Ok(format!(
            "{} {path} ({lines} lines, {} bytes{note})",
            if existed { "Overwrote" } else { "Created" },
            input.content.len()
        ))
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct EditInput {
    /// Path of the file to change, absolute or relative to the worktree.
    file_path: String,
    /// The exact text to replace, including indentation. Must occur exactly once unless replace_all.
    /// Empty creates the file with new_string when it does not exist.
    old_string: String,
    /// The text to put in its place (must differ from old_string).
    new_string: String,
    /// Replace every occurrence instead of requiring exactly one.
    #[serde(default)]
    replace_all: bool,
}

struct EditFile;
impl Tool for EditFile {
    type Input = EditInput;
    type Output = String;
    const NAME: &'static str = "edit";
    const DESCRIPTION: &'static str = "Replace exact text in a file. old_string must match exactly once (include surrounding lines to make \
        it unique) unless replace_all is set. The file is left untouched when the edit fails.";
    const READ_ONLY: bool = false;

    fn run(mut input: EditInput) -> Result<String, ToolError> {
        let path = &resolve_path(&input.file_path)?;
        let current = match fs::read(path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(ToolError::io(path, &e)),
        };
        let Some(bytes) = current else {
            if input.old_string.is_empty() && !input.new_string.is_empty() {
                return WriteFile::run(WriteInput {
                    file_path: input.file_path,
                    content: input.new_string,
                });
            }
            return Err(ToolError::InvalidInput(format!(
                "{path}: no such file{}; to create a file, use `write`",
                siblings(path)
            )));
        };
        if input.old_string == input.new_string {
            return Err(ToolError::InvalidInput(
                "old_string and new_string are the same; nothing to change".into(),
            ));
        }
        let text = String::from_utf8(bytes).map_err(|_| {
            ToolError::InvalidInput(format!(
                "{path} is not UTF-8 text; edit works on text files only"
            ))
        })?;
        if input.old_string.is_empty() {
            if !text.is_empty() {
                return Err(ToolError::InvalidInput(format!(
                    "old_string is empty but {path} already has content; give the text to replace"
                )));
            }
            write_atomic(path, input.new_string.as_bytes()).map_err(|e| ToolError::io(path, &e))?;
            return Ok(format!("Wrote {path} (it was empty)"));
        }
        let mut found = text.matches(input.old_string.as_str()).count();
        let mut note = "";
        if found == 0
            && let Some(old) = strip_read_numbers(&input.old_string)
            && text.contains(old.as_str())
        {
            // Copied from `read` with its line numbers: what was meant is plain.
            input.new_string = strip_read_numbers(&input.new_string).unwrap_or(input.new_string);
            input.old_string = old;
            found = text.matches(input.old_string.as_str()).count();
            note = " (the line numbers `read` shows were taken out of old_string and new_string)";
        }
        if found == 0 {
            let hint = if text.contains("\r\n")
                && input.old_string.contains('\n')
                && !input.old_string.contains("\r\n")
            {
                " (the file uses CRLF line endings)"
            } else {
                ""
            };
            return Err(ToolError::InvalidInput(format!(
                "old_string was not found in {path}{hint}: it must be text from {path} itself, copied exactly, including whitespace; read {path} again"
            )));
        }
        if found > 1 && !input.replace_all {
            return Err(ToolError::InvalidInput(format!(
                "old_string occurs {found} times in {path}; include more surrounding lines to make it unique, or set replace_all to change every one"
            )));
        }
        let first = text.find(input.old_string.as_str()).unwrap_or(0);
        let updated = if input.replace_all {
            text.replace(input.old_string.as_str(), &input.new_string)
        } else {
            text.replacen(input.old_string.as_str(), &input.new_string, 1)
        };
        write_atomic(path, updated.as_bytes()).map_err(|e| ToolError::io(path, &e))?;
        let mut out = format!(
            "Edited {path}: replaced {found} occurrence{}{note}\n",
            if found == 1 { "" } else { "s" }
        );
        out.push_str(&snippet(&updated, first, input.new_string.len()));
        Ok(out)
    }
}

/// `text` without the line numbers `read` puts in front of each line ([`numbered`]), when
/// every line has one and they count up by one: text copied from `read`'s output. `None` when
/// it is not such text (a file may hold numbers and tabs of its own, so anything less is kept).
fn strip_read_numbers(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut expect: Option<u64> = None;
    for line in text.split_inclusive('\n') {
        let (prefix, rest) = line.split_once('\t')?;
        let digits = prefix.trim_start_matches(' ');
        let number: u64 = digits.parse().ok()?;
        let width_ok = if digits.len() >= 6 {
            prefix.len() == digits.len()
        } else {
            prefix.len() == 6
        };
        if !width_ok || expect.is_some_and(|n| n != number) {
            return None;
        }
        expect = Some(number + 1);
        out.push_str(rest);
    }
    expect.map(|_| out)
}

/// `; the files in DIR are: a.py, b.py` naming the files beside `path` (what a model that
/// guessed a name needs), or nothing when its directory cannot be listed or holds none.
fn siblings(path: &str) -> String {
    const MAX: usize = 20;
    let dir = std::path::Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let Ok(entries) = fs::read_dir(dir) else {
        return String::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    if names.is_empty() {
        return String::new();
    }
    names.sort();
    let more = names.len() > MAX;
    names.truncate(MAX);
    format!(
        "; the files in {} are: {}{}",
        dir.display(),
        names.join(", "),
        if more { ", …" } else { "" }
    )
}

/// Numbered lines around the byte range `at..at+len` of `text`, so the model sees the result.
fn snippet(text: &str, at: usize, len: usize) -> String {
    const AROUND: usize = 3;
    let first_line = text[..at.min(text.len())].matches('\n').count();
    let end = (at + len).min(text.len());
    let last_line = first_line + text[at.min(end)..end].matches('\n').count();
    let from = first_line.saturating_sub(AROUND);
    let to = last_line + AROUND;
    let mut out = String::new();
    for (i, line) in text.lines().enumerate().skip(from).take(to - from + 1) {
        numbered(&mut out, i as u64 + 1, line);
    }
    out
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct LsInput {
    /// Directory to list, absolute or relative to the worktree (default: the worktree root).
    #[serde(default)]
    path: Option<String>,
}

struct ListDir;
impl Tool for ListDir {
    type Input = LsInput;
    type Output = String;
    const NAME: &'static str = "ls";
    const DESCRIPTION: &'static str =
        "List a directory: subdirectories first (with a trailing /), then files with their sizes.";
    const READ_ONLY: bool = true;

    fn run(input: LsInput) -> Result<String, ToolError> {
        let path = &resolve_path(
            input
                .path
                .as_deref()
                .filter(|p| !p.is_empty())
                .unwrap_or("."),
        )?;
        let entries = fs::read_dir(path).map_err(|e| ToolError::io(path, &e))?;
        let mut dirs = Vec::new();
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| ToolError::io(path, &e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            match entry.file_type() {
                Ok(t) if t.is_dir() => dirs.push(format!("{name}/")),
                Ok(t) if t.is_symlink() => files.push(format!("{name} -> (link)")),
                _ => {
                    let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                    files.push(format!("{name}  ({})", human_size(size)));
                }
            }
        }
        dirs.sort();
        files.sort();
        let total = dirs.len() + files.len();
        if total == 0 {
            return Ok(format!("{path} is empty"));
        }
        let mut out = String::new();
        for line in dirs.iter().chain(files.iter()).take(MAX_LS_ENTRIES) {
            out.push_str(line);
            out.push('\n');
        }
        if total > MAX_LS_ENTRIES {
            let _ = writeln!(
                out,
                "... and {} more entries (use glob to narrow down)",
                total - MAX_LS_ENTRIES
            );
        }
        Ok(out)
    }
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

tools!(ReadFile, WriteFile, EditFile, ListDir);
