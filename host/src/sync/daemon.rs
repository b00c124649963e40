//! `provisioner run`: the scheduler.
//!
//! It follows the directory's change sequence, so an edit made by any
//! process (`provisioner people set`, an import, later a SCIM server)
//! reaches the targets within a second, in a pass over just the people who
//! changed. Failed links whose backoff has run out are retried the same
//! way. Every `interval` it passes over everyone, and every
//! `drift_interval` it also re-reads the targets to repair drift.
//!
//! On SIGINT or SIGTERM it stops sending: batches in flight finish and are
//! recorded, the rest is planned again by the next run. A second signal
//! exits at once; the journal then shows the interrupted batch as
//! `unknown`, and lookups make it harmless.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::engine::{Action, Engine, EngineError, PassOptions, PassReport};
use super::links::PluginRecord;
use crate::directory::Directory;
use crate::state::now_ms;
use notify::Watcher;

/// How often the directory's change sequence is read when no file event
/// says it changed.
const POLL: Duration = Duration::from_millis(200);

/// How soon, and how many times, the change sequence is read again after a
/// write woke the loop and showed nothing new. SQLite makes a commit
/// visible by updating its WAL index, a shared memory map whose writes
/// raise no file event, just after the WAL writes that do: a reader woken
/// by those can look before the commit is visible, and no further event
/// comes. Without these looks such a change waited for the next poll
/// (the 200 ms outliers of the steady-state benchmark).
const RECHECK: Duration = Duration::from_millis(5);
const RECHECKS: u8 = 4;

/// How the daemon schedules passes.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// A pass over everyone.
    pub interval: Duration,
    /// A pass that also re-reads the targets (`sync --full`).
    pub drift_interval: Duration,
    /// Reload the plugins when their directory changes. Off where file
    /// events do not arrive (some network file systems); SIGHUP reloads
    /// either way.
    pub watch_plugins: bool,
}

/// SIGINT and SIGTERM (stop) and SIGHUP (reload the plugins), registered
/// when this is made: a signal that arrives while a pass is busy is never
/// met by the default action (exit at once).
pub struct Shutdown {
    stop: Stop,
    hangup: Hangup,
}

struct Stop {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

struct Hangup {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Shutdown {
    pub fn listen() -> std::io::Result<Shutdown> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Shutdown {
                stop: Stop {
                    interrupt: signal(SignalKind::interrupt())?,
                    terminate: signal(SignalKind::terminate())?,
                },
                hangup: Hangup {
                    signal: signal(SignalKind::hangup())?,
                },
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Shutdown {
                stop: Stop {},
                hangup: Hangup {},
            })
        }
    }
}

