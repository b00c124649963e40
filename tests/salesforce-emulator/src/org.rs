//! The emulated org: object schemas, record ids, records and validation.
//!
//! Only what the connector touches is modelled, but that part answers as
//! Salesforce does: the same required fields, read-only fields, id prefixes
//! and checksums, error codes and messages.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

/// One field of an object.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub name: &'static str,
    pub required: bool,
    pub writable: bool,
}

const fn w(name: &'static str) -> Field {
    Field {
        name,
        required: false,
        writable: true,
    }
}

const fn req(name: &'static str) -> Field {
    Field {
        name,
        required: true,
        writable: true,
    }
}

const fn ro(name: &'static str) -> Field {
    Field {
        name,
        required: false,
        writable: false,
    }
}

/// One sObject type.
#[derive(Debug)]
pub(crate) struct SObjectType {
    pub name: &'static str,
    pub prefix: &'static str,
    pub fields: &'static [Field],
    pub creatable: bool,
    pub deletable: bool,
}

impl SObjectType {
    /// The canonical spelling of a field, compared case-insensitively as
    /// Salesforce does.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

const SYSTEM: [Field; 4] = [
    ro("Id"),
    ro("CreatedDate"),
    ro("LastModifiedDate"),
    ro("IsDeleted"),
];

macro_rules! fields {
    ($($field:expr),* $(,)?) => {
        &[SYSTEM[0], SYSTEM[1], SYSTEM[2], SYSTEM[3], $($field),*]
    };
}

pub(crate) static TYPES: &[SObjectType] = &[
    SObjectType {
        name: "Lead",
        prefix: "00Q",
        fields: fields![
            w("FirstName"),
            req("LastName"),
            req("Company"),
            w("Email"),
            w("Phone"),
            w("MobilePhone"),
            w("Title"),
            w("Street"),
            w("City"),
            w("State"),
            w("PostalCode"),
            w("Country"),
            w("LeadSource"),
            w("Description"),
            w("Status"),
            ro("IsConverted"),
            ro("ConvertedContactId"),
            ro("ConvertedAccountId"),
            ro("ConvertedDate"),
        ],
        creatable: true,
        deletable: true,
    },
    SObjectType {
        name: "Contact",
        prefix: "003",
        fields: fields![
            w("FirstName"),
            req("LastName"),
            w("Email"),
            w("Phone"),
            w("MobilePhone"),
            w("Title"),
            w("Department"),
            w("MailingStreet"),
            w("MailingCity"),
            w("MailingState"),
            w("MailingPostalCode"),
            w("MailingCountry"),
            w("AccountId"),
            w("LeadSource"),
            w("Description"),
        ],
        creatable: true,
        deletable: true,
    },
    SObjectType {
        name: "Account",
        prefix: "001",
        fields: fields![
            req("Name"),
            w("Phone"),
            w("Website"),
            w("Industry"),
            w("BillingCity"),
            w("BillingCountry"),
        ],
        creatable: true,
        deletable: true,
    },
    SObjectType {
        name: "User",
        prefix: "005",
        fields: fields![
            req("Username"),
            req("LastName"),
            w("FirstName"),
            req("Email"),
            req("Alias"),
            req("TimeZoneSidKey"),
            req("LocaleSidKey"),
            req("EmailEncodingKey"),
            req("ProfileId"),
            req("LanguageLocaleKey"),
            w("IsActive"),
        ],
        creatable: true,
        deletable: false,
    },
    SObjectType {
        name: "Organization",
        prefix: "00D",
        fields: fields![ro("Name"), ro("OrganizationType"), ro("InstanceName")],
        creatable: false,
        deletable: false,
    },
];

pub(crate) fn sobject(name: &str) -> Option<&'static SObjectType> {
    TYPES.iter().find(|t| t.name.eq_ignore_ascii_case(name))
}

pub(crate) fn sobject_of_id(id: &str) -> Option<&'static SObjectType> {
    TYPES.iter().find(|t| id.starts_with(t.prefix))
}

