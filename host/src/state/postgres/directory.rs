//! The source directory's tables: people, their groups, and the changes
//! the scheduler follows. Each function does what its namesake in
//! `sqlite/directory.rs` does.
//!
//! SQLite has one writer at a time, and the directory's rules lean on it:
//! a conditional write reads and writes with nobody in between, and the
//! change sequence becomes visible in the order it is numbered, so that a
//! reader who has seen change N has seen every change before it (the
//! daemon follows the directory by `last_seq` and `changed_since`, and a
//! change committed late under a lower number would be skipped). Here
//! every transaction that writes the directory first takes
//! [`DIRECTORY_LOCK`], a transaction advisory lock: directory writers run
//! one at a time on every host, and a number is drawn only under the lock,
//! which is released after the commit is visible. Readers never wait for
//! it.
//!
//! A transaction's writes are gathered by a [`Writer`] and sent together:
//! one statement each for the changes, the people and their groups,
//! whether one person changes or ten thousand.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use deadpool_postgres::{GenericClient, Object, Transaction};
use tokio_postgres::IsolationLevel;

use super::{PgState, Sequence};
use crate::directory::{
    Change, GroupPut, GroupRecord, GroupWrite, Key, Members, Person, PersonChange, Put,
    UpsertReport,
};
use crate::state::store::PersonEdit;
use crate::state::{StateError, now_ms};

/// The transaction advisory lock every directory write holds (`'dirs'`).
const DIRECTORY_LOCK: i64 = 0x6469_7273;

const PERSON_COLUMNS: &str = "id, enabled, population, attributes::text, deleted, changed_seq";

/// A transaction that holds [`DIRECTORY_LOCK`].
async fn locked<'c>(db: &PgState, client: &'c mut Object) -> Result<Transaction<'c>, StateError> {
    let transaction = client.transaction().await.map_err(|e| db.error(e))?;
    db.exec(
        &transaction,
        "SELECT pg_advisory_xact_lock($1)",
        &[&DIRECTORY_LOCK],
    )
    .await?;
    Ok(transaction)
}

/// A read-only transaction over one snapshot.
async fn snapshot<'c>(db: &PgState, client: &'c mut Object) -> Result<Transaction<'c>, StateError> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(|e| db.error(e))
}

/// The people with these ids, with their groups, by id; unknown ids are
/// left out.
async fn load_many(
    db: &PgState,
    client: &impl GenericClient,
    ids: &[&str],
) -> Result<BTreeMap<String, Person>, StateError> {
    let rows = db
        .rows(
            client,
            &format!("SELECT {PERSON_COLUMNS} FROM people WHERE id = ANY($1)"),
            &[&ids],
        )
        .await?;
    let mut people = BTreeMap::new();
    for row in &rows {
        let person = person_of(db, row)?;
        people.insert(person.id.clone(), person);
    }
    let rows = db
        .rows(
            client,
            "SELECT person_id, group_name FROM members WHERE person_id = ANY($1)",
            &[&ids],
        )
        .await?;
    for row in &rows {
        let id: &str = db.get(row, 0)?;
        if let Some(person) = people.get_mut(id) {
            person.groups.insert(db.get(row, 1)?);
        }
    }
    Ok(people)
}

fn person_of(db: &PgState, row: &tokio_postgres::Row) -> Result<Person, StateError> {
    let attributes: String = db.get(row, 3)?;
    Ok(Person {
        id: db.get(row, 0)?,
        enabled: db.get(row, 1)?,
        population: db.get(row, 2)?,
        attributes: serde_json::from_str(&attributes).unwrap_or_default(),
        groups: BTreeSet::new(),
        deleted: db.get(row, 4)?,
        changed_seq: db.get(row, 5)?,
    })
}

/// The writes of one locked transaction: people as they stand in it, and
/// the changes not yet sent.
struct Writer<'t, 'c> {
    db: &'t PgState,
    transaction: &'t Transaction<'c>,
    source: &'t str,
    /// Everyone read or written in the transaction; `None`: no such id.
    known: HashMap<String, Option<Person>>,
    /// Changes not yet sent, in order: (person, kind).
    pending: Vec<(String, String)>,
    /// People whose row is to be written.
    dirty: BTreeSet<String>,
    /// Groups whose members changed, with how many writes changed them:
    /// a group's version covers its members, so that a client holding a
    /// group read before someone joined or left it cannot write it back
    /// over them (`put_group` checks the version). Each write counts
    /// once per group it joins or leaves, as on SQLite.
    bumps: BTreeMap<String, i64>,
}