impl Stop {
    /// Resolves at the next signal to stop.
    async fn wait(&mut self) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => {}
                _ = self.terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

impl Hangup {
    /// Resolves at the next SIGHUP.
    async fn wait(&mut self) {
        #[cfg(unix)]
        {
            self.signal.recv().await;
        }
        #[cfg(not(unix))]
        {
            std::future::pending::<()>().await;
        }
    }
}

/// Records the plugins serving now, for every status view: the daemon at
/// start and after every reload, a one-shot sync when it runs.
pub(crate) async fn record_plugins(engine: &Engine) {
    let snapshot = engine.plugins().snapshot();
    let clashes: std::collections::BTreeMap<String, Vec<String>> = snapshot
        .clashes
        .iter()
        .map(|(name, files)| {
            let files = files.iter().map(|f| f.display().to_string()).collect();
            (name.clone(), files)
        })
        .collect();
    let plugins: Vec<PluginRecord> = snapshot
        .plugins
        .values()
        .map(|p| PluginRecord {
            name: p.name().to_string(),
            version: p.descriptor().version.clone(),
            contract: p.contract().to_string(),
            path: p.path().display().to_string(),
        })
        .collect();
    let refused: Vec<(String, String)> = snapshot
        .refused
        .iter()
        .map(|r| (r.path.display().to_string(), r.reason.clone()))
        .collect();
    if let Err(error) = engine
        .db()
        .record_plugins(&plugins, &clashes, &refused)
        .await
    {
        tracing::warn!(%error, "could not record the plugins in use");
    }
}

/// Rescans the plugin directory and swaps what changed; true if the
/// plugins serving changed.
async fn reload(engine: &Engine, why: &str) -> bool {
    match engine.plugins().reload().await {
        Ok(report) => {
            if report.changed() || !report.refused.is_empty() {
                tracing::info!(trigger = why, loaded = ?report.loaded, removed = ?report.removed, refused = ?report.refused, "plugins reloaded");
            }
            record_plugins(engine).await;
            report.changed()
        }
        Err(error) => {
            tracing::error!(%error, "reloading plugins failed; the loaded ones keep serving");
            false
        }
    }
}

/// Reloads the plugins on every change in their directory (once it has
/// been quiet for a moment, so that a copy in progress finishes first) and
/// on every SIGHUP.
async fn follow_plugins(
    engine: Arc<Engine>,
    watch_dir: bool,
    mut hangup: Hangup,
    swapped: Arc<tokio::sync::Notify>,
) {
    let (tx, mut changes) = tokio::sync::mpsc::channel(64);
    let _watcher = watch_dir
        .then(|| {
            watch(
                engine.plugins().dir(),
                |p| p.extension().is_some_and(|e| e == "wasm"),
                move || {
                    let _ = tx.try_send(());
                },
                "plugins reload on SIGHUP",
            )
        })
        .flatten();
    loop {
        let trigger = tokio::select! {
            Some(()) = changes.recv() => {
                while let Ok(Some(())) = tokio::time::timeout(QUIET, changes.recv()).await {}
                "file change"
            }
            _ = hangup.wait() => "SIGHUP",
        };
        if reload(&engine, trigger).await {
            swapped.notify_one();
        }
    }
}

/// How long the plugin directory must be quiet before a reload.
const QUIET: Duration = Duration::from_millis(300);

/// Stops a background task when the daemon returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Watches `dir` (not its subdirectories) and calls `on_change` for every
/// event on a path `wanted` accepts; `None`, with a warning saying what
/// still works (`fallback`), where the platform offers no events.
fn watch(
    dir: &std::path::Path,
    wanted: impl Fn(&std::path::Path) -> bool + Send + 'static,
    on_change: impl Fn() + Send + 'static,
    fallback: &str,
) -> Option<notify::RecommendedWatcher> {
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && event.paths.iter().any(|p| wanted(p))
        {
            on_change();
        }
    });
    let result = watcher.and_then(|mut watcher| {
        watcher
            .watch(dir, notify::RecursiveMode::NonRecursive)
            .map(|()| watcher)
    });
    match result {
        Ok(watcher) => Some(watcher),
        Err(error) => {
            tracing::warn!(%error, dir = %dir.display(), "cannot watch for changes; {fallback}");
            None
        }
    }
}

fn log_report(kind: &str, report: &PassReport) {
    for rule in &report.rules {
        if rule.actions.keys().all(|k| *k == Action::Unchanged) {
            continue;
        }
        tracing::info!(
            pass = kind,
            rule = %rule.rule,
            connection = %rule.connection,
            actions = ?rule.actions,
            "sync pass"
        );
    }
}

/// What the daemon remembers between wakes: the directory change it saw
/// last, and when it last passed over everyone and re-read the targets.
struct Clock {
    seen: i64,
    last_full: Instant,
    last_drift: Instant,
}

