//! `provisioner plugins new`: a new connector crate, built on its own with
//! `cargo build --target wasm32-wasip2` as an author would, is loaded by
//! the host and passes `plugins conform` against the store it was written
//! for.

use crate::common;

use std::process::Command;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_connector_builds_loads_and_conforms() {
    let server = json_store::JsonStore::start(json_store_options())
        .await
        .unwrap();
    let fixture = Fixture::new(&[]);
    let workspace = tempfile::tempdir().unwrap();
    let dir = workspace.path().to_str().unwrap();
    let run = fixture
        .provisioner(&["plugins", "new", "acme-store", "--dir", dir], &[])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let root = workspace.path().join("acme-store");
    for file in [
        "Cargo.toml",
        "src/lib.rs",
        "wit/identity-store.wit",
        "tests/descriptor.rs",
        "README.md",
    ] {
        assert!(root.join(file).is_file(), "{file} written");
    }
    let again = fixture
        .provisioner(&["plugins", "new", "acme-store", "--dir", dir], &[])
        .await;
    assert_eq!(
        again.code,
        Some(2),
        "an existing crate is left alone: {again:?}"
    );
    assert!(again.stderr.contains("exists already"), "{again:?}");

    // The project's lock file pins what the project builds with, so that
    // the build needs nothing the machine does not have.
    std::fs::copy(repo_root().join("Cargo.lock"), root.join("Cargo.lock")).unwrap();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(&format!(
            "provisioner-connector = {{ path = {:?} }}",
            repo_root()
                .join("sdk")
                .canonicalize()
                .unwrap()
                .display()
                .to_string()
        )),
        "the SDK beside the sources, by path: {manifest}"
    );
    let target = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("scaffold-target");
    let cargo = |args: &[&str]| {
        let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        command
            .current_dir(&root)
            .args(args)
            .env("CARGO_TARGET_DIR", &target);
        for var in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "CARGO_BUILD_TARGET",
        ] {
            command.env_remove(var);
        }
        command
    };
    // The crate's own test runs natively, as an author runs it.
    for args in [
        &["test", "--offline"][..],
        &[
            "build",
            "--offline",
            "--release",
            "--target",
            "wasm32-wasip2",
        ][..],
    ] {
        let mut command = cargo(args);
        let done = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .unwrap();
        assert!(
            done.status.success(),
            "cargo {args:?}: {}",
            String::from_utf8_lossy(&done.stderr)
        );
    }
    let component = target.join("wasm32-wasip2/release/acme_store_connector.wasm");
    fixture.add_plugin(component.to_str().unwrap());

    let run = fixture
        .provisioner(&["plugins", "inspect", "acme-store"], &[])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.starts_with("acme-store 0.1.0"), "{run:?}");

    fixture.write_config(&format!(
        "{HEADER}{}",
        json_store_connection("acme", &server.host())
            .replace("plugin = \"json-store\"", "plugin = \"acme-store\"")
    ));
    fixture.write_secrets(&json_store_secrets());
    let run = fixture
        .provisioner(&["plugins", "conform", "acme"], &[])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("0 failed"), "{run:?}");
    assert!(server.people().is_empty(), "conform cleaned up");
}
