//! The resolve step: a rule's plan for a slice of people, and the records
//! its lookups found, turned into work, links and report lines. Nothing
//! here calls the store or the state file, so every way a decision can go
//! is tested below, as the planner is in `plan.rs`.
//!
//! A pass runs it in three steps: [`decide`] settles what needs no call and
//! collects who must be looked up; the engine looks them up; [`found`] and
//! [`reclaimed`] decide each person by what the lookup answered. A dry run
//! looks nothing up: [`render_lookups`] says what the lookups would decide
//! between instead.

use std::collections::BTreeMap;

use serde_json::json;

use super::report::{Action, RuleReport};
use super::sharing::Sharing;
use super::work::{Outcomes, Work, WorkKind, names, show, written_of};
use crate::config::Cause;
use crate::runtime::contract::{Attribute, Match, Value};
use crate::sync::links::{JournalEntry, Link, LinkError, LinkState};
use crate::sync::plan::{self, Decision, Found, Planned, RuleView};

/// A person to look up before the pass can decide: the match value, the
/// attributes to create with and to keep updated, and the linked record in
/// a full pass.
#[derive(Debug, Clone)]
pub(super) struct Find {
    pub person_id: String,
    pub person_seq: Option<i64>,
    pub key: String,
    pub create: Vec<Attribute>,
    pub update: Vec<Attribute>,
    pub existing: Option<String>,
}

impl Find {
    /// The find as a plan item again, for a rule that waits for another
    /// rule's create (see [`Sharing::deferred`]).
    fn replan(self) -> Planned {
        Planned {
            person_id: self.person_id,
            person_seq: self.person_seq,
            decision: Decision::Find {
                key: self.key,
                create: self.create,
                update: self.update,
                existing: self.existing,
            },
        }
    }
}

/// A leaver whose create was never answered: a lookup tells whether it
/// left a record behind.
#[derive(Debug, Clone)]
pub(super) struct Reclaim {
    pub person_id: String,
    pub person_seq: Option<i64>,
    pub key: String,
    pub cause: Cause,
}

/// A person promoted from another rule, whose record is converted in
/// place instead of being removed there and created here (see
/// `promotion.rs`).
#[derive(Debug, Clone)]
pub(super) struct Conversion {
    /// The other rule's link.
    pub from: Link,
    /// The connection the conversion is sent through: the other rule's.
    pub connection: String,
    pub target_type: String,
}

/// Conversions by (rule, person).
pub(super) type Conversions = BTreeMap<(String, String), Conversion>;

/// A rule as the resolve step sees it.
pub(super) struct Resolving<'a> {
    pub view: RuleView<'a>,
    /// A change of the mappings is held by the update guard: updates wait.
    pub hold_updates: bool,
    /// The rule's links for the slice, by person.
    pub links: &'a BTreeMap<String, Link>,
}

impl Resolving<'_> {
    fn name(&self) -> &str {
        &self.view.rule.name
    }

    fn connection(&self) -> &str {
        &self.view.rule.connection
    }

    /// The person's link, or a new one.
    pub fn link_of(&self, person: &str, person_seq: Option<i64>) -> Link {
        let mut link = self
            .links
            .get(person)
            .cloned()
            .unwrap_or_else(|| Link::new(self.name(), person, self.connection()));
        link.person_seq = person_seq;
        link
    }
}

/// What a rule's plan for a slice comes to.
#[derive(Debug, Default)]
pub(super) struct Resolved {
    pub finds: Vec<Find>,
    pub reclaims: Vec<Reclaim>,
    /// Operations to send now.
    pub work: Vec<Work>,
    /// Removals, which wait for the removal guard at the end of the pass.
    pub removals: Vec<Work>,
    /// Links written without a call.
    pub outcomes: Outcomes,
    /// Records adopted, journalled as they are linked.
    pub adoptions: Vec<JournalEntry>,
}

