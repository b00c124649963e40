//! Random faults at a chosen rate, for fault-matrix tests at scale, and the
//! log of write attempts that lets a test check a client's retry pacing.
//!
//! Injected [`Fault`](crate::Fault)s fail the next N matching requests,
//! which suits a test about one response. A sync of thousands of people
//! needs faults spread over the whole run instead: with [`Chaos`] set, each
//! API request is faulted with probability `per_mille / 1000`, of a kind
//! drawn from `kinds`. The draws come from a seeded generator, so a failing
//! run can be repeated with the same seed (given the same request order).

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

/// How long a new session is safe from [`ChaosKind::ExpireSession`].
pub const FRESH_SESSION: Duration = Duration::from_secs(1);

/// Random faults on a share of API requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chaos {
    pub seed: u64,
    /// Requests faulted, per thousand.
    pub per_mille: u32,
    /// The faults to draw from, uniformly.
    pub kinds: Vec<ChaosKind>,
    /// The longest delay [`ChaosKind::Latency`] adds.
    #[serde(default = "two_seconds")]
    pub max_latency_ms: u64,
}

fn two_seconds() -> u64 {
    2_000
}

/// What can go wrong with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChaosKind {
    /// A delay of up to `max_latency_ms` before the request is served.
    Latency,
    /// `500 UNKNOWN_EXCEPTION`; nothing is carried out.
    ServerError,
    /// `503 SERVER_UNAVAILABLE`; nothing is carried out.
    Unavailable,
    /// `403 REQUEST_LIMIT_EXCEEDED`; nothing is carried out.
    RequestLimit,
    /// In an sObject Collections create or update, about half the records
    /// fail with `UNABLE_TO_LOCK_ROW` and the others are saved, as when
    /// another transaction holds their rows. Other requests are served
    /// normally.
    LockRow,
    /// Every session ends just before this request, which gets 401;
    /// except one issued within [`FRESH_SESSION`]: a real session lasts at
    /// least 15 minutes, so a client that has just refreshed never finds
    /// its new session over already.
    ExpireSession,
    /// The connection closes before an answer; nothing is carried out.
    DropConnection,
    /// The request is carried out, then the answer's body is cut off
    /// halfway: the client cannot know what happened.
    TruncateBody,
}

impl ChaosKind {
    pub const ALL: [ChaosKind; 8] = [
        ChaosKind::Latency,
        ChaosKind::ServerError,
        ChaosKind::Unavailable,
        ChaosKind::RequestLimit,
        ChaosKind::LockRow,
        ChaosKind::ExpireSession,
        ChaosKind::DropConnection,
        ChaosKind::TruncateBody,
    ];

    /// The kebab-case name the counters and the control API use.
    pub fn name(self) -> &'static str {
        match self {
            ChaosKind::Latency => "latency",
            ChaosKind::ServerError => "server-error",
            ChaosKind::Unavailable => "unavailable",
            ChaosKind::RequestLimit => "request-limit",
            ChaosKind::LockRow => "lock-row",
            ChaosKind::ExpireSession => "expire-session",
            ChaosKind::DropConnection => "drop-connection",
            ChaosKind::TruncateBody => "truncate-body",
        }
    }

    /// The error a whole-request fault answers with.
    pub(crate) fn error(self) -> Option<(u16, &'static str)> {
        match self {
            ChaosKind::ServerError => Some((500, "UNKNOWN_EXCEPTION")),
            ChaosKind::Unavailable => Some((503, "SERVER_UNAVAILABLE")),
            ChaosKind::RequestLimit => Some((403, "REQUEST_LIMIT_EXCEEDED")),
            _ => None,
        }
    }
}

/// One draw: the fault for one request, with its details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pick {
    pub kind: ChaosKind,
    pub delay: Duration,
    /// For [`ChaosKind::LockRow`]: which records of the batch are locked.
    pub locked: Vec<bool>,
}

pub(crate) struct ChaosState {
    pub config: Chaos,
    rng: StdRng,
}

