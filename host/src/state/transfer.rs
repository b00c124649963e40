//! Moving a state between backends and checking one: `provisioner state
//! migrate` copies a SQLite file into an empty PostgreSQL database, table
//! by table, then reads both back and compares each table's row count and
//! checksum; `provisioner state check` reports either backend's schema
//! version, integrity and counts.
//!
//! A checksum is over the rows in key order, each value in a canonical
//! form (JSON re-serialised with sorted keys, booleans as 0 or 1), so
//! that the same rows give the same sum on both backends.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::{PgState, StateDb, StateError};

/// How a column is stored: SQLite's type and PostgreSQL's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// TEXT on both.
    Text,
    /// INTEGER / BIGINT.
    Int,
    /// INTEGER 0 or 1 / BOOLEAN.
    Bool,
    /// TEXT holding a JSON object / JSONB.
    Json,
}

/// One table of the state: its columns, and the key its rows are read in
/// (byte order on both backends).
pub(crate) struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, Kind)],
    pub key: &'static str,
}

use Kind::{Bool, Int, Json, Text};

/// Every table, in an order that inserts people before their groups.
pub(crate) const TABLES: &[Table] = &[
    Table {
        name: "people",
        columns: &[
            ("id", Text),
            ("enabled", Bool),
            ("population", Text),
            ("attributes", Json),
            ("deleted", Bool),
            ("changed_seq", Int),
        ],
        key: "id",
    },
    Table {
        name: "members",
        columns: &[("group_name", Text), ("person_id", Text)],
        key: "group_name, person_id",
    },
    Table {
        name: "changes",
        columns: &[
            ("seq", Int),
            ("person_id", Text),
            ("kind", Text),
            ("at", Int),
            ("source", Text),
        ],
        key: "seq",
    },
    Table {
        name: "rules",
        columns: &[
            ("name", Text),
            ("connection", Text),
            ("seen_at", Int),
            ("last_finished", Int),
            ("last_error", Text),
            ("mappings", Text),
        ],
        key: "name",
    },
    Table {
        name: "links",
        columns: &[
            ("rule", Text),
            ("person_id", Text),
            ("connection", Text),
            ("target_id", Text),
            ("written", Text),
            ("hash", Text),
            ("state", Text),
            ("reason", Text),
            ("error_class", Text),
            ("error_code", Text),
            ("error_message", Text),
            ("error_fields", Text),
            ("attempts", Int),
            ("next_retry", Int),
            ("person_seq", Int),
            ("updated_at", Int),
        ],
        key: "rule, person_id",
    },
    Table {
        name: "journal",
        columns: &[
            ("id", Int),
            ("rule", Text),
            ("person_id", Text),
            ("connection", Text),
            ("action", Text),
            ("target_id", Text),
            ("detail", Text),
            ("started_at", Int),
            ("finished_at", Int),
            ("outcome", Text),
            ("error", Text),
        ],
        key: "id",
    },
    Table {
        name: "quarantine",
        columns: &[("connection", Text), ("reason", Text), ("since", Int)],
        key: "connection",
    },
    Table {
        name: "guards",
        columns: &[
            ("rule", Text),
            ("tripped_at", Int),
            ("planned", Int),
            ("linked", Int),
            ("approved", Int),
        ],
        key: "rule",
    },
    Table {
        name: "usage",
        columns: &[
            ("connection", Text),
            ("used", Int),
            ("max", Int),
            ("at", Int),
        ],
        key: "connection",
    },
    Table {
        name: "plugins",
        columns: &[
            ("name", Text),
            ("version", Text),
            ("contract", Text),
            ("path", Text),
            ("loaded_at", Int),
        ],
        key: "name",
    },
    Table {
        name: "plugin_clashes",
        columns: &[("name", Text), ("files", Text)],
        key: "name",
    },
    Table {
        name: "plugin_scan",
        columns: &[("id", Int), ("at", Int), ("refused", Text)],
        key: "id",
    },
    Table {
        name: "update_guards",
        columns: &[
            ("rule", Text),
            ("tripped_at", Int),
            ("planned", Int),
            ("linked", Int),
            ("mappings", Text),
            ("approved", Int),
        ],
        key: "rule",
    },
    Table {
        name: "group_links",
        columns: &[
            ("rule", Text),
            ("group_name", Text),
            ("connection", Text),
            ("target_id", Text),
            ("members", Text),
            ("state", Text),
            ("reason", Text),
            ("updated_at", Int),
        ],
        key: "rule, group_name",
    },
    Table {
        name: "directory_groups",
        columns: &[
            ("id", Text),
            ("name", Text),
            ("external_id", Text),
            ("created_at", Int),
            ("changed_at", Int),
            ("version", Int),
        ],
        key: "id",
    },
];

