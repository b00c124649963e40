//! `provisioner` with the Salesforce connector's logic linked in: the
//! bench-only build of the host that workload 4 runs a whole sync with.
//!
//! `provisioner-linked native ARGS...` answers the connector's `apply` and
//! `lookup-records` with the logic compiled natively; `provisioner-linked
//! component ARGS...` is the same binary calling the component, so that the
//! two sides differ in nothing but the sandbox. ARGS are `provisioner`'s.

mod linked;

use std::ffi::OsString;
use std::process::ExitCode;

/// The allocator `provisioner` itself uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let mode = if args.len() > 1 {
        args.remove(1)
    } else {
        OsString::new()
    };
    let link: provisioner::targets::Link = match mode.to_str() {
        Some("native") => linked::native,
        Some("component") => provisioner::targets::component,
        _ => {
            eprintln!("usage: provisioner-linked native|component PROVISIONER-ARGS...");
            return ExitCode::from(2);
        }
    };
    provisioner::cli::main_linked(args, link)
}
