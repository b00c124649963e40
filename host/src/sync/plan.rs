//! The planner: for one rule, compare the people in scope with the links
//! and decide, person by person, what to do. Pure: no I/O, so that every
//! preference and every state has a test below.
//!
//! Preferences are enforced here. A forbidden action is never planned; the
//! link records why instead:
//! - create forbidden: Unsynced;
//! - update forbidden: Partially synced;
//! - removal forbidden: Kept.

use std::collections::BTreeMap;

use serde::Serialize;

use super::links::{Link, LinkError, LinkState};
use crate::config::{Cause, Preferences, RemoveAction, Rule};
use crate::directory::Person;
use crate::mapping::{self, CompiledMapping};
use crate::runtime::contract::{Attribute, Match, Value};

/// What the planner needs to know about a rule and its connection.
pub struct RuleView<'a> {
    pub rule: &'a Rule,
    pub mappings: &'a [CompiledMapping],
    pub match_attribute: &'a str,
    pub preferences: &'a Preferences,
    /// The connector declares `enable` (contract 0.2): a person back in
    /// scope after a disable gets one `enable` with what changed, instead
    /// of a rewrite of every mapped attribute.
    pub can_enable: bool,
}

impl<'a> RuleView<'a> {
    /// How the rule's targets compare with what a lookup reads back.
    pub fn case_rules(&self) -> CaseRules<'a> {
        CaseRules {
            match_attribute: self.match_attribute,
            mappings: self.mappings,
        }
    }
}

/// A decision about one person in one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "decision")]
pub enum Decision {
    /// Look the person up by the match attribute; then adopt what is found
    /// or create. `existing` is the linked record in a full pass.
    Find {
        key: String,
        create: Vec<Attribute>,
        update: Vec<Attribute>,
        existing: Option<String>,
    },
    Update {
        target: String,
        changes: Vec<Attribute>,
        /// Reactivate the disabled record too.
        enable: bool,
    },
    Remove {
        target: String,
        action: RemoveAction,
        cause: Cause,
    },
    /// Nothing to send; the link takes this state.
    Settle {
        state: LinkState,
        reason: Option<String>,
    },
    /// Nothing to send; the link records this failure.
    Fail { error: LinkError },
    /// Not due yet: a transient failure backing off, or a rejection waiting
    /// for the data to change.
    Wait { reason: String },
    /// In step; nothing to do.
    Unchanged,
    /// Forget the link: there is no record to remove.
    Drop,
    /// The person left the scope, and the link has no record, but an
    /// earlier create for them may have been carried out without the answer
    /// arriving (a crash, a cut-off connection): look them up by `key`, and
    /// treat what is found as any leaver's record.
    Reclaim { key: String, cause: Cause },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub person_id: String,
    pub person_seq: Option<i64>,
    pub decision: Decision,
}

/// Whether a value the host maps equals one a store holds. Mappings
/// produce text, while a store may read a flag back as a boolean and a
/// count as an integer; comparing by type alone would make every such
/// record differ, and be updated, on every pass that reads it. So text
/// equals a boolean when it says `true` or `false` (in any case), and an
/// integer when it is that number written plainly (not "0150" or "+42");
/// null equals empty text and the empty list; lists compare in order. Text
/// compares without case where [`CaseRules`] says so. These are the rules
/// the contract's `attribute-spec` promises connectors.
fn same(desired: &Value, current: Option<&Value>, ignore_case: bool) -> bool {
    let text_eq = |a: &str, b: &str| {
        if ignore_case {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    // The same reading of text as a mapping's typed conversion: "0150" or
    // "+42" read back as 150 or 42 lost what the text said.
    let text_is = |text: &str, other: &Value| match other {
        Value::Boolean(flag) => mapping::boolean(text) == Some(*flag),
        Value::Integer(number) => mapping::integer(text) == Some(*number),
        _ => false,
    };
    match (desired, current.unwrap_or(&Value::Null)) {
        (Value::Text(a), Value::Text(b)) => text_eq(a, b),
        // Lists compare element by element, in order; null is the empty
        // list, and a store that reads a one-element list back as plain
        // text holds the same value.
        (Value::TextList(a), Value::TextList(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| text_eq(a, b))
        }
        (Value::TextList(items), Value::Null) | (Value::Null, Value::TextList(items)) => {
            items.is_empty()
        }
        (Value::TextList(items), Value::Text(text))
        | (Value::Text(text), Value::TextList(items)) => match items.as_slice() {
            [] => text.is_empty(),
            [one] => text_eq(one, text),
            _ => false,
        },
        (Value::Null, Value::Text(b)) => b.is_empty(),
        (Value::Text(a), Value::Null) => a.is_empty(),
        (Value::Text(a), other @ (Value::Boolean(_) | Value::Integer(_))) => text_is(a, other),
        (other @ (Value::Boolean(_) | Value::Integer(_)), Value::Text(b)) => text_is(b, other),
        (a, b) => a == b,
    }
}

/// Which attributes compare without case: the match attribute, as stores
/// match it, and those the connector declares `case-exact: false`
/// (contract 0.2), which the compiled mappings carry.
#[derive(Debug, Clone, Copy)]
pub struct CaseRules<'a> {
    pub match_attribute: &'a str,
    pub mappings: &'a [CompiledMapping],
}

impl CaseRules<'_> {
    fn ignore_case(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case(self.match_attribute)
            || self
                .mappings
                .iter()
                .any(|m| m.target.eq_ignore_ascii_case(name) && !m.case_exact)
    }
}

