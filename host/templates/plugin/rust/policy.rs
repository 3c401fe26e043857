//! {{name}}: a cove policy plugin, written against the plugin contract `cove:plugin@0.2.0`
//! (vendored in wit/) with plain wit-bindgen. It is asked about every tool call before it runs:
//! it denies `git push` in a `bash` command and allows everything else (other policies in force
//! still have their say: deny beats ask beats allow).

wit_bindgen::generate!({ path: "wit", world: "cove:plugin/policy@0.2.0" });

use exports::cove::plugin::policy_api::{Guest, Request, Verdict};

struct Component;

impl Guest for Component {
    fn decide(req: Request) -> Verdict {
        if req.tool == "bash" {
            let input: serde_json::Value = match serde_json::from_str(&req.input) {
                Ok(v) => v,
                Err(_) => return Verdict::Deny("the call's input is not JSON".into()),
            };
            let command = input["command"].as_str().unwrap_or_default();
            if command.contains("git push") {
                return Verdict::Deny(
                    "this project does not let the agent run `git push`; leave pushing to the user"
                        .into(),
                );
            }
        }
        Verdict::Allow
    }
}

export!(Component);
