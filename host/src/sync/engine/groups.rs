//! Groups a rule pushes (`push_groups`, names or prefixes that end in
//! `*`): each directory group is kept in
//! the rule's target as a group whose members are the records of the
//! group's members that the rule has there. A person the rule has not
//! created yet joins once their record exists, which is why this step runs
//! after the pass has sent its people's work.
//!
//! The preferences apply as they do to people: creating a group needs
//! `allow_create` (without it, a group already in the store is still
//! adopted), changing its members needs `allow_update`, and a group taken
//! out of `push_groups` is deleted from the store only with
//! `deprovision_on_rule_deletion` and `allow_delete`; otherwise the host
//! forgets it and leaves it there.
//!
//! [`plan`] is pure: from the groups pushed, the members wanted and the
//! group links, the steps. The engine looks up, sends one batch of group
//! operations per rule, and records the links.

use std::collections::{BTreeMap, BTreeSet};

use super::binding::RuleBinding;
use super::report::{Action, GroupLine, RuleReport};
use super::{Engine, EngineError};
use crate::config::Preferences;
use crate::runtime::contract::{Group, GroupOperation, StoreError};
use crate::sync::links::{GroupLink, JournalEntry, LinkState};
use crate::targets::Target;

/// What becomes of one group this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// Not linked yet: found by its name and adopted, else created when
    /// `create` allows it.
    Find {
        group: String,
        members: BTreeSet<String>,
        create: bool,
    },
    /// Linked, with members to add and remove.
    Change {
        link: GroupLink,
        add: BTreeSet<String>,
        remove: BTreeSet<String>,
    },
    /// Linked, and as wanted.
    Same { link: GroupLink },
    /// Linked, and its members differ, but updating is not allowed.
    Hold { link: GroupLink, differ: usize },
    /// No longer pushed, and removal allowed: deleted from the store.
    Delete { link: GroupLink },
    /// No longer pushed: the link is dropped and the group left.
    Forget { link: GroupLink, why: &'static str },
}

/// The steps for a rule's groups: `pushed` are the groups it pushes,
/// `wanted` their members as record ids, `links` what the host last wrote.
pub(super) fn plan(
    pushed: &[String],
    wanted: &BTreeMap<String, BTreeSet<String>>,
    links: &BTreeMap<String, GroupLink>,
    preferences: &Preferences,
) -> Vec<Step> {
    let mut steps = Vec::new();
    for group in pushed {
        let members = wanted.get(group).cloned().unwrap_or_default();
        let Some(link) = links.get(group).filter(|l| l.target_id.is_some()) else {
            steps.push(Step::Find {
                group: group.clone(),
                members,
                create: preferences.allow_create,
            });
            continue;
        };
        let add: BTreeSet<String> = members.difference(&link.members).cloned().collect();
        let remove: BTreeSet<String> = link.members.difference(&members).cloned().collect();
        let link = link.clone();
        steps.push(if add.is_empty() && remove.is_empty() {
            Step::Same { link }
        } else if !preferences.allow_update {
            Step::Hold {
                link,
                differ: add.len() + remove.len(),
            }
        } else {
            Step::Change { link, add, remove }
        });
    }
    for (group, link) in links {
        if pushed.contains(group) {
            continue;
        }
        steps.push(match (&link.target_id, preferences) {
            (Some(_), p) if p.deprovision_on_rule_deletion && p.allow_delete => Step::Delete {
                link: link.clone(),
            },
            (Some(_), p) if p.deprovision_on_rule_deletion => Step::Forget {
                link: link.clone(),
                why: "no longer pushed; deleting groups is not allowed on this connection, so it stays",
            },
            _ => Step::Forget {
                link: link.clone(),
                why: "no longer pushed; it stays, as deprovision_on_rule_deletion is off",
            },
        });
    }
    steps
}

/// What the step says in a dry run, which sends nothing.
fn planned(step: &Step) -> GroupLine {
    let (group, action, detail) = match step {
        Step::Find {
            group,
            members,
            create,
        } => (
            group,
            if *create {
                Action::CreateOrAdopt
            } else {
                Action::AdoptIfFound
            },
            format!("{} members, after a lookup by name", members.len()),
        ),
        Step::Change { link, add, remove } => (
            &link.group,
            Action::Update,
            format!("add {}, remove {} members", add.len(), remove.len()),
        ),
        Step::Same { link } => (&link.group, Action::Unchanged, String::new()),
        Step::Hold { link, differ } => (
            &link.group,
            Action::Partial,
            format!("{differ} members differ, but updating is not allowed on this connection"),
        ),
        Step::Delete { link } => (&link.group, Action::Delete, "no longer pushed".into()),
        Step::Forget { link, why } => (&link.group, Action::Kept, why.to_string()),
    };
    GroupLine {
        group: group.clone(),
        action,
        detail,
    }
}