/// The attributes of `desired` that differ from a record's `current` ones
/// (as a lookup read them), by the comparison rules of [`same`] and
/// [`CaseRules`].
pub fn diff_against(
    desired: &[Attribute],
    current: &[Attribute],
    rules: CaseRules<'_>,
) -> Vec<Attribute> {
    desired
        .iter()
        .filter(|attribute| {
            let now = current
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(&attribute.name))
                .map(|c| &c.value);
            !same(&attribute.value, now, rules.ignore_case(&attribute.name))
        })
        .cloned()
        .collect()
}

/// The attributes of `desired` that differ from what was last written.
pub fn diff_written(desired: &[Attribute], written: &BTreeMap<String, Value>) -> Vec<Attribute> {
    desired
        .iter()
        .filter(|attribute| !same(&attribute.value, written.get(&attribute.name), false))
        .cloned()
        .collect()
}

fn names(attributes: &[Attribute]) -> String {
    attributes
        .iter()
        .map(|a| a.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a link must wait before anything is tried again.
fn waiting(link: &Link, person_seq: Option<i64>, now: i64) -> Option<String> {
    // A disabled record whose enable failed keeps its state (see the
    // engine's `failed`), and its backoff.
    let failed_enable = link.state == LinkState::Disabled && link.error.is_some();
    if link.state != LinkState::Failed && !failed_enable {
        return None;
    }
    let class = link.error.as_ref().map(|e| e.class.as_str()).unwrap_or("");
    if matches!(class, "rejected" | "unsupported")
        && link.person_seq.is_some()
        && link.person_seq == person_seq
    {
        return Some(format!(
            "{class}: waits for the person's data to change, or for `provisioner retry`"
        ));
    }
    match link.next_retry {
        Some(at) if at > now => Some(format!(
            "backing off after {} attempt(s); next try at {at}",
            link.attempts
        )),
        _ => None,
    }
}

/// Plans one rule. `only` restricts the plan to some people; `full`
/// re-reads linked records through lookup to repair drift.
pub fn plan_rule(
    view: &RuleView<'_>,
    people: &BTreeMap<String, Person>,
    links: &BTreeMap<String, Link>,
    now: i64,
    only: Option<&std::collections::BTreeSet<String>>,
    full: bool,
) -> Vec<Planned> {
    let mut planned = Vec::new();
    for person in people.values() {
        if only.is_some_and(|o| !o.contains(&person.id)) || !view.rule.scope.contains(person) {
            continue;
        }
        let link = links.get(&person.id);
        let seq = Some(person.changed_seq);
        let push = |decision| Planned {
            person_id: person.id.clone(),
            person_seq: seq,
            decision,
        };
        if let Some(reason) = link.and_then(|l| waiting(l, seq, now)) {
            planned.push(push(Decision::Wait { reason }));
            continue;
        }
        planned.push(push(member(view, person, link, full)));
    }
    planned.extend(leavers(view, people, links, now, only));
    planned
}

/// The decision for a person in the rule's scope, who is not waiting for
/// a retry.
fn member(view: &RuleView<'_>, person: &Person, link: Option<&Link>, full: bool) -> Decision {
    let prefs = view.preferences;
    let seq = Some(person.changed_seq);
    let create = mapping::attributes(view.mappings, &person.attributes, false);
    let update = mapping::attributes(view.mappings, &person.attributes, true);
    let key = match_key(view, &create);
    let target = link.and_then(|l| l.target_id.clone());
    match (target, link) {
        // A conflict said the record changed in the store since it was
        // read: read it again rather than overwrite it blindly.
        (Some(existing), Some(link))
            if (full || conflicted(link)) && key.is_some() && link.state != LinkState::Disabled =>
        {
            Decision::Find {
                key: key.unwrap_or_default(),
                create,
                update,
                existing: Some(existing),
            }
        }
        (Some(target), Some(link)) => {
            let enable = link.state == LinkState::Disabled && view.can_enable;
            // Back in scope after a disable, without `enable`: rewrite
            // everything, which is how a 0.1 connector reactivates.
            let changes = if link.state == LinkState::Disabled && !enable {
                update.clone()
            } else {
                diff_written(&update, &link.written)
            };
            if enable && !prefs.allow_update {
                // The link stays `Disabled`, the one place that says
                // the record is: a later pass enables it once updates
                // are allowed.
                Decision::Settle {
                    state: LinkState::Disabled,
                    reason: Some(
                        "the record stays disabled: updating records is not allowed on this connection"
                            .into(),
                    ),
                }
            } else if enable {
                Decision::Update {
                    target,
                    changes,
                    enable,
                }
            } else if changes.is_empty() {
                if link.state == LinkState::Synced {
                    Decision::Unchanged
                } else {
                    Decision::Settle {
                        state: LinkState::Synced,
                        reason: None,
                    }
                }
            } else if !prefs.allow_update {
                Decision::Settle {
                    state: LinkState::Partial,
                    reason: Some(format!(
                        "{} differ, but updating records is not allowed on this connection",
                        names(&changes)
                    )),
                }
            } else {
                Decision::Update {
                    target,
                    changes,
                    enable,
                }
            }
        }
        // Creating is not allowed, but a record the store has already
        // is adopted and kept up to date: the lookup decides. A person
        // whose data has not changed since a lookup found nothing is
        // not looked up again, except in a full pass.
        (None, Some(link))
            if !prefs.allow_create
                && link.state == LinkState::Unsynced
                && link.person_seq == seq
                && !full =>
        {
            create_forbidden()
        }
        _ if !prefs.allow_create && key.is_none() => create_forbidden(),
        _ => match key {
            Some(key) => Decision::Find {
                key,
                create,
                update,
                existing: None,
            },
            None => Decision::Fail {
                error: LinkError {
                    class: "rejected".into(),
                    code: Some("NO_MATCH_VALUE".into()),
                    message: format!(
                        "no value maps to {}, so the person cannot be matched or created",
                        view.match_attribute
                    ),
                    fields: vec![view.match_attribute.to_string()],
                },
            },
        },
    }
}

/// Links whose person is gone, disabled or out of the rule's scope.
fn leavers(
    view: &RuleView<'_>,
    people: &BTreeMap<String, Person>,
    links: &BTreeMap<String, Link>,
    now: i64,
    only: Option<&std::collections::BTreeSet<String>>,
) -> Vec<Planned> {
    let mut planned = Vec::new();
    for (person_id, link) in links {
        if only.is_some_and(|o| !o.contains(person_id)) {
            continue;
        }
        let person = people.get(person_id);
        if person.is_some_and(|p| view.rule.scope.contains(p)) {
            continue;
        }
        let seq = person.map(|p| p.changed_seq);
        let push = |decision| Planned {
            person_id: person_id.clone(),
            person_seq: seq,
            decision,
        };
        let cause = match person {
            None => Cause::Deleted,
            Some(p) if p.deleted => Cause::Deleted,
            Some(p) if !p.enabled => Cause::Disabled,
            Some(_) => Cause::LeftScope,
        };
        if let Some(reason) = waiting(link, seq, now) {
            planned.push(push(Decision::Wait { reason }));
            continue;
        }
        let Some(target) = link.target_id.clone() else {
            let key = person.and_then(|p| {
                match_key(
                    view,
                    &mapping::attributes(view.mappings, &p.attributes, false),
                )
            });
            planned.push(push(match key {
                Some(key) if may_have_record(link) => Decision::Reclaim { key, cause },
                _ => Decision::Drop,
            }));
            continue;
        };
        planned.push(push(leaver(link, view.preferences, target, cause)));
    }
    planned
}

/// The match attribute's value among `attributes`, if it has one.
fn match_key(view: &RuleView<'_>, attributes: &[Attribute]) -> Option<String> {
    attributes
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(view.match_attribute))
        .and_then(|a| match &a.value {
            Value::Text(t) if !t.is_empty() => Some(t.clone()),
            _ => None,
        })
}

/// Whether the link's last write failed on a version conflict.
fn conflicted(link: &Link) -> bool {
    link.state == LinkState::Failed && link.error.as_ref().is_some_and(|e| e.class == "conflict")
}

/// Whether a link without a record may still have one in the store: some
/// create was tried and its outcome is not known to be a refusal.
fn may_have_record(link: &Link) -> bool {
    match link.state {
        LinkState::Failed => link
            .error
            .as_ref()
            .is_none_or(|e| !matches!(e.class.as_str(), "rejected" | "unsupported")),
        LinkState::Unsynced => link.attempts > 0 || link.error.is_some(),
        _ => true,
    }
}

/// Why a person has no record: the connection does not allow creating one.
pub const CREATE_FORBIDDEN: &str = "creating records is not allowed on this connection";

fn create_forbidden() -> Decision {
    Decision::Settle {
        state: LinkState::Unsynced,
        reason: Some(CREATE_FORBIDDEN.into()),
    }
}

/// What becomes of the record `target` of someone who left the scope for
/// `cause`, as the connection's preferences say.
pub fn leaver(link: &Link, prefs: &Preferences, target: String, cause: Cause) -> Decision {
    let kept = |why: &str| {
        let reason = format!("{}; {why}", cause.describe());
        if link.state == LinkState::Kept && link.reason.as_deref() == Some(reason.as_str()) {
            Decision::Unchanged
        } else {
            Decision::Settle {
                state: LinkState::Kept,
                reason: Some(reason),
            }
        }
    };
    if !prefs.allow_deprovision {
        return kept("deprovisioning is not allowed on this connection");
    }
    match prefs.remove_action.of(cause) {
        Some(RemoveAction::Delete) if prefs.allow_delete => Decision::Remove {
            target,
            action: RemoveAction::Delete,
            cause,
        },
        Some(RemoveAction::Delete) => kept("deleting records is not allowed on this connection"),
        Some(RemoveAction::Disable) if prefs.allow_disable => {
            if link.state == LinkState::Disabled {
                Decision::Unchanged
            } else {
                Decision::Remove {
                    target,
                    action: RemoveAction::Disable,
                    cause,
                }
            }
        }
        Some(RemoveAction::Disable) => kept("disabling records is not allowed on this connection"),
        None => kept("the connector can neither disable nor delete"),
    }
}

/// What a lookup turns a `Find` into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Create(Vec<Attribute>),
    /// Nothing to adopt, and creating is not allowed.
    CreateForbidden,
    /// Link to `target`; send `changes` if any (and allowed).
    Adopt {
        target: String,
        changes: Vec<Attribute>,
        /// The record's version as the lookup read it, for the update.
        version: Option<String>,
    },
    /// Link to `target`, which is behind, but updates are not allowed.
    AdoptBehind {
        target: String,
        changes: Vec<Attribute>,
    },
    Ambiguous(Vec<String>),
}

