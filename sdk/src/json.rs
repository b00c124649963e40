//! Attributes to and from a store's JSON, and the contract's attribute
//! paths over JSON documents.
//!
//! A path follows the WIT's convention (SCIM's, RFC 7644 §3.10):
//! `userName`, `name.givenName`, `emails[type eq "work"].value`, and an
//! extension's attribute after its URN,
//! `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`.
//!
//! ```
//! use provisioner_connector::json;
//! use serde_json::json;
//!
//! let mut user = json!({});
//! json::set(&mut user, "name.givenName", json!("Ada")).unwrap();
//! json::set(&mut user, r#"emails[type eq "work"].value"#, json!("ada@example.com")).unwrap();
//! assert_eq!(user, json!({
//!     "name": { "givenName": "Ada" },
//!     "emails": [{ "type": "work", "value": "ada@example.com" }],
//! }));
//! assert_eq!(json::get(&user, r#"emails[type eq "work"].value"#), Some(&json!("ada@example.com")));
//! ```

use serde_json::{Map, Value as Json};

use crate::{Attribute, Value};

/// A value as JSON: null, string, boolean, number, or an array of strings.
pub fn to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Text(text) => Json::from(text.as_str()),
        Value::Boolean(flag) => Json::from(*flag),
        Value::Integer(number) => Json::from(*number),
        Value::TextList(items) => Json::from(items.clone()),
    }
}

/// JSON as a value: an array of strings is a list; a fraction or any
/// other structure is kept as its JSON text.
pub fn from_json(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(flag) => Value::Boolean(*flag),
        Json::Number(number) => number
            .as_i64()
            .map(Value::Integer)
            .unwrap_or_else(|| Value::Text(number.to_string())),
        Json::String(text) => Value::Text(text.clone()),
        Json::Array(items) if items.iter().all(Json::is_string) => Value::TextList(
            items
                .iter()
                .filter_map(|item| item.as_str().map(String::from))
                .collect(),
        ),
        other => Value::Text(other.to_string()),
    }
}

/// A flat JSON object as attributes, one per member.
pub fn attributes(object: &Map<String, Json>) -> Vec<Attribute> {
    object
        .iter()
        .map(|(name, value)| Attribute {
            name: name.clone(),
            value: from_json(value),
        })
        .collect()
}

/// Attributes as a flat JSON object, one member each.
pub fn object(attributes: &[Attribute]) -> Map<String, Json> {
    attributes
        .iter()
        .map(|a| (a.name.clone(), to_json(&a.value)))
        .collect()
}

/// Attributes as one JSON document, each written at its path.
pub fn document(attributes: &[Attribute]) -> Result<Json, PathError> {
    let mut document = Json::Object(Map::new());
    for attribute in attributes {
        set(&mut document, &attribute.name, to_json(&attribute.value))?;
    }
    Ok(document)
}

/// Why a path cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("attribute path {path:?}: {reason}")]
pub struct PathError {
    /// The path as given.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

impl From<PathError> for crate::StoreError {
    fn from(error: PathError) -> Self {
        crate::StoreError::rejected("INVALID_PATH", error.to_string())
    }
}

/// One step of a path: a member, and for a multi-valued one the element
/// whose `sub` member equals `value`.
#[derive(Debug, PartialEq, Eq)]
struct Step<'a> {
    key: &'a str,
    filter: Option<(&'a str, String)>,
}

fn parse(path: &str) -> Result<Vec<Step<'_>>, PathError> {
    let error = |reason: &str| PathError {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if path.is_empty() {
        return Err(error("an empty path"));
    }
    let mut steps = Vec::new();
    let mut rest = path;
    // An extension's URN is one member: everything to its last colon
    // before any filter (whose value may hold colons of its own).
    if path.starts_with("urn:") {
        let head = &path[..path.find('[').unwrap_or(path.len())];
        let (urn, _) = head
            .rsplit_once(':')
            .ok_or_else(|| error("no attribute after the URN"))?;
        rest = &path[urn.len() + 1..];
        if rest.is_empty() {
            return Err(error("no attribute after the URN"));
        }
        steps.push(Step {
            key: urn,
            filter: None,
        });
    }
    while !rest.is_empty() {
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let key = &rest[..end];
        if key.is_empty() {
            return Err(error("an empty attribute name"));
        }
        rest = &rest[end..];
        let mut filter = None;
        if let Some(inner) = rest.strip_prefix('[') {
            let (sub, after) = inner.split_once(" eq ").ok_or_else(|| {
                error("only `[sub eq \"value\"]` filters are part of the convention")
            })?;
            let quoted = after
                .trim_start()
                .strip_prefix('"')
                .ok_or_else(|| error("the filter's value must be quoted"))?;
            // The value ends at the first quote a backslash does not escape.
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c)) => value.push(c),
                        None => return Err(error("the filter's value is not closed")),
                    },
                    Some((at, '"')) => break at,
                    Some((_, c)) => value.push(c),
                    None => return Err(error("the filter's value is not closed")),
                }
            };
            rest = quoted[end + 1..]
                .trim_start()
                .strip_prefix(']')
                .ok_or_else(|| error("a filter without ]"))?;
            filter = Some((sub.trim(), value));
        }
        steps.push(Step { key, filter });
        if let Some(next) = rest.strip_prefix('.') {
            rest = next;
            if rest.is_empty() {
                return Err(error("ends with a dot"));
            }
        } else if !rest.is_empty() {
            return Err(error("expected . after a filter"));
        }
    }
    Ok(steps)
}

