//! The storage traits over SQLite: each call runs its statements through
//! [`StateDb::blocking`].

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use serde_json::Value as Json;

use super::{StateDb, directory, groups, links, status};
use crate::directory::{
    Change, GroupPut, GroupRecord, GroupWrite, Key, Person, PersonChange, Put, UpsertReport,
};
use crate::state::StateError;
use crate::state::store::{
    DirectoryStore, GroupLinkStore, GuardStore, HealthStore, JournalOutcome, JournalStore,
    LinkStore, PersonEdit, RuleRun, RuleStore, StatusStore,
};
use crate::sync::links::{GroupLink, JournalEntry, Link, LinkState, PluginRecord, UpdateGuard};

#[async_trait]
impl LinkStore for StateDb {
    async fn of_rule(&self, rule: &str) -> Result<BTreeMap<String, Link>, StateError> {
        self.blocking(|db| links::of_rule(db, rule))
    }

    async fn of_rule_between(
        &self,
        rule: &str,
        after: Option<&str>,
        through: Option<&str>,
    ) -> Result<BTreeMap<String, Link>, StateError> {
        self.blocking(|db| links::of_rule_between(db, rule, after, through))
    }

    async fn of_rule_among(
        &self,
        rule: &str,
        people: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, Link>, StateError> {
        self.blocking(|db| links::of_rule_among(db, rule, people))
    }

    async fn of_person(&self, person: &str) -> Result<BTreeMap<String, Link>, StateError> {
        self.blocking(|db| links::of_person(db, person))
    }

    async fn linked_count(&self, rule: &str) -> Result<u64, StateError> {
        self.blocking(|db| links::linked_count(db, rule))
    }

    async fn other_holders(
        &self,
        connection: &str,
        rule: &str,
        target: &str,
    ) -> Result<Vec<String>, StateError> {
        self.blocking(|db| links::other_holders(db, connection, rule, target))
    }

    async fn commit(
        &self,
        save: &[Link],
        drop: &[(String, String)],
        journal: &[JournalOutcome],
    ) -> Result<(), StateError> {
        self.blocking(|db| links::commit(db, save, drop, journal))
    }

    async fn retry(&self, rule: Option<&str>, person: Option<&str>) -> Result<usize, StateError> {
        self.blocking(|db| links::retry(db, rule, person))
    }

    async fn due(&self, now: i64) -> Result<BTreeSet<String>, StateError> {
        self.blocking(|db| links::due(db, now))
    }
}

#[async_trait]
impl JournalStore for StateDb {
    async fn journal_open(&self, entries: &[JournalEntry]) -> Result<Vec<i64>, StateError> {
        self.blocking(|db| links::journal_open(db, entries))
    }

    async fn journal_note(&self, entry: &JournalEntry, outcome: &str) -> Result<(), StateError> {
        self.blocking(|db| links::journal_note(db, entry, outcome))
    }

    async fn close_interrupted(&self) -> Result<usize, StateError> {
        self.blocking(links::close_interrupted)
    }

    async fn journal(
        &self,
        person: Option<&str>,
        rule: Option<&str>,
        since: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Json>, StateError> {
        self.blocking(|db| links::journal(db, person, rule, since, limit))
    }
}

#[async_trait]
impl HealthStore for StateDb {
    async fn quarantined(&self, connection: &str) -> Result<Option<String>, StateError> {
        self.blocking(|db| links::quarantined(db, connection))
    }

    async fn quarantine(&self, connection: &str, reason: &str) -> Result<(), StateError> {
        self.blocking(|db| links::quarantine(db, connection, reason))
    }

    async fn resume(&self, connection: &str) -> Result<bool, StateError> {
        self.blocking(|db| links::resume(db, connection))
    }

    async fn record_usage(&self, connection: &str, used: u64, max: u64) -> Result<(), StateError> {
        self.blocking(|db| links::record_usage(db, connection, used, max))
    }

    async fn record_plugins(
        &self,
        plugins: &[PluginRecord],
        clashes: &BTreeMap<String, Vec<String>>,
        refused: &[(String, String)],
    ) -> Result<(), StateError> {
        self.blocking(|db| links::record_plugins(db, plugins, clashes, refused))
    }

