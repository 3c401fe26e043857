//! {{name}}: a cove tool plugin, written against the plugin contract `cove:plugin@0.2.0`
//! (vendored in wit/) with plain wit-bindgen. It offers one tool, `word_count`.

wit_bindgen::generate!({ path: "wit", world: "cove:plugin/tool@0.2.0" });

use cove::plugin::progress;
use cove::plugin::types::{ToolError, ToolOutput, ToolSpec};
use exports::cove::plugin::tool_api::Guest;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the model sends to `word_count`. The doc comments become the schema's descriptions.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WordCountInput {
    /// The text to count the words of.
    text: String,
    /// Also count the distinct words (ignoring case).
    #[serde(default)]
    unique: Option<bool>,
}

/// What `word_count` gives back to programs (the model reads the text).
#[derive(Serialize, JsonSchema)]
struct WordCountOutput {
    words: usize,
    /// Only when `unique` was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    unique: Option<usize>,
}

fn schema<T: JsonSchema>() -> String {
    serde_json::to_string(&schemars::schema_for!(T)).unwrap_or_default()
}

struct Component;

impl Guest for Component {
    fn describe() -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: "word_count".into(),
            description: "Count the words of a text (and, with `unique`, the distinct ones).".into(),
            input_schema: schema::<WordCountInput>(),
            output_schema: Some(schema::<WordCountOutput>()),
            read_only: true,
        }]
    }

    fn call(name: String, input: String) -> Result<ToolOutput, ToolError> {
        match name.as_str() {
            "word_count" => {
                let input: WordCountInput = serde_json::from_str(&input)
                    .map_err(|e| ToolError::InvalidInput(e.to_string()))?;
                word_count(input)
            }
            other => Err(ToolError::UnknownTool(other.to_string())),
        }
    }
}

fn word_count(input: WordCountInput) -> Result<ToolOutput, ToolError> {
    let words: Vec<&str> = input.text.split_whitespace().collect();
    if words.is_empty() {
        return Err(ToolError::InvalidInput(
            "`text` holds no words; pass the text to count".into(),
        ));
    }
    // Shown to the user beside the running call (never to the model).
    progress::report(0, Some(words.len() as u64), "counting words");
    let unique = input.unique.unwrap_or(false).then(|| {
        let mut seen: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
        seen.sort();
        seen.dedup();
        seen.len()
    });
    let text = match unique {
        Some(u) => format!("{} words ({u} unique)", words.len()),
        None => format!("{} words", words.len()),
    };
    let structured = serde_json::to_string(&WordCountOutput {
        words: words.len(),
        unique,
    })
    .ok();
    Ok(ToolOutput { text, structured })
}

export!(Component);
