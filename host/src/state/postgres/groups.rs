//! The group links table: the directory groups rules push, by rule.

use std::collections::{BTreeMap, BTreeSet};

use super::links::link_state;
use super::{PgState, text_of};
use crate::state::StateError;
use crate::sync::links::{GroupLink, LinkState};

pub(super) async fn of_rule(
    db: &PgState,
    rule: &str,
) -> Result<BTreeMap<String, GroupLink>, StateError> {
    let rows = db
        .query(
            "SELECT rule, group_name, connection, target_id, members, state, reason, updated_at \
             FROM group_links WHERE rule = $1",
            &[&rule],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let members: String = db.get(row, 4)?;
            let members: BTreeSet<String> = serde_json::from_str(&members)
                .map_err(|e| db.invalid(format!("group_links.members: {e}")))?;
            let link = GroupLink {
                rule: db.get(row, 0)?,
                group: db.get(row, 1)?,
                connection: db.get(row, 2)?,
                target_id: db.get(row, 3)?,
                members,
                state: link_state(db, db.get(row, 5)?)?,
                reason: db.get(row, 6)?,
                updated_at: db.get(row, 7)?,
            };
            Ok((link.group.clone(), link))
        })
        .collect()
}

/// Writes group links and drops others, in one transaction; a key given
/// twice is written as its last row.
pub(super) async fn commit(
    db: &PgState,
    save: &[GroupLink],
    drop: &[(String, String)],
) -> Result<(), StateError> {
    let mut client = db.client().await?;
    let transaction = client.transaction().await.map_err(|e| db.error(e))?;
    if !save.is_empty() {
        let last: BTreeMap<(&str, &str), &GroupLink> = save
            .iter()
            .map(|link| ((link.rule.as_str(), link.group.as_str()), link))
            .collect();
        let rules: Vec<&str> = last.values().map(|l| l.rule.as_str()).collect();
        let groups: Vec<&str> = last.values().map(|l| l.group.as_str()).collect();
        let connections: Vec<&str> = last.values().map(|l| l.connection.as_str()).collect();
        let targets: Vec<Option<String>> = last
            .values()
            .map(|l| text_of(l.target_id.as_deref()))
            .collect();
        let members: Vec<String> = last
            .values()
            .map(|l| serde_json::to_string(&l.members).unwrap_or_else(|_| "[]".into()))
            .collect();
        let states: Vec<&str> = last.values().map(|l| l.state.as_str()).collect();
        let reasons: Vec<Option<String>> = last
            .values()
            .map(|l| text_of(l.reason.as_deref()))
            .collect();
        let updated: Vec<i64> = last.values().map(|l| l.updated_at).collect();
        db.exec(
            &transaction,
            "INSERT INTO group_links (rule, group_name, connection, target_id, members, state, reason, updated_at)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[])
             ON CONFLICT (rule, group_name) DO UPDATE SET connection = EXCLUDED.connection,
             target_id = EXCLUDED.target_id, members = EXCLUDED.members, state = EXCLUDED.state,
             reason = EXCLUDED.reason, updated_at = EXCLUDED.updated_at",
            &[&rules, &groups, &connections, &targets, &members, &states, &reasons, &updated],
        )
        .await?;
    }
    db.delete_pairs(&transaction, "group_links", "group_name", drop)
        .await?;
    transaction.commit().await.map_err(|e| db.error(e))
}

pub(super) async fn count_states(
    db: &PgState,
) -> Result<Vec<(String, LinkState, u64)>, StateError> {
    super::links::count_by_rule_and_state(
        db,
        "SELECT rule, state, COUNT(*) FROM group_links GROUP BY rule, state ORDER BY rule, state COLLATE \"C\"",
    )
    .await
}
