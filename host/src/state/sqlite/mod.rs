//! The SQLite backend: one file (WAL mode, bundled SQLite, mode 0600).
//! Every statement the host runs is in this folder, by the table it
//! serves: `links.rs` (links, journal, guards, rules, health),
//! `directory.rs` (people, groups, changes), `status.rs` (what status
//! reads), with the trait implementations in `store.rs`.
//!
//! SQLite blocks: every call runs through [`StateDb::blocking`], which
//! tells a multi-threaded tokio runtime that the thread is about to block,
//! so that other tasks move to other threads meanwhile.

mod directory;
mod groups;
mod links;
mod schema;
mod status;
mod store;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags};

use super::StateError;
pub use schema::CURRENT_VERSION;

/// The open state file.
pub struct StateDb {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl std::fmt::Debug for StateDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDb").field("path", &self.path).finish()
    }
}

/// Starts a transaction that writes. It takes the write lock at BEGIN:
/// a deferred transaction that reads first and writes later fails at
/// once with SQLITE_BUSY_SNAPSHOT (no busy timeout helps) when another
/// process, such as a CLI import beside a running daemon, wrote in between.
fn write_transaction(connection: &mut Connection) -> rusqlite::Result<rusqlite::Transaction<'_>> {
    connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
}

/// Creates the file with mode 0600 before SQLite opens it, so that the
/// directory's people and the links never sit world-readable, not even for
/// a moment.
fn create_private(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

impl StateDb {
    /// Opens (creating if needed) and migrates the state file.
    pub fn open(path: &Path) -> Result<StateDb, StateError> {
        let io = |reason: String| StateError::Io {
            path: path.to_path_buf(),
            reason,
        };
        create_private(path).map_err(|e| io(e.to_string()))?;
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StateError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let db = StateDb {
            path: path.to_path_buf(),
            connection: Mutex::new(connection),
        };
        db.prepare()?;
        Ok(db)
    }

    /// Opens the state file only if it exists: for read-only views that
    /// must not create one.
    pub fn open_existing(path: &Path) -> Result<Option<StateDb>, StateError> {
        if path.exists() {
            StateDb::open(path).map(Some)
        } else {
            Ok(None)
        }
    }

    /// An in-memory state, for tests and dry runs.
    pub fn in_memory() -> Result<StateDb, StateError> {
        let connection = Connection::open_in_memory().map_err(|e| StateError::Sqlite {
            path: PathBuf::from(":memory:"),
            source: e,
        })?;
        let db = StateDb {
            path: PathBuf::from(":memory:"),
            connection: Mutex::new(connection),
        };
        db.prepare()?;
        Ok(db)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn prepare(&self) -> Result<(), StateError> {
        let mut connection = self.lock();
        let corrupt = |reason: String| StateError::Corrupt {
            path: self.path.clone(),
            reason,
        };
        // Any read proves the header; `quick_check` proves the pages.
        let version: i64 = connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(|e| corrupt(e.to_string()))?;
        if version > CURRENT_VERSION {
            return Err(StateError::TooNew {
                path: self.path.clone(),
                found: version,
                known: CURRENT_VERSION,
            });
        }
        let check: String = connection
            .query_row("PRAGMA quick_check", [], |row| row.get(0))
            .map_err(|e| corrupt(e.to_string()))?;
        if check != "ok" {
            return Err(corrupt(check));
        }
        let sqlite = |source| StateError::Sqlite {
            path: self.path.clone(),
            source,
        };
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
            )
            .map_err(sqlite)?;
        schema::migrate(&mut connection, version).map_err(sqlite)?;
        Ok(())
    }

    /// Runs `f`, which blocks on SQLite, off the async worker threads when
    /// called from a multi-threaded runtime.
    fn blocking<T>(&self, f: impl FnOnce(&StateDb) -> T) -> T {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| f(self))
            }
            _ => f(self),
        }
    }

    /// The connection. A panic while it was held rolled its transaction
    /// back, so the data is consistent.
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wraps a rusqlite error with the file's path.
    fn error(&self, source: rusqlite::Error) -> StateError {
        StateError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// `PRAGMA integrity_check`, for operators and crash tests.
    pub fn integrity_check(&self) -> Result<String, StateError> {
        self.lock()
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .map_err(|e| self.error(e))
    }
}

