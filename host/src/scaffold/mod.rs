//! `provisioner plugins new NAME`: a new connector crate, outside any
//! workspace, that builds into a component the host loads at once.
//!
//! The crate starts from the project's own example connector, the one the
//! tests run against a real store, so that what an author gets compiles,
//! passes `plugins conform` against that store, and stays in step with the
//! SDK: the example's source is compiled into this binary and written out
//! with the new name in place. It depends on the SDK (`provisioner-connector`)
//! by path: the SDK beside the sources this binary was built from, or where
//! `--sdk` says. Never by version while the SDK is unpublished: a registry
//! name nobody here owns could resolve to someone else's crate.

use std::path::{Path, PathBuf};

/// The example connector's source, the starting point of every new one.
const EXAMPLE: &str = include_str!("../../../examples/json-store-connector/src/lib.rs");
/// The contract, written beside the code as the manual of each call.
const CONTRACT: &str = include_str!("../../../wit/v0.2.0/identity-store.wit");

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(
        "{0:?} is not a plugin name: use up to 64 lower-case letters, digits and hyphens, starting with a letter"
    )]
    BadName(String),
    #[error("{} exists already; choose another name or directory", .0.display())]
    Exists(PathBuf),
    #[error("writing {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
    #[error("the example connector no longer contains {0:?}; the scaffold needs updating")]
    Template(&'static str),
    #[error("{} is not the SDK's directory: it has no Cargo.toml for provisioner-connector", .0.display())]
    NotSdk(PathBuf),
    #[error(
        "the SDK's sources are not where this binary was built from; pass --sdk DIR, the sdk/ directory of a provisioner checkout"
    )]
    NoSdk,
}

/// The SDK's directory, which the new crate depends on by path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdk(PathBuf);

impl Sdk {
    /// The SDK at `path`, checked; or, without one, the SDK beside the
    /// sources this binary was built from, if they are still there.
    pub fn locate(path: Option<&Path>) -> Result<Sdk, ScaffoldError> {
        let is_sdk = |dir: &Path| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|t| t.contains("name = \"provisioner-connector\""))
        };
        match path {
            Some(path) if is_sdk(path) => Ok(Sdk(path
                .canonicalize()
                .unwrap_or_else(|_| path.to_path_buf()))),
            Some(path) => Err(ScaffoldError::NotSdk(path.to_path_buf())),
            None => {
                let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
                match built_from.canonicalize() {
                    Ok(dir) if is_sdk(&dir) => Ok(Sdk(dir)),
                    _ => Err(ScaffoldError::NoSdk),
                }
            }
        }
    }

    fn dependency(&self) -> String {
        format!("{{ path = {:?} }}", self.0.display().to_string())
    }
}

/// Whether `name` can name a plugin, as configurations write it and as
/// the host accepts it (at most 64 characters).
fn valid(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
}

/// Replaces the one occurrence of `from` in `text`, or says the template
/// changed under the scaffold.
fn once(text: &str, from: &'static str, to: &str) -> Result<String, ScaffoldError> {
    if text.matches(from).count() != 1 {
        return Err(ScaffoldError::Template(from));
    }
    Ok(text.replacen(from, to, 1))
}

/// The new connector's `src/lib.rs`: the example with the name and the
/// opening docs made the author's, and without the build-time knobs that
/// serve the project's own tests.
fn source(name: &str) -> Result<String, ScaffoldError> {
    // A checkout that turned line ends into CRLF still matches below.
    let example = EXAMPLE.replace("\r\n", "\n");
    let body = example
        .find("\nuse ")
        .map(|at| &example[at..])
        .ok_or(ScaffoldError::Template("use"))?;
    let body = once(
        body,
        "DescriptorBuilder::new(\"json-store\"",
        &format!("DescriptorBuilder::new(\"{name}\""),
    )?;
    let body = once(
        &body,
        "format!(\"json-store-connector/{VERSION}\")",
        &format!("format!(\"{name}-connector/{{VERSION}}\")"),
    )?;
    let body = once(&body, "settings, stamped,", "settings,")?;
    let knobs = body
        .find("/// Stamped at build time")
        .zip(body.find("\npub struct"))
        .ok_or(ScaffoldError::Template("/// Stamped at build time"))?;
    let body = format!(
        "{}const VERSION: &str = env!(\"CARGO_PKG_VERSION\");\nconst DISPLAY_NAME: &str = \"{{given_name}} {{family_name}}\";\n{}",
        &body[..knobs.0],
        &body[knobs.1..]
    );
    Ok(format!(
        "//! The {name} connector for the provisioner host.\n//!\n//! It began as the project's example connector for a small JSON REST\n//! store: adapt `describe`, the requests and the reading of answers to\n//! your store, then check it with `provisioner plugins conform`. The SDK's\n//! documentation (`cargo doc --open`) and the contract in `wit/` are the\n//! manual.\n{body}"
    ))
}

fn cargo_toml(name: &str, sdk: &Sdk) -> String {
    format!(
        r#"[package]
name = "{name}-connector"
version = "0.1.0"
edition = "2024"
rust-version = "1.88"
publish = false

[lib]
# cdylib: the component; rlib: the same code natively, for tests.
crate-type = ["cdylib", "rlib"]

[dependencies]
provisioner-connector = {}
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"

# A crate of its own, not a member of any workspace around it.
[workspace]
"#,
        sdk.dependency()
    )
}