/// Settles every decision that needs no lookup, and collects the people
/// who must be looked up.
pub(super) fn decide(
    rule: &Resolving<'_>,
    planned: Vec<Planned>,
    report: &mut RuleReport,
) -> Resolved {
    let mut resolved = Resolved::default();
    for item in planned {
        let (person, seq) = (item.person_id, item.person_seq);
        match item.decision {
            Decision::Find {
                key,
                create,
                update,
                existing,
            } => resolved.finds.push(Find {
                person_id: person,
                person_seq: seq,
                key,
                create,
                update,
                existing,
            }),
            Decision::Update {
                target,
                changes,
                enable,
            } => {
                let kind = WorkKind::Update {
                    target,
                    changes,
                    written: None,
                    enable,
                    version: None,
                };
                let work = Work::on(rule.link_of(&person, seq), seq, kind);
                if let Some(work) = update(rule, work, report) {
                    resolved.work.push(work);
                }
            }
            Decision::Remove {
                target,
                action,
                cause,
            } => {
                let base = rule.link_of(&person, seq);
                let removal = Work::removal(base, seq, target, action, cause);
                resolved.removals.push(removal);
            }
            Decision::Settle { state, reason } => {
                report.count(state.into());
                report.line(
                    &person,
                    "skip",
                    reason.clone().unwrap_or_else(|| state.as_str().to_string()),
                );
                let mut link = rule.link_of(&person, seq);
                link.state = state;
                link.reason = reason;
                link.error = None;
                resolved.outcomes.save.push(link);
            }
            Decision::Fail { error } => {
                let mut link = rule.link_of(&person, seq);
                refuse(&mut link, error, report);
                resolved.outcomes.save.push(link);
            }
            Decision::Wait { reason } => {
                report.count(Action::Waiting);
                report.line(&person, "wait", reason);
            }
            Decision::Unchanged => {
                report.count(Action::Unchanged);
                // The pass has seen the person's latest data: status must
                // not count a change that needed nothing as pending. Only
                // people who changed are written.
                if let Some(link) = rule.links.get(&person)
                    && seq.is_some()
                    && link.person_seq != seq
                {
                    let mut link = link.clone();
                    link.person_seq = seq;
                    resolved.outcomes.save.push(link);
                }
            }
            Decision::Drop => resolved
                .outcomes
                .drop
                .push((rule.name().to_string(), person)),
            Decision::Reclaim { key, cause } => resolved.reclaims.push(Reclaim {
                person_id: person,
                person_seq: seq,
                key,
                cause,
            }),
        }
    }
    resolved
}

/// An update of a linked record, shown as a diff from what the link
/// remembers; `None` while the update guard holds the rule's updates.
fn update(rule: &Resolving<'_>, work: Work, report: &mut RuleReport) -> Option<Work> {
    let WorkKind::Update {
        changes, enable, ..
    } = &work.kind
    else {
        return Some(work);
    };
    let before = &work.base.written;
    let diff = changes
        .iter()
        .map(|c| {
            let old = before
                .get(&c.name)
                .map(show)
                .unwrap_or_else(|| "unset".into());
            format!("{}: {old} -> {}", c.name, show(&c.value))
        })
        .collect::<Vec<_>>()
        .join(", ");
    if rule.hold_updates {
        report.count(Action::Held);
        let line = format!("update {diff}: held by the update guard");
        report.line(&work.person_id, "hold", line);
        return None;
    }
    let action = if *enable { "enable" } else { "update" };
    report.line(&work.person_id, action, diff);
    Some(work)
}

