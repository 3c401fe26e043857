//! The built-in plugins, compiled into the binary by build.rs: manifest, component and the native
//! code build.rs precompiled for it.
//!
//! Owns the embedded bytes, and giving their pages back once they have been loaded (the runtime
//! keeps its own copy of the code): a few MB a session would otherwise stay resident for nothing.
//! The registry decides what to do with them and the runtime decides whether the native code fits
//! its engine. Must not touch wasmtime.

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

/// Give back the memory pages of built-in bytes that have been loaded: they are read again from
/// the binary if ever needed. Anything that is not one of [`BUILTIN`]'s own slices is left alone.
pub fn release(bytes: &[u8]) {
    let ours = BUILTIN
        .iter()
        .any(|b| std::ptr::eq(b.wasm, bytes) || b.native.is_some_and(|n| std::ptr::eq(n, bytes)));
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let Ok(page) = usize::try_from(page) else {
        return;
    };
    if !ours || page == 0 {
        return;
    }
    let start = (bytes.as_ptr() as usize).next_multiple_of(page);
    let end = (bytes.as_ptr() as usize + bytes.len()) / page * page;
    if end <= start {
        return;
    }
    // SAFETY: [start, end) lies inside one of BUILTIN's slices (checked by identity above), which
    // `include_bytes!` put in the binary's read-only data: a private mapping of the executable
    // that nothing ever writes. MADV_DONTNEED only drops this process's page-table entries for
    // those clean pages; the next read faults the same bytes back in from the file, so no
    // reference to them observes any change.
    unsafe {
        libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
    }
}
