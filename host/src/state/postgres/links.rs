//! Links, the journal, quarantine, guards, rules and the plugins a host
//! serves: the sync engine's tables. Each function does what its namesake
//! in `sqlite/links.rs` does; writes of many rows go as one statement over
//! arrays (`UNNEST`), so that a commit of thousands of links is a handful
//! of round trips, not thousands.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;
use tokio_postgres::Row;

use super::{PgState, Sequence, count, text, text_of};
use crate::runtime::contract::Value;
use crate::state::store::JournalOutcome;
use crate::state::{StateError, now_ms};
use crate::sync::links::{
    JournalEntry, Link, LinkError, LinkState, PluginRecord, UpdateGuard, detail_json, from_json,
    written_json,
};

const LINK_COLUMNS: &str = "rule, person_id, connection, target_id, written, state, reason, error_class, error_code, error_message, error_fields, attempts, next_retry, person_seq, updated_at";

/// A link state as stored; text this binary did not write is an error
/// naming the database.
pub(super) fn link_state(db: &PgState, text: &str) -> Result<LinkState, StateError> {
    LinkState::parse(text).map_err(|message| db.invalid(message))
}

fn read_link(db: &PgState, row: &Row) -> Result<Link, StateError> {
    let written: Option<String> = db.get(row, 4)?;
    let written: BTreeMap<String, Value> = written
        .and_then(|w| serde_json::from_str::<serde_json::Map<String, Json>>(&w).ok())
        .map(|m| m.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        .unwrap_or_default();
    let class: Option<String> = db.get(row, 7)?;
    let fields: Option<String> = db.get(row, 10)?;
    Ok(Link {
        rule: db.get(row, 0)?,
        person_id: db.get(row, 1)?,
        connection: db.get(row, 2)?,
        target_id: db.get(row, 3)?,
        written,
        state: link_state(db, db.get(row, 5)?)?,
        reason: db.get(row, 6)?,
        error: match class {
            Some(class) => Some(LinkError {
                class,
                code: db.get(row, 8)?,
                message: db.get::<Option<String>>(row, 9)?.unwrap_or_default(),
                fields: fields
                    .and_then(|f| serde_json::from_str(&f).ok())
                    .unwrap_or_default(),
            }),
            None => None,
        },
        attempts: u32::try_from(db.get::<i64>(row, 11)?).unwrap_or(u32::MAX),
        next_retry: db.get(row, 12)?,
        person_seq: db.get(row, 13)?,
        updated_at: db.get(row, 14)?,
    })
}

fn by_person(db: &PgState, rows: &[Row]) -> Result<BTreeMap<String, Link>, StateError> {
    rows.iter()
        .map(|row| read_link(db, row).map(|link| (link.person_id.clone(), link)))
        .collect()
}

pub(super) async fn of_rule_between(
    db: &PgState,
    rule: &str,
    after: Option<&str>,
    through: Option<&str>,
) -> Result<BTreeMap<String, Link>, StateError> {
    let after = after.unwrap_or("");
    let rows = match through {
        Some(through) => {
            db.query(
                &format!(
                    "SELECT {LINK_COLUMNS} FROM links WHERE rule = $1 AND person_id > $2 AND person_id <= $3"
                ),
                &[&rule, &after, &through],
            )
            .await?
        }
        None => {
            db.query(
                &format!("SELECT {LINK_COLUMNS} FROM links WHERE rule = $1 AND person_id > $2"),
                &[&rule, &after],
            )
            .await?
        }
    };
    by_person(db, &rows)
}

/// The links of some people in one rule, in one statement.
pub(super) async fn of_rule_among(
    db: &PgState,
    rule: &str,
    people: &BTreeSet<String>,
) -> Result<BTreeMap<String, Link>, StateError> {
    let people: Vec<&str> = people.iter().map(String::as_str).collect();
    let rows = db
        .query(
            &format!("SELECT {LINK_COLUMNS} FROM links WHERE rule = $1 AND person_id = ANY($2)"),
            &[&rule, &people],
        )
        .await?;
    by_person(db, &rows)
}

pub(super) async fn of_person(
    db: &PgState,
    person: &str,
) -> Result<BTreeMap<String, Link>, StateError> {
    let rows = db
        .query(
            &format!("SELECT {LINK_COLUMNS} FROM links WHERE person_id = $1"),
            &[&person],
        )
        .await?;
    rows.iter()
        .map(|row| read_link(db, row).map(|link| (link.rule.clone(), link)))
        .collect()
}

pub(super) async fn linked_count(db: &PgState, rule: &str) -> Result<u64, StateError> {
    let rows = db
        .query(
            "SELECT COUNT(*) FROM links WHERE rule = $1 AND target_id IS NOT NULL",
            &[&rule],
        )
        .await?;
    single_count(db, &rows)
}

fn single_count(db: &PgState, rows: &[Row]) -> Result<u64, StateError> {
    match rows.first() {
        Some(row) => Ok(count(db.get(row, 0)?)),
        None => Ok(0),
    }
}

pub(super) async fn other_holders(
    db: &PgState,
    connection: &str,
    rule: &str,
    target: &str,
) -> Result<Vec<String>, StateError> {
    let rows = db
        .query(
            "SELECT rule FROM links WHERE connection = $1 AND target_id = $2 AND rule <> $3 ORDER BY rule",
            &[&connection, &target, &rule],
        )
        .await?;
    rows.iter().map(|row| db.get(row, 0)).collect()
}

pub(super) async fn count_states(
    db: &PgState,
) -> Result<Vec<(String, LinkState, u64)>, StateError> {
    count_by_rule_and_state(
        db,
        "SELECT rule, state, COUNT(*) FROM links GROUP BY rule, state ORDER BY rule, state COLLATE \"C\"",
    )
    .await
}

/// `(rule, state, count)` rows of `sql`, for the links of people and of
/// groups alike. `sql` orders them, as SQLite's grouping happens to: a
/// hash aggregate here returns groups in no order.
pub(super) async fn count_by_rule_and_state(
    db: &PgState,
    sql: &str,
) -> Result<Vec<(String, LinkState, u64)>, StateError> {
    let rows = db.query(sql, &[]).await?;
    rows.iter()
        .map(|row| {
            Ok((
                db.get(row, 0)?,
                link_state(db, db.get(row, 1)?)?,
                count(db.get(row, 2)?),
            ))
        })
        .collect()
}

pub(super) async fn failed(db: &PgState, limit: usize) -> Result<Vec<Link>, StateError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = db
        .query(
            &format!(
                "SELECT {LINK_COLUMNS} FROM links WHERE state = 'failed' ORDER BY rule, person_id LIMIT $1"
            ),
            &[&limit],
        )
        .await?;
    rows.iter().map(|row| read_link(db, row)).collect()
}

