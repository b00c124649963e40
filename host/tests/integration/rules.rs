//! Rules beyond the first: several rules on one connection, and how a
//! rule's records change when its connection's removal preferences do.
//! The real binary, the real connectors, the emulator over loopback.

use crate::common;

use common::world::*;
use serde_json::{Value, json};

/// Two rules on the leads connection: one for staff, one for customers.
fn two_rules(staff_extra: &str) -> String {
    format!(
        "\n[rules.staff]\nconnection = \"leads\"\nscope = {{ group = \"staff\" }}\n{staff_extra}\n[rules.customers]\nconnection = \"leads\"\nscope = {{ group = \"customers\" }}\n"
    )
}

fn member(id: &str, group: &str) -> Value {
    member_of(id, &[group])
}

fn member_of(id: &str, groups: &[&str]) -> Value {
    json!({ "id": id, "groups": groups, "given_name": "M", "family_name": id, "email": format!("{id}@example.com"), "title": "CTO" })
}

/// Person a leaves the staff group for the customers group.
async fn move_a_to_customers(world: &World) {
    for args in [
        ["groups", "remove-member", "staff", "a"],
        ["groups", "add-member", "customers", "a"],
    ] {
        let run = world.run(&args).await;
        assert_eq!(run.code, Some(0), "{run:?}");
    }
}

