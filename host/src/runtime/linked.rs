//! Connector logic linked into the host in place of a component's calls.
//!
//! Only the benchmarks use this: to measure what the sandbox costs, they
//! run a whole sync with the Salesforce connector's logic compiled natively
//! and linked in, against the same sync through the component. The
//! component is still loaded, validated and asked to describe itself, so
//! everything but the calls that move records is the same on both sides;
//! the linked logic reaches the store through the same broker.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::CallError;
use super::contract::{Match, Operation, Outcome, StoreError};
use crate::broker::Broker;

/// The calls a sync makes to move records, answered by linked logic.
/// Test Connection and listing still go to the component.
pub trait LinkedStore: Send + Sync {
    fn apply<'a>(
        &'a self,
        broker: &'a Arc<Broker>,
        operations: Vec<Operation>,
    ) -> BoxFuture<'a, Result<Vec<Result<Outcome, StoreError>>, CallError>>;

    fn lookup<'a>(
        &'a self,
        broker: &'a Arc<Broker>,
        attribute: &'a str,
        values: Vec<String>,
    ) -> BoxFuture<'a, Result<Vec<Match>, CallError>>;
}

/// Linked logic by plugin name; empty everywhere but in the benchmarks.
#[derive(Clone, Default)]
pub struct LinkedStores(BTreeMap<String, Arc<dyn LinkedStore>>);

impl LinkedStores {
    /// Links `store` in place of the calls of the plugin named `plugin`.
    pub fn link(&mut self, plugin: &str, store: Arc<dyn LinkedStore>) {
        self.0.insert(plugin.to_string(), store);
    }

    pub(super) fn get(&self, plugin: &str) -> Option<Arc<dyn LinkedStore>> {
        self.0.get(plugin).cloned()
    }
}

impl fmt::Debug for LinkedStores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}
