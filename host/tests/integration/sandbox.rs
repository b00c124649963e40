//! The sandbox holds: runaway CPU, runaway memory, panics and bad files are
//! contained, and the other plugins keep serving. Each test loads real
//! components built by `tests/test-plugins` and talks to a real json-store
//! server over loopback.

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use json_store::JsonStore;
use provisioner::runtime::{CallError, Runtime, RuntimeOptions};

/// A fixture with the json-store connector and `others`, configured with a
/// `store` connection to `server` and one connection per other plugin.
fn fixture_with(server: &JsonStore, others: &[(&str, &str)]) -> Fixture {
    let mut plugins = vec![test_plugins::JSON_STORE];
    plugins.extend(others.iter().map(|(_, path)| *path));
    let fixture = Fixture::new(&plugins);
    let mut config = HEADER.to_string();
    config.push_str(&json_store_connection("store", &server.host()));
    for (name, _) in others {
        config.push_str(&format!(
            "\n[connections.{name}]\nplugin = \"{name}\"\n[connections.{name}.settings]\ndomain = \"example.com\"\n"
        ));
    }
    fixture.write_config(&config);
    fixture.write_secrets(&json_store_secrets());
    fixture
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_cpu_hits_the_deadline_while_other_plugins_keep_serving() {
    let server = JsonStore::start(json_store_options()).await.unwrap();
    let fixture = fixture_with(&server, &[("loop-forever", test_plugins::LOOP_FOREVER)]);
    let budget = Duration::from_secs(2);
    let options = RuntimeOptions {
        cpu_budget: budget,
        ..runtime_options()
    };
    let (_runtime, plugins, store) = connect(&fixture, options, "store").await;
    let config = provisioner::config::Config::load(&fixture.config_path()).unwrap();
    let looping = bind(&config, &plugins, "loop-forever");

    let started = Instant::now();
    let runaway = tokio::spawn(async move { looping.test_connection().await });

    // While the runaway call burns its budget, the well-behaved plugin
    // answers, concurrently, on the same two worker threads.
    let calls: Vec<_> = (0..12)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.test_connection().await })
        })
        .collect();
    for call in calls {
        let report = call
            .await
            .unwrap()
            .expect("the well-behaved plugin answers");
        assert!(report.summary.contains("connected to store"), "{report:?}");
    }
    assert!(
        !runaway.is_finished(),
        "the runaway call finished before the well-behaved calls did"
    );

    let error = runaway
        .await
        .unwrap()
        .expect_err("an infinite loop cannot succeed");
    let elapsed = started.elapsed();
    match &error {
        CallError::Deadline { plugin, budget: b } => {
            assert_eq!(plugin, "loop-forever");
            assert_eq!(*b, budget);
        }
        other => panic!("expected a deadline error, got {other:?}"),
    }
    assert!(
        error.to_string().contains("CPU budget of 2000 ms"),
        "{error}"
    );
    assert!(
        elapsed >= budget,
        "stopped after {elapsed:?}, before the budget"
    );
    assert!(
        elapsed < budget + Duration::from_secs(3),
        "stopped only after {elapsed:?}"
    );
    // And the host still serves.
    store.test_connection().await.expect("still serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_fails_at_the_cap() {
    let server = JsonStore::start(json_store_options()).await.unwrap();
    let fixture = fixture_with(&server, &[("memory-bomb", test_plugins::MEMORY_BOMB)]);
    let options = RuntimeOptions {
        memory_limit: 32 << 20,
        ..runtime_options()
    };
    let (_runtime, plugins, store) = connect(&fixture, options, "store").await;
    let config = provisioner::config::Config::load(&fixture.config_path()).unwrap();
    let bomb = bind(&config, &plugins, "memory-bomb");

    let error = bomb
        .test_connection()
        .await
        .expect_err("a memory bomb cannot succeed");
    match &error {
        CallError::Memory {
            plugin,
            limit,
            requested,
        } => {
            assert_eq!(plugin, "memory-bomb");
            assert_eq!(*limit, 32 << 20);
            assert!(*requested > *limit);
        }
        other => panic!("expected the memory cap, got {other:?}"),
    }
    assert!(
        error.to_string().contains("memory cap of 32 MiB"),
        "{error}"
    );
    store.test_connection().await.expect("the host carries on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_an_error_and_everything_carries_on() {
    capture_logs();
    let server = JsonStore::start(json_store_options()).await.unwrap();
    let fixture = fixture_with(&server, &[("panic", test_plugins::PANIC)]);
    let (_runtime, plugins, store) = connect(&fixture, runtime_options(), "store").await;
    let config = provisioner::config::Config::load(&fixture.config_path()).unwrap();
    let panicking = bind(&config, &plugins, "panic");

    for _ in 0..2 {
        let error = panicking.test_connection().await.expect_err("it panics");
        match &error {
            CallError::Trap { plugin, message } => {
                assert_eq!(plugin, "panic");
                assert!(
                    message.contains("the panic connector panicked on purpose"),
                    "{message}"
                );
            }
            other => panic!("expected a trap, got {other:?}"),
        }
        store
            .test_connection()
            .await
            .expect("the other plugin carries on");
    }

    // Its stdout went to the host log, under its name.
    let logs = logs();
    let line = logs
        .lines()
        .find(|l| l.contains("panic connector: about to panic") && l.contains("stream="))
        .unwrap_or_else(|| panic!("plugin stdout is not in the log:\n{logs}"));
    assert!(line.contains("plugin=\"panic\""), "{line}");
    assert!(line.contains("stream=\"stdout\""), "{line}");
    assert!(line.contains("connection=\"panic\""), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_are_refused_one_line_each_and_the_rest_load() {
    let fixture = Fixture::new(&[
        test_plugins::JSON_STORE,
        test_plugins::FUTURE_CONTRACT,
        test_plugins::WASI_SOCKETS,
    ]);
    let dir = fixture.plugin_dir();
    // A core module: the 8-byte header of an empty one.
    std::fs::write(dir.join("core-module.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(dir.join("not-wasm.wasm"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::write(dir.join("empty.wasm"), b"").unwrap();
    // A component header with garbage after it.
    std::fs::write(dir.join("truncated.wasm"), b"\0asm\x0d\0\x01\0\xff\xff").unwrap();
    std::fs::write(dir.join("README.txt"), b"not a plugin").unwrap();

    let runtime = Runtime::new(runtime_options()).unwrap();
    let set = runtime.load_dir(&dir).await.unwrap();

    assert_eq!(
        set.plugins.keys().collect::<Vec<_>>(),
        vec!["json-store"],
        "the good plugin loads despite its neighbours"
    );
    let reason = |file: &str| {
        set.refused
            .iter()
            .find(|r| r.path.file_name().unwrap() == file)
            .map(|r| r.to_string())
            .unwrap_or_else(|| panic!("{file} was not refused: {:?}", set.refused))
    };
    let expectations = [
        (
            "core-module.wasm",
            "is a core WebAssembly module, not a component",
        ),
        ("not-wasm.wasm", "is not a WebAssembly file"),
        ("empty.wasm", "is not a WebAssembly file"),
        ("truncated.wasm", "is not a valid component"),
        (
            "future-contract.wasm",
            "exports contract provisioner:identity-store@0.3.0, but this host speaks provisioner:identity-store 0.2.0, 0.1.0; rebuild it against one of those (wit/)",
        ),
        ("wasi-sockets.wasm", "imports wasi:sockets/"),
    ];
    for (file, needle) in expectations {
        let line = reason(file);
        assert!(line.contains(needle), "{line}");
        assert!(line.contains(file), "the line names the file: {line}");
        assert!(!line.contains('\n'), "one line: {line:?}");
    }
    assert_eq!(set.refused.len(), expectations.len(), "{:?}", set.refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_code_is_cached_and_a_changed_file_is_recompiled() {
    let cache = tempfile::tempdir().unwrap();
    let fixture = Fixture::new(&[test_plugins::JSON_STORE]);
    let options = || RuntimeOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeOptions::default()
    };

    let first = Runtime::new(options()).unwrap();
    assert_eq!(
        first
            .load_dir(&fixture.plugin_dir())
            .await
            .unwrap()
            .plugins
            .len(),
        1
    );
    let (hits, misses) = first.cache_stats().unwrap();
    assert_eq!((hits, misses), (0, 1), "a cold cache compiles");

    let second = Runtime::new(options()).unwrap();
    assert_eq!(
        second
            .load_dir(&fixture.plugin_dir())
            .await
            .unwrap()
            .plugins
            .len(),
        1
    );
    assert_eq!(
        second.cache_stats().unwrap(),
        (1, 0),
        "a warm cache does not"
    );

    // Same file name, different component: recompiled, and it is the new one.
    std::fs::copy(
        test_plugins::PANIC,
        fixture.plugin_dir().join("json-store.wasm"),
    )
    .unwrap();
    let third = Runtime::new(options()).unwrap();
    let set = third.load_dir(&fixture.plugin_dir()).await.unwrap();
    assert_eq!(set.plugins.keys().collect::<Vec<_>>(), vec!["panic"]);
    assert_eq!(
        third.cache_stats().unwrap(),
        (0, 1),
        "a changed file is recompiled"
    );
}
