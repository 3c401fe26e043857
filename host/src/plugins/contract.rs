//! The plugin contract (`wit/`): which versions this host speaks, and what a component claims.
//!
//! Owns reading a component's top-level imports and exports (no compilation, nested modules are
//! skipped) to learn its kind and contract version before anything is compiled. Must not link or
//! run anything; that is the runtime's job.

use crate::plugins::manifest::Kind;
use std::fmt;

/// The WIT package every contract version lives in.
pub const PACKAGE: &str = "cove:plugin";

/// Contract versions this host loads, oldest first. A new version is added beside the old ones.
pub const SUPPORTED: &[&str] = &["0.1.0", "0.2.0"];

/// The newest contract version, the one new plugins are built for.
pub const NEWEST: &str = "0.2.0";

/// A contract version this host loads; each has its own bindings in the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V0_1,
    V0_2,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V0_1 => "0.1.0",
            Version::V0_2 => "0.2.0",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A contract version this host does not load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error(
        "it needs contract {needs}, newer than this cove knows (it loads {loads}); upgrade cove to use it",
        loads = SUPPORTED.join(", ")
    )]
    Newer { needs: String },
    #[error(
        "it is built for contract {built_for}, which this cove does not load (it loads {loads}); rebuild it against contract {NEWEST}",
        loads = SUPPORTED.join(", ")
    )]
    Unsupported { built_for: String },
}

/// The version `text` names, if this host loads it.
///
/// # Errors
/// [`VersionError::Newer`] for a version past the newest this host knows (so the user learns
/// to upgrade cove, not to rebuild the plugin), [`VersionError::Unsupported`] for anything else.
pub fn version(text: &str) -> Result<Version, VersionError> {
    match text {
        "0.1.0" => Ok(Version::V0_1),
        "0.2.0" => Ok(Version::V0_2),
        other => {
            let parse = |v: &str| -> Option<(u64, u64, u64)> {
                let mut it = v.split('.').map(|n| n.parse::<u64>().ok());
                let t = (it.next()??, it.next()??, it.next()??);
                it.next().is_none().then_some(t)
            };
            match (parse(other), parse(NEWEST)) {
                (Some(v), Some(newest)) if v > newest => Err(VersionError::Newer {
                    needs: other.to_string(),
                }),
                _ => Err(VersionError::Unsupported {
                    built_for: other.to_string(),
                }),
            }
        }
    }
}

/// What a component says about itself through its import and export names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ComponentInfo {
    pub kind: Option<Kind>,
    /// The contract version of its `cove:plugin` exports, if any.
    pub contract: Option<String>,
    pub exports: Vec<String>,
    pub imports: Vec<String>,
}

/// A component that cannot be read as one.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("not a WebAssembly component: {0}")]
    Parse(String),
    #[error(
        "this is a core WebAssembly module, not a component; build it as a component (e.g. `cargo build --target wasm32-wasip2`)"
    )]
    CoreModule,
}

impl fmt::Display for ComponentInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "kind:     {}",
            self.kind
                .map_or("unknown (exports no cove:plugin world)".into(), |k| k
                    .to_string())
        )?;
        writeln!(
            f,
            "contract: {}",
            self.contract.as_deref().unwrap_or("none")
        )?;
        writeln!(f, "exports:")?;
        for e in &self.exports {
            writeln!(f, "  {e}")?;
        }
        writeln!(f, "imports:")?;
        for i in &self.imports {
            writeln!(f, "  {i}")?;
        }
        Ok(())
    }
}

/// Split `cove:plugin/tool-api@0.1.0` into (`tool-api`, `0.1.0`).
fn cove_interface(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix(PACKAGE)?.strip_prefix('/')?;
    rest.split_once('@')
}