/// The link a rule holds for a person, from `status person`.
async fn link(world: &World, person: &str, rule: &str) -> Value {
    let run = world.run(&["status", "person", person, "--json"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let status: Value = serde_json::from_str(&run.stdout).unwrap();
    status["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == rule)
        .map(|r| r["link"].clone())
        .unwrap_or(Value::Null)
}

/// The sequence: a person moves from staff to customers; staff's
/// removal is held by its guard while customers adopts the record; the
/// approved removal must hand the record over, not delete it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_another_rule_adopted_is_handed_over_not_deleted() {
    let world = World::default().await;
    world.configure(ALL, ALL, &two_rules("removal_guard = { max_count = 0 }\n"));
    world.import(json!([member("a", "staff")])).await;
    world.sync().await;
    let created = world.leads();
    assert_eq!(created.len(), 1);
    let id = created[0]["Id"].as_str().unwrap().to_string();

    move_a_to_customers(&world).await;
    let report = world.sync().await;
    assert_eq!(actions(&report, "customers", "adopted"), 1, "{report}");
    assert_eq!(world.leads().len(), 1);

    let run = world.run(&["approve-removals", "staff"]).await;
    // With the handover in the same pass nothing is held, and there is
    // nothing to approve; either way no removal may be sent.
    assert!(matches!(run.code, Some(0 | 1)), "{run:?}");
    let report = world.sync().await;
    assert_eq!(world.emulator.counters().of("DELETE composite/sobjects"), 0);
    assert_eq!(world.leads().len(), 1, "{report}");
    let customers = link(&world, "a", "customers").await;
    assert_eq!(customers["target_id"], id.as_str(), "{customers}");
    assert_eq!(customers["state"], "synced", "{customers}");
    assert_eq!(link(&world, "a", "staff").await, Value::Null);
}

/// The reviewed sequence: a held removal is approved, and then the person
/// joins the other rule, which adopts the record. The handover sends
/// nothing, and leaves no approval armed for the next mass removal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_that_a_handover_made_moot_does_not_stay_armed() {
    let world = World::default().await;
    world.configure(ALL, ALL, &two_rules("removal_guard = { max_count = 0 }\n"));
    world
        .import(json!([member("a", "staff"), member("b", "staff")]))
        .await;
    world.sync().await;
    world.run(&["groups", "remove-member", "staff", "a"]).await;
    let report = world.sync().await;
    assert_eq!(actions(&report, "staff", "kept"), 1, "{report}");
    let run = world.run(&["approve-removals", "staff"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");

    world.run(&["groups", "add-member", "customers", "a"]).await;
    let report = world.sync().await;
    assert_eq!(actions(&report, "staff", "handed-over"), 1, "{report}");
    assert_eq!(world.emulator.counters().of("DELETE composite/sobjects"), 0);
    let run = world.run(&["approve-removals", "staff"]).await;
    assert_eq!(run.code, Some(1), "no guard is left: {run:?}");

    // The next removal from staff meets the guard again.
    world.run(&["people", "delete", "b"]).await;
    let report = world.sync().await;
    assert_eq!(actions(&report, "staff", "kept"), 1, "{report}");
    assert_eq!(world.leads().len(), 2);
}

/// A pass of the rule a person left, before the rule they joined has run,
/// keeps the record for it: the removal waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_waits_for_the_rule_of_the_connection_that_wants_the_person() {
    let world = World::default().await;
    world.configure(ALL, ALL, &two_rules(""));
    world.import(json!([member("a", "staff")])).await;
    world.sync().await;
    move_a_to_customers(&world).await;

    let run = world.run(&["sync", "--rule", "staff", "--json"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout
            .contains("rule customers of the same connection wants this person"),
        "{}",
        run.stdout
    );
    assert_eq!(world.emulator.counters().of("DELETE composite/sobjects"), 0);

    let report = world.sync().await;
    assert_eq!(actions(&report, "customers", "adopted"), 1, "{report}");
    assert_eq!(actions(&report, "staff", "handed-over"), 1, "{report}");
    assert_eq!(world.emulator.counters().of("DELETE composite/sobjects"), 0);
    assert_eq!(world.leads().len(), 1);
}

/// Three rules want one person's record and the first create fails: the
/// second creates it at the end of the pass, the third waits rather than
/// create a twin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_rules_on_one_connection_never_create_twins() {
    let world = World::default().await;
    world.configure(
        ALL,
        ALL,
        &format!(
            "{}\n[rules.partners]\nconnection = \"leads\"\nscope = {{ group = \"partners\" }}\n",
            two_rules("")
        ),
    );
    world
        .import(json!([member_of("a", &["staff", "customers", "partners"])]))
        .await;
    world.emulator.inject(creates_unavailable_once());
    let run = world.run(&["sync", "--json"]).await;
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(world.leads().len(), 1, "one record: {report}");
    world.run(&["retry"]).await;
    world.sync().await;
    assert_eq!(world.leads().len(), 1);
    for rule in ["staff", "customers", "partners"] {
        assert_eq!(link(&world, "a", rule).await["state"], "synced", "{rule}");
    }
}

/// A rule deleted from the configuration does not keep a record for a
/// rule that lets go of it: its links go with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_rule_does_not_hold_a_record_another_rule_removes() {
    let world = World::default().await;
    world.configure(ALL, ALL, &two_rules(""));
    world
        .import(json!([member_of("a", &["staff", "customers"])]))
        .await;
    world.sync().await;
    assert_eq!(world.leads().len(), 1);

    // customers is deleted (its records would stay), and a leaves staff.
    world.configure(
        ALL,
        ALL,
        "\n[rules.staff]\nconnection = \"leads\"\nscope = { group = \"staff\" }\n",
    );
    world.run(&["groups", "remove-member", "staff", "a"]).await;
    let report = world.sync().await;
    assert_eq!(actions(&report, "staff", "removed"), 1, "{report}");
    assert!(world.leads().is_empty());
}

/// In one pass: the removal by the rule a person left must not take the
/// record the rule they joined just adopted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_between_rules_of_one_connection_hands_the_link_over_in_one_pass() {
    let world = World::default().await;
    world.configure(ALL, ALL, &two_rules(""));
    world
        .import(json!([member("a", "staff"), member("b", "staff")]))
        .await;
    world.sync().await;
    assert_eq!(world.leads().len(), 2);

    move_a_to_customers(&world).await;
    let run = world.run(&["sync", "--dry-run"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("hand over or remove"), "{}", run.stdout);

    let report = world.sync().await;
    assert_eq!(actions(&report, "staff", "handed-over"), 1, "{report}");
    assert_eq!(actions(&report, "staff", "removed"), 0, "{report}");
    assert_eq!(world.emulator.counters().of("DELETE composite/sobjects"), 0);
    assert_eq!(world.leads().len(), 2);

    // And the record stays in step afterwards: customers owns it now.
    world
        .import(json!([{ "id": "a", "groups": ["customers"], "given_name": "M", "family_name": "a", "email": "a@example.com", "title": "CEO" }]))
        .await;
    let report = world.sync().await;
    assert_eq!(actions(&report, "customers", "updated"), 1, "{report}");
    assert!(world.leads().iter().any(|l| l["Title"] == "CEO"));

    // A person who leaves both rules loses the record once.
    world.run(&["people", "delete", "a"]).await;
    let report = world.sync().await;
    assert_eq!(actions(&report, "customers", "removed"), 1, "{report}");
    assert_eq!(world.leads().len(), 1);
}

/// A dry run weighs a removal that another rule may take over as a
/// removal: it may show a hold that the pass then does not need, never the
/// other way round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_weighs_a_possible_handover_against_the_guard() {
    let world = World::default().await;
    world.configure(ALL, ALL, &two_rules("removal_guard = { max_count = 1 }\n"));
    world
        .import(json!([member("a", "staff"), member("b", "staff")]))
        .await;
    world.sync().await;
    move_a_to_customers(&world).await;
    world.run(&["people", "delete", "b"]).await;

    let run = world.run(&["sync", "--dry-run"]).await;
    assert!(run.stdout.contains("hand over or remove"), "{}", run.stdout);
    assert!(
        run.stdout.contains("would remove 2 of 2 records"),
        "{}",
        run.stdout
    );
    let report = world.sync().await;
    assert_eq!(actions(&report, "staff", "handed-over"), 1, "{report}");
    assert_eq!(actions(&report, "staff", "removed"), 1, "{report}");
    assert_eq!(world.leads().len(), 1);
}

