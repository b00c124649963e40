//! The source directory's tables: people, their groups, and the changes
//! the scheduler follows.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{StateDb, write_transaction};
use crate::directory::{
    Change, GroupPut, GroupRecord, GroupWrite, Key, Members, Person, PersonChange, Put,
    UpsertReport,
};
use crate::state::{READ_ONE_BY_ONE, StateError, now_ms};

fn attributes_json(attributes: &BTreeMap<String, String>) -> String {
    serde_json::to_string(attributes).unwrap_or_else(|_| "{}".into())
}

type PersonRow = (String, bool, Option<String>, String, bool, i64);

fn row_to_person(row: &rusqlite::Row<'_>) -> rusqlite::Result<PersonRow> {
    Ok((
        row.get(0)?,
        row.get::<_, i64>(1)? != 0,
        row.get(2)?,
        row.get(3)?,
        row.get::<_, i64>(4)? != 0,
        row.get(5)?,
    ))
}

fn person_of(row: PersonRow, groups: BTreeSet<String>) -> Person {
    let (id, enabled, population, attributes, deleted, changed_seq) = row;
    Person {
        attributes: serde_json::from_str(&attributes).unwrap_or_default(),
        id,
        enabled,
        population,
        groups,
        deleted,
        changed_seq,
    }
}

