//! A one-shot push of people through a connection: map each person with
//! the connector's default mappings, look them all up by the match
//! attribute in batches, adopt and update the records that exist, create
//! the ones that do not. Preferences are honoured: a forbidden create or
//! update is reported, never sent. The sync engine supersedes this with
//! rules, durable links and removals; the push is what the demo and an
//! operator's first smoke test use.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Serialize;

use super::mapping::{self, CompiledMapping};
use crate::config::Preferences;
use crate::runtime::contract::{Operation, StoreError, Value};
use crate::runtime::{CallError, Connector};

/// People looked up and written per round trip to the connector.
const CHUNK: usize = 1000;

/// A person from a people file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: String,
    pub enabled: bool,
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("{path}: person {index} ({id}): {reason}")]
    Person {
        path: String,
        index: usize,
        id: String,
        reason: String,
    },
}

/// Reads a JSON array of people: objects with a string `id`, an optional
/// boolean `enabled`, and string attributes (numbers are taken as text).
pub fn read_people(path: &Path) -> Result<Vec<Person>, PeopleError> {
    let shown = path.display().to_string();
    let file_error = |reason: String| PeopleError::File {
        path: shown.clone(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    let entries: Vec<serde_json::Value> = serde_json::from_str(&text).map_err(|e| {
        file_error(format!(
            "line {} column {}: {e}; expected a JSON array of people",
            e.line(),
            e.column()
        ))
    })?;
    let mut people = Vec::with_capacity(entries.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let index = index + 1;
        let person_error = |id: &str, reason: String| PeopleError::Person {
            path: shown.clone(),
            index,
            id: id.to_string(),
            reason,
        };
        let serde_json::Value::Object(fields) = entry else {
            return Err(person_error("?", "expected an object".into()));
        };
        let id = match fields.get("id") {
            Some(serde_json::Value::String(id)) if !id.trim().is_empty() => id.clone(),
            _ => return Err(person_error("?", "needs a non-empty string \"id\"".into())),
        };
        if let Some(first) = seen.insert(id.clone(), index) {
            return Err(person_error(
                &id,
                format!("the id is already used by person {first}"),
            ));
        }
        let mut person = Person {
            id: id.clone(),
            enabled: true,
            attributes: BTreeMap::new(),
        };
        for (name, value) in fields {
            match (name.as_str(), value) {
                ("id", _) => {}
                ("enabled", serde_json::Value::Bool(flag)) => person.enabled = flag,
                ("enabled", other) => {
                    return Err(person_error(
                        &id,
                        format!("\"enabled\" must be true or false, not {other}"),
                    ));
                }
                (_, serde_json::Value::Null) => {}
                (_, serde_json::Value::String(text)) => {
                    person.attributes.insert(name, text);
                }
                (_, serde_json::Value::Number(number)) => {
                    person.attributes.insert(name, number.to_string());
                }
                (_, serde_json::Value::Bool(flag)) => {
                    person.attributes.insert(name, flag.to_string());
                }
                (_, other) => {
                    return Err(person_error(
                        &id,
                        format!("attribute {name:?} must be text, not {other}"),
                    ));
                }
            }
        }
        people.push(person);
    }
    Ok(people)
}

/// What happened to one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub enum PersonResult {
    Created {
        id: String,
        record: String,
    },
    Updated {
        id: String,
        record: String,
        changed: Vec<String>,
    },
    Unchanged {
        id: String,
        record: String,
    },
    /// Not sent, by a preference or because there is nothing to match on.
    Skipped {
        id: String,
        reason: String,
    },
    Failed {
        id: String,
        error: StoreError,
    },
}

/// The outcome of a push, person by person, in input order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PushReport {
    pub results: Vec<PersonResult>,
}

impl PushReport {
    pub fn count(&self, kind: &str) -> usize {
        self.results
            .iter()
            .filter(|r| {
                matches!(
                    (kind, r),
                    ("created", PersonResult::Created { .. })
                        | ("updated", PersonResult::Updated { .. })
                        | ("unchanged", PersonResult::Unchanged { .. })
                        | ("skipped", PersonResult::Skipped { .. })
                        | ("failed", PersonResult::Failed { .. })
                )
            })
            .count()
    }
}

