//! Status: what is synced, what failed and why, for the CLI, the HTTP API,
//! the web page and Prometheus.
//!
//! - [`model`]: the views, computed from the state file and the
//!   configuration; every surface renders these.
//! - [`http`]: the server `provisioner run` starts.
//! - [`page`]: the web page.
//! - [`metrics`]: the Prometheus exposition.

pub mod http;
pub mod metrics;
pub mod model;
pub mod page;
