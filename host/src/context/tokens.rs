//! Token accounting: how many tokens a request will cost before it is sent, and how large the
//! model's context window is.
//!
//! Owns the estimate (a pre-tokenizer's split of the text into words, numbers, punctuation and
//! space, each piece costed as byte-pair tokenizers cost it; a test holds it to a real BPE
//! tokenizer), its correction from the provider's own usage figures as replies arrive, and the
//! table of known models' windows. A real tokenizer's tables cost megabytes and tens of
//! milliseconds to load, more than the start-up budget, and would still not be the provider's
//! own (Anthropic publishes none), so the usage correction matters more than the estimator.
//! Must not decide what to compact (that is `compress`).

use crate::conversation::{Block, Message, ToolDef};

/// The window assumed for a model cove does not know and the config does not name.
pub const DEFAULT_WINDOW: u64 = 200_000;

/// The context windows of known model families, matched by prefix of the lower-cased name (the
/// longest prefix wins), in tokens. What a request may hold, output included.
const WINDOWS: &[(&str, u64)] = &[
    ("claude", 200_000),
    ("gpt-4.1", 1_047_576),
    ("gpt-4o", 128_000),
    ("gpt-4-turbo", 128_000),
    ("gpt-4", 8_192),
    ("gpt-3.5-turbo", 16_385),
    // GPT-5's window is 400k, of which at most 272k input.
    ("gpt-5", 272_000),
    ("o1", 200_000),
    ("o3", 200_000),
    ("o4-mini", 200_000),
    ("gemini", 1_048_576),
    ("deepseek", 128_000),
    ("qwen2.5-coder", 32_768),
    ("qwen2.5", 32_768),
    ("qwen3", 32_768),
    ("llama3", 131_072),
    ("llama-3", 131_072),
    ("codestral", 256_000),
    ("devstral", 128_000),
    ("mistral", 32_768),
];

