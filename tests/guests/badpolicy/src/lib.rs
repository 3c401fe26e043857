//! A policy that misbehaves on purpose: it traps when asked about `read`, loops forever for
//! `glob`, allows `ls` and denies the rest. The host must treat a failing policy as a denial.

wit_bindgen::generate!({ path: "../../../wit/v0.2", world: "cove:plugin/policy@0.2.0" });

use exports::cove::plugin::policy_api::{Guest, Request, Verdict};

struct Bad;

impl Guest for Bad {
    fn decide(req: Request) -> Verdict {
        match req.tool.as_str() {
            "read" => panic!("deliberate panic in a policy"),
            "glob" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "ls" => Verdict::Allow,
            other => Verdict::Deny(format!("bad says no to {other}")),
        }
    }
}

#[cfg(target_arch = "wasm32")]
export!(Bad);
#[cfg(not(target_arch = "wasm32"))]
const _: fn(Request) -> Verdict = <Bad as Guest>::decide;
