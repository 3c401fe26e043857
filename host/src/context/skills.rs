//! Skills: instructions for particular tasks, offered as a one-line index and loaded on demand.
//!
//! Owns finding skills and what is known of them before any is loaded: `SKILL.md` folders (the
//! Agent Skills format Claude Code uses) in `.cove/skills/` and `.claude/skills/` of the project,
//! `skills/` in the user's config directory and in `~/.claude/`, and WASM skill plugins (their
//! manifest's description; nothing is compiled to list them). Also owns the index that goes
//! into the system prompt, the `allowed-tools` rules as written, the skills a session has
//! activated ([`Active`]) and what of them is re-injected after a compaction.
//!
//! Precedence, when one name is found in several places: project over user, and within each,
//! `.cove/skills` over a skill plugin over `.claude/skills`. A project's skills come from what
//! `plugins::trust` read (the bytes the user trusted) and are offered only once the repository is
//! trusted.
//!
//! Must not run anything (a skill's scripts run only through the `bash` tool), decide whether a
//! call is allowed (the policy gate reads [`AllowedTools`]), or load components (the registry does).

use crate::config::OneOrMany;
use crate::plugins::manifest::Kind;
use crate::plugins::registry::{Layer, Registry};
use crate::plugins::trust::ProjectSkill;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file that makes a folder a skill.
pub const SKILL_FILE: &str = "SKILL.md";
/// Longest description the Agent Skills format allows; longer ones load with a warning.
pub const MAX_DESCRIPTION: usize = 1024;
/// Most bytes of skill lines in the index before descriptions are shortened, then left out.
pub const MAX_INDEX: usize = 8 * 1024;
/// A description's length in an index that would not fit otherwise.
const SHORT_DESCRIPTION: usize = 100;
/// Most bytes of one active skill re-injected after a compaction.
pub const REINJECT_PER_SKILL: usize = 5 * 1024;
/// Most bytes of all active skills re-injected after a compaction (the oldest are dropped first).
pub const REINJECT_TOTAL: usize = 20 * 1024;
/// Most files listed for a skill folder, and how deep the listing goes.
const MAX_FILES: usize = 200;
const MAX_DEPTH: usize = 4;

/// Where a skill was found. The order is the precedence: earlier wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// `.cove/skills/` in the repository.
    Project,
    /// A skill plugin in `.cove/plugins/`.
    ProjectPlugin,
    /// `.claude/skills/` in the repository.
    ProjectClaude,
    /// `skills/` in the user's config directory (`~/.config/cove/skills`).
    User,
    /// A skill plugin in the user's `plugins/`.
    UserPlugin,
    /// `~/.claude/skills` (`$CLAUDE_CONFIG_DIR/skills`).
    UserClaude,
    /// A skill plugin built into cove.
    BuiltIn,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Project => "project",
            Source::ProjectPlugin => "project-plugin",
            Source::ProjectClaude => "project-claude",
            Source::User => "user",
            Source::UserPlugin => "user-plugin",
            Source::UserClaude => "user-claude",
            Source::BuiltIn => "built-in",
        })
    }
}

/// What a skill's instructions are.
#[derive(Debug, Clone)]
pub enum Body {
    /// A `SKILL.md` folder: the markdown after the front matter.
    Markdown { dir: PathBuf, text: String },
    /// A skill plugin: its component exports the instructions.
    Wasm { plugin: String },
}

/// One skill as the index and `cove skills list` show it.
#[derive(Debug, Clone)]
pub struct Skill {
    pub name: String,
    pub description: String,
    pub source: Source,
    /// `SKILL.md`, or the plugin's `plugin.toml` (`built-in` for a built-in).
    pub path: PathBuf,
    pub license: Option<String>,
    pub allowed_tools: Option<AllowedTools>,
    pub metadata: Option<serde_json::Value>,
    /// Loaded all the same, but worth fixing.
    pub warnings: Vec<String>,
    pub body: Body,
}

