//! The PostgreSQL schema and its migrations. Migration N brings a database
//! from `schema_version` N-1 to N, in a transaction of its own; they only
//! ever append. Version 1 is the SQLite file's schema at its version 10,
//! table for table and column for column, so that a state moves between
//! the backends row for row.
//!
//! Text that is compared or ordered is `COLLATE "C"`: ids sort by their
//! bytes, as in SQLite and in the engine's maps, whatever the database's
//! locale, and `lower()` folds ASCII only, as SQLite's does.

use deadpool_postgres::Object;

use super::PgState;
use crate::state::StateError;

const MIGRATIONS: &[&str] = &[
    // 1: the SQLite schema at its version 10.
    r#"
    CREATE TABLE people (
        id          TEXT COLLATE "C" PRIMARY KEY,
        enabled     BOOLEAN NOT NULL DEFAULT TRUE,
        population  TEXT COLLATE "C",
        attributes  JSONB NOT NULL,           -- object of strings
        deleted     BOOLEAN NOT NULL DEFAULT FALSE,
        changed_seq BIGINT NOT NULL
    );
    CREATE INDEX people_changed ON people (changed_seq);
    CREATE INDEX people_user_name
        ON people (lower((attributes->>'user_name') COLLATE "C")) WHERE NOT deleted;
    CREATE INDEX people_external_id
        ON people ((attributes->>'external_id')) WHERE NOT deleted;
    CREATE INDEX people_email
        ON people (lower((attributes->>'email') COLLATE "C")) WHERE NOT deleted;

    CREATE TABLE members (
        group_name TEXT COLLATE "C" NOT NULL,
        person_id  TEXT COLLATE "C" NOT NULL REFERENCES people (id) ON DELETE CASCADE,
        PRIMARY KEY (group_name, person_id)
    );
    CREATE INDEX members_person ON members (person_id);

    CREATE TABLE changes (
        seq       BIGSERIAL PRIMARY KEY,
        person_id TEXT COLLATE "C" NOT NULL,
        kind      TEXT NOT NULL,
        at        BIGINT NOT NULL,
        source    TEXT
    );
    CREATE INDEX changes_person ON changes (person_id);

    CREATE TABLE rules (
        name          TEXT COLLATE "C" PRIMARY KEY,
        connection    TEXT COLLATE "C" NOT NULL,
        seen_at       BIGINT NOT NULL,
        last_finished BIGINT,
        last_error    TEXT,
        mappings      TEXT
    );

    CREATE TABLE links (
        rule          TEXT COLLATE "C" NOT NULL,
        person_id     TEXT COLLATE "C" NOT NULL,
        connection    TEXT COLLATE "C" NOT NULL,
        target_id     TEXT COLLATE "C",
        written       TEXT,
        hash          TEXT,
        state         TEXT NOT NULL,
        reason        TEXT,
        error_class   TEXT,
        error_code    TEXT,
        error_message TEXT,
        error_fields  TEXT,
        attempts      BIGINT NOT NULL DEFAULT 0,
        next_retry    BIGINT,
        person_seq    BIGINT,
        updated_at    BIGINT NOT NULL,
        PRIMARY KEY (rule, person_id)
    );
    CREATE INDEX links_person ON links (person_id);
    CREATE INDEX links_retry ON links (next_retry) WHERE next_retry IS NOT NULL;
    CREATE INDEX links_target ON links (connection, target_id) WHERE target_id IS NOT NULL;
    CREATE INDEX links_failed ON links (rule, person_id) WHERE state = 'failed';
    CREATE INDEX links_linked ON links (rule) WHERE target_id IS NOT NULL;

    CREATE TABLE journal (
        id          BIGSERIAL PRIMARY KEY,
        rule        TEXT COLLATE "C",
        person_id   TEXT COLLATE "C",
        connection  TEXT COLLATE "C" NOT NULL,
        action      TEXT NOT NULL,
        target_id   TEXT,
        detail      TEXT,
        started_at  BIGINT NOT NULL,
        finished_at BIGINT,
        outcome     TEXT,
        error       TEXT
    );
    CREATE INDEX journal_person ON journal (person_id);
    CREATE INDEX journal_open ON journal (id) WHERE finished_at IS NULL;

    CREATE TABLE quarantine (
        connection TEXT COLLATE "C" PRIMARY KEY,
        reason     TEXT NOT NULL,
        since      BIGINT NOT NULL
    );

    CREATE TABLE guards (
        rule       TEXT COLLATE "C" PRIMARY KEY,
        tripped_at BIGINT NOT NULL,
        planned    BIGINT NOT NULL,
        linked     BIGINT NOT NULL,
        approved   BIGINT NOT NULL DEFAULT 0
    );

    CREATE TABLE usage (
        connection TEXT COLLATE "C" PRIMARY KEY,
        used       BIGINT NOT NULL,
        max        BIGINT NOT NULL,
        at         BIGINT NOT NULL
    );

    CREATE TABLE plugins (
        name      TEXT COLLATE "C" PRIMARY KEY,
        version   TEXT NOT NULL,
        contract  TEXT NOT NULL,
        path      TEXT NOT NULL,
        loaded_at BIGINT NOT NULL
    );

    CREATE TABLE plugin_clashes (
        name  TEXT COLLATE "C" PRIMARY KEY,
        files TEXT NOT NULL
    );

    CREATE TABLE plugin_scan (
        id      BIGINT PRIMARY KEY CHECK (id = 1),
        at      BIGINT NOT NULL,
        refused TEXT NOT NULL
    );

    CREATE TABLE update_guards (
        rule       TEXT COLLATE "C" PRIMARY KEY,
        tripped_at BIGINT NOT NULL,
        planned    BIGINT NOT NULL,
        linked     BIGINT NOT NULL,
        mappings   TEXT NOT NULL,
        approved   BIGINT NOT NULL DEFAULT 0
    );

    CREATE TABLE group_links (
        rule       TEXT COLLATE "C" NOT NULL,
        group_name TEXT COLLATE "C" NOT NULL,
        connection TEXT COLLATE "C" NOT NULL,
        target_id  TEXT,
        members    TEXT NOT NULL,
        state      TEXT NOT NULL,
        reason     TEXT,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (rule, group_name)
    );

    CREATE TABLE directory_groups (
        id          TEXT COLLATE "C" PRIMARY KEY,
        name        TEXT COLLATE "C" NOT NULL UNIQUE,
        external_id TEXT,
        created_at  BIGINT NOT NULL,
        changed_at  BIGINT NOT NULL,
        version     BIGINT NOT NULL
    );
    "#,
];

