//! Turning people into records.
//!
//! - [`plan`]: the planner, where preferences are enforced (pure).
//! - [`engine`]: a pass: plan every rule, look up, execute in batches,
//!   journal, record links; retries, quarantine and the removal guard.
//! - [`daemon`]: `provisioner run`, the scheduler.
//! - [`links`]: what the engine keeps per rule and person (the SQL is the
//!   state backend's).
//! - [`clock`]: the time and the jitter a pass reads, fixed in tests.

pub mod backoff;
pub mod clock;
pub mod daemon;
pub mod engine;
pub mod links;
pub mod plan;
