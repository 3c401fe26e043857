//! cove-plugin-sdk: what a Rust author needs to write a cove tool component.
//!
//! Implement [`Tool`] for one type per tool (a serde input type that derives `JsonSchema`, an
//! output — `String`, or [`Structured`] for a tool that also gives JSON —, a name, a description,
//! a read-only flag and `run`), then list the types in [`tools!`]. The SDK produces the WIT glue
//! for the `cove:plugin@0.2.0` `tool` world, the JSON schema of each input (and structured
//! output), and maps input and I/O errors to the contract's `tool-error`. Host capabilities are
//! wrapped in [`search`], [`exec`], [`ast`], [`memory`], [`progress`] and [`log`].
//!
//! A skill component (the `skill` world: instructions loaded on demand, and tools it bundles)
//! implements [`Skill`] and lists itself and its tools in [`skill!`]; that needs the crate's
//! `skill` feature, which generates the `skill` world instead of the `tool` world (so a crate
//! with it exports with `skill!`, never `tools!`), and keeps tool components free of it.
//!
//! This crate must stay a thin layer over the public WIT contract: anything it does, an author in
//! another language can do with that contract alone.
//!
//! ```
//! use cove_plugin_sdk::{Tool, ToolError, tools};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct EchoInput { text: String }
//!
//! struct Echo;
//! impl Tool for Echo {
//!     type Input = EchoInput;
//!     type Output = String;
//!     const NAME: &'static str = "echo";
//!     const DESCRIPTION: &'static str = "Echo the text back.";
//!     const READ_ONLY: bool = true;
//!     fn run(input: EchoInput) -> Result<String, ToolError> { Ok(input.text) }
//! }
//!
//! tools!(Echo);
//! ```

use std::fmt;

/// Generated bindings for the `tool` world (with the `skill` feature: the `skill` world, which
/// has the same imports and exports `tool-api` too). Authors rarely need these directly.
#[allow(missing_docs, clippy::all, unsafe_op_in_unsafe_fn)]
pub mod bindings {
    #[cfg(not(feature = "skill"))]
    wit_bindgen::generate!({
        path: "../wit/v0.2",
        world: "cove:plugin/tool@0.2.0",
        pub_export_macro: true,
        default_bindings_module: "cove_plugin_sdk::bindings",
        export_macro_name: "export_tool_world",
    });
    #[cfg(feature = "skill")]
    wit_bindgen::generate!({
        path: "../wit/v0.2",
        world: "cove:plugin/skill@0.2.0",
        pub_export_macro: true,
        default_bindings_module: "cove_plugin_sdk::bindings",
        export_macro_name: "export_skill_world",
    });
}

/// A skill: a name and a one-line description for the skills index, and instructions the host
/// asks for only when the model loads the skill. Export it, with the tools it bundles, with
/// [`skill!`].
#[cfg(feature = "skill")]
pub trait Skill {
    /// The skill's name (the same as its plugin's `name` in plugin.toml).
    const NAME: &'static str;
    /// One line: what it is for and when to use it.
    const DESCRIPTION: &'static str;
    /// The full instructions, written for the model.
    fn instructions() -> String;
}

#[cfg(feature = "skill")]
#[doc(hidden)]
pub use bindings::exports::cove::plugin::skill_api::Guest as __SkillGuest;