/// What a group operation does to the link's members once it succeeds.
#[derive(Debug)]
enum Delta {
    Create(BTreeSet<String>),
    Add(BTreeSet<String>),
    Remove(BTreeSet<String>),
    Delete,
}

/// A group operation to send, and the link it updates.
struct Sent {
    link: GroupLink,
    delta: Delta,
    operation: GroupOperation,
}

impl Sent {
    fn action(&self) -> Action {
        match self.delta {
            Delta::Create(_) => Action::Created,
            Delta::Add(_) | Delta::Remove(_) => Action::Updated,
            Delta::Delete => Action::Removed,
        }
    }
}

impl Engine {
    /// Keeps the groups `binding`'s rule pushes: plans, looks up, sends
    /// one batch, records the links and reports each group.
    ///
    /// A pass over some people (`people`, the daemon's passes over those
    /// who changed) keeps only the groups those people can have changed
    /// (see [`Engine::touched`]), so that its cost follows the change and
    /// not the size of the groups. Only a pass over everyone makes a group
    /// that nobody is in yet, or lets go of groups a rule no longer
    /// pushes.
    pub(super) async fn push_groups(
        &self,
        binding: &RuleBinding,
        people: Option<&BTreeSet<String>>,
        dry_run: bool,
        now: i64,
        report: &mut RuleReport,
    ) -> Result<(), EngineError> {
        let rule = &binding.rule;
        if rule.push_groups.is_empty() && people.is_some() {
            return Ok(());
        }
        let mut links = self.db.group_links(&rule.name).await?;
        if rule.push_groups.is_empty() && links.is_empty() {
            return Ok(());
        }
        let pushed = match people {
            Some(people) => {
                let touched = self.touched(&rule.name, people, &links).await?;
                let mut pushed = rule.pushed_groups(&touched);
                pushed.retain(|group| touched.contains(group));
                // A group no longer pushed is let go by a pass over
                // everyone, not here.
                links.retain(|group, _| pushed.contains(group));
                pushed
            }
            None => {
                // The directory's groups are read only for a prefix to
                // select from.
                let known = if rule.push_groups.iter().any(|g| g.ends_with('*')) {
                    self.db.group_names().await?
                } else {
                    BTreeSet::new()
                };
                rule.pushed_groups(&known)
            }
        };
        if pushed.is_empty() && people.is_some() {
            return Ok(());
        }
        let mut wanted = BTreeMap::new();
        for group in &pushed {
            wanted.insert(group.clone(), self.record_ids(&rule.name, group).await?);
        }
        let steps = plan(
            &pushed,
            &wanted,
            &links,
            &binding.bound.connection.preferences,
        );
        if dry_run {
            report.groups.extend(steps.iter().map(planned));
            return Ok(());
        }
        let target = &binding.bound.connection.target;
        let finding: Vec<String> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Find { group, .. } => Some(group.clone()),
                _ => None,
            })
            .collect();
        let mut found = BTreeMap::new();
        if !finding.is_empty() {
            match target.lookup_groups(finding).await {
                Ok(groups) => {
                    for group in groups {
                        found
                            .entry(group.display_name.to_lowercase())
                            .or_insert(group);
                    }
                }
                Err(error) => {
                    return self
                        .groups_failed(rule, &links, &steps, &error.to_string(), now, report)
                        .await;
                }
            }
        }
        let allow_update = binding.bound.connection.preferences.allow_update;
        let fresh = |group: &str| {
            links
                .get(group)
                .cloned()
                .unwrap_or_else(|| GroupLink::new(&rule.name, group, &rule.connection))
        };
        let mut out = Settled::default();
        for step in steps {
            settle(step, &found, &fresh, allow_update, now, report, &mut out);
        }
        let target = &*binding.bound.connection.target;
        self.send_groups(target, out.sent, now, &mut out.save, &mut out.drop, report)
            .await?;
        self.db.commit_groups(&out.save, &out.drop).await?;
        Ok(())
    }

    /// The groups a rule deleted from the configuration pushed: deleted
    /// from the store with `deprovision_on_rule_deletion` and
    /// `allow_delete`, as when a group is taken out of a rule; else let
    /// go. Either way their links go.
    pub(super) async fn deleted_rule_groups(
        &self,
        rule: &str,
        connection: &str,
        dry_run: bool,
        now: i64,
        report: &mut RuleReport,
    ) -> Result<(), EngineError> {
        let links = self.db.group_links(rule).await?;
        if links.is_empty() {
            return Ok(());
        }
        let bound = self.bind(connection).await.ok();
        let steps = match &bound {
            Some(bound) => plan(&[], &BTreeMap::new(), &links, &bound.connection.preferences),
            None => links
                .values()
                .map(|link| Step::Forget {
                    link: link.clone(),
                    why: "the rule was deleted and its connection cannot be used; the group stays",
                })
                .collect(),
        };
        if dry_run {
            report.groups.extend(steps.iter().map(planned));
            return Ok(());
        }
        let mut out = Settled::default();
        let fresh = |group: &str| GroupLink::new(rule, group, connection);
        for step in steps {
            settle(step, &BTreeMap::new(), &fresh, false, now, report, &mut out);
        }
        let Settled {
            mut save,
            mut drop,
            sent,
        } = out;
        if let Some(bound) = &bound {
            self.send_groups(
                &*bound.connection.target,
                sent,
                now,
                &mut save,
                &mut drop,
                report,
            )
            .await?;
        }
        self.db.commit_groups(&save, &drop).await?;
        Ok(())
    }

    /// The groups whose members a pass over `people` can have changed:
    /// the groups they are in, the groups whose members as last written
    /// hold one of their records (someone who left, or whose record was
    /// disabled), and the groups whose last change failed, to send again.
    /// Every other group is as the last pass left it.
    async fn touched(
        &self,
        rule: &str,
        people: &BTreeSet<String>,
        links: &BTreeMap<String, GroupLink>,
    ) -> Result<BTreeSet<String>, EngineError> {
        let mut touched: BTreeSet<String> = links
            .iter()
            .filter(|(_, link)| link.state == LinkState::Failed)
            .map(|(group, _)| group.clone())
            .collect();
        for person in self.db.people_among(people).await? {
            touched.extend(person.groups);
        }
        let records: BTreeSet<String> = self
            .db
            .of_rule_among(rule, people)
            .await?
            .into_values()
            .filter_map(|link| link.target_id)
            .collect();
        touched.extend(
            links
                .iter()
                .filter(|(_, link)| !link.members.is_disjoint(&records))
                .map(|(group, _)| group.clone()),
        );
        Ok(touched)
    }

    /// The record ids of a directory group's members that the rule has in
    /// its target: records that exist and that the rule still holds (not
    /// disabled, not kept after the person left its scope).
    async fn record_ids(&self, rule: &str, group: &str) -> Result<BTreeSet<String>, EngineError> {
        let members = self.db.members_of(group).await?;
        if members.is_empty() {
            return Ok(BTreeSet::new());
        }
        let links = self.db.of_rule_among(rule, &members).await?;
        Ok(links
            .into_values()
            .filter(|l| !matches!(l.state, LinkState::Disabled | LinkState::Kept))
            .filter_map(|l| l.target_id)
            .collect())
    }

    /// Sends the group operations in batches and records their answers:
    /// a group's link takes what its operations that succeeded did, and
    /// is failed if any of them failed, so that the next pass sends again
    /// what did not happen.
    async fn send_groups(
        &self,
        target: &dyn Target,
        sent: Vec<Sent>,
        now: i64,
        save: &mut Vec<GroupLink>,
        drop: &mut Vec<(String, String)>,
        report: &mut RuleReport,
    ) -> Result<(), EngineError> {
        let mut after: BTreeMap<String, GroupLink> = BTreeMap::new();
        let mut failed: BTreeMap<String, String> = BTreeMap::new();
        let mut gone: BTreeSet<String> = BTreeSet::new();
        let mut sent = sent.into_iter().peekable();
        while sent.peek().is_some() {
            let chunk: Vec<Sent> = sent.by_ref().take(self.settings.batch_size).collect();
            let operations = chunk.iter().map(|s| s.operation.clone()).collect();
            let answers: Vec<Result<String, StoreError>> =
                match target.apply_groups(operations).await {
                    Ok(answers) => answers.into_iter().map(|a| a.map(|o| o.id)).collect(),
                    Err(error) => vec![Err(super::execute::call_error(&error)); chunk.len()],
                };
            for (item, answer) in chunk.into_iter().zip(answers) {
                let action = item.action();
                let group = item.link.group.clone();
                self.journal_group(&item, &answer).await?;
                let link = after.entry(group.clone()).or_insert(item.link);
                link.updated_at = now;
                match (answer, item.delta) {
                    (Ok(_), Delta::Delete) | (Err(StoreError::NotFound(_)), Delta::Delete) => {
                        gone.insert(group.clone());
                        report.groups.push(GroupLine::new(&group, action, ""));
                    }
                    (Ok(id), delta) => {
                        match delta {
                            Delta::Create(members) => {
                                link.target_id = Some(id);
                                link.members = members;
                            }
                            Delta::Add(members) => link.members.extend(members),
                            Delta::Remove(members) => {
                                link.members.retain(|m| !members.contains(m));
                            }
                            Delta::Delete => {}
                        }
                        report.groups.push(GroupLine::new(&group, action, ""));
                    }
                    (Err(StoreError::NotFound(message)), _) if action != Action::Created => {
                        // Gone from the store: found or created again next
                        // pass.
                        link.target_id = None;
                        link.members.clear();
                        let reason = format!("not found in the store: {message}");
                        report
                            .groups
                            .push(GroupLine::new(&group, Action::Unsynced, &reason));
                        link.state = LinkState::Unsynced;
                        link.reason = Some(reason);
                    }
                    (Err(error), _) => {
                        report.groups.push(GroupLine::new(
                            &group,
                            Action::Failed,
                            &error.to_string(),
                        ));
                        failed.insert(group, error.to_string());
                    }
                }
            }
        }
        for (group, mut link) in after {
            if gone.contains(&group) {
                drop.push((link.rule.clone(), group));
                continue;
            }
            if let Some(reason) = failed.remove(&group) {
                link.state = LinkState::Failed;
                link.reason = Some(reason);
            } else if link.target_id.is_some() {
                link.state = LinkState::Synced;
                link.reason = None;
            }
            save.push(link);
        }
        Ok(())
    }

    /// One group operation in the journal, with what it answered: `audit`
    /// and `status group` show it beside the people's actions.
    async fn journal_group(
        &self,
        item: &Sent,
        answer: &Result<String, StoreError>,
    ) -> Result<(), EngineError> {
        let (action, members) = match &item.delta {
            Delta::Create(members) => ("group-create", members.len()),
            Delta::Add(members) => ("group-add-members", members.len()),
            Delta::Remove(members) => ("group-remove-members", members.len()),
            Delta::Delete => ("group-delete", 0),
        };
        let mut detail = serde_json::json!({ "group": item.link.group, "members": members });
        let target_id = match answer {
            Ok(id) => Some(id.clone()),
            Err(error) => {
                detail["error"] = serde_json::Value::from(error.to_string());
                item.link.target_id.clone()
            }
        };
        let entry = JournalEntry {
            rule: Some(item.link.rule.clone()),
            person_id: None,
            connection: item.link.connection.clone(),
            action: action.into(),
            target_id,
            detail,
        };
        let outcome = if answer.is_ok() { "ok" } else { "failed" };
        self.db.journal_note(&entry, outcome).await?;
        Ok(())
    }

    /// A lookup that failed fails every group that needed it; the others
    /// wait for the next pass too, so that the rule's groups move together.
    async fn groups_failed(
        &self,
        rule: &crate::config::Rule,
        links: &BTreeMap<String, GroupLink>,
        steps: &[Step],
        reason: &str,
        now: i64,
        report: &mut RuleReport,
    ) -> Result<(), EngineError> {
        let mut save = Vec::new();
        for step in steps {
            if let Step::Find { group, .. } = step {
                let mut link = links
                    .get(group)
                    .cloned()
                    .unwrap_or_else(|| GroupLink::new(&rule.name, group, &rule.connection));
                link.state = LinkState::Failed;
                link.reason = Some(format!("looking groups up failed: {reason}"));
                link.updated_at = now;
                report.groups.push(GroupLine::new(
                    group,
                    Action::Failed,
                    link.reason.as_deref().unwrap_or_default(),
                ));
                save.push(link);
            }
        }
        self.db.commit_groups(&save, &[]).await?;
        Ok(())
    }
}