impl<'t, 'c> Writer<'t, 'c> {
    fn new(db: &'t PgState, transaction: &'t Transaction<'c>, source: &'t str) -> Self {
        Writer {
            db,
            transaction,
            source,
            known: HashMap::new(),
            pending: Vec::new(),
            dirty: BTreeSet::new(),
            bumps: BTreeMap::new(),
        }
    }

    /// Reads the people not yet known, in one round trip.
    async fn preload<'a>(
        &mut self,
        ids: impl IntoIterator<Item = &'a String>,
    ) -> Result<(), StateError> {
        let wanted: Vec<&str> = ids
            .into_iter()
            .filter(|id| !self.known.contains_key(id.as_str()))
            .map(String::as_str)
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let mut found = load_many(self.db, self.transaction, &wanted).await?;
        for id in wanted {
            self.known.insert(id.to_string(), found.remove(id));
        }
        Ok(())
    }

    /// One person as they stand in the transaction.
    async fn person(&mut self, id: &str) -> Result<Option<Person>, StateError> {
        if !self.known.contains_key(id) {
            let id = id.to_string();
            self.preload([&id]).await?;
        }
        Ok(self.known.get(id).cloned().flatten())
    }

    /// Writes a person whole, as one change of kind `kind`. The person
    /// was read in this transaction first: their groups before the write
    /// are the ones known.
    fn write(&mut self, person: Person, kind: &str) {
        let before = self
            .known
            .get(&person.id)
            .and_then(Option::as_ref)
            .map(|p| p.groups.clone())
            .unwrap_or_default();
        for group in before.symmetric_difference(&person.groups) {
            *self.bumps.entry(group.clone()).or_default() += 1;
        }
        self.pending.push((person.id.clone(), kind.to_string()));
        self.dirty.insert(person.id.clone());
        self.known.insert(person.id.clone(), Some(person));
    }

    /// Edits the groups of one live person, as one change; a person who is
    /// not live is skipped. Whether they were live.
    async fn regroup(
        &mut self,
        id: &str,
        kind: &str,
        edit: impl FnOnce(&mut BTreeSet<String>),
    ) -> Result<bool, StateError> {
        let Some(mut person) = self.person(id).await?.filter(|p| !p.deleted) else {
            return Ok(false);
        };
        let before = person.groups.clone();
        edit(&mut person.groups);
        if person.groups != before {
            self.write(person, kind);
        }
        Ok(true)
    }

    /// The ids of a group's members as the transaction stands.
    async fn members_in(&mut self, group: &str) -> Result<BTreeSet<String>, StateError> {
        self.flush().await?;
        let rows = self
            .db
            .rows(
                self.transaction,
                "SELECT person_id FROM members WHERE group_name = $1",
                &[&group],
            )
            .await?;
        rows.iter().map(|row| self.db.get(row, 0)).collect()
    }

    /// Sends the pending changes: their numbers, drawn in order under the
    /// lock, then the changes, the people's rows and their groups. The
    /// sequence number of the last change, if any.
    async fn flush(&mut self) -> Result<Option<i64>, StateError> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let db = self.db;
        let seqs = db
            .draw(self.transaction, Sequence::Changes, self.pending.len())
            .await?;
        let pending = std::mem::take(&mut self.pending);
        let people: Vec<&str> = pending.iter().map(|(id, _)| id.as_str()).collect();
        let kinds: Vec<&str> = pending.iter().map(|(_, kind)| kind.as_str()).collect();
        db.exec(
            self.transaction,
            "INSERT INTO changes (seq, person_id, kind, at, source)
             SELECT s, p, k, $4, $5 FROM UNNEST($1::bigint[], $2::text[], $3::text[]) AS u(s, p, k)",
            &[&seqs, &people, &kinds, &now_ms(), &self.source],
        )
        .await?;
        for ((id, _), seq) in pending.iter().zip(&seqs) {
            if let Some(Some(person)) = self.known.get_mut(id) {
                person.changed_seq = *seq;
            }
        }
        let dirty = std::mem::take(&mut self.dirty);
        let written: Vec<&Person> = dirty
            .iter()
            .filter_map(|id| self.known.get(id).and_then(Option::as_ref))
            .collect();
        let ids: Vec<&str> = written.iter().map(|p| p.id.as_str()).collect();
        let enabled: Vec<bool> = written.iter().map(|p| p.enabled).collect();
        let populations: Vec<Option<&str>> =
            written.iter().map(|p| p.population.as_deref()).collect();
        let attributes: Vec<String> = written
            .iter()
            .map(|p| serde_json::to_string(&p.attributes).unwrap_or_else(|_| "{}".into()))
            .collect();
        let deleted: Vec<bool> = written.iter().map(|p| p.deleted).collect();
        let changed: Vec<i64> = written.iter().map(|p| p.changed_seq).collect();
        db.exec(
            self.transaction,
            "INSERT INTO people (id, enabled, population, attributes, deleted, changed_seq)
             SELECT i, e, p, a::jsonb, d, s FROM UNNEST(
                 $1::text[], $2::bool[], $3::text[], $4::text[], $5::bool[], $6::bigint[]
             ) AS u(i, e, p, a, d, s)
             ON CONFLICT (id) DO UPDATE SET enabled = EXCLUDED.enabled,
             population = EXCLUDED.population, attributes = EXCLUDED.attributes,
             deleted = EXCLUDED.deleted, changed_seq = EXCLUDED.changed_seq",
            &[
                &ids,
                &enabled,
                &populations,
                &attributes,
                &deleted,
                &changed,
            ],
        )
        .await?;
        db.exec(
            self.transaction,
            "DELETE FROM members WHERE person_id = ANY($1)",
            &[&ids],
        )
        .await?;
        let mut groups = Vec::new();
        let mut members = Vec::new();
        for person in &written {
            for group in &person.groups {
                groups.push(group.as_str());
                members.push(person.id.as_str());
            }
        }
        if !groups.is_empty() {
            db.exec(
                self.transaction,
                "INSERT INTO members (group_name, person_id) SELECT * FROM UNNEST($1::text[], $2::text[])",
                &[&groups, &members],
            )
            .await?;
        }
        let bumps = std::mem::take(&mut self.bumps);
        if !bumps.is_empty() {
            let names: Vec<&str> = bumps.keys().map(String::as_str).collect();
            let counts: Vec<i64> = bumps.values().copied().collect();
            db.exec(
                self.transaction,
                "UPDATE directory_groups g SET version = g.version + b.n, changed_at = $3
                 FROM UNNEST($1::text[], $2::bigint[]) AS b(name, n) WHERE g.name = b.name",
                &[&names, &counts, &now_ms()],
            )
            .await?;
        }
        Ok(seqs.last().copied())
    }
}