/// Export a [`Skill`] type, and the [`Tool`] types it bundles (offered to the model only once
/// the skill is loaded), as this component's `skill` world. Needs the `skill` feature.
#[cfg(feature = "skill")]
#[macro_export]
macro_rules! skill {
    ($skill:ty $(, $tool:ty)* $(,)?) => {
        struct __CoveSkill;
        impl $crate::__SkillGuest for __CoveSkill {
            fn name() -> ::std::string::String {
                <$skill as $crate::Skill>::NAME.to_string()
            }
            fn description() -> ::std::string::String {
                <$skill as $crate::Skill>::DESCRIPTION.to_string()
            }
            fn instructions() -> ::std::string::String {
                <$skill as $crate::Skill>::instructions()
            }
        }
        impl $crate::__ToolGuest for __CoveSkill {
            fn describe() -> ::std::vec::Vec<$crate::__ToolSpec> {
                ::std::vec![$($crate::spec::<$tool>()),*]
            }
            fn call(name: ::std::string::String, input: ::std::string::String)
                -> ::std::result::Result<$crate::__ToolOutput, $crate::__WitToolError> {
                $(
                    if name == <$tool as $crate::Tool>::NAME {
                        return $crate::dispatch::<$tool>(&input);
                    }
                )*
                let _ = &input;
                Err($crate::unknown_tool(&name, &[$(<$tool as $crate::Tool>::NAME),*]))
            }
        }
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::export_skill_world!(__CoveSkill);
        #[cfg(not(target_arch = "wasm32"))]
        const _: (fn() -> ::std::string::String, fn() -> ::std::vec::Vec<$crate::__ToolSpec>) = (
            <__CoveSkill as $crate::__SkillGuest>::instructions,
            <__CoveSkill as $crate::__ToolGuest>::describe,
        );
    };
}

use bindings::cove::plugin::types::{ToolError as WitToolError, ToolOutput, ToolSpec};

/// The contract version this SDK builds components for.
pub const CONTRACT_VERSION: &str = "0.2.0";

/// Why a tool call failed. The message goes to the model: say what went wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolError {
    /// The input makes no sense for this call (missing file, ambiguous edit, bad pattern...).
    InvalidInput(String),
    /// The sandbox or a missing capability refused the operation.
    Denied(String),
    /// Anything else.
    Failed(String),
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolError::InvalidInput(m) | ToolError::Denied(m) | ToolError::Failed(m) => {
                f.write_str(m)
            }
        }
    }
}

impl ToolError {
    /// An I/O error on `path`, phrased for the model. Permission errors mean the sandbox said no.
    pub fn io(path: &str, err: &std::io::Error) -> Self {
        use std::io::ErrorKind;
        match err.kind() {
            ErrorKind::NotFound => {
                ToolError::InvalidInput(format!("{path}: no such file or directory"))
            }
            ErrorKind::PermissionDenied => ToolError::Denied(format!(
                "{path}: permission denied (outside the worktree, through a link that leaves it, inside .git, or not writable by this plugin)"
            )),
            ErrorKind::AlreadyExists => ToolError::InvalidInput(format!("{path}: already exists")),
            ErrorKind::IsADirectory => ToolError::InvalidInput(format!("{path}: is a directory")),
            ErrorKind::NotADirectory => ToolError::InvalidInput(format!("{path}: not a directory")),
            ErrorKind::ReadOnlyFilesystem => {
                ToolError::Denied(format!("{path}: read-only for this plugin"))
            }
            _ => ToolError::Failed(format!("{path}: {err}")),
        }
    }
}

impl From<ToolError> for WitToolError {
    fn from(e: ToolError) -> Self {
        match e {
            ToolError::InvalidInput(m) => WitToolError::InvalidInput(m),
            ToolError::Denied(m) => WitToolError::Denied(m),
            ToolError::Failed(m) => WitToolError::Failed(m),
        }
    }
}

/// One tool. Implement it on a unit struct and list the struct in [`tools!`].
pub trait Tool {
    /// The input, deserialised from the model's JSON. Its `JsonSchema` is what the model sees.
    type Input: serde::de::DeserializeOwned + schemars::JsonSchema;
    /// What `run` gives back: `String` (text for the model), or [`Structured`] (text for the
    /// model, and the same as JSON for programs, with its schema).
    type Output: Output;
    /// The name the model calls the tool by.
    const NAME: &'static str;
    /// What the tool does, written for the model.
    const DESCRIPTION: &'static str;
    /// True when the tool never changes anything.
    const READ_ONLY: bool;
    /// Run the tool.
    ///
    /// # Errors
    /// A [`ToolError`] whose message tells the model what went wrong.
    fn run(input: Self::Input) -> Result<Self::Output, ToolError>;
}