impl ChaosState {
    pub fn new(config: Chaos) -> ChaosState {
        let rng = StdRng::seed_from_u64(config.seed);
        ChaosState { config, rng }
    }

    /// Draws the fault, if any, for a request carrying `records` records.
    pub fn roll(&mut self, records: usize) -> Option<Pick> {
        if self.config.kinds.is_empty() || self.rng.random_range(0..1000) >= self.config.per_mille {
            return None;
        }
        let kind = self.config.kinds[self.rng.random_range(0..self.config.kinds.len())];
        let delay = match kind {
            ChaosKind::Latency => {
                Duration::from_millis(self.rng.random_range(0..=self.config.max_latency_ms))
            }
            _ => Duration::ZERO,
        };
        let locked = match kind {
            ChaosKind::LockRow => (0..records).map(|_| self.rng.random_bool(0.5)).collect(),
            _ => Vec::new(),
        };
        Some(Pick {
            kind,
            delay,
            locked,
        })
    }
}

/// The records of a Collections create or update that chaos locked, by
/// position in the request; handed to the handler as a request extension.
#[derive(Debug, Clone, Default)]
pub(crate) struct LockedRows(pub Vec<bool>);

impl LockedRows {
    pub fn is_locked(&self, index: usize) -> bool {
        self.0.get(index).copied().unwrap_or(false)
    }
}

/// One record's part in one Collections write request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteAttempt {
    /// The record's Email, lower-cased (or `#id` for a record without one).
    pub key: String,
    /// `POST`, `PATCH` or `DELETE`.
    pub method: String,
    /// Milliseconds since the emulator started, when the request arrived.
    pub at_ms: u64,
    pub outcome: Outcome,
}

/// What the client could know about its record after the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Outcome {
    /// Saved, and the client was told so.
    Ok,
    /// Refused, with this error code; nothing saved.
    Failed { code: String },
    /// 401: the session had ended; nothing saved.
    Unauthorized,
    /// Saved, but the answer was cut off.
    Lost,
    /// The connection closed before an answer; nothing saved.
    Dropped,
}

impl Outcome {
    /// Whether the client saw this attempt fail (and so must back off
    /// before the next one). A 401 is not: the client refreshes its
    /// session and tries again at once.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Outcome::Failed { .. } | Outcome::Lost | Outcome::Dropped
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chaos(per_mille: u32, kinds: Vec<ChaosKind>) -> ChaosState {
        ChaosState::new(Chaos {
            seed: 7,
            per_mille,
            kinds,
            max_latency_ms: 2_000,
        })
    }

    #[test]
    fn the_rate_holds_and_the_same_seed_repeats_the_same_draws() {
        let mut a = chaos(200, ChaosKind::ALL.to_vec());
        let mut b = chaos(200, ChaosKind::ALL.to_vec());
        let draws: Vec<_> = (0..10_000).map(|_| a.roll(10)).collect();
        let again: Vec<_> = (0..10_000).map(|_| b.roll(10)).collect();
        assert_eq!(draws, again);
        let faulted = draws.iter().flatten().count();
        assert!((1_700..2_300).contains(&faulted), "{faulted}");
        for kind in ChaosKind::ALL {
            assert!(draws.iter().flatten().any(|p| p.kind == kind), "{kind:?}");
        }
        for pick in draws.iter().flatten() {
            assert!(pick.delay <= Duration::from_secs(2));
            assert_eq!(
                pick.locked.len(),
                if pick.kind == ChaosKind::LockRow {
                    10
                } else {
                    0
                }
            );
        }
    }

    #[test]
    fn no_kinds_or_a_zero_rate_fault_nothing() {
        assert!((0..1_000).all(|_| chaos(1000, Vec::new()).roll(1).is_none()));
        let mut quiet = chaos(0, ChaosKind::ALL.to_vec());
        assert!((0..1_000).all(|_| quiet.roll(1).is_none()));
    }
}
