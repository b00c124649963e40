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

/// Resolves when the process is asked to stop.
async fn shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
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

/// Runs passes until a signal arrives.
pub async fn run(engine: Arc<Engine>, schedule: Schedule) -> Result<(), EngineError> {
    let stop = shutdown();
    tokio::pin!(stop);
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
                _ = &mut stop => {
                    tracing::info!("stopping: letting the batches in flight finish");
                    engine.stop();
                    let second = shutdown();
                    tokio::select! {
                        outcome = &mut pass => { outcome?; }
                        _ = second => { tracing::warn!("stopped at once; the journal marks any unanswered batch"); }
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
            _ = &mut stop => {
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
