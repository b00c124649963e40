//! SCIM 2.0 on the wire (RFC 7643, 7644): resources to and from the
//! contract's attributes, PATCH operations, filters, list responses, the
//! service provider's configuration and `/Bulk`. Pure: no requests here,
//! so that each rule is a unit test.

use provisioner_connector::json::{self, PathError};
use provisioner_connector::{Attribute, StoreError, StoredRecord, Value};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// SCIM's media type; servers accept `application/json` as well.
pub const MEDIA_TYPE: &str = "application/scim+json";

/// What the service provider says it supports (RFC 7643 §5). A member
/// that is missing reads as unsupported.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Features {
    pub patch: Supported,
    pub bulk: BulkSupport,
    pub filter: FilterSupport,
    pub etag: Supported,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Supported {
    #[serde(deserialize_with = "lenient_bool")]
    pub supported: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BulkSupport {
    #[serde(deserialize_with = "lenient_bool")]
    pub supported: bool,
    pub max_operations: u32,
    pub max_payload_size: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FilterSupport {
    #[serde(deserialize_with = "lenient_bool")]
    pub supported: bool,
    pub max_results: u32,
}

/// Some providers write booleans as strings (`"True"`); read both.
fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match Json::deserialize(d)? {
        Json::Bool(flag) => flag,
        Json::String(text) => text.eq_ignore_ascii_case("true"),
        _ => false,
    })
}

/// A page of `GET /Users` or `/Groups` (RFC 7644 §3.4.2).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse {
    #[serde(default)]
    pub total_results: u64,
    #[serde(default, rename = "Resources")]
    pub resources: Vec<Json>,
    #[serde(default)]
    pub start_index: Option<u64>,
}

impl ListResponse {
    /// The `startIndex` of the page after this one, if there is one.
    pub fn next_start(&self, asked_start: u64) -> Option<u64> {
        let start = self.start_index.unwrap_or(asked_start).max(1);
        let next = start + self.resources.len() as u64;
        (!self.resources.is_empty() && next <= self.total_results).then_some(next)
    }
}

/// A value quoted for a filter: `"` and `\` escaped (RFC 7644 §3.4.2.2
/// takes JSON string syntax).
pub fn quote(value: &str) -> String {
    Json::from(value).to_string()
}

/// `attribute eq "a" or attribute eq "b"`.
pub fn any_of(attribute: &str, values: &[String]) -> String {
    values
        .iter()
        .map(|value| format!("{attribute} eq {}", quote(value)))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The resource's id and version (`meta.version`), which every answer
/// about a resource carries.
pub fn id_and_version(resource: &Json) -> Result<(String, Option<String>), StoreError> {
    let id = resource
        .get("id")
        .and_then(Json::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            StoreError::protocol("the service provider answered a resource without an id")
        })?;
    let version = resource
        .pointer("/meta/version")
        .and_then(Json::as_str)
        .map(String::from);
    Ok((id.to_string(), version))
}

/// A new user: the attributes at their paths, active, with the schemas
/// they use. Unset attributes are left out, as a new resource has none.
pub fn new_user(attributes: &[Attribute]) -> Result<Json, PathError> {
    let set: Vec<Attribute> = attributes
        .iter()
        .filter(|a| a.value != Value::Null)
        .cloned()
        .collect();
    let mut user = json::document(&set)?;
    if let Json::Object(members) = &mut user {
        members.insert("active".into(), Json::Bool(true));
        members.insert("schemas".into(), schemas_of(members));
    }
    Ok(user)
}

/// The schemas a user document uses: the core one, and the enterprise
/// extension when it has any of its attributes.
fn schemas_of(members: &Map<String, Json>) -> Json {
    let mut schemas = vec![USER];
    if members.contains_key(ENTERPRISE) {
        schemas.push(ENTERPRISE);
    }
    json!(schemas)
}

