//! Reading people files: a JSON array of objects, or CSV with a header
//! row. Every row is checked; each bad row is reported with its line
//! number, and a row is taken whole or not at all.
//!
//! A row is a whole person: `id` (required), `enabled` (true/false,
//! default true), `population`, `groups` (a JSON array, or `;`-separated in
//! CSV), and attributes by name. An attribute a row leaves out is removed
//! from the person.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use serde_json::Value;
use serde_json::value::RawValue;

use super::{Directory, PersonChange};

/// A file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

impl Format {
    /// By file extension; JSON unless it ends in `.csv`.
    pub fn of(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("csv") => Format::Csv,
            _ => Format::Json,
        }
    }
}

/// One good row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: usize,
    pub change: PersonChange,
}

/// One bad row, located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}: {}{message}", id.as_ref().map(|i| format!("person {i:?}: ")).unwrap_or_default())]
pub struct RowError {
    pub path: String,
    pub line: usize,
    pub id: Option<String>,
    pub message: String,
}

/// A file that cannot be read as people at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct FileError {
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

/// Parses and validates a people file.
pub fn read(
    path: &Path,
    format: Format,
    directory: &Directory<'_>,
) -> Result<(Vec<Row>, Vec<RowError>), FileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| FileError {
        path: shown.clone(),
        line: None,
        message: e.to_string(),
    })?;
    parse(&shown, &text, format, directory)
}

/// Parses and validates people text; `shown` names it in errors.
pub fn parse(
    shown: &str,
    text: &str,
    format: Format,
    directory: &Directory<'_>,
) -> Result<(Vec<Row>, Vec<RowError>), FileError> {
    let shown = shown.to_string();
    let text = text.to_string();
    let raw = match format {
        Format::Json => json_rows(&shown, &text)?,
        Format::Csv => csv_rows(&shown, &text, directory.schema())?,
    };
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (line, parsed) in raw {
        let error = |id: Option<String>, message: String| RowError {
            path: shown.clone(),
            line,
            id,
            message,
        };
        match parsed {
            Err(message) => errors.push(error(None, message)),
            Ok(change) => {
                if let Err(message) = directory.validate(&change) {
                    errors.push(error(Some(change.id.clone()), message));
                } else if let Some(first) = seen.get(&change.id) {
                    errors.push(error(
                        Some(change.id.clone()),
                        format!("the id is already used on line {first}"),
                    ));
                } else {
                    seen.insert(change.id.clone(), line);
                    rows.push(Row { line, change });
                }
            }
        }
    }
    Ok((rows, errors))
}

/// A row as read: its line, and the change or why it is not one.
type Parsed = (usize, Result<PersonChange, String>);

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn json_rows(path: &str, text: &str) -> Result<Vec<Parsed>, FileError> {
    let entries: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| FileError {
        path: path.to_string(),
        line: Some(e.line()),
        message: format!("{e}; expected a JSON array of people"),
    })?;
    Ok(entries
        .into_iter()
        .map(|raw| {
            let offset = raw.get().as_ptr() as usize - text.as_ptr() as usize;
            (line_of(text, offset), json_person(raw))
        })
        .collect())
}

fn json_person(raw: &RawValue) -> Result<PersonChange, String> {
    let Value::Object(fields) =
        serde_json::from_str::<Value>(raw.get()).map_err(|e| e.to_string())?
    else {
        return Err("expected an object".into());
    };
    let mut change = PersonChange {
        enabled: Some(true),
        population: Some(None),
        replace_attributes: true,
        ..PersonChange::default()
    };
    match fields.get("id") {
        Some(Value::String(id)) => change.id = id.clone(),
        Some(Value::Number(n)) => change.id = n.to_string(),
        _ => return Err("needs an \"id\" (a string)".into()),
    }
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("id", _) => {}
            ("enabled", Value::Bool(flag)) => change.enabled = Some(flag),
            ("enabled", other) => {
                return Err(format!("\"enabled\" must be true or false, not {other}"));
            }
            ("population", Value::String(p)) => change.population = Some(Some(p)),
            ("population", Value::Null) => {}
            ("population", other) => {
                return Err(format!("\"population\" must be a string, not {other}"));
            }
            ("groups", Value::Array(groups)) => {
                let mut set = BTreeSet::new();
                for group in groups {
                    match group {
                        Value::String(g) => {
                            set.insert(g);
                        }
                        other => return Err(format!("\"groups\" must hold strings, not {other}")),
                    }
                }
                change.groups = Some(set);
            }
            ("groups", other) => {
                return Err(format!(
                    "\"groups\" must be an array of strings, not {other}"
                ));
            }
            (_, Value::Null) => {
                change.attributes.insert(key, None);
            }
            (_, Value::String(text)) => {
                change.attributes.insert(key, Some(text));
            }
            (_, Value::Number(number)) => {
                change.attributes.insert(key, Some(number.to_string()));
            }
            (_, Value::Bool(flag)) => {
                change.attributes.insert(key, Some(flag.to_string()));
            }
            (_, other) => return Err(format!("attribute {key:?} must be text, not {other}")),
        }
    }
    Ok(change)
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