pub(super) async fn unlinked(db: &PgState, rule: &str) -> Result<BTreeSet<String>, StateError> {
    let rows = db
        .query(
            "SELECT p.id FROM people p WHERE NOT p.deleted
             AND NOT EXISTS (SELECT 1 FROM links l WHERE l.rule = $1 AND l.person_id = p.id)",
            &[&rule],
        )
        .await?;
    rows.iter().map(|row| db.get(row, 0)).collect()
}

/// Writes links, drops links and closes journal entries in one
/// transaction, each as one statement over arrays. A key given twice is
/// written as its last row, as SQLite's row-by-row upserts leave it.
pub(super) async fn commit(
    db: &PgState,
    save: &[Link],
    delete: &[(String, String)],
    journal: &[JournalOutcome],
) -> Result<(), StateError> {
    let mut client = db.client().await?;
    let transaction = client.transaction().await.map_err(|e| db.error(e))?;
    let now = now_ms();
    if !save.is_empty() {
        // The last row per key, in key order: the same order in every
        // transaction, so that two commits lock rows without deadlock.
        let last: BTreeMap<(&str, &str), &Link> = save
            .iter()
            .map(|link| ((link.rule.as_str(), link.person_id.as_str()), link))
            .collect();
        let mut columns = LinkColumns::default();
        for link in last.values() {
            columns.push(link);
        }
        db.exec(
            &transaction,
            &format!(
                "INSERT INTO links ({LINK_COLUMNS})
                 SELECT r, p, c, t, w, s, re, ec, eco, em, ef, a, n, ps, $15 FROM UNNEST(
                     $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[], $13::bigint[], $14::bigint[]
                 ) AS u(r, p, c, t, w, s, re, ec, eco, em, ef, a, n, ps)
                 ON CONFLICT (rule, person_id) DO UPDATE SET connection = EXCLUDED.connection,
                 target_id = EXCLUDED.target_id, written = EXCLUDED.written, state = EXCLUDED.state,
                 reason = EXCLUDED.reason, error_class = EXCLUDED.error_class,
                 error_code = EXCLUDED.error_code, error_message = EXCLUDED.error_message,
                 error_fields = EXCLUDED.error_fields, attempts = EXCLUDED.attempts,
                 next_retry = EXCLUDED.next_retry, person_seq = EXCLUDED.person_seq,
                 updated_at = EXCLUDED.updated_at"
            ),
            &[
                &columns.rule,
                &columns.person,
                &columns.connection,
                &columns.target,
                &columns.written,
                &columns.state,
                &columns.reason,
                &columns.class,
                &columns.code,
                &columns.message,
                &columns.fields,
                &columns.attempts,
                &columns.next_retry,
                &columns.person_seq,
                &now,
            ],
        )
        .await?;
    }
    db.delete_pairs(&transaction, "links", "person_id", delete)
        .await?;
    if !journal.is_empty() {
        let last: BTreeMap<i64, &Result<Option<String>, String>> =
            journal.iter().map(|(id, outcome)| (*id, outcome)).collect();
        let mut ids = Vec::with_capacity(last.len());
        let mut outcomes = Vec::with_capacity(last.len());
        let mut targets = Vec::with_capacity(last.len());
        let mut errors = Vec::with_capacity(last.len());
        for (id, outcome) in last {
            let (outcome, target, error) = match outcome {
                Ok(target) => ("ok", text_of(target.as_deref()), None),
                Err(error) => ("failed", None, Some(text(error))),
            };
            ids.push(id);
            outcomes.push(outcome);
            targets.push(target);
            errors.push(error);
        }
        db.exec(
            &transaction,
            "UPDATE journal j SET finished_at = $1, outcome = u.outcome,
             target_id = COALESCE(u.target, j.target_id), error = u.error
             FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[]) AS u(id, outcome, target, error)
             WHERE j.id = u.id",
            &[&now, &ids, &outcomes, &targets, &errors],
        )
        .await?;
    }
    transaction.commit().await.map_err(|e| db.error(e))
}

