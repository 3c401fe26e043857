//! `cove plugin build`: find the plugin's language and toolchain, build its component, put it
//! where the manifest says, and say what it is.

use super::read_manifest;
use anyhow::{Context, Result, bail};
use cove::plugins::manifest::Manifest;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The toolchain versions a new plugin is built with.
const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.23.0";
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
/// The oldest node componentize-js runs on.
const NODE_MAJOR: u32 = 18;

/// The languages `cove plugin build` knows, by the file that marks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Language {
    Rust,
    JavaScript,
    Python,
}

/// The plugin's language, from the files in `dir`.
pub(crate) fn detect(dir: &Path) -> Result<Language> {
    if dir.join("Cargo.toml").is_file() {
        Ok(Language::Rust)
    } else if dir.join("package.json").is_file() {
        Ok(Language::JavaScript)
    } else if dir.join("app.py").is_file() {
        Ok(Language::Python)
    } else {
        bail!(
            "{} holds no Cargo.toml (Rust), package.json (JavaScript) or app.py (Python), so cove does not know how to build it; build the component yourself and put it beside plugin.toml",
            dir.display()
        )
    }
}

pub(crate) fn run(dir: &Path) -> Result<ExitCode> {
    let (manifest, dir) = read_manifest(dir)?;
    let dir = dir.as_path();
    let language = detect(dir)?;
    let out = dir.join(manifest.component_file());
    match language {
        Language::Rust => rust(dir, &out)?,
        Language::JavaScript => js(dir, &manifest, &out)?,
        Language::Python => python(dir, &manifest, &out)?,
    }
    let bytes =
        std::fs::read(&out).with_context(|| format!("the build made no {}", out.display()))?;
    let info = cove::plugins::contract::inspect(&bytes)
        .with_context(|| format!("{} is not a component", out.display()))?;
    let contract = info.contract.clone().unwrap_or_else(|| "none".into());
    println!(
        "built {}: kind {}, contract {contract}, {}",
        out.display(),
        info.kind.map_or("none".to_string(), |k| k.to_string()),
        size(bytes.len())
    );
    if info.kind != Some(manifest.kind) {
        bail!(
            "plugin.toml says kind {} but the component exports {}; fix `kind` or the world it is built for",
            manifest.kind,
            info.kind
                .map_or("no cove:plugin world".to_string(), |k| format!(
                    "the {k} world"
                ))
        );
    }
    if Some(&contract) != manifest.contract.as_ref() {
        bail!(
            "plugin.toml says contract {} but the component is built for {contract}; fix `contract`",
            manifest
                .contract
                .as_deref()
                .unwrap_or("none (a plain component)")
        );
    }
    if let Err(e) = cove::plugins::contract::version(&contract) {
        bail!("the component: {e}");
    }
    Ok(ExitCode::SUCCESS)
}

fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    } else {
        format!("{} KiB", bytes.div_ceil(1024))
    }
}

/// Run `cmd` in `dir` with its output passed through; fail naming it when it fails.
fn run_tool(cmd: &mut Command, what: &str) -> Result<()> {
    eprintln!("running: {what}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{what}`"))?;
    if !status.success() {
        bail!("`{what}` failed ({status}); its output is above");
    }
    Ok(())
}

/// `program`'s path when it is on PATH.
fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What `program args` prints on stdout, when it runs and succeeds.
fn output_of(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn rust(dir: &Path, out: &Path) -> Result<()> {
    let installed = match output_of("rustup", &["target", "list", "--installed"]) {
        Some(list) => list.lines().any(|l| l.trim() == "wasm32-wasip2"),
        // A Rust without rustup (a distribution's): look for the target's library itself.
        None => match output_of("rustc", &["--print", "sysroot"]) {
            Some(sysroot) => Path::new(sysroot.trim())
                .join("lib/rustlib/wasm32-wasip2")
                .is_dir(),
            None => bail!(
                "neither rustup nor rustc was found: a Rust plugin needs Rust from https://rustup.rs and its wasm32-wasip2 target (`rustup target add wasm32-wasip2`)"
            ),
        },
    };
    if !installed {
        bail!(
            "the Rust target wasm32-wasip2 is not installed; install it with:\n  rustup target add wasm32-wasip2"
        );
    }
    let cargo_toml = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&cargo_toml)
        .with_context(|| format!("cannot read {}", cargo_toml.display()))?;
    let parsed: toml::Table =
        toml::from_str(&text).with_context(|| format!("{}", cargo_toml.display()))?;
    let Some(package) = parsed
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
    else {
        bail!("{} has no [package] name", cargo_toml.display());
    };
    let lib = parsed
        .get("lib")
        .and_then(|l| l.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or(package)
        .replace('-', "_");
    let metadata = Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(dir)
        .output()
        .context("cannot run cargo (is Rust installed? https://rustup.rs)")?;
    if !metadata.status.success() {
        bail!(
            "`cargo metadata` failed: {}",
            String::from_utf8_lossy(&metadata.stderr).trim()
        );
    }
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.stdout)?;
    let Some(target_dir) = metadata["target_directory"].as_str() else {
        bail!("`cargo metadata` did not say where the build goes");
    };
    run_tool(
        Command::new("cargo")
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .current_dir(dir),
        "cargo build --release --target wasm32-wasip2",
    )?;
    let built = Path::new(target_dir).join(format!("wasm32-wasip2/release/{lib}.wasm"));
    std::fs::copy(&built, out).with_context(|| {
        format!(
            "cannot copy {} to {} (is the crate a cdylib?)",
            built.display(),
            out.display()
        )
    })?;
    Ok(())
}

