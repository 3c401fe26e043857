//! The host's `search` capability: walk and match the worktree natively with ripgrep's crates.
//!
//! Owns the walk (gitignore-aware, never following links, never entering `.git`), glob and type
//! filters, and line matching, and returns every hit in one value so a plugin crosses the WASI
//! boundary once. Files are opened through the worktree's cap-std handle, so nothing outside the
//! worktree is read even if a link or a race tries. Must not format output for the model: that is
//! the grep/glob plugin's job.

use crate::worktree::Worktree;
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::{
    BinaryDetection, Searcher, SearcherBuilder, Sink, SinkContext, SinkContextKind, SinkMatch,
};
use ignore::overrides::OverrideBuilder;
use ignore::types::TypesBuilder;
use ignore::{WalkBuilder, WalkState};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Longest line text handed back; longer lines are cut with a marker.
pub const MAX_LINE_CHARS: usize = 2000;
/// Most per-file errors reported.
const MAX_ERRORS: usize = 20;

/// What to collect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Files,
    FilesWithMatches,
    Content,
    Count,
}

/// One search, as the `search` interface carries it.
#[derive(Debug, Clone)]
pub struct Request {
    pub pattern: String,
    pub path: String,
    pub globs: Vec<String>,
    pub file_types: Vec<String>,
    pub case_insensitive: bool,
    pub multiline: bool,
    pub before_context: u32,
    pub after_context: u32,
    pub hidden: bool,
    pub max_files: u32,
    pub max_lines: u32,
    pub mode: Mode,
}

/// One line of content output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub number: u64,
    pub text: String,
    pub context: bool,
}

/// One file in the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHit {
    /// Relative to the worktree root.
    pub path: String,
    pub mtime_ms: u64,
    pub matches: u64,
    pub lines: Vec<Line>,
}

/// Everything a search found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub files: Vec<FileHit>,
    pub truncated: bool,
    pub errors: Vec<String>,
}

/// A search that could not start.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("path `{0}` is outside the worktree")]
    Outside(String),
    #[error("path `{path}`: {source}")]
    Path {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid regular expression: {0}")]
    Pattern(String),
    #[error("invalid glob `{glob}`: {message}")]
    Glob { glob: String, message: String },
    #[error(
        "unknown file type `{0}` (ripgrep names such as rust, py, js, ts, go, c, cpp, java, md)"
    )]
    Type(String),
}

/// Run one search over `wt`.
///
/// # Errors
/// [`SearchError`] when the path leaves the worktree or a pattern, glob or type is invalid.
pub fn run(wt: &Worktree, req: &Request) -> Result<Response, SearchError> {
    let rel = wt
        .relative(&req.path)
        .ok_or_else(|| SearchError::Outside(req.path.clone()))?;
    // Resolve through cap-std: a link that leaves the worktree fails here.
    if rel.as_os_str().is_empty() {
        wt.dir().dir_metadata()
    } else {
        wt.dir().metadata(&rel)
    }
    .map_err(|source| SearchError::Path {
        path: req.path.clone(),
        source,
    })?;
    if rel
        .components()
        .next()
        .is_some_and(|c| c.as_os_str() == ".git")
    {
        return Err(SearchError::Outside(format!(
            "{} (the .git directory is not searched)",
            req.path
        )));
    }
    let walk_root = wt.root().join(&rel);
    let matcher = if req.mode == Mode::Files {
        None
    } else {
        Some(build_matcher(req)?)
    };

    let mut builder = WalkBuilder::new(&walk_root);
    builder
        .follow_links(false)
        .hidden(!req.hidden)
        .require_git(true);
    builder.filter_entry(|e| e.file_name() != ".git");
    if !req.globs.is_empty() {
        let mut ob = OverrideBuilder::new(&walk_root);
        for g in &req.globs {
            ob.add(g).map_err(|e| SearchError::Glob {
                glob: g.clone(),
                message: e.to_string(),
            })?;
        }
        let ov = ob.build().map_err(|e| SearchError::Glob {
            glob: req.globs.join(" "),
            message: e.to_string(),
        })?;
        builder.overrides(ov);
    }
    if !req.file_types.is_empty() {
        let mut tb = TypesBuilder::new();
        tb.add_defaults();
        for t in &req.file_types {
            if !tb.definitions().iter().any(|d| d.name() == t) {
                return Err(SearchError::Type(t.clone()));
            }
            tb.select(t);
        }
        builder.types(tb.build().map_err(|e| SearchError::Type(e.to_string()))?);
    }

    let shared = Shared {
        wt,
        req,
        matcher: matcher.as_ref(),
        files: Mutex::new(Vec::new()),
        errors: Mutex::new(Vec::new()),
        file_count: AtomicU64::new(0),
        line_count: AtomicU64::new(0),
        truncated: AtomicBool::new(false),
    };
    super::walk_files(
        &mut builder,
        || build_searcher(req),
        |e| shared.error(e),
        |searcher, path| shared.visit(path, searcher),
    );

    let mut files = shared.files.into_inner().unwrap_or_else(|p| p.into_inner());
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let errors = shared
        .errors
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    Ok(Response {
        files,
        truncated: shared.truncated.load(Ordering::Relaxed),
        errors,
    })
}

