//! What a plain component offers, read from its bytes with wasmparser (nothing compiled): its
//! exported functions (top level and inside exported interfaces) with their WIT types as [`Ty`],
//! their doc comments from the `package-docs` custom section when it has one, the tool name each
//! gets, and the imports this host cannot give it.
//!
//! Must not compile, link or run anything: the registry lists a plain plugin's tools with this
//! before anything is loaded, and the runtime links by the names it finds.

use super::json::{Func, Ty};
use wasmparser::component_types::{ComponentDefinedType, ComponentEntityType, ComponentValType};
use wasmparser::types::TypesRef;
use wasmparser::{Chunk, Encoding, Parser, Payload, PrimitiveValType, Validator, WasmFeatures};

/// What a plain component exports, as tools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exports {
    /// One per function JSON can call, in export order.
    pub funcs: Vec<Func>,
    /// Functions that are not offered, each with why (`[method]file.read`: resources...).
    pub skipped: Vec<String>,
    /// Every import, by name.
    pub imports: Vec<String>,
}

/// A component that cannot be read as a plain component.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExportsError {
    #[error("not a valid WebAssembly component: {0}")]
    Invalid(String),
    #[error(
        "this is a core WebAssembly module, not a component; build it as a component (e.g. `cargo build --target wasm32-wasip2`)"
    )]
    CoreModule,
}

/// WASI 0.2 interfaces the runtime links for every component (the worktree through
/// `wasi:filesystem`, sockets present but with networking denied).
const PROVIDED: &[&str] = &[
    "wasi:cli/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:filesystem/",
    "wasi:sockets/",
    "wasi:random/",
];

impl Exports {
    /// Imports the host does not give a plain component (a custom interface, `wasi:http`...).
    pub fn unprovided_imports(&self) -> Vec<&str> {
        self.imports
            .iter()
            .map(String::as_str)
            .filter(|i| !(PROVIDED.iter().any(|p| i.starts_with(p)) && i.contains("@0.2.")))
            .collect()
    }
}

