//! The time and the randomness a pass depends on, injected so that a test
//! can fix them: when a failed person is due again depends on both.

/// What the engine asks of the world besides the stores.
pub trait Clock: Send + Sync {
    /// Milliseconds since the epoch, the unit of every timestamp in the
    /// state.
    fn now_ms(&self) -> i64;

    /// A number in [0, 1) that spreads the retries of a batch (see
    /// [`super::backoff::retry_at`]).
    fn jitter(&self) -> f64;
}

/// The system's clock and a random jitter.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::state::now_ms()
    }

    fn jitter(&self) -> f64 {
        rand::random::<f64>()
    }
}

/// A clock that stands still until moved, with no jitter.
#[cfg(test)]
#[derive(Default)]
pub struct FixedClock(std::sync::atomic::AtomicI64);

#[cfg(test)]
impl FixedClock {
    pub fn at(ms: i64) -> FixedClock {
        FixedClock(std::sync::atomic::AtomicI64::new(ms))
    }

    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn jitter(&self) -> f64 {
        0.0
    }
}
