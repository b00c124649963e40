//! Crash safety: `provisioner run` is killed with SIGKILL at random moments
//! of a sync while the directory is edited, and restarted each time. The
//! store holds every answer to a write back for a moment after carrying it
//! out, so kills land between "the record exists" and "the host knows".
//! At the end the target must equal that of the same edits run without
//! crashes, field for field, with no duplicates, and the state file must
//! pass `PRAGMA integrity_check`.
//!
//! CI runs 500 people and 5 kills; `PROVISIONER_CRASH_PEOPLE=5000
//! PROVISIONER_CRASHES=20` runs the full size, and `PROVISIONER_CRASH_SEED`
//! repeats a run's kill moments.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::world::*;
use common::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use salesforce_emulator::Latency;
use serde_json::{Map, Value, json};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How many rounds of edits run during the sync.
const EDIT_ROUNDS: usize = 6;

/// The directory edits, round by round, and the state they lead to.
struct Script {
    people: usize,
    /// Each round: whole person rows to import.
    rounds: Vec<Vec<Value>>,
    /// id -> Title, for everyone in scope at the end.
    expected: BTreeMap<String, String>,
}

fn row(index: usize, title: &str, in_scope: bool) -> Value {
    let id = format!("k{index:05}");
    let groups: Vec<&str> = if in_scope { vec!["prospects"] } else { vec![] };
    json!({ "id": id, "groups": groups, "given_name": "K", "family_name": id, "email": format!("{id}@example.com"), "title": title })
}

/// Every round retitles a slice of people, adds a few and takes a few out
/// of scope (their Leads are deleted), overlapping earlier rounds.
fn script(people: usize) -> Script {
    let mut state: BTreeMap<usize, (String, bool)> =
        (0..people).map(|i| (i, ("t0".to_string(), true))).collect();
    let slice = (people / 10).max(1);
    let mut rounds = Vec::new();
    for round in 1..=EDIT_ROUNDS {
        let mut rows = Vec::new();
        let title = format!("t{round}");
        let start = (round - 1) * slice / 2;
        for i in start..start + slice {
            if state.get(&i).is_some_and(|(_, in_scope)| *in_scope) {
                state.insert(i, (title.clone(), true));
                rows.push(row(i, &title, true));
            }
        }
        for n in 0..5 {
            let i = people + round * 5 + n;
            state.insert(i, (title.clone(), true));
            rows.push(row(i, &title, true));
        }
        for n in 0..3 {
            let i = people - 1 - (round * 3 + n);
            let title = state[&i].0.clone();
            state.insert(i, (title.clone(), false));
            rows.push(row(i, &title, false));
        }
        rounds.push(rows);
    }
    let expected = state
        .into_iter()
        .filter(|(_, (_, in_scope))| *in_scope)
        .map(|(i, (title, _))| (format!("k{i:05}@example.com"), title))
        .collect();
    Script {
        people,
        rounds,
        expected,
    }
}

fn config(world: &World) -> String {
    format!(
        "{HEADER}[sync]\nbatch_size = 20\nretry_base_secs = 1\nretry_max_secs = 4\ninterval_secs = 3600\n{}{PROSPECTS}",
        sf_connection("leads", &world.emulator.domain(), "Lead", ALL),
    )
}

async fn prepared(script: &Script) -> World {
    let world = World::default().await;
    world.fixture.write_config(&config(&world));
    world
        .import(Value::Array(
            (0..script.people).map(|i| row(i, "t0", true)).collect(),
        ))
        .await;
    // The store carries out each write, then holds its answer back.
    world.emulator.set_latency(Some(Latency {
        path: "composite/sobjects".into(),
        millis: 150,
        jitter_millis: 0,
        after: true,
    }));
    world
}

/// The Leads as Email -> fields, without what the store assigns (ids,
/// dates): what two runs must agree on. Panics on a duplicate Email.
fn target_state(world: &World) -> BTreeMap<String, Map<String, Value>> {
    let mut state = BTreeMap::new();
    for mut lead in world.leads() {
        lead.retain(|key, _| {
            !(key == "attributes"
                || key.ends_with("Id")
                || key.ends_with("Date")
                || key.ends_with("Stamp"))
        });
        let email = lead["Email"].as_str().unwrap_or("").to_lowercase();
        let previous = state.insert(email.clone(), lead);
        assert!(previous.is_none(), "two Leads for {email}");
    }
    state
}

/// Whether the target shows exactly the expected people and titles.
fn converged(world: &World, script: &Script) -> bool {
    let leads = world.leads();
    leads.len() == script.expected.len()
        && leads.iter().all(|lead| {
            let email = lead["Email"].as_str().unwrap_or("").to_lowercase();
            script.expected.get(&email).map(String::as_str) == lead["Title"].as_str()
        })
}