fn csv_rows(
    path: &str,
    text: &str,
    schema: &super::AttributeSchema,
) -> Result<Vec<Parsed>, FileError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::None)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| FileError {
            path: path.to_string(),
            line: Some(1),
            message: format!("reading the header row: {e}"),
        })?
        .clone();
    let names: Vec<String> = headers.iter().map(|h| h.trim().to_string()).collect();
    if !names.iter().any(|n| n == "id") {
        return Err(FileError {
            path: path.to_string(),
            line: Some(1),
            message: "the header row has no id column".into(),
        });
    }
    const RESERVED: &[&str] = &["id", "enabled", "population", "groups"];
    if let Some(unknown) = names
        .iter()
        .find(|n| !RESERVED.contains(&n.as_str()) && !schema.contains(n))
    {
        return Err(FileError {
            path: path.to_string(),
            line: Some(1),
            message: format!("column {}", schema.unknown(unknown)),
        });
    }
    let mut duplicates = BTreeMap::new();
    for name in &names {
        *duplicates.entry(name.as_str()).or_insert(0) += 1;
    }
    if let Some((name, _)) = duplicates.iter().find(|(_, count)| **count > 1) {
        return Err(FileError {
            path: path.to_string(),
            line: Some(1),
            message: format!("the header row names column {name:?} twice"),
        });
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
                rows.push((line, Err(e.to_string())));
                continue;
            }
        };
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        let mut change = PersonChange {
            enabled: Some(true),
            population: Some(None),
            replace_attributes: true,
            ..PersonChange::default()
        };
        let mut problem = None;
        for (name, value) in names.iter().zip(record.iter()) {
            match name.as_str() {
                "id" => change.id = value.to_string(),
                "enabled" => match parse_bool(value) {
                    Some(flag) => change.enabled = Some(flag),
                    None => problem = Some(format!("enabled must be true or false, not {value:?}")),
                },
                "population" => {
                    change.population =
                        Some(Some(value.trim().to_string()).filter(|p| !p.is_empty()))
                }
                "groups" => {
                    change.groups = Some(
                        value
                            .split([';', '|'])
                            .map(str::trim)
                            .filter(|g| !g.is_empty())
                            .map(String::from)
                            .collect(),
                    )
                }
                _ if value.is_empty() => {}
                _ => {
                    change
                        .attributes
                        .insert(name.clone(), Some(value.to_string()));
                }
            }
        }
        rows.push((line, problem.map_or(Ok(change), Err)));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::AttributeSchema;
    use crate::state::StateDb;

    fn file(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn json_rows_are_located_and_checked() {
        let db = StateDb::in_memory().unwrap();
        let directory = Directory::new(&db, AttributeSchema::default());
        let (_dir, path) = file(
            "people.json",
            r#"[
  {"id": "p1", "email": "a@x.test", "groups": ["prospects"]},
  {"id": "p2",
   "emial": "typo@x.test"},
  {"email": "no-id@x.test"},
  {"id": "p1", "email": "again@x.test"},
  {"id": "p3", "enabled": false, "population": "staff", "employee_number": 42}
]"#,
        );
        let (rows, errors) = read(&path, Format::Json, &directory).unwrap();
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 7]);
        assert_eq!(rows[1].change.enabled, Some(false));
        assert_eq!(
            rows[1].change.attributes["employee_number"],
            Some("42".into())
        );
        let messages: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[0].ends_with(":3: person \"p2\": unknown attribute \"emial\"; did you mean email? (declare custom attributes under [directory] attributes in provisioner.toml)"), "{}", messages[0]);
        assert!(
            messages[1].contains(":5: needs an \"id\""),
            "{}",
            messages[1]
        );
        assert!(
            messages[2].contains(":6: person \"p1\": the id is already used on line 2"),
            "{}",
            messages[2]
        );

        let (_dir, path) = file("broken.json", "[\n {\"id\": \"p1\",\n");
        let error = read(&path, Format::Json, &directory)
            .unwrap_err()
            .to_string();
        assert!(error.contains("broken.json:3"), "{error}");
    }

    #[test]
    fn csv_rows_are_located_and_checked() {
        let db = StateDb::in_memory().unwrap();
        let directory = Directory::new(&db, AttributeSchema::default());
        let (_dir, path) = file(
            "people.csv",
            "id,given_name,email,enabled,groups\np1,Ada,ada@x.test,true,prospects;vip\np2,Bob,,maybe,\n\"p3\",\"Multi\nLine\",c@x.test,no,\np4,too,many,fields,here,extra\n",
        );
        let (rows, errors) = read(&path, Format::Csv, &directory).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 2);
        assert_eq!(
            rows[0].change.groups,
            Some(BTreeSet::from(["prospects".to_string(), "vip".to_string()]))
        );
        assert!(!rows[0].change.attributes.contains_key("enabled"));
        assert_eq!(
            rows[1].line, 4,
            "a quoted newline does not shift later lines"
        );
        assert_eq!(rows[1].change.enabled, Some(false));
        let messages: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(
            messages
                .iter()
                .any(|m| m.contains(":3:") && m.contains("enabled must be true or false")),
            "{messages:?}"
        );
        assert!(messages.iter().any(|m| m.contains(":6:")), "{messages:?}");

        let (_dir, path) = file("typo.csv", "id,emial\np1,\n");
        let error = read(&path, Format::Csv, &directory)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("typo.csv:1: column unknown attribute \"emial\""),
            "{error}"
        );

        let (_dir, path) = file("noid.csv", "email\na@x.test\n");
        let error = read(&path, Format::Csv, &directory)
            .unwrap_err()
            .to_string();
        assert!(
            error.ends_with("noid.csv:1: the header row has no id column"),
            "{error}"
        );
    }
}
