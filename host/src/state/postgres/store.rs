//! The storage traits over PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use serde_json::Value as Json;

use super::{PgState, directory, groups, links, status};
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
impl LinkStore for PgState {
    async fn of_rule(&self, rule: &str) -> Result<BTreeMap<String, Link>, StateError> {
        links::of_rule_between(self, rule, None, None).await
    }

    async fn of_rule_between(
        &self,
        rule: &str,
        after: Option<&str>,
        through: Option<&str>,
    ) -> Result<BTreeMap<String, Link>, StateError> {
        links::of_rule_between(self, rule, after, through).await
    }

    async fn of_rule_among(
        &self,
        rule: &str,
        people: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, Link>, StateError> {
        links::of_rule_among(self, rule, people).await
    }

    async fn of_person(&self, person: &str) -> Result<BTreeMap<String, Link>, StateError> {
        links::of_person(self, person).await
    }

    async fn linked_count(&self, rule: &str) -> Result<u64, StateError> {
        links::linked_count(self, rule).await
    }

    async fn other_holders(
        &self,
        connection: &str,
        rule: &str,
        target: &str,
    ) -> Result<Vec<String>, StateError> {
        links::other_holders(self, connection, rule, target).await
    }

    async fn commit(
        &self,
        save: &[Link],
        drop: &[(String, String)],
        journal: &[JournalOutcome],
    ) -> Result<(), StateError> {
        links::commit(self, save, drop, journal).await
    }

    async fn retry(&self, rule: Option<&str>, person: Option<&str>) -> Result<usize, StateError> {
        links::retry(self, rule, person).await
    }

    async fn due(&self, now: i64) -> Result<BTreeSet<String>, StateError> {
        links::due(self, now).await
    }
}

#[async_trait]
impl JournalStore for PgState {
    async fn journal_open(&self, entries: &[JournalEntry]) -> Result<Vec<i64>, StateError> {
        links::journal_open(self, entries).await
    }

    async fn journal_note(&self, entry: &JournalEntry, outcome: &str) -> Result<(), StateError> {
        links::journal_note(self, entry, outcome).await
    }

    async fn close_interrupted(&self) -> Result<usize, StateError> {
        links::close_interrupted(self).await
    }

    async fn journal(
        &self,
        person: Option<&str>,
        rule: Option<&str>,
        since: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Json>, StateError> {
        links::journal(self, person, rule, since, limit).await
    }
}

#[async_trait]
impl HealthStore for PgState {
    async fn quarantined(&self, connection: &str) -> Result<Option<String>, StateError> {
        links::quarantined(self, connection).await
    }

    async fn quarantine(&self, connection: &str, reason: &str) -> Result<(), StateError> {
        links::quarantine(self, connection, reason).await
    }

    async fn resume(&self, connection: &str) -> Result<bool, StateError> {
        links::resume(self, connection).await
    }

    async fn record_usage(&self, connection: &str, used: u64, max: u64) -> Result<(), StateError> {
        links::record_usage(self, connection, used, max).await
    }

    async fn record_plugins(
        &self,
        plugins: &[PluginRecord],
        clashes: &BTreeMap<String, Vec<String>>,
        refused: &[(String, String)],
    ) -> Result<(), StateError> {
        links::record_plugins(self, plugins, clashes, refused).await
    }

    async fn plugin_refusals(&self) -> Result<Option<Vec<(String, String)>>, StateError> {
        links::plugin_refusals(self).await
    }

    async fn plugin_clashes(&self) -> Result<BTreeMap<String, Vec<String>>, StateError> {
        links::plugin_clashes(self).await
    }

    async fn plugins_in_use(&self) -> Result<BTreeMap<String, String>, StateError> {
        links::plugins_in_use(self).await
    }
}

#[async_trait]
impl GroupLinkStore for PgState {
    async fn group_links(&self, rule: &str) -> Result<BTreeMap<String, GroupLink>, StateError> {
        groups::of_rule(self, rule).await
    }

    async fn commit_groups(
        &self,
        save: &[GroupLink],
        drop: &[(String, String)],
    ) -> Result<(), StateError> {
        groups::commit(self, save, drop).await
    }

    async fn count_group_states(&self) -> Result<Vec<(String, LinkState, u64)>, StateError> {
        groups::count_states(self).await
    }
}

#[async_trait]
impl GuardStore for PgState {
    async fn guard(&self, rule: &str) -> Result<Option<bool>, StateError> {
        links::guard(self, rule).await
    }

    async fn trip_guard(&self, rule: &str, planned: u64, linked: u64) -> Result<(), StateError> {
        links::trip_guard(self, rule, planned, linked).await
    }

    async fn approve_removals(&self, rule: &str) -> Result<bool, StateError> {
        links::approve_removals(self, rule).await
    }

    async fn clear_guard(&self, rule: &str) -> Result<(), StateError> {
        links::clear_guard(self, rule).await
    }

    async fn update_guard(
        &self,
        rule: &str,
        mappings: &str,
    ) -> Result<Option<UpdateGuard>, StateError> {
        links::update_guard(self, rule, mappings).await
    }

    async fn clear_update_guard(&self, rule: &str) -> Result<(), StateError> {
        links::clear_update_guard(self, rule).await
    }