fn matches(element: &Json, sub: &str, value: &str) -> bool {
    element
        .get(sub)
        .and_then(Json::as_str)
        .is_some_and(|v| v.eq_ignore_ascii_case(value))
}

/// The JSON at `path`, if the document has it.
pub fn get<'a>(document: &'a Json, path: &str) -> Option<&'a Json> {
    let mut here = document;
    for step in parse(path).ok()? {
        here = here.get(step.key)?;
        if let Some((sub, value)) = &step.filter {
            here = here.as_array()?.iter().find(|e| matches(e, sub, value))?;
        }
    }
    Some(here)
}

/// Writes `value` at `path`, creating the objects and the filtered element
/// on the way.
pub fn set(document: &mut Json, path: &str, value: Json) -> Result<(), PathError> {
    let steps = parse(path)?;
    let conflict = |key: &str| PathError {
        path: path.to_string(),
        reason: format!("{key} is not an object or array where the path needs one"),
    };
    let mut here = document;
    for (index, step) in steps.iter().enumerate() {
        let last = index + 1 == steps.len();
        let object = here.as_object_mut().ok_or_else(|| conflict(step.key))?;
        match &step.filter {
            None if last => {
                object.insert(step.key.to_string(), value);
                return Ok(());
            }
            None => {
                here = object
                    .entry(step.key)
                    .or_insert_with(|| Json::Object(Map::new()));
            }
            Some((sub, wanted)) => {
                let array = object
                    .entry(step.key)
                    .or_insert_with(|| Json::Array(Vec::new()))
                    .as_array_mut()
                    .ok_or_else(|| conflict(step.key))?;
                let position = match array.iter().position(|e| matches(e, sub, wanted)) {
                    Some(position) => position,
                    None => {
                        let mut element = Map::new();
                        element.insert(sub.to_string(), Json::from(wanted.as_str()));
                        array.push(Json::Object(element));
                        array.len() - 1
                    }
                };
                if last {
                    array[position] = value;
                    return Ok(());
                }
                here = &mut array[position];
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extension_attributes_are_members_of_their_urn() {
        let mut user = json!({"userName": "ada"});
        let path = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value";
        set(&mut user, path, json!("m-1")).unwrap();
        assert_eq!(
            user["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"]["value"],
            "m-1"
        );
        assert_eq!(get(&user, path), Some(&json!("m-1")));
    }

    #[test]
    fn a_filtered_element_is_found_in_any_case_and_kept_in_place() {
        let mut user =
            json!({"emails": [{"type": "home", "value": "h@x"}, {"type": "Work", "value": "old"}]});
        set(&mut user, r#"emails[type eq "work"].value"#, json!("new")).unwrap();
        assert_eq!(user["emails"][1], json!({"type": "Work", "value": "new"}));
        assert_eq!(user["emails"].as_array().map(Vec::len), Some(2));
        assert_eq!(get(&user, r#"emails[type eq "other"].value"#), None);
    }

    #[test]
    fn bad_paths_say_why() {
        let mut doc = json!({"name": "flat"});
        for (path, reason) in [
            ("", "an empty path"),
            ("urn:x:y:", "no attribute after the URN"),
            ("emails[type eq \"work].value", "not closed"),
            ("name.givenName", "not an object"),
            ("emails[type ne \"x\"].value", "only `[sub eq"),
            ("emails[type eq work].value", "must be quoted"),
            ("a..b", "empty attribute name"),
            ("a.", "ends with a dot"),
        ] {
            let error = set(&mut doc, path, json!(1)).unwrap_err();
            assert!(error.to_string().contains(reason), "{path}: {error}");
        }
    }

    #[test]
    fn filter_values_may_hold_brackets_colons_and_quotes() {
        let mut user = json!({});
        let path = r#"urn:a:b:User:emails[type eq "x]:\"y"].value"#;
        set(&mut user, path, json!("v")).unwrap();
        assert_eq!(
            user["urn:a:b:User"]["emails"][0],
            json!({"type": "x]:\"y", "value": "v"})
        );
        assert_eq!(get(&user, path), Some(&json!("v")));
    }

    #[test]
    fn values_round_trip_through_json() {
        for value in [
            Value::Null,
            Value::Text("a".into()),
            Value::Boolean(true),
            Value::Integer(-3),
            Value::TextList(vec!["a".into(), "b".into()]),
        ] {
            assert_eq!(from_json(&to_json(&value)), value);
        }
        assert_eq!(from_json(&json!(1.5)), Value::Text("1.5".into()));
    }
}