    async fn plugin_refusals(&self) -> Result<Option<Vec<(String, String)>>, StateError> {
        self.blocking(links::plugin_refusals)
    }

    async fn plugin_clashes(&self) -> Result<BTreeMap<String, Vec<String>>, StateError> {
        self.blocking(links::plugin_clashes)
    }

    async fn plugins_in_use(&self) -> Result<BTreeMap<String, String>, StateError> {
        self.blocking(links::plugins_in_use)
    }
}

#[async_trait]
impl GroupLinkStore for StateDb {
    async fn group_links(&self, rule: &str) -> Result<BTreeMap<String, GroupLink>, StateError> {
        self.blocking(|db| groups::of_rule(db, rule))
    }

    async fn commit_groups(
        &self,
        save: &[GroupLink],
        drop: &[(String, String)],
    ) -> Result<(), StateError> {
        self.blocking(|db| groups::commit(db, save, drop))
    }

    async fn count_group_states(&self) -> Result<Vec<(String, LinkState, u64)>, StateError> {
        self.blocking(groups::count_states)
    }
}

#[async_trait]
impl GuardStore for StateDb {
    async fn guard(&self, rule: &str) -> Result<Option<bool>, StateError> {
        self.blocking(|db| links::guard(db, rule))
    }

    async fn trip_guard(&self, rule: &str, planned: u64, linked: u64) -> Result<(), StateError> {
        self.blocking(|db| links::trip_guard(db, rule, planned, linked))
    }

    async fn approve_removals(&self, rule: &str) -> Result<bool, StateError> {
        self.blocking(|db| links::approve_removals(db, rule))
    }

    async fn clear_guard(&self, rule: &str) -> Result<(), StateError> {
        self.blocking(|db| links::clear_guard(db, rule))
    }

    async fn update_guard(
        &self,
        rule: &str,
        mappings: &str,
    ) -> Result<Option<UpdateGuard>, StateError> {
        self.blocking(|db| links::update_guard(db, rule, mappings))
    }

    async fn clear_update_guard(&self, rule: &str) -> Result<(), StateError> {
        self.blocking(|db| links::clear_update_guard(db, rule))
    }

    async fn weigh_update_guard(
        &self,
        rule: &str,
        planned: u64,
        linked: u64,
        mappings: &str,
        outcome: UpdateGuard,
    ) -> Result<(), StateError> {
        self.blocking(|db| links::weigh_update_guard(db, rule, planned, linked, mappings, outcome))
    }

    async fn approve_updates(&self, rule: &str) -> Result<bool, StateError> {
        self.blocking(|db| links::approve_updates(db, rule))
    }

    async fn held_updates(&self) -> Result<BTreeMap<String, (u64, u64)>, StateError> {
        self.blocking(links::held_updates)
    }
}

#[async_trait]
impl RuleStore for StateDb {
    async fn known_rules(&self) -> Result<BTreeMap<String, String>, StateError> {
        self.blocking(links::known_rules)
    }

    async fn see_rule(&self, rule: &str, connection: &str) -> Result<(), StateError> {
        self.blocking(|db| links::see_rule(db, rule, connection))
    }

    async fn finish_rule(&self, rule: &str, error: Option<&str>) -> Result<(), StateError> {
        self.blocking(|db| links::finish_rule(db, rule, error))
    }

    async fn forget_rule(&self, rule: &str) -> Result<(), StateError> {
        self.blocking(|db| links::forget_rule(db, rule))
    }

    async fn rule_mappings(&self, rule: &str) -> Result<Option<String>, StateError> {
        self.blocking(|db| links::rule_mappings(db, rule))
    }

    async fn record_mappings(&self, rule: &str, mappings: &str) -> Result<(), StateError> {
        self.blocking(|db| links::record_mappings(db, rule, mappings))
    }
}

#[async_trait]
impl DirectoryStore for StateDb {
    async fn upsert_people(
        &self,
        changes: &[PersonChange],
        source: &str,
    ) -> Result<UpsertReport, StateError> {
        self.blocking(|db| directory::upsert(db, changes, source))
    }

