//! The time the autoscaler decides by, replaceable in tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Where the layer reads the time its decisions depend on: call
/// timestamps, the stable and panic windows, idle time.
///
/// Holding calls (the hold timeout, readiness polls) always uses tokio's
/// timers, which tests can pause with `tokio::time::pause`.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> Instant;
}

/// The real time, as tokio reads it.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that only moves when told to: for deterministic tests of
/// decisions that take minutes in real time. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<Instant>>,
}

impl ManualClock {
    /// A clock standing at the current real time.
    pub fn new() -> Self {
        ManualClock { now: Arc::new(Mutex::new(Instant::now())) }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A clock and the instant the layer started: times as microseconds
/// since then, which fit in atomics.
#[derive(Debug, Clone)]
pub(crate) struct Timeline {
    clock: Arc<dyn Clock>,
    epoch: Instant,
}

impl Timeline {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        let epoch = clock.now();
        Timeline { clock, epoch }
    }

    /// The current time.
    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// `at` as microseconds since the epoch.
    pub(crate) fn micros_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX)
    }

    /// The current time as microseconds since the epoch.
    pub(crate) fn micros(&self) -> u64 {
        self.micros_at(self.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::new();
        let shared = clock.clone();
        let start = clock.now();
        assert_eq!(clock.now(), start);
        shared.advance(Duration::from_secs(61));
        assert_eq!(clock.now() - start, Duration::from_secs(61));
    }
}