/// A dry run's account of the lookups it does not make: each find may
/// adopt or create, each reclaim may find what an unanswered create left.
/// A rule of a shared connection notes whom it would look up, so that
/// another rule's removal of their record shows as a possible handover.
pub(super) fn render_lookups(
    rule: &Resolving<'_>,
    resolved: &Resolved,
    conversions: &Conversions,
    mut sharing: Option<&mut Sharing>,
    report: &mut RuleReport,
) {
    let (name, connection) = (rule.name(), rule.connection());
    let attribute = rule.view.match_attribute;
    for find in &resolved.finds {
        let person = &find.person_id;
        if find.existing.is_none()
            && let Some(sharing) = sharing.as_deref_mut()
            && sharing.shared.contains(connection)
        {
            sharing
                .finding
                .insert((connection.to_string(), person.clone()), name.to_string());
        }
        let action = if conversions.contains_key(&(name.to_string(), person.clone())) {
            Action::ConvertOrAdopt
        } else if find.existing.is_some() {
            Action::Verify
        } else if !rule.view.preferences.allow_create {
            Action::AdoptIfFound
        } else {
            Action::CreateOrAdopt
        };
        report.line(
            person,
            action.as_str(),
            format!("after a lookup by {attribute} {}", find.key),
        );
        report.count(action);
    }
    for reclaim in &resolved.reclaims {
        report.count(Action::Reclaim);
        report.line(
            &reclaim.person_id,
            "reclaim",
            format!(
                "look up by {attribute} {}; remove what an unanswered create left",
                reclaim.key
            ),
        );
    }
}

/// Decides a leaver by the records its match value found: nothing left
/// behind is forgotten, one record goes the way of any leaver's, several
/// cannot be told apart.
pub(super) fn reclaimed(
    rule: &Resolving<'_>,
    reclaim: &Reclaim,
    found: &[Match],
    report: &mut RuleReport,
    resolved: &mut Resolved,
) {
    let person = &reclaim.person_id;
    let ids: Vec<&str> = found
        .iter()
        .filter(|m| m.value.eq_ignore_ascii_case(&reclaim.key))
        .map(|m| m.id.as_str())
        .collect();
    let mut link = rule.link_of(person, reclaim.person_seq);
    match ids.as_slice() {
        [] => {
            report.line(person, "forget", "no record was left behind");
            resolved
                .outcomes
                .drop
                .push((rule.name().to_string(), person.clone()));
        }
        [id] => {
            report.line(person, "reclaim", id.to_string());
            link.target_id = Some(id.to_string());
            match plan::leaver(&link, rule.view.preferences, id.to_string(), reclaim.cause) {
                Decision::Remove {
                    target,
                    action,
                    cause,
                } => {
                    let removal = Work::removal(link, reclaim.person_seq, target, action, cause);
                    resolved.removals.push(removal);
                }
                Decision::Settle { state, reason } => {
                    report.count(state.into());
                    link.state = state;
                    link.reason = reason;
                    link.error = None;
                    resolved.outcomes.save.push(link);
                }
                _ => resolved.outcomes.save.push(link),
            }
        }
        many => {
            let error = ambiguous(
                rule.view.match_attribute,
                &reclaim.key,
                many,
                " and the person left the scope",
            );
            refuse(&mut link, error, report);
            resolved.outcomes.save.push(link);
        }
    }
}

/// Decides a person by the records that answer to their match value:
/// create (or convert, or wait for another rule's create), adopt and
/// update, adopt what is behind, or refuse an ambiguous match.
pub(super) fn found(
    rule: &Resolving<'_>,
    find: Find,
    matches: &[&Match],
    conversion: Option<&Conversion>,
    sharing: Option<&mut Sharing>,
    report: &mut RuleReport,
    resolved: &mut Resolved,
) {
    let resolution = plan::resolve(
        find.create.clone(),
        &find.update,
        find.existing.as_deref(),
        matches,
        rule.view.case_rules(),
        rule.view.preferences,
    );
    let mut link = rule.link_of(&find.person_id, find.person_seq);
    match resolution {
        Found::Create(attributes) => create(
            rule, find, attributes, conversion, sharing, report, resolved,
        ),
        Found::Adopt {
            target,
            changes,
            version,
        } => {
            let adoption = Adoption {
                target,
                changes,
                version,
            };
            adopt(rule, find, adoption, conversion, report, resolved)
        }
        Found::CreateForbidden => {
            report.count(Action::Unsynced);
            report.line(&find.person_id, "skip", plan::CREATE_FORBIDDEN);
            link.state = LinkState::Unsynced;
            link.reason = Some(plan::CREATE_FORBIDDEN.into());
            link.error = None;
            resolved.outcomes.save.push(link);
        }
        Found::AdoptBehind { target, changes } => {
            report.count(Action::Partial);
            let reason = format!(
                "{} differ, but updating records is not allowed on this connection",
                names(&changes).join(", ")
            );
            report.line(&find.person_id, "skip", reason.clone());
            link.target_id = Some(target);
            link.state = LinkState::Partial;
            link.reason = Some(reason);
            resolved.outcomes.save.push(link);
        }
        Found::Ambiguous(ids) => {
            let error = ambiguous(rule.view.match_attribute, &find.key, &ids, "");
            refuse(&mut link, error, report);
            resolved.outcomes.save.push(link);
        }
    }
}