/// A Salesforce error, as an API answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SfError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub fields: Vec<String>,
}

impl SfError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> SfError {
        SfError {
            status,
            code: code.into(),
            message: message.into(),
            fields: Vec::new(),
        }
    }

    pub fn with_fields(mut self, fields: Vec<String>) -> SfError {
        self.fields = fields;
        self
    }

    /// The REST body: a JSON array of `{message, errorCode, fields?}`.
    pub fn rest_body(&self) -> Value {
        let mut error = serde_json::json!({ "message": self.message, "errorCode": self.code });
        if !self.fields.is_empty() {
            error["fields"] = Value::from(self.fields.clone());
        }
        Value::Array(vec![error])
    }

    /// One entry of a Collections result: `statusCode`, not `errorCode`.
    pub fn collection_error(&self) -> Value {
        serde_json::json!({
            "statusCode": self.code,
            "message": self.message,
            "fields": self.fields,
        })
    }
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The three characters Salesforce appends to a 15-character id: each
/// encodes which of five characters are upper case.
pub(crate) fn checksum(id15: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    id15.as_bytes()
        .chunks(5)
        .map(|chunk| {
            let bits = chunk
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_ascii_uppercase())
                .fold(0usize, |acc, (i, _)| acc | (1 << i));
            ALPHABET[bits] as char
        })
        .collect()
}

/// Normalises a 15- or 18-character id to 18 characters, or says why it
/// is malformed.
pub(crate) fn normalize_id(id: &str) -> Option<String> {
    let valid = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
    match id.len() {
        15 if valid(id) => Some(format!("{id}{}", checksum(id))),
        18 if valid(id) && checksum(&id[..15]) == id[15..] => Some(id.to_string()),
        _ => None,
    }
}

/// Records of every type, and the bookkeeping ids and conversions need.
#[derive(Debug, Default)]
pub(crate) struct Records {
    by_type: HashMap<&'static str, BTreeMap<String, Map<String, Value>>>,
    /// Live records' ids by type and lowercased `Email`: a lookup of a
    /// thousand Emails in a million-record org reads the records it
    /// names, as Salesforce's index on Email does, rather than all of them.
    by_email: HashMap<(&'static str, String), BTreeSet<String>>,
    deleted: HashMap<String, &'static str>,
    next: u64,
}

/// A record's Email as the index keys it.
fn email_key(record: &Map<String, Value>) -> Option<String> {
    record
        .get("Email")
        .and_then(Value::as_str)
        .map(str::to_lowercase)
}

fn timestamp() -> String {
    // ISO 8601 in Salesforce's form; second precision is enough here.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = now / 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    let secs = now % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000+0000",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to a calendar date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_blank(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        _ => false,
    }
}

impl Records {
    pub fn new_id(&mut self, sobject: &SObjectType) -> String {
        self.next += 1;
        let mut n = self.next;
        let mut digits = [b'0'; 9];
        for slot in digits.iter_mut().rev() {
            *slot = BASE62[(n % 62) as usize];
            n /= 62;
        }
        let id15 = format!(
            "{}5g0{}",
            sobject.prefix,
            std::str::from_utf8(&digits).unwrap_or("000000000")
        );
        format!("{id15}{}", checksum(&id15))
    }

    /// Maps a request's fields to canonical names and checks that each may
    /// be written.
    fn writable_fields(
        sobject: &SObjectType,
        fields: &Map<String, Value>,
    ) -> Result<Map<String, Value>, SfError> {
        let mut out = Map::new();
        let mut read_only = Vec::new();
        for (name, value) in fields {
            if name == "attributes" || name.eq_ignore_ascii_case("id") {
                continue;
            }
            let Some(field) = sobject.field(name) else {
                return Err(SfError::new(
                    400,
                    "INVALID_FIELD",
                    format!(
                        "No such column '{name}' on sobject of type {}",
                        sobject.name
                    ),
                )
                .with_fields(vec![name.clone()]));
            };
            if !field.writable {
                read_only.push(field.name.to_string());
                continue;
            }
            if !matches!(
                value,
                Value::Null | Value::String(_) | Value::Bool(_) | Value::Number(_)
            ) {
                return Err(SfError::new(
                    400,
                    "JSON_PARSER_ERROR",
                    format!("Cannot deserialize instance of {} from value", field.name),
                ));
            }
            out.insert(field.name.to_string(), value.clone());
        }
        if !read_only.is_empty() {
            return Err(SfError::new(
                400,
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                format!(
                    "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                    read_only.join(", ")
                ),
            )
            .with_fields(read_only));
        }
        Ok(out)
    }