/// Pushes `people` through `connector`.
pub async fn push(
    connector: &Connector,
    preferences: &Preferences,
    people: &[Person],
) -> Result<PushReport, CallError> {
    let descriptor = connector.plugin().descriptor();
    let mappings: Vec<CompiledMapping> =
        mapping::defaults(descriptor).map_err(|message| CallError::Contract {
            plugin: descriptor.name.clone(),
            message,
        })?;
    let match_attribute = descriptor.match_attribute.clone();
    let mut report = PushReport::default();

    for chunk in people.chunks(CHUNK) {
        // Who is asked for, by lower-cased match value.
        let mut wanted: Vec<String> = Vec::new();
        let mut first_with: HashMap<String, &str> = HashMap::new();
        let mut plans: Vec<(&Person, Option<String>)> = Vec::new();
        for person in chunk {
            let attributes = mapping::attributes(&mappings, &person.attributes, false);
            let key = attributes
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case(&match_attribute))
                .and_then(|a| match &a.value {
                    Value::Text(text) => Some(text.clone()),
                    _ => None,
                });
            if let Some(key) = &key {
                let lower = key.to_lowercase();
                if let std::collections::hash_map::Entry::Vacant(slot) = first_with.entry(lower) {
                    slot.insert(&person.id);
                    wanted.push(key.clone());
                }
            }
            plans.push((person, key));
        }
        let found = connector.lookup(&match_attribute, wanted).await?;
        let mut by_key: HashMap<String, Vec<_>> = HashMap::new();
        for m in found {
            by_key.entry(m.value.to_lowercase()).or_default().push(m);
        }

        let mut operations = Vec::new();
        // (index into report.results, record id for updates, changed names)
        let mut pending: Vec<(usize, Option<String>, Vec<String>)> = Vec::new();
        for (person, key) in plans {
            let id = person.id.clone();
            let slot = report.results.len();
            if !person.enabled {
                report.results.push(PersonResult::Skipped {
                    id,
                    reason: "disabled in the source; removals are the sync engine's".into(),
                });
                continue;
            }
            let Some(key) = key else {
                report.results.push(PersonResult::Skipped {
                    id,
                    reason: format!("no value maps to {match_attribute}, so it cannot be matched"),
                });
                continue;
            };
            let lower = key.to_lowercase();
            if first_with
                .get(&lower)
                .is_some_and(|first| *first != person.id)
            {
                report.results.push(PersonResult::Failed {
                    id,
                    error: StoreError::Rejected {
                        code: "DUPLICATE_IN_SOURCE".into(),
                        message: format!(
                            "{match_attribute} {key} is also person {}'s",
                            first_with[&lower]
                        ),
                        fields: vec![match_attribute.clone()],
                    },
                });
                continue;
            }
            match by_key.get(&lower).map(Vec::as_slice).unwrap_or_default() {
                [] if preferences.allow_create => {
                    let attributes = mapping::attributes(&mappings, &person.attributes, false);
                    operations.push(Operation::Create { attributes });
                    pending.push((slot, None, Vec::new()));
                    report.results.push(PersonResult::Skipped {
                        id,
                        reason: "pending".into(),
                    });
                }
                [] => report.results.push(PersonResult::Skipped {
                    id,
                    reason: "unsynced: creating records is not allowed on this connection".into(),
                }),
                [existing] => {
                    let desired = mapping::attributes(&mappings, &person.attributes, true);
                    let rules = super::plan::CaseRules { match_attribute: &match_attribute, mappings: &mappings };
                    let changed = super::plan::diff_against(&desired, &existing.attributes, rules);
                    if changed.is_empty() {
                        report.results.push(PersonResult::Unchanged {
                            id,
                            record: existing.id.clone(),
                        });
                    } else if !preferences.allow_update {
                        report.results.push(PersonResult::Skipped {
                            id,
                            reason: format!(
                                "partially synced: {} differ, but updates are not allowed on this connection",
                                changed.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
                            ),
                        });
                    } else {
                        let names = changed.iter().map(|a| a.name.clone()).collect();
                        operations.push(Operation::Update {
                            id: existing.id.clone(),
                            attributes: changed,
                            version: existing.version.clone(),
                        });
                        pending.push((slot, Some(existing.id.clone()), names));
                        report.results.push(PersonResult::Skipped {
                            id,
                            reason: "pending".into(),
                        });
                    }
                }
                several => report.results.push(PersonResult::Failed {
                    id,
                    error: StoreError::Rejected {
                        code: "AMBIGUOUS_MATCH".into(),
                        message: format!(
                            "{} records have {match_attribute} {key} ({}); resolve the duplicates in the store",
                            several.len(),
                            several.iter().map(|m| m.id.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                        fields: vec![match_attribute.clone()],
                    },
                }),
            }
        }
        if operations.is_empty() {
            continue;
        }
        let outcomes = connector.apply(operations).await?;
        for ((slot, update_of, changed), outcome) in pending.into_iter().zip(outcomes) {
            let id = match &report.results[slot] {
                PersonResult::Skipped { id, .. } => id.clone(),
                _ => continue,
            };
            report.results[slot] = match (outcome, update_of) {
                (Ok(outcome), None) => PersonResult::Created {
                    id,
                    record: outcome.id,
                },
                (Ok(outcome), Some(_)) => PersonResult::Updated {
                    id,
                    record: outcome.id,
                    changed,
                },
                (Err(error), _) => PersonResult::Failed { id, error },
            };
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn people_files_are_read_and_checked() {
        let file = write(
            r#"[{"id":"p1","email":"a@x.test","age":42,"enabled":false},{"id":"p2","given_name":"B","nick":null}]"#,
        );
        let people = read_people(file.path()).unwrap();
        assert_eq!(people.len(), 2);
        assert!(!people[0].enabled);
        assert_eq!(people[0].attributes["age"], "42");
        assert!(!people[1].attributes.contains_key("nick"));

        for (text, needle) in [
            ("{}", "expected a JSON array"),
            (
                "[{\"email\":\"x\"}]",
                "person 1 (?): needs a non-empty string \"id\"",
            ),
            (
                "[{\"id\":\"a\"},{\"id\":\"a\"}]",
                "person 2 (a): the id is already used by person 1",
            ),
            (
                "[{\"id\":\"a\",\"tags\":[1]}]",
                "attribute \"tags\" must be text",
            ),
            (
                "[{\"id\":\"a\",\"enabled\":\"yes\"}]",
                "\"enabled\" must be true or false",
            ),
            ("[1", "line 1 column 2"),
        ] {
            let file = write(text);
            let error = read_people(file.path()).unwrap_err().to_string();
            assert!(error.contains(needle), "{text}: {error}");
            assert!(
                error.contains(&file.path().display().to_string()),
                "{error}"
            );
        }
    }
}