/// Nothing to adopt: convert the record of a promoted person, wait for
/// another rule of a shared connection that creates the same record, or
/// create.
fn create(
    rule: &Resolving<'_>,
    find: Find,
    attributes: Vec<Attribute>,
    conversion: Option<&Conversion>,
    sharing: Option<&mut Sharing>,
    report: &mut RuleReport,
    resolved: &mut Resolved,
) {
    let (name, connection) = (rule.name(), rule.connection());
    let person = find.person_id.clone();
    let link = rule.link_of(&person, find.person_seq);
    if let Some(conversion) = conversion
        && let Some(target) = conversion.from.target_id.clone()
    {
        report.line(
            &person,
            "convert",
            format!("{target} from rule {}", conversion.from.rule),
        );
        let kind = WorkKind::Convert {
            from: Box::new(conversion.from.clone()),
            target,
            target_type: conversion.target_type.clone(),
            attributes,
        };
        let mut work = Work::on(link, find.person_seq, kind);
        work.connection = conversion.connection.clone();
        resolved.work.push(work);
    } else if let Some(sharing) = sharing
        && sharing.shared.contains(connection)
        && !sharing
            .creating
            .insert((connection.to_string(), person.clone()))
    {
        // Another rule of this connection creates this person's record in
        // this pass: adopt it later.
        report.line(
            &person,
            "wait",
            "another rule of the connection creates this person's record; this rule looks it up again after that",
        );
        let find = Find {
            create: attributes,
            ..find
        };
        sharing
            .deferred
            .entry(name.to_string())
            .or_default()
            .push(find.replan());
    } else {
        let set: Vec<String> = attributes
            .iter()
            .filter(|a| a.value != Value::Null)
            .map(|a| a.name.clone())
            .collect();
        report.line(&person, "create", set.join(", "));
        let kind = WorkKind::Create(attributes);
        resolved.work.push(Work::on(link, find.person_seq, kind));
    }
}

/// A record the lookup found, to link and bring up to date.
struct Adoption {
    target: String,
    changes: Vec<Attribute>,
    version: Option<String>,
}

/// Links the record found: journalled as an adoption if it was not this
/// rule's already, and updated if it differs (unless the update guard
/// holds the rule's updates).
fn adopt(
    rule: &Resolving<'_>,
    find: Find,
    found: Adoption,
    conversion: Option<&Conversion>,
    report: &mut RuleReport,
    resolved: &mut Resolved,
) {
    let person = find.person_id.clone();
    let Adoption {
        target,
        changes,
        version,
    } = found;
    let adopted = find.existing.as_deref() != Some(target.as_str());
    if adopted {
        report.count(Action::Adopted);
        resolved.adoptions.push(JournalEntry {
            rule: Some(rule.name().to_string()),
            person_id: Some(person.clone()),
            connection: rule.connection().to_string(),
            action: "adopt".into(),
            target_id: Some(target.clone()),
            detail: json!({ "matched_on": rule.view.match_attribute, "value": find.key }),
        });
    }
    // A promoted person found already in the new rule's store: the old
    // link is simply let go.
    if let Some(conversion) = conversion {
        resolved
            .outcomes
            .drop
            .push((conversion.from.rule.clone(), person.clone()));
    }
    if rule.hold_updates && !adopted && !changes.is_empty() {
        report.count(Action::Held);
        let held = names(&changes).join(", ");
        report.line(
            &person,
            "hold",
            format!("update {held}: held by the update guard"),
        );
        return;
    }
    let mut link = rule.link_of(&person, find.person_seq);
    link.target_id = Some(target.clone());
    if changes.is_empty() {
        if !adopted {
            report.count(Action::Unchanged);
        }
        let action = if adopted { "adopt" } else { "verify" };
        report.line(&person, action, target);
        link.written = written_of(&find.update);
        link.state = LinkState::Synced;
        link.error = None;
        link.reason = None;
        link.attempts = 0;
        link.next_retry = None;
        resolved.outcomes.save.push(link);
    } else {
        report.line(&person, "update", names(&changes).join(", "));
        let kind = WorkKind::Update {
            target,
            changes,
            written: Some(written_of(&find.update)),
            enable: false,
            version,
        };
        resolved.work.push(Work::on(link, find.person_seq, kind));
    }
}

