//! The registry: which plugins and tools exist for this worktree, and loading them on demand.
//!
//! Owns the three layers (built-in ▸ user `~/.config/cove/plugins` ▸ project `.cove/plugins`, later
//! wins), combining each manifest's asks with the config's grants (two keys), and the lazy load of
//! a component the first time one of its tools is used: contract check, load (a built-in's native
//! code from the binary, else the runtime's cache or a compile), `describe`, and checking what the
//! component says against its manifest. Discovery reads
//! manifests only and compiles nothing. A bad plugin is reported and skipped; the others still load.
//! Skill plugins are kept apart: the tools they bundle are not among the tools offered at start
//! (`skill_tool_owner` finds them for the gate and dispatch once a skill is loaded), and a skill's
//! instructions are asked for only when the model loads it.
//!
//! Must not run tools (that is `dispatch`) or touch wasmtime (that is `runtime`).

use crate::config::{Config, PluginConfig};
use crate::conversation::ToolDef;
use crate::plugins::contract;
use crate::plugins::manifest::{FsAccess, Kind, Manifest, ManifestError, ToolEntry};
use crate::plugins::runtime::{
    CallEnv, Grants, Limits, Loaded, LoadedPolicy, Runtime, SkillText, ToolSpec,
};
use crate::plugins::trust::ProjectPlugin;
use crate::worktree::Worktree;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

mod plain;

/// Where a plugin comes from. Later layers win.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    BuiltIn,
    User,
    Project,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::BuiltIn => "built-in",
            Layer::User => "user",
            Layer::Project => "project",
        })
    }
}

#[derive(Debug, Clone)]
enum Source {
    /// Built in: the component and, when build.rs could make it, its precompiled native code.
    Embedded {
        wasm: &'static [u8],
        native: Option<&'static [u8]>,
    },
    File(PathBuf),
    /// A project component: loaded only if it still has the bytes the user trusted.
    Pinned {
        path: PathBuf,
        hash: String,
    },
}

impl Source {
    /// The component's bytes: a built-in's, a file's, or a project file that must still have
    /// the bytes the user trusted.
    fn bytes(&self) -> Result<std::borrow::Cow<'static, [u8]>, String> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
        };
        match self {
            Source::Embedded { wasm, .. } => Ok(std::borrow::Cow::Borrowed(wasm)),
            Source::File(path) => read(path).map(std::borrow::Cow::Owned),
            Source::Pinned { path, hash } => {
                let bytes = read(path)?;
                if blake3::hash(&bytes).to_hex().as_str() != hash {
                    return Err(format!(
                        "{} changed after this session checked it; it is not loaded (restart cove; it will ask about the change)",
                        path.display()
                    ));
                }
                Ok(std::borrow::Cow::Owned(bytes))
            }
        }
    }
}

/// A plugin the registry knows, loaded or not.
pub struct Plugin {
    pub manifest: Manifest,
    pub layer: Layer,
    /// The manifest's path, or `built-in`.
    pub origin: String,
    pub enabled: bool,
    pub grants: Arc<Grants>,
    /// Asks the config did not grant, each with the line that would grant it.
    pub withheld: Vec<String>,
    pub limits: Limits,
    /// The plugin this one replaced from an earlier layer, if any.
    pub replaces: Option<Layer>,
    /// Working directory for its commands (relative to the worktree), kept for the session.
    session_cwd: Arc<std::sync::Mutex<PathBuf>>,
    source: Source,
    loaded: OnceLock<Result<Arc<LoadedPlugin>, LoadError>>,
    policy: OnceLock<Result<LoadedPolicy, LoadError>>,
}

impl Plugin {
    /// The native code built into the binary for this plugin, if it is a built-in that has some.
    fn native(&self) -> Option<&'static [u8]> {
        match self.source {
            Source::Embedded { native, .. } => native,
            _ => None,
        }
    }

    /// Once a built-in is loaded (the runtime holds its own copy of the code), its embedded
    /// bytes need not stay resident.
    fn release_embedded(&self) {
        if let Source::Embedded { wasm, native } = self.source {
            crate::plugins::builtin::release(wasm);
            if let Some(native) = native {
                crate::plugins::builtin::release(native);
            }
        }
    }
}

/// A plugin whose component is compiled and whose tools are checked.
pub struct LoadedPlugin {
    pub component: Loaded,
    pub tools: HashMap<String, LoadedTool>,
}

