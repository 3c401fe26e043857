// {{name}}: a cove policy plugin, written against the plugin contract cove:plugin@0.2.0 (vendored
// in wit/) and built with componentize-js. It is asked about every tool call before it runs: it
// denies `git push` in a `bash` command and allows everything else (other policies in force still
// have their say: deny beats ask beats allow).
//
// The exported `policy-api` interface is the object `policyApi`; a `verdict` is
// `{ tag: 'allow' }`, `{ tag: 'deny', val: reason }` or `{ tag: 'ask', val: question }`.

export const policyApi = {
  decide(req) {
    if (req.tool === 'bash') {
      let args;
      try {
        args = JSON.parse(req.input);
      } catch {
        return { tag: 'deny', val: "the call's input is not JSON" };
      }
      if (String(args.command ?? '').includes('git push')) {
        return { tag: 'deny', val: 'this project does not let the agent run `git push`; leave pushing to the user' };
      }
    }
    return { tag: 'allow' };
  },
};