/// Runs passes until a signal arrives. `kick` asks for a pass over
/// everyone now (an operator acted on the status page); `written` says
/// that this process changed the directory (a SCIM write), for a pass over
/// whoever changed.
pub async fn run(
    engine: Arc<Engine>,
    schedule: Schedule,
    kick: Arc<tokio::sync::Notify>,
    written: Arc<tokio::sync::Notify>,
    shutdown: Shutdown,
) -> Result<(), EngineError> {
    let Shutdown {
        stop: mut shutdown,
        hangup,
    } = shutdown;
    let directory = Directory::new(engine.db(), engine.schema().clone());
    let mut clock = Clock {
        seen: directory.last_seq().await?,
        last_full: Instant::now(),
        last_drift: Instant::now(),
    };
    let mut next: Option<(&'static str, PassOptions)> = Some(("startup", PassOptions::default()));
    record_plugins(&engine).await;
    // Reloads run beside the passes: a pass keeps the plugins it bound at
    // its start, and the next pass binds whatever serves then.
    let swapped = Arc::new(tokio::sync::Notify::new());
    let _reloader = AbortOnDrop(tokio::spawn(follow_plugins(
        engine.clone(),
        schedule.watch_plugins,
        hangup,
        swapped.clone(),
    )));
    let _state_watcher = watch_state(&engine, written.clone());
    tracing::info!(
        interval_s = schedule.interval.as_secs(),
        "provisioner is running; following the directory"
    );
    let mut rechecks: u8 = 0;
    loop {
        if let Some((kind, options)) = next.take() {
            let pass = engine.pass(&options);
            tokio::pin!(pass);
            let outcome = tokio::select! {
                outcome = &mut pass => outcome,
                _ = shutdown.wait() => {
                    tracing::info!("stopping: letting the batches in flight finish");
                    engine.stop();
                    tokio::select! {
                        outcome = &mut pass => { outcome?; }
                        _ = shutdown.wait() => { tracing::warn!("stopped at once; the journal marks any unanswered batch"); }
                    }
                    return Ok(());
                }
            };
            match outcome {
                Ok(report) => log_report(kind, &report),
                Err(error) => tracing::error!(%error, "sync pass failed"),
            }
        }
        let wait = if rechecks > 0 { RECHECK } else { POLL };
        let mut woken_by_write = false;
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = written.notified() => woken_by_write = true,
            _ = kick.notified() => {
                next = Some(("operator", PassOptions::default()));
                continue;
            }
            _ = swapped.notified() => {
                // Work that failed to bind while a plugin was missing or
                // broken runs now; for everyone else the pass sends nothing.
                next = Some(("plugins changed", PassOptions::default()));
                continue;
            }
            _ = shutdown.wait() => {
                tracing::info!("stopped");
                return Ok(());
            }
        }
        next = due(&engine, &directory, &schedule, &mut clock).await?;
        rechecks = match (next.is_some(), woken_by_write) {
            (true, _) => 0,
            (false, true) => RECHECKS,
            (false, false) => rechecks.saturating_sub(1),
        };
    }
}

/// A directory change is a write to the state, usually by another process
/// (an import, `people set`). Where the state is a file, its events wake
/// the loop at once, so that a change reaches the target in milliseconds
/// rather than at the next poll; the poll stays, for file systems without
/// events and for stores that are not a file.
fn watch_state(
    engine: &Engine,
    written: Arc<tokio::sync::Notify>,
) -> Option<notify::RecommendedWatcher> {
    let state = engine.db().change_file()?;
    let name = state
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    watch(
        state.parent()?,
        move |p| {
            p.file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with(&name))
        },
        move || written.notify_one(),
        "directory changes are seen at the next poll",
    )
}

/// The pass due after a wake, if any: a full pass that re-reads the
/// targets when the drift interval is up, a pass over everyone when the
/// interval is, else one over the people who changed or whose retry is
/// due.
async fn due(
    engine: &Engine,
    directory: &Directory<'_>,
    schedule: &Schedule,
    clock: &mut Clock,
) -> Result<Option<(&'static str, PassOptions)>, EngineError> {
    let seq = directory.last_seq().await?;
    if clock.last_drift.elapsed() >= schedule.drift_interval {
        clock.last_drift = Instant::now();
        clock.last_full = Instant::now();
        clock.seen = seq;
        let options = PassOptions {
            full: true,
            ..PassOptions::default()
        };
        return Ok(Some(("drift", options)));
    }
    if clock.last_full.elapsed() >= schedule.interval {
        clock.last_full = Instant::now();
        clock.seen = seq;
        return Ok(Some(("interval", PassOptions::default())));
    }
    let mut people: BTreeSet<String> = if seq > clock.seen {
        directory.changed_since(clock.seen).await?
    } else {
        BTreeSet::new()
    };
    clock.seen = seq;
    people.extend(engine.db().due(now_ms()).await?);
    if people.is_empty() {
        return Ok(None);
    }
    tracing::debug!(people = people.len(), "directory changed");
    let options = PassOptions {
        people: Some(people),
        ..PassOptions::default()
    };
    Ok(Some(("change", options)))
}