/// One tool of a loaded plugin: its spec, its input schema, and the validator compiled from it.
pub struct LoadedTool {
    pub spec: ToolSpec,
    schema: serde_json::Value,
    /// Compiled on first use (or by [`Registry::prepare_validators`], off the start-up path):
    /// compiling the first schema of a process compiles the JSON Schema meta-schema too, which
    /// costs milliseconds the first request should not wait for.
    validator: OnceLock<Result<jsonschema::Validator, String>>,
    /// A built-in's schema (made by plugin-sdk from Rust types, checked by the tests) is read as
    /// draft 7, whose meta-schema costs a fraction of 2020-12's to compile (time and memory);
    /// any other plugin's schema gets the draft it declares, 2020-12 when it declares none.
    builtin: bool,
}

impl LoadedTool {
    /// The validator for this tool's input, or why its schema is not a valid JSON Schema.
    ///
    /// # Errors
    /// The schema's problem, naming the tool.
    pub fn validator(&self) -> Result<&jsonschema::Validator, &str> {
        self.validator
            .get_or_init(|| {
                let options = jsonschema::options();
                let options = if self.builtin {
                    options.with_draft(jsonschema::Draft::Draft7)
                } else {
                    options
                };
                options.build(&self.schema).map_err(|e| {
                    format!(
                        "tool `{}` has an invalid JSON schema, so it cannot be called: {e}",
                        self.spec.name
                    )
                })
            })
            .as_ref()
            .map_err(String::as_str)
    }
}

/// A plugin that could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin `{plugin}`: {message}")]
pub struct LoadError {
    pub plugin: String,
    pub message: String,
}

/// A tool as listings show it, from the manifest alone.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ToolInfo {
    pub name: String,
    pub description: String,
    pub read_only: bool,
    pub plugin: String,
    pub source: Layer,
    pub capabilities: Grants,
    pub withheld: Vec<String>,
}

/// Every plugin and tool for one worktree.
pub struct Registry {
    plugins: Vec<Plugin>,
    /// Tool name → index of the plugin that provides it (enabled plugins only).
    tools: BTreeMap<String, usize>,
    /// Tool name → index of the enabled skill plugin that bundles it (offered once it is loaded).
    skill_tools: BTreeMap<String, usize>,
    problems: Vec<String>,
    worktree: Arc<Worktree>,
    cache_dir: Option<PathBuf>,
    /// The engine and its component cache: one per process, shared with every registry made by
    /// [`Registry::child`] (a subagent's), started on first use.
    runtime: Arc<OnceLock<Result<Runtime, String>>>,
    /// What each command may take (`[sandbox]`).
    commands: crate::sandbox::Resources,
}

