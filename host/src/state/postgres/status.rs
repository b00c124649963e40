//! What status, the page and `/metrics` read beyond the links: each
//! rule's last pass, quarantines, API usage and the journal's counts.

use std::collections::BTreeMap;

use super::{PgState, count};
use crate::state::{RuleRun, StateError};

pub(super) async fn rule_runs(db: &PgState) -> Result<BTreeMap<String, RuleRun>, StateError> {
    let rows = db
        .query("SELECT name, last_finished, last_error FROM rules", &[])
        .await?;
    rows.iter()
        .map(|r| Ok((db.get(r, 0)?, (db.get(r, 1)?, db.get(r, 2)?))))
        .collect()
}

pub(super) async fn quarantines(db: &PgState) -> Result<BTreeMap<String, String>, StateError> {
    super::links::text_pairs(db, "SELECT connection, reason FROM quarantine").await
}

pub(super) async fn usage(db: &PgState) -> Result<BTreeMap<String, (u64, u64, i64)>, StateError> {
    let rows = db
        .query("SELECT connection, used, max, at FROM usage", &[])
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                db.get(r, 0)?,
                (count(db.get(r, 1)?), count(db.get(r, 2)?), db.get(r, 3)?),
            ))
        })
        .collect()
}

pub(super) async fn journal_counts(
    db: &PgState,
) -> Result<Vec<(String, String, String, u64)>, StateError> {
    let rows = db
        .query(
            "SELECT connection, action, COALESCE(outcome, 'pending'), COUNT(*) FROM journal GROUP BY 1, 2, 3
             ORDER BY connection, action COLLATE \"C\", COALESCE(outcome, 'pending') COLLATE \"C\"",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                db.get(r, 0)?,
                db.get(r, 1)?,
                db.get(r, 2)?,
                count(db.get(r, 3)?),
            ))
        })
        .collect()
}

pub(super) async fn ping(db: &PgState) -> Result<(), StateError> {
    db.query("SELECT 1", &[]).await.map(|_| ())
}