/// A person in both rules links one record from both; leaving one rule
/// leaves the record to the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_one_of_two_rules_that_share_a_record_keeps_it() {
    let world = World::default().await;
    world.configure(ALL, ALL, &two_rules(""));
    world
        .import(json!([member_of("a", &["staff", "customers"])]))
        .await;
    world.sync().await;
    assert_eq!(
        world.leads().len(),
        1,
        "one record, found by the second rule"
    );

    world
        .run(&["groups", "remove-member", "customers", "a"])
        .await;
    let report = world.sync().await;
    assert_eq!(actions(&report, "customers", "handed-over"), 1, "{report}");
    assert_eq!(world.leads().len(), 1);
    assert_eq!(
        link(&world, "a", "staff").await["state"],
        "synced",
        "the other rule keeps it"
    );

    // Gone from both: one rule hands over, the other deletes, once; the
    // dry run, which writes nothing, says the same.
    world.run(&["groups", "add-member", "customers", "a"]).await;
    world.sync().await;
    world.run(&["people", "delete", "a"]).await;
    let run = world.run(&["sync", "--dry-run", "--json"]).await;
    let plan: Value = serde_json::from_str(&run.stdout).unwrap();
    let lines: Vec<&Value> = plan["pass"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["plan"].as_array().unwrap())
        .collect();
    let count = |action: &str| lines.iter().filter(|l| l["action"] == action).count();
    assert_eq!((count("hand over"), count("delete")), (1, 1), "{plan}");
    world.sync().await;
    assert!(world.leads().is_empty());
    assert_eq!(world.emulator.counters().of("DELETE composite/sobjects"), 1);
}

/// A rule with its own mappings and none for the match attribute: `check`
/// says so before any pass fails on it, and `extend_defaults` keeps the
/// connector's defaults with the rule's own put in place of the same
/// target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_a_rule_that_maps_nothing_to_the_match_attribute() {
    let world = World::default().await;
    let rule = |extra: &str| {
        format!(
            "\n[rules.titled]\nconnection = \"leads\"\nscope = {{ group = \"staff\" }}\n{extra}\n[[rules.titled.mappings]]\ntarget = \"Title\"\nconstant = \"Prospect\"\n"
        )
    };
    world.configure(ALL, ALL, &rule(""));
    let run = world.run(&["check"]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    let path = world.fixture.config_path().display().to_string();
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("maps nothing to Email"))
        .unwrap_or_else(|| panic!("reported: {run:?}"));
    assert!(line.starts_with(&format!("{path}:")), "{line}");
    assert!(line.contains("rule titled"), "{line}");
    assert!(line.contains("extend_defaults = true"), "{line}");

    world.configure(ALL, ALL, &rule("extend_defaults = true\n"));
    let run = world.run(&["check"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    world.import(json!([member("a", "staff")])).await;
    world.sync().await;
    let leads = world.leads();
    assert_eq!(leads.len(), 1);
    assert_eq!(leads[0]["Title"], "Prospect", "the rule's own mapping wins");
    assert_eq!(leads[0]["LastName"], "a", "the defaults still apply");
    assert_eq!(leads[0]["Email"], "a@example.com");
}

fn pending(status: &Value, rule: &str) -> u64 {
    status["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == rule)
        .and_then(|r| r["pending"].as_u64())
        .unwrap_or_else(|| panic!("no pending count for {rule}: {status}"))
}

/// Status counts the people whose changes a rule has not carried out,
/// and a pass that finds nothing to send for a change still settles it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_counts_the_changes_a_rule_has_not_carried_out() {
    let world = World::default().await;
    world.configure(ALL, ALL, PROSPECTS);
    world
        .import(json!([prospect("a", "CTO"), prospect("b", "CTO")]))
        .await;
    assert_eq!(
        pending(&world.status().await, "prospects"),
        2,
        "not synced yet"
    );
    world.sync().await;
    assert_eq!(pending(&world.status().await, "prospects"), 0);

    // One change the store must see, one it need not (department is not
    // mapped): both are pending until a pass has looked at them.
    for (person, attribute) in [("a", "title=CEO"), ("b", "department=Sales")] {
        let run = world
            .run(&["people", "set", person, "--attr", attribute])
            .await;
        assert_eq!(run.code, Some(0), "{run:?}");
    }
    let status = world.status().await;
    assert_eq!(pending(&status, "prospects"), 2, "{status}");
    let run = world.run(&["status"]).await;
    assert!(
        run.stdout
            .contains("prospects: 2 person(s) with changes not yet carried out"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("removal guard (a pass holds its removals beyond): prospects 100 or 25 %"),
        "the guard in force is shown: {run:?}"
    );
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "updated"), 1, "{report}");
    assert_eq!(actions(&report, "prospects", "unchanged"), 1, "{report}");
    assert_eq!(pending(&world.status().await, "prospects"), 0);
}

