//! A directory person as a SCIM User (RFC 7643 §4.1, with the enterprise
//! extension of §4.3), and a User back as a person.
//!
//! The directory is flat: one value per attribute. So a User maps onto it
//! one way, and what cannot be kept is refused rather than dropped:
//!
//! | SCIM | directory |
//! |---|---|
//! | `userName`, `externalId`, `displayName`, `title`, `locale`, `timezone` | `user_name`, `external_id`, `display_name`, `title`, `locale`, `timezone` |
//! | `name.givenName`, `.familyName`, `.middleName` | `given_name`, `family_name`, `middle_name` |
//! | the one email (`primary`, else `work`) | `email` |
//! | `phoneNumbers` of type `work` and `mobile` | `phone`, `mobile_phone` |
//! | the one address: `streetAddress`, `locality`, `region`, `postalCode`, `country` | `street`, `city`, `region`, `postal_code`, `country` |
//! | `active` | the enabled flag |
//! | enterprise `employeeNumber`, `department`, `organization` | `employee_number`, `department`, `company` |
//! | `phoneNumbers` of another type (Entra ID's `fax`) | a declared `TYPE_phone` (`fax_phone`) |
//! | an attribute declared under `[directory] attributes`, by its camelCase or snake_case name, top-level or in either extension (`costCenter` for `cost_center`; enterprise `manager`, its `value` or the id alone) | that attribute, read back under [`DIRECTORY`] by its own name |
//!
//! `name.formatted` and an address's `formatted` are derived values and
//! are ignored; `id`, `meta` and `groups` are read-only and ignored in a
//! request, as RFC 7643 §2.2 says. Anything else is refused with
//! `invalidValue`, naming it and saying how to declare it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::error::ScimError;
use crate::directory::{AttributeSchema, Person};

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The directory's own attributes beyond the standard ones, declared
/// under `[directory] attributes`.
pub const DIRECTORY: &str = "urn:provisioner:params:scim:schemas:extension:directory:2.0:User";

/// Core attributes with one string value each.
const SIMPLE: &[(&str, &str)] = &[
    ("userName", "user_name"),
    ("externalId", "external_id"),
    ("displayName", "display_name"),
    ("title", "title"),
    ("locale", "locale"),
    ("timezone", "timezone"),
];
const NAME: &[(&str, &str)] = &[
    ("givenName", "given_name"),
    ("familyName", "family_name"),
    ("middleName", "middle_name"),
];
const ADDRESS: &[(&str, &str)] = &[
    ("streetAddress", "street"),
    ("locality", "city"),
    ("region", "region"),
    ("postalCode", "postal_code"),
    ("country", "country"),
];
const PHONES: &[(&str, &str)] = &[("work", "phone"), ("mobile", "mobile_phone")];
const ENTERPRISE_ATTRIBUTES: &[(&str, &str)] = &[
    ("employeeNumber", "employee_number"),
    ("department", "department"),
    ("organization", "company"),
];

/// Directory attributes with a place in the User's core or enterprise
/// schema; every other declared attribute goes under [`DIRECTORY`].
fn mapped() -> BTreeSet<&'static str> {
    SIMPLE
        .iter()
        .chain(NAME)
        .chain(ADDRESS)
        .chain(PHONES)
        .chain(ENTERPRISE_ATTRIBUTES)
        .map(|(_, attribute)| *attribute)
        .chain(["email"])
        .collect()
}