/// The schema version this binary writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// The transaction advisory lock that migrations hold, so that hosts
/// starting together migrate one after the other (`'migr'`).
const MIGRATION_LOCK: i64 = 0x6d69_6772;

/// The version the database is at, in the open transaction.
async fn version(
    db: &PgState,
    client: &impl deadpool_postgres::GenericClient,
) -> Result<i64, StateError> {
    db.exec(
        client,
        "CREATE TABLE IF NOT EXISTS schema_version (
            id      BIGINT PRIMARY KEY CHECK (id = 1),
            version BIGINT NOT NULL
        )",
        &[],
    )
    .await?;
    let rows = db
        .rows(
            client,
            "SELECT version FROM schema_version WHERE id = 1",
            &[],
        )
        .await?;
    match rows.first() {
        Some(row) => db.get(row, 0),
        None => Ok(0),
    }
}

/// Applies the migrations the database lacks, each in its own
/// transaction under [`MIGRATION_LOCK`]; refuses a database a newer binary
/// wrote.
pub(super) async fn migrate(db: &PgState, client: &mut Object) -> Result<(), StateError> {
    loop {
        let transaction = client.transaction().await.map_err(|e| db.error(e))?;
        db.exec(
            &transaction,
            "SELECT pg_advisory_xact_lock($1)",
            &[&MIGRATION_LOCK],
        )
        .await?;
        let found = version(db, &transaction).await?;
        if found > CURRENT_VERSION {
            return Err(StateError::DatabaseTooNew {
                database: db.name.clone(),
                found,
                known: CURRENT_VERSION,
            });
        }
        let Some(sql) = MIGRATIONS.get(usize::try_from(found).unwrap_or(0)) else {
            transaction.commit().await.map_err(|e| db.error(e))?;
            return Ok(());
        };
        let next = found + 1;
        transaction
            .batch_execute(sql)
            .await
            .map_err(|e| db.error(e))?;
        db.exec(
            &transaction,
            "INSERT INTO schema_version (id, version) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version",
            &[&next],
        )
        .await?;
        transaction.commit().await.map_err(|e| db.error(e))?;
        tracing::info!(version = next, database = %db.name, "migrated the state schema");
    }
}