/// A json-store world: the store has both disable and delete.
struct Store {
    server: json_store::JsonStore,
    fixture: common::Fixture,
}

impl Store {
    async fn new() -> Store {
        let server = json_store::JsonStore::start(common::json_store_options())
            .await
            .unwrap();
        let fixture = common::Fixture::new(&[test_plugins::JSON_STORE]);
        fixture.write_secrets(&common::json_store_secrets());
        Store { server, fixture }
    }

    fn configure(&self, preferences: &str, rule_extra: &str) {
        self.fixture.write_config(&format!(
            "{}{}\n[connections.store.preferences]\n{preferences}\n\n[rules.staff]\nconnection = \"store\"\nscope = {{ group = \"staff\" }}\n{rule_extra}",
            common::HEADER,
            common::json_store_connection("store", &self.server.host())
        ));
    }

    async fn run(&self, args: &[&str]) -> common::Run {
        self.fixture.provisioner(args, &[]).await
    }

    /// Imports staff members and runs a first pass that creates them all.
    async fn start_with(&self, ids: &[String]) {
        let people: Vec<Value> = ids.iter().map(|id| member(id, "staff")).collect();
        let file = self.fixture.path().join("p.json");
        std::fs::write(&file, Value::Array(people).to_string()).unwrap();
        let run = self.run(&["people", "import", "p.json"]).await;
        assert_eq!(run.code, Some(0), "{run:?}");
        assert_eq!(self.run(&["sync"]).await.code, Some(0));
        assert_eq!(self.records().len(), ids.len());
    }

    /// Each person's record: (email, active), by email.
    fn records(&self) -> std::collections::BTreeMap<String, bool> {
        self.server
            .people()
            .into_iter()
            .map(|(_, a)| {
                (
                    a["email"].as_str().unwrap_or_default().to_string(),
                    a["active"] == true,
                )
            })
            .collect()
    }
}

