//! The status page in a real browser: headless Chromium (Debian's
//! `chromium`, driven over WebDriver by `chromedriver`) loads the page of a
//! running host, checks its counts against the API, retries a failure that
//! the store has since recovered from, sees the row turn to Success, and
//! saves a screenshot as a test artifact.

use crate::common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::world::*;
use common::*;
use fantoccini::{ClientBuilder, Locator};
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Chromium and its driver come from the test set-up, `tests/setup.sh`,
/// which the README's test command runs first: a test installs nothing.
fn ensure_chromium() {
    for program in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            std::path::Path::new(program).exists(),
            "the browser test needs {program}, from Debian's chromium and chromium-driver: run `bash tests/setup.sh`"
        );
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn counts_on_page(client: &fantoccini::Client) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for row in client
        .find_all(Locator::Css("#rules tr[data-rule]"))
        .await
        .unwrap()
    {
        let rule = row.attr("data-rule").await.unwrap().unwrap();
        for cell in row.find_all(Locator::Css("td[data-count]")).await.unwrap() {
            let name = cell.attr("data-count").await.unwrap().unwrap();
            let value: u64 = cell.text().await.unwrap().trim().parse().unwrap();
            out.entry(rule.clone()).or_default().insert(name, value);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_the_counts_and_retries_a_recovered_failure() {
    ensure_chromium();

    // The demo's shape: prospects and customers; the store is down for the
    // first create of one customer.
    let world = World::default().await;
    let customers =
        "\n[rules.customers]\nconnection = \"contacts\"\nscope = { group = \"customers\" }\n";
    world.configure(ALL, ALL, &format!("{PROSPECTS}{customers}"));
    world
        .import(json!([
            prospect("ada", "Countess"),
            prospect("grace", "Admiral"),
            { "id": "hedy", "groups": ["customers"], "given_name": "Hedy", "family_name": "Lamarr", "email": "hedy@example.com" },
        ]))
        .await;
    world.emulator.inject(salesforce_emulator::Fault {
        message: Some("the org is in maintenance".into()),
        ..creates_unavailable_once()
    });
    // Two rules, two batches; which one meets the outage depends on order,
    // so give the customers rule its own pass first.
    let run = world.run(&["sync", "--rule", "customers"]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    world.sync().await;
    // The store has recovered: the fault was used up.

    let daemon = Daemon::start(&world.fixture).await;
    let api = daemon.get_json("/api/status").await;

    let port = free_port();
    let mut driver = tokio::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("starting chromedriver");
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let profile = tempfile::tempdir().unwrap();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-quic", "--window-size=1400,1000",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    let client = ClientBuilder::rustls()
        .unwrap()
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session with Chromium");

    client.goto(&daemon.url).await.unwrap();
    assert_eq!(client.title().await.unwrap(), "provisioner status");

    // The counts on the page are the API's.
    let on_page = counts_on_page(&client).await;
    let from_api: BTreeMap<String, BTreeMap<String, u64>> = api["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| {
            (
                rule["rule"].as_str().unwrap().to_string(),
                rule["counts"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(on_page, from_api);
    assert_eq!(on_page["customers"]["failed"], 1);
    assert_eq!(on_page["prospects"]["success"], 2);

    // Retry the failure the store has recovered from.
    client
        .find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(STATUS_TOKEN)
        .await
        .unwrap();
    let row = client
        .find(Locator::Css(
            "#failures tr[data-failure][data-person='hedy']",
        ))
        .await
        .expect("hedy's failure is listed");
    assert!(row.text().await.unwrap().contains("SERVER_UNAVAILABLE"));
    row.find(Locator::Css("button[data-action=retry]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let state = row.find(Locator::Css("td.state")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut text = String::new();
    while Instant::now() < deadline {
        text = state.text().await.unwrap();
        if text == "Success" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(text, "Success", "the row turned to Success");
    assert_eq!(
        world.emulator.records("Contact").len(),
        1,
        "hedy is in Salesforce now"
    );

    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let path = artifacts.join("status-page.png");
    std::fs::write(&path, &png).unwrap();
    eprintln!("screenshot saved to {}", path.display());

    client.close().await.unwrap();
    let _ = driver.kill().await;
    let log = daemon.log();
    assert!(daemon.stop().await.success());
    assert_no_secret(&log);
}