/// Every skill of a workspace, by name.
#[derive(Debug, Default)]
pub struct Catalog {
    /// The skills offered, sorted by name.
    skills: Vec<Skill>,
    /// A repository's skills that are not offered because it is not trusted.
    untrusted: Vec<Skill>,
    /// Skills that could not be loaded (file, line, fix); the others still load.
    problems: Vec<String>,
}

/// Where [`Catalog::discover`] looks.
pub struct Sources<'a> {
    /// What `plugins::trust` read from `.cove/skills` and `.claude/skills`.
    pub project: &'a [ProjectSkill],
    /// Whether the repository is trusted (else its skills are listed but not offered).
    pub trusted: bool,
    /// cove's user config directory (`~/.config/cove`); its `skills/` is read.
    pub user_dir: Option<&'a Path>,
    /// Claude Code's directory (`~/.claude`); its `skills/` is read.
    pub claude_dir: Option<&'a Path>,
    /// Skill plugins come from the registry's manifests.
    pub registry: Option<&'a Registry>,
}

impl Catalog {
    /// Find every skill. Reads `SKILL.md` files and manifests only; compiles nothing.
    pub fn discover(sources: Sources<'_>) -> Self {
        let mut problems = Vec::new();
        let mut found: Vec<Skill> = Vec::new();
        let mut untrusted = Vec::new();
        for p in sources.project {
            let source = if p.root == crate::plugins::trust::SKILL_DIRS[0] {
                Source::Project
            } else {
                Source::ProjectClaude
            };
            let file = p.dir.join(SKILL_FILE);
            let parsed = match &p.text {
                Ok(text) => parse(text, &file, &p.folder, source),
                Err(e) => Err(format!("{}: {e}", file.display())),
            };
            match parsed {
                Ok(mut s) if !sources.trusted => {
                    s.warnings.push(
                        "not offered: this repository is not trusted (`cove trust` trusts it)"
                            .into(),
                    );
                    untrusted.push(s);
                }
                Ok(s) => found.push(s),
                Err(e) => problems.push(e),
            }
        }
        let user_dirs = [
            (sources.user_dir, Source::User),
            (sources.claude_dir, Source::UserClaude),
        ];
        for (dir, source) in user_dirs {
            if let Some(dir) = dir {
                read_user_dir(&dir.join("skills"), source, &mut found, &mut problems);
            }
        }
        if let Some(registry) = sources.registry {
            for p in registry.plugins() {
                if !p.enabled || p.manifest.kind != Kind::Skill {
                    continue;
                }
                let source = match p.layer {
                    Layer::Project => Source::ProjectPlugin,
                    Layer::User => Source::UserPlugin,
                    Layer::BuiltIn => Source::BuiltIn,
                };
                let description = one_line(&p.manifest.description);
                found.push(Skill {
                    name: p.manifest.name.clone(),
                    description,
                    source,
                    path: PathBuf::from(&p.origin),
                    license: None,
                    allowed_tools: None,
                    metadata: None,
                    warnings: Vec::new(),
                    body: Body::Wasm {
                        plugin: p.manifest.name.clone(),
                    },
                });
            }
        }
        found.sort_by(|a, b| a.name.cmp(&b.name).then(a.source.cmp(&b.source)));
        let mut skills: Vec<Skill> = Vec::new();
        for s in found {
            match skills.last_mut() {
                Some(winner) if winner.name == s.name => winner.warnings.push(format!(
                    "also defined in {} ({}), which this one hides (project over user, .cove over .claude)",
                    s.path.display(),
                    s.source
                )),
                _ => skills.push(s),
            }
        }
        untrusted.sort_by(|a, b| a.name.cmp(&b.name));
        Self {
            skills,
            untrusted,
            problems,
        }
    }

    /// The skills offered, sorted by name.
    pub fn skills(&self) -> &[Skill] {
        &self.skills
    }

