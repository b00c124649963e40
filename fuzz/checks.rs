//! What every fuzz target checks, shared with the host's test suite, which
//! replays the seed corpus and every kept crasher (`fuzz/regressions/`)
//! through the same functions on every `cargo test`.

#![allow(dead_code, reason = "each fuzz target uses one of these")]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use provisioner::config::Config;
use provisioner::directory::import::{Format, parse};
use provisioner::directory::{AttributeSchema, Directory};
use provisioner::mapping::Template;
use provisioner::runtime::contract::Value;
use provisioner::state::StateDb;
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

/// The secrets the scrubber target hides. Neither holds `_`, so no piece
/// of one can run into the marker.
const SCRUBBED: [&str; 2] = [
    "00D5g000004Cm2E!AQcAQH0dMHZfz972Szmpvi/x+y=",
    "csec-Hx93-distinctive-secret",
];

/// One of the forms a store might echo `secret` in.
fn echo_form(secret: &str, form: u8) -> String {
    use base64::Engine;
    let percent = |text: &str, all: bool| -> String {
        text.bytes()
            .map(|b| {
                if !all && (b.is_ascii_alphanumeric() || b"-._~".contains(&b)) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    match form % 10 {
        0 => secret.to_string(),
        1 => percent(secret, true),
        2 => percent(secret, false).to_lowercase(),
        3 => secret
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect(),
        4 => secret.chars().map(|c| format!("&#{};", c as u32)).collect(),
        5 => base64::engine::general_purpose::STANDARD.encode(secret),
        6 => secret.to_ascii_uppercase(),
        7 => secret[..24].to_string(),
        8 => percent(&percent(secret, true), true),
        _ => percent(secret, true).replace('%', "\\u0025"),
    }
}

/// The broker's response scrubber. In the input, `0xFF k` stands for a
/// form of a secret, set off by spaces; every other byte stands for
/// itself. Whatever surrounds them, no run of the secrets' bytes as long
/// as a fragment survives, no form set off by spaces survives, and an
/// answer with nothing to scrub comes back as it was.
pub fn scrub(data: &[u8]) {
    use provisioner::broker::scrub::{FRAGMENT, MARKER, Scrubber};
    static SCRUBBER: OnceLock<Scrubber> = OnceLock::new();
    let scrubber = SCRUBBER.get_or_init(|| Scrubber::new(SCRUBBED));
    let mut haystack = Vec::new();
    let mut forms = Vec::new();
    let mut at = 0;
    while at < data.len() {
        match (data[at], data.get(at + 1)) {
            (0xFF, Some(&k)) => {
                let form = echo_form(SCRUBBED[(k & 1) as usize], k >> 1);
                haystack.push(b' ');
                haystack.extend_from_slice(form.as_bytes());
                haystack.push(b' ');
                forms.push(form);
                at += 2;
            }
            (byte, _) => {
                haystack.push(byte);
                at += 1;
            }
        }
    }
    let (out, count) = scrubber.scrub(&haystack);
    if count == 0 {
        assert_eq!(
            &*out,
            &haystack[..],
            "nothing found, yet the answer changed"
        );
    }
    assert!(out.len() <= haystack.len() + count * MARKER.len());
    let lower = out.to_ascii_lowercase();
    let contains = |needle: &[u8]| lower.windows(needle.len()).any(|w| w == needle);
    for secret in SCRUBBED {
        for window in secret.as_bytes().windows(FRAGMENT) {
            assert!(
                !contains(&window.to_ascii_lowercase()),
                "{:?} survived",
                String::from_utf8_lossy(window)
            );
        }
    }
    for form in forms {
        assert!(
            !contains(&form.to_ascii_lowercase().into_bytes()),
            "the form {form:?} survived"
        );
    }
}

/// SCIM filters and PATCH paths, text straight from an HTTP request:
/// refused with an error, never a panic or an overflowed stack; a filter
/// that parses evaluates against a User, and its negation disagrees with
/// it; a path that parses applies to a User.
pub fn scim_filter(data: &[u8]) {
    use provisioner::scim::{filter, patch};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let user = scim_user();
    let exact = |path: &filter::AttrPath| path.name.eq_ignore_ascii_case("id");
    if let Ok(parsed) = filter::parse(text) {
        let _ = parsed.equality();
        if let Ok(matched) = parsed.matches(user, &exact) {
            let negated = filter::Filter::Not(Box::new(parsed.clone()));
            assert_eq!(negated.matches(user, &exact).ok(), Some(!matched), "{text}");
        }
    }
    if let Ok(path) = patch::parse_path(text) {
        for op in [patch::Op::Add, patch::Op::Replace, patch::Op::Remove] {
            let mut target = user.clone();
            let value = serde_json::Value::String("x".into());
            let _ = patch::apply(&mut target, op, Some(&path), Some(&value), &exact);
        }
    }
    let _ = filter::AttrPath::parse(text);
}

/// A User with something of every shape: simple, complex, multi-valued,
/// boolean, and an extension.
fn scim_user() -> &'static serde_json::Value {
    static USER: OnceLock<serde_json::Value> = OnceLock::new();
    USER.get_or_init(|| {
        serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "p1",
            "userName": "ada@example.com",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "active": true,
            "emails": [{"value": "ada@example.com", "type": "work", "primary": true},
                       {"value": "ada@home.example", "type": "home"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "Research", "manager": {"value": "p0"}
            },
            "meta": {"version": "W/\"3\"", "lastModified": "2026-11-29T12:00:00Z"}
        })
    })
}
