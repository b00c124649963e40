//! Links, the journal, quarantine, guards, rules and the plugins a host
//! serves: the sync engine's tables.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{OptionalExtension, params};
use serde_json::Value as Json;

use super::{StateDb, write_transaction};
use crate::runtime::contract::Value;
use crate::state::{StateError, now_ms};
use crate::sync::links::{
    JournalEntry, Link, LinkError, LinkState, PluginRecord, UpdateGuard, detail_json, from_json,
    written_json,
};

/// A journal row: open, or, with an outcome, finished when it started.
const JOURNAL_INSERT: &str = "INSERT INTO journal (rule, person_id, connection, action, target_id, detail, started_at, finished_at, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

fn insert_journal(
    statement: &mut rusqlite::Statement<'_>,
    entry: &JournalEntry,
    now: i64,
    outcome: Option<&str>,
) -> rusqlite::Result<usize> {
    statement.execute(params![
        entry.rule,
        entry.person_id,
        entry.connection,
        entry.action,
        entry.target_id,
        detail_json(&entry.detail),
        now,
        outcome.map(|_| now),
        outcome
    ])
}

/// A link state as stored; text this binary did not write is an error of
/// the row, naming it.
pub(super) fn link_state(text: &str) -> rusqlite::Result<LinkState> {
    LinkState::parse(text).map_err(|message| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, message.into())
    })
}

fn read_link(row: &rusqlite::Row<'_>) -> rusqlite::Result<Link> {
    let written: Option<String> = row.get(4)?;
    let written: BTreeMap<String, Value> = written
        .and_then(|w| serde_json::from_str::<serde_json::Map<String, Json>>(&w).ok())
        .map(|m| m.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        .unwrap_or_default();
    let class: Option<String> = row.get(7)?;
    let fields: Option<String> = row.get(10)?;
    Ok(Link {
        rule: row.get(0)?,
        person_id: row.get(1)?,
        connection: row.get(2)?,
        target_id: row.get(3)?,
        written,
        state: link_state(&row.get::<_, String>(5)?)?,
        reason: row.get(6)?,
        error: match class {
            Some(class) => Some(LinkError {
                class,
                code: row.get(8)?,
                message: row.get::<_, Option<String>>(9)?.unwrap_or_default(),
                fields: fields
                    .and_then(|f| serde_json::from_str(&f).ok())
                    .unwrap_or_default(),
            }),
            None => None,
        },
        attempts: row.get::<_, i64>(11)? as u32,
        next_retry: row.get(12)?,
        person_seq: row.get(13)?,
        updated_at: row.get(14)?,
    })
}

const LINK_COLUMNS: &str = "rule, person_id, connection, target_id, written, state, reason, error_class, error_code, error_message, error_fields, attempts, next_retry, person_seq, updated_at";

/// Every link of a rule, by person.
pub(super) fn of_rule(db: &StateDb, rule: &str) -> Result<BTreeMap<String, Link>, StateError> {
    of_rule_between(db, rule, None, None)
}

/// The links of a rule whose person ids sort after `after` and up to
/// `through` (to the end if `None`): what one slice of a pass covers,
/// including links of people no longer in the directory.
pub(super) fn of_rule_between(
    db: &StateDb,
    rule: &str,
    after: Option<&str>,
    through: Option<&str>,
) -> Result<BTreeMap<String, Link>, StateError> {
    let connection = db.lock();
    // The upper bound is left out of the statement, not made optional
    // in it, so that a bounded slice stops at its bound in the
    // (rule, person_id) key instead of scanning to the rule's end.
    let range = match through {
        Some(_) => "person_id > ?2 AND person_id <= ?3",
        None => "person_id > ?2",
    };
    let bounds = [Some(rule), Some(after.unwrap_or("")), through];
    let rows = connection
        .prepare_cached(&format!(
            "SELECT {LINK_COLUMNS} FROM links WHERE rule = ?1 AND {range}"
        ))
        .and_then(|mut statement| {
            statement
                .query_map(
                    rusqlite::params_from_iter(bounds.into_iter().flatten()),
                    read_link,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(|e| db.error(e))?;
    Ok(rows
        .into_iter()
        .map(|link| (link.person_id.clone(), link))
        .collect())
}

/// The links of a few people in one rule, read one by one: the slice
/// of a targeted pass, which the engine keeps to a slice's size.
pub(super) fn of_rule_among(
    db: &StateDb,
    rule: &str,
    people: &std::collections::BTreeSet<String>,
) -> Result<BTreeMap<String, Link>, StateError> {
    let connection = db.lock();
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT {LINK_COLUMNS} FROM links WHERE rule = ?1 AND person_id = ?2"
        ))
        .map_err(|e| db.error(e))?;
    let mut links = BTreeMap::new();
    for person in people {
        if let Some(link) = statement
            .query_row(params![rule, person], read_link)
            .optional()
            .map_err(|e| db.error(e))?
        {
            links.insert(person.clone(), link);
        }
    }
    Ok(links)
}

/// How many records a rule has: what the removal guard weighs a pass's
/// removals against, whichever people the pass covers.
pub(super) fn of_person(db: &StateDb, person: &str) -> Result<BTreeMap<String, Link>, StateError> {
    let connection = db.lock();
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT {LINK_COLUMNS} FROM links WHERE person_id = ?1"
        ))
        .map_err(|e| db.error(e))?;
    statement
        .query_map(params![person], read_link)
        .map_err(|e| db.error(e))?
        .map(|link| link.map(|l| (l.rule.clone(), l)))
        .collect::<rusqlite::Result<BTreeMap<_, _>>>()
        .map_err(|e| db.error(e))
}

