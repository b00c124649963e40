//! A hostile connector against the real host. The `hostile` component
//! (tests/hostile-connector) holds real OAuth 2.0 secrets through the
//! host, declares a host of its own choosing (`https://127.0.0.1:{port}`:
//! the operator only picks the port) and tries, one attack per run, to get
//! a credential sent there, spliced where the store echoes it, or handed
//! back to it; to flood the token endpoint; and to forge or drive the
//! operator's log and terminal. Every test runs the real `provisioner`
//! binary and asserts that no credential byte reaches the listener on
//! loopback, the guest (which reports all it received), the log or the
//! terminal.

use crate::common;

use common::world::World;
use common::*;
use json_store::JsonStore;
use serde_json::Value;

/// A configuration with one `hostile` connection to `store`, its own host
/// on `port` (none for 0), running `attack`; `extra` goes into the
/// connection's table, `settings` into its settings.
fn hostile_config(store: &str, port: u16, attack: &str, extra: &str) -> String {
    hostile_config_with(store, port, attack, extra, "")
}

fn hostile_config_with(
    store: &str,
    port: u16,
    attack: &str,
    extra: &str,
    settings: &str,
) -> String {
    let port = if port == 0 {
        String::new()
    } else {
        format!("port = \"{port}\"")
    };
    format!(
        r#"{HEADER}
[connections.hostile]
plugin = "hostile"
allow_insecure_loopback = true
{extra}

[connections.hostile.settings]
domain = "{store}"
{port}
attack = "{attack}"
{settings}

[connections.hostile.secrets]
client_id = {{ secrets_file = "client_id" }}
client_secret = {{ secrets_file = "client_secret" }}
access_token = {{ secrets_file = "access_token" }}
refresh_token = {{ secrets_file = "refresh_token" }}
"#
    )
}

fn hostile_fixture(component: &str) -> Fixture {
    let fixture = Fixture::new(&[component]);
    fixture.write_secrets(&json_store_secrets());
    fixture
}

/// `connections test hostile --json`: the exit code and what the guest
/// reported receiving, keyed `N:status`, `N:body`, `N:error`, ...
async fn attack(fixture: &Fixture) -> (Option<i32>, serde_json::Map<String, Value>, Run) {
    let run = fixture
        .provisioner(&["connections", "test", "hostile", "--json"], &[])
        .await;
    let details = serde_json::from_str::<Value>(&run.stdout)
        .ok()
        .and_then(|v| {
            v["details"].as_array().map(|pairs| {
                pairs
                    .iter()
                    .filter_map(|pair| Some((pair[0].as_str()?.to_string(), pair[1].clone())))
                    .collect()
            })
        })
        .unwrap_or_default();
    (run.code, details, run)
}

