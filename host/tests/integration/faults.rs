//! The fault matrix: `provisioner run` syncs a population into the
//! emulator while the emulator faults a share of all requests with one
//! kind of fault at a time, then all kinds mixed, and the directory is
//! edited during the run. Afterwards, for every cell:
//!
//! - every person is synced, and any failure reported on the way had a
//!   class and a reason;
//! - there is exactly one Lead per Email;
//! - every edit made during the run reached the target;
//! - no write for a record came sooner after a failed one than the backoff
//!   policy allows (the emulator's write log is the witness);
//! - the faults were really served (the emulator's counters).
//!
//! The population is 500 people; `PROVISIONER_FAULT_PEOPLE=5000` runs the
//! full-size matrix.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::world::*;
use common::*;
use salesforce_emulator::{Chaos, ChaosKind, WriteAttempt};
use serde_json::{Value, json};

/// The backoff the configuration below sets.
const RETRY_BASE_MS: u64 = 1_000;
const RETRY_MAX_MS: u64 = 4_000;

fn population() -> usize {
    std::env::var("PROVISIONER_FAULT_PEOPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

fn config(world: &World) -> String {
    format!(
        "{HEADER}[sync]\nbatch_size = 20\nretry_base_secs = {}\nretry_max_secs = {}\ninterval_secs = 3600\n{}{PROSPECTS}",
        RETRY_BASE_MS / 1000,
        RETRY_MAX_MS / 1000,
        sf_connection("leads", &world.emulator.domain(), "Lead", ALL),
    )
}

fn person(index: usize, title: &str) -> Value {
    let id = format!("f{index:05}");
    json!({ "id": id, "groups": ["prospects"], "given_name": "F", "family_name": id, "email": format!("{id}@example.com"), "title": title })
}

/// Email -> Titles of every Lead with that Email.
fn leads_by_email(world: &World) -> BTreeMap<String, Vec<String>> {
    let mut by_email: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for lead in world.leads() {
        let email = lead["Email"].as_str().unwrap_or("").to_lowercase();
        let title = lead["Title"].as_str().unwrap_or("").to_string();
        by_email.entry(email).or_default().push(title);
    }
    by_email
}

/// Checks that, for every record, a write after a failed one waited at
/// least the lower edge of the jittered backoff for the failures so far.
/// The emulator stamps a request when it arrives, and the host starts its
/// backoff only once it has the failed answer, so the measured gap can only
/// be longer than the one the policy asks for.
fn assert_paced(log: &[WriteAttempt]) -> usize {
    let mut by_key: BTreeMap<&str, Vec<&WriteAttempt>> = BTreeMap::new();
    for attempt in log {
        by_key.entry(&attempt.key).or_default().push(attempt);
    }
    let mut retries = 0;
    for (key, mut attempts) in by_key {
        attempts.sort_by_key(|a| a.at_ms);
        let mut failures = 0u32;
        for pair in attempts.windows(2) {
            let (before, after) = (pair[0], pair[1]);
            if before.outcome.is_failure() {
                failures += 1;
                retries += 1;
                let nominal = (RETRY_BASE_MS << (failures - 1).min(20)).min(RETRY_MAX_MS);
                let floor = nominal / 2;
                let gap = after.at_ms - before.at_ms;
                assert!(
                    gap + 5 >= floor,
                    "{key}: retried {gap} ms after failure {failures} ({:?}); the policy asks for at least {floor} ms\n{attempts:#?}",
                    before.outcome
                );
            } else if before.outcome == salesforce_emulator::Outcome::Ok {
                failures = 0;
            }
        }
    }
    retries
}

async fn rule_counts(world: &World) -> Value {
    world.status().await["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "prospects")
        .map(|r| r["counts"].clone())
        .unwrap()
}

async fn matrix_cell(kinds: &[ChaosKind], seed: u64) {
    let people = population();
    let added = people / 25;
    let total = people + added;
    let world = World::default().await;
    world.fixture.write_config(&config(&world));
    world
        .import(Value::Array((0..people).map(|i| person(i, "v0")).collect()))
        .await;
    world.emulator.set_chaos(Some(Chaos {
        seed,
        per_mille: 250,
        kinds: kinds.to_vec(),
        max_latency_ms: 2_000,
    }));
    let daemon = Daemon::start(&world.fixture).await;
    // The run's length scales with the population; the ceiling is generous
    // because a slow machine must not fail the test, only a stuck host.
    let limit = Duration::from_secs(120 + total as u64 / 10);

    // Edits while the run is busy: retitle a tenth, add new people, then
    // retitle some of the same people again.
    eventually_within(
        limit,
        "a fifth of the people reached the target",
        || async { world.leads().len() >= people / 5 },
    )
    .await;
    let mut edits: Vec<Value> = (0..people / 10).map(|i| person(i, "v1")).collect();
    edits.extend((people..total).map(|i| person(i, "v0")));
    world.import(Value::Array(edits)).await;
    eventually_within(limit, "half the people reached the target", || async {
        world.leads().len() >= people / 2
    })
    .await;
    world
        .import(Value::Array(
            (0..people / 20).map(|i| person(i, "v2")).collect(),
        ))
        .await;
    let expected = |i: usize| {
        if i < people / 20 {
            "v2"
        } else if i < people / 10 {
            "v1"
        } else {
            "v0"
        }
    };

    // Failures reported on the way say what and why.
    let failures = daemon.get_json("/api/failures").await;
    for failure in failures.as_array().unwrap() {
        assert!(
            failure["class"].as_str().is_some_and(|c| !c.is_empty())
                && failure["message"].as_str().is_some_and(|m| !m.is_empty()),
            "a failure without a reason: {failure}"
        );
    }

    let behind = || {
        let leads = leads_by_email(&world);
        (0..total)
            .filter_map(|i| {
                let email = format!("f{i:05}@example.com");
                match leads.get(&email) {
                    Some(titles) if titles.iter().all(|t| t == expected(i)) => None,
                    other => Some(format!("{email}: {other:?}, expected {}", expected(i))),
                }
            })
            .collect::<Vec<_>>()
    };
    eventually_explained(
        limit,
        "every person and every edit reached the target",
        || async { behind().is_empty() },
        async || {
            let failures = daemon.get_text("/api/failures").await;
            format!(
                "behind:\n{:#?}\nstatus: {}\nfailures: {failures:.3000}\nlog tail:\n{}",
                behind().iter().take(10).collect::<Vec<_>>(),
                rule_counts(&world).await,
                daemon.log_tail(40)
            )
        },
    )
    .await;
    eventually_within(limit, "status shows everyone synced", || async {
        let counts = rule_counts(&world).await;
        counts["success"] == json!(total) && counts["failed"] == 0
    })
    .await;

    let leads = leads_by_email(&world);
    let duplicates: Vec<_> = leads.iter().filter(|(_, t)| t.len() > 1).collect();
    assert!(duplicates.is_empty(), "duplicate Leads: {duplicates:?}");
    assert_eq!(leads.len(), total);

    let counters = world.emulator.counters();
    for kind in kinds {
        if kinds.len() == 1 {
            assert!(
                counters
                    .chaos_served
                    .get(kind.name())
                    .is_some_and(|n| *n > 0),
                "{} was never served: {:?}",
                kind.name(),
                counters.chaos_served
            );
        }
    }
    let served: u64 = counters.chaos_served.values().sum();
    assert!(served >= 3, "too few faults to mean anything: {counters:?}");
    let log = world.emulator.write_log();
    let retries = assert_paced(&log);
    if kinds
        .iter()
        .any(|k| !matches!(k, ChaosKind::Latency | ChaosKind::ExpireSession))
    {
        assert!(
            retries > 0,
            "faults that fail writes caused no retry: {counters:?}"
        );
    }
    eprintln!(
        "{:?}: {total} people, {} requests, faults {:?}, {} writes, {retries} retried after a failure",
        kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
        counters.total(),
        counters.chaos_served,
        log.len(),
    );
    assert!(daemon.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_up_to_two_seconds() {
    matrix_cell(&[ChaosKind::Latency], 11).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors() {
    matrix_cell(&[ChaosKind::ServerError, ChaosKind::Unavailable], 12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_limit_exceeded() {
    matrix_cell(&[ChaosKind::RequestLimit], 13).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unable_to_lock_row() {
    matrix_cell(&[ChaosKind::LockRow], 14).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expiring_mid_run() {
    matrix_cell(&[ChaosKind::ExpireSession], 15).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections() {
    matrix_cell(&[ChaosKind::DropConnection], 16).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_bodies() {
    matrix_cell(&[ChaosKind::TruncateBody], 17).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_mixed() {
    matrix_cell(&ChaosKind::ALL, 18).await;
}
