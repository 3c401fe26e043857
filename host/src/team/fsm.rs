//! A teammate's protocol state: IDLE → REQUEST → WAIT → RESPOND → IDLE.
//!
//! Owns which transitions exist and the rules they carry: a request is one a member may send
//! (not to itself, not back up its own chain of askers: a cycle A → B → A is refused, not
//! deadlocked; not deeper than the team's bound); an answer must match the request it answers.
//! Each transition is a method that consumes the state and returns the next one, or a
//! [`ProtocolError`] that gives the unchanged state back with what was wrong, so an impossible
//! step is reported, never dropped. A member in RESPOND that needs help may itself REQUEST: the
//! request it serves stays in the state, and the answer brings it back to RESPOND.
//! Must not send, receive or wait (that is `team::post`); it only says what may happen next.

use std::fmt;

/// A request a member received and is working on.
#[derive(Debug, Clone, PartialEq)]
pub struct Serving {
    pub id: String,
    pub from: String,
    /// The members waiting up this request's chain, the asker last.
    pub chain: Vec<String>,
    /// A few words on what it is about (for `cove team status`).
    pub about: String,
}

/// A request a member sends (REQUEST) or waits on (WAIT).
#[derive(Debug, Clone, PartialEq)]
pub struct Asking {
    pub id: String,
    pub to: String,
    /// The chain the request carries: the members waiting on it, this one last.
    pub chain: Vec<String>,
}

/// A member's state.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum State {
    /// Waiting on its mailbox.
    #[default]
    Idle,
    /// Sending `asking`; `serving` is the request it works on, if any.
    Request {
        asking: Asking,
        serving: Option<Serving>,
    },
    /// Waiting for the answer to `asking`.
    Wait {
        asking: Asking,
        serving: Option<Serving>,
    },
    /// Working on a request, then answering it.
    Respond { serving: Serving },
}

/// A step the protocol does not allow, with the state it was tried in (unchanged).
#[derive(Debug, Clone, PartialEq)]
pub struct ProtocolError {
    pub state: Box<State>,
    pub why: String,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (while {})", self.why, self.state.name())
    }
}

impl std::error::Error for ProtocolError {}

fn refuse<T>(state: State, why: impl Into<String>) -> Result<T, ProtocolError> {
    Err(ProtocolError {
        state: Box::new(state),
        why: why.into(),
    })
}

