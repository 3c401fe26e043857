//! The team file, `.cove/team.toml`: who is on the team.
//!
//! ```toml
//! lead = "lead"                 # the agent the user talks to (default `lead`)
//! [[member]]
//! name = "reviewer"
//! agent = "explorer"            # an agent definition, as for subagents (default `general`)
//! policy = "read-only"          # added to the lead's policies: a member only ever narrows
//! model = "claude-haiku-4-5"    # default: the agent definition's, else the lead's
//! description = "Reviews diffs" # shown to the others in the `ask` tool
//! ```
//!
//! Owns reading and checking it (read through the worktree's capability handle, so a link in
//! the repository cannot make cove read outside it) and what a member is made of. Must not start
//! anyone (that is `team::member`) or decide policies (a member's are its lead's plus its own).

use crate::config::OneOrMany;
use crate::team::message::valid_name;
use crate::worktree::Worktree;
use serde::Deserialize;
use std::io::Read;

/// Where the team file is, in the worktree.
pub const FILE: &str = ".cove/team.toml";
/// The lead's name unless the team file gives one.
pub const LEAD: &str = "lead";
/// The team file's largest size.
const MAX_BYTES: u64 = 256 * 1024;

/// One member.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub name: String,
    /// An agent definition's name (`general` when unset).
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub policy: Option<OneOrMany>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

impl Member {
    /// A general-purpose member of this name (one the team file does not list).
    pub fn general(name: &str) -> Self {
        Self {
            name: name.to_string(),
            ..Self::default()
        }
    }

    pub fn policies(&self) -> Vec<String> {
        self.policy
            .clone()
            .map(OneOrMany::into_vec)
            .unwrap_or_default()
    }
}

/// The team.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Roster {
    #[serde(default)]
    pub lead: Option<String>,
    #[serde(default, rename = "member")]
    pub members: Vec<Member>,
}

/// A team file that cannot be used, with what to fix.
#[derive(Debug, thiserror::Error)]
#[error("{FILE}: {0}")]
pub struct RosterError(pub String);

impl Roster {
    /// Read the team file of `worktree`; `None` when there is none.
    ///
    /// # Errors
    /// When it cannot be read (a link leading out of the worktree included) or is invalid.
    pub fn read(worktree: &Worktree) -> Result<Option<Self>, RosterError> {
        let file = match worktree.dir().open(FILE) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RosterError(format!("cannot be read: {e}"))),
        };
        let mut text = String::new();
        file.take(MAX_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| RosterError(format!("cannot be read: {e}")))?;
        if text.len() as u64 > MAX_BYTES {
            return Err(RosterError(format!("larger than {MAX_BYTES} bytes")));
        }
        Self::parse(&text).map(Some)
    }

    /// Parse and check a team file's text.
    ///
    /// # Errors
    /// Invalid TOML, an unknown key, a bad or repeated name.
    pub fn parse(text: &str) -> Result<Self, RosterError> {
        let roster: Roster = toml::from_str(text).map_err(|e| {
            RosterError(format!(
                "{}; the file has `lead = \"NAME\"` and [[member]] tables with name, agent, policy, model, description",
                e.message()
            ))
        })?;
        let lead = roster.lead();
        let mut seen = vec![lead.to_string()];
        for m in &roster.members {
            if !valid_name(&m.name) {
                return Err(RosterError(format!(
                    "member name {:?} is not valid: use 1 to 64 letters, digits, `-`, `_` or `.`",
                    m.name
                )));
            }
            if seen.contains(&m.name) {
                return Err(RosterError(format!(
                    "{:?} is named twice (the lead counts)",
                    m.name
                )));
            }
            seen.push(m.name.clone());
        }
        if !valid_name(lead) {
            return Err(RosterError(format!("lead name {lead:?} is not valid")));
        }
        Ok(roster)
    }

    pub fn lead(&self) -> &str {
        self.lead.as_deref().unwrap_or(LEAD)
    }

    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    /// Every name: the lead, then the members in the file's order.
    pub fn names(&self) -> Vec<String> {
        std::iter::once(self.lead().to_string())
            .chain(self.members.iter().map(|m| m.name.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_team_file_parses_with_defaults() -> Result<(), RosterError> {
        let r = Roster::parse(
            "[[member]]\nname = \"dev\"\n[[member]]\nname = \"reviewer\"\nagent = \"explorer\"\npolicy = \"read-only\"\ndescription = \"reads\"\n",
        )?;
        assert_eq!(r.lead(), "lead");
        assert_eq!(r.names(), ["lead", "dev", "reviewer"]);
        assert_eq!(
            r.member("reviewer").map(Member::policies),
            Some(vec!["read-only".to_string()])
        );
        assert_eq!(r.member("dev").and_then(|m| m.agent.clone()), None);
        Ok(())
    }

    #[test]
    fn bad_team_files_say_what_is_wrong() {
        for (text, needle) in [
            ("[[member]]\nname = \"a b\"\n", "not valid"),
            (
                "[[member]]\nname = \"x\"\n[[member]]\nname = \"x\"\n",
                "twice",
            ),
            ("lead = \"x\"\n[[member]]\nname = \"x\"\n", "twice"),
            ("[[member]]\nname = \"x\"\ncolour = 1\n", "unknown field"),
            ("[[member]]\n", "name"),
        ] {
            let e = Roster::parse(text).err().map(|e| e.to_string());
            assert!(
                e.as_deref().is_some_and(|e| e.contains(needle)),
                "{text}: {e:?}"
            );
        }
    }

    #[test]
    fn a_team_file_linked_from_outside_is_not_read() -> Result<(), Box<dyn std::error::Error>> {
        let outside = tempfile::tempdir()?;
        std::fs::write(
            outside.path().join("team.toml"),
            "[[member]]\nname = \"x\"\n",
        )?;
        let repo = tempfile::tempdir()?;
        std::fs::create_dir_all(repo.path().join(".git"))?;
        std::fs::create_dir_all(repo.path().join(".cove"))?;
        std::os::unix::fs::symlink(
            outside.path().join("team.toml"),
            repo.path().join(".cove/team.toml"),
        )?;
        let wt = Worktree::open(repo.path())?;
        let e = Roster::read(&wt).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("cannot be read")));
        Ok(())
    }
}