/// What a pass writes and sends for a rule's groups.
#[derive(Default)]
struct Settled {
    save: Vec<GroupLink>,
    drop: Vec<(String, String)>,
    sent: Vec<Sent>,
}

/// Where a step leaves its group: a link to write or to drop, or
/// operations to send. `found` holds what the lookup found, by name in
/// lower case; `fresh` gives the link of a group not linked yet.
fn settle(
    step: Step,
    found: &BTreeMap<String, Group>,
    fresh: &dyn Fn(&str) -> GroupLink,
    allow_update: bool,
    now: i64,
    report: &mut RuleReport,
    out: &mut Settled,
) {
    match step {
        Step::Find {
            group,
            members,
            create,
        } => {
            let mut link = fresh(&group);
            link.updated_at = now;
            let existing = found.get(&group.to_lowercase());
            settle_find(link, members, create, existing, allow_update, report, out);
        }
        Step::Change { link, add, remove } => out.sent.extend(changes(link, add, remove)),
        Step::Same { mut link } => {
            if link.state != LinkState::Synced {
                link.state = LinkState::Synced;
                link.reason = None;
                link.updated_at = now;
                out.save.push(link.clone());
            }
            report
                .groups
                .push(GroupLine::new(&link.group, Action::Unchanged, ""));
        }
        Step::Hold { mut link, differ } => {
            let line = planned(&Step::Hold {
                link: link.clone(),
                differ,
            });
            link.state = LinkState::Partial;
            link.reason = Some(line.detail.clone());
            link.updated_at = now;
            report.groups.push(line);
            out.save.push(link);
        }
        Step::Delete { link } => {
            let id = link.target_id.clone().unwrap_or_default();
            out.sent.push(Sent {
                delta: Delta::Delete,
                operation: GroupOperation::Delete { id },
                link,
            });
        }
        Step::Forget { link, why } => {
            report
                .groups
                .push(GroupLine::new(&link.group, Action::Kept, why));
            out.drop.push((link.rule, link.group));
        }
    }
}

