//! `entrypoint-guard`: see `entrypoint-guard --help`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    entrypoint_guard::cli::run(entrypoint_guard::cli::Cli::parse())
}
