//! Swapping connectors under a running `provisioner run`: a replaced
//! component serves new work, a broken or incompatible replacement is
//! refused while the old one keeps serving, a removed one puts its
//! connection in a visible error state, and SIGHUP reloads where file
//! events are off. Each test runs the real daemon against a json-store
//! server and swaps real components built in two versions.

use crate::common;

use std::path::PathBuf;

use common::*;
use serde_json::{Value, json};

const OLD_AGENT: &str = concat!("json-store-connector/", env!("CARGO_PKG_VERSION"));

fn next_agent() -> String {
    format!("json-store-connector/{}", test_plugins::NEXT_VERSION)
}

struct Swap {
    store: json_store::JsonStore,
    fixture: Fixture,
    /// The file the running host loaded the connector from.
    installed: PathBuf,
}

async fn swap_world() -> Swap {
    let store = json_store::JsonStore::start(json_store_options())
        .await
        .unwrap();
    let fixture = Fixture::new(&[]);
    let installed = fixture.add_plugin(test_plugins::JSON_STORE);
    fixture.write_secrets(&json_store_secrets());
    fixture.write_config(&format!(
        "{HEADER}{}\n[rules.staff]\nconnection = \"store\"\nscope = {{ group = \"staff\" }}\n",
        json_store_connection("store", &store.host())
    ));
    let swap = Swap {
        store,
        fixture,
        installed,
    };
    swap.import(&["s1", "s2"]).await;
    swap
}

impl Swap {
    /// Adds people to the directory the way an operator does, while the
    /// daemon may be running.
    async fn import(&self, ids: &[&str]) {
        let people: Vec<Value> = ids
            .iter()
            .map(|id| json!({ "id": id, "groups": ["staff"], "given_name": "S", "family_name": id, "email": format!("{id}@example.com") }))
            .collect();
        let path = self.fixture.path().join("import.json");
        std::fs::write(&path, Value::Array(people).to_string()).unwrap();
        let run = self
            .fixture
            .provisioner(&["people", "import", "import.json"], &[])
            .await;
        assert_eq!(run.code, Some(0), "{run:?}");
    }

    fn has(&self, email: &str) -> bool {
        self.store
            .people()
            .iter()
            .any(|(_, attributes)| attributes.get("email") == Some(&json!(email)))
    }

    fn requests_by(&self, agent: &str) -> u64 {
        self.store
            .counters()
            .user_agents
            .get(agent)
            .copied()
            .unwrap_or(0)
    }

    /// Replaces the installed component in place, as `cp` does.
    fn replace_with(&self, bytes: &[u8]) {
        std::fs::write(&self.installed, bytes).unwrap();
    }
}