    /// The skills offered, then a repository's skills held back until it is trusted.
    pub fn listed(&self) -> impl Iterator<Item = &Skill> {
        self.skills.iter().chain(&self.untrusted)
    }

    /// Skills that could not be loaded, each with its file, line and fix.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    pub fn is_empty(&self) -> bool {
        self.skills.is_empty()
    }

    /// The offered skill called `name`.
    pub fn get(&self, name: &str) -> Option<&Skill> {
        self.skills.iter().find(|s| s.name == name)
    }

    /// The index for the system prompt: one line per skill, by name. Empty without skills.
    /// Nothing in it depends on time or on what was loaded, so the prompt's prefix holds.
    pub fn index(&self) -> String {
        if self.skills.is_empty() {
            return String::new();
        }
        let mut out = String::from(
            "\n<skills>\nSkills hold instructions for particular tasks. When a task matches one, call the `skill` tool \
             with its name before you start: it returns the instructions and lists the files that come with it.\n",
        );
        // Whole descriptions while they fit; then each cut short; then names alone, so that
        // many skills cannot crowd the prompt and every one can still be loaded by name.
        let lines = |cap: usize| -> Vec<String> {
            self.skills
                .iter()
                .map(|s| {
                    let mut d: String = s.description.chars().take(cap).collect();
                    if d.len() < s.description.len() && cap < MAX_DESCRIPTION {
                        d.push('…');
                    }
                    format!("- {}: {d}\n", s.name)
                })
                .collect()
        };
        let mut chosen = lines(MAX_DESCRIPTION);
        if chosen.iter().map(String::len).sum::<usize>() > MAX_INDEX {
            chosen = lines(SHORT_DESCRIPTION);
        }
        let mut used = 0;
        let mut bare = 0;
        for (line, s) in chosen.iter().zip(&self.skills) {
            if used + line.len() <= MAX_INDEX {
                used += line.len();
                out.push_str(line);
            } else {
                bare += 1;
                out.push_str(&format!("- {}\n", s.name));
            }
        }
        if bare > 0 {
            out.push_str(&format!(
                "({bare} descriptions left out for room; `cove skills list` has them, and `skill` loads any of these)\n"
            ));
        }
        out.push_str("</skills>\n");
        out
    }
}

/// Every `<dir>/<folder>/SKILL.md`, sorted by folder.
fn read_user_dir(dir: &Path, source: Source, found: &mut Vec<Skill>, problems: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut folders: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    for folder in folders {
        let file = folder.join(SKILL_FILE);
        let text = match std::fs::read(&file) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                problems.push(format!("{}: {e}", file.display()));
                continue;
            }
        };
        let name = folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match parse(&text, &file, &name, source) {
            Ok(s) => found.push(s),
            Err(e) => problems.push(e),
        }
    }
}

/// The front matter keys cove reads; others are ignored.
#[derive(Deserialize)]
struct Front {
    name: Option<String>,
    description: Option<String>,
    license: Option<String>,
    #[serde(rename = "allowed-tools")]
    allowed_tools: Option<OneOrMany>,
    metadata: Option<serde_json::Value>,
}

/// The YAML between the opening `---` and the closing `---` (or `...`), the line the YAML starts
/// on, and the markdown after it. `None` when the file does not open with front matter.
pub(crate) fn split_front_matter(text: &str) -> Option<(&str, usize, &str)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    let first = lines.next()?;
    if first.trim_end() != "---" {
        return None;
    }
    let start = first.len();
    let mut at = start;
    for line in lines {
        let t = line.trim_end();
        if t == "---" || t == "..." {
            return Some((&text[start..at], 2, &text[at + line.len()..]));
        }
        at += line.len();
    }
    None
}