/// Links as columns, for one `UNNEST` of them all.
#[derive(Default)]
struct LinkColumns {
    rule: Vec<String>,
    person: Vec<String>,
    connection: Vec<String>,
    target: Vec<Option<String>>,
    written: Vec<String>,
    state: Vec<&'static str>,
    reason: Vec<Option<String>>,
    class: Vec<Option<String>>,
    code: Vec<Option<String>>,
    message: Vec<Option<String>>,
    fields: Vec<Option<String>>,
    attempts: Vec<i64>,
    next_retry: Vec<Option<i64>>,
    person_seq: Vec<Option<i64>>,
}

impl LinkColumns {
    fn push(&mut self, link: &Link) {
        let error = link.error.as_ref();
        self.rule.push(link.rule.clone());
        self.person.push(link.person_id.clone());
        self.connection.push(link.connection.clone());
        self.target.push(text_of(link.target_id.as_deref()));
        self.written.push(written_json(&link.written));
        self.state.push(link.state.as_str());
        self.reason.push(text_of(link.reason.as_deref()));
        self.class.push(text_of(error.map(|e| e.class.as_str())));
        self.code
            .push(text_of(error.and_then(|e| e.code.as_deref())));
        self.message
            .push(text_of(error.map(|e| e.message.as_str())));
        self.fields
            .push(error.map(|e| serde_json::to_string(&e.fields).unwrap_or_default()));
        self.attempts.push(i64::from(link.attempts));
        self.next_retry.push(link.next_retry);
        self.person_seq.push(link.person_seq);
    }
}

