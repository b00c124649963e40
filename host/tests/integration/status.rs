//! Status reporting: the CLI, the JSON API, the page and the metrics agree,
//! failures and step traces say why, operator actions need the token, and
//! no surface ever shows a secret.

use crate::common;

use std::collections::BTreeMap;

use common::world::*;
use common::*;
use serde_json::{Value, json};

/// A world with a person in every bucket:
/// - prospects: a and c synced, b partially synced (update forbidden after
///   a change), d failed (no family name, so no LastName);
/// - customers: e unsynced (creating Contacts is forbidden).
async fn every_bucket() -> World {
    let world = World::default().await;
    let customers =
        "\n[rules.customers]\nconnection = \"contacts\"\nscope = { group = \"customers\" }\n";
    world.configure(
        ALL,
        "allow_create = false",
        &format!("{PROSPECTS}{customers}"),
    );
    world
        .import(json!([
            prospect("a", "CTO"),
            prospect("b", "CTO"),
            prospect("c", "CTO"),
            { "id": "d", "groups": ["prospects"], "email": "d@example.com" },
            { "id": "e", "groups": ["customers"], "family_name": "E", "email": "e@example.com" },
        ]))
        .await;
    let run = world.run(&["sync"]).await;
    assert_eq!(run.code, Some(1), "d fails: {run:?}");
    world.configure(
        "allow_update = false\nallow_delete = true\nremove_action = \"delete\"",
        "allow_create = false",
        &format!("{PROSPECTS}{customers}"),
    );
    world
        .run(&["people", "set", "b", "--attr", "title=CEO"])
        .await;
    world.run(&["sync"]).await;
    world
}

fn counts_from_page(page: &str) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for row in page.split("<tr data-rule=\"").skip(1) {
        let rule = row.split('"').next().unwrap().to_string();
        let row = row.split("</tr>").next().unwrap();
        for cell in row.split("data-count=\"").skip(1) {
            let (name, rest) = cell.split_once('"').unwrap();
            let value = rest.split('>').nth(1).unwrap().split('<').next().unwrap();
            out.entry(rule.clone())
                .or_default()
                .insert(name.to_string(), value.parse().unwrap());
        }
    }
    out
}

