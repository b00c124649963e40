//! Turning people into records.
//!
//! - [`mapping`]: attribute mappings and templates.
//! - [`plan`]: the planner, where preferences are enforced (pure).
//! - [`engine`]: a pass: plan every rule, look up, execute in batches,
//!   journal, record links; retries, quarantine and the removal guard.
//! - [`daemon`]: `provisioner run`, the scheduler.
//! - [`links`]: the engine's tables in the state file.

pub mod backoff;
pub mod daemon;
pub mod engine;
pub mod links;
pub mod mapping;
pub mod plan;
