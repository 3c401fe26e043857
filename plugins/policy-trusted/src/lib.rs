//! The `trusted` policy: every call is allowed. The sandbox still holds.
//! Written against the public WIT contract with plain wit-bindgen, as any third party could.

wit_bindgen::generate!({ path: "../../wit/v0.2", world: "cove:plugin/policy@0.2.0" });

use exports::cove::plugin::policy_api::{Guest, Request, Verdict};

struct Trusted;

impl Guest for Trusted {
    fn decide(_req: Request) -> Verdict {
        Verdict::Allow
    }
}

#[cfg(target_arch = "wasm32")]
export!(Trusted);
#[cfg(not(target_arch = "wasm32"))]
const _: fn(Request) -> Verdict = <Trusted as Guest>::decide;
