//! The built-in plugins, compiled into the binary by build.rs: manifest, component and the native
//! code build.rs precompiled for it.
//!
//! Owns nothing but the embedded bytes; the registry decides what to do with them and the runtime
//! decides whether the native code fits its engine. Must not touch wasmtime.

/// One built-in plugin as build.rs embedded it.
pub struct Builtin {
    /// The text of its `plugin.toml`.
    pub manifest: &'static str,
    /// The component (`.wasm`).
    pub wasm: &'static [u8],
    /// Its native code, precompiled at build time with the runtime's engine configuration; `None`
    /// when build.rs could not make it (a cross-compiled binary, say).
    pub native: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/builtin.rs"));

/// The names of the built-in plugins (their manifests parsed; nothing compiled).
pub fn names() -> Vec<String> {
    BUILTIN
        .iter()
        .filter_map(|b| {
            super::manifest::Manifest::parse(
                b.manifest,
                std::path::Path::new("built-in plugin.toml"),
            )
            .ok()
            .map(|m| m.name)
        })
        .collect()
}
