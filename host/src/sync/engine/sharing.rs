//! Rules that target one connection share its records. A person in two
//! of them has one record: the second rule adopts what the first creates
//! (see `Sharing::deferred`), and a record one rule lets go of is handed
//! over to another that links it, never removed on its behalf.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::report::{Action, RuleReport};
use super::work::{Work, WorkKind};
use super::{Engine, EngineError};
use crate::config::{RemoveAction, Rule};
use crate::directory::Directory;
use crate::sync::links::{JournalEntry, LinkState};
use crate::sync::plan::Planned;

/// Rules that target one connection share its records: a person in two
/// of them has one record, not two, and a record one rule links is never
/// removed on behalf of another.
#[derive(Debug, Default)]
pub(super) struct Sharing {
    /// Connections that two or more of the pass's rules target: only
    /// these are tracked below, so that a pass of one rule per connection
    /// keeps nothing per person.
    pub shared: BTreeSet<String>,
    /// (connection, person) whose record a rule creates in this slice.
    pub creating: BTreeSet<(String, String)>,
    /// Finds that wait for another rule's create of the same person's
    /// record, by rule: looked up again at the end of the pass, they adopt
    /// that record instead of creating a twin.
    pub deferred: BTreeMap<String, Vec<Planned>>,
    /// In a dry run, (connection, person) that a rule will look up, with
    /// the rule: another rule's removal of their record may become a
    /// handover once the lookup finds it.
    pub finding: BTreeMap<(String, String), String>,
    /// (rule, record) links let go in this pass: a dry run, which writes
    /// nothing, must not take them for holders of the record.
    pub released: BTreeSet<(String, String)>,
}

impl Engine {
    /// Takes out of `removals` the records that another rule of the same
    /// connection links: that rule keeps the record, and this rule only
    /// lets go of its link. Only a rule of the configuration counts: a
    /// deleted rule's links go with it. A removal waits while another
    /// active rule of the connection wants the person and has not yet
    /// found their record (its lookup failed for now, or it has not run),
    /// so that a move between rules never deletes the record the other
    /// rule would adopt. In a dry run, a record that another rule is about
    /// to look up may go either way, and is shown so.
    pub(super) async fn hand_over(
        &self,
        removals: Vec<Work>,
        sharing: &mut Sharing,
        dry_run: bool,
        report: &mut RuleReport,
    ) -> Result<Vec<Work>, EngineError> {
        let links = &*self.db;
        let mut kept = Vec::with_capacity(removals.len());
        let mut released = Vec::new();
        for removal in removals {
            let WorkKind::Remove { target, action, .. } = &removal.kind else {
                kept.push(removal);
                continue;
            };
            let holder = links
                .other_holders(&removal.connection, &removal.rule, target)
                .await?
                .into_iter()
                .find(|holder| {
                    self.rules.knows(holder)
                        && !sharing.released.contains(&(holder.clone(), target.clone()))
                });
            if let Some(holder) = holder {
                sharing
                    .released
                    .insert((removal.rule.clone(), target.clone()));
                report.count(Action::HandedOver);
                report.line(
                    &removal.person_id,
                    "hand over",
                    format!("{target} stays: rule {holder} links it"),
                );
                if !dry_run {
                    links
                        .journal_note(
                            &JournalEntry {
                                rule: Some(removal.rule.clone()),
                                person_id: Some(removal.person_id.clone()),
                                connection: removal.connection.clone(),
                                action: "hand-over".into(),
                                target_id: Some(target.clone()),
                                detail: json!({ "to_rule": holder }),
                            },
                            "ok",
                        )
                        .await?;
                    released.push((removal.rule.clone(), removal.person_id.clone()));
                }
                continue;
            }
            if dry_run
                && let Some(finder) = sharing
                    .finding
                    .get(&(removal.connection.clone(), removal.person_id.clone()))
            {
                let action = match action {
                    RemoveAction::Delete => "deleted",
                    RemoveAction::Disable => "disabled",
                };
                report.count(Action::HandOverOrRemove);
                report.line(
                    &removal.person_id,
                    "hand over or remove",
                    format!(
                        "{target} stays if rule {finder}'s lookup finds it; else it is {action}"
                    ),
                );
                continue;
            }
            if let Some(wanting) = self.wanted_elsewhere(&removal).await? {
                report.count(Action::Waiting);
                report.line(
                    &removal.person_id,
                    "wait",
                    format!(
                        "{target} stays for now: rule {wanting} of the same connection wants this person and has not found their record yet"
                    ),
                );
                continue;
            }
            kept.push(removal);
        }
        if !released.is_empty() {
            links.commit(&[], &released, &[]).await?;
        }
        Ok(kept)
    }

    /// Another active rule of the removal's connection whose scope holds
    /// the person, and which has not settled them yet: no link, or a link
    /// without a record after a failure that may pass. A rule that cannot
    /// create there (its link says Unsynced) or that refused the person
    /// for good does not hold a removal up.
    async fn wanted_elsewhere(&self, removal: &Work) -> Result<Option<String>, EngineError> {
        let rivals: Vec<(&String, &Rule)> = self
            .rules
            .rules
            .iter()
            .filter(|(name, rule)| {
                **name != removal.rule && rule.active && rule.connection == removal.connection
            })
            .collect();
        if rivals.is_empty() {
            return Ok(None);
        }
        let ids = BTreeSet::from([removal.person_id.clone()]);
        let directory = Directory::new(&*self.db, self.schema.clone());
        let Some(person) = directory.people_among(&ids).await?.pop() else {
            return Ok(None);
        };
        let links = &*self.db;
        for (name, rule) in rivals {
            if !rule.scope.contains(&person) {
                continue;
            }
            let wants = match links.of_rule_among(name, &ids).await?.remove(&person.id) {
                None => true,
                Some(link) => {
                    link.target_id.is_none()
                        && link.state == LinkState::Failed
                        && link
                            .error
                            .as_ref()
                            .is_none_or(|e| !matches!(e.class.as_str(), "rejected" | "unsupported"))
                }
            };
            if wants {
                return Ok(Some(name.clone()));
            }
        }
        Ok(None)
    }
}
