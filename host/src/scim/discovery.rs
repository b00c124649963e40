//! Discovery (RFC 7644 §4): what this service provider supports, said
//! exactly, since identity providers configure themselves from it.

use serde_json::{Value, json};

use super::group::GROUP;
use super::user::{DIRECTORY, ENTERPRISE, USER};
use crate::directory::AttributeSchema;

const SPC: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// The most resources one page returns.
pub const MAX_RESULTS: usize = 1000;
/// The largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;

pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SPC],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A token from [scim] tokens in provisioner.toml, as Authorization: Bearer",
            "primary": true,
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
    })
}

pub fn resource_types(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": [RESOURCE_TYPE],
            "id": "User", "name": "User", "endpoint": "/Users",
            "description": "A person in the directory",
            "schema": USER,
            "schemaExtensions": [
                {"schema": ENTERPRISE, "required": false},
                {"schema": DIRECTORY, "required": false},
            ],
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User")},
        }),
        json!({
            "schemas": [RESOURCE_TYPE],
            "id": "Group", "name": "Group", "endpoint": "/Groups",
            "description": "A directory group; rules select people by it",
            "schema": GROUP,
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group")},
        }),
    ]
}

fn attribute(name: &str, kind: &str, description: &str) -> Value {
    json!({
        "name": name, "type": kind, "multiValued": false, "description": description,
        "required": false, "caseExact": false, "mutability": "readWrite",
        "returned": "default", "uniqueness": "none",
    })
}

fn complex(name: &str, multi: bool, description: &str, subs: Vec<Value>) -> Value {
    let mut value = attribute(name, "complex", description);
    value["multiValued"] = multi.into();
    value["subAttributes"] = Value::Array(subs);
    value
}

/// Sub-attributes: `primary` is a boolean and `$ref` a reference, as
/// RFC 7643 §2.4 has them; the rest are strings.
fn strings(names: &[&str]) -> Vec<Value> {
    names
        .iter()
        .map(|n| match *n {
            "primary" => attribute(n, "boolean", n),
            "$ref" => {
                let mut reference = attribute(n, "reference", n);
                reference["referenceTypes"] = json!(["User", "Group"]);
                reference["caseExact"] = true.into();
                reference
            }
            _ => attribute(n, "string", n),
        })
        .collect()
}

fn user_schema() -> Value {
    let mut user_name = attribute("userName", "string", "Unique, compared without case");
    user_name["required"] = true.into();
    user_name["uniqueness"] = "server".into();
    let mut id = attribute("id", "string", "Assigned by the directory");
    id["mutability"] = "readOnly".into();
    id["returned"] = "always".into();
    id["caseExact"] = true.into();
    let mut external_id = attribute("externalId", "string", "The client's id");
    external_id["caseExact"] = true.into();
    let mut groups = complex(
        "groups",
        true,
        "The person's groups; change them through /Groups",
        strings(&["value", "display", "$ref", "type"]),
    );
    groups["mutability"] = "readOnly".into();
    let mut attributes = vec![id, external_id, user_name];
    attributes.extend(strings(&["displayName", "title", "locale", "timezone"]));
    attributes.push(complex(
        "name",
        false,
        "givenName, familyName and middleName are kept; formatted is derived",
        strings(&["givenName", "familyName", "middleName", "formatted"]),
    ));
    attributes.push(attribute(
        "active",
        "boolean",
        "The directory's enabled flag",
    ));
    attributes.push(complex(
        "emails",
        true,
        "One, the primary or work one",
        strings(&["value", "type", "primary"]),
    ));
    attributes.push(complex(
        "phoneNumbers",
        true,
        "A work and a mobile one, and one of each type declared as TYPE_phone",
        strings(&["value", "type"]),
    ));
    attributes.push(complex(
        "addresses",
        true,
        "One",
        strings(&[
            "streetAddress",
            "locality",
            "region",
            "postalCode",
            "country",
            "formatted",
            "type",
            "primary",
        ]),
    ));
    attributes.push(groups);
    json!({"schemas": [SCHEMA], "id": USER, "name": "User", "description": "A person", "attributes": attributes})
}

fn enterprise_schema() -> Value {
    let mut attributes = strings(&["employeeNumber", "department", "organization"]);
    attributes.push(complex(
        "manager",
        false,
        "Kept when manager is declared under [directory] attributes",
        strings(&["value"]),
    ));
    json!({"schemas": [SCHEMA], "id": ENTERPRISE, "name": "EnterpriseUser", "description": "Enterprise User", "attributes": attributes})
}

/// The attributes declared under `[directory] attributes`.
fn directory_schema(schema: &AttributeSchema) -> Value {
    let standard: std::collections::BTreeSet<&str> = crate::directory::STANDARD_ATTRIBUTES
        .iter()
        .copied()
        .collect();
    let attributes: Vec<Value> = schema
        .names()
        .filter(|n| !standard.contains(n))
        .map(|n| attribute(n, "string", &format!("[directory] attribute {n}")))
        .collect();
    json!({"schemas": [SCHEMA], "id": DIRECTORY, "name": "DirectoryUser", "description": "Attributes declared under [directory] attributes", "attributes": attributes})
}

fn group_schema() -> Value {
    let mut display_name = attribute(
        "displayName",
        "string",
        "The group's name, which rules select by",
    );
    display_name["required"] = true.into();
    display_name["uniqueness"] = "server".into();
    let mut members = complex(
        "members",
        true,
        "Users",
        strings(&["value", "display", "$ref", "type"]),
    );
    members["returned"] = "default".into();
    json!({"schemas": [SCHEMA], "id": GROUP, "name": "Group", "description": "A directory group", "attributes": [display_name, attribute("externalId", "string", "The client's id"), members]})
}

pub fn schemas(schema: &AttributeSchema, base: &str) -> Vec<Value> {
    let mut all = vec![
        user_schema(),
        enterprise_schema(),
        directory_schema(schema),
        group_schema(),
    ];
    for s in &mut all {
        let id = s["id"].as_str().unwrap_or_default().to_string();
        s["meta"] = json!({"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")});
    }
    all
}

/// A list response over `resources`, all of them on one page.
pub fn list(resources: Vec<Value>) -> Value {
    let total = resources.len();
    json!({"schemas": [LIST], "totalResults": total, "startIndex": 1, "itemsPerPage": total, "Resources": resources})
}

/// A page of a list response: `total` matched, this page from `start`.
pub fn page(resources: Vec<Value>, total: usize, start: usize) -> Value {
    json!({"schemas": [LIST], "totalResults": total, "startIndex": start, "itemsPerPage": resources.len(), "Resources": resources})
}