pub(super) fn linked_count(db: &StateDb, rule: &str) -> Result<u64, StateError> {
    db.lock()
        .query_row(
            "SELECT COUNT(*) FROM links WHERE rule = ?1 AND target_id IS NOT NULL",
            params![rule],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as u64)
        .map_err(|e| db.error(e))
}

/// The other rules of `connection` that link the record `target`:
/// those that keep the record when `rule` lets it go.
pub(super) fn other_holders(
    db: &StateDb,
    connection: &str,
    rule: &str,
    target: &str,
) -> Result<Vec<String>, StateError> {
    db
        .lock()
        .prepare_cached(
            "SELECT rule FROM links WHERE connection = ?1 AND target_id = ?2 AND rule <> ?3 ORDER BY rule",
        )
        .and_then(|mut statement| {
            statement
                .query_map(params![connection, target, rule], |r| r.get(0))?
                .collect()
        })
        .map_err(|e| db.error(e))
}

/// How many links each rule has in each state, counted by SQLite: a
/// summary that costs the same at any size.
pub(super) fn count_states(db: &StateDb) -> Result<Vec<(String, LinkState, u64)>, StateError> {
    count_by_rule_and_state(
        db,
        "SELECT rule, state, COUNT(*) FROM links GROUP BY rule, state",
    )
}

/// `(rule, state, count)` rows of `sql`, for the links of people and of
/// groups alike.
pub(super) fn count_by_rule_and_state(
    db: &StateDb,
    sql: &str,
) -> Result<Vec<(String, LinkState, u64)>, StateError> {
    let connection = db.lock();
    let mut statement = connection.prepare_cached(sql).map_err(|e| db.error(e))?;
    statement
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                link_state(&row.get::<_, String>(1)?)?,
                row.get::<_, i64>(2)?.max(0) as u64,
            ))
        })
        .map_err(|e| db.error(e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| db.error(e))
}

/// The failed links, at most `limit` of them, by rule and person: what
/// status lists, without reading the links that are fine.
pub(super) fn failed(db: &StateDb, limit: usize) -> Result<Vec<Link>, StateError> {
    let connection = db.lock();
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT {LINK_COLUMNS} FROM links WHERE state = 'failed' ORDER BY rule, person_id LIMIT ?1"
        ))
        .map_err(|e| db.error(e))?;
    statement
        .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], read_link)
        .map_err(|e| db.error(e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| db.error(e))
}

