//! Fresh states of either backend for the tests, so that the same
//! assertions hold on SQLite and PostgreSQL: [`on_each_backend!`] turns
//! `async fn name(backend: Backend)` into one test per backend.

use std::sync::Arc;

pub use super::postgres::testing::TestDatabase;
use super::{StateDb, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// An empty state: SQLite in memory, or a PostgreSQL database of its own
/// that is dropped with this.
pub struct TestState {
    db: Arc<dyn Store>,
    _database: Option<TestDatabase>,
}

impl TestState {
    pub fn new(backend: Backend) -> TestState {
        match backend {
            Backend::Sqlite => TestState {
                db: Arc::new(StateDb::in_memory().expect("an in-memory state")),
                _database: None,
            },
            Backend::Postgres => {
                let database = TestDatabase::create();
                TestState {
                    db: Arc::new(database.state()),
                    _database: Some(database),
                }
            }
        }
    }

    /// The state, to hand to an engine.
    pub fn arc(&self) -> Arc<dyn Store> {
        self.db.clone()
    }
}

impl std::ops::Deref for TestState {
    type Target = dyn Store;

    fn deref(&self) -> &(dyn Store + 'static) {
        &*self.db
    }
}

/// One `#[tokio::test]` per backend for each `async fn NAME(backend:
/// Backend)` named, in modules `sqlite` and `postgres`.
macro_rules! on_each_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::state::testing::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::state::testing::Backend::Postgres).await
                }
            )*
        }
    };
}
pub(crate) use on_each_backend;
