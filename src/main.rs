//! `entrypoint-guard`: see `entrypoint-guard --help`.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc malloc: the webhook allocates and frees many
/// small values per admission on every worker thread (docs/PERFORMANCE.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    entrypoint_guard::cli::run(entrypoint_guard::cli::Cli::parse())
}