/// A phone type that names an attribute: `fax`, `home`, `pager`.
fn is_phone_type(kind: &str) -> bool {
    !kind.is_empty() && kind.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The phone type a declared attribute `{type}_phone` holds, if it is one.
fn phone_type(attribute: &str) -> Option<&str> {
    attribute
        .strip_suffix("_phone")
        .filter(|kind| is_phone_type(kind) && *kind != "mobile")
}

/// `costCenter` as `cost_center`.
pub fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if !out.is_empty() {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `cost_center` as `costCenter`.
#[cfg(test)]
fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// What a User says of a person: their attributes and enabled flag.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserFields {
    pub attributes: BTreeMap<String, String>,
    pub active: Option<bool>,
}

/// The person as a User. `groups` are the (id, name) of their groups;
/// `last_modified` the time of their last change (RFC 3339), if known.
pub fn to_scim(
    person: &Person,
    groups: &[(String, String)],
    base: &str,
    last_modified: Option<&str>,
) -> Value {
    let attributes = &person.attributes;
    let get = |name: &str| attributes.get(name).map(|v| Value::String(v.clone()));
    let mut user = Map::new();
    let mut schemas = vec![Value::from(USER)];
    user.insert("id".into(), person.id.clone().into());
    for (scim, attribute) in SIMPLE {
        if let Some(value) = get(attribute) {
            user.insert((*scim).into(), value);
        }
    }
    if !user.contains_key("userName") {
        user.insert("userName".into(), standing_user_name(person).into());
    }
    let name: Map<String, Value> = NAME
        .iter()
        .filter_map(|(scim, attribute)| Some(((*scim).to_string(), get(attribute)?)))
        .collect();
    if !name.is_empty() {
        user.insert("name".into(), Value::Object(name));
    }
    user.insert("active".into(), person.enabled.into());
    if let Some(email) = get("email") {
        user.insert(
            "emails".into(),
            json!([{ "value": email, "type": "work", "primary": true }]),
        );
    }
    let mut phones: Vec<Value> = PHONES
        .iter()
        .filter_map(|(kind, attribute)| Some(json!({ "value": get(attribute)?, "type": kind })))
        .collect();
    let known = mapped();
    phones.extend(
        attributes
            .iter()
            .filter(|(name, _)| !known.contains(name.as_str()))
            .filter_map(|(name, value)| Some(json!({ "value": value, "type": phone_type(name)? }))),
    );
    if !phones.is_empty() {
        user.insert("phoneNumbers".into(), Value::Array(phones));
    }
    let mut address: Map<String, Value> = ADDRESS
        .iter()
        .filter_map(|(scim, attribute)| Some(((*scim).to_string(), get(attribute)?)))
        .collect();
    if !address.is_empty() {
        address.insert("type".into(), "work".into());
        address.insert("primary".into(), true.into());
        user.insert("addresses".into(), json!([address]));
    }
    if !groups.is_empty() {
        let groups: Vec<Value> = groups
            .iter()
            .map(|(id, name)| {
                json!({ "value": id, "display": name, "$ref": super::location(base, "Groups", id), "type": "direct" })
            })
            .collect();
        user.insert("groups".into(), Value::Array(groups));
    }
    let enterprise: Map<String, Value> = ENTERPRISE_ATTRIBUTES
        .iter()
        .filter_map(|(scim, attribute)| Some(((*scim).to_string(), get(attribute)?)))
        .collect();
    if !enterprise.is_empty() {
        schemas.push(ENTERPRISE.into());
        user.insert(ENTERPRISE.into(), Value::Object(enterprise));
    }
    // Under the directory's own extension by their own names, so that any
    // declared name reads back as itself.
    let extra: Map<String, Value> = attributes
        .iter()
        .filter(|(name, _)| !known.contains(name.as_str()) && phone_type(name).is_none())
        .map(|(name, value)| (name.clone(), Value::String(value.clone())))
        .collect();
    if !extra.is_empty() {
        schemas.push(DIRECTORY.into());
        user.insert(DIRECTORY.into(), Value::Object(extra));
    }
    user.insert("schemas".into(), Value::Array(schemas));
    let mut meta = json!({
        "resourceType": "User",
        "version": version_tag(person.changed_seq),
        "location": super::location(base, "Users", &person.id),
    });
    if let Some(at) = last_modified {
        meta["lastModified"] = at.into();
    }
    user.insert("meta".into(), meta);
    Value::Object(user)
}

/// The userName of a person who has none of their own (imported from a
/// file): their email, else their id. SCIM requires one on every User;
/// it is shown, not stored, until a client writes one.
pub fn standing_user_name(person: &Person) -> String {
    person
        .attributes
        .get("email")
        .cloned()
        .unwrap_or_else(|| person.id.clone())
}

/// The weak entity tag of a person at `seq`: it changes with every change.
pub fn version_tag(seq: i64) -> String {
    format!("W/\"{seq}\"")
}

pub(super) use super::filter::field;

/// A string value, or none for `null`; anything else is refused.
fn text(value: &Value, what: &str) -> Result<Option<String>, ScimError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(ScimError::invalid_value(format!(
            "{what} must be a string, not {}",
            kind(other)
        ))),
    }
}