/// The window of `model`: the config's figure, else the table's, else [`DEFAULT_WINDOW`].
pub fn window(model: &str, configured: Option<u64>) -> u64 {
    if let Some(w) = configured.filter(|w| *w > 0) {
        return w;
    }
    let lower = model.to_ascii_lowercase();
    // `provider/model` and `org/model` names: the model is the last part.
    let name = lower.rsplit('/').next().unwrap_or(&lower);
    WINDOWS
        .iter()
        .filter(|(prefix, _)| name.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map_or(DEFAULT_WINDOW, |(_, w)| *w)
}

/// The estimated tokens of `text`.
pub fn estimate(text: &str) -> u64 {
    #[derive(PartialEq, Clone, Copy)]
    enum Class {
        Lower,
        Upper,
        Digit,
        Space,
        Newline,
        Punct,
        Other,
    }
    fn class(c: char) -> Class {
        match c {
            'a'..='z' => Class::Lower,
            'A'..='Z' => Class::Upper,
            '0'..='9' => Class::Digit,
            '\n' | '\r' => Class::Newline,
            ' ' | '\t' => Class::Space,
            c if c.is_ascii() => Class::Punct,
            c if c.is_alphabetic() && (c as u32) < 0x2E80 => Class::Lower,
            _ => Class::Other,
        }
    }
    // Tenths of a token, to cost pieces in fractions without floating point.
    let mut tenths = 0u64;
    let mut chars = text.chars().peekable();
    let mut prev = Class::Space;
    while let Some(c) = chars.next() {
        let k = class(c);
        match k {
            Class::Lower | Class::Upper => {
                // A word, split where camelCase starts a new part: each part costs a token, and
                // one more for every six letters past the first six (long words are several).
                let mut parts = 1u64;
                let mut part_len = 1u64;
                let mut last = k;
                while let Some(&n) = chars.peek() {
                    let nk = class(n);
                    if !matches!(nk, Class::Lower | Class::Upper) {
                        break;
                    }
                    if nk == Class::Upper && last == Class::Lower {
                        parts += 1;
                        tenths += part_len.saturating_sub(1) / 6 * 10;
                        part_len = 0;
                    }
                    chars.next();
                    part_len += 1;
                    last = nk;
                }
                tenths += parts * 10 + part_len.saturating_sub(1) / 6 * 10;
            }
            Class::Digit => {
                // Numbers go in groups of up to three digits.
                let mut len = 1u64;
                while chars.peek().is_some_and(|n| n.is_ascii_digit()) {
                    chars.next();
                    len += 1;
                }
                tenths += len.div_ceil(3) * 10;
            }
            Class::Space => {
                // One space belongs to what follows it; indentation is one token.
                let mut len = 1u64;
                while chars.peek().is_some_and(|n| *n == ' ' || *n == '\t') {
                    chars.next();
                    len += 1;
                }
                if len > 1 {
                    tenths += 10;
                }
            }
            Class::Newline => {
                let mut len = 1u64;
                while chars.peek().is_some_and(|n| *n == '\n' || *n == '\r') {
                    chars.next();
                    len += 1;
                }
                // Newlines merge with what precedes (`;\n`, `{\n`) about half the time.
                tenths += if prev == Class::Punct { 5 } else { 10 } + (len - 1) / 2 * 10;
            }
            Class::Punct => {
                // Runs of punctuation merge in pairs (`()`, `->`, `",`, `::`).
                let mut len = 1u64;
                while chars.peek().is_some_and(|n| class(*n) == Class::Punct) {
                    chars.next();
                    len += 1;
                }
                // A lone mark before a word is part of it (`_id`, `.iter`, `(x`).
                let before_word = chars
                    .peek()
                    .is_some_and(|n| matches!(class(*n), Class::Lower | Class::Upper));
                if !(len == 1 && before_word) {
                    tenths += (len * 5).max(10);
                }
            }
            Class::Other => tenths += 10 * c.len_utf8().min(2) as u64,
        }
        prev = k;
    }
    tenths.div_ceil(10)
}

/// Estimated tokens of one message (its text, calls and results, and a few tokens of framing).
pub fn message_tokens(m: &Message) -> u64 {
    let mut n = 4;
    for b in &m.content {
        n += block_tokens(b);
    }
    n
}

/// Estimated tokens of one block.
pub fn block_tokens(b: &Block) -> u64 {
    match b {
        Block::Text { text } => estimate(text),
        Block::ToolUse { name, input, .. } => {
            8 + estimate(name)
                + match input {
                    serde_json::Value::String(s) => estimate(s),
                    v => estimate(&v.to_string()),
                }
        }
        Block::ToolResult { content, .. } => 8 + estimate(content),
    }
}

/// Estimated tokens of the tool definitions.
pub fn tools_tokens(tools: &[ToolDef]) -> u64 {
    tools
        .iter()
        .map(|t| {
            8 + estimate(&t.name) + estimate(&t.description) + estimate(&t.input_schema.to_string())
        })
        .sum()
}

/// The estimate, corrected by what the provider said requests really cost.
#[derive(Debug, Clone)]
pub struct Meter {
    /// Provider tokens per estimated token, smoothed over the replies seen.
    ratio: f64,
    /// Whether any reply has reported usage yet.
    learned: bool,
    /// The estimate of the request in flight.
    pending: Option<u64>,
}

impl Default for Meter {
    fn default() -> Self {
        Self {
            ratio: 1.0,
            learned: false,
            pending: None,
        }
    }
}

impl Meter {
    /// Provider tokens for an estimate of `estimated`.
    pub fn corrected(&self, estimated: u64) -> u64 {
        (estimated as f64 * self.ratio).round() as u64
    }

    /// The estimate that corrects to `corrected`.
    pub fn raw(&self, corrected: u64) -> u64 {
        (corrected as f64 / self.ratio).round() as u64
    }

    /// A request estimated at `estimated` is going out.
    pub fn sending(&mut self, estimated: u64) {
        self.pending = Some(estimated);
    }

    /// Its reply reports `input` tokens in all (uncached, cache reads and writes).
    pub fn replied(&mut self, input: u64) {
        let Some(est) = self.pending.take().filter(|e| *e > 0) else {
            return;
        };
        if input == 0 {
            // A server that reports no usage teaches nothing.
            return;
        }
        let seen = (input as f64 / est as f64).clamp(0.25, 4.0);
        self.ratio = if self.learned {
            0.5 * self.ratio + 0.5 * seen
        } else {
            seen
        };
        self.learned = true;
    }

    pub fn ratio(&self) -> f64 {
        self.ratio
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_come_from_config_then_table_then_default() {
        assert_eq!(window("claude-sonnet-4-5", None), 200_000);
        assert_eq!(window("gpt-4o-mini", None), 128_000);
        assert_eq!(window("gpt-4.1-mini", None), 1_047_576);
        assert_eq!(window("gpt-4", None), 8_192);
        assert_eq!(window("Qwen/Qwen2.5-Coder-1.5B-Instruct", None), 32_768);
        assert_eq!(window("something-new", None), DEFAULT_WINDOW);
        assert_eq!(window("claude-sonnet-4-5", Some(50_000)), 50_000);
    }

    #[test]
    fn the_estimate_grows_with_the_text_and_costs_pieces_not_bytes() {
        assert_eq!(estimate(""), 0);
        assert_eq!(estimate("hello"), 1);
        assert_eq!(estimate("hello world"), 2);
        // camelCase parts are tokens of their own.
        assert_eq!(estimate("getUserName"), 3);
        // Numbers in groups of three.
        assert_eq!(estimate("1234567"), 3);
        let long = "fn main() {}\n".repeat(100);
        assert!(estimate(&long) > 400 && estimate(&long) < 900);
    }

    #[test]
    fn the_meter_learns_the_providers_count() {
        let mut m = Meter::default();
        assert_eq!(m.corrected(1000), 1000);
        m.sending(1000);
        m.replied(1300);
        assert_eq!(m.corrected(1000), 1300);
        m.sending(1000);
        m.replied(0);
        assert_eq!(m.corrected(1000), 1300, "no usage, no change");
        m.sending(1000);
        m.replied(1100);
        assert_eq!(m.corrected(1000), 1200);
    }
}

#[cfg(test)]
mod against_a_real_tokenizer {
    use super::estimate;

    /// The estimate stays within 15 % of OpenAI's o200k and cl100k BPE counts on code, prose
    /// and TOML (Anthropic publishes no tokenizer; the usage correction covers the rest).
    #[test]
    fn the_estimate_is_within_15_percent_of_real_bpe_counts()
    -> Result<(), Box<dyn std::error::Error>> {
        let samples = [
            ("rust", include_str!("../agent.rs")),
            ("prose", include_str!("../../../README.md")),
            ("toml", include_str!("../../../Cargo.lock")),
            (
                "python",
                include_str!("../../../examples/policy-python/app.py"),
            ),
        ];
        let bpes = [
            ("o200k", tiktoken_rs::o200k_base()?),
            ("cl100k", tiktoken_rs::cl100k_base()?),
        ];
        let mut off: Vec<String> = Vec::new();
        for (kind, text) in samples {
            for (name, bpe) in &bpes {
                let real = bpe.encode_ordinary(text).len() as f64;
                let ours = estimate(text) as f64;
                let ratio = ours / real;
                eprintln!("{kind} {name}: real {real} estimate {ours} ratio {ratio:.3}");
                if !(0.87..=1.15).contains(&ratio) {
                    off.push(format!("{kind} against {name}: {ratio:.3}"));
                }
            }
        }
        assert!(off.is_empty(), "{off:?}");
        Ok(())
    }
}
