//! The parse cache: trees keyed by the hash of the file's content (and the grammar), so a file
//! parsed once is not parsed again until it changes, whoever asks and under whatever path.
//!
//! Owns parsing itself ([`parse`]: one parser per thread, a time bound, the C → C++ retry for
//! headers) so that nothing parses around the cache. Bounded by an estimate of the memory its
//! trees and sources hold; the least recently used go first. Content-addressed, so one cache per
//! process serves every agent and worktree without any of them seeing another's files: a hit needs
//! the very same bytes. Must not read files: callers hand it bytes they read through the worktree.

use super::lang::Lang;
use super::outline::{self, Symbol};
use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tree_sitter::{ParseOptions, ParseState, Parser, Query, Tree};

/// Longest one parse may take; a pathological file gets no tree rather than stalling a call.
const PARSE_TIME: Duration = Duration::from_secs(5);
/// Lines with syntax errors remembered per file.
const ERROR_LINES: usize = 5;

/// A tree costs a few times its source; this is the factor the budget assumes.
const TREE_COST_FACTOR: usize = 6;
/// Estimated bytes the parse cache may hold.
pub const PARSE_BUDGET: usize = 64 << 20;
/// Compiled queries kept; the cache is emptied when it fills.
const QUERY_SLOTS: usize = 64;

/// One parsed file.
pub struct Parsed {
    /// The grammar that parsed it (for a `.h`, possibly the C++ fallback).
    pub lang: Lang,
    pub source: Vec<u8>,
    pub tree: Tree,
    /// Syntax errors the parser recovered from, and the first lines they are on.
    pub errors: (usize, Vec<u32>),
    /// Its definitions, worked out on first use.
    pub symbols: OnceLock<Arc<Vec<Symbol>>>,
}

impl Parsed {
    /// The file's definitions (worked out once per parse).
    pub fn symbols(&self) -> Arc<Vec<Symbol>> {
        self.symbols
            .get_or_init(|| Arc::new(outline::symbols(self.lang, &self.tree, &self.source)))
            .clone()
    }
}

/// What identifies a parse: the content's hash and the grammar asked for.
pub type Key = (blake3::Hash, Lang);

struct Entry {
    parsed: Arc<Parsed>,
    cost: usize,
    used: u64,
}

/// A bounded, least-recently-used map from content to parse.
pub struct ParseCache {
    entries: HashMap<Key, Entry>,
    cost: usize,
    budget: usize,
    tick: u64,
    /// Parses made on this cache's behalf (misses), for tests and figures.
    parses: u64,
}

impl ParseCache {
    pub fn new(budget: usize) -> Self {
        Self {
            entries: HashMap::new(),
            cost: 0,
            budget,
            tick: 0,
            parses: 0,
        }
    }

    /// How many parses this cache has had to make.
    pub fn parses(&self) -> u64 {
        self.parses
    }