/// Parse one `SKILL.md` found in folder `folder`.
///
/// # Errors
/// `FILE:LINE: what is wrong; the fix`, for a file without front matter or description, or with
/// YAML that does not parse.
pub fn parse(text: &str, file: &Path, folder: &str, source: Source) -> Result<Skill, String> {
    let at = |line: u64| format!("{}:{line}", file.display());
    let Some((yaml, first_line, body)) = split_front_matter(text) else {
        return Err(format!(
            "{}: no front matter; start the file with a `---` line, then `name: {folder}` and \
             `description: what it does and when to use it`, then a closing `---` line",
            at(1)
        ));
    };
    let front: Front = if yaml.trim().is_empty() {
        Front {
            name: None,
            description: None,
            license: None,
            allowed_tools: None,
            metadata: None,
        }
    } else {
        let options = serde_saphyr::options! { with_snippet: false };
        serde_saphyr::from_str_with_options(yaml, options).map_err(|e| {
            let line = e
                .location()
                .map_or(first_line as u64, |l| l.line() + first_line as u64 - 1);
            let message = e.to_string();
            let message = message.lines().next().unwrap_or_default();
            // Its own position counts from the YAML's first line; ours is the file's.
            let message = message.split(" at line ").next().unwrap_or_default();
            format!(
                "{}: the front matter is not valid YAML ({message}); quote a value that holds `: ` or `#`, \
                 or write `description: >` and the text indented on the lines below",
                at(line)
            )
        })?
    };
    let line_of = |key: &str| {
        yaml.lines()
            .position(|l| l.starts_with(&format!("{key}:")))
            .map_or(first_line as u64, |i| (i + first_line) as u64)
    };
    let description = front
        .description
        .as_deref()
        .map(one_line)
        .filter(|d| !d.is_empty());
    let Some(description) = description else {
        return Err(format!(
            "{}: no `description`; add `description: what this skill does and when to use it` to the front matter \
             (the model sees only the description until it loads the skill)",
            at(line_of("description"))
        ));
    };
    let mut warnings = Vec::new();
    if description.chars().count() > MAX_DESCRIPTION {
        warnings.push(format!(
            "the description has {} characters, more than {MAX_DESCRIPTION}; the index shows the first {MAX_DESCRIPTION}",
            description.chars().count()
        ));
    }
    let name = match front
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        Some(n) => {
            if n != folder {
                warnings.push(format!(
                    "`name: {n}` differs from its folder `{folder}`; the skill is called `{n}`"
                ));
            }
            n.to_string()
        }
        None => {
            warnings.push(format!(
                "no `name`; the skill is called after its folder, `{folder}` (add `name: {folder}`)"
            ));
            folder.to_string()
        }
    };
    if !crate::plugins::manifest::is_tool_name(&name) {
        warnings.push(format!(
            "`{name}` is not a good skill name; use lowercase letters, digits and `-` (at most 64)"
        ));
    }
    let allowed_tools = front.allowed_tools.map(|a| {
        let entries = a.into_vec();
        let (rules, unknown) = AllowedTools::parse(&entries);
        for u in unknown {
            warnings.push(format!(
                "allowed-tools names `{u}`, which cove does not have; calls to it are never allowed"
            ));
        }
        rules
    });
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok(Skill {
        name,
        description,
        source,
        path: file.to_path_buf(),
        license: front.license,
        allowed_tools,
        metadata: front.metadata,
        warnings,
        body: Body::Markdown {
            dir,
            text: body.trim().to_string(),
        },
    })
}

/// The start of `text`, at most `max` bytes with the note saying it was cut; whether it was.
fn head(text: &str, max: usize, name: &str) -> (String, bool) {
    if text.len() <= max {
        return (text.to_string(), false);
    }
    let note =
        format!("\n[... cut here; `skill` {{\"name\": \"{name}\"}} gives the whole text again]");
    let mut end = max.saturating_sub(note.len());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    (format!("{}{note}", &text[..end]), true)
}

