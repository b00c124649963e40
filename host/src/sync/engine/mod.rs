//! A sync pass: plan every rule, look the new people up, execute in
//! batches, journal every action before it is sent, and record links after
//! the answers.
//!
//! Crash safety rests on two things. The journal entry is written before a
//! batch goes out, so an interrupted batch is visible afterwards. And every
//! create is preceded by a lookup, so a record created just before a crash,
//! whose link was never written, is found and adopted on the next pass
//! instead of being created twice.
//!
//! Where each part lives:
//!
//! - `pass.rs`: a pass, step by step, and where a dry run renders instead
//!   of writing and sending;
//! - `binding.rs`: connections bound to plugins, rules to connections;
//! - `slices.rs`: the directory read a slice of people at a time;
//! - `promotion.rs`: a person promoted between rules, converted in place;
//! - `resolve.rs`: the pure step from plans and lookups to work and links;
//! - `lookup.rs`: the lookups that step waits for;
//! - `guards.rs`: the removal guard and the update guard;
//! - `sharing.rs`: rules sharing a connection's records, and handovers;
//! - `deleted.rs`: a rule gone from the configuration;
//! - `execute.rs`: batches sent, journalled and recorded;
//! - `work.rs`, `report.rs`: what is sent, and what the caller is told.

mod binding;
mod deleted;
mod execute;
mod groups;
mod guards;
mod lookup;
mod pass;
mod promotion;
mod report;
mod resolve;
mod sharing;
mod slices;
#[cfg(test)]
mod tests;
mod work;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use self::binding::Binding;
pub use self::report::{Action, GroupLine, PassReport, PlanLine, RuleReport, RuleStatus};
use crate::config::{Config, RuleSet, SyncSettings};
use crate::directory::AttributeSchema;
use crate::runtime::PluginRegistry;
use crate::state::{StateError, Store};
use crate::sync::clock::{Clock, SystemClock};
use crate::targets::Connect;

/// People looked up per call to the connector.
const LOOKUP_CHUNK: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Directory(#[from] crate::directory::DirectoryError),
    #[error("no rule named {0:?} in the configuration")]
    NoSuchRule(String),
}

/// What a pass is asked to do.
#[derive(Debug, Clone, Default)]
pub struct PassOptions {
    pub rule: Option<String>,
    /// Only these people (everyone if `None`).
    pub people: Option<BTreeSet<String>>,
    /// Re-read linked records through lookup to repair drift.
    pub full: bool,
    /// Plan, print, send nothing, write nothing.
    pub dry_run: bool,
}

/// The sync engine over one configuration.
pub struct Engine {
    db: Arc<dyn Store>,
    config: Arc<Config>,
    plugins: Arc<PluginRegistry>,
    schema: AttributeSchema,
    settings: SyncSettings,
    rules: RuleSet,
    /// Binds connections to their stores: the plugins, in production.
    connect: Arc<dyn Connect>,
    /// Bound connections, with the generation they were bound at: a
    /// swapped plugin rebinds them for new work.
    bound: tokio::sync::Mutex<BTreeMap<String, (u64, Binding)>>,
    clock: Arc<dyn Clock>,
    stopping: AtomicBool,
    progress: std::sync::Mutex<Option<Progress>>,
}

/// Called after each batch with (operations answered, operations planned).
pub type Progress = Arc<dyn Fn(usize, usize) + Send + Sync>;

impl Engine {
    /// The engine over one configuration, binding its connections through
    /// `connect`: the plugins in production (`targets::Components`), a
    /// store held in memory in the engine's tests.
    pub fn new(
        db: Arc<dyn Store>,
        config: Arc<Config>,
        plugins: Arc<PluginRegistry>,
        schema: AttributeSchema,
        connect: Arc<dyn Connect>,
    ) -> Engine {
        let rules = config.rules(&schema);
        let settings = config.sync_settings();
        Engine {
            db,
            config,
            plugins,
            schema,
            settings,
            rules,
            connect,
            bound: tokio::sync::Mutex::new(BTreeMap::new()),
            clock: Arc::new(SystemClock),
            stopping: AtomicBool::new(false),
            progress: std::sync::Mutex::new(None),
        }
    }

    /// The engine over `rules` in place of the configuration's: a pass
    /// over rules that exist for one command only.
    pub fn with_rules(mut self, rules: RuleSet) -> Engine {
        self.rules = rules;
        self
    }

    /// The engine reading the time and the jitter from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Engine {
        self.clock = clock;
        self
    }

    /// Asks a running pass to stop sending: batches already sent finish and
    /// are recorded; the rest are left for the next run to plan again.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Reports progress of the sending phase, e.g. to a progress bar.
    pub fn on_progress(&self, progress: Progress) {
        *self.progress.lock().unwrap_or_else(|p| p.into_inner()) = Some(progress);
    }

    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    pub fn settings(&self) -> &SyncSettings {
        &self.settings
    }

    pub fn db(&self) -> &dyn Store {
        &*self.db
    }

    pub fn shared_db(&self) -> Arc<dyn Store> {
        self.db.clone()
    }

    pub fn config(&self) -> Arc<Config> {
        self.config.clone()
    }

    pub fn schema(&self) -> &AttributeSchema {
        &self.schema
    }

    /// The plugins this engine serves.
    pub fn plugins(&self) -> &Arc<PluginRegistry> {
        &self.plugins
    }

    /// Status per rule from the links, in PingOne's buckets.
    pub async fn buckets(&self) -> Result<BTreeMap<String, BTreeMap<String, usize>>, EngineError> {
        let mut out: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for (rule, state, count) in self.db.count_states().await? {
            let bucket = state.bucket().name();
            let count = usize::try_from(count).unwrap_or(usize::MAX);
            let entry = out.entry(rule).or_default();
            *entry.entry("impacted".into()).or_default() += count;
            *entry.entry(bucket.into()).or_default() += count;
        }
        for name in self.rules.rules.keys() {
            out.entry(name.clone()).or_default();
        }
        Ok(out)
    }
}