/// The live people `rule` has no link for: those no pass has reached
/// yet. In the steady state there are none, and status reads nobody.
pub(super) fn unlinked(db: &StateDb, rule: &str) -> Result<BTreeSet<String>, StateError> {
    let connection = db.lock();
    let mut statement = connection
        .prepare_cached(
            "SELECT p.id FROM people p WHERE p.deleted = 0
             AND NOT EXISTS (SELECT 1 FROM links l WHERE l.rule = ?1 AND l.person_id = p.id)",
        )
        .map_err(|e| db.error(e))?;
    statement
        .query_map([rule], |r| r.get::<_, String>(0))
        .map_err(|e| db.error(e))?
        .collect::<rusqlite::Result<BTreeSet<_>>>()
        .map_err(|e| db.error(e))
}

/// Writes links, and closes journal entries, in one transaction.
pub(super) fn commit(
    db: &StateDb,
    save: &[Link],
    delete: &[(String, String)],
    journal: &[(i64, Result<Option<String>, String>)],
) -> Result<(), StateError> {
    let mut connection = db.lock();
    let transaction = write_transaction(&mut connection).map_err(|e| db.error(e))?;
    let now = now_ms();
    // Each statement is looked up once a transaction, not once a row.
    let mut upsert = transaction
        .prepare_cached(&format!(
            "INSERT INTO links ({LINK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
             ON CONFLICT (rule, person_id) DO UPDATE SET connection = ?3, target_id = ?4, written = ?5, state = ?6, reason = ?7,
             error_class = ?8, error_code = ?9, error_message = ?10, error_fields = ?11, attempts = ?12, next_retry = ?13,
             person_seq = ?14, updated_at = ?15"
        ))
        .map_err(|e| db.error(e))?;
    for link in save {
        let error = link.error.as_ref();
        upsert
            .execute(params![
                link.rule,
                link.person_id,
                link.connection,
                link.target_id,
                written_json(&link.written),
                link.state.as_str(),
                link.reason,
                error.map(|e| e.class.clone()),
                error.and_then(|e| e.code.clone()),
                error.map(|e| e.message.clone()),
                error.map(|e| serde_json::to_string(&e.fields).unwrap_or_default()),
                link.attempts as i64,
                link.next_retry,
                link.person_seq,
                now,
            ])
            .map_err(|e| db.error(e))?;
    }
    drop(upsert);
    for (rule, person) in delete {
        transaction
            .execute(
                "DELETE FROM links WHERE rule = ?1 AND person_id = ?2",
                params![rule, person],
            )
            .map_err(|e| db.error(e))?;
    }
    let mut close = transaction
        .prepare_cached(
            "UPDATE journal SET finished_at = ?2, outcome = ?3, target_id = COALESCE(?4, target_id), error = ?5 WHERE id = ?1",
        )
        .map_err(|e| db.error(e))?;
    for (id, outcome) in journal {
        let (outcome, target, error) = match outcome {
            Ok(target) => ("ok", target.as_deref(), None),
            Err(error) => ("failed", None, Some(error.as_str())),
        };
        close
            .execute(params![id, now, outcome, target, error])
            .map_err(|e| db.error(e))?;
    }
    drop(close);
    transaction.commit().map_err(|e| db.error(e))
}

/// Opens journal entries before their actions are sent.
pub(super) fn journal_open(db: &StateDb, entries: &[JournalEntry]) -> Result<Vec<i64>, StateError> {
    let mut connection = db.lock();
    let transaction = write_transaction(&mut connection).map_err(|e| db.error(e))?;
    let now = now_ms();
    let mut ids = Vec::with_capacity(entries.len());
    let mut open = transaction
        .prepare_cached(JOURNAL_INSERT)
        .map_err(|e| db.error(e))?;
    for entry in entries {
        insert_journal(&mut open, entry, now, None).map_err(|e| db.error(e))?;
        ids.push(transaction.last_insert_rowid());
    }
    drop(open);
    transaction.commit().map_err(|e| db.error(e))?;
    Ok(ids)
}