/// Opens journal entries before their actions are sent; their ids, in
/// order. The ids are drawn first, in order, so that they are the
/// entries' order whatever order the insert goes in.
pub(super) async fn journal_open(
    db: &PgState,
    entries: &[JournalEntry],
) -> Result<Vec<i64>, StateError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let mut client = db.client().await?;
    let transaction = client.transaction().await.map_err(|e| db.error(e))?;
    let ids = db
        .draw(&transaction, Sequence::Journal, entries.len())
        .await?;
    insert_journal(db, &transaction, &ids, entries, now_ms(), None).await?;
    transaction.commit().await.map_err(|e| db.error(e))?;
    Ok(ids)
}

/// Journal rows with the given ids, open or,
/// with an outcome, finished when they started.
async fn insert_journal(
    db: &PgState,
    client: &impl deadpool_postgres::GenericClient,
    ids: &[i64],
    entries: &[JournalEntry],
    now: i64,
    outcome: Option<&str>,
) -> Result<(), StateError> {
    let rules: Vec<Option<&str>> = entries.iter().map(|e| e.rule.as_deref()).collect();
    let people: Vec<Option<&str>> = entries.iter().map(|e| e.person_id.as_deref()).collect();
    let connections: Vec<&str> = entries.iter().map(|e| e.connection.as_str()).collect();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    let targets: Vec<Option<String>> = entries
        .iter()
        .map(|e| text_of(e.target_id.as_deref()))
        .collect();
    let details: Vec<String> = entries.iter().map(|e| detail_json(&e.detail)).collect();
    let finished = outcome.map(|_| now);
    db.exec(
        client,
        "INSERT INTO journal (id, rule, person_id, connection, action, target_id, detail, started_at, finished_at, outcome)
         SELECT id, r, p, c, a, t, d, $8, $9, $10 FROM UNNEST(
             $1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]
         ) AS u(id, r, p, c, a, t, d)",
        &[
            &ids, &rules, &people, &connections, &actions, &targets, &details, &now, &finished,
            &outcome,
        ],
    )
    .await?;
    Ok(())
}

/// Records a decision that sent nothing, finished at once.
pub(super) async fn journal_note(
    db: &PgState,
    entry: &JournalEntry,
    outcome: &str,
) -> Result<(), StateError> {
    let client = db.client().await?;
    let ids = db.draw(&client, Sequence::Journal, 1).await?;
    insert_journal(
        db,
        &client,
        &ids,
        std::slice::from_ref(entry),
        now_ms(),
        Some(outcome),
    )
    .await
}

/// Closes the entries a crash left open as `unknown`, leaving a link for
/// each interrupted create (see `sqlite/links.rs`).
pub(super) async fn close_interrupted(db: &PgState) -> Result<usize, StateError> {
    let mut client = db.client().await?;
    let transaction = client.transaction().await.map_err(|e| db.error(e))?;
    let now = now_ms();
    db.exec(
        &transaction,
        "INSERT INTO links (rule, person_id, connection, state, reason, attempts, updated_at)
         SELECT rule, person_id, connection, 'unsynced', 'a create was sent and its answer was never recorded', 1, $1
         FROM journal
         WHERE finished_at IS NULL AND action = 'create' AND rule IS NOT NULL AND person_id IS NOT NULL
         ON CONFLICT (rule, person_id) DO NOTHING",
        &[&now],
    )
    .await?;
    let closed = db
        .exec(
            &transaction,
            "UPDATE journal SET outcome = 'unknown', finished_at = $1, error = 'interrupted: the process stopped before the answer was recorded' WHERE finished_at IS NULL",
            &[&now],
        )
        .await?;
    transaction.commit().await.map_err(|e| db.error(e))?;
    Ok(usize::try_from(closed).unwrap_or(usize::MAX))
}

