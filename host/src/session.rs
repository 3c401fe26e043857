//! Sessions: one append-only JSONL transcript per session, written turn by turn with fsync.
//!
//! Owns the record format, the sessions directory, listing, and rebuilding a conversation for
//! `--resume` / `--continue`. A record is written only when its turn is whole (the assistant's
//! message together with every tool result), so Ctrl-C or kill -9 loses at most the turn in
//! flight; a torn last line is skipped on load. Must not talk to providers or run tools.

use crate::conversation::{Block, Message, Role, Usage};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// One line of a transcript.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// The first line: what the session is.
    Session {
        id: String,
        worktree: PathBuf,
        created: u64,
        provider: String,
        model: String,
    },
    /// The user's words.
    User { message: Message },
    /// One whole model turn: its message and the results of every tool it called.
    Turn {
        assistant: Message,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tool_results: Option<Message>,
        usage: Usage,
    },
    /// How a run ended.
    End { outcome: String, usage: Usage },
}

/// Errors reading or writing sessions.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot write the transcript {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no session `{0}`; `cove sessions list` shows them")]
    NotFound(String),
    #[error("no earlier session for this worktree to continue")]
    NoneToContinue,
}

/// A summary for `cove sessions list`.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    pub id: String,
    pub worktree: PathBuf,
    pub created: u64,
    pub modified: u64,
    pub title: String,
    pub turns: usize,
    pub model: String,
}

/// The sessions directory.
pub struct Store {
    dir: PathBuf,
}

/// An open transcript, appended to record by record.
pub struct Transcript {
    pub id: String,
    path: PathBuf,
    file: File,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A new session id: UTC time plus a few bytes that differ between processes.
fn new_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (y, mo, d, h, mi, s) = civil(now.as_secs());
    let salt = (now.subsec_nanos() as u64 ^ (u64::from(std::process::id()) << 20)) & 0xff_ffff;
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}-{salt:06x}")
}

/// Seconds since the epoch as UTC (year, month, day, hour, minute, second).
pub fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-from-civil, inverted.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

impl Store {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.jsonl"))
    }

    /// Start a new transcript.
    ///
    /// # Errors
    /// [`SessionError::Write`] when the directory or file cannot be created.
    pub fn create(
        &self,
        worktree: &Path,
        provider: &str,
        model: &str,
    ) -> Result<Transcript, SessionError> {
        let id = new_id();
        let path = self.path(&id);
        let werr = |source| SessionError::Write {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(werr)?;
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(werr)?;
        let mut t = Transcript {
            id: id.clone(),
            path,
            file,
        };
        t.append(&Record::Session {
            id,
            worktree: worktree.to_path_buf(),
            created: now_secs(),
            provider: provider.into(),
            model: model.into(),
        })?;
        Ok(t)
    }

    /// Reopen a transcript to append to it, with the conversation it holds.
    ///
    /// # Errors
    /// [`SessionError::NotFound`] or a read error.
    pub fn resume(&self, id: &str) -> Result<(Transcript, Vec<Message>), SessionError> {
        let path = self.path(id);
        if !path.is_file() {
            return Err(SessionError::NotFound(id.into()));
        }
        let records = read_records(&path)?;
        let werr = |source| SessionError::Write {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new().append(true).open(&path).map_err(werr)?;
        // A line torn by a crash must not swallow the next record: start on a fresh line.
        let ends_clean = std::fs::read(&path)
            .map_err(werr)?
            .last()
            .is_none_or(|b| *b == b'\n');
        if !ends_clean {
            file.write_all(b"\n").map_err(werr)?;
        }
        Ok((
            Transcript {
                id: id.into(),
                path,
                file,
            },
            conversation(&records),
        ))
    }

    /// The most recent session for `worktree`.
    ///
    /// # Errors
    /// [`SessionError::NoneToContinue`] when there is none.
    pub fn latest(&self, worktree: &Path) -> Result<String, SessionError> {
        self.list(Some(worktree))?
            .into_iter()
            .max_by_key(|s| (s.modified, s.created))
            .map(|s| s.id)
            .ok_or(SessionError::NoneToContinue)
    }

    /// Every session (for `worktree` only, when given), newest first.
    ///
    /// # Errors
    /// A read error for the directory.
    pub fn list(&self, worktree: Option<&Path>) -> Result<Vec<SessionInfo>, SessionError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(SessionError::Read {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let mut out = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "jsonl") {
                continue;
            }
            let Ok(records) = read_records(&path) else {
                continue;
            };
            let Some(Record::Session {
                id,
                worktree: wt,
                created,
                model,
                ..
            }) = records.first().cloned()
            else {
                continue;
            };
            if worktree.is_some_and(|w| w != wt) {
                continue;
            }
            let title = records
                .iter()
                .find_map(|r| match r {
                    Record::User { message } => Some(message.text()),
                    _ => None,
                })
                .unwrap_or_default();
            let title: String = title
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(60)
                .collect();
            let turns = records
                .iter()
                .filter(|r| matches!(r, Record::Turn { .. }))
                .count();
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(created, |d| d.as_secs());
            out.push(SessionInfo {
                id,
                worktree: wt,
                created,
                modified,
                title,
                turns,
                model,
            });
        }
        out.sort_by(|a, b| b.modified.cmp(&a.modified).then(b.id.cmp(&a.id)));
        Ok(out)
    }
}