/// What `state migrate` and `state check` read.
impl StateDb {
    /// A page of a table's rows in key order, after the row whose key is
    /// `after`.
    pub(in crate::state) fn read_page(
        &self,
        table: &crate::state::transfer::Table,
        after: Option<&[crate::state::transfer::Cell]>,
    ) -> Result<crate::state::transfer::Rows, StateError> {
        use crate::state::transfer::Cell;
        use rusqlite::types::{Value, ValueRef};
        let sql = table.page_sql(&table.column_list(), after.is_some(), |i| format!("?{i}"));
        let params: Vec<Value> = after
            .unwrap_or_default()
            .iter()
            .map(|cell| match cell {
                Cell::Null => Value::Null,
                Cell::Int(n) => Value::Integer(*n),
                Cell::Text(t) => Value::Text(t.clone()),
            })
            .collect();
        self.blocking(|db| {
            let connection = db.lock();
            let mut statement = connection.prepare_cached(&sql).map_err(|e| db.error(e))?;
            let width = table.columns.len();
            statement
                .query_map(rusqlite::params_from_iter(params), |row| {
                    (0..width)
                        .map(|i| {
                            Ok(match row.get_ref(i)? {
                                ValueRef::Null => Cell::Null,
                                ValueRef::Integer(n) => Cell::Int(n),
                                ValueRef::Real(x) => Cell::Text(x.to_string()),
                                ValueRef::Text(t) | ValueRef::Blob(t) => {
                                    Cell::Text(String::from_utf8_lossy(t).into_owned())
                                }
                            })
                        })
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(|e| db.error(e))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(|e| db.error(e))
        })
    }

    pub(in crate::state) fn count_rows(
        &self,
        table: &crate::state::transfer::Table,
    ) -> Result<u64, StateError> {
        self.blocking(|db| {
            db.lock()
                .query_row(&format!("SELECT COUNT(*) FROM {}", table.name), [], |r| {
                    r.get::<_, i64>(0)
                })
                .map(|n| u64::try_from(n).unwrap_or_default())
                .map_err(|e| db.error(e))
        })
    }

    /// The file's schema version (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<i64, StateError> {
        self.lock()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_is_private_and_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/provisioner.db");
        let db = StateDb::open(&path).unwrap();
        let version: i64 = db
            .lock()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, CURRENT_VERSION);
        let mode: String = db
            .lock()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        drop(db);
        // Reopening is a no-op migration.
        StateDb::open(&path).unwrap();
    }

    /// The two scans that run on every start and every retry tick find
    /// their rows through the partial indexes, not by reading the tables.
    #[test]
    fn open_entries_and_due_retries_are_read_through_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("p.db")).unwrap();
        let plan = |sql: &str| -> String {
            let connection = db.lock();
            let mut statement = connection
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let rows = statement
                .query_map([], |row| row.get::<_, String>(3))
                .unwrap();
            rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
        };
        let open = plan(
            "UPDATE journal SET outcome = 'unknown', finished_at = 1 WHERE finished_at IS NULL",
        );
        assert!(open.contains("USING INDEX journal_open"), "{open}");
        let due = plan(
            "SELECT DISTINCT person_id FROM links WHERE state = 'failed' AND next_retry IS NOT NULL AND next_retry <= 5",
        );
        assert!(due.contains("USING INDEX links_retry"), "{due}");
        let failed = plan(
            "SELECT person_id FROM links WHERE state = 'failed' ORDER BY rule, person_id LIMIT 5",
        );
        assert!(failed.contains("INDEX links_failed"), "{failed}");
    }

    #[test]
    fn a_newer_file_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        {
            let connection = Connection::open(&path).unwrap();
            connection
                .execute_batch(&format!("PRAGMA user_version = {}", CURRENT_VERSION + 3))
                .unwrap();
        }
        let error = StateDb::open(&path).unwrap_err().to_string();
        assert!(error.contains("written by a newer provisioner"), "{error}");
        assert!(error.contains(&path.display().to_string()), "{error}");
    }

    #[test]
    fn a_corrupt_file_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        std::fs::write(
            &path,
            b"this is not a database, it is a grocery list\n".repeat(200),
        )
        .unwrap();
        let error = StateDb::open(&path).unwrap_err().to_string();
        assert!(error.contains("is not a usable SQLite database"), "{error}");
        assert!(error.contains("restore it from a backup"), "{error}");
    }
}
