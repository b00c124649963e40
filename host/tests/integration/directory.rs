//! The source directory through the real binary: imports with located
//! errors, single-person edits, groups, and a state file that is private
//! and refused when it is not one this binary can use.

use crate::common;

use common::*;

fn people(fixture: &Fixture) -> serde_json::Value {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .arg("--config")
        .arg(fixture.config_path())
        .args(["people", "list", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_are_checked_row_by_row_and_taken_whole() {
    // The file's mode is checked: a state file, whatever the backend.
    let fixture = Fixture::on_file(&[]);
    fixture.write_config("[directory]\nattributes = [\"cost_center\"]\n");
    let sample = repo_root().join("examples/people.json");
    let sample = sample.to_str().unwrap();

    let run = fixture
        .provisioner(&["people", "import", sample], &[])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.contains("12 created, 0 changed, 0 unchanged"),
        "{}",
        run.stdout
    );
    let run = fixture
        .provisioner(&["people", "import", sample], &[])
        .await;
    assert!(
        run.stdout.contains("0 created, 0 changed, 12 unchanged"),
        "{}",
        run.stdout
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(fixture.path().join("provisioner.db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the state file is private");
    }

    std::fs::write(
        fixture.path().join("more.csv"),
        "id,given_name,family_name,email,cost_center,groups\n\
         n1,Nora,North,nora@example.com,CC-1,prospects\n\
         n2,Bad,Enabled,bad@example.com,CC-2,customers\n\
         p-0001,Ada,Lovelace,ada@example.com,CC-3,prospects;vip\n\
         n1,Nora,Again,nora2@example.com,CC-4,\n",
    )
    .unwrap();
    // An extra column that is not an attribute: refused at the header.
    std::fs::write(
        fixture.path().join("typo.csv"),
        "id,emial\nz1,z@example.com\n",
    )
    .unwrap();
    let run = fixture
        .provisioner(&["people", "import", "typo.csv"], &[])
        .await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr
            .contains("typo.csv:1: column unknown attribute \"emial\"; did you mean email?"),
        "{}",
        run.stderr
    );

    let run = fixture
        .provisioner(&["people", "import", "more.csv"], &[])
        .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains("more.csv:5: person \"n1\": the id is already used on line 2"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.starts_with("nothing imported: 1 bad row(s)"),
        "{}",
        run.stdout
    );
    assert_eq!(
        people(&fixture).as_array().unwrap().len(),
        12,
        "all or nothing by default"
    );

    let run = fixture
        .provisioner(&["people", "import", "more.csv", "--skip-invalid"], &[])
        .await;
    assert_eq!(
        run.code,
        Some(1),
        "bad rows still fail the command: {run:?}"
    );
    assert!(
        run.stdout
            .contains("2 created, 1 changed, 0 unchanged, 1 bad row(s) skipped"),
        "{}",
        run.stdout
    );
    let all = people(&fixture);
    let ada = all
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "p-0001")
        .unwrap();
    // A row is the whole person: attributes the row leaves out are gone.
    assert_eq!(ada["attributes"]["email"], "ada@example.com");
    assert!(ada["attributes"].get("phone").is_none(), "{ada}");
    assert_eq!(ada["groups"], serde_json::json!(["prospects", "vip"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_people_and_groups_are_edited_from_the_command_line() {
    let fixture = Fixture::new(&[]);
    fixture.write_config("");
    let run = |args: &'static [&'static str]| {
        let fixture = &fixture;
        async move { fixture.provisioner(args, &[]).await }
    };
    assert_eq!(
        run(&[
            "people",
            "add",
            "u1",
            "--attr",
            "email=u1@example.com",
            "--attr",
            "given_name=Uma",
            "--group",
            "prospects"
        ])
        .await
        .code,
        Some(0)
    );
    let again = run(&["people", "add", "u1"]).await;
    assert_eq!(again.code, Some(2));
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert_eq!(
        run(&[
            "people",
            "set",
            "u1",
            "--attr",
            "title=CTO",
            "--unset",
            "given_name"
        ])
        .await
        .code,
        Some(0)
    );
    assert_eq!(
        run(&["groups", "add-member", "customers", "u1"]).await.code,
        Some(0)
    );
    assert_eq!(
        run(&["groups", "remove-member", "prospects", "u1"])
            .await
            .code,
        Some(0)
    );
    assert_eq!(run(&["people", "disable", "u1"]).await.code, Some(0));

    let show = run(&["people", "show", "u1", "--json"]).await;
    let person: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(person["enabled"], false);
    assert_eq!(person["groups"], serde_json::json!(["customers"]));
    assert_eq!(
        person["attributes"],
        serde_json::json!({ "email": "u1@example.com", "title": "CTO" })
    );

    let bad = run(&["people", "set", "u1", "--attr", "shoe_size=9"]).await;
    assert_eq!(bad.code, Some(2));
    assert!(
        bad.stderr.contains("unknown attribute \"shoe_size\""),
        "{}",
        bad.stderr
    );
    let missing = run(&["people", "enable", "nobody"]).await;
    assert_eq!(missing.code, Some(2));
    assert!(
        missing.stderr.contains("no person \"nobody\""),
        "{}",
        missing.stderr
    );

    assert_eq!(run(&["people", "delete", "u1"]).await.code, Some(0));
    let list = run(&["people", "list"]).await;
    assert!(list.stdout.ends_with("0 people\n"), "{}", list.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_file_this_binary_cannot_use_is_refused_with_what_to_do() {
    let fixture = Fixture::on_file(&[]);
    fixture.write_config("state = \"state/p.db\"\n");
    let state = fixture.path().join("state/p.db");
    std::fs::create_dir_all(state.parent().unwrap()).unwrap();

    std::fs::write(&state, vec![0x42u8; 8192]).unwrap();
    let run = fixture.provisioner(&["people", "list"], &[]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains("is not a usable SQLite database"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("state/p.db"), "{}", run.stderr);

    std::fs::remove_file(&state).unwrap();
    {
        let connection = rusqlite::Connection::open(&state).unwrap();
        connection
            .execute_batch("PRAGMA user_version = 999")
            .unwrap();
    }
    let run = fixture.provisioner(&["people", "list"], &[]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr
            .contains("written by a newer provisioner (schema version 999"),
        "{}",
        run.stderr
    );
}
