//! A database of its own for each test, on the server `tests/postgres.sh`
//! starts (or the one `PROVISIONER_TEST_POSTGRES` names), dropped when the
//! test is done. A test that finds no server fails and says how to start
//! one: the PostgreSQL tests are never skipped without a word.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio_postgres::NoTls;

use super::PgState;

/// The variable that names the test server: a URL to a database the
/// tests may create databases from.
pub const URL_VARIABLE: &str = "PROVISIONER_TEST_POSTGRES";

/// The server `tests/postgres.sh` starts: trusted on loopback, as the
/// `postgres` user when run as root, else as the user who ran it.
pub fn server_url() -> String {
    if let Ok(url) = std::env::var(URL_VARIABLE) {
        return url;
    }
    let user = match std::env::var("USER") {
        Ok(user) if !user.is_empty() && user != "root" => user,
        _ => "postgres".into(),
    };
    format!("postgres://{user}@127.0.0.1:54329/postgres")
}

/// A fresh database, dropped (with whatever is still connected to it)
/// when this is.
pub struct TestDatabase {
    admin: String,
    name: String,
    url: String,
}

/// Runs `f` on a runtime of its own on another thread: creating and
/// dropping a database works the same from a test's runtime, from a
/// constructor that is not async, and from `Drop`.
fn aside<T: Send + 'static>(
    f: impl FnOnce() -> std::pin::Pin<Box<dyn Future<Output = T> + Send>> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the test database")
            .block_on(f())
    })
    .join()
    .expect("the test database's thread")
}

async fn admin_client(admin: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(admin, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

impl TestDatabase {
    /// Creates and migrates a database with a name of its own. Panics
    /// with what to do when no server answers.
    pub fn create() -> TestDatabase {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let admin = server_url();
        let name = format!(
            "provisioner_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        let url = match admin.rfind('/') {
            Some(slash) => format!("{}/{name}", &admin[..slash]),
            None => panic!("{URL_VARIABLE}={admin} is not a postgres:// URL with a database"),
        };
        let (a, n, u) = (admin.clone(), name.clone(), url.clone());
        aside(move || {
            Box::pin(async move {
                let client = admin_client(&a).await.unwrap_or_else(|e| {
                    panic!(
                        "no PostgreSQL server answers at {a} ({e}); start one with `bash tests/postgres.sh`, or set {URL_VARIABLE}"
                    )
                });
                // A linguistic default collation (ICU's en-US, where "B"
                // sorts beside "b" and lower() folds "Ä"), so that a
                // statement that leans on the database's locale instead of
                // byte order fails here rather than at an operator's.
                client
                    .batch_execute(&format!(
                        "CREATE DATABASE {n} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
                    ))
                    .await
                    .unwrap_or_else(|e| panic!("creating the test database {n}: {e:?}"));
                PgState::open(&u)
                    .await
                    .unwrap_or_else(|e| panic!("migrating the test database: {e}"));
            })
        });
        TestDatabase { admin, name, url }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The state over it; its connections are made when first used, on
    /// the runtime that uses them.
    pub fn state(&self) -> PgState {
        PgState::lazy(&self.url).expect("the test database's URL")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        aside(move || {
            Box::pin(async move {
                if let Ok(client) = admin_client(&admin).await {
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            })
        });
    }
}
