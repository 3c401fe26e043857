//! Workspace trust: a repository is not trusted because it is checked out.
//!
//! Owns reading what a repository's `.cove/` holds (its `config.toml`, its plugins, and the skill
//! folders of `.cove/skills` and `.claude/skills`: every file in them, scripts too) once, through
//! the worktree's capability handle (no link leaves the worktree), hashing exactly what was read,
//! and the user's decisions about it: `trust.json` in the user's config directory, keyed by the
//! repository's path and that hash, so a changed `.cove/` is asked about again. What the project
//! asks that widens permissions or changes where requests go is listed by `config` (settings) and
//! here (project plugins); a project plugin is loaded only when trusted, and then only if its
//! component still has the bytes that were trusted.
//!
//! Must not prompt the user (the CLI does) or apply settings (`config` and the registry do).

use crate::config::{Config, ConfigError, ConfigFile};
use crate::plugins::manifest::{Manifest, ManifestError};
use crate::worktree::Worktree;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest file read from `.cove/` (a component can be large; anything bigger is refused).
const MAX_FILE: u64 = 256 << 20;

/// A project plugin folder as it was read for the trust decision.
#[derive(Debug, Clone)]
pub struct ProjectPlugin {
    /// `.cove/plugins/<folder>`, absolute.
    pub dir: PathBuf,
    /// The parsed manifest, or why it is unusable.
    pub manifest: Result<Manifest, ManifestError>,
    /// The component file and the blake3 hash of the bytes that were trusted.
    pub component: Option<(PathBuf, String)>,
}

/// Claude Code's file of MCP servers, at the repository's root.
pub const MCP_FILE: &str = ".mcp.json";

/// Where a repository keeps skills, in order of precedence.
pub const SKILL_DIRS: [&str; 2] = [".cove/skills", ".claude/skills"];
/// Largest `SKILL.md` read, and most files hashed in one skill folder, and how deep.
const MAX_SKILL_FILE: u64 = 1 << 20;
const MAX_SKILL_FILES: usize = 200;
const MAX_SKILL_DEPTH: usize = 4;

/// A skill folder of the repository as it was read for the trust decision.
#[derive(Debug, Clone)]
pub struct ProjectSkill {
    /// One of [`SKILL_DIRS`].
    pub root: &'static str,
    /// The folder's name.
    pub folder: String,
    /// The folder, absolute.
    pub dir: PathBuf,
    /// `SKILL.md` as read (the text the user trusts), or why it could not be read.
    pub text: Result<String, String>,
}

/// What a repository's `.cove/` holds.
#[derive(Debug, Clone, Default)]
pub struct Project {
    /// `.cove/config.toml`, parsed, and its path.
    pub config: Option<(ConfigFile, PathBuf)>,
    pub plugins: Vec<ProjectPlugin>,
    /// Skill folders in `.cove/skills` and `.claude/skills`.
    pub skills: Vec<ProjectSkill>,
    /// `.mcp.json` at the root as read (Claude Code's MCP servers), and its path.
    pub mcp: Option<(String, PathBuf)>,
    /// blake3 over everything above, as read.
    pub hash: String,
}

/// Reading `.cove/` failed.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("cannot record the trust decision in {path}: {source}")]
    Store {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn read_capped(dir: &cap_std::fs::Dir, rel: &Path) -> std::io::Result<Vec<u8>> {
    let file = dir.open(rel)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_FILE >> 20
        )));
    }
    Ok(bytes)
}

