//! {{name}}: a cove skill plugin, written against the plugin contract `cove:plugin@0.2.0`
//! (vendored in wit/) with plain wit-bindgen. The model sees the skill's name and description in
//! its index, loads the instructions when it wants them, and from then on may call the tool the
//! skill bundles, `check_subject`.

wit_bindgen::generate!({ path: "wit", world: "cove:plugin/skill@0.2.0" });

use cove::plugin::types::{ToolError, ToolOutput, ToolSpec};
use exports::cove::plugin::{skill_api, tool_api};
use schemars::JsonSchema;
use serde::Deserialize;

/// What the model sends to `check_subject`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CheckSubjectInput {
    /// The first line of a commit message.
    subject: String,
    /// The longest subject allowed (default 72).
    #[serde(default)]
    max_length: Option<usize>,
}

struct Component;

impl skill_api::Guest for Component {
    fn name() -> String {
        "{{name}}".into()
    }

    fn description() -> String {
        "Write commit messages in this project's style; use before committing.".into()
    }

    fn instructions() -> String {
        "# Commit messages\n\
         Write the subject in the imperative (\"Fix the parser\", not \"Fixed\"), without a full \
         stop, and check it with the `check_subject` tool before you commit. Leave a blank line, \
         then say why the change was made."
            .into()
    }
}

impl tool_api::Guest for Component {
    fn describe() -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: "check_subject".into(),
            description: "Check a commit subject line: its length and its final full stop.".into(),
            input_schema: serde_json::to_string(&schemars::schema_for!(CheckSubjectInput))
                .unwrap_or_default(),
            output_schema: None,
            read_only: true,
        }]
    }

    fn call(name: String, input: String) -> Result<ToolOutput, ToolError> {
        if name != "check_subject" {
            return Err(ToolError::UnknownTool(name));
        }
        let input: CheckSubjectInput =
            serde_json::from_str(&input).map_err(|e| ToolError::InvalidInput(e.to_string()))?;
        let max = input.max_length.unwrap_or(72);
        let length = input.subject.chars().count();
        let text = if length > max {
            format!("too long: {length} characters, at most {max}")
        } else if input.subject.trim_end().ends_with('.') {
            "drop the full stop at the end".to_string()
        } else {
            format!("ok ({length} characters)")
        };
        Ok(ToolOutput {
            text,
            structured: None,
        })
    }
}

export!(Component);