/// What a tool's `run` may return. Implemented for `String` and [`Structured`].
pub trait Output {
    /// The JSON schema of the structured output, if there is one.
    fn schema() -> Option<String>;
    #[doc(hidden)]
    fn into_output(self) -> Result<ToolOutput, ToolError>;
}

impl Output for String {
    fn schema() -> Option<String> {
        None
    }
    fn into_output(self) -> Result<ToolOutput, ToolError> {
        Ok(ToolOutput {
            text: self,
            structured: None,
        })
    }
}

/// A result with two faces: `text` for the model (short, plain), and `value` for programs (an
/// MCP client of `cove mcp serve` gets it as `structuredContent`; its schema is the tool's
/// output schema). Make `T` a struct: MCP wants an object there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Structured<T> {
    pub text: String,
    pub value: T,
}

impl<T: serde::Serialize + schemars::JsonSchema> Output for Structured<T> {
    fn schema() -> Option<String> {
        Some(input_schema::<T>())
    }
    fn into_output(self) -> Result<ToolOutput, ToolError> {
        let json = serde_json::to_string(&self.value)
            .map_err(|e| ToolError::Failed(format!("cannot encode the structured result: {e}")))?;
        Ok(ToolOutput {
            text: self.text,
            structured: Some(json),
        })
    }
}

/// The JSON schema of `T`, as compact JSON text. Every byte of it is sent to the model on every
/// request, so the noise is left out: `$schema`, `title`, `format` and `default: null`. Optional
/// fields keep their `null` alternative, since models often send `null` for "not given".
pub fn input_schema<T: schemars::JsonSchema>() -> String {
    let mut value = schemars::schema_for!(T).to_value();
    if let Some(obj) = value.as_object_mut() {
        obj.remove("$schema");
        obj.remove("title");
    }
    trim_schema(&mut value);
    value.to_string()
}

fn trim_schema(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(obj) => {
            obj.remove("format");
            if obj.get("default").is_some_and(serde_json::Value::is_null) {
                obj.remove("default");
            }
            obj.values_mut().for_each(trim_schema);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(trim_schema),
        _ => {}
    }
}

/// The worktree's root as this component sees it: the preopened directory with an absolute path.
/// `None` when the plugin was given no filesystem access.
pub fn worktree_root() -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    {
        wasip2::filesystem::preopens::get_directories()
            .into_iter()
            .map(|(_, path)| path)
            .find(|p| p.starts_with('/'))
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        None
    }
}