pub(super) async fn upsert(
    db: &PgState,
    changes: &[PersonChange],
    source: &str,
) -> Result<UpsertReport, StateError> {
    let mut client = db.client().await?;
    let transaction = locked(db, &mut client).await?;
    let mut writer = Writer::new(db, &transaction, source);
    writer.preload(changes.iter().map(|c| &c.id)).await?;
    let mut report = UpsertReport::default();
    for change in changes {
        let existing = writer.person(&change.id).await?;
        let Some((person, created)) = change.apply(existing) else {
            report.unchanged += 1;
            continue;
        };
        writer.write(person, if created { "create" } else { "update" });
        if created {
            report.created += 1;
        } else {
            report.changed += 1;
        }
    }
    writer.flush().await?;
    transaction.commit().await.map_err(|e| db.error(e))?;
    Ok(report)
}

pub(super) async fn modify(
    db: &PgState,
    id: &str,
    kind: &str,
    source: &str,
    edit: PersonEdit,
) -> Result<Option<bool>, StateError> {
    let mut client = db.client().await?;
    let transaction = locked(db, &mut client).await?;
    let mut writer = Writer::new(db, &transaction, source);
    let Some(mut person) = writer.person(id).await?.filter(|p| !p.deleted) else {
        return Ok(None);
    };
    let before = person.clone();
    edit(&mut person);
    if person == before {
        return Ok(Some(false));
    }
    writer.write(person, kind);
    writer.flush().await?;
    transaction.commit().await.map_err(|e| db.error(e))?;
    Ok(Some(true))
}