fn connection(status: &Value) -> &Value {
    status["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["connection"] == "store")
        .expect("the store connection is in status")
}

fn rule(status: &Value) -> &Value {
    status["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "staff")
        .expect("the staff rule is in status")
}

async fn version_in_status(daemon: &Daemon) -> Value {
    connection(&daemon.get_json("/api/status").await)["plugin_version"].clone()
}

/// The VERSION and IN USE cells of `plugins list` for json-store.
async fn listed(fixture: &Fixture) -> String {
    let run = fixture.provisioner(&["plugins", "list"], &[]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    run.stdout
        .lines()
        .find(|l| l.starts_with("json-store"))
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_plugin_serves_new_work_and_status_shows_its_version() {
    let world = swap_world().await;
    let daemon = Daemon::start(&world.fixture).await;
    eventually("the first people are synced", || async {
        world.has("s1@example.com") && world.has("s2@example.com")
    })
    .await;
    assert_eq!(
        version_in_status(&daemon).await,
        json!(env!("CARGO_PKG_VERSION"))
    );
    assert!(world.requests_by(OLD_AGENT) > 0);
    assert_eq!(world.requests_by(&next_agent()), 0);

    world.replace_with(&std::fs::read(test_plugins::JSON_STORE_NEXT).unwrap());
    eventually("status shows the new version", || async {
        version_in_status(&daemon).await == json!(test_plugins::NEXT_VERSION)
    })
    .await;
    let row = listed(&world.fixture).await;
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[1..3],
        [test_plugins::NEXT_VERSION, test_plugins::NEXT_VERSION],
        "plugins list shows the version on disk and the version in use: {row}"
    );

    let old_before = world.requests_by(OLD_AGENT);
    world.import(&["s3"]).await;
    eventually("the person added after the swap is synced", || async {
        world.has("s3@example.com")
    })
    .await;
    assert!(
        world.requests_by(&next_agent()) > 0,
        "the new component made the calls: {:?}",
        world.store.counters().user_agents
    );
    assert_eq!(
        world.requests_by(OLD_AGENT),
        old_before,
        "the old component made no call after the swap"
    );
    assert_eq!(world.store.people().len(), 3, "no duplicates");
    let log = daemon.log();
    assert!(log.contains("loaded plugin"), "{log}");
    assert!(daemon.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_or_incompatible_replacement_is_refused_and_the_old_one_serves() {
    let world = swap_world().await;
    let daemon = Daemon::start(&world.fixture).await;
    eventually("the first people are synced", || async {
        world.has("s1@example.com")
    })
    .await;
    let installed = world.installed.display().to_string();

    world.replace_with(b"\0asm this is not a component");
    eventually("the broken file is refused in the log", || async {
        daemon.log().contains("refused")
    })
    .await;
    let log = daemon.log();
    assert!(
        log.contains(&installed),
        "the refusal names the file: {log}"
    );
    assert!(log.contains("keeps serving"), "{log}");

    world.replace_with(&std::fs::read(test_plugins::FUTURE_CONTRACT).unwrap());
    eventually("the incompatible file is refused in the log", || async {
        daemon.log().contains("identity-store@0.3.0")
    })
    .await;

    world.import(&["s3"]).await;
    eventually("new work is still served", || async {
        world.has("s3@example.com")
    })
    .await;
    assert_eq!(
        version_in_status(&daemon).await,
        json!(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(world.requests_by(&next_agent()), 0);
    let status = daemon.get_json("/api/status").await;
    assert_eq!(rule(&status)["status"], "active", "{status}");
    let store = connection(&status);
    assert_eq!(store["health"], "ok", "the old version serves: {status}");
    assert!(
        store["plugin_problem"]
            .as_str()
            .unwrap_or("")
            .contains("a replacement file was refused"),
        "{status}"
    );
    let run = world.fixture.provisioner(&["plugins", "list"], &[]).await;
    assert!(
        run.all().contains(&installed),
        "plugins list reports the refused file: {run:?}"
    );
    assert_eq!(
        run.code,
        Some(1),
        "a refused file fails the listing: {run:?}"
    );
    assert!(run.stdout.contains("no plugins loaded"), "{run:?}");
    assert!(run.stdout.contains("1 file(s) refused"), "{run:?}");
    assert!(daemon.stop().await.success());

    // A host started on the broken file serves no version of it: status
    // says why, and counts the work that waits for it.
    let daemon = Daemon::start(&world.fixture).await;
    world.import(&["s4"]).await;
    let run = world
        .fixture
        .provisioner(&["people", "set", "s1", "--attr", "title=CTO"], &[])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    eventually("status says the plugin was refused", || async {
        connection(&daemon.get_json("/api/status").await)["health"] == "plugin refused"
    })
    .await;
    eventually("the waiting work is counted", || async {
        rule(&daemon.get_json("/api/status").await)["pending"] == 2
    })
    .await;
    let status = daemon.get_json("/api/status").await;
    let problem = connection(&status)["plugin_problem"].as_str().unwrap_or("");
    assert!(problem.contains(&installed), "names the file: {problem}");
    let run = world.fixture.provisioner(&["status"], &[]).await;
    assert!(run.stdout.contains("plugin refused"), "{run:?}");
    assert!(
        run.stdout
            .contains("staff: 2 person(s) with changes not yet carried out"),
        "{run:?}"
    );
    assert!(daemon.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_plugin_is_a_visible_error_and_coming_back_resumes_the_work() {
    let world = swap_world().await;
    let daemon = Daemon::start(&world.fixture).await;
    eventually("the first people are synced", || async {
        world.has("s1@example.com")
    })
    .await;

    std::fs::remove_file(&world.installed).unwrap();
    eventually("status shows the plugin as not loaded", || async {
        version_in_status(&daemon).await.is_null()
    })
    .await;
    world.import(&["s3"]).await;
    eventually("the rule reports why it cannot run", || async {
        let status = daemon.get_json("/api/status").await;
        let rule = rule(&status);
        rule["status"] == "failed" && rule["reason"].as_str().unwrap_or("").contains("json-store")
    })
    .await;
    assert!(!world.has("s3@example.com"));
    let page = daemon.get_text("/").await;
    assert!(page.contains("not loaded"), "the page shows it");
    assert!(page.contains("plugin missing"), "the page shows it");
    let status = daemon.get_json("/api/status").await;
    assert_eq!(connection(&status)["health"], "plugin missing", "{status}");
    assert_eq!(rule(&status)["pending"], 1, "s3 waits: {status}");

    world.fixture.add_plugin(test_plugins::JSON_STORE);
    eventually("the change made meanwhile reaches the store", || async {
        world.has("s3@example.com")
    })
    .await;
    eventually("the rule is healthy again", || async {
        rule(&daemon.get_json("/api/status").await)["status"] == "active"
    })
    .await;
    assert_eq!(world.store.people().len(), 3);
    assert!(daemon.stop().await.success(), "the daemon never crashed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_when_file_events_are_off() {
    let world = swap_world().await;
    let daemon = Daemon::start_with(&world.fixture, &["--no-watch"]).await;
    eventually("the first people are synced", || async {
        world.has("s1@example.com")
    })
    .await;
    world.replace_with(&std::fs::read(test_plugins::JSON_STORE_NEXT).unwrap());
    let pid = daemon.child.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    eventually("status shows the new version", || async {
        version_in_status(&daemon).await == json!(test_plugins::NEXT_VERSION)
    })
    .await;
    let log = daemon.log();
    assert!(
        log.contains("SIGHUP"),
        "the reload names its trigger: {log}"
    );
    assert!(!log.contains("file change"), "no file watch: {log}");
    assert!(daemon.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_file_claiming_the_name_is_refused_and_the_running_version_keeps_serving() {
    let world = swap_world().await;
    let daemon = Daemon::start(&world.fixture).await;
    eventually("the first people are synced", || async {
        world.has("s1@example.com")
    })
    .await;
    let installed = world.installed.display().to_string();

    // A file named to sort first claims the same plugin name.
    let intruder = world.fixture.plugin_dir().join("aaa.wasm");
    std::fs::copy(test_plugins::JSON_STORE_NEXT, &intruder).unwrap();
    let intruder_name = intruder.display().to_string();
    eventually("the clash is logged", || async {
        daemon.log().contains("claimed by more than one file")
    })
    .await;
    let line = daemon
        .log()
        .lines()
        .find(|l| l.contains("claimed by more than one file"))
        .unwrap_or_default()
        .to_string();
    assert!(
        line.contains(&installed) && line.contains(&intruder_name),
        "one line names both files: {line}"
    );

    // The running host keeps the version it had, and says why it is in
    // doubt wherever status is shown.
    eventually("status shows the clash", || async {
        connection(&daemon.get_json("/api/status").await)["plugin_problem"]
            .as_str()
            .is_some_and(|p| p.contains(&intruder_name) && p.contains(&installed))
    })
    .await;
    assert_eq!(
        version_in_status(&daemon).await,
        json!(env!("CARGO_PKG_VERSION"))
    );
    world.import(&["s3"]).await;
    eventually("new work is served by the old version", || async {
        world.has("s3@example.com")
    })
    .await;
    assert_eq!(
        world.requests_by(&next_agent()),
        0,
        "the intruder made no call"
    );
    let page = daemon.get_text("/").await;
    assert!(
        page.contains("claimed by more than one file"),
        "the page shows it"
    );
    let run = world.fixture.provisioner(&["status"], &[]).await;
    assert!(run.stdout.contains("name clash"), "{run:?}");
    assert!(run.stdout.contains(&intruder_name), "{run:?}");

    // A fresh process serves neither, and check says which files and
    // what to do.
    let run = world.fixture.provisioner(&["check"], &[]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    let clash: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("claimed by more than one file"))
        .collect();
    assert!(
        clash
            .iter()
            .any(|l| l.contains("connection store") && l.contains("remove or rename")),
        "{run:?}"
    );
    let run = world.fixture.provisioner(&["plugins", "list"], &[]).await;
    let refusals: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("claimed by more than one file"))
        .collect();
    assert_eq!(refusals.len(), 1, "one line for the clash: {run:?}");
    assert!(refusals[0].contains(&installed) && refusals[0].contains(&intruder_name));
    assert!(!run.stdout.contains("json-store"), "{run:?}");

    // Once the intruder is gone the clash is over.
    std::fs::remove_file(&intruder).unwrap();
    eventually("status no longer shows a clash", || async {
        connection(&daemon.get_json("/api/status").await)["plugin_problem"].is_null()
    })
    .await;
    assert_eq!(
        version_in_status(&daemon).await,
        json!(env!("CARGO_PKG_VERSION"))
    );
    assert!(daemon.stop().await.success());
}

/// A new version whose default mappings differ is a mapping change: with
/// the rule's update guard at zero, the daemon holds the updates it would
/// make to every record, status says so, and an approval lets them go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_that_changes_a_default_mapping_waits_for_approval() {
    let world = swap_world().await;
    world.fixture.write_config(&format!(
        "{HEADER}[status]\ntoken = {{ secrets_file = \"status_token\" }}\n{}\n[rules.staff]\nconnection = \"store\"\nscope = {{ group = \"staff\" }}\nupdate_guard = {{ max_count = 0 }}\n",
        json_store_connection("store", &world.store.host())
    ));
    let daemon = Daemon::start(&world.fixture).await;
    eventually("the first people are synced", || async {
        world.has("s1@example.com") && world.has("s2@example.com")
    })
    .await;
    let display = |world: &Swap| -> Vec<String> {
        world
            .store
            .people()
            .iter()
            .map(|(_, a)| a["display_name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(display(&world), ["S s1", "S s2"]);

    world.replace_with(&std::fs::read(test_plugins::JSON_STORE_NEXT).unwrap());
    eventually("status shows the updates held", || async {
        rule(&daemon.get_json("/api/status").await)["held_updates"] == json!([2, 2])
    })
    .await;
    assert_eq!(display(&world), ["S s1", "S s2"], "nothing rewritten yet");
    assert_eq!(
        version_in_status(&daemon).await,
        json!(test_plugins::NEXT_VERSION)
    );

    let approve = reqwest::Client::new()
        .post(format!("{}/api/rules/staff/approve-updates", daemon.url))
        .bearer_auth(STATUS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(approve.status(), 200);
    eventually("the new default mapping reaches every record", || async {
        display(&world) == ["s1, S", "s2, S"]
    })
    .await;
    assert!(daemon.stop().await.success());
}
