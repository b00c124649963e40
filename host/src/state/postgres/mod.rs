//! The PostgreSQL backend: the same tables as the SQLite file, in one
//! database that several hosts may share. Every statement the host runs on
//! it is in this folder, by the table it serves, as for SQLite:
//! `links.rs` (links, journal, guards, rules, health), `directory.rs`
//! (people, groups, changes), `status.rs` (what status reads), with the
//! trait implementations in `store.rs`.
//!
//! Connections come from a pool (deadpool), and each pooled connection
//! keeps its prepared statements, so that a statement is parsed once per
//! connection. Where SQLite relies on its single writer, this backend
//! takes a lock instead: every write to the directory holds a transaction
//! advisory lock (see `directory.rs`), so that a conditional write cannot
//! lose an update and the change sequence commits in the order it is
//! numbered.

mod directory;
mod groups;
mod links;
mod schema;
mod status;
mod store;
#[cfg(test)]
pub(super) mod testing;
mod transfer;

use std::str::FromStr;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{NoTls, Row};

use super::StateError;
pub use schema::CURRENT_VERSION;

/// The environment variable the password comes from: a password never
/// sits in the configuration or on a command line.
pub const PASSWORD_VARIABLE: &str = "PGPASSWORD";

/// At most this many connections per host: a pass runs its rules' batches
/// concurrently, and the status server and the SCIM server read beside it.
const POOL_SIZE: usize = 16;

/// How long a connection may take to open, unless the URL's
/// `connect_timeout` says.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A PostgreSQL state database.
pub struct PgState {
    pool: Pool,
    /// `postgres://user@host:port/db`, without any password: what
    /// messages and logs name.
    name: String,
}

impl std::fmt::Debug for PgState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgState").field("name", &self.name).finish()
    }
}

/// Whether `text` names a PostgreSQL database rather than a file.
pub fn is_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// Whether a `postgres://` URL carries a password, which belongs in
/// [`PASSWORD_VARIABLE`] instead.
pub fn has_password(url: &str) -> bool {
    tokio_postgres::Config::from_str(url).is_ok_and(|config| config.get_password().is_some())
}

/// `url` as messages show it: `postgres://user@host:port/db`, or only
/// the scheme if it does not parse, since the password could be anywhere.
pub fn redacted(url: &str) -> String {
    match tokio_postgres::Config::from_str(url) {
        Ok(config) => display_name(&config),
        Err(_) => "postgres://…".into(),
    }
}

/// `postgres://user@host:port/db` of a parsed configuration: enough to
/// tell databases apart, with no password.
fn display_name(config: &tokio_postgres::Config) -> String {
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let host = config
        .get_hosts()
        .first()
        .map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or("");
    format!("postgres://{user}{host}:{port}/{db}")
}

impl PgState {
    /// Connects to the database at `url` and migrates it. The password, if
    /// the server wants one, comes from [`PASSWORD_VARIABLE`].
    pub async fn open(url: &str) -> Result<PgState, StateError> {
        let state = PgState::lazy(url)?;
        state.prepare().await?;
        Ok(state)
    }