pub(super) async fn quarantined(
    db: &PgState,
    connection: &str,
) -> Result<Option<String>, StateError> {
    let rows = db
        .query(
            "SELECT reason FROM quarantine WHERE connection = $1",
            &[&connection],
        )
        .await?;
    rows.first().map(|row| db.get(row, 0)).transpose()
}

pub(super) async fn quarantine(
    db: &PgState,
    connection: &str,
    reason: &str,
) -> Result<(), StateError> {
    db.execute(
        "INSERT INTO quarantine (connection, reason, since) VALUES ($1, $2, $3)
         ON CONFLICT (connection) DO UPDATE SET reason = EXCLUDED.reason",
        &[&connection, &text(reason), &now_ms()],
    )
    .await?;
    Ok(())
}

pub(super) async fn resume(db: &PgState, connection: &str) -> Result<bool, StateError> {
    db.execute(
        "DELETE FROM quarantine WHERE connection = $1",
        &[&connection],
    )
    .await
    .map(|n| n > 0)
}

pub(super) async fn guard(db: &PgState, rule: &str) -> Result<Option<bool>, StateError> {
    let rows = db
        .query("SELECT approved FROM guards WHERE rule = $1", &[&rule])
        .await?;
    rows.first()
        .map(|row| db.get::<i64>(row, 0).map(|approved| approved != 0))
        .transpose()
}

pub(super) async fn trip_guard(
    db: &PgState,
    rule: &str,
    planned: u64,
    linked: u64,
) -> Result<(), StateError> {
    let planned = i64::try_from(planned).unwrap_or(i64::MAX);
    let linked = i64::try_from(linked).unwrap_or(i64::MAX);
    db.execute(
        "INSERT INTO guards (rule, tripped_at, planned, linked, approved) VALUES ($1, $2, $3, $4, 0)
         ON CONFLICT (rule) DO UPDATE SET planned = EXCLUDED.planned, linked = EXCLUDED.linked,
         approved = CASE WHEN EXCLUDED.planned > guards.planned THEN 0 ELSE guards.approved END",
        &[&rule, &now_ms(), &planned, &linked],
    )
    .await?;
    Ok(())
}

pub(super) async fn approve_removals(db: &PgState, rule: &str) -> Result<bool, StateError> {
    db.execute("UPDATE guards SET approved = 1 WHERE rule = $1", &[&rule])
        .await
        .map(|n| n > 0)
}

pub(super) async fn clear_guard(db: &PgState, rule: &str) -> Result<(), StateError> {
    db.execute("DELETE FROM guards WHERE rule = $1", &[&rule])
        .await?;
    Ok(())
}

pub(super) async fn rule_mappings(db: &PgState, rule: &str) -> Result<Option<String>, StateError> {
    let rows = db
        .query("SELECT mappings FROM rules WHERE name = $1", &[&rule])
        .await?;
    Ok(rows
        .first()
        .map(|row| db.get::<Option<String>>(row, 0))
        .transpose()?
        .flatten())
}

/// Records the mappings a rule's pass wrote through; an update guard on
/// the rule is done with.
pub(super) async fn record_mappings(
    db: &PgState,
    rule: &str,
    mappings: &str,
) -> Result<(), StateError> {
    db.execute(
        "UPDATE rules SET mappings = $2 WHERE name = $1",
        &[&rule, &mappings],
    )
    .await?;
    clear_update_guard(db, rule).await
}

