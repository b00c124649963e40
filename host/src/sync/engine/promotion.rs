//! Promotion by conversion. A person who leaves rule A for rule B, where B
//! says `convert_from = A`, keeps their record: it is converted in place
//! into B's type (a Lead becomes a Contact, with its history), instead of
//! being removed by A and created again by B.

use std::collections::BTreeMap;

use super::binding::RuleBinding;
use super::resolve::{Conversion, Conversions};
use crate::sync::links::Link;
use crate::sync::plan::{Decision, Planned};

/// A rule's plan for a slice, with its links there.
pub(super) type RulePlan = (Vec<Planned>, BTreeMap<String, Link>);

/// A rule that converts the records of another.
#[derive(Debug, Clone)]
pub(super) struct Promotion {
    pub rule: String,
    pub from: String,
    /// The connection of `from`, through which the conversion goes.
    pub connection: String,
    pub target_type: String,
}

/// The promotions the bound rules allow: both rules bound, and the
/// conversion possible in place (see [`RuleBinding::converts_from`]).
pub(super) fn promotions(bindings: &BTreeMap<String, RuleBinding>) -> Vec<Promotion> {
    let mut promotions = Vec::new();
    for (name, binding) in bindings {
        let Some(from) = &binding.rule.convert_from else {
            continue;
        };
        let Some(from_binding) = bindings.get(from) else {
            continue;
        };
        if !binding.converts_from(from_binding) {
            tracing::debug!(rule = %name, from = %from, "promotion by conversion is not possible; removing and creating instead");
            continue;
        }
        promotions.push(Promotion {
            rule: name.clone(),
            from: from.clone(),
            connection: from_binding.rule.connection.clone(),
            target_type: binding.target_type(),
        });
    }
    promotions
}

/// Takes out of each `from` rule's plan the removal of a person whom the
/// promoting rule is about to create, and returns the conversions that
/// replace them. A person the promoting rule already links, or whom the
/// other rule is not removing, is not converted.
pub(super) fn convert(
    promotions: &[Promotion],
    plans: &mut BTreeMap<String, RulePlan>,
) -> Conversions {
    let mut conversions = Conversions::new();
    for promotion in promotions {
        let Some((to_plan, _)) = plans.get(&promotion.rule) else {
            continue;
        };
        let movers: Vec<String> = to_plan
            .iter()
            .filter(|p| matches!(p.decision, Decision::Find { existing: None, .. }))
            .map(|p| p.person_id.clone())
            .collect();
        let Some((from_plan, from_links)) = plans.get_mut(&promotion.from) else {
            continue;
        };
        for person in movers {
            let leaving = from_plan.iter().position(|p| {
                p.person_id == person && matches!(p.decision, Decision::Remove { .. })
            });
            let Some(index) = leaving else {
                continue;
            };
            from_plan.remove(index);
            if let Some(link) = from_links.get(&person) {
                let conversion = Conversion {
                    from: link.clone(),
                    connection: promotion.connection.clone(),
                    target_type: promotion.target_type.clone(),
                };
                conversions.insert((promotion.rule.clone(), person), conversion);
            }
        }
    }
    conversions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Cause, RemoveAction};

    fn find(person: &str, existing: Option<&str>) -> Planned {
        Planned {
            person_id: person.into(),
            person_seq: Some(1),
            decision: Decision::Find {
                key: format!("{person}@x.test"),
                create: Vec::new(),
                update: Vec::new(),
                existing: existing.map(String::from),
            },
        }
    }

    fn remove(person: &str) -> Planned {
        Planned {
            person_id: person.into(),
            person_seq: Some(1),
            decision: Decision::Remove {
                target: format!("L-{person}"),
                action: RemoveAction::Delete,
                cause: Cause::LeftScope,
            },
        }
    }

    fn linked(rule: &str, person: &str) -> (String, Link) {
        let mut link = Link::new(rule, person, "sf");
        link.target_id = Some(format!("L-{person}"));
        (person.to_string(), link)
    }

    fn promotion() -> Promotion {
        Promotion {
            rule: "customers".into(),
            from: "prospects".into(),
            connection: "sf".into(),
            target_type: "Contact".into(),
        }
    }

    #[test]
    fn a_mover_is_converted_and_no_longer_removed() {
        let mut plans = BTreeMap::from([
            (
                "customers".to_string(),
                (vec![find("ann", None), find("bob", None)], BTreeMap::new()),
            ),
            (
                "prospects".to_string(),
                (
                    vec![remove("ann"), remove("cid")],
                    BTreeMap::from([linked("prospects", "ann"), linked("prospects", "cid")]),
                ),
            ),
        ]);
        let conversions = convert(&[promotion()], &mut plans);
        let ann = &conversions[&("customers".to_string(), "ann".to_string())];
        assert_eq!(ann.from.target_id.as_deref(), Some("L-ann"));
        assert_eq!(
            (ann.connection.as_str(), ann.target_type.as_str()),
            ("sf", "Contact")
        );
        // Bob was never a prospect: he is created. Cid leaves for nowhere:
        // he is removed as planned.
        assert_eq!(conversions.len(), 1);
        let left: Vec<&str> = plans["prospects"]
            .0
            .iter()
            .map(|p| p.person_id.as_str())
            .collect();
        assert_eq!(left, ["cid"]);
    }

    #[test]
    fn a_person_already_linked_by_the_promoting_rule_is_not_converted() {
        let mut plans = BTreeMap::from([
            (
                "customers".to_string(),
                (vec![find("ann", Some("C-ann"))], BTreeMap::new()),
            ),
            (
                "prospects".to_string(),
                (
                    vec![remove("ann")],
                    BTreeMap::from([linked("prospects", "ann")]),
                ),
            ),
        ]);
        assert!(convert(&[promotion()], &mut plans).is_empty());
        assert_eq!(plans["prospects"].0.len(), 1, "the removal stays");
    }

    #[test]
    fn without_the_other_rule_in_the_pass_nothing_moves() {
        let mut plans = BTreeMap::from([(
            "customers".to_string(),
            (vec![find("ann", None)], BTreeMap::new()),
        )]);
        assert!(convert(&[promotion()], &mut plans).is_empty());
    }
}