    fn missing_required(sobject: &SObjectType, record: &Map<String, Value>) -> Option<SfError> {
        let missing: Vec<String> = sobject
            .fields
            .iter()
            .filter(|f| f.required && is_blank(record.get(f.name)))
            .map(|f| f.name.to_string())
            .collect();
        (!missing.is_empty()).then(|| {
            SfError::new(
                400,
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", missing.join(", ")),
            )
            .with_fields(missing)
        })
    }

    /// Checks a create without performing it.
    pub fn check_create(
        &self,
        sobject: &'static SObjectType,
        fields: &Map<String, Value>,
    ) -> Result<Map<String, Value>, SfError> {
        if !sobject.creatable {
            return Err(SfError::new(
                400,
                "INVALID_TYPE",
                format!("entity type {} does not support insert", sobject.name),
            ));
        }
        let mut record = Self::writable_fields(sobject, fields)?;
        if let Some(error) = Self::missing_required(sobject, &record) {
            return Err(error);
        }
        if sobject.name == "Lead" {
            record
                .entry("Status")
                .or_insert_with(|| Value::from("Open - Not Contacted"));
            record.insert("IsConverted".into(), Value::Bool(false));
        }
        if sobject.name == "User" {
            record.entry("IsActive").or_insert(Value::Bool(true));
        }
        if let Some(account) = record.get("AccountId").and_then(Value::as_str)
            && !account.is_empty()
            && self.find(account).is_none_or(|(t, _)| t != "Account")
        {
            return Err(SfError::new(
                400,
                "INVALID_CROSS_REFERENCE_KEY",
                format!("invalid cross reference id: {account}"),
            )
            .with_fields(vec!["AccountId".into()]));
        }
        Ok(record)
    }

    pub fn insert(&mut self, sobject: &'static SObjectType, record: Map<String, Value>) -> String {
        let id = self.new_id(sobject);
        self.insert_with_id(sobject, id, record)
    }

    /// Inserts a record under a given id: the org's own Organization row.
    pub fn insert_with_id(
        &mut self,
        sobject: &'static SObjectType,
        id: String,
        mut record: Map<String, Value>,
    ) -> String {
        let now = timestamp();
        record.insert("Id".into(), Value::from(id.clone()));
        record.insert("CreatedDate".into(), Value::from(now.clone()));
        record.insert("LastModifiedDate".into(), Value::from(now));
        record.insert("IsDeleted".into(), Value::Bool(false));
        self.index(sobject.name, &id, email_key(&record));
        self.by_type
            .entry(sobject.name)
            .or_default()
            .insert(id.clone(), record);
        id
    }

    fn index(&mut self, type_name: &'static str, id: &str, email: Option<String>) {
        if let Some(email) = email {
            self.by_email
                .entry((type_name, email))
                .or_default()
                .insert(id.to_string());
        }
    }

    fn unindex(&mut self, type_name: &'static str, id: &str, email: Option<String>) {
        if let Some(email) = email {
            let key = (type_name, email);
            if let Some(ids) = self.by_email.get_mut(&key) {
                ids.remove(id);
                if ids.is_empty() {
                    self.by_email.remove(&key);
                }
            }
        }
    }

    pub fn create(
        &mut self,
        sobject: &'static SObjectType,
        fields: &Map<String, Value>,
    ) -> Result<String, SfError> {
        let record = self.check_create(sobject, fields)?;
        Ok(self.insert(sobject, record))
    }

