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
//! Two guards stand between a pass and mass changes an operator did not
//! mean: the removal guard weighs all of a pass's removals at its end, and
//! the update guard weighs the updates a change of a rule's mappings would
//! make (see `Review`). Rules that target one connection share its
//! records (see `Sharing`): a person in two of them has one record, and
//! a record one rule links is handed over, never removed, when another
//! lets go of it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use serde_json::json;
use tokio::sync::Semaphore;

use super::backoff;
use super::links::{JournalEntry, Link, LinkError, LinkState, Links, UpdateGuard, remember};
use super::mapping::{self, CompiledMapping};
use super::plan::{self, Decision, Found, Planned, RuleView};
use crate::broker::CredentialPool;
use crate::config::secrets::SecretStore;
use crate::config::{Cause, Config, Connection, RemoveAction, Rule, RuleSet, SyncSettings};
use crate::directory::{AttributeSchema, Directory, Person};
use crate::runtime::contract::{Attribute, Capability, Match, Operation, StoreError};
use crate::runtime::{CallError, Connector, PluginRegistry};
use crate::state::{StateDb, StateError, now_ms};

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

/// A rule's standing, PingOne's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status", content = "reason")]
pub enum RuleStatus {
    Active,
    Inactive,
    /// Gone from the configuration; its records are being handled.
    Deleted,
    Failed(String),
    Quarantined(String),
}

/// One line of a plan, for `--dry-run` and for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanLine {
    pub person: String,
    pub action: String,
    pub detail: String,
}

/// What one pass did to one rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleReport {
    pub rule: String,
    pub connection: String,
    pub status: Option<RuleStatus>,
    /// Action counts: created, adopted, updated, removed, disabled,
    /// converted, unchanged, unsynced, partial, kept, failed, waiting.
    pub actions: BTreeMap<String, usize>,
    pub plan: Vec<PlanLine>,
}

impl RuleReport {
    fn count(&mut self, what: &str) {
        *self.actions.entry(what.to_string()).or_default() += 1;
    }

    fn line(&mut self, person: &str, action: &str, detail: impl Into<String>) {
        self.plan.push(PlanLine {
            person: person.to_string(),
            action: action.to_string(),
            detail: detail.into(),
        });
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PassReport {
    pub rules: Vec<RuleReport>,
    pub dry_run: bool,
}

/// A connection ready for calls.
struct Bound {
    connection: Connection,
    connector: Connector,
    gate: Arc<Semaphore>,
}

/// A rule bound to its connection, with its mappings compiled.
struct RuleBinding {
    rule: Rule,
    bound: Arc<Bound>,
    mappings: Vec<CompiledMapping>,
    /// What the mappings write, to tell a change of them (see
    /// [`mapping::fingerprint`]).
    fingerprint: String,
    match_attribute: String,
    /// The connector declares `enable`.
    can_enable: bool,
    /// Set when a change of the mappings would update more records than
    /// the rule's update guard allows: updates wait for approval.
    hold_updates: bool,
}

impl RuleBinding {
    /// What the planner needs to know of the rule.
    fn view(&self) -> RuleView<'_> {
        RuleView {
            rule: &self.rule,
            mappings: &self.mappings,
            match_attribute: &self.match_attribute,
            preferences: &self.bound.connection.preferences,
            can_enable: self.can_enable,
        }
    }
}

/// What a pass makes of a rule's mappings, against those it last wrote
/// through.
enum Review {
    Same,
    /// Record them after the pass; `first` when nothing was recorded
    /// before, so that even a targeted pass may.
    Record {
        first: bool,
    },
    /// Changed, and the updates wait for `approve-updates`.
    Hold,
}

/// One operation to send, with what is needed to record its answer.
#[derive(Debug, Clone)]
struct Work {
    rule: String,
    connection: String,
    person_id: String,
    person_seq: Option<i64>,
    base: Link,
    kind: WorkKind,
}

#[derive(Debug, Clone)]
enum WorkKind {
    Create(Vec<Attribute>),
    /// `written` is what the link remembers afterwards; `enable`
    /// reactivates a disabled record in the same operation, and `version`
    /// is the record's as this pass's lookup read it.
    Update {
        target: String,
        changes: Vec<Attribute>,
        written: Option<BTreeMap<String, crate::runtime::contract::Value>>,
        enable: bool,
        version: Option<String>,
    },
    Remove {
        target: String,
        action: RemoveAction,
        cause: Cause,
    },
    /// Converts the record of `from` (another rule) into this rule's type.
    Convert {
        from: Box<Link>,
        target: String,
        target_type: String,
        attributes: Vec<Attribute>,
    },
}

impl Work {
    fn operation(&self) -> Operation {
        match &self.kind {
            WorkKind::Create(attributes) => Operation::Create {
                attributes: attributes.clone(),
            },
            WorkKind::Update {
                target,
                changes,
                enable: true,
                version,
                ..
            } => Operation::Enable {
                id: target.clone(),
                attributes: changes.clone(),
                version: version.clone(),
            },
            WorkKind::Update {
                target,
                changes,
                version,
                ..
            } => Operation::Update {
                id: target.clone(),
                attributes: changes.clone(),
                version: version.clone(),
            },
            WorkKind::Remove {
                target,
                action: RemoveAction::Delete,
                ..
            } => Operation::Delete { id: target.clone() },
            WorkKind::Remove {
                target,
                action: RemoveAction::Disable,
                ..
            } => Operation::Disable { id: target.clone() },
            WorkKind::Convert {
                target,
                target_type,
                attributes,
                ..
            } => Operation::Convert {
                id: target.clone(),
                target_type: target_type.clone(),
                attributes: attributes.clone(),
            },
        }
    }

    fn action(&self) -> &'static str {
        match &self.kind {
            WorkKind::Create(_) => "create",
            WorkKind::Update { enable: true, .. } => "enable",
            WorkKind::Update {
                written: Some(_), ..
            } => "adopt-update",
            WorkKind::Update { .. } => "update",
            WorkKind::Remove {
                action: RemoveAction::Delete,
                ..
            } => "delete",
            WorkKind::Remove {
                action: RemoveAction::Disable,
                ..
            } => "disable",
            WorkKind::Convert { .. } => "convert",
        }
    }

    /// What a removal removes and why, as plans print it. A record that an
    /// earlier pass disabled and this one deletes says so: that happens
    /// when the remove action for its cause changed from disable to delete.
    fn why(&self) -> String {
        let WorkKind::Remove {
            target,
            action,
            cause,
        } = &self.kind
        else {
            return String::new();
        };
        let mut why = format!("{target}: {}", cause.describe());
        if *action == RemoveAction::Delete && self.base.state == LinkState::Disabled {
            why.push_str(&format!(
                "; disabled earlier, deleted now because {} (or remove_action) says delete",
                cause.key()
            ));
        }
        why
    }

    fn journal(&self) -> JournalEntry {
        let (target, detail) = match &self.kind {
            WorkKind::Create(attributes) => (None, json!({ "attributes": names(attributes) })),
            WorkKind::Update {
                target, changes, ..
            } => (Some(target.clone()), json!({ "changed": names(changes) })),
            WorkKind::Remove { target, cause, .. } => {
                (Some(target.clone()), json!({ "cause": cause }))
            }
            WorkKind::Convert {
                target,
                target_type,
                from,
                ..
            } => (
                Some(target.clone()),
                json!({ "into": target_type, "from_rule": from.rule }),
            ),
        };
        JournalEntry {
            rule: Some(self.rule.clone()),
            person_id: Some(self.person_id.clone()),
            connection: self.connection.clone(),
            action: self.action().to_string(),
            target_id: target,
            detail,
        }
    }
}

/// A value as the plan prints it.
fn show(value: &crate::runtime::contract::Value) -> String {
    use crate::runtime::contract::Value;
    match value {
        Value::Null => "empty".into(),
        Value::Text(text) => format!("{text:?}"),
        Value::Boolean(flag) => flag.to_string(),
        Value::Integer(number) => number.to_string(),
        Value::TextList(items) => format!("{items:?}"),
    }
}

fn names(attributes: &[Attribute]) -> Vec<String> {
    attributes.iter().map(|a| a.name.clone()).collect()
}

fn written_of(attributes: &[Attribute]) -> BTreeMap<String, crate::runtime::contract::Value> {
    let mut written = BTreeMap::new();
    remember(&mut written, attributes);
    written
}

