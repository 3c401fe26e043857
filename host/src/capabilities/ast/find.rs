//! Finding a name across the worktree: the definitions of that name and, if asked, the
//! identifiers that refer to it.
//!
//! Owns the walk (the same rules as `search`: gitignore-aware, hidden files and `.git` skipped,
//! links never followed, files opened through the worktree's cap-std handle) and the cheap filter
//! that keeps it at grep speed: a file is parsed only when its bytes contain the name. Parses go
//! through the process's cache. Must not format output for the model.

use super::cache::{self, Parsed};
use super::lang::Lang;
use super::outline::{Kind, Symbol};
use super::{AstError, MAX_FILE, io_error, is_binary, relative};
use crate::worktree::Worktree;
use ignore::{WalkBuilder, WalkState};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Most per-file errors reported.
const MAX_ERRORS: usize = 20;
/// Longest reference line returned, in characters.
const MAX_LINE: usize = 200;
/// Longest a walk may run: a host call cannot be interrupted by the plugin's deadline, so the
/// walk keeps its own and says where it stopped.
const FIND_TIME: std::time::Duration = std::time::Duration::from_secs(20);

/// What to look for.
#[derive(Debug, Clone, Default)]
pub struct FindRequest {
    /// The exact name of the definition (`parse`, not `Parser::parse`).
    pub name: String,
    /// A kind filter ([`Kind::matches`]); `None` for any.
    pub kind: Option<String>,
    /// Directory or file to search, relative to the worktree or absolute inside it.
    pub path: String,
    pub references: bool,
    /// Stop after this many definitions and references together (0: no limit).
    pub max_results: u32,
    /// Set when the user cancels the turn: the walk stops at the next file.
    pub cancel: Option<Arc<AtomicBool>>,
}

/// One definition found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub path: String,
    /// The definition it is a member of.
    pub parent: Option<String>,
    /// Nesting depth (0 at the top level).
    pub depth: u32,
    /// Without its children.
    pub symbol: Symbol,
}

/// One identifier spelled like the name, outside its definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub path: String,
    pub line: u32,
    pub text: String,
}

/// Everything found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindResponse {
    /// By path, then line.
    pub definitions: Vec<Definition>,
    /// By path, then line.
    pub references: Vec<Reference>,
    pub files_parsed: u32,
    pub truncated: bool,
    pub errors: Vec<String>,
}

/// Find the definitions (and optionally references) of `req.name` under `req.path`.
///
/// # Errors
/// [`AstError`] when the path leaves the worktree or cannot be reached, the name is empty, or the
/// kind is none of [`super::outline::KINDS`].
pub fn find(wt: &Worktree, req: &FindRequest) -> Result<FindResponse, AstError> {
    let name = req.name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(AstError::Invalid(format!(
            "`{}` is not a name; give one identifier such as `parse_args`",
            req.name
        )));
    }
    let kind = req.kind.as_deref().filter(|k| !k.is_empty());
    if let Some(k) = kind
        && Kind::Function.matches(k).is_none()
    {
        return Err(AstError::Kind(k.to_string()));
    }
    let rel = relative(wt, &req.path)?;
    // Through cap-std: a link that leaves the worktree fails here.
    if rel.as_os_str().is_empty() {
        wt.dir().dir_metadata()
    } else {
        wt.dir().metadata(&rel)
    }
    .map_err(|source| io_error(&req.path, source))?;

    let shared = Shared {
        wt,
        name,
        kind,
        references: req.references,
        max: u64::from(req.max_results),
        found: Mutex::new((Vec::new(), Vec::new())),
        errors: Mutex::new(Vec::new()),
        results: AtomicU64::new(0),
        parsed: AtomicU64::new(0),
        truncated: AtomicBool::new(false),
        deadline: std::time::Instant::now() + FIND_TIME,
        cancel: req.cancel.as_deref(),
    };
    let mut builder = WalkBuilder::new(wt.root().join(&rel));
    builder
        .follow_links(false)
        .hidden(true)
        .require_git(true)
        .filter_entry(|e| e.file_name() != ".git");
    crate::capabilities::walk_files(
        &mut builder,
        || (),
        |e| shared.error(e),
        |(), path| shared.visit(path),
    );

    let (mut definitions, mut references) =
        shared.found.into_inner().unwrap_or_else(|p| p.into_inner());
    definitions.sort_by(|a, b| {
        (&a.path, a.symbol.start_line, a.depth).cmp(&(&b.path, b.symbol.start_line, b.depth))
    });
    references.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    let mut errors = shared
        .errors
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    errors.sort();
    Ok(FindResponse {
        definitions,
        references,
        files_parsed: shared.parsed.load(Ordering::Relaxed) as u32,
        truncated: shared.truncated.load(Ordering::Relaxed),
        errors,
    })
}

struct Shared<'a> {
    wt: &'a Worktree,
    name: &'a str,
    kind: Option<&'a str>,
    references: bool,
    max: u64,
    found: Mutex<(Vec<Definition>, Vec<Reference>)>,
    errors: Mutex<Vec<String>>,
    results: AtomicU64,
    parsed: AtomicU64,
    truncated: AtomicBool,
    deadline: std::time::Instant,
    cancel: Option<&'a AtomicBool>,
}

