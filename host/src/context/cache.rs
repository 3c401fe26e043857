//! Prompt-cache accounting: tokens per turn and per session, the cache-read share, and an
//! estimated cost.
//!
//! The request side of the cache (a byte-stable prefix with breakpoints) lives in each provider's
//! wire format; this module only counts what the provider's usage fields report. Must not build
//! requests.

use crate::conversation::Usage;
use serde::Serialize;

/// Dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    pub cache_write: f64,
    pub cache_read: f64,
}

/// List prices for well-known model families (checked 2026-11; `None` for an unknown model).
pub fn price(model: &str) -> Option<Price> {
    let m = model.to_ascii_lowercase();
    let p = |input: f64, output: f64, cache_write: f64, cache_read: f64| {
        Some(Price {
            input,
            output,
            cache_write,
            cache_read,
        })
    };
    if m.contains("opus") {
        p(15.0, 75.0, 18.75, 1.5)
    } else if m.contains("sonnet") {
        p(3.0, 15.0, 3.75, 0.3)
    } else if m.contains("haiku") {
        p(1.0, 5.0, 1.25, 0.1)
    } else if m.starts_with("gpt-4o-mini") {
        p(0.15, 0.6, 0.15, 0.075)
    } else if m.starts_with("gpt-4o") {
        p(2.5, 10.0, 2.5, 1.25)
    } else {
        None
    }
}

/// Estimated dollars for `usage` on `model`.
pub fn cost(model: &str, usage: &Usage) -> Option<f64> {
    let p = price(model)?;
    let per = |tokens: u64, dollars: f64| tokens as f64 * dollars / 1e6;
    Some(
        per(usage.input_tokens, p.input)
            + per(usage.output_tokens, p.output)
            + per(usage.cache_write_tokens, p.cache_write)
            + per(usage.cache_read_tokens, p.cache_read),
    )
}

/// Running totals for a session.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ledger {
    pub turns: u32,
    pub total: Usage,
    pub last: Usage,
    /// What this agent's subagents used (theirs and their own subagents'): it counts against
    /// this agent's token budget.
    pub children: Usage,
}

impl Ledger {
    /// Tokens spent against the budget: this agent's and its subagents'.
    pub fn spent(&self) -> u64 {
        let own = self.total.total_input() + self.total.output_tokens;
        own + self.children.total_input() + self.children.output_tokens
    }

    pub fn record(&mut self, usage: &Usage) {
        self.turns += 1;
        self.last = *usage;
        self.total.add(usage);
    }

    /// One line for the end of a run.
    pub fn summary(&self, model: &str) -> String {
        let t = &self.total;
        let cost = cost(model, t).map_or_else(
            || "cost unknown for this model".into(),
            |c| format!("≈ ${c:.4}"),
        );
        let children = &self.children;
        let subagents = if *children == Usage::default() {
            String::new()
        } else {
            format!(
                "; subagents: {} tokens",
                children.total_input() + children.output_tokens
            )
        };
        format!(
            "{} turn(s); tokens: {} in, {} cache read, {} cache write, {} out; cache-read share {:.0}%; {cost}{subagents}",
            self.turns,
            t.input_tokens,
            t.cache_read_tokens,
            t.cache_write_tokens,
            t.output_tokens,
            t.cache_read_share() * 100.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_and_shares() {
        let u = Usage {
            input_tokens: 1_000_000,
            cache_read_tokens: 9_000_000,
            cache_write_tokens: 0,
            output_tokens: 100_000,
        };
        let c = cost("claude-sonnet-4-5", &u).unwrap_or_default();
        assert!((c - (3.0 + 2.7 + 1.5)).abs() < 1e-9, "{c}");
        assert!((u.cache_read_share() - 0.9).abs() < 1e-9);
        assert_eq!(cost("my-local-llama", &u), None);
        let mut l = Ledger::default();
        l.record(&u);
        l.record(&u);
        assert_eq!(l.turns, 2);
        assert!(
            l.summary("claude-sonnet-4-5")
                .contains("cache-read share 90%")
        );
    }
}
