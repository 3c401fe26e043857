//! A test guest whose `describe` returns a schema that is not JSON: the host must refuse it
//! clearly. Written against the raw bindings, as an author in another language would.

use cove_plugin_sdk::{__ToolGuest, __ToolOutput, __ToolSpec, __WitToolError};

struct Bad;

impl __ToolGuest for Bad {
    fn describe() -> Vec<__ToolSpec> {
        vec![__ToolSpec {
            name: "broken".into(),
            description: "Has a malformed schema.".into(),
            input_schema: "{this is not json".into(),
            output_schema: None,
            read_only: true,
        }]
    }

    fn call(_name: String, _input: String) -> Result<__ToolOutput, __WitToolError> {
        Ok(__ToolOutput {
            text: "should never run".into(),
            structured: None,
        })
    }
}

#[cfg(target_arch = "wasm32")]
cove_plugin_sdk::bindings::export_tool_world!(Bad);
#[cfg(not(target_arch = "wasm32"))]
const _: fn() -> Vec<__ToolSpec> = <Bad as __ToolGuest>::describe;