/// The records a lookup found, by lowercased match value.
pub(super) fn by_key(found: &[Match]) -> BTreeMap<String, Vec<&Match>> {
    let mut by_key: BTreeMap<String, Vec<&Match>> = BTreeMap::new();
    for m in found {
        by_key.entry(m.value.to_lowercase()).or_default().push(m);
    }
    by_key
}

/// A link that fails for good until the data or the store changes.
pub(super) fn refuse(link: &mut Link, error: LinkError, report: &mut RuleReport) {
    report.count(Action::Failed);
    report.line(&link.person_id, "fail", error.message.clone());
    link.state = LinkState::Failed;
    link.error = Some(error);
}

/// Several records answer to one person's match value: nothing can be
/// linked until the duplicates in the store are resolved.
fn ambiguous(attribute: &str, key: &str, ids: &[impl AsRef<str>], context: &str) -> LinkError {
    let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
    LinkError {
        class: "rejected".into(),
        code: Some("AMBIGUOUS_MATCH".into()),
        message: format!(
            "{} records have {attribute} {key} ({}){context}; resolve the duplicates in the store",
            ids.len(),
            ids.join(", ")
        ),
        fields: vec![attribute.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Preferences, RemoveAction, RemoveActions, Rule};
    use crate::mapping::{self, CompiledMapping};
    use crate::runtime::contract::{Mapping, MappingSource};
    use std::collections::BTreeSet;

    fn prefs() -> Preferences {
        Preferences {
            allow_create: true,
            allow_update: true,
            allow_disable: true,
            allow_deprovision: true,
            allow_delete: true,
            remove_action: RemoveActions::all(Some(RemoveAction::Delete)),
            deprovision_on_rule_deletion: false,
        }
    }

    fn rule() -> Rule {
        Rule::everyone("r", "c")
    }

    fn mappings() -> Vec<CompiledMapping> {
        let map = |target: &str, source: &str| Mapping {
            target: target.into(),
            source: MappingSource::Attribute(source.into()),
            apply_on_update: true,
        };
        mapping::compile(&[map("Email", "email"), map("Title", "title")]).unwrap()
    }

    fn text(name: &str, value: &str) -> Attribute {
        Attribute {
            name: name.into(),
            value: Value::Text(value.into()),
        }
    }

    fn linked(person: &str, title: &str) -> Link {
        let mut link = Link::new("r", person, "c");
        link.target_id = Some(format!("T-{person}"));
        link.state = LinkState::Synced;
        link.person_seq = Some(1);
        link.written = written_of(&[
            text("Email", &format!("{person}@x.test")),
            text("Title", title),
        ]);
        link
    }

    fn found_record(id: &str, email: &str, title: &str) -> Match {
        Match {
            value: email.into(),
            id: id.into(),
            attributes: vec![text("Email", email), text("Title", title)],
            version: Some("v1".into()),
        }
    }

    fn find(person: &str, title: &str, existing: Option<&str>) -> Find {
        let attributes = vec![
            text("Email", &format!("{person}@x.test")),
            text("Title", title),
        ];
        Find {
            person_id: person.into(),
            person_seq: Some(2),
            key: format!("{person}@x.test"),
            create: attributes.clone(),
            update: attributes,
            existing: existing.map(String::from),
        }
    }

    /// Runs `check` with a rule to resolve for, over `links`.
    fn with_rule<T>(
        hold_updates: bool,
        links: Vec<Link>,
        check: impl FnOnce(&Resolving<'_>, &mut RuleReport) -> T,
    ) -> (T, RuleReport) {
        let (rule, mappings, prefs) = (rule(), mappings(), prefs());
        let links: BTreeMap<String, Link> = links
            .into_iter()
            .map(|l| (l.person_id.clone(), l))
            .collect();
        let resolving = Resolving {
            view: RuleView {
                rule: &rule,
                mappings: &mappings,
                match_attribute: "Email",
                preferences: &prefs,
                can_enable: true,
            },
            hold_updates,
            links: &links,
        };
        let mut report = RuleReport::new("r", "c");
        let out = check(&resolving, &mut report);
        (out, report)
    }

    fn planned(person: &str, decision: Decision) -> Planned {
        Planned {
            person_id: person.into(),
            person_seq: Some(2),
            decision,
        }
    }

    fn update(person: &str) -> Planned {
        planned(
            person,
            Decision::Update {
                target: format!("T-{person}"),
                changes: vec![text("Title", "CTO")],
                enable: false,
            },
        )
    }

    #[test]
    fn an_update_becomes_work_with_its_diff_in_the_plan() {
        let (resolved, report) = with_rule(false, vec![linked("a", "CEO")], |rule, report| {
            decide(rule, vec![update("a")], report)
        });
        assert_eq!(resolved.work.len(), 1);
        let work = &resolved.work[0];
        assert_eq!(work.planned(), Action::Update);
        assert_eq!((work.rule.as_str(), work.connection.as_str()), ("r", "c"));
        assert_eq!(work.person_seq, Some(2));
        assert_eq!(work.base.target_id.as_deref(), Some("T-a"));
        assert_eq!(report.plan[0].detail, r#"Title: "CEO" -> "CTO""#);
        // Counted when the store answers, not before.
        assert!(report.actions.is_empty(), "{report:?}");
    }

    #[test]
    fn a_held_update_sends_nothing_and_says_why() {
        let (resolved, report) = with_rule(true, vec![linked("a", "CEO")], |rule, report| {
            decide(rule, vec![update("a")], report)
        });
        assert!(resolved.work.is_empty());
        assert_eq!(report.counted(Action::Held), 1);
        assert!(report.plan[0].detail.contains("held by the update guard"));
    }

    #[test]
    fn decisions_without_a_call_are_settled_on_the_links() {
        let mut moved = linked("moved", "CEO");
        moved.person_seq = Some(1);
        let same = linked("same", "CEO");
        let decisions = vec![
            planned(
                "left",
                Decision::Remove {
                    target: "T-left".into(),
                    action: RemoveAction::Delete,
                    cause: Cause::LeftScope,
                },
            ),
            planned(
                "blocked",
                Decision::Settle {
                    state: LinkState::Unsynced,
                    reason: Some("creating is not allowed".into()),
                },
            ),
            planned("moved", Decision::Unchanged),
            Planned {
                person_seq: Some(1),
                ..planned("same", Decision::Unchanged)
            },
            planned("gone", Decision::Drop),
            planned(
                "new",
                Decision::Find {
                    key: "new@x.test".into(),
                    create: Vec::new(),
                    update: Vec::new(),
                    existing: None,
                },
            ),
        ];
        let links = vec![linked("left", "CEO"), moved, same];
        let (resolved, report) =
            with_rule(false, links, |rule, report| decide(rule, decisions, report));
        assert_eq!(resolved.removals.len(), 1, "removals wait for the guard");
        assert!(resolved.work.is_empty());
        assert_eq!(resolved.finds.len(), 1);
        let saved: BTreeMap<&str, &Link> = resolved
            .outcomes
            .save
            .iter()
            .map(|l| (l.person_id.as_str(), l))
            .collect();
        assert_eq!(saved["blocked"].state, LinkState::Unsynced);
        // An unchanged person whose data moved on is marked seen; one whose
        // link is current is not written at all.
        assert_eq!(saved["moved"].person_seq, Some(2));
        assert!(!saved.contains_key("same"));
        assert_eq!(
            resolved.outcomes.drop,
            vec![("r".to_string(), "gone".to_string())]
        );
        assert_eq!(report.counted(Action::Unsynced), 1);
        assert_eq!(report.counted(Action::Unchanged), 2);
    }

    #[test]
    fn nothing_found_is_created() {
        let ((), report) = with_rule(false, vec![], |rule, report| {
            let mut resolved = Resolved::default();
            found(
                rule,
                find("a", "CTO", None),
                &[],
                None,
                None,
                report,
                &mut resolved,
            );
            assert!(
                matches!(&resolved.work[0].kind, WorkKind::Create(attributes) if attributes.len() == 2)
            );
            assert!(resolved.adoptions.is_empty());
        });
        assert_eq!(report.plan[0].action, "create");
    }

    #[test]
    fn a_record_found_is_adopted_journalled_and_brought_up_to_date() {
        let record = found_record("T-9", "A@X.test", "CEO");
        let (resolved, report) = with_rule(false, vec![], |rule, report| {
            let mut resolved = Resolved::default();
            found(
                rule,
                find("a", "CTO", None),
                &[&record],
                None,
                None,
                report,
                &mut resolved,
            );
            resolved
        });
        assert_eq!(report.counted(Action::Adopted), 1);
        assert_eq!(resolved.adoptions[0].target_id.as_deref(), Some("T-9"));
        let WorkKind::Update {
            target,
            changes,
            written,
            version,
            ..
        } = &resolved.work[0].kind
        else {
            panic!("{:?}", resolved.work);
        };
        assert_eq!(target, "T-9");
        assert_eq!(changes, &vec![text("Title", "CTO")]);
        assert_eq!(
            version.as_deref(),
            Some("v1"),
            "the update carries what the lookup read"
        );
        assert_eq!(written.as_ref().map(BTreeMap::len), Some(2));
    }

    #[test]
    fn a_record_found_as_it_should_be_is_linked_without_a_call() {
        let record = found_record("T-a", "a@x.test", "CTO");
        let (resolved, report) = with_rule(false, vec![linked("a", "CEO")], |rule, report| {
            let mut resolved = Resolved::default();
            found(
                rule,
                find("a", "CTO", Some("T-a")),
                &[&record],
                None,
                None,
                report,
                &mut resolved,
            );
            resolved
        });
        assert!(resolved.work.is_empty() && resolved.adoptions.is_empty());
        let link = &resolved.outcomes.save[0];
        assert_eq!((link.state, link.person_seq), (LinkState::Synced, Some(2)));
        assert_eq!(link.written.get("Title"), Some(&Value::Text("CTO".into())));
        assert_eq!(report.counted(Action::Unchanged), 1);
    }

    #[test]
    fn two_records_for_one_person_are_refused() {
        let (one, two) = (
            found_record("T-1", "a@x.test", "CTO"),
            found_record("T-2", "a@x.test", "CTO"),
        );
        let (resolved, report) = with_rule(false, vec![], |rule, report| {
            let mut resolved = Resolved::default();
            found(
                rule,
                find("a", "CTO", None),
                &[&one, &two],
                None,
                None,
                report,
                &mut resolved,
            );
            resolved
        });
        let error = resolved.outcomes.save[0].error.clone().unwrap();
        assert_eq!(error.code.as_deref(), Some("AMBIGUOUS_MATCH"));
        assert!(error.message.contains("T-1, T-2"), "{}", error.message);
        assert!(resolved.work.is_empty());
        assert_eq!(report.counted(Action::Failed), 1);
    }

    #[test]
    fn a_promoted_person_is_converted_through_the_other_rules_connection() {
        let conversion = Conversion {
            from: {
                let mut link = Link::new("prospects", "a", "sf-leads");
                link.target_id = Some("L-a".into());
                link
            },
            connection: "sf-leads".into(),
            target_type: "Contact".into(),
        };
        let (resolved, _) = with_rule(false, vec![], |rule, report| {
            let mut resolved = Resolved::default();
            found(
                rule,
                find("a", "CTO", None),
                &[],
                Some(&conversion),
                None,
                report,
                &mut resolved,
            );
            resolved
        });
        let work = &resolved.work[0];
        assert_eq!(work.connection, "sf-leads");
        assert!(matches!(
            &work.kind,
            WorkKind::Convert { target, target_type, .. } if target == "L-a" && target_type == "Contact"
        ));
    }

    #[test]
    fn a_second_rule_of_a_shared_connection_waits_for_the_first_create() {
        let mut sharing = Sharing {
            shared: BTreeSet::from(["c".to_string()]),
            ..Sharing::default()
        };
        sharing.creating.insert(("c".into(), "a".into()));
        let (resolved, report) = with_rule(false, vec![], |rule, report| {
            let mut resolved = Resolved::default();
            found(
                rule,
                find("a", "CTO", None),
                &[],
                None,
                Some(&mut sharing),
                report,
                &mut resolved,
            );
            resolved
        });
        assert!(resolved.work.is_empty(), "no twin is created");
        assert_eq!(sharing.deferred["r"][0].person_id, "a");
        assert_eq!(report.plan[0].action, "wait");
    }

    #[test]
    fn a_reclaimed_record_goes_the_way_of_a_leavers() {
        let reclaim = |person: &str| Reclaim {
            person_id: person.into(),
            person_seq: Some(2),
            key: format!("{person}@x.test"),
            cause: Cause::LeftScope,
        };
        let left_behind = found_record("T-b", "B@x.test", "CTO");
        let (resolved, report) = with_rule(false, vec![], |rule, report| {
            let mut resolved = Resolved::default();
            reclaimed(rule, &reclaim("a"), &[], report, &mut resolved);
            reclaimed(
                rule,
                &reclaim("b"),
                std::slice::from_ref(&left_behind),
                report,
                &mut resolved,
            );
            resolved
        });
        assert_eq!(
            resolved.outcomes.drop,
            vec![("r".to_string(), "a".to_string())]
        );
        assert!(matches!(
            &resolved.removals[0].kind,
            WorkKind::Remove { target, action: RemoveAction::Delete, .. } if target == "T-b"
        ));
        assert_eq!(report.plan[0].action, "forget");
    }

    #[test]
    fn a_dry_run_says_what_each_lookup_decides_between() {
        let mut sharing = Sharing {
            shared: BTreeSet::from(["c".to_string()]),
            ..Sharing::default()
        };
        let conversions = Conversions::from([(
            ("r".to_string(), "p".to_string()),
            Conversion {
                from: Link::new("q", "p", "c"),
                connection: "c".into(),
                target_type: "Contact".into(),
            },
        )]);
        let ((), report) = with_rule(false, vec![], |rule, report| {
            let resolved = Resolved {
                finds: vec![
                    find("new", "CTO", None),
                    find("old", "CTO", Some("T-old")),
                    find("p", "CTO", None),
                ],
                ..Resolved::default()
            };
            render_lookups(rule, &resolved, &conversions, Some(&mut sharing), report);
        });
        assert_eq!(report.counted(Action::CreateOrAdopt), 1);
        assert_eq!(report.counted(Action::Verify), 1);
        assert_eq!(report.counted(Action::ConvertOrAdopt), 1);
        // Only people without a record are being found for the first time.
        let finding: Vec<&str> = sharing.finding.keys().map(|(_, p)| p.as_str()).collect();
        assert_eq!(finding, ["new", "p"]);
    }
}
