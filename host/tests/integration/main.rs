//! The host's integration tests, in one binary: each file is one area
//! (the broker, the sandbox, sync, status, ...), and they share `common`.
//! One binary links wasmtime once, where a binary per file linked it once
//! per file.

mod common;

mod broker;
mod browser;
mod cli;
mod conform;
mod contract_v0_2;
mod crash;
mod directory;
mod faults;
mod fuzz_regressions;
mod hostile;
mod hot_swap;
mod load;
mod rules;
mod salesforce;
mod sandbox;
mod scaffold;
mod scim;
mod scim_inbound;
mod state;
mod status;
mod sync;