    async fn weigh_update_guard(
        &self,
        rule: &str,
        planned: u64,
        linked: u64,
        mappings: &str,
        outcome: UpdateGuard,
    ) -> Result<(), StateError> {
        links::weigh_update_guard(self, rule, planned, linked, mappings, outcome).await
    }

    async fn approve_updates(&self, rule: &str) -> Result<bool, StateError> {
        links::approve_updates(self, rule).await
    }

    async fn held_updates(&self) -> Result<BTreeMap<String, (u64, u64)>, StateError> {
        links::held_updates(self).await
    }
}

#[async_trait]
impl RuleStore for PgState {
    async fn known_rules(&self) -> Result<BTreeMap<String, String>, StateError> {
        links::known_rules(self).await
    }

    async fn see_rule(&self, rule: &str, connection: &str) -> Result<(), StateError> {
        links::see_rule(self, rule, connection).await
    }

    async fn finish_rule(&self, rule: &str, error: Option<&str>) -> Result<(), StateError> {
        links::finish_rule(self, rule, error).await
    }

    async fn forget_rule(&self, rule: &str) -> Result<(), StateError> {
        links::forget_rule(self, rule).await
    }

    async fn rule_mappings(&self, rule: &str) -> Result<Option<String>, StateError> {
        links::rule_mappings(self, rule).await
    }

    async fn record_mappings(&self, rule: &str, mappings: &str) -> Result<(), StateError> {
        links::record_mappings(self, rule, mappings).await
    }
}

#[async_trait]
impl DirectoryStore for PgState {
    async fn upsert_people(
        &self,
        changes: &[PersonChange],
        source: &str,
    ) -> Result<UpsertReport, StateError> {
        directory::upsert(self, changes, source).await
    }

    async fn modify_person(
        &self,
        id: &str,
        kind: &str,
        source: &str,
        edit: PersonEdit,
    ) -> Result<Option<bool>, StateError> {
        directory::modify(self, id, kind, source, edit).await
    }

    async fn put_person(
        &self,
        person: &Person,
        expected: Option<i64>,
        kind: &str,
        source: &str,
    ) -> Result<Put, StateError> {
        directory::put(self, person, expected, kind, source).await
    }

    async fn people_by(&self, key: Key, value: &str) -> Result<Vec<Person>, StateError> {
        directory::people_by(self, key, value).await
    }

    async fn change(&self, seq: i64) -> Result<Option<Change>, StateError> {
        directory::change(self, seq).await
    }

    async fn changes(
        &self,
        person: Option<&str>,
        since: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Change>, StateError> {
        directory::changes(self, person, since, limit).await
    }

    async fn group_records(&self) -> Result<Vec<GroupRecord>, StateError> {
        directory::group_records(self).await
    }

    async fn put_group(&self, write: &GroupWrite, source: &str) -> Result<GroupPut, StateError> {
        directory::put_group(self, write, source).await
    }

    async fn delete_group(&self, id: &str, name: &str, source: &str) -> Result<bool, StateError> {
        directory::delete_group(self, id, name, source).await
    }

    async fn purge_person(&self, id: &str) -> Result<(), StateError> {
        directory::purge(self, id).await
    }

    async fn people_after(
        &self,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<Person>, StateError> {
        directory::people_after(self, after, limit).await
    }

    async fn people_among(&self, ids: &BTreeSet<String>) -> Result<Vec<Person>, StateError> {
        directory::people_among(self, ids).await
    }

    async fn live_ids(&self) -> Result<BTreeSet<String>, StateError> {
        directory::live_ids(self).await
    }

    async fn members_of(&self, group: &str) -> Result<BTreeSet<String>, StateError> {
        directory::members_of(self, group).await
    }

    async fn group_names(&self) -> Result<BTreeSet<String>, StateError> {
        directory::group_names(self).await
    }

    async fn last_seq(&self) -> Result<i64, StateError> {
        directory::last_seq(self).await
    }

    async fn changed_since(&self, seq: i64) -> Result<BTreeSet<String>, StateError> {
        directory::changed_since(self, seq).await
    }
}

#[async_trait]
impl StatusStore for PgState {
    async fn count_states(&self) -> Result<Vec<(String, LinkState, u64)>, StateError> {
        links::count_states(self).await
    }

    async fn failed(&self, limit: usize) -> Result<Vec<Link>, StateError> {
        links::failed(self, limit).await
    }

    async fn unlinked(&self, rule: &str) -> Result<BTreeSet<String>, StateError> {
        links::unlinked(self, rule).await
    }

    async fn pending_counts(&self) -> Result<BTreeMap<String, u64>, StateError> {
        links::pending_counts(self).await
    }

    async fn rule_runs(&self) -> Result<BTreeMap<String, RuleRun>, StateError> {
        status::rule_runs(self).await
    }

    async fn quarantines(&self) -> Result<BTreeMap<String, String>, StateError> {
        status::quarantines(self).await
    }

    async fn held_removals(&self) -> Result<BTreeMap<String, (u64, u64)>, StateError> {
        links::held_removals(self).await
    }

    async fn usage(&self) -> Result<BTreeMap<String, (u64, u64, i64)>, StateError> {
        status::usage(self).await
    }

    async fn journal_counts(&self) -> Result<Vec<(String, String, String, u64)>, StateError> {
        status::journal_counts(self).await
    }

    async fn ping(&self) -> Result<(), StateError> {
        status::ping(self).await
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}
