//! Workload: an initial sync under a real network's latency. The emulator
//! delays every API request by `--latency-ms`, give or take
//! `--latency-jitter-ms`, so that what decides the time is how many
//! requests go out and how many are in flight, not the host's CPU. The
//! naive per-person client runs on a sample under the same latency, and
//! its time is extrapolated to the whole directory.

use std::time::Duration;

use salesforce_emulator::Latency;

use super::{Org, SyncRun, initial_sync, naive_baseline};

/// What one latency run measured.
pub struct LatencyRun {
    pub people: usize,
    pub concurrency: usize,
    pub sync: SyncRun,
    /// The most API requests the emulator served at once.
    pub most_in_flight: u64,
}

/// The naive client on a sample: its wall time, requests, and how many
/// people.
pub struct NaiveSample {
    pub people: usize,
    pub wall: Duration,
    pub calls: u64,
}

impl NaiveSample {
    /// Its wall time at `people`, assuming each person costs what a
    /// sampled one did (the naive client does one person after another).
    pub fn extrapolated(&self, people: usize) -> Duration {
        self.wall.mul_f64(people as f64 / self.people as f64)
    }
}

pub fn latency(millis: u64, jitter: u64) -> Latency {
    Latency {
        path: String::new(),
        millis,
        jitter_millis: jitter,
        after: false,
    }
}

/// Our initial sync of `people` with `[sync] concurrency = concurrency`,
/// every API request delayed.
pub async fn ours(
    org: &Org,
    people: usize,
    concurrency: usize,
    delay: &Latency,
) -> anyhow::Result<LatencyRun> {
    org.set_concurrency(concurrency)?;
    org.emulator.set_latency(Some(delay.clone()));
    let sync = initial_sync(org, people).await?;
    org.emulator.set_latency(None);
    Ok(LatencyRun {
        people,
        concurrency,
        sync,
        most_in_flight: org.emulator.counters().most_in_flight,
    })
}

/// The naive client on `people`, every API request delayed.
pub async fn naive(people: usize, delay: &Latency) -> anyhow::Result<NaiveSample> {
    let (wall, calls) = naive_baseline(people, Some(delay.clone())).await?;
    Ok(NaiveSample {
        people,
        wall,
        calls,
    })
}
