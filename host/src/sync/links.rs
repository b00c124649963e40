//! What the sync engine keeps per rule and person: links to target
//! records, their states and errors, journal entries and the guards'
//! standing. The SQL that stores them is the state backend's
//! (`state/sqlite/links.rs`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value as Json;

use crate::runtime::contract::{Attribute, StoreError, Value};

/// Where a person stands in a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkState {
    /// The record matches what the rule maps.
    Synced,
    /// No record, and none will be made (creating is not allowed).
    Unsynced,
    /// The record exists but is behind (updating is not allowed).
    Partial,
    /// The last attempt failed; see the error.
    Failed,
    /// The person left the rule's scope, but the record stays (removal is
    /// not allowed, or held by the removal guard).
    Kept,
    /// The record was disabled after the person left scope.
    Disabled,
}

/// PingOne's sync-status buckets, which every link falls in one of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Success,
    Unsynced,
    PartiallySynced,
    Failed,
}

impl Bucket {
    /// The bucket as a sync report's summary names it.
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Success => "success",
            Bucket::Unsynced => "unsynced",
            Bucket::PartiallySynced => "partially-synced",
            Bucket::Failed => "failed",
        }
    }
}

impl LinkState {
    /// The bucket a person in this state counts in: a disabled record is a
    /// removal carried out, a kept one a removal left undone.
    pub fn bucket(self) -> Bucket {
        match self {
            LinkState::Synced | LinkState::Disabled => Bucket::Success,
            LinkState::Unsynced => Bucket::Unsynced,
            LinkState::Partial | LinkState::Kept => Bucket::PartiallySynced,
            LinkState::Failed => Bucket::Failed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Synced => "synced",
            LinkState::Unsynced => "unsynced",
            LinkState::Partial => "partial",
            LinkState::Failed => "failed",
            LinkState::Kept => "kept",
            LinkState::Disabled => "disabled",
        }
    }

    /// The state as the state file spells it. Anything else is a state
    /// file this binary did not write as it is: an error naming the text,
    /// never a guess (a guess of `failed` would retry what may be done).
    pub fn parse(text: &str) -> Result<LinkState, String> {
        match text {
            "synced" => Ok(LinkState::Synced),
            "unsynced" => Ok(LinkState::Unsynced),
            "partial" => Ok(LinkState::Partial),
            "failed" => Ok(LinkState::Failed),
            "kept" => Ok(LinkState::Kept),
            "disabled" => Ok(LinkState::Disabled),
            other => Err(format!("unknown link state {other:?}")),
        }
    }
}

/// The last failure on a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkError {
    /// transient, rejected, not-found, unauthorized, unsupported, plugin
    pub class: String,
    pub code: Option<String>,
    pub message: String,
    pub fields: Vec<String>,
}

impl LinkError {
    pub fn from_store(error: &StoreError) -> LinkError {
        let (class, code, message, fields) = match error {
            StoreError::Transient { message, .. } => {
                ("transient", None, message.clone(), Vec::new())
            }
            StoreError::Rejected {
                code,
                message,
                fields,
            } => (
                "rejected",
                Some(code.clone()),
                message.clone(),
                fields.clone(),
            ),
            StoreError::NotFound(m) => ("not-found", None, m.clone(), Vec::new()),
            StoreError::Unauthorized(m) => ("unauthorized", None, m.clone(), Vec::new()),
            StoreError::Unsupported(m) => ("unsupported", None, m.clone(), Vec::new()),
            StoreError::Conflict(m) => ("conflict", None, m.clone(), Vec::new()),
        };
        LinkError {
            class: class.into(),
            code,
            message,
            fields,
        }
    }
    /// The store's error again, as far as the link kept it (a transient
    /// error's `Retry-After` is not kept).
    pub fn to_store(&self) -> StoreError {
        let message = self.message.clone();
        match self.class.as_str() {
            "rejected" => StoreError::Rejected {
                code: self.code.clone().unwrap_or_default(),
                message,
                fields: self.fields.clone(),
            },
            "not-found" => StoreError::NotFound(message),
            "unauthorized" => StoreError::Unauthorized(message),
            "unsupported" => StoreError::Unsupported(message),
            "conflict" => StoreError::Conflict(message),
            _ => StoreError::Transient {
                message,
                retry_after: None,
            },
        }
    }
}

/// Rule x person -> target record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub rule: String,
    pub person_id: String,
    pub connection: String,
    pub target_id: Option<String>,
    /// What was last written, by attribute.
    pub written: BTreeMap<String, Value>,
    pub state: LinkState,
    pub reason: Option<String>,
    pub error: Option<LinkError>,
    pub attempts: u32,
    pub next_retry: Option<i64>,
    /// The person's change sequence when this link was last planned; a
    /// rejected link waits until it moves.
    pub person_seq: Option<i64>,
    pub updated_at: i64,
}

/// Rule x directory group -> the group a rule pushes to its target: the
/// group's record there, and the members the host last wrote, as the
/// target's record ids. A group's state reads as a person's: synced,
/// unsynced (not created, as creating is not allowed), partial (members
/// differ, as updating is not allowed) or failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupLink {
    pub rule: String,
    pub group: String,
    pub connection: String,
    pub target_id: Option<String>,
    pub members: BTreeSet<String>,
    pub state: LinkState,
    /// Why the group is not synced: the refusal, or the store's error.
    pub reason: Option<String>,
    pub updated_at: i64,
}

