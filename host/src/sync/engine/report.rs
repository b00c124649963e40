//! What a pass tells its caller: per rule, a standing, counts and the
//! lines of its plan.
//!
//! One vocabulary serves both kinds of pass. A dry run counts what it
//! would do (`update`, `delete`, `create or adopt`); a live pass counts
//! what the store answered (`updated`, `removed`, `created`). Both are
//! variants of one enum, so that the CLI, the daemon and the tests match
//! on names the compiler knows, and the JSON keeps the words it always
//! had.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::sync::links::LinkState;

/// A rule's standing, PingOne's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status", content = "reason")]
pub enum RuleStatus {
    Active,
    Inactive,
    /// Gone from the configuration; its records are being handled.
    Deleted,
    Failed(String),
    Quarantined(String),
}

/// What a pass counts, in the words of its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    // Answered by the store, or settled without a call.
    Created,
    Adopted,
    Updated,
    Removed,
    Disabled,
    Converted,
    HandedOver,
    Unchanged,
    Synced,
    Unsynced,
    Partial,
    Kept,
    Held,
    Failed,
    Waiting,
    // Planned by a dry run, which sends nothing.
    CreateOrAdopt,
    ConvertOrAdopt,
    /// Creating is not allowed: a record found is adopted, else none.
    AdoptIfFound,
    Verify,
    Update,
    Enable,
    Delete,
    Disable,
    Reclaim,
    HandOverOrRemove,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Adopted => "adopted",
            Action::Updated => "updated",
            Action::Removed => "removed",
            Action::Disabled => "disabled",
            Action::Converted => "converted",
            Action::HandedOver => "handed-over",
            Action::Unchanged => "unchanged",
            Action::Synced => "synced",
            Action::Unsynced => "unsynced",
            Action::Partial => "partial",
            Action::Kept => "kept",
            Action::Held => "held",
            Action::Failed => "failed",
            Action::Waiting => "waiting",
            Action::CreateOrAdopt => "create or adopt",
            Action::ConvertOrAdopt => "convert or adopt",
            Action::AdoptIfFound => "adopt if found",
            Action::Verify => "verify",
            Action::Update => "update",
            Action::Enable => "enable",
            Action::Delete => "delete",
            Action::Disable => "disable",
            Action::Reclaim => "reclaim",
            Action::HandOverOrRemove => "hand over or remove",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl From<LinkState> for Action {
    /// A link settled without a call counts under its state's name.
    fn from(state: LinkState) -> Action {
        match state {
            LinkState::Synced => Action::Synced,
            LinkState::Unsynced => Action::Unsynced,
            LinkState::Partial => Action::Partial,
            LinkState::Failed => Action::Failed,
            LinkState::Kept => Action::Kept,
            LinkState::Disabled => Action::Disabled,
        }
    }
}

/// One line of a plan, for `--dry-run` and for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanLine {
    pub person: String,
    pub action: String,
    pub detail: String,
}

/// What a pass did, or would do, to one group a rule pushes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupLine {
    pub group: String,
    pub action: Action,
    pub detail: String,
}

impl GroupLine {
    pub(super) fn new(group: &str, action: Action, detail: &str) -> GroupLine {
        GroupLine {
            group: group.to_string(),
            action,
            detail: detail.to_string(),
        }
    }
}

/// What one pass did to one rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleReport {
    pub rule: String,
    pub connection: String,
    pub status: Option<RuleStatus>,
    pub actions: BTreeMap<Action, usize>,
    pub plan: Vec<PlanLine>,
    /// The groups the rule pushes (`push_groups`), one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupLine>,
}

impl RuleReport {
    pub(super) fn new(rule: &str, connection: &str) -> RuleReport {
        RuleReport {
            rule: rule.to_string(),
            connection: connection.to_string(),
            ..RuleReport::default()
        }
    }

    pub(super) fn count(&mut self, what: Action) {
        *self.actions.entry(what).or_default() += 1;
    }

    /// How many of `what` the pass counted so far.
    pub fn counted(&self, what: Action) -> usize {
        self.actions.get(&what).copied().unwrap_or_default()
    }

    pub(super) fn line(&mut self, person: &str, action: &str, detail: impl Into<String>) {
        self.plan.push(PlanLine {
            person: person.to_string(),
            action: action.to_string(),
            detail: detail.into(),
        });
    }

    /// Whether the rule is still being worked on in this pass: a failure to
    /// bind or a quarantine stops it.
    pub(super) fn active(&self) -> bool {
        matches!(self.status, Some(RuleStatus::Active))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PassReport {
    pub rules: Vec<RuleReport>,
    pub dry_run: bool,
}

/// What became of one sent operation: its rule, the action counted, and
/// a report line for a failure.
pub(super) type Answer = (String, Action, Option<PlanLine>);

pub(super) fn count_answers(reports: &mut BTreeMap<String, RuleReport>, answers: Vec<Answer>) {
    for (rule, what, line) in answers {
        let report = reports
            .entry(rule.clone())
            .or_insert_with(|| RuleReport::new(&rule, ""));
        report.count(what);
        if let Some(line) = line {
            report.plan.push(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON keys are the report's public words: the CLI's `--json`,
    /// the tests and scripts read them.
    #[test]
    fn actions_keep_their_words_in_json() {
        let mut report = RuleReport::new("r", "c");
        for action in [
            Action::HandedOver,
            Action::CreateOrAdopt,
            Action::Updated,
            Action::from(LinkState::Unsynced),
        ] {
            report.count(action);
        }
        report.count(Action::Updated);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["actions"],
            serde_json::json!({
                "handed-over": 1,
                "create or adopt": 1,
                "updated": 2,
                "unsynced": 1,
            })
        );
        assert_eq!(report.counted(Action::Updated), 2);
        assert_eq!(report.counted(Action::Removed), 0);
    }
}