/// A group the host had no link for, after the lookup: adopted when the
/// store has it (its members then changed to the rule's), else created
/// when `create` allows, else unsynced.
fn settle_find(
    mut link: GroupLink,
    members: BTreeSet<String>,
    create: bool,
    existing: Option<&Group>,
    allow_update: bool,
    report: &mut RuleReport,
    out: &mut Settled,
) {
    let group = link.group.clone();
    if let Some(existing) = existing {
        link.target_id = Some(existing.id.clone());
        link.members = existing.members.iter().cloned().collect();
        link.state = LinkState::Synced;
        link.reason = None;
        report
            .groups
            .push(GroupLine::new(&group, Action::Adopted, ""));
        let add: BTreeSet<String> = members.difference(&link.members).cloned().collect();
        let remove: BTreeSet<String> = link.members.difference(&members).cloned().collect();
        if add.is_empty() && remove.is_empty() {
            out.save.push(link);
        } else if allow_update {
            out.sent.extend(changes(link, add, remove));
        } else {
            link.state = LinkState::Partial;
            link.reason = Some("members differ, but updating is not allowed".into());
            out.save.push(link);
        }
    } else if create {
        out.sent.push(Sent {
            operation: GroupOperation::Create {
                display_name: group,
                members: members.iter().cloned().collect(),
            },
            delta: Delta::Create(members),
            link,
        });
    } else {
        let reason = "not in the store, and creating is not allowed on this connection";
        link.state = LinkState::Unsynced;
        link.reason = Some(reason.into());
        report
            .groups
            .push(GroupLine::new(&group, Action::Unsynced, reason));
        out.save.push(link);
    }
}

