//! The host's `ast` capability: tree-sitter parsing of worktree files, natively, for plugins (the
//! `outline` and `find_symbol` tools) and for the host itself (the compressor's outlines).
//!
//! Owns reading a file for parsing (through the worktree's cap-std handle, so a link that leaves
//! the worktree is refused like any other path outside it), the answers for one file (its
//! definitions, a text outline, a query's captures) and, in [`find`], the walk for a name across
//! the tree. An unknown language, a binary file or syntax errors are answers, not errors: only a
//! path outside the worktree, an unreadable file or a bad query fails. Must not format output for
//! the model (the plugins do) nor know about wasmtime (`plugins::runtime` binds this to the WIT).

pub mod cache;
pub mod find;
pub mod lang;
pub mod outline;

pub use find::{Definition, FindRequest, FindResponse, Reference, find};
pub use lang::{Lang, SUPPORTED};
pub use outline::{Kind, Symbol};

use crate::worktree::Worktree;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use tree_sitter::{Query, QueryCursor, StreamingIterator};

/// Largest file parsed. Bigger ones are generated code or data, and would crowd out the cache.
pub const MAX_FILE: u64 = 8 << 20;
/// Most captures one query returns.
const MAX_CAPTURES: usize = 10_000;
/// Longest capture text returned, in characters.
const MAX_CAPTURE_TEXT: usize = 2000;