/// Records a decision that sent nothing (a forbidden action, a held
/// removal), so that the journal tells the whole story.
pub(super) fn journal_note(
    db: &StateDb,
    entry: &JournalEntry,
    outcome: &str,
) -> Result<(), StateError> {
    let connection = db.lock();
    connection
        .prepare_cached(JOURNAL_INSERT)
        .and_then(|mut statement| insert_journal(&mut statement, entry, now_ms(), Some(outcome)))
        .map_err(|e| db.error(e))?;
    Ok(())
}

/// Marks the entries a crash left open as `unknown`: they may or may
/// not have reached the store. The lookup before every create makes a
/// repeat harmless.
///
/// A create that is answered saves its link. One whose answer never
/// came may still have made a record, so it leaves a link that says so
/// (unless the person has one): a person who then leaves the scope is
/// looked up before being forgotten, and no unknown record stays
/// behind. Written here, from the open entry, rather than beside every
/// entry as it opens: the open entry is already on disk before its
/// create goes out.
/// The `+` keeps SQLite from reading the journal by person (every entry
/// has one) rather than by the partial index of open entries: this runs
/// at the start of every pass.
pub(super) fn close_interrupted(db: &StateDb) -> Result<usize, StateError> {
    let mut connection = db.lock();
    let transaction = write_transaction(&mut connection).map_err(|e| db.error(e))?;
    let now = now_ms();
    transaction
        .execute(
            "INSERT INTO links (rule, person_id, connection, state, reason, attempts, updated_at)
             SELECT rule, person_id, connection, 'unsynced', 'a create was sent and its answer was never recorded', 1, ?1
             FROM journal
             WHERE finished_at IS NULL AND action = 'create' AND +rule IS NOT NULL AND +person_id IS NOT NULL
             ON CONFLICT (rule, person_id) DO NOTHING",
            params![now],
        )
        .map_err(|e| db.error(e))?;
    let closed = transaction
        .execute(
            "UPDATE journal SET outcome = 'unknown', finished_at = ?1, error = 'interrupted: the process stopped before the answer was recorded' WHERE finished_at IS NULL",
            params![now],
        )
        .map_err(|e| db.error(e))?;
    transaction.commit().map_err(|e| db.error(e))?;
    Ok(closed)
}

/// One statement on the state file, with its path on failure.
fn execute(db: &StateDb, sql: &str, params: impl rusqlite::Params) -> Result<usize, StateError> {
    db.lock().execute(sql, params).map_err(|e| db.error(e))
}

pub(super) fn quarantined(db: &StateDb, connection: &str) -> Result<Option<String>, StateError> {
    db.lock()
        .query_row(
            "SELECT reason FROM quarantine WHERE connection = ?1",
            params![connection],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| db.error(e))
}

pub(super) fn quarantine(db: &StateDb, connection: &str, reason: &str) -> Result<(), StateError> {
    execute(
        db,
        "INSERT INTO quarantine (connection, reason, since) VALUES (?1, ?2, ?3) ON CONFLICT (connection) DO UPDATE SET reason = ?2",
        params![connection, reason, now_ms()],
    )?;
    Ok(())
}

/// Lifts a quarantine; true if there was one.
pub(super) fn resume(db: &StateDb, connection: &str) -> Result<bool, StateError> {
    execute(
        db,
        "DELETE FROM quarantine WHERE connection = ?1",
        params![connection],
    )
    .map(|n| n > 0)
}