/// Whitespace (a block scalar's newlines too) folded to single spaces.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The files of a skill folder, relative to it, sorted; links are not followed.
pub fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let Ok(ty) = e.file_type() else { continue };
            let path = e.path();
            if ty.is_dir() && depth + 1 < MAX_DEPTH {
                stack.push((path, depth + 1));
            } else if ty.is_file()
                && let Ok(rel) = path.strip_prefix(dir)
                && rel != Path::new(SKILL_FILE)
            {
                out.push(rel.to_string_lossy().into_owned());
            }
            if out.len() >= MAX_FILES {
                out.sort();
                return out;
            }
        }
    }
    out.sort();
    out
}

/// Claude Code's tool names and cove's.
pub const CLAUDE_TOOL_NAMES: &[(&str, &str)] = &[
    ("Read", "read"),
    ("Write", "write"),
    ("Edit", "edit"),
    ("MultiEdit", "edit"),
    ("Glob", "glob"),
    ("Grep", "grep"),
    ("LS", "ls"),
    ("Bash", "bash"),
];

/// What `bash` commands a rule allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Commands {
    /// `Bash`, `Bash(*)`.
    Any,
    /// `Bash(git:*)`, `Bash(git diff *)`: simple commands whose first words are these.
    Prefix(String),
    /// `Bash(npm test)`: exactly this command.
    Exact(String),
}

/// One entry of `allowed-tools`, in cove's names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolRule {
    /// Any call of this tool (an argument pattern on a tool other than `Bash` is not narrowed further).
    Tool(String),
    Bash(Commands),
}

/// A skill's `allowed-tools`: while the skill is active, only these tools may be called (the
/// policy gate enforces it; the `skill` tool stays callable). It only ever narrows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllowedTools {
    /// As the front matter wrote it.
    pub written: Vec<String>,
    pub rules: Vec<ToolRule>,
}

impl AllowedTools {
    /// Parse entries such as `Read, Grep`, `Bash(git:*) Read` or a list of them. Returns the
    /// rules and the names cove has no tool for (kept: they allow nothing).
    pub fn parse(entries: &[String]) -> (Self, Vec<String>) {
        let mut tokens = Vec::new();
        for e in entries {
            // Commas and spaces separate entries, except inside parentheses (`Bash(git diff:*)`).
            let (mut depth, mut cur) = (0i32, String::new());
            for c in e.chars() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                if depth <= 0 && (c == ',' || c.is_whitespace()) {
                    if !cur.is_empty() {
                        tokens.push(std::mem::take(&mut cur));
                    }
                } else {
                    cur.push(c);
                }
            }
            if !cur.is_empty() {
                tokens.push(cur);
            }
        }
        let mut rules = Vec::new();
        let mut unknown = Vec::new();
        for t in &tokens {
            let (name, arg) = match t.split_once('(') {
                Some((n, rest)) => (n, Some(rest.strip_suffix(')').unwrap_or(rest).trim())),
                None => (t.as_str(), None),
            };
            let cove = CLAUDE_TOOL_NAMES
                .iter()
                .find(|(claude, _)| *claude == name)
                .map_or(name, |(_, cove)| cove);
            if cove == "bash" {
                let commands = match arg {
                    None | Some("*") | Some("") => Commands::Any,
                    Some(a) => match a.strip_suffix(":*").or_else(|| a.strip_suffix(" *")) {
                        Some(prefix) => Commands::Prefix(prefix.trim().to_string()),
                        None => Commands::Exact(a.to_string()),
                    },
                };
                rules.push(ToolRule::Bash(commands));
                continue;
            }
            let known = cove
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
            if !known {
                unknown.push(t.clone());
            }
            rules.push(ToolRule::Tool(cove.to_string()));
        }
        (
            Self {
                written: entries.to_vec(),
                rules,
            },
            unknown,
        )
    }

    /// The entries as the front matter wrote them, on one line.
    pub fn describe(&self) -> String {
        self.written.join(", ")
    }
}

/// A skill the model loaded in this session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    pub name: String,
    /// The instructions as the model got them (re-injected after a compaction).
    pub text: String,
    pub allowed_tools: Option<AllowedTools>,
    /// The tools it bundles (a skill plugin's), callable only while it is active.
    pub tools: Vec<String>,
}

