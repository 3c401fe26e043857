//! What the user sees of a run: streamed text, a spinner, compact tool calls with a coloured diff
//! for edits (text mode), one JSON object at the end (json), or one JSON event per line
//! (stream-json).
//!
//! Owns output formats only. Must not decide anything about the run.

use crate::agent::dispatch::{ToolProgress, ToolResult};
use crate::agent::events::{Event, Evented, Relayed, Sink, Summary, Tag};
use crate::agent::policy::{Answer, Pending};
use crate::agent::{Observer, Outcome};
use crate::context::cache::{self, Ledger};
use crate::context::compress::Report;
use crate::conversation::Usage;
use serde_json::{Value, json};
use std::io::Write;
use std::time::Duration;

/// `--output-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    StreamJson,
}

/// Terminal output: text to stdout as it streams, tool activity to stderr.
pub struct Terminal {
    color: bool,
    spinner: Option<tokio::task::JoinHandle<()>>,
    spin: bool,
    at_line_start: bool,
    pub text: String,
    /// Whether a policy's question can be put to the user (interactive sessions).
    pub can_ask: bool,
    /// When a running call's progress was last shown, and whether that line is still open (on a
    /// terminal it is redrawn in place).
    progress: Option<(std::time::Instant, bool)>,
}

impl Terminal {
    pub fn new(color: bool, spin: bool) -> Self {
        Self {
            color,
            spinner: None,
            spin,
            at_line_start: true,
            text: String::new(),
            can_ask: false,
            progress: None,
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    /// Finish the model's last line of text, if it did not end with a newline (and close a
    /// progress line drawn in place).
    pub fn end_line(&mut self) {
        if let Some((_, open @ true)) = &mut self.progress {
            *open = false;
            eprintln!();
        }
        if !self.at_line_start {
            println!();
            self.at_line_start = true;
        }
    }
}

/// `s` made safe to print on a terminal: control characters (escape sequences, carriage returns,
/// C1 controls) and bidirectional overrides from the model, a tool or a server are shown as
/// `\x1b`-style escapes instead of acting on the terminal. Newlines and tabs stay.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(bad) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            out.push_str(&c.escape_unicode().to_string().replace("\\u{", "\\x{"));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The one argument worth showing for a call.
fn call_summary(name: &str, input: &Value) -> String {
    let key = ["file_path", "pattern", "path", "command"]
        .iter()
        .find_map(|k| input.get(*k).and_then(Value::as_str));
    match key {
        Some(v) => format!("{name} {v}"),
        None => format!(
            "{name} {}",
            crate::plugins::runtime::cut(&input.to_string(), 120)
        ),
    }
}

impl Observer for Terminal {
    fn waiting(&mut self, on: bool) {
        if let Some(h) = self.spinner.take() {
            h.abort();
            eprint!("\r\x1b[2K");
        }
        if on && self.spin {
            self.spinner = Some(tokio::spawn(async {
                let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
                for i in 0.. {
                    eprint!("\r{} thinking", frames[i % frames.len()]);
                    let _ = std::io::stderr().flush();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }));
        }
    }

    fn text(&mut self, text: &str) {
        print!("{}", printable(text));
        let _ = std::io::stdout().flush();
        self.text.push_str(text);
        self.at_line_start = text.ends_with('\n');
    }

    fn retry(&mut self, attempt: u32, wait: Duration, reason: &str) {
        self.end_line();
        eprintln!(
            "{}",
            self.paint(
                "33",
                &format!(
                    "↻ {}; retry {attempt} in {:.1}s",
                    printable(reason),
                    wait.as_secs_f64()
                )
            )
        );
    }

    fn tool_call(&mut self, _id: &str, name: &str, input: &Value) {
        self.end_line();
        eprintln!(
            "{}",
            self.paint(
                "36",
                &format!("● {}", printable(&call_summary(name, input)))
            )
        );
        if name == "edit"
            && let (Some(old), Some(new)) =
                (input["old_string"].as_str(), input["new_string"].as_str())
        {
            for l in old.lines() {
                eprintln!("  {}", self.paint("31", &format!("- {}", printable(l))));
            }
            for l in new.lines() {
                eprintln!("  {}", self.paint("32", &format!("+ {}", printable(l))));
            }
        }
    }

    /// On a terminal, one line redrawn in place; elsewhere a line a second at most.
    fn progress(&mut self, _id: &str, _name: &str, p: &ToolProgress) {
        let line = format!("  ⋯ {}", crate::plugins::runtime::cut(&p.describe(), 200));
        let now = std::time::Instant::now();
        if self.spin {
            eprint!("\r\x1b[2K{}", self.paint("2", &printable(&line)));
            let _ = std::io::stderr().flush();
            self.progress = Some((now, true));
        } else if self
            .progress
            .is_none_or(|(at, _)| now.duration_since(at) >= Duration::from_secs(1))
        {
            eprintln!("{}", self.paint("2", &printable(&line)));
            self.progress = Some((now, false));
        }
    }

    fn tool_result(&mut self, _id: &str, _name: &str, r: &ToolResult) {
        if let Some((_, true)) = self.progress.take() {
            eprint!("\r\x1b[2K");
        }
        let first = r.text.lines().next().unwrap_or("");
        let lines = r.text.lines().count();
        if r.is_error {
            eprintln!(
                "  {}",
                self.paint(
                    "31",
                    &format!(
                        "⎿ error: {}",
                        printable(&crate::plugins::runtime::cut(first, 300))
                    )
                )
            );
        } else {
            eprintln!("  {}", self.paint("2", &format!("⎿ {lines} line(s)")));
        }
    }

    fn ask(&mut self, pending: &Pending) -> Option<Answer> {
        if !self.can_ask {
            return None;
        }
        self.end_line();
        let always = match &pending.scope {
            Some(scope) => format!(
                "[a] yes, and for {} this session   ",
                printable(&scope.describe())
            ),
            None => String::new(),
        };
        let options = format!("[y] yes, once   {always}[n] no   [r] no, and tell the model why");
        let question = format!(
            "? {}\n  {}\n ",
            printable(&pending.question),
            self.paint("2", &options)
        );
        let answer = prompt_line(&self.paint("33", &question))?;
        Some(match answer.trim() {
            "y" | "Y" | "yes" => Answer::Once,
            "a" | "A" if pending.scope.is_some() => Answer::Always,
            "r" | "R" => match prompt_line("  what should the model do instead?") {
                Some(why) if !why.trim().is_empty() => Answer::NoBecause(why.trim().to_string()),
                _ => Answer::No,
            },
            _ => Answer::No,
        })
    }

    fn warning(&mut self, message: &str) {
        self.end_line();
        eprintln!(
            "{}",
            self.paint("33", &format!("warning: {}", printable(message)))
        );
    }

    fn compaction(&mut self, report: &Report) {
        self.end_line();
        eprintln!("{}", self.paint("2", &report.describe()));
    }

    /// A subagent's calls, starts and ends, on stderr beneath the call that started it; its
    /// text is not shown (its answer is the `task` call's result).
    fn relayed(&mut self, r: Relayed) {
        let who = r.from.agent.as_str();
        let line = match &r.event {
            Event::SubagentStart {
                subagent_type,
                description,
                ..
            } => format!("⎇ {who} ({subagent_type}): {description}"),
            Event::ToolCall { name, input, .. } => {
                format!("  {who} ● {}", call_summary(name, input))
            }
            Event::ToolResult {
                is_error: true,
                text,
                ..
            } => format!(
                "  {who}   ⎿ error: {}",
                crate::plugins::runtime::cut(text.lines().next().unwrap_or(""), 200)
            ),
            Event::Warning { message } => format!("  {who} warning: {message}"),
            Event::SubagentEnd(s) => describe_summary(s),
            _ => return,
        };
        self.end_line();
        eprintln!("{}", self.paint("2", &printable(&line)));
    }
}

/// One line for a subagent that ended.
pub fn describe_summary(s: &Summary) -> String {
    let cost = s.cost_usd.map_or(String::new(), |c| format!(" ≈ ${c:.4}"));
    let tokens = s.usage.total_input() + s.usage.output_tokens;
    let worktree = s
        .worktree
        .as_deref()
        .map_or(String::new(), |w| format!("; {w}"));
    format!(
        "⎇ {} ({}) {} after {} turn(s), {tokens} tokens{cost}{worktree}",
        s.agent, s.subagent_type, s.outcome, s.turns
    )
}

/// Ask `question` on the terminal itself, not stdin (which may be a pipe of prompts), and read
/// one line. `None` when there is no terminal to ask on.
pub fn prompt_line(question: &str) -> Option<String> {
    use std::io::BufRead;
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    let mut out = tty.try_clone().ok()?;
    let _ = write!(out, "{question} ");
    let _ = out.flush();
    let mut line = String::new();
    std::io::BufReader::new(tty).read_line(&mut line).ok()?;
    Some(line.trim().to_string())
}

/// A yes/no question on the terminal; anything but yes is no. `None` without a terminal.
pub fn confirm(question: &str) -> Option<bool> {
    prompt_line(&format!("{question} [y/N]")).map(|a| matches!(a.as_str(), "y" | "Y" | "yes"))
}

/// Collects a run for one JSON object at the end.
#[derive(Default)]
pub struct JsonCollector {
    pub text: String,
    pub tool_calls: Vec<Value>,
    pub warnings: Vec<String>,
    pub compactions: Vec<Value>,
}

impl Observer for JsonCollector {
    fn text(&mut self, text: &str) {
        self.text.push_str(text);
    }
    fn tool_result(&mut self, id: &str, name: &str, r: &ToolResult) {
        self.tool_calls
            .push(json!({"id": id, "name": name, "is_error": r.is_error}));
    }
    fn warning(&mut self, message: &str) {
        self.warnings.push(message.to_string());
    }
    fn compaction(&mut self, report: &Report) {
        self.compactions.push(compaction_json(report));
    }
}

/// A compaction as stream-json's `compaction` event (and json's `compactions`).
pub fn compaction_json(report: &Report) -> Value {
    let mut v = serde_json::to_value(report).unwrap_or_default();
    v["type"] = "compaction".into();
    v
}

/// One JSON event per line on stdout, each tagged with the agent it is from.
pub type StreamJson = Evented<JsonLines>;

/// stream-json's sink.
pub struct JsonLines;

impl Sink for JsonLines {
    fn put(&mut self, from: Option<&Tag>, event: Event) {
        emit(&crate::agent::events::json(from, &event));
    }
}

/// stream-json for an agent on `model`.
pub fn stream_json(model: &str) -> StreamJson {
    Evented {
        model: model.into(),
        sink: JsonLines,
    }
}

pub fn emit(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

/// Usage as the JSON output shows it.
pub fn usage_json(u: &Usage) -> Value {
    json!({"input_tokens": u.input_tokens, "cache_read_tokens": u.cache_read_tokens,
           "cache_write_tokens": u.cache_write_tokens, "output_tokens": u.output_tokens})
}

/// The closing summary as JSON (json's result object, stream-json's `end` event).
pub fn end_json(
    session: &str,
    outcome: &Outcome,
    ledger: &Ledger,
    model: &str,
    harness: &[Duration],
    agents: &[Summary],
) -> Value {
    let us: Vec<u64> = harness.iter().map(|d| d.as_micros() as u64).collect();
    let mut all = ledger.total;
    all.add(&ledger.children);
    let own_cost = cache::cost(model, &ledger.total);
    // Unknown when any agent's model has no known price.
    let all_cost = agents
        .iter()
        .try_fold(own_cost.unwrap_or(0.0), |sum, a| {
            a.cost_usd.map(|c| sum + c)
        })
        .filter(|_| own_cost.is_some());
    json!({
        "agents": agents,
        "with_subagents": {"usage": usage_json(&all), "cost_usd": all_cost},
        "agent": crate::agent::events::MAIN,
        "harness_us": us,
        "session_id": session,
        "outcome": outcome.tag(),
        "detail": outcome.describe(),
        "turns": ledger.turns,
        "usage": usage_json(&ledger.total),
        "cache_read_share": ledger.total.cache_read_share(),
        "cost_usd": cache::cost(model, &ledger.total),
    })
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_and_escape_sequences_are_shown_not_obeyed() {
        assert_eq!(printable("plain\ttext\n"), "plain\ttext\n");
        let hostile = "ok\x1b]0;pwned\x07\x1b[2J\rhidden\u{9b}31m\u{202e}txt";
        let shown = printable(hostile);
        assert!(
            !shown
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t')
        );
        assert!(!shown.contains('\u{202e}'));
        assert!(shown.contains("\\x{1b}]0;pwned") && shown.contains("\\x{d}hidden"));
    }
}