/// The guard on a rule: `Some(approved)` if it tripped.
pub(super) fn guard(db: &StateDb, rule: &str) -> Result<Option<bool>, StateError> {
    db.lock()
        .query_row(
            "SELECT approved FROM guards WHERE rule = ?1",
            params![rule],
            |r| r.get::<_, i64>(0).map(|a| a != 0),
        )
        .optional()
        .map_err(|e| db.error(e))
}

pub(super) fn trip_guard(
    db: &StateDb,
    rule: &str,
    planned: u64,
    linked: u64,
) -> Result<(), StateError> {
    execute(db,
            "INSERT INTO guards (rule, tripped_at, planned, linked, approved) VALUES (?1, ?2, ?3, ?4, 0)
             ON CONFLICT (rule) DO UPDATE SET planned = ?3, linked = ?4,
             approved = CASE WHEN ?3 > planned THEN 0 ELSE approved END",
            params![rule, now_ms(), planned as i64, linked as i64],
        )?;
    Ok(())
}

/// Approves a tripped guard; false if none was tripped.
pub(super) fn approve_removals(db: &StateDb, rule: &str) -> Result<bool, StateError> {
    execute(
        db,
        "UPDATE guards SET approved = 1 WHERE rule = ?1",
        params![rule],
    )
    .map(|n| n > 0)
}

pub(super) fn clear_guard(db: &StateDb, rule: &str) -> Result<(), StateError> {
    execute(db, "DELETE FROM guards WHERE rule = ?1", params![rule])?;
    Ok(())
}

/// The mappings a rule last wrote through, if recorded.
pub(super) fn rule_mappings(db: &StateDb, rule: &str) -> Result<Option<String>, StateError> {
    db.lock()
        .query_row(
            "SELECT mappings FROM rules WHERE name = ?1",
            params![rule],
            |r| r.get::<_, Option<String>>(0),
        )
        .optional()
        .map(Option::flatten)
        .map_err(|e| db.error(e))
}

/// Records the mappings a rule's pass wrote through; an update guard
/// on the rule is done with.
pub(super) fn record_mappings(db: &StateDb, rule: &str, mappings: &str) -> Result<(), StateError> {
    execute(
        db,
        "UPDATE rules SET mappings = ?2 WHERE name = ?1",
        params![rule, mappings],
    )?;
    clear_update_guard(db, rule)
}

/// The update guard on the mapping change `mappings`, if a pass has
/// weighed that change.
pub(super) fn update_guard(
    db: &StateDb,
    rule: &str,
    mappings: &str,
) -> Result<Option<UpdateGuard>, StateError> {
    db.lock()
        .query_row(
            "SELECT approved FROM update_guards WHERE rule = ?1 AND mappings = ?2",
            params![rule, mappings],
            |r| r.get::<_, i64>(0),
        )
        .optional()
        .map(|state| {
            state.map(|state| match state {
                0 => UpdateGuard::Held,
                1 => UpdateGuard::Approved,
                _ => UpdateGuard::Within,
            })
        })
        .map_err(|e| db.error(e))
}

/// Forgets a rule's update guard: its mappings are back to those it
/// last wrote through, or were recorded.
pub(super) fn clear_update_guard(db: &StateDb, rule: &str) -> Result<(), StateError> {
    execute(
        db,
        "DELETE FROM update_guards WHERE rule = ?1",
        params![rule],
    )?;
    Ok(())
}

/// Records how a pass weighed the mapping change `mappings`: `Held`
/// holds its updates (an approval given for that same change stays,
/// one for an earlier change does not carry over); `Within` notes that
/// it is small enough, so that passes over a few people do not weigh
/// it again before a pass over everyone records it.
pub(super) fn weigh_update_guard(
    db: &StateDb,
    rule: &str,
    planned: u64,
    linked: u64,
    mappings: &str,
    outcome: UpdateGuard,
) -> Result<(), StateError> {
    let state = match outcome {
        UpdateGuard::Held => 0,
        UpdateGuard::Approved => 1,
        UpdateGuard::Within => 2,
    };
    execute(db,
        "INSERT INTO update_guards (rule, tripped_at, planned, linked, mappings, approved) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (rule) DO UPDATE SET planned = ?3, linked = ?4,
         approved = CASE WHEN ?6 = 0 AND mappings = ?5 AND approved = 1 THEN 1 ELSE ?6 END, mappings = ?5",
        params![rule, now_ms(), planned as i64, linked as i64, mappings, state],
    )?;
    Ok(())
}