impl Project {
    /// Read `.cove/config.toml` and `.cove/plugins/*` of `worktree`. Nothing is compiled or run.
    ///
    /// # Errors
    /// A [`TrustError`] when the project's config does not parse or a file cannot be read.
    pub fn read(worktree: &Worktree) -> Result<Self, TrustError> {
        let dir = worktree.dir();
        let root = worktree.root();
        let mut hasher = blake3::Hasher::new();
        let mut out = Project::default();
        let read_err = |rel: &Path, e: std::io::Error| TrustError::Read {
            path: root.join(rel),
            message: e.to_string(),
        };
        let config_rel = Path::new(".cove/config.toml");
        match read_capped(dir, config_rel) {
            Ok(bytes) => {
                hasher.update(b"config.toml\0");
                hasher.update(&(bytes.len() as u64).to_le_bytes());
                hasher.update(&bytes);
                let path = root.join(config_rel);
                let text = String::from_utf8(bytes).map_err(|_| ConfigError {
                    file: path.clone(),
                    message: "not UTF-8 text".into(),
                })?;
                out.config = Some((ConfigFile::parse(&text, &path)?, path));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(read_err(config_rel, e)),
        }
        let plugins_rel = Path::new(".cove/plugins");
        let folders = folders(dir, plugins_rel).map_err(|e| read_err(plugins_rel, e))?;
        for folder in folders {
            let rel = plugins_rel.join(&folder);
            let manifest_rel = rel.join("plugin.toml");
            let bytes = match read_capped(dir, &manifest_rel) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(read_err(&manifest_rel, e)),
            };
            hasher.update(format!("plugin {folder}\0").as_bytes());
            hasher.update(&(bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
            let manifest_path = root.join(&manifest_rel);
            let manifest = String::from_utf8(bytes)
                .map_err(|_| ManifestError {
                    file: manifest_path.clone(),
                    message: "not UTF-8 text".into(),
                })
                .and_then(|text| Manifest::parse(&text, &manifest_path));
            let mut component = None;
            if let Ok(m) = &manifest {
                let wasm_rel = rel.join(m.component_file());
                match read_capped(dir, &wasm_rel) {
                    Ok(bytes) => {
                        let h = blake3::hash(&bytes).to_hex().to_string();
                        hasher.update(format!("component {h}\0").as_bytes());
                        component = Some((root.join(&wasm_rel), h));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(read_err(&wasm_rel, e)),
                }
            }
            out.plugins.push(ProjectPlugin {
                dir: root.join(&rel),
                manifest,
                component,
            });
        }
        for root_rel in SKILL_DIRS {
            read_skills(dir, root, root_rel, &mut hasher, &mut out.skills)?;
        }
        let mcp_rel = Path::new(MCP_FILE);
        match read_capped(dir, mcp_rel) {
            Ok(bytes) => {
                hasher.update(b".mcp.json\0");
                hasher.update(&(bytes.len() as u64).to_le_bytes());
                hasher.update(&bytes);
                let text = String::from_utf8(bytes).map_err(|_| TrustError::Read {
                    path: root.join(mcp_rel),
                    message: "not UTF-8 text".into(),
                })?;
                out.mcp = Some((text, root.join(mcp_rel)));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(read_err(mcp_rel, e)),
        }
        out.hash = hasher.finalize().to_hex().to_string();
        Ok(out)
    }

    /// Whether there is anything in `.cove/` (or a skill in `.claude/skills`, or `.mcp.json`)
    /// at all.
    pub fn is_empty(&self) -> bool {
        self.config.is_none()
            && self.plugins.is_empty()
            && self.skills.is_empty()
            && self.mcp.is_none()
    }

    /// The MCP servers `.mcp.json` names, each with what it would run or reach, one line each
    /// (a file that does not parse is one line saying so).
    pub fn mcp_servers(&self) -> Vec<String> {
        let Some((text, _)) = &self.mcp else {
            return Vec::new();
        };
        let servers = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v.get("mcpServers").and_then(|s| s.as_object()).cloned());
        let Some(servers) = servers else {
            return vec![format!(
                "{MCP_FILE}: MCP servers in a file that does not parse"
            )];
        };
        servers
            .iter()
            .map(|(name, spec)| {
                let what = match (
                    spec.get("command").and_then(|c| c.as_str()),
                    spec.get("url").and_then(|u| u.as_str()),
                ) {
                    (Some(command), _) => {
                        let args: Vec<&str> = spec
                            .get("args")
                            .and_then(|a| a.as_array())
                            .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                            .unwrap_or_default();
                        format!(
                            "runs `{}`",
                            std::iter::once(command)
                                .chain(args)
                                .collect::<Vec<_>>()
                                .join(" ")
                        )
                    }
                    (None, Some(url)) => format!("connects to {url}"),
                    (None, None) => "an entry with neither command nor url".into(),
                };
                format!("{MCP_FILE}: MCP server `{name}` ({what})")
            })
            .collect()
    }

    /// Everything the project asks for that widens what cove may do or changes where requests
    /// go, over the user's own `config`, one line each. Empty: nothing needs trust.
    pub fn asks(&self, user: &Config, builtin: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((file, _)) = &self.config {
            let mut c = user.clone();
            c.apply_project(file.clone(), false);
            out = c.widening;
        }
        for p in &self.plugins {
            let folder = p.dir.file_name().unwrap_or_default().to_string_lossy();
            let what = match &p.manifest {
                Ok(m) if builtin.contains(&m.name) => {
                    format!("replaces the built-in plugin `{}`", m.name)
                }
                Ok(m) => format!("{} plugin `{}` (code from the repository)", m.kind, m.name),
                Err(_) => "a plugin whose manifest does not parse".into(),
            };
            out.push(format!(".cove/plugins/{folder}: {what}"));
        }
        for s in &self.skills {
            out.push(format!(
                "{}/{}: a skill (instructions and scripts from the repository)",
                s.root, s.folder
            ));
        }
        out.extend(self.mcp_servers());
        out
    }

    /// How many of [`Project::asks`] a session can go without and lose nothing else: skills and
    /// MCP servers, which are simply not offered.
    pub fn optional_asks(&self) -> usize {
        self.skills.len() + self.mcp_servers().len()
    }
}

/// The names of the folders in `rel` (none when it does not exist), sorted.
fn folders(dir: &cap_std::fs::Dir, rel: &Path) -> std::io::Result<Vec<String>> {
    let entries = match dir.read_dir(rel) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    Ok(out)
}

/// Read every `<root_rel>/<folder>/SKILL.md` and hash every file beside it (a script the skill
/// tells the model to run is part of what is trusted). Folders without `SKILL.md` are skipped.
fn read_skills(
    dir: &cap_std::fs::Dir,
    root: &Path,
    root_rel: &'static str,
    hasher: &mut blake3::Hasher,
    out: &mut Vec<ProjectSkill>,
) -> Result<(), TrustError> {
    let read_err = |rel: &Path, e: std::io::Error| TrustError::Read {
        path: root.join(rel),
        message: e.to_string(),
    };
    let base = Path::new(root_rel);
    for folder in folders(dir, base).map_err(|e| read_err(base, e))? {
        let rel = base.join(&folder);
        let skill_rel = rel.join("SKILL.md");
        let text = match dir.open(&skill_rel) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => Err(e.to_string()),
            Ok(file) => {
                let mut bytes = Vec::new();
                match file.take(MAX_SKILL_FILE + 1).read_to_end(&mut bytes) {
                    Ok(_) if bytes.len() as u64 > MAX_SKILL_FILE => {
                        Err(format!("larger than {} KiB", MAX_SKILL_FILE >> 10))
                    }
                    Ok(_) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        hasher.update(format!("skill {root_rel}/{folder}\0").as_bytes());
        let mut files = Vec::new();
        let mut stack = vec![(rel.clone(), 0usize)];
        while let Some((d, depth)) = stack.pop() {
            let entries = dir.read_dir(&d).map_err(|e| read_err(&d, e))?;
            for e in entries.filter_map(Result::ok) {
                let Ok(ty) = e.file_type() else { continue };
                let path = d.join(e.file_name());
                if ty.is_dir() && depth + 1 < MAX_SKILL_DEPTH {
                    stack.push((path, depth + 1));
                } else if ty.is_file() && files.len() < MAX_SKILL_FILES {
                    files.push(path);
                }
            }
        }
        files.sort();
        for f in &files {
            let bytes = read_capped(dir, f).map_err(|e| read_err(f, e))?;
            let h = blake3::hash(&bytes);
            hasher.update(format!("file {}\0{}\0", f.display(), h.to_hex()).as_bytes());
        }
        out.push(ProjectSkill {
            root: root_rel,
            folder,
            dir: root.join(&rel),
            text,
        });
    }
    Ok(())
}

/// A decision the user made about one repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Trusted,
    /// Declined (or revoked): the project's settings apply only where they narrow.
    Declined,
}

/// One repository's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub decision: Decision,
    /// The hash of `.cove/` the decision was made about.
    pub hash: String,
    /// Seconds since the epoch.
    pub at: u64,
    /// What the project asked for then.
    pub asks: Vec<String>,
}

/// Where a repository stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Its `.cove/` asks for nothing that needs trust.
    NotNeeded,
    /// The user trusted exactly this `.cove/`.
    Trusted,
    /// The user declined exactly this `.cove/`.
    Declined,
    /// Never decided, or decided about a `.cove/` that has changed since (`changed`).
    Undecided { changed: bool },
}

/// The user's decisions: `trust.json` in the user's config directory.
pub struct Store {
    path: PathBuf,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StoreFile {
    #[serde(default)]
    repos: BTreeMap<PathBuf, Entry>,
}

impl Store {
    pub fn new(config_dir: &Path) -> Self {
        Self {
            path: config_dir.join("trust.json"),
        }
    }

    fn load(&self) -> StoreFile {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(
                    "{} is damaged ({e}); every repository counts as undecided",
                    self.path.display()
                );
                StoreFile::default()
            }),
            Err(_) => StoreFile::default(),
        }
    }

