//! The `cove` binary: parse the command line and hand off to `cli`.

mod cli;

use clap::Parser;
use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    // The sandbox helper must stay single-threaded and quiet until it execs: dispatch it first.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(cove::sandbox::HELPER) {
        cove::sandbox::enter_and_exec(args.get(2).map_or("", String::as_str));
    }
    // Tools run on a few blocking threads; glibc would give each its own malloc arena, which
    // costs resident memory for no gain in a process this size.
    // SAFETY: mallopt only changes allocator tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    let cli = cli::Cli::parse();
    init_tracing(cli.verbose);
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cove: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
