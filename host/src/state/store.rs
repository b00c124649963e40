//! The storage interface, by concern. The engine, the directory, status
//! and the CLI reach the state only through these traits; a backend
//! implements all of them. Today that is SQLite (`sqlite/`), and the
//! methods are async so that a backend of a network database can wait
//! without holding a thread, while SQLite's blocking calls are moved off
//! the async worker threads by the backend itself.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use serde_json::Value as Json;

use super::StateError;
use crate::directory::{
    Change, GroupPut, GroupRecord, GroupWrite, Key, Person, PersonChange, Put, UpsertReport,
};
use crate::sync::links::{GroupLink, JournalEntry, Link, LinkState, PluginRecord, UpdateGuard};

/// What became of a batch's journal entries: the record id an answer gave,
/// or the error text.
pub type JournalOutcome = (i64, Result<Option<String>, String>);

/// Links between a rule's people and their records, and the one commit
/// that writes links and closes journal entries together.
#[async_trait]
pub trait LinkStore: Send + Sync {
    /// Every link of a rule, by person.
    async fn of_rule(&self, rule: &str) -> Result<BTreeMap<String, Link>, StateError>;
    /// A rule's links of people whose ids sort after `after` and up to
    /// `through` (`None`: no bound).
    async fn of_rule_between(
        &self,
        rule: &str,
        after: Option<&str>,
        through: Option<&str>,
    ) -> Result<BTreeMap<String, Link>, StateError>;
    /// A rule's links of these people.
    async fn of_rule_among(
        &self,
        rule: &str,
        people: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, Link>, StateError>;
    /// One person's links, by rule.
    async fn of_person(&self, person: &str) -> Result<BTreeMap<String, Link>, StateError>;
    /// How many records a rule links.
    async fn linked_count(&self, rule: &str) -> Result<u64, StateError>;
    /// The other rules of `connection` that link the record `target`.
    async fn other_holders(
        &self,
        connection: &str,
        rule: &str,
        target: &str,
    ) -> Result<Vec<String>, StateError>;
    /// Writes links, drops (rule, person) links and closes journal entries,
    /// in one transaction.
    async fn commit(
        &self,
        save: &[Link],
        drop: &[(String, String)],
        journal: &[JournalOutcome],
    ) -> Result<(), StateError>;
    /// Makes failed links due now; how many.
    async fn retry(&self, rule: Option<&str>, person: Option<&str>) -> Result<usize, StateError>;
    /// The people with a failed link whose retry is due at `now`.
    async fn due(&self, now: i64) -> Result<BTreeSet<String>, StateError>;
}

/// The action journal: every action written before it is sent.
#[async_trait]
pub trait JournalStore: Send + Sync {
    /// Opens entries before their actions are sent; their ids, in order.
    async fn journal_open(&self, entries: &[JournalEntry]) -> Result<Vec<i64>, StateError>;
    /// An entry for an action that sends nothing, finished at once.
    async fn journal_note(&self, entry: &JournalEntry, outcome: &str) -> Result<(), StateError>;
    /// Closes the entries a crash left open; how many.
    async fn close_interrupted(&self) -> Result<usize, StateError>;
    /// Entries, newest first.
    async fn journal(
        &self,
        person: Option<&str>,
        rule: Option<&str>,
        since: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Json>, StateError>;
}

/// Connection health: quarantine, API usage, and the plugins the running
/// host serves.
#[async_trait]
pub trait HealthStore: Send + Sync {
    async fn quarantined(&self, connection: &str) -> Result<Option<String>, StateError>;
    async fn quarantine(&self, connection: &str, reason: &str) -> Result<(), StateError>;
    /// Lifts a quarantine; whether there was one.
    async fn resume(&self, connection: &str) -> Result<bool, StateError>;
    async fn record_usage(&self, connection: &str, used: u64, max: u64) -> Result<(), StateError>;
    /// The running host's plugins, clashes and refused files.
    async fn record_plugins(
        &self,
        plugins: &[PluginRecord],
        clashes: &BTreeMap<String, Vec<String>>,
        refused: &[(String, String)],
    ) -> Result<(), StateError>;
    /// `None` until a host has scanned its plugin directory.
    async fn plugin_refusals(&self) -> Result<Option<Vec<(String, String)>>, StateError>;
    async fn plugin_clashes(&self) -> Result<BTreeMap<String, Vec<String>>, StateError>;
    /// Plugin name to the version the running host serves.
    async fn plugins_in_use(&self) -> Result<BTreeMap<String, String>, StateError>;
}

/// The removal guard and the update guard, per rule.
#[async_trait]
pub trait GuardStore: Send + Sync {
    /// `Some(approved)` while the removal guard holds the rule.
    async fn guard(&self, rule: &str) -> Result<Option<bool>, StateError>;
    async fn trip_guard(&self, rule: &str, planned: u64, linked: u64) -> Result<(), StateError>;
    async fn approve_removals(&self, rule: &str) -> Result<bool, StateError>;
    async fn clear_guard(&self, rule: &str) -> Result<(), StateError>;
    /// Where a change of the rule's mappings stands with its guard.
    async fn update_guard(
        &self,
        rule: &str,
        mappings: &str,
    ) -> Result<Option<UpdateGuard>, StateError>;
    async fn clear_update_guard(&self, rule: &str) -> Result<(), StateError>;
    async fn weigh_update_guard(
        &self,
        rule: &str,
        planned: u64,
        linked: u64,
        mappings: &str,
        outcome: UpdateGuard,
    ) -> Result<(), StateError>;
    async fn approve_updates(&self, rule: &str) -> Result<bool, StateError>;
    /// Updates held, by rule: (planned, linked).
    async fn held_updates(&self) -> Result<BTreeMap<String, (u64, u64)>, StateError>;
}

/// The rules the state has seen, their last passes and the mappings they
/// wrote through.
#[async_trait]
pub trait RuleStore: Send + Sync {
    /// Rule to its connection.
    async fn known_rules(&self) -> Result<BTreeMap<String, String>, StateError>;
    async fn see_rule(&self, rule: &str, connection: &str) -> Result<(), StateError>;
    async fn finish_rule(&self, rule: &str, error: Option<&str>) -> Result<(), StateError>;
    /// Forgets a rule and its links.
    async fn forget_rule(&self, rule: &str) -> Result<(), StateError>;
    async fn rule_mappings(&self, rule: &str) -> Result<Option<String>, StateError>;
    async fn record_mappings(&self, rule: &str, mappings: &str) -> Result<(), StateError>;
}

/// The directory groups rules push to their targets, one link each.
#[async_trait]
pub trait GroupLinkStore: Send + Sync {
    /// A rule's group links, by group.
    async fn group_links(&self, rule: &str) -> Result<BTreeMap<String, GroupLink>, StateError>;
    /// Writes group links and drops (rule, group) links, in one
    /// transaction.
    async fn commit_groups(
        &self,
        save: &[GroupLink],
        drop: &[(String, String)],
    ) -> Result<(), StateError>;
    /// Group links by rule and state, for status.
    async fn count_group_states(&self) -> Result<Vec<(String, LinkState, u64)>, StateError>;
}

/// The source directory's people, their groups and the change sequence.
/// Validation is the directory's (`crate::directory::Directory`); a
/// backend stores what it is given.
#[async_trait]
pub trait DirectoryStore: Send + Sync {
    /// Applies changes in one transaction, each advancing the change
    /// sequence if it changes anything.
    /// `source` names who made them.
    async fn upsert_people(
        &self,
        changes: &[PersonChange],
        source: &str,
    ) -> Result<UpsertReport, StateError>;
    /// Edits one live person in a transaction; `None` if there is none,
    /// else whether anything changed. `kind` names the change.
    async fn modify_person(
        &self,
        id: &str,
        kind: &str,
        source: &str,
        edit: PersonEdit,
    ) -> Result<Option<bool>, StateError>;
    /// Writes one person whole in a transaction, if they are still at
    /// `expected` (`None`: no live person has the id) and no other live
    /// person has their `user_name` (compared without case).
    async fn put_person(
        &self,
        person: &Person,
        expected: Option<i64>,
        kind: &str,
        source: &str,
    ) -> Result<Put, StateError>;
    /// Live people by an indexed attribute.
    async fn people_by(&self, key: Key, value: &str) -> Result<Vec<Person>, StateError>;
    /// One change of the sequence.
    async fn change(&self, seq: i64) -> Result<Option<Change>, StateError>;
    /// The newest changes first, at most `limit`: of one person, and from
    /// `since` (milliseconds) on, where given.
    async fn changes(
        &self,
        person: Option<&str>,
        since: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Change>, StateError>;
    /// Every group with a record, by name.
    async fn group_records(&self) -> Result<Vec<GroupRecord>, StateError>;
    /// Writes a group's record and members in one transaction.
    async fn put_group(&self, write: &GroupWrite, source: &str) -> Result<GroupPut, StateError>;
    /// Deletes a group's record (by `id`) and its name (`name`) from every
    /// member.
    async fn delete_group(&self, id: &str, name: &str, source: &str) -> Result<bool, StateError>;
    /// Forgets a deleted person for good, once nothing refers to them.
    async fn purge_person(&self, id: &str) -> Result<(), StateError>;
    /// Up to `limit` people (all if `None`), tombstones included, whose ids
    /// sort after `after`, in id order.
    async fn people_after(
        &self,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<Person>, StateError>;
    /// Some people by id, tombstones included, unknown ids skipped.
    async fn people_among(&self, ids: &BTreeSet<String>) -> Result<Vec<Person>, StateError>;
    async fn live_ids(&self) -> Result<BTreeSet<String>, StateError>;
    /// The ids of a group's members, live or not.
    async fn members_of(&self, group: &str) -> Result<BTreeSet<String>, StateError>;
    /// The groups that have members.
    async fn group_names(&self) -> Result<BTreeSet<String>, StateError>;
    /// The newest change's sequence number (0 for an empty directory).
    async fn last_seq(&self) -> Result<i64, StateError>;
    async fn changed_since(&self, seq: i64) -> Result<BTreeSet<String>, StateError>;
    /// A file whose writes mean the directory may have changed, for a
    /// backend that lives in one: the daemon watches it, so that a change
    /// made by another process is acted on at once, not at the next poll.
    fn change_file(&self) -> Option<std::path::PathBuf> {
        None
    }
}

/// An edit of one person, applied inside the backend's transaction.
pub type PersonEdit = Box<dyn FnOnce(&mut Person) + Send>;

/// A rule's last pass: when it finished, and the error that stopped it.
pub type RuleRun = (Option<i64>, Option<String>);

/// What status, the page and `/metrics` read: aggregates, so that they
/// cost at a million people what they cost at a thousand.
#[async_trait]
pub trait StatusStore: Send + Sync {
    /// Links by rule and state.
    async fn count_states(&self) -> Result<Vec<(String, LinkState, u64)>, StateError>;
    /// The first `limit` failed links, by rule and person.
    async fn failed(&self, limit: usize) -> Result<Vec<Link>, StateError>;
    /// Live people `rule` has no link for.
    async fn unlinked(&self, rule: &str) -> Result<BTreeSet<String>, StateError>;
    /// Linked people whose data changed after the rule last acted, by rule.
    async fn pending_counts(&self) -> Result<BTreeMap<String, u64>, StateError>;
    /// Each rule's last pass.
    async fn rule_runs(&self) -> Result<BTreeMap<String, RuleRun>, StateError>;
    /// Quarantined connections and why.
    async fn quarantines(&self) -> Result<BTreeMap<String, String>, StateError>;
    /// Removals held by the removal guard, by rule: (planned, linked).
    async fn held_removals(&self) -> Result<BTreeMap<String, (u64, u64)>, StateError>;
    /// The API usage each connection last reported: (used, max, at).
    async fn usage(&self) -> Result<BTreeMap<String, (u64, u64, i64)>, StateError>;
    /// Journal entries by (connection, action, outcome or `pending`).
    async fn journal_counts(&self) -> Result<Vec<(String, String, String, u64)>, StateError>;
    /// One cheap read: whether the state answers.
    async fn ping(&self) -> Result<(), StateError>;
    /// Where the state lives, for messages.
    fn describe(&self) -> String;
}

/// The whole storage interface.
pub trait Store:
    LinkStore
    + GroupLinkStore
    + JournalStore
    + HealthStore
    + GuardStore
    + RuleStore
    + DirectoryStore
    + StatusStore
{
}

impl<T> Store for T where
    T: LinkStore
        + GroupLinkStore
        + JournalStore
        + HealthStore
        + GuardStore
        + RuleStore
        + DirectoryStore
        + StatusStore
{
}
