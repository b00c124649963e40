//! Secret values: where they come from and where rotated ones go.
//!
//! A connection's `secrets` table references each value instead of holding
//! it: `{ env = "SF_CLIENT_SECRET" }` or `{ secrets_file = "sf_refresh" }`,
//! a key in the secrets file that `provisioner.toml` names. The secrets file
//! must not be readable by group or others. When a token endpoint rotates a
//! refresh token that came from the file, the new value is written back
//! atomically (temporary file, fsync, rename, fsync of the directory), so
//! that a crash leaves either the old file or the new one, never half.
//!
//! Values are [`SecretString`]s from the moment they are read; nothing here
//! formats a value into an error or a log line.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::broker::SecretSink;

/// Where one secret value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// An environment variable of the host process.
    pub env: Option<String>,
    /// A key in the secrets file.
    pub secrets_file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    Env(String),
    File(String),
}

impl SecretRef {
    pub(crate) fn source(&self) -> Result<Source, String> {
        match (&self.env, &self.secrets_file) {
            (Some(var), None) if !var.is_empty() => Ok(Source::Env(var.clone())),
            (None, Some(key)) if !key.is_empty() => Ok(Source::File(key.clone())),
            _ => Err(
                "a secret is referenced as { env = \"VARIABLE\" } or { secrets_file = \"key\" }, exactly one of them"
                    .into(),
            ),
        }
    }
}

/// Why a secret could not be read or the secrets file is unusable. Never
/// carries a value.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SecretError {
    #[error("{path}: cannot read the secrets file: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error(
        "{path}: the secrets file is readable by group or others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    #[error("{path} has no key {key}")]
    MissingKey { path: PathBuf, key: String },
    #[error("{key} is taken from the secrets file, but provisioner.toml names no secrets_file")]
    NoFile { key: String },
}

struct FileState {
    path: PathBuf,
    values: BTreeMap<String, SecretString>,
}

/// The secret values of one configuration.
pub struct SecretStore {
    file: Option<Mutex<FileState>>,
    /// Which source each (connection, secret) was read from, so that a
    /// rotated value goes back to the same place.
    sources: Mutex<BTreeMap<(String, String), Source>>,
}

/// Line and column (1-based) of a byte offset.
pub(crate) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map(|newline| before[newline + 1..].chars().count() + 1)
        .unwrap_or_else(|| before.chars().count() + 1);
    (line, column)
}

impl SecretStore {
    /// A store without a secrets file: only environment references resolve.
    pub fn env_only() -> SecretStore {
        SecretStore {
            file: None,
            sources: Mutex::new(BTreeMap::new()),
        }
    }

    /// Opens the secrets file, refusing one that others can read.
    pub fn open(path: Option<&Path>) -> Result<SecretStore, SecretError> {
        let Some(path) = path else {
            return Ok(SecretStore::env_only());
        };
        let unreadable = |reason: String| SecretError::Unreadable {
            path: path.to_path_buf(),
            reason,
        };
        let metadata = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(SecretError::TooOpen {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        #[cfg(not(unix))]
        let _ = metadata;
        let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
        let values = parse(path, &text)?;
        Ok(SecretStore {
            file: Some(Mutex::new(FileState {
                path: path.to_path_buf(),
                values,
            })),
            sources: Mutex::new(BTreeMap::new()),
        })
    }

    /// Reads the value `reference` points at for `connection`'s secret
    /// `name`, and remembers where it came from.
    pub(crate) fn resolve(
        &self,
        connection: &str,
        name: &str,
        source: &Source,
    ) -> Result<SecretString, SecretError> {
        let value = match source {
            Source::Env(var) => std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .map(SecretString::from)
                .ok_or_else(|| SecretError::MissingEnv(var.clone()))?,
            Source::File(key) => {
                let Some(file) = &self.file else {
                    return Err(SecretError::NoFile { key: key.clone() });
                };
                let file = file.lock().unwrap_or_else(|p| p.into_inner());
                file.values
                    .get(key)
                    .cloned()
                    .ok_or_else(|| SecretError::MissingKey {
                        path: file.path.clone(),
                        key: key.clone(),
                    })?
            }
        };
        self.sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((connection.to_string(), name.to_string()), source.clone());
        Ok(value)
    }
}

fn parse(path: &Path, text: &str) -> Result<BTreeMap<String, SecretString>, SecretError> {
    // Only the message and the position are kept: toml's full error text
    // quotes the offending line, which here may hold a secret.
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let (line, column) = line_column(text, e.span().map(|s| s.start).unwrap_or(0));
        SecretError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().to_string(),
        }
    })?;
    let mut values = BTreeMap::new();
    for (key, value) in table {
        match value {
            toml::Value::String(text) => {
                values.insert(key, SecretString::from(text));
            }
            _ => {
                return Err(SecretError::Syntax {
                    path: path.to_path_buf(),
                    line: 0,
                    column: 0,
                    message: format!("{key} must be a string"),
                });
            }
        }
    }
    Ok(values)
}

