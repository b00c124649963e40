//! Builds every connector component the host's tests need, in a separate
//! `cargo build --target wasm32-wasip2`, exactly as a connector author would.
//! The host itself is never rebuilt for a plugin: that is the point.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The version stamped on the second json-store build, for hot-swap tests.
const NEXT_VERSION: &str = "0.2.0-next";
/// The second build's default mapping of display_name: an upgrade that
/// changes a default mapping.
const NEXT_DISPLAY_NAME: &str = "{family_name}, {given_name}";

/// (constant name, package, feature, file name of the built component)
const PLUGINS: &[(&str, &str, Option<&str>, &str)] = &[
    (
        "JSON_STORE",
        "json-store-connector",
        None,
        "json_store_connector.wasm",
    ),
    (
        "JSON_STORE_NEXT",
        "json-store-connector",
        None,
        "json_store_connector.wasm",
    ),
    (
        "SALESFORCE",
        "salesforce-leads-contacts",
        None,
        "salesforce_leads_contacts.wasm",
    ),
    (
        "SALESFORCE_V0_1",
        "salesforce-leads-contacts",
        Some("contract-0-1"),
        "salesforce_leads_contacts.wasm",
    ),
    (
        "DISALLOWED_HOST",
        "misbehaving-connector",
        Some("disallowed-host"),
        "misbehaving_connector.wasm",
    ),
    (
        "LOOP_FOREVER",
        "misbehaving-connector",
        Some("loop-forever"),
        "misbehaving_connector.wasm",
    ),
    (
        "MEMORY_BOMB",
        "misbehaving-connector",
        Some("memory-bomb"),
        "misbehaving_connector.wasm",
    ),
    (
        "PANIC",
        "misbehaving-connector",
        Some("panic"),
        "misbehaving_connector.wasm",
    ),
    (
        "WASI_SOCKETS",
        "misbehaving-connector",
        Some("wasi-sockets"),
        "misbehaving_connector.wasm",
    ),
    (
        "FUTURE_CONTRACT",
        "misbehaving-connector",
        Some("future-contract"),
        "misbehaving_connector.wasm",
    ),
    (
        "SNOOP",
        "misbehaving-connector",
        Some("snoop"),
        "misbehaving_connector.wasm",
    ),
    ("SCIM2", "scim2-connector", None, "scim2_connector.wasm"),
    ("PROBE", "probe-connector", None, "probe_connector.wasm"),
    (
        "HOSTILE",
        "hostile-connector",
        None,
        "hostile_connector.wasm",
    ),
    (
        "HOSTILE_TOKEN_URL",
        "hostile-connector",
        Some("literal-token-url"),
        "hostile_connector.wasm",
    ),
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest
        .join("../..")
        .canonicalize()
        .expect("workspace root");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let target_dir = out.join("wasm-target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());

    for path in [
        "wit",
        "examples/json-store-connector/src",
        "examples/json-store-connector/Cargo.toml",
        "sdk/src",
        "sdk/Cargo.toml",
        "plugins/salesforce-leads-contacts/src",
        "plugins/salesforce-leads-contacts/Cargo.toml",
        "plugins/scim2/src",
        "plugins/scim2/Cargo.toml",
        "tests/misbehaving-connector/src",
        "tests/misbehaving-connector/wit-v0.3.0",
        "tests/misbehaving-connector/Cargo.toml",
        "tests/probe-connector/src",
        "tests/probe-connector/Cargo.toml",
        "tests/hostile-connector/src",
        "tests/hostile-connector/Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }

    let mut constants = format!(
        "/// The version the `json-store-next` component reports.\npub const NEXT_VERSION: &str = {NEXT_VERSION:?};\n/// The `json-store-next` component's default mapping of display_name.\npub const NEXT_DISPLAY_NAME: &str = {NEXT_DISPLAY_NAME:?};\n"
    );
    for (constant, package, feature, file) in PLUGINS {
        let mut command = Command::new(&cargo);
        command
            .current_dir(&root)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "-p",
                package,
            ])
            .arg("--target-dir")
            .arg(&target_dir);
        if let Some(feature) = feature {
            command.args(["--features", feature]);
        }
        if *constant == "JSON_STORE_NEXT" {
            command.env("JSON_STORE_CONNECTOR_VERSION", NEXT_VERSION);
            command.env("JSON_STORE_CONNECTOR_DISPLAY_NAME", NEXT_DISPLAY_NAME);
        } else {
            command.env_remove("JSON_STORE_CONNECTOR_VERSION");
            command.env_remove("JSON_STORE_CONNECTOR_DISPLAY_NAME");
        }
        // The outer build's flags and wrappers (clippy's, for one) are for
        // the host target, not for these components.
        for var in [
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "CLIPPY_ARGS",
            "__CLIPPY_INTERNAL_ARGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "CARGO_MAKEFLAGS",
            "MAKEFLAGS",
        ] {
            command.env_remove(var);
        }
        let status = command.status().unwrap_or_else(|error| {
            panic!("running {cargo} to build the {package} component: {error}")
        });
        assert!(
            status.success(),
            "building the {package} component ({feature:?}) failed; the compiler's output is \
             above (a missing target is fixed by `rustup target add wasm32-wasip2`)"
        );
        let built = target_dir.join("wasm32-wasip2/release").join(file);
        let name = constant.to_lowercase().replace('_', "-");
        let dest = out.join(format!("{name}.wasm"));
        copy(&built, &dest);
        constants.push_str(&format!(
            "/// The `{name}` test component.\npub const {constant}: &str = {:?};\n",
            dest.display().to_string()
        ));
    }
    std::fs::write(out.join("plugins.rs"), constants).expect("writing plugins.rs");
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|error| panic!("copying {} to {}: {error}", from.display(), to.display()));
}