fn counts_from_json(status: &Value) -> BTreeMap<String, BTreeMap<String, u64>> {
    status["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| {
            let counts = rule["counts"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
                .collect();
            (rule["rule"].as_str().unwrap().to_string(), counts)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bucket_is_reached_and_the_cli_api_and_page_agree() {
    let world = every_bucket().await;
    let cli = world.status().await;
    let cli = counts_from_json(&cli);
    let expected_prospects = BTreeMap::from([
        ("impacted".to_string(), 4),
        ("success".to_string(), 2),
        ("unsynced".to_string(), 0),
        ("partially_synced".to_string(), 1),
        ("failed".to_string(), 1),
    ]);
    assert_eq!(cli["prospects"], expected_prospects);
    assert_eq!(cli["customers"]["unsynced"], 1);
    assert_eq!(cli["customers"]["impacted"], 1);

    let daemon = Daemon::start(&world.fixture).await;
    let api = daemon.get_json("/api/status").await;
    assert_eq!(counts_from_json(&api), cli, "the API agrees with the CLI");
    let page = daemon.get_text("/").await;
    assert_eq!(counts_from_page(&page), cli, "the page agrees with the CLI");
    assert!(
        page.contains("REQUIRED_FIELD_MISSING"),
        "the failure is on the page"
    );
    let health = daemon.get_json("/healthz").await;
    assert_eq!(health["status"], "ok");
    assert!(daemon.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_and_step_traces_say_why() {
    let world = every_bucket().await;
    let run = world.run(&["status", "--failures"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let row = run
        .stdout
        .lines()
        .find(|l| l.starts_with("prospects  d"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(row.contains("REQUIRED_FIELD_MISSING"), "{row}");
    assert!(row.contains("LastName"), "the field is named: {row}");
    assert!(row.contains("when the data changes"), "{row}");

    let run = world.run(&["status", "person", "e@EXAMPLE.com"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let text = &run.stdout;
    assert!(text.starts_with("e <e@example.com>"), "{text}");
    let customers = text
        .split("rule customers")
        .nth(1)
        .unwrap()
        .split("rule prospects")
        .next()
        .unwrap();
    assert!(
        customers.contains("scope:  in scope (group customers)"),
        "{text}"
    );
    assert!(customers.contains("link:   unsynced"), "{text}");
    assert!(
        customers.contains("reason: creating records is not allowed on this connection"),
        "{text}"
    );
    let prospects = text.split("rule prospects").nth(1).unwrap();
    assert!(
        prospects.contains("not a member of group prospects"),
        "{text}"
    );

    let run = world.run(&["status", "person", "a", "--json"]).await;
    let person: Value = serde_json::from_str(&run.stdout).unwrap();
    let prospects = person["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "prospects")
        .unwrap();
    assert_eq!(prospects["link"]["state"], "synced");
    assert_eq!(prospects["trace"][0]["action"], "create");
    assert_eq!(prospects["trace"][0]["outcome"], "ok");

    let run = world.run(&["audit", "--person", "d", "--json"]).await;
    let entries: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(
        entries
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["outcome"] == "failed" && e["error"].as_str().unwrap().contains("LastName"))
    );
    let run = world.run(&["audit", "--since", "1h"]).await;
    assert!(run.stdout.contains("entries"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_actions_need_the_token() {
    let world = every_bucket().await;
    let daemon = Daemon::start(&world.fixture).await;
    let client = reqwest::Client::new();
    let endpoints = [
        "/api/retry".to_string(),
        "/api/connections/leads/resume".to_string(),
        "/api/rules/prospects/approve-removals".to_string(),
        "/api/rules/prospects/approve-updates".to_string(),
    ];
    for endpoint in &endpoints {
        let url = format!("{}{endpoint}", daemon.url);
        let none = client.post(&url).send().await.unwrap();
        assert_eq!(none.status(), 401, "{endpoint} without a token");
        assert_eq!(none.headers()["www-authenticate"], "Bearer");
        let wrong = client
            .post(&url)
            .bearer_auth("not-the-token")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{endpoint} with a wrong token");
        // The token is checked before the body is read: a stranger learns
        // nothing from how a malformed body is answered.
        let garbage = client
            .post(&url)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(garbage.status(), 401, "{endpoint} with a malformed body");
    }
    let retry = client
        .post(format!("{}/api/retry", daemon.url))
        .bearer_auth(STATUS_TOKEN)
        .json(&json!({ "rule": "prospects", "person": "d" }))
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 200);
    let body: Value = retry.json().await.unwrap();
    assert_eq!(body["due"], 1, "the token lets the retry act");
    let resume = client
        .post(format!("{}/api/connections/leads/resume", daemon.url))
        .bearer_auth(STATUS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resume.status(), 200);
    let approve = client
        .post(format!(
            "{}/api/rules/prospects/approve-removals",
            daemon.url
        ))
        .bearer_auth(STATUS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(approve.status(), 409, "authorized, but nothing is held");
    let approve = client
        .post(format!(
            "{}/api/rules/prospects/approve-updates",
            daemon.url
        ))
        .bearer_auth(STATUS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(approve.status(), 409, "authorized, but no update is held");
    let body: Value = approve.json().await.unwrap();
    assert!(
        body.to_string().contains("has no updates waiting"),
        "{body}"
    );
    let log = daemon.log();
    let status = daemon.stop().await;
    assert!(status.success(), "{status:?}\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_match_the_journal() {
    let world = every_bucket().await;
    let daemon = Daemon::start(&world.fixture).await;
    let client = reqwest::Client::new();
    // Give the daemon something to do: retry d while the store is down, so
    // that it calls the plugin, the store answers 503, and a retry is
    // scheduled.
    world.emulator.inject(creates_unavailable_once());
    let retried = client
        .post(format!("{}/api/retry", daemon.url))
        .bearer_auth(STATUS_TOKEN)
        .json(&json!({ "person": "d" }))
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), 200);
    let mut text = String::new();
    for _ in 0..500 {
        text = client
            .get(format!("{}/metrics", daemon.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // The retry is scheduled before the batch's answers are
        // committed: wait for the journal entry to close as well.
        if text.contains("provisioner_retries_total{connection=\"leads\"} 1")
            && !text.contains("result=\"pending\"")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        text.contains("provisioner_retries_total{connection=\"leads\"} 1"),
        "{text}"
    );
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("not Prometheus text: {e}\n{text}"));
    let mut from_metrics: BTreeMap<(String, String, String), f64> = BTreeMap::new();
    for sample in scrape
        .samples
        .iter()
        .filter(|s| s.metric == "provisioner_actions_total")
    {
        let key = (
            sample
                .labels
                .get("connection")
                .unwrap_or_default()
                .to_string(),
            sample.labels.get("kind").unwrap_or_default().to_string(),
            sample.labels.get("result").unwrap_or_default().to_string(),
        );
        // OpenMetrics-style counters are declared without `_total`; the
        // parser may then leave the samples untyped.
        match sample.value {
            prometheus_parse::Value::Counter(value) | prometheus_parse::Value::Untyped(value) => {
                from_metrics.insert(key, value);
            }
            ref other => panic!("provisioner_actions_total is {other:?}"),
        }
    }
    let journal: Value = serde_json::from_str(
        &world
            .run(&["audit", "--limit", "10000", "--json"])
            .await
            .stdout,
    )
    .unwrap();
    let mut from_journal: BTreeMap<(String, String, String), f64> = BTreeMap::new();
    for entry in journal.as_array().unwrap() {
        *from_journal
            .entry((
                entry["connection"].as_str().unwrap().to_string(),
                entry["action"].as_str().unwrap().to_string(),
                entry["outcome"].as_str().unwrap_or("pending").to_string(),
            ))
            .or_default() += 1.0;
    }
    assert!(!from_journal.is_empty());
    assert_eq!(from_metrics, from_journal, "the metrics count the journal");
    let names: std::collections::BTreeSet<&str> =
        scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    for expected in [
        "provisioner_connection_quarantined",
        "provisioner_queue_depth",
        "provisioner_links",
    ] {
        assert!(
            names.contains(expected),
            "{expected} missing from {names:?}"
        );
    }
    // The retry called the plugin and reached the store.
    assert!(
        text.contains("# TYPE provisioner_plugin_call_seconds histogram"),
        "{text}"
    );
    assert!(text.contains("provisioner_plugin_call_seconds_count{plugin=\"salesforce-leads-contacts\",method=\"apply\"}"), "{text}");
    assert!(
        text.contains("provisioner_target_requests_total{connection=\"leads\",status=\"5xx\"} 1"),
        "{text}"
    );
    assert!(daemon.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_surface_shows_a_secret() {
    let world = every_bucket().await;
    let daemon = Daemon::start(&world.fixture).await;
    let client = reqwest::Client::new();
    let mut seen = String::new();
    for path in [
        "/",
        "/api/status",
        "/api/failures",
        "/api/people/a",
        "/api/people/d",
        "/api/audit",
        "/metrics",
        "/healthz",
    ] {
        seen.push_str(
            &client
                .get(format!("{}{path}", daemon.url))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    for args in [
        vec!["status", "--json"],
        vec!["status", "--failures"],
        vec!["status", "person", "d"],
        vec!["audit", "--json"],
    ] {
        seen.push_str(&world.run(&args).await.all());
    }
    let log = daemon.log();
    assert!(daemon.stop().await.success());
    assert!(log.contains("serving status at"), "{log}");
    seen.push_str(&log);
    assert_no_secret(&seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_no_attempt_has_reached_yet_count_as_unsynced() {
    let world = World::default().await;
    world.configure(ALL, ALL, PROSPECTS);
    world
        .import(json!([prospect("a", "CTO"), prospect("b", "CTO")]))
        .await;
    let status = world.status().await;
    let counts = &counts_from_json(&status)["prospects"];
    assert_eq!(counts["impacted"], 2, "{status}");
    assert_eq!(counts["unsynced"], 2, "{status}");
    world.sync().await;
    world.import(json!([prospect("c", "CTO")])).await;
    let status = world.status().await;
    let counts = &counts_from_json(&status)["prospects"];
    assert_eq!(
        (counts["impacted"], counts["success"], counts["unsynced"]),
        (3, 2, 1),
        "{status}"
    );
    // The sync recorded the version it used.
    let leads = status["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["connection"] == "leads")
        .unwrap();
    assert_eq!(leads["plugin_version"], "0.1.0", "{status}");
    // The store's allowance, as the connector read it from the answers
    // (the host itself reads no store's headers): the emulator allows
    // 100,000 requests a day.
    let usage = &leads["api_usage"];
    assert_eq!(usage["max"], 100_000, "{status}");
    assert!(usage["used"].as_u64().unwrap() > 0, "{status}");
}

/// One request over a raw connection, so that the `Host` header is exactly
/// what a test says (or absent): (status, head, body).
async fn raw_request(
    url: &str,
    path: &str,
    host: Option<&str>,
    auth: Option<&str>,
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = url.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request = match host {
        Some(host) => format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n"),
        None => format!("GET {path} HTTP/1.0\r\n"),
    };
    if let Some(auth) = auth {
        request.push_str(&format!("Authorization: {auth}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_lowercase(), body.to_string())
}

fn sha256_base64(text: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(text.as_bytes()))
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text.find(open).map(|i| i + open.len()).unwrap_or(0);
    let end = text[start..]
        .find(close)
        .map(|i| start + i)
        .unwrap_or(start);
    &text[start..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_server_answers_only_its_own_names_and_hardens_every_answer() {
    let world = every_bucket().await;
    let config = std::fs::read_to_string(world.fixture.config_path()).unwrap();
    world.fixture.write_config(&config.replacen(
        "[status]\n",
        "[status]\nhosts = [\"status.example.com\"]\n",
        1,
    ));
    let daemon = Daemon::start(&world.fixture).await;
    let port = daemon.url.rsplit(':').next().unwrap().to_string();

    // A page whose DNS name was rebound to this address names its own
    // host: refused. The server's own address and names: answered.
    for (host, expected) in [
        (format!("rebind.attacker.example:{port}"), 421),
        ("attacker.example".to_string(), 421),
        (format!("status.example.com.attacker.example:{port}"), 421),
        (format!("127.0.0.1:{port}"), 200),
        (format!("localhost:{port}"), 200),
        ("status.example.com".to_string(), 200),
        (format!("STATUS.example.com:{port}"), 200),
    ] {
        for path in ["/api/status", "/api/people/a", "/"] {
            let (status, _, body) = raw_request(&daemon.url, path, Some(&host), None).await;
            assert_eq!(status, expected, "{path} with Host {host}: {body}");
            if expected == 421 {
                assert!(!body.contains("a@example.com"), "{body}");
            }
        }
    }
    let (status, _, _) = raw_request(&daemon.url, "/api/status", None, None).await;
    assert_eq!(status, 400, "a request that names no host");

    // Every answer forbids framing, sniffing, referrers and caching.
    for path in ["/", "/api/status", "/metrics", "/healthz", "/nowhere"] {
        let (_, head, _) =
            raw_request(&daemon.url, path, Some(&format!("127.0.0.1:{port}")), None).await;
        for header in [
            "x-frame-options: deny",
            "x-content-type-options: nosniff",
            "referrer-policy: no-referrer",
            "cache-control: no-store",
            "content-security-policy: default-src 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(head.contains(header), "{path} lacks {header}: {head}");
        }
    }
    // The policy admits the page's own script and style by hash, and the
    // page has no inline style attribute that it would block.
    let (_, head, page) =
        raw_request(&daemon.url, "/", Some(&format!("127.0.0.1:{port}")), None).await;
    let policy = between(&head, "content-security-policy: ", "\r\n").to_string();
    let script = between(&page, "<script>", "</script>");
    let style = between(&page, "<style>", "</style>");
    assert!(!script.is_empty() && !style.is_empty());
    assert!(
        policy.contains(&format!("script-src 'sha256-{}'", sha256_base64(script)).to_lowercase()),
        "{policy}"
    );
    assert!(
        policy.contains(&format!("style-src 'sha256-{}'", sha256_base64(style)).to_lowercase()),
        "{policy}"
    );
    assert!(!page.contains(" style="), "an inline style attribute");
    assert_eq!(page.matches("<script").count(), 1);
    assert!(daemon.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_every_read_needs_the_token() {
    let world = every_bucket().await;
    let daemon = Daemon::start_on(&world.fixture, "0.0.0.0:0", &[]).await;
    let host = daemon.url.trim_start_matches("http://").to_string();
    let basic = |password: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("operator:{password}"))
        )
    };
    for path in [
        "/",
        "/api/status",
        "/api/failures",
        "/api/people/a",
        "/api/audit",
        "/metrics",
    ] {
        let (status, head, body) = raw_request(&daemon.url, path, Some(&host), None).await;
        assert_eq!(status, 401, "{path} without the token: {body}");
        assert!(head.contains("www-authenticate: basic"), "{path}: {head}");
        assert!(!body.contains("a@example.com"), "{body}");
        let (status, _, _) =
            raw_request(&daemon.url, path, Some(&host), Some("Bearer not-the-token")).await;
        assert_eq!(status, 401, "{path} with a wrong token");
        let (status, _, _) = raw_request(
            &daemon.url,
            path,
            Some(&host),
            Some(&basic("not-the-token")),
        )
        .await;
        assert_eq!(status, 401, "{path} with a wrong password");
        let (status, _, body) = raw_request(
            &daemon.url,
            path,
            Some(&host),
            Some(&format!("Bearer {STATUS_TOKEN}")),
        )
        .await;
        assert_eq!(status, 200, "{path} with the token: {body}");
        // A browser asked for a password sends it as HTTP Basic.
        let (status, _, _) =
            raw_request(&daemon.url, path, Some(&host), Some(&basic(STATUS_TOKEN))).await;
        assert_eq!(status, 200, "{path} with the token as a password");
    }
    let (status, _, _) = raw_request(&daemon.url, "/healthz", Some(&host), None).await;
    assert_eq!(status, 200, "health checks need no token");
    // A browser re-sends cached Basic credentials with a forged cross-site
    // form post, so an action takes the token only as a bearer token.
    let client = reqwest::Client::new();
    let action = format!("{}/api/connections/leads/resume", daemon.url);
    let forged = client
        .post(&action)
        .header("authorization", basic(STATUS_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401, "an action with Basic credentials");
    let real = client
        .post(&action)
        .bearer_auth(STATUS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(real.status(), 200, "the page's own bearer token");
    let log = daemon.log();
    assert!(daemon.stop().await.success());
    assert_no_secret(&log);

    // Without a token it does not start beyond loopback, and check says so.
    let config = std::fs::read_to_string(world.fixture.config_path()).unwrap();
    let tokenless = config.replace("token = { secrets_file = \"status_token\" }\n", "");
    assert_ne!(tokenless, config);
    world.fixture.write_config(&tokenless.replacen(
        "[status]\n",
        "[status]\nlisten = \"0.0.0.0:0\"\n",
        1,
    ));
    let run = world.run(&["run"]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("beyond loopback"), "{run:?}");
    assert!(run.stderr.contains("[status] token"), "{run:?}");
    let run = world.run(&["check"]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("beyond loopback"), "{run:?}");
}