/// Approves held updates; false if none are held.
pub(super) fn approve_updates(db: &StateDb, rule: &str) -> Result<bool, StateError> {
    execute(
        db,
        "UPDATE update_guards SET approved = 1 WHERE rule = ?1 AND approved = 0",
        params![rule],
    )
    .map(|n| n > 0)
}

/// Updates held by a mapping change, by rule: (planned, linked).
pub(super) fn held_updates(db: &StateDb) -> Result<BTreeMap<String, (u64, u64)>, StateError> {
    let connection = db.lock();
    let mut statement = connection
        .prepare("SELECT rule, planned, linked FROM update_guards WHERE approved = 0")
        .map_err(|e| db.error(e))?;
    statement
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                (
                    r.get::<_, i64>(1)?.max(0) as u64,
                    r.get::<_, i64>(2)?.max(0) as u64,
                ),
            ))
        })
        .map_err(|e| db.error(e))?
        .collect::<rusqlite::Result<_>>()
        .map_err(|e| db.error(e))
}

/// The rules the state has seen, with their connection.
pub(super) fn known_rules(db: &StateDb) -> Result<BTreeMap<String, String>, StateError> {
    let connection = db.lock();
    let mut statement = connection
        .prepare("SELECT name, connection FROM rules")
        .map_err(|e| db.error(e))?;
    let rows = statement
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(|e| db.error(e))?
        .collect::<rusqlite::Result<BTreeMap<_, _>>>()
        .map_err(|e| db.error(e))?;
    Ok(rows)
}

pub(super) fn see_rule(db: &StateDb, rule: &str, connection: &str) -> Result<(), StateError> {
    execute(
        db,
        "INSERT INTO rules (name, connection, seen_at) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO UPDATE SET connection = ?2, seen_at = ?3",
        params![rule, connection, now_ms()],
    )?;
    Ok(())
}

/// Records how a rule's pass ended.
pub(super) fn finish_rule(db: &StateDb, rule: &str, error: Option<&str>) -> Result<(), StateError> {
    execute(
        db,
        "UPDATE rules SET last_finished = ?2, last_error = ?3 WHERE name = ?1",
        params![rule, now_ms(), error],
    )?;
    Ok(())
}

/// Records the API usage a store last reported for a connection.
pub(super) fn record_usage(
    db: &StateDb,
    connection: &str,
    used: u64,
    max: u64,
) -> Result<(), StateError> {
    execute(
        db,
        "INSERT INTO usage (connection, used, max, at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (connection) DO UPDATE SET used = ?2, max = ?3, at = ?4",
        params![connection, used as i64, max as i64, now_ms()],
    )?;
    Ok(())
}

/// Records the plugins a running host serves and the plugin names
/// more than one file claims, replacing the old lists.
pub(super) fn record_plugins(
    db: &StateDb,
    plugins: &[PluginRecord],
    clashes: &BTreeMap<String, Vec<String>>,
    refused: &[(String, String)],
) -> Result<(), StateError> {
    let mut connection = db.lock();
    let transaction = write_transaction(&mut connection).map_err(|e| db.error(e))?;
    transaction
        .execute("DELETE FROM plugins", [])
        .map_err(|e| db.error(e))?;
    transaction
        .execute("DELETE FROM plugin_clashes", [])
        .map_err(|e| db.error(e))?;
    for (name, files) in clashes {
        let files = serde_json::to_string(files).unwrap_or_default();
        transaction
            .execute(
                "INSERT INTO plugin_clashes (name, files) VALUES (?1, ?2)",
                params![name, files],
            )
            .map_err(|e| db.error(e))?;
    }
    for PluginRecord {
        name,
        version,
        contract,
        path,
    } in plugins
    {
        transaction
            .execute(
                "INSERT INTO plugins (name, version, contract, path, loaded_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![name, version, contract, path, now_ms()],
            )
            .map_err(|e| db.error(e))?;
    }
    let refused = serde_json::to_string(refused).unwrap_or_default();
    transaction
        .execute(
            "INSERT INTO plugin_scan (id, at, refused) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET at = ?1, refused = ?2",
            params![now_ms(), refused],
        )
        .map_err(|e| db.error(e))?;
    transaction.commit().map_err(|e| db.error(e))
}