    /// The pool, with no connection made yet.
    fn lazy(url: &str) -> Result<PgState, StateError> {
        let mut config =
            tokio_postgres::Config::from_str(url).map_err(|e| StateError::Database {
                // The URL may be malformed anywhere, password included: name
                // only its scheme.
                database: "postgres://…".into(),
                reason: format!("not a usable PostgreSQL URL: {e}"),
            })?;
        let name = display_name(&config);
        if config.get_password().is_none()
            && let Ok(password) = std::env::var(PASSWORD_VARIABLE)
        {
            config.password(password);
        }
        config.application_name("provisioner");
        // An unreachable server is reported in seconds, not after the
        // operating system's TCP timeout, unless the URL says otherwise.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StateError::Database {
                database: name.clone(),
                reason: e.to_string(),
            })?;
        Ok(PgState { pool, name })
    }

    async fn prepare(&self) -> Result<(), StateError> {
        let mut client = self.client().await?;
        schema::migrate(self, &mut client).await
    }

    /// Where the state lives, for messages: never the password.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A pooled connection.
    async fn client(&self) -> Result<Object, StateError> {
        self.pool.get().await.map_err(|e| StateError::Database {
            database: self.name.clone(),
            reason: match e {
                deadpool_postgres::PoolError::Backend(e) => {
                    format!("cannot connect: {}", reason(&e))
                }
                other => format!("cannot connect: {other}"),
            },
        })
    }

    /// Wraps a driver error with the database's name.
    fn error(&self, error: tokio_postgres::Error) -> StateError {
        StateError::Database {
            database: self.name.clone(),
            reason: reason(&error),
        }
    }

    /// A row's value this binary cannot read, naming the database.
    fn invalid(&self, reason: impl std::fmt::Display) -> StateError {
        StateError::Database {
            database: self.name.clone(),
            reason: reason.to_string(),
        }
    }

    /// Column `index` of a row.
    fn get<'a, T: FromSql<'a>>(&self, row: &'a Row, index: usize) -> Result<T, StateError> {
        row.try_get(index).map_err(|e| self.error(e))
    }

    /// Every row of a statement, prepared once per connection.
    async fn rows<C: GenericClient>(
        &self,
        client: &C,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StateError> {
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| self.error(e))?;
        client
            .query(&statement, params)
            .await
            .map_err(|e| self.error(e))
    }

    /// Runs a statement, prepared once per connection; the rows it touched.
    async fn exec<C: GenericClient>(
        &self,
        client: &C,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StateError> {
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| self.error(e))?;
        client
            .execute(&statement, params)
            .await
            .map_err(|e| self.error(e))
    }

    /// Deletes the rows of `table` keyed by (rule, `key`) for each pair, in
    /// one statement over arrays. `table` and `key` are this backend's own
    /// names, never input.
    async fn delete_pairs<C: GenericClient>(
        &self,
        client: &C,
        table: &str,
        key: &str,
        pairs: &[(String, String)],
    ) -> Result<(), StateError> {
        if pairs.is_empty() {
            return Ok(());
        }
        let rules: Vec<&str> = pairs.iter().map(|(rule, _)| rule.as_str()).collect();
        let keys: Vec<&str> = pairs.iter().map(|(_, key)| key.as_str()).collect();
        self.exec(
            client,
            &format!(
                "DELETE FROM {table} t USING UNNEST($1::text[], $2::text[]) AS d(rule, k)
                 WHERE t.rule = d.rule AND t.{key} = d.k"
            ),
            &[&rules, &keys],
        )
        .await?;
        Ok(())
    }

    /// `count` numbers of a table's serial column, in increasing order:
    /// drawn before the rows are inserted, so that rows are numbered in
    /// the order given whatever order an insert of many goes in.
    async fn draw<C: GenericClient>(
        &self,
        client: &C,
        sequence: Sequence,
        count: usize,
    ) -> Result<Vec<i64>, StateError> {
        let (table, column) = match sequence {
            Sequence::Changes => ("changes", "seq"),
            Sequence::Journal => ("journal", "id"),
        };
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        let rows = self
            .rows(
                client,
                &format!(
                    "SELECT nextval(pg_get_serial_sequence('{table}', '{column}')) FROM generate_series(1, $1::bigint)"
                ),
                &[&count],
            )
            .await?;
        let mut numbers = rows
            .iter()
            .map(|row| self.get::<i64>(row, 0))
            .collect::<Result<Vec<_>, _>>()?;
        numbers.sort_unstable();
        Ok(numbers)
    }

    /// [`PgState::rows`] on a connection of its own.
    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StateError> {
        let client = self.client().await?;
        self.rows(&client, sql, params).await
    }

    /// [`PgState::exec`] on a connection of its own.
    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StateError> {
        let client = self.client().await?;
        self.exec(&client, sql, params).await
    }
}

/// A driver error as operators read it: a server error with its severity,
/// message and detail (the driver's own wording says only "db error"),
/// else the error and its cause.
fn reason(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{}: {} ({detail})", db.severity(), db.message()),
            None => format!("{}: {}", db.severity(), db.message()),
        },
        None => match std::error::Error::source(error) {
            Some(cause) if !error.to_string().contains(&cause.to_string()) => {
                format!("{error}: {cause}")
            }
            _ => error.to_string(),
        },
    }
}

/// The serial numbers the state draws.
#[derive(Debug, Clone, Copy)]
enum Sequence {
    /// The directory's change sequence.
    Changes,
    /// The journal's entry ids.
    Journal,
}

