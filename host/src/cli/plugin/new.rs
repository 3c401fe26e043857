//! `cove plugin new`: a folder holding a working example plugin, from the templates under
//! `host/templates/plugin/` (embedded in the binary) and the contract's WIT (`wit/v0.2`).

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The languages a plugin can be started in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Lang {
    Rust,
    Js,
    Python,
}

/// The plugin kinds, as `--kind` takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum KindArg {
    Tool,
    Skill,
    Policy,
}

impl KindArg {
    fn as_str(self) -> &'static str {
        match self {
            KindArg::Tool => "tool",
            KindArg::Skill => "skill",
            KindArg::Policy => "policy",
        }
    }
}

/// The contract every new plugin is written against, and its WIT.
const CONTRACT: &str = "0.2.0";
const WIT: &[(&str, &str)] = &[
    ("types.wit", include_str!("../../../../wit/v0.2/types.wit")),
    (
        "worlds.wit",
        include_str!("../../../../wit/v0.2/worlds.wit"),
    ),
];

macro_rules! template {
    ($path:literal) => {
        include_str!(concat!("../../../templates/plugin/", $path))
    };
}

const README: &str = template!("README.md");

/// The files of one language and kind: (path in the new folder, template text).
fn files(lang: Lang, kind: KindArg) -> Vec<(&'static str, &'static str)> {
    let manifest = match kind {
        KindArg::Tool => template!("manifest/tool.toml"),
        KindArg::Skill => template!("manifest/skill.toml"),
        KindArg::Policy => template!("manifest/policy.toml"),
    };
    let mut files = vec![("plugin.toml", manifest), ("README.md", README)];
    files.extend(match (lang, kind) {
        (Lang::Rust, k) => vec![
            ("Cargo.toml", template!("rust/Cargo.toml")),
            (".gitignore", template!("rust/gitignore")),
            (
                "src/lib.rs",
                match k {
                    KindArg::Tool => template!("rust/tool.rs"),
                    KindArg::Skill => template!("rust/skill.rs"),
                    KindArg::Policy => template!("rust/policy.rs"),
                },
            ),
        ],
        (Lang::Js, k) => vec![
            ("package.json", template!("js/package.json")),
            (".gitignore", template!("js/gitignore")),
            (
                "src/index.js",
                match k {
                    KindArg::Tool => template!("js/tool.js"),
                    KindArg::Skill => template!("js/skill.js"),
                    KindArg::Policy => template!("js/policy.js"),
                },
            ),
        ],
        (Lang::Python, k) => vec![
            (".gitignore", template!("python/gitignore")),
            (
                "app.py",
                match k {
                    KindArg::Tool => template!("python/tool.py"),
                    KindArg::Skill => template!("python/skill.py"),
                    KindArg::Policy => template!("python/policy.py"),
                },
            ),
        ],
    });
    files
}

/// Whether `name` can name a plugin folder, a crate, a package and a component: lowercase letters,
/// digits and `-`, starting with a letter.
fn valid_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The placeholders a template may hold, and their values.
fn substitutions(name: &str, lang: Lang, kind: KindArg, dir: &Path) -> Vec<(&'static str, String)> {
    let (language, source, toolchain, build) = match lang {
        Lang::Rust => (
            "Rust",
            "src/lib.rs",
            "cargo, for wasm32-wasip2 (rustup target add wasm32-wasip2)",
            format!(
                "cargo build --release --target wasm32-wasip2 && cp target/wasm32-wasip2/release/{}.wasm {name}.wasm",
                name.replace('-', "_")
            ),
        ),
        Lang::Js => (
            "JavaScript",
            "src/index.js",
            "componentize-js, installed into node_modules/ on first use (needs node 18 or newer)",
            "npm install && npm run build".to_string(),
        ),
        Lang::Python => (
            "Python",
            "app.py",
            "componentize-py, installed with pip on first use",
            format!(
                "componentize-py -d wit -w cove:plugin/{}@{CONTRACT} componentize app -o {name}.wasm",
                kind.as_str()
            ),
        ),
    };
    let try_it = match kind {
        KindArg::Tool => {
            "cove tools call word_count '{\"text\": \"a b a\"}'   # 3 words".to_string()
        }
        KindArg::Skill => format!(
            "cove skills list                 # `{name}` is offered; the model loads it with the `skill` tool"
        ),
        KindArg::Policy => format!(
            "cove run --policy default --policy {name} \"…\"   # or policy = [\"default\", \"{name}\"] in the config"
        ),
    };
    vec![
        ("{{name}}", name.to_string()),
        ("{{crate}}", name.replace('-', "_")),
        ("{{kind}}", kind.as_str().to_string()),
        ("{{language}}", language.to_string()),
        ("{{source}}", source.to_string()),
        ("{{toolchain}}", toolchain.to_string()),
        ("{{build}}", build),
        ("{{try}}", try_it),
        ("{{path}}", dir.display().to_string()),
    ]
}