pub(super) async fn purge(db: &PgState, id: &str) -> Result<(), StateError> {
    let mut client = db.client().await?;
    let transaction = locked(db, &mut client).await?;
    db.exec(
        &transaction,
        "DELETE FROM people WHERE id = $1 AND deleted AND NOT EXISTS (SELECT 1 FROM links WHERE person_id = $1)",
        &[&id],
    )
    .await?;
    transaction.commit().await.map_err(|e| db.error(e))
}

pub(super) async fn people_after(
    db: &PgState,
    after: Option<&str>,
    limit: Option<usize>,
) -> Result<Vec<Person>, StateError> {
    let mut client = db.client().await?;
    // The people and their groups from one snapshot.
    let snapshot = snapshot(db, &mut client).await?;
    let limit = limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    let after = after.unwrap_or("");
    let rows = db
        .rows(
            &snapshot,
            &format!("SELECT {PERSON_COLUMNS} FROM people WHERE id > $1 ORDER BY id LIMIT $2"),
            &[&after, &limit],
        )
        .await?;
    let mut people = rows
        .iter()
        .map(|row| person_of(db, row))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(last) = people.last().map(|p| p.id.clone()) else {
        return Ok(people);
    };
    let rows = db
        .rows(
            &snapshot,
            "SELECT person_id, group_name FROM members WHERE person_id > $1 AND person_id <= $2 ORDER BY person_id",
            &[&after, &last],
        )
        .await?;
    // Both are in id order: walk them side by side.
    let mut at = 0;
    for row in &rows {
        let person: &str = db.get(row, 0)?;
        while at < people.len() && people[at].id.as_str() < person {
            at += 1;
        }
        if let Some(p) = people.get_mut(at)
            && p.id == person
        {
            p.groups.insert(db.get(row, 1)?);
        }
    }
    snapshot.commit().await.map_err(|e| db.error(e))?;
    Ok(people)
}

/// Some people by id, in id order, from one snapshot and one statement
/// each for the people and their groups.
pub(super) async fn people_among(
    db: &PgState,
    ids: &BTreeSet<String>,
) -> Result<Vec<Person>, StateError> {
    let mut client = db.client().await?;
    let snapshot = snapshot(db, &mut client).await?;
    let wanted: Vec<&str> = ids.iter().map(String::as_str).collect();
    let people = load_many(db, &snapshot, &wanted).await?;
    snapshot.commit().await.map_err(|e| db.error(e))?;
    Ok(people.into_values().collect())
}

async fn ids(
    db: &PgState,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<BTreeSet<String>, StateError> {
    let rows = db.query(sql, params).await?;
    rows.iter().map(|row| db.get(row, 0)).collect()
}

pub(super) async fn live_ids(db: &PgState) -> Result<BTreeSet<String>, StateError> {
    ids(db, "SELECT id FROM people WHERE NOT deleted", &[]).await
}

pub(super) async fn members_of(db: &PgState, group: &str) -> Result<BTreeSet<String>, StateError> {
    ids(
        db,
        "SELECT person_id FROM members WHERE group_name = $1",
        &[&group],
    )
    .await
}

pub(super) async fn group_names(db: &PgState) -> Result<BTreeSet<String>, StateError> {
    ids(db, "SELECT DISTINCT group_name FROM members", &[]).await
}

pub(super) async fn last_seq(db: &PgState) -> Result<i64, StateError> {
    let rows = db
        .query("SELECT COALESCE(MAX(seq), 0)::bigint FROM changes", &[])
        .await?;
    match rows.first() {
        Some(row) => db.get(row, 0),
        None => Ok(0),
    }
}

pub(super) async fn changed_since(db: &PgState, seq: i64) -> Result<BTreeSet<String>, StateError> {
    ids(
        db,
        "SELECT DISTINCT person_id FROM changes WHERE seq > $1",
        &[&seq],
    )
    .await
}

/// Live people whose SCIM userName is `$1`, compared without case (ASCII
/// only, as SQLite's `lower`): their `user_name`, or for someone without
/// one their email, else their id. Each term matches an index.
const BY_USER_NAME: &str = r#"SELECT id FROM people WHERE NOT deleted AND (
        lower((attributes->>'user_name') COLLATE "C") = lower($1 COLLATE "C")
     OR (lower((attributes->>'email') COLLATE "C") = lower($1 COLLATE "C")
         AND attributes->>'user_name' IS NULL)
     OR (id = $1 AND attributes->>'user_name' IS NULL AND attributes->>'email' IS NULL))"#;

