//! Request rate: calls begun per second over a sliding window, measured
//! from the count of calls begun that the autoscaler reads at each tick.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// One function's marks of (time, calls begun so far), one per look.
#[derive(Debug)]
pub(crate) struct RateWindow {
    marks: VecDeque<(Instant, u64)>,
}

impl RateWindow {
    /// A window whose first mark is `begun` calls at `at` (when the
    /// function was first seen).
    pub(crate) fn new(at: Instant, begun: u64) -> Self {
        RateWindow { marks: VecDeque::from([(at, begun)]) }
    }

    /// Records that `begun` calls had begun by `now` and returns the calls
    /// begun per second over the last `window`: counted from the latest
    /// mark at or before `now - window` (from the first mark, when the
    /// function was first seen less than a window ago). Zero when no time
    /// has passed since that mark.
    pub(crate) fn observe(&mut self, now: Instant, begun: u64, window: Duration) -> f64 {
        self.marks.push_back((now, begun));
        if let Some(start) = now.checked_sub(window) {
            while self.marks.get(1).is_some_and(|(at, _)| *at <= start) {
                self.marks.pop_front();
            }
        }
        let (since, first) = self.marks[0];
        let span = now.saturating_duration_since(since);
        if span.is_zero() {
            return 0.0;
        }
        begun.wrapping_sub(first) as f64 / span.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_calls_begun_over_the_window() {
        let window = Duration::from_secs(6);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut rate = RateWindow::new(t0, 0);
        assert_eq!(rate.observe(t0, 0, window), 0.0, "no time has passed");
        // 12 calls in the first 2s, then none.
        assert_eq!(rate.observe(at(2), 12, window), 6.0);
        assert_eq!(rate.observe(at(4), 12, window), 3.0);
        assert_eq!(rate.observe(at(6), 12, window), 2.0, "12 calls over the whole 6s window");
        assert_eq!(rate.observe(at(8), 12, window), 0.0, "the burst has left the window");
        // 30 calls in the next 3s, looked at once: the window reaches back
        // to the last mark at or before its start.
        assert_eq!(rate.observe(at(11), 42, window), 30.0 / 7.0);
        assert_eq!(rate.marks.front(), Some(&(at(4), 12)), "older marks are dropped");
    }
}
