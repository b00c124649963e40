//! A Salesforce world for scenario tests: an emulator, a working directory
//! with the connectors, and a configuration with a Leads and a Contacts
//! connection plus whatever rules a test adds.

#![allow(dead_code)]

use salesforce_emulator::{Emulator, Options};
use serde_json::Value;

use super::*;

pub const ALL: &str =
    "allow_create = true\nallow_update = true\nallow_delete = true\nremove_action = \"delete\"\n";

pub fn sf_connection(name: &str, domain: &str, record_type: &str, preferences: &str) -> String {
    format!(
        r#"
[connections.{name}]
plugin = "salesforce-leads-contacts"
allow_insecure_loopback = true

[connections.{name}.settings]
domain = "{domain}"
record_type = "{record_type}"
default_company = "[not provided]"

[connections.{name}.secrets]
client_id = {{ secrets_file = "client_id" }}
client_secret = {{ secrets_file = "client_secret" }}
access_token = {{ secrets_file = "access_token" }}
refresh_token = {{ secrets_file = "refresh_token" }}

[connections.{name}.preferences]
{preferences}
"#
    )
}

/// An emulator, a working directory with the Salesforce connector, and a
/// configuration of two connections (leads, contacts) plus `rules`.
pub struct World {
    pub emulator: Emulator,
    pub fixture: Fixture,
}

impl World {
    pub async fn new(options: Options) -> World {
        let emulator = Emulator::start(options).await.unwrap();
        let fixture = Fixture::new(&[test_plugins::SALESFORCE, test_plugins::JSON_STORE]);
        fixture.write_secrets(&json_store_secrets());
        World { emulator, fixture }
    }

    pub async fn default() -> World {
        World::new(Options {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            refresh_tokens: vec![REFRESH_TOKEN.into()],
            access_tokens: vec![STALE_ACCESS_TOKEN.into()],
            ..Options::default()
        })
        .await
    }

    pub fn configure(&self, leads: &str, contacts: &str, rest: &str) {
        let domain = self.emulator.domain();
        self.fixture.write_config(&format!(
            "{HEADER}[status]\ntoken = {{ secrets_file = \"status_token\" }}\n\n[sync]\nretry_base_secs = 60\n{}{}{rest}",
            sf_connection("leads", &domain, "Lead", leads),
            sf_connection("contacts", &domain, "Contact", contacts),
        ));
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        self.fixture.provisioner(args, &[]).await
    }

    pub async fn import(&self, people: Value) {
        let path = self.fixture.path().join("import.json");
        std::fs::write(&path, people.to_string()).unwrap();
        let run = self.run(&["people", "import", "import.json"]).await;
        assert_eq!(run.code, Some(0), "{run:?}");
    }

    /// A sync that must succeed; returns its JSON report.
    pub async fn sync(&self) -> Value {
        let run = self.run(&["sync", "--json"]).await;
        assert_eq!(run.code, Some(0), "{run:?}");
        serde_json::from_str(&run.stdout).unwrap()
    }

    /// `provisioner status --json`, which must succeed.
    pub async fn status(&self) -> Value {
        let run = self.run(&["status", "--json"]).await;
        assert_eq!(run.code, Some(0), "{run:?}");
        serde_json::from_str(&run.stdout).unwrap()
    }

    pub fn writes(&self) -> u64 {
        let c = self.emulator.counters();
        c.of("POST composite/sobjects")
            + c.of("PATCH composite/sobjects")
            + c.of("DELETE composite/sobjects")
            + c.of("POST soap")
    }

    pub fn leads(&self) -> Vec<serde_json::Map<String, Value>> {
        self.emulator.records("Lead")
    }
}

pub const PROSPECTS: &str =
    "\n[rules.prospects]\nconnection = \"leads\"\nscope = { group = \"prospects\" }\n";

pub fn prospect(id: &str, title: &str) -> Value {
    serde_json::json!({ "id": id, "groups": ["prospects"], "given_name": "P", "family_name": id, "email": format!("{id}@example.com"), "title": title })
}

pub fn summary(report: &Value, rule: &str, bucket: &str) -> u64 {
    report["summary"][rule][bucket].as_u64().unwrap_or(0)
}

pub fn actions(report: &Value, rule: &str, action: &str) -> u64 {
    report["pass"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == rule)
        .and_then(|r| r["actions"][action].as_u64())
        .unwrap_or(0)
}

/// The emulator answers the next create batch 503 SERVER_UNAVAILABLE, as
/// an org in maintenance does.
pub fn creates_unavailable_once() -> salesforce_emulator::Fault {
    salesforce_emulator::Fault {
        path: "composite/sobjects".into(),
        method: Some("POST".into()),
        status: 503,
        error_code: "SERVER_UNAVAILABLE".into(),
        message: None,
        count: 1,
    }
}