impl Registry {
    /// Read every layer's manifests and the config. Compiles nothing.
    ///
    /// Project plugins come from `project` (what `plugins::trust` read and the user trusted);
    /// `None` leaves them out. A plugin outside the built-in layer may never take the name of a
    /// built-in policy: a repository must not be able to decide its own calls.
    pub fn discover(
        worktree: Arc<Worktree>,
        config: &Config,
        user_dir: Option<&Path>,
        cache_dir: Option<PathBuf>,
        project: Option<&[ProjectPlugin]>,
    ) -> Self {
        let mut problems = Vec::new();
        let mut by_name: BTreeMap<String, Plugin> = BTreeMap::new();
        let mut add = |candidate: Result<(Manifest, Source, String), ManifestError>,
                       layer: Layer,
                       problems: &mut Vec<String>| {
            let (mut manifest, source, origin) = match candidate {
                Ok(c) => c,
                Err(e) => return problems.push(e.to_string()),
            };
            if let Some(built_for) = &manifest.contract
                && let Err(e) = contract::version(built_for)
            {
                return problems.push(format!(
                    "{origin}: plugin `{}` {} is not loaded: {e}",
                    manifest.name, manifest.version,
                ));
            }
            if let Err(e) = plain::list_tools(&mut manifest, &source, problems) {
                return problems.push(format!(
                    "{origin}: plugin `{}` is not loaded: {e}",
                    manifest.name
                ));
            }
            if layer != Layer::BuiltIn
                && by_name
                    .get(&manifest.name)
                    .is_some_and(|p| p.layer == Layer::BuiltIn && p.manifest.kind == Kind::Policy)
            {
                return problems.push(format!(
                    "{origin}: plugin `{}` has the name of a built-in policy, which no {layer} plugin may replace; it is not loaded (give it another name and list it in `policy`)",
                    manifest.name
                ));
            }
            let cfg = config.plugin(&manifest.name);
            let (grants, withheld) = grant(&manifest, &cfg, layer);
            let limits = limits(&manifest, &cfg, config);
            let replaces = by_name.get(&manifest.name).map(|p| p.layer);
            let plugin = Plugin {
                enabled: cfg.enabled.unwrap_or(true),
                grants: Arc::new(grants),
                withheld,
                limits,
                replaces,
                session_cwd: Arc::default(),
                layer,
                origin,
                source,
                manifest,
                loaded: OnceLock::new(),
                policy: OnceLock::new(),
            };
            by_name.insert(plugin.manifest.name.clone(), plugin);
        };

        for b in crate::plugins::builtin::BUILTIN {
            let m = Manifest::parse(b.manifest, Path::new("built-in plugin.toml"));
            let source = Source::Embedded {
                wasm: b.wasm,
                native: b.native,
            };
            add(
                m.map(|m| (m, source, "built-in".to_string())),
                Layer::BuiltIn,
                &mut problems,
            );
        }
        if let Some(dir) = user_dir.map(|d| d.join("plugins")) {
            for candidate in read_layer(&dir, &mut problems) {
                add(candidate, Layer::User, &mut problems);
            }
        }
        for p in project.unwrap_or_default() {
            let origin = p.dir.join("plugin.toml").display().to_string();
            let candidate = p.manifest.clone().and_then(|m| match &p.component {
                Some((path, hash)) => Ok((
                    m,
                    Source::Pinned {
                        path: path.clone(),
                        hash: hash.clone(),
                    },
                    origin.clone(),
                )),
                None => Err(ManifestError {
                    file: p.dir.join("plugin.toml"),
                    message: format!(
                        "field `component`: {} does not exist; put the built .wasm beside plugin.toml",
                        p.dir.join(m.component_file()).display()
                    ),
                }),
            });
            add(candidate, Layer::Project, &mut problems);
        }

        let plugins: Vec<Plugin> = by_name.into_values().collect();
        let mut order: Vec<usize> = (0..plugins.len()).collect();
        order.sort_by_key(|&i| (plugins[i].layer, plugins[i].manifest.name.clone()));
        let mut tools: BTreeMap<String, usize> = BTreeMap::new();
        let mut skill_tools: BTreeMap<String, usize> = BTreeMap::new();
        for &i in &order {
            let p = &plugins[i];
            if !p.enabled || p.manifest.kind != Kind::Skill {
                continue;
            }
            for t in &p.manifest.tools {
                if let Some(prev) = skill_tools.insert(t.name.clone(), i) {
                    problems.push(format!(
                        "tool `{}` is bundled by both skills `{}` and `{}`; `{}` wins. Switch one off: [plugins.NAME] enabled = false",
                        t.name, plugins[prev].manifest.name, p.manifest.name, p.manifest.name
                    ));
                }
            }
        }
        for i in order {
            let p = &plugins[i];
            if !p.enabled || p.manifest.kind != Kind::Tool {
                continue;
            }
            for t in &p.manifest.tools {
                if let Some(prev) = tools.insert(t.name.clone(), i) {
                    let prev = &plugins[prev];
                    if prev.layer == p.layer {
                        problems.push(format!(
                            "tool `{}` is offered by both `{}` and `{}` ({} layer); `{}` wins. Switch one off: [plugins.NAME] enabled = false",
                            t.name, prev.manifest.name, p.manifest.name, p.layer, p.manifest.name
                        ));
                    }
                }
            }
        }
        // A tool plugin's tool keeps its name: a skill cannot take it over by bundling one.
        skill_tools.retain(|name, &mut i| {
            let clash = tools.contains_key(name);
            if clash {
                problems.push(format!(
                    "skill `{}` bundles tool `{name}`, which a tool plugin already offers; the skill's is left out",
                    plugins[i].manifest.name
                ));
            }
            !clash
        });
        Self {
            plugins,
            tools,
            skill_tools,
            problems,
            worktree,
            cache_dir,
            runtime: Arc::default(),
            commands: crate::sandbox::Resources {
                memory_bytes: config.sandbox.memory_mb().saturating_mul(1 << 20),
                disk_bytes: config.sandbox.disk_mb().saturating_mul(1 << 20),
            },
        }
    }

    /// The bounds on what one command may take (`[sandbox]`), for commands started beside the
    /// plugins' (MCP servers).
    pub fn commands(&self) -> crate::sandbox::Resources {
        self.commands
    }

