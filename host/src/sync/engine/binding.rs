//! Binding: a connection to its plugin, and a rule to its connection and
//! compiled mappings. A binding is made once per plugin generation, so a
//! swapped plugin serves new work while a pass in flight keeps its own.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::Engine;
use crate::config::Rule;
use crate::mapping::{self, CompiledMapping};
use crate::runtime::contract::Capability;
use crate::sync::plan::RuleView;
use crate::targets::{self, ConnectError};

/// Why a connection or a rule cannot be worked on in this pass. Kept with
/// the binding cache, so it is cheap to clone.
#[derive(Debug, Clone, thiserror::Error)]
pub(super) enum BindError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The rule does not fit the plugin's descriptor: its mappings, or
    /// the groups it pushes.
    #[error("{0}")]
    Unfit(String),
}

/// A connection ready for calls.
pub(super) struct Bound {
    pub connection: targets::Bound,
    /// Batches in flight to this connection.
    pub gate: Arc<Semaphore>,
}

/// A connection bound to its plugin, or why it could not be.
pub(super) type Binding = Result<Arc<Bound>, BindError>;

/// A rule bound to its connection, with its mappings compiled.
pub(super) struct RuleBinding {
    pub rule: Rule,
    pub bound: Arc<Bound>,
    pub mappings: Vec<CompiledMapping>,
    /// What the mappings write, to tell a change of them (see
    /// [`mapping::fingerprint`]).
    pub fingerprint: String,
    pub match_attribute: String,
    /// The connector declares `enable`.
    pub can_enable: bool,
    /// Set when a change of the mappings would update more records than
    /// the rule's update guard allows: updates wait for approval.
    pub hold_updates: bool,
}

impl RuleBinding {
    /// What the planner needs to know of the rule.
    pub fn view(&self) -> RuleView<'_> {
        RuleView {
            rule: &self.rule,
            mappings: &self.mappings,
            match_attribute: &self.match_attribute,
            preferences: &self.bound.connection.preferences,
            can_enable: self.can_enable,
        }
    }

    /// The record type a conversion into this rule asks for: its
    /// connection's `record_type`, which the contract has every connector
    /// that converts declare.
    pub fn target_type(&self) -> String {
        self.bound
            .connection
            .settings
            .get(crate::runtime::RECORD_TYPE)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether records of `from` can be converted in place into this
    /// rule's type: the same connector on the same store, able to convert.
    pub fn converts_from(&self, from: &RuleBinding) -> bool {
        targets::converts(
            &*from.bound.connection.target,
            &*self.bound.connection.target,
        )
    }
}

impl Engine {
    /// The bound connection, resolved once per plugin generation.
    pub(super) async fn bind(&self, name: &str) -> Binding {
        let generation = self.connect.generation();
        let mut bound = self.bound.lock().await;
        if let Some((at, result)) = bound.get(name)
            && *at == generation
        {
            return result.clone();
        }
        let result = self
            .connect
            .connect(name)
            .map(|connection| {
                Arc::new(Bound {
                    connection,
                    gate: Arc::new(Semaphore::new(self.settings.concurrency)),
                })
            })
            .map_err(BindError::from);
        bound.insert(name.to_string(), (generation, result.clone()));
        result
    }

    /// Binds a rule: its connection, and the mappings it will use.
    pub(super) async fn bind_rule(&self, rule: &Rule) -> Result<RuleBinding, BindError> {
        let bound = self.bind(&rule.connection).await?;
        let descriptor = bound.connection.target.descriptor();
        if !rule.push_groups.is_empty() && !descriptor.has(Capability::Groups) {
            return Err(BindError::Unfit(format!(
                "the rule pushes groups ({}), but plugin {} has no groups capability",
                rule.push_groups.join(", "),
                descriptor.name
            )));
        }
        let mappings = rule
            .mappings_for(descriptor, &self.schema)
            .map_err(BindError::Unfit)?;
        let match_attribute = descriptor.match_attribute.clone();
        let can_enable = descriptor.has(Capability::Enable);
        Ok(RuleBinding {
            rule: rule.clone(),
            can_enable,
            bound,
            fingerprint: mapping::fingerprint(&mappings),
            mappings,
            match_attribute,
            hold_updates: false,
        })
    }
}
