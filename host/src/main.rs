#![forbid(unsafe_code)]

use std::process::ExitCode;

/// A sync builds and drops many small per-person values; mimalloc's
/// thread-local free lists make that markedly cheaper than the system
/// allocator (see bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    provisioner::cli::main()
}
