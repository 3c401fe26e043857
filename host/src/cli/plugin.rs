//! `cove plugin inspect`.

use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

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