/// A request the capability cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum AstError {
    #[error("path `{0}` is outside the worktree")]
    Outside(String),
    #[error("`{path}`: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("`{0}` is a directory; give a file")]
    Directory(String),
    #[error("`{path}` is {size} bytes; files over {} MB are not parsed", MAX_FILE >> 20)]
    TooBig { path: String, size: u64 },
    #[error("no grammar for `{0}`: cove parses {supported}", supported = SUPPORTED)]
    UnknownLanguage(String),
    #[error("`{0}` is not a text file")]
    Binary(String),
    #[error("`{0}` took too long to parse")]
    Timeout(String),
    #[error("unknown kind `{0}`; kinds are {kinds}", kinds = outline::KINDS)]
    Kind(String),
    #[error("invalid query for {lang}: {message}")]
    Query { lang: &'static str, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// The definitions of one file, and what stood in the way of finding them.
#[derive(Debug, Clone)]
pub struct FileSymbols {
    /// Relative to the worktree.
    pub path: String,
    /// The grammar that parsed it; `None` for a file cove has no grammar for.
    pub lang: Option<Lang>,
    /// Top-level definitions, each with its members.
    pub symbols: Arc<Vec<Symbol>>,
    pub lines: u32,
    pub syntax_errors: u32,
    pub error_lines: Vec<u32>,
    pub binary: bool,
}

/// A path the model gave, relative to the worktree, checked to stay inside it lexically. The
/// cap-std handle checks what the disk says (links) when the file is opened.
pub(crate) fn relative(wt: &Worktree, path: &str) -> Result<std::path::PathBuf, AstError> {
    let rel = wt
        .relative(path)
        .ok_or_else(|| AstError::Outside(path.to_string()))?;
    if rel
        .components()
        .next()
        .is_some_and(|c| c.as_os_str() == ".git")
    {
        return Err(AstError::Outside(format!("{path} (inside .git)")));
    }
    Ok(rel)
}

/// An I/O error on `path` for the model: cap-std's refusal to follow a link out of the worktree
/// (permission denied) is said in the worktree's terms.
pub(crate) fn io_error(path: &str, source: std::io::Error) -> AstError {
    if source.kind() == std::io::ErrorKind::PermissionDenied
        && source.to_string().contains("outside")
    {
        AstError::Outside(format!("{path} (it leads there through a link)"))
    } else {
        AstError::Io {
            path: path.to_string(),
            source,
        }
    }
}

/// Read a file for parsing, through the worktree's handle.
fn read(wt: &Worktree, path: &str, rel: &Path) -> Result<Vec<u8>, AstError> {
    let io = |source| io_error(path, source);
    if rel.as_os_str().is_empty() {
        return Err(AstError::Directory(path.to_string()));
    }
    let file = wt.dir().open(rel).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(AstError::Directory(path.to_string()));
    }
    if meta.len() > MAX_FILE {
        return Err(AstError::TooBig {
            path: path.to_string(),
            size: meta.len(),
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.into_std()
        .take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok(bytes)
}

/// True for bytes that are not text: a NUL in the first 8 KB, as git and ripgrep decide.
pub(crate) fn is_binary(bytes: &[u8]) -> bool {
    memchr::memchr(0, &bytes[..bytes.len().min(8192)]).is_some()
}

fn line_count(bytes: &[u8]) -> u32 {
    let n = memchr::memchr_iter(b'\n', bytes).count();
    let last = !bytes.is_empty() && !bytes.ends_with(b"\n");
    (n + usize::from(last)) as u32
}

/// Read and parse the file at `path` (through the process's parse cache).
fn parse_file(wt: &Worktree, path: &str) -> Result<(String, ParsedFile), AstError> {
    let rel = relative(wt, path)?;
    let shown = rel.to_string_lossy().into_owned();
    let bytes = read(wt, path, &rel)?;
    let lines = line_count(&bytes);
    let Some(lang) = Lang::from_path(&rel) else {
        return Ok((shown, ParsedFile::Unknown { lines }));
    };
    if is_binary(&bytes) {
        return Ok((shown, ParsedFile::Binary { lines }));
    }
    let parsed = cache::parse(cache::parses(), lang, bytes)
        .ok_or_else(|| AstError::Timeout(shown.clone()))?;
    Ok((shown, ParsedFile::Parsed { parsed, lines }))
}

enum ParsedFile {
    Unknown {
        lines: u32,
    },
    Binary {
        lines: u32,
    },
    Parsed {
        parsed: Arc<cache::Parsed>,
        lines: u32,
    },
}

/// The definitions in one file.
///
/// # Errors
/// [`AstError`] when the path leaves the worktree (lexically or through a link), is a directory,
/// cannot be read, is over [`MAX_FILE`] or takes too long to parse. An unknown language or a
/// binary file is an answer with no symbols.
pub fn symbols(wt: &Worktree, path: &str) -> Result<FileSymbols, AstError> {
    let (shown, file) = parse_file(wt, path)?;
    let mut out = FileSymbols {
        path: shown,
        lang: None,
        symbols: Arc::new(Vec::new()),
        lines: 0,
        syntax_errors: 0,
        error_lines: Vec::new(),
        binary: false,
    };
    match file {
        ParsedFile::Unknown { lines } => out.lines = lines,
        ParsedFile::Binary { lines } => {
            out.lines = lines;
            out.binary = true;
        }
        ParsedFile::Parsed { parsed, lines } => {
            out.lines = lines;
            out.lang = Some(parsed.lang);
            out.symbols = parsed.symbols();
            out.syntax_errors = parsed.errors.0 as u32;
            out.error_lines = parsed.errors.1.clone();
        }
    }
    Ok(out)
}

/// The definitions of `file` as text: one line each, `start-end signature`, members indented
/// under their parent.
pub fn render(file: &FileSymbols) -> String {
    fn walk(out: &mut String, symbols: &[Symbol], depth: usize) {
        for s in symbols {
            out.push_str(&"  ".repeat(depth));
            out.push_str(&format!(
                "{}-{} {}\n",
                s.start_line, s.end_line, s.signature
            ));
            walk(out, &s.children, depth + 1);
        }
    }
    let mut out = String::new();
    walk(&mut out, &file.symbols, 0);
    out
}

/// The outline of one file as text ([`render`]).
///
/// # Errors
/// As [`symbols`], and also an unknown language or a binary file, since text has no room to say so.
pub fn outline(wt: &Worktree, path: &str) -> Result<String, AstError> {
    let file = symbols(wt, path)?;
    if file.binary {
        return Err(AstError::Binary(file.path));
    }
    if file.lang.is_none() {
        return Err(AstError::UnknownLanguage(file.path));
    }
    Ok(render(&file))
}

/// The outline of `text`, the content of a file named `path` (whose name picks the grammar),
/// as [`render`] gives it; `None` for a language cove has no grammar for, a text that parses to
/// no definitions, or one too slow to parse. The compressor outlines what the model read this way,
/// as it read it.
pub fn outline_of_text(path: &str, text: &str) -> Option<String> {
    let lang = Lang::from_path(Path::new(path))?;
    let parsed = cache::parse(cache::parses(), lang, text.as_bytes().to_vec())?;
    let file = FileSymbols {
        path: path.to_string(),
        lang: Some(lang),
        symbols: parsed.symbols(),
        lines: line_count(text.as_bytes()),
        syntax_errors: 0,
        error_lines: Vec::new(),
        binary: false,
    };
    let out = render(&file);
    (!out.is_empty()).then_some(out)
}

/// One capture of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub name: String,
    pub text: String,
    /// 1-based, inclusive.
    pub start_line: u32,
    pub end_line: u32,
    /// 1-based byte columns: where it starts, and just past where it ends.
    pub start_column: u32,
    pub end_column: u32,
}

/// Run a tree-sitter query over one file (at most 10,000 captures).
///
/// # Errors
/// As [`outline`], and [`AstError::Query`] for a query the file's grammar rejects.
pub fn query(wt: &Worktree, path: &str, text: &str) -> Result<Vec<Capture>, AstError> {
    let (shown, file) = parse_file(wt, path)?;
    let parsed = match file {
        ParsedFile::Parsed { parsed, .. } => parsed,
        ParsedFile::Unknown { .. } => return Err(AstError::UnknownLanguage(shown)),
        ParsedFile::Binary { .. } => return Err(AstError::Binary(shown)),
    };
    let key = (parsed.lang, text.to_string());
    let known = cache::queries()
        .lock()
        .ok()
        .and_then(|m| m.get(&key).cloned());
    let query = match known {
        Some(q) => q,
        None => {
            let q = Arc::new(Query::new(&parsed.lang.grammar(), text).map_err(|e| {
                AstError::Query {
                    lang: parsed.lang.name(),
                    message: e.to_string(),
                }
            })?);
            cache::keep_query(key, q.clone());
            q
        }
    };
    let names = query.capture_names();
    let mut cursor = QueryCursor::new();
    let mut captures = cursor.captures(&query, parsed.tree.root_node(), parsed.source.as_slice());
    let mut out = Vec::new();
    while let Some((m, index)) = captures.next() {
        let Some(c) = m.captures().get(*index) else {
            continue;
        };
        let node = c.node;
        let text = String::from_utf8_lossy(&parsed.source[node.byte_range()]);
        let text = match text.char_indices().nth(MAX_CAPTURE_TEXT) {
            Some((at, _)) => format!("{}…", &text[..at]),
            None => text.into_owned(),
        };
        out.push(Capture {
            name: names
                .get(c.index as usize)
                .map(|n| n.to_string())
                .unwrap_or_default(),
            text,
            start_line: node.start_position().row as u32 + 1,
            end_line: node.end_position().row as u32 + 1,
            start_column: node.start_position().column as u32 + 1,
            end_column: node.end_position().column as u32 + 1,
        });
        if out.len() >= MAX_CAPTURES {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Res = Result<(), Box<dyn std::error::Error>>;

    fn worktree(
        files: &[(&str, &str)],
    ) -> Result<(tempfile::TempDir, Worktree), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        for (path, text) in files {
            let p = tmp.path().join(path);
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(p, text)?;
        }
        let wt = Worktree::open(tmp.path())?;
        Ok((tmp, wt))
    }

    #[test]
    fn a_query_returns_its_captures_with_lines() -> Res {
        let (_tmp, wt) = worktree(&[("a.rs", "fn one() {}\n\nfn two() {}\n")])?;
        let caps = query(&wt, "a.rs", "(function_item name: (identifier) @name)")?;
        let got: Vec<(&str, &str, u32)> = caps
            .iter()
            .map(|c| (c.name.as_str(), c.text.as_str(), c.start_line))
            .collect();
        assert_eq!(got, [("name", "one", 1), ("name", "two", 3)]);
        let bad = query(&wt, "a.rs", "(no_such_node) @x");
        assert!(
            matches!(bad, Err(AstError::Query { lang: "rust", .. })),
            "{bad:?}"
        );
        Ok(())
    }

    #[test]
    fn the_text_outline_nests_members() -> Res {
        let (_tmp, wt) = worktree(&[(
            "m.py",
            "class A:\n    def f(self):\n        pass\n\ndef g():\n    pass\n",
        )])?;
        assert_eq!(
            outline(&wt, "m.py")?,
            "1-3 class A\n  2-3 def f(self)\n5-6 def g()\n"
        );
        Ok(())
    }

    #[test]
    fn a_constant_table_is_its_first_line() -> Res {
        let (_tmp, wt) = worktree(&[
            (
                "t.rs",
                "static TABLE: [u8; 3] = [\n    1,\n    2,\n    3,\n];\nconst S: Cfg = Cfg {\n    a: 1,\n};\n",
            ),
            ("t.py", "TABLE = [\n    1,\n    2,\n]\n"),
        ])?;
        assert_eq!(
            outline(&wt, "t.rs")?,
            "1-5 static TABLE: [u8; 3] = [ …\n6-8 const S: Cfg = Cfg {…}\n"
        );
        assert_eq!(outline(&wt, "t.py")?, "1-4 TABLE = [ …\n");
        Ok(())
    }

    #[test]
    fn unknown_binary_and_broken_files_are_answers() -> Res {
        let (_tmp, wt) = worktree(&[
            ("notes.txt", "hello\n"),
            ("blob.c", "int x;\0\0"),
            ("bad.rs", "fn ok() {}\nfn broken( {\n"),
        ])?;
        let notes = symbols(&wt, "notes.txt")?;
        assert!(notes.lang.is_none() && notes.symbols.is_empty() && notes.lines == 1);
        assert!(matches!(
            outline(&wt, "notes.txt"),
            Err(AstError::UnknownLanguage(_))
        ));
        assert!(symbols(&wt, "blob.c")?.binary);
        let bad = symbols(&wt, "bad.rs")?;
        assert!(
            bad.syntax_errors > 0 && bad.error_lines.contains(&2),
            "{bad:?}"
        );
        assert_eq!(bad.symbols.first().map(|s| s.name.as_str()), Some("ok"));
        Ok(())
    }

    #[test]
    fn paths_and_links_out_of_the_worktree_are_refused() -> Res {
        let outside = tempfile::tempdir()?;
        std::fs::write(outside.path().join("s.rs"), "fn secret() {}\n")?;
        let (tmp, wt) = worktree(&[("in.rs", "fn inside() {}\n")])?;
        std::os::unix::fs::symlink(outside.path().join("s.rs"), tmp.path().join("link.rs"))?;
        std::os::unix::fs::symlink(outside.path(), tmp.path().join("dir"))?;
        for path in ["link.rs", "dir/s.rs", "../s.rs", ".git/config"] {
            let got = symbols(&wt, path);
            assert!(matches!(got, Err(AstError::Outside(_))), "{path}: {got:?}");
        }
        let abs = outside.path().join("s.rs");
        assert!(matches!(
            symbols(&wt, &abs.to_string_lossy()),
            Err(AstError::Outside(_))
        ));
        let found = find(
            &wt,
            &FindRequest {
                name: "secret".into(),
                path: ".".into(),
                ..FindRequest::default()
            },
        )?;
        assert!(found.definitions.is_empty(), "{found:?}");
        Ok(())
    }

    #[test]
    fn a_cancelled_find_stops_and_says_so() -> Res {
        let (_tmp, wt) = worktree(&[("a.rs", "fn f() {}\n"), ("b.rs", "fn f() {}\n")])?;
        let cancel = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let found = find(
            &wt,
            &FindRequest {
                name: "f".into(),
                path: ".".into(),
                cancel: Some(cancel),
                ..FindRequest::default()
            },
        )?;
        assert!(found.truncated && found.definitions.is_empty(), "{found:?}");
        assert_eq!(found.errors, ["cancelled"]);
        Ok(())
    }
}
