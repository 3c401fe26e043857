"""{{name}}: a cove skill plugin, written against the plugin contract cove:plugin@0.2.0 (vendored
in wit/) with componentize-py. The model sees the skill's name and description in its index, loads
the instructions when it wants them, and from then on may call the tool the skill bundles,
`check_subject`.

Build: componentize-py -d wit -w cove:plugin/skill@0.2.0 componentize app -o {{name}}.wasm
(or `cove plugin build`).
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import ToolError_UnknownTool, ToolOutput, ToolSpec

CHECK_SUBJECT_INPUT = {
    "type": "object",
    "properties": {
        "subject": {"type": "string", "description": "The first line of a commit message."},
        "max_length": {"type": "integer", "minimum": 1, "description": "The longest subject allowed (default 72)."},
    },
    "required": ["subject"],
    "additionalProperties": False,
}


class SkillApi(exports.SkillApi):
    def name(self) -> str:
        return "{{name}}"

    def description(self) -> str:
        return "Write commit messages in this project's style; use before committing."

    def instructions(self) -> str:
        return (
            "# Commit messages\n"
            'Write the subject in the imperative ("Fix the parser", not "Fixed"), without a full '
            "stop, and check it with the `check_subject` tool before you commit. Leave a blank "
            "line, then say why the change was made."
        )


class ToolApi(exports.ToolApi):
    def describe(self) -> list[ToolSpec]:
        return [
            ToolSpec(
                name="check_subject",
                description="Check a commit subject line: its length and its final full stop.",
                input_schema=json.dumps(CHECK_SUBJECT_INPUT),
                output_schema=None,
                read_only=True,
            )
        ]

    def call(self, name: str, input: str) -> ToolOutput:
        if name != "check_subject":
            raise Err(ToolError_UnknownTool(name))
        args = json.loads(input)
        subject = args["subject"]
        limit = args.get("max_length", 72)
        if len(subject) > limit:
            text = f"too long: {len(subject)} characters, at most {limit}"
        elif subject.rstrip().endswith("."):
            text = "drop the full stop at the end"
        else:
            text = f"ok ({len(subject)} characters)"
        return ToolOutput(text=text, structured=None)
