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

    /// What every backend must do alike, beyond what the engine's and the
    /// directory's tests reach.
    mod backends {
        use std::collections::BTreeSet;

        use serde_json::Value as Json;

        use crate::directory::{Key, PersonChange};
        use crate::state::testing::{Backend, TestState, on_each_backend};
        use crate::sync::links::{JournalEntry, Link, LinkState};

        fn entry(person: &str, action: &str) -> JournalEntry {
            JournalEntry {
                rule: Some("prospects".into()),
                person_id: Some(person.into()),
                connection: "leads".into(),
                action: action.into(),
                target_id: None,
                detail: Json::Null,
            }
        }

        /// Entries a crash left open close as unknown, and an interrupted
        /// create leaves a link saying a record may exist, unless the
        /// person already had one.
        async fn an_interrupted_create_leaves_a_link_that_says_so(backend: Backend) {
            let db = TestState::new(backend);
            let mut known = Link::new("prospects", "p2", "leads");
            known.target_id = Some("00Q2".into());
            known.state = LinkState::Synced;
            db.commit(std::slice::from_ref(&known), &[], &[])
                .await
                .unwrap();
            let opened = db
                .journal_open(&[
                    entry("p1", "create"),
                    entry("p2", "create"),
                    entry("p3", "update"),
                ])
                .await
                .unwrap();
            assert!(opened.windows(2).all(|w| w[0] < w[1]), "{opened:?}");
            let answered = db.journal_open(&[entry("p4", "create")]).await.unwrap();
            db.commit(&[], &[], &[(answered[0], Err("refused".into()))])
                .await
                .unwrap();
            assert_eq!(db.close_interrupted().await.unwrap(), opened.len());
            let after = db.of_rule("prospects").await.unwrap();
            assert_eq!(after["p1"].state, LinkState::Unsynced);
            assert!(
                after["p1"]
                    .reason
                    .as_deref()
                    .unwrap()
                    .contains("never recorded")
            );
            assert_eq!(after["p2"].target_id, known.target_id);
            assert!(!after.contains_key("p3") && !after.contains_key("p4"));
            assert_eq!(db.close_interrupted().await.unwrap(), 0);
            let journal = db.journal(None, None, None, 10).await.unwrap();
            let outcomes: Vec<&str> = journal
                .iter()
                .map(|e| e["outcome"].as_str().unwrap())
                .collect();
            assert_eq!(outcomes, ["failed", "unknown", "unknown", "unknown"]);
        }

        /// A commit that names a link twice keeps the last, and one that
        /// saves and drops a link drops it.
        async fn a_commit_keeps_the_last_word_on_each_link(backend: Backend) {
            let db = TestState::new(backend);
            let mut first = Link::new("r", "p1", "c");
            first.target_id = Some("old".into());
            let mut second = first.clone();
            second.target_id = Some("new".into());
            let gone = Link::new("r", "p2", "c");
            db.commit(&[first, second, gone], &[("r".into(), "p2".into())], &[])
                .await
                .unwrap();
            let links = db.of_rule("r").await.unwrap();
            assert_eq!(links.len(), 1);
            assert_eq!(links["p1"].target_id.as_deref(), Some("new"));
        }

        /// Ids order by their bytes on every backend, whatever the
        /// database's locale: the engine slices people by id ranges.
        async fn people_are_read_in_byte_order_of_their_ids(backend: Backend) {
            let db = TestState::new(backend);
            let ids = ["b", "B", "a", "Z", "ä", "a-1", "a_1", "10", "9", "é"];
            let changes: Vec<PersonChange> = ids
                .iter()
                .map(|id| PersonChange {
                    id: id.to_string(),
                    ..PersonChange::default()
                })
                .collect();
            db.upsert_people(&changes, "cli").await.unwrap();
            let mut expected: Vec<&str> = ids.to_vec();
            expected.sort();
            let read: Vec<String> = db
                .people_after(None, None)
                .await
                .unwrap()
                .into_iter()
                .map(|p| p.id)
                .collect();
            assert_eq!(read, expected);
            let page: Vec<String> = db
                .people_after(Some("a"), Some(3))
                .await
                .unwrap()
                .into_iter()
                .map(|p| p.id)
                .collect();
            assert_eq!(page, ["a-1", "a_1", "b"]);
            let mut links = Vec::new();
            for id in ids {
                links.push(Link::new("r", id, "c"));
            }
            db.commit(&links, &[], &[]).await.unwrap();
            let slice: BTreeSet<String> = db
                .of_rule_between("r", Some("Z"), Some("b"))
                .await
                .unwrap()
                .into_keys()
                .collect();
            assert_eq!(
                slice,
                BTreeSet::from(["a", "a-1", "a_1", "b"].map(String::from))
            );
        }

        /// A userName is compared without case in ASCII only, as SQLite's
        /// `lower` folds it, whatever the database's locale.
        async fn user_names_fold_ascii_letters_only(backend: Backend) {
            let db = TestState::new(backend);
            let mut person = crate::directory::Person {
                id: "u1".into(),
                enabled: true,
                population: None,
                groups: BTreeSet::new(),
                attributes: [("user_name".to_string(), "Äda@X.test".to_string())].into(),
                deleted: false,
                changed_seq: 0,
            };
            db.put_person(&person, None, "create", "cli").await.unwrap();
            let found = |name: &'static str| {
                let db = &db;
                async move {
                    db.people_by(Key::UserName, name)
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|p| p.id)
                        .collect::<Vec<_>>()
                }
            };
            assert_eq!(found("ÄDA@x.TEST").await, ["u1"]);
            assert!(found("äda@x.test").await.is_empty());
            person.id = "u2".into();
            person
                .attributes
                .insert("user_name".into(), "äda@x.test".into());
            assert!(matches!(
                db.put_person(&person, None, "create", "cli").await.unwrap(),
                crate::directory::Put::Written(_)
            ));
        }

        /// A store's answer with a NUL character in it (which PostgreSQL's
        /// text refuses) is kept, and does not fail the commit.
        async fn a_store_answer_with_a_nul_is_kept(backend: Backend) {
            let db = TestState::new(backend);
            let ids = db.journal_open(&[entry("p1", "create")]).await.unwrap();
            let mut link = Link::new("prospects", "p1", "leads");
            link.state = LinkState::Failed;
            link.error = Some(crate::sync::links::LinkError {
                class: "rejected".into(),
                code: Some("BAD\0CODE".into()),
                message: "refused: \0 is not allowed".into(),
                fields: vec!["Ti\0tle".into()],
            });
            db.commit(&[link], &[], &[(ids[0], Err("refused\0".into()))])
                .await
                .unwrap();
            db.quarantine("leads", "stopped\0").await.unwrap();
            let stored = &db.of_rule("prospects").await.unwrap()["p1"];
            let error = stored.error.as_ref().unwrap();
            assert!(error.message.starts_with("refused: "), "{error:?}");
            assert_eq!(error.fields.len(), 1);
            let journal = db.journal(None, None, None, 1).await.unwrap();
            assert!(journal[0]["error"].as_str().unwrap().starts_with("refused"));
            assert!(db.quarantined("leads").await.unwrap().is_some());
        }

        on_each_backend!(
            a_store_answer_with_a_nul_is_kept,
            user_names_fold_ascii_letters_only,
            an_interrupted_create_leaves_a_link_that_says_so,
            a_commit_keeps_the_last_word_on_each_link,
            people_are_read_in_byte_order_of_their_ids,
        );
    }
}
