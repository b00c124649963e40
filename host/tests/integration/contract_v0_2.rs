//! Contract 0.2 through the real binary and the real runtime: typed and
//! list values from mappings, the per-connection cache and its limits,
//! group operations and schema discovery across the boundary, and a 0.1
//! connector loaded beside a 0.2 one. The probe connector answers from
//! what it received, so every assertion is about what crossed.

use crate::common;

use common::world::{ALL, PROSPECTS, World, actions, prospect, sf_connection};
use common::*;
use provisioner::runtime::contract::{GroupOperation, Operation, StoreError};
use serde_json::{Value, json};

const DIRECTORY: &str = "[directory]\nattributes = [\"team\", \"role\", \"vip\", \"level\"]\n";

fn probe(name: &str) -> String {
    format!(
        "\n[connections.{name}]\nplugin = \"probe\"\n\n[connections.{name}.settings]\nlabel = \"{name}\"\n"
    )
}

fn probe_fixture(rules: &str) -> Fixture {
    let fixture = Fixture::new(&[test_plugins::PROBE, test_plugins::SALESFORCE_V0_1]);
    fixture.write_config(&format!(
        "{HEADER}{DIRECTORY}{}{}{rules}",
        probe("a"),
        probe("b")
    ));
    fixture.write_secrets(&json_store_secrets());
    fixture
}

const RULE: &str = "\n[rules.everyone]\nconnection = \"a\"\nscope = { group = \"staff\" }\n";