/// Rows read or written per statement: memory stays bounded by a page,
/// whatever the size of the state.
pub(crate) const PAGE: usize = 5_000;

impl Table {
    /// The key's columns, in order.
    pub(crate) fn key_columns(&self) -> impl Iterator<Item = &'static str> {
        self.key.split(", ")
    }

    /// Where each key column sits in a row.
    pub(crate) fn key_positions(&self) -> Vec<usize> {
        self.key_columns()
            .filter_map(|key| self.columns.iter().position(|(name, _)| *name == key))
            .collect()
    }

    /// The key of a row, to read the page after it.
    pub(crate) fn key_of(&self, row: &[Cell]) -> Vec<Cell> {
        self.key_positions()
            .into_iter()
            .map(|i| row.get(i).cloned().unwrap_or(Cell::Null))
            .collect()
    }

    /// `SELECT columns FROM table [WHERE (key) > (params)] ORDER BY key
    /// LIMIT n`, with parameters written by `param(i)` (1-based).
    pub(crate) fn page_sql(
        &self,
        columns: &str,
        after: bool,
        param: impl Fn(usize) -> String,
    ) -> String {
        let keys: Vec<&str> = self.key_columns().collect();
        let filter = if after {
            let params: Vec<String> = (1..=keys.len()).map(&param).collect();
            format!("WHERE ({}) > ({})", keys.join(", "), params.join(", "))
        } else {
            String::new()
        };
        format!(
            "SELECT {columns} FROM {} {filter} ORDER BY {} LIMIT {PAGE}",
            self.name, self.key
        )
    }

    pub(crate) fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One value, as both backends read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Text(String),
}

/// A table's rows in key order.
pub(crate) type Rows = Vec<Vec<Cell>>;

/// Rows count and checksum of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub rows: u64,
    /// SHA-256 over the canonical rows, hex.
    pub checksum: String,
}

/// The count and checksum of a table's rows, page by page. JSON is
/// re-serialised, so that PostgreSQL's `jsonb` spacing and key order do
/// not count.
pub(crate) struct Summing {
    hash: Sha256,
    rows: u64,
}

impl Summing {
    pub(crate) fn new() -> Summing {
        Summing {
            hash: Sha256::new(),
            rows: 0,
        }
    }

    pub(crate) fn add(&mut self, table: &Table, rows: &[Vec<Cell>]) {
        let hash = &mut self.hash;
        for row in rows {
            self.rows += 1;
            for (cell, (_, kind)) in row.iter().zip(table.columns) {
                match cell {
                    Cell::Null => hash.update(b"n"),
                    Cell::Int(value) => {
                        hash.update(b"i");
                        hash.update(value.to_le_bytes());
                    }
                    Cell::Text(text) => {
                        let canonical;
                        let text = if *kind == Kind::Json {
                            canonical = serde_json::from_str::<serde_json::Value>(text)
                                .map(|v| v.to_string())
                                .unwrap_or_else(|_| text.clone());
                            &canonical
                        } else {
                            text
                        };
                        hash.update(b"t");
                        hash.update((text.len() as u64).to_le_bytes());
                        hash.update(text.as_bytes());
                    }
                }
            }
        }
    }

