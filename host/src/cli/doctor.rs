//! `cove doctor`: which sandbox walls hold on this machine.

use anyhow::Result;
use std::process::ExitCode;

pub(crate) fn run(json: bool) -> Result<ExitCode> {
    let scratch = std::env::temp_dir().join(format!("cove-doctor-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let walls = cove::sandbox::doctor(&scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    let all = walls.iter().all(|w| w.active);
    if json {
        println!("{}", serde_json::to_string_pretty(&walls)?);
    } else {
        println!(
            "plugins: WebAssembly components, one WASI preopen (the worktree), .git and .cove read-only: always on"
        );
        for w in &walls {
            println!(
                "{} {}: {}",
                if w.active { "✓" } else { "✗" },
                w.name,
                w.detail
            );
        }
        if !all {
            println!(
                "\nCommands (the bash tool) need every wall; with one missing they are refused."
            );
        }
    }
    Ok(if all {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