/// Read `bytes` as a plain component.
///
/// # Errors
/// [`ExportsError`] when the bytes are not a valid component.
pub fn read(bytes: &[u8]) -> Result<Exports, ExportsError> {
    let (names, imports, docs) = top_level(bytes)?;
    let types = Validator::new_with_features(WasmFeatures::all())
        .validate_all(bytes)
        .map_err(|e| ExportsError::Invalid(e.to_string()))?;
    let types = types.as_ref();
    let docs = docs.as_deref().and_then(Docs::parse);
    // (interface, function, its types or why JSON cannot carry them), in export order.
    let mut raw: Vec<(Option<String>, String, Result<Signature, String>)> = Vec::new();
    for name in &names {
        let Some(item) = types.component_item_for_export(name) else {
            continue;
        };
        match item.ty {
            ComponentEntityType::Func(id) => raw.push((None, name.clone(), signature(types, id))),
            ComponentEntityType::Instance(id) => {
                for (func, item) in &types[id].exports {
                    if let ComponentEntityType::Func(fid) = item.ty {
                        raw.push((Some(name.clone()), func.clone(), signature(types, fid)));
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = Exports {
        imports,
        ..Exports::default()
    };
    let mut offered: Vec<(Option<String>, String, Signature)> = Vec::new();
    for (interface, name, sig) in raw {
        let shown = match &interface {
            Some(i) => format!("{i}#{name}"),
            None => name.clone(),
        };
        if name.starts_with('[') {
            out.skipped.push(format!(
                "{shown}: a resource's method, which cannot be called with JSON"
            ));
            continue;
        }
        match sig {
            Ok(sig) => offered.push((interface, name, sig)),
            Err(why) => out.skipped.push(format!("{shown}: {why}")),
        }
    }
    let names = tool_names(
        &offered
            .iter()
            .map(|(i, n, ..)| (i.as_deref(), n.as_str()))
            .collect::<Vec<_>>(),
    );
    for ((interface, name, (params, result)), tool) in offered.into_iter().zip(names) {
        let docs = docs
            .as_ref()
            .and_then(|d| d.func(interface.as_deref(), &name));
        out.funcs.push(Func {
            tool,
            interface,
            name,
            params,
            result,
            docs,
        });
    }
    Ok(out)
}

/// The top-level export names, imports and `package-docs` section of a component.
#[allow(clippy::type_complexity)]
fn top_level(bytes: &[u8]) -> Result<(Vec<String>, Vec<String>, Option<Vec<u8>>), ExportsError> {
    let invalid = |e: wasmparser::BinaryReaderError| ExportsError::Invalid(e.to_string());
    let mut parser = Parser::new(0);
    let mut pos = 0usize;
    let (mut exports, mut imports, mut docs) = (Vec::new(), Vec::new(), None);
    loop {
        let chunk = parser
            .parse(bytes.get(pos..).unwrap_or_default(), true)
            .map_err(invalid)?;
        let (consumed, payload) = match chunk {
            Chunk::Parsed { consumed, payload } => (consumed, payload),
            Chunk::NeedMoreData(_) => {
                return Err(ExportsError::Invalid("the file ends early".into()));
            }
        };
        pos += consumed;
        match payload {
            Payload::Version {
                encoding: Encoding::Module,
                ..
            } => return Err(ExportsError::CoreModule),
            Payload::ModuleSection {
                unchecked_range, ..
            }
            | Payload::ComponentSection {
                unchecked_range, ..
            } => pos = unchecked_range.end,
            Payload::ComponentImportSection(reader) => {
                for item in reader {
                    imports.push(item.map_err(invalid)?.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) => {
                for item in reader {
                    exports.push(item.map_err(invalid)?.name.name.to_string());
                }
            }
            Payload::CustomSection(c) if c.name() == "package-docs" => {
                docs = Some(c.data().to_vec());
            }
            Payload::End(_) => break,
            _ => {}
        }
    }
    Ok((exports, imports, docs))
}

type Signature = (Vec<(String, Ty)>, Option<Ty>);

fn signature(
    types: TypesRef<'_>,
    id: wasmparser::component_types::ComponentFuncTypeId,
) -> Result<Signature, String> {
    let f = &types[id];
    if f.async_ {
        return Err("an async function (WASI 0.3), which cove does not call yet".into());
    }
    let params = f
        .params
        .iter()
        .map(|(name, t)| {
            ty(types, *t)
                .map(|t| (name.as_str().to_string(), t))
                .map_err(|why| format!("parameter `{name}` {why}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let result = f
        .result
        .map(|t| ty(types, t))
        .transpose()
        .map_err(|why| format!("its result {why}"))?;
    Ok((params, result))
}

fn ty(types: TypesRef<'_>, t: ComponentValType) -> Result<Ty, String> {
    let id = match t {
        ComponentValType::Primitive(p) => return primitive(p),
        ComponentValType::Type(id) => id,
    };
    let b = |t: ComponentValType| ty(types, t).map(Box::new);
    let names = |set: &wasmparser::collections::IndexSet<wasmparser::names::KebabString>| {
        set.iter().map(|n| n.as_str().to_string()).collect()
    };
    Ok(match &types[id] {
        ComponentDefinedType::Primitive(p) => primitive(*p)?,
        ComponentDefinedType::Record(r) => Ty::Record(
            r.fields
                .iter()
                .map(|(n, t)| Ok((n.as_str().to_string(), ty(types, *t)?)))
                .collect::<Result<_, String>>()?,
        ),
        ComponentDefinedType::Variant(v) => Ty::Variant(
            v.cases
                .iter()
                .map(|(n, c)| {
                    Ok((
                        n.as_str().to_string(),
                        c.ty.map(|t| ty(types, t)).transpose()?,
                    ))
                })
                .collect::<Result<_, String>>()?,
        ),
        ComponentDefinedType::List { element, .. } => Ty::List(b(*element)?),
        ComponentDefinedType::FixedLengthList {
            element, length, ..
        } => Ty::FixedList(b(*element)?, *length),
        ComponentDefinedType::Map { key, value, .. } => Ty::Map(b(*key)?, b(*value)?),
        ComponentDefinedType::Tuple(t) => Ty::Tuple(
            t.types
                .iter()
                .map(|t| ty(types, *t))
                .collect::<Result<_, _>>()?,
        ),
        ComponentDefinedType::Flags(set) => Ty::Flags(names(set)),
        ComponentDefinedType::Enum(set) => Ty::Enum(names(set)),
        ComponentDefinedType::Option { ty: t, .. } => Ty::Option(b(*t)?),
        ComponentDefinedType::Result { ok, err, .. } => Ty::Result {
            ok: ok.map(b).transpose()?,
            err: err.map(b).transpose()?,
        },
        ComponentDefinedType::Own(_) | ComponentDefinedType::Borrow(_) => {
            return Err("is a resource handle, which cannot be passed as JSON".into());
        }
        ComponentDefinedType::Future { .. } | ComponentDefinedType::Stream { .. } => {
            return Err("is a future or stream (WASI 0.3), which cove does not pass yet".into());
        }
    })
}

fn primitive(p: PrimitiveValType) -> Result<Ty, String> {
    Ok(match p {
        PrimitiveValType::Bool => Ty::Bool,
        PrimitiveValType::S8 => Ty::S8,
        PrimitiveValType::U8 => Ty::U8,
        PrimitiveValType::S16 => Ty::S16,
        PrimitiveValType::U16 => Ty::U16,
        PrimitiveValType::S32 => Ty::S32,
        PrimitiveValType::U32 => Ty::U32,
        PrimitiveValType::S64 => Ty::S64,
        PrimitiveValType::U64 => Ty::U64,
        PrimitiveValType::F32 => Ty::F32,
        PrimitiveValType::F64 => Ty::F64,
        PrimitiveValType::Char => Ty::Char,
        PrimitiveValType::String => Ty::String,
        PrimitiveValType::ErrorContext => {
            return Err("is an error-context (WASI 0.3), which cove does not pass yet".into());
        }
    })
}

/// An interface's short name: `wasi:example/files@0.1.0` → `files`.
fn short(interface: &str) -> &str {
    let tail = interface.rsplit_once('/').map_or(interface, |(_, t)| t);
    tail.split_once('@').map_or(tail, |(n, _)| n)
}

/// A tool name for each function (`[A-Za-z0-9_-]{1,64}`): the function's own name, or, when two
/// interfaces export the same one, `<interface>_<function>` for each of them.
pub fn tool_names(funcs: &[(Option<&str>, &str)]) -> Vec<String> {
    let clean = |s: &str| -> String {
        let s: String = s
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        s.chars().take(64).collect()
    };
    let count = |name: &str| funcs.iter().filter(|(_, n)| *n == name).count();
    let mut out: Vec<String> = funcs
        .iter()
        .map(|(iface, name)| match iface {
            Some(i) if count(name) > 1 => clean(&format!("{}_{name}", short(i))),
            _ => clean(name),
        })
        .collect();
    // Still equal (the same interface name from two packages, or a name cut at 64): number them.
    for i in 0..out.len() {
        if out[..i].contains(&out[i]) {
            let mut n = 2;
            loop {
                let suffix = format!("_{n}");
                let base: String = out[i].chars().take(64 - suffix.len()).collect();
                let candidate = format!("{base}{suffix}");
                if !out.contains(&candidate) {
                    out[i] = candidate;
                    break;
                }
                n += 1;
            }
        }
    }
    out
}

/// The `package-docs` custom section (wit-component writes a version byte, then JSON).
struct Docs(serde_json::Value);

impl Docs {
    fn parse(bytes: &[u8]) -> Option<Self> {
        let (&version, json) = bytes.split_first()?;
        if version > 1 {
            tracing::debug!("package-docs version {version} is newer than cove reads");
            return None;
        }
        serde_json::from_slice(json).ok().map(Self)
    }

    /// The doc comment of `func`, at the top level (`interface` none) or in `interface`.
    fn func(&self, interface: Option<&str>, func: &str) -> Option<String> {
        let text = |entry: &serde_json::Value| -> Option<String> {
            // Version 0 wrote the docs as a bare string; version 1 as {"docs": ...}.
            entry
                .as_str()
                .or_else(|| entry.get("docs").and_then(|d| d.as_str()))
                .map(str::to_string)
        };
        let in_iface = |i: &serde_json::Value| i.get("funcs")?.get(func).and_then(text);
        let worlds = self.0.get("worlds").and_then(|w| w.as_object());
        match interface {
            None => worlds?.values().find_map(|w| {
                ["func_exports", "funcs"]
                    .iter()
                    .find_map(|k| w.get(k)?.get(func).and_then(text))
            }),
            Some(i) => {
                let name = short(i);
                self.0
                    .get("interfaces")
                    .and_then(|m| m.get(name))
                    .and_then(in_iface)
                    .or_else(|| {
                        worlds?.values().find_map(|w| {
                            ["interface_exports", "interfaces"].iter().find_map(|k| {
                                let m = w.get(k)?;
                                m.get(i).or_else(|| m.get(name)).and_then(in_iface)
                            })
                        })
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_are_the_functions_unless_two_interfaces_share_one() {
        let names = tool_names(&[
            (None, "read-file"),
            (Some("a:b/files@1.0.0"), "stat"),
            (Some("a:b/dirs@1.0.0"), "stat"),
            (Some("a:b/dirs@1.0.0"), "list"),
        ]);
        assert_eq!(names, ["read-file", "files_stat", "dirs_stat", "list"]);
        // Two packages with the same interface name: numbered, never equal.
        let names = tool_names(&[(Some("a:b/x"), "f"), (Some("c:d/x"), "f")]);
        assert_eq!(names, ["x_f", "x_f_2"]);
        let long = "a".repeat(80);
        let names = tool_names(&[(None, long.as_str())]);
        assert_eq!(names[0].len(), 64);
        assert!(
            names
                .iter()
                .all(|n| crate::plugins::manifest::is_tool_name(n))
        );
    }

    #[test]
    fn docs_are_found_for_top_level_and_interface_functions() {
        let v1 = br#"{"worlds":{"w":{"func_exports":{"read-file":{"docs":"Read a file."}}}},
                     "interfaces":{"files":{"funcs":{"stat":{"docs":"Stat it."}}}}}"#;
        let mut bytes = vec![1u8];
        bytes.extend_from_slice(v1);
        let docs = Docs::parse(&bytes);
        let got = |i: Option<&str>, f: &str| docs.as_ref().and_then(|d| d.func(i, f));
        assert_eq!(got(None, "read-file").as_deref(), Some("Read a file."));
        assert_eq!(
            got(Some("a:b/files@1.0.0"), "stat").as_deref(),
            Some("Stat it.")
        );
        assert_eq!(got(None, "missing"), None);
        // Version 0: a function's docs were a bare string.
        let mut v0 = vec![0u8];
        v0.extend_from_slice(br#"{"worlds":{"w":{"funcs":{"go":"Go."}}}}"#);
        assert_eq!(
            Docs::parse(&v0).and_then(|d| d.func(None, "go")).as_deref(),
            Some("Go.")
        );
        // A version cove does not know, or garbage, is no docs (the signature stands in).
        assert!(Docs::parse(b"\x09{}").is_none());
        assert!(Docs::parse(b"\x01not json").is_none());
    }

    #[test]
    fn only_wasi_0_2_is_provided() {
        let e = Exports {
            imports: vec![
                "wasi:cli/environment@0.2.3".into(),
                "wasi:filesystem/types@0.2.3".into(),
                "wasi:http/outgoing-handler@0.2.3".into(),
                "acme:secrets/vault@1.0.0".into(),
                "wasi:io/streams@0.3.0".into(),
            ],
            ..Exports::default()
        };
        assert_eq!(
            e.unprovided_imports(),
            [
                "wasi:http/outgoing-handler@0.2.3",
                "acme:secrets/vault@1.0.0",
                "wasi:io/streams@0.3.0"
            ]
        );
    }

    #[test]
    fn a_core_module_or_garbage_is_refused() {
        assert!(matches!(
            read(b"\0asm\x01\0\0\0"),
            Err(ExportsError::CoreModule)
        ));
        assert!(matches!(read(b"nonsense"), Err(ExportsError::Invalid(_))));
    }
}
