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

impl Table {
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

/// The count and checksum of rows read from table `table`. JSON is
/// re-serialised, so that PostgreSQL's `jsonb` spacing and key order do
/// not count.
pub(crate) fn summarise(table: &Table, rows: &Rows) -> Summary {
    let mut hash = Sha256::new();
    for row in rows {
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
    Summary {
        rows: rows.len() as u64,
        checksum: hash.finalize().iter().map(|b| format!("{b:02x}")).collect(),
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
    let mut expected = BTreeMap::new();
    let mut tables = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let rows = from.read_table(table)?;
        expected.insert(table.name, summarise(table, &rows));
        tables.push((table, rows));
    }
    to.load_tables(&tables, replace).await?;
    drop(tables);
    let mut report = MigrateReport {
        tables: BTreeMap::new(),
    };
    for table in TABLES {
        let found = summarise(table, &to.read_table(table).await?);
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