fn test(name: &str) -> String {
    let module = format!("{}_connector", name.replace('-', "_"));
    format!(
        r#"//! Checks that need no store. Against a store on loopback, run the
//! connector natively through `provisioner_connector::testing::StandIn`,
//! and the built component through `provisioner plugins conform`.

use provisioner_connector::{{Connector, check_descriptor}};

#[test]
fn the_host_accepts_the_descriptor() {{
    let descriptor = {module}::JsonStore::describe();
    assert_eq!(descriptor.name, "{name}");
    check_descriptor(&descriptor).unwrap();
}}
"#
    )
}

fn readme(name: &str) -> String {
    let file = name.replace('-', "_");
    format!(
        r#"# {name} connector

A connector for the provisioner host, built as a WebAssembly component on
the `provisioner-connector` SDK.

```sh
rustup target add wasm32-wasip2
cargo test                                   # natively: the descriptor, your own tests
cargo build --release --target wasm32-wasip2
cp target/wasm32-wasip2/release/{file}_connector.wasm /path/to/plugins/
provisioner plugins inspect {name}
provisioner plugins conform CONNECTION       # a connection in provisioner.toml with plugin = "{name}"
```

The code started as the project's example for a JSON REST store. `cargo
doc --open` documents the SDK; `wit/identity-store.wit` is the contract
itself, and `plugins conform` checks every promise the host relies on
against your store.
"#
    )
}

/// Writes the crate into `parent/NAME`; returns its directory.
pub fn write(name: &str, parent: &Path, sdk: &Sdk) -> Result<PathBuf, ScaffoldError> {
    if !valid(name) {
        return Err(ScaffoldError::BadName(name.to_string()));
    }
    let root = parent.join(name);
    std::fs::create_dir_all(parent).map_err(|e| ScaffoldError::Write {
        path: parent.to_path_buf(),
        reason: e.to_string(),
    })?;
    // Created here, or refused: nothing of an existing directory is touched.
    match std::fs::create_dir(&root) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(ScaffoldError::Exists(root));
        }
        Err(e) => {
            return Err(ScaffoldError::Write {
                path: root,
                reason: e.to_string(),
            });
        }
    }
    let written = write_files(name, &root, sdk);
    if written.is_err() {
        // A half-written crate would only make the next try say it exists.
        let _ = std::fs::remove_dir_all(&root);
    }
    written.map(|()| root)
}

fn write_files(name: &str, root: &Path, sdk: &Sdk) -> Result<(), ScaffoldError> {
    let files = [
        ("Cargo.toml", cargo_toml(name, sdk)),
        ("src/lib.rs", source(name)?),
        ("tests/descriptor.rs", test(name)),
        ("wit/identity-store.wit", CONTRACT.to_string()),
        ("README.md", readme(name)),
        (".gitignore", "/target\n".to_string()),
    ];
    for (relative, text) in files {
        let path = root.join(relative);
        let fail = |e: std::io::Error| ScaffoldError::Write {
            path: path.clone(),
            reason: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        std::fs::write(&path, text).map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plugin_names() {
        for good in ["acme", "acme-crm", "crm2"] {
            assert!(valid(good), "{good}");
        }
        for bad in ["", "Acme", "2crm", "acme_crm", "acme-", "ac me", "../x"] {
            assert!(!valid(bad), "{bad}");
        }
        assert!(valid(&"a".repeat(64)) && !valid(&"a".repeat(65)));
    }

    #[test]
    fn the_source_takes_the_new_name_and_drops_the_test_knobs() {
        let text = source("acme-crm").unwrap();
        assert!(text.contains("DescriptorBuilder::new(\"acme-crm\""));
        assert!(text.contains("acme-crm-connector/{VERSION}"));
        assert!(!text.contains("JSON_STORE_CONNECTOR"), "no test knobs");
        assert!(!text.contains("stamped"), "{text}");
        assert!(text.contains("const VERSION: &str = env!(\"CARGO_PKG_VERSION\");"));
        assert!(text.starts_with("//! The acme-crm connector"));
    }

    #[test]
    fn the_sdk_is_found_beside_the_sources_or_refused_by_name() {
        let here = Sdk::locate(None).unwrap();
        assert!(here.0.ends_with("sdk"), "{here:?}");
        assert_eq!(Sdk::locate(Some(&here.0)).unwrap(), here);
        let error = Sdk::locate(Some(Path::new("/nonexistent"))).unwrap_err();
        assert!(error.to_string().contains("/nonexistent"), "{error}");
        let manifest = cargo_toml("a", &Sdk("/src/sdk".into()));
        assert!(manifest.contains("provisioner-connector = { path = \"/src/sdk\" }"));
    }

    #[test]
    fn an_existing_directory_is_left_alone() {
        let dir = std::env::temp_dir().join(format!("scaffold-{}", rand::random::<u64>()));
        std::fs::create_dir_all(dir.join("acme")).unwrap();
        let sdk = Sdk("/src/sdk".into());
        let error = write("acme", &dir, &sdk).unwrap_err();
        assert!(matches!(error, ScaffoldError::Exists(_)), "{error}");
        let error = write("Acme", &dir, &sdk).unwrap_err();
        assert!(error.to_string().contains("lower-case"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