/// The skills active in a session, oldest first. Cheap to clone (the gate gets a copy per call).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Active {
    list: Vec<Arc<Activation>>,
}

/// One active skill's text for re-injection after a compaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reinjected {
    pub name: String,
    pub text: String,
    /// Whether the text was cut to the per-skill cap.
    pub cut: bool,
}

impl Active {
    pub fn get(&self, name: &str) -> Option<&Activation> {
        self.list.iter().map(AsRef::as_ref).find(|a| a.name == name)
    }

    /// Record `a` as active; a skill loaded again keeps its place.
    pub fn push(&mut self, a: Activation) {
        if self.get(&a.name).is_none() {
            self.list.push(Arc::new(a));
        }
    }

    /// Active skills, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Activation> {
        self.list.iter().map(AsRef::as_ref)
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The active skill that bundles `tool`, if any.
    pub fn owner_of(&self, tool: &str) -> Option<&Activation> {
        self.iter().find(|a| a.tools.iter().any(|t| t == tool))
    }

    /// The active skills' instructions for re-injection after a compaction, oldest first: each
    /// cut to [`REINJECT_PER_SKILL`], and the oldest dropped while all of them together pass
    /// [`REINJECT_TOTAL`].
    pub fn reinjection(&self) -> Vec<Reinjected> {
        self.reinjection_within(REINJECT_PER_SKILL, REINJECT_TOTAL)
    }

    /// [`Self::reinjection`] with other caps.
    pub fn reinjection_within(&self, per_skill: usize, total: usize) -> Vec<Reinjected> {
        let mut out = Vec::new();
        let mut used = 0usize;
        for a in self.list.iter().rev() {
            let (text, cut) = head(&a.text, per_skill, &a.name);
            if used + text.len() > total {
                break;
            }
            used += text.len();
            out.push(Reinjected {
                name: a.name.clone(),
                text,
                cut,
            });
        }
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Skill, String> {
        parse(text, Path::new("/s/pdf/SKILL.md"), "pdf", Source::User)
    }

    #[test]
    fn many_skills_cannot_crowd_the_index_and_each_is_still_named() -> Result<(), String> {
        let make = |n: usize, len: usize| -> Result<Catalog, String> {
            let mut skills = Vec::new();
            for i in 0..n {
                skills.push(parsed(&format!(
                    "---\nname: skill-{i:03}\ndescription: {}\n---\nbody\n",
                    "d".repeat(len)
                ))?);
            }
            Ok(Catalog {
                skills,
                ..Catalog::default()
            })
        };
        // Few: whole descriptions.
        let few = make(3, 300)?.index();
        assert!(
            few.contains(&format!("- skill-002: {}\n", "d".repeat(300))),
            "{few}"
        );
        // Many: shortened, then names alone, and bounded.
        let many = make(200, 300)?.index();
        assert!(many.len() < MAX_INDEX + 200 * 16 + 400, "{}", many.len());
        assert!(many.contains(&format!(
            "- skill-000: {}…\n",
            "d".repeat(SHORT_DESCRIPTION)
        )));
        assert!(many.contains("- skill-199\n") && many.contains("descriptions left out for room"));
        Ok(())
    }

    #[test]
    fn plain_quoted_and_block_descriptions_all_load() -> Result<(), String> {
        let plain = parsed(
            "---\nname: pdf\ndescription: Fill PDF forms. Use for .pdf files\n---\n# PDF\nbody\n",
        )?;
        assert_eq!(plain.description, "Fill PDF forms. Use for .pdf files");
        assert!(plain.warnings.is_empty(), "{:?}", plain.warnings);
        assert!(matches!(&plain.body, Body::Markdown { text, .. } if text == "# PDF\nbody"));
        let quoted =
            parsed("---\nname: \"pdf\"\ndescription: \"Fill forms: text, checkboxes\"\n---\n")?;
        assert_eq!(quoted.description, "Fill forms: text, checkboxes");
        let folded = parsed(
            "---\nname: pdf\ndescription: >\n  Fill forms\n  and more.\nlicense: MIT\n---\nx",
        )?;
        assert_eq!(folded.description, "Fill forms and more.");
        assert_eq!(folded.license.as_deref(), Some("MIT"));
        let literal = parsed(
            "---\nname: pdf\ndescription: |\n  Line one.\n  Line two.\nmetadata:\n  version: 2\nextra-key: [1, 2]\n---\nx",
        )?;
        assert_eq!(literal.description, "Line one. Line two.");
        assert_eq!(literal.metadata, Some(serde_json::json!({"version": 2})));
        Ok(())
    }

    #[test]
    fn tolerated_and_refused() {
        let long = "x".repeat(1100);
        let s = parsed(&format!("---\nname: other\ndescription: {long}\n---\n"));
        let w = s.map(|s| s.warnings).unwrap_or_default();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("1100 characters") && w[1].contains("differs from its folder"));
        let missing = parsed("---\nname: pdf\nlicense: MIT\n---\nbody")
            .err()
            .unwrap_or_default();
        assert!(
            missing.starts_with("/s/pdf/SKILL.md:2: no `description`")
                && missing.contains("add `description:"),
            "{missing}"
        );
        let broken =
            parsed("---\nname: pdf\ndescription: Use it: when [unclosed\nlicense: MIT\n---\n")
                .err()
                .unwrap_or_default();
        assert!(
            broken.starts_with("/s/pdf/SKILL.md:3: the front matter is not valid YAML"),
            "{broken}"
        );
        let none = parsed("# Just markdown\n").err().unwrap_or_default();
        assert!(none.contains(":1: no front matter"), "{none}");
    }

