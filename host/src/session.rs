//! Sessions: one append-only JSONL transcript per session, written turn by turn with fsync.
//!
//! Owns the record format, the sessions directory, listing, and rebuilding a conversation for
//! `--resume` / `--continue`. The model's message is written before any of its calls runs, each
//! call that changes something is marked before it starts, and the results follow, so after
//! Ctrl-C, a crash or kill -9 a resumed session knows which calls ran, which were cut short and
//! which never started, and neither repeats nor forgets a side effect. A damaged line (a write
//! torn by a crash) is left out and reported. Must not talk to providers or run tools.

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
        /// A subagent's session: who started it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<Link>,
    },
    /// The user's words.
    User { message: Message },
    /// The model's message, kept before any of its tool calls runs.
    Assistant { message: Message, usage: Usage },
    /// A call that changes something is about to run.
    ToolStart { id: String, name: String },
    /// That call finished with this result (before the turn's other calls may have).
    ToolDone {
        id: String,
        content: String,
        is_error: bool,
    },
    /// The answers to the last `Assistant` message's calls, one per call.
    ToolResults { message: Message },
    /// One whole model turn: its message and the results of every tool it called (a turn
    /// without tool calls, and transcripts written before `Assistant`/`ToolResults` existed).
    Turn {
        assistant: Message,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tool_results: Option<Message>,
        usage: Usage,
    },
    /// The model loaded a skill (the `skill` tool): it stays active, and `--resume` activates
    /// it again.
    Skill { name: String },
    /// The model found these MCP tools with `tool_search`: they stay offered, and `--resume`
    /// offers them again (once their servers are up).
    Offer { tools: Vec<String> },
    /// How a run ended.
    End { outcome: String, usage: Usage },
    /// The context was compacted: from here on the conversation is `history` (what came before
    /// stays above, whole, and `recall` reaches the results taken out).
    Compaction {
        report: crate::context::compress::Report,
        history: Vec<Message>,
    },
}

/// A subagent's session, linked to the session of the agent that started it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Link {
    /// The parent's session (none when the parent keeps no transcript).
    pub session: Option<String>,
    /// The subagent's id in its tree (`main.1`).
    pub agent: String,
    pub subagent_type: String,
    pub description: String,
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

/// A transcript reopened to go on with.
pub struct Resumed {
    pub transcript: Transcript,
    pub messages: Vec<Message>,
    /// Lines left out because they are damaged, one message each, for the user.
    pub damaged: Vec<String>,
    /// Every tool result the transcript holds, by call id, when a compaction took some out of
    /// the conversation (for `recall`); empty otherwise.
    pub results: Vec<(String, String)>,
    /// Skills the session had loaded, in the order it loaded them.
    pub skills: Vec<String>,
    /// MCP tools `tool_search` had offered, in the order it offered them.
    pub offered: Vec<String>,
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
    /// The session of the agent that started this one (a subagent's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Its id in its tree, for a subagent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// The sessions directory.
#[derive(Debug, Clone)]
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

/// A new session id: UTC time plus a few bytes that differ between processes and between the
/// sessions one process starts (concurrent subagents').
fn new_id() -> String {
    static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (y, mo, d, h, mi, s) = civil(now.as_secs());
    let salt =
        (now.subsec_nanos() as u64 ^ (u64::from(std::process::id()) << 20) ^ (n << 12)) & 0xff_ffff;
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
        self.create_linked(worktree, provider, model, None)
    }