/// The files the running host refused at its last scan of the plugin
/// directory, as (file, reason); `None` if no host has scanned yet.
pub(super) fn plugin_refusals(db: &StateDb) -> Result<Option<Vec<(String, String)>>, StateError> {
    let refused: Option<String> = db
        .lock()
        .query_row("SELECT refused FROM plugin_scan WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| db.error(e))?;
    Ok(refused.map(|text| serde_json::from_str(&text).unwrap_or_default()))
}

/// Per rule, the people whose directory data changed after the rule
/// last acted on them: work the rule has not carried out yet, whether
/// a pass is due or the rule cannot run.
pub(super) fn pending_counts(db: &StateDb) -> Result<BTreeMap<String, u64>, StateError> {
    let connection = db.lock();
    let mut statement = connection
        .prepare(
            "SELECT l.rule, COUNT(*) FROM links l JOIN people p ON p.id = l.person_id
             WHERE p.changed_seq > COALESCE(l.person_seq, -1) GROUP BY l.rule",
        )
        .map_err(|e| db.error(e))?;
    statement
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })
        .map_err(|e| db.error(e))?
        .collect::<rusqlite::Result<_>>()
        .map_err(|e| db.error(e))
}

/// The plugin names the running host last found claimed by more than
/// one file: name -> the files.
pub(super) fn plugin_clashes(db: &StateDb) -> Result<BTreeMap<String, Vec<String>>, StateError> {
    let connection = db.lock();
    let mut statement = connection
        .prepare("SELECT name, files FROM plugin_clashes")
        .map_err(|e| db.error(e))?;
    let rows: Vec<(String, String)> = statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(|e| db.error(e))?
        .collect::<rusqlite::Result<_>>()
        .map_err(|e| db.error(e))?;
    Ok(rows
        .into_iter()
        .map(|(name, files)| (name, serde_json::from_str(&files).unwrap_or_default()))
        .collect())
}

/// The plugins the running host last recorded: name -> version.
pub(super) fn plugins_in_use(db: &StateDb) -> Result<BTreeMap<String, String>, StateError> {
    let connection = db.lock();
    let mut statement = connection
        .prepare("SELECT name, version FROM plugins")
        .map_err(|e| db.error(e))?;
    statement
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(|e| db.error(e))?
        .collect::<rusqlite::Result<_>>()
        .map_err(|e| db.error(e))
}

pub(super) fn forget_rule(db: &StateDb, rule: &str) -> Result<(), StateError> {
    let connection = db.lock();
    for sql in [
        "DELETE FROM links WHERE rule = ?1",
        "DELETE FROM guards WHERE rule = ?1",
        "DELETE FROM update_guards WHERE rule = ?1",
        "DELETE FROM rules WHERE name = ?1",
    ] {
        connection
            .execute(sql, params![rule])
            .map_err(|e| db.error(e))?;
    }
    Ok(())
}

/// Makes failed links due again: `provisioner retry`.
pub(super) fn retry(
    db: &StateDb,
    rule: Option<&str>,
    person: Option<&str>,
) -> Result<usize, StateError> {
    execute(db,
            "UPDATE links SET next_retry = ?3, person_seq = NULL, attempts = 0
             WHERE state = 'failed' AND (?1 IS NULL OR rule = ?1) AND (?2 IS NULL OR person_id = ?2)",
            params![rule, person, now_ms()],
        )
}

