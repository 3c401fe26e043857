//! The context compressor: keeps every request under the model's window, cheapest layer first.
//!
//! Owns when to compact (the corrected estimate of the next request against `compact_at` of the
//! window less the output reserve), the three layers — mask old tool results to one-line stubs,
//! turn file contents the model has moved past into their outlines, and plan and apply a summary
//! of the oldest turns — each run only while the request is still over `target`; the archive of
//! what was taken out, which `recall` answers from; the "unchanged since turn N" answer to a
//! repeated read; and the report of what a compaction did. The user's own words are never masked
//! or summarised away. Must not talk to the provider (the loop sends the summary request this
//! plans) nor write the transcript or memory files (the loop does, with the report).

use crate::context::tokens::{self, Meter};
use crate::conversation::{Block, Message, Role, ToolDef};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;

/// Compact once the request passes this share of the window (less the output reserve).
pub const DEFAULT_COMPACT_AT: f64 = 0.92;
/// Compact down to this share: far below the trigger, so the prefix changes rarely.
pub const DEFAULT_TARGET: f64 = 0.6;
/// The newest turns whose tool results are never masked: the model is working with them.
const KEEP_TURNS: usize = 3;
/// Results shorter than this are not worth a stub.
const MIN_MASK_BYTES: usize = 600;
/// Tokens set aside for the summary in the compacted request.
const SUMMARY_ALLOWANCE: u64 = 3000;
/// Most bytes of one tool result shown to the summariser.
const RESULT_IN_SUMMARY: usize = 1500;
/// The name of the tool that gives a masked result back.
pub const RECALL: &str = "recall";

/// Opens the text block that carries a summary in the first user message.
pub const SUMMARY_OPEN: &str = "<summary of the earlier part of this session>";
const SUMMARY_CLOSE: &str = "</summary>";
/// Begins a stub that stands for a masked result.
const MASKED: &str = "[masked to save context:";
/// Begins a result that stands for a file's outline.
const OUTLINED: &str = "[outline shown to save context:";
/// Begins the answer to a repeated read.
const UNCHANGED: &str = "[unchanged since turn ";

/// How the compressor is tuned (`[context]` in config, `--compact-at`).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `[context] compact = false` turns compaction off (the re-read answer stays).
    pub enabled: bool,
    /// The model's window, in tokens.
    pub window: u64,
    pub compact_at: f64,
    pub target: f64,
    /// Tokens kept free for the reply (the request's max_tokens).
    pub reserve: u64,
}

impl Settings {
    /// What a request may hold.
    pub fn limit(&self) -> u64 {
        self.window.saturating_sub(self.reserve).max(1024)
    }

    /// Compaction runs once a request would pass this.
    pub fn trigger(&self) -> u64 {
        (self.limit() as f64 * self.compact_at.clamp(0.05, 1.0)) as u64
    }

    /// And brings it down to this.
    pub fn goal(&self) -> u64 {
        let target = self.target.clamp(0.05, 1.0).min(self.compact_at);
        (self.limit() as f64 * target) as u64
    }
}

/// A layer of the compressor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    Mask,
    Structure,
    Summary,
}

/// What one compaction did: the `compaction` event and the transcript's record of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub layers: Vec<Layer>,
    /// The estimated tokens of the request before and after.
    pub tokens_before: u64,
    pub tokens_after: u64,
    /// The handles of the results masked.
    pub masked: Vec<String>,
    /// The handles of the file contents replaced by their outlines.
    pub outlined: Vec<String>,
    /// How many turns the summary replaced.
    pub summarised_turns: u32,
    /// Run by `/compact`, not by the window.
    #[serde(default)]
    pub forced: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focus: Option<String>,
}

impl Report {
    /// One line for the terminal.
    pub fn describe(&self) -> String {
        let layers: Vec<&str> = self
            .layers
            .iter()
            .map(|l| match l {
                Layer::Mask => "mask",
                Layer::Structure => "structure",
                Layer::Summary => "summary",
            })
            .collect();
        let mut parts = Vec::new();
        if !self.masked.is_empty() {
            parts.push(format!("{} results masked", self.masked.len()));
        }
        if !self.outlined.is_empty() {
            parts.push(format!("{} files outlined", self.outlined.len()));
        }
        if self.summarised_turns > 0 {
            parts.push(format!("{} turns summarised", self.summarised_turns));
        }
        format!(
            "context compacted ({}): ~{} → ~{} tokens{}{}",
            if layers.is_empty() {
                "nothing to do".to_string()
            } else {
                layers.join(", ")
            },
            self.tokens_before,
            self.tokens_after,
            if parts.is_empty() { "" } else { "; " },
            parts.join(", ")
        )
    }
}