pub(super) async fn update_guard(
    db: &PgState,
    rule: &str,
    mappings: &str,
) -> Result<Option<UpdateGuard>, StateError> {
    let rows = db
        .query(
            "SELECT approved FROM update_guards WHERE rule = $1 AND mappings = $2",
            &[&rule, &mappings],
        )
        .await?;
    rows.first()
        .map(|row| {
            db.get::<i64>(row, 0).map(|state| match state {
                0 => UpdateGuard::Held,
                1 => UpdateGuard::Approved,
                _ => UpdateGuard::Within,
            })
        })
        .transpose()
}

pub(super) async fn clear_update_guard(db: &PgState, rule: &str) -> Result<(), StateError> {
    db.execute("DELETE FROM update_guards WHERE rule = $1", &[&rule])
        .await?;
    Ok(())
}

/// Records how a pass weighed the mapping change `mappings` (see
/// `sqlite/links.rs`).
pub(super) async fn weigh_update_guard(
    db: &PgState,
    rule: &str,
    planned: u64,
    linked: u64,
    mappings: &str,
    outcome: UpdateGuard,
) -> Result<(), StateError> {
    let state: i64 = match outcome {
        UpdateGuard::Held => 0,
        UpdateGuard::Approved => 1,
        UpdateGuard::Within => 2,
    };
    let planned = i64::try_from(planned).unwrap_or(i64::MAX);
    let linked = i64::try_from(linked).unwrap_or(i64::MAX);
    db.execute(
        "INSERT INTO update_guards (rule, tripped_at, planned, linked, mappings, approved) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (rule) DO UPDATE SET planned = EXCLUDED.planned, linked = EXCLUDED.linked,
         approved = CASE WHEN EXCLUDED.approved = 0 AND update_guards.mappings = EXCLUDED.mappings
                          AND update_guards.approved = 1 THEN 1 ELSE EXCLUDED.approved END,
         mappings = EXCLUDED.mappings",
        &[&rule, &now_ms(), &planned, &linked, &mappings, &state],
    )
    .await?;
    Ok(())
}

pub(super) async fn approve_updates(db: &PgState, rule: &str) -> Result<bool, StateError> {
    db.execute(
        "UPDATE update_guards SET approved = 1 WHERE rule = $1 AND approved = 0",
        &[&rule],
    )
    .await
    .map(|n| n > 0)
}

/// `(key, (a, b))` rows of two counts, as a map.
async fn pairs(db: &PgState, sql: &str) -> Result<BTreeMap<String, (u64, u64)>, StateError> {
    let rows = db.query(sql, &[]).await?;
    rows.iter()
        .map(|row| {
            Ok((
                db.get(row, 0)?,
                (count(db.get(row, 1)?), count(db.get(row, 2)?)),
            ))
        })
        .collect()
}

pub(super) async fn held_updates(db: &PgState) -> Result<BTreeMap<String, (u64, u64)>, StateError> {
    pairs(
        db,
        "SELECT rule, planned, linked FROM update_guards WHERE approved = 0",
    )
    .await
}

pub(super) async fn held_removals(
    db: &PgState,
) -> Result<BTreeMap<String, (u64, u64)>, StateError> {
    pairs(
        db,
        "SELECT rule, planned, linked FROM guards WHERE approved = 0",
    )
    .await
}

/// `(key, value)` text rows, as a map.
pub(super) async fn text_pairs(
    db: &PgState,
    sql: &str,
) -> Result<BTreeMap<String, String>, StateError> {
    let rows = db.query(sql, &[]).await?;
    rows.iter()
        .map(|row| Ok((db.get(row, 0)?, db.get(row, 1)?)))
        .collect()
}

pub(super) async fn known_rules(db: &PgState) -> Result<BTreeMap<String, String>, StateError> {
    text_pairs(db, "SELECT name, connection FROM rules").await
}

