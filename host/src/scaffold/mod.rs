//! `provisioner plugins new NAME`: a new connector crate, outside any
//! workspace, that builds into a component the host loads at once.
//!
//! The crate starts from the project's own example connector, the one the
//! tests run against a real store, so that what an author gets compiles,
//! passes `plugins conform` against that store, and stays in step with the
//! contract: the example's source and the contract's WIT are compiled into
//! this binary and written out with the new name in place.

use std::path::{Path, PathBuf};

/// The example connector's source, the starting point of every new one.
const EXAMPLE: &str = include_str!("../../../examples/json-store-connector/src/lib.rs");
/// The contract the new connector exports.
const CONTRACT: &str = include_str!("../../../wit/v0.1.0/identity-store.wit");
/// The wit-bindgen the project's own connectors build with.
pub const WIT_BINDGEN: &str = "0.61";

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

/// The new connector's `src/lib.rs`: the example with the name, the
/// contract's path and the opening docs made the author's.
fn source(name: &str) -> Result<String, ScaffoldError> {
    // A checkout that turned line ends into CRLF still matches below.
    let example = EXAMPLE.replace("\r\n", "\n");
    let body = example
        .find("\nwit_bindgen::generate!")
        .map(|at| &example[at..])
        .ok_or(ScaffoldError::Template("wit_bindgen::generate!"))?;
    let body = once(body, "path: \"../../wit/v0.1.0\"", "path: \"wit\"")?;
    let body = once(
        &body,
        "name: \"json-store\".into()",
        &format!("name: \"{name}\".into()"),
    )?;
    let body = once(
        &body,
        "format!(\"json-store-connector/{VERSION}\")",
        &format!("format!(\"{name}-connector/{{VERSION}}\")"),
    )?;
    // The example's build-time knobs serve the project's own tests; a new
    // connector reports its crate's version and maps display_name plainly.
    let body = once(
        &body,
        "/// The version this build reports. A release pipeline may stamp its own\n/// (`JSON_STORE_CONNECTOR_VERSION` at build time); the host's hot-swap tests\n/// build two versions of this connector that way.\nconst VERSION: &str = match option_env!(\"JSON_STORE_CONNECTOR_VERSION\") {\n    Some(version) => version,\n    None => env!(\"CARGO_PKG_VERSION\"),\n};",
        "/// The version this build reports: the crate's.\nconst VERSION: &str = env!(\"CARGO_PKG_VERSION\");",
    )?;
    let body = once(
        &body,
        "/// The default mapping of `display_name`, also settable at build time\n/// (`JSON_STORE_CONNECTOR_DISPLAY_NAME`): the hot-swap tests build a second\n/// version whose default mappings differ, as a plugin upgrade's may.\nconst DISPLAY_NAME: &str = match option_env!(\"JSON_STORE_CONNECTOR_DISPLAY_NAME\") {\n    Some(template) => template,\n    None => \"{given_name} {family_name}\",\n};",
        "/// The default mapping of `display_name`.\nconst DISPLAY_NAME: &str = \"{given_name} {family_name}\";",
    )?;
    Ok(format!(
        "//! The {name} connector for the provisioner host.\n//!\n//! It began as the project's example connector for a small JSON REST\n//! store: adapt `describe`, the requests and the classification of\n//! failures to your store, then check it with `provisioner plugins\n//! conform`. The contract in `wit/` is the manual.\n{body}"
    ))
}

fn cargo_toml(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}-connector"
version = "0.1.0"
edition = "2024"
rust-version = "1.88"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"
wit-bindgen = "{WIT_BINDGEN}"

# A crate of its own, not a member of any workspace around it.
[workspace]
"#
    )
}

fn readme(name: &str) -> String {
    let file = name.replace('-', "_");
    format!(
        r#"# {name} connector

A connector for the provisioner host, built as a WebAssembly component.

```sh
rustup target add wasm32-wasip2
cargo build --release --target wasm32-wasip2
cp target/wasm32-wasip2/release/{file}_connector.wasm /path/to/plugins/
provisioner plugins inspect {name}
provisioner plugins conform CONNECTION     # a connection in provisioner.toml with plugin = "{name}"
```

`wit/identity-store.wit` is the contract, and its manual. The code started
as the project's example for a JSON REST store; `plugins conform` checks
every promise the host relies on against your store.
"#
    )
}

/// Writes the crate into `parent/NAME`; returns its directory.
pub fn write(name: &str, parent: &Path) -> Result<PathBuf, ScaffoldError> {
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
    let written = write_files(name, &root);
    if written.is_err() {
        // A half-written crate would only make the next try say it exists.
        let _ = std::fs::remove_dir_all(&root);
    }
    written.map(|()| root)
}

fn write_files(name: &str, root: &Path) -> Result<(), ScaffoldError> {
    let files = [
        ("Cargo.toml", cargo_toml(name)),
        ("src/lib.rs", source(name)?),
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
    fn the_source_takes_the_new_name_and_its_own_contract() {
        let text = source("acme-crm").unwrap();
        assert!(text.contains("path: \"wit\""));
        assert!(text.contains("name: \"acme-crm\".into()"));
        assert!(text.contains("acme-crm-connector/{VERSION}"));
        assert!(!text.contains("../../wit"));
        assert!(!text.contains("JSON_STORE_CONNECTOR"), "no test knobs");
        assert!(text.starts_with("//! The acme-crm connector"));
    }

    #[test]
    fn the_wit_bindgen_is_the_workspaces() {
        let workspace = include_str!("../../../Cargo.toml");
        assert!(
            workspace.contains(&format!("wit-bindgen = \"{WIT_BINDGEN}\"")),
            "update WIT_BINDGEN to the workspace's wit-bindgen"
        );
    }

    #[test]
    fn an_existing_directory_is_left_alone() {
        let dir = std::env::temp_dir().join(format!("scaffold-{}", rand::random::<u64>()));
        std::fs::create_dir_all(dir.join("acme")).unwrap();
        let error = write("acme", &dir).unwrap_err();
        assert!(matches!(error, ScaffoldError::Exists(_)), "{error}");
        let error = write("Acme", &dir).unwrap_err();
        assert!(error.to_string().contains("lower-case"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