/// The oldest turns to summarise: the text the summariser reads, in pieces that each fit.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryPlan {
    /// Messages `1..cut` are replaced; `cut` is an assistant message, kept.
    pub cut: usize,
    /// What the summariser reads, split so that each request fits the window.
    pub chunks: Vec<String>,
    pub turns: u32,
}

/// A result a layer may replace, with the call that made it.
struct OldResult<'a> {
    id: &'a str,
    name: &'a str,
    input: Option<&'a Value>,
    content: &'a str,
    is_error: bool,
}

/// The compressor of one agent.
#[derive(Debug)]
pub struct Compressor {
    pub settings: Settings,
    pub meter: Meter,
    /// Results taken out of the context, by handle (the call's id).
    archive: HashMap<String, String>,
    /// Estimated tokens of each message, with the shape they were estimated for.
    estimates: Vec<(usize, u64)>,
    /// Estimated tokens of the system prompt and tools, with their sizes.
    fixed: Option<(usize, usize, u64)>,
    /// Whether the model is offered `recall` (the `small` profile's few tools leave it out).
    pub recall_offered: bool,
}

impl Compressor {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            meter: Meter::default(),
            archive: HashMap::new(),
            estimates: Vec::new(),
            fixed: None,
            recall_offered: true,
        }
    }

    /// How a stub tells the model to get `what` back.
    fn way_back(&self, handle: &str, what: &str) -> String {
        if self.recall_offered {
            format!("recall {{\"handle\":\"{handle}\"}} returns {what}")
        } else {
            "make the call again if you need it".to_string()
        }
    }

    /// Results a resumed session had taken out of its context, from its transcript.
    pub fn restore(&mut self, results: impl IntoIterator<Item = (String, String)>) {
        self.archive.extend(results);
    }

    /// The estimated provider tokens of a request.
    pub fn estimate(&mut self, system: &str, tools: &[ToolDef], messages: &[Message]) -> u64 {
        let fixed = match self.fixed {
            Some((s, t, n)) if s == system.len() && t == tools.len() => n,
            _ => {
                let n = tokens::estimate(system) + tokens::tools_tokens(tools);
                self.fixed = Some((system.len(), tools.len(), n));
                n
            }
        };
        self.estimates.truncate(messages.len());
        let mut sum = fixed;
        for (i, m) in messages.iter().enumerate() {
            let shape = shape(m);
            match self.estimates.get(i) {
                Some((s, n)) if *s == shape => sum += n,
                _ => {
                    let n = tokens::message_tokens(m);
                    if i < self.estimates.len() {
                        self.estimates[i] = (shape, n);
                    } else {
                        self.estimates.push((shape, n));
                    }
                    sum += n;
                }
            }
        }
        self.meter.corrected(sum)
    }

    /// Whether a request of `tokens` calls for a compaction.
    pub fn due(&self, tokens: u64) -> bool {
        self.settings.enabled && tokens > self.settings.trigger()
    }

    /// Layer 1: replace old results with stubs, oldest first, until `need` tokens are freed
    /// (all of them, when forced). Returns the tokens freed.
    pub fn mask(&mut self, messages: &mut [Message], need: u64, report: &mut Report) -> u64 {
        let (freed, handles) = self.replace_old(messages, KEEP_TURNS, need, |c, r| {
            Some(format!(
                "{MASKED} {} {} gave {} in {} lines; {}]",
                r.name,
                short_input(r.input),
                size(r.content.len()),
                r.content.lines().count(),
                c.way_back(r.id, "it")
            ))
        });
        report.masked.extend(handles);
        if !report.masked.is_empty() && !report.layers.contains(&Layer::Mask) {
            report.layers.push(Layer::Mask);
        }
        freed
    }

    /// Layer 2: file contents the model has moved past (every turn but the newest) become
    /// their outline, until `need` tokens are freed. Returns the tokens freed.
    pub fn structure(&mut self, messages: &mut [Message], need: u64, report: &mut Report) -> u64 {
        let (freed, handles) = self.replace_old(messages, 1, need, |c, r| {
            let path = r.input?.get("file_path")?.as_str()?;
            if r.is_error || r.name != "read" {
                return None;
            }
            let outline = crate::capabilities::ast::outline_of_text(path, &unnumbered(r.content))?;
            let text = format!(
                "{OUTLINED} {path} as read was {} in {} lines; {}]\n{outline}",
                size(r.content.len()),
                r.content.lines().count(),
                c.way_back(r.id, "the text")
            );
            (text.len() * 2 <= r.content.len()).then_some(text)
        });
        report.outlined.extend(handles);
        if !report.outlined.is_empty() {
            report.layers.push(Layer::Structure);
        }
        freed
    }

    /// What the layers share: oldest first, each result before the `keep`th newest turn that
    /// is worth it (long enough, not already standing for something) and for which `shorter`
    /// gives a text is replaced by that text, its original archived for `recall`, until `need`
    /// tokens are freed. Returns the tokens freed and the handles replaced.
    fn replace_old(
        &mut self,
        messages: &mut [Message],
        keep: usize,
        need: u64,
        shorter: impl Fn(&Self, &OldResult<'_>) -> Option<String>,
    ) -> (u64, Vec<String>) {
        let keep_from = nth_assistant_from_end(messages, keep);
        let mut freed = 0;
        let mut handles = Vec::new();
        for i in 1..keep_from {
            if freed >= need {
                break;
            }
            let (before, after) = messages.split_at_mut(i);
            let Some(call_msg) = before.last() else {
                continue;
            };
            if after[0].role != Role::User {
                continue;
            }
            for b in after[0].content.iter_mut() {
                let Block::ToolResult {
                    tool_use_id,
                    content,
                    is_error,
                } = b
                else {
                    continue;
                };
                if content.len() < MIN_MASK_BYTES || is_stub(content) || freed >= need {
                    continue;
                }
                let (name, input) = call_of(call_msg, tool_use_id);
                let old = OldResult {
                    id: tool_use_id,
                    name,
                    input,
                    content,
                    is_error: *is_error,
                };
                let Some(text) = shorter(self, &old) else {
                    continue;
                };
                freed += tokens::estimate(content).saturating_sub(tokens::estimate(&text));
                let original = std::mem::replace(content, text);
                self.archive.insert(tool_use_id.clone(), original);
                handles.push(tool_use_id.clone());
            }
        }
        (freed, handles)
    }

    /// Layer 3, planned: which oldest turns to summarise so that the rest (the newest turns,
    /// kept whole) and the summary fit under the goal, and the text the summariser reads, in
    /// pieces of at most `chunk_tokens`. `None` when there is nothing older than the newest turn.
    pub fn plan_summary(
        &mut self,
        system: &str,
        tools: &[ToolDef],
        messages: &[Message],
        chunk_tokens: u64,
    ) -> Option<SummaryPlan> {
        let assistants: Vec<usize> = messages
            .iter()
            .enumerate()
            .filter(|(_, m)| m.role == Role::Assistant)
            .map(|(i, _)| i)
            .collect();
        let goal = self.settings.goal();
        let fixed = self.meter.corrected(
            tokens::estimate(system)
                + tokens::tools_tokens(tools)
                + messages.first().map_or(0, tokens::message_tokens)
                + SUMMARY_ALLOWANCE,
        );
        let mut cut = None;
        for keep in (1..=KEEP_TURNS).rev() {
            let Some(&c) = assistants
                .len()
                .checked_sub(keep)
                .and_then(|k| assistants.get(k))
            else {
                continue;
            };
            if c <= 1 {
                continue;
            }
            let rest: u64 = messages[c..].iter().map(tokens::message_tokens).sum();
            cut = Some(c);
            if fixed + self.meter.corrected(rest) <= goal {
                break;
            }
        }
        let cut = cut?;
        let mut pieces = Vec::new();
        if let Some(first) = messages.first() {
            for b in &first.content {
                if let Block::Text { text } = b
                    && text.starts_with(SUMMARY_OPEN)
                {
                    pieces.push(format!("EARLIER SUMMARY:\n{text}\n"));
                }
            }
        }
        for m in &messages[1..cut] {
            pieces.push(render(m));
        }
        let budget = chunk_tokens.max(1000);
        let mut chunks: Vec<String> = Vec::new();
        let mut current = String::new();
        for p in pieces {
            let p = if tokens::estimate(&p) > budget {
                // One turn too large for a request of its own: its middle goes.
                crate::plugins::runtime::cut(&p, (budget * 3) as usize).into_owned()
            } else {
                p
            };
            if !current.is_empty() && tokens::estimate(&current) + tokens::estimate(&p) > budget {
                chunks.push(std::mem::take(&mut current));
            }
            current.push_str(&p);
        }
        if !current.is_empty() {
            chunks.push(current);
        }
        let turns = assistants.iter().filter(|&&i| i < cut).count() as u32;
        Some(SummaryPlan { cut, chunks, turns })
    }

    /// Layer 3, applied: messages `1..plan.cut` give way to `summary`, which joins the first
    /// user message; the user's own words from those turns are kept verbatim beside it, and the
    /// results they held go to the archive.
    pub fn apply_summary(
        &mut self,
        messages: &mut Vec<Message>,
        plan: &SummaryPlan,
        summary: &str,
        report: &mut Report,
    ) {
        let cut = plan.cut.min(messages.len());
        if cut <= 1 {
            return;
        }
        let mut later_words = Vec::new();
        for m in messages.drain(1..cut) {
            for b in m.content {
                match b {
                    Block::ToolResult {
                        tool_use_id,
                        content,
                        ..
                    } if !is_stub(&content) => {
                        self.archive.insert(tool_use_id, content);
                    }
                    Block::Text { text } if m.role == Role::User => later_words.push(text),
                    _ => {}
                }
            }
        }
        if let Some(first) = messages.first_mut() {
            first
                .content
                .retain(|b| !matches!(b, Block::Text { text } if text.starts_with(SUMMARY_OPEN)));
            for w in later_words {
                first.content.push(Block::Text {
                    text: format!("(said later in the session) {w}"),
                });
            }
            first.content.push(Block::Text {
                text: format!(
                    "{SUMMARY_OPEN}\n{}\n(cove replaced the earlier turns with this summary to save context; recall gives back the results they held, by handle)\n{SUMMARY_CLOSE}",
                    summary.trim()
                ),
            });
        }
        report.summarised_turns += plan.turns;
        report.layers.push(Layer::Summary);
        self.estimates.clear();
    }

    /// The `recall` tool: the full text behind a handle.
    pub fn recall(&self, input: &str) -> Result<String, String> {
        let handle = serde_json::from_str::<Value>(input)
            .ok()
            .and_then(|v| v.get("handle").and_then(Value::as_str).map(str::to_string))
            .ok_or_else(|| {
                "recall takes {\"handle\": \"…\"}, the handle a masked result's stub names"
                    .to_string()
            })?;
        self.archive.get(&handle).cloned().ok_or_else(|| {
            format!(
                "no result was taken out of the context with handle `{handle}`; results still in context are shown there in full, and stubs name their handles"
            )
        })
    }

    /// The definition of the `recall` tool.
    pub fn recall_tool() -> ToolDef {
        ToolDef {
            name: RECALL.into(),
            description: "Get back the full text of an earlier tool result that was masked or outlined to save context, by the handle its stub names.".into(),
            input_schema: serde_json::json!({
                "type": "object",
                "properties": {"handle": {"type": "string", "description": "The handle the stub names"}},
                "required": ["handle"],
                "additionalProperties": false
            }),
        }
    }
}