pub(super) async fn put(
    db: &PgState,
    person: &Person,
    expected: Option<i64>,
    kind: &str,
    source: &str,
) -> Result<Put, StateError> {
    let mut client = db.client().await?;
    let transaction = locked(db, &mut client).await?;
    let mut writer = Writer::new(db, &transaction, source);
    let current = writer.person(&person.id).await?.filter(|p| !p.deleted);
    if current.as_ref().map(|p| p.changed_seq) != expected {
        return Ok(Put::Stale);
    }
    if let Some(current) = &current {
        let mut same = person.clone();
        same.changed_seq = current.changed_seq;
        if &same == current {
            return Ok(Put::Unchanged(same));
        }
    }
    if !person.deleted
        && let Some(user_name) = person.attributes.get("user_name")
    {
        let rows = db
            .rows(
                &transaction,
                &format!("{BY_USER_NAME} AND id <> $2 LIMIT 1"),
                &[user_name, &person.id],
            )
            .await?;
        if let Some(row) = rows.first() {
            return Ok(Put::Taken(db.get(row, 0)?));
        }
    }
    writer.write(person.clone(), kind);
    let seq = writer.flush().await?;
    transaction.commit().await.map_err(|e| db.error(e))?;
    let mut written = person.clone();
    written.changed_seq = seq.unwrap_or(person.changed_seq);
    Ok(Put::Written(written))
}

pub(super) async fn people_by(
    db: &PgState,
    key: Key,
    value: &str,
) -> Result<Vec<Person>, StateError> {
    let sql = match key {
        Key::UserName => BY_USER_NAME,
        Key::ExternalId => {
            "SELECT id FROM people WHERE NOT deleted AND attributes->>'external_id' = $1"
        }
    };
    let found = ids(db, sql, &[&value]).await?;
    let mut people = people_among(db, &found).await?;
    people.retain(|p| !p.deleted);
    Ok(people)
}

fn change_of(db: &PgState, row: &tokio_postgres::Row) -> Result<Change, StateError> {
    Ok(Change {
        seq: db.get(row, 0)?,
        person_id: db.get(row, 1)?,
        kind: db.get(row, 2)?,
        at: db.get(row, 3)?,
        source: db.get(row, 4)?,
    })
}

pub(super) async fn change(db: &PgState, seq: i64) -> Result<Option<Change>, StateError> {
    let rows = db
        .query(
            "SELECT seq, person_id, kind, at, source FROM changes WHERE seq = $1",
            &[&seq],
        )
        .await?;
    rows.first().map(|row| change_of(db, row)).transpose()
}

pub(super) async fn changes(
    db: &PgState,
    person: Option<&str>,
    since: Option<i64>,
    limit: usize,
) -> Result<Vec<Change>, StateError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = db
        .query(
            "SELECT seq, person_id, kind, at, source FROM changes
             WHERE ($1::text IS NULL OR person_id = $1) AND ($2::bigint IS NULL OR at >= $2)
             ORDER BY seq DESC LIMIT $3",
            &[&person, &since, &limit],
        )
        .await?;
    rows.iter().map(|row| change_of(db, row)).collect()
}

const GROUP_COLUMNS: &str = "id, name, external_id, created_at, changed_at, version";

fn record_of(db: &PgState, row: &tokio_postgres::Row) -> Result<GroupRecord, StateError> {
    Ok(GroupRecord {
        id: db.get(row, 0)?,
        name: db.get(row, 1)?,
        external_id: db.get(row, 2)?,
        created_at: db.get(row, 3)?,
        changed_at: db.get(row, 4)?,
        version: db.get(row, 5)?,
    })
}

pub(super) async fn group_records(db: &PgState) -> Result<Vec<GroupRecord>, StateError> {
    let rows = db
        .query(
            &format!("SELECT {GROUP_COLUMNS} FROM directory_groups ORDER BY name"),
            &[],
        )
        .await?;
    rows.iter().map(|row| record_of(db, row)).collect()
}