    /// Start a new transcript, a subagent's when `parent` says whose.
    ///
    /// # Errors
    /// [`SessionError::Write`] when the directory or file cannot be created.
    pub fn create_linked(
        &self,
        worktree: &Path,
        provider: &str,
        model: &str,
        parent: Option<Link>,
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
        // The new name itself must survive a crash, not only the lines written to it.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
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
            parent,
        })?;
        Ok(t)
    }

    /// Reopen a transcript to append to it, with the conversation it holds.
    ///
    /// # Errors
    /// [`SessionError::NotFound`] or a read error.
    pub fn resume(&self, id: &str) -> Result<Resumed, SessionError> {
        let path = self.path(id);
        if !path.is_file() {
            return Err(SessionError::NotFound(id.into()));
        }
        let (records, damaged) = read_records(&path)?;
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
        Ok(Resumed {
            transcript: Transcript {
                id: id.into(),
                path,
                file,
            },
            messages: conversation(&records),
            results: results(&records),
            skills: skills(&records),
            offered: offered(&records),
            damaged,
        })
    }

    /// The most recent session for `worktree`.
    ///
    /// # Errors
    /// [`SessionError::NoneToContinue`] when there is none.
    pub fn latest(&self, worktree: &Path) -> Result<String, SessionError> {
        self.list(Some(worktree))?
            .into_iter()
            .filter(|s| s.agent.is_none())
            .max_by_key(|s| (s.modified, s.created))
            .map(|s| s.id)
            .ok_or(SessionError::NoneToContinue)
    }

    /// Every session (for `worktree` only, when given, with the subagents' sessions those
    /// started wherever they worked), newest first.
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
            let Ok((records, _)) = read_records(&path) else {
                continue;
            };
            let Some(Record::Session {
                id,
                worktree: wt,
                created,
                model,
                parent,
                ..
            }) = records.first().cloned()
            else {
                continue;
            };
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
                .filter(|r| matches!(r, Record::Turn { .. } | Record::Assistant { .. }))
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
                parent: parent.as_ref().and_then(|l| l.session.clone()),
                agent: parent.map(|l| l.agent),
            });
        }
        if let Some(w) = worktree {
            let mut kept: std::collections::HashSet<String> = out
                .iter()
                .filter(|s| s.worktree == w && s.agent.is_none())
                .map(|s| s.id.clone())
                .collect();
            // A subagent's session belongs wherever its parent's does.
            loop {
                let more: Vec<String> = out
                    .iter()
                    .filter(|s| !kept.contains(&s.id))
                    .filter(|s| s.parent.as_ref().is_some_and(|p| kept.contains(p)))
                    .map(|s| s.id.clone())
                    .collect();
                if more.is_empty() {
                    break;
                }
                kept.extend(more);
            }
            out.retain(|s| kept.contains(&s.id));
        }
        out.sort_by(|a, b| b.modified.cmp(&a.modified).then(b.id.cmp(&a.id)));
        Ok(out)
    }
}

/// Every record of a transcript, and a message for each line that does not parse (a write torn
/// by a crash), which is left out.
fn read_records(path: &Path) -> Result<(Vec<Record>, Vec<String>), SessionError> {
    let file = File::open(path).map_err(|source| SessionError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    let mut damaged = Vec::new();
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
            Err(e) => damaged.push(format!(
                "{} line {} is damaged ({e}) and was left out; the file itself is unchanged",
                path.display(),
                n + 1
            )),
        }
    }
    Ok((out, damaged))
}

/// The skills a transcript records as loaded, once each, in order.
pub fn skills(records: &[Record]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in records {
        if let Record::Skill { name } = r
            && !out.contains(name)
        {
            out.push(name.clone());
        }
    }
    out
}

/// The tools a transcript records as offered by `tool_search`, once each, in order.
pub fn offered(records: &[Record]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in records {
        if let Record::Offer { tools } = r {
            for t in tools {
                if !out.contains(t) {
                    out.push(t.clone());
                }
            }
        }
    }
    out
}

/// What is known of a turn whose results were never written: the calls that started, and the
/// ones that finished with their results.
#[derive(Default)]
struct Progress {
    started: Vec<String>,
    done: Vec<(String, String, bool)>,
}