    /// The same plugins, grants and limits over another worktree (a subagent's), sharing this
    /// registry's engine and component cache but nothing loaded: each plugin is instantiated
    /// (and described) again for the new worktree, and commands start at its root.
    pub fn child(&self, worktree: Arc<Worktree>) -> Self {
        let plugins = self
            .plugins
            .iter()
            .map(|p| Plugin {
                manifest: p.manifest.clone(),
                layer: p.layer,
                origin: p.origin.clone(),
                enabled: p.enabled,
                grants: p.grants.clone(),
                withheld: p.withheld.clone(),
                limits: p.limits,
                replaces: p.replaces,
                session_cwd: Arc::default(),
                source: p.source.clone(),
                loaded: OnceLock::new(),
                policy: OnceLock::new(),
            })
            .collect();
        Self {
            plugins,
            tools: self.tools.clone(),
            skill_tools: self.skill_tools.clone(),
            problems: self.problems.clone(),
            worktree,
            cache_dir: self.cache_dir.clone(),
            runtime: self.runtime.clone(),
            commands: self.commands,
        }
    }

    /// Every plugin, enabled or not, sorted by name.
    pub fn plugins(&self) -> &[Plugin] {
        &self.plugins
    }

    /// Manifests and settings that could not be used. The rest of the registry still works.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The worktree the tools run against.
    pub fn worktree(&self) -> &Arc<Worktree> {
        &self.worktree
    }

    /// Every available tool, sorted by name, from manifests alone.
    pub fn tools(&self) -> Vec<ToolInfo> {
        self.tools
            .iter()
            .filter_map(|(name, &i)| {
                let p = &self.plugins[i];
                let entry: &ToolEntry = p.manifest.tools.iter().find(|t| &t.name == name)?;
                Some(ToolInfo {
                    name: name.clone(),
                    description: entry.description.clone(),
                    read_only: entry.read_only,
                    plugin: p.manifest.name.clone(),
                    source: p.layer,
                    // What the tool runs with: a read-only tool holds no write or exec.
                    capabilities: if entry.read_only {
                        p.grants.for_read_only_tool()
                    } else {
                        (*p.grants).clone()
                    },
                    withheld: p.withheld.clone(),
                })
            })
            .collect()
    }

    /// The plugin that provides `tool`, if an enabled one does.
    pub fn provider(&self, tool: &str) -> Option<&Plugin> {
        self.tools.get(tool).map(|&i| &self.plugins[i])
    }

    /// The enabled skill plugin that bundles `tool` (its tools are offered only once the skill is
    /// loaded; the policy gate checks that).
    pub fn skill_tool_owner(&self, tool: &str) -> Option<&Plugin> {
        self.skill_tools.get(tool).map(|&i| &self.plugins[i])
    }

    /// The enabled skill plugin called `name`.
    pub fn skill_plugin(&self, name: &str) -> Option<&Plugin> {
        self.plugins
            .iter()
            .find(|p| p.enabled && p.manifest.kind == Kind::Skill && p.manifest.name == name)
    }

    /// Load a skill plugin and ask it for its instructions, and the tools it bundles (in name
    /// order) with their read-only flags.
    ///
    /// # Errors
    /// A [`LoadError`] naming the plugin: it does not load, or its instructions call fails.
    pub fn skill_instructions(
        &self,
        plugin: &Plugin,
    ) -> Result<(SkillText, Vec<(ToolDef, bool)>), LoadError> {
        let err = |message: String| LoadError {
            plugin: plugin.manifest.name.clone(),
            message,
        };
        let loaded = self.load(plugin)?;
        let runtime = self.runtime().map_err(&err)?;
        let text = runtime
            .skill_text(&loaded.component, &self.env(plugin))
            .map_err(|e| err(format!("its instructions could not be read: {e}")))?;
        let mut tools: Vec<(ToolDef, bool)> = loaded
            .tools
            .iter()
            .map(|(name, t)| {
                (
                    ToolDef {
                        name: name.clone(),
                        description: t.spec.description.clone(),
                        input_schema: t.schema.clone(),
                    },
                    t.spec.read_only,
                )
            })
            .collect();
        tools.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        Ok((text, tools))
    }