    /// Where the repository at `root`, whose `.cove/` hashes to `hash` and asks for `asks`, stands.
    pub fn state(&self, root: &Path, hash: &str, asks: &[String]) -> State {
        if asks.is_empty() {
            return State::NotNeeded;
        }
        match self.load().repos.get(root) {
            Some(e) if e.hash == hash => match e.decision {
                Decision::Trusted => State::Trusted,
                Decision::Declined => State::Declined,
            },
            Some(_) => State::Undecided { changed: true },
            None => State::Undecided { changed: false },
        }
    }

    /// Record `decision` about `root` as it is now. Written whole to a new file, then renamed.
    ///
    /// # Errors
    /// [`TrustError::Store`] when the file cannot be written.
    pub fn record(
        &self,
        root: &Path,
        hash: &str,
        asks: &[String],
        decision: Decision,
    ) -> Result<(), TrustError> {
        let mut file = self.load();
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        file.repos.insert(
            root.to_path_buf(),
            Entry {
                decision,
                hash: hash.to_string(),
                at,
                asks: asks.to_vec(),
            },
        );
        self.write(&file)
    }

    /// Every decision, by repository path.
    pub fn list(&self) -> BTreeMap<PathBuf, Entry> {
        self.load().repos
    }

    fn write(&self, file: &StoreFile) -> Result<(), TrustError> {
        let err = |source| TrustError::Store {
            path: self.path.clone(),
            source,
        };
        let bytes = serde_json::to_vec_pretty(file).map_err(|e| err(std::io::Error::other(e)))?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(err)?;
        let tmp = dir.join(format!(".trust.json.{}", std::process::id()));
        std::fs::write(&tmp, bytes).map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)
    }
}