/// A value that says nothing: null, or an empty string, array or object.
pub(super) fn empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `active`: a boolean, or the strings `"True"` and `"False"` that some
/// clients send.
pub fn boolean(value: &Value, what: &str) -> Result<Option<bool>, ScimError> {
    match value {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        other => Err(ScimError::invalid_value(format!(
            "{what} must be true or false, not {}",
            kind(other)
        ))),
    }
}

fn object<'a>(value: &'a Value, what: &str) -> Result<Option<&'a Map<String, Value>>, ScimError> {
    match value {
        Value::Null => Ok(None),
        Value::Object(map) => Ok(Some(map)),
        other => Err(ScimError::invalid_value(format!(
            "{what} must be an object, not {}",
            kind(other)
        ))),
    }
}

fn array<'a>(value: &'a Value, what: &str) -> Result<&'a [Value], ScimError> {
    match value {
        Value::Null => Ok(&[]),
        Value::Array(items) => Ok(items),
        other => Err(ScimError::invalid_value(format!(
            "{what} must be an array, not {}",
            kind(other)
        ))),
    }
}

/// Reads a User. `schema` says which attributes the directory knows;
/// nothing unknown is kept silently.
pub fn from_scim(user: &Value, schema: &AttributeSchema) -> Result<UserFields, ScimError> {
    let Value::Object(user) = user else {
        return Err(ScimError::bad(
            "invalidSyntax",
            "the body must be a JSON object (a SCIM User)",
        ));
    };
    check_schemas(user)?;
    let mut reader = Reader {
        schema,
        fields: UserFields::default(),
    };
    for (key, value) in user {
        reader.top(key, value)?;
    }
    Ok(reader.fields)
}

/// `schemas` must name the core User schema. Another schema may be listed
/// (Entra ID lists one of its own) as long as nothing comes under it: an
/// attribute under a schema this service provider does not serve is
/// refused where it is read.
fn check_schemas(user: &Map<String, Value>) -> Result<(), ScimError> {
    let Some(schemas) = field(user, "schemas") else {
        return Err(ScimError::bad(
            "invalidSyntax",
            format!("a User needs \"schemas\": [\"{USER}\"]"),
        ));
    };
    let schemas = array(schemas, "schemas")?;
    let mut core = false;
    for schema in schemas {
        let Value::String(schema) = schema else {
            return Err(ScimError::invalid_value("schemas must hold strings"));
        };
        if schema.eq_ignore_ascii_case(USER) {
            core = true;
        }
    }
    if !core {
        return Err(ScimError::bad(
            "invalidSyntax",
            format!("schemas must include {USER}"),
        ));
    }
    Ok(())
}

struct Reader<'a> {
    schema: &'a AttributeSchema,
    fields: UserFields,
}