fn approve(recorder: &Recorder) -> String {
    format!(
        "approved_egress = [\"http://127.0.0.1:{}\"]",
        recorder.port()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_the_plugin_chose_never_receives_a_credential() {
    let store = JsonStore::start(json_store_options()).await.unwrap();
    let recorder = Recorder::start().await;
    let fixture = hostile_fixture(test_plugins::HOSTILE);
    let own = format!("http://127.0.0.1:{}", recorder.port());

    // `plugins inspect` tells the operator which host the plugin chose.
    let run = fixture
        .provisioner(&["plugins", "inspect", "hostile"], &[])
        .await;
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("https://127.0.0.1:{port}"))
        .unwrap_or_else(|| panic!("{run:?}"));
    assert!(line.contains("a host the plugin chose"), "{line}");
    assert!(line.contains("approved_egress"), "{line}");

    // Unapproved, the connection does not pass `check`, and the line says
    // which host and how to approve it.
    fixture.write_config(&hostile_config(
        &store.host(),
        recorder.port(),
        "header-to-own-host",
        "",
    ));
    let check = fixture.provisioner(&["check"], &[]).await;
    assert_eq!(check.code, Some(1), "{check:?}");
    let line = check
        .stderr
        .lines()
        .find(|l| l.contains(&own))
        .unwrap_or_else(|| panic!("no line names {own}: {check:?}"));
    assert!(line.contains("a host it chose itself"), "{line}");
    assert!(
        line.contains(&format!("approved_egress = [\"{own}\"]")),
        "{line}"
    );
    let (code, _, run) = attack(&fixture).await;
    assert_ne!(code, Some(0), "{run:?}");
    assert_eq!(recorder.connections(), 0);

    // Approved, it is reachable, but never with a credential: neither in
    // the Authorization header nor spliced into a body.
    fixture.write_config(&hostile_config(
        &store.host(),
        recorder.port(),
        "header-to-own-host",
        &approve(&recorder),
    ));
    let check = fixture.provisioner(&["check"], &[]).await;
    assert_eq!(check.code, Some(0), "{check:?}");
    for attack_name in ["header-to-own-host", "body-to-own-host"] {
        fixture.write_config(&hostile_config(
            &store.host(),
            recorder.port(),
            attack_name,
            &approve(&recorder),
        ));
        let (code, details, run) = attack(&fixture).await;
        assert_eq!(code, Some(0), "{run:?}");
        let error = details["0:error"].as_str().unwrap_or_default();
        assert!(error.contains("Denied"), "{attack_name}: {details:?}");
        assert!(
            error.contains("may not receive this connection's credentials"),
            "{attack_name}: {error}"
        );
        assert!(error.contains("credential_origins"), "{error}");
        assert_eq!(recorder.connections(), 0, "{attack_name} reached the host");
        assert_no_leak(&run.all(), &store.issued_tokens(), attack_name);
    }

    // Without a credential the approved host is reached, and what it
    // receives holds none.
    fixture.write_config(&hostile_config(
        &store.host(),
        recorder.port(),
        "plain-to-own-host",
        &approve(&recorder),
    ));
    let (code, details, run) = attack(&fixture).await;
    assert_eq!(code, Some(0), "{run:?}");
    assert_eq!(details["0:status"], "200", "{details:?}");
    assert_eq!(recorder.connections(), 1);
    assert!(recorder.received().starts_with("GET /collect"));
    assert!(
        !recorder.received().to_lowercase().contains("authorization"),
        "{}",
        recorder.received()
    );
    assert_no_leak(&recorder.received(), &store.issued_tokens(), "the listener");

    // The control: once the operator trusts the host with credentials,
    // the same attack delivers one, so the listener would have seen a leak.
    fixture.write_config(&hostile_config(
        &store.host(),
        recorder.port(),
        "header-to-own-host",
        &format!("credential_origins = [\"{own}\"]"),
    ));
    let (code, _, run) = attack(&fixture).await;
    assert_eq!(code, Some(0), "{run:?}");
    assert!(
        recorder
            .received()
            .contains(&format!("Bearer {STALE_ACCESS_TOKEN}")),
        "the trusted host receives the token: {}",
        recorder.received()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_come_whole_and_uncompressed_so_that_they_can_be_scrubbed() {
    let store = JsonStore::start(json_store_options()).await.unwrap();
    let fixture = hostile_fixture(test_plugins::HOSTILE);
    // The connector may not ask for compression or for a range.
    for (attack_name, header) in [
        ("ask-compressed", "accept-encoding"),
        ("ask-range", "range"),
    ] {
        fixture.write_config(&hostile_config(&store.host(), 0, attack_name, ""));
        let (code, details, run) = attack(&fixture).await;
        assert_eq!(code, Some(0), "{run:?}");
        let error = details["0:error"].as_str().unwrap_or_default();
        assert!(error.contains("Denied"), "{attack_name}: {details:?}");
        assert!(error.contains(header), "{error}");
    }
    assert!(store.counters().api_requests.is_empty(), "nothing was sent");

    // A host that compresses or transcodes anyway is refused, whatever
    // the answer holds.
    for (encoding, what) in [
        ("content-encoding: gzip\r\n", "content encoding"),
        (
            "content-type: application/json; charset=utf-16\r\n",
            "utf-16",
        ),
    ] {
        let recorder = Recorder::answering(format!(
            "HTTP/1.1 200 OK\r\n{encoding}content-length: 4\r\nconnection: close\r\n\r\nabcd"
        ))
        .await;
        fixture.write_config(&hostile_config(
            &store.host(),
            recorder.port(),
            "plain-to-own-host",
            &approve(&recorder),
        ));
        let (code, details, run) = attack(&fixture).await;
        assert_eq!(code, Some(0), "{run:?}");
        let error = details["0:error"].as_str().unwrap_or_default();
        assert!(error.contains("Protocol"), "{what}: {details:?}");
        assert!(error.contains(what), "{error}");
        assert!(
            recorder
                .received()
                .to_lowercase()
                .contains("accept-encoding: identity"),
            "the host asked for an uncompressed answer: {}",
            recorder.received()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_at_a_host_the_plugin_chose_receives_nothing() {
    let store = JsonStore::start(json_store_options()).await.unwrap();
    let recorder = Recorder::start().await;
    let fixture = hostile_fixture(test_plugins::HOSTILE_TOKEN_URL);
    // Approving the host for plain requests does not make it a token
    // endpoint: that would send it the client secret and refresh token.
    fixture.write_config(&hostile_config(
        &store.host(),
        recorder.port(),
        "401-loop",
        &approve(&recorder),
    ));
    let check = fixture.provisioner(&["check"], &[]).await;
    assert_eq!(check.code, Some(1), "{check:?}");
    let line = check
        .stderr
        .lines()
        .find(|l| l.contains("token URL"))
        .unwrap_or_else(|| panic!("no token URL line: {check:?}"));
    assert!(
        line.contains("would receive the client secret and the refresh token"),
        "{line}"
    );
    assert!(line.contains("credential_origins"), "{line}");

    let (code, _, run) = attack(&fixture).await;
    assert_ne!(code, Some(0), "{run:?}");
    assert!(run.stderr.contains("token URL"), "{run:?}");
    assert_eq!(
        recorder.connections(),
        0,
        "the token endpoint was contacted"
    );
    assert!(store.counters().token_requests.is_empty());
    assert_no_secret(&run.all());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_carry_no_credential_to_a_host_the_plugin_chose() {
    let store = JsonStore::start(json_store_options()).await.unwrap();
    // The plugin's own host redirects to the operator's store, and the
    // store redirects to the plugin's own host.
    let recorder = Recorder::answering(format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://{}/api/me\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        store.host()
    ))
    .await;
    store.redirect(
        "/api/me",
        &format!("http://127.0.0.1:{}/collect", recorder.port()),
    );
    let fixture = hostile_fixture(test_plugins::HOSTILE);

    for (target, hop) in [
        // A chain whose first hop is off-origin.
        (
            format!("http://127.0.0.1:{}/start", recorder.port()),
            "first",
        ),
        // The operator's store sending the request on to the plugin's host.
        (format!("http://{}/api/me", store.host()), "second"),
    ] {
        fixture.write_config(&hostile_config_with(
            &store.host(),
            recorder.port(),
            "send-target",
            &approve(&recorder),
            &format!("target_url = \"{target}\""),
        ));
        let (code, details, run) = attack(&fixture).await;
        assert_eq!(code, Some(0), "{run:?}");
        let error = details["0:error"].as_str().unwrap_or_default();
        assert!(
            error.contains("may not receive this connection's credentials"),
            "{hop} hop: {details:?}"
        );
        if hop == "second" {
            assert!(error.contains("redirect from"), "{error}");
        }
        assert_eq!(recorder.connections(), 0, "the {hop} hop reached the host");
        assert_no_leak(&run.all(), &store.issued_tokens(), hop);
    }
    assert_eq!(store.counters().redirects, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_goes_only_into_the_soap_header_and_echoes_come_back_scrubbed() {
    let world = World::default().await;
    let fixture = &world.fixture;
    fixture.add_plugin(test_plugins::HOSTILE);
    let domain = world.emulator.domain();

    // The placeholder where the store echoes input (the lead id), with and
    // without one in the header: refused, and nothing is sent.
    fixture.write_config(&hostile_config(&domain, 0, "soap-echoed-field", ""));
    let (code, details, run) = attack(fixture).await;
    assert_eq!(code, Some(0), "{run:?}");
    let twice = details["0:error"].as_str().unwrap_or_default();
    assert!(twice.contains("InvalidRequest"), "{details:?}");
    assert!(twice.contains("occurs 2 times"), "{twice}");
    let body_only = details["1:error"].as_str().unwrap_or_default();
    assert!(body_only.contains("never in the Body"), "{body_only}");
    assert_eq!(world.emulator.counters().of("POST soap"), 0);
    assert_no_secret(&run.all());

    // Where it belongs, against a store that quotes the session in its
    // errors (and the lead id, as Salesforce does): sent, and what comes
    // back holds the marker, not the token.
    world.emulator.echo_credentials(true);
    for attack_name in ["soap-header", "rest-error"] {
        fixture.write_config(&hostile_config(&domain, 0, attack_name, ""));
        let (code, details, run) = attack(fixture).await;
        assert_eq!(code, Some(0), "{run:?}");
        let body = details["0:body"].as_str().unwrap_or_default();
        assert!(
            body.contains(provisioner::broker::scrub::MARKER),
            "{attack_name}: the store's echo was not there to scrub: {details:?}"
        );
        assert!(body.contains("request credentials"), "{body}");
        assert_no_leak(&run.all(), &[STALE_ACCESS_TOKEN.to_string()], attack_name);
    }
    assert_eq!(world.emulator.counters().of("POST soap"), 1);

    // The operator hears of it, without the value.
    let run = fixture
        .provisioner(&["-v", "connections", "test", "hostile"], &[])
        .await;
    assert!(
        run.stderr.contains("quoted this connection's credentials"),
        "{run:?}"
    );
    assert_no_secret(&run.all());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_refuses_every_token_gets_one_token_request_and_a_quarantine() {
    let store = JsonStore::start(json_store_options()).await.unwrap();
    store.refuse_all_access_tokens();
    let fixture = hostile_fixture(test_plugins::HOSTILE);
    fixture.write_config(&format!(
        "{}\n[rules.everyone]\nconnection = \"hostile\"\nscope = {{ group = \"staff\" }}\n",
        hostile_config_with(&store.host(), 0, "401-loop", "", "count = 50")
    ));

    // 50 sends in one call: the first refreshes once and is still refused;
    // the rest are refused without another token request.
    let (code, details, run) = attack(&fixture).await;
    assert_eq!(code, Some(0), "{run:?}");
    let counters = store.counters();
    assert_eq!(
        counters.token_requests.values().sum::<u64>(),
        1,
        "{counters:?}"
    );
    assert_eq!(counters.api_requests.get("GET /api/me"), Some(&51));
    let first = details["0:error"].as_str().unwrap_or_default();
    assert!(first.contains("still refused"), "{first}");
    let later = details["49:error"].as_str().unwrap_or_default();
    assert!(later.contains("without accepting it once"), "{later}");
    assert_no_leak(&run.all(), &store.issued_tokens(), "the report");

    // A connector that makes the store "expire" the session at will, with
    // an expired marker of its choosing between requests the store
    // accepts, gets one refresh a call for it, not one a request.
    let trusting = JsonStore::start(json_store_options()).await.unwrap();
    let marker = hostile_fixture(test_plugins::HOSTILE);
    marker.write_config(&hostile_config_with(
        &trusting.host(),
        0,
        "marker-loop",
        "",
        "count = 5",
    ));
    let (code, details, run) = attack(&marker).await;
    assert_eq!(code, Some(0), "{run:?}");
    assert_eq!(
        details.get("0:status"),
        Some(&Value::from("200")),
        "{run:?}"
    );
    let again = details
        .get("3:error")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        again.contains("already refreshed once in this call"),
        "{details:?}"
    );
    assert_eq!(
        trusting.counters().token_requests.values().sum::<u64>(),
        2,
        "one exchange for the stale configured token, one for the marker"
    );
    assert_no_leak(&run.all(), &trusting.issued_tokens(), "the marker loop");

    // In a sync, the refusal quarantines the connection, and the next
    // pass sends nothing at all.
    let people = fixture.path().join("people.json");
    std::fs::write(
        &people,
        r#"[{"id": "s1", "groups": ["staff"], "given_name": "S", "family_name": "One", "email": "s1@example.com"}]"#,
    )
    .unwrap();
    let run = fixture
        .provisioner(&["people", "import", "people.json"], &[])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let run = fixture.provisioner(&["sync"], &[]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stdout.contains("QUARANTINED"), "{run:?}");
    let requests = store.counters().token_requests.values().sum::<u64>();
    assert_eq!(requests, 2, "one more process, one more exchange");
    let run = fixture.provisioner(&["sync"], &[]).await;
    assert!(run.stdout.contains("QUARANTINED"), "{run:?}");
    assert_eq!(
        store.counters().token_requests.values().sum::<u64>(),
        requests
    );
    let status = fixture.provisioner(&["status", "--json"], &[]).await;
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    assert!(
        status["connections"][0]["quarantined"].is_string(),
        "{status}"
    );
    assert_no_leak(&run.all(), &store.issued_tokens(), "the sync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_output_is_capped_and_cannot_forge_lines_or_drive_the_terminal() {
    let store = JsonStore::start(json_store_options()).await.unwrap();
    let fixture = hostile_fixture(test_plugins::HOSTILE);

    // 1,024 log messages of 1 MiB each; 1,024 lines of 64 KiB each on
    // stdout and on stderr.
    for (attack_name, size, filler) in [
        ("log-flood", 1 << 20, "xxxx"),
        ("stdout-flood", 64 << 10, "yyyy"),
    ] {
        fixture.write_config(&hostile_config_with(
            &store.host(),
            0,
            attack_name,
            "",
            &format!("count = 1024\nsize = {size}"),
        ));
        let started = std::time::Instant::now();
        let (code, _, run) = attack(&fixture).await;
        let elapsed = started.elapsed();
        // The log is bounded, whatever became of the call.
        assert!(
            run.stderr.len() < 512 << 10,
            "{attack_name}: {} bytes of log for one call",
            run.stderr.len()
        );
        let dropped = run
            .stderr
            .lines()
            .find(|l| l.contains("the rest was dropped"))
            .unwrap_or_else(|| panic!("{attack_name}: no line says what was dropped"));
        assert!(dropped.contains("messages="), "{dropped}");
        let kept = run.stderr.lines().filter(|l| l.contains(filler)).count();
        assert!(kept > 0 && kept <= 1000, "{attack_name}: {kept} lines kept");
        assert!(
            run.stderr.lines().all(|l| l.len() < 4300),
            "{attack_name}: a line longer than the cap"
        );
        assert_eq!(
            code,
            Some(0),
            "{attack_name} took {elapsed:?}: {:.2000}",
            run.stdout
        );
    }

    // Line breaks and escape sequences from the plugin stay inert, in the
    // log and in what the CLI prints of its report.
    fixture.write_config(&hostile_config(&store.host(), 0, "forge", ""));
    let run = fixture
        .provisioner(&["connections", "test", "hostile"], &[])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(!text.contains('\u{1b}'), "{stream} holds ESC: {text:?}");
        assert!(!text.contains('\r'), "{stream} holds CR: {text:?}");
        assert!(!text.contains('\u{7}'), "{stream} holds BEL: {text:?}");
        assert!(!text.contains('\u{202e}'), "{stream} holds RLO: {text:?}");
        for line in text.lines() {
            assert!(
                !line.starts_with("2026-11-28T00:00:00.000000Z ERROR")
                    && !line.starts_with("FORGED")
                    && !line.starts_with("connection fake"),
                "{stream} has a forged line: {line:?}"
            );
        }
    }
    assert!(
        run.stderr.contains("innocent\\n2026-11-28"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("\\u{1b}[2J"), "{}", run.stdout);
    assert!(
        run.stdout.contains("value\\nFORGED DETAIL"),
        "{}",
        run.stdout
    );
}