pub(crate) fn run(
    name: &str,
    lang: Lang,
    kind: KindArg,
    parent: Option<PathBuf>,
) -> Result<ExitCode> {
    if !valid_name(name) {
        bail!(
            "`{name}` is not a valid plugin name: use lowercase letters, digits and `-`, starting with a letter (like `word-count`)"
        );
    }
    let parent = match parent {
        Some(p) => p,
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let parent = parent
        .canonicalize()
        .with_context(|| format!("cannot open {}", parent.display()))?;
    let dir = parent.join(name);
    if let Ok(mut entries) = std::fs::read_dir(&dir)
        && entries.next().is_some()
    {
        bail!(
            "{} already exists and is not empty; choose another name or --dir",
            dir.display()
        );
    }
    if dir.exists() && !dir.is_dir() {
        bail!("{} already exists and is not a folder", dir.display());
    }
    let subs = substitutions(name, lang, kind, &dir);
    let fill = |text: &str| {
        subs.iter()
            .fold(text.to_string(), |t, (from, to)| t.replace(from, to))
    };
    let mut written = Vec::new();
    for (path, text) in files(lang, kind) {
        write(&dir, path, &fill(text))?;
        written.push(path.to_string());
    }
    for (file, text) in WIT {
        write(&dir, &format!("wit/{file}"), text)?;
    }
    written.push("wit/ (the contract, cove:plugin@0.2.0)".into());
    println!(
        "created {} {} plugin `{name}` in {}:",
        match lang {
            Lang::Rust => "a Rust",
            Lang::Js => "a JavaScript",
            Lang::Python => "a Python",
        },
        kind.as_str(),
        dir.display()
    );
    for w in &written {
        println!("  {w}");
    }
    println!("next:");
    println!("  cd {}", dir.display());
    println!("  cove plugin build     # builds {name}.wasm");
    println!("  cove plugin test      # runs the samples in plugin.toml");
    println!(
        "  cove plugin install {}   # run in a repository: into its .cove/plugins/",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn write(dir: &Path, rel: &str, text: &str) -> Result<()> {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_plugins_are_written_against_the_newest_contract() {
        assert_eq!(CONTRACT, cove::plugins::contract::NEWEST);
        for (file, text) in WIT {
            assert!(text.contains("package cove:plugin@0.2.0;"), "{file}");
        }
    }

    #[test]
    fn names() {
        for good in ["a", "word-count", "x2", "my-tool-3"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "Word", "2x", "a_b", "a-", "a--b", "a b", "../x", "a.b"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn every_template_manifest_parses_and_every_placeholder_is_filled() {
        for lang in [Lang::Rust, Lang::Js, Lang::Python] {
            for kind in [KindArg::Tool, KindArg::Skill, KindArg::Policy] {
                let subs = substitutions("my-plugin", lang, kind, Path::new("/p/my-plugin"));
                for (path, text) in files(lang, kind) {
                    let text = subs
                        .iter()
                        .fold(text.to_string(), |t, (from, to)| t.replace(from, to));
                    assert!(!text.contains("{{"), "{path} keeps a placeholder");
                    if path == "plugin.toml" {
                        let m = cove::plugins::manifest::Manifest::parse(&text, Path::new(path));
                        assert!(m.is_ok(), "{lang:?} {kind:?}: {m:?}");
                    }
                }
            }
        }
    }
}
