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

use serde::Serialize;

use crate::state::{StateError, Store};

/// Attributes every directory knows, named as SCIM's core schema names them
/// (snake_case). Others are declared under `[directory] attributes`.
pub const STANDARD_ATTRIBUTES: &[&str] = &[
    "user_name",
    "external_id",
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

/// The attributes people are found by without reading everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// The SCIM userName, compared without case: `user_name`, or for
    /// someone without one their email, else their id.
    UserName,
    /// `external_id`, exactly.
    ExternalId,
}

/// What a conditional write of one person did (see [`Directory::put`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    /// Written, as stored now (with its new `changed_seq`).
    Written(Person),
    /// Nothing to write: the person already is as asked.
    Unchanged(Person),
    /// The person changed since it was read (or exists, or is gone):
    /// nothing was written.
    Stale,
    /// Another live person holds the same `user_name` (the id given).
    Taken(String),
}

/// One change of the sequence, with who made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub seq: i64,
    pub person_id: String,
    pub kind: String,
    pub at: i64,
    /// `cli`, or `scim:TOKEN` for the SCIM service provider; none for
    /// changes made before sources were recorded.
    pub source: Option<String>,
}

/// A directory group known by an id of its own: a SCIM client keeps it
/// across renames, and it exists before anyone is in it. Groups that only
/// people name (from a file) have no record, and an id derived from their
/// name ([`group_id`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupRecord {
    pub id: String,
    pub name: String,
    pub external_id: Option<String>,
    pub created_at: i64,
    pub changed_at: i64,
    pub version: i64,
}

/// The id of a group that has no record yet: stable, and the one its
/// record takes when it gets one.
pub fn group_id(name: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("g-{hex}")
}

/// The members a group write leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Members {
    Keep,
    /// Exactly these people.
    Replace(BTreeSet<String>),
    /// These join, those leave.
    Edit {
        add: BTreeSet<String>,
        remove: BTreeSet<String>,
    },
}

/// A group's record and members, written in one transaction.
#[derive(Debug, Clone)]
pub struct GroupWrite {
    pub record: GroupRecord,
    /// The version read, or `None` for a group that has no record yet.
    pub expected: Option<i64>,
    /// The name its members know it by now, when it differs.
    pub renamed_from: Option<String>,
    pub members: Members,
}

/// What a group write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupPut {
    Written(GroupRecord),
    /// The record changed since it was read.
    Stale,
    /// Another group has the name.
    Taken,
    /// A member to add is no live person.
    NoPerson(String),
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

/// A group name: what an identity provider calls a group ("Sales EMEA")
/// is kept as it is. Only what the directory's own formats give a meaning
/// is refused: `;` and `|` separate groups in a CSV import, and `*` ends a
/// prefix in `push_groups`.
pub fn check_group(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name == name.trim()
        && !name
            .chars()
            .any(|c| c.is_control() || matches!(c, ';' | '|' | '*'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "group name {name:?} must be 1 to 128 bytes, without control characters, surrounding spaces, or ; | *"
        ))
    }
}

/// The source directory, over the state's [`DirectoryStore`]: the
/// schema and the limits are checked here, whatever the backend.
pub struct Directory<'a> {
    db: &'a dyn Store,
    schema: AttributeSchema,
    /// Who makes this directory's changes, recorded with each.
    source: String,
}

impl PersonChange {
    /// The person after this change, and whether it creates them (a
    /// tombstone counts as no one); `None` when it changes nothing.
    pub fn apply(&self, existing: Option<Person>) -> Option<(Person, bool)> {
        let created = existing.as_ref().is_none_or(|p| p.deleted);
        let mut person = match existing {
            Some(person) if !person.deleted => person,
            _ => Person {
                id: self.id.clone(),
                enabled: true,
                population: None,
                groups: BTreeSet::new(),
                attributes: BTreeMap::new(),
                deleted: false,
                changed_seq: 0,
            },
        };
        let before = person.clone();
        if self.replace_attributes {
            person.attributes.clear();
        }
        for (name, value) in &self.attributes {
            match value {
                Some(value) => {
                    person.attributes.insert(name.clone(), value.clone());
                }
                None => {
                    person.attributes.remove(name);
                }
            }
        }
        if let Some(enabled) = self.enabled {
            person.enabled = enabled;
        }
        if let Some(population) = &self.population {
            person.population = population.clone();
        }
        if let Some(groups) = &self.groups {
            person.groups = groups.clone();
        }
        (created || person != before).then_some((person, created))
    }
}