    /// The runtime, started on first use.
    ///
    /// # Errors
    /// The engine's start-up error, as text.
    pub fn runtime(&self) -> Result<&Runtime, String> {
        self.runtime
            .get_or_init(|| Runtime::new(self.cache_dir.clone()).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The call environment for `plugin`: its grants, limits and the worktree.
    pub fn env(&self, plugin: &Plugin) -> CallEnv {
        CallEnv {
            plugin: Arc::from(plugin.manifest.name.as_str()),
            worktree: Some(self.worktree.clone()),
            grants: plugin.grants.clone(),
            limits: plugin.limits,
            session_cwd: plugin.session_cwd.clone(),
            cancel: None,
            commands: self.commands,
            progress: None,
        }
    }

    /// Every tool the model can be offered, in a fixed order (by name): loads each tool plugin
    /// (compiled once, then from the cache). Returns the definitions, each tool's read-only flag,
    /// and the problems of plugins that would not load (their tools are left out).
    pub fn model_tools(&self) -> (Vec<ToolDef>, HashMap<String, bool>, Vec<String>) {
        self.load_tool_plugins();
        let mut defs = Vec::new();
        let mut read_only = HashMap::new();
        let mut problems = Vec::new();
        for (name, &i) in &self.tools {
            let plugin = &self.plugins[i];
            let loaded = match self.load(plugin) {
                Ok(l) => l,
                Err(e) => {
                    if !problems.contains(&e.to_string()) {
                        problems.push(e.to_string());
                    }
                    continue;
                }
            };
            let Some(tool) = loaded.tools.get(name) else {
                continue;
            };
            let schema = serde_json::from_str(&tool.spec.input_schema).unwrap_or_default();
            defs.push(ToolDef {
                name: name.clone(),
                description: tool.spec.description.clone(),
                input_schema: schema,
            });
            read_only.insert(name.clone(), tool.spec.read_only);
        }
        (defs, read_only, problems)
    }

    /// The JSON Schema of `tool`'s structured output, when its plugin is loaded and the tool
    /// gives one (contract 0.2 on).
    pub fn output_schema(&self, tool: &str) -> Option<serde_json::Value> {
        let plugin = self.provider(tool)?;
        let loaded = plugin.loaded.get()?.as_ref().ok()?;
        let text = loaded.tools.get(tool)?.spec.output_schema.as_deref()?;
        serde_json::from_str(text).ok()
    }

    /// Start loading the tool plugins in the background, so that what the caller does meanwhile
    /// (choosing the provider, opening the session) overlaps it; [`Self::model_tools`] then
    /// finds them loaded, or waits for the ones still loading.
    pub fn start_loading(self: &Arc<Self>) {
        let me = self.clone();
        std::thread::spawn(move || me.load_tool_plugins());
    }

    /// Load every plugin that offers a tool, each on its own thread: loading is most of the time
    /// before the first request, and the plugins do not depend on each other.
    fn load_tool_plugins(&self) {
        let mut wanted: Vec<usize> = self.tools.values().copied().collect();
        wanted.sort_unstable();
        wanted.dedup();
        wanted.retain(|&i| self.plugins[i].loaded.get().is_none());
        let Some((&last, rest)) = wanted.split_last() else {
            return;
        };
        std::thread::scope(|scope| {
            for &i in rest {
                scope.spawn(move || {
                    let _ = self.load(&self.plugins[i]);
                });
            }
            let _ = self.load(&self.plugins[last]);
        });
    }

    /// Compile the input validators of every tool already loaded, so that no call waits for
    /// one. Meant for a background thread once the tools are described.
    pub fn prepare_validators(&self) {
        for plugin in &self.plugins {
            if let Some(Ok(loaded)) = plugin.loaded.get() {
                for tool in loaded.tools.values() {
                    let _ = tool.validator();
                }
            }
        }
    }

    /// Load `plugin` (once per process): check its contract, compile or fetch it from the cache,
    /// ask it to describe its tools and check them against its manifest.
    ///
    /// # Errors
    /// A [`LoadError`] naming the plugin and what is wrong with it.
    pub fn load(&self, plugin: &Plugin) -> Result<Arc<LoadedPlugin>, LoadError> {
        plugin
            .loaded
            .get_or_init(|| self.load_uncached(plugin).map(Arc::new))
            .clone()
    }

    /// The enabled policy plugin called `name`.
    pub fn policy_plugin(&self, name: &str) -> Option<&Plugin> {
        self.plugins
            .iter()
            .find(|p| p.enabled && p.manifest.kind == Kind::Policy && p.manifest.name == name)
    }

    /// Names of every enabled policy plugin.
    pub fn policy_names(&self) -> Vec<String> {
        self.plugins
            .iter()
            .filter(|p| p.enabled && p.manifest.kind == Kind::Policy)
            .map(|p| p.manifest.name.clone())
            .collect()
    }

    /// Load a policy plugin (once per process), checking its contract and kind.
    ///
    /// # Errors
    /// A [`LoadError`] naming the plugin and what is wrong with it.
    pub fn load_policy(&self, plugin: &Plugin) -> Result<LoadedPolicy, LoadError> {
        plugin
            .policy
            .get_or_init(|| {
                let (bytes, version) = self.checked_bytes(plugin)?;
                let runtime = self.runtime().map_err(|message| LoadError {
                    plugin: plugin.manifest.name.clone(),
                    message,
                })?;
                let loaded = runtime
                    .load_policy(&plugin.manifest.name, version, &bytes, plugin.native())
                    .map_err(|e| LoadError {
                        plugin: plugin.manifest.name.clone(),
                        message: e.to_string(),
                    })?;
                plugin.release_embedded();
                Ok(loaded)
            })
            .clone()
    }

    /// The component's bytes, after checking its contract version and kind against the manifest.
    fn checked_bytes(
        &self,
        plugin: &Plugin,
    ) -> Result<(std::borrow::Cow<'static, [u8]>, contract::Version), LoadError> {
        let name = plugin.manifest.name.clone();
        let err = |message: String| LoadError {
            plugin: name.clone(),
            message,
        };
        let bytes = self.read_bytes(plugin)?;
        let info = contract::inspect(&bytes).map_err(|e| err(e.to_string()))?;
        let Some(built_for) = info.contract.clone() else {
            return Err(err(format!(
                "plugin.toml says contract {} but its component exports no cove world: it is a plain component (its exported functions would be its tools); remove `contract` from {}",
                plugin.manifest.contract.as_deref().unwrap_or("none"),
                plugin.origin
            )));
        };
        let version =
            contract::version(&built_for).map_err(|e| err(format!("its component: {e}")))?;
        if Some(&built_for) != plugin.manifest.contract.as_ref() {
            return Err(err(format!(
                "plugin.toml says contract {} but the component is built for {built_for}; fix `contract` in {}",
                plugin.manifest.contract.as_deref().unwrap_or("none"),
                plugin.origin
            )));
        }
        if info.kind != Some(plugin.manifest.kind) {
            return Err(err(format!(
                "plugin.toml says kind {} but the component exports {}",
                plugin.manifest.kind,
                info.kind
                    .map_or("no cove:plugin world".to_string(), |k| format!(
                        "the {k} world"
                    ))
            )));
        }
        Ok((bytes, version))
    }

    /// The component's bytes: a built-in's, a file's, or a project file that must still have
    /// the bytes the user trusted.
    fn read_bytes(&self, plugin: &Plugin) -> Result<std::borrow::Cow<'static, [u8]>, LoadError> {
        plugin.source.bytes().map_err(|message| LoadError {
            plugin: plugin.manifest.name.clone(),
            message,
        })
    }

    fn load_uncached(&self, plugin: &Plugin) -> Result<LoadedPlugin, LoadError> {
        if plugin.manifest.is_plain() {
            return self.load_plain(plugin);
        }
        let name = plugin.manifest.name.clone();
        let err = |message: String| LoadError {
            plugin: name.clone(),
            message,
        };
        let (bytes, version) = self.checked_bytes(plugin)?;
        let bytes: &[u8] = &bytes;
        let runtime = self.runtime().map_err(&err)?;
        let component = runtime
            .load(&name, version, bytes, plugin.native())
            .map_err(|e| err(e.to_string()))?;
        plugin.release_embedded();
        let specs = runtime
            .describe(&component, &self.env(plugin))
            .map_err(|e| err(format!("describe failed: {e}")))?;
        let mut tools = HashMap::new();
        for spec in specs {
            let schema: serde_json::Value =
                serde_json::from_str(&spec.input_schema).map_err(|e| {
                    err(format!(
                        "tool `{}` returned an input schema that is not JSON: {e}",
                        spec.name
                    ))
                })?;
            let Some(entry) = plugin.manifest.tools.iter().find(|t| t.name == spec.name) else {
                return Err(err(format!(
                    "the component offers tool `{}` that plugin.toml does not list; add a [[tool]] entry for it",
                    spec.name
                )));
            };
            if entry.read_only != spec.read_only {
                return Err(err(format!(
                    "tool `{}`: plugin.toml says read_only = {} but the component says {}",
                    spec.name, entry.read_only, spec.read_only
                )));
            }
            tools.insert(
                spec.name.clone(),
                LoadedTool {
                    spec,
                    schema,
                    validator: OnceLock::new(),
                    builtin: matches!(plugin.source, Source::Embedded { .. }),
                },
            );
        }
        if let Some(missing) = plugin
            .manifest
            .tools
            .iter()
            .find(|t| !tools.contains_key(&t.name))
        {
            return Err(err(format!(
                "plugin.toml lists tool `{}` but the component does not offer it",
                missing.name
            )));
        }
        Ok(LoadedPlugin { component, tools })
    }
}

/// Every `*/plugin.toml` under `dir`, sorted by folder name.
fn read_layer(
    dir: &Path,
    problems: &mut Vec<String>,
) -> Vec<Result<(Manifest, Source, String), ManifestError>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            problems.push(format!("{}: {e}", dir.display()));
            return Vec::new();
        }
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .filter_map(|d| {
            let file = d.join("plugin.toml");
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
                Err(e) => return Some(Err(ManifestError { file, message: e.to_string() })),
            };
            Some(Manifest::parse(&text, &file).and_then(|m| {
                let wasm = d.join(m.component_file());
                if !wasm.is_file() {
                    return Err(ManifestError {
                        file: file.clone(),
                        message: format!(
                            "field `component`: {} does not exist; put the built .wasm beside plugin.toml",
                            wasm.display()
                        ),
                    });
                }
                Ok((m, Source::File(wasm), file.display().to_string()))
            }))
        })
        .collect()
}

