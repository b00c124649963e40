//! A directory group as a SCIM Group (RFC 7643 §4.2). A group is a name
//! that people carry; rules select people by it. A group made over SCIM
//! also has a record, so that it keeps its id across renames and exists
//! before anyone is in it; a group that only people name (from a file)
//! gets the id its record would take ([`group_id`]).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::error::ScimError;
use super::user::field;
use crate::directory::{GroupRecord, group_id};

pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// A group as this service provider knows it: its record if it has one,
/// and its members' ids.
#[derive(Debug, Clone)]
pub struct Known {
    pub record: Option<GroupRecord>,
    pub id: String,
    pub name: String,
}

/// Every group: those with records, and those only people name.
pub fn known(records: Vec<GroupRecord>, names: BTreeSet<String>) -> Vec<Known> {
    let held: BTreeSet<String> = records.iter().map(|r| r.id.clone()).collect();
    let mut by_name: BTreeMap<String, Known> = names
        .into_iter()
        .map(|name| {
            let known = Known {
                record: None,
                id: unrecorded_id(&name, |id| held.contains(id)),
                name: name.clone(),
            };
            (name, known)
        })
        .collect();
    for record in records {
        by_name.insert(
            record.name.clone(),
            Known {
                id: record.id.clone(),
                name: record.name.clone(),
                record: Some(record),
            },
        );
    }
    by_name.into_values().collect()
}

/// The id of a group that has no record: the one its name gives it,
/// unless a record took that id when the group was renamed (`held`); the
/// name, carried again, then gets another.
pub fn unrecorded_id(name: &str, held: impl Fn(&str) -> bool) -> String {
    let id = group_id(name);
    if held(&id) {
        group_id(&format!("{name}\n1"))
    } else {
        id
    }
}

/// The weak entity tag of a group. A record's version advances whenever
/// anyone joins or leaves the group, however they did; a group without a
/// record has only its members (`(id, display)`, read only then), so its
/// tag is a digest of their ids.
pub fn version_tag(group: &Known, members: &[(String, String)]) -> String {
    use sha2::Digest;
    if let Some(record) = &group.record {
        return format!("W/\"g{}\"", record.version);
    }
    let mut ids: Vec<&str> = members.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort_unstable();
    let mut digest = sha2::Sha256::new();
    for id in ids {
        // Length first: no id can pass for two.
        digest.update((id.len() as u64).to_le_bytes());
        digest.update(id.as_bytes());
    }
    let hex: String = digest
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("W/\"m{hex}\"")
}

/// The group as SCIM, at the version `tag`. `members` are (id, display) of
/// its people.
pub fn to_scim(group: &Known, members: &[(String, String)], base: &str, tag: &str) -> Value {
    let members: Vec<Value> = members
        .iter()
        .map(|(id, display)| {
            json!({"value": id, "display": display, "type": "User", "$ref": super::location(base, "Users", id)})
        })
        .collect();
    let mut value = json!({
        "schemas": [GROUP],
        "id": group.id,
        "displayName": group.name,
        "members": members,
        "meta": {
            "resourceType": "Group",
            "version": tag,
            "location": super::location(base, "Groups", &group.id),
        },
    });
    if let Some(external_id) = group.record.as_ref().and_then(|r| r.external_id.clone()) {
        value["externalId"] = external_id.into();
    }
    value
}

/// What a Group says: its name, external id and members' ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFields {
    pub name: String,
    pub external_id: Option<String>,
    pub members: BTreeSet<String>,
}

pub fn from_scim(group: &Value) -> Result<GroupFields, ScimError> {
    let Value::Object(group) = group else {
        return Err(ScimError::bad(
            "invalidSyntax",
            "the body must be a JSON object (a SCIM Group)",
        ));
    };
    schemas(group)?;
    let mut fields = GroupFields {
        name: String::new(),
        external_id: None,
        members: BTreeSet::new(),
    };
    for (key, value) in group {
        match key.to_ascii_lowercase().as_str() {
            "schemas" | "id" | "meta" => {}
            "displayname" => match value {
                Value::String(name) => fields.name = name.clone(),
                _ => return Err(ScimError::invalid_value("displayName must be a string")),
            },
            "externalid" => match value {
                Value::String(id) if !id.is_empty() => fields.external_id = Some(id.clone()),
                Value::Null | Value::String(_) => {}
                _ => return Err(ScimError::invalid_value("externalId must be a string")),
            },
            "members" => fields.members = member_ids(value)?,
            _ if super::user::empty(value) => {}
            _ => {
                return Err(ScimError::invalid_value(format!(
                    "Group attribute {:?} is not kept by the directory",
                    crate::inert::inert(key)
                )));
            }
        }
    }
    if fields.name.is_empty() {
        return Err(ScimError::invalid_value("a Group needs a displayName"));
    }
    Ok(fields)
}

/// `schemas` must name the Group schema. Another may be listed (Entra ID
/// lists one of its own) as long as nothing comes under it.
fn schemas(group: &Map<String, Value>) -> Result<(), ScimError> {
    let listed = field(group, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter()
                .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(GROUP)))
        });
    if !listed {
        return Err(ScimError::bad(
            "invalidSyntax",
            format!("a Group needs \"schemas\": [\"{GROUP}\"]"),
        ));
    }
    Ok(())
}

/// The ids of `members`: an array of `{"value": id}`.
pub fn member_ids(value: &Value) -> Result<BTreeSet<String>, ScimError> {
    let items = match value {
        Value::Null => return Ok(BTreeSet::new()),
        Value::Array(items) => items,
        _ => return Err(ScimError::invalid_value("members must be an array")),
    };
    items
        .iter()
        .map(|item| match item {
            Value::Object(member) => match field(member, "value") {
                Some(Value::String(id)) => Ok(id.clone()),
                _ => Err(ScimError::invalid_value(
                    "each member needs a string value, the User's id",
                )),
            },
            _ => Err(ScimError::invalid_value(
                "each member must be an object {\"value\": id}",
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_read_with_its_members_and_refuses_what_it_cannot_keep() {
        let fields = from_scim(&json!({
            "schemas": [GROUP], "displayName": "Sales EMEA", "externalId": "x1",
            "members": [{"value": "p1"}, {"value": "p2", "display": "Bob"}],
        }))
        .unwrap();
        assert_eq!(fields.name, "Sales EMEA");
        assert_eq!(fields.members.len(), 2);
        for (body, says) in [
            (json!({"schemas": [GROUP]}), "displayName"),
            (
                json!({"schemas": [GROUP], "displayName": "a", "owner": "x"}),
                "owner",
            ),
            (
                json!({"schemas": [GROUP], "displayName": "a", "members": [{"id": "p"}]}),
                "value",
            ),
            (json!({"displayName": "a"}), "schemas"),
        ] {
            let error = from_scim(&body).unwrap_err();
            assert!(error.detail.contains(says), "{says}: {error:?}");
        }
    }

    #[test]
    fn a_group_without_a_record_has_the_id_its_record_would_take() {
        let groups = known(Vec::new(), BTreeSet::from(["staff".to_string()]));
        assert_eq!(groups[0].id, group_id("staff"));
        let member = |id: &str| (id.to_string(), String::new());
        let tag = version_tag(&groups[0], &[member("a"), member("b")]);
        assert_eq!(tag, version_tag(&groups[0], &[member("b"), member("a")]));
        assert_ne!(tag, version_tag(&groups[0], &[member("a")]));
        assert_ne!(tag, version_tag(&groups[0], &[member("a\0b")]));
    }
}