/// Replaces `path` with `contents`, durably and atomically, mode 0600.
fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // tempfile creates the file with mode 0600.
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(contents.as_bytes())?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

impl SecretSink for SecretStore {
    fn persist(&self, connection: &str, name: &str, value: &SecretString) -> Result<(), String> {
        let source = self
            .sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(connection.to_string(), name.to_string()))
            .cloned();
        match source {
            Some(Source::File(key)) => {
                let Some(file) = &self.file else {
                    return Err(format!("{name} came from a secrets file that is gone"));
                };
                let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
                let path = file.path.clone();
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("re-reading {}: {e}", path.display()))?;
                let mut document: toml_edit::DocumentMut = text
                    .parse()
                    .map_err(|_| format!("{} no longer parses as TOML", path.display()))?;
                document[key.as_str()] = toml_edit::value(value.expose_secret());
                write_atomically(&path, &document.to_string())
                    .map_err(|e| format!("writing {}: {e}", path.display()))?;
                file.values.insert(key.clone(), value.clone());
                tracing::info!(
                    connection,
                    secret = name,
                    path = %path.display(),
                    key = %key,
                    "stored the rotated secret"
                );
                Ok(())
            }
            Some(Source::Env(var)) => Err(format!(
                "{name} comes from environment variable {var}, which the host cannot update; \
                 the old value no longer works, so update {var} before the next start"
            )),
            None => Err(format!("{name} was not read from any secret store")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets_file(contents: &str, mode: u32) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.toml");
        std::fs::write(&path, contents).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        (dir, path)
    }

    #[test]
    #[cfg(unix)]
    fn a_file_others_can_read_is_refused_with_the_fix() {
        let (_dir, path) = secrets_file("a = \"b\"\n", 0o644);
        let error = SecretStore::open(Some(&path)).err().unwrap().to_string();
        assert!(error.contains("readable by group or others"), "{error}");
        assert!(error.contains("chmod 600"), "{error}");
        assert!(error.contains(&path.display().to_string()), "{error}");
    }

    #[test]
    fn syntax_errors_give_a_position_but_never_the_line() {
        let (_dir, path) = secrets_file("ok = \"x\"\nleak = \"hunter2-very-secret\n", 0o600);
        let error = SecretStore::open(Some(&path)).err().unwrap().to_string();
        assert!(error.contains(":2:"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn references_resolve_and_missing_ones_are_named() {
        let (_dir, path) = secrets_file("refresh = \"r-1\"\n", 0o600);
        let store = SecretStore::open(Some(&path)).unwrap();
        let value = store
            .resolve("c", "refresh_token", &Source::File("refresh".into()))
            .unwrap();
        assert_eq!(value.expose_secret(), "r-1");
        let missing = store
            .resolve("c", "client_id", &Source::File("nope".into()))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("has no key nope"), "{missing}");
        let env = store
            .resolve(
                "c",
                "client_id",
                &Source::Env("PROVISIONER_TEST_SURELY_UNSET".into()),
            )
            .unwrap_err()
            .to_string();
        assert_eq!(
            env,
            "environment variable PROVISIONER_TEST_SURELY_UNSET is not set"
        );
    }

    #[test]
    #[cfg(unix)]
    fn rotated_values_are_written_back_atomically_keeping_the_rest() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, path) = secrets_file(
            "# comment kept\nclient = \"c-1\"\nrefresh = \"r-1\"\n",
            0o600,
        );
        let store = SecretStore::open(Some(&path)).unwrap();
        store
            .resolve("conn", "refresh_token", &Source::File("refresh".into()))
            .unwrap();
        store
            .persist("conn", "refresh_token", &SecretString::from("r-2"))
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# comment kept"), "{text}");
        assert!(text.contains("client = \"c-1\""), "{text}");
        assert!(text.contains("refresh = \"r-2\""), "{text}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // And the store itself serves the new value.
        let again = store
            .resolve("conn", "refresh_token", &Source::File("refresh".into()))
            .unwrap();
        assert_eq!(again.expose_secret(), "r-2");
    }

    #[test]
    fn env_sourced_rotations_explain_what_to_do() {
        let store = SecretStore::env_only();
        store.sources.lock().unwrap().insert(
            ("conn".into(), "refresh_token".into()),
            Source::Env("SF_REFRESH".into()),
        );
        let error = store
            .persist("conn", "refresh_token", &SecretString::from("new-value"))
            .unwrap_err();
        assert!(error.contains("update SF_REFRESH"), "{error}");
        assert!(!error.contains("new-value"), "{error}");
    }

    #[test]
    fn positions_are_one_based() {
        assert_eq!(line_column("abc", 0), (1, 1));
        assert_eq!(line_column("abc\ndef", 5), (2, 2));
        assert_eq!(line_column("abc\n", 4), (2, 1));
    }
}