/// A person to look up: the plan item, the match value, the attributes to
/// create with and to keep updated, and the linked record in a full pass.
type Find = (
    Planned,
    String,
    Vec<Attribute>,
    Vec<Attribute>,
    Option<String>,
);

/// A connection bound to its plugin, or why it could not be.
type Binding = Result<Arc<Bound>, String>;

/// People planned and sent at a time. A pass holds one slice's people,
/// links, plans and work, so that its memory does not grow with the
/// directory; a slice this size still fills lookups of [`LOOKUP_CHUNK`]
/// and write batches of any configured size.
const SLICE: usize = crate::state::READ_ONE_BY_ONE;

/// One slice's people, by id.
type People = BTreeMap<String, Person>;

/// Which people one slice of a pass covers.
enum Slice<'o> {
    /// Person ids after `after` and up to `through`; the last slice runs to
    /// the end (`through: None`), so that it also covers the links of
    /// people no longer in the directory.
    Range {
        after: Option<String>,
        through: Option<String>,
    },
    /// The few people a targeted pass is about, read one by one.
    Among(&'o BTreeSet<String>),
}

/// Cuts a pass into slices, in person id order.
struct Slices<'o> {
    /// A targeted pass over no more than a slice of people: its only slice.
    among: Option<&'o BTreeSet<String>>,
    after: Option<String>,
    done: bool,
}