impl Reader<'_> {
    fn set(&mut self, attribute: &str, value: Option<String>) {
        if let Some(value) = value {
            self.fields.attributes.insert(attribute.to_string(), value);
        }
    }

    /// One top-level attribute of a User.
    fn top(&mut self, key: &str, value: &Value) -> Result<(), ScimError> {
        let lower = key.to_ascii_lowercase();
        if let Some((scim, attribute)) = SIMPLE.iter().find(|(s, _)| s.eq_ignore_ascii_case(key)) {
            let value = text(value, scim)?;
            self.set(attribute, value);
            return Ok(());
        }
        match lower.as_str() {
            "schemas" | "id" | "meta" | "groups" => Ok(()),
            // Write-only, and the directory has no use for one: never
            // kept, never logged.
            "password" => Ok(()),
            "active" => {
                self.fields.active = boolean(value, "active")?;
                Ok(())
            }
            "name" => self.name(value),
            "emails" => self.emails(value),
            "phonenumbers" => self.phones(value),
            "addresses" => self.addresses(value),
            _ if lower == ENTERPRISE.to_ascii_lowercase() => self.extension(value, true),
            _ if lower == DIRECTORY.to_ascii_lowercase() => self.extension(value, false),
            _ if lower.starts_with("urn:") && !empty(value) => {
                Err(ScimError::invalid_value(format!(
                    "unknown schema {:?}; this service provider serves {USER}, {ENTERPRISE} and {DIRECTORY} (see /Schemas)",
                    crate::inert::inert(key)
                )))
            }
            _ => self.declared(key, value, "a User"),
        }
    }

    fn name(&mut self, value: &Value) -> Result<(), ScimError> {
        let Some(name) = object(value, "name")? else {
            return Ok(());
        };
        for (key, value) in name {
            if let Some((scim, attribute)) = NAME.iter().find(|(s, _)| s.eq_ignore_ascii_case(key))
            {
                self.set(attribute, text(value, &format!("name.{scim}"))?);
            } else if !key.eq_ignore_ascii_case("formatted") {
                self.declared(key, value, "name")?;
            }
        }
        Ok(())
    }

    /// The one email: the primary one, else the work one, else the only
    /// one. Two different addresses cannot be kept.
    fn emails(&mut self, value: &Value) -> Result<(), ScimError> {
        let emails = array(value, "emails")?;
        let mut values = BTreeSet::new();
        let mut chosen: Option<(u8, String)> = None;
        for email in emails {
            let Some(email) = object(email, "an email")? else {
                continue;
            };
            let Some(value) = field(email, "value")
                .map(|v| text(v, "emails.value"))
                .transpose()?
                .flatten()
            else {
                continue;
            };
            let primary = field(email, "primary")
                .map(|p| boolean(p, "emails.primary"))
                .transpose()?
                .flatten()
                .unwrap_or(false);
            let work = field(email, "type")
                .and_then(Value::as_str)
                .is_none_or(|t| t.eq_ignore_ascii_case("work"));
            let rank = if primary { 2 } else { u8::from(work) };
            values.insert(value.to_lowercase());
            if chosen.as_ref().is_none_or(|(r, _)| rank > *r) {
                chosen = Some((rank, value));
            }
        }
        if values.len() > 1 {
            return Err(ScimError::invalid_value(
                "the directory keeps one email per person; send only the primary (or work) one",
            ));
        }
        if let Some((_, email)) = chosen {
            self.set("email", Some(email));
        }
        Ok(())
    }

    fn phones(&mut self, value: &Value) -> Result<(), ScimError> {
        for phone in array(value, "phoneNumbers")? {
            let Some(phone) = object(phone, "a phone number")? else {
                continue;
            };
            let kind = field(phone, "type")
                .and_then(Value::as_str)
                .unwrap_or("work");
            let attribute = match PHONES.iter().find(|(k, _)| k.eq_ignore_ascii_case(kind)) {
                Some((_, attribute)) => attribute.to_string(),
                None => {
                    // Another type (Entra ID maps `fax`) is kept in a
                    // declared attribute of its own.
                    let attribute = format!("{}_phone", kind.to_ascii_lowercase());
                    if !self.schema.contains(&attribute) || !is_phone_type(kind) {
                        return Err(ScimError::invalid_value(format!(
                            "the directory keeps a work and a mobile phone number; declare {:?} under [directory] attributes to keep one of type {:?}",
                            crate::inert::inert(&attribute),
                            crate::inert::inert(kind)
                        )));
                    }
                    attribute
                }
            };
            if self.fields.attributes.contains_key(&attribute) {
                return Err(ScimError::invalid_value(format!(
                    "the directory keeps one {kind} phone number per person"
                )));
            }
            let value = field(phone, "value")
                .map(|v| text(v, "phoneNumbers.value"))
                .transpose()?
                .flatten();
            self.set(&attribute, value);
        }
        Ok(())
    }

    fn addresses(&mut self, value: &Value) -> Result<(), ScimError> {
        let addresses = array(value, "addresses")?;
        if addresses.len() > 1 {
            return Err(ScimError::invalid_value(
                "the directory keeps one address per person",
            ));
        }
        for address in addresses {
            let Some(address) = object(address, "an address")? else {
                continue;
            };
            for (key, value) in address {
                if let Some((scim, attribute)) =
                    ADDRESS.iter().find(|(s, _)| s.eq_ignore_ascii_case(key))
                {
                    self.set(attribute, text(value, &format!("addresses.{scim}"))?);
                } else if !["type", "primary", "formatted"]
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(key))
                {
                    return Err(ScimError::invalid_value(format!(
                        "addresses.{} is not kept by the directory",
                        crate::inert::inert(key)
                    )));
                }
            }
        }
        Ok(())
    }

    fn extension(&mut self, value: &Value, enterprise: bool) -> Result<(), ScimError> {
        let Some(extension) = object(value, "an extension")? else {
            return Ok(());
        };
        for (key, value) in extension {
            let known = enterprise
                .then(|| {
                    ENTERPRISE_ATTRIBUTES
                        .iter()
                        .find(|(s, _)| s.eq_ignore_ascii_case(key))
                })
                .flatten();
            match known {
                Some((scim, attribute)) => self.set(attribute, text(value, scim)?),
                // The manager is a complex attribute; its `value` is kept.
                None if enterprise && key.eq_ignore_ascii_case("manager") => {
                    // An object with a `value`, or (as Entra ID sends it)
                    // the id alone.
                    let manager = match value {
                        Value::String(_) => value.clone(),
                        _ => match object(value, "manager")? {
                            Some(manager) => {
                                field(manager, "value").cloned().unwrap_or(Value::Null)
                            }
                            None => Value::Null,
                        },
                    };
                    self.declared("manager", &manager, "the enterprise extension")?;
                }
                None => self.declared(key, value, "an extension")?,
            }
        }
        Ok(())
    }

    /// An attribute outside the mapping: kept if the directory declares
    /// it, by its snake_case name; else refused.
    fn declared(&mut self, key: &str, value: &Value, place: &str) -> Result<(), ScimError> {
        // Nothing to keep (Entra ID sends `"roles": []`), so nothing lost.
        if empty(value) {
            return Ok(());
        }
        let attribute = snake(key);
        let standard = mapped();
        if self.schema.contains(&attribute) && !standard.contains(attribute.as_str()) {
            let value = text(value, key)?;
            self.set(&attribute, value);
            return Ok(());
        }
        Err(ScimError::invalid_value(format!(
            "{place} attribute {:?} is not kept by the directory; declare {attribute:?} under [directory] attributes in provisioner.toml to keep it",
            crate::inert::inert(key)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> AttributeSchema {
        AttributeSchema::with_extra(["cost_center", "manager", "fax_phone", "line_2"]).unwrap()
    }

    #[test]
    fn entra_ids_default_mappings_read_into_declared_attributes() {
        let user = json!({
            "schemas": [USER], "userName": "a",
            "phoneNumbers": [{"type": "fax", "value": "+1 999"}, {"type": "work", "value": "+1 555"}],
            (ENTERPRISE): {"manager": "p0"},
            (DIRECTORY): {"line_2": "Flat 3"},
        });
        let fields = from_scim(&user, &schema()).unwrap();
        assert_eq!(fields.attributes["fax_phone"], "+1 999");
        assert_eq!(fields.attributes["manager"], "p0");
        assert_eq!(fields.attributes["line_2"], "Flat 3");
        let mut person = person(&[]);
        person.attributes = fields.attributes.clone();
        let back = to_scim(&person, &[], "https://h/scim/v2", None);
        assert_eq!(
            back["phoneNumbers"][1],
            json!({"type": "fax", "value": "+1 999"})
        );
        assert!(back[DIRECTORY].get("fax_phone").is_none(), "{back:#}");
        assert_eq!(
            from_scim(&back, &schema()).unwrap().attributes,
            fields.attributes
        );
        let pager = json!({"schemas": [USER], "userName": "a", "phoneNumbers": [{"type": "pager", "value": "1"}]});
        let error = from_scim(&pager, &schema()).unwrap_err();
        assert!(error.detail.contains("pager_phone"), "{error:?}");
    }

    fn person(attributes: &[(&str, &str)]) -> Person {
        Person {
            id: "p1".into(),
            enabled: true,
            population: None,
            groups: BTreeSet::new(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            deleted: false,
            changed_seq: 7,
        }
    }

    #[test]
    fn a_person_reads_back_as_the_user_that_made_them() {
        let user = json!({
            "schemas": [USER, ENTERPRISE],
            "userName": "ada@example.com",
            "externalId": "00u1",
            "name": {"givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada Lovelace"},
            "displayName": "Ada Lovelace",
            "active": true,
            "emails": [{"value": "ada@example.com", "type": "work", "primary": true}],
            "phoneNumbers": [{"value": "+1 555", "type": "work"}, {"value": "+1 556", "type": "mobile"}],
            "addresses": [{"type": "work", "locality": "London", "country": "GB"}],
            (ENTERPRISE): {"department": "Research", "employeeNumber": "42", "manager": {"value": "p0"}},
            "costCenter": "CC-1",
        });
        let fields = from_scim(&user, &schema()).unwrap();
        assert_eq!(fields.active, Some(true));
        let attributes = &fields.attributes;
        for (name, value) in [
            ("user_name", "ada@example.com"),
            ("external_id", "00u1"),
            ("given_name", "Ada"),
            ("email", "ada@example.com"),
            ("phone", "+1 555"),
            ("mobile_phone", "+1 556"),
            ("city", "London"),
            ("department", "Research"),
            ("employee_number", "42"),
            ("manager", "p0"),
            ("cost_center", "CC-1"),
        ] {
            assert_eq!(
                attributes.get(name).map(String::as_str),
                Some(value),
                "{name}"
            );
        }
        let mut person = person(&[]);
        person.attributes = fields.attributes.clone();
        let back = to_scim(
            &person,
            &[("g-1".into(), "staff".into())],
            "https://h/scim/v2",
            None,
        );
        assert_eq!(back["meta"]["version"], "W/\"7\"");
        assert_eq!(back["groups"][0]["display"], "staff");
        assert_eq!(back[DIRECTORY]["cost_center"], "CC-1");
        // What it wrote reads as the same person.
        assert_eq!(
            from_scim(&back, &schema()).unwrap().attributes,
            fields.attributes
        );
    }

    #[test]
    fn what_the_directory_cannot_keep_is_refused_by_name() {
        let refuse = |user: Value, says: &str| {
            let error = from_scim(&user, &schema()).unwrap_err();
            assert_eq!(error.scim_type, Some("invalidValue"), "{error:?}");
            assert!(error.detail.contains(says), "{says}: {error:?}");
        };
        refuse(
            json!({"schemas": [USER], "userName": "a", "nickName": "x"}),
            "nick_name",
        );
        refuse(
            json!({"schemas": [USER], "userName": "a", "emails": [{"value": "a@x"}, {"value": "b@x", "type": "home"}]}),
            "one email",
        );
        refuse(
            json!({"schemas": [USER, "urn:example:x"], "userName": "a", "urn:example:x": {"a": 1}}),
            "unknown schema",
        );
        refuse(
            json!({"schemas": [USER], "userName": ["a"]}),
            "must be a string",
        );
        refuse(
            json!({"schemas": [USER], "active": "maybe"}),
            "true or false",
        );
        let error = from_scim(&json!({"userName": "a"}), &schema()).unwrap_err();
        assert_eq!(error.scim_type, Some("invalidSyntax"));
    }

    #[test]
    fn what_says_nothing_is_accepted_and_a_password_is_never_kept() {
        let user = json!({"schemas": [USER, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/User"],
                          "userName": "a", "roles": [], "password": "hunter2-secret"});
        let fields = from_scim(&user, &schema()).unwrap();
        assert_eq!(fields.attributes.len(), 1, "{fields:?}");
        assert!(!format!("{fields:?}").contains("hunter2"));
    }

    #[test]
    fn names_compare_without_case_and_active_may_be_a_string() {
        let user = json!({"SCHEMAS": [USER], "UserName": "a", "Active": "False", "NAME": {"GIVENNAME": "A"}});
        let fields = from_scim(&user, &schema()).unwrap();
        assert_eq!(fields.active, Some(false));
        assert_eq!(fields.attributes["given_name"], "A");
        assert_eq!(fields.attributes["user_name"], "a");
    }

    #[test]
    fn snake_and_camel_case_are_each_others_inverse() {
        for (camel_case, snake_case) in [("costCenter", "cost_center"), ("badge", "badge")] {
            assert_eq!(snake(camel_case), snake_case);
            assert_eq!(camel(snake_case), camel_case);
        }
    }
}