/// Text as a TEXT column can hold it. PostgreSQL refuses the NUL
/// character, which SQLite keeps and a store's answer may carry (a
/// message, a record id): each becomes U+FFFD, so that no answer can make
/// a commit fail, and with it every pass after.
fn text(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains('\0') {
        std::borrow::Cow::Owned(value.replace('\0', "\u{fffd}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

/// [`text`] of an optional value, owned.
fn text_of(value: Option<&str>) -> Option<String> {
    value.map(|v| text(v).into_owned())
}

/// A count as stored (BIGINT) to what the traits return.
fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::testing::TestDatabase;
    use super::*;
    use crate::directory::{Person, PersonChange, Put};
    use crate::state::prelude::*;

    fn person(id: &str, title: &str) -> Person {
        Person {
            id: id.into(),
            enabled: true,
            population: None,
            groups: ["staff".to_string()].into(),
            attributes: BTreeMap::from([
                ("email".to_string(), format!("{id}@example.com")),
                ("title".to_string(), title.to_string()),
            ]),
            deleted: false,
            changed_seq: 0,
        }
    }

    #[tokio::test]
    async fn a_new_database_is_migrated_and_a_newer_one_refused() {
        let test = TestDatabase::create();
        let db = PgState::open(test.url()).await.unwrap();
        let client = db.client().await.unwrap();
        let version: i64 = client
            .query_one("SELECT version FROM schema_version", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(version, CURRENT_VERSION);
        // Reopening is a no-op migration.
        PgState::open(test.url()).await.unwrap();
        client
            .execute(
                "UPDATE schema_version SET version = $1",
                &[&(CURRENT_VERSION + 3)],
            )
            .await
            .unwrap();
        let error = PgState::open(test.url()).await.unwrap_err().to_string();
        assert!(error.contains("written by a newer provisioner"), "{error}");
        assert!(error.contains(db.name()), "{error}");
    }

    /// Messages name the database, never the password.
    #[tokio::test]
    async fn errors_name_the_database_without_its_password() {
        let error = PgState::open("postgres://ops:hunter2@127.0.0.1:1/provisioning")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("postgres://ops@127.0.0.1:1/provisioning"),
            "{error}"
        );
        assert!(!error.contains("hunter2"), "{error}");
        assert!(has_password("postgres://ops:hunter2@db/provisioning"));
        assert!(!has_password("postgres://ops@db/provisioning"));
    }

    /// Eight writers of person p1, each with a title of its own, all at
    /// `expected`, at once: the people written.
    async fn race(db: &Arc<PgState>, expected: Option<i64>, kind: &'static str) -> Vec<Person> {
        let attempts = (0..8).map(|n| {
            let db = db.clone();
            tokio::spawn(async move {
                db.put_person(&person("p1", &format!("{kind}{n}")), expected, kind, "test")
                    .await
                    .unwrap()
            })
        });
        futures_util::future::join_all(attempts)
            .await
            .into_iter()
            .filter_map(|outcome| match outcome.unwrap() {
                Put::Written(person) => Some(person),
                Put::Stale => None,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// Two hosts writing the same person at the same version: exactly one
    /// write lands, the others are told they are stale.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_conditional_writes_let_exactly_one_win() {
        let test = TestDatabase::create();
        let db = Arc::new(test.state());
        // Creation at "no such person": one of them creates.
        let created = race(&db, None, "create").await;
        assert_eq!(created.len(), 1, "exactly one create wins");
        // An update at the version read: one of them updates.
        let winners = race(&db, Some(created[0].changed_seq), "update").await;
        assert_eq!(winners.len(), 1, "exactly one update wins");
        let stored = db.people_among(&["p1".to_string()].into()).await.unwrap();
        assert_eq!(stored, winners, "the winner is what is stored");
        assert_eq!(db.changes(Some("p1"), None, 100).await.unwrap().len(), 2);
    }

    /// A reader following the change sequence as the daemon does
    /// (`last_seq`, then `changed_since` what it saw last) sees every
    /// change while many writers commit at once: no change commits under
    /// a number lower than one already seen.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_follower_of_the_change_sequence_misses_nobody() {
        let test = TestDatabase::create();
        let db = Arc::new(test.state());
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let db = db.clone();
                tokio::spawn(async move {
                    for n in 0..25 {
                        let change = PersonChange {
                            id: format!("w{w}-{n}"),
                            enabled: Some(true),
                            population: None,
                            groups: None,
                            attributes: BTreeMap::from([(
                                "email".to_string(),
                                Some(format!("w{w}-{n}@example.com")),
                            )]),
                            replace_attributes: true,
                        };
                        db.upsert_people(&[change], "test").await.unwrap();
                    }
                })
            })
            .collect();
        let mut seen = 0;
        let mut people = std::collections::BTreeSet::new();
        let mut done = false;
        loop {
            let seq = db.last_seq().await.unwrap();
            if seq > seen {
                people.extend(db.changed_since(seen).await.unwrap());
                seen = seq;
            } else if done {
                break;
            }
            done = writers.iter().all(|w| w.is_finished());
            tokio::task::yield_now().await;
        }
        assert_eq!(people.len(), 8 * 25);
        assert_eq!(db.live_ids().await.unwrap(), people);
    }
}
