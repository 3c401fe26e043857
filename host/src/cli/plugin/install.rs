//! `cove plugin install`: check a built plugin the way cove will load it, then copy its manifest
//! and component into the project's `.cove/plugins/NAME/` or the user's plugins folder, and say
//! what it asks for and how to grant it.

use super::{find, granting_asks, read_manifest, registry_of};
use anyhow::{Context, Result, anyhow, bail};
use cove::config::Config;
use cove::plugins::manifest::{Kind, Manifest};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub(crate) fn run(
    worktree: Option<PathBuf>,
    path: &Path,
    user: bool,
    force: bool,
) -> Result<ExitCode> {
    let (manifest, dir) = read_manifest(path)?;
    let file = manifest.component_file();
    let component = dir.join(&file);
    if !component.is_file() {
        bail!(
            "{} has no component: {} does not exist; build it first with `cove plugin build {}`",
            dir.display(),
            component.display(),
            path.display()
        );
    }
    let mut repo = None;
    let (target, where_) = if user {
        let config = cove::paths::config_dir()
            .context("cannot find your config directory: set HOME or COVE_CONFIG_DIR")?;
        (
            config.join("plugins").join(&manifest.name),
            "your plugins (every repository)".to_string(),
        )
    } else {
        let wt = crate::cli::open_worktree(worktree)?;
        repo = Some(wt.root().to_path_buf());
        (
            wt.root().join(".cove/plugins").join(&manifest.name),
            format!("the plugins of {}", wt.root().display()),
        )
    };
    if target.canonicalize().ok().as_deref() == Some(dir.as_path()) {
        bail!("{} is where it would be installed already", dir.display());
    }
    let manifest_text = std::fs::read(dir.join("plugin.toml"))?;
    let component_bytes = std::fs::read(&component)
        .with_context(|| format!("cannot read {}", component.display()))?;
    if let Some(previous) = existing(&target, &manifest)? {
        let same_files = std::fs::read(target.join("plugin.toml")).ok()
            == Some(manifest_text.clone())
            && std::fs::read(target.join(&file)).ok() == Some(component_bytes.clone());
        match previous {
            Existing::Same(version) if same_files => {
                println!(
                    "{} {version} is installed in {} already, unchanged",
                    manifest.name,
                    target.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            Existing::Same(version) => println!(
                "replacing {} {version} ({}) in {}",
                manifest.name,
                manifest.kind,
                target.display()
            ),
            Existing::Other(what) if force => {
                println!("replacing {what} in {} (--force)", target.display());
            }
            Existing::Other(what) => bail!(
                "{} holds {what}, not an earlier build of {} ({}); pass --force to replace it",
                target.display(),
                manifest.name,
                manifest.kind
            ),
        }
        check(&dir, &manifest)?;
        std::fs::remove_dir_all(&target)
            .with_context(|| format!("cannot remove {}", target.display()))?;
    } else {
        check(&dir, &manifest)?;
    }
    std::fs::create_dir_all(&target)
        .with_context(|| format!("cannot create {}", target.display()))?;
    std::fs::write(target.join("plugin.toml"), &manifest_text)?;
    std::fs::write(target.join(&file), &component_bytes)?;
    println!(
        "installed {} {} ({} plugin) into {where_}: {}",
        manifest.name,
        manifest.version,
        manifest.kind,
        target.display()
    );
    for t in &manifest.tools {
        println!(
            "  tool {}: {}{}",
            t.name,
            t.description,
            if t.read_only { " (read-only)" } else { "" }
        );
    }
    grants(&dir, &manifest)?;
    match manifest.kind {
        Kind::Policy => println!(
            "a policy decides only once it is in force: policy = [\"default\", \"{}\"] in a config, or `cove run --policy default --policy {}`",
            manifest.name, manifest.name
        ),
        Kind::Skill => println!(
            "the model sees it in its skills index (`cove skills list`) and loads it with the `skill` tool"
        ),
        Kind::Tool => {}
    }
    if let Some(repo) = repo {
        println!(
            "a repository's plugins load only once you trust it: run `cove trust` in {} (it lists this plugin)",
            repo.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Load the plugin as cove will (contract and kind against the manifest, the component's own
/// description of its tools against the manifest's), compiling it into cove's cache.
fn check(dir: &Path, manifest: &Manifest) -> Result<()> {
    let (registry, scratch) = registry_of(dir, manifest, &granting_asks(manifest))?;
    let plugin = find(&registry, &scratch, manifest, dir)?;
    let loaded = match manifest.kind {
        Kind::Policy => registry.load_policy(plugin).map(|_| ()),
        Kind::Tool | Kind::Skill => registry.load(plugin).map(|_| ()),
    };
    loaded.map_err(|e| {
        anyhow!(
            "not installed: {}",
            scratch.unlink(&e.to_string(), &manifest.name, dir)
        )
    })
}

/// What the manifest asks for, and what the user's own config does not grant yet.
fn grants(dir: &Path, manifest: &Manifest) -> Result<()> {
    let user_dir = cove::paths::config_dir();
    let config = Config::load(user_dir.as_deref(), None, false)?;
    let (registry, scratch) = registry_of(dir, manifest, &config)?;
    let plugin = find(&registry, &scratch, manifest, dir)?;
    let asks = &manifest.capabilities;
    let mut asked = vec![format!("fs:{}", asks.fs)];
    for (on, what) in [
        (asks.search, "search"),
        (asks.ast, "ast"),
        (asks.exec, "exec"),
        (asks.memory, "memory"),
    ] {
        if on {
            asked.push(what.to_string());
        }
    }
    if !asks.net.is_empty() {
        asked.push(format!("net:{}", asks.net.join(",")));
    }
    println!("it asks for: {}", asked.join(" "));
    if plugin.withheld.is_empty() {
        println!("your config grants all of it");
    } else {
        println!(
            "not granted yet (a read-only tool never gets writes or exec, whatever is granted):"
        );
        for w in &plugin.withheld {
            println!("  {w}");
        }
        println!(
            "grant in your config ({}) or the repository's .cove/config.toml (applies once trusted)",
            user_dir
                .map(|d| d.join("config.toml").display().to_string())
                .unwrap_or_else(|| "~/.config/cove/config.toml".into())
        );
    }
    Ok(())
}

enum Existing {
    /// An earlier build of a plugin of this name and kind: its version.
    Same(String),
    /// Something else, described.
    Other(String),
}

/// What is in the target folder now, if anything.
fn existing(target: &Path, new: &Manifest) -> Result<Option<Existing>> {
    if !target.exists() {
        return Ok(None);
    }
    if !target.is_dir() {
        return Ok(Some(Existing::Other("a file".into())));
    }
    let file = target.join("plugin.toml");
    let Ok(text) = std::fs::read_to_string(&file) else {
        let empty = std::fs::read_dir(target)?.next().is_none();
        return Ok((!empty).then(|| Existing::Other("a folder without plugin.toml".into())));
    };
    Ok(Some(match Manifest::parse(&text, &file) {
        Ok(m) if m.name == new.name && m.kind == new.kind => Existing::Same(m.version),
        Ok(m) => Existing::Other(format!("plugin `{}` ({})", m.name, m.kind)),
        Err(e) => Existing::Other(format!("a plugin.toml cove cannot read ({e})")),
    }))
}
