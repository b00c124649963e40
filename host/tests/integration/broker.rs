//! The broker, through real components and a real store on loopback: token
//! refresh and rotation, refused refreshes, the egress allowlist and
//! redirects, and secrets that stay in the host.

use crate::common;

use common::*;
use json_store::JsonStore;
use provisioner::broker::HttpError;
use provisioner::runtime::CallError;
use provisioner::runtime::contract::StoreError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refreshed_once_and_the_request_retried() {
    let server = JsonStore::start(json_store_options()).await.unwrap();
    let fixture = json_store_fixture(&server);
    let (_runtime, _plugins, store) = connect(&fixture, runtime_options(), "store").await;

    let report = store
        .test_connection()
        .await
        .expect("refresh, then success");
    assert!(
        report.summary.contains("connected to store demo"),
        "{report:?}"
    );
    let counters = server.counters();
    assert_eq!(counters.token_requests.get("refresh_token"), Some(&1));
    assert_eq!(
        counters.api_requests.get("GET /api/me"),
        Some(&2),
        "{counters:?}"
    );
    assert_eq!(counters.unauthorized, 1, "only the stale token was refused");

    // The new token is kept: no further refresh.
    store.test_connection().await.unwrap();
    let counters = server.counters();
    assert_eq!(counters.token_requests.get("refresh_token"), Some(&1));
    assert_eq!(counters.api_requests.get("GET /api/me"), Some(&3));

    // The token endpoint's instance_url is vouched for by `https://{host}`
    // and becomes a session fact.
    assert_eq!(
        store.broker().session("instance-url").as_deref(),
        Some(server.base_url())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_one_refresh() {
    let server = JsonStore::start(json_store_options()).await.unwrap();
    let fixture = json_store_fixture(&server);
    let (_runtime, _plugins, store) = connect(&fixture, runtime_options(), "store").await;

    let calls: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.test_connection().await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().expect("every caller succeeds");
    }
    assert_eq!(
        server.counters().token_requests.get("refresh_token"),
        Some(&1),
        "one refresh for sixteen callers that met the same expired token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refresh_reports_unauthorized_with_the_servers_words() {
    capture_logs();
    let server = JsonStore::start(json_store_options()).await.unwrap();
    server.revoke_refresh_tokens();
    let fixture = json_store_fixture(&server);
    let (_runtime, _plugins, store) = connect(&fixture, runtime_options(), "store").await;

    let error = store
        .test_connection()
        .await
        .expect_err("refresh is refused");
    let CallError::Store {
        error: store_error,
        cause,
    } = &error
    else {
        panic!("expected a store error, got {error:?}");
    };
    let StoreError::Unauthorized(message) = store_error else {
        panic!("expected unauthorized, got {store_error:?}");
    };
    assert!(
        message.contains("invalid_grant: expired access/refresh token"),
        "{message}"
    );
    assert!(
        message.contains("refused the refresh_token grant"),
        "{message}"
    );
    assert!(
        matches!(cause, Some(HttpError::Unauthorized(_))),
        "{cause:?}"
    );
    assert_no_secret(&error.to_string());

    // Callers that come after a refused refresh do not hammer the endpoint.
    let again = store.test_connection().await.expect_err("still refused");
    assert!(again.to_string().contains("invalid_grant"), "{again}");
    assert_eq!(
        server.counters().token_requests.get("refresh_token"),
        Some(&1)
    );
    assert_no_secret(&logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_401_after_refresh_is_unauthorized() {
    let server = JsonStore::start(json_store_options()).await.unwrap();
    server.refuse_all_access_tokens();
    let fixture = json_store_fixture(&server);
    let (_runtime, _plugins, store) = connect(&fixture, runtime_options(), "store").await;

    let error = store.test_connection().await.expect_err("401 twice");
    let text = error.to_string();
    assert!(
        text.contains("still refused the credentials after the access token was refreshed"),
        "{text}"
    );
    assert!(text.contains("Session expired or invalid"), "{text}");
    let counters = server.counters();
    assert_eq!(counters.token_requests.get("refresh_token"), Some(&1));
    assert_eq!(
        counters.api_requests.get("GET /api/me"),
        Some(&2),
        "retried once only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_refresh_token_is_written_back_to_the_secrets_file() {
    let server = JsonStore::start(json_store::Options {
        rotate_refresh_tokens: true,
        ..json_store_options()
    })
    .await
    .unwrap();
    let fixture = json_store_fixture(&server);
    let (_runtime, _plugins, store) = connect(&fixture, runtime_options(), "store").await;

    store
        .test_connection()
        .await
        .expect("refresh with rotation");
    let current = server.refresh_tokens();
    assert_eq!(current.len(), 1);
    assert_ne!(current[0], REFRESH_TOKEN, "the server rotated the token");

    let secrets = fixture.secrets();
    assert!(
        secrets.contains(&format!("refresh_token = \"{}\"", current[0])),
        "{secrets}"
    );
    assert!(!secrets.contains(REFRESH_TOKEN), "the old token is gone");
    assert!(
        secrets.contains(CLIENT_SECRET),
        "the other secrets are kept"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(fixture.secrets_path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A fresh process reads the rotated token and works; the old one would
    // now be refused.
    server.expire_access_tokens();
    let (_runtime, _plugins, restarted) = connect(&fixture, runtime_options(), "store").await;
    restarted
        .test_connection()
        .await
        .expect("the rotated token works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_a_disallowed_host_is_denied_before_connecting() {
    let server = JsonStore::start(json_store_options()).await.unwrap();
    let tripwire = Tripwire::new();
    server.redirect("/api/me", &format!("http://{}/steal", tripwire.addr()));
    let fixture = json_store_fixture(&server);
    let (_runtime, _plugins, store) = connect(&fixture, runtime_options(), "store").await;

    let error = store
        .test_connection()
        .await
        .expect_err("the hop is denied");
    let CallError::Store { cause, .. } = &error else {
        panic!("expected a store error, got {error:?}");
    };
    let Some(HttpError::Denied(reason)) = cause else {
        panic!("expected a denial, got {cause:?}");
    };
    assert!(reason.contains("redirect from"), "{reason}");
    assert!(reason.contains(&tripwire.addr().to_string()), "{reason}");
    assert!(!tripwire.tripped(), "the disallowed host was contacted");
    assert_eq!(server.counters().redirects, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_outside_the_allowlist_are_denied_and_never_connect() {
    let tripwire = Tripwire::new();
    let fixture = Fixture::new(&[test_plugins::DISALLOWED_HOST]);
    for target in [
        format!("http://{}/", tripwire.addr()),
        format!("https://{}/", tripwire.addr()),
        "https://example.com/".to_string(),
    ] {
        fixture.write_config(&format!(
            r#"
[connections.probe]
plugin = "disallowed-host"
allow_insecure_loopback = true

[connections.probe.settings]
domain = "allowed.example.com"
target_url = "{target}"
"#
        ));
        let (_runtime, _plugins, probe) = connect(&fixture, runtime_options(), "probe").await;
        let error = probe.test_connection().await.expect_err("denied");
        let text = error.to_string();
        assert!(text.contains("denied"), "{text}");
        assert!(text.contains("not among the hosts"), "{text}");
        assert!(text.contains("https://allowed.example.com"), "{text}");
        assert!(!tripwire.tripped(), "{target} was contacted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guest_sees_no_secret_no_environment_and_no_files() {
    // Variables the test process has (cargo sets the first), which the
    // guest must not see. None is set here: setting one while other
    // threads run is unsound.
    let host_only: Vec<String> = ["CARGO_MANIFEST_DIR", "PATH"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .filter(|value| value.len() >= 8)
        .collect();
    assert!(!host_only.is_empty(), "the test process has an environment");
    let fixture = Fixture::new(&[test_plugins::SNOOP]);
    fixture.write_config(&format!(
        r#"{HEADER}
[connections.snoop]
plugin = "snoop"

[connections.snoop.settings]
domain = "store.example.com"

[connections.snoop.secrets]
client_id = {{ secrets_file = "client_id" }}
client_secret = {{ secrets_file = "client_secret" }}
access_token = {{ secrets_file = "access_token" }}
refresh_token = {{ secrets_file = "refresh_token" }}
"#
    ));
    fixture.write_secrets(&json_store_secrets());
    let (_runtime, _plugins, snoop) = connect(&fixture, runtime_options(), "snoop").await;

    let report = snoop.test_connection().await.expect("snoop reports");
    let seen: std::collections::BTreeMap<_, _> = report.details.iter().cloned().collect();
    let everything = format!("{report:?}");
    assert_no_secret(&everything);
    for value in &host_only {
        assert!(!everything.contains(value.as_str()), "{everything}");
    }
    for secret in [
        "client_id",
        "client_secret",
        "access_token",
        "refresh_token",
    ] {
        assert_eq!(seen[&format!("config:{secret}")], "None", "{secret}");
    }
    assert_eq!(seen["config:domain"], "Some(\"store.example.com\")");
    assert_eq!(seen["egress-url:0"], "Some(\"https://store.example.com\")");
    assert!(!seen.keys().any(|k| k.starts_with("env:")), "{seen:?}");
    assert_eq!(seen["args"], "[]");
    assert!(
        seen["read-dir /"].starts_with("Err"),
        "{}",
        seen["read-dir /"]
    );
    assert!(
        seen["read-dir ."].starts_with("Err"),
        "{}",
        seen["read-dir ."]
    );
}
