//! The state through the real binary on both backends: a state file moved
//! into PostgreSQL with `state migrate`, both checked with `state check`,
//! and the directory read the same from either. Needs the PostgreSQL test
//! server (`bash tests/postgres.sh`, or PROVISIONER_TEST_POSTGRES).

use crate::common;

use common::*;

fn people(run: &Run) -> serde_json::Value {
    assert_eq!(run.code, Some(0), "{run:?}");
    serde_json::from_str(&run.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_file_moves_into_postgres_and_both_check_out() {
    let fixture = Fixture::on_file(&[]);
    fixture.write_config("[directory]\nattributes = [\"cost_center\"]\n");
    let sample = repo_root().join("examples/people.json");
    let run = fixture
        .provisioner(&["people", "import", sample.to_str().unwrap()], &[])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let run = fixture
        .provisioner(
            &[
                "people",
                "add",
                "n1",
                "--attr",
                "email=nora@example.com",
                "--group",
                "vip",
            ],
            &[],
        )
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");

    let run = fixture.provisioner(&["state", "check"], &[]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.starts_with("sqlite state at "), "{}", run.stdout);
    assert!(
        run.stdout.contains("people                    13 rows"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.trim_end().ends_with("ok"), "{}", run.stdout);

    let database = TestDatabase::create();
    let run = fixture
        .provisioner(&["state", "migrate", "--to", &database.url], &[])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.contains("people                    13 rows"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("every table's rows and checksum match the file"),
        "{}",
        run.stdout
    );

    // The directory reads the same from either backend.
    let from_file = people(
        &fixture
            .provisioner(&["people", "list", "--json"], &[])
            .await,
    );
    let from_database = people(
        &fixture
            .provisioner(&["--state", &database.url, "people", "list", "--json"], &[])
            .await,
    );
    assert_eq!(from_file, from_database);
    assert_eq!(from_database.as_array().map(Vec::len), Some(13));

    let run = fixture
        .provisioner(&["--state", &database.url, "state", "check", "--json"], &[])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let check: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(check["backend"], "postgres");
    assert_eq!(check["ok"], true);
    assert_eq!(check["counts"]["people"], 13);

    // A database that holds a state is not written over unless asked.
    let run = fixture
        .provisioner(&["state", "migrate", "--to", &database.url], &[])
        .await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains("already holds a state"),
        "{}",
        run.stderr
    );
    let run = fixture
        .provisioner(
            &["state", "migrate", "--to", &database.url, "--replace"],
            &[],
        )
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");

    // The configuration may name the database; never its password.
    let with_password = database.url.replacen("@", ":hunter2@", 1);
    fixture.write_config(&format!(
        "state = \"{with_password}\"\n[directory]\nattributes = [\"cost_center\"]\n"
    ));
    let run = fixture.provisioner(&["people", "list"], &[]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr
            .contains("state: the PostgreSQL URL holds a password"),
        "{}",
        run.stderr
    );
    assert!(!run.all().contains("hunter2"), "{}", run.all());
    fixture.write_config(&format!(
        "state = \"{}\"\n[directory]\nattributes = [\"cost_center\"]\n",
        database.url
    ));
    let run = fixture
        .provisioner(&["people", "list", "--json"], &[])
        .await;
    assert_eq!(people(&run), from_file);
}

/// Waits for a condition the daemon should bring about, up to `limit`.
async fn eventually(limit: std::time::Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    condition()
}

/// The real connector and the emulator over a state in PostgreSQL: a sync
/// creates, a second sends nothing, and the daemon carries a directory
/// change made by another process to the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_and_the_daemon_run_on_postgres() {
    use common::world::*;
    use serde_json::json;

    let database = TestDatabase::create();
    let world = World::default().await;
    world.configure(ALL, ALL, PROSPECTS);
    let config = std::fs::read_to_string(world.fixture.config_path()).unwrap();
    world.fixture.write_config(&format!(
        "state = \"{}\"\n{}",
        database.url,
        config.replace(
            "retry_base_secs = 60",
            "retry_base_secs = 60\ninterval_secs = 3600\ndrift_interval_secs = 7200",
        )
    ));
    world
        .import(json!([
            prospect("a", "CTO"),
            prospect("b", "CFO"),
            prospect("c", "COO")
        ]))
        .await;
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "created"), 3, "{report}");
    assert_eq!(summary(&report, "prospects", "success"), 3, "{report}");
    assert_eq!(world.leads().len(), 3);
    let writes = world.writes();
    let report = world.sync().await;
    assert_eq!(actions(&report, "prospects", "created"), 0, "{report}");
    assert_eq!(world.writes(), writes, "a second pass sends nothing");
    world.status().await;
    assert!(
        !world.fixture.path().join("provisioner.db").exists(),
        "no state file is made beside the configuration"
    );

    let daemon = Daemon::start(&world.fixture).await;
    let run = world
        .run(&["people", "set", "a", "--attr", "title=Chief Scientist"])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        eventually(std::time::Duration::from_secs(10), || {
            world
                .leads()
                .iter()
                .any(|l| l["Title"] == "Chief Scientist")
        })
        .await,
        "the change reached the emulator: {}",
        daemon.log_tail(20)
    );
    let status = daemon.stop().await;
    assert!(status.success(), "{status:?}");
}