/// The operations that add `add` to a linked group and take `remove`
/// out: one each, carrying only the members that change.
fn changes(link: GroupLink, add: BTreeSet<String>, remove: BTreeSet<String>) -> Vec<Sent> {
    let id = link.target_id.clone().unwrap_or_default();
    let mut out = Vec::new();
    if !add.is_empty() {
        out.push(Sent {
            link: link.clone(),
            operation: GroupOperation::AddMembers {
                id: id.clone(),
                members: add.iter().cloned().collect(),
            },
            delta: Delta::Add(add),
        });
    }
    if !remove.is_empty() {
        out.push(Sent {
            link,
            operation: GroupOperation::RemoveMembers {
                id,
                members: remove.iter().cloned().collect(),
            },
            delta: Delta::Remove(remove),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RemoveAction, RemoveActions};

    fn preferences() -> Preferences {
        Preferences {
            allow_create: true,
            allow_update: true,
            allow_disable: true,
            allow_deprovision: true,
            allow_delete: true,
            remove_action: RemoveActions::all(Some(RemoveAction::Disable)),
            deprovision_on_rule_deletion: true,
        }
    }

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    fn linked(group: &str, members: &[&str]) -> GroupLink {
        GroupLink {
            target_id: Some(format!("g-{group}")),
            members: set(members),
            state: LinkState::Synced,
            ..GroupLink::new("r", group, "c")
        }
    }

    #[test]
    fn an_unlinked_group_is_found_or_created_with_its_members() {
        let wanted = BTreeMap::from([("eng".to_string(), set(&["1", "2"]))]);
        let steps = plan(&["eng".into()], &wanted, &BTreeMap::new(), &preferences());
        assert_eq!(
            steps,
            vec![Step::Find {
                group: "eng".into(),
                members: set(&["1", "2"]),
                create: true
            }]
        );
        let mut no_create = preferences();
        no_create.allow_create = false;
        let steps = plan(&["eng".into()], &wanted, &BTreeMap::new(), &no_create);
        assert!(matches!(&steps[0], Step::Find { create: false, .. }));
    }

    #[test]
    fn only_the_members_that_change_are_sent() {
        let links = BTreeMap::from([("eng".to_string(), linked("eng", &["1", "2"]))]);
        let wanted = BTreeMap::from([("eng".to_string(), set(&["2", "3"]))]);
        let steps = plan(&["eng".into()], &wanted, &links, &preferences());
        match &steps[0] {
            Step::Change { add, remove, .. } => {
                assert_eq!((add, remove), (&set(&["3"]), &set(&["1"])));
            }
            other => panic!("{other:?}"),
        }
        let sent = match steps.into_iter().next() {
            Some(Step::Change { link, add, remove }) => changes(link, add, remove),
            _ => unreachable!(),
        };
        assert_eq!(sent.len(), 2);
        assert!(
            matches!(&sent[0].operation, GroupOperation::AddMembers { members, .. } if members == &["3"])
        );
        assert!(
            matches!(&sent[1].operation, GroupOperation::RemoveMembers { members, .. } if members == &["1"])
        );
    }

    #[test]
    fn members_that_differ_are_held_when_updating_is_not_allowed() {
        let links = BTreeMap::from([("eng".to_string(), linked("eng", &["1"]))]);
        let wanted = BTreeMap::from([("eng".to_string(), set(&["1", "2"]))]);
        let mut preferences = preferences();
        preferences.allow_update = false;
        let steps = plan(&["eng".into()], &wanted, &links, &preferences);
        assert!(
            matches!(&steps[0], Step::Hold { differ: 1, .. }),
            "{steps:?}"
        );
        let wanted = BTreeMap::from([("eng".to_string(), set(&["1"]))]);
        let steps = plan(&["eng".into()], &wanted, &links, &preferences);
        assert!(matches!(&steps[0], Step::Same { .. }), "{steps:?}");
    }

    #[test]
    fn a_group_no_longer_pushed_is_deleted_only_when_both_preferences_allow() {
        let links = BTreeMap::from([("old".to_string(), linked("old", &["1"]))]);
        let steps = plan(&[], &BTreeMap::new(), &links, &preferences());
        assert!(matches!(&steps[0], Step::Delete { .. }), "{steps:?}");
        for (deprovision, delete) in [(true, false), (false, true), (false, false)] {
            let mut p = preferences();
            p.deprovision_on_rule_deletion = deprovision;
            p.allow_delete = delete;
            let steps = plan(&[], &BTreeMap::new(), &links, &p);
            assert!(
                matches!(&steps[0], Step::Forget { .. }),
                "{deprovision} {delete}: {steps:?}"
            );
        }
    }
}