/// Read a component's imports and exports without compiling it.
///
/// # Errors
/// [`InspectError`] when the bytes are not a component.
pub fn inspect(bytes: &[u8]) -> Result<ComponentInfo, InspectError> {
    use wasmparser::{Chunk, Encoding, Parser, Payload};
    let mut parser = Parser::new(0);
    let mut pos = 0usize;
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    loop {
        let chunk = parser
            .parse(bytes.get(pos..).unwrap_or_default(), true)
            .map_err(|e| InspectError::Parse(e.to_string()))?;
        let (consumed, payload) = match chunk {
            Chunk::Parsed { consumed, payload } => (consumed, payload),
            Chunk::NeedMoreData(_) => return Err(InspectError::Parse("file ends early".into())),
        };
        pos += consumed;
        match payload {
            Payload::Version {
                encoding: Encoding::Module,
                ..
            } => return Err(InspectError::CoreModule),
            Payload::ModuleSection {
                unchecked_range, ..
            }
            | Payload::ComponentSection {
                unchecked_range, ..
            } => {
                // The outer parser has already moved past the nested item; skip its bytes too.
                pos = unchecked_range.end;
            }
            Payload::ComponentImportSection(reader) => {
                for item in reader {
                    let item = item.map_err(|e| InspectError::Parse(e.to_string()))?;
                    imports.push(item.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) => {
                for item in reader {
                    let item = item.map_err(|e| InspectError::Parse(e.to_string()))?;
                    exports.push(item.name.name.to_string());
                }
            }
            Payload::End(_) => break,
            _ => {}
        }
    }
    let mut kind = None;
    let mut contract = None;
    for e in &exports {
        if let Some((iface, version)) = cove_interface(e) {
            let k = match iface {
                "tool-api" => Some(Kind::Tool),
                "skill-api" => Some(Kind::Skill),
                "policy-api" => Some(Kind::Policy),
                _ => None,
            };
            // A skill also exports tool-api; skill wins.
            if k.is_some() && kind != Some(Kind::Skill) {
                kind = k;
            }
            contract.get_or_insert_with(|| version.to_string());
        }
    }
    Ok(ComponentInfo {
        kind,
        contract,
        exports,
        imports,
    })
}

/// Whether this host loads components built for `version`.
pub fn is_supported(version: &str) -> bool {
    self::version(version).is_ok()
}

/// The host capabilities (`search`, `exec`...) a component imports.
pub fn imported_capabilities(info: &ComponentInfo) -> Vec<&str> {
    info.imports
        .iter()
        .filter_map(|i| cove_interface(i).map(|(iface, _)| iface))
        .filter(|i| *i != "types")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_interface_names() {
        assert_eq!(
            cove_interface("cove:plugin/tool-api@0.1.0"),
            Some(("tool-api", "0.1.0"))
        );
        assert_eq!(cove_interface("wasi:cli/stdout@0.2.0"), None);
    }

    #[test]
    fn every_supported_version_parses_and_a_newer_one_asks_for_an_upgrade() {
        for v in SUPPORTED {
            assert_eq!(version(v).map(Version::as_str), Ok(*v));
        }
        assert_eq!(version(NEWEST).map(Version::as_str), Ok(NEWEST));
        let newer = version("0.3.0").map_err(|e| e.to_string());
        assert!(
            matches!(&newer, Err(m) if m.contains("needs contract 0.3.0") && m.contains("upgrade cove")),
            "{newer:?}"
        );
        assert!(matches!(version("1.0.0"), Err(VersionError::Newer { .. })));
        for old in ["0.0.9", "0.1", "x", ""] {
            let e = version(old).map_err(|e| e.to_string());
            assert!(
                matches!(&e, Err(m) if m.contains("rebuild it against contract 0.2.0")),
                "{old}: {e:?}"
            );
        }
    }

    /// A published contract never changes: components built against it must keep linking.
    /// Changing `wit/v0.1` (or `wit/v0.2`, once a newer version ships) fails here on purpose.
    #[test]
    fn published_contract_texts_are_frozen() {
        let frozen = [
            (
                "v0.1/types.wit",
                include_str!("../../../wit/v0.1/types.wit"),
                "a2315682e770300a76cf59873d924bdd1c45ff30aeeeb2c21cecbd88240dbff5",
            ),
            (
                "v0.1/worlds.wit",
                include_str!("../../../wit/v0.1/worlds.wit"),
                "f3461e08b16fb12a7f98f49d475cf8ac9193be396732b651d63648cf31c726f6",
            ),
        ];
        for (file, text, want) in frozen {
            assert_eq!(
                blake3::hash(text.as_bytes()).to_hex().as_str(),
                want,
                "wit/{file} changed; a published contract is frozen: put changes in a new version"
            );
        }
    }

    #[test]
    fn rejects_non_components() {
        assert!(matches!(inspect(b"not wasm"), Err(InspectError::Parse(_))));
        // The smallest core module: magic + version 1.
        assert!(matches!(
            inspect(b"\0asm\x01\0\0\0"),
            Err(InspectError::CoreModule)
        ));
    }
}