    #[test]
    fn allowed_tools_map_claude_names_onto_coves() {
        let (a, unknown) = AllowedTools::parse(&["Read, Grep".into()]);
        assert_eq!(
            a.rules,
            vec![ToolRule::Tool("read".into()), ToolRule::Tool("grep".into())]
        );
        assert!(unknown.is_empty());
        let (a, unknown) =
            AllowedTools::parse(&["Bash(git diff:*) Bash(npm test) Bash WebFetch outline".into()]);
        assert_eq!(
            a.rules,
            vec![
                ToolRule::Bash(Commands::Prefix("git diff".into())),
                ToolRule::Bash(Commands::Exact("npm test".into())),
                ToolRule::Bash(Commands::Any),
                ToolRule::Tool("WebFetch".into()),
                ToolRule::Tool("outline".into()),
            ]
        );
        assert_eq!(unknown, vec!["WebFetch".to_string()]);
    }

    fn activation(name: &str, bytes: usize) -> Activation {
        Activation {
            name: name.into(),
            text: "x".repeat(bytes),
            allowed_tools: None,
            tools: Vec::new(),
        }
    }

    #[test]
    fn reinjection_caps_each_skill_and_drops_the_oldest_first() {
        let mut active = Active::default();
        active.push(activation("oldest", 100));
        active.push(activation("middle", 8000));
        active.push(activation("newest", 300));
        active.push(activation("newest", 1));
        // 300 + 5000 fit in 5350; the oldest's 100 more would not.
        let r = active.reinjection_within(5000, 5350);
        let names: Vec<&str> = r.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, vec!["middle", "newest"]);
        assert!(r[0].cut && r[0].text.len() <= 5000, "{}", r[0].text.len());
        assert!(!r[1].cut && r[1].text.len() == 300);
        assert!(r.iter().map(|r| r.text.len()).sum::<usize>() <= 5350);
        assert_eq!(active.reinjection_within(5000, 5400).len(), 3);
        let all = active.reinjection();
        assert_eq!(all.len(), 3);
        assert!(all.iter().all(|r| r.text.len() <= REINJECT_PER_SKILL));
    }
}