impl<'a> Directory<'a> {
    pub fn new(db: &'a dyn Store, schema: AttributeSchema) -> Directory<'a> {
        Directory {
            db,
            schema,
            source: "cli".into(),
        }
    }

    /// The same directory, recording `source` as the maker of its
    /// changes (`scim:okta`).
    pub fn with_source(mut self, source: impl Into<String>) -> Directory<'a> {
        self.source = source.into();
        self
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

    /// Applies changes in one transaction: all of them or none. Each must
    /// have passed [`Directory::validate`]; this checks again.
    pub async fn upsert(&self, changes: &[PersonChange]) -> Result<UpsertReport, DirectoryError> {
        for change in changes {
            self.validate(change)
                .map_err(|message| DirectoryError::Invalid {
                    id: change.id.clone(),
                    message,
                })?;
        }
        Ok(self.db.upsert_people(changes, &self.source).await?)
    }

    async fn modify(
        &self,
        id: &str,
        kind: &str,
        edit: impl FnOnce(&mut Person) + Send + 'static,
    ) -> Result<bool, DirectoryError> {
        self.db
            .modify_person(id, kind, &self.source, Box::new(edit))
            .await?
            .ok_or_else(|| DirectoryError::NoSuchPerson(id.to_string()))
    }

    /// Writes `person` whole, if they are still at `expected` (the
    /// `changed_seq` read, or `None` for someone new) and no other live
    /// person has their `user_name` as userName (see [`Directory::people_by`]):
    /// the read-modify-write of a client
    /// that must lose no concurrent change. Checked as [`validate`] checks
    /// a change.
    ///
    /// [`validate`]: Directory::validate
    pub async fn put(
        &self,
        person: &Person,
        expected: Option<i64>,
        kind: &str,
    ) -> Result<Put, DirectoryError> {
        let change = PersonChange {
            id: person.id.clone(),
            enabled: Some(person.enabled),
            population: Some(person.population.clone()),
            groups: Some(person.groups.clone()),
            attributes: person
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect(),
            replace_attributes: true,
        };
        self.validate(&change)
            .map_err(|message| DirectoryError::Invalid {
                id: person.id.clone(),
                message,
            })?;
        Ok(self
            .db
            .put_person(person, expected, kind, &self.source)
            .await?)
    }

    /// Live people whose SCIM userName is `value`, compared without case
    /// (their `user_name`, or for someone without one their email, else
    /// their id), or whose `external_id` is `value` exactly: what an
    /// identity provider asks before it creates someone, so that it finds
    /// the people imported from a file.
    pub async fn people_by(&self, key: Key, value: &str) -> Result<Vec<Person>, DirectoryError> {
        Ok(self.db.people_by(key, value).await?)
    }

    /// The change of sequence number `seq`, with who made it.
    pub async fn change(&self, seq: i64) -> Result<Option<Change>, DirectoryError> {
        Ok(self.db.change(seq).await?)
    }

    /// Every group with a record.
    pub async fn group_records(&self) -> Result<Vec<GroupRecord>, DirectoryError> {
        Ok(self.db.group_records().await?)
    }

    /// Writes a group's record and members in one transaction; each
    /// person who joins, leaves or sees the group renamed is a change.
    pub async fn put_group(&self, write: &GroupWrite) -> Result<GroupPut, DirectoryError> {
        check_group(&write.record.name).map_err(|message| DirectoryError::Invalid {
            id: write.record.id.clone(),
            message,
        })?;
        Ok(self.db.put_group(write, &self.source).await?)
    }

    /// Deletes a group: its record, and its name from every member.
    /// Whether there was anything to delete.
    pub async fn delete_group(&self, id: &str, name: &str) -> Result<bool, DirectoryError> {
        Ok(self.db.delete_group(id, name, &self.source).await?)
    }

    pub async fn set_enabled(&self, id: &str, enabled: bool) -> Result<bool, DirectoryError> {
        let kind = if enabled { "enable" } else { "disable" };
        self.modify(id, kind, move |p| p.enabled = enabled).await
    }

    /// Deletes a person. They stay as a tombstone until the sync engine has
    /// removed their records; their attributes and groups go at once.
    pub async fn delete(&self, id: &str) -> Result<bool, DirectoryError> {
        self.modify(id, "delete", |p| {
            p.deleted = true;
            p.enabled = false;
            p.groups.clear();
        })
        .await
    }

    pub async fn add_member(&self, group: &str, id: &str) -> Result<bool, DirectoryError> {
        check_group(group).map_err(|message| DirectoryError::Invalid {
            id: id.to_string(),
            message,
        })?;
        let group = group.to_string();
        self.modify(id, "join", move |p| {
            p.groups.insert(group);
        })
        .await
    }

    pub async fn remove_member(&self, group: &str, id: &str) -> Result<bool, DirectoryError> {
        let group = group.to_string();
        self.modify(id, "leave", move |p| {
            p.groups.remove(&group);
        })
        .await
    }

    /// Forgets a deleted person for good, once nothing refers to them.
    pub async fn purge(&self, id: &str) -> Result<(), DirectoryError> {
        Ok(self.db.purge_person(id).await?)
    }

    pub async fn person(&self, id: &str) -> Result<Option<Person>, DirectoryError> {
        Ok(self
            .people_among(&BTreeSet::from([id.to_string()]))
            .await?
            .pop())
    }

    /// Everyone, tombstones included, ordered by id.
    pub async fn people(&self) -> Result<Vec<Person>, DirectoryError> {
        Ok(self.db.people_after(None, None).await?)
    }

    /// Up to `limit` people, tombstones included, whose ids sort after
    /// `after`, ordered by id: one slice of a pass, so that a pass over a
    /// large directory never holds all of it.
    pub async fn people_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Person>, DirectoryError> {
        Ok(self.db.people_after(after, Some(limit)).await?)
    }

    /// Some people, by id (deleted ones included, unknown ids skipped):
    /// what a pass over a few changed people reads, instead of everyone.
    pub async fn people_among(
        &self,
        ids: &BTreeSet<String>,
    ) -> Result<Vec<Person>, DirectoryError> {
        Ok(self.db.people_among(ids).await?)
    }

    /// The ids of everyone not deleted; cheap next to [`Directory::people`].
    pub async fn live_ids(&self) -> Result<BTreeSet<String>, DirectoryError> {
        Ok(self.db.live_ids().await?)
    }

    /// The newest change's sequence number (0 for an empty directory).
    pub async fn last_seq(&self) -> Result<i64, DirectoryError> {
        Ok(self.db.last_seq().await?)
    }

    /// The people changed after `seq`.
    pub async fn changed_since(&self, seq: i64) -> Result<BTreeSet<String>, DirectoryError> {
        Ok(self.db.changed_since(seq).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::testing::{Backend, TestState, on_each_backend};

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

    fn grouped(id: &str, groups: &[&str]) -> PersonChange {
        PersonChange {
            id: id.into(),
            groups: Some(groups.iter().map(|g| g.to_string()).collect()),
            ..PersonChange::default()
        }
    }

    async fn changes_advance_the_sequence_only_when_something_changed(backend: Backend) {
        let db = TestState::new(backend);
        let directory = Directory::new(&*db, AttributeSchema::default());
        let report = directory
            .upsert(&[change("p1", &[("email", "a@x.test")]), change("p2", &[])])
            .await
            .unwrap();
        assert_eq!((report.created, report.changed), (2, 0));
        let seq = directory.last_seq().await.unwrap();
        assert_eq!(seq, 2);

        let report = directory
            .upsert(&[change("p1", &[("email", "a@x.test")])])
            .await
            .unwrap();
        assert_eq!(report.unchanged, 1);
        assert_eq!(
            directory.last_seq().await.unwrap(),
            seq,
            "a no-op records nothing"
        );

        directory
            .upsert(&[change("p1", &[("title", "CTO")])])
            .await
            .unwrap();
        assert_eq!(
            directory.changed_since(seq).await.unwrap(),
            BTreeSet::from(["p1".to_string()])
        );
        let p1 = directory.person("p1").await.unwrap().unwrap();
        assert_eq!(p1.attributes.len(), 2, "without replace, attributes merge");
        assert_eq!(p1.changed_seq, seq + 1);

        assert!(directory.add_member("prospects", "p1").await.unwrap());
        assert!(!directory.add_member("prospects", "p1").await.unwrap());
        assert!(directory.set_enabled("p1", false).await.unwrap());
        let p1 = directory.person("p1").await.unwrap().unwrap();
        assert!(!p1.enabled);
        assert!(p1.groups.contains("prospects"));

        assert!(directory.delete("p1").await.unwrap());
        let p1 = directory.person("p1").await.unwrap().unwrap();
        assert!(p1.deleted && p1.groups.is_empty());
        assert!(matches!(
            directory.set_enabled("p1", true).await,
            Err(DirectoryError::NoSuchPerson(_))
        ));
        directory.purge("p1").await.unwrap();
        assert!(directory.person("p1").await.unwrap().is_none());
    }

    async fn a_bad_change_is_refused_and_nothing_is_written(backend: Backend) {
        let db = TestState::new(backend);
        let directory = Directory::new(&*db, AttributeSchema::default());
        let error = directory
            .upsert(&[
                change("ok", &[("email", "a@x.test")]),
                change("bad", &[("emial", "x")]),
            ])
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("unknown attribute \"emial\"; did you mean email?"),
            "{error}"
        );
        assert!(
            directory.people().await.unwrap().is_empty(),
            "all or nothing"
        );
        assert!(directory.upsert(&[change(" padded", &[])]).await.is_err());
    }

    async fn a_conditional_write_loses_no_change_and_keeps_user_names_unique(backend: Backend) {
        let db = TestState::new(backend);
        let directory = Directory::new(&*db, AttributeSchema::default()).with_source("scim:okta");
        let mut ada = Person {
            id: "u1".into(),
            enabled: true,
            population: None,
            groups: BTreeSet::new(),
            attributes: [("user_name".to_string(), "Ada@x.test".to_string())].into(),
            deleted: false,
            changed_seq: 0,
        };
        let Put::Written(written) = directory.put(&ada, None, "create").await.unwrap() else {
            panic!("not written");
        };
        // Someone else changed her since: the write is refused, not lost.
        Directory::new(&*db, AttributeSchema::default())
            .set_enabled("u1", false)
            .await
            .unwrap();
        ada.attributes.insert("title".into(), "Countess".into());
        assert_eq!(
            directory
                .put(&ada, Some(written.changed_seq), "update")
                .await
                .unwrap(),
            Put::Stale
        );
        // A second person may not take her userName, in any case; nor the
        // email of someone without a userName of their own.
        let mut other = ada.clone();
        other.id = "u2".into();
        other
            .attributes
            .insert("user_name".into(), "ADA@X.TEST".into());
        assert_eq!(
            directory.put(&other, None, "create").await.unwrap(),
            Put::Taken("u1".into())
        );
        directory
            .upsert(&[change("p3", &[("email", "grace@x.test")])])
            .await
            .unwrap();
        other
            .attributes
            .insert("user_name".into(), "Grace@X.test".into());
        assert_eq!(
            directory.put(&other, None, "create").await.unwrap(),
            Put::Taken("p3".into())
        );
        let found = directory
            .people_by(Key::UserName, "ada@x.TEST")
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        let change = directory
            .change(found[0].changed_seq)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            change.source.as_deref(),
            Some("cli"),
            "the last change was set_enabled's"
        );
        assert_eq!(
            directory
                .change(written.changed_seq)
                .await
                .unwrap()
                .unwrap()
                .source
                .as_deref(),
            Some("scim:okta")
        );
    }

    async fn a_group_keeps_its_id_through_a_rename_that_every_member_follows(backend: Backend) {
        let db = TestState::new(backend);
        let directory = Directory::new(&*db, AttributeSchema::default());
        directory
            .upsert(&[change("p1", &[]), change("p2", &[])])
            .await
            .unwrap();
        let record = GroupRecord {
            id: "g-1".into(),
            name: "Sales EMEA".into(),
            external_id: None,
            created_at: 0,
            changed_at: 0,
            version: 0,
        };
        let write = GroupWrite {
            record: record.clone(),
            expected: None,
            renamed_from: None,
            members: Members::Replace(["p1".to_string(), "p2".to_string()].into()),
        };
        let GroupPut::Written(first) = directory.put_group(&write).await.unwrap() else {
            panic!("not written");
        };
        assert_eq!(first.version, 1);
        let renamed = GroupWrite {
            record: GroupRecord {
                name: "Sales Europe".into(),
                ..first.clone()
            },
            expected: Some(1),
            renamed_from: Some("Sales EMEA".into()),
            members: Members::Edit {
                add: BTreeSet::new(),
                remove: ["p2".to_string()].into(),
            },
        };
        assert!(matches!(
            directory.put_group(&renamed).await.unwrap(),
            GroupPut::Written(_)
        ));
        let p1 = directory.person("p1").await.unwrap().unwrap();
        assert_eq!(p1.groups, ["Sales Europe".to_string()].into());
        assert!(
            directory
                .person("p2")
                .await
                .unwrap()
                .unwrap()
                .groups
                .is_empty()
        );
        // A write at the old version is refused; a member who is no one
        // stops the whole write.
        assert_eq!(
            directory.put_group(&renamed).await.unwrap(),
            GroupPut::Stale
        );
        let stranger = GroupWrite {
            expected: Some(2),
            renamed_from: None,
            members: Members::Edit {
                add: ["nobody".to_string()].into(),
                remove: BTreeSet::new(),
            },
            ..renamed.clone()
        };
        assert_eq!(
            directory.put_group(&stranger).await.unwrap(),
            GroupPut::NoPerson("nobody".into())
        );
        // Joining or leaving another way (an import) advances the version
        // too, so that a write made from an older read cannot undo it.
        let version = |records: Vec<GroupRecord>| records[0].version;
        assert_eq!(version(directory.group_records().await.unwrap()), 2);
        directory
            .upsert(&[grouped("p2", &["Sales Europe"])])
            .await
            .unwrap();
        assert_eq!(version(directory.group_records().await.unwrap()), 3);
        let stale = GroupWrite {
            expected: Some(2),
            renamed_from: None,
            members: Members::Replace(["p1".to_string()].into()),
            ..renamed.clone()
        };
        assert_eq!(directory.put_group(&stale).await.unwrap(), GroupPut::Stale);
        directory.upsert(&[grouped("p1", &[])]).await.unwrap();
        assert_eq!(version(directory.group_records().await.unwrap()), 4);
        directory
            .upsert(&[grouped("p1", &["Sales Europe"])])
            .await
            .unwrap();
        assert_eq!(version(directory.group_records().await.unwrap()), 5);
        assert!(directory.delete_group("g-1", "Sales Europe").await.unwrap());
        assert!(
            directory
                .person("p1")
                .await
                .unwrap()
                .unwrap()
                .groups
                .is_empty()
        );
        assert!(directory.group_records().await.unwrap().is_empty());
    }

    #[test]
    fn custom_attributes_are_declared() {
        let schema = AttributeSchema::with_extra(["cost_center"]).unwrap();
        assert!(schema.contains("cost_center") && schema.contains("email"));
        assert!(AttributeSchema::with_extra(["Cost Center"]).is_err());
    }

    on_each_backend!(
        changes_advance_the_sequence_only_when_something_changed,
        a_bad_change_is_refused_and_nothing_is_written,
        a_conditional_write_loses_no_change_and_keeps_user_names_unique,
        a_group_keeps_its_id_through_a_rename_that_every_member_follows,
    );
}