fn load(connection: &Connection, id: &str) -> rusqlite::Result<Option<Person>> {
    let row = connection
        .prepare_cached(
            "SELECT id, enabled, population, attributes, deleted, changed_seq FROM people WHERE id = ?1",
        )?
        .query_row(params![id], row_to_person)
        .optional()?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut statement = connection.prepare_cached(
        "SELECT group_name FROM members WHERE person_id = ?1 ORDER BY group_name",
    )?;
    let groups = statement
        .query_map(params![id], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<BTreeSet<_>>>()?;
    Ok(Some(person_of(row, groups)))
}

fn record_change(
    transaction: &Transaction<'_>,
    id: &str,
    kind: &str,
    source: &str,
) -> rusqlite::Result<i64> {
    transaction.execute(
        "INSERT INTO changes (person_id, kind, at, source) VALUES (?1, ?2, ?3, ?4)",
        params![id, kind, now_ms(), source],
    )?;
    Ok(transaction.last_insert_rowid())
}

fn write(
    transaction: &Transaction<'_>,
    person: &Person,
    kind: &str,
    source: &str,
) -> rusqlite::Result<i64> {
    let seq = record_change(transaction, &person.id, kind, source)?;
    transaction.execute(
        "INSERT INTO people (id, enabled, population, attributes, deleted, changed_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO UPDATE SET enabled = ?2, population = ?3, attributes = ?4, deleted = ?5, changed_seq = ?6",
        params![
            person.id,
            person.enabled as i64,
            person.population,
            attributes_json(&person.attributes),
            person.deleted as i64,
            seq
        ],
    )?;
    let before: BTreeSet<String> = transaction
        .prepare_cached("DELETE FROM members WHERE person_id = ?1 RETURNING group_name")?
        .query_map(params![person.id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut insert = transaction
        .prepare_cached("INSERT INTO members (group_name, person_id) VALUES (?1, ?2)")?;
    for group in &person.groups {
        insert.execute(params![group, person.id])?;
    }
    // A group's version covers its members, so that a client holding a
    // group read before someone joined or left it cannot write it back
    // over them (`put_group` checks the version).
    let mut bump = transaction.prepare_cached(
        "UPDATE directory_groups SET version = version + 1, changed_at = ?2 WHERE name = ?1",
    )?;
    for group in before.symmetric_difference(&person.groups) {
        bump.execute(params![group, now_ms()])?;
    }
    Ok(seq)
}

pub(super) fn upsert(
    db: &StateDb,
    changes: &[PersonChange],
    source: &str,
) -> Result<UpsertReport, StateError> {
    let mut connection = db.lock();
    let transaction = write_transaction(&mut connection).map_err(|e| db.error(e))?;
    let mut report = UpsertReport::default();
    for change in changes {
        let existing = load(&transaction, &change.id).map_err(|e| db.error(e))?;
        let Some((person, created)) = change.apply(existing) else {
            report.unchanged += 1;
            continue;
        };
        let kind = if created { "create" } else { "update" };
        write(&transaction, &person, kind, source).map_err(|e| db.error(e))?;
        if created {
            report.created += 1;
        } else {
            report.changed += 1;
        }
    }
    transaction.commit().map_err(|e| db.error(e))?;
    Ok(report)
}

pub(super) fn modify(
    db: &StateDb,
    id: &str,
    kind: &str,
    source: &str,
    edit: Box<dyn FnOnce(&mut Person) + Send>,
) -> Result<Option<bool>, StateError> {
    let mut connection = db.lock();
    let transaction = write_transaction(&mut connection).map_err(|e| db.error(e))?;
    let Some(mut person) = load(&transaction, id)
        .map_err(|e| db.error(e))?
        .filter(|p| !p.deleted)
    else {
        return Ok(None);
    };
    let before = person.clone();
    edit(&mut person);
    if person == before {
        return Ok(Some(false));
    }
    write(&transaction, &person, kind, source).map_err(|e| db.error(e))?;
    transaction.commit().map_err(|e| db.error(e))?;
    Ok(Some(true))
}

pub(super) fn purge(db: &StateDb, id: &str) -> Result<(), StateError> {
    db.lock()
        .execute(
            "DELETE FROM people WHERE id = ?1 AND deleted = 1 AND NOT EXISTS (SELECT 1 FROM links WHERE person_id = ?1)",
            params![id],
        )
        .map_err(|e| db.error(e))?;
    Ok(())
}

pub(super) fn people_after(
    db: &StateDb,
    after: Option<&str>,
    limit: Option<usize>,
) -> Result<Vec<Person>, StateError> {
    let fail = |e| db.error(e);
    let mut connection = db.lock();
    // A read transaction: the people and their groups from one snapshot.
    let snapshot = connection.transaction().map_err(fail)?;
    // SQLite reads a negative LIMIT as none.
    let limit = limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let after = after.unwrap_or("");
    let mut people = Vec::new();
    {
        let mut statement = snapshot
            .prepare_cached(
                "SELECT id, enabled, population, attributes, deleted, changed_seq FROM people WHERE id > ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(fail)?;
        let rows = statement
            .query_map(params![after, limit], row_to_person)
            .map_err(fail)?;
        for row in rows {
            people.push(person_of(row.map_err(fail)?, BTreeSet::new()));
        }
    }
    let Some(last) = people.last().map(|p| p.id.clone()) else {
        return Ok(people);
    };
    let mut statement = snapshot
        .prepare_cached(
            "SELECT person_id, group_name FROM members WHERE person_id > ?1 AND person_id <= ?2 ORDER BY person_id",
        )
        .map_err(fail)?;
    let rows = statement
        .query_map(params![after, last], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(fail)?;
    // Both are in id order: walk them side by side.
    let mut at = 0;
    for row in rows {
        let (person, group) = row.map_err(fail)?;
        while at < people.len() && people[at].id < person {
            at += 1;
        }
        if let Some(p) = people.get_mut(at)
            && p.id == person
        {
            p.groups.insert(group);
        }
    }
    Ok(people)
}

pub(super) fn people_among(
    db: &StateDb,
    ids: &BTreeSet<String>,
) -> Result<Vec<Person>, StateError> {
    if ids.len() > READ_ONE_BY_ONE {
        let mut people = people_after(db, None, None)?;
        people.retain(|p| ids.contains(&p.id));
        return Ok(people);
    }
    let fail = |e| db.error(e);
    let mut connection = db.lock();
    // A read transaction: one snapshot for everyone read.
    let snapshot = connection.transaction().map_err(fail)?;
    let mut people = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(person) = load(&snapshot, id).map_err(fail)? {
            people.push(person);
        }
    }
    Ok(people)
}

fn ids(
    db: &StateDb,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<BTreeSet<String>, StateError> {
    let connection = db.lock();
    let fail = |e| db.error(e);
    let mut statement = connection.prepare_cached(sql).map_err(fail)?;
    statement
        .query_map(params, |r| r.get::<_, String>(0))
        .map_err(fail)?
        .collect::<rusqlite::Result<BTreeSet<_>>>()
        .map_err(fail)
}

pub(super) fn live_ids(db: &StateDb) -> Result<BTreeSet<String>, StateError> {
    ids(db, "SELECT id FROM people WHERE deleted = 0", [])
}

pub(super) fn members_of(db: &StateDb, group: &str) -> Result<BTreeSet<String>, StateError> {
    ids(
        db,
        "SELECT person_id FROM members WHERE group_name = ?1",
        params![group],
    )
}

pub(super) fn group_names(db: &StateDb) -> Result<BTreeSet<String>, StateError> {
    ids(db, "SELECT DISTINCT group_name FROM members", [])
}

pub(super) fn last_seq(db: &StateDb) -> Result<i64, StateError> {
    db.lock()
        .query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| {
            r.get(0)
        })
        .map_err(|e| db.error(e))
}

pub(super) fn changed_since(db: &StateDb, seq: i64) -> Result<BTreeSet<String>, StateError> {
    ids(
        db,
        "SELECT DISTINCT person_id FROM changes WHERE seq > ?1",
        params![seq],
    )
}

/// Live people whose SCIM userName is `?1`, compared without case: their
/// `user_name`, or for someone without one their email, else their id
/// (see `scim::user::standing_user_name`). Each term has an index, and
/// repeats `deleted = 0` so that SQLite may use the partial ones.
const BY_USER_NAME: &str = "SELECT id FROM people WHERE (
        (deleted = 0 AND lower(json_extract(attributes, '$.user_name')) = lower(?1))
     OR (deleted = 0 AND lower(json_extract(attributes, '$.email')) = lower(?1)
         AND json_extract(attributes, '$.user_name') IS NULL)
     OR (id = ?1 AND deleted = 0 AND json_extract(attributes, '$.user_name') IS NULL
         AND json_extract(attributes, '$.email') IS NULL))";

/// The live person other than `id` whose userName is `user_name`.
fn holder(connection: &Connection, user_name: &str, id: &str) -> rusqlite::Result<Option<String>> {
    connection
        .prepare_cached(&format!("{BY_USER_NAME} AND id <> ?2 LIMIT 1"))?
        .query_row(params![user_name, id], |r| r.get(0))
        .optional()
}

pub(super) fn put(
    db: &StateDb,
    person: &Person,
    expected: Option<i64>,
    kind: &str,
    source: &str,
) -> Result<Put, StateError> {
    let fail = |e| db.error(e);
    let mut connection = db.lock();
    let transaction = write_transaction(&mut connection).map_err(fail)?;
    let current = load(&transaction, &person.id)
        .map_err(fail)?
        .filter(|p| !p.deleted);
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
        && let Some(other) = holder(&transaction, user_name, &person.id).map_err(fail)?
    {
        return Ok(Put::Taken(other));
    }
    let seq = write(&transaction, person, kind, source).map_err(fail)?;
    transaction.commit().map_err(fail)?;
    let mut written = person.clone();
    written.changed_seq = seq;
    Ok(Put::Written(written))
}

pub(super) fn people_by(db: &StateDb, key: Key, value: &str) -> Result<Vec<Person>, StateError> {
    let fail = |e| db.error(e);
    let sql = match key {
        Key::UserName => BY_USER_NAME,
        Key::ExternalId => {
            "SELECT id FROM people WHERE deleted = 0
             AND json_extract(attributes, '$.external_id') = ?1"
        }
    };
    let found = ids(db, sql, params![value])?;
    let mut connection = db.lock();
    let snapshot = connection.transaction().map_err(fail)?;
    let mut people = Vec::with_capacity(found.len());
    for id in &found {
        if let Some(person) = load(&snapshot, id).map_err(fail)?.filter(|p| !p.deleted) {
            people.push(person);
        }
    }
    Ok(people)
}

pub(super) fn change(db: &StateDb, seq: i64) -> Result<Option<Change>, StateError> {
    db.lock()
        .prepare_cached("SELECT seq, person_id, kind, at, source FROM changes WHERE seq = ?1")
        .and_then(|mut statement| statement.query_row(params![seq], change_of).optional())
        .map_err(|e| db.error(e))
}

fn change_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Change> {
    Ok(Change {
        seq: r.get(0)?,
        person_id: r.get(1)?,
        kind: r.get(2)?,
        at: r.get(3)?,
        source: r.get(4)?,
    })
}

pub(super) fn changes(
    db: &StateDb,
    person: Option<&str>,
    since: Option<i64>,
    limit: usize,
) -> Result<Vec<Change>, StateError> {
    let fail = |e| db.error(e);
    let connection = db.lock();
    let mut statement = connection
        .prepare_cached(
            "SELECT seq, person_id, kind, at, source FROM changes
             WHERE (?1 IS NULL OR person_id = ?1) AND (?2 IS NULL OR at >= ?2)
             ORDER BY seq DESC LIMIT ?3",
        )
        .map_err(fail)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    statement
        .query_map(params![person, since, limit], change_of)
        .map_err(fail)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(fail)
}

fn record_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<GroupRecord> {
    Ok(GroupRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        external_id: row.get(2)?,
        created_at: row.get(3)?,
        changed_at: row.get(4)?,
        version: row.get(5)?,
    })
}

const GROUP_COLUMNS: &str = "id, name, external_id, created_at, changed_at, version";

pub(super) fn group_records(db: &StateDb) -> Result<Vec<GroupRecord>, StateError> {
    let connection = db.lock();
    let fail = |e| db.error(e);
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT {GROUP_COLUMNS} FROM directory_groups ORDER BY name"
        ))
        .map_err(fail)?;
    statement
        .query_map([], record_of)
        .map_err(fail)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(fail)
}