/// A PATCH request (RFC 7644 §3.5.2) that writes `attributes` and, if
/// given, `active`: one `replace` per attribute with a value, one
/// `remove` per attribute without.
pub fn patch(attributes: &[Attribute], active: Option<bool>) -> Json {
    let mut operations: Vec<Json> = attributes
        .iter()
        .map(|a| match &a.value {
            Value::Null => json!({ "op": "remove", "path": a.name }),
            value => json!({ "op": "replace", "path": a.name, "value": json::to_json(value) }),
        })
        .collect();
    if let Some(active) = active {
        operations.push(json!({ "op": "replace", "path": "active", "value": active }));
    }
    json!({ "schemas": [PATCH_OP], "Operations": operations })
}

/// `resource` with `attributes` written and, if given, `active`: the body
/// of a PUT, for a provider without PATCH. Read-only members are left for
/// the provider to ignore, as RFC 7644 §3.5.1 asks.
pub fn replaced(
    mut resource: Json,
    attributes: &[Attribute],
    active: Option<bool>,
) -> Result<Json, PathError> {
    for attribute in attributes {
        json::set(
            &mut resource,
            &attribute.name,
            json::to_json(&attribute.value),
        )?;
    }
    if let Json::Object(members) = &mut resource {
        if let Some(active) = active {
            members.insert("active".into(), Json::Bool(active));
        }
        let schemas = schemas_of(members);
        members.insert("schemas".into(), schemas);
    }
    Ok(resource)
}

/// A user as the contract's attributes, each named by the path a mapping
/// would write it at: `userName`, `name.givenName`,
/// `emails[type eq "work"].value`, the enterprise extension's
/// `urn:…:User:department`, `active`. Read-only and structural members
/// (`id`, `meta`, `schemas`, `groups`) are not attributes.
pub fn record(resource: &Json) -> Result<StoredRecord, StoreError> {
    let (id, version) = id_and_version(resource)?;
    let mut attributes = Vec::new();
    if let Json::Object(members) = resource {
        flatten(members, "", &mut attributes);
    }
    Ok(StoredRecord {
        id,
        attributes,
        version,
    })
}

fn flatten(members: &Map<String, Json>, prefix: &str, out: &mut Vec<Attribute>) {
    let push = |out: &mut Vec<Attribute>, name: String, value: &Json| {
        out.push(Attribute {
            name,
            value: json::from_json(value),
        })
    };
    for (key, value) in members {
        if prefix.is_empty() && matches!(key.as_str(), "id" | "meta" | "schemas" | "groups") {
            continue;
        }
        let name = format!("{prefix}{key}");
        match value {
            Json::Object(inner) if key.starts_with("urn:") => {
                flatten(inner, &format!("{name}:"), out);
            }
            Json::Object(inner) => {
                for (sub, value) in inner.iter().filter(|(_, v)| !v.is_object()) {
                    push(out, format!("{name}.{sub}"), value);
                }
            }
            Json::Array(items) if !items.is_empty() && items.iter().all(Json::is_object) => {
                for item in items {
                    let Some(kind) = item.get("type").and_then(Json::as_str) else {
                        continue;
                    };
                    let Json::Object(item) = item else { continue };
                    for (sub, value) in item.iter().filter(|(k, v)| *k != "type" && !v.is_object())
                    {
                        push(out, format!("{name}[type eq {}].{sub}", quote(kind)), value);
                    }
                }
            }
            value => push(out, name, value),
        }
    }
}

/// One operation of a `/Bulk` request (RFC 7644 §3.7).
#[derive(Debug, Clone, PartialEq)]
pub struct BulkOperation {
    pub method: &'static str,
    /// Relative to the SCIM base: `/Users`, `/Users/{id}`.
    pub path: String,
    pub data: Option<Json>,
    pub version: Option<String>,
}

/// The request for `operations`, each with the bulk id `b<index>`, and
/// no `failOnErrors`: one failure must not stop the others.
pub fn bulk_request(operations: &[BulkOperation]) -> Json {
    let operations: Vec<Json> = operations
        .iter()
        .enumerate()
        .map(|(index, op)| {
            let mut out =
                json!({ "method": op.method, "path": op.path, "bulkId": format!("b{index}") });
            if let Some(data) = &op.data {
                out["data"] = data.clone();
            }
            if let Some(version) = &op.version {
                out["version"] = Json::from(version.as_str());
            }
            out
        })
        .collect();
    json!({ "schemas": [BULK_REQUEST], "Operations": operations })
}

