//! Polling for something to become ready: how long to pause before
//! looking again.
//!
//! Used by the watchdog's readiness probe of a starting instance and by
//! the scaling layer's wait for a replica during a cold start, so both see
//! readiness equally late.

use std::time::Duration;

/// The pause before the next look after having waited `waited`: an eighth
/// of it, at least `first` and at most `max` (`first` when `max` is
/// smaller). Something that becomes ready is therefore seen at most about
/// 12.5% (or `first`) after it is, for about 50 looks in the first second
/// with `first` = 1 ms, where doubling pauses would see readiness up to
/// twice as late.
pub fn pause_after(waited: Duration, first: Duration, max: Duration) -> Duration {
    (waited / 8).clamp(first, max.max(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_eighth_of_the_wait_within_its_bounds() {
        let ms = Duration::from_millis;
        assert_eq!(pause_after(Duration::ZERO, ms(2), ms(500)), ms(2));
        assert_eq!(pause_after(ms(80), ms(2), ms(500)), ms(10));
        assert_eq!(pause_after(ms(8_000), ms(2), ms(500)), ms(500));
        // A maximum below the first pause: the first pause.
        assert_eq!(pause_after(ms(80), ms(20), ms(5)), ms(20));
    }
}
