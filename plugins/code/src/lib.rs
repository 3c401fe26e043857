//! The `code` plugin: `outline` and `find_symbol`, through the host's `ast` capability.
//!
//! Parsing thousands of files through WASI would be ten times slower than natively, and grammars
//! are large C parsers, so the host parses (tree-sitter, cached by content hash) and walks the
//! tree; this plugin owns the tool surface: parameters, defaults, limits and how results read. It
//! must not read or walk files itself.

use cove_plugin_sdk::ast::{self, FileSymbols, FindRequest, FindResponse};
use cove_plugin_sdk::{Tool, ToolError, tools};
use schemars::JsonSchema;
use serde::Deserialize;
use std::fmt::Write as _;

/// Most outline lines shown.
const OUTLINE_LIMIT: usize = 1000;
/// Most definitions and references `find_symbol` returns together.
const FIND_LIMIT: u32 = 300;

/// The host's refusals that mean "outside the sandbox" become `denied`, the rest bad input.
fn host_error(message: String) -> ToolError {
    if message.contains("outside the worktree") || message.contains("not granted") {
        ToolError::Denied(message)
    } else {
        ToolError::InvalidInput(message)
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct OutlineInput {
    /// File to outline, absolute or relative to the worktree.
    file_path: String,
}

struct Outline;
impl Tool for Outline {
    type Input = OutlineInput;
    type Output = String;
    const NAME: &'static str = "outline";
    const DESCRIPTION: &'static str = "List a source file's definitions (functions, methods, types, classes, constants) \
        as a tree of `start-end signature` lines: its structure without reading it all.";
    const READ_ONLY: bool = true;

    fn run(input: OutlineInput) -> Result<String, ToolError> {
        let path = cove_plugin_sdk::resolve_path(&input.file_path)?;
        let file = ast::symbols(&path).map_err(host_error)?;
        Ok(render_outline(&file))
    }
}

fn render_outline(file: &FileSymbols) -> String {
    let mut out = String::new();
    let Some(lang) = &file.language else {
        let why = if file.binary {
            "it is not a text file".to_string()
        } else {
            format!(
                "no grammar for this file type (outline knows {})",
                file.supported
            )
        };
        let _ = writeln!(out, "{}: no outline: {why}. Use read instead.", file.path);
        return out;
    };
    if file.binary {
        let _ = writeln!(out, "{}: no outline: it is not a text file.", file.path);
        return out;
    }
    let _ = writeln!(
        out,
        "{} ({lang}, {} lines, {} definitions)",
        file.path,
        file.lines,
        file.symbols.len()
    );
    if file.syntax_errors > 0 {
        let lines: Vec<String> = file.error_lines.iter().map(u32::to_string).collect();
        let _ = writeln!(
            out,
            "({} syntax error{} near line {}; definitions there may be missing)",
            file.syntax_errors,
            if file.syntax_errors == 1 { "" } else { "s" },
            lines.join(", ")
        );
    }
    if file.symbols.is_empty() {
        out.push_str("(no definitions)\n");
    }
    for s in file.symbols.iter().take(OUTLINE_LIMIT) {
        let _ = writeln!(
            out,
            "{}{}-{} {}",
            "  ".repeat(s.depth as usize),
            s.start_line,
            s.end_line,
            s.signature
        );
    }
    if file.symbols.len() > OUTLINE_LIMIT {
        let _ = writeln!(
            out,
            "({} more definitions not shown; read the file by ranges)",
            file.symbols.len() - OUTLINE_LIMIT
        );
    }
    out
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FindInput {
    /// Exact name, e.g. `parse_args` (not `Parser::parse_args`).
    name: String,
    /// function (methods too), method, class, struct, enum, trait, interface, type (any type), constant, module or macro.
    #[serde(default)]
    kind: Option<String>,
    /// Directory or file to search (default: the worktree).
    #[serde(default)]
    path: Option<String>,
    /// Also list the lines that use the name.
    #[serde(default)]
    references: bool,
}

struct FindSymbol;
impl Tool for FindSymbol {
    type Input = FindInput;
    type Output = String;
    const NAME: &'static str = "find_symbol";
    const DESCRIPTION: &'static str = "Find where a name is defined across the worktree (gitignore-aware; Rust, Python, \
        JS/TS, Go, C/C++, Java): file, line range, signature; with references, the lines that use it.";
    const READ_ONLY: bool = true;

    fn run(input: FindInput) -> Result<String, ToolError> {
        let path = match &input.path {
            Some(p) => cove_plugin_sdk::resolve_path(p)?,
            None => ".".to_string(),
        };
        let req = FindRequest {
            name: input.name.clone(),
            kind: input.kind.clone().unwrap_or_default(),
            path,
            references: input.references,
            max_results: FIND_LIMIT,
        };
        let found = ast::find(&req).map_err(host_error)?;
        Ok(render_find(&input, &found))
    }
}

fn render_find(input: &FindInput, found: &FindResponse) -> String {
    let mut out = String::new();
    let what = match &input.kind {
        Some(k) if !k.is_empty() => format!("{k} `{}`", input.name),
        _ => format!("`{}`", input.name),
    };
    if found.definitions.is_empty() {
        let _ = writeln!(
            out,
            "No definition of {what} found ({} files mention it).",
            found.files_parsed
        );
    } else {
        let _ = writeln!(out, "Definitions of {what}:");
    }
    for d in &found.definitions {
        let parent = d
            .parent
            .as_ref()
            .map(|p| format!("in {p}: "))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{}:{}-{} {parent}{}",
            d.path, d.symbol.start_line, d.symbol.end_line, d.symbol.signature
        );
    }
    if input.references {
        if found.references.is_empty() {
            out.push_str("No references found.\n");
        } else {
            let _ = writeln!(out, "References ({}):", found.references.len());
        }
        for r in &found.references {
            let _ = writeln!(out, "{}:{}: {}", r.path, r.line, r.text);
        }
    }
    if found.truncated {
        let _ = writeln!(
            out,
            "(results cut at {FIND_LIMIT}; give a kind or a path to narrow them)"
        );
    }
    for err in found.errors.iter().take(5) {
        let _ = writeln!(out, "(skipped: {err})");
    }
    out
}

tools!(Outline, FindSymbol);
