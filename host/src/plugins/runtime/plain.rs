//! Plain components: components written for another host, exporting plain typed functions and no
//! cove world, offered as tools (one per exported function).
//!
//! Owns loading one (refusing imports this host cannot give, naming them all; linking against the
//! same WASI as every plugin), finding each function's export, and calling one with its JSON
//! arguments converted to component values and its results back to text (`json`). A call goes
//! through the runtime's own store set-up (`ready`/`finish`: the spare instance, memory cap, epoch
//! deadline, cancellation, `.git` guard), so a trap or timeout is the same [`CallError`] as for a
//! cove plugin. What a component exports is read without compiling it (`exports`).
//!
//! Must not decide grants or read manifests: the registry gives it [`CallEnv`]s and the
//! [`Exports`] to offer. Must not copy the store set-up: it uses the runtime's.

pub mod exports;
pub mod json;

use super::{
    CallEnv, CallError, CodeOrigin, Runtime, RuntimeError, StoreState, ToolFailure, ToolOutput,
    ToolSpec, cut, link_message, ready,
};
pub use exports::{Exports, ExportsError};
pub use json::{Func, Outcome, Ty};
use std::sync::Arc;
use wasmtime::Store;
use wasmtime::component::{ComponentExportIndex, Instance, InstancePre, Val};

/// A compiled, pre-linked plain component, its functions and its spare instance.
#[derive(Clone)]
pub struct LoadedPlain {
    pre: PlainPre,
    spare: Arc<ready::Spare<Instance>>,
    funcs: Arc<[Callable]>,
    pub origin: CodeOrigin,
}

/// One function and where to find it in an instance.
struct Callable {
    func: Func,
    index: ComponentExportIndex,
}

#[derive(Clone)]
struct PlainPre(InstancePre<StoreState>);

impl ready::Pre for PlainPre {
    type Instance = Instance;
    fn instantiate_into(&self, store: &mut Store<StoreState>) -> wasmtime::Result<Instance> {
        self.0.instantiate(store)
    }
}

impl LoadedPlain {
    /// Whether an instance is waiting, made ahead of the next call.
    pub fn has_spare(&self) -> bool {
        self.spare.is_ready()
    }

    /// Instantiate in `store`, calling nothing (the bench times instantiation with this).
    pub(super) fn instantiate(&self, store: &mut Store<StoreState>) -> wasmtime::Result<()> {
        self.pre.0.instantiate(store).map(drop)
    }

    /// Each function as a tool: its signature (and doc comment) as the description, the schema
    /// from its parameters' types, never read-only (a plain function says nothing about it).
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.funcs
            .iter()
            .map(|c| ToolSpec {
                name: c.func.tool.clone(),
                description: c.func.description(),
                input_schema: c.func.input_schema().to_string(),
                // A record answer is also structured output (a JSON object); others are text.
                output_schema: c.func.output_schema().map(|s| s.to_string()),
                read_only: false,
            })
            .collect()
    }
}