/// Every record of a transcript. A line that does not parse (a write torn by a crash) is skipped.
fn read_records(path: &Path) -> Result<Vec<Record>, SessionError> {
    let file = File::open(path).map_err(|source| SessionError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| SessionError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&line) {
            Ok(r) => out.push(r),
            Err(e) => tracing::warn!(
                "{}: line {} is damaged and skipped: {e}",
                path.display(),
                n + 1
            ),
        }
    }
    Ok(out)
}

/// The conversation a transcript holds, ready to send again. Consecutive user messages are merged
/// (a prompt whose turn never finished is followed by the next prompt).
pub fn conversation(records: &[Record]) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    let push = |m: Message, out: &mut Vec<Message>| match out.last_mut() {
        Some(last) if last.role == Role::User && m.role == Role::User => {
            last.content.extend(m.content)
        }
        _ => out.push(m),
    };
    for r in records {
        match r {
            Record::User { message } => push(message.clone(), &mut out),
            Record::Turn {
                assistant,
                tool_results,
                ..
            } => {
                push(assistant.clone(), &mut out);
                if let Some(results) = tool_results {
                    push(results.clone(), &mut out);
                }
            }
            Record::Session { .. } | Record::End { .. } => {}
        }
    }
    // A conversation must not end on an assistant message that asked for tools nobody answered.
    if let Some(last) = out.last()
        && last.role == Role::Assistant
        && last
            .content
            .iter()
            .any(|b| matches!(b, Block::ToolUse { .. }))
    {
        out.pop();
    }
    out
}

impl Transcript {
    /// Append one record as one line and fsync it.
    ///
    /// # Errors
    /// [`SessionError::Write`] (a full disk, say). Earlier records are untouched.
    pub fn append(&mut self, record: &Record) -> Result<(), SessionError> {
        let werr = |source| SessionError::Write {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_string(record).map_err(|e| werr(std::io::Error::other(e)))?;
        line.push('\n');
        self.file.write_all(line.as_bytes()).map_err(werr)?;
        self.file.sync_data().map_err(werr)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(1_795_000_000), (2026, 11, 18, 11, 6, 40));
    }

    #[test]
    fn a_torn_last_line_loses_only_itself() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::new(dir.path().to_path_buf());
        let mut t = store.create(Path::new("/w"), "scripted", "m")?;
        t.append(&Record::User {
            message: Message::user_text("hello"),
        })?;
        let reply = Message {
            role: Role::Assistant,
            content: vec![Block::Text { text: "hi".into() }],
        };
        t.append(&Record::Turn {
            assistant: reply.clone(),
            tool_results: None,
            usage: Usage::default(),
        })?;
        let id = t.id.clone();
        let path = t.path().to_path_buf();
        drop(t);
        let mut f = OpenOptions::new().append(true).open(&path)?;
        f.write_all(b"{\"type\":\"turn\",\"assistant\":{\"role\":\"assis")?;
        let (mut t, msgs) = store.resume(&id)?;
        assert_eq!(msgs, vec![Message::user_text("hello"), reply.clone()]);
        t.append(&Record::User {
            message: Message::user_text("again"),
        })?;
        let (_, msgs) = store.resume(&id)?;
        assert_eq!(
            msgs,
            vec![
                Message::user_text("hello"),
                reply,
                Message::user_text("again")
            ]
        );
        let list = store.list(Some(Path::new("/w")))?;
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].title, "hello");
        assert_eq!(store.latest(Path::new("/w"))?, id);
        assert!(store.list(Some(Path::new("/other")))?.is_empty());
        Ok(())
    }
}