pub(super) async fn see_rule(db: &PgState, rule: &str, connection: &str) -> Result<(), StateError> {
    db.execute(
        "INSERT INTO rules (name, connection, seen_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET connection = EXCLUDED.connection, seen_at = EXCLUDED.seen_at",
        &[&rule, &connection, &now_ms()],
    )
    .await?;
    Ok(())
}

pub(super) async fn finish_rule(
    db: &PgState,
    rule: &str,
    error: Option<&str>,
) -> Result<(), StateError> {
    db.execute(
        "UPDATE rules SET last_finished = $2, last_error = $3 WHERE name = $1",
        &[&rule, &now_ms(), &text_of(error)],
    )
    .await?;
    Ok(())
}

pub(super) async fn record_usage(
    db: &PgState,
    connection: &str,
    used: u64,
    max: u64,
) -> Result<(), StateError> {
    let used = i64::try_from(used).unwrap_or(i64::MAX);
    let max = i64::try_from(max).unwrap_or(i64::MAX);
    db.execute(
        "INSERT INTO usage (connection, used, max, at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (connection) DO UPDATE SET used = EXCLUDED.used, max = EXCLUDED.max, at = EXCLUDED.at",
        &[&connection, &used, &max, &now_ms()],
    )
    .await?;
    Ok(())
}

/// Records the plugins a running host serves, the names more than one
/// file claims and the files refused, replacing the old lists.
pub(super) async fn record_plugins(
    db: &PgState,
    plugins: &[PluginRecord],
    clashes: &BTreeMap<String, Vec<String>>,
    refused: &[(String, String)],
) -> Result<(), StateError> {
    let mut client = db.client().await?;
    let transaction = client.transaction().await.map_err(|e| db.error(e))?;
    let now = now_ms();
    db.exec(&transaction, "DELETE FROM plugins", &[]).await?;
    db.exec(&transaction, "DELETE FROM plugin_clashes", &[])
        .await?;
    let names: Vec<&str> = clashes.keys().map(String::as_str).collect();
    let files: Vec<String> = clashes
        .values()
        .map(|files| serde_json::to_string(files).unwrap_or_default())
        .collect();
    db.exec(
        &transaction,
        "INSERT INTO plugin_clashes (name, files) SELECT * FROM UNNEST($1::text[], $2::text[])",
        &[&names, &files],
    )
    .await?;
    let names: Vec<&str> = plugins.iter().map(|p| p.name.as_str()).collect();
    let versions: Vec<&str> = plugins.iter().map(|p| p.version.as_str()).collect();
    let contracts: Vec<&str> = plugins.iter().map(|p| p.contract.as_str()).collect();
    let paths: Vec<&str> = plugins.iter().map(|p| p.path.as_str()).collect();
    db.exec(
        &transaction,
        "INSERT INTO plugins (name, version, contract, path, loaded_at)
         SELECT n, v, c, p, $5 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS u(n, v, c, p)",
        &[&names, &versions, &contracts, &paths, &now],
    )
    .await?;
    let refused = serde_json::to_string(refused).unwrap_or_default();
    db.exec(
        &transaction,
        "INSERT INTO plugin_scan (id, at, refused) VALUES (1, $1, $2)
         ON CONFLICT (id) DO UPDATE SET at = EXCLUDED.at, refused = EXCLUDED.refused",
        &[&now, &refused],
    )
    .await?;
    transaction.commit().await.map_err(|e| db.error(e))
}

pub(super) async fn plugin_refusals(
    db: &PgState,
) -> Result<Option<Vec<(String, String)>>, StateError> {
    let rows = db
        .query("SELECT refused FROM plugin_scan WHERE id = 1", &[])
        .await?;
    let refused: Option<String> = rows.first().map(|row| db.get(row, 0)).transpose()?;
    Ok(refused.map(|text| serde_json::from_str(&text).unwrap_or_default()))
}

