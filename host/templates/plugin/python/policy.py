"""{{name}}: a cove policy plugin, written against the plugin contract cove:plugin@0.2.0 (vendored
in wit/) with componentize-py. It is asked about every tool call before it runs: it denies
`git push` in a `bash` command and allows everything else (other policies in force still have
their say: deny beats ask beats allow).

Build: componentize-py -d wit -w cove:plugin/policy@0.2.0 componentize app -o {{name}}.wasm
(or `cove plugin build`).
"""

import json

from wit_world import exports
from wit_world.exports.policy_api import Request, Verdict, Verdict_Allow, Verdict_Deny


class PolicyApi(exports.PolicyApi):
    def decide(self, req: Request) -> Verdict:
        if req.tool == "bash":
            try:
                args = json.loads(req.input)
            except ValueError:
                return Verdict_Deny("the call's input is not JSON")
            if "git push" in str(args.get("command", "")):
                return Verdict_Deny("this project does not let the agent run `git push`; leave pushing to the user")
        return Verdict_Allow()
