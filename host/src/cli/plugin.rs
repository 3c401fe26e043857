//! `cove plugin`: inspect a component; and for plugin authors, `new`, `build`, `test` and
//! `install` (one file each under `plugin/`).

pub(crate) mod build;
pub(crate) mod install;
pub(crate) mod new;
pub(crate) mod test;

use anyhow::{Context, Result, anyhow, bail};
use cove::config::{Config, PluginConfig};
use cove::plugins::manifest::Manifest;
use cove::plugins::registry::{Layer, Plugin, Registry};
use cove::worktree::Worktree;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// The manifest in `dir`, and `dir` made absolute.
pub(crate) fn read_manifest(dir: &Path) -> Result<(Manifest, PathBuf)> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot open {}", dir.display()))?;
    let file = dir.join("plugin.toml");
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "{} holds no plugin.toml (start a plugin with `cove plugin new NAME`)",
            dir.display()
        )
    })?;
    let manifest = Manifest::parse(&text, &file).map_err(|e| anyhow!(e))?;
    Ok((manifest, dir))
}

/// A temporary folder, removed when dropped.
pub(crate) struct Scratch {
    root: PathBuf,
}

impl Scratch {
    fn new() -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let root = std::env::temp_dir().join(format!("cove-plugin-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(root.join("plugins"))
            .with_context(|| format!("cannot create {}", root.display()))?;
        std::fs::create_dir_all(root.join("worktree"))
            .with_context(|| format!("cannot create {}", root.display()))?;
        Ok(Self { root })
    }

    /// Messages about the linked plugin folder, with its real path.
    pub(crate) fn unlink(&self, message: &str, name: &str, dir: &Path) -> String {
        message.replace(
            &self.root.join("plugins").join(name).display().to_string(),
            &dir.display().to_string(),
        )
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The config a plugin under test runs with: granted everything its manifest asks for.
pub(crate) fn granting_asks(manifest: &Manifest) -> Config {
    let asks = &manifest.capabilities;
    let mut config = Config::default();
    config.plugins.insert(
        manifest.name.clone(),
        PluginConfig {
            fs: Some(asks.fs),
            exec: Some(asks.exec),
            net: asks
                .net
                .iter()
                .any(|h| h == "*")
                .then(|| vec!["*".to_string()]),
            ..PluginConfig::default()
        },
    );
    config
}

/// A registry of the built-in plugins and the one in `dir` (linked into a scratch user layer,
/// so it goes through every check an installed plugin does), over an empty scratch worktree,
/// with `config`. Native code is cached where cove caches it, so what is compiled here is not
/// compiled again once the plugin is installed.
pub(crate) fn registry_of(
    dir: &Path,
    manifest: &Manifest,
    config: &Config,
) -> Result<(Registry, Scratch)> {
    let scratch = Scratch::new()?;
    std::os::unix::fs::symlink(dir, scratch.root.join("plugins").join(&manifest.name))
        .context("cannot link the plugin into a scratch folder")?;
    let worktree = Worktree::open(&scratch.root.join("worktree"))?;
    let registry = Registry::discover(
        Arc::new(worktree),
        config,
        Some(&scratch.root),
        cove::paths::cache_dir(),
        None,
    );
    Ok((registry, scratch))
}

/// The plugin from `dir` in a registry made by [`registry_of`], or why it is not there.
pub(crate) fn find<'r>(
    registry: &'r Registry,
    scratch: &Scratch,
    manifest: &Manifest,
    dir: &Path,
) -> Result<&'r Plugin> {
    registry
        .plugins()
        .iter()
        .find(|p| p.manifest.name == manifest.name && p.layer == Layer::User)
        .ok_or_else(|| {
            let problems: Vec<String> = registry
                .problems()
                .iter()
                .map(|p| scratch.unlink(p, &manifest.name, dir))
                .collect();
            anyhow!(
                "cove would not load this plugin: {}",
                if problems.is_empty() {
                    "(no reason given)".to_string()
                } else {
                    problems.join("; ")
                }
            )
        })
}

pub(crate) fn inspect(file: &PathBuf, json: bool) -> Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let info =
        cove::plugins::contract::inspect(&bytes).with_context(|| format!("{}", file.display()))?;
    let manifest_path = file.with_file_name("plugin.toml");
    let manifest = match std::fs::read_to_string(&manifest_path) {
        Ok(text) => Some(
            cove::plugins::manifest::Manifest::parse(&text, &manifest_path)
                .map_err(|e| anyhow::anyhow!(e))?,
        ),
        Err(_) => None,
    };
    // No cove world: it may still load as a plain component.
    let plain = info.contract.is_none().then(|| plain_support(&bytes));
    let supported = info
        .contract
        .as_deref()
        .is_some_and(cove::plugins::contract::is_supported)
        || plain.as_ref().is_some_and(|(ok, _)| *ok);
    let mut out = std::io::stdout().lock();
    if json {
        let value = serde_json::json!({
            "file": file,
            "size": bytes.len(),
            "component": info,
            "supported": supported,
            "supported_contracts": cove::plugins::contract::SUPPORTED,
            "capabilities_used": cove::plugins::contract::imported_capabilities(&info),
            "manifest": manifest,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "file:     {} ({} KiB)",
        file.display(),
        bytes.len() / 1024
    )?;
    write!(out, "{info}")?;
    let support = match info
        .contract
        .as_deref()
        .map(cove::plugins::contract::version)
    {
        Some(Ok(_)) => "yes".to_string(),
        Some(Err(e)) => format!("no: {e}"),
        None => plain.map(|(_, text)| text).unwrap_or_default(),
    };
    writeln!(out, "loadable: {support}")?;
    let used = cove::plugins::contract::imported_capabilities(&info);
    writeln!(
        out,
        "uses host capabilities: {}",
        if used.is_empty() {
            "none".into()
        } else {
            used.join(", ")
        }
    )?;
    match manifest {
        Some(m) => {
            let caps = &m.capabilities;
            writeln!(
                out,
                "manifest: {} {} ({}), {}",
                m.name,
                m.version,
                m.kind,
                manifest_path.display()
            )?;
            writeln!(
                out,
                "  asks for: fs:{}{}{}{}{}",
                caps.fs,
                if caps.search { " search" } else { "" },
                if caps.exec { " exec" } else { "" },
                if caps.ast { " ast" } else { "" },
                if caps.net.is_empty() {
                    String::new()
                } else {
                    format!(" net:{}", caps.net.join(","))
                }
            )?;
            for t in &m.tools {
                writeln!(
                    out,
                    "  tool {}: {}{}",
                    t.name,
                    t.description,
                    if t.read_only { " (read-only)" } else { "" }
                )?;
            }
        }
        None => writeln!(
            out,
            "manifest: none beside it ({})",
            manifest_path.display()
        )?,
    }
    if !supported {
        bail!("this component cannot be loaded by this cove");
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether a component with no cove world loads as a plain component (its exported functions
/// as tools, `contract` left out of plugin.toml), and what it would offer.
fn plain_support(bytes: &[u8]) -> (bool, String) {
    use cove::plugins::runtime::plain::exports;
    let no_world = format!(
        "it exports no cove:plugin world (this cove loads contracts {})",
        cove::plugins::contract::SUPPORTED.join(", ")
    );
    match exports::read(bytes) {
        Err(e) => (false, format!("no: {no_world}; {e}")),
        Ok(found) if !found.unprovided_imports().is_empty() => (
            false,
            format!(
                "no: {no_world}, and as a plain component it imports what cove does not provide: {}",
                found.unprovided_imports().join(", ")
            ),
        ),
        Ok(found) if found.funcs.is_empty() => (
            false,
            format!("no: {no_world}, and it exports no function cove can offer as a tool"),
        ),
        Ok(found) => {
            let mut text = String::from(
                "yes, as a plain component (leave `contract` out of plugin.toml); its functions as tools:",
            );
            for f in &found.funcs {
                text.push_str(&format!("\n  {}: {}", f.tool, f.signature()));
            }
            for s in &found.skipped {
                text.push_str(&format!("\n  not offered: {s}"));
            }
            (true, text)
        }
    }
}