/// The record id the probe gave a person: what its create received.
async fn received(fixture: &Fixture, person: &str) -> Value {
    let run = fixture
        .provisioner(&["status", "person", person, "--json"], &[])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let status: Value = serde_json::from_str(&run.stdout).unwrap();
    let target = status["rules"][0]["link"]["target_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no record for {person}: {status}"))
        .to_string();
    serde_json::from_str(target.trim_start_matches("probe:")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mappings_give_each_target_its_declared_type_and_lists_their_elements() {
    let fixture = probe_fixture(RULE);
    let people = json!([
        { "id": "ada", "groups": ["staff"], "email": "ada@example.com", "team": "eng", "role": "lead", "vip": "TRUE", "level": "7" },
        { "id": "bob", "groups": ["staff"], "email": "bob@example.com", "team": "ops", "vip": "maybe", "level": "07" },
    ]);
    std::fs::write(fixture.path().join("p.json"), people.to_string()).unwrap();
    let run = fixture
        .provisioner(&["people", "import", "p.json"], &[])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let run = fixture.provisioner(&["sync"], &[]).await;
    assert_eq!(run.code, Some(0), "{run:?}");

    let ada = received(&fixture, "ada").await;
    assert_eq!(ada["tags"], json!(["eng", "lead"]), "{ada}");
    assert_eq!(ada["vip"], json!(true), "a boolean target gets a boolean");
    assert_eq!(ada["level"], json!(7), "an integer target gets a number");
    let bob = received(&fixture, "bob").await;
    assert_eq!(bob["tags"], json!(["ops"]), "an empty element is left out");
    // Text that is not of the type stays text: the store's answer decides.
    assert_eq!(bob["vip"], json!("maybe"));
    assert_eq!(bob["level"], json!("07"), "not a plain number");

    // The state remembers the typed values: nothing differs on a second pass.
    let run = fixture.provisioner(&["sync", "--json"], &[]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(actions(&report, "everyone", "updated"), 0, "{report}");
    assert_eq!(actions(&report, "everyone", "unchanged"), 2, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_and_types_that_cannot_be_written_are_refused_before_any_pass() {
    let cases = [
        (
            // A 0.1 connector has no list values.
            "\n[rules.r]\nconnection = \"leads\"\nscope = { group = \"staff\" }\nextend_defaults = true\n\n[[rules.r.mappings]]\ntarget = \"Description\"\ntemplates = [\"{team}\", \"{role}\"]\n",
            "a list of templates needs a text-list target, and plugin salesforce-leads-contacts does not declare Description as one",
        ),
        (
            "\n[rules.r]\nconnection = \"a\"\nscope = { group = \"staff\" }\nextend_defaults = true\n\n[[rules.r.mappings]]\ntarget = \"vip\"\nconstant = \"yes\"\n",
            "rule r: mapping for vip: constant \"yes\" is not a boolean, which plugin probe declares vip to be",
        ),
        (
            "\n[rules.r]\nconnection = \"a\"\nscope = { group = \"staff\" }\nextend_defaults = true\n\n[[rules.r.mappings]]\ntarget = \"email\"\ntemplates = [\"{team}\"]\n",
            "plugin probe declares email as text",
        ),
    ];
    for (rule, expected) in cases {
        let fixture = probe_fixture(&format!(
            "{}{rule}",
            sf_connection("leads", "127.0.0.1:9", "Lead", "")
        ));
        let run = fixture.provisioner(&["check"], &[]).await;
        assert_ne!(run.code, Some(0), "{run:?}");
        assert!(
            run.all().contains(expected),
            "{expected:?} missing:\n{}",
            run.all()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_lasts_between_calls_keeps_to_its_connection_and_its_limits() {
    let fixture = probe_fixture("");
    // Both connections bound to one loaded plugin, as a daemon binds them.
    let (_runtime, plugins, a) = connect(&fixture, runtime_options(), "a").await;
    let config = provisioner::config::Config::load(&fixture.config_path()).unwrap();
    let b = bind(&config, &plugins, "b");
    let first = a.test_connection().await.unwrap();
    assert_eq!(first.summary, "seen before: nothing");
    let detail = |report: &provisioner::runtime::contract::ConnectionReport, name: &str| {
        report
            .details
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert!(
        detail(&first, "oversized").contains("at most 65536 bytes"),
        "{first:?}"
    );
    assert_eq!(
        detail(&first, "kept"),
        "31",
        "32 entries, `seen` among them"
    );
    assert_eq!(
        detail(&first, "seen-kept"),
        "true",
        "the keys that expire first were evicted, not `seen`"
    );
    // Another call of the same connection sees what the first kept; another
    // connection of the same plugin sees nothing of it.
    let again = a.test_connection().await.unwrap();
    assert_eq!(again.summary, "seen before: a");
    let other = b.test_connection().await.unwrap();
    assert_eq!(other.summary, "seen before: nothing", "{other:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_operations_and_answers_cross_the_boundary_whole() {
    let fixture = probe_fixture("");
    let (_runtime, _plugins, probe) = connect(&fixture, runtime_options(), "a").await;
    let answers = probe
        .apply_groups(vec![
            GroupOperation::Create {
                display_name: "eng".into(),
                members: vec!["u1".into(), "u2".into()],
            },
            GroupOperation::Rename {
                id: "g9".into(),
                display_name: "ops".into(),
                version: Some("v3".into()),
            },
            GroupOperation::AddMembers {
                id: "g9".into(),
                members: vec!["u3".into()],
            },
            GroupOperation::RemoveMembers {
                id: "g9".into(),
                members: vec!["u1".into(), "u2".into()],
            },
            GroupOperation::Delete { id: "g9".into() },
        ])
        .await
        .unwrap();
    let ids: Vec<String> = answers.into_iter().map(|a| a.unwrap().id).collect();
    assert_eq!(
        ids,
        [
            "group:eng:u1+u2",
            "g9:ops:v3",
            "g9+u3",
            "g9-u1-u2",
            "deleted:g9"
        ]
    );
    let found = probe
        .lookup_groups(vec!["eng".into(), "absent".into()])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        (
            found[0].id.as_str(),
            found[0].members.len(),
            found[0].version.as_deref()
        ),
        ("group:eng", 2, Some("g1"))
    );
    let first = probe.list_groups(None).await.unwrap();
    assert_eq!(first.next_cursor.as_deref(), Some("second"));
    let second = probe.list_groups(first.next_cursor).await.unwrap();
    assert_eq!(second.groups[0].display_name, "second");
    assert_eq!(second.next_cursor, None);

    // Versions travel both ways through `apply`, and `enable` is its own
    // operation.
    let answers = probe
        .apply(vec![
            Operation::Update {
                id: "r1".into(),
                attributes: vec![],
                version: Some("v5".into()),
            },
            Operation::Enable {
                id: "r2".into(),
                attributes: vec![],
                version: None,
            },
        ])
        .await
        .unwrap();
    let update = answers[0].as_ref().unwrap();
    assert_eq!(update.version.as_deref(), Some("after-v5"));
    assert_eq!(answers[1].as_ref().unwrap().id, "enabled:r2");
}

/// The Salesforce connector's two builds from one source, on the SDK:
/// contract 0.2 and, with the SDK's `contract-0-1` feature, 0.1. Each
/// provisions the same people into an org of its own; the orgs end up the
/// same, through the same requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_salesforce_connector_works_the_same_built_for_0_1_and_for_0_2() {
    let mut results = Vec::new();
    for (component, contract) in [
        (test_plugins::SALESFORCE, "0.2.0"),
        (test_plugins::SALESFORCE_V0_1, "0.1.0"),
    ] {
        let world = World::default().await;
        let world = World {
            fixture: Fixture::new(&[component]),
            ..world
        };
        world.fixture.write_secrets(&json_store_secrets());
        world.configure(ALL, ALL, PROSPECTS);
        let run = world.run(&["plugins", "list", "--json"]).await;
        let listed: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(listed["plugins"][0]["contract"], contract, "{listed}");
        // What the operator sees of the plugin, but for the contract and
        // the attribute types 0.1 cannot declare.
        let run = world
            .run(&["plugins", "inspect", "salesforce-leads-contacts", "--json"])
            .await;
        let mut described: Value = serde_json::from_str(&run.stdout).unwrap();
        if let Some(d) = described.as_object_mut() {
            d.remove("contract");
            d.remove("path");
        }
        if let Some(d) = described["descriptor"].as_object_mut() {
            d.remove("attributes");
        }
        assert_eq!(
            described["descriptor"]["settings"].as_array().map(Vec::len),
            Some(11),
            "{described}"
        );
        let run = world.run(&["connections", "test", "leads"]).await;
        assert_eq!(run.code, Some(0), "{run:?}");

        world
            .import(json!([
                prospect("a", "CTO"),
                prospect("b", "CEO"),
                prospect("c", "CFO")
            ]))
            .await;
        world.sync().await;
        world
            .run(&["people", "set", "a", "--attr", "title=COO"])
            .await;
        world.run(&["people", "delete", "c"]).await;
        let report = world.sync().await;
        assert_eq!(actions(&report, "prospects", "updated"), 1, "{report}");
        assert_eq!(actions(&report, "prospects", "removed"), 1, "{report}");
        // A full pass reads every linked record back through lookups.
        let run = world.run(&["sync", "--full", "--json"]).await;
        let full: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(actions(&full, "prospects", "unchanged"), 2, "{full}");
        // The records, field by field, but for what the org stamps itself.
        let mut leads: Vec<Vec<(String, Value)>> = world
            .leads()
            .into_iter()
            .map(|lead| {
                lead.into_iter()
                    .filter(|(k, _)| {
                        !matches!(
                            k.as_str(),
                            "Id" | "attributes"
                                | "CreatedDate"
                                | "LastModifiedDate"
                                | "SystemModstamp"
                        )
                    })
                    .collect()
            })
            .collect();
        leads.sort_by_key(|fields| format!("{fields:?}"));
        let requests = world.emulator.counters().requests;
        results.push((described, leads, requests));
    }
    let emails: Vec<String> = results[0]
        .1
        .iter()
        .filter_map(|fields| fields.iter().find(|(k, _)| k == "Email"))
        .map(|(_, v)| v.as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(emails, ["a@example.com", "b@example.com"]);
    assert_eq!(results[0].0, results[1].0, "the same descriptor");
    assert_eq!(results[0].1, results[1].1, "the same records");
    assert_eq!(
        results[0].2, results[1].2,
        "the same requests, kind by kind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_connector_loads_beside_a_0_2_one_and_simply_has_no_groups() {
    let fixture = Fixture::new(&[test_plugins::PROBE, test_plugins::SALESFORCE_V0_1]);
    fixture.write_config(&format!(
        "{HEADER}{DIRECTORY}{}{}",
        probe("a"),
        sf_connection("leads", "127.0.0.1:9", "Lead", "")
    ));
    fixture.write_secrets(&json_store_secrets());
    let run = fixture
        .provisioner(&["plugins", "list", "--json"], &[])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let listed: Value = serde_json::from_str(&run.stdout).unwrap();
    let contract = |name: &str| {
        listed["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["contract"].clone())
    };
    assert_eq!(contract("probe"), Some(json!("0.2.0")));
    assert_eq!(contract("salesforce-leads-contacts"), Some(json!("0.1.0")));

    let (_runtime, _plugins, leads) = connect(&fixture, runtime_options(), "leads").await;
    let answers = leads
        .apply_groups(vec![GroupOperation::Delete { id: "g".into() }])
        .await
        .unwrap();
    assert!(
        matches!(&answers[0], Err(StoreError::Unsupported(m)) if m.contains("does not declare the groups capability")),
        "{answers:?}"
    );
    let lookup = leads.lookup_groups(vec!["x".into()]).await;
    assert!(
        matches!(
            lookup,
            Err(provisioner::runtime::CallError::Store {
                error: StoreError::Unsupported(_),
                ..
            })
        ),
        "{lookup:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_test_warns_of_targets_the_store_s_schema_does_not_have() {
    let rule = format!(
        "{RULE}extend_defaults = true\n\n[[rules.everyone.mappings]]\ntarget = \"nickname\"\nsource = \"role\"\n"
    );
    let fixture = probe_fixture(&rule);
    let run = fixture
        .provisioner(&["connections", "test", "a", "--json"], &[])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let report: Value = serde_json::from_str(&run.stdout).expect("stdout stays JSON");
    assert!(report.is_object(), "{report}");
    assert!(
        run.stderr.contains(
            "warning: rule everyone maps nickname, which the store's schema does not have"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("rule everyone writes vip as boolean, but the store's schema says text"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("maps tags"), "{}", run.stderr);
}