    /// Finds a live record by id (15 or 18 characters).
    pub fn find(&self, id: &str) -> Option<(&'static str, &Map<String, Value>)> {
        let id = normalize_id(id)?;
        let sobject = sobject_of_id(&id)?;
        self.by_type
            .get(sobject.name)
            .and_then(|records| records.get(&id))
            .map(|record| (sobject.name, record))
    }

    /// Resolves an id for an operation on `expected` (if given), with the
    /// errors Salesforce gives for malformed, deleted and unknown ids.
    pub fn resolve(
        &self,
        id: &str,
        expected: Option<&str>,
    ) -> Result<(&'static str, String), SfError> {
        let malformed = || {
            SfError::new(
                400,
                "MALFORMED_ID",
                format!(
                    "{}: id value of incorrect type: {id}",
                    expected.unwrap_or("Id")
                ),
            )
            .with_fields(vec!["Id".into()])
        };
        let full = normalize_id(id).ok_or_else(malformed)?;
        let sobject = sobject_of_id(&full).ok_or_else(malformed)?;
        if expected.is_some_and(|e| !e.eq_ignore_ascii_case(sobject.name)) {
            return Err(malformed());
        }
        if self.deleted.contains_key(&full) {
            return Err(SfError::new(404, "ENTITY_IS_DELETED", "entity is deleted"));
        }
        if self
            .by_type
            .get(sobject.name)
            .is_none_or(|records| !records.contains_key(&full))
        {
            return Err(SfError::new(
                404,
                "NOT_FOUND",
                "The requested resource does not exist",
            ));
        }
        Ok((sobject.name, full))
    }

    /// Checks an update without performing it.
    pub fn check_update(
        &self,
        id: &str,
        expected: Option<&str>,
        fields: &Map<String, Value>,
    ) -> Result<(&'static str, String, Map<String, Value>), SfError> {
        let (type_name, full) = self.resolve(id, expected)?;
        let sobject =
            sobject(type_name).ok_or_else(|| SfError::new(400, "INVALID_TYPE", type_name))?;
        if !sobject.creatable {
            return Err(SfError::new(
                400,
                "INVALID_TYPE",
                format!("entity type {} does not support update", sobject.name),
            ));
        }
        let changes = Self::writable_fields(sobject, fields)?;
        let current = &self.by_type[type_name][&full];
        if current.get("IsConverted") == Some(&Value::Bool(true)) {
            return Err(SfError::new(
                400,
                "CANNOT_UPDATE_CONVERTED_LEAD",
                "cannot reference converted lead",
            ));
        }
        let mut merged = current.clone();
        merged.extend(changes.clone());
        if let Some(error) = Self::missing_required(sobject, &merged) {
            return Err(error);
        }
        Ok((type_name, full, changes))
    }

    pub fn apply_update(&mut self, type_name: &'static str, id: &str, changes: Map<String, Value>) {
        let Some(record) = self.by_type.get_mut(type_name).and_then(|r| r.get_mut(id)) else {
            return;
        };
        let before = changes.contains_key("Email").then(|| email_key(record));
        record.extend(changes);
        record.insert("LastModifiedDate".into(), Value::from(timestamp()));
        if let Some(before) = before {
            let after = email_key(record);
            self.unindex(type_name, id, before);
            self.index(type_name, id, after);
        }
    }

    pub fn update(
        &mut self,
        id: &str,
        expected: Option<&str>,
        fields: &Map<String, Value>,
    ) -> Result<String, SfError> {
        let (type_name, full, changes) = self.check_update(id, expected, fields)?;
        self.apply_update(type_name, &full, changes);
        Ok(full)
    }

