//! The plugins a running host serves, swappable while it runs.
//!
//! A reload rescans the plugin directory. A file whose size or time
//! changed is loaded again; if the new component is good it replaces the
//! old one for new work, while calls already running on the old one finish
//! on it (they hold their own reference). A broken or incompatible
//! replacement is refused with its reason, and the old version keeps
//! serving. A removed file takes its plugin away; connections that use it
//! then fail to bind, visibly, and nothing crashes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde::Serialize;

use super::{Plugin, PluginSet, Refusal, Runtime, RuntimeError};

/// What identifies a file's content cheaply.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let metadata = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: metadata.len(),
        modified: metadata.modified().ok(),
    })
}

#[derive(Debug, Clone)]
struct FileEntry {
    stamp: Option<Stamp>,
    /// The plugin this file provides, if it ever loaded.
    plugin: Option<String>,
}

#[derive(Default)]
struct State {
    plugins: BTreeMap<String, Arc<Plugin>>,
    files: BTreeMap<PathBuf, FileEntry>,
    refused: BTreeMap<PathBuf, Refusal>,
    generation: u64,
}

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    /// (plugin, version) newly loaded or replaced.
    pub loaded: Vec<(String, String)>,
    /// Plugins whose file is gone.
    pub removed: Vec<String>,
    /// Files refused; a plugin they meant to replace keeps serving.
    pub refused: Vec<String>,
}

impl ReloadReport {
    pub fn changed(&self) -> bool {
        !self.loaded.is_empty() || !self.removed.is_empty()
    }
}

/// The plugin directory as a running host sees it.
pub struct PluginRegistry {
    runtime: Arc<Runtime>,
    dir: PathBuf,
    state: RwLock<State>,
}

impl PluginRegistry {
    /// Loads the directory.
    pub async fn load(
        runtime: Arc<Runtime>,
        dir: &Path,
    ) -> Result<Arc<PluginRegistry>, RuntimeError> {
        let registry = Arc::new(PluginRegistry {
            runtime,
            dir: dir.to_path_buf(),
            state: RwLock::new(State::default()),
        });
        registry.reload().await?;
        Ok(registry)
    }

    /// A registry over plugins already loaded (one-shot commands).
    pub fn fixed(runtime: Arc<Runtime>, dir: &Path, set: PluginSet) -> Arc<PluginRegistry> {
        let state = State {
            files: set
                .plugins
                .values()
                .map(|p| {
                    (
                        p.path().to_path_buf(),
                        FileEntry {
                            stamp: stamp(p.path()),
                            plugin: Some(p.name().to_string()),
                        },
                    )
                })
                .collect(),
            refused: set
                .refused
                .iter()
                .map(|r| (r.path.clone(), r.clone()))
                .collect(),
            plugins: set.plugins,
            generation: 1,
        };
        Arc::new(PluginRegistry {
            runtime,
            dir: dir.to_path_buf(),
            state: RwLock::new(state),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The plugins serving now, and the refusals, as one set.
    pub fn snapshot(&self) -> PluginSet {
        let state = self.read();
        PluginSet {
            plugins: state.plugins.clone(),
            refused: state.refused.values().cloned().collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        self.read().plugins.get(name).cloned()
    }

    /// Advances whenever the set of plugins serving changes.
    pub fn generation(&self) -> u64 {
        self.read().generation
    }

    /// Rescans the directory and swaps what changed.
    pub async fn reload(&self) -> Result<ReloadReport, RuntimeError> {
        let dir_error = |source| RuntimeError::PluginDir {
            path: self.dir.clone(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(dir_error)? {
            let path = entry.map_err(dir_error)?.path();
            if path.extension().is_some_and(|e| e == "wasm") {
                paths.push(path);
            }
        }
        paths.sort();
        let mut report = ReloadReport::default();

        // Load what is new or changed, without holding the lock.
        let known = self.read().files.clone();
        let mut loads = Vec::new();
        for path in &paths {
            let now = stamp(path);
            if known.get(path).is_some_and(|entry| entry.stamp == now) {
                continue;
            }
            let result = self.runtime.load_file(path).await;
            loads.push((path.clone(), now, result));
        }

        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        for (path, now, result) in loads {
            let previous = state.files.get(&path).and_then(|e| e.plugin.clone());
            // Two files may not provide the same plugin.
            let result = result.and_then(|plugin| {
                let name = plugin.name();
                let clash = state
                    .files
                    .iter()
                    .any(|(other, entry)| other != &path && entry.plugin.as_deref() == Some(name));
                if clash {
                    Err(Refusal {
                        path: path.clone(),
                        reason: format!("plugin name {name} is already provided by another file"),
                    })
                } else {
                    Ok(plugin)
                }
            });
            match result {
                Ok(plugin) => {
                    let name = plugin.name().to_string();
                    if let Some(old) = previous.filter(|old| old != &name) {
                        state.plugins.remove(&old);
                        report.removed.push(old);
                    }
                    let version = plugin.descriptor().version.clone();
                    tracing::info!(
                        plugin = %name,
                        %version,
                        path = %path.display(),
                        "loaded plugin; new work uses it, calls in flight finish on the old one"
                    );
                    report.loaded.push((name.clone(), version));
                    state.plugins.insert(name.clone(), Arc::new(plugin));
                    state.refused.remove(&path);
                    state.files.insert(
                        path,
                        FileEntry {
                            stamp: now,
                            plugin: Some(name),
                        },
                    );
                    state.generation += 1;
                }
                Err(refusal) => {
                    match &previous {
                        Some(old) => {
                            tracing::warn!(plugin = %old, "{refusal}; the loaded version keeps serving")
                        }
                        None => tracing::warn!("{refusal}"),
                    }
                    report.refused.push(refusal.to_string());
                    state.refused.insert(path.clone(), refusal);
                    // Remember the stamp, so the same broken file is not
                    // compiled again until it changes.
                    state.files.insert(
                        path,
                        FileEntry {
                            stamp: now,
                            plugin: previous,
                        },
                    );
                }
            }
        }
        // Files that are gone take their plugin with them.
        let gone: Vec<PathBuf> = state
            .files
            .keys()
            .filter(|p| !paths.contains(p))
            .cloned()
            .collect();
        for path in gone {
            if let Some(entry) = state.files.remove(&path)
                && let Some(name) = entry.plugin
            {
                tracing::warn!(plugin = %name, path = %path.display(), "plugin file removed; connections using it stop until it is back");
                state.plugins.remove(&name);
                report.removed.push(name);
                state.generation += 1;
            }
            state.refused.remove(&path);
        }
        Ok(report)
    }
}
