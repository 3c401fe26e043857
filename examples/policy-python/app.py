"""A third-party cove policy, in Python.

It stops the agent from pushing with git, from `rm -rf` of the root or home directory, and from
changing CI configuration; everything else it leaves to the other policies (it allows). Built with
componentize-py against cove's public WIT contract (wit/v0.1), world `policy`:

    componentize-py -d wit/v0.1 -w cove:plugin/policy@0.1.0 componentize app \
        -p examples/policy-python -o no-push.wasm
"""

import json
import re

from wit_world import exports
from wit_world.exports.policy_api import Request, Verdict, Verdict_Allow, Verdict_Deny

CI_PATHS = (".github/workflows/", ".gitlab-ci.yml", ".circleci/", "Jenkinsfile", ".ci/")
PUSH = re.compile(r"\bgit\b[^;&|]*\bpush\b")
RM_ROOT = re.compile(r"\brm\s+(?:-\S+\s+)*-\S*[rR]\S*\s+(?:-\S+\s+)*(?:/|~|\$HOME)/?(?:\s|;|&|$)")


class PolicyApi(exports.PolicyApi):
    def decide(self, req: Request) -> Verdict:
        try:
            args = json.loads(req.input)
        except ValueError:
            return Verdict_Deny("the call's input is not JSON")
        if req.tool == "bash":
            command = str(args.get("command", ""))
            if PUSH.search(command):
                return Verdict_Deny("this project does not let the agent run `git push`; leave pushing to the user")
            if RM_ROOT.search(command):
                return Verdict_Deny("`rm -r` of the root or home directory is never allowed")
        elif not req.read_only:
            path = str(args.get("file_path", ""))
            if any(ci in path for ci in CI_PATHS):
                return Verdict_Deny(f"{path} is CI configuration; changes to it need a human")
        return Verdict_Allow()