/// Edits the groups of one live person, as one change; a person who is
/// not live is skipped. Whether they were live.
fn regroup(
    transaction: &Transaction<'_>,
    id: &str,
    kind: &str,
    source: &str,
    edit: impl FnOnce(&mut BTreeSet<String>),
) -> rusqlite::Result<bool> {
    let Some(mut person) = load(transaction, id)?.filter(|p| !p.deleted) else {
        return Ok(false);
    };
    let before = person.groups.clone();
    edit(&mut person.groups);
    if person.groups != before {
        write(transaction, &person, kind, source)?;
    }
    Ok(true)
}

fn members_in(transaction: &Transaction<'_>, group: &str) -> rusqlite::Result<BTreeSet<String>> {
    let mut statement =
        transaction.prepare_cached("SELECT person_id FROM members WHERE group_name = ?1")?;
    statement
        .query_map(params![group], |r| r.get::<_, String>(0))?
        .collect()
}

pub(super) fn put_group(
    db: &StateDb,
    write: &GroupWrite,
    source: &str,
) -> Result<GroupPut, StateError> {
    let fail = |e| db.error(e);
    let mut connection = db.lock();
    let transaction = write_transaction(&mut connection).map_err(fail)?;
    let record = &write.record;
    let current: Option<GroupRecord> = transaction
        .prepare_cached(&format!(
            "SELECT {GROUP_COLUMNS} FROM directory_groups WHERE id = ?1"
        ))
        .and_then(|mut s| s.query_row(params![record.id], record_of).optional())
        .map_err(fail)?;
    if current.as_ref().map(|r| r.version) != write.expected {
        return Ok(GroupPut::Stale);
    }
    let taken: Option<String> = transaction
        .prepare_cached("SELECT id FROM directory_groups WHERE name = ?1 AND id <> ?2")
        .and_then(|mut s| {
            s.query_row(params![record.name, record.id], |r| r.get(0))
                .optional()
        })
        .map_err(fail)?;
    // A name that people carry without a record is a group too: taking
    // it would merge the two.
    let renamed = current.as_ref().map(|r| r.name.as_str()) != Some(record.name.as_str())
        && write.renamed_from.as_deref() != Some(record.name.as_str());
    let carried = renamed
        && transaction
            .prepare_cached("SELECT 1 FROM members WHERE group_name = ?1 LIMIT 1")
            .and_then(|mut s| s.exists(params![record.name]))
            .map_err(fail)?;
    if taken.is_some() || carried {
        return Ok(GroupPut::Taken);
    }
    let name = record.name.clone();
    if let Some(old) = write.renamed_from.as_ref().filter(|old| **old != name) {
        for id in members_in(&transaction, old).map_err(fail)? {
            regroup(&transaction, &id, "rename-group", source, |groups| {
                groups.remove(old);
                groups.insert(name.clone());
            })
            .map_err(fail)?;
        }
    }
    let (add, remove) = match &write.members {
        Members::Keep => (BTreeSet::new(), BTreeSet::new()),
        Members::Edit { add, remove } => (add.clone(), remove.clone()),
        Members::Replace(wanted) => {
            let now = members_in(&transaction, &name).map_err(fail)?;
            (
                wanted.difference(&now).cloned().collect(),
                now.difference(wanted).cloned().collect(),
            )
        }
    };
    for id in &add {
        let joined = regroup(&transaction, id, "join", source, |groups| {
            groups.insert(name.clone());
        })
        .map_err(fail)?;
        if !joined {
            return Ok(GroupPut::NoPerson(id.clone()));
        }
    }
    for id in remove.difference(&add) {
        regroup(&transaction, id, "leave", source, |groups| {
            groups.remove(&name);
        })
        .map_err(fail)?;
    }
    let version = current.as_ref().map_or(1, |r| r.version + 1);
    let written = GroupRecord {
        version,
        changed_at: now_ms(),
        created_at: current.as_ref().map_or(now_ms(), |r| r.created_at),
        ..record.clone()
    };
    transaction
        .execute(
            "INSERT INTO directory_groups (id, name, external_id, created_at, changed_at, version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET name = ?2, external_id = ?3, changed_at = ?5, version = ?6",
            params![
                written.id,
                written.name,
                written.external_id,
                written.created_at,
                written.changed_at,
                written.version
            ],
        )
        .map_err(fail)?;
    transaction.commit().map_err(fail)?;
    Ok(GroupPut::Written(written))
}

pub(super) fn delete_group(
    db: &StateDb,
    id: &str,
    name: &str,
    source: &str,
) -> Result<bool, StateError> {
    let fail = |e| db.error(e);
    let mut connection = db.lock();
    let transaction = write_transaction(&mut connection).map_err(fail)?;
    let mut found = transaction
        .execute("DELETE FROM directory_groups WHERE id = ?1", params![id])
        .map_err(fail)?
        > 0;
    for person in members_in(&transaction, name).map_err(fail)? {
        found |= regroup(&transaction, &person, "leave", source, |groups| {
            groups.remove(name);
        })
        .map_err(fail)?;
    }
    transaction.commit().map_err(fail)?;
    Ok(found)
}