impl Runtime {
    /// Load a plain component and pre-link it; `exports` is what [`exports::read`] found in
    /// `bytes`. Its native code comes from the cache, else a compile (a plain component is never
    /// built in).
    ///
    /// # Errors
    /// [`RuntimeError::Link`] naming every import this host does not give (anything but WASI
    /// 0.2), or what wasmtime could not link; [`RuntimeError::Compile`] for a component wasmtime
    /// rejects.
    pub fn load_plain(
        &self,
        plugin: &str,
        bytes: &[u8],
        exports: &Exports,
    ) -> Result<LoadedPlain, RuntimeError> {
        let link = |message: String| RuntimeError::Link {
            plugin: plugin.into(),
            message,
        };
        let missing = exports.unprovided_imports();
        if !missing.is_empty() {
            return Err(link(format!(
                "it imports {}, which cove does not provide (a plain component gets WASI 0.2: \
                 wasi:cli, io, clocks, filesystem, random, and sockets without a network)",
                missing
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let (component, origin) = self.component(plugin, bytes, None)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| link(link_message(&e)))?;
        let funcs = exports
            .funcs
            .iter()
            .map(|f| {
                let index = match &f.interface {
                    None => component.get_export_index(None, &f.name),
                    Some(i) => component
                        .get_export_index(None, i)
                        .and_then(|i| component.get_export_index(Some(&i), &f.name)),
                };
                index
                    .map(|index| Callable {
                        func: f.clone(),
                        index,
                    })
                    .ok_or_else(|| link(format!("it exports no function `{}`", f.name)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LoadedPlain {
            pre: PlainPre(pre),
            spare: Arc::default(),
            funcs: funcs.into(),
            origin,
        })
    }

    /// Make the spare instance for `env` now (the first call then finds it), as `describe` does
    /// for a cove plugin; a failure to instantiate is reported by the first call.
    pub(super) fn prepare_plain(&self, loaded: &LoadedPlain, env: &CallEnv) {
        match self.ready(&loaded.pre, &loaded.spare, env) {
            Ok(r) => self
                .worker
                .after_call(r.store, &self.engine, &loaded.pre, &loaded.spare, env),
            Err(e) => tracing::debug!(plugin = &*env.plugin, "no spare instance: {e}"),
        }
    }

    /// Call the function behind `tool` with `input` (a JSON object of its arguments), in a
    /// fresh instance.
    ///
    /// # Errors
    /// [`CallError`] when the component traps, times out, is cancelled or hits its memory cap.
    /// Arguments that do not fit its types, and the function's own `err`, yield
    /// `Ok(Err(ToolFailure))`.
    pub(super) fn call_plain(
        &self,
        loaded: &LoadedPlain,
        env: &CallEnv,
        tool: &str,
        input: &str,
    ) -> Result<Result<ToolOutput, ToolFailure>, CallError> {
        let Some(callable) = loaded.funcs.iter().find(|c| c.func.tool == tool) else {
            return Ok(Err(ToolFailure::UnknownTool(format!(
                "`{tool}` is not one of this component's functions"
            ))));
        };
        let input: serde_json::Value = match serde_json::from_str(input) {
            Ok(v) => v,
            Err(e) => return Ok(Err(ToolFailure::InvalidInput(format!("not JSON: {e}")))),
        };
        let args = match callable.func.args(&input) {
            Ok(a) => a,
            Err(e) => return Ok(Err(ToolFailure::InvalidInput(e.to_string()))),
        };
        let mut ready = self.ready(&loaded.pre, &loaded.spare, env)?;
        let store = &mut ready.store;
        let result = ready
            .instance
            .get_func(&mut *store, callable.index)
            .ok_or_else(|| wasmtime::format_err!("the instance has no function `{tool}`"))
            .and_then(|func| {
                let mut results =
                    vec![Val::Bool(false); usize::from(callable.func.result.is_some())];
                // wasmtime 48 runs the post-return step itself (`post_return` is a no-op there).
                func.call(&mut *store, &args, &mut results)?;
                Ok(results)
            });
        let results = self.finish((&loaded.pre, &loaded.spare), ready, env, result)?;
        let max = env.limits.output_bytes;
        Ok(match callable.func.outcome(&results) {
            Outcome::Ok(text) => Ok(ToolOutput {
                text: cut(&text, max).into_owned(),
                // Cut JSON would not parse: one over the cap is left out, the text still goes.
                structured: callable
                    .func
                    .structured(&results)
                    .map(|v| v.to_string())
                    .filter(|s| s.len() <= max),
            }),
            Outcome::Err(text) => Err(ToolFailure::Failed(cut(&text, max).into_owned())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::manifest::FsAccess;
    use crate::plugins::runtime::{Grants, Limits};
    use crate::worktree::Worktree;
    use std::path::{Path, PathBuf};
    use std::time::Instant;

    type Res = anyhow::Result<()>;

    /// Microsoft wassette's `filesystem.wasm`, a component written for another host.
    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/wassette/filesystem.wasm")
    }

    fn env_for(wt: &Arc<Worktree>) -> CallEnv {
        CallEnv {
            plugin: "filesystem".into(),
            worktree: Some(wt.clone()),
            grants: Arc::new(Grants {
                fs: FsAccess::Read,
                ..Grants::default()
            }),
            limits: Limits::default(),
            session_cwd: Arc::default(),
            cancel: None,
            commands: crate::sandbox::Resources::default(),
            progress: None,
        }
    }

    #[test]
    fn the_wassette_component_offers_its_four_functions_with_schemas() -> Res {
        let bytes = std::fs::read(fixture())?;
        let exports = exports::read(&bytes)?;
        let names: Vec<&str> = exports.funcs.iter().map(|f| f.tool.as_str()).collect();
        assert_eq!(
            names,
            [
                "list-directory",
                "read-file",
                "search-file",
                "get-file-info"
            ]
        );
        assert!(exports.skipped.is_empty(), "{:?}", exports.skipped);
        assert!(
            exports.unprovided_imports().is_empty(),
            "{:?}",
            exports.imports
        );
        let search = &exports.funcs[2];
        assert_eq!(
            search.signature(),
            "search-file(path: string, pattern: string) -> result<string, string>"
        );
        assert_eq!(
            search.input_schema()["required"],
            serde_json::json!(["path", "pattern"])
        );
        Ok(())
    }

    #[test]
    fn read_file_reads_inside_the_worktree_and_is_refused_outside() -> Res {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("repo");
        std::fs::create_dir_all(root.join(".git"))?;
        std::fs::write(root.join("hello.txt"), "hello from the worktree\n")?;
        std::fs::write(dir.path().join("secret.txt"), "top secret\n")?;
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("link"))?;
        let wt = Arc::new(Worktree::open(&root)?);
        let env = env_for(&wt);

        let cache = tempfile::tempdir()?;
        let rt = Runtime::new(Some(cache.path().to_path_buf()))?;
        let bytes = std::fs::read(fixture())?;
        let exports = exports::read(&bytes)?;
        let started = Instant::now();
        let loaded = rt.load_plain("filesystem", &bytes, &exports)?;
        tracing::debug!(elapsed = ?started.elapsed(), origin = ?loaded.origin, "loaded");
        assert_eq!(loaded.specs().len(), 4);

        let read = rt.call_plain(&loaded, &env, "read-file", r#"{"path":"hello.txt"}"#)?;
        assert_eq!(
            read.map(|o| o.text),
            Ok("hello from the worktree\n".to_string())
        );
        let listed = rt.call_plain(&loaded, &env, "list-directory", r#"{"path":"."}"#)?;
        assert!(
            listed.as_ref().is_ok_and(|l| l.text.contains("hello.txt")),
            "{listed:?}"
        );
        let outside = dir.path().join("secret.txt");
        for path in [
            "../secret.txt",
            outside.to_str().unwrap_or_default(),
            "link",
        ] {
            let input = serde_json::json!({ "path": path }).to_string();
            let answer = rt.call_plain(&loaded, &env, "read-file", &input)?;
            assert!(
                matches!(&answer, Err(ToolFailure::Failed(_))),
                "{path}: {answer:?}"
            );
            assert!(
                !format!("{answer:?}").contains("top secret"),
                "{path}: {answer:?}"
            );
        }
        // Arguments that do not fit are the tool's input error, naming the argument.
        let missing = rt.call_plain(&loaded, &env, "read-file", "{}")?;
        assert_eq!(
            missing,
            Err(ToolFailure::InvalidInput(
                "argument `path`: missing; expected a string".into()
            ))
        );

        // Loaded again (another process would): from the cache, and a warm call is quick.
        let rt = Runtime::new(Some(cache.path().to_path_buf()))?;
        let loaded = rt.load_plain("filesystem", &bytes, &exports)?;
        assert_eq!(loaded.origin, CodeOrigin::Cache);
        rt.prepare_plain(&loaded, &env);
        let again = rt.call_plain(&loaded, &env, "read-file", r#"{"path":"hello.txt"}"#)?;
        assert_eq!(
            again.map(|o| o.text),
            Ok("hello from the worktree\n".to_string())
        );
        Ok(())
    }

    /// A component importing an interface of its own host: refused at load, naming it.
    fn importing(name: &str) -> Vec<u8> {
        use wasm_encoder::{
            Component, ComponentImportSection, ComponentTypeRef, ComponentTypeSection, InstanceType,
        };
        let mut c = Component::new();
        let mut types = ComponentTypeSection::new();
        types.instance(&InstanceType::new());
        c.section(&types);
        let mut imports = ComponentImportSection::new();
        imports.import(name, ComponentTypeRef::Instance(0));
        c.section(&imports);
        c.finish()
    }

    #[test]
    fn imports_cove_cannot_give_are_refused_by_name() -> Res {
        let bytes = importing("acme:secrets/vault@1.0.0");
        let exports = exports::read(&bytes)?;
        assert!(exports.funcs.is_empty());
        let rt = Runtime::new(None)?;
        let err = rt
            .load_plain("vaulty", &bytes, &exports)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("plugin `vaulty`: cannot link its component: it imports `acme:secrets/vault@1.0.0`, which cove does not provide"),
            "{err}"
        );
        // WASI 0.2 alone links (an empty instance type stands in for the interface here).
        let bytes = importing("wasi:random/random@0.2.3");
        let exports = exports::read(&bytes)?;
        assert!(exports.unprovided_imports().is_empty());
        Ok(())
    }

    /// A component exporting `sub(a: u32, b: u32) -> u32` (a - b, wrapping) from two
    /// interfaces, with a `package-docs` section documenting one of them, and `spin() -> u32`
    /// (an endless loop) at the top level.
    fn two_interfaces() -> Vec<u8> {
        use wasm_encoder::{
            Alias, BlockType, CanonicalFunctionSection, CodeSection, Component,
            ComponentAliasSection, ComponentExportKind, ComponentExportSection,
            ComponentInstanceSection, ComponentTypeSection, ComponentValType, CustomSection,
            ExportKind, ExportSection, Function, FunctionSection, InstanceSection, Module,
            ModuleArg, ModuleSection, PrimitiveValType, TypeSection, ValType,
        };
        let mut m = Module::new();
        let mut types = TypeSection::new();
        types
            .ty()
            .function([ValType::I32, ValType::I32], [ValType::I32]);
        types.ty().function([], [ValType::I32]);
        m.section(&types);
        let mut funcs = FunctionSection::new();
        funcs.function(0);
        funcs.function(1);
        m.section(&funcs);
        let mut exports = ExportSection::new();
        exports.export("sub", ExportKind::Func, 0);
        exports.export("spin", ExportKind::Func, 1);
        m.section(&exports);
        let mut code = CodeSection::new();
        let mut body = Function::new([]);
        body.instructions()
            .local_get(0)
            .local_get(1)
            .i32_sub()
            .end();
        code.function(&body);
        let mut spin = Function::new([]);
        spin.instructions()
            .loop_(BlockType::Empty)
            .br(0)
            .end()
            .unreachable()
            .end();
        code.function(&spin);
        m.section(&code);

        let mut c = Component::new();
        c.section(&ModuleSection(&m));
        let mut core = InstanceSection::new();
        core.instantiate(0, Vec::<(&str, ModuleArg)>::new());
        c.section(&core);
        let mut alias = ComponentAliasSection::new();
        alias.alias(Alias::CoreInstanceExport {
            instance: 0,
            kind: ExportKind::Func,
            name: "sub",
        });
        alias.alias(Alias::CoreInstanceExport {
            instance: 0,
            kind: ExportKind::Func,
            name: "spin",
        });
        c.section(&alias);
        let mut ty = ComponentTypeSection::new();
        ty.function()
            .params([("a", PrimitiveValType::U32), ("b", PrimitiveValType::U32)])
            .result(Some(ComponentValType::Primitive(PrimitiveValType::U32)));
        ty.function()
            .params(Vec::<(&str, PrimitiveValType)>::new())
            .result(Some(ComponentValType::Primitive(PrimitiveValType::U32)));
        c.section(&ty);
        let mut canon = CanonicalFunctionSection::new();
        canon.lift(0, 0, []);
        canon.lift(1, 1, []);
        c.section(&canon);
        let mut instances = ComponentInstanceSection::new();
        instances.export_items([("sub", ComponentExportKind::Func, 0)]);
        instances.export_items([("sub", ComponentExportKind::Func, 0)]);
        c.section(&instances);
        let mut out = ComponentExportSection::new();
        out.export(
            "acme:math/ints@1.0.0",
            ComponentExportKind::Instance,
            0,
            None,
        );
        out.export(
            "acme:math/wrapping@1.0.0",
            ComponentExportKind::Instance,
            1,
            None,
        );
        out.export("spin", ComponentExportKind::Func, 1, None);
        c.section(&out);
        let mut docs = vec![1u8];
        docs.extend_from_slice(
            br#"{"interfaces":{"ints":{"funcs":{"sub":{"docs":"Subtract b from a."}}}}}"#,
        );
        c.section(&CustomSection {
            name: "package-docs".into(),
            data: docs.into(),
        });
        c.finish()
    }

    #[test]
    fn functions_inside_exported_interfaces_are_tools_named_apart_and_called_by_name() -> Res {
        let bytes = two_interfaces();
        let exports = exports::read(&bytes)?;
        let tools: Vec<(&str, Option<&str>)> = exports
            .funcs
            .iter()
            .map(|f| (f.tool.as_str(), f.interface.as_deref()))
            .collect();
        assert_eq!(
            tools,
            [
                ("ints_sub", Some("acme:math/ints@1.0.0")),
                ("wrapping_sub", Some("acme:math/wrapping@1.0.0")),
                ("spin", None),
            ]
        );
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join(".git"))?;
        let wt = Arc::new(Worktree::open(dir.path())?);
        let env = env_for(&wt);
        let rt = Runtime::new(None)?;
        let loaded = rt.load_plain("math", &bytes, &exports)?;
        let specs = loaded.specs();
        assert_eq!(
            specs[0].description,
            "Subtract b from a.\n\nSignature: sub(a: u32, b: u32) -> u32 (in acme:math/ints@1.0.0)"
        );
        assert_eq!(
            specs[1].description,
            "sub(a: u32, b: u32) -> u32 (in acme:math/wrapping@1.0.0)"
        );
        assert!(specs.iter().all(|s| !s.read_only));
        // Arguments go by name, whatever order the JSON has them in.
        let sub = |tool: &str, input: &str| {
            rt.call_plain(&loaded, &env, tool, input)
                .map(|r| r.map(|o| o.text))
        };
        assert_eq!(
            sub("ints_sub", r#"{"b": 2, "a": 10}"#)?,
            Ok("8".to_string())
        );
        assert_eq!(
            sub("wrapping_sub", r#"{"a": 0, "b": 1}"#)?,
            Ok("4294967295".to_string())
        );
        assert_eq!(
            sub("ints_sub", r#"{"a": -1, "b": 0}"#)?,
            Err(ToolFailure::InvalidInput(
                "argument `a`: -1 is out of range: expected an integer from 0 to 4294967295 (u32)"
                    .into()
            ))
        );
        assert!(matches!(
            sub("sub", "{}")?,
            Err(ToolFailure::UnknownTool(_))
        ));
        Ok(())
    }

    #[test]
    fn a_plain_call_that_runs_on_is_stopped_like_any_plugin_call() -> Res {
        let bytes = two_interfaces();
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join(".git"))?;
        let wt = Arc::new(Worktree::open(dir.path())?);
        let rt = Runtime::new(None)?;
        let loaded = rt.load_plain("math", &bytes, &exports::read(&bytes)?)?;
        let mut env = env_for(&wt);
        env.plugin = "math".into();
        env.limits.timeout = std::time::Duration::from_millis(100);
        let started = Instant::now();
        let spun = rt.call_plain(&loaded, &env, "spin", "{}");
        assert!(
            matches!(&spun, Err(CallError::Timeout { plugin, .. }) if plugin == "math"),
            "{spun:?}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // The instance that ran on is gone; the next call gets a fresh one and answers.
        let sub = rt.call_plain(&loaded, &env, "ints_sub", r#"{"a": 3, "b": 1}"#)?;
        assert_eq!(sub.map(|o| o.text), Ok("2".to_string()));
        env.cancel = Some(Arc::new(std::sync::atomic::AtomicBool::new(true)));
        env.limits.timeout = std::time::Duration::from_secs(30);
        let cancelled = rt.call_plain(&loaded, &env, "spin", "{}");
        assert!(
            matches!(cancelled, Err(CallError::Cancelled { .. })),
            "{cancelled:?}"
        );
        Ok(())
    }

    /// The typed test guest: a Rust component (wit-bindgen) exporting a function for every kind
    /// of WIT type, in an interface and at the top level.
    fn typed() -> anyhow::Result<Vec<u8>> {
        Ok(std::fs::read(
            Path::new(env!("COVE_TEST_GUESTS")).join("cove_guest_typed.wasm"),
        )?)
    }

    #[test]
    fn every_kind_of_wit_type_crosses_into_a_real_component_and_back() -> Res {
        let bytes = typed()?;
        let found = exports::read(&bytes)?;
        let names: Vec<&str> = found.funcs.iter().map(|f| f.tool.as_str()).collect();
        assert_eq!(
            names,
            ["hello", "describe", "midpoint", "add64", "echo", "fail"]
        );
        // Rust's wit-bindgen keeps no doc comments in the component: the signature describes.
        assert_eq!(
            found.funcs[1].description(),
            "describe(s: variant { dot, circle(u32), poly(list<record { x: s32, y: s32 }>) }, \
             c: enum { red, green, blue }, p: flags { read, write, exec }, label: option<string>) \
             -> result<string, string> (in acme:typed/shapes@0.1.0)"
        );
        // A resource's constructor and methods, and a function taking a handle, are left out.
        assert_eq!(
            found.skipped,
            [
                "acme:typed/shapes@0.1.0#[constructor]counter: a resource's method, which cannot be called with JSON",
                "acme:typed/shapes@0.1.0#[method]counter.get: a resource's method, which cannot be called with JSON",
                "acme:typed/shapes@0.1.0#peek: parameter `c` is a resource handle, which cannot be passed as JSON",
            ]
        );
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join(".git"))?;
        let wt = Arc::new(Worktree::open(dir.path())?);
        let mut env = env_for(&wt);
        env.plugin = "typed".into();
        let rt = Runtime::new(None)?;
        let loaded = rt.load_plain("typed", &bytes, &found)?;
        let call = |tool: &str, input: serde_json::Value| {
            rt.call_plain(&loaded, &env, tool, &input.to_string())
                .map(|r| r.map(|o| o.text))
        };
        use serde_json::json;

        // Variant with a list of records, enum, flags (any order), option: as the schema says.
        let input = json!({"s": {"poly": [{"x": 1, "y": -2}, {"x": 3, "y": 4}]}, "c": "blue", "p": ["write", "read"], "label": "roof"});
        let describe = &found.funcs[1];
        assert_eq!(describe.tool, "describe");
        assert!(
            jsonschema::validator_for(&describe.input_schema())?.is_valid(&input),
            "{}",
            describe.input_schema()
        );
        assert_eq!(
            call("describe", input)?,
            Ok("a polygon (1,-2) (3,4), blue, [read|write], labelled roof".to_string())
        );
        // A payload-less case by name, an option left out, no flags.
        assert_eq!(
            call("describe", json!({"s": "dot", "c": "red", "p": []}))?,
            Ok("a dot, red, [], no label".to_string())
        );
        // The function's own err is the tool's failure.
        assert_eq!(
            call(
                "describe",
                json!({"s": {"circle": 0}, "c": "green", "p": ["exec"]})
            )?,
            Err(ToolFailure::Failed("a circle needs a radius".into()))
        );
        assert_eq!(
            call("fail", json!({"why": "testing"}))?,
            Err(ToolFailure::Failed("failed as asked: testing".into()))
        );
        // 64-bit integers stay exact past 2^53, both ways.
        assert_eq!(
            call("add64", json!({"a": 9_007_199_254_740_993u64, "b": 1}))?,
            Ok("9007199254740994".to_string())
        );
        // Records, tuples, chars, floats (NaN too), lists, nested option<result>: back as JSON.
        let echoed = json!([{"x": 5, "y": -6}, ["é", 2.5], [1, 2, 255], {"err": "inner"}]);
        let input = json!({"pt": {"x": 5, "y": -6}, "pair": ["é", 2.5], "items": [1, 2, 255], "maybe": {"err": "inner"}});
        assert_eq!(
            call("echo", input)?.map(|t| serde_json::from_str::<serde_json::Value>(&t).ok()),
            Ok(Some(echoed))
        );
        let input =
            json!({"pt": {"x": 0, "y": 0}, "pair": ["x", "NaN"], "items": [], "maybe": null});
        assert_eq!(
            call("echo", input)?,
            Ok(r#"[{"x":0,"y":0},["x","NaN"],[],null]"#.to_string())
        );
        // What does not fit is refused before the component runs, naming the place.
        assert_eq!(
            call("describe", json!({"s": {"poly": [{"x": 1}]}, "c": "red", "p": []}))?,
            Err(ToolFailure::InvalidInput(
                "argument `s.poly[0].y`: missing; expected an integer from -2147483648 to 2147483647 (s32)".into()
            ))
        );
        assert_eq!(
            call("echo", json!({"pt": {"x": 0, "y": 0}, "pair": ["xy", 1], "items": [], "maybe": null}))?,
            Err(ToolFailure::InvalidInput(
                "argument `pair[0]`: expected a string of exactly one character, got the string \"xy\"".into()
            ))
        );
        assert_eq!(
            call("hello", json!({"name": "cove"}))?,
            Ok("hello, cove".to_string())
        );
        // A record answer is structured output too, with its schema; others are text only.
        let specs = loaded.specs();
        let spec = |name: &str| specs.iter().find(|s| s.name == name);
        assert_eq!(
            spec("midpoint").and_then(|s| s.output_schema.clone()),
            Some(
                json!({"type": "object", "properties": {"x": {"type": "integer", "minimum": i32::MIN, "maximum": i32::MAX}, "y": {"type": "integer", "minimum": i32::MIN, "maximum": i32::MAX}}, "required": ["x", "y"], "additionalProperties": false})
                    .to_string()
            )
        );
        assert_eq!(spec("add64").and_then(|s| s.output_schema.clone()), None);
        let mid = rt.call_plain(
            &loaded,
            &env,
            "midpoint",
            r#"{"a": {"x": 0, "y": 0}, "b": {"x": 4, "y": -2}}"#,
        )?;
        assert_eq!(
            mid,
            Ok(ToolOutput {
                text: r#"{"x":2,"y":-1}"#.into(),
                structured: Some(r#"{"x":2,"y":-1}"#.into()),
            })
        );
        let sum = rt.call_plain(&loaded, &env, "add64", r#"{"a": 1, "b": 2}"#)?;
        assert_eq!(sum.map(|o| o.structured), Ok(None));
        Ok(())
    }
}
