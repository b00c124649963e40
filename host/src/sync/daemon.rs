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

use super::engine::{Engine, EngineError, PassOptions, PassReport};
use super::links::Links;
use crate::directory::Directory;
use crate::state::now_ms;

/// How often the directory's change sequence is read.
const POLL: Duration = Duration::from_millis(200);

/// How the daemon schedules passes.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// A pass over everyone.
    pub interval: Duration,
    /// A pass that also re-reads the targets (`sync --full`).
    pub drift_interval: Duration,
}

/// SIGINT and SIGTERM, registered when this is made: a signal that arrives
/// while a pass is busy is never met by the default action (exit at once).
pub struct Shutdown {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Shutdown {
    pub fn listen() -> std::io::Result<Shutdown> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Shutdown {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Shutdown {})
        }
    }

    /// Resolves at the next signal.
    pub async fn wait(&mut self) {
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

fn log_report(kind: &str, report: &PassReport) {
    for rule in &report.rules {
        if rule.actions.keys().all(|k| k == "unchanged") {
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

/// Runs passes until a signal arrives. `kick` asks for a pass over
/// everyone now (an operator acted on the status page).
pub async fn run(
    engine: Arc<Engine>,
    schedule: Schedule,
    kick: Arc<tokio::sync::Notify>,
    mut shutdown: Shutdown,
) -> Result<(), EngineError> {
    let directory = || Directory::new(engine.db(), engine.schema().clone());
    let mut seen = directory().last_seq()?;
    let mut last_full = Instant::now();
    let mut last_drift = Instant::now();
    let mut next: Option<(&'static str, PassOptions)> = Some(("startup", PassOptions::default()));
    tracing::info!(
        interval_s = schedule.interval.as_secs(),
        "provisioner is running; following the directory"
    );
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
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = kick.notified() => {
                next = Some(("operator", PassOptions::default()));
                continue;
            }
            _ = shutdown.wait() => {
                tracing::info!("stopped");
                return Ok(());
            }
        }
        let seq = directory().last_seq()?;
        if last_drift.elapsed() >= schedule.drift_interval {
            last_drift = Instant::now();
            last_full = Instant::now();
            seen = seq;
            next = Some((
                "drift",
                PassOptions {
                    full: true,
                    ..PassOptions::default()
                },
            ));
            continue;
        }
        if last_full.elapsed() >= schedule.interval {
            last_full = Instant::now();
            seen = seq;
            next = Some(("interval", PassOptions::default()));
            continue;
        }
        let mut people: BTreeSet<String> = if seq > seen {
            directory().changed_since(seen)?
        } else {
            BTreeSet::new()
        };
        seen = seq;
        people.extend(Links::new(engine.db()).due(now_ms())?);
        if !people.is_empty() {
            tracing::debug!(people = people.len(), "directory changed");
            next = Some((
                "change",
                PassOptions {
                    people: Some(people),
                    ..PassOptions::default()
                },
            ));
        }
    }
}