/// Resolves a `Find` with what the lookup returned for its key.
pub fn resolve(
    create: Vec<Attribute>,
    update: &[Attribute],
    existing: Option<&str>,
    matches: &[&Match],
    rules: CaseRules<'_>,
    preferences: &Preferences,
) -> Found {
    let chosen = match matches {
        // The linked record no longer answers to its key: the key was
        // edited in the store, or the record is gone. Write it by id, which
        // restores it or answers not-found (and only then is the person
        // created again), rather than create a twin on a guess.
        [] => match existing {
            Some(id) if preferences.allow_update => {
                return Found::Adopt {
                    target: id.to_string(),
                    changes: update.to_vec(),
                    version: None,
                };
            }
            Some(id) => {
                return Found::AdoptBehind {
                    target: id.to_string(),
                    changes: update.to_vec(),
                };
            }
            None if !preferences.allow_create => return Found::CreateForbidden,
            None => return Found::Create(create),
        },
        [one] => *one,
        several => {
            // A full pass keeps its own record when the store has twins.
            match existing.and_then(|e| several.iter().find(|m| m.id == e)) {
                Some(mine) => *mine,
                None => return Found::Ambiguous(several.iter().map(|m| m.id.clone()).collect()),
            }
        }
    };
    let changes = diff_against(update, &chosen.attributes, rules);
    if !changes.is_empty() && !preferences.allow_update {
        Found::AdoptBehind {
            target: chosen.id.clone(),
            changes,
        }
    } else {
        Found::Adopt {
            target: chosen.id.clone(),
            changes,
            version: chosen.version.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RemoveActions;
    use crate::config::rules::Scope;
    use crate::runtime::contract::{Mapping, MappingSource};
    use std::collections::BTreeSet;

    fn prefs() -> Preferences {
        Preferences {
            allow_create: true,
            allow_update: true,
            allow_disable: false,
            allow_deprovision: true,
            allow_delete: true,
            remove_action: RemoveActions::all(Some(RemoveAction::Delete)),
            deprovision_on_rule_deletion: false,
        }
    }

    fn rule() -> Rule {
        Rule {
            scope: Scope {
                group: Some("g".into()),
                ..Scope::default()
            },
            ..Rule::everyone("r", "c")
        }
    }

    fn mappings() -> Vec<CompiledMapping> {
        mapping::compile(&[
            Mapping {
                target: "Email".into(),
                source: MappingSource::Attribute("email".into()),
                apply_on_update: true,
            },
            Mapping {
                target: "Title".into(),
                source: MappingSource::Attribute("title".into()),
                apply_on_update: true,
            },
            Mapping {
                target: "LeadSource".into(),
                source: MappingSource::Constant("provisioner".into()),
                apply_on_update: false,
            },
        ])
        .unwrap()
    }

    fn person(id: &str, in_group: bool, title: &str) -> Person {
        Person {
            id: id.into(),
            enabled: true,
            population: None,
            groups: if in_group {
                BTreeSet::from(["g".to_string()])
            } else {
                BTreeSet::new()
            },
            attributes: [
                ("email", format!("{id}@x.test")),
                ("title", title.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            deleted: false,
            changed_seq: 7,
        }
    }

    fn text(name: &str, value: &str) -> Attribute {
        Attribute {
            name: name.into(),
            value: Value::Text(value.into()),
        }
    }

    fn linked(id: &str, title: &str) -> Link {
        let mut link = Link::new("r", id, "c");
        link.target_id = Some(format!("T-{id}"));
        link.state = LinkState::Synced;
        link.written = [("Email", format!("{id}@x.test")), ("Title", title.into())]
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::Text(v)))
            .collect();
        link
    }

    fn plan(prefs: &Preferences, people: Vec<Person>, links: Vec<Link>) -> Vec<Decision> {
        plan_with(prefs, people, links, false)
    }

    fn plan_with(
        prefs: &Preferences,
        people: Vec<Person>,
        links: Vec<Link>,
        can_enable: bool,
    ) -> Vec<Decision> {
        let rule = rule();
        let mappings = mappings();
        let view = RuleView {
            rule: &rule,
            mappings: &mappings,
            match_attribute: "Email",
            preferences: prefs,
            can_enable,
        };
        let people = people.into_iter().map(|p| (p.id.clone(), p)).collect();
        let links = links
            .into_iter()
            .map(|l| (l.person_id.clone(), l))
            .collect();
        plan_rule(&view, &people, &links, 1_000, None, false)
            .into_iter()
            .map(|p| p.decision)
            .collect()
    }

    #[test]
    fn new_people_are_looked_up_before_anything_is_created() {
        let decisions = plan(&prefs(), vec![person("a", true, "CTO")], vec![]);
        match &decisions[0] {
            Decision::Find {
                key,
                create,
                update,
                existing,
            } => {
                assert_eq!(key, "a@x.test");
                assert_eq!(create.len(), 3);
                assert_eq!(update.len(), 2, "create-only mappings are not updated");
                assert!(existing.is_none());
            }
            other => panic!("{other:?}"),
        }
    }

    /// With creating forbidden, a record the store has already is still
    /// adopted: the person is looked up once, and again only when their
    /// data changes or in a full pass.
    #[test]
    fn create_forbidden_looks_up_once_and_is_unsynced_after() {
        let prefs = Preferences {
            allow_create: false,
            ..prefs()
        };
        let decisions = plan(&prefs, vec![person("a", true, "CTO")], vec![]);
        assert!(
            matches!(&decisions[0], Decision::Find { existing: None, .. }),
            "{decisions:?}"
        );
        let mut unsynced = Link::new("r", "a", "c");
        unsynced.person_seq = Some(7);
        let decisions = plan(
            &prefs,
            vec![person("a", true, "CTO")],
            vec![unsynced.clone()],
        );
        assert!(
            matches!(&decisions[0], Decision::Settle { state: LinkState::Unsynced, reason: Some(r) } if r == CREATE_FORBIDDEN),
            "{decisions:?}"
        );
        unsynced.person_seq = Some(6);
        let decisions = plan(&prefs, vec![person("a", true, "CTO")], vec![unsynced]);
        assert!(
            matches!(&decisions[0], Decision::Find { .. }),
            "changed data is looked up again: {decisions:?}"
        );
        let matches: [&Match; 0] = [];
        let rules = CaseRules {
            match_attribute: "Email",
            mappings: &[],
        };
        assert_eq!(
            resolve(Vec::new(), &[], None, &matches, rules, &prefs),
            Found::CreateForbidden
        );
    }

    #[test]
    fn updates_send_only_what_changed_and_forbidden_ones_are_partial() {
        let decisions = plan(
            &prefs(),
            vec![person("a", true, "CEO")],
            vec![linked("a", "CTO")],
        );
        assert_eq!(
            decisions[0],
            Decision::Update {
                target: "T-a".into(),
                changes: vec![text("Title", "CEO")],
                enable: false,
            }
        );
        let unchanged = plan(
            &prefs(),
            vec![person("a", true, "CTO")],
            vec![linked("a", "CTO")],
        );
        assert_eq!(unchanged[0], Decision::Unchanged);
        let prefs = Preferences {
            allow_update: false,
            ..prefs()
        };
        let decisions = plan(
            &prefs,
            vec![person("a", true, "CEO")],
            vec![linked("a", "CTO")],
        );
        match &decisions[0] {
            Decision::Settle {
                state: LinkState::Partial,
                reason: Some(reason),
            } => assert!(reason.contains("Title differ"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn removal_follows_the_remove_action_and_its_permissions() {
        let out = || vec![person("a", false, "CTO")];
        assert_eq!(
            plan(&prefs(), out(), vec![linked("a", "CTO")])[0],
            Decision::Remove {
                target: "T-a".into(),
                action: RemoveAction::Delete,
                cause: Cause::LeftScope,
            }
        );
        let no_delete = Preferences {
            allow_delete: false,
            ..prefs()
        };
        assert!(
            matches!(&plan(&no_delete, out(), vec![linked("a", "CTO")])[0], Decision::Settle { state: LinkState::Kept, reason: Some(r) } if r.contains("deleting"))
        );
        let no_deprovision = Preferences {
            allow_deprovision: false,
            ..prefs()
        };
        assert!(
            matches!(&plan(&no_deprovision, out(), vec![linked("a", "CTO")])[0], Decision::Settle { state: LinkState::Kept, reason: Some(r) } if r.contains("deprovisioning"))
        );
        let disable = Preferences {
            remove_action: RemoveActions::all(Some(RemoveAction::Disable)),
            allow_disable: true,
            ..prefs()
        };
        assert_eq!(
            plan(&disable, out(), vec![linked("a", "CTO")])[0],
            Decision::Remove {
                target: "T-a".into(),
                action: RemoveAction::Disable,
                cause: Cause::LeftScope,
            }
        );
        let no_disable = Preferences {
            allow_disable: false,
            ..disable
        };
        assert!(matches!(
            &plan(&no_disable, out(), vec![linked("a", "CTO")])[0],
            Decision::Settle {
                state: LinkState::Kept,
                ..
            }
        ));
        // Deleted and disabled people leave scope too.
        let mut gone = person("a", true, "CTO");
        gone.enabled = false;
        assert!(matches!(
            plan(&prefs(), vec![gone], vec![linked("a", "CTO")])[0],
            Decision::Remove { .. }
        ));
        assert!(matches!(
            plan(&prefs(), vec![], vec![linked("a", "CTO")])[0],
            Decision::Remove { .. }
        ));
        // Nothing to remove without a record.
        let mut empty = linked("a", "CTO");
        empty.target_id = None;
        assert_eq!(plan(&prefs(), vec![], vec![empty])[0], Decision::Drop);
    }

    #[test]
    fn mapped_text_equals_a_flag_or_a_number_read_back_typed() {
        let text = |t: &str| Value::Text(t.into());
        assert!(same(&text("true"), Some(&Value::Boolean(true)), false));
        assert!(same(&text("False"), Some(&Value::Boolean(false)), false));
        assert!(!same(&text("true"), Some(&Value::Boolean(false)), false));
        assert!(!same(&text("yes"), Some(&Value::Boolean(true)), false));
        assert!(same(&text("42"), Some(&Value::Integer(42)), false));
        assert!(same(&text("-5"), Some(&Value::Integer(-5)), false));
        assert!(!same(&text("042x"), Some(&Value::Integer(42)), false));
        assert!(!same(&text("0150"), Some(&Value::Integer(150)), false));
        assert!(!same(&text("+42"), Some(&Value::Integer(42)), false));
        assert!(!same(
            &text("9223372036854775808"),
            Some(&Value::Integer(i64::MAX)),
            false
        ));
        assert!(same(&Value::Integer(7), Some(&text("7")), false));
        assert!(!same(&text("1"), Some(&Value::Boolean(true)), false));
        assert!(same(&Value::Null, Some(&text("")), false));
        assert!(!same(&Value::Null, Some(&Value::Boolean(false)), false));
        // As a whole: a record read back typed needs no update.
        let desired = vec![Attribute {
            name: "active".into(),
            value: text("true"),
        }];
        let read = vec![Attribute {
            name: "active".into(),
            value: Value::Boolean(true),
        }];
        let rules = CaseRules {
            match_attribute: "email",
            mappings: &[],
        };
        assert!(diff_against(&desired, &read, rules).is_empty());
    }

    #[test]
    fn lists_compare_in_order_and_with_the_declared_case_rule() {
        let list = |items: &[&str]| Value::TextList(items.iter().map(|s| s.to_string()).collect());
        assert!(same(&list(&["a", "b"]), Some(&list(&["a", "b"])), false));
        assert!(!same(&list(&["a", "b"]), Some(&list(&["b", "a"])), false));
        assert!(!same(&list(&["a"]), Some(&list(&["A"])), false));
        assert!(same(&list(&["a"]), Some(&list(&["A"])), true));
        assert!(same(&list(&[]), None, false));
        assert!(same(&Value::Null, Some(&list(&[])), false));
        assert!(same(
            &list(&["a@x"]),
            Some(&Value::Text("a@x".into())),
            false
        ));
        assert!(!same(
            &list(&["a", "b"]),
            Some(&Value::Text("a".into())),
            false
        ));
        // A target the connector declares case-blind compares without case.
        let mut mappings = mapping::compile(&[Mapping {
            target: "Nick".into(),
            source: MappingSource::Attribute("nick".into()),
            apply_on_update: true,
        }])
        .unwrap();
        let desired = vec![text("Nick", "ada"), text("Email", "A@X.TEST")];
        let read = vec![text("Nick", "ADA"), text("Email", "a@x.test")];
        fn rules(mappings: &[CompiledMapping]) -> CaseRules<'_> {
            CaseRules {
                match_attribute: "Email",
                mappings,
            }
        }
        assert_eq!(
            diff_against(&desired, &read, rules(&mappings)),
            vec![text("Nick", "ada")],
            "case-exact unless declared otherwise; the match attribute never is"
        );
        mappings[0].case_exact = false;
        assert!(diff_against(&desired, &read, rules(&mappings)).is_empty());
    }

    #[test]
    fn a_disabled_record_is_enabled_with_only_what_changed_when_the_connector_can() {
        let mut link = linked("a", "CTO");
        link.state = LinkState::Disabled;
        let back = || vec![person("a", true, "CTO")];
        assert_eq!(
            plan_with(&prefs(), back(), vec![link.clone()], true),
            vec![Decision::Update {
                target: "T-a".into(),
                changes: vec![],
                enable: true,
            }]
        );
        // Without `enable` (contract 0.1), everything is rewritten.
        match &plan_with(&prefs(), back(), vec![link.clone()], false)[0] {
            Decision::Update {
                changes, enable, ..
            } => assert_eq!((changes.len(), *enable), (2, false)),
            other => panic!("{other:?}"),
        }
        // Enabling is an update: without permission the record stays as it is.
        let mut no_updates = prefs();
        no_updates.allow_update = false;
        assert!(matches!(
            &plan_with(&no_updates, back(), vec![link], true)[0],
            Decision::Settle { state: LinkState::Disabled, reason: Some(r) } if r.contains("stays disabled")
        ));
    }

    #[test]
    fn a_failed_enable_is_tried_again_after_its_backoff() {
        let mut link = linked("a", "CTO");
        link.state = LinkState::Disabled;
        link.error = Some(LinkError::from_store(
            &crate::runtime::contract::StoreError::Transient {
                message: "HTTP 503".into(),
                retry_after: None,
            },
        ));
        link.next_retry = Some(2_000);
        let back = || vec![person("a", true, "CTO")];
        // `plan` runs at 1,000 ms: still backing off.
        assert!(matches!(
            &plan_with(&prefs(), back(), vec![link.clone()], true)[0],
            Decision::Wait { .. }
        ));
        link.next_retry = Some(500);
        assert!(matches!(
            &plan_with(&prefs(), back(), vec![link], true)[0],
            Decision::Update { enable: true, .. }
        ));
    }

    #[test]
    fn a_conflict_reads_the_record_again_before_writing() {
        let mut link = linked("a", "CTO");
        link.state = LinkState::Failed;
        link.error = Some(LinkError::from_store(
            &crate::runtime::contract::StoreError::Conflict("412".into()),
        ));
        let decisions = plan(&prefs(), vec![person("a", true, "CEO")], vec![link]);
        assert!(
            matches!(&decisions[0], Decision::Find { existing: Some(id), .. } if id == "T-a"),
            "{decisions:?}"
        );
    }

    #[test]
    fn an_adoption_carries_the_version_the_lookup_read() {
        let found = Match {
            value: "a@x.test".into(),
            id: "T-a".into(),
            attributes: vec![text("Email", "a@x.test"), text("Title", "CTO")],
            version: Some("v7".into()),
        };
        let rules = CaseRules {
            match_attribute: "Email",
            mappings: &[],
        };
        let resolved = resolve(
            vec![],
            &[text("Title", "CEO")],
            None,
            &[&found],
            rules,
            &prefs(),
        );
        assert_eq!(
            resolved,
            Found::Adopt {
                target: "T-a".into(),
                changes: vec![text("Title", "CEO")],
                version: Some("v7".into()),
            }
        );
    }

    #[test]
    fn each_cause_of_removal_takes_its_own_action() {
        let prefs = Preferences {
            allow_disable: true,
            remove_action: RemoveActions {
                disabled: Some(RemoveAction::Disable),
                deleted: Some(RemoveAction::Delete),
                left_scope: None,
            },
            ..prefs()
        };
        let mut disabled = person("d", true, "CTO");
        disabled.enabled = false;
        let mut deleted = person("x", true, "CTO");
        deleted.deleted = true;
        let decisions = plan(
            &prefs,
            vec![disabled, deleted, person("s", false, "CTO")],
            vec![linked("d", "CTO"), linked("x", "CTO"), linked("s", "CTO")],
        );
        assert_eq!(
            decisions,
            vec![
                Decision::Remove {
                    target: "T-d".into(),
                    action: RemoveAction::Disable,
                    cause: Cause::Disabled
                },
                Decision::Settle {
                    state: LinkState::Kept,
                    reason: Some(
                        "left the rule's scope; the connector can neither disable nor delete"
                            .into()
                    ),
                },
                Decision::Remove {
                    target: "T-x".into(),
                    action: RemoveAction::Delete,
                    cause: Cause::Deleted
                },
            ]
        );
        // A person gone from the directory altogether was deleted.
        assert!(matches!(
            plan(&prefs, vec![], vec![linked("x", "CTO")])[0],
            Decision::Remove {
                cause: Cause::Deleted,
                ..
            }
        ));
        // A record disabled earlier is deleted once the cause says delete.
        let mut was_disabled = linked("x", "CTO");
        was_disabled.state = LinkState::Disabled;
        assert!(matches!(
            plan(&prefs, vec![], vec![was_disabled])[0],
            Decision::Remove {
                action: RemoveAction::Delete,
                ..
            }
        ));
    }

    #[test]
    fn a_leaver_whose_create_never_answered_is_looked_up_before_the_link_goes() {
        let mut gone = person("a", true, "CTO");
        gone.enabled = false;
        let mut unanswered = linked("a", "CTO");
        unanswered.target_id = None;
        unanswered.state = LinkState::Failed;
        unanswered.error = Some(LinkError {
            class: "transient".into(),
            code: None,
            message: "interrupted".into(),
            fields: vec![],
        });
        let decision = &plan(&prefs(), vec![gone.clone()], vec![unanswered.clone()])[0];
        assert!(
            matches!(decision, Decision::Reclaim { key, cause: Cause::Disabled } if key.contains('a')),
            "{decision:?}"
        );
        // A refused create left nothing behind.
        let mut refused = unanswered;
        if let Some(error) = refused.error.as_mut() {
            error.class = "rejected".into();
        }
        assert_eq!(plan(&prefs(), vec![gone], vec![refused])[0], Decision::Drop);
    }

    #[test]
    fn failures_wait_for_their_time_or_for_new_data() {
        let mut rejected = linked("a", "CTO");
        rejected.state = LinkState::Failed;
        rejected.error = Some(LinkError {
            class: "rejected".into(),
            code: Some("X".into()),
            message: "m".into(),
            fields: vec![],
        });
        rejected.person_seq = Some(7);
        assert!(matches!(
            &plan(
                &prefs(),
                vec![person("a", true, "CEO")],
                vec![rejected.clone()]
            )[0],
            Decision::Wait { .. }
        ));
        let mut changed = person("a", true, "CEO");
        changed.changed_seq = 8;
        assert!(matches!(
            &plan(&prefs(), vec![changed], vec![rejected])[0],
            Decision::Update { .. }
        ));

        let mut transient = linked("a", "CTO");
        transient.state = LinkState::Failed;
        transient.error = Some(LinkError {
            class: "transient".into(),
            code: None,
            message: "m".into(),
            fields: vec![],
        });
        transient.next_retry = Some(5_000);
        assert!(matches!(
            &plan(
                &prefs(),
                vec![person("a", true, "CEO")],
                vec![transient.clone()]
            )[0],
            Decision::Wait { .. }
        ));
        transient.next_retry = Some(500);
        assert!(matches!(
            &plan(&prefs(), vec![person("a", true, "CEO")], vec![transient])[0],
            Decision::Update { .. }
        ));
    }

    const EMAIL: CaseRules<'static> = CaseRules {
        match_attribute: "Email",
        mappings: &[],
    };

    #[test]
    fn lookups_adopt_one_create_none_and_refuse_twins() {
        let prefs = prefs();
        let by_id = resolve(
            vec![],
            &[text("Title", "CTO")],
            Some("T9"),
            &[],
            EMAIL,
            &prefs,
        );
        assert_eq!(
            by_id,
            Found::Adopt {
                target: "T9".into(),
                changes: vec![text("Title", "CTO")],
                version: None,
            },
            "a linked record its key no longer finds is written by id, not twinned"
        );
        let found = |id: &str, title: &str| Match {
            value: "a@x.test".into(),
            id: id.into(),
            attributes: vec![text("Email", "A@X.TEST"), text("Title", title)],
            version: None,
        };
        let update = vec![text("Email", "a@x.test"), text("Title", "CTO")];
        assert!(matches!(
            resolve(vec![], &update, None, &[], EMAIL, &prefs),
            Found::Create(_)
        ));
        let one = found("T1", "CTO");
        assert_eq!(
            resolve(vec![], &update, None, &[&one], EMAIL, &prefs),
            Found::Adopt {
                target: "T1".into(),
                changes: vec![],
                version: None,
            },
            "the Email differs only in case"
        );
        let behind = found("T1", "CEO");
        assert_eq!(
            resolve(vec![], &update, None, &[&behind], EMAIL, &prefs),
            Found::Adopt {
                target: "T1".into(),
                changes: vec![text("Title", "CTO")],
                version: None,
            }
        );
        let frozen = Preferences {
            allow_update: false,
            ..prefs.clone()
        };
        assert!(matches!(
            resolve(vec![], &update, None, &[&behind], EMAIL, &frozen),
            Found::AdoptBehind { .. }
        ));
        let twin = found("T2", "CTO");
        assert_eq!(
            resolve(vec![], &update, None, &[&one, &twin], EMAIL, &prefs),
            Found::Ambiguous(vec!["T1".into(), "T2".into()])
        );
        assert!(
            matches!(resolve(vec![], &update, Some("T2"), &[&one, &twin], EMAIL, &prefs), Found::Adopt { target, .. } if target == "T2")
        );
    }
}
