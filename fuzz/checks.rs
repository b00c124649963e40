//! What every fuzz target checks, shared with the host's test suite, which
//! replays the seed corpus and every kept crasher (`fuzz/regressions/`)
//! through the same functions on every `cargo test`.

#![allow(dead_code, reason = "each fuzz target uses one of these")]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use provisioner::config::Config;
use provisioner::directory::import::{Format, parse};
use provisioner::directory::{AttributeSchema, Directory};
use provisioner::runtime::contract::Value;
use provisioner::state::StateDb;
use provisioner::sync::mapping::Template;
use salesforce_leads_contacts::{soap, wire};

/// provisioner.toml: parsing, then everything computed from it.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::parse(
        std::path::Path::new("fuzz/provisioner.toml"),
        text.to_string(),
    ) else {
        return;
    };
    if let Ok(schema) = config.attribute_schema() {
        let rules = config.rules(&schema);
        for diagnostic in &rules.diagnostics {
            let _ = diagnostic.to_string();
        }
    }
    let _ = config.sync_settings();
    let _ = config.status_listen();
    let _ = config.runtime_options(None);
    let _ = config.http_limits();
    let _ = config.connection_names().count();
}

/// Mapping templates: parse, render, and the invariants between them.
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Template::parse(text) {
        Ok(template) => {
            let person: BTreeMap<String, String> = template
                .attributes()
                .map(|name| (name.to_string(), format!("<{name}>")))
                .collect();
            // Every attribute a template reads shows up when it is set.
            if let Value::Text(rendered) = template.render(&person) {
                for name in template.attributes() {
                    assert!(
                        rendered.contains(&format!("<{name}>")),
                        "{text:?} lost {name}"
                    );
                }
            }
            let _ = template.render(&BTreeMap::new());
        }
        Err(error) => {
            // A position always points inside the template.
            assert!(
                error.position >= 1 && error.position <= text.chars().count().max(1),
                "{error}"
            );
        }
    }
}

fn db() -> &'static StateDb {
    static DB: OnceLock<StateDb> = OnceLock::new();
    DB.get_or_init(|| StateDb::in_memory().expect("an in-memory state"))
}

fn people(data: &[u8], file: &str, format: Format) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let directory = Directory::new(db(), AttributeSchema::default());
    if let Ok((rows, errors)) = parse(file, text, format, &directory) {
        let lines = text.lines().count().max(1);
        for row in &rows {
            assert!(
                row.line >= 1 && row.line <= lines,
                "line {} of {lines}",
                row.line
            );
            assert!(directory.validate(&row.change).is_ok());
        }
        for error in &errors {
            let _ = error.to_string();
        }
    }
}

/// The people importer, JSON.
pub fn people_json(data: &[u8]) {
    people(data, "fuzz.json", Format::Json);
}

/// The people importer, CSV.
pub fn people_csv(data: &[u8]) {
    people(data, "fuzz.csv", Format::Csv);
}

/// The Salesforce connector's response parsing, compiled natively. The
/// first byte says how many records the collection answer is for.
pub fn salesforce_wire(data: &[u8]) {
    let expected = data.first().map(|b| (*b % 8) as usize).unwrap_or(0);
    let body = data.get(1..).unwrap_or_default();
    let _ = wire::parse_errors(body);
    if let Ok(results) = wire::parse_collection(body, expected) {
        assert_eq!(results.len(), expected, "one result per record, always");
    }
    if let Ok(page) = wire::parse_query(body) {
        let _ = page.next;
    }
    for status in [200u16, 400, 401, 404, 500, 503] {
        let _ = wire::classify_response(status, body, None);
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = wire::api_usage(text);
        let _ = soap::parse_answer(text);
    }
}
