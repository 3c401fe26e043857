//! The `read-only` policy: only read-only tools run; the rest is denied. For explorer subagents.
//! Written against the public WIT contract with plain wit-bindgen, as any third party could.

wit_bindgen::generate!({ path: "../../wit/v0.2", world: "cove:plugin/policy@0.2.0" });

use exports::cove::plugin::policy_api::{Guest, Request, Verdict};

struct ReadOnly;

impl Guest for ReadOnly {
    fn decide(req: Request) -> Verdict {
        if req.read_only {
            Verdict::Allow
        } else {
            Verdict::Deny(format!(
                "the read-only policy allows only read-only tools, and `{}` can change things",
                req.tool
            ))
        }
    }
}

#[cfg(target_arch = "wasm32")]
export!(ReadOnly);
#[cfg(not(target_arch = "wasm32"))]
const _: fn(Request) -> Verdict = <ReadOnly as Guest>::decide;