    pub(crate) fn finish(self) -> Summary {
        Summary {
            rows: self.rows,
            checksum: self
                .hash
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        }
    }
}

/// What `state migrate` copied, by table.
#[derive(Debug)]
pub struct MigrateReport {
    pub tables: BTreeMap<&'static str, Summary>,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "the target database {0} already holds a state ({1}); migrate into an empty database, or pass --replace to empty it first"
    )]
    NotEmpty(String, String),
    #[error(
        "the copy in {database} does not match the file: table {table} has {found} (the file: {expected})"
    )]
    Mismatch {
        database: String,
        table: &'static str,
        expected: String,
        found: String,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

/// Copies the SQLite state `from` into the PostgreSQL database `to`, in
/// one transaction, then compares each table's count and checksum on both
/// sides. A target that holds any row is refused unless `replace`.
pub async fn migrate(
    from: &StateDb,
    to: &PgState,
    replace: bool,
) -> Result<MigrateReport, MigrateError> {
    let counts = to.counts().await?;
    let held: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(table, n)| format!("{n} row(s) in {table}"))
        .collect();
    if !held.is_empty() && !replace {
        return Err(MigrateError::NotEmpty(
            to.name().to_string(),
            held.join(", "),
        ));
    }
    let expected = to
        .load_from(replace, |table, after| from.read_page(table, after))
        .await?;
    let mut report = MigrateReport {
        tables: BTreeMap::new(),
    };
    for table in TABLES {
        let found = to.summary(table).await?;
        let wanted = &expected[table.name];
        if &found != wanted {
            return Err(MigrateError::Mismatch {
                database: to.name().to_string(),
                table: table.name,
                expected: format!("{} rows, checksum {}", wanted.rows, wanted.checksum),
                found: format!("{} rows, checksum {}", found.rows, found.checksum),
            });
        }
        report.tables.insert(table.name, found);
    }
    tracing::info!(database = %to.name(), "copied the state file into PostgreSQL");
    Ok(report)
}

/// What `state check` found.
#[derive(Debug)]
pub struct CheckReport {
    pub backend: &'static str,
    pub location: String,
    pub version: i64,
    pub known: i64,
    /// Rows by table.
    pub counts: BTreeMap<&'static str, u64>,
    /// What is wrong; empty for a healthy state.
    pub problems: Vec<String>,
}

/// Checks a SQLite state file: its schema version, SQLite's integrity
/// check and the tables' counts.
pub fn check_file(db: &StateDb) -> Result<CheckReport, StateError> {
    let integrity = db.integrity_check()?;
    let mut counts = BTreeMap::new();
    for table in TABLES {
        counts.insert(table.name, db.count_rows(table)?);
    }
    Ok(CheckReport {
        backend: "sqlite",
        location: db.path().display().to_string(),
        version: db.schema_version()?,
        known: super::CURRENT_VERSION,
        counts,
        problems: if integrity == "ok" {
            Vec::new()
        } else {
            vec![format!("integrity check: {integrity}")]
        },
    })
}

