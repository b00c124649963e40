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
pub mod transfer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub use postgres::{PASSWORD_VARIABLE, PgState};
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

/// Where the state lives: a SQLite file (the default), or a PostgreSQL
/// database named by a `postgres://user@host:port/db` URL, whose password
/// comes from [`PASSWORD_VARIABLE`], never from the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    Postgres(String),
}

impl Location {
    /// `--state` or the configuration's `state`: a `postgres://` (or
    /// `postgresql://`) URL, else a file, relative to `base`. A URL with
    /// a password is refused, with the variable to use instead: a
    /// password in a file or on a command line is one anyone who reads
    /// them has.
    pub fn parse(text: &Path, base: &Path) -> Result<Location, String> {
        match text.to_str() {
            Some(url) if postgres::is_url(url) => {
                if postgres::has_password(url) {
                    return Err(format!(
                        "the PostgreSQL URL holds a password; leave it out (postgres://user@host:port/db) and set {PASSWORD_VARIABLE} in the environment instead"
                    ));
                }
                Ok(Location::Postgres(url.to_string()))
            }
            _ => Ok(Location::File(base.join(text))),
        }
    }

    /// Opens the state, creating (or migrating) it if needed.
    pub async fn open(&self) -> Result<Arc<dyn Store>, StateError> {
        Ok(match self {
            Location::File(path) => Arc::new(StateDb::open(path)?),
            Location::Postgres(url) => Arc::new(PgState::open(url).await?),
        })
    }

    /// Opens a state file only if it exists, for read-only views that must
    /// not create one; a database is always there to open.
    pub async fn open_existing(&self) -> Result<Option<Arc<dyn Store>>, StateError> {
        match self {
            Location::File(path) if !path.exists() => Ok(None),
            _ => self.open().await.map(Some),
        }
    }
}

impl std::fmt::Display for Location {
    /// The file, or the database without any password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => f.write_str(&postgres::redacted(url)),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn a_url_selects_postgres_and_anything_else_a_file() {
        let base = Path::new("/etc/provisioner");
        assert_eq!(
            Location::parse(Path::new("postgres://ops@db:5433/provisioning"), base),
            Ok(Location::Postgres(
                "postgres://ops@db:5433/provisioning".into()
            ))
        );
        assert_eq!(
            Location::parse(Path::new("state/p.db"), base),
            Ok(Location::File(base.join("state/p.db")))
        );
        let shown = Location::Postgres("postgresql://ops@db/provisioning".into()).to_string();
        assert_eq!(shown, "postgres://ops@db:5432/provisioning");
    }

    /// A password in the configuration is refused, naming the field and
    /// the variable to use, and never repeating the password.
    #[test]
    fn a_password_in_the_configuration_is_refused() {
        let error = Config::parse(
            Path::new("/etc/provisioner/provisioner.toml"),
            "state = \"postgres://ops:hunter2@db/provisioning\"\n".into(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("provisioner.toml:1:9"), "{error}");
        assert!(
            error.contains("state: the PostgreSQL URL holds a password"),
            "{error}"
        );
        assert!(error.contains(PASSWORD_VARIABLE), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        let config = Config::parse(
            Path::new("/etc/provisioner/provisioner.toml"),
            "state = \"postgres://ops@db/provisioning\"\n".into(),
        )
        .unwrap();
        assert_eq!(
            config.state(),
            &Location::Postgres("postgres://ops@db/provisioning".into())
        );
    }
}
