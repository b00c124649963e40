//! A rule gone from the configuration. Its records follow the
//! connection's `deprovision_on_rule_deletion`: removed as having left the
//! scope (a record another rule links is handed over), or kept and let go.

use super::report::{RuleReport, RuleStatus};
use super::sharing::Sharing;
use super::work::Work;
use super::{Engine, EngineError};
use crate::config::{Cause, RemoveAction};
use crate::sync::links::{JournalEntry, LinkState};
use serde_json::json;

impl Engine {
    /// A rule that is gone from the configuration: its records are
    /// removed if the connection says `deprovision_on_rule_deletion`, else
    /// let go. Returns its report and the removals to send.
    pub(super) async fn rule_deleted(
        &self,
        rule: &str,
        connection: &str,
        dry_run: bool,
        sharing: &mut Sharing,
    ) -> Result<(RuleReport, Vec<Work>), EngineError> {
        let links = &*self.db;
        let rule_links = links.of_rule(rule).await?;
        let mut rule_report = RuleReport::new(rule, connection);
        rule_report.status = Some(RuleStatus::Deleted);
        let mut work = Vec::new();
        let bound = match self.bind(connection).await {
            Ok(bound) => Some(bound),
            Err(reason) => {
                tracing::warn!(rule, connection, %reason, "a deleted rule's connection is unusable; its links are dropped and its records stay");
                None
            }
        };
        let prefs = bound.as_ref().map(|b| b.connection.preferences.clone());
        let deprovision = prefs
            .as_ref()
            .is_some_and(|p| p.deprovision_on_rule_deletion && p.allow_deprovision);
        let action = prefs
            .as_ref()
            .and_then(|p| match p.remove_action.of(Cause::LeftScope) {
                Some(RemoveAction::Delete) if p.allow_delete => Some(RemoveAction::Delete),
                Some(RemoveAction::Disable) if p.allow_disable => Some(RemoveAction::Disable),
                _ => None,
            });
        match (deprovision, action) {
            (true, Some(action)) => {
                let removals: Vec<Work> = rule_links
                    .into_values()
                    // A record disabled already needs nothing more.
                    .filter(|link| {
                        !(action == RemoveAction::Disable && link.state == LinkState::Disabled)
                    })
                    .filter_map(|link| {
                        let target = link.target_id.clone()?;
                        Some(Work::removal(link, None, target, action, Cause::LeftScope))
                    })
                    .collect();
                work = self
                    .hand_over(removals, sharing, dry_run, &mut rule_report)
                    .await?;
                for removal in &work {
                    let target = removal.base.target_id.as_deref().unwrap_or_default();
                    rule_report.line(
                        &removal.person_id,
                        "remove",
                        format!("{target}: the rule was deleted"),
                    );
                }
            }
            _ => {
                rule_report.line(
                    "*",
                    "forget",
                    "the rule was deleted; its records stay (deprovision_on_rule_deletion is off)",
                );
                if !dry_run {
                    links
                        .journal_note(
                            &JournalEntry {
                                rule: Some(rule.to_string()),
                                person_id: None,
                                connection: connection.to_string(),
                                action: "forget-rule".into(),
                                target_id: None,
                                detail: json!({ "links": rule_links.len() }),
                            },
                            "ok",
                        )
                        .await?;
                    links.forget_rule(rule).await?;
                }
            }
        }
        Ok((rule_report, work))
    }
}
