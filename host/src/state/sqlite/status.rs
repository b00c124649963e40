//! What status, the page and `/metrics` read beyond the links: each
//! rule's last pass, quarantines, held removals, API usage and the
//! journal's counts. Each is one aggregate or one small table.

use std::collections::BTreeMap;

use super::StateDb;
use crate::state::{RuleRun, StateError};

/// Every row of `sql`, each read by `row`.
fn rows<T>(
    db: &StateDb,
    sql: &str,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StateError> {
    let connection = db.lock();
    let mut statement = connection.prepare_cached(sql).map_err(|e| db.error(e))?;
    statement
        .query_map([], row)
        .map_err(|e| db.error(e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| db.error(e))
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

pub(super) fn rule_runs(db: &StateDb) -> Result<BTreeMap<String, RuleRun>, StateError> {
    let runs = rows(
        db,
        "SELECT name, last_finished, last_error FROM rules",
        |r| Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?))),
    )?;
    Ok(runs.into_iter().collect())
}

pub(super) fn quarantines(db: &StateDb) -> Result<BTreeMap<String, String>, StateError> {
    let rows = rows(db, "SELECT connection, reason FROM quarantine", |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.into_iter().collect())
}

pub(super) fn held_removals(db: &StateDb) -> Result<BTreeMap<String, (u64, u64)>, StateError> {
    let rows = rows(
        db,
        "SELECT rule, planned, linked FROM guards WHERE approved = 0",
        |r| Ok((r.get::<_, String>(0)?, (count(r.get(1)?), count(r.get(2)?)))),
    )?;
    Ok(rows.into_iter().collect())
}

pub(super) fn usage(db: &StateDb) -> Result<BTreeMap<String, (u64, u64, i64)>, StateError> {
    let rows = rows(db, "SELECT connection, used, max, at FROM usage", |r| {
        Ok((
            r.get::<_, String>(0)?,
            (count(r.get(1)?), count(r.get(2)?), r.get(3)?),
        ))
    })?;
    Ok(rows.into_iter().collect())
}

pub(super) fn journal_counts(
    db: &StateDb,
) -> Result<Vec<(String, String, String, u64)>, StateError> {
    rows(
        db,
        "SELECT connection, action, COALESCE(outcome, 'pending'), COUNT(*) FROM journal GROUP BY 1, 2, 3",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, count(r.get(3)?))),
    )
}

pub(super) fn ping(db: &StateDb) -> Result<(), StateError> {
    db.lock()
        .query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
        .map(|_| ())
        .map_err(|e| db.error(e))
}