/// Combine a manifest's asks with the config's grants. Built-in plugins are granted what they ask
/// unless the config says otherwise; other plugins need the config's word for writes, exec and net.
fn grant(m: &Manifest, cfg: &PluginConfig, layer: Layer) -> (Grants, Vec<String>) {
    let builtin = layer == Layer::BuiltIn;
    let name = &m.name;
    let ask = &m.capabilities;
    let mut withheld = Vec::new();
    let ceiling = cfg.fs.unwrap_or(if builtin {
        FsAccess::ReadWrite
    } else {
        FsAccess::Read
    });
    let fs = ask.fs.min(ceiling);
    if fs < ask.fs {
        withheld.push(format!(
            "fs {} (grant: [plugins.{name}] fs = \"{}\")",
            ask.fs, ask.fs
        ));
    }
    let mut flag = |asked: bool, setting: Option<bool>, default: bool, cap: &str| {
        let granted = asked && setting.unwrap_or(default);
        if asked && !granted {
            withheld.push(format!("{cap} (grant: [plugins.{name}] {cap} = true)"));
        }
        granted
    };
    let search = flag(ask.search, cfg.search, true, "search");
    let ast = flag(ask.ast, cfg.ast, true, "ast");
    let exec = flag(ask.exec, cfg.exec, builtin, "exec");
    // Memory reaches the user's config directory, outside any worktree: built-ins only.
    let memory = ask.memory && builtin;
    if ask.memory && !builtin {
        withheld.push("memory (only built-in plugins may write the memory store)".into());
    }
    // The network is all or nothing: `*` (commands with the network) needs the config's word,
    // built in or not. A list of hosts is never granted: nothing in this cove could hold a plugin
    // to it (no wasi:http, and commands get a whole network namespace or none).
    let mut net = Vec::new();
    for host in &ask.net {
        if host == "*" {
            if cfg.net.as_ref().is_some_and(|n| n.iter().any(|h| h == "*")) {
                net.push(host.clone());
            } else {
                withheld.push(format!(
                    "the network (grant: [plugins.{name}] net = [\"*\"])"
                ));
            }
        } else {
            withheld.push(format!(
                "net host `{host}` (this cove cannot hold a plugin to a list of hosts, so it grants none)"
            ));
        }
    }
    (
        Grants {
            fs,
            search,
            exec,
            ast,
            memory,
            net,
            env: cfg
                .env
                .clone()
                .map(|e| e.into_iter().collect())
                .unwrap_or_default(),
        },
        withheld,
    )
}