pub(super) async fn pending_counts(db: &PgState) -> Result<BTreeMap<String, u64>, StateError> {
    let rows = db
        .query(
            "SELECT l.rule, COUNT(*) FROM links l JOIN people p ON p.id = l.person_id
             WHERE p.changed_seq > COALESCE(l.person_seq, -1) GROUP BY l.rule",
            &[],
        )
        .await?;
    rows.iter()
        .map(|row| Ok((db.get(row, 0)?, count(db.get(row, 1)?))))
        .collect()
}

pub(super) async fn plugin_clashes(
    db: &PgState,
) -> Result<BTreeMap<String, Vec<String>>, StateError> {
    let rows = text_pairs(db, "SELECT name, files FROM plugin_clashes").await?;
    Ok(rows
        .into_iter()
        .map(|(name, files)| (name, serde_json::from_str(&files).unwrap_or_default()))
        .collect())
}

pub(super) async fn plugins_in_use(db: &PgState) -> Result<BTreeMap<String, String>, StateError> {
    text_pairs(db, "SELECT name, version FROM plugins").await
}

/// Forgets a rule: its links, guards and record, in one transaction.
pub(super) async fn forget_rule(db: &PgState, rule: &str) -> Result<(), StateError> {
    let mut client = db.client().await?;
    let transaction = client.transaction().await.map_err(|e| db.error(e))?;
    for sql in [
        "DELETE FROM links WHERE rule = $1",
        "DELETE FROM guards WHERE rule = $1",
        "DELETE FROM update_guards WHERE rule = $1",
        "DELETE FROM rules WHERE name = $1",
    ] {
        db.exec(&transaction, sql, &[&rule]).await?;
    }
    transaction.commit().await.map_err(|e| db.error(e))
}

pub(super) async fn retry(
    db: &PgState,
    rule: Option<&str>,
    person: Option<&str>,
) -> Result<usize, StateError> {
    db.execute(
        "UPDATE links SET next_retry = $3, person_seq = NULL, attempts = 0
         WHERE state = 'failed' AND ($1::text IS NULL OR rule = $1) AND ($2::text IS NULL OR person_id = $2)",
        &[&rule, &person, &now_ms()],
    )
    .await
    .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

pub(super) async fn due(db: &PgState, now: i64) -> Result<BTreeSet<String>, StateError> {
    let rows = db
        .query(
            "SELECT DISTINCT person_id FROM links WHERE state = 'failed' AND next_retry IS NOT NULL AND next_retry <= $1",
            &[&now],
        )
        .await?;
    rows.iter().map(|row| db.get(row, 0)).collect()
}

/// Journal entries, newest first, for `audit`.
pub(super) async fn journal(
    db: &PgState,
    person: Option<&str>,
    rule: Option<&str>,
    since: Option<i64>,
    limit: usize,
) -> Result<Vec<Json>, StateError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = db
        .query(
            "SELECT id, rule, person_id, connection, action, target_id, detail, started_at, finished_at, outcome, error FROM journal
             WHERE ($1::text IS NULL OR person_id = $1) AND ($2::text IS NULL OR rule = $2) AND ($3::bigint IS NULL OR started_at >= $3)
             ORDER BY id DESC LIMIT $4",
            &[&person, &rule, &since, &limit],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(serde_json::json!({
                "id": db.get::<i64>(r, 0)?,
                "rule": db.get::<Option<String>>(r, 1)?,
                "person": db.get::<Option<String>>(r, 2)?,
                "connection": db.get::<String>(r, 3)?,
                "action": db.get::<String>(r, 4)?,
                "target": db.get::<Option<String>>(r, 5)?,
                "detail": db.get::<Option<String>>(r, 6)?.and_then(|d| serde_json::from_str::<Json>(&d).ok()),
                "started_at": db.get::<i64>(r, 7)?,
                "finished_at": db.get::<Option<i64>>(r, 8)?,
                "outcome": db.get::<Option<String>>(r, 9)?,
                "error": db.get::<Option<String>>(r, 10)?,
            }))
        })
        .collect()
}
