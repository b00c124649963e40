//! The source directory: people (a stable id, attributes, an enabled flag,
//! a population), groups with members, and a change sequence that the
//! scheduler follows.
//!
//! The model is SCIM's core User and Group, flattened: a SCIM 2.0 server
//! can sit on these methods later (a User is a person, `active` is
//! `enabled`, a Group is a group name with members). Every change that
//! alters a person appends to `changes` and stamps the person with the new
//! sequence number; a change that alters nothing records nothing, so a
//! re-import of the same file wakes no one.

pub mod import;

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;

use crate::state::{StateDb, StateError, now_ms};

/// Attributes every directory knows, named as SCIM's core schema names them
/// (snake_case). Others are declared under `[directory] attributes`.
pub const STANDARD_ATTRIBUTES: &[&str] = &[
    "given_name",
    "family_name",
    "middle_name",
    "display_name",
    "email",
    "phone",
    "mobile_phone",
    "title",
    "department",
    "company",
    "street",
    "city",
    "region",
    "postal_code",
    "country",
    "employee_number",
    "locale",
    "timezone",
];

const MAX_VALUE: usize = 4096;
const MAX_ID: usize = 256;

/// The attribute names people may carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeSchema {
    names: BTreeSet<String>,
}

impl Default for AttributeSchema {
    fn default() -> Self {
        AttributeSchema {
            names: STANDARD_ATTRIBUTES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

pub fn is_attribute_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl AttributeSchema {
    /// The standard attributes plus `extra`, which must be snake_case.
    pub fn with_extra<'a>(
        extra: impl IntoIterator<Item = &'a str>,
    ) -> Result<AttributeSchema, String> {
        let mut schema = AttributeSchema::default();
        for name in extra {
            if !is_attribute_name(name) {
                return Err(format!(
                    "attribute name {name:?} must be snake_case (a-z, 0-9, _), starting with a letter"
                ));
            }
            schema.names.insert(name.to_string());
        }
        Ok(schema)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// "unknown attribute ...; the directory knows: ..." for one name.
    pub fn unknown(&self, name: &str) -> String {
        let suggestion = self
            .names
            .iter()
            .map(|known| (strsim::damerau_levenshtein(name, known), known))
            .filter(|(distance, known)| *distance <= (known.len() / 3).max(1))
            .min()
            .map(|(_, known)| format!("; did you mean {known}?"))
            .unwrap_or_default();
        format!(
            "unknown attribute {name:?}{suggestion} (declare custom attributes under [directory] attributes in provisioner.toml)"
        )
    }
}

/// A person as the directory holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    pub id: String,
    pub enabled: bool,
    pub population: Option<String>,
    pub groups: BTreeSet<String>,
    pub attributes: BTreeMap<String, String>,
    /// A tombstone, kept until the person's records are removed.
    pub deleted: bool,
    pub changed_seq: i64,
}

/// A change to one person. `None` fields are left as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonChange {
    pub id: String,
    pub enabled: Option<bool>,
    pub population: Option<Option<String>>,
    /// Replace the person's groups with these.
    pub groups: Option<BTreeSet<String>>,
    /// Set (`Some`) or remove (`None`) attributes.
    pub attributes: BTreeMap<String, Option<String>>,
    /// Drop every attribute not in `attributes` (an import row is the
    /// whole person).
    pub replace_attributes: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("person {id:?}: {message}")]
    Invalid { id: String, message: String },
    #[error("no person {0:?} in the directory")]
    NoSuchPerson(String),
    #[error(transparent)]
    State(#[from] StateError),
}

/// What an upsert did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UpsertReport {
    pub created: usize,
    pub changed: usize,
    pub unchanged: usize,
}

pub fn check_id(id: &str) -> Result<(), String> {
    if id.trim().is_empty() {
        return Err("the id is empty".into());
    }
    if id.len() > MAX_ID {
        return Err(format!("the id is longer than {MAX_ID} bytes"));
    }
    if id.chars().any(char::is_control) || id != id.trim() {
        return Err("the id has control characters or surrounding spaces".into());
    }
    Ok(())
}

pub fn check_group(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "group name {name:?} may use letters, digits, - _ . (1 to 128)"
        ))
    }
}

/// The source directory, over the state file.
pub struct Directory<'a> {
    db: &'a StateDb,
    schema: AttributeSchema,
}

fn attributes_json(attributes: &BTreeMap<String, String>) -> String {
    serde_json::to_string(attributes).unwrap_or_else(|_| "{}".into())
}