/// A deleted rule whose records are disabled is done once they are: it is
/// forgotten, and no pass sends the disables again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_rule_whose_records_are_disabled_is_forgotten() {
    let store = Store::new().await;
    let prefs =
        "allow_disable = true\nremove_action = \"disable\"\ndeprovision_on_rule_deletion = true";
    store.configure(prefs, "");
    store.start_with(&["a", "b"].map(String::from)).await;

    store.fixture.write_config(&format!(
        "{}{}\n[connections.store.preferences]\n{prefs}\n",
        common::HEADER,
        common::json_store_connection("store", &store.server.host())
    ));
    let run = store.run(&["sync"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        store.records().values().all(|active| !active),
        "{:?}",
        store.records()
    );
    let requests = || store.server.counters().api_requests.values().sum::<u64>();
    let before = requests();
    let run = store.run(&["sync"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(requests(), before, "nothing sent again: {run:?}");
    let counts = store.fixture.state_counts().await;
    assert_eq!(
        (&counts["links"], &counts["rules"]),
        (&serde_json::json!(0), &serde_json::json!(0)),
        "the rule and its links are forgotten"
    );
}

/// PingOne's separate preferences: a person disabled in the directory is
/// disabled, one deleted is deleted, one who left the scope is disabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_cause_of_removal_has_its_own_remove_action() {
    let store = Store::new().await;
    store.configure(
        "allow_disable = true\nallow_delete = true\nremove_action = \"disable\"\nremove_action_deleted = \"delete\"",
        "",
    );
    store
        .start_with(&["d", "x", "s", "k"].map(String::from))
        .await;

    store.run(&["people", "disable", "d"]).await;
    store.run(&["people", "delete", "x"]).await;
    store.run(&["groups", "remove-member", "staff", "s"]).await;
    let run = store.run(&["sync", "--dry-run"]).await;
    assert!(run.stdout.contains("deleted from the directory"), "{run:?}");
    assert!(run.stdout.contains("disabled in the directory"), "{run:?}");
    let run = store.run(&["sync"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let records = store.records();
    assert_eq!(
        records.get("d@example.com"),
        Some(&false),
        "disabled: {records:?}"
    );
    assert_eq!(records.get("x@example.com"), None, "deleted: {records:?}");
    assert_eq!(
        records.get("s@example.com"),
        Some(&false),
        "disabled: {records:?}"
    );
    assert_eq!(records.get("k@example.com"), Some(&true));
}

/// Switching the remove action from disable to delete deletes the records
/// disabled earlier: the configuration says what the store should hold.
/// It shows in a dry run, and it goes through the removal guard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_from_disable_to_delete_shows_in_a_dry_run_and_is_guarded() {
    let store = Store::new().await;
    let disable = "allow_disable = true\nallow_delete = true\nremove_action = \"disable\"";
    let delete = "allow_disable = true\nallow_delete = true\nremove_action = \"delete\"";
    let guard = "removal_guard = { max_count = 1 }\n";
    store.configure(disable, guard);
    let ids: Vec<String> = (0..4).map(|n| format!("p{n}")).collect();
    store.start_with(&ids).await;
    store.run(&["groups", "remove-member", "staff", "p0"]).await;
    assert_eq!(store.run(&["sync"]).await.code, Some(0));
    store.run(&["groups", "remove-member", "staff", "p1"]).await;
    assert_eq!(store.run(&["sync"]).await.code, Some(0));
    let records = store.records();
    assert_eq!(
        records.values().filter(|active| !**active).count(),
        2,
        "{records:?}"
    );

    store.configure(delete, guard);
    let run = store.run(&["sync", "--dry-run"]).await;
    assert!(
        run.stdout.contains("disabled earlier, deleted now"),
        "the dry run shows the switch: {run:?}"
    );
    let run = store.run(&["sync"]).await;
    assert!(run.stdout.contains("held by the removal guard"), "{run:?}");
    assert_eq!(store.records().len(), 4, "nothing deleted before approval");

    let run = store.run(&["approve-removals", "staff"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(store.run(&["sync"]).await.code, Some(0));
    let records = store.records();
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records.values().all(|active| *active));
}

/// A change of a rule's mappings would rewrite records no one edited: the
/// dry run shows it, and beyond the update guard the updates wait for
/// `approve-updates`. A change within the guard goes out at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_change_is_shown_and_held_by_the_update_guard() {
    let world = World::default().await;
    let guarded = |title: &str, max_count: u32| {
        format!(
            "{PROSPECTS}extend_defaults = true\nupdate_guard = {{ max_count = {max_count} }}\n\n[[rules.prospects.mappings]]\ntarget = \"Title\"\n{title}\n"
        )
    };
    let rule = |title: &str| guarded(title, 2);
    world.configure(ALL, ALL, &rule("source = \"title\""));
    let people: Vec<Value> = (0..5).map(|n| prospect(&format!("p{n}"), "CTO")).collect();
    world.import(Value::Array(people)).await;
    world.sync().await;
    assert_eq!(world.leads().len(), 5);
    let patches = || world.emulator.counters().of("PATCH composite/sobjects");

    world.configure(ALL, ALL, &rule("constant = \"Prospect\""));
    let run = world.run(&["sync", "--dry-run"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.contains(
            "changed Title: source \"title\" to Title: constant \"Prospect\"; 5 of 5 records to update"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("held by the update guard"),
        "{}",
        run.stdout
    );

    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "held"), 5, "{report}");
    assert_eq!(patches(), 0, "nothing rewritten before approval");
    assert!(world.leads().iter().all(|l| l["Title"] == "CTO"));
    let run = world.run(&["status"]).await;
    assert!(
        run.stdout
            .contains("prospects: 5 of 5 updates held by the update guard after a mapping change"),
        "{run:?}"
    );
    // A new person is still created, with the new mappings.
    world.import(json!([prospect("p5", "CTO")])).await;
    world.sync().await;
    assert_eq!(world.leads().len(), 6);
    assert_eq!(patches(), 0);

    // Undoing the change leaves nothing held (the new person's record is
    // brought back in step like any other edit).
    world.configure(ALL, ALL, &rule("source = \"title\""));
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "held"), 0, "{report}");
    let run = world.run(&["approve-updates", "prospects"]).await;
    assert_eq!(run.code, Some(1), "nothing to approve: {run:?}");
    assert!(!world.run(&["status"]).await.stdout.contains("updates held"));

    world.configure(ALL, ALL, &rule("constant = \"Prospect\""));
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "held"), 6, "{report}");

    // The daemon holds them too, until the status API approves them.
    let daemon = common::Daemon::start(&world.fixture).await;
    let page = daemon.get_text("/").await;
    assert!(page.contains("Approve updates"), "the page offers it");
    let approve = reqwest::Client::new()
        .post(format!(
            "{}/api/rules/prospects/approve-updates",
            daemon.url
        ))
        .bearer_auth(common::STATUS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(approve.status(), 200);
    common::eventually("the approved updates reach the store", || async {
        world.leads().iter().all(|l| l["Title"] == "Prospect")
    })
    .await;
    assert!(daemon.stop().await.success());
    assert_eq!(patches(), 2, "one batch of six updates, after p5's own");
    // The change is recorded: nothing is held or sent again.
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "held"), 0, "{report}");
    assert_eq!(actions(&report, "prospects", "updated"), 0, "{report}");
    let run = world.run(&["approve-updates", "prospects"]).await;
    assert_eq!(run.code, Some(1), "the approval was used: {run:?}");

    // Within the guard, a change goes out at once.
    world.configure(ALL, ALL, &guarded("constant = \"Lead\"", 10));
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "updated"), 6, "{report}");
    assert!(world.leads().iter().all(|l| l["Title"] == "Lead"));
}