/// What became of each of `count` bulk operations: the resource's id and
/// version, or the error its own status and body say. Answers are paired
/// by bulk id, and by position where a provider leaves the id out.
pub fn bulk_results(
    response: &Json,
    count: usize,
) -> Vec<Result<(String, Option<String>), StoreError>> {
    let answers = response
        .get("Operations")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    let mut slots: Vec<Option<&Json>> = vec![None; count];
    for (position, answer) in answers.iter().enumerate() {
        let index = answer
            .get("bulkId")
            .and_then(Json::as_str)
            .and_then(|id| id.strip_prefix('b'))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(position);
        if let Some(slot) = slots.get_mut(index) {
            *slot = Some(answer);
        }
    }
    slots
        .into_iter()
        .map(|answer| {
            let answer = answer.ok_or_else(|| {
                StoreError::protocol("the bulk response has no answer for an operation")
            })?;
            bulk_result(answer)
        })
        .collect()
}

fn bulk_result(answer: &Json) -> Result<(String, Option<String>), StoreError> {
    let status = match answer.get("status") {
        Some(Json::String(text)) => text.trim().parse::<u16>().ok(),
        Some(Json::Number(number)) => number.as_u64().and_then(|n| u16::try_from(n).ok()),
        // RFC 7644's own examples nest it: `"status": {"code": "201"}`.
        Some(Json::Object(object)) => object.get("code").and_then(|c| {
            c.as_str()
                .and_then(|t| t.parse().ok())
                .or(c.as_u64().and_then(|n| u16::try_from(n).ok()))
        }),
        _ => None,
    }
    .ok_or_else(|| StoreError::protocol("a bulk answer without a status"))?;
    let body = answer.get("response").cloned().unwrap_or(Json::Null);
    if let Some(error) = provisioner_connector::http::classify_status(status, &body, None) {
        return Err(error);
    }
    let id = body
        .get("id")
        .and_then(Json::as_str)
        .map(String::from)
        .or_else(|| {
            answer
                .get("location")
                .and_then(Json::as_str)
                .and_then(|l| l.trim_end_matches('/').rsplit('/').next())
                .map(String::from)
        })
        .unwrap_or_default();
    let version = answer
        .get("version")
        .and_then(Json::as_str)
        .or_else(|| body.pointer("/meta/version").and_then(Json::as_str))
        .map(String::from);
    Ok((id, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(name: &str, value: &str) -> Attribute {
        Attribute {
            name: name.into(),
            value: Value::Text(value.into()),
        }
    }

    #[test]
    fn a_new_user_has_its_schemas_and_no_unset_attribute() {
        let user = new_user(&[
            text("userName", "ada@example.com"),
            text(r#"emails[type eq "work"].value"#, "ada@example.com"),
            text(&format!("{ENTERPRISE}:department"), "Research"),
            Attribute {
                name: "title".into(),
                value: Value::Null,
            },
        ])
        .unwrap();
        assert_eq!(user["schemas"], json!([USER, ENTERPRISE]));
        assert_eq!(user["active"], json!(true));
        assert_eq!(
            user["emails"],
            json!([{"type": "work", "value": "ada@example.com"}])
        );
        assert_eq!(user[ENTERPRISE]["department"], json!("Research"));
        assert!(user.get("title").is_none(), "{user}");
    }

    #[test]
    fn a_record_reads_back_at_the_paths_mappings_write() {
        let user = json!({
            "schemas": [USER, ENTERPRISE],
            "id": "u1",
            "meta": {"version": "W/\"3\""},
            "userName": "ada@example.com",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"type": "work", "value": "ada@example.com", "primary": true}, {"value": "untyped@x"}],
            "active": false,
            "groups": [{"value": "g1"}],
            ENTERPRISE: {"department": "Research", "manager": {"value": "u0"}},
        });
        let record = record(&user).unwrap();
        assert_eq!(
            (record.id.as_str(), record.version.as_deref()),
            ("u1", Some("W/\"3\""))
        );
        let get = |name: &str| {
            record
                .attributes
                .iter()
                .find(|a| a.name == name)
                .map(|a| a.value.clone())
        };
        assert_eq!(get("userName"), Some(Value::Text("ada@example.com".into())));
        assert_eq!(get("name.givenName"), Some(Value::Text("Ada".into())));
        assert_eq!(
            get(r#"emails[type eq "work"].value"#),
            Some(Value::Text("ada@example.com".into()))
        );
        assert_eq!(
            get(r#"emails[type eq "work"].primary"#),
            Some(Value::Boolean(true))
        );
        assert_eq!(get("active"), Some(Value::Boolean(false)));
        assert_eq!(
            get(&format!("{ENTERPRISE}:department")),
            Some(Value::Text("Research".into()))
        );
        assert_eq!(
            get(&format!("{ENTERPRISE}:manager.value")),
            Some(Value::Text("u0".into()))
        );
        for hidden in ["id", "meta", "schemas", "groups"] {
            assert!(get(hidden).is_none(), "{hidden} is not an attribute");
        }
    }

    #[test]
    fn a_patch_replaces_what_has_a_value_and_removes_what_has_none() {
        let body = patch(
            &[
                text("title", "Countess"),
                Attribute {
                    name: "nickName".into(),
                    value: Value::Null,
                },
            ],
            Some(false),
        );
        assert_eq!(
            body,
            json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "replace", "path": "title", "value": "Countess"},
                {"op": "remove", "path": "nickName"},
                {"op": "replace", "path": "active", "value": false},
            ]})
        );
    }

    #[test]
    fn filters_quote_what_would_break_them() {
        assert_eq!(
            any_of("userName", &["a\"b".into(), "c\\d".into()]),
            r#"userName eq "a\"b" or userName eq "c\\d""#
        );
    }

    #[test]
    fn bulk_answers_pair_by_bulk_id_and_carry_their_own_errors() {
        let response = json!({"Operations": [
            {"bulkId": "b1", "method": "DELETE", "status": "204"},
            {"bulkId": "b0", "method": "POST", "status": "201",
             "location": "https://x/v2/Users/u9", "version": "W/\"1\""},
            {"bulkId": "b2", "method": "POST", "status": {"code": "409"},
             "response": {"scimType": "uniqueness", "detail": "taken", "status": "409"}},
        ]});
        let results = bulk_results(&response, 4);
        assert_eq!(results[0], Ok(("u9".into(), Some("W/\"1\"".into()))));
        assert!(results[1].is_ok());
        match &results[2] {
            Err(StoreError::Rejected(r)) => assert_eq!(
                (r.code.as_str(), r.message.as_str()),
                ("uniqueness", "taken")
            ),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&results[3], Err(StoreError::Transient(_))),
            "{:?}",
            results[3]
        );
    }

    #[test]
    fn features_read_string_booleans_and_default_to_unsupported() {
        let features: Features = serde_json::from_value(json!({
            "patch": {"supported": "True"},
            "bulk": {"supported": true, "maxOperations": 10, "maxPayloadSize": 1000},
        }))
        .unwrap();
        assert!(features.patch.supported && features.bulk.supported);
        assert_eq!(features.bulk.max_operations, 10);
        assert!(!features.filter.supported && !features.etag.supported);
    }

    #[test]
    fn paging_stops_at_the_total() {
        let page = |start: u64, n: usize, total: u64| ListResponse {
            total_results: total,
            resources: vec![json!({}); n],
            start_index: Some(start),
        };
        assert_eq!(page(1, 2, 5).next_start(1), Some(3));
        assert_eq!(page(5, 1, 5).next_start(5), None);
        assert_eq!(page(1, 0, 5).next_start(1), None);
    }
}