fn limits(m: &Manifest, cfg: &PluginConfig, config: &Config) -> Limits {
    let d = Limits::default();
    let cap = config.cap(&m.name);
    // The plugin's own setting, else its manifest's, else the global one; then an untrusted
    // project's cap, which only ever lowers it.
    let pick = |plugin: Option<u64>,
                manifest: Option<u64>,
                global: Option<u64>,
                cap: Option<u64>,
                default: u64| {
        let v = plugin.or(manifest).or(global).unwrap_or(default);
        cap.map_or(v, |c| v.min(c))
    };
    Limits {
        timeout: Duration::from_millis(pick(
            cfg.timeout_ms,
            m.limits.timeout_ms,
            config.limits.timeout_ms,
            cap.timeout_ms,
            d.timeout.as_millis() as u64,
        )),
        memory_bytes: (pick(
            cfg.memory_mb,
            m.limits.memory_mb,
            config.limits.memory_mb,
            cap.memory_mb,
            (d.memory_bytes >> 20) as u64,
        ) as usize)
            .saturating_mul(1 << 20),
        output_bytes: (pick(
            cfg.output_kb,
            m.limits.output_kb,
            config.limits.output_kb,
            cap.output_kb,
            (d.output_bytes >> 10) as u64,
        ) as usize)
            .saturating_mul(1 << 10),
    }
}