/// Answers for calls that have none because cove stopped: the result of a call that finished,
/// "interrupted" for one that had started, "not run" for the rest.
fn unanswered(assistant: &Message, progress: &Progress) -> Message {
    let content = assistant
        .tool_uses()
        .map(|(id, _, _)| match progress.done.iter().find(|(d, _, _)| d == id) {
            Some((_, content, is_error)) => Block::ToolResult {
                tool_use_id: id.to_string(),
                content: content.clone(),
                is_error: *is_error,
            },
            None => Block::ToolResult {
            tool_use_id: id.to_string(),
            content: if progress.started.iter().any(|s| s == id) {
                "interrupted: cove stopped while this call was running, so it may have partly \
                 happened; check its effects before running it again"
                    .into()
            } else {
                "not run: cove stopped before this call started".into()
            },
            is_error: true,
        },
        })
        .collect();
    Message {
        role: Role::User,
        content,
    }
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
    // The last `Assistant` message still waiting for its results, and which of its calls began.
    let mut waiting: Option<(Message, Progress)> = None;
    for r in records {
        if !matches!(
            r,
            Record::ToolStart { .. }
                | Record::ToolDone { .. }
                | Record::ToolResults { .. }
                | Record::Skill { .. }
                | Record::Offer { .. }
        ) && let Some((assistant, progress)) = waiting.take()
        {
            push(unanswered(&assistant, &progress), &mut out);
        }
        match r {
            Record::Assistant { message, .. } => {
                push(message.clone(), &mut out);
                if message.tool_uses().next().is_some() {
                    waiting = Some((message.clone(), Progress::default()));
                }
            }
            Record::ToolStart { id, .. } => {
                if let Some((_, progress)) = waiting.as_mut() {
                    progress.started.push(id.clone());
                }
            }
            Record::ToolDone {
                id,
                content,
                is_error,
            } => {
                if let Some((_, progress)) = waiting.as_mut() {
                    progress.done.push((id.clone(), content.clone(), *is_error));
                }
            }
            Record::ToolResults { message } => {
                if waiting.take().is_some() {
                    push(message.clone(), &mut out);
                }
            }
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
            Record::Compaction { history, .. } => out = history.clone(),
            Record::Session { .. }
            | Record::End { .. }
            | Record::Skill { .. }
            | Record::Offer { .. } => {}
        }
    }
    if let Some((assistant, progress)) = waiting {
        push(unanswered(&assistant, &progress), &mut out);
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

/// Every tool result in `records`, by call id, if a compaction took any out of the conversation.
fn results(records: &[Record]) -> Vec<(String, String)> {
    if !records
        .iter()
        .any(|r| matches!(r, Record::Compaction { .. }))
    {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut from = |m: &Message| {
        for b in &m.content {
            if let Block::ToolResult {
                tool_use_id,
                content,
                ..
            } = b
            {
                out.push((tool_use_id.clone(), content.clone()));
            }
        }
    };
    for r in records {
        match r {
            Record::ToolResults { message } => from(message),
            Record::Turn {
                tool_results: Some(m),
                ..
            } => from(m),
            _ => {}
        }
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
        let r = store.resume(&id)?;
        let (mut t, msgs) = (r.transcript, r.messages);
        assert_eq!(r.damaged.len(), 1, "{:?}", r.damaged);
        assert_eq!(msgs, vec![Message::user_text("hello"), reply.clone()]);
        t.append(&Record::User {
            message: Message::user_text("again"),
        })?;
        let msgs = store.resume(&id)?.messages;
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

    #[test]
    fn calls_cut_off_by_a_crash_are_answered_for_what_they_were()
    -> Result<(), Box<dyn std::error::Error>> {
        let use_ = |id: &str| Block::ToolUse {
            id: id.into(),
            name: "bash".into(),
            input: serde_json::json!({}),
        };
        let assistant = Message {
            role: Role::Assistant,
            content: vec![use_("a"), use_("b"), use_("c")],
        };
        let records = vec![
            Record::User {
                message: Message::user_text("go"),
            },
            Record::Assistant {
                message: assistant.clone(),
                usage: Usage::default(),
            },
            Record::ToolStart {
                id: "a".into(),
                name: "bash".into(),
            },
            Record::ToolDone {
                id: "a".into(),
                content: "ok".into(),
                is_error: false,
            },
            Record::ToolStart {
                id: "b".into(),
                name: "bash".into(),
            },
        ];
        let msgs = conversation(&records);
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[1], assistant);
        let answers: Vec<(&str, &str, bool)> = msgs[2]
            .content
            .iter()
            .filter_map(|b| match b {
                Block::ToolResult {
                    tool_use_id,
                    content,
                    is_error,
                } => Some((tool_use_id.as_str(), content.as_str(), *is_error)),
                _ => None,
            })
            .collect();
        assert_eq!(answers[0], ("a", "ok", false));
        assert!(answers[1].1.starts_with("interrupted") && answers[1].2);
        assert!(answers[2].1.starts_with("not run") && answers[2].2);
        Ok(())
    }
}
