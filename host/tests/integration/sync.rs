//! The sync engine, scenario by scenario: the real binary, the real
//! connectors, the emulator (or the JSON store) over loopback, and the
//! emulator's counters as the witness of what was sent.

use crate::common;

use std::time::Duration;

use common::world::*;
use common::*;
use salesforce_emulator::{Latency, Options};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_forbidden_leaves_people_unsynced_and_nothing_is_sent() {
    let world = World::default().await;
    world.configure("allow_create = false", ALL, PROSPECTS);
    world.import(json!([prospect("a", "CTO")])).await;
    let report = world.sync().await;
    assert_eq!(summary(&report, "prospects", "unsynced"), 1, "{report}");
    assert_eq!(world.writes(), 0);
    assert!(world.leads().is_empty());

    world.configure(ALL, ALL, PROSPECTS);
    let report = world.sync().await;
    assert_eq!(summary(&report, "prospects", "success"), 1, "{report}");
    assert_eq!(world.leads().len(), 1);
}

/// "Update only": with creating forbidden, a record the store has is
/// still adopted and kept up to date, and a person without one is looked
/// up once, then again only when their data changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_forbidden_still_adopts_and_updates_what_the_store_has() {
    let world = World::default().await;
    world.configure("allow_create = false", ALL, PROSPECTS);
    let lead = world
        .emulator
        .seed(
            "Lead",
            json!({ "LastName": "a", "Company": "X", "Email": "A@example.com", "Title": "Intern" }),
        )
        .unwrap();
    world
        .import(json!([prospect("a", "CTO"), prospect("b", "CTO")]))
        .await;
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "adopted"), 1, "{report}");
    assert_eq!(actions(&report, "prospects", "updated"), 1, "{report}");
    assert_eq!(summary(&report, "prospects", "unsynced"), 1, "{report}");
    assert_eq!(world.emulator.record(&lead).unwrap()["Title"], "CTO");
    assert_eq!(world.leads().len(), 1, "nobody is created");

    let lookups = world.emulator.counters().of("GET query");
    let report = world.sync().await;
    assert_eq!(summary(&report, "prospects", "unsynced"), 1, "{report}");
    assert_eq!(
        world.emulator.counters().of("GET query"),
        lookups,
        "b's data did not change: not looked up again"
    );
    world
        .import(json!([prospect("a", "CTO"), prospect("b", "CEO")]))
        .await;
    world.sync().await;
    assert_eq!(world.emulator.counters().of("GET query"), lookups + 1);
    assert_eq!(world.leads().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_forbidden_leaves_records_partially_synced() {
    let world = World::default().await;
    world.configure(ALL, ALL, PROSPECTS);
    world.import(json!([prospect("a", "CTO")])).await;
    world.sync().await;

    world.configure(
        "allow_update = false\nallow_delete = true\nremove_action = \"delete\"",
        ALL,
        PROSPECTS,
    );
    world.import(json!([prospect("a", "CEO")])).await;
    let report = world.sync().await;
    assert_eq!(
        summary(&report, "prospects", "partially-synced"),
        1,
        "{report}"
    );
    assert_eq!(world.emulator.counters().of("PATCH composite/sobjects"), 0);
    assert_eq!(world.leads()[0]["Title"], "CTO");

    world.configure(ALL, ALL, PROSPECTS);
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "updated"), 1, "{report}");
    assert_eq!(world.leads()[0]["Title"], "CEO");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_follows_allow_deprovision_allow_delete_and_remove_action() {
    let world = World::default().await;
    world.configure(ALL, ALL, PROSPECTS);
    world
        .import(json!([
            prospect("a", "CTO"),
            prospect("b", "CTO"),
            prospect("c", "CTO")
        ]))
        .await;
    world.sync().await;
    assert_eq!(world.leads().len(), 3);

    // a is deleted, b disabled, c leaves the group.
    world.run(&["people", "delete", "a"]).await;
    world.run(&["people", "disable", "b"]).await;
    world
        .run(&["groups", "remove-member", "prospects", "c"])
        .await;

    world.configure("allow_deprovision = false", ALL, PROSPECTS);
    let report = world.sync().await;
    assert_eq!(
        summary(&report, "prospects", "partially-synced"),
        3,
        "kept: {report}"
    );
    assert_eq!(world.leads().len(), 3);

    world.configure(
        "allow_delete = false\nremove_action = \"delete\"",
        ALL,
        PROSPECTS,
    );
    let report = world.sync().await;
    assert!(
        report["pass"]
            .to_string()
            .contains("deleting records is not allowed"),
        "{report}"
    );
    assert_eq!(world.leads().len(), 3);
    assert_eq!(world.emulator.counters().of("DELETE composite/sobjects"), 0);

    world.configure(ALL, ALL, PROSPECTS);
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "removed"), 3, "{report}");
    assert!(world.leads().is_empty());
    assert_eq!(
        world.emulator.counters().of("DELETE composite/sobjects"),
        1,
        "one batch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_action_disable_uses_the_disable_capability() {
    let store = json_store::JsonStore::start(json_store_options())
        .await
        .unwrap();
    let fixture = Fixture::new(&[test_plugins::JSON_STORE]);
    fixture.write_secrets(&json_store_secrets());
    let config = |prefs: &str| {
        format!(
            "{HEADER}{}\n[connections.store.preferences]\n{prefs}\n\n[rules.staff]\nconnection = \"store\"\nscope = {{ group = \"staff\" }}\n",
            json_store_connection("store", &store.host())
        )
    };
    fixture.write_config(&config("remove_action = \"disable\"\nallow_disable = true"));
    std::fs::write(
        fixture.path().join("p.json"),
        json!([{ "id": "s1", "groups": ["staff"], "given_name": "S", "family_name": "One", "email": "s1@example.com" }]).to_string(),
    )
    .unwrap();
    assert_eq!(
        fixture
            .provisioner(&["people", "import", "p.json"], &[])
            .await
            .code,
        Some(0)
    );
    assert_eq!(fixture.provisioner(&["sync"], &[]).await.code, Some(0));
    assert_eq!(store.people().len(), 1);
    assert_eq!(store.people()[0].1["active"], true);

    fixture.provisioner(&["people", "disable", "s1"], &[]).await;
    fixture.write_config(&config(
        "remove_action = \"disable\"\nallow_disable = false",
    ));
    let run = fixture.provisioner(&["sync"], &[]).await;
    assert!(
        run.stdout.contains("disabling records is not allowed"),
        "{run:?}"
    );
    assert_eq!(store.people()[0].1["active"], true);

    fixture.write_config(&config("remove_action = \"disable\"\nallow_disable = true"));
    let run = fixture.provisioner(&["sync"], &[]).await;
    assert!(run.stdout.contains("disabled 1"), "{run:?}");
    assert_eq!(store.people()[0].1["active"], false);
    assert_eq!(store.people().len(), 1, "disabled, not deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_records_are_adopted_and_a_second_pass_sends_nothing() {
    let world = World::default().await;
    world.configure(ALL, ALL, PROSPECTS);
    let by_hand = world
        .emulator
        .seed("Lead", json!({ "LastName": "a", "Company": "Acme", "Email": "A@EXAMPLE.COM", "Title": "CTO", "FirstName": "P" }))
        .unwrap();
    world
        .import(json!([prospect("a", "CTO"), prospect("b", "CTO")]))
        .await;
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "adopted"), 1, "{report}");
    assert_eq!(actions(&report, "prospects", "created"), 1, "{report}");
    assert_eq!(world.leads().len(), 2, "adopted, not duplicated");
    assert!(world.leads().iter().any(|l| l["Id"] == json!(by_hand)));

    let before = world.emulator.counters().total();
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "unchanged"), 2, "{report}");
    assert_eq!(
        world.emulator.counters().total(),
        before,
        "no request at all"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_sends_nothing_and_prints_the_plan() {
    let world = World::default().await;
    world.configure(ALL, ALL, PROSPECTS);
    world
        .import(json!([prospect("a", "CTO"), prospect("b", "CTO")]))
        .await;
    world.sync().await;
    world
        .import(json!([prospect("a", "CEO"), prospect("c", "CTO")]))
        .await;
    world.run(&["people", "delete", "b"]).await;
    let before = world.emulator.counters();
    let run = world.run(&["sync", "--dry-run"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        world.emulator.counters(),
        before,
        "zero requests, token endpoint included"
    );
    assert!(run.stdout.contains("[dry run]"), "{}", run.stdout);
    let line = |person: &str| {
        run.stdout
            .lines()
            .find(|l| l.trim_start().starts_with(person))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line("a ").contains("update") && line("a ").contains("Title"),
        "{}",
        run.stdout
    );
    assert!(line("b ").contains("delete"), "{}", run.stdout);
    assert!(line("c ").contains("create or adopt"), "{}", run.stdout);
    // And nothing was recorded: the real pass still does all of it.
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "updated"), 1, "{report}");
    assert_eq!(actions(&report, "prospects", "removed"), 1, "{report}");
    assert_eq!(actions(&report, "prospects", "created"), 1, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_rule_removes_its_records_only_when_asked() {
    for deprovision in [false, true] {
        let world = World::default().await;
        let prefs = format!("{ALL}deprovision_on_rule_deletion = {deprovision}\n");
        world.configure(&prefs, ALL, PROSPECTS);
        world
            .import(json!([prospect("a", "CTO"), prospect("b", "CTO")]))
            .await;
        world.sync().await;
        assert_eq!(world.leads().len(), 2);

        world.configure(&prefs, ALL, "");
        let report = world.sync().await;
        if deprovision {
            assert_eq!(actions(&report, "prospects", "removed"), 2, "{report}");
            assert!(world.leads().is_empty());
        } else {
            assert_eq!(world.leads().len(), 2, "the records stay");
            assert_eq!(world.writes(), 1, "only the first create batch");
        }
        // Either way the rule is gone from the state: a new rule of the same
        // name starts from nothing and adopts.
        world.configure(&prefs, ALL, PROSPECTS);
        let report = world.sync().await;
        let expected = if deprovision { "created" } else { "adopted" };
        assert_eq!(actions(&report, "prospects", expected), 2, "{report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_converts_in_place_or_removes_and_creates() {
    for convert in [true, false] {
        let world = World::default().await;
        let customers = format!(
            "\n[rules.customers]\nconnection = \"contacts\"\nscope = {{ group = \"customers\" }}\n{}",
            if convert {
                "convert_from = \"prospects\"\n"
            } else {
                ""
            }
        );
        world.configure(ALL, ALL, &format!("{PROSPECTS}{customers}"));
        world.import(json!([prospect("a", "CTO")])).await;
        world.sync().await;
        let lead = world.leads()[0]["Id"].as_str().unwrap().to_string();

        world
            .run(&["groups", "remove-member", "prospects", "a"])
            .await;
        world.run(&["groups", "add-member", "customers", "a"]).await;
        let report = world.sync().await;
        let contacts = world.emulator.records("Contact");
        assert_eq!(contacts.len(), 1, "{report}");
        assert_eq!(contacts[0]["Email"], "a@example.com");
        if convert {
            assert_eq!(actions(&report, "customers", "converted"), 1, "{report}");
            let converted = world.emulator.record(&lead).unwrap();
            assert_eq!(converted["IsConverted"], true);
            assert_eq!(converted["ConvertedContactId"], contacts[0]["Id"]);
        } else {
            assert_eq!(actions(&report, "prospects", "removed"), 1, "{report}");
            assert_eq!(actions(&report, "customers", "created"), 1, "{report}");
            assert!(
                world.emulator.record(&lead).is_none(),
                "the Lead was deleted"
            );
        }
        assert_eq!(summary(&report, "customers", "success"), 1, "{report}");
        assert_eq!(summary(&report, "prospects", "impacted"), 0, "{report}");
        // And it stays put.
        let before = world.writes();
        world.sync().await;
        assert_eq!(world.writes(), before);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_quarantine_the_connection_until_a_test_passes() {
    let world = World::default().await;
    world.configure(ALL, ALL, PROSPECTS);
    world.import(json!([prospect("a", "CTO")])).await;
    world.emulator.revoke_refresh_tokens();
    world.emulator.expire_sessions();
    let run = world.run(&["sync"]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stdout.contains("QUARANTINED"), "{}", run.stdout);
    assert!(run.stdout.contains("invalid_grant"), "{}", run.stdout);

    // Quarantined: no calls at all.
    let before = world.emulator.counters().total()
        + world
            .emulator
            .counters()
            .token_requests
            .values()
            .sum::<u64>();
    let run = world.run(&["sync"]).await;
    assert_eq!(run.code, Some(1));
    assert!(run.stdout.contains("QUARANTINED"), "{}", run.stdout);
    let after = world.emulator.counters().total()
        + world
            .emulator
            .counters()
            .token_requests
            .values()
            .sum::<u64>();
    assert_eq!(after, before);

    // The administrator authorizes the app again; Test Connection lifts the
    // quarantine.
    world.emulator.add_refresh_token("rtok-renewed-by-admin");
    world
        .fixture
        .write_secrets(&json_store_secrets().replace(REFRESH_TOKEN, "rtok-renewed-by-admin"));
    let run = world.run(&["connections", "test", "leads"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("quarantine lifted"), "{}", run.stdout);
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "created"), 1, "{report}");

    // `connections resume` lifts it without a test.
    world.emulator.revoke_refresh_tokens();
    world.emulator.expire_sessions();
    world
        .import(json!([prospect("a", "CTO"), prospect("b", "CTO")]))
        .await;
    assert_eq!(world.run(&["sync"]).await.code, Some(1));
    let run = world.run(&["connections", "resume", "leads"]).await;
    assert!(run.stdout.contains("resumed leads"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_removal_guard_holds_mass_removals_until_approved() {
    let world = World::default().await;
    let guarded = format!("{PROSPECTS}removal_guard = {{ max_count = 2 }}\n");
    world.configure(ALL, ALL, &guarded);
    let people: Vec<Value> = (0..5).map(|n| prospect(&format!("p{n}"), "CTO")).collect();
    world.import(Value::Array(people)).await;
    world.sync().await;
    for n in 0..3 {
        world.run(&["people", "delete", &format!("p{n}")]).await;
    }
    let report = world.sync().await;
    assert!(
        report["pass"]
            .to_string()
            .contains("held by the removal guard"),
        "{report}"
    );
    assert_eq!(world.leads().len(), 5);
    assert_eq!(world.emulator.counters().of("DELETE composite/sobjects"), 0);

    let run = world.run(&["approve-removals", "prospects"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "removed"), 3, "{report}");
    assert_eq!(world.leads().len(), 2);
    // The approval was for that pass only.
    let run = world.run(&["approve-removals", "prospects"]).await;
    assert_eq!(run.code, Some(1));
}

/// A slice's lookups go out together, and with its batches they share
/// the connection's `[sync] concurrency` (2 by default): under latency,
/// the store sees exactly that many requests at once, never more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_and_batches_share_the_connections_concurrency() {
    let world = World::default().await;
    world.configure(ALL, ALL, PROSPECTS);
    let people: Vec<Value> = (0..3500)
        .map(|n| prospect(&format!("p{n:04}"), "CTO"))
        .collect();
    world.import(Value::Array(people)).await;
    world.emulator.set_latency(Some(Latency {
        path: String::new(),
        millis: 40,
        jitter_millis: 10,
        after: false,
    }));
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "created"), 3500);
    let counters = world.emulator.counters();
    assert!(
        counters.of("GET query") >= 4,
        "four lookups of 1,000 at least: {counters:?}"
    );
    assert_eq!(counters.most_in_flight, 2, "{counters:?}");
}

/// A pass works in slices of 4,000 people; 8,500 people make three. The
/// removal guard must weigh the removals of all slices together, and
/// removals of people in every slice, including the last, must happen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_larger_than_a_slice_syncs_everyone_and_guards_removals_across_slices() {
    let world = World::default().await;
    let guarded = format!("{PROSPECTS}removal_guard = {{ max_count = 10 }}\n");
    world.configure(ALL, ALL, &guarded);
    let id = |n: usize| format!("p{n:04}");
    let people: Vec<Value> = (0..8500).map(|n| prospect(&id(n), "CTO")).collect();
    world.import(Value::Array(people)).await;
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "created"), 8500);
    let leads = world.leads();
    assert_eq!(leads.len(), 8500);
    let emails: std::collections::BTreeSet<&str> =
        leads.iter().filter_map(|l| l["Email"].as_str()).collect();
    assert_eq!(emails.len(), 8500, "one Lead per person");

    // Four leavers in each slice: 12 in all, over the guard's 10, though
    // no slice alone has more than 10.
    let leavers = [
        0, 1500, 3000, 3999, 4000, 5000, 6000, 7999, 8000, 8200, 8400, 8499,
    ];
    for n in &leavers {
        world.run(&["people", "delete", &id(*n)]).await;
    }
    let writes = world.writes();
    let report = world.sync().await;
    assert!(
        report["pass"]
            .to_string()
            .contains("would remove 12 of 8500 records"),
        "{report}"
    );
    assert_eq!(actions(&report, "prospects", "kept"), 12, "{report}");
    assert_eq!(
        world.writes(),
        writes,
        "nothing is sent while the guard holds"
    );

    let run = world.run(&["approve-removals", "prospects"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "removed"), 12, "{report}");
    let left: std::collections::BTreeSet<String> = world
        .leads()
        .iter()
        .filter_map(|l| l["Email"].as_str().map(str::to_string))
        .collect();
    assert_eq!(left.len(), 8488);
    for n in &leavers {
        assert!(
            !left.contains(&format!("{}@example.com", id(*n))),
            "{}",
            id(*n)
        );
    }
    // The deleted people are purged once their records are gone.
    assert_eq!(world.fixture.state_counts().await["people"], 8488);

    // And a pass over everyone in step sends nothing.
    let writes = world.writes();
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "unchanged"), 8488, "{report}");
    assert_eq!(world.writes(), writes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_back_off_and_retry_makes_them_due() {
    let world = World::default().await;
    world.configure(ALL, ALL, PROSPECTS);
    world.import(json!([prospect("a", "CTO")])).await;
    world.emulator.inject(creates_unavailable_once());
    let run = world.run(&["sync", "--json"]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(summary(&report, "prospects", "failed"), 1, "{report}");

    // Backing off: the next pass does not try again yet.
    let before = world.emulator.counters().total();
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "waiting"), 1, "{report}");
    assert_eq!(world.emulator.counters().total(), before);

    assert!(
        world
            .run(&["retry"])
            .await
            .stdout
            .starts_with("1 failed link")
    );
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "created"), 1, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_waits_for_the_data_to_change() {
    let world = World::default().await;
    world.configure(ALL, ALL, PROSPECTS);
    world
        .import(
            json!([{ "id": "nameless", "groups": ["prospects"], "email": "nameless@example.com" }]),
        )
        .await;
    let run = world.run(&["sync"]).await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stdout.contains("REQUIRED_FIELD_MISSING"),
        "{}",
        run.stdout
    );
    let writes = world.writes();
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "waiting"), 1, "{report}");
    assert_eq!(world.writes(), writes, "not sent again unchanged");

    world
        .run(&["people", "set", "nameless", "--attr", "family_name=Named"])
        .await;
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "created"), 1, "{report}");
}

