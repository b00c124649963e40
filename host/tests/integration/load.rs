//! Resource ceilings under load: 50 concurrent calls across 5 plugins, one
//! of which loops forever and one of which allocates without bound. The
//! well-behaved calls all succeed, and the host's memory stays bounded. A
//! test binary of its own, so that the peak RSS it reports is this test's.

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use json_store::JsonStore;
use provisioner::config::Config;
use provisioner::runtime::{CallError, RuntimeOptions};

/// The process's peak resident set, from /proc (Linux).
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_calls_with_a_runaway_and_a_hog_stay_within_bounds() {
    let server = JsonStore::start(json_store_options()).await.unwrap();
    let fixture = Fixture::new(&[
        test_plugins::JSON_STORE,
        test_plugins::SNOOP,
        test_plugins::PANIC,
        test_plugins::LOOP_FOREVER,
        test_plugins::MEMORY_BOMB,
    ]);
    let mut config = HEADER.to_string();
    config.push_str(&json_store_connection("store", &server.host()));
    for name in ["snoop", "panic", "loop-forever", "memory-bomb"] {
        config.push_str(&format!(
            "\n[connections.{name}]\nplugin = \"{name}\"\n[connections.{name}.settings]\ndomain = \"example.com\"\n"
        ));
    }
    config.push_str(
        "\n[connections.snoop.secrets]\nclient_id = { secrets_file = \"client_id\" }\nclient_secret = { secrets_file = \"client_secret\" }\n",
    );
    fixture.write_config(&config);
    fixture.write_secrets(&json_store_secrets());
    // The CPU budget is counted in epochs, which tick while a call's
    // thread waits for a core too: with ten runaways on two cores, and the
    // other tests of this binary beside them, a bomb needs room to reach
    // its memory cap before the budget ends it.
    let options = RuntimeOptions {
        memory_limit: 32 << 20,
        cpu_budget: Duration::from_millis(5000),
        ..runtime_options()
    };
    let (_runtime, plugins, store) = connect(&fixture, options, "store").await;
    let config = Config::load(&fixture.config_path()).unwrap();
    let before = peak_rss_mib();

    let started = Instant::now();
    let mut calls = Vec::new();
    for round in 0..10 {
        for name in ["store", "snoop", "panic", "loop-forever", "memory-bomb"] {
            let connector = if name == "store" {
                store.clone()
            } else {
                bind(&config, &plugins, name)
            };
            calls.push(tokio::spawn(async move {
                let result = connector.test_connection().await;
                (name, round, result)
            }));
        }
    }
    let mut outcomes: std::collections::BTreeMap<&str, Vec<Result<(), String>>> =
        Default::default();
    for call in calls {
        let (name, _round, result) = call.await.unwrap();
        let outcome = match (name, result) {
            (_, Ok(_)) => Ok(()),
            ("loop-forever", Err(CallError::Deadline { .. })) => Err("deadline".into()),
            ("memory-bomb", Err(CallError::Memory { .. })) => Err("memory".into()),
            ("panic", Err(CallError::Trap { .. })) => Err("trap".into()),
            (name, Err(other)) => panic!("{name}: unexpected {other}"),
        };
        outcomes.entry(name).or_default().push(outcome);
    }
    let elapsed = started.elapsed();
    for good in ["store", "snoop"] {
        assert!(
            outcomes[good].iter().all(Result::is_ok),
            "{good}: {:?}",
            outcomes[good]
        );
        assert_eq!(outcomes[good].len(), 10);
    }
    assert!(
        outcomes["loop-forever"]
            .iter()
            .all(|o| o.as_ref().unwrap_err() == "deadline")
    );
    assert!(
        outcomes["memory-bomb"]
            .iter()
            .all(|o| o.as_ref().unwrap_err() == "memory")
    );
    assert!(
        outcomes["panic"]
            .iter()
            .all(|o| o.as_ref().unwrap_err() == "trap")
    );

    // Ten bombs at a 32 MiB cap each can hold at most 320 MiB of guest
    // memory at once; the host adds its own. Bounded means well below what
    // unbounded growth would reach.
    let peak = peak_rss_mib();
    eprintln!("50 calls in {elapsed:?}; peak RSS {peak:?} MiB (before the calls: {before:?} MiB)");
    if let Some(peak) = peak {
        assert!(peak < 1024, "peak RSS {peak} MiB");
    }
}