    pub fn get(&mut self, key: &Key) -> Option<Arc<Parsed>> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(key).map(|e| {
            e.used = tick;
            e.parsed.clone()
        })
    }

    /// Keep `parsed`, evicting the least recently used entries beyond the budget. A parse larger
    /// than the whole budget is not kept.
    pub fn insert(&mut self, key: Key, parsed: Arc<Parsed>) {
        let cost = parsed
            .source
            .len()
            .saturating_mul(TREE_COST_FACTOR)
            .saturating_add(1024);
        if cost > self.budget {
            return;
        }
        self.tick += 1;
        let entry = Entry {
            parsed,
            cost,
            used: self.tick,
        };
        if let Some(old) = self.entries.insert(key, entry) {
            self.cost -= old.cost;
        }
        self.cost += cost;
        while self.cost > self.budget {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(e) = self.entries.remove(&oldest) {
                self.cost -= e.cost;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The parse of `source` as `lang`, from `cache` when the same bytes were parsed before. `None`
/// when the parser gave up (it ran past [`PARSE_TIME`]). The lock is not held while parsing.
pub fn parse(cache: &Mutex<ParseCache>, lang: Lang, source: Vec<u8>) -> Option<Arc<Parsed>> {
    let key = (blake3::hash(&source), lang);
    if let Some(hit) = cache.lock().ok().and_then(|mut c| c.get(&key)) {
        return Some(hit);
    }
    let parsed = Arc::new(parse_now(lang, source)?);
    if let Ok(mut c) = cache.lock() {
        c.parses += 1;
        c.insert(key, parsed.clone());
    }
    Some(parsed)
}

thread_local! {
    static PARSER: RefCell<Parser> = RefCell::new(Parser::new());
}

/// Parse without the cache. A `.h` that C cannot parse cleanly is tried as C++ too, and the
/// better tree kept.
fn parse_now(lang: Lang, source: Vec<u8>) -> Option<Parsed> {
    let tree = parse_tree(lang, &source)?;
    let mut best = (lang, tree);
    if best.1.root_node().has_error()
        && let Some(other) = lang.fallback()
        && let Some(t) = parse_tree(other, &source)
        && outline::syntax_errors(&t, 0).0 < outline::syntax_errors(&best.1, 0).0
    {
        best = (other, t);
    }
    let (lang, tree) = best;
    let errors = outline::syntax_errors(&tree, ERROR_LINES);
    Some(Parsed {
        lang,
        source,
        tree,
        errors,
        symbols: OnceLock::new(),
    })
}

fn parse_tree(lang: Lang, source: &[u8]) -> Option<Tree> {
    PARSER.with(|cell| {
        let mut parser = cell.try_borrow_mut().ok()?;
        parser.set_language(&lang.grammar()).ok()?;
        let deadline = Instant::now() + PARSE_TIME;
        let mut past_deadline = |_: &ParseState| {
            if Instant::now() > deadline {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let options = ParseOptions::new().progress_callback(&mut past_deadline);
        let len = source.len();
        let mut read =
            |at: usize, _: tree_sitter::Point| if at < len { &source[at..] } else { &[][..] };
        let tree = parser.parse_with_options(&mut read, None, Some(options));
        if tree.is_none() {
            // A parse stopped half way must not leak into the next one.
            parser.reset();
        }
        tree
    })
}

/// The process's parse cache.
pub fn parses() -> &'static Mutex<ParseCache> {
    static CACHE: OnceLock<Mutex<ParseCache>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(ParseCache::new(PARSE_BUDGET)))
}

/// Compiled queries by grammar and query text.
pub type Queries = HashMap<(Lang, String), Arc<Query>>;

/// The process's compiled queries.
pub fn queries() -> &'static Mutex<Queries> {
    static CACHE: OnceLock<Mutex<Queries>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Remember a compiled query, emptying the cache first when it is full.
pub fn keep_query(key: (Lang, String), query: Arc<Query>) {
    if let Ok(mut map) = queries().lock() {
        if map.len() >= QUERY_SLOTS {
            map.clear();
        }
        map.insert(key, query);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(src: &str) -> Result<Arc<Parsed>, Box<dyn std::error::Error>> {
        let mut p = tree_sitter::Parser::new();
        p.set_language(&Lang::Python.grammar())?;
        let tree = p.parse(src, None).ok_or("no tree")?;
        Ok(Arc::new(Parsed {
            lang: Lang::Python,
            source: src.as_bytes().to_vec(),
            tree,
            errors: (0, Vec::new()),
            symbols: OnceLock::new(),
        }))
    }

    #[test]
    fn the_same_bytes_are_parsed_once() -> Result<(), Box<dyn std::error::Error>> {
        let cache = Mutex::new(ParseCache::new(PARSE_BUDGET));
        let src = b"fn main() {}\nstruct S;\n".to_vec();
        let first = parse(&cache, Lang::Rust, src.clone()).ok_or("no parse")?;
        let again = parse(&cache, Lang::Rust, src.clone()).ok_or("no parse")?;
        assert!(
            Arc::ptr_eq(&first, &again),
            "the second answer is the cached parse"
        );
        assert_eq!(cache.lock().map_err(|_| "poisoned")?.parses(), 1);
        // The symbols are worked out once per parse too.
        assert!(Arc::ptr_eq(&first.symbols(), &again.symbols()));
        // Changed bytes, or the same bytes as another language, parse again.
        parse(&cache, Lang::Rust, b"fn main() { }\n".to_vec()).ok_or("no parse")?;
        parse(&cache, Lang::C, src).ok_or("no parse")?;
        assert_eq!(cache.lock().map_err(|_| "poisoned")?.parses(), 3);
        Ok(())
    }

    #[test]
    fn a_header_that_is_cpp_is_parsed_as_cpp() -> Result<(), Box<dyn std::error::Error>> {
        let cache = Mutex::new(ParseCache::new(PARSE_BUDGET));
        let src = b"namespace app {\nclass Widget {\n public:\n  void draw() const;\n};\n}\n";
        let parsed = parse(&cache, Lang::C, src.to_vec()).ok_or("no parse")?;
        assert_eq!(parsed.lang, Lang::Cpp);
        assert_eq!(parsed.errors.0, 0);
        Ok(())
    }

    #[test]
    fn the_least_recently_used_go_first_within_the_budget() -> Result<(), Box<dyn std::error::Error>>
    {
        let src = "x = 1\n".repeat(100); // 600 bytes: cost 600 * 6 + 1024 = 4624
        let mut cache = ParseCache::new(3 * 4624);
        let keys: Vec<Key> = (0..4u8)
            .map(|i| (blake3::hash(&[i]), Lang::Python))
            .collect();
        for k in &keys[..3] {
            cache.insert(*k, parsed(&src)?);
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&keys[0]).is_some()); // 0 is now the most recent
        cache.insert(keys[3], parsed(&src)?);
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&keys[1]).is_none(), "1 was the least recent");
        assert!(cache.get(&keys[0]).is_some() && cache.get(&keys[3]).is_some());
        let huge = "y = 2\n".repeat(10_000);
        cache.insert(keys[1], parsed(&huge)?);
        assert!(
            cache.get(&keys[1]).is_none(),
            "larger than the budget: not kept"
        );
        Ok(())
    }
}
