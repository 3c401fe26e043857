//! The `default` policy: read-only tools run; anything that writes or runs commands asks the user.
//! Written against the public WIT contract with plain wit-bindgen, as any third party could.

wit_bindgen::generate!({ path: "../../wit/v0.2", world: "cove:plugin/policy@0.2.0" });

use exports::cove::plugin::policy_api::{Guest, Request, Verdict};

struct Default;

impl Guest for Default {
    fn decide(req: Request) -> Verdict {
        if req.read_only {
            Verdict::Allow
        } else {
            Verdict::Ask(format!("`{}` wants to run with {}", req.tool, req.input))
        }
    }
}

#[cfg(target_arch = "wasm32")]
export!(Default);
#[cfg(not(target_arch = "wasm32"))]
const _: fn(Request) -> Verdict = <Default as Guest>::decide;