/// Runs `provisioner sync` while the store carries out each create and then
/// holds its answer back, and kills it once `leads` records exist: a crash
/// between the create and the link.
async fn kill_sync_once_created(world: &World, leads: usize) {
    world.emulator.set_latency(Some(Latency {
        path: "composite/sobjects".into(),
        millis: 30_000,
        jitter_millis: 0,
        after: true,
    }));
    let mut child = world
        .fixture
        .command()
        .arg("sync")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    eventually_within(Duration::from_secs(60), "the creates arrived", || async {
        world.leads().len() >= leads
    })
    .await;
    child.start_kill().unwrap();
    let status = child.wait().await.unwrap();
    assert!(!status.success(), "killed before the answer");
    world.emulator.set_latency(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_create_and_link_leaves_one_record_and_a_link_to_it() {
    let world = World::default().await;
    world.configure(ALL, ALL, PROSPECTS);
    let people: Vec<Value> = (0..5).map(|n| prospect(&format!("c{n}"), "CTO")).collect();
    world.import(Value::Array(people)).await;
    kill_sync_once_created(&world, 5).await;

    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "adopted"), 5, "{report}");
    assert_eq!(world.leads().len(), 5, "exactly one record per person");
    assert_eq!(
        world.emulator.counters().of("POST composite/sobjects"),
        1,
        "never created twice"
    );

    let links = state_pairs(
        &world.fixture,
        "SELECT person_id, target_id FROM links WHERE rule = 'prospects'",
    )
    .await;
    for lead in world.leads() {
        let email = lead["Email"].as_str().unwrap();
        let person = email.trim_end_matches("@example.com");
        assert_eq!(
            json!(links[person]),
            lead["Id"],
            "the link points at the one record"
        );
    }
    let unknown = state_count(
        &world.fixture,
        "SELECT COUNT(*) FROM journal WHERE outcome = 'unknown'",
    )
    .await;
    assert_eq!(
        unknown, 5,
        "the interrupted batch is visible in the journal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_who_leaves_after_an_unanswered_create_leaves_no_record_behind() {
    let world = World::default().await;
    world.configure(ALL, ALL, PROSPECTS);
    let people: Vec<Value> = (0..3).map(|n| prospect(&format!("u{n}"), "CTO")).collect();
    world.import(Value::Array(people)).await;
    kill_sync_once_created(&world, 3).await;

    // Before any pass sees the answer, two of them leave the scope.
    for id in ["u0", "u1"] {
        let run = world
            .run(&["groups", "remove-member", "prospects", id])
            .await;
        assert_eq!(run.code, Some(0), "{run:?}");
    }
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "removed"), 2, "{report}");
    assert_eq!(actions(&report, "prospects", "adopted"), 1, "{report}");
    let emails: Vec<String> = world
        .leads()
        .iter()
        .map(|l| l["Email"].as_str().unwrap().to_lowercase())
        .collect();
    assert_eq!(
        emails,
        ["u2@example.com"],
        "no record is left without a link"
    );
    let report = world.sync().await;
    assert_eq!(world.leads().len(), 1, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_with_unknown_attributes_or_bad_templates_are_refused_with_positions() {
    let world = World::default().await;
    world.configure(
        ALL,
        ALL,
        "\n[rules.bad]\nconnection = \"leads\"\nscope = { group = \"g\" }\n\n[[rules.bad.mappings]]\ntarget = \"LastName\"\nsource = \"surname\"\n\n[[rules.bad.mappings]]\ntarget = \"Description\"\ntemplate = \"{given_name\"\n",
    );
    let run = world.run(&["check"]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    let path = world.fixture.config_path().display().to_string();
    let unknown = run
        .stderr
        .lines()
        .find(|l| l.contains("surname"))
        .expect("unknown attribute reported");
    assert!(unknown.starts_with(&format!("{path}:")), "{unknown}");
    assert!(
        unknown.contains("rule bad: mapping 1 (LastName): unknown attribute \"surname\""),
        "{unknown}"
    );
    let template = run
        .stderr
        .lines()
        .find(|l| l.contains("template"))
        .expect("template reported");
    assert!(
        template.contains("rule bad: mapping 2 (Description)"),
        "{template}"
    );
    assert!(template.contains("unterminated"), "{template}");
    // A broken rule is not run, and not taken for a deleted one either.
    let run = world.run(&["sync"]).await;
    assert!(!run.stdout.contains("rule bad"), "{}", run.stdout);
}

/// Waits for a condition the daemon should bring about, up to `limit`.
async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_follows_directory_changes_without_waiting_for_the_interval() {
    let world = World::default().await;
    // An hour between full passes: only the change feed can explain a
    // prompt update.
    world.configure(ALL, ALL, PROSPECTS);
    let config = std::fs::read_to_string(world.fixture.config_path()).unwrap();
    world.fixture.write_config(&config.replace(
        "retry_base_secs = 60",
        "retry_base_secs = 60\ninterval_secs = 3600\ndrift_interval_secs = 7200",
    ));
    world.import(json!([prospect("a", "CTO")])).await;
    let mut daemon = world
        .fixture
        .command()
        .args(["run", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    assert!(
        eventually(Duration::from_secs(30), || world.leads().len() == 1).await,
        "the startup pass created the Lead"
    );

    let run = world
        .run(&["people", "set", "a", "--attr", "title=Chief Scientist"])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let changed = std::time::Instant::now();
    assert!(
        eventually(Duration::from_secs(10), || world.leads()[0]["Title"]
            == "Chief Scientist")
        .await,
        "the change reached the emulator"
    );
    let latency = changed.elapsed();
    assert!(latency < Duration::from_secs(5), "took {latency:?}");

    world
        .run(&[
            "people",
            "add",
            "b",
            "--attr",
            "email=b@example.com",
            "--attr",
            "family_name=B",
            "--group",
            "prospects",
        ])
        .await;
    assert!(eventually(Duration::from_secs(10), || world.leads().len() == 2).await);

    // SIGTERM: a clean stop.
    let pid = daemon.id().expect("running");
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(30), daemon.wait())
        .await
        .expect("stopped within 30 s")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let mut stderr = String::new();
    use tokio::io::AsyncReadExt;
    daemon
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(stderr.contains("provisioner is running"), "{stderr}");
    assert_no_secret(&stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_share_a_rotating_refresh_token_share_its_state() {
    // Both connections reference the same secrets; the org rotates the
    // refresh token on every use. One token state serves both.
    let world = World::new(Options {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        refresh_tokens: vec![REFRESH_TOKEN.into()],
        rotate_refresh_tokens: true,
        ..Options::default()
    })
    .await;
    world.configure(
        ALL,
        ALL,
        &format!("{PROSPECTS}\n[rules.customers]\nconnection = \"contacts\"\nscope = {{ group = \"customers\" }}\n"),
    );
    world
        .import(json!([prospect("a", "CTO"), { "id": "c", "groups": ["customers"], "family_name": "C", "email": "c@example.com" }]))
        .await;
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "created"), 1, "{report}");
    assert_eq!(actions(&report, "customers", "created"), 1, "{report}");
    assert_eq!(
        world
            .emulator
            .counters()
            .token_requests
            .get("refresh_token"),
        Some(&1)
    );
    let rotated = world.emulator.refresh_tokens();
    assert!(
        world.fixture.secrets().contains(&rotated[0]),
        "written back once, for both"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pass_repairs_drift_made_in_the_store() {
    let world = World::default().await;
    world.configure(ALL, ALL, PROSPECTS);
    world.import(json!([prospect("a", "CTO")])).await;
    world.sync().await;
    let id = world.leads()[0]["Id"].as_str().unwrap().to_string();

    // Someone edits the record in Salesforce.
    let client = reqwest::Client::new();
    let edited = client
        .patch(format!(
            "{}/services/data/v62.0/sobjects/Lead/{id}",
            world.emulator.base_url()
        ))
        .bearer_auth(STALE_ACCESS_TOKEN)
        .json(&json!({ "Title": "Intern" }))
        .send()
        .await
        .unwrap();
    assert_eq!(edited.status(), 204);

    // A normal pass trusts what it last wrote; a full pass re-reads.
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "unchanged"), 1, "{report}");
    assert_eq!(world.leads()[0]["Title"], "Intern");
    let run = world.run(&["sync", "--full", "--json"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(actions(&report, "prospects", "updated"), 1, "{report}");
    assert_eq!(world.leads()[0]["Title"], "CTO");
    assert_eq!(world.leads().len(), 1);
}
