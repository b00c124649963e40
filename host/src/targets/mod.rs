//! A target identity store, as the engine calls it.
//!
//! The engine moves records through one trait, [`Target`], and binds
//! connections through another, [`Connect`]. In production both are the
//! component runtime: [`Components`] resolves a connection against the
//! plugins and secrets, gives it a broker, and the runtime's
//! [`Connector`] carries each call into a sandboxed instance. The seam is
//! here so that nothing else has to know that:
//!
//! - the benchmarks link a connector's logic natively in place of its
//!   component ([`Link`]), to measure what the sandbox costs, without a
//!   branch in the runtime's calls;
//! - the engine's own tests run whole passes against a store held in
//!   memory, with the clock and the jitter fixed (see `sync::clock`).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::broker::CredentialPool;
use crate::config::secrets::SecretStore;
use crate::config::{Config, Preferences};
use crate::runtime::contract::{
    Capability, ConnectionReport, Descriptor, Group, GroupOperation, Match, Operation, Outcome,
    Page, StoreError,
};
use crate::runtime::{CallError, Connector, PluginRegistry};

/// The calls that move records in one target store, through one
/// connection. Every call is independent: the engine runs many at once.
#[async_trait]
pub trait Target: Send + Sync {
    /// The name of the plugin that serves the store.
    fn plugin(&self) -> &str;

    /// What the plugin declared: capabilities, attributes, match attribute.
    fn descriptor(&self) -> &Descriptor;

    /// Which records the calls reach: two targets with the same plugin and
    /// the same key write the same store, so a record of one can be
    /// converted in place into the other's type.
    fn store_key(&self) -> String;

    /// The store's API allowance as the connector last reported it:
    /// `(used, max)`.
    fn api_usage(&self) -> Option<(u64, u64)>;

    /// PingOne's Test Connection.
    async fn test_connection(&self) -> Result<ConnectionReport, CallError>;

    /// Applies a batch; one result per operation, in order.
    async fn apply(
        &self,
        operations: Vec<Operation>,
    ) -> Result<Vec<Result<Outcome, StoreError>>, CallError>;

    /// Finds records whose `attribute` has one of `values`.
    async fn lookup(&self, attribute: &str, values: Vec<String>) -> Result<Vec<Match>, CallError>;

    /// One page of every record the connection manages.
    async fn list(&self, cursor: Option<String>) -> Result<Page, CallError>;

    /// Applies a batch of group operations; one result per operation, in
    /// order (the `groups` capability).
    async fn apply_groups(
        &self,
        operations: Vec<GroupOperation>,
    ) -> Result<Vec<Result<Outcome, StoreError>>, CallError>;

    /// Groups by display name, compared as the store compares them.
    async fn lookup_groups(&self, display_names: Vec<String>) -> Result<Vec<Group>, CallError>;
}

#[async_trait]
impl Target for Connector {
    fn plugin(&self) -> &str {
        Connector::plugin(self).name()
    }

    fn descriptor(&self) -> &Descriptor {
        Connector::plugin(self).descriptor()
    }

    fn store_key(&self) -> String {
        self.broker().egress_url(0).unwrap_or_default()
    }

    fn api_usage(&self) -> Option<(u64, u64)> {
        self.broker().api_usage()
    }

    async fn test_connection(&self) -> Result<ConnectionReport, CallError> {
        Connector::test_connection(self).await
    }

    async fn apply(
        &self,
        operations: Vec<Operation>,
    ) -> Result<Vec<Result<Outcome, StoreError>>, CallError> {
        Connector::apply(self, operations).await
    }

    async fn lookup(&self, attribute: &str, values: Vec<String>) -> Result<Vec<Match>, CallError> {
        Connector::lookup(self, attribute, values).await
    }

    async fn list(&self, cursor: Option<String>) -> Result<Page, CallError> {
        Connector::list(self, cursor).await
    }

    async fn apply_groups(
        &self,
        operations: Vec<GroupOperation>,
    ) -> Result<Vec<Result<Outcome, StoreError>>, CallError> {
        Connector::apply_groups(self, operations).await
    }

    async fn lookup_groups(&self, display_names: Vec<String>) -> Result<Vec<Group>, CallError> {
        Connector::lookup_groups(self, display_names).await
    }
}

/// Whether records of `from` can be converted in place into `to`'s type:
/// the same plugin on the same store, able to convert.
pub fn converts(from: &dyn Target, to: &dyn Target) -> bool {
    from.plugin() == to.plugin()
        && from.store_key() == to.store_key()
        && from.descriptor().has(Capability::Convert)
}

/// A connection bound to its store: what the engine needs of it.
pub struct Bound {
    pub name: String,
    pub preferences: Preferences,
    /// Non-secret settings with defaults applied, in text form.
    pub settings: BTreeMap<String, String>,
    pub target: Arc<dyn Target>,
}

/// Why a connection cannot be bound. Cheap to clone: the engine keeps it
/// with its bindings until the plugins change.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    /// The configuration does not resolve against the plugins and secrets
    /// there are: every problem, in one line.
    #[error("{}", .0.join("; "))]
    Unresolved(Vec<String>),
    #[error("connection {connection}: {reason}")]
    Connect { connection: String, reason: String },
}

/// Binds connections by name.
pub trait Connect: Send + Sync {
    /// The connection named `name`, bound to its store.
    fn connect(&self, name: &str) -> Result<Bound, ConnectError>;

    /// Changes whenever [`Connect::connect`] may answer differently (a
    /// plugin was swapped): bindings made before are made again.
    fn generation(&self) -> u64;
}

/// What the engine calls in place of a component's connector: the
/// connector itself everywhere but in the benchmarks.
pub type Link = fn(Connector) -> Arc<dyn Target>;

/// The connector itself.
pub fn component(connector: Connector) -> Arc<dyn Target> {
    Arc::new(connector)
}

/// Connections bound to the plugins of a directory through brokers that
/// hold their secrets: the production [`Connect`].
pub struct Components {
    config: Arc<Config>,
    plugins: Arc<PluginRegistry>,
    secrets: Arc<SecretStore>,
    /// Tokens shared by connections that hold the same credentials.
    credentials: CredentialPool,
    link: Link,
}

impl Components {
    pub fn new(
        config: Arc<Config>,
        plugins: Arc<PluginRegistry>,
        secrets: Arc<SecretStore>,
    ) -> Components {
        Components {
            config,
            plugins,
            secrets,
            credentials: CredentialPool::default(),
            link: component,
        }
    }

    /// Calls `link` on every connector before the engine sees it.
    pub fn linking(mut self, link: Link) -> Components {
        self.link = link;
        self
    }
}

impl Connect for Components {
    fn connect(&self, name: &str) -> Result<Bound, ConnectError> {
        let plugins = self.plugins.snapshot();
        let connection = self
            .config
            .resolve(name, &plugins, &self.secrets)
            .map_err(|errors| {
                ConnectError::Unresolved(errors.iter().map(ToString::to_string).collect())
            })?;
        let connector = connection
            .connect(
                self.config.http_limits(),
                self.secrets.clone(),
                Some(&self.credentials),
            )
            .map_err(|error| ConnectError::Connect {
                connection: name.to_string(),
                reason: error.to_string(),
            })?;
        Ok(Bound {
            name: connection.name,
            preferences: connection.preferences,
            settings: connection.settings,
            target: (self.link)(connector),
        })
    }

    fn generation(&self) -> u64 {
        self.plugins.generation()
    }
}

#[cfg(test)]
pub mod memory;