impl State {
    /// Its name as `cove team status` shows it.
    pub fn name(&self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Request { .. } => "request",
            State::Wait { .. } => "wait",
            State::Respond { .. } => "respond",
        }
    }

    /// What it is busy with, in a few words.
    pub fn working_on(&self) -> Option<String> {
        match self {
            State::Idle => None,
            State::Request { asking, serving } | State::Wait { asking, serving } => {
                Some(match serving {
                    Some(s) => format!("{} (for {}), asking {}", s.about, s.from, asking.to),
                    None => format!("asking {}", asking.to),
                })
            }
            State::Respond { serving } => Some(format!("{} (for {})", serving.about, serving.from)),
        }
    }

    /// The request being served, if any.
    pub fn serving(&self) -> Option<&Serving> {
        match self {
            State::Idle => None,
            State::Request { serving, .. } | State::Wait { serving, .. } => serving.as_ref(),
            State::Respond { serving } => Some(serving),
        }
    }

    /// IDLE → RESPOND: take a request.
    ///
    /// # Errors
    /// When busy (requests wait in the mailbox until the member is idle), or when `me` is in
    /// the request's chain already (a cycle that reached it anyway).
    pub fn take(self, me: &str, serving: Serving) -> Result<State, ProtocolError> {
        match self {
            State::Idle if serving.chain.iter().any(|m| m == me) => refuse(
                State::Idle,
                format!(
                    "refused: a cycle ({} → {me}); {me} is already waiting on this chain",
                    serving.chain.join(" → ")
                ),
            ),
            State::Idle => Ok(State::Respond { serving }),
            other => refuse(other, "a request can only be taken when idle"),
        }
    }

    /// IDLE or RESPOND → REQUEST: ask `to`, with request id `id`. `max_depth` bounds how many
    /// members may wait on one chain.
    ///
    /// # Errors
    /// Asking oneself, a member already waiting on this chain (a cycle), past the depth bound,
    /// or while a request is outstanding already.
    pub fn request(
        self,
        me: &str,
        to: &str,
        id: &str,
        max_depth: usize,
    ) -> Result<State, ProtocolError> {
        let serving = match self {
            State::Idle => None,
            State::Respond { serving } => Some(serving),
            other => return refuse(other, "one request at a time: an answer is still awaited"),
        };
        let back = |serving: Option<Serving>| match serving {
            Some(serving) => State::Respond { serving },
            None => State::Idle,
        };
        if to == me {
            return refuse(back(serving), format!("refused: {me} cannot ask itself"));
        }
        let mut chain = serving
            .as_ref()
            .map(|s| s.chain.clone())
            .unwrap_or_default();
        chain.push(me.to_string());
        if chain.iter().any(|m| m == to) {
            let path = format!("{} → {to}", chain.join(" → "));
            return refuse(
                back(serving),
                format!(
                    "refused: asking {to} would make a cycle ({path}); {to} is waiting on this answer, do this part yourself"
                ),
            );
        }
        if chain.len() > max_depth {
            return refuse(
                back(serving),
                format!(
                    "refused: {} members already wait on this chain ({}) and the team allows {max_depth} ([team] max_depth); do this part yourself",
                    chain.len(),
                    chain.join(" → ")
                ),
            );
        }
        Ok(State::Request {
            asking: Asking {
                id: id.to_string(),
                to: to.to_string(),
                chain,
            },
            serving,
        })
    }

    /// REQUEST → WAIT: the request went out.
    ///
    /// # Errors
    /// When no request was being sent.
    pub fn sent(self) -> Result<State, ProtocolError> {
        match self {
            State::Request { asking, serving } => Ok(State::Wait { asking, serving }),
            other => refuse(other, "nothing was being sent"),
        }
    }

    /// REQUEST → back where it was: the request could not be sent.
    ///
    /// # Errors
    /// When no request was being sent.
    pub fn unsent(self) -> Result<State, ProtocolError> {
        match self {
            State::Request { serving, .. } => Ok(Self::after(serving)),
            other => refuse(other, "nothing was being sent"),
        }
    }

    /// WAIT → IDLE, or back to RESPOND: the answer to `correlation` came (or the wait ended:
    /// timed out or cancelled, which the caller reports).
    ///
    /// # Errors
    /// When not waiting, or waiting on another request.
    pub fn answered(self, correlation: &str) -> Result<State, ProtocolError> {
        match self {
            State::Wait { asking, serving } if asking.id == correlation => Ok(Self::after(serving)),
            State::Wait { asking, serving } => {
                let why = format!(
                    "an answer to {correlation} came while waiting on {}",
                    asking.id
                );
                refuse(State::Wait { asking, serving }, why)
            }
            other => refuse(other, format!("an answer to {correlation} came unasked")),
        }
    }

    /// RESPOND → IDLE: the answer to the request served went out.
    ///
    /// # Errors
    /// When not responding, or responding to another request.
    pub fn responded(self, id: &str) -> Result<State, ProtocolError> {
        match self {
            State::Respond { serving } if serving.id == id => Ok(State::Idle),
            State::Respond { serving } => {
                let why = format!("answering {id} while working on {}", serving.id);
                refuse(State::Respond { serving }, why)
            }
            other => refuse(other, format!("answering {id}, which was never taken")),
        }
    }

    fn after(serving: Option<Serving>) -> State {
        match serving {
            Some(serving) => State::Respond { serving },
            None => State::Idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serving(id: &str, from: &str, chain: &[&str]) -> Serving {
        Serving {
            id: id.into(),
            from: from.into(),
            chain: chain.iter().map(|s| s.to_string()).collect(),
            about: "a task".into(),
        }
    }

    #[test]
    fn a_full_round_from_idle_and_back() -> Result<(), ProtocolError> {
        let s = State::Idle.request("lead", "dev", "r1", 3)?;
        assert_eq!(s.name(), "request");
        let s = s.sent()?;
        assert_eq!(s.name(), "wait");
        let s = s.answered("r1")?;
        assert_eq!(s, State::Idle);
        let s = s.take("dev", serving("r2", "lead", &["lead"]))?;
        assert_eq!(s.name(), "respond");
        assert_eq!(s.responded("r2")?, State::Idle);
        Ok(())
    }

    #[test]
    fn a_responder_may_ask_and_comes_back_to_respond() -> Result<(), ProtocolError> {
        let s = State::Idle.take("dev", serving("r1", "lead", &["lead"]))?;
        let s = s.request("dev", "tester", "r2", 3)?.sent()?;
        let State::Wait { asking, serving } = &s else {
            panic!("not waiting: {s:?}");
        };
        assert_eq!(asking.chain, vec!["lead".to_string(), "dev".to_string()]);
        assert_eq!(serving.as_ref().map(|s| s.id.as_str()), Some("r1"));
        assert!(s.working_on().is_some_and(|w| w.contains("asking tester")));
        let s = s.answered("r2")?;
        assert_eq!(s.serving().map(|s| s.id.as_str()), Some("r1"));
        assert_eq!(s.responded("r1")?, State::Idle);
        Ok(())
    }

    #[test]
    fn a_cycle_is_refused_and_the_state_kept() {
        // lead → dev → tester, and tester asks dev back.
        let s = State::Respond {
            serving: serving("r2", "dev", &["lead", "dev"]),
        };
        let e = s.clone().request("tester", "dev", "r3", 5).err();
        let e = e.map(|e| (*e.state, e.why));
        assert!(
            matches!(&e, Some((st, why)) if *st == s && why.contains("cycle") && why.contains("lead → dev → tester → dev")),
            "{e:?}"
        );
        // Asking the one at the root of the chain is a cycle too; asking oneself is refused.
        assert!(s.clone().request("tester", "lead", "r3", 5).is_err());
        assert!(State::Idle.request("lead", "lead", "r1", 5).is_err());
        // A request that reached a member already on its chain is refused on arrival too.
        assert!(
            State::Idle
                .take("dev", serving("r9", "tester", &["dev", "tester"]))
                .is_err()
        );
    }

    #[test]
    fn depth_is_bounded() {
        let s = State::Respond {
            serving: serving("r2", "b", &["a", "b"]),
        };
        // a and b wait, c would make three waiting: allowed at 3, refused at 2.
        assert!(s.clone().request("c", "d", "r3", 3).is_ok());
        let e = s.request("c", "d", "r3", 2).err().map(|e| e.why);
        assert!(
            e.as_deref().is_some_and(|w| w.contains("max_depth")),
            "{e:?}"
        );
    }

    #[test]
    fn impossible_steps_are_errors_not_drops() {
        assert!(State::Idle.sent().is_err());
        assert!(State::Idle.answered("r1").is_err());
        assert!(State::Idle.responded("r1").is_err());
        let waiting = State::Idle.request("a", "b", "r1", 3).and_then(State::sent);
        let Ok(waiting) = waiting else {
            panic!("{waiting:?}");
        };
        // A second request while one is outstanding, or an answer to another request.
        assert!(waiting.clone().request("a", "c", "r2", 3).is_err());
        let e = waiting.clone().answered("r7").err();
        assert!(e.is_some_and(|e| *e.state == waiting));
        // Busy members take no request.
        assert!(waiting.take("a", serving("r3", "c", &["c"])).is_err());
        let responding = State::Respond {
            serving: serving("r1", "a", &["a"]),
        };
        assert!(responding.clone().responded("r2").is_err());
        assert!(responding.take("b", serving("r3", "c", &["c"])).is_err());
    }

    #[test]
    fn an_unsent_request_goes_back() -> Result<(), ProtocolError> {
        let s = State::Idle.take("b", serving("r1", "a", &["a"]))?;
        let s = s.request("b", "c", "r2", 3)?.unsent()?;
        assert_eq!(s.serving().map(|s| s.id.as_str()), Some("r1"));
        Ok(())
    }
}
