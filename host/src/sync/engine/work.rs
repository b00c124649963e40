//! One operation to send, with what is needed to record its answer.

use std::collections::BTreeMap;

use serde_json::json;

use super::report::Action;
use crate::config::{Cause, RemoveAction};
use crate::runtime::contract::{Attribute, Operation, Value};
use crate::sync::links::{JournalEntry, Link, LinkState, remember};

/// One operation to send, with what is needed to record its answer.
#[derive(Debug, Clone)]
pub(super) struct Work {
    pub rule: String,
    pub connection: String,
    pub person_id: String,
    pub person_seq: Option<i64>,
    /// The link as it stands, which the answer updates.
    pub base: Link,
    pub kind: WorkKind,
}

#[derive(Debug, Clone)]
pub(super) enum WorkKind {
    Create(Vec<Attribute>),
    /// `written` is what the link remembers afterwards; `enable`
    /// reactivates a disabled record in the same operation, and `version`
    /// is the record's as this pass's lookup read it.
    Update {
        target: String,
        changes: Vec<Attribute>,
        written: Option<BTreeMap<String, Value>>,
        enable: bool,
        version: Option<String>,
    },
    Remove {
        target: String,
        action: RemoveAction,
        cause: Cause,
    },
    /// Converts the record of `from` (another rule) into this rule's type.
    Convert {
        from: Box<Link>,
        target: String,
        target_type: String,
        attributes: Vec<Attribute>,
    },
}

impl Work {
    /// Work on `base`'s record, for its rule, person and connection.
    pub fn on(base: Link, person_seq: Option<i64>, kind: WorkKind) -> Work {
        Work {
            rule: base.rule.clone(),
            connection: base.connection.clone(),
            person_id: base.person_id.clone(),
            person_seq,
            base,
            kind,
        }
    }

    /// The removal of `target`, `base`'s record, as `action` for `cause`.
    pub fn removal(
        base: Link,
        person_seq: Option<i64>,
        target: String,
        action: RemoveAction,
        cause: Cause,
    ) -> Work {
        let kind = WorkKind::Remove {
            target,
            action,
            cause,
        };
        Work::on(base, person_seq, kind)
    }

    pub fn operation(&self) -> Operation {
        match &self.kind {
            WorkKind::Create(attributes) => Operation::Create {
                attributes: attributes.clone(),
            },
            WorkKind::Update {
                target,
                changes,
                enable: true,
                version,
                ..
            } => Operation::Enable {
                id: target.clone(),
                attributes: changes.clone(),
                version: version.clone(),
            },
            WorkKind::Update {
                target,
                changes,
                version,
                ..
            } => Operation::Update {
                id: target.clone(),
                attributes: changes.clone(),
                version: version.clone(),
            },
            WorkKind::Remove {
                target,
                action: RemoveAction::Delete,
                ..
            } => Operation::Delete { id: target.clone() },
            WorkKind::Remove {
                target,
                action: RemoveAction::Disable,
                ..
            } => Operation::Disable { id: target.clone() },
            WorkKind::Convert {
                target,
                target_type,
                attributes,
                ..
            } => Operation::Convert {
                id: target.clone(),
                target_type: target_type.clone(),
                attributes: attributes.clone(),
            },
        }
    }

    /// The journal's name for the operation.
    pub fn action(&self) -> &'static str {
        match &self.kind {
            WorkKind::Create(_) => "create",
            WorkKind::Update { enable: true, .. } => "enable",
            WorkKind::Update {
                written: Some(_), ..
            } => "adopt-update",
            WorkKind::Update { .. } => "update",
            WorkKind::Remove {
                action: RemoveAction::Delete,
                ..
            } => "delete",
            WorkKind::Remove {
                action: RemoveAction::Disable,
                ..
            } => "disable",
            WorkKind::Convert { .. } => "convert",
        }
    }

    /// What a removal removes and why, as plans print it. A record that an
    /// earlier pass disabled and this one deletes says so: that happens
    /// when the remove action for its cause changed from disable to delete.
    pub fn why(&self) -> String {
        let WorkKind::Remove {
            target,
            action,
            cause,
        } = &self.kind
        else {
            return String::new();
        };
        let mut why = format!("{target}: {}", cause.describe());
        if *action == RemoveAction::Delete && self.base.state == LinkState::Disabled {
            why.push_str(&format!(
                "; disabled earlier, deleted now because {} (or remove_action) says delete",
                cause.key()
            ));
        }
        why
    }

    /// What a dry run counts for this operation.
    pub fn planned(&self) -> Action {
        match &self.kind {
            WorkKind::Create(_) => Action::CreateOrAdopt,
            WorkKind::Update { enable: true, .. } => Action::Enable,
            WorkKind::Update { .. } => Action::Update,
            WorkKind::Remove {
                action: RemoveAction::Delete,
                ..
            } => Action::Delete,
            WorkKind::Remove {
                action: RemoveAction::Disable,
                ..
            } => Action::Disable,
            WorkKind::Convert { .. } => Action::ConvertOrAdopt,
        }
    }

    pub fn journal(&self) -> JournalEntry {
        let (target, detail) = match &self.kind {
            WorkKind::Create(attributes) => (None, json!({ "attributes": names(attributes) })),
            WorkKind::Update {
                target, changes, ..
            } => (Some(target.clone()), json!({ "changed": names(changes) })),
            WorkKind::Remove { target, cause, .. } => {
                (Some(target.clone()), json!({ "cause": cause }))
            }
            WorkKind::Convert {
                target,
                target_type,
                from,
                ..
            } => (
                Some(target.clone()),
                json!({ "into": target_type, "from_rule": from.rule }),
            ),
        };
        JournalEntry {
            rule: Some(self.rule.clone()),
            person_id: Some(self.person_id.clone()),
            connection: self.connection.clone(),
            action: self.action().to_string(),
            target_id: target,
            detail,
        }
    }
}

/// A value as the plan prints it.
pub(super) fn show(value: &Value) -> String {
    use Value;
    match value {
        Value::Null => "empty".into(),
        Value::Text(text) => format!("{text:?}"),
        Value::Boolean(flag) => flag.to_string(),
        Value::Integer(number) => number.to_string(),
        Value::TextList(items) => format!("{items:?}"),
    }
}

pub(super) fn names(attributes: &[Attribute]) -> Vec<String> {
    attributes.iter().map(|a| a.name.clone()).collect()
}

pub(super) fn written_of(attributes: &[Attribute]) -> BTreeMap<String, Value> {
    let mut written = BTreeMap::new();
    remember(&mut written, attributes);
    written
}

/// What the links of one rule become after a pass, and which journal
/// entries close.
#[derive(Debug, Default)]
pub(super) struct Outcomes {
    pub save: Vec<Link>,
    /// (rule, person) links to drop.
    pub drop: Vec<(String, String)>,
    pub journal: Vec<(i64, Result<Option<String>, String>)>,
    /// (connection, reason) when an answer refused the credentials.
    pub quarantine: Option<(String, String)>,
}