impl GroupLink {
    pub fn new(rule: &str, group: &str, connection: &str) -> GroupLink {
        GroupLink {
            rule: rule.into(),
            group: group.into(),
            connection: connection.into(),
            target_id: None,
            members: BTreeSet::new(),
            state: LinkState::Unsynced,
            reason: None,
            updated_at: crate::state::now_ms(),
        }
    }
}

impl Link {
    pub fn new(rule: &str, person_id: &str, connection: &str) -> Link {
        Link {
            rule: rule.into(),
            person_id: person_id.into(),
            connection: connection.into(),
            target_id: None,
            written: BTreeMap::new(),
            state: LinkState::Unsynced,
            reason: None,
            error: None,
            attempts: 0,
            next_retry: None,
            person_seq: None,
            updated_at: crate::state::now_ms(),
        }
    }
}

pub fn to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Text(t) => Json::from(t.as_str()),
        Value::Boolean(b) => Json::from(*b),
        Value::Integer(i) => Json::from(*i),
        Value::TextList(items) => Json::from(items.clone()),
    }
}

pub fn from_json(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => n
            .as_i64()
            .map(Value::Integer)
            .unwrap_or_else(|| Value::Text(n.to_string())),
        Json::String(s) => Value::Text(s.clone()),
        Json::Array(items) if items.iter().all(Json::is_string) => Value::TextList(
            items
                .iter()
                .filter_map(|item| item.as_str().map(String::from))
                .collect(),
        ),
        other => Value::Text(other.to_string()),
    }
}

/// `{"name": value, …}` in name order, as `to_json` writes each value.
/// Written straight from the map: every created or updated person has one,
/// and a `serde_json` map copied from it cost a clone of every name.
pub(crate) fn written_json(written: &BTreeMap<String, Value>) -> String {
    struct Plain<'a>(&'a Value);
    impl Serialize for Plain<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            match self.0 {
                Value::Null => serializer.serialize_unit(),
                Value::Text(text) => serializer.serialize_str(text),
                Value::Boolean(flag) => serializer.serialize_bool(*flag),
                Value::Integer(number) => serializer.serialize_i64(*number),
                Value::TextList(items) => serializer.collect_seq(items),
            }
        }
    }
    struct Written<'a>(&'a BTreeMap<String, Value>);
    impl Serialize for Written<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_map(self.0.iter().map(|(name, value)| (name, Plain(value))))
        }
    }
    serde_json::to_string(&Written(written)).unwrap_or_default()
}

/// A journal entry's detail as stored. Straight to a string: `Display`
/// goes through a formatter for every fragment it writes.
pub(crate) fn detail_json(detail: &Json) -> String {
    serde_json::to_string(detail).unwrap_or_default()
}

/// A stable digest of what was written, for the status page and audits.
pub fn digest(written: &BTreeMap<String, Value>) -> String {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(written_json(written).as_bytes());
    hash.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Merges written attributes into what a link remembers.
pub fn remember(written: &mut BTreeMap<String, Value>, attributes: &[Attribute]) {
    for attribute in attributes {
        written.insert(attribute.name.clone(), attribute.value.clone());
    }
}

/// A journal entry being opened.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    pub rule: Option<String>,
    pub person_id: Option<String>,
    pub connection: String,
    pub action: String,
    pub target_id: Option<String>,
    pub detail: Json,
}

/// A plugin a running host serves, as status reports it.
/// Where a rule's mapping change stands with its update guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateGuard {
    /// The updates wait for `approve-updates`.
    Held,
    /// An operator approved them.
    Approved,
    /// Few enough to go out without approval.
    Within,
}

pub struct PluginRecord {
    pub name: String,
    pub version: String,
    pub contract: String,
    pub path: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_states_read_back_as_written_and_nothing_else() {
        for state in [
            LinkState::Synced,
            LinkState::Unsynced,
            LinkState::Partial,
            LinkState::Failed,
            LinkState::Kept,
            LinkState::Disabled,
        ] {
            assert_eq!(LinkState::parse(state.as_str()).unwrap(), state);
        }
        let error = LinkState::parse("done").unwrap_err();
        assert!(
            error.to_string().contains("unknown link state \"done\""),
            "{error}"
        );
    }

    /// What a link remembers is compared and digested as stored, so its
    /// text must not drift: names in order, values as `to_json` has them.
    #[test]
    fn written_json_is_the_json_of_each_value_in_name_order() {
        let written = BTreeMap::from([
            (
                "Title".to_string(),
                Value::Text("Ünal \"the\" \\ one".into()),
            ),
            ("Active".to_string(), Value::Boolean(false)),
            ("Count".to_string(), Value::Integer(-12)),
            ("Phone".to_string(), Value::Null),
        ]);
        let through_values: serde_json::Map<String, Json> = written
            .iter()
            .map(|(name, value)| (name.clone(), to_json(value)))
            .collect();
        let text = written_json(&written);
        assert_eq!(text, Json::Object(through_values).to_string());
        assert_eq!(
            text,
            r#"{"Active":false,"Count":-12,"Phone":null,"Title":"Ünal \"the\" \\ one"}"#
        );
        assert_eq!(written_json(&BTreeMap::new()), "{}");
        let detail = serde_json::json!({ "attributes": ["Email"], "n": 1 });
        assert_eq!(detail_json(&detail), detail.to_string());
    }
}