fn build_matcher(req: &Request) -> Result<RegexMatcher, SearchError> {
    let mut b = RegexMatcherBuilder::new();
    b.case_insensitive(req.case_insensitive);
    if req.multiline {
        b.multi_line(true).dot_matches_new_line(true);
    } else {
        b.line_terminator(Some(b'\n'));
    }
    b.build(&req.pattern)
        .map_err(|e| SearchError::Pattern(e.to_string()))
}

fn build_searcher(req: &Request) -> Searcher {
    SearcherBuilder::new()
        .line_number(true)
        .multi_line(req.multiline)
        .before_context(req.before_context as usize)
        .after_context(req.after_context as usize)
        .binary_detection(BinaryDetection::quit(0))
        .build()
}

struct Shared<'a> {
    wt: &'a Worktree,
    req: &'a Request,
    matcher: Option<&'a RegexMatcher>,
    files: Mutex<Vec<FileHit>>,
    errors: Mutex<Vec<String>>,
    file_count: AtomicU64,
    line_count: AtomicU64,
    truncated: AtomicBool,
}

impl Shared<'_> {
    fn error(&self, msg: String) {
        if let Ok(mut errs) = self.errors.lock()
            && errs.len() < MAX_ERRORS
        {
            errs.push(msg);
        }
    }

    fn rel<'p>(&self, path: &'p Path) -> Option<&'p Path> {
        path.strip_prefix(self.wt.root()).ok()
    }

    fn visit(&self, path: &Path, searcher: &mut Searcher) -> WalkState {
        if self.truncated.load(Ordering::Relaxed) {
            return WalkState::Quit;
        }
        let Some(rel) = self.rel(path) else {
            return WalkState::Continue;
        };
        let mut hit = FileHit {
            path: display(rel),
            mtime_ms: 0,
            matches: 0,
            lines: Vec::new(),
        };
        if let Some(matcher) = self.matcher {
            let file = match self.wt.dir().open(rel) {
                Ok(f) => f.into_std(),
                Err(e) => {
                    self.error(format!("{}: {e}", hit.path));
                    return WalkState::Continue;
                }
            };
            let mut sink = Collect {
                mode: self.req.mode,
                hit: &mut hit,
                shared: self,
            };
            if let Err(e) = searcher.search_file(matcher, &file, &mut sink) {
                self.error(format!("{}: {e}", display(rel)));
                return WalkState::Continue;
            }
            if hit.matches == 0 {
                return WalkState::Continue;
            }
            if matches!(self.req.mode, Mode::FilesWithMatches) {
                hit.mtime_ms = epoch_ms(file.metadata().and_then(|m| m.modified()).ok());
            }
        } else {
            hit.mtime_ms = epoch_ms(
                self.wt
                    .dir()
                    .metadata(rel)
                    .and_then(|m| m.modified())
                    .ok()
                    .map(|t| t.into_std()),
            );
        }
        let n = self.file_count.fetch_add(1, Ordering::Relaxed) + 1;
        if self.req.max_files > 0 && n > u64::from(self.req.max_files) {
            self.truncated.store(true, Ordering::Relaxed);
            return WalkState::Quit;
        }
        if let Ok(mut files) = self.files.lock() {
            files.push(hit);
        }
        WalkState::Continue
    }
}

/// Milliseconds since the Unix epoch (0 when unknown).
fn epoch_ms(t: Option<std::time::SystemTime>) -> u64 {
    t.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

fn display(rel: &Path) -> String {
    rel.to_string_lossy().into_owned()
}

fn line_text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(MAX_LINE_CHARS) {
        Some((at, _)) => format!("{}… [line cut]", &text[..at]),
        None => text.into_owned(),
    }
}

struct Collect<'a, 'b> {
    mode: Mode,
    hit: &'a mut FileHit,
    shared: &'a Shared<'b>,
}

impl Collect<'_, '_> {
    fn push(&mut self, number: u64, bytes: &[u8], context: bool) -> bool {
        let max = u64::from(self.shared.req.max_lines);
        let n = self.shared.line_count.fetch_add(1, Ordering::Relaxed) + 1;
        if max > 0 && n > max {
            self.shared.truncated.store(true, Ordering::Relaxed);
            return false;
        }
        self.hit.lines.push(Line {
            number,
            text: line_text(bytes),
            context,
        });
        true
    }
}

impl Sink for Collect<'_, '_> {
    type Error = std::io::Error;

    fn matched(&mut self, _: &Searcher, m: &SinkMatch<'_>) -> Result<bool, Self::Error> {
        let first = m.line_number().unwrap_or(0);
        let lines: Vec<&[u8]> = m.lines().collect();
        self.hit.matches += lines.len() as u64;
        match self.mode {
            Mode::FilesWithMatches => Ok(false),
            Mode::Count | Mode::Files => Ok(true),
            Mode::Content => {
                for (i, line) in lines.iter().enumerate() {
                    if !self.push(first + i as u64, line, false) {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        }
    }

    fn context(&mut self, _: &Searcher, c: &SinkContext<'_>) -> Result<bool, Self::Error> {
        if self.mode != Mode::Content || matches!(c.kind(), SinkContextKind::Other) {
            return Ok(true);
        }
        Ok(self.push(c.line_number().unwrap_or(0), c.bytes(), true))
    }
}