pub(super) async fn put_group(
    db: &PgState,
    write: &GroupWrite,
    source: &str,
) -> Result<GroupPut, StateError> {
    let mut client = db.client().await?;
    let transaction = locked(db, &mut client).await?;
    let mut writer = Writer::new(db, &transaction, source);
    let record = &write.record;
    let rows = db
        .rows(
            &transaction,
            &format!("SELECT {GROUP_COLUMNS} FROM directory_groups WHERE id = $1"),
            &[&record.id],
        )
        .await?;
    let current = rows.first().map(|row| record_of(db, row)).transpose()?;
    if current.as_ref().map(|r| r.version) != write.expected {
        return Ok(GroupPut::Stale);
    }
    let taken = !db
        .rows(
            &transaction,
            "SELECT id FROM directory_groups WHERE name = $1 AND id <> $2",
            &[&record.name, &record.id],
        )
        .await?
        .is_empty();
    // A name that people carry without a record is a group too: taking
    // it would merge the two.
    let renamed = current.as_ref().map(|r| r.name.as_str()) != Some(record.name.as_str())
        && write.renamed_from.as_deref() != Some(record.name.as_str());
    let carried = renamed
        && !db
            .rows(
                &transaction,
                "SELECT 1 FROM members WHERE group_name = $1 LIMIT 1",
                &[&record.name],
            )
            .await?
            .is_empty();
    if taken || carried {
        return Ok(GroupPut::Taken);
    }
    let name = record.name.clone();
    if let Some(old) = write.renamed_from.as_ref().filter(|old| **old != name) {
        let members = writer.members_in(old).await?;
        writer.preload(&members).await?;
        for id in &members {
            writer
                .regroup(id, "rename-group", |groups| {
                    groups.remove(old);
                    groups.insert(name.clone());
                })
                .await?;
        }
    }
    let (add, remove) = match &write.members {
        Members::Keep => (BTreeSet::new(), BTreeSet::new()),
        Members::Edit { add, remove } => (add.clone(), remove.clone()),
        Members::Replace(wanted) => {
            let now = writer.members_in(&name).await?;
            (
                wanted.difference(&now).cloned().collect(),
                now.difference(wanted).cloned().collect(),
            )
        }
    };
    writer.preload(add.iter().chain(&remove)).await?;
    for id in &add {
        let joined = writer
            .regroup(id, "join", |groups| {
                groups.insert(name.clone());
            })
            .await?;
        if !joined {
            return Ok(GroupPut::NoPerson(id.clone()));
        }
    }
    for id in remove.difference(&add) {
        writer
            .regroup(id, "leave", |groups| {
                groups.remove(&name);
            })
            .await?;
    }
    writer.flush().await?;
    let version = current.as_ref().map_or(1, |r| r.version + 1);
    let written = GroupRecord {
        version,
        changed_at: now_ms(),
        created_at: current.as_ref().map_or(now_ms(), |r| r.created_at),
        ..record.clone()
    };
    db.exec(
        &transaction,
        "INSERT INTO directory_groups (id, name, external_id, created_at, changed_at, version)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, external_id = EXCLUDED.external_id,
         changed_at = EXCLUDED.changed_at, version = EXCLUDED.version",
        &[
            &written.id,
            &written.name,
            &written.external_id,
            &written.created_at,
            &written.changed_at,
            &written.version,
        ],
    )
    .await?;
    transaction.commit().await.map_err(|e| db.error(e))?;
    Ok(GroupPut::Written(written))
}

pub(super) async fn delete_group(
    db: &PgState,
    id: &str,
    name: &str,
    source: &str,
) -> Result<bool, StateError> {
    let mut client = db.client().await?;
    let transaction = locked(db, &mut client).await?;
    let mut writer = Writer::new(db, &transaction, source);
    let mut found = db
        .exec(
            &transaction,
            "DELETE FROM directory_groups WHERE id = $1",
            &[&id],
        )
        .await?
        > 0;
    let members = writer.members_in(name).await?;
    writer.preload(&members).await?;
    for person in &members {
        found |= writer
            .regroup(person, "leave", |groups| {
                groups.remove(name);
            })
            .await?;
    }
    writer.flush().await?;
    transaction.commit().await.map_err(|e| db.error(e))?;
    Ok(found)
}