/// The major version of the node on PATH, if there is one.
fn node_major() -> Option<u32> {
    let v = output_of("node", &["--version"])?;
    v.trim()
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()
}

fn js(dir: &Path, manifest: &Manifest, out: &Path) -> Result<()> {
    let local = dir.join("node_modules/.bin/componentize-js");
    let tool = if is_executable(&local) {
        local
    } else if let Some(global) = on_path("componentize-js") {
        global
    } else {
        match node_major() {
            None => bail!(
                "a JavaScript plugin is built with componentize-js, which needs node {NODE_MAJOR} or newer and npm: neither componentize-js nor node was found on PATH (install node from https://nodejs.org)"
            ),
            Some(major) if major < NODE_MAJOR => bail!(
                "componentize-js needs node {NODE_MAJOR} or newer; the node on PATH is {major}"
            ),
            Some(_) => {}
        }
        if on_path("npm").is_none() {
            bail!("componentize-js is not installed and npm was not found on PATH to install it");
        }
        eprintln!(
            "componentize-js is not installed; installing {COMPONENTIZE_JS} into {}",
            dir.join("node_modules").display()
        );
        let what = format!("npm install --no-audit --no-fund --save-dev {COMPONENTIZE_JS}");
        run_tool(
            Command::new("npm")
                .args([
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--save-dev",
                    COMPONENTIZE_JS,
                ])
                .current_dir(dir),
            &what,
        )?;
        if !is_executable(&local) {
            bail!("`{what}` did not install {}", local.display());
        }
        local
    };
    let world = manifest.kind.to_string();
    let mut cmd = Command::new(&tool);
    cmd.args([
        "--wit",
        "wit",
        "--world-name",
        &world,
        "-d",
        "http",
        "-d",
        "fetch-event",
        "-o",
    ])
    .arg(out)
    .arg("src/index.js")
    .current_dir(dir);
    run_tool(
        &mut cmd,
        &format!(
            "componentize-js --wit wit --world-name {world} -d http -d fetch-event -o {} src/index.js",
            out.display()
        ),
    )
}

/// Where pip puts the scripts of `python3`'s packages.
fn python_scripts() -> Option<PathBuf> {
    let dir = output_of(
        "python3",
        &[
            "-c",
            "import sysconfig;print(sysconfig.get_path(\"scripts\"))",
        ],
    )?;
    Some(PathBuf::from(dir.trim()))
}

fn componentize_py() -> Option<PathBuf> {
    on_path("componentize-py").or_else(|| {
        python_scripts()
            .map(|d| d.join("componentize-py"))
            .filter(|p| is_executable(p))
    })
}

fn python(dir: &Path, manifest: &Manifest, out: &Path) -> Result<()> {
    let tool = match componentize_py() {
        Some(t) => t,
        None => {
            if on_path("python3").is_none() {
                bail!(
                    "a Python plugin is built with componentize-py, and neither it nor python3 was found on PATH (install Python 3.10 or newer, then `pip install {COMPONENTIZE_PY}`)"
                );
            }
            eprintln!(
                "componentize-py is not installed; installing it with `python3 -m pip install {COMPONENTIZE_PY}`"
            );
            let status = Command::new("python3")
                .args(["-m", "pip", "install", COMPONENTIZE_PY])
                .status();
            let installed = status.is_ok_and(|s| s.success());
            match componentize_py().filter(|_| installed) {
                Some(t) => t,
                None => bail!(
                    "componentize-py is not installed and `python3 -m pip install {COMPONENTIZE_PY}` did not install it (its output is above); install it yourself (pip install {COMPONENTIZE_PY}) so that `componentize-py` is on PATH"
                ),
            }
        }
    };
    let world = format!(
        "cove:plugin/{}@{}",
        manifest.kind,
        manifest
            .contract
            .as_deref()
            .unwrap_or(cove::plugins::contract::NEWEST)
    );
    let mut cmd = Command::new(&tool);
    cmd.args(["-d", "wit", "-w", &world, "componentize", "app", "-o"])
        .arg(out)
        .current_dir(dir);
    run_tool(
        &mut cmd,
        &format!(
            "componentize-py -d wit -w {world} componentize app -o {}",
            out.display()
        ),
    )
}