    /// Checks a delete without performing it.
    pub fn check_delete(
        &self,
        id: &str,
        expected: Option<&str>,
    ) -> Result<(&'static str, String), SfError> {
        let (type_name, full) = self.resolve(id, expected)?;
        let deletable = sobject(type_name).is_some_and(|t| t.deletable);
        if !deletable {
            return Err(SfError::new(
                400,
                "DELETE_FAILED",
                format!(
                    "Your attempt to delete {full} could not be completed because {type_name} records cannot be deleted"
                ),
            ));
        }
        let record = &self.by_type[type_name][&full];
        if record.get("IsPortalUser") == Some(&Value::Bool(true)) {
            return Err(SfError::new(
                400,
                "DELETE_FAILED",
                "Your attempt to delete this contact could not be completed because it is associated with a portal user",
            ));
        }
        Ok((type_name, full))
    }

    pub fn apply_delete(&mut self, type_name: &'static str, id: &str) {
        if let Some(record) = self
            .by_type
            .get_mut(type_name)
            .and_then(|records| records.remove(id))
        {
            self.unindex(type_name, id, email_key(&record));
            self.deleted.insert(id.to_string(), type_name);
        }
    }

    pub fn delete(&mut self, id: &str, expected: Option<&str>) -> Result<String, SfError> {
        let (type_name, full) = self.check_delete(id, expected)?;
        self.apply_delete(type_name, &full);
        Ok(full)
    }

    /// Ties a Contact to a portal user, so that deleting it fails as it
    /// does in Salesforce.
    pub fn mark_portal_user(&mut self, id: &str) -> bool {
        let Some(full) = normalize_id(id) else {
            return false;
        };
        match self
            .by_type
            .get_mut("Contact")
            .and_then(|r| r.get_mut(&full))
        {
            Some(record) => {
                record.insert("IsPortalUser".into(), Value::Bool(true));
                true
            }
            None => false,
        }
    }

    /// Every live record of a type, in id (creation) order.
    pub fn all(&self, type_name: &str) -> impl Iterator<Item = &Map<String, Value>> {
        self.by_type
            .get(type_name)
            .into_iter()
            .flat_map(|r| r.values())
    }