impl<'o> Slices<'o> {
    /// Reads `among` person by person when they fit in one slice; more
    /// are read in ranges, like everyone, and the planner keeps only them.
    fn new(among: Option<&'o BTreeSet<String>>) -> Slices<'o> {
        Slices {
            among: among.filter(|ids| ids.len() <= SLICE),
            after: None,
            done: false,
        }
    }

    /// The next slice and its people, or `None` after the last.
    fn next(
        &mut self,
        directory: &Directory<'_>,
    ) -> Result<Option<(Slice<'o>, People)>, EngineError> {
        if self.done {
            return Ok(None);
        }
        let by_id = |people: Vec<Person>| people.into_iter().map(|p| (p.id.clone(), p)).collect();
        if let Some(ids) = self.among {
            self.done = true;
            let people = directory.people_among(ids)?;
            return Ok(Some((Slice::Among(ids), by_id(people))));
        }
        let people = directory.people_after(self.after.as_deref(), SLICE)?;
        let through = match people.last() {
            Some(last) if people.len() == SLICE => Some(last.id.clone()),
            _ => {
                self.done = true;
                None
            }
        };
        let slice = Slice::Range {
            after: std::mem::replace(&mut self.after, through.clone()),
            through,
        };
        Ok(Some((slice, by_id(people))))
    }
}

/// `items` in runs of `size`, each moved into its run, none copied.
fn runs_of<T>(items: Vec<T>, size: usize) -> impl Iterator<Item = Vec<T>> {
    let mut items = items.into_iter();
    std::iter::from_fn(move || {
        let run: Vec<T> = items.by_ref().take(size.max(1)).collect();
        (!run.is_empty()).then_some(run)
    })
}

/// What preparing each slice of a pass reads and adds to.
struct PassSlices<'p, 'd> {
    slices: Slices<'p>,
    directory: &'p Directory<'d>,
    bindings: &'p BTreeMap<String, RuleBinding>,
    options: &'p PassOptions,
    now: i64,
    reports: &'p mut BTreeMap<String, RuleReport>,
    held: &'p mut Held,
}

/// What a pass carries from slice to slice.
#[derive(Default)]
struct Held {
    /// Planned removals by rule, sent at the end of the pass once the
    /// removal guard has weighed them all.
    removals: BTreeMap<String, Vec<Work>>,
    /// Each rule's records when the pass began.
    linked: BTreeMap<String, u64>,
    /// Deleted people, purged at the end once their records are removed.
    tombstones: Vec<String>,
    /// Rules whose mappings are recorded at the end of the pass (see
    /// [`Review::Record`]).
    record: BTreeMap<String, bool>,
    /// What rules that share a connection must know of each other.
    sharing: Sharing,
}

/// Rules that target one connection share its records: a person in two
/// of them has one record, not two, and a record one rule links is never
/// removed on behalf of another.
#[derive(Default)]
struct Sharing {
    /// Connections that two or more of the pass's rules target: only
    /// these are tracked below, so that a pass of one rule per connection
    /// keeps nothing per person.
    shared: BTreeSet<String>,
    /// (connection, person) whose record a rule creates in this slice.
    creating: BTreeSet<(String, String)>,
    /// Finds that wait for another rule's create of the same person's
    /// record, by rule: looked up again at the end of the pass, they adopt
    /// that record instead of creating a twin.
    deferred: BTreeMap<String, Vec<Planned>>,
    /// In a dry run, (connection, person) that a rule will look up, with
    /// the rule: another rule's removal of their record may become a
    /// handover once the lookup finds it.
    finding: BTreeMap<(String, String), String>,
    /// (rule, record) links let go in this pass: a dry run, which writes
    /// nothing, must not take them for holders of the record.
    released: BTreeSet<(String, String)>,
}

/// Operations answered and planned so far in a pass, for progress.
#[derive(Default)]
struct Tally {
    done: std::sync::atomic::AtomicUsize,
    planned: std::sync::atomic::AtomicUsize,
}

/// The sync engine over one configuration.
pub struct Engine {
    db: Arc<StateDb>,
    config: Arc<Config>,
    plugins: Arc<PluginRegistry>,
    secrets: Arc<SecretStore>,
    schema: AttributeSchema,
    settings: SyncSettings,
    rules: RuleSet,
    /// Bound connections, with the plugin generation they were bound at:
    /// a swapped plugin rebinds them for new work.
    bound: tokio::sync::Mutex<BTreeMap<String, (u64, Binding)>>,
    credentials: CredentialPool,
    stopping: AtomicBool,
    progress: std::sync::Mutex<Option<Progress>>,
}

/// Called after each batch with (operations answered, operations planned).
pub type Progress = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// What the links of one rule become after a pass, and which journal
/// entries close.
#[derive(Default)]
struct Outcomes {
    save: Vec<Link>,
    drop: Vec<(String, String)>,
    journal: Vec<(i64, Result<Option<String>, String>)>,
    quarantine: Option<(String, String)>,
}

impl Engine {
    pub fn new(
        db: Arc<StateDb>,
        config: Arc<Config>,
        plugins: Arc<PluginRegistry>,
        secrets: Arc<SecretStore>,
        schema: AttributeSchema,
    ) -> Engine {
        let rules = config.rules(&schema);
        let settings = config.sync_settings();
        Engine {
            db,
            config,
            plugins,
            secrets,
            schema,
            settings,
            rules,
            bound: tokio::sync::Mutex::new(BTreeMap::new()),
            credentials: CredentialPool::default(),
            stopping: AtomicBool::new(false),
            progress: std::sync::Mutex::new(None),
        }
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

    pub fn db(&self) -> &StateDb {
        &self.db
    }

    pub fn shared_db(&self) -> Arc<StateDb> {
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

    /// The bound connection, resolved once per plugin generation.
    async fn bind(&self, name: &str) -> Result<Arc<Bound>, String> {
        let generation = self.plugins.generation();
        let mut bound = self.bound.lock().await;
        if let Some((at, result)) = bound.get(name)
            && *at == generation
        {
            return result.clone();
        }
        let plugins = self.plugins.snapshot();
        let result = match self.config.resolve(name, &plugins, &self.secrets) {
            Ok(connection) => {
                match connection.connect(
                    self.config.http_limits(),
                    self.secrets.clone(),
                    Some(&self.credentials),
                ) {
                    Ok(connector) => Ok(Arc::new(Bound {
                        connection,
                        connector,
                        gate: Arc::new(Semaphore::new(self.settings.concurrency)),
                    })),
                    Err(error) => Err(format!("connection {name}: {error}")),
                }
            }
            Err(errors) => Err(errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")),
        };
        bound.insert(name.to_string(), (generation, result.clone()));
        result
    }

    /// Binds a rule: its connection, and the mappings it will use.
    async fn bind_rule(&self, rule: &Rule) -> Result<RuleBinding, String> {
        let bound = self.bind(&rule.connection).await?;
        let descriptor = bound.connector.plugin().descriptor();
        let mappings = rule.mappings_for(descriptor, &self.schema)?;
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

    /// Runs one pass, a slice of people at a time (see [`SLICE`]).
    pub async fn pass(&self, options: &PassOptions) -> Result<PassReport, EngineError> {
        if let Some(rule) = &options.rule
            && !self.rules.rules.contains_key(rule)
        {
            return Err(EngineError::NoSuchRule(rule.clone()));
        }
        let links = Links::new(&self.db);
        if !options.dry_run {
            let interrupted = links.close_interrupted()?;
            if interrupted > 0 {
                tracing::warn!(
                    interrupted,
                    "journal entries from an interrupted run were closed as unknown; lookups will adopt whatever they created"
                );
            }
        }
        let directory = Directory::new(&self.db, self.schema.clone());
        let now = now_ms();

        // Bind every selected rule, once for the whole pass.
        let mut bindings: BTreeMap<String, RuleBinding> = BTreeMap::new();
        let mut reports: BTreeMap<String, RuleReport> = BTreeMap::new();
        let mut held = Held::default();
        for (name, rule) in &self.rules.rules {
            if options.rule.as_ref().is_some_and(|r| r != name) {
                continue;
            }
            let mut rule_report = RuleReport {
                rule: name.clone(),
                connection: rule.connection.clone(),
                ..RuleReport::default()
            };
            if !rule.active {
                rule_report.status = Some(RuleStatus::Inactive);
                reports.insert(name.clone(), rule_report);
                continue;
            }
            if !options.dry_run {
                links.see_rule(name, &rule.connection)?;
            }
            if let Some(reason) = links.quarantined(&rule.connection)? {
                rule_report.status = Some(RuleStatus::Quarantined(reason));
                reports.insert(name.clone(), rule_report);
                continue;
            }
            let mut binding = match self.bind_rule(rule).await {
                Ok(binding) => binding,
                Err(reason) => {
                    if !options.dry_run {
                        links.finish_rule(name, Some(&reason))?;
                    }
                    rule_report.status = Some(RuleStatus::Failed(reason));
                    reports.insert(name.clone(), rule_report);
                    continue;
                }
            };
            // The guard weighs removals against what the rule had when the
            // pass began, not against what the pass itself creates.
            let linked = links.linked_count(name)?;
            held.linked.insert(name.clone(), linked);
            match self.review_mappings(
                &binding,
                &directory,
                linked,
                now,
                options,
                &mut rule_report,
            )? {
                Review::Same => {}
                Review::Record { first } => {
                    held.record.insert(name.clone(), first);
                }
                Review::Hold => binding.hold_updates = true,
            }
            rule_report.status = Some(RuleStatus::Active);
            reports.insert(name.clone(), rule_report);
            bindings.insert(name.clone(), binding);
        }

        let mut targeted: BTreeMap<&str, usize> = BTreeMap::new();
        for binding in bindings.values() {
            *targeted
                .entry(binding.rule.connection.as_str())
                .or_default() += 1;
        }
        held.sharing.shared = targeted
            .into_iter()
            .filter(|(_, rules)| *rules > 1)
            .map(|(connection, _)| connection.to_string())
            .collect();

        // Each slice's writes go out while the next slice is read, planned
        // and looked up: the store works on one while the host works on
        // the other.
        let tally = Tally::default();
        let mut pass = PassSlices {
            slices: Slices::new(options.people.as_ref()),
            directory: &directory,
            bindings: &bindings,
            options,
            now,
            reports: &mut reports,
            held: &mut held,
        };
        let mut work = self.prepare_slice(&mut pass).await?;
        while let Some(current) = work {
            let (answers, next) = futures_util::future::join(
                self.execute(current, &tally),
                self.prepare_slice(&mut pass),
            )
            .await;
            count_answers(pass.reports, answers?);
            work = next?;
        }

        // Finds that waited for another rule's create of the same record:
        // that create has been answered, so a lookup now finds it.
        let mut work: Vec<Work> = Vec::new();
        // A third rule that wanted the same record waits once more (for
        // the next pass) rather than create a twin if the create failed.
        let mut again = Sharing {
            shared: held.sharing.shared.clone(),
            ..Sharing::default()
        };
        for (name, planned) in std::mem::take(&mut held.sharing.deferred) {
            let (Some(binding), Some(report)) = (bindings.get(&name), reports.get_mut(&name))
            else {
                continue;
            };
            if self.stopping() || !matches!(report.status, Some(RuleStatus::Active)) {
                continue;
            }
            let people: BTreeSet<String> = planned.iter().map(|p| p.person_id.clone()).collect();
            let rule_links = links.of_rule_among(&name, &people)?;
            let mut outcomes = Outcomes::default();
            let mut removals = Vec::new();
            self.resolve_rule(
                binding,
                planned,
                &rule_links,
                &BTreeMap::new(),
                &bindings,
                options,
                report,
                &mut outcomes,
                &mut removals,
                &mut work,
                Some(&mut again),
            )
            .await?;
            links.commit(&outcomes.save, &outcomes.drop, &[])?;
        }
        // What waits once more is picked up by the next pass.
        again.deferred.clear();
        let answers = self.execute(std::mem::take(&mut work), &tally).await?;
        count_answers(&mut reports, answers);

        // Removals wait for the end of the pass, where the guard sees all
        // of them at once, whichever slices they were planned in, and where
        // every rule's adoptions are linked: a record that another rule of
        // the connection links is handed over, not removed.
        for (name, removals) in std::mem::take(&mut held.removals) {
            let (Some(binding), Some(report)) = (bindings.get(&name), reports.get_mut(&name))
            else {
                continue;
            };
            if !matches!(report.status, Some(RuleStatus::Active)) {
                continue;
            }
            let removals = self.hand_over(removals, &mut held.sharing, options, report)?;
            // A pass over everyone that has nothing left to remove leaves
            // no guard armed: neither a hold nor an unused approval, which
            // would let the next mass removal through.
            if removals.is_empty() && options.people.is_none() && !options.dry_run {
                links.clear_guard(&name)?;
            }
            let linked = held.linked.get(&name).copied().unwrap_or_default();
            self.guard_removals(binding, removals, linked, options, report, &mut work)?;
        }

        // Rule deletion, on unfiltered passes only.
        if options.rule.is_none() && options.people.is_none() {
            for (rule, connection) in links.known_rules()? {
                if self.rules.knows(&rule) {
                    continue;
                }
                self.rule_deleted(
                    &rule,
                    &connection,
                    options,
                    &mut reports,
                    &mut work,
                    &mut held.sharing,
                )
                .await?;
            }
        }

        if options.dry_run {
            return Ok(PassReport {
                rules: reports.into_values().collect(),
                dry_run: true,
            });
        }

        let answers = self.execute(work, &tally).await?;
        count_answers(&mut reports, answers);
        for (name, rule_report) in &reports {
            if matches!(rule_report.status, Some(RuleStatus::Active)) {
                links.finish_rule(name, None)?;
            }
        }
        // A held mapping change: what a pass over everyone held is how many
        // updates wait now.
        if options.people.is_none() {
            for (name, binding) in &bindings {
                let report = reports.get(name);
                if binding.hold_updates
                    && report.is_some_and(|r| matches!(r.status, Some(RuleStatus::Active)))
                {
                    let held_now = report
                        .and_then(|r| r.actions.get("held"))
                        .copied()
                        .unwrap_or_default() as u64;
                    let linked = held.linked.get(name).copied().unwrap_or_default();
                    links.weigh_update_guard(
                        name,
                        held_now,
                        linked,
                        &binding.fingerprint,
                        UpdateGuard::Held,
                    )?;
                }
            }
        }
        // The mappings a rule wrote through: only a pass over everyone has
        // written them to every record, except the first, with nothing to
        // compare against.
        for (name, first) in &held.record {
            let active = reports
                .get(name)
                .is_some_and(|r| matches!(r.status, Some(RuleStatus::Active)));
            if let Some(binding) = bindings.get(name)
                && active
                && (*first || options.people.is_none())
            {
                links.record_mappings(name, &binding.fingerprint)?;
            }
        }

        for person in &held.tombstones {
            directory.purge(person)?;
        }
        // A deleted rule is forgotten once its last record is removed, or
        // disabled.
        if options.rule.is_none() && options.people.is_none() {
            for rule in links.known_rules()?.keys() {
                if !self.rules.knows(rule)
                    && links
                        .of_rule(rule)?
                        .values()
                        .all(|link| link.target_id.is_none() || link.state == LinkState::Disabled)
                {
                    links.forget_rule(rule)?;
                }
            }
        }
        Ok(PassReport {
            rules: reports.into_values().collect(),
            dry_run: false,
        })
    }

    /// Reads the next slice of a pass and plans every bound rule for its
    /// people: settles what sends nothing, looks the new people up, keeps
    /// removals for the end, and returns the rest to send (`None` after
    /// the last slice).
    async fn prepare_slice(
        &self,
        pass: &mut PassSlices<'_, '_>,
    ) -> Result<Option<Vec<Work>>, EngineError> {
        let slices = &mut pass.slices;
        let (directory, bindings, options, now) =
            (pass.directory, pass.bindings, pass.options, pass.now);
        let reports = &mut *pass.reports;
        let held = &mut *pass.held;
        let Some((slice, people)) = slices.next(directory)? else {
            return Ok(None);
        };
        held.tombstones
            .extend(people.values().filter(|p| p.deleted).map(|p| p.id.clone()));
        // A person is in one slice only: what the last slice created is of
        // no more use.
        held.sharing.creating.clear();
        let links = Links::new(&self.db);
        let mut plans: BTreeMap<String, (Vec<Planned>, BTreeMap<String, Link>)> = BTreeMap::new();
        for (name, binding) in bindings {
            // A rule quarantined by an earlier slice stops for this pass.
            if !reports
                .get(name)
                .is_some_and(|r| matches!(r.status, Some(RuleStatus::Active)))
            {
                continue;
            }
            let rule_links = match &slice {
                Slice::Range { after, through } => {
                    links.of_rule_between(name, after.as_deref(), through.as_deref())?
                }
                Slice::Among(ids) => links.of_rule_among(name, ids)?,
            };
            let view = binding.view();
            let planned = plan::plan_rule(
                &view,
                &people,
                &rule_links,
                now,
                options.people.as_ref(),
                options.full,
            );
            plans.insert(name.clone(), (planned, rule_links));
        }

        // Promotion by conversion: a person leaving rule A for rule B,
        // where B says `convert_from = A`, is converted instead of being
        // removed from A and created in B.
        let mut conversions: BTreeMap<(String, String), Link> = BTreeMap::new();
        for (name, binding) in bindings {
            let Some(from) = &binding.rule.convert_from else {
                continue;
            };
            let (Some(from_binding), Some((to_plan, _))) = (bindings.get(from), plans.get(name))
            else {
                continue;
            };
            // Conversion is in place: both connections must be the same
            // connector on the same store, and it must be able to convert.
            let from_connector = &from_binding.bound.connector;
            let to_connector = &binding.bound.connector;
            let same_store = from_connector.plugin().name() == to_connector.plugin().name()
                && from_connector.broker().egress_url(0) == to_connector.broker().egress_url(0);
            if !same_store
                || !from_connector
                    .plugin()
                    .descriptor()
                    .has(Capability::Convert)
            {
                tracing::debug!(rule = %name, from = %from, "promotion by conversion is not possible; removing and creating instead");
                continue;
            }
            let movers: Vec<String> = to_plan
                .iter()
                .filter(|p| matches!(p.decision, Decision::Find { existing: None, .. }))
                .map(|p| p.person_id.clone())
                .collect();
            let Some((from_plan, from_links)) = plans.get_mut(from) else {
                continue;
            };
            for person in movers {
                let leaving = from_plan.iter().position(|p| {
                    p.person_id == person && matches!(p.decision, Decision::Remove { .. })
                });
                if let Some(index) = leaving {
                    from_plan.remove(index);
                    if let Some(link) = from_links.get(&person) {
                        conversions.insert((name.clone(), person), link.clone());
                    }
                }
            }
        }

        // Resolve the plans into work.
        let mut work: Vec<Work> = Vec::new();
        let mut settled: BTreeMap<String, Outcomes> = BTreeMap::new();
        for (name, (planned, rule_links)) in plans {
            let (Some(binding), Some(rule_report)) = (bindings.get(&name), reports.get_mut(&name))
            else {
                continue;
            };
            let outcomes = settled.entry(name.clone()).or_default();
            let removals = held.removals.entry(name.clone()).or_default();
            self.resolve_rule(
                binding,
                planned,
                &rule_links,
                &conversions,
                bindings,
                options,
                rule_report,
                outcomes,
                removals,
                &mut work,
                Some(&mut held.sharing),
            )
            .await?;
        }
        if options.dry_run {
            return Ok(Some(Vec::new()));
        }

        // Decisions that send nothing.
        for outcomes in settled.values() {
            links.commit(&outcomes.save, &outcomes.drop, &[])?;
        }
        Ok(Some(work))
    }

    /// Compares a rule's mappings with those it last wrote through. A
    /// change, from a plugin upgrade or from the configuration, would
    /// rewrite records that no one edited: it is shown, and when it would
    /// update more records than the rule's update guard allows, the
    /// updates wait for `provisioner approve-updates RULE`.
    fn review_mappings(
        &self,
        binding: &RuleBinding,
        directory: &Directory<'_>,
        linked: u64,
        now: i64,
        options: &PassOptions,
        report: &mut RuleReport,
    ) -> Result<Review, EngineError> {
        let links = Links::new(&self.db);
        let name = &binding.rule.name;
        let Some(before) = links.rule_mappings(name)? else {
            return Ok(Review::Record { first: true });
        };
        if before == binding.fingerprint {
            // A change that was held and then undone leaves nothing behind.
            if !options.dry_run {
                links.clear_update_guard(name)?;
            }
            return Ok(Review::Same);
        }
        let change = mapping::changes(&before, &binding.fingerprint);
        match links.update_guard(name, &binding.fingerprint)? {
            Some(UpdateGuard::Approved) => {
                report.line("*", "mappings changed", format!("{change}; approved"));
                return Ok(Review::Record { first: false });
            }
            Some(UpdateGuard::Within) => return Ok(Review::Record { first: false }),
            // Already weighed and held: the pass's own count of what it
            // holds keeps the figure current (see `Engine::pass`).
            Some(UpdateGuard::Held) if !options.dry_run => {
                report.line(
                    "*",
                    "mappings changed",
                    format!(
                        "{change}; its updates are held by the update guard: review with `provisioner sync --dry-run --rule {name}`, approve with `provisioner approve-updates {name}`"
                    ),
                );
                return Ok(Review::Hold);
            }
            _ => {}
        }
        let planned = self.count_updates(binding, directory, now)?;
        report.line(
            "*",
            "mappings changed",
            format!("{change}; {planned} of {linked} records to update"),
        );
        let trips = binding.rule.update_guard.trips(planned, linked);
        if !options.dry_run {
            let outcome = if trips {
                UpdateGuard::Held
            } else {
                UpdateGuard::Within
            };
            links.weigh_update_guard(name, planned, linked, &binding.fingerprint, outcome)?;
        }
        if !trips {
            return Ok(Review::Record { first: false });
        }
        let guard = binding.rule.update_guard;
        let limit = format!(
            "at most {} records or {:.0} %",
            guard.max_count,
            guard.max_share * 100.0
        );
        let hold = if options.dry_run {
            format!(
                "a pass would hold these updates ({limit}); after it, `provisioner approve-updates {name}` lets them go"
            )
        } else {
            format!(
                "held by the update guard ({limit}): review with `provisioner sync --dry-run --rule {name}`, approve with `provisioner approve-updates {name}`"
            )
        };
        report.line("*", "hold updates", hold);
        Ok(Review::Hold)
    }

    /// How many of a rule's records the pass would update: the planner
    /// over everyone, with nothing sent or written.
    fn count_updates(
        &self,
        binding: &RuleBinding,
        directory: &Directory<'_>,
        now: i64,
    ) -> Result<u64, EngineError> {
        let links = Links::new(&self.db);
        let name = &binding.rule.name;
        let view = binding.view();
        let mut slices = Slices::new(None);
        let mut count = 0u64;
        while let Some((slice, people)) = slices.next(directory)? {
            let rule_links = match &slice {
                Slice::Range { after, through } => {
                    links.of_rule_between(name, after.as_deref(), through.as_deref())?
                }
                Slice::Among(ids) => links.of_rule_among(name, ids)?,
            };
            count += plan::plan_rule(&view, &people, &rule_links, now, None, false)
                .iter()
                .filter(|p| matches!(p.decision, Decision::Update { .. }))
                .count() as u64;
        }
        Ok(count)
    }

    /// Takes out of `removals` the records that another rule of the same
    /// connection links: that rule keeps the record, and this rule only
    /// lets go of its link. Only a rule of the configuration counts: a
    /// deleted rule's links go with it. A removal waits while another
    /// active rule of the connection wants the person and has not yet
    /// found their record (its lookup failed for now, or it has not run),
    /// so that a move between rules never deletes the record the other
    /// rule would adopt. In a dry run, a record that another rule is about
    /// to look up may go either way, and is shown so.
    fn hand_over(
        &self,
        removals: Vec<Work>,
        sharing: &mut Sharing,
        options: &PassOptions,
        report: &mut RuleReport,
    ) -> Result<Vec<Work>, EngineError> {
        let links = Links::new(&self.db);
        let mut kept = Vec::with_capacity(removals.len());
        let mut released = Vec::new();
        for removal in removals {
            let WorkKind::Remove { target, action, .. } = &removal.kind else {
                kept.push(removal);
                continue;
            };
            let holder = links
                .other_holders(&removal.connection, &removal.rule, target)?
                .into_iter()
                .find(|holder| {
                    self.rules.knows(holder)
                        && !sharing.released.contains(&(holder.clone(), target.clone()))
                });
            if let Some(holder) = holder {
                sharing
                    .released
                    .insert((removal.rule.clone(), target.clone()));
                report.count("handed-over");
                report.line(
                    &removal.person_id,
                    "hand over",
                    format!("{target} stays: rule {holder} links it"),
                );
                if !options.dry_run {
                    links.journal_note(
                        &JournalEntry {
                            rule: Some(removal.rule.clone()),
                            person_id: Some(removal.person_id.clone()),
                            connection: removal.connection.clone(),
                            action: "hand-over".into(),
                            target_id: Some(target.clone()),
                            detail: json!({ "to_rule": holder }),
                        },
                        "ok",
                    )?;
                    released.push((removal.rule.clone(), removal.person_id.clone()));
                }
                continue;
            }
            if options.dry_run
                && let Some(finder) = sharing
                    .finding
                    .get(&(removal.connection.clone(), removal.person_id.clone()))
            {
                let action = match action {
                    RemoveAction::Delete => "deleted",
                    RemoveAction::Disable => "disabled",
                };
                report.count("hand over or remove");
                report.line(
                    &removal.person_id,
                    "hand over or remove",
                    format!(
                        "{target} stays if rule {finder}'s lookup finds it; else it is {action}"
                    ),
                );
                continue;
            }
            if let Some(wanting) = self.wanted_elsewhere(&removal)? {
                report.count("waiting");
                report.line(
                    &removal.person_id,
                    "wait",
                    format!(
                        "{target} stays for now: rule {wanting} of the same connection wants this person and has not found their record yet"
                    ),
                );
                continue;
            }
            kept.push(removal);
        }
        if !released.is_empty() {
            links.commit(&[], &released, &[])?;
        }
        Ok(kept)
    }

    /// Another active rule of the removal's connection whose scope holds
    /// the person, and which has not settled them yet: no link, or a link
    /// without a record after a failure that may pass. A rule that cannot
    /// create there (its link says Unsynced) or that refused the person
    /// for good does not hold a removal up.
    fn wanted_elsewhere(&self, removal: &Work) -> Result<Option<String>, EngineError> {
        let rivals: Vec<(&String, &Rule)> = self
            .rules
            .rules
            .iter()
            .filter(|(name, rule)| {
                **name != removal.rule && rule.active && rule.connection == removal.connection
            })
            .collect();
        if rivals.is_empty() {
            return Ok(None);
        }
        let ids = BTreeSet::from([removal.person_id.clone()]);
        let directory = Directory::new(&self.db, self.schema.clone());
        let Some(person) = directory.people_among(&ids)?.pop() else {
            return Ok(None);
        };
        let links = Links::new(&self.db);
        for (name, rule) in rivals {
            if !rule.scope.contains(&person) {
                continue;
            }
            let wants = match links.of_rule_among(name, &ids)?.remove(&person.id) {
                None => true,
                Some(link) => {
                    link.target_id.is_none()
                        && link.state == LinkState::Failed
                        && link
                            .error
                            .as_ref()
                            .is_none_or(|e| !matches!(e.class.as_str(), "rejected" | "unsupported"))
                }
            };
            if wants {
                return Ok(Some(name.clone()));
            }
        }
        Ok(None)
    }

    /// The removal guard: holds a pass's removals when they are too many
    /// of the rule's records, unless an operator approved them.
    fn guard_removals(
        &self,
        binding: &RuleBinding,
        removals: Vec<Work>,
        linked: u64,
        options: &PassOptions,
        report: &mut RuleReport,
        work: &mut Vec<Work>,
    ) -> Result<(), EngineError> {
        if removals.is_empty() {
            return Ok(());
        }
        let name = &binding.rule.name;
        let links = Links::new(&self.db);
        // A dry run cannot know whether another rule's lookup takes a record
        // over (see `hand_over`): it weighs those removals too, so that it
        // never shows removals going out that a pass would hold.
        let uncertain = if options.dry_run {
            report
                .actions
                .get("hand over or remove")
                .copied()
                .unwrap_or_default() as u64
        } else {
            0
        };
        let planned = removals.len() as u64 + uncertain;
        let approved = links.guard(name)?;
        if binding.rule.removal_guard.trips(planned, linked) && approved != Some(true) {
            let reason = format!(
                "held by the removal guard: this pass would remove {planned} of {linked} records; approve with `provisioner approve-removals {name}`"
            );
            let mut kept = Vec::with_capacity(removals.len());
            for removal in removals {
                report.count("kept");
                report.line(
                    &removal.person_id,
                    "hold",
                    format!("{} {}; {reason}", removal.action(), removal.why()),
                );
                let mut link = removal.base;
                link.state = LinkState::Kept;
                link.reason = Some(reason.clone());
                kept.push(link);
            }
            if !options.dry_run {
                links.trip_guard(name, planned, linked)?;
                links.commit(&kept, &[], &[])?;
            }
            return Ok(());
        }
        if approved == Some(true) && !options.dry_run {
            links.clear_guard(name)?;
        }
        for removal in removals {
            report.line(&removal.person_id, removal.action(), removal.why());
            if options.dry_run {
                report.count(removal.action());
            } else {
                work.push(removal);
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn resolve_rule(
        &self,
        binding: &RuleBinding,
        planned: Vec<Planned>,
        rule_links: &BTreeMap<String, Link>,
        conversions: &BTreeMap<(String, String), Link>,
        bindings: &BTreeMap<String, RuleBinding>,
        options: &PassOptions,
        report: &mut RuleReport,
        outcomes: &mut Outcomes,
        removals: &mut Vec<Work>,
        work: &mut Vec<Work>,
        mut sharing: Option<&mut Sharing>,
    ) -> Result<(), EngineError> {
        let name = binding.rule.name.clone();
        let connection = binding.rule.connection.clone();
        let preferences = &binding.bound.connection.preferences;
        let link_of = |person: &str| {
            rule_links
                .get(person)
                .cloned()
                .unwrap_or_else(|| Link::new(&name, person, &connection))
        };
        let mut finds: Vec<Find> = Vec::new();
        let mut reclaims: Vec<(Planned, String, Cause)> = Vec::new();
        for mut item in planned {
            let person = item.person_id.clone();
            // The decision moves into the match; the item keeps whom it is
            // for, which is all the lookups below read from it.
            match std::mem::replace(&mut item.decision, Decision::Unchanged) {
                Decision::Find {
                    key,
                    create,
                    update,
                    existing,
                } => {
                    if options.dry_run {
                        if existing.is_none()
                            && let Some(sharing) = sharing.as_deref_mut()
                            && sharing.shared.contains(&connection)
                        {
                            sharing
                                .finding
                                .insert((connection.clone(), person.clone()), name.clone());
                        }
                        let action = if conversions.contains_key(&(name.clone(), person.clone())) {
                            "convert or adopt"
                        } else if existing.is_some() {
                            "verify"
                        } else {
                            "create or adopt"
                        };
                        report.line(
                            &person,
                            action,
                            format!("after a lookup by {} {key}", binding.match_attribute),
                        );
                        report.count(action);
                        continue;
                    }
                    finds.push((item, key, create, update, existing));
                }
                Decision::Update {
                    target,
                    changes,
                    enable,
                } => {
                    // The diff, old value to new, as the plan shows it.
                    let before = rule_links
                        .get(&person)
                        .map(|l| l.written.clone())
                        .unwrap_or_default();
                    let diff = changes
                        .iter()
                        .map(|c| {
                            let old = before
                                .get(&c.name)
                                .map(show)
                                .unwrap_or_else(|| "unset".into());
                            format!("{}: {old} -> {}", c.name, show(&c.value))
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    if binding.hold_updates {
                        report.count("held");
                        report.line(
                            &person,
                            "hold",
                            format!("update {diff}: held by the update guard"),
                        );
                        continue;
                    }
                    let action = if enable { "enable" } else { "update" };
                    report.line(&person, action, diff);
                    if options.dry_run {
                        report.count(action);
                        continue;
                    }
                    work.push(Work {
                        rule: name.clone(),
                        connection: connection.clone(),
                        person_id: person.clone(),
                        person_seq: item.person_seq,
                        base: link_of(&person),
                        kind: WorkKind::Update {
                            target,
                            changes,
                            written: None,
                            enable,
                            version: None,
                        },
                    });
                }
                Decision::Remove {
                    target,
                    action,
                    cause,
                } => {
                    removals.push(Work {
                        rule: name.clone(),
                        connection: connection.clone(),
                        person_id: person.clone(),
                        person_seq: item.person_seq,
                        base: link_of(&person),
                        kind: WorkKind::Remove {
                            target,
                            action,
                            cause,
                        },
                    });
                }
                Decision::Settle { state, reason } => {
                    report.count(state.as_str());
                    report.line(
                        &person,
                        "skip",
                        reason.clone().unwrap_or_else(|| state.as_str().to_string()),
                    );
                    let mut link = link_of(&person);
                    link.state = state;
                    link.reason = reason;
                    link.error = None;
                    link.person_seq = item.person_seq;
                    outcomes.save.push(link);
                }
                Decision::Fail { error } => {
                    let mut link = link_of(&person);
                    link.person_seq = item.person_seq;
                    refuse(&mut link, error, report);
                    outcomes.save.push(link);
                }
                Decision::Wait { reason } => {
                    report.count("waiting");
                    report.line(&person, "wait", reason);
                }
                Decision::Unchanged => {
                    report.count("unchanged");
                    // The pass has seen the person's latest data: status
                    // must not count a change that needed nothing as
                    // pending. Only people who changed are written.
                    if let Some(link) = rule_links.get(&person)
                        && item.person_seq.is_some()
                        && link.person_seq != item.person_seq
                    {
                        let mut link = link.clone();
                        link.person_seq = item.person_seq;
                        outcomes.save.push(link);
                    }
                }
                Decision::Drop => outcomes.drop.push((name.clone(), person)),
                Decision::Reclaim { key, cause } => {
                    if options.dry_run {
                        report.count("reclaim");
                        report.line(
                            &person,
                            "reclaim",
                            format!(
                                "look up by {} {key}; remove what an unanswered create left",
                                binding.match_attribute
                            ),
                        );
                        continue;
                    }
                    reclaims.push((item, key, cause));
                }
            }
        }

        // Leavers whose create never answered: what the lookup finds is
        // theirs, and goes the way of any leaver's record.
        for chunk in reclaims.chunks(LOOKUP_CHUNK) {
            let keys: Vec<String> = chunk.iter().map(|(_, key, _)| key.clone()).collect();
            let items = chunk.iter().map(|(item, ..)| item);
            let found = match self
                .lookup(binding, keys, items, &link_of, report, outcomes)
                .await?
            {
                Lookup::Found(found) => found,
                Lookup::Failed => continue,
                Lookup::Quarantined => return Ok(()),
            };
            for (item, key, cause) in chunk {
                let person = item.person_id.clone();
                let ids: Vec<&str> = found
                    .iter()
                    .filter(|m| m.value.eq_ignore_ascii_case(key))
                    .map(|m| m.id.as_str())
                    .collect();
                let mut link = link_of(&person);
                link.person_seq = item.person_seq;
                match ids.as_slice() {
                    [] => {
                        report.line(&person, "forget", "no record was left behind");
                        outcomes.drop.push((name.clone(), person));
                    }
                    [id] => {
                        report.line(&person, "reclaim", id.to_string());
                        link.target_id = Some(id.to_string());
                        match plan::leaver(&link, preferences, id.to_string(), *cause) {
                            Decision::Remove {
                                target,
                                action,
                                cause,
                            } => removals.push(Work {
                                rule: name.clone(),
                                connection: connection.clone(),
                                person_id: person.clone(),
                                person_seq: item.person_seq,
                                base: link,
                                kind: WorkKind::Remove {
                                    target,
                                    action,
                                    cause,
                                },
                            }),
                            Decision::Settle { state, reason } => {
                                report.count(state.as_str());
                                link.state = state;
                                link.reason = reason;
                                link.error = None;
                                outcomes.save.push(link);
                            }
                            _ => outcomes.save.push(link),
                        }
                    }
                    many => {
                        let error = ambiguous(
                            &binding.match_attribute,
                            key,
                            many,
                            " and the person left the scope",
                        );
                        refuse(&mut link, error, report);
                        outcomes.save.push(link);
                    }
                }
            }
        }

        if options.dry_run {
            return Ok(());
        }

        // Look everyone new up, in batches, and turn finds into work.
        for chunk in runs_of(finds, LOOKUP_CHUNK) {
            let keys: Vec<String> = chunk.iter().map(|(_, key, ..)| key.clone()).collect();
            let items = chunk.iter().map(|(item, ..)| item);
            let found = match self
                .lookup(binding, keys, items, &link_of, report, outcomes)
                .await?
            {
                Lookup::Found(found) => found,
                Lookup::Failed => continue,
                Lookup::Quarantined => return Ok(()),
            };
            let mut by_key: BTreeMap<String, Vec<&Match>> = BTreeMap::new();
            for m in &found {
                by_key.entry(m.value.to_lowercase()).or_default().push(m);
            }
            for (item, key, create, update, existing) in chunk {
                let person = item.person_id.clone();
                let matches = by_key.get(&key.to_lowercase()).cloned().unwrap_or_default();
                let resolution = plan::resolve(
                    create,
                    &update,
                    existing.as_deref(),
                    &matches,
                    binding.view().case_rules(),
                    preferences,
                );
                let mut link = link_of(&person);
                link.person_seq = item.person_seq;
                match resolution {
                    Found::Create(attributes) => {
                        if let Some(from) = conversions.get(&(name.clone(), person.clone()))
                            && let Some(from_binding) = bindings.get(&from.rule)
                            && let Some(target) = from.target_id.clone()
                        {
                            let target_type = binding
                                .bound
                                .connection
                                .settings
                                .get("record_type")
                                .cloned()
                                .unwrap_or_default();
                            report.line(
                                &person,
                                "convert",
                                format!("{target} from rule {}", from.rule),
                            );
                            work.push(Work {
                                rule: name.clone(),
                                connection: from_binding.rule.connection.clone(),
                                person_id: person.clone(),
                                person_seq: item.person_seq,
                                base: link,
                                kind: WorkKind::Convert {
                                    from: Box::new(from.clone()),
                                    target,
                                    target_type,
                                    attributes,
                                },
                            });
                        } else if let Some(sharing) = sharing.as_deref_mut()
                            && sharing.shared.contains(&connection)
                            && !sharing
                                .creating
                                .insert((connection.clone(), person.clone()))
                        {
                            // Another rule of this connection creates this
                            // person's record in this pass: adopt it later.
                            report.line(
                                &person,
                                "wait",
                                "another rule of the connection creates this person's record; this rule looks it up again after that",
                            );
                            sharing
                                .deferred
                                .entry(name.clone())
                                .or_default()
                                .push(Planned {
                                    person_id: person.clone(),
                                    person_seq: item.person_seq,
                                    decision: Decision::Find {
                                        key: key.clone(),
                                        create: attributes,
                                        update,
                                        existing,
                                    },
                                });
                        } else {
                            let set: Vec<String> = attributes
                                .iter()
                                .filter(|a| a.value != crate::runtime::contract::Value::Null)
                                .map(|a| a.name.clone())
                                .collect();
                            report.line(&person, "create", set.join(", "));
                            work.push(Work {
                                rule: name.clone(),
                                connection: connection.clone(),
                                person_id: person.clone(),
                                person_seq: item.person_seq,
                                base: link,
                                kind: WorkKind::Create(attributes),
                            });
                        }
                    }
                    Found::Adopt {
                        target,
                        changes,
                        version,
                    } => {
                        let adopted = existing.as_deref() != Some(target.as_str());
                        if adopted {
                            report.count("adopted");
                            Links::new(&self.db).journal_note(
                                &JournalEntry {
                                    rule: Some(name.clone()),
                                    person_id: Some(person.clone()),
                                    connection: connection.clone(),
                                    action: "adopt".into(),
                                    target_id: Some(target.clone()),
                                    detail: json!({ "matched_on": binding.match_attribute, "value": key }),
                                },
                                "ok",
                            )?;
                        }
                        // A promoted person found already in the new rule's
                        // store: the old link is simply let go.
                        if let Some(from) = conversions.get(&(name.clone(), person.clone())) {
                            outcomes.drop.push((from.rule.clone(), person.clone()));
                        }
                        if binding.hold_updates && !adopted && !changes.is_empty() {
                            report.count("held");
                            report.line(
                                &person,
                                "hold",
                                format!(
                                    "update {}: held by the update guard",
                                    names(&changes).join(", ")
                                ),
                            );
                            continue;
                        }
                        link.target_id = Some(target.clone());
                        if changes.is_empty() {
                            if !adopted {
                                report.count("unchanged");
                            }
                            report.line(
                                &person,
                                if adopted { "adopt" } else { "verify" },
                                target.clone(),
                            );
                            link.written = written_of(&update);
                            link.state = LinkState::Synced;
                            link.error = None;
                            link.reason = None;
                            link.attempts = 0;
                            link.next_retry = None;
                            outcomes.save.push(link);
                        } else {
                            report.line(&person, "update", names(&changes).join(", "));
                            work.push(Work {
                                rule: name.clone(),
                                connection: connection.clone(),
                                person_id: person.clone(),
                                person_seq: item.person_seq,
                                base: link,
                                kind: WorkKind::Update {
                                    target,
                                    changes,
                                    written: Some(written_of(&update)),
                                    enable: false,
                                    version,
                                },
                            });
                        }
                    }
                    Found::AdoptBehind { target, changes } => {
                        report.count("partial");
                        let reason = format!(
                            "updating records is not allowed on this connection; {} differ",
                            names(&changes).join(", ")
                        );
                        report.line(&person, "skip", reason.clone());
                        link.target_id = Some(target);
                        link.state = LinkState::Partial;
                        link.reason = Some(reason);
                        outcomes.save.push(link);
                    }
                    Found::Ambiguous(ids) => {
                        let error = ambiguous(&binding.match_attribute, &key, &ids, "");
                        refuse(&mut link, error, report);
                        outcomes.save.push(link);
                    }
                }
            }
        }
        Ok(())
    }

    /// A rule that is gone from the configuration: remove its records if
    /// the connection says `deprovision_on_rule_deletion`, else let go.
    async fn rule_deleted(
        &self,
        rule: &str,
        connection: &str,
        options: &PassOptions,
        reports: &mut BTreeMap<String, RuleReport>,
        work: &mut Vec<Work>,
        sharing: &mut Sharing,
    ) -> Result<(), EngineError> {
        let links = Links::new(&self.db);
        let rule_links = links.of_rule(rule)?;
        let mut rule_report = RuleReport {
            rule: rule.to_string(),
            connection: connection.to_string(),
            status: Some(RuleStatus::Deleted),
            ..RuleReport::default()
        };
        let bound = match self.bind(connection).await {
            Ok(bound) => Some(bound),
            Err(reason) => {
                tracing::warn!(rule, connection, %reason, "a deleted rule's connection is unusable; its links are dropped and its records stay");
                None
            }
        };
        let prefs = bound.as_ref().map(|b| b.connection.preferences.clone());
        let deprovision = prefs
            .as_ref()
            .is_some_and(|p| p.deprovision_on_rule_deletion && p.allow_deprovision);
        let action = prefs
            .as_ref()
            .and_then(|p| match p.remove_action.of(Cause::LeftScope) {
                Some(RemoveAction::Delete) if p.allow_delete => Some(RemoveAction::Delete),
                Some(RemoveAction::Disable) if p.allow_disable => Some(RemoveAction::Disable),
                _ => None,
            });
        match (deprovision, action) {
            (true, Some(action)) => {
                let removals: Vec<Work> = rule_links
                    .into_values()
                    // A record disabled already needs nothing more.
                    .filter(|link| {
                        !(action == RemoveAction::Disable && link.state == LinkState::Disabled)
                    })
                    .filter_map(|link| {
                        let target = link.target_id.clone()?;
                        Some(Work {
                            rule: rule.to_string(),
                            connection: connection.to_string(),
                            person_id: link.person_id.clone(),
                            person_seq: None,
                            base: link,
                            kind: WorkKind::Remove {
                                target,
                                action,
                                cause: Cause::LeftScope,
                            },
                        })
                    })
                    .collect();
                let removals = self.hand_over(removals, sharing, options, &mut rule_report)?;
                for removal in removals {
                    let target = removal.base.target_id.clone().unwrap_or_default();
                    rule_report.line(
                        &removal.person_id,
                        "remove",
                        format!("{target}: the rule was deleted"),
                    );
                    if options.dry_run {
                        rule_report.count("remove");
                    } else {
                        work.push(removal);
                    }
                }
            }
            _ => {
                rule_report.line(
                    "*",
                    "forget",
                    "the rule was deleted; its records stay (deprovision_on_rule_deletion is off)",
                );
                if !options.dry_run {
                    links.journal_note(
                        &JournalEntry {
                            rule: Some(rule.to_string()),
                            person_id: None,
                            connection: connection.to_string(),
                            action: "forget-rule".into(),
                            target_id: None,
                            detail: json!({ "links": rule_links.len() }),
                        },
                        "ok",
                    )?;
                    links.forget_rule(rule)?;
                }
            }
        }
        reports.insert(rule.to_string(), rule_report);
        Ok(())
    }

    /// One lookup for `items`. Refused credentials quarantine the
    /// connection, and the rule stops; any other failure is recorded on
    /// each item's link, to be retried as the backoff allows.
    #[allow(clippy::too_many_arguments)]
    async fn lookup<'p>(
        &self,
        binding: &RuleBinding,
        keys: Vec<String>,
        items: impl Iterator<Item = &'p Planned>,
        link_of: &impl Fn(&str) -> Link,
        report: &mut RuleReport,
        outcomes: &mut Outcomes,
    ) -> Result<Lookup, EngineError> {
        let error = match binding
            .bound
            .connector
            .lookup(&binding.match_attribute, keys)
            .await
        {
            Ok(found) => return Ok(Lookup::Found(found)),
            Err(error) => error,
        };
        if let Some(StoreError::Unauthorized(message)) = error.store_error() {
            Links::new(&self.db).quarantine(&binding.rule.connection, message)?;
            report.status = Some(RuleStatus::Quarantined(message.clone()));
            return Ok(Lookup::Quarantined);
        }
        for item in items {
            report.count("failed");
            let mut link = link_of(&item.person_id);
            self.fail_link(&mut link, &call_error(&error), item.person_seq);
            outcomes.save.push(link);
        }
        Ok(Lookup::Failed)
    }

    fn fail_link(&self, link: &mut Link, error: &StoreError, person_seq: Option<i64>) {
        link.state = LinkState::Failed;
        link.error = Some(LinkError::from_store(error));
        link.person_seq = person_seq;
        link.attempts = link.attempts.saturating_add(1);
        if matches!(error, StoreError::Transient { .. }) {
            crate::status::metrics::retry(&link.connection);
        }
        link.next_retry = match error {
            StoreError::Transient { retry_after, .. } => Some(backoff::retry_at(
                now_ms(),
                link.attempts,
                self.settings.retry_base,
                self.settings.retry_max,
                *retry_after,
                rand::random::<f64>(),
            )),
            _ => None,
        };
    }

    /// Sends the work, by connection and in batches, and records answers.
    async fn execute(&self, work: Vec<Work>, tally: &Tally) -> Result<Vec<Answer>, EngineError> {
        if work.is_empty() {
            return Ok(Vec::new());
        }
        let mut by_connection: BTreeMap<String, Vec<Work>> = BTreeMap::new();
        for item in work {
            by_connection
                .entry(item.connection.clone())
                .or_default()
                .push(item);
        }
        crate::status::metrics::queue_depth(by_connection.values().map(Vec::len).sum());
        let mut batches = Vec::new();
        for (connection, items) in by_connection {
            let bound = match self.bind(&connection).await {
                Ok(bound) => bound,
                Err(reason) => {
                    tracing::warn!(connection, %reason, "cannot send to this connection");
                    continue;
                }
            };
            for chunk in runs_of(items, self.settings.batch_size) {
                batches.push((bound.clone(), chunk));
            }
        }
        let planned: usize = batches.iter().map(|(_, chunk)| chunk.len()).sum();
        let total = tally.planned.fetch_add(planned, Ordering::SeqCst) + planned;
        let done = &tally.done;
        let progress = self
            .progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let results = futures_util::future::join_all(batches.into_iter().map(|(bound, chunk)| {
            let size = chunk.len();
            let progress = progress.clone();
            async move {
                let result = self.send_batch(bound, chunk).await;
                let now = done.fetch_add(size, Ordering::SeqCst) + size;
                if let Some(progress) = progress {
                    progress(now, total);
                }
                result
            }
        }))
        .await;
        let mut answers = Vec::with_capacity(planned);
        for result in results {
            answers.extend(result?);
        }
        Ok(answers)
    }

    /// One batch: journal, send, record.
    async fn send_batch(
        &self,
        bound: Arc<Bound>,
        chunk: Vec<Work>,
    ) -> Result<Vec<Answer>, EngineError> {
        let _permit = bound.gate.acquire().await;
        if self.stopping() {
            return Ok(Vec::new());
        }
        let links = Links::new(&self.db);
        let connection = bound.connection.name.clone();
        if let Some(reason) = links.quarantined(&connection)? {
            tracing::warn!(connection, %reason, "quarantined; batch not sent");
            return Ok(Vec::new());
        }
        let ids = links.journal_open(&chunk.iter().map(Work::journal).collect::<Vec<_>>())?;
        let operations: Vec<Operation> = chunk.iter().map(Work::operation).collect();
        let answers: Vec<Result<String, StoreError>> = match bound.connector.apply(operations).await
        {
            Ok(answers) => answers.into_iter().map(|a| a.map(|o| o.id)).collect(),
            Err(error) => {
                let error = call_error(&error);
                vec![Err(error); chunk.len()]
            }
        };
        crate::status::metrics::queue_done(ids.len());
        if let Some((used, max)) = bound.connector.broker().api_usage() {
            crate::status::metrics::api_usage(&connection, used, max);
            links.record_usage(&connection, used, max)?;
        }
        let mut outcomes = Outcomes::default();
        let mut counts = Vec::new();
        for ((item, id), answer) in chunk.into_iter().zip(ids).zip(answers) {
            let rule = item.rule.clone();
            match answer {
                Ok(target) => {
                    outcomes.journal.push((id, Ok(Some(target.clone()))));
                    counts.push((rule, self.succeed(item, target, &mut outcomes), None));
                }
                Err(error) => {
                    outcomes.journal.push((id, Err(error.to_string())));
                    let line = PlanLine {
                        person: item.person_id.clone(),
                        action: format!("{} failed", item.action()),
                        detail: error.to_string(),
                    };
                    counts.push((rule, self.failed(item, &error, &mut outcomes), Some(line)));
                }
            }
        }
        if let Some((connection, reason)) = &outcomes.quarantine {
            links.quarantine(connection, reason)?;
        }
        links.commit(&outcomes.save, &outcomes.drop, &outcomes.journal)?;
        Ok(counts)
    }

    fn succeed(&self, item: Work, target: String, outcomes: &mut Outcomes) -> String {
        let mut link = item.base;
        link.error = None;
        link.reason = None;
        link.attempts = 0;
        link.next_retry = None;
        link.person_seq = item.person_seq;
        match item.kind {
            WorkKind::Create(attributes) => {
                link.target_id = Some(target);
                link.written = written_of(&attributes);
                link.state = LinkState::Synced;
                outcomes.save.push(link);
                "created".into()
            }
            WorkKind::Update {
                changes, written, ..
            } => {
                match written {
                    Some(written) => link.written = written,
                    None => remember(&mut link.written, &changes),
                }
                link.state = LinkState::Synced;
                outcomes.save.push(link);
                "updated".into()
            }
            WorkKind::Remove {
                action: RemoveAction::Delete,
                ..
            } => {
                outcomes.drop.push((link.rule, link.person_id));
                "removed".into()
            }
            WorkKind::Remove {
                action: RemoveAction::Disable,
                ..
            } => {
                link.state = LinkState::Disabled;
                outcomes.save.push(link);
                "disabled".into()
            }
            WorkKind::Convert {
                from, attributes, ..
            } => {
                link.target_id = Some(target);
                link.written = written_of(&attributes);
                link.state = LinkState::Synced;
                outcomes.save.push(link);
                outcomes.drop.push((from.rule, from.person_id));
                "converted".into()
            }
        }
    }

    fn failed(&self, item: Work, error: &StoreError, outcomes: &mut Outcomes) -> String {
        let mut link = item.base.clone();
        match (&item.kind, error) {
            // Already gone: a removal is done.
            (WorkKind::Remove { .. }, StoreError::NotFound(_)) => {
                outcomes.drop.push((link.rule, link.person_id));
                return "removed".into();
            }
            // The record vanished from the store: forget it, and the next
            // pass looks the person up and creates them again.
            (WorkKind::Update { .. }, StoreError::NotFound(message)) => {
                link.target_id = None;
                link.written.clear();
                link.state = LinkState::Failed;
                link.error = Some(LinkError::from_store(error));
                link.next_retry = None;
                link.reason = Some(format!(
                    "the record is gone from the store ({message}); it will be looked up and created again"
                ));
                outcomes.save.push(link);
                return "failed".into();
            }
            (WorkKind::Convert { from, .. }, StoreError::NotFound(_)) => {
                outcomes
                    .drop
                    .push((from.rule.clone(), from.person_id.clone()));
                return "failed".into();
            }
            (_, StoreError::Unauthorized(message)) => {
                outcomes.quarantine = Some((item.connection.clone(), message.clone()));
            }
            _ => {}
        }
        self.fail_link(&mut link, error, item.person_seq);
        // The record is still disabled in the store: the link must keep
        // saying so, or the next pass would find nothing to change and
        // call the person synced.
        if item.base.state == LinkState::Disabled && matches!(item.kind, WorkKind::Update { .. }) {
            link.state = LinkState::Disabled;
        }
        outcomes.save.push(link);
        "failed".into()
    }

    /// Status per rule from the links, in PingOne's buckets.
    pub fn buckets(&self) -> Result<BTreeMap<String, BTreeMap<String, usize>>, EngineError> {
        let mut out: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for (rule, state, count) in Links::new(&self.db).count_states()? {
            let bucket = match state {
                LinkState::Synced | LinkState::Disabled => "success",
                LinkState::Unsynced => "unsynced",
                LinkState::Partial | LinkState::Kept => "partially-synced",
                LinkState::Failed => "failed",
            };
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

/// What became of one sent operation: its rule, the action counted, and
/// a report line for a failure.
type Answer = (String, String, Option<PlanLine>);

fn count_answers(reports: &mut BTreeMap<String, RuleReport>, answers: Vec<Answer>) {
    for (rule, what, line) in answers {
        let report = reports.entry(rule.clone()).or_insert_with(|| RuleReport {
            rule: rule.clone(),
            ..RuleReport::default()
        });
        report.count(&what);
        if let Some(line) = line {
            report.plan.push(line);
        }
    }
}

/// What a batched lookup came to.
enum Lookup {
    Found(Vec<Match>),
    /// The failure is on each person's link.
    Failed,
    /// The connection is quarantined; the rule stops.
    Quarantined,
}

/// A link that fails for good until the data or the store changes.
fn refuse(link: &mut Link, error: LinkError, report: &mut RuleReport) {
    report.count("failed");
    report.line(&link.person_id, "fail", error.message.clone());
    link.state = LinkState::Failed;
    link.error = Some(error);
}

/// Several records answer to one person's match value: nothing can be
/// linked until the duplicates in the store are resolved.
fn ambiguous(attribute: &str, key: &str, ids: &[impl AsRef<str>], context: &str) -> LinkError {
    let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
    LinkError {
        class: "rejected".into(),
        code: Some("AMBIGUOUS_MATCH".into()),
        message: format!(
            "{} records have {attribute} {key} ({}){context}; resolve the duplicates in the store",
            ids.len(),
            ids.join(", ")
        ),
        fields: vec![attribute.to_string()],
    }
}

/// A sandbox failure counts as transient for every operation of the call:
/// the plugin may do better next time, and the host keeps going.
fn call_error(error: &CallError) -> StoreError {
    match error {
        CallError::Store { error, .. } => error.clone(),
        other => StoreError::Transient {
            message: other.to_string(),
            retry_after: None,
        },
    }
}