fn row_to_person(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<(String, bool, Option<String>, String, bool, i64)> {
    Ok((
        row.get(0)?,
        row.get::<_, i64>(1)? != 0,
        row.get(2)?,
        row.get(3)?,
        row.get::<_, i64>(4)? != 0,
        row.get(5)?,
    ))
}

impl<'a> Directory<'a> {
    pub fn new(db: &'a StateDb, schema: AttributeSchema) -> Directory<'a> {
        Directory { db, schema }
    }

    pub fn schema(&self) -> &AttributeSchema {
        &self.schema
    }

    /// Checks a change against the schema and the limits; the message is
    /// for the operator and names the offending part.
    pub fn validate(&self, change: &PersonChange) -> Result<(), String> {
        check_id(&change.id)?;
        for (name, value) in &change.attributes {
            if !self.schema.contains(name) {
                return Err(self.schema.unknown(name));
            }
            if let Some(value) = value {
                if value.len() > MAX_VALUE {
                    return Err(format!("{name} is longer than {MAX_VALUE} bytes"));
                }
                if value.contains('\0') {
                    return Err(format!("{name} contains a NUL character"));
                }
            }
        }
        if let Some(groups) = &change.groups {
            for group in groups {
                check_group(group)?;
            }
        }
        if let Some(Some(population)) = &change.population {
            check_group(population).map_err(|e| e.replace("group name", "population"))?;
        }
        Ok(())
    }

    fn load(connection: &Connection, id: &str) -> rusqlite::Result<Option<Person>> {
        let row = connection
            .prepare_cached(
                "SELECT id, enabled, population, attributes, deleted, changed_seq FROM people WHERE id = ?1",
            )?
            .query_row(params![id], row_to_person)
            .optional()?;
        let Some((id, enabled, population, attributes, deleted, changed_seq)) = row else {
            return Ok(None);
        };
        let mut statement = connection.prepare_cached(
            "SELECT group_name FROM members WHERE person_id = ?1 ORDER BY group_name",
        )?;
        let groups = statement
            .query_map(params![id], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<BTreeSet<_>>>()?;
        Ok(Some(Person {
            attributes: serde_json::from_str(&attributes).unwrap_or_default(),
            id,
            enabled,
            population,
            groups,
            deleted,
            changed_seq,
        }))
    }

    fn record_change(transaction: &Transaction<'_>, id: &str, kind: &str) -> rusqlite::Result<i64> {
        transaction.execute(
            "INSERT INTO changes (person_id, kind, at) VALUES (?1, ?2, ?3)",
            params![id, kind, now_ms()],
        )?;
        Ok(transaction.last_insert_rowid())
    }

    fn write(transaction: &Transaction<'_>, person: &Person, kind: &str) -> rusqlite::Result<i64> {
        let seq = Self::record_change(transaction, &person.id, kind)?;
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
        transaction.execute(
            "DELETE FROM members WHERE person_id = ?1",
            params![person.id],
        )?;
        for group in &person.groups {
            transaction.execute(
                "INSERT INTO members (group_name, person_id) VALUES (?1, ?2)",
                params![group, person.id],
            )?;
        }
        Ok(seq)
    }

    /// Applies changes in one transaction: all of them or none. Each must
    /// have passed [`Directory::validate`]; this checks again.
    pub fn upsert(&self, changes: &[PersonChange]) -> Result<UpsertReport, DirectoryError> {
        for change in changes {
            self.validate(change)
                .map_err(|message| DirectoryError::Invalid {
                    id: change.id.clone(),
                    message,
                })?;
        }
        let mut connection = self.db.lock();
        let transaction =
            crate::state::write_transaction(&mut connection).map_err(|e| self.db.error(e))?;
        let mut report = UpsertReport::default();
        for change in changes {
            let existing = Self::load(&transaction, &change.id).map_err(|e| self.db.error(e))?;
            let created = existing.as_ref().is_none_or(|p| p.deleted);
            let mut person = match existing {
                Some(person) if !person.deleted => person,
                _ => Person {
                    id: change.id.clone(),
                    enabled: true,
                    population: None,
                    groups: BTreeSet::new(),
                    attributes: BTreeMap::new(),
                    deleted: false,
                    changed_seq: 0,
                },
            };
            let before = person.clone();
            if change.replace_attributes {
                person.attributes.clear();
            }
            for (name, value) in &change.attributes {
                match value {
                    Some(value) => {
                        person.attributes.insert(name.clone(), value.clone());
                    }
                    None => {
                        person.attributes.remove(name);
                    }
                }
            }
            if let Some(enabled) = change.enabled {
                person.enabled = enabled;
            }
            if let Some(population) = &change.population {
                person.population = population.clone();
            }
            if let Some(groups) = &change.groups {
                person.groups = groups.clone();
            }
            if !created && person == before {
                report.unchanged += 1;
                continue;
            }
            let kind = if created { "create" } else { "update" };
            Self::write(&transaction, &person, kind).map_err(|e| self.db.error(e))?;
            if created {
                report.created += 1;
            } else {
                report.changed += 1;
            }
        }
        transaction.commit().map_err(|e| self.db.error(e))?;
        Ok(report)
    }

    fn modify(
        &self,
        id: &str,
        kind: &str,
        edit: impl FnOnce(&mut Person),
    ) -> Result<bool, DirectoryError> {
        let mut connection = self.db.lock();
        let transaction =
            crate::state::write_transaction(&mut connection).map_err(|e| self.db.error(e))?;
        let mut person = Self::load(&transaction, id)
            .map_err(|e| self.db.error(e))?
            .filter(|p| !p.deleted)
            .ok_or_else(|| DirectoryError::NoSuchPerson(id.to_string()))?;
        let before = person.clone();
        edit(&mut person);
        if person == before {
            return Ok(false);
        }
        Self::write(&transaction, &person, kind).map_err(|e| self.db.error(e))?;
        transaction.commit().map_err(|e| self.db.error(e))?;
        Ok(true)
    }

    pub fn set_enabled(&self, id: &str, enabled: bool) -> Result<bool, DirectoryError> {
        let kind = if enabled { "enable" } else { "disable" };
        self.modify(id, kind, |p| p.enabled = enabled)
    }

    /// Deletes a person. They stay as a tombstone until the sync engine has
    /// removed their records; their attributes and groups go at once.
    pub fn delete(&self, id: &str) -> Result<bool, DirectoryError> {
        self.modify(id, "delete", |p| {
            p.deleted = true;
            p.enabled = false;
            p.groups.clear();
        })
    }

    pub fn add_member(&self, group: &str, id: &str) -> Result<bool, DirectoryError> {
        check_group(group).map_err(|message| DirectoryError::Invalid {
            id: id.to_string(),
            message,
        })?;
        self.modify(id, "join", |p| {
            p.groups.insert(group.to_string());
        })
    }

    pub fn remove_member(&self, group: &str, id: &str) -> Result<bool, DirectoryError> {
        self.modify(id, "leave", |p| {
            p.groups.remove(group);
        })
    }

    /// Forgets a deleted person for good, once nothing refers to them.
    pub fn purge(&self, id: &str) -> Result<(), DirectoryError> {
        let connection = self.db.lock();
        connection
            .execute(
                "DELETE FROM people WHERE id = ?1 AND deleted = 1 AND NOT EXISTS (SELECT 1 FROM links WHERE person_id = ?1)",
                params![id],
            )
            .map_err(|e| self.db.error(e))?;
        Ok(())
    }

    pub fn person(&self, id: &str) -> Result<Option<Person>, DirectoryError> {
        Ok(self.people_among(&BTreeSet::from([id.to_string()]))?.pop())
    }

    /// Everyone, tombstones included, ordered by id.
    pub fn people(&self) -> Result<Vec<Person>, DirectoryError> {
        self.read_people(None, None)
    }

    /// Up to `limit` people, tombstones included, whose ids sort after
    /// `after`, ordered by id: one slice of a pass, so that a pass over a
    /// large directory never holds all of it.
    pub fn people_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Person>, DirectoryError> {
        self.read_people(after, Some(limit))
    }

    fn read_people(
        &self,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<Person>, DirectoryError> {
        let fail = |e| DirectoryError::State(self.db.error(e));
        let mut connection = self.db.lock();
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
                let (id, enabled, population, attributes, deleted, changed_seq) =
                    row.map_err(fail)?;
                people.push(Person {
                    groups: BTreeSet::new(),
                    attributes: serde_json::from_str(&attributes).unwrap_or_default(),
                    id,
                    enabled,
                    population,
                    deleted,
                    changed_seq,
                });
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

    /// Some people, by id (deleted ones included, unknown ids skipped):
    /// what a pass over a few changed people reads, instead of everyone.
    pub fn people_among(&self, ids: &BTreeSet<String>) -> Result<Vec<Person>, DirectoryError> {
        if ids.len() > crate::state::READ_ONE_BY_ONE {
            let mut people = self.people()?;
            people.retain(|p| ids.contains(&p.id));
            return Ok(people);
        }
        let fail = |e| DirectoryError::State(self.db.error(e));
        let mut connection = self.db.lock();
        // A read transaction: one snapshot for everyone read.
        let snapshot = connection.transaction().map_err(fail)?;
        let mut people = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(person) = Self::load(&snapshot, id).map_err(fail)? {
                people.push(person);
            }
        }
        Ok(people)
    }

    /// The ids of everyone not deleted; cheap next to [`Directory::people`].
    pub fn live_ids(&self) -> Result<BTreeSet<String>, DirectoryError> {
        let connection = self.db.lock();
        let fail = |e| DirectoryError::State(self.db.error(e));
        let mut statement = connection
            .prepare("SELECT id FROM people WHERE deleted = 0")
            .map_err(fail)?;
        let ids = statement
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(fail)?
            .collect::<rusqlite::Result<BTreeSet<_>>>()
            .map_err(fail)?;
        Ok(ids)
    }

    /// The newest change's sequence number (0 for an empty directory).
    pub fn last_seq(&self) -> Result<i64, DirectoryError> {
        self.db
            .lock()
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| {
                r.get(0)
            })
            .map_err(|e| DirectoryError::State(self.db.error(e)))
    }

    /// The people changed after `seq`.
    pub fn changed_since(&self, seq: i64) -> Result<BTreeSet<String>, DirectoryError> {
        let connection = self.db.lock();
        let fail = |e| DirectoryError::State(self.db.error(e));
        let mut statement = connection
            .prepare("SELECT DISTINCT person_id FROM changes WHERE seq > ?1")
            .map_err(fail)?;
        let ids = statement
            .query_map(params![seq], |r| r.get::<_, String>(0))
            .map_err(fail)?
            .collect::<rusqlite::Result<BTreeSet<_>>>()
            .map_err(fail)?;
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: &str, attributes: &[(&str, &str)]) -> PersonChange {
        PersonChange {
            id: id.into(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), Some(v.to_string())))
                .collect(),
            ..PersonChange::default()
        }
    }

    #[test]
    fn changes_advance_the_sequence_only_when_something_changed() {
        let db = StateDb::in_memory().unwrap();
        let directory = Directory::new(&db, AttributeSchema::default());
        let report = directory
            .upsert(&[change("p1", &[("email", "a@x.test")]), change("p2", &[])])
            .unwrap();
        assert_eq!((report.created, report.changed), (2, 0));
        let seq = directory.last_seq().unwrap();
        assert_eq!(seq, 2);

        let report = directory
            .upsert(&[change("p1", &[("email", "a@x.test")])])
            .unwrap();
        assert_eq!(report.unchanged, 1);
        assert_eq!(
            directory.last_seq().unwrap(),
            seq,
            "a no-op records nothing"
        );

        directory
            .upsert(&[change("p1", &[("title", "CTO")])])
            .unwrap();
        assert_eq!(
            directory.changed_since(seq).unwrap(),
            BTreeSet::from(["p1".to_string()])
        );
        let p1 = directory.person("p1").unwrap().unwrap();
        assert_eq!(p1.attributes.len(), 2, "without replace, attributes merge");
        assert_eq!(p1.changed_seq, seq + 1);

        assert!(directory.add_member("prospects", "p1").unwrap());
        assert!(!directory.add_member("prospects", "p1").unwrap());
        assert!(directory.set_enabled("p1", false).unwrap());
        let p1 = directory.person("p1").unwrap().unwrap();
        assert!(!p1.enabled);
        assert!(p1.groups.contains("prospects"));

        assert!(directory.delete("p1").unwrap());
        let p1 = directory.person("p1").unwrap().unwrap();
        assert!(p1.deleted && p1.groups.is_empty());
        assert!(matches!(
            directory.set_enabled("p1", true),
            Err(DirectoryError::NoSuchPerson(_))
        ));
        directory.purge("p1").unwrap();
        assert!(directory.person("p1").unwrap().is_none());
    }

    #[test]
    fn a_bad_change_is_refused_and_nothing_is_written() {
        let db = StateDb::in_memory().unwrap();
        let directory = Directory::new(&db, AttributeSchema::default());
        let error = directory
            .upsert(&[
                change("ok", &[("email", "a@x.test")]),
                change("bad", &[("emial", "x")]),
            ])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("unknown attribute \"emial\"; did you mean email?"),
            "{error}"
        );
        assert!(directory.people().unwrap().is_empty(), "all or nothing");
        assert!(directory.upsert(&[change(" padded", &[])]).is_err());
    }

    #[test]
    fn custom_attributes_are_declared() {
        let schema = AttributeSchema::with_extra(["cost_center"]).unwrap();
        assert!(schema.contains("cost_center") && schema.contains("email"));
        assert!(AttributeSchema::with_extra(["Cost Center"]).is_err());
    }
}