/// The answer to a read-only call whose result is the same text as that call's earlier result,
/// still in context: a line pointing at it instead of the bytes again. `None` when there is no
/// such earlier result (never made, masked, or different).
pub fn unchanged(messages: &[Message], name: &str, input: &Value, text: &str) -> Option<String> {
    if text.len() < 200 {
        return None;
    }
    let mut turn = messages
        .iter()
        .filter(|m| m.role == Role::Assistant)
        .count();
    for (i, m) in messages.iter().enumerate().rev() {
        if m.role != Role::Assistant {
            continue;
        }
        for (id, n, inp) in m.tool_uses() {
            if n != name || inp != input {
                continue;
            }
            let earlier = messages.get(i + 1).and_then(|r| {
                r.content.iter().find_map(|b| match b {
                    Block::ToolResult {
                        tool_use_id,
                        content,
                        ..
                    } if tool_use_id == id => Some(content.as_str()),
                    _ => None,
                })
            });
            match earlier {
                Some(c) if c == text => {
                    return Some(format!(
                        "{UNCHANGED}{turn}: the same as the result of this call then (id {id}), which is still in context above]"
                    ));
                }
                // That one pointed further back: look there.
                Some(c) if c.starts_with(UNCHANGED) => {}
                _ => return None,
            }
        }
        turn -= 1;
    }
    None
}