impl Shared<'_> {
    fn error(&self, msg: String) {
        if let Ok(mut errs) = self.errors.lock()
            && errs.len() < MAX_ERRORS
        {
            errs.push(msg);
        }
    }

    fn visit(&self, path: &Path) -> WalkState {
        if self.truncated.load(Ordering::Relaxed) {
            return WalkState::Quit;
        }
        let why = if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            Some("cancelled".to_string())
        } else if std::time::Instant::now() > self.deadline {
            Some(format!(
                "stopped after {} s; give a path to search less",
                FIND_TIME.as_secs()
            ))
        } else {
            None
        };
        if let Some(why) = why {
            if !self.truncated.swap(true, Ordering::Relaxed) {
                self.error(why);
            }
            return WalkState::Quit;
        }
        let Ok(rel) = path.strip_prefix(self.wt.root()) else {
            return WalkState::Continue;
        };
        let Some(lang) = Lang::from_path(rel) else {
            return WalkState::Continue;
        };
        let shown = rel.to_string_lossy().into_owned();
        let bytes = match self.read(rel) {
            Ok(Some(b)) => b,
            Ok(None) => return WalkState::Continue,
            Err(e) => {
                self.error(format!("{shown}: {e}"));
                return WalkState::Continue;
            }
        };
        if memchr::memmem::find(&bytes, self.name.as_bytes()).is_none() || is_binary(&bytes) {
            return WalkState::Continue;
        }
        let Some(parsed) = cache::parse(cache::parses(), lang, bytes) else {
            self.error(format!("{shown}: took too long to parse"));
            return WalkState::Continue;
        };
        self.parsed.fetch_add(1, Ordering::Relaxed);
        let mut defs = Vec::new();
        collect(&parsed.symbols(), self, &shown, None, 0, &mut defs);
        let refs = if self.references {
            references(&parsed, self.name, &shown)
        } else {
            Vec::new()
        };
        let n = (defs.len() + refs.len()) as u64;
        if n == 0 {
            return WalkState::Continue;
        }
        let before = self.results.fetch_add(n, Ordering::Relaxed);
        let (defs, refs) = if self.max > 0 && before + n > self.max {
            self.truncated.store(true, Ordering::Relaxed);
            // Keep what still fits, definitions first.
            let room = self.max.saturating_sub(before) as usize;
            let d: Vec<_> = defs.into_iter().take(room).collect();
            let r: Vec<_> = refs.into_iter().take(room - d.len()).collect();
            (d, r)
        } else {
            (defs, refs)
        };
        if let Ok(mut found) = self.found.lock() {
            found.0.extend(defs);
            found.1.extend(refs);
        }
        if self.truncated.load(Ordering::Relaxed) {
            WalkState::Quit
        } else {
            WalkState::Continue
        }
    }

    /// The file's bytes, or `None` when it is too big to parse (skipped quietly, as rg skips
    /// nothing but we would spend seconds on generated code).
    fn read(&self, rel: &Path) -> std::io::Result<Option<Vec<u8>>> {
        let file = self.wt.dir().open(rel)?;
        let len = file.metadata()?.len();
        if len > MAX_FILE {
            return Ok(None);
        }
        let mut bytes = Vec::with_capacity(len as usize);
        file.into_std().take(MAX_FILE + 1).read_to_end(&mut bytes)?;
        Ok(Some(bytes))
    }

    fn wanted(&self, s: &Symbol) -> bool {
        s.name == self.name && self.kind.is_none_or(|k| s.kind.matches(k).unwrap_or(false))
    }
}

/// The definitions in `symbols` (and their members) that the request wants.
fn collect(
    symbols: &[Symbol],
    shared: &Shared<'_>,
    path: &str,
    parent: Option<&str>,
    depth: u32,
    out: &mut Vec<Definition>,
) {
    for s in symbols {
        if shared.wanted(s) {
            out.push(Definition {
                path: path.to_string(),
                parent: parent.map(str::to_string),
                depth,
                symbol: Symbol {
                    children: Vec::new(),
                    ..s.clone()
                },
            });
        }
        collect(&s.children, shared, path, Some(&s.name), depth + 1, out);
    }
}

/// Identifiers spelled `name` in the file, one per line, leaving out the lines where a
/// definition of that name is named.
fn references(parsed: &Parsed, name: &str, path: &str) -> Vec<Reference> {
    let src = parsed.source.as_slice();
    let def_lines: Vec<u32> = parsed_name_lines(&parsed.symbols(), name);
    let mut out: Vec<Reference> = Vec::new();
    let mut cursor = parsed.tree.walk();
    let mut descend = true;
    loop {
        let node = cursor.node();
        if descend && node.child_count() == 0 {
            let kind = node.kind();
            if (kind.ends_with("identifier") || kind == "constant")
                && &src[node.byte_range()] == name.as_bytes()
            {
                let line = node.start_position().row as u32 + 1;
                if !def_lines.contains(&line) && out.last().is_none_or(|r| r.line != line) {
                    out.push(Reference {
                        path: path.to_string(),
                        line,
                        text: line_text(src, node.start_byte()),
                    });
                }
            }
        }
        if descend && cursor.goto_first_child() {
            continue;
        }
        if cursor.goto_next_sibling() {
            descend = true;
            continue;
        }
        if !cursor.goto_parent() {
            break;
        }
        descend = false;
    }
    out
}

/// The lines on which a definition of `name` is named, anywhere in the file.
fn parsed_name_lines(symbols: &[Symbol], name: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for s in symbols {
        if s.name == name {
            out.push(s.name_line);
        }
        out.extend(parsed_name_lines(&s.children, name));
    }
    out
}

/// The line holding byte `at`, trimmed and cut.
fn line_text(src: &[u8], at: usize) -> String {
    let start = memchr::memrchr(b'\n', &src[..at]).map_or(0, |i| i + 1);
    let end = memchr::memchr(b'\n', &src[at..]).map_or(src.len(), |i| at + i);
    let text = String::from_utf8_lossy(&src[start..end]);
    let text = text.trim();
    match text.char_indices().nth(MAX_LINE) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}
