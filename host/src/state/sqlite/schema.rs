//! The state schema and its migrations. Migration N brings a file from
//! `user_version` N-1 to N; they only ever append.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: the source directory, links, the journal.
    r#"
    -- People in the source directory. A deleted person stays as a tombstone
    -- until every record provisioned for them is removed.
    CREATE TABLE people (
        id          TEXT PRIMARY KEY,
        enabled     INTEGER NOT NULL DEFAULT 1,
        population  TEXT,
        attributes  TEXT NOT NULL,            -- JSON object of strings
        deleted     INTEGER NOT NULL DEFAULT 0,
        changed_seq INTEGER NOT NULL          -- the change that last touched them
    );
    CREATE INDEX people_changed ON people (changed_seq);

    CREATE TABLE members (
        group_name TEXT NOT NULL,
        person_id  TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
        PRIMARY KEY (group_name, person_id)
    );
    CREATE INDEX members_person ON members (person_id);

    -- Every change to the directory, in order: what the scheduler follows.
    CREATE TABLE changes (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        person_id TEXT NOT NULL,
        kind      TEXT NOT NULL,
        at        INTEGER NOT NULL
    );

    -- Rules the state has seen, so that a rule removed from the
    -- configuration is noticed and its records handled.
    CREATE TABLE rules (
        name       TEXT PRIMARY KEY,
        connection TEXT NOT NULL,
        seen_at    INTEGER NOT NULL
    );

    -- Rule x person -> target record.
    CREATE TABLE links (
        rule          TEXT NOT NULL,
        person_id     TEXT NOT NULL,
        connection    TEXT NOT NULL,
        target_id     TEXT,                   -- null until a record exists
        written       TEXT,                   -- JSON of the attributes last written
        hash          TEXT,
        state         TEXT NOT NULL,          -- synced, unsynced, partial, failed, removing
        reason        TEXT,                   -- why unsynced or partial
        error_class   TEXT,
        error_code    TEXT,
        error_message TEXT,
        error_fields  TEXT,
        attempts      INTEGER NOT NULL DEFAULT 0,
        next_retry    INTEGER,
        person_seq    INTEGER,                -- the person's changed_seq when last tried
        updated_at    INTEGER NOT NULL,
        PRIMARY KEY (rule, person_id)
    );
    CREATE INDEX links_person ON links (person_id);
    CREATE INDEX links_retry ON links (next_retry);

    -- Every action, written before it is sent and completed after the
    -- answer; an entry without an outcome was in flight during a crash.
    CREATE TABLE journal (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        rule        TEXT,
        person_id   TEXT,
        connection  TEXT NOT NULL,
        action      TEXT NOT NULL,
        target_id   TEXT,
        detail      TEXT,
        started_at  INTEGER NOT NULL,
        finished_at INTEGER,
        outcome     TEXT,
        error       TEXT
    );
    CREATE INDEX journal_person ON journal (person_id);
    CREATE INDEX journal_open ON journal (finished_at);

    -- Connections the host stopped calling, and why.
    CREATE TABLE quarantine (
        connection TEXT PRIMARY KEY,
        reason     TEXT NOT NULL,
        since      INTEGER NOT NULL
    );

    -- Removals held back by the accidental-deletion guard.
    CREATE TABLE guards (
        rule       TEXT PRIMARY KEY,
        tripped_at INTEGER NOT NULL,
        planned    INTEGER NOT NULL,
        linked     INTEGER NOT NULL,
        approved   INTEGER NOT NULL DEFAULT 0
    );
    "#,
    // 2: what status pages show: each rule's last pass, each connection's
    // API usage.
    r#"
    ALTER TABLE rules ADD COLUMN last_finished INTEGER;
    ALTER TABLE rules ADD COLUMN last_error TEXT;

    CREATE TABLE usage (
        connection TEXT PRIMARY KEY,
        used       INTEGER NOT NULL,
        max        INTEGER NOT NULL,
        at         INTEGER NOT NULL
    );
    "#,
    // 3: the plugins a running host serves, so that every status view
    // shows the version in use.
    r#"
    CREATE TABLE plugins (
        name      TEXT PRIMARY KEY,
        version   TEXT NOT NULL,
        contract  TEXT NOT NULL,
        path      TEXT NOT NULL,
        loaded_at INTEGER NOT NULL
    );
    "#,
    // 4: indexes over the few rows that are looked for. Every entry used
    // to enter the open-journal index and move within it when closed, and
    // every link entered the retry index with no retry due; now an entry
    // leaves the index when it closes, and a link enters only with a retry.
    r#"
    DROP INDEX journal_open;
    CREATE INDEX journal_open ON journal (id) WHERE finished_at IS NULL;
    DROP INDEX links_retry;
    CREATE INDEX links_retry ON links (next_retry) WHERE next_retry IS NOT NULL;
    "#,
    // 5: plugin names that more than one file claims, so that every
    // status view shows the clash until it is resolved.
    r#"
    CREATE TABLE plugin_clashes (
        name  TEXT PRIMARY KEY,
        files TEXT NOT NULL               -- JSON array of the claiming files
    );
    "#,
    // 6: records by connection, so that a rule letting go of a record can
    // ask whether another rule of the connection links it; the running
    // host's last scan of its plugin directory, so that status can tell a
    // connection whose plugin file is missing or refused; and each rule's
    // mappings, so that a change of them is reviewed before it rewrites
    // every record.
    r#"
    CREATE INDEX links_target ON links (connection, target_id) WHERE target_id IS NOT NULL;

    CREATE TABLE plugin_scan (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        at      INTEGER NOT NULL,
        refused TEXT NOT NULL               -- JSON array of [file, reason]
    );

    -- What each rule wrote through at its last pass (mapping::
    -- fingerprint), and the updates a change of it waits with.
    ALTER TABLE rules ADD COLUMN mappings TEXT;
    CREATE TABLE update_guards (
        rule       TEXT PRIMARY KEY,
        tripped_at INTEGER NOT NULL,
        planned    INTEGER NOT NULL,
        linked     INTEGER NOT NULL,
        mappings   TEXT NOT NULL,          -- the change an approval is for
        approved   INTEGER NOT NULL DEFAULT 0
    );
    "#,
    // 7: the failed links, which status lists without reading the rest.
    r#"
    CREATE INDEX links_failed ON links (rule, person_id) WHERE state = 'failed';
    "#,
    // 8: the directory groups rules push, and the members last written.
    r#"
    CREATE TABLE group_links (
        rule       TEXT NOT NULL,
        group_name TEXT NOT NULL,
        connection TEXT NOT NULL,
        target_id  TEXT,
        members    TEXT NOT NULL,          -- JSON array of record ids
        state      TEXT NOT NULL,
        reason     TEXT,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (rule, group_name)
    );
    "#,
    // 9: who made each change (`cli`, or `scim:TOKEN` for the SCIM
    // service provider); people found by the SCIM userName (their own, or
    // for someone without one their email) and externalId an identity
    // provider queries by; and the groups known by an id of
    // their own, which a SCIM client keeps across renames and which exist
    // before anyone is in them.
    r#"
    ALTER TABLE changes ADD COLUMN source TEXT;
    CREATE INDEX people_user_name
        ON people (lower(json_extract(attributes, '$.user_name'))) WHERE deleted = 0;
    CREATE INDEX people_external_id
        ON people (json_extract(attributes, '$.external_id')) WHERE deleted = 0;
    CREATE INDEX people_email
        ON people (lower(json_extract(attributes, '$.email'))) WHERE deleted = 0;
    CREATE TABLE directory_groups (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        external_id TEXT,
        created_at  INTEGER NOT NULL,
        changed_at  INTEGER NOT NULL,
        version     INTEGER NOT NULL
    );
    "#,
    // 10: each rule's linked records counted from an index alone: every
    // pass asks, and the daemon passes once per change.
    r#"
    CREATE INDEX links_linked ON links (rule) WHERE target_id IS NOT NULL;
    "#,
];

/// The schema version this binary writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Applies the migrations after `from`, each in its own transaction.
pub(super) fn migrate(connection: &mut Connection, from: i64) -> rusqlite::Result<()> {
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(from.max(0) as usize) {
        let version = index as i64 + 1;
        let transaction = super::write_transaction(connection)?;
        transaction.execute_batch(sql)?;
        transaction.execute_batch(&format!("PRAGMA user_version = {version}"))?;
        transaction.commit()?;
        tracing::info!(version, "migrated the state schema");
    }
    Ok(())
}
