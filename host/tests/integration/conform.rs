//! `provisioner plugins conform`: the conformance kit, run by the real
//! binary through real connectors against live stores on loopback. The
//! connectors this project ships pass it; a misbehaving one fails it with
//! the promise it broke.

use crate::common;

use common::world::*;
use common::*;
use serde_json::Value;

/// Runs `plugins conform CONNECTION --json` (plus `extra`); the exit code
/// and the report.
async fn conform(fixture: &Fixture, connection: &str, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["plugins", "conform", connection, "--json"];
    args.extend_from_slice(extra);
    let run = fixture.provisioner(&args, &[]).await;
    let report = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {run:?}"));
    (run.code, report)
}

pub(crate) fn verdict<'r>(report: &'r Value, check: &str) -> &'r str {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .and_then(|c| c["verdict"].as_str())
        .unwrap_or_else(|| panic!("no check {check:?}: {report}"))
}

fn detail<'r>(report: &'r Value, check: &str) -> &'r str {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .and_then(|c| c["detail"].as_str())
        .unwrap_or_default()
}

/// Every check a store with every capability must pass.
const ALL_CHECKS: &[&str] = &[
    "describe: name",
    "describe: version",
    "describe: auth",
    "describe: capabilities",
    "describe: default mappings",
    "test-connection",
    "test-connection refuses wrong credentials",
    "create",
    "lookup",
    "read back as written",
    "update",
    "versions",
    "list",
    "batch with a bad operation",
    "delete",
    "lookup after delete",
    "update after delete",
    "transient answers",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_store_connector_conforms_and_leaves_nothing_behind() {
    let server = json_store::JsonStore::start(json_store_options())
        .await
        .unwrap();
    let fixture = json_store_fixture(&server);
    let (code, report) = conform(&fixture, "store", &[]).await;
    assert_eq!(code, Some(0), "{report:#}");
    for check in ALL_CHECKS.iter().chain(&["disable", "enable"]) {
        assert_eq!(verdict(&report, check), "pass", "{check}: {report:#}");
    }
    assert_eq!(report["left"], serde_json::json!([]));
    assert!(server.people().is_empty(), "{:?}", server.people());

    // --keep leaves the run's records, tagged, and says which.
    let (code, report) = conform(&fixture, "store", &["--keep"]).await;
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(
        report["left"].as_array().map(Vec::len),
        Some(3),
        "{report:#}"
    );
    let run = report["run"].as_str().unwrap();
    let people = server.people();
    assert_eq!(people.len(), 3);
    assert!(
        people.iter().all(|(_, a)| a["email"]
            .as_str()
            .is_some_and(|e| e.starts_with(&format!("provisioner-conform-{run}-")))),
        "{people:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_salesforce_connector_conforms_against_the_emulator() {
    let world = World::default().await;
    world.configure(ALL, ALL, "");
    let (code, report) = conform(&world.fixture, "leads", &[]).await;
    assert_eq!(code, Some(0), "{report:#}");
    for check in ALL_CHECKS.iter().filter(|c| **c != "versions") {
        assert_eq!(verdict(&report, check), "pass", "{check}: {report:#}");
    }
    assert_eq!(
        verdict(&report, "disable"),
        "skip",
        "Leads cannot be disabled"
    );
    assert_eq!(verdict(&report, "enable"), "skip");
    assert_eq!(
        detail(&report, "versions"),
        "the store reports no record versions"
    );
    assert!(world.leads().is_empty(), "{:?}", world.leads());
    let run = world.run(&["plugins", "conform", "leads"]).await;
    assert!(run.stdout.contains("0 failed"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misbehaving_connector_fails_with_the_promise_it_broke() {
    let server = json_store::JsonStore::start(json_store_options())
        .await
        .unwrap();
    let fixture = Fixture::new(&[test_plugins::JSON_STORE, test_plugins::PANIC]);
    fixture.write_config(&format!(
        "{HEADER}{}\n[connections.panic]\nplugin = \"panic\"\n[connections.panic.settings]\ndomain = \"example.com\"\n",
        json_store_connection("store", &server.host())
    ));
    fixture.write_secrets(&json_store_secrets());
    let (code, report) = conform(&fixture, "panic", &[]).await;
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(verdict(&report, "test-connection"), "fail");
    assert!(
        detail(&report, "test-connection").contains("panicked on purpose"),
        "{report:#}"
    );
    assert_eq!(verdict(&report, "describe: default mappings"), "fail");
    assert!(
        detail(&report, "describe: default mappings").contains("nothing maps to email"),
        "{report:#}"
    );
    assert_eq!(verdict(&report, "create"), "skip", "{report:#}");
    assert_eq!(verdict(&report, "transient answers"), "fail", "{report:#}");

    // Text output: one row a check, failures marked.
    let run = fixture
        .provisioner(&["plugins", "conform", "panic"], &[])
        .await;
    assert_eq!(run.code, Some(1));
    assert!(run.stdout.contains("FAIL"), "{run:?}");
    assert!(run.stdout.contains("3 failed"), "{run:?}");
}

/// A store that breaks a promise makes the kit fail the check for it, with
/// the promise in the reason: a case-sensitive search, pages that repeat a
/// record, and an attribute that never reads back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_breaks_a_promise_fails_the_check_for_it() {
    let quirks = [
        (
            json_store::Quirks {
                case_sensitive_search: true,
                ..Default::default()
            },
            "lookup",
            "whatever its case",
            vec!["lookup"],
        ),
        (
            json_store::Quirks {
                overlapping_pages: true,
                ..Default::default()
            },
            "list",
            "more than once",
            vec!["list"],
        ),
        (
            json_store::Quirks {
                hidden_attribute: Some("given_name".into()),
                ..Default::default()
            },
            "read back as written",
            "given_name written",
            vec!["read back as written", "update"],
        ),
        (
            json_store::Quirks {
                ignore_versions: true,
                ..Default::default()
            },
            "versions",
            "must fail as conflict",
            vec!["versions"],
        ),
        (
            json_store::Quirks {
                ignore_deletes: true,
                ..Default::default()
            },
            "lookup after delete",
            "must not find a deleted record",
            vec!["lookup after delete", "update after delete"],
        ),
    ];
    for (quirks, check, reason, failing) in quirks {
        let server = json_store::JsonStore::start(json_store::Options {
            quirks,
            ..json_store_options()
        })
        .await
        .unwrap();
        let fixture = json_store_fixture(&server);
        // Two records a page, so that three make a second page.
        let config = std::fs::read_to_string(fixture.config_path()).unwrap();
        fixture.write_config(&config.replace(
            "[connections.store.settings]\n",
            "[connections.store.settings]\npage_size = 2\n",
        ));
        let (code, report) = conform(&fixture, "store", &[]).await;
        assert_eq!(code, Some(1), "{check}: {report:#}");
        assert_eq!(verdict(&report, check), "fail", "{check}: {report:#}");
        assert!(
            detail(&report, check).contains(reason),
            "{check}: {report:#}"
        );
        let failed: Vec<&str> = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["verdict"] == "fail")
            .filter_map(|c| c["check"].as_str())
            .collect();
        assert_eq!(failed, failing, "{check}: {report:#}");
        // Whatever the run could not remove is reported, by id.
        let left: Vec<&str> = report["left"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let there: Vec<String> = server.people().into_iter().map(|(id, _)| id).collect();
        assert_eq!(left, there, "{check}: {report:#}");
    }
}

/// Every misbehaving test connector fails the kit, each with the promise it
/// broke in the reason: the sandbox's limits, the egress allowlist, and a
/// descriptor that cannot provision anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_misbehaving_connector_fails_with_its_reason() {
    let cases = [
        ("loop-forever", test_plugins::LOOP_FOREVER, "CPU budget"),
        ("memory-bomb", test_plugins::MEMORY_BOMB, "memory cap"),
        ("disallowed-host", test_plugins::DISALLOWED_HOST, "denied"),
    ];
    let fixture = Fixture::new(&cases.map(|(_, path, _)| path));
    let mut config = format!("{HEADER}[runtime]\ncpu_budget_ms = 300\nmemory_limit_mib = 16\n");
    for (name, _, _) in &cases {
        config.push_str(&format!(
            "\n[connections.{name}]\nplugin = \"{name}\"\n[connections.{name}.settings]\ndomain = \"example.com\"\ntarget_url = \"https://elsewhere.example.net/\"\n"
        ));
    }
    fixture.write_config(&config);
    fixture.write_secrets(&json_store_secrets());
    for (name, _, reason) in cases {
        let (code, report) = conform(&fixture, name, &[]).await;
        assert_eq!(code, Some(1), "{name}: {report:#}");
        assert_eq!(
            verdict(&report, "test-connection"),
            "fail",
            "{name}: {report:#}"
        );
        assert!(
            detail(&report, "test-connection").contains(reason),
            "{name}: {report:#}"
        );
        // None of them declares a mapping to its match attribute either.
        assert_eq!(
            verdict(&report, "describe: default mappings"),
            "fail",
            "{name}: {report:#}"
        );
    }
}
