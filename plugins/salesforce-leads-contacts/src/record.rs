//! Writing records for sObject Collections.
//!
//! A record borrows its operation's names and values and is serialized
//! straight into the request body. Building a `serde_json` map per record
//! first, and dropping it after, had cost more than everything else a
//! create batch does in the connector.

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::types::Value;

/// One record of a Collections body: `{"attributes": {"type": …}, fields…,
/// "id": …}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    object: &'static str,
    fields: Vec<(&'a str, Field<'a>)>,
    id: Option<&'a str>,
}

/// A field's value: the host's, or one the connector supplies (a default
/// Company, an Account id).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field<'a> {
    Value(&'a Value),
    Text(&'a str),
}

impl Field<'_> {
    /// Null, absent or only whitespace: what Salesforce treats as no value
    /// for a required field.
    pub fn is_blank(field: Option<&Self>) -> bool {
        match field {
            None | Some(Field::Value(Value::Null)) => true,
            Some(Field::Value(Value::Text(text))) => text.trim().is_empty(),
            Some(Field::Text(text)) => text.trim().is_empty(),
            Some(Field::Value(Value::Boolean(_) | Value::Integer(_))) => false,
            Some(Field::Value(Value::TextList(items))) => items.iter().all(|i| i.trim().is_empty()),
        }
    }
}

impl<'a> Record<'a> {
    pub fn new(object: &'static str, id: Option<&'a str>) -> Self {
        Record {
            object,
            fields: Vec::new(),
            id,
        }
    }

    /// Sets a field; a name set twice keeps the last value, as a JSON
    /// object would. `attributes` and `id` are the record's own keys, never
    /// fields.
    pub fn set(&mut self, name: &'a str, field: Field<'a>) {
        if name == "attributes" || name == "id" {
            return;
        }
        match self.fields.iter_mut().find(|(known, _)| *known == name) {
            Some((_, value)) => *value = field,
            None => self.fields.push((name, field)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Field<'a>> {
        self.fields
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, field)| field)
    }
}

struct Attributes(&'static str);

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("type", self.0)?;
        map.end()
    }
}

impl Serialize for Field<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Value(Value::Null) => serializer.serialize_unit(),
            Field::Value(Value::Text(text)) => serializer.serialize_str(text),
            Field::Text(text) => serializer.serialize_str(text),
            Field::Value(Value::Boolean(flag)) => serializer.serialize_bool(*flag),
            Field::Value(Value::Integer(number)) => serializer.serialize_i64(*number),
            // A multi-select picklist holds its values joined by `;`.
            Field::Value(Value::TextList(items)) => serializer.serialize_str(&items.join(";")),
        }
    }
}

impl Serialize for Record<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entries = 1 + self.fields.len() + usize::from(self.id.is_some());
        let mut map = serializer.serialize_map(Some(entries))?;
        map.serialize_entry("attributes", &Attributes(self.object))?;
        for (name, field) in &self.fields {
            map.serialize_entry(name, field)?;
        }
        if let Some(id) = self.id {
            map.serialize_entry("id", id)?;
        }
        map.end()
    }
}

/// The body of a Collections create or update.
pub fn collection_body(records: &[Record<'_>]) -> Result<Vec<u8>, serde_json::Error> {
    #[derive(serde::Serialize)]
    struct Body<'r, 'a> {
        #[serde(rename = "allOrNone")]
        all_or_none: bool,
        records: &'r [Record<'a>],
    }
    // Records run to about 150 bytes each; one allocation for most batches.
    let mut out = Vec::with_capacity(64 + records.len() * 192);
    serde_json::to_writer(
        &mut out,
        &Body {
            all_or_none: false,
            records,
        },
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value as Json, json};

    use super::*;

    #[test]
    fn a_record_is_written_as_salesforce_reads_it() {
        let last = Value::Text("O\"Brien \\ Ünal".into());
        let phone = Value::Null;
        let flag = Value::Boolean(true);
        let count = Value::Integer(-7);
        let mut record = Record::new("Lead", Some("00Q000000000001AAA"));
        record.set("LastName", Field::Value(&last));
        record.set("Phone", Field::Value(&phone));
        record.set("HasOptedOutOfEmail", Field::Value(&flag));
        record.set("NumberOfEmployees", Field::Value(&count));
        record.set("Company", Field::Text("first"));
        record.set("Company", Field::Text("[not provided]"));
        record.set("id", Field::Text("001000000000001AAA"));
        record.set("attributes", Field::Text("Account"));
        let body = collection_body(&[record.clone(), Record::new("Lead", None)]).unwrap();
        let parsed: Json = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            parsed,
            json!({
                "allOrNone": false,
                "records": [
                    {
                        "attributes": { "type": "Lead" },
                        "LastName": "O\"Brien \\ Ünal",
                        "Phone": null,
                        "HasOptedOutOfEmail": true,
                        "NumberOfEmployees": -7,
                        "Company": "[not provided]",
                        "id": "00Q000000000001AAA"
                    },
                    { "attributes": { "type": "Lead" } }
                ]
            })
        );
        // The field set twice is written once.
        let text = String::from_utf8(body).unwrap();
        assert_eq!(text.matches("\"Company\"").count(), 1);
        assert_eq!(record.get("Company"), Some(&Field::Text("[not provided]")));
    }

    #[test]
    fn blank_is_null_absent_or_whitespace() {
        let spaces = Value::Text("  ".into());
        let zero = Value::Integer(0);
        assert!(Field::is_blank(None));
        assert!(Field::is_blank(Some(&Field::Value(&Value::Null))));
        assert!(Field::is_blank(Some(&Field::Value(&spaces))));
        assert!(Field::is_blank(Some(&Field::Text(""))));
        assert!(!Field::is_blank(Some(&Field::Value(&zero))));
        assert!(!Field::is_blank(Some(&Field::Text("Acme"))));
    }
}
