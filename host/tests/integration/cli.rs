//! The `provisioner` binary, end to end: plugin listing, swapping a plugin
//! without rebuilding the host, Test Connection with its exact failure
//! reasons, configuration diagnostics, and secrets that never reach output.

use crate::common;

use common::*;
use json_store::JsonStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_has_help() {
    let fixture = Fixture::new(&[]);
    for args in [
        vec!["--help"],
        vec!["plugins", "--help"],
        vec!["plugins", "list", "--help"],
        vec!["plugins", "inspect", "--help"],
        vec!["connections", "--help"],
        vec!["connections", "test", "--help"],
        vec!["check", "--help"],
        vec!["connections", "push", "--help"],
        vec!["connections", "resume", "--help"],
        vec!["people", "--help"],
        vec!["people", "import", "--help"],
        vec!["groups", "add-member", "--help"],
        vec!["sync", "--help"],
        vec!["run", "--help"],
        vec!["status", "--help"],
        vec!["status", "person", "--help"],
        vec!["audit", "--help"],
        vec!["retry", "--help"],
        vec!["approve-removals", "--help"],
    ] {
        let run = fixture.provisioner(&args, &[]).await;
        assert_eq!(run.code, Some(0), "{args:?}: {run:?}");
        assert!(
            run.stdout.contains("Usage: provisioner"),
            "{args:?}: {}",
            run.stdout
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_list_and_inspect_show_what_each_plugin_declares() {
    let fixture = Fixture::new(&[test_plugins::JSON_STORE, test_plugins::WASI_SOCKETS]);
    let run = fixture.provisioner(&["plugins", "list"], &[]).await;
    // The refused wasi-sockets file fails the listing; the good one is
    // still listed.
    assert_eq!(run.code, Some(1), "{run:?}");
    let row = run
        .stdout
        .lines()
        .find(|l| l.starts_with("json-store"))
        .unwrap_or_else(|| panic!("json-store not listed:\n{}", run.stdout));
    for column in [
        "0.1.0",
        // The contract it speaks, beside its own version.
        "0.2.0",
        "create,update,disable,enable,delete,lookup,list",
        "https://{host}",
    ] {
        assert!(row.contains(column), "{row}");
    }
    assert!(run.stdout.starts_with("NAME"), "{}", run.stdout);
    // The refused neighbour is reported on stderr, in one line.
    let refusal: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("wasi-sockets.wasm"))
        .collect();
    assert_eq!(refusal.len(), 1, "{}", run.stderr);
    assert!(refusal[0].contains("does not grant"), "{}", refusal[0]);

    let run = fixture
        .provisioner(&["plugins", "list", "--json"], &[])
        .await;
    let value: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(value["plugins"][0]["name"], "json-store");
    assert_eq!(value["plugins"][0]["contract"], "0.2.0");
    assert_eq!(value["refused"].as_array().map(Vec::len), Some(1));

    let run = fixture
        .provisioner(&["plugins", "inspect", "json-store"], &[])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    for needle in [
        "json-store 0.1.0",
        "OAuth 2.0, token URL https://{host}/oauth/token",
        "match on:     email",
        "client_secret",
        "required, secret",
        "display_name",
        "(template)",
        "https://{host}  host from your setting host: may receive credentials",
        "contract:     0.2.0",
    ] {
        assert!(
            run.stdout.contains(needle),
            "{needle:?} missing:\n{}",
            run.stdout
        );
    }

    // Contract 0.2's attribute types and comparison rules.
    for (attribute, facts) in [
        ("active", ["boolean", "compared exactly"]),
        ("email", ["text", "compared without case"]),
    ] {
        let line = run
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(attribute) && l.contains("compared"))
            .unwrap_or_else(|| panic!("{attribute} not among the attributes:\n{}", run.stdout));
        for fact in facts {
            assert!(line.contains(fact), "{line}");
        }
    }

    let run = fixture
        .provisioner(&["plugins", "inspect", "wasi-sockets"], &[])
        .await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("no plugin named \"wasi-sockets\""),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("does not grant"),
        "explains the refusal: {}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_dropped_into_the_directory_is_listed_and_callable_without_a_host_rebuild() {
    let server = JsonStore::start(json_store_options()).await.unwrap();
    let fixture = Fixture::new(&[]);
    fixture.write_config(&format!(
        "{HEADER}{}",
        json_store_connection("store", &server.host())
    ));
    fixture.write_secrets(&json_store_secrets());
    let binary = std::fs::metadata(env!("CARGO_BIN_EXE_provisioner")).unwrap();

    let run = fixture.provisioner(&["plugins", "list"], &[]).await;
    assert_eq!(run.stdout.trim(), "no plugins loaded");
    let run = fixture
        .provisioner(&["connections", "test", "store"], &[])
        .await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr
            .contains("plugin \"json-store\", which is not loaded"),
        "{}",
        run.stderr
    );

    // The component comes from its own `cargo build --target wasm32-wasip2`
    // (tests/test-plugins); the host binary is the one already built.
    fixture.add_plugin(test_plugins::JSON_STORE);
    let run = fixture.provisioner(&["plugins", "list"], &[]).await;
    assert!(run.stdout.contains("json-store"), "{run:?}");
    let run = fixture
        .provisioner(&["connections", "test", "store"], &[])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout
            .contains("connection store (plugin json-store 0.1.0): OK"),
        "{}",
        run.stdout
    );

    let after = std::fs::metadata(env!("CARGO_BIN_EXE_provisioner")).unwrap();
    assert_eq!(
        binary.modified().unwrap(),
        after.modified().unwrap(),
        "the host was not rebuilt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_names_the_exact_failure() {
    // Success first, with the store's identity.
    let server = JsonStore::start(json_store_options()).await.unwrap();
    let fixture = json_store_fixture(&server);
    let run = fixture
        .provisioner(&["connections", "test", "store"], &[])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout
            .contains("connected to store demo as integration@example.com"),
        "{}",
        run.stdout
    );
    let run = fixture
        .provisioner(&["connections", "test", "store", "--json"], &[])
        .await;
    let value: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(value["ok"], true);

    // Unreachable: nothing listens on the port.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let unreachable = Fixture::new(&[test_plugins::JSON_STORE]);
    unreachable.write_config(&format!(
        "{HEADER}{}",
        json_store_connection("store", &closed)
    ));
    unreachable.write_secrets(&json_store_secrets());

    // TLS: the operator did not allow plain HTTP, so the host speaks TLS to
    // a plain HTTP server.
    let tls = Fixture::new(&[test_plugins::JSON_STORE]);
    tls.write_config(&format!(
        "{HEADER}{}",
        json_store_connection("store", &server.host()).replace(
            "allow_insecure_loopback = true",
            "allow_insecure_loopback = false"
        )
    ));
    tls.write_secrets(&json_store_secrets());

    // Denied host: the store redirects somewhere the connection may not go.
    let redirecting = JsonStore::start(json_store_options()).await.unwrap();
    let tripwire = Tripwire::new();
    redirecting.redirect("/api/me", &format!("http://{}/", tripwire.addr()));
    let denied = json_store_fixture(&redirecting);

    // 401 after refresh.
    let refusing = JsonStore::start(json_store_options()).await.unwrap();
    refusing.refuse_all_access_tokens();
    let after_refresh = json_store_fixture(&refusing);

    // Refresh refused.
    let revoked = JsonStore::start(json_store_options()).await.unwrap();
    revoked.revoke_refresh_tokens();
    let refresh_refused = json_store_fixture(&revoked);

    let cases = [
        (&unreachable, "unreachable", "Connection refused"),
        (&tls, "TLS", "https://127.0.0.1"),
        (&denied, "denied: redirect from", "not among the hosts"),
        (
            &after_refresh,
            "still refused the credentials after the access token was refreshed",
            "unauthorized",
        ),
        (
            &refresh_refused,
            "refused the refresh_token grant: invalid_grant: expired access/refresh token",
            "unauthorized",
        ),
    ];
    for (fixture, reason, detail) in cases {
        let run = fixture
            .provisioner(&["connections", "test", "store"], &[])
            .await;
        assert_eq!(run.code, Some(1), "{reason}: {run:?}");
        assert!(
            run.stdout
                .contains("connection store (plugin json-store 0.1.0): FAILED"),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout.contains(reason),
            "{reason:?} missing:\n{}",
            run.stdout
        );
        assert!(
            run.stdout.contains(detail),
            "{detail:?} missing:\n{}",
            run.stdout
        );
        assert_no_secret(&run.all());
    }
    assert!(!tripwire.tripped());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_errors_are_one_line_each_with_file_line_and_column() {
    let fixture = Fixture::new(&[test_plugins::JSON_STORE, test_plugins::PANIC]);
    let path = fixture.config_path().display().to_string();

    fixture.write_config("[connections.a]\nplugin = \"json-store\"\nsettings = { host = }\n");
    let run = fixture.provisioner(&["check"], &[]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains(&format!("{path}:3:")), "{}", run.stderr);

    fixture.write_config(&format!(
        r#"{HEADER}
[connections.unknown-plugin]
plugin = "json-stor"

[connections.missing-setting]
plugin = "json-store"
[connections.missing-setting.secrets]
client_id = {{ secrets_file = "client_id" }}
client_secret = {{ secrets_file = "client_secret" }}
refresh_token = {{ secrets_file = "refresh_token" }}

[connections.unknown-setting]
plugin = "json-store"
[connections.unknown-setting.settings]
host = "store.example.com"
hots = "typo.example.com"
[connections.unknown-setting.secrets]
client_id = {{ secrets_file = "client_id" }}
client_secret = {{ secrets_file = "client_secret" }}
refresh_token = {{ secrets_file = "refresh_token" }}

[connections.cannot-honour]
plugin = "panic"
[connections.cannot-honour.preferences]
remove_action = "disable"

[connections.secret-in-settings]
plugin = "json-store"
[connections.secret-in-settings.settings]
host = "store.example.com"
client_secret = "pasted-here"
[connections.secret-in-settings.secrets]
client_id = {{ secrets_file = "client_id" }}
refresh_token = {{ env = "PROVISIONER_TEST_UNSET_VARIABLE" }}
"#
    ));
    fixture.write_secrets(&json_store_secrets());
    let run = fixture.provisioner(&["check"], &[]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    let expectations = [
        (
            4,
            "uses plugin \"json-stor\", which is not loaded (loaded: json-store, panic); did you mean json-store?",
        ),
        (6, "missing required setting host"),
        (17, "unknown setting \"hots\""),
        (
            26,
            "remove_action = \"disable\", but plugin panic 0.1.0 cannot disable records",
        ),
        (
            32,
            "client_secret is a secret: reference it under [connections.secret-in-settings.secrets]",
        ),
        (
            35,
            "environment variable PROVISIONER_TEST_UNSET_VARIABLE is not set",
        ),
    ];
    for (line, needle) in expectations {
        let found = run
            .stderr
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} missing:\n{}", run.stderr));
        assert!(
            found.starts_with(&format!("{path}:{line}:")),
            "expected line {line}: {found}"
        );
    }
    assert!(
        !run.all().contains("pasted-here"),
        "a misplaced secret is not echoed"
    );

    // A secrets file others can read is refused with the fix.
    fixture.write_config(&format!(
        "{HEADER}{}",
        json_store_connection("ok", "store.example.com")
    ));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            fixture.secrets_path(),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let run = fixture.provisioner(&["check"], &[]).await;
        assert_eq!(run.code, Some(1), "{run:?}");
        assert!(
            run.stderr
                .contains("readable by group or others (mode 644)"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("chmod 600"), "{}", run.stderr);
        std::fs::set_permissions(
            fixture.secrets_path(),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    let run = fixture.provisioner(&["check"], &[]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.starts_with("ok: 2 plugin(s), 1 connection(s)"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_output_even_at_trace_level() {
    let server = JsonStore::start(json_store::Options {
        rotate_refresh_tokens: true,
        ..json_store_options()
    })
    .await
    .unwrap();
    let fixture = json_store_fixture(&server);
    for format in ["text", "json"] {
        let run = fixture
            .provisioner(
                &["connections", "test", "store", "--log-format", format],
                &[("RUST_LOG", "trace")],
            )
            .await;
        assert_eq!(run.code, Some(0), "{run:?}");
        assert!(
            run.stderr.contains("brokered request"),
            "trace logs were on: {}",
            run.stderr
        );
        assert_no_secret(&run.all());
        // Rotated tokens are secrets too.
        for token in server.refresh_tokens() {
            assert!(!run.all().contains(&token), "the rotated token leaked");
        }
        server.expire_access_tokens();
    }
    server.revoke_refresh_tokens();
    let run = fixture
        .provisioner(
            &["connections", "test", "store", "-vv"],
            &[("RUST_LOG", "trace")],
        )
        .await;
    assert_eq!(run.code, Some(1));
    assert_no_secret(&run.all());
}
