"""{{name}}: a cove tool plugin, written against the plugin contract cove:plugin@0.2.0 (vendored
in wit/) with componentize-py. It offers one tool, `word_count`.

Build: componentize-py -d wit -w cove:plugin/tool@0.2.0 componentize app -o {{name}}.wasm
(or `cove plugin build`).
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import progress
from wit_world.imports.types import ToolError_InvalidInput, ToolError_UnknownTool, ToolOutput, ToolSpec

# The JSON schema of the input: what the model sends. The host checks every call against it.
WORD_COUNT_INPUT = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "description": "The text to count the words of."},
        "unique": {"type": "boolean", "description": "Also count the distinct words (ignoring case)."},
    },
    "required": ["text"],
    "additionalProperties": False,
}

# The JSON schema of the structured output, for programs (the model reads the text).
WORD_COUNT_OUTPUT = {
    "type": "object",
    "properties": {"words": {"type": "integer"}, "unique": {"type": "integer"}},
    "required": ["words"],
}


class ToolApi(exports.ToolApi):
    def describe(self) -> list[ToolSpec]:
        return [
            ToolSpec(
                name="word_count",
                description="Count the words of a text (and, with `unique`, the distinct ones).",
                input_schema=json.dumps(WORD_COUNT_INPUT),
                output_schema=json.dumps(WORD_COUNT_OUTPUT),
                read_only=True,
            )
        ]

    def call(self, name: str, input: str) -> ToolOutput:
        if name != "word_count":
            raise Err(ToolError_UnknownTool(name))
        args = json.loads(input)
        words = args["text"].split()
        if not words:
            raise Err(ToolError_InvalidInput("`text` holds no words; pass the text to count"))
        # Shown to the user beside the running call (never to the model).
        progress.report(0, len(words), "counting words")
        result = {"words": len(words)}
        text = f"{len(words)} words"
        if args.get("unique", False):
            result["unique"] = len({w.lower() for w in words})
            text += f" ({result['unique']} unique)"
        return ToolOutput(text=text, structured=json.dumps(result))
