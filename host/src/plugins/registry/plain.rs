//! The registry's side of plain components (a tool plugin whose manifest has no `contract`):
//! their tools listed from the component's exports when the manifest lists none, and loading
//! one, checking what it exports against the manifest.
//!
//! A plain plugin's `[[tool]]` entries are optional. Without them every exported function is a
//! tool, found at discovery by reading the component (wasmparser: nothing is compiled, so
//! `cove tools list` compiles nothing either). With them, only the functions they name are
//! offered, each with the entry's description (when it gives one) and read-only flag: a plain
//! function says nothing about writing, so it is a writer unless its entry says `read_only`.
//!
//! Must not touch wasmtime (the runtime loads and calls) or run tools (dispatch does).

use super::{LoadError, LoadedPlugin, LoadedTool, Plugin, Registry, Source};
use crate::plugins::contract;
use crate::plugins::manifest::{Manifest, ToolEntry};
use crate::plugins::runtime::Loaded;
use crate::plugins::runtime::plain::exports;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Fill a plain manifest that lists no tools with one entry per exported function of its
/// component (the first line of its doc comment, else its signature, as the listing's
/// description). Functions JSON cannot call are left out, each named in `problems`.
///
/// # Errors
/// Why the component cannot be read; the plugin is then left out.
pub(super) fn list_tools(
    manifest: &mut Manifest,
    source: &Source,
    problems: &mut Vec<String>,
) -> Result<(), String> {
    if !manifest.is_plain() || !manifest.tools.is_empty() {
        return Ok(());
    }
    let path = match source {
        Source::File(path) | Source::Pinned { path, .. } => path,
        Source::Embedded { .. } => return Ok(()),
    };
    // As loading reads it: a project component must still be the one the user trusted.
    let bytes = source.bytes()?;
    let found = exports::read(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    for skipped in &found.skipped {
        problems.push(format!(
            "plugin `{}`: function {skipped}; it is not offered as a tool",
            manifest.name
        ));
    }
    if found.funcs.is_empty() {
        problems.push(format!(
            "plugin `{}`: its component exports no function cove can offer as a tool",
            manifest.name
        ));
    }
    manifest.tools = found
        .funcs
        .iter()
        .map(|f| ToolEntry {
            name: f.tool.clone(),
            description: f
                .docs
                .as_deref()
                .and_then(|d| d.lines().map(str::trim).find(|l| !l.is_empty()))
                .map_or_else(|| f.signature(), str::to_string),
            read_only: false,
        })
        .collect();
    manifest.tools_from_component = true;
    Ok(())
}

impl Registry {
    /// Load a plain plugin: its component must export no cove world and import nothing but WASI
    /// 0.2; its functions are its tools (those its manifest lists, when it lists some).
    pub(super) fn load_plain(&self, plugin: &Plugin) -> Result<LoadedPlugin, LoadError> {
        let name = plugin.manifest.name.clone();
        let err = |message: String| LoadError {
            plugin: name.clone(),
            message,
        };
        let bytes = self.read_bytes(plugin)?;
        let info = contract::inspect(&bytes).map_err(|e| err(e.to_string()))?;
        if let Some(version) = &info.contract {
            return Err(err(format!(
                "plugin.toml has no `contract`, so cove takes its component for a plain one, but it exports cove's {} world (contract {version}); add contract = \"{version}\" to {}",
                info.kind.map_or("plugin".to_string(), |k| k.to_string()),
                plugin.origin
            )));
        }
        let found = exports::read(&bytes).map_err(|e| err(e.to_string()))?;
        let runtime = self.runtime().map_err(&err)?;
        let component: Loaded = runtime
            .load_plain(&name, &bytes, &found)
            .map_err(|e| err(e.to_string()))?
            .into();
        // No call: the specs come from the exports; this also makes the first call's instance.
        let specs = runtime
            .describe(&component, &self.env(plugin))
            .map_err(|e| err(e.to_string()))?;
        let listed = !plugin.manifest.tools_from_component;
        let mut tools = HashMap::new();
        for mut spec in specs {
            if listed {
                let Some(entry) = plugin.manifest.tools.iter().find(|t| t.name == spec.name) else {
                    continue;
                };
                if !entry.description.trim().is_empty() {
                    spec.description = entry.description.clone();
                }
                spec.read_only = entry.read_only;
            }
            let schema = serde_json::from_str(&spec.input_schema)
                .map_err(|e| err(format!("tool `{}`: its schema: {e}", spec.name)))?;
            tools.insert(
                spec.name.clone(),
                LoadedTool {
                    spec,
                    schema,
                    validator: OnceLock::new(),
                    builtin: false,
                },
            );
        }
        if let Some(missing) = plugin
            .manifest
            .tools
            .iter()
            .find(|t| !tools.contains_key(&t.name))
        {
            let offered: Vec<&str> = found.funcs.iter().map(|f| f.tool.as_str()).collect();
            return Err(err(format!(
                "plugin.toml lists tool `{}` but the component exports no such function (its functions as tools: {})",
                missing.name,
                offered.join(", ")
            )));
        }
        Ok(LoadedPlugin { component, tools })
    }
}
