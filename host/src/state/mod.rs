//! Durable state: one SQLite file (WAL mode, bundled SQLite, mode 0600)
//! holding the source directory, the links between rules and target
//! records, and the action journal.
//!
//! The schema is versioned with `PRAGMA user_version`; opening a file runs
//! the migrations it lacks, each in its own transaction. A file written by
//! a newer binary, or one that is not a healthy SQLite database, is refused
//! with a message that says what to do, never opened half-way.
//!
//! The rest of the host reaches the state only through the traits of
//! [`store`], one per concern; `sqlite` is their backend, and the only
//! module that knows SQL.

mod postgres;
mod sqlite;
mod store;
#[cfg(test)]
pub(crate) mod testing;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

pub use postgres::PgState;
pub use sqlite::{CURRENT_VERSION, StateDb};
pub use store::{
    DirectoryStore, GuardStore, HealthStore, JournalOutcome, JournalStore, LinkStore, RuleRun,
    RuleStore, StatusStore, Store,
};

/// The storage traits, for the modules that call them: `use
/// crate::state::prelude::*`.
pub mod prelude {
    pub use super::store::{
        DirectoryStore, GroupLinkStore, GuardStore, HealthStore, JournalStore, LinkStore,
        RuleStore, StatusStore, Store,
    };
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "state file {path} was written by a newer provisioner (schema version {found}; this binary knows up to {known}); upgrade provisioner, or point --state at another file"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "state file {path} is not a usable SQLite database ({reason}); restore it from a backup, or move it aside to start with an empty state"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("state file {path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("state file {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "state database {database} was written by a newer provisioner (schema version {found}; this binary knows up to {known}); upgrade provisioner, or point --state at another database"
    )]
    DatabaseTooNew {
        database: String,
        found: i64,
        known: i64,
    },
    /// A PostgreSQL failure. `database` is `postgres://user@host:port/db`,
    /// never with a password; `reason` is the server's message.
    #[error("state database {database}: {reason}")]
    Database { database: String, reason: String },
}

/// Up to this many rows asked for by key, reading them one by one beats
/// reading a whole table and keeping the ones wanted.
pub const READ_ONE_BY_ONE: usize = 2_000;

/// Milliseconds since the epoch, the unit of every timestamp in the state.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