    /// The live records of a type with one of these lowercased Emails, in
    /// id order.
    pub fn with_emails<'a>(
        &'a self,
        type_name: &'static str,
        emails: &[&str],
    ) -> impl Iterator<Item = &'a Map<String, Value>> {
        let ids: BTreeSet<&String> = emails
            .iter()
            .filter_map(|email| self.by_email.get(&(type_name, (*email).to_string())))
            .flatten()
            .collect();
        let records = self.by_type.get(type_name);
        ids.into_iter()
            .filter_map(move |id| records.and_then(|r| r.get(id)))
    }

    pub fn count(&self, type_name: &str) -> usize {
        self.by_type.get(type_name).map(BTreeMap::len).unwrap_or(0)
    }

    pub fn counts(&self) -> BTreeMap<String, usize> {
        TYPES
            .iter()
            .map(|t| (t.name.to_string(), self.count(t.name)))
            .collect()
    }

    /// Converts a Lead: creates (or reuses) the Account and the Contact,
    /// and marks the Lead converted.
    pub fn convert_lead(
        &mut self,
        lead_id: &str,
        account_id: Option<&str>,
        status: Option<&str>,
    ) -> Result<(String, String, String), SfError> {
        let (type_name, lead_id) = self.resolve(lead_id, Some("Lead")).map_err(|e| {
            SfError::new(
                400,
                "INVALID_CROSS_REFERENCE_KEY",
                format!("invalid cross reference id: {}", e.message),
            )
        })?;
        let lead = self.by_type[type_name][&lead_id].clone();
        if lead.get("IsConverted") == Some(&Value::Bool(true)) {
            return Err(SfError::new(
                400,
                "INVALID_STATUS",
                "This lead was already converted",
            ));
        }
        let account_id = match account_id.filter(|a| !a.is_empty()) {
            Some(account) => match self.find(account) {
                Some(("Account", record)) => record["Id"].as_str().unwrap_or(account).to_string(),
                _ => {
                    return Err(SfError::new(
                        400,
                        "INVALID_CROSS_REFERENCE_KEY",
                        format!("invalid cross reference id: {account}"),
                    ));
                }
            },
            None => {
                let mut account = Map::new();
                account.insert(
                    "Name".into(),
                    lead.get("Company")
                        .cloned()
                        .unwrap_or(Value::from("Converted")),
                );
                let account_type = sobject("Account")
                    .ok_or_else(|| SfError::new(500, "UNKNOWN_EXCEPTION", "no Account type"))?;
                self.insert(account_type, account)
            }
        };
        let mut contact = Map::new();
        for (from, to) in [
            ("FirstName", "FirstName"),
            ("LastName", "LastName"),
            ("Email", "Email"),
            ("Phone", "Phone"),
            ("MobilePhone", "MobilePhone"),
            ("Title", "Title"),
            ("Street", "MailingStreet"),
            ("City", "MailingCity"),
            ("State", "MailingState"),
            ("PostalCode", "MailingPostalCode"),
            ("Country", "MailingCountry"),
            ("LeadSource", "LeadSource"),
            ("Description", "Description"),
        ] {
            if let Some(value) = lead.get(from).filter(|v| !v.is_null()) {
                contact.insert(to.into(), value.clone());
            }
        }
        contact.insert("AccountId".into(), Value::from(account_id.clone()));
        let contact_type = sobject("Contact")
            .ok_or_else(|| SfError::new(500, "UNKNOWN_EXCEPTION", "no Contact type"))?;
        let contact_id = self.insert(contact_type, contact);
        let mut changes = Map::new();
        changes.insert("IsConverted".into(), Value::Bool(true));
        changes.insert("ConvertedContactId".into(), Value::from(contact_id.clone()));
        changes.insert("ConvertedAccountId".into(), Value::from(account_id.clone()));
        changes.insert(
            "ConvertedDate".into(),
            Value::from(timestamp()[..10].to_string()),
        );
        changes.insert(
            "Status".into(),
            Value::from(status.unwrap_or("Closed - Converted")),
        );
        self.apply_update("Lead", &lead_id, changes);
        Ok((lead_id, contact_id, account_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_salesforce() {
        // A documented pair: 001A0000006Vm9r -> 001A0000006Vm9rIAC.
        assert_eq!(checksum("001A0000006Vm9r"), "IAC");
        assert_eq!(
            normalize_id("001A0000006Vm9r").as_deref(),
            Some("001A0000006Vm9rIAC")
        );
        assert_eq!(
            normalize_id("001A0000006Vm9rIAC").as_deref(),
            Some("001A0000006Vm9rIAC")
        );
        assert_eq!(normalize_id("001A0000006Vm9rXXX"), None);
        assert_eq!(normalize_id("short"), None);
    }

    #[test]
    fn new_ids_have_the_prefix_and_a_valid_checksum() {
        let mut records = Records::default();
        let lead = sobject("Lead").unwrap();
        let id = records.new_id(lead);
        assert_eq!(id.len(), 18);
        assert!(id.starts_with("00Q"));
        assert_eq!(normalize_id(&id).as_deref(), Some(id.as_str()));
        assert_ne!(records.new_id(lead), id);
    }

    #[test]
    fn creates_validate_like_salesforce() {
        let mut records = Records::default();
        let lead = sobject("Lead").unwrap();
        let fields = |pairs: &[(&str, &str)]| -> Map<String, Value> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Value::from(*v)))
                .collect()
        };
        let error = records
            .create(lead, &fields(&[("LastName", "Ng")]))
            .unwrap_err();
        assert_eq!(error.code, "REQUIRED_FIELD_MISSING");
        assert_eq!(error.message, "Required fields are missing: [Company]");
        assert_eq!(error.fields, vec!["Company"]);
        let error = records
            .create(
                lead,
                &fields(&[("LastName", "Ng"), ("Company", "A"), ("Shoe", "9")]),
            )
            .unwrap_err();
        assert_eq!(error.code, "INVALID_FIELD");
        let error = records
            .create(
                lead,
                &fields(&[("LastName", "Ng"), ("Company", "A"), ("IsConverted", "x")]),
            )
            .unwrap_err();
        assert_eq!(error.code, "INVALID_FIELD_FOR_INSERT_UPDATE");
        let id = records
            .create(lead, &fields(&[("lastname", "Ng"), ("Company", "A")]))
            .unwrap();
        let (_, record) = records.find(&id).unwrap();
        assert_eq!(record["LastName"], "Ng", "field names are case-insensitive");
        assert_eq!(record["Status"], "Open - Not Contacted");
    }

    #[test]
    fn the_email_index_follows_every_write() {
        let mut records = Records::default();
        let lead = sobject("Lead").unwrap();
        let contact = sobject("Contact").unwrap();
        let with = |email: &str| {
            let mut fields = Map::new();
            fields.insert("Email".into(), Value::from(email));
            fields
        };
        let ada = records.insert(lead, with("Ada@Example.com"));
        let other = records.insert(lead, with("ada@example.com"));
        records.insert(contact, with("ada@example.com"));
        let ids = |records: &Records, email: &str| -> Vec<String> {
            records
                .with_emails("Lead", &[email])
                .map(|r| r["Id"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            ids(&records, "ada@example.com"),
            [ada.clone(), other.clone()]
        );
        records.apply_update("Lead", &ada, with("grace@example.com"));
        assert_eq!(
            ids(&records, "ada@example.com"),
            std::slice::from_ref(&other)
        );
        assert_eq!(
            ids(&records, "grace@example.com"),
            std::slice::from_ref(&ada)
        );
        records.delete(&other, None).unwrap();
        assert!(ids(&records, "ada@example.com").is_empty());
        records.convert_lead(&ada, None, None).unwrap();
        assert_eq!(
            ids(&records, "grace@example.com"),
            [ada],
            "a conversion keeps the Email"
        );
        assert_eq!(
            records
                .with_emails("Contact", &["grace@example.com"])
                .count(),
            1
        );
    }

    #[test]
    fn users_cannot_be_deleted_and_deleted_records_say_so() {
        let mut records = Records::default();
        let user = sobject("User").unwrap();
        let id = records.insert(user, Map::new());
        assert_eq!(records.delete(&id, None).unwrap_err().code, "DELETE_FAILED");
        let contact = sobject("Contact").unwrap();
        let id = records.insert(contact, Map::new());
        records.delete(&id, Some("Contact")).unwrap();
        assert_eq!(
            records.delete(&id, None).unwrap_err().code,
            "ENTITY_IS_DELETED"
        );
        assert_eq!(
            records.delete("003xx", None).unwrap_err().code,
            "MALFORMED_ID"
        );
    }

    #[test]
    fn conversion_creates_the_contact_and_locks_the_lead() {
        let mut records = Records::default();
        let lead = sobject("Lead").unwrap();
        let mut fields = Map::new();
        fields.insert("LastName".into(), Value::from("Ng"));
        fields.insert("Company".into(), Value::from("Acme"));
        fields.insert("Email".into(), Value::from("ng@acme.test"));
        fields.insert("City".into(), Value::from("Oslo"));
        let id = records.create(lead, &fields).unwrap();
        let (lead_id, contact_id, account_id) = records.convert_lead(&id, None, None).unwrap();
        assert_eq!(lead_id, id);
        let (_, contact) = records.find(&contact_id).unwrap();
        assert_eq!(contact["Email"], "ng@acme.test");
        assert_eq!(contact["MailingCity"], "Oslo");
        assert_eq!(contact["AccountId"], Value::from(account_id));
        let (_, converted) = records.find(&id).unwrap();
        assert_eq!(converted["IsConverted"], true);
        assert_eq!(converted["ConvertedContactId"], Value::from(contact_id));
        let error = records.update(&id, Some("Lead"), &Map::new()).unwrap_err();
        assert_eq!(error.code, "CANNOT_UPDATE_CONVERTED_LEAD");
        assert!(records.convert_lead(&id, None, None).is_err());
    }

    #[test]
    fn dates_are_iso() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_000), (2024, 10, 4));
        assert!(timestamp().ends_with(".000+0000"));
    }
}