    async fn modify_person(
        &self,
        id: &str,
        kind: &str,
        source: &str,
        edit: PersonEdit,
    ) -> Result<Option<bool>, StateError> {
        self.blocking(|db| directory::modify(db, id, kind, source, edit))
    }

    async fn put_person(
        &self,
        person: &Person,
        expected: Option<i64>,
        kind: &str,
        source: &str,
    ) -> Result<Put, StateError> {
        self.blocking(|db| directory::put(db, person, expected, kind, source))
    }

    async fn people_by(&self, key: Key, value: &str) -> Result<Vec<Person>, StateError> {
        self.blocking(|db| directory::people_by(db, key, value))
    }

    async fn change(&self, seq: i64) -> Result<Option<Change>, StateError> {
        self.blocking(|db| directory::change(db, seq))
    }

    async fn changes(
        &self,
        person: Option<&str>,
        since: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Change>, StateError> {
        self.blocking(|db| directory::changes(db, person, since, limit))
    }

    async fn group_records(&self) -> Result<Vec<GroupRecord>, StateError> {
        self.blocking(directory::group_records)
    }

    async fn put_group(&self, write: &GroupWrite, source: &str) -> Result<GroupPut, StateError> {
        self.blocking(|db| directory::put_group(db, write, source))
    }

    async fn delete_group(&self, id: &str, name: &str, source: &str) -> Result<bool, StateError> {
        self.blocking(|db| directory::delete_group(db, id, name, source))
    }

    async fn purge_person(&self, id: &str) -> Result<(), StateError> {
        self.blocking(|db| directory::purge(db, id))
    }

    async fn people_after(
        &self,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<Person>, StateError> {
        self.blocking(|db| directory::people_after(db, after, limit))
    }

    async fn people_among(&self, ids: &BTreeSet<String>) -> Result<Vec<Person>, StateError> {
        self.blocking(|db| directory::people_among(db, ids))
    }

    async fn live_ids(&self) -> Result<BTreeSet<String>, StateError> {
        self.blocking(directory::live_ids)
    }

    async fn members_of(&self, group: &str) -> Result<BTreeSet<String>, StateError> {
        self.blocking(|db| directory::members_of(db, group))
    }

    async fn group_names(&self) -> Result<BTreeSet<String>, StateError> {
        self.blocking(directory::group_names)
    }

    async fn last_seq(&self) -> Result<i64, StateError> {
        self.blocking(directory::last_seq)
    }

    async fn changed_since(&self, seq: i64) -> Result<BTreeSet<String>, StateError> {
        self.blocking(|db| directory::changed_since(db, seq))
    }

    fn change_file(&self) -> Option<std::path::PathBuf> {
        Some(self.path().to_path_buf())
    }
}

#[async_trait]
impl StatusStore for StateDb {
    async fn count_states(&self) -> Result<Vec<(String, LinkState, u64)>, StateError> {
        self.blocking(links::count_states)
    }

    async fn failed(&self, limit: usize) -> Result<Vec<Link>, StateError> {
        self.blocking(|db| links::failed(db, limit))
    }

    async fn unlinked(&self, rule: &str) -> Result<BTreeSet<String>, StateError> {
        self.blocking(|db| links::unlinked(db, rule))
    }

    async fn pending_counts(&self) -> Result<BTreeMap<String, u64>, StateError> {
        self.blocking(links::pending_counts)
    }

    async fn rule_runs(&self) -> Result<BTreeMap<String, RuleRun>, StateError> {
        self.blocking(status::rule_runs)
    }

    async fn quarantines(&self) -> Result<BTreeMap<String, String>, StateError> {
        self.blocking(status::quarantines)
    }

    async fn held_removals(&self) -> Result<BTreeMap<String, (u64, u64)>, StateError> {
        self.blocking(status::held_removals)
    }

    async fn usage(&self) -> Result<BTreeMap<String, (u64, u64, i64)>, StateError> {
        self.blocking(status::usage)
    }

    async fn journal_counts(&self) -> Result<Vec<(String, String, String, u64)>, StateError> {
        self.blocking(status::journal_counts)
    }

    async fn ping(&self) -> Result<(), StateError> {
        self.blocking(status::ping)
    }

    fn describe(&self) -> String {
        self.path().display().to_string()
    }
}