impl Grants {
    /// One line: `fs:read-write search net:a.com`.
    pub fn summary(&self) -> String {
        let mut parts = vec![format!("fs:{}", self.fs)];
        if self.search {
            parts.push("search".into());
        }
        if self.exec {
            parts.push("exec".into());
        }
        if self.ast {
            parts.push("ast".into());
        }
        if self.memory {
            parts.push("memory".into());
        }
        if !self.net.is_empty() {
            parts.push(format!("net:{}", self.net.join(",")));
        }
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(schema: serde_json::Value) -> LoadedTool {
        LoadedTool {
            spec: ToolSpec {
                name: "t".into(),
                description: "d".into(),
                input_schema: schema.to_string(),
                output_schema: None,
                read_only: true,
            },
            schema,
            validator: OnceLock::new(),
            builtin: false,
        }
    }

    #[test]
    fn a_schema_is_compiled_once_and_an_invalid_one_is_refused_naming_the_tool() {
        let good = tool(serde_json::json!({"type": "object", "required": ["a"]}));
        let first = good.validator().map(|v| v as *const _);
        assert!(first.is_ok());
        assert_eq!(good.validator().map(|v| v as *const _), first);
        assert!(
            good.validator()
                .is_ok_and(|v| !v.is_valid(&serde_json::json!({})))
        );
        let bad = tool(serde_json::json!({"type": "no-such-type"}));
        let err = bad.validator().err().unwrap_or_default();
        assert!(err.contains("tool `t` has an invalid JSON schema"), "{err}");
    }

    fn manifest(fs: &str, extra: &str) -> Manifest {
        let text = format!(
            "name = \"x\"\nversion = \"1\"\nkind = \"tool\"\ncontract = \"0.1.0\"\n[capabilities]\nfs = \"{fs}\"\n{extra}\n[[tool]]\nname = \"t\"\ndescription = \"d\"\n"
        );
        match Manifest::parse(&text, Path::new("t")) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn only_a_built_in_may_write_the_memory_store() {
        let m = manifest("none", "memory = true");
        let (g, withheld) = grant(&m, &PluginConfig::default(), Layer::Project);
        assert!(!g.memory);
        assert!(
            withheld[0].contains("only built-in plugins"),
            "{withheld:?}"
        );
        assert!(!grant(&m, &PluginConfig::default(), Layer::User).0.memory);
        let (g, withheld) = grant(&m, &PluginConfig::default(), Layer::BuiltIn);
        assert!(g.memory && withheld.is_empty());
        // A read-only tool of that plugin would not get it either.
        assert!(!g.for_read_only_tool().memory);
    }

    #[test]
    fn writes_need_both_keys() {
        let m = manifest("read-write", "");
        let (g, withheld) = grant(&m, &PluginConfig::default(), Layer::Project);
        assert_eq!(g.fs, FsAccess::Read);
        assert!(withheld[0].contains("fs = \"read-write\""), "{withheld:?}");
        let cfg = PluginConfig {
            fs: Some(FsAccess::ReadWrite),
            ..Default::default()
        };
        assert_eq!(grant(&m, &cfg, Layer::Project).0.fs, FsAccess::ReadWrite);
        // Granting more than asked gives only what was asked.
        let m = manifest("read", "");
        assert_eq!(grant(&m, &cfg, Layer::Project).0.fs, FsAccess::Read);
        // Built-ins get what they ask, and the config can still take it away.
        let m = manifest("read-write", "");
        assert_eq!(
            grant(&m, &PluginConfig::default(), Layer::BuiltIn).0.fs,
            FsAccess::ReadWrite
        );
        let cfg = PluginConfig {
            fs: Some(FsAccess::Read),
            ..Default::default()
        };
        assert_eq!(grant(&m, &cfg, Layer::BuiltIn).0.fs, FsAccess::Read);
    }

    #[test]
    fn net_and_exec_need_the_config() {
        let m = manifest("read", "exec = true\nnet = [\"*\", \"b.com\"]");
        let (g, withheld) = grant(&m, &PluginConfig::default(), Layer::User);
        assert!(!g.exec && g.net.is_empty());
        assert_eq!(withheld.len(), 3);
        let cfg = PluginConfig {
            exec: Some(true),
            net: Some(vec!["*".into()]),
            ..Default::default()
        };
        let (g, withheld) = grant(&m, &cfg, Layer::User);
        assert!(g.exec);
        assert_eq!(g.net, vec!["*".to_string()]);
        // A host list is never granted: nothing could enforce it.
        assert_eq!(withheld.len(), 1);
        assert!(withheld[0].contains("b.com") && withheld[0].contains("grants none"));
        // Built in or not, the network needs the config's word.
        let (g, _) = grant(&m, &PluginConfig::default(), Layer::BuiltIn);
        assert!(g.net.is_empty() && g.exec);
    }
}