/// A path the model gave, made ready for `std::fs`: an absolute path has its `.` and `..` resolved
/// lexically, and one outside the worktree is refused with a message the model can act on.
/// Relative paths pass through (they resolve against the worktree). The runtime refuses escapes
/// anyway (it is the wall); this only makes the error say why.
///
/// # Errors
/// [`ToolError::Denied`] naming the path and the worktree.
pub fn resolve_path(path: &str) -> Result<String, ToolError> {
    if !path.starts_with('/') {
        return Ok(path.to_string());
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let normal = format!("/{}", parts.join("/"));
    let Some(root) = worktree_root() else {
        return Ok(normal);
    };
    if std::path::Path::new(&normal).starts_with(&root) {
        return Ok(normal);
    }
    Err(ToolError::Denied(format!(
        "{path} is outside the worktree ({root}); tools can only touch files inside it"
    )))
}

/// Replace the file at `path` with `bytes` atomically: written to a new file beside it, flushed
/// to disk, then renamed over it, so a crash or a full disk leaves the old file or the new one,
/// never half of either. A link is followed to the file it names (the link stays a link); the
/// host keeps the replaced file's permission bits.
///
/// # Errors
/// The I/O error of the step that failed; the file at `path` is then untouched.
pub fn write_atomic(path: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::path::{Path, PathBuf};
    let mut target = PathBuf::from(path);
    for _ in 0..40 {
        if !std::fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_symlink()) {
            break;
        }
        // A link the sandbox will not read (it leaves the worktree) is refused, not replaced.
        let next = std::fs::read_link(&target)?;
        target = match target.parent() {
            Some(dir) if next.is_relative() => dir.join(next),
            _ => next,
        };
    }
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut attempt = 0;
    let (tmp, mut file) = loop {
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
            ^ (COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as u32);
        let tmp = dir.join(format!(".{name}.{nonce:08x}.tmp"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 16 => {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    };
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &target));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename itself on disk too, where the host lets a directory be synced.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[doc(hidden)]
pub fn spec<T: Tool>() -> ToolSpec {
    ToolSpec {
        name: T::NAME.to_string(),
        description: T::DESCRIPTION.to_string(),
        input_schema: input_schema::<T::Input>(),
        output_schema: <T::Output as Output>::schema(),
        read_only: T::READ_ONLY,
    }
}

#[doc(hidden)]
pub fn dispatch<T: Tool>(input: &str) -> Result<ToolOutput, WitToolError> {
    let parsed: T::Input = serde_json::from_str(input).map_err(|e| {
        WitToolError::InvalidInput(format!(
            "input for `{}` does not fit its schema: {e}",
            T::NAME
        ))
    })?;
    T::run(parsed)
        .and_then(Output::into_output)
        .map_err(Into::into)
}

#[doc(hidden)]
pub fn unknown_tool(name: &str, known: &[&str]) -> WitToolError {
    WitToolError::UnknownTool(format!(
        "no tool `{name}` in this plugin; it offers: {}",
        known.join(", ")
    ))
}

#[doc(hidden)]
pub use bindings::cove::plugin::types::{
    ToolError as __WitToolError, ToolOutput as __ToolOutput, ToolSpec as __ToolSpec,
};
#[doc(hidden)]
pub use bindings::exports::cove::plugin::tool_api::Guest as __ToolGuest;

/// Export the listed [`Tool`] types as this component's `tool` world (without the `skill` feature).
#[macro_export]
macro_rules! tools {
    ($($tool:ty),+ $(,)?) => {
        struct __CoveTools;
        impl $crate::__ToolGuest for __CoveTools {
            fn describe() -> ::std::vec::Vec<$crate::__ToolSpec> {
                ::std::vec![$($crate::spec::<$tool>()),+]
            }
            fn call(name: ::std::string::String, input: ::std::string::String)
                -> ::std::result::Result<$crate::__ToolOutput, $crate::__WitToolError> {
                $(
                    if name == <$tool as $crate::Tool>::NAME {
                        return $crate::dispatch::<$tool>(&input);
                    }
                )+
                Err($crate::unknown_tool(&name, &[$(<$tool as $crate::Tool>::NAME),+]))
            }
        }
        // Exports carry component-model names (`cove:plugin/tool-api@0.2.0#call`) that only a
        // wasm linker accepts; a native build (clippy, unit tests) type-checks everything else.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::export_tool_world!(__CoveTools);
        #[cfg(not(target_arch = "wasm32"))]
        const _: (
            fn() -> ::std::vec::Vec<$crate::__ToolSpec>,
            fn(::std::string::String, ::std::string::String)
                -> ::std::result::Result<$crate::__ToolOutput, $crate::__WitToolError>,
        ) = (<__CoveTools as $crate::__ToolGuest>::describe, <__CoveTools as $crate::__ToolGuest>::call);
    };
}

/// The host's `search` capability: walk and match the worktree natively, in one call.
pub mod search {
    pub use crate::bindings::cove::plugin::search::{FileHit, Line, Mode, Request, Response};

    /// Run a search in the host.
    ///
    /// # Errors
    /// The host's message: a bad pattern or glob, a path outside the worktree, or the capability
    /// not granted to this plugin.
    pub fn run(req: &Request) -> Result<Response, String> {
        crate::bindings::cove::plugin::search::run(req)
    }
}

/// The host's `ast` capability: tree-sitter parsing in the host, cached by content hash.
pub mod ast {
    pub use crate::bindings::cove::plugin::ast::{
        Capture, Definition, FileSymbols, FindRequest, FindResponse, Reference, Symbol,
    };

    /// The definitions of one file. An unknown language, a binary file or syntax errors come back
    /// in the record.
    ///
    /// # Errors
    /// The host's message: a path outside the worktree, unreadable or too big, or the capability
    /// not granted to this plugin.
    pub fn symbols(path: &str) -> Result<FileSymbols, String> {
        crate::bindings::cove::plugin::ast::symbols(path)
    }

    /// Definitions of a name across the worktree (gitignore-aware), and optionally references.
    ///
    /// # Errors
    /// The host's message: a path outside the worktree, an unknown kind, or no grant.
    pub fn find(req: &FindRequest) -> Result<FindResponse, String> {
        crate::bindings::cove::plugin::ast::find(req)
    }

    /// A file's outline as text, one definition a line.
    ///
    /// # Errors
    /// As [`symbols`], and for a file cove has no grammar for.
    pub fn outline(path: &str) -> Result<String, String> {
        crate::bindings::cove::plugin::ast::outline(path)
    }

    /// Run a tree-sitter query over a file.
    ///
    /// # Errors
    /// As [`outline`], and for a query the file's grammar rejects.
    pub fn query(path: &str, query: &str) -> Result<Vec<Capture>, String> {
        crate::bindings::cove::plugin::ast::query(path, query)
    }
}

/// The host's `exec` capability: run a process in the OS sandbox, inside the worktree.
pub mod exec {
    pub use crate::bindings::cove::plugin::exec::{Command, Outcome};

    /// Run a command and wait for it (or its deadline).
    ///
    /// # Errors
    /// The host's message: the capability not granted, the sandbox unavailable, a working
    /// directory outside the worktree.
    pub fn run(cmd: &Command) -> Result<Outcome, String> {
        crate::bindings::cove::plugin::exec::run(cmd)
    }

    /// The session's working directory for commands, relative to the worktree.
    pub fn session_cwd() -> String {
        crate::bindings::cove::plugin::exec::session_cwd()
    }

    /// Move the session's working directory; refused outside the worktree.
    ///
    /// # Errors
    /// The host's message when the path is not a directory inside the worktree.
    pub fn set_session_cwd(path: &str) -> Result<String, String> {
        crate::bindings::cove::plugin::exec::set_session_cwd(path)
    }
}

/// The host's memory store: facts kept across sessions (built-in plugins only).
pub mod memory {
    pub use crate::bindings::cove::plugin::memory::Scope;

    /// Append `fact` to the project's or the user's memory, unless it is already there; the
    /// host's sentence saying what it did.
    ///
    /// # Errors
    /// The host's message: the capability not granted, an empty fact, the file not writable.
    pub fn remember(fact: &str, scope: Scope) -> Result<String, String> {
        crate::bindings::cove::plugin::memory::remember(fact, scope)
    }
}

/// The host's `progress`: tell the user how far a long call has got (never the model). Cheap;
/// the host shows the newest report.
pub mod progress {
    /// `done` steps of `total` (none when unknown), and what the tool is doing now.
    pub fn report(done: u64, total: Option<u64>, message: &str) {
        crate::bindings::cove::plugin::progress::report(done, total, message);
    }
}

/// The host's log: messages appear in cove's diagnostics under the plugin's name.
pub mod log {
    use crate::bindings::cove::plugin::log::{Level, log};

    /// Debug-level message.
    pub fn debug(msg: &str) {
        log(Level::Debug, msg);
    }
    /// Info-level message.
    pub fn info(msg: &str) {
        log(Level::Info, msg);
    }
    /// Warning.
    pub fn warn(msg: &str) {
        log(Level::Warn, msg);
    }
}