/// A person back in scope after a disable: a connector that declares
/// `enable` (contract 0.2) gets one `enable` carrying only what changed,
/// not a rewrite of every mapped attribute; the record is active again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_person_is_enabled_in_one_operation() {
    let store = Store::new().await;
    store.configure("allow_disable = true\nremove_action = \"disable\"", "");
    store.start_with(&["a".to_string()]).await;
    store.run(&["groups", "remove-member", "staff", "a"]).await;
    assert_eq!(store.run(&["sync"]).await.code, Some(0));
    assert_eq!(store.records().get("a@example.com"), Some(&false));

    store.run(&["groups", "add-member", "staff", "a"]).await;
    let run = store
        .run(&["people", "set", "a", "--attr", "given_name=Augusta"])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let dry = store.run(&["sync", "--dry-run"]).await;
    assert!(
        dry.stdout
            .contains("a  enable  given_name: \"M\" -> \"Augusta\""),
        "{dry:?}"
    );
    // A new process's first request may meet a 401 and be sent again with
    // a fresh token: count the batches the store accepted.
    let counts = || {
        let counters = store.server.counters();
        let batches = counters.api_requests.get("POST /api/people/batch").copied();
        (batches.unwrap_or(0) as i64, counters.unauthorized as i64)
    };
    let (batches, refused) = counts();
    let run = store.run(&["sync"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let (batches_after, refused_after) = counts();
    assert!(refused_after - refused <= 1, "at most one token refresh");
    assert_eq!(
        (batches_after - batches) - (refused_after - refused),
        1,
        "one request: {run:?}"
    );
    assert_eq!(store.records().get("a@example.com"), Some(&true));
    let (_, record) = store.server.people().remove(0);
    assert_eq!(record["given_name"], "Augusta", "{record:?}");
    assert_eq!(record["display_name"], "Augusta a", "{record:?}");
    let run = store.run(&["status", "person", "a", "--json"]).await;
    let status: Value = serde_json::from_str(&run.stdout).unwrap();
    let link = &status["rules"][0]["link"];
    assert_eq!(link["state"], "synced", "{status}");
    let run = store.run(&["sync", "--json"]).await;
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(actions(&report, "staff", "updated"), 0, "{report}");
    assert_eq!(actions(&report, "staff", "unchanged"), 1, "{report}");
}
