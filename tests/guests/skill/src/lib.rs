//! A test guest of the `skill` world, built with the public SDK as a third party would: a name,
//! a description, instructions, and one bundled tool (`stamp`) that the host offers only once the
//! skill is loaded.

use cove_plugin_sdk::{Skill, Tool, ToolError, skill};
use schemars::JsonSchema;
use serde::Deserialize;

struct Notes;
impl Skill for Notes {
    const NAME: &'static str = "notes";
    const DESCRIPTION: &'static str = "Write release notes from the git log.";
    fn instructions() -> String {
        "# Release notes\nList the commits since the last tag with `git log`, group them by kind, \
         and pass every heading through the `stamp` tool."
            .into()
    }
}

#[derive(Deserialize, JsonSchema)]
struct StampInput {
    /// The text to stamp.
    text: String,
}

struct Stamp;
impl Tool for Stamp {
    type Input = StampInput;
    type Output = String;
    const NAME: &'static str = "stamp";
    const DESCRIPTION: &'static str = "Mark a heading as written by the notes skill.";
    const READ_ONLY: bool = true;
    fn run(input: StampInput) -> Result<String, ToolError> {
        Ok(format!("[notes] {}", input.text))
    }
}

skill!(Notes, Stamp);