/// A result that already stands for something else.
fn is_stub(content: &str) -> bool {
    content.starts_with(MASKED) || content.starts_with(OUTLINED) || content.starts_with(UNCHANGED)
}

/// The index of the `n`th assistant message from the end (the length when there are fewer).
fn nth_assistant_from_end(messages: &[Message], n: usize) -> usize {
    messages
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, m)| m.role == Role::Assistant)
        .nth(n.saturating_sub(1))
        .map_or(0, |(i, _)| i)
}

/// The name and input of the call `id` in `m`.
fn call_of<'a>(m: &'a Message, id: &str) -> (&'a str, Option<&'a Value>) {
    m.tool_uses()
        .find(|(i, _, _)| *i == id)
        .map_or(("a tool", None), |(_, n, input)| (n, Some(input)))
}

fn short_input(input: Option<&Value>) -> String {
    let Some(v) = input else {
        return String::new();
    };
    let s = match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    if s.len() <= 120 {
        s
    } else {
        let mut end = 117;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
}

fn size(bytes: usize) -> String {
    if bytes >= 10 * 1024 {
        format!("{} KB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// A `read` result without its line numbers (`     1\tcode`), as the file's text.
fn unnumbered(content: &str) -> String {
    let mut out = String::with_capacity(content.len());
    for line in content.lines() {
        match line.split_once('\t') {
            Some((n, rest)) if n.trim().parse::<u64>().is_ok() => {
                out.push_str(rest);
                out.push('\n');
            }
            // The notes after the lines (`showing lines …`) are not code.
            _ => {}
        }
    }
    out
}

/// A message as the summariser reads it.
fn render(m: &Message) -> String {
    let mut out = String::new();
    for b in &m.content {
        match b {
            Block::Text { text } => {
                let who = if m.role == Role::User {
                    "USER"
                } else {
                    "ASSISTANT"
                };
                out.push_str(&format!("{who}: {text}\n"));
            }
            Block::ToolUse { id, name, input } => {
                out.push_str(&format!(
                    "CALL {name} {} (handle {id})\n",
                    short_input(Some(input))
                ));
            }
            Block::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => {
                out.push_str(&format!(
                    "RESULT{} of {tool_use_id}: {}\n",
                    if *is_error { " (error)" } else { "" },
                    crate::plugins::runtime::cut(content, RESULT_IN_SUMMARY)
                ));
            }
        }
    }
    out
}

/// What a message's estimate depends on, cheaply: its blocks and their sizes.
fn shape(m: &Message) -> usize {
    m.content.iter().fold(m.content.len(), |acc, b| {
        acc.wrapping_mul(31).wrapping_add(match b {
            Block::Text { text } => text.len(),
            Block::ToolUse { input, .. } => input.as_str().map_or(1, str::len),
            Block::ToolResult { content, .. } => content.len(),
        })
    })
}

/// The summariser's instructions.
pub const SUMMARY_SYSTEM: &str = "You summarise the earlier part of a coding agent's session so that the agent can go on without it. \
Write plain Markdown under these headings, and nothing else:\n\
## Goal\n## The user's words and constraints (quote them verbatim)\n## Decisions and why\n## Files read and changed (exact paths)\n\
## Errors met and their fixes (quote error messages exactly)\n## Approaches tried and rejected\n## What remains\n## Next step\n\
Keep exact names, paths, commands and error strings. Name the handle of any tool result the agent may need again. Be brief.";

/// The request the summariser gets for one piece of the session.
pub fn summary_request(chunk: &str, earlier: Option<&str>, focus: Option<&str>) -> Message {
    let mut text = String::new();
    if let Some(e) = earlier {
        text.push_str(&format!(
            "The summary of what came before this part:\n{e}\n\nFold it into yours.\n\n"
        ));
    }
    text.push_str("The session so far:\n\n");
    text.push_str(chunk);
    if let Some(f) = focus.filter(|f| !f.trim().is_empty()) {
        text.push_str(&format!("\n\nFocus the summary on: {f}"));
    }
    Message::user_text(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(window: u64) -> Settings {
        Settings {
            enabled: true,
            window,
            compact_at: DEFAULT_COMPACT_AT,
            target: DEFAULT_TARGET,
            reserve: 1000,
        }
    }

    /// A session: the user's prompt, then `n` turns each reading `f{i}.rs` (a big Rust file).
    fn session(n: usize) -> Vec<Message> {
        let mut m = vec![Message::user_text(
            "Fix the bug in the parser. Never touch vendor/.",
        )];
        for i in 0..n {
            m.push(Message {
                role: Role::Assistant,
                content: vec![Block::ToolUse {
                    id: format!("t{i}"),
                    name: "read".into(),
                    input: json!({"file_path": format!("f{i}.rs")}),
                }],
            });
            let body: String = (0..20)
                .flat_map(|f| {
                    [
                        format!("fn function_{i}_{f}(x: u32) -> u32 {{"),
                        format!("    let y = x + {f};"),
                        "    y * 2".to_string(),
                        "}".to_string(),
                    ]
                })
                .enumerate()
                .map(|(l, text)| format!("{:>6}\t{text}\n", l + 1))
                .collect();
            m.push(Message {
                role: Role::User,
                content: vec![Block::ToolResult {
                    tool_use_id: format!("t{i}"),
                    content: body,
                    is_error: false,
                }],
            });
        }
        m
    }

    #[test]
    fn masking_takes_the_oldest_results_keeps_the_newest_and_recall_gives_them_back() {
        let mut c = Compressor::new(settings(100_000));
        let mut m = session(8);
        let original = match &m[2].content[0] {
            Block::ToolResult { content, .. } => content.clone(),
            _ => String::new(),
        };
        let mut r = Report::default();
        let freed = c.mask(&mut m, u64::MAX, &mut r);
        assert!(freed > 0);
        // Turns 0..5 masked; the newest three kept.
        assert_eq!(r.masked, ["t0", "t1", "t2", "t3", "t4"]);
        assert_eq!(r.layers, [Layer::Mask]);
        let Block::ToolResult { content, .. } = &m[2].content[0] else {
            panic!("not a result")
        };
        assert!(content.starts_with(MASKED), "{content}");
        assert!(content.contains("recall {\"handle\":\"t0\"}"), "{content}");
        assert_eq!(c.recall(r#"{"handle":"t0"}"#), Ok(original));
        assert!(
            c.recall(r#"{"handle":"t7"}"#).is_err(),
            "t7 is still in context"
        );
        assert!(c.recall("{}").is_err());
        // The user's words are untouched.
        assert_eq!(
            m[0],
            Message::user_text("Fix the bug in the parser. Never touch vendor/.")
        );
        // Masking stops once enough is freed.
        let mut c = Compressor::new(settings(100_000));
        let mut m = session(8);
        let mut r = Report::default();
        c.mask(&mut m, 10, &mut r);
        assert_eq!(r.masked, ["t0"]);
        // Without `recall` on offer (the small profile), the stub says how else to get it back.
        let mut c = Compressor::new(settings(100_000));
        c.recall_offered = false;
        let mut m = session(8);
        c.mask(&mut m, 10, &mut Report::default());
        let Block::ToolResult { content, .. } = &m[2].content[0] else {
            panic!("not a result")
        };
        assert!(
            content.ends_with("; make the call again if you need it]"),
            "{content}"
        );
    }

    #[test]
    fn structure_outlines_file_contents_the_model_moved_past() {
        let mut c = Compressor::new(settings(100_000));
        let mut m = session(3);
        let mut r = Report::default();
        c.structure(&mut m, u64::MAX, &mut r);
        assert_eq!(r.outlined, ["t0", "t1"], "the newest turn keeps its bytes");
        let Block::ToolResult { content, .. } = &m[2].content[0] else {
            panic!("not a result")
        };
        assert!(content.starts_with(OUTLINED), "{content}");
        assert!(
            content.contains("\n1-4 fn function_0_0(x: u32) -> u32\n"),
            "{content}"
        );
        assert!(c.recall(r#"{"handle":"t1"}"#).is_ok());
    }

    #[test]
    fn a_summary_replaces_the_oldest_turns_and_keeps_the_users_words()
    -> Result<(), Box<dyn std::error::Error>> {
        let mut c = Compressor::new(settings(6_000));
        let mut m = session(8);
        // A second prompt from the user, in the middle.
        m[6].content.push(Block::Text {
            text: "Also keep the public API.".into(),
        });
        let plan = c.plan_summary("system", &[], &m, 50_000).ok_or("a plan")?;
        assert_eq!(plan.cut % 2, 1, "the cut falls on an assistant message");
        assert!(plan.chunks[0].contains("CALL read {\"file_path\":\"f0.rs\"} (handle t0)"));
        let mut r = Report::default();
        c.apply_summary(&mut m, &plan, "## Goal\nFix the parser.", &mut r);
        assert_eq!(
            m[0].content[0],
            Block::Text {
                text: "Fix the bug in the parser. Never touch vendor/.".into()
            }
        );
        let all = m[0].text();
        assert!(
            all.contains("(said later in the session) Also keep the public API."),
            "{all}"
        );
        assert!(all.contains("## Goal\nFix the parser."));
        assert_eq!(m[1].role, Role::Assistant);
        assert!(c.recall(r#"{"handle":"t0"}"#).is_ok());
        // A second summary replaces the first, which the summariser reads.
        let more = session(8).split_off(1);
        m.extend(more.into_iter().map(|mut x| {
            for b in &mut x.content {
                match b {
                    Block::ToolUse { id, .. }
                    | Block::ToolResult {
                        tool_use_id: id, ..
                    } => id.push('b'),
                    _ => {}
                }
            }
            x
        }));
        let plan = c.plan_summary("system", &[], &m, 50_000).ok_or("a plan")?;
        assert!(plan.chunks[0].starts_with("EARLIER SUMMARY:"));
        c.apply_summary(&mut m, &plan, "second", &mut r);
        let summaries = m[0]
            .content
            .iter()
            .filter(|b| matches!(b, Block::Text { text } if text.starts_with(SUMMARY_OPEN)))
            .count();
        assert_eq!(summaries, 1);
        assert!(
            m[0].text()
                .contains("(said later in the session) Also keep the public API.")
        );
        Ok(())
    }

    #[test]
    fn a_summary_too_big_for_one_request_is_split() -> Result<(), Box<dyn std::error::Error>> {
        let mut c = Compressor::new(settings(100_000));
        let m = session(30);
        let plan = c.plan_summary("s", &[], &m, 1000).ok_or("a plan")?;
        assert!(plan.chunks.len() > 3, "{}", plan.chunks.len());
        for ch in &plan.chunks {
            assert!(tokens::estimate(ch) <= 2000, "{}", tokens::estimate(ch));
        }
        Ok(())
    }

    #[test]
    fn a_repeated_read_with_the_same_result_points_back() -> Result<(), Box<dyn std::error::Error>>
    {
        let m = session(3);
        let text = match &m[4].content[0] {
            Block::ToolResult { content, .. } => content.clone(),
            _ => String::new(),
        };
        let input = json!({"file_path": "f1.rs"});
        let note = unchanged(&m, "read", &input, &text).ok_or("unchanged")?;
        assert!(note.starts_with("[unchanged since turn 2"), "{note}");
        assert!(unchanged(&m, "read", &input, "something else that is long enough, at least two hundred bytes, so that it counts as a real read of a file and not a tiny answer the model could just as well get again; it goes on and on and on.").is_none());
        assert!(unchanged(&m, "read", &json!({"file_path": "f9.rs"}), &text).is_none());
        Ok(())
    }

    #[test]
    fn the_estimate_is_cached_per_message_and_follows_changes() {
        let mut c = Compressor::new(settings(100_000));
        let mut m = session(4);
        let a = c.estimate("sys", &[], &m);
        let mut r = Report::default();
        c.mask(&mut m, u64::MAX, &mut r);
        let b = c.estimate("sys", &[], &m);
        assert!(b < a, "{b} < {a}");
        assert!(c.due(a) == (a > c.settings.trigger()));
    }
}

/// Needle recall: facts planted early in a session stay reachable through each layer — in the
/// request, or behind a handle the request names (`recall`). Run with `--nocapture` for the
/// fraction per layer.
#[cfg(test)]
mod needles {
    use super::*;
    use serde_json::json;

    const NEEDLES: [(&str, &str); 5] = [
        ("a user constraint", "never edit vendor/"),
        ("an exact path", "src/deep/needle_7f3a.rs"),
        (
            "an error string",
            "E0599: no method named `frobnicate_9c1e`",
        ),
        (
            "a rejected approach",
            "Rejected: a regex parser, it breaks on nested braces",
        ),
        ("a value inside a file", "NEEDLE_LIMIT: u32 = 7341"),
    ];

    fn turn(
        m: &mut Vec<Message>,
        id: &str,
        text: &str,
        name: &str,
        input: Value,
        result: String,
        err: bool,
    ) {
        m.push(Message {
            role: Role::Assistant,
            content: vec![
                Block::Text { text: text.into() },
                Block::ToolUse {
                    id: id.into(),
                    name: name.into(),
                    input,
                },
            ],
        });
        m.push(Message {
            role: Role::User,
            content: vec![Block::ToolResult {
                tool_use_id: id.into(),
                content: result,
                is_error: err,
            }],
        });
    }

    fn numbered(text: &str) -> String {
        text.lines()
            .enumerate()
            .map(|(i, l)| format!("{:>6}\t{l}\n", i + 1))
            .collect()
    }

    fn session() -> Vec<Message> {
        let mut m = vec![Message::user_text(format!(
            "Fix the parser; {}.",
            NEEDLES[0].1
        ))];
        let file: String = (0..40)
            .map(|f| {
                format!("pub fn step_{f}(x: u32) -> u32 {{\n    let y = x + {f};\n    y * 2\n}}\n")
            })
            .collect::<String>()
            + &format!("pub const {};\n", NEEDLES[4].1);
        turn(
            &mut m,
            "t0",
            "Reading.",
            "read",
            json!({"file_path": NEEDLES[1].1}),
            numbered(&file),
            false,
        );
        turn(
            &mut m,
            "t1",
            "Building.",
            "bash",
            json!({"command": "cargo build"}),
            format!(
                "error[{}]\n{}",
                NEEDLES[2].1,
                "  --> src/lib.rs:3:7\n".repeat(40)
            ),
            true,
        );
        turn(
            &mut m,
            "t2",
            &format!("{}.", NEEDLES[3].1),
            "read",
            json!({"file_path": "src/parse.rs"}),
            numbered(&file.replace("step_", "parse_")),
            false,
        );
        for i in 3..9 {
            turn(
                &mut m,
                &format!("t{i}"),
                "Looking further.",
                "read",
                json!({"file_path": format!("src/m{i}.rs")}),
                numbered(&file.replace("step_", &format!("m{i}_"))),
                false,
            );
        }
        m
    }

    /// Which needles are in `m` or behind a handle it names.
    fn reachable(c: &Compressor, m: &[Message]) -> Vec<bool> {
        let text = serde_json::to_string(m).unwrap_or_default();
        let recalled: String = c
            .archive
            .iter()
            .filter(|(h, _)| {
                text.contains(&format!("\\\"handle\\\":\\\"{h}\\\""))
                    || text.contains(&format!("handle {h}"))
            })
            .map(|(_, t)| t.as_str())
            .collect();
        NEEDLES
            .iter()
            .map(|(_, n)| {
                let n_json = serde_json::to_string(n).unwrap_or_default();
                text.contains(n_json.trim_matches('"')) || recalled.contains(n)
            })
            .collect()
    }

    /// A stand-in for the model: keeps what the summary prompt asks for — the user's words,
    /// the calls (with their paths and handles), errors, rejected approaches — and no file bodies.
    fn summarise(chunk: &str) -> String {
        chunk
            .lines()
            .filter(|l| {
                l.starts_with("USER:")
                    || l.starts_with("CALL ")
                    || l.starts_with("RESULT (error)")
                    || l.contains("Rejected")
            })
            .map(|l| format!("- {l}\n"))
            .collect()
    }

    #[test]
    fn needles_stay_reachable_through_every_layer() -> Result<(), Box<dyn std::error::Error>> {
        let mut c = Compressor::new(Settings {
            enabled: true,
            window: 8_000,
            compact_at: DEFAULT_COMPACT_AT,
            target: DEFAULT_TARGET,
            reserve: 1000,
        });
        let mut m = session();
        let mut r = Report::default();
        let mut rows = Vec::new();
        c.mask(&mut m, u64::MAX, &mut r);
        rows.push(("mask", reachable(&c, &m)));
        c.structure(&mut m, u64::MAX, &mut r);
        rows.push(("structure", reachable(&c, &m)));
        let plan = c.plan_summary("system", &[], &m, 4000).ok_or("a plan")?;
        let summary: String = plan.chunks.iter().map(|ch| summarise(ch)).collect();
        c.apply_summary(&mut m, &plan, &summary, &mut r);
        rows.push(("summary", reachable(&c, &m)));
        assert_eq!(r.layers, [Layer::Mask, Layer::Structure, Layer::Summary]);
        for (layer, found) in &rows {
            let n = found.iter().filter(|f| **f).count();
            eprintln!("needle recall after {layer}: {n}/{}", NEEDLES.len());
            for ((what, _), f) in NEEDLES.iter().zip(found) {
                assert!(f, "{what} lost after {layer}");
            }
        }
        Ok(())
    }
}