/// How the target differs from the expected state, for a failure message.
fn differences(world: &World, script: &Script) -> Vec<String> {
    let mut seen = BTreeMap::new();
    let mut out = Vec::new();
    for lead in world.leads() {
        let email = lead["Email"].as_str().unwrap_or("").to_lowercase();
        let title = lead["Title"].as_str().unwrap_or("").to_string();
        match script.expected.get(&email) {
            None => out.push(format!("{email}: a Lead that should not exist ({title})")),
            Some(want) if *want != title => {
                out.push(format!("{email}: Title {title}, expected {want}"))
            }
            Some(_) => {}
        }
        if seen.insert(email.clone(), ()).is_some() {
            out.push(format!("{email}: a second Lead"));
        }
    }
    for email in script.expected.keys() {
        if !seen.contains_key(email) {
            out.push(format!("{email}: no Lead"));
        }
    }
    out
}

async fn settle(world: &World, script: &Script, daemon: &Daemon) {
    let limit = Duration::from_secs(120 + script.expected.len() as u64 / 10);
    eventually_explained(
        limit,
        "the target matches the directory",
        || async { converged(world, script) },
        async || {
            let status = world.status().await.to_string();
            format!(
                "differences:\n{:#?}\nstatus: {status:.2000}\nlog tail:\n{}",
                differences(world, script)
                    .iter()
                    .take(20)
                    .collect::<Vec<_>>(),
                daemon.log_tail(30)
            )
        },
    )
    .await;
}

/// The same edits with no crash.
async fn reference_run(script: &Script) -> BTreeMap<String, Map<String, Value>> {
    let world = prepared(script).await;
    let daemon = Daemon::start(&world.fixture).await;
    for round in &script.rounds {
        world.import(Value::Array(round.clone())).await;
    }
    settle(&world, script, &daemon).await;
    assert!(daemon.stop().await.success());
    target_state(&world)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_moments_the_target_ends_as_without_crashes() {
    let people = setting("PROVISIONER_CRASH_PEOPLE", 500) as usize;
    let crashes = setting("PROVISIONER_CRASHES", 5) as usize;
    let seed = setting("PROVISIONER_CRASH_SEED", rand::random::<u16>() as u64);
    eprintln!("crash test: {people} people, {crashes} kills, PROVISIONER_CRASH_SEED={seed}");
    let script = script(people);
    let mut rng = StdRng::seed_from_u64(seed);

    let world = prepared(&script).await;
    let mut rounds = script.rounds.iter();
    let mut kills = 0;
    while kills < crashes {
        let mut daemon = Daemon::start(&world.fixture).await;
        // Edit the directory while this run works, on most runs.
        if rng.random_bool(0.7)
            && let Some(round) = rounds.next()
        {
            world.import(Value::Array(round.clone())).await;
        }
        // A random moment: this delay is the point of the kill, not a wait
        // for anything.
        let moment = Duration::from_millis(rng.random_range(100..1_500));
        tokio::time::sleep(moment).await;
        if converged(&world, &script) && rounds.len() == 0 {
            // Nothing left to interrupt: more kills would prove nothing.
            eprintln!("the run finished before kill {}", kills + 1);
            assert!(daemon.stop().await.success());
            break;
        }
        daemon.child.start_kill().unwrap();
        let status = daemon.child.wait().await.unwrap();
        assert!(!status.success(), "killed");
        kills += 1;
        eprintln!(
            "kill {kills} at {} ms: {} Leads so far",
            moment.as_millis(),
            world.leads().len()
        );
    }
    assert!(kills > 0, "no kill landed during the sync");
    let daemon = Daemon::start(&world.fixture).await;
    for round in rounds {
        world.import(Value::Array(round.clone())).await;
    }
    settle(&world, &script, &daemon).await;
    assert!(daemon.stop().await.success());
    let crashed = target_state(&world);

    let linked = state_count(
        &world.fixture,
        "SELECT COUNT(DISTINCT target_id) FROM links WHERE rule = 'prospects' AND state = 'synced'",
    )
    .await;
    assert_eq!(
        linked as usize,
        script.expected.len(),
        "one link per record"
    );
    let interrupted = state_count(
        &world.fixture,
        "SELECT COUNT(DISTINCT started_at) FROM journal WHERE outcome = 'unknown'",
    )
    .await;

    let reference = reference_run(&script).await;
    assert_eq!(crashed.len(), reference.len());
    for (email, fields) in &reference {
        assert_eq!(
            crashed.get(email),
            Some(fields),
            "{email} differs from the crash-free run"
        );
    }
    eprintln!(
        "{} Leads equal to the crash-free run after {kills} kills; {interrupted} write batches were cut off from their answer; {} write requests in all",
        crashed.len(),
        world.writes()
    );
}
