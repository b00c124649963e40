//! provisioner: provisions identities from a source directory into target
//! identity stores through sandboxed WebAssembly connector components.
//!
//! The crate is laid out by concern, and each folder keeps a narrow surface:
//!
//! - [`runtime`] owns wasmtime: the engine, the compiled-code cache, plugin
//!   discovery and validation, per-call limits, and the version-independent
//!   view of the connector contract.
//! - [`broker`] is the plugin's only door out: the egress policy, brokered
//!   HTTP, and the credentials (OAuth 2.0 refresh included) that never reach
//!   a plugin.
//! - [`config`] reads `provisioner.toml` and its secret references, and
//!   checks connections against the plugins' descriptors.
//! - [`state`] is the storage interface, one trait per concern, and its
//!   SQLite backend; [`directory`] is the source directory in it: people,
//!   groups, populations and the change sequence.
//! - [`mapping`] compiles attribute mappings and renders them: a leaf, which
//!   the configuration and the planner both use.
//! - [`sync`] turns people into records: the planner, the engine that
//!   carries a pass out, links and the journal, and the daemon.
//! - [`targets`] are the target stores as the engine calls them: one
//!   trait for the calls, one for binding connections, with the component
//!   runtime behind both in production.
//! - [`status`] reports: summaries, failures, per-person traces, the HTTP
//!   API and page, metrics.
//! - [`conform`] checks a connector's promises against a live store, for
//!   authors before they ship it; [`scaffold`] starts a new connector.
//! - [`cli`] is the thin `provisioner` command line over the modules above.
//! - [`inert`] makes text from plugins and stores harmless to print.
//! - [`telemetry`] records what the process observes, for `/metrics`: a
//!   leaf, so that the broker and the runtime need not know `status`.
//!
//! The host has no unsafe code, and keeps it that way: the sandbox's
//! guarantees rest on wasmtime's, not on anything hand-written here.
#![forbid(unsafe_code)]

pub mod broker;
pub mod cli;
pub mod config;
pub mod conform;
pub mod directory;
pub mod inert;
pub mod mapping;
pub mod runtime;
pub mod scaffold;
pub mod scim;
pub mod state;
pub mod status;
pub mod sync;
pub mod targets;
pub mod telemetry;
