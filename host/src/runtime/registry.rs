//! The plugins a running host serves, swappable while it runs.
//!
//! A reload rescans the plugin directory. A file whose size or time
//! changed is loaded again; if the new component is good it replaces the
//! old one for new work, while calls already running on the old one finish
//! on it (they hold their own reference). A broken or incompatible
//! replacement is refused with its reason, and the old version keeps
//! serving. A removed file takes its plugin away; connections that use it
//! then fail to bind, visibly, and nothing crashes.
//!
//! Two files that claim one plugin name are both refused, with one line
//! naming both: which of them would win is not something to leave to file
//! names, since a file called `aaa.wasm` could otherwise take over any
//! plugin. A running host keeps serving the version it already had, and
//! the clash shows in `check`, `status` and on the page until one file is
//! gone; then the other serves.

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

#[derive(Clone)]
struct FileEntry {
    stamp: Option<Stamp>,
    /// The good component this file last held, whether or not it serves:
    /// a refused replacement leaves the previous one here.
    plugin: Option<Arc<Plugin>>,
}

#[derive(Default)]
struct State {
    plugins: BTreeMap<String, Arc<Plugin>>,
    files: BTreeMap<PathBuf, FileEntry>,
    refused: BTreeMap<PathBuf, Refusal>,
    /// Plugin names that more than one file claims, and those files.
    clashes: BTreeMap<String, Vec<PathBuf>>,
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
    /// A daemon logs what it refuses; a one-shot command prints it.
    log_refusals: bool,
}

/// The line that reports a clash: every file that claims `name`.
fn clash_refusal(name: &str, files: &[PathBuf]) -> Refusal {
    Refusal {
        path: files.first().cloned().unwrap_or_default(),
        reason: super::clash_reason(name, files.iter().map(|f| f.display())),
    }
}

impl PluginRegistry {
    /// Loads the directory.
    pub async fn load(
        runtime: Arc<Runtime>,
        dir: &Path,
    ) -> Result<Arc<PluginRegistry>, RuntimeError> {
        Self::load_with(runtime, dir, true).await
    }

    pub(super) async fn load_with(
        runtime: Arc<Runtime>,
        dir: &Path,
        log_refusals: bool,
    ) -> Result<Arc<PluginRegistry>, RuntimeError> {
        let registry = Arc::new(PluginRegistry {
            runtime,
            dir: dir.to_path_buf(),
            state: RwLock::new(State::default()),
            log_refusals,
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
                            plugin: Some(p.clone()),
                        },
                    )
                })
                .collect(),
            // Clash lines are made anew from `clashes`.
            refused: set
                .refused
                .iter()
                .filter(|r| {
                    !set.clashes
                        .values()
                        .any(|files| files.first() == Some(&r.path))
                })
                .map(|r| (r.path.clone(), r.clone()))
                .collect(),
            clashes: set.clashes,
            plugins: set.plugins,
            generation: 1,
        };
        Arc::new(PluginRegistry {
            runtime,
            dir: dir.to_path_buf(),
            state: RwLock::new(state),
            log_refusals: true,
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The plugins serving now, the refusals and the clashes, as one set.
    pub fn snapshot(&self) -> PluginSet {
        let state = self.read();
        let clashes = state
            .clashes
            .iter()
            .map(|(name, files)| clash_refusal(name, files));
        PluginSet {
            plugins: state.plugins.clone(),
            refused: state.refused.values().cloned().chain(clashes).collect(),
            clashes: state.clashes.clone(),
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
            let plugin = match result {
                Ok(plugin) => {
                    state.refused.remove(&path);
                    Some(Arc::new(plugin))
                }
                Err(refusal) => {
                    let line = crate::inert::inert(&refusal.to_string()).into_owned();
                    match &previous {
                        Some(old) => tracing::warn!(
                            plugin = %old.name(),
                            "{line}; the loaded version keeps serving"
                        ),
                        None if self.log_refusals => tracing::warn!("{line}"),
                        None => {}
                    }
                    report.refused.push(refusal.to_string());
                    state.refused.insert(path.clone(), refusal);
                    previous
                }
            };
            // The stamp is kept either way, so that the same broken file
            // is not compiled again until it changes.
            state.files.insert(path, FileEntry { stamp: now, plugin });
        }
        state.files.retain(|path, _| paths.contains(path));
        state.refused.retain(|path, _| paths.contains(path));

        // Which files claim which name.
        let mut claims: BTreeMap<String, Vec<(PathBuf, Arc<Plugin>)>> = BTreeMap::new();
        for (path, entry) in &state.files {
            if let Some(plugin) = &entry.plugin {
                claims
                    .entry(plugin.name().to_string())
                    .or_default()
                    .push((path.clone(), plugin.clone()));
            }
        }
        let mut clashes = BTreeMap::new();
        let mut serving = BTreeMap::new();
        for (name, claimants) in claims {
            match claimants.as_slice() {
                [(_, plugin)] => {
                    serving.insert(name, plugin.clone());
                }
                _ => {
                    let files: Vec<PathBuf> = claimants.iter().map(|(p, _)| p.clone()).collect();
                    let refusal = clash_refusal(&name, &files);
                    if state.clashes.get(&name) != Some(&files) {
                        if self.log_refusals {
                            tracing::warn!("{}", crate::inert::inert(&refusal.to_string()));
                        }
                        report.refused.push(refusal.to_string());
                    }
                    // A host that served the name keeps the version it had.
                    if let Some(old) = state.plugins.get(&name) {
                        serving.insert(name.clone(), old.clone());
                    }
                    clashes.insert(name, files);
                }
            }
        }
        for (name, plugin) in &serving {
            let same = state
                .plugins
                .get(name)
                .is_some_and(|old| Arc::ptr_eq(old, plugin));
            if !same {
                let version = plugin.descriptor().version.clone();
                tracing::info!(
                    plugin = %name,
                    %version,
                    path = %plugin.path().display(),
                    "loaded plugin; new work uses it, calls in flight finish on the old one"
                );
                report.loaded.push((name.clone(), version));
            }
        }
        for name in state.plugins.keys() {
            if !serving.contains_key(name) {
                tracing::warn!(plugin = %name, "plugin no longer served; connections using it stop until it is back");
                report.removed.push(name.clone());
            }
        }
        if report.changed() {
            state.generation += 1;
        }
        state.plugins = serving;
        state.clashes = clashes;
        Ok(report)
    }
}