/// The message `cove run` refuses with, and the chat prompt's preamble.
pub fn describe(root: &Path, asks: &[String], changed: bool) -> String {
    let mut s = format!(
        "{} {}/.cove asks for settings that widen what cove may do or change where requests go{}:\n",
        if changed {
            "Since you last decided,"
        } else {
            "This repository's"
        },
        root.display(),
        if changed { " (it changed)" } else { "" }
    );
    for a in asks {
        s.push_str(&format!("  - {a}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_cove_dir_is_undecided_again() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(repo.join(".cove"))?;
        std::fs::write(
            repo.join(".cove/config.toml"),
            "[provider]\nbase_url = \"http://a\"\n",
        )?;
        let wt = Worktree::open(&repo)?;
        let store = Store::new(&tmp.path().join("config"));
        let p = Project::read(&wt)?;
        let asks = p.asks(&Config::default(), &[]);
        assert_eq!(asks.len(), 1, "{asks:?}");
        let root = wt.root();
        assert_eq!(
            store.state(root, &p.hash, &asks),
            State::Undecided { changed: false }
        );
        store.record(root, &p.hash, &asks, Decision::Trusted)?;
        assert_eq!(store.state(root, &p.hash, &asks), State::Trusted);
        std::fs::write(
            repo.join(".cove/config.toml"),
            "[provider]\nbase_url = \"http://b\"\n",
        )?;
        let p2 = Project::read(&wt)?;
        assert_ne!(p.hash, p2.hash);
        assert_eq!(
            store.state(root, &p2.hash, &asks),
            State::Undecided { changed: true }
        );
        store.record(root, &p2.hash, &asks, Decision::Declined)?;
        assert_eq!(store.state(root, &p2.hash, &asks), State::Declined);
        assert_eq!(store.list().len(), 1);
        Ok(())
    }
}