/// People with a failed link whose retry time has come.
pub(super) fn due(
    db: &StateDb,
    now: i64,
) -> Result<std::collections::BTreeSet<String>, StateError> {
    let connection = db.lock();
    let mut statement = connection
        .prepare("SELECT DISTINCT person_id FROM links WHERE state = 'failed' AND next_retry IS NOT NULL AND next_retry <= ?1")
        .map_err(|e| db.error(e))?;
    statement
        .query_map(params![now], |r| r.get::<_, String>(0))
        .map_err(|e| db.error(e))?
        .collect::<rusqlite::Result<_>>()
        .map_err(|e| db.error(e))
}

/// Journal entries, newest first, for `audit`.
pub(super) fn journal(
    db: &StateDb,
    person: Option<&str>,
    rule: Option<&str>,
    since: Option<i64>,
    limit: usize,
) -> Result<Vec<Json>, StateError> {
    let connection = db.lock();
    let mut statement = connection
        .prepare(
            "SELECT id, rule, person_id, connection, action, target_id, detail, started_at, finished_at, outcome, error FROM journal
             WHERE (?1 IS NULL OR person_id = ?1) AND (?2 IS NULL OR rule = ?2) AND (?3 IS NULL OR started_at >= ?3)
             ORDER BY id DESC LIMIT ?4",
        )
        .map_err(|e| db.error(e))?;
    let rows = statement
        .query_map(params![person, rule, since, limit as i64], |r| {
            Ok(serde_json::json!({
                "id": r.get::<_, i64>(0)?,
                "rule": r.get::<_, Option<String>>(1)?,
                "person": r.get::<_, Option<String>>(2)?,
                "connection": r.get::<_, String>(3)?,
                "action": r.get::<_, String>(4)?,
                "target": r.get::<_, Option<String>>(5)?,
                "detail": r.get::<_, Option<String>>(6)?.and_then(|d| serde_json::from_str::<Json>(&d).ok()),
                "started_at": r.get::<_, i64>(7)?,
                "finished_at": r.get::<_, Option<i64>>(8)?,
                "outcome": r.get::<_, Option<String>>(9)?,
                "error": r.get::<_, Option<String>>(10)?,
            }))
        })
        .map_err(|e| db.error(e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| db.error(e))?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    /// create leaves a link saying a record may exist, unless the person
    /// already had one.
    #[test]
    fn an_interrupted_create_leaves_a_link_that_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("p.db")).unwrap();
        let mut known = Link::new("prospects", "p2", "leads");
        known.target_id = Some("00Q2".into());
        known.state = LinkState::Synced;
        commit(&db, &[known.clone()], &[], &[]).unwrap();
        let opened = journal_open(
            &db,
            &[
                entry("p1", "create"),
                entry("p2", "create"),
                entry("p3", "update"),
            ],
        )
        .unwrap();
        let answered = journal_open(&db, &[entry("p4", "create")]).unwrap();
        commit(&db, &[], &[], &[(answered[0], Err("refused".into()))]).unwrap();
        assert!(
            of_rule(&db, "prospects").unwrap().len() == 1,
            "opening entries writes no links"
        );

        assert_eq!(close_interrupted(&db).unwrap(), opened.len());
        let after = of_rule(&db, "prospects").unwrap();
        let p1 = &after["p1"];
        assert_eq!(p1.state, LinkState::Unsynced);
        assert_eq!(p1.target_id, None);
        assert!(p1.reason.as_deref().unwrap().contains("never recorded"));
        assert_eq!(after["p2"].target_id, known.target_id);
        assert_eq!(after["p2"].state, LinkState::Synced);
        assert!(!after.contains_key("p3"), "an update makes no record");
        assert!(!after.contains_key("p4"), "an answered create is not open");
        assert_eq!(close_interrupted(&db).unwrap(), 0);
    }
}
