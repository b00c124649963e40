//! The group links table: the directory groups rules push, by rule.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::params;

use super::links::link_state;
use super::{StateDb, write_transaction};
use crate::state::StateError;
use crate::sync::links::{GroupLink, LinkState};

fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<GroupLink> {
    let members: String = row.get(4)?;
    let members: BTreeSet<String> = serde_json::from_str(&members).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, e.into())
    })?;
    Ok(GroupLink {
        rule: row.get(0)?,
        group: row.get(1)?,
        connection: row.get(2)?,
        target_id: row.get(3)?,
        members,
        state: link_state(&row.get::<_, String>(5)?)?,
        reason: row.get(6)?,
        updated_at: row.get(7)?,
    })
}

pub(super) fn of_rule(db: &StateDb, rule: &str) -> Result<BTreeMap<String, GroupLink>, StateError> {
    let connection = db.lock();
    let mut statement = connection
        .prepare_cached(
            "SELECT rule, group_name, connection, target_id, members, state, reason, updated_at \
             FROM group_links WHERE rule = ?1",
        )
        .map_err(|e| db.error(e))?;
    statement
        .query_map(params![rule], read)
        .map_err(|e| db.error(e))?
        .map(|link| link.map(|link| (link.group.clone(), link)))
        .collect::<rusqlite::Result<BTreeMap<_, _>>>()
        .map_err(|e| db.error(e))
}

pub(super) fn commit(
    db: &StateDb,
    save: &[GroupLink],
    drop: &[(String, String)],
) -> Result<(), StateError> {
    let mut connection = db.lock();
    let transaction = write_transaction(&mut connection).map_err(|e| db.error(e))?;
    {
        let mut upsert = transaction
            .prepare_cached(
                "INSERT INTO group_links (rule, group_name, connection, target_id, members, state, reason, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (rule, group_name) DO UPDATE SET connection = ?3, target_id = ?4, \
                 members = ?5, state = ?6, reason = ?7, updated_at = ?8",
            )
            .map_err(|e| db.error(e))?;
        for link in save {
            let members = serde_json::to_string(&link.members).unwrap_or_else(|_| "[]".into());
            upsert
                .execute(params![
                    link.rule,
                    link.group,
                    link.connection,
                    link.target_id,
                    members,
                    link.state.as_str(),
                    link.reason,
                    link.updated_at,
                ])
                .map_err(|e| db.error(e))?;
        }
        let mut delete = transaction
            .prepare_cached("DELETE FROM group_links WHERE rule = ?1 AND group_name = ?2")
            .map_err(|e| db.error(e))?;
        for (rule, group) in drop {
            delete
                .execute(params![rule, group])
                .map_err(|e| db.error(e))?;
        }
    }
    transaction.commit().map_err(|e| db.error(e))
}

pub(super) fn count_states(db: &StateDb) -> Result<Vec<(String, LinkState, u64)>, StateError> {
    super::links::count_by_rule_and_state(
        db,
        "SELECT rule, state, COUNT(*) FROM group_links GROUP BY rule, state",
    )
}