/// Checks a PostgreSQL state: its schema version, the tables' counts, and
/// what the database's constraints do not (the sequences are ahead of the
/// numbers in use, every link's state is one this binary reads).
pub async fn check_database(db: &PgState) -> Result<CheckReport, StateError> {
    let counts = db.counts().await?;
    let problems = db.integrity().await?;
    Ok(CheckReport {
        backend: "postgres",
        location: db.name().to_string(),
        version: db.schema_version().await?,
        known: super::postgres::CURRENT_VERSION,
        counts,
        problems,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::directory::{GroupRecord, GroupWrite, Members, PersonChange};
    use crate::state::prelude::*;
    use crate::state::testing::TestDatabase;
    use crate::sync::links::{JournalEntry, Link, LinkError, LinkState, PluginRecord, UpdateGuard};

    /// A state with a row in every table, made through the storage traits
    /// as the host makes one.
    async fn populated(db: &dyn Store) {
        let people: Vec<PersonChange> = (0..2600)
            .map(|n| PersonChange {
                id: format!("p{n:04}"),
                enabled: Some(n % 7 != 0),
                population: Some((n % 3 == 0).then(|| "emea".to_string())),
                groups: Some(BTreeSet::from([
                    "staff".to_string(),
                    format!("team{}", n % 5),
                ])),
                attributes: BTreeMap::from([
                    ("email".to_string(), Some(format!("p{n}@example.com"))),
                    ("title".to_string(), Some(format!("Ünal \"{n}\" \\ title"))),
                ]),
                replace_attributes: true,
            })
            .collect();
        db.upsert_people(&people, "cli").await.unwrap();
        db.put_group(
            &GroupWrite {
                record: GroupRecord {
                    id: "g-1".into(),
                    name: "Sales".into(),
                    external_id: Some("ext-1".into()),
                    created_at: 0,
                    changed_at: 0,
                    version: 0,
                },
                expected: None,
                renamed_from: None,
                members: Members::Replace(BTreeSet::from(["p0001".into(), "p0002".into()])),
            },
            "scim:okta",
        )
        .await
        .unwrap();
        db.see_rule("staff", "people").await.unwrap();
        db.finish_rule("staff", Some("boom")).await.unwrap();
        db.record_mappings("staff", "fingerprint").await.unwrap();
        let mut links = Vec::new();
        for n in 0..1100 {
            let mut link = Link::new("staff", &format!("p{n:04}"), "people");
            link.target_id = Some(format!("00Q{n}"));
            link.state = if n % 10 == 0 {
                LinkState::Failed
            } else {
                LinkState::Synced
            };
            link.written.insert(
                "Title".into(),
                crate::runtime::contract::Value::Text(format!("t{n}")),
            );
            if n % 10 == 0 {
                link.error = Some(LinkError {
                    class: "rejected".into(),
                    code: Some("E1".into()),
                    message: "no".into(),
                    fields: vec!["Email".into()],
                });
                link.next_retry = Some(5);
            }
            link.person_seq = Some(n);
            links.push(link);
        }
        let entries: Vec<JournalEntry> = (0..50)
            .map(|n| JournalEntry {
                rule: Some("staff".into()),
                person_id: Some(format!("p{n:04}")),
                connection: "people".into(),
                action: "create".into(),
                target_id: None,
                detail: serde_json::json!({"n": n}),
            })
            .collect();
        let ids = db.journal_open(&entries).await.unwrap();
        let outcomes: Vec<_> = ids[..40]
            .iter()
            .map(|id| (*id, Ok(Some(format!("00Q{id}")))))
            .collect();
        db.commit(&links, &[], &outcomes).await.unwrap();
        db.journal_note(&entries[0], "forbidden").await.unwrap();
        db.quarantine("people", "too many failures").await.unwrap();
        db.trip_guard("staff", 10, 100).await.unwrap();
        db.weigh_update_guard("staff", 5, 50, "new", UpdateGuard::Held)
            .await
            .unwrap();
        db.record_usage("people", 10, 1000).await.unwrap();
        db.record_plugins(
            &[PluginRecord {
                name: "memory".into(),
                version: "1.0.0".into(),
                contract: "0.1.0".into(),
                path: "plugins/memory.wasm".into(),
            }],
            &BTreeMap::from([(
                "dup".to_string(),
                vec!["a.wasm".to_string(), "b.wasm".to_string()],
            )]),
            &[("bad.wasm".into(), "not a component".into())],
        )
        .await
        .unwrap();
        let mut group = crate::sync::links::GroupLink::new("staff", "Sales", "people");
        group.members.insert("00Q1".into());
        db.commit_groups(&[group], &[]).await.unwrap();
    }

    /// Every table is copied row for row: the copy reads as the file does
    /// through every trait, and the sequences go on after the numbers
    /// copied.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_state_file_is_copied_whole_and_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateDb::open(&dir.path().join("p.db")).unwrap();
        populated(&file).await;
        let test = TestDatabase::create();
        let copy = test.state();
        let report = migrate(&file, &copy, false).await.unwrap();
        for table in TABLES {
            assert!(
                report.tables[table.name].rows > 0,
                "{} is empty",
                table.name
            );
        }
        assert_eq!(report.tables["people"].rows, 2600);
        // Two groups each: more than a page, read and written page by page.
        assert_eq!(report.tables["members"].rows, 2 * 2600 + 2);
        assert!(report.tables["members"].rows > PAGE as u64);
        assert_eq!(report.tables["links"].rows, 1100);

        let (a, b): (&dyn Store, &dyn Store) = (&file, &copy);
        assert_eq!(
            a.of_rule("staff").await.unwrap(),
            b.of_rule("staff").await.unwrap()
        );
        assert_eq!(
            a.people_after(None, None).await.unwrap(),
            b.people_after(None, None).await.unwrap()
        );
        assert_eq!(
            a.journal(None, None, None, 1000).await.unwrap(),
            b.journal(None, None, None, 1000).await.unwrap()
        );
        assert_eq!(
            a.changes(None, None, 5000).await.unwrap(),
            b.changes(None, None, 5000).await.unwrap()
        );
        assert_eq!(
            a.group_records().await.unwrap(),
            b.group_records().await.unwrap()
        );
        assert_eq!(
            a.count_states().await.unwrap(),
            b.count_states().await.unwrap()
        );
        assert_eq!(
            a.held_updates().await.unwrap(),
            b.held_updates().await.unwrap()
        );
        assert_eq!(
            a.plugin_refusals().await.unwrap(),
            b.plugin_refusals().await.unwrap()
        );
        assert_eq!(
            a.pending_counts().await.unwrap(),
            b.pending_counts().await.unwrap()
        );
        assert_eq!(
            a.journal_counts().await.unwrap(),
            b.journal_counts().await.unwrap()
        );
        assert_eq!(
            a.count_group_states().await.unwrap(),
            b.count_group_states().await.unwrap()
        );
        assert_eq!(a.failed(50).await.unwrap(), b.failed(50).await.unwrap());
        assert_eq!(
            a.unlinked("staff").await.unwrap(),
            b.unlinked("staff").await.unwrap()
        );
        assert_eq!(a.usage().await.unwrap(), b.usage().await.unwrap());
        assert_eq!(
            a.plugin_clashes().await.unwrap(),
            b.plugin_clashes().await.unwrap()
        );

        // The next change and the next journal entry take new numbers.
        let last = copy.last_seq().await.unwrap();
        assert_eq!(last, file.last_seq().await.unwrap());
        copy.upsert_people(
            &[PersonChange {
                id: "new".into(),
                ..PersonChange::default()
            }],
            "cli",
        )
        .await
        .unwrap();
        assert_eq!(copy.last_seq().await.unwrap(), last + 1);
        let ids = copy
            .journal_open(&[JournalEntry {
                rule: None,
                person_id: None,
                connection: "people".into(),
                action: "update".into(),
                target_id: None,
                detail: serde_json::Value::Null,
            }])
            .await
            .unwrap();
        assert!(ids[0] > 51, "{ids:?}");
        let check = check_database(&copy).await.unwrap();
        assert!(check.problems.is_empty(), "{:?}", check.problems);
        assert_eq!(check.counts["people"], 2601);
        assert!(check_file(&file).unwrap().problems.is_empty());

        // A database that holds a state is refused, and left as it was.
        let error = migrate(&file, &copy, false).await.unwrap_err().to_string();
        assert!(error.contains("already holds a state"), "{error}");
        assert!(error.contains("--replace"), "{error}");
        assert_eq!(copy.live_ids().await.unwrap().len(), 2601);
        // Unless told to replace it.
        migrate(&file, &copy, true).await.unwrap();
        assert_eq!(
            copy.live_ids().await.unwrap(),
            file.live_ids().await.unwrap()
        );
    }
}
