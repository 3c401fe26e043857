//! A tool built against contract 0.1.0 as it was first published, when `ast` offered only
//! `outline` and `query` (its own copy of that WIT is in `wit/`). The host's later additions to
//! the interface must not stop it from linking: its `old_outline` tool calls `ast.outline`. Its
//! `old_query` and `old_grep` tools call `ast.query` and `search.run`, whose records the host
//! converts between 0.1 and its newest contract.

wit_bindgen::generate!({ path: "wit", world: "cove:plugin/tool@0.1.0" });

use cove::plugin::types::{ToolError, ToolSpec};
use cove::plugin::{ast, search};
use exports::cove::plugin::tool_api::Guest;

struct Old;

impl Guest for Old {
    fn describe() -> Vec<ToolSpec> {
        let spec = |name: &str, description: &str, schema: &str| ToolSpec {
            name: name.into(),
            description: description.into(),
            input_schema: schema.into(),
            read_only: true,
        };
        vec![
            spec(
                "old_outline",
                "The host's text outline of a file.",
                r#"{"type":"object","properties":{"file_path":{"type":"string"}},"required":["file_path"]}"#,
            ),
            spec(
                "old_query",
                "Captures of a tree-sitter query, one a line.",
                r#"{"type":"object","properties":{"file_path":{"type":"string"},"query":{"type":"string"}},"required":["file_path","query"]}"#,
            ),
            spec(
                "old_grep",
                "Matching lines of the worktree, as path:line:text.",
                r#"{"type":"object","properties":{"pattern":{"type":"string"}},"required":["pattern"]}"#,
            ),
        ]
    }

    fn call(name: String, input: String) -> Result<String, ToolError> {
        let input: serde_json::Value =
            serde_json::from_str(&input).map_err(|e| ToolError::InvalidInput(e.to_string()))?;
        let arg = |key: &str| input[key].as_str().unwrap_or_default().to_string();
        match name.as_str() {
            "old_outline" => ast::outline(&arg("file_path")).map_err(ToolError::Failed),
            "old_query" => {
                let captures =
                    ast::query(&arg("file_path"), &arg("query")).map_err(ToolError::Failed)?;
                Ok(captures
                    .iter()
                    .map(|c| format!("{} {}-{} {}\n", c.name, c.start_line, c.end_line, c.text))
                    .collect())
            }
            "old_grep" => {
                let found = search::run(&search::Request {
                    mode: search::Mode::Content,
                    pattern: arg("pattern"),
                    path: String::new(),
                    globs: Vec::new(),
                    file_types: Vec::new(),
                    case_insensitive: false,
                    multiline: false,
                    before_context: 0,
                    after_context: 0,
                    hidden: false,
                    max_files: 0,
                    max_lines: 0,
                })
                .map_err(ToolError::Failed)?;
                let mut out = String::new();
                for f in &found.files {
                    for l in &f.lines {
                        out.push_str(&format!("{}:{}:{}\n", f.path, l.number, l.text));
                    }
                }
                Ok(out)
            }
            other => Err(ToolError::UnknownTool(other.into())),
        }
    }
}

#[cfg(target_arch = "wasm32")]
export!(Old);
#[cfg(not(target_arch = "wasm32"))]
const _: fn() -> Vec<ToolSpec> = <Old as Guest>::describe;
