//! A tool built against contract 0.1.0 as it was first published, when `ast` offered only
//! `outline` and `query` (its own copy of that WIT is in `wit/`). The host's later additions to
//! the interface must not stop it from linking: its `old_outline` tool calls `ast.outline`.

wit_bindgen::generate!({ path: "wit", world: "cove:plugin/tool@0.1.0" });

use cove::plugin::ast;
use cove::plugin::types::{ToolError, ToolSpec};
use exports::cove::plugin::tool_api::Guest;

struct Old;

impl Guest for Old {
    fn describe() -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: "old_outline".into(),
            description: "The host's text outline of a file.".into(),
            input_schema: r#"{"type":"object","properties":{"file_path":{"type":"string"}},"required":["file_path"]}"#.into(),
            read_only: true,
        }]
    }

    fn call(_name: String, input: String) -> Result<String, ToolError> {
        let input: serde_json::Value =
            serde_json::from_str(&input).map_err(|e| ToolError::InvalidInput(e.to_string()))?;
        let path = input["file_path"].as_str().unwrap_or_default();
        ast::outline(path).map_err(ToolError::Failed)
    }
}

#[cfg(target_arch = "wasm32")]
export!(Old);
#[cfg(not(target_arch = "wasm32"))]
const _: fn() -> Vec<ToolSpec> = <Old as Guest>::describe;
