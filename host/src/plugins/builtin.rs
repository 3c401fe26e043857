//! The built-in plugins, compiled into the binary by build.rs.
//!
//! Owns nothing but the embedded bytes; the registry decides what to do with them.

include!(concat!(env!("OUT_DIR"), "/builtin.rs"));

/// The names of the built-in plugins (their manifests parsed; nothing compiled).
pub fn names() -> Vec<String> {
    BUILTIN
        .iter()
        .filter_map(|(text, _)| {
            super::manifest::Manifest::parse(text, std::path::Path::new("built-in plugin.toml"))
                .ok()
                .map(|m| m.name)
        })
        .collect()
}
