//! One function's history: counters the call path bumps with atomics, and
//! the 5 s samples the refresh task takes from them, kept sparse so an idle
//! function costs almost nothing.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Latency buckets of one interval: bucket `i` holds calls up to
/// `FIRST_BOUND_MS * GROWTH^i`, from 0.1 ms to about 127 s.
pub(crate) const BUCKETS: usize = 64;
const FIRST_BOUND_MS: f64 = 0.1;
const GROWTH: f64 = 1.25;

/// The upper bound of latency bucket `index`, in milliseconds.
pub(crate) fn bucket_bound_ms(index: u8) -> f64 {
    FIRST_BOUND_MS * GROWTH.powi(i32::from(index))
}

/// The bucket a call of `elapsed` falls in.
fn bucket_of(elapsed: Duration) -> usize {
    let ms = elapsed.as_secs_f64() * 1000.0;
    if ms <= FIRST_BOUND_MS {
        return 0;
    }
    let index = ((ms / FIRST_BOUND_MS).ln() / GROWTH.ln()).ceil();
    // Saturating float-to-int conversion, then the last bucket at most.
    (index as usize).min(BUCKETS - 1)
}

/// What calls add between two samples; bumped on the call path.
pub(crate) struct Live {
    calls: AtomicU32,
    errors: AtomicU32,
    buckets: [AtomicU32; BUCKETS],
    /// Milliseconds since the Unix epoch of the last call's end; 0 if none.
    last_call_ms: AtomicU64,
}

impl Live {
    fn new() -> Self {
        Live {
            calls: AtomicU32::new(0),
            errors: AtomicU32::new(0),
            buckets: std::array::from_fn(|_| AtomicU32::new(0)),
            last_call_ms: AtomicU64::new(0),
        }
    }
}

/// One stored 5 s sample (12 bytes): only intervals with calls or cold
/// starts are stored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) calls: u32,
    /// The low 16 bits of the sampling pass it belongs to.
    pub(crate) seq: u16,
    pub(crate) errors: u16,
    /// Latency bucket indexes of the median and the 99th percentile.
    pub(crate) p50: u8,
    pub(crate) p99: u8,
    pub(crate) cold_starts: u8,
}

/// Replicas (desired, ready) from a sampling pass on, stored when they change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Replicas {
    pub(crate) seq: u16,
    pub(crate) desired: u16,
    pub(crate) ready: u16,
}

/// The stored samples of one function.
pub(crate) struct Track {
    pub(crate) samples: VecDeque<Sample>,
    pub(crate) changes: VecDeque<Replicas>,
    /// The replicas before the first stored change.
    pub(crate) base: (u16, u16),
    /// The cold start counter at the last pass.
    last_cold: u64,
}

/// A function's live counters and stored samples.
pub(crate) struct Entry {
    live: Live,
    pub(crate) track: Mutex<Track>,
}

impl Entry {
    pub(crate) fn new() -> Self {
        Entry {
            live: Live::new(),
            track: Mutex::new(Track { samples: VecDeque::new(), changes: VecDeque::new(), base: (0, 0), last_cold: 0 }),
        }
    }

    /// Records one answered call.
    pub(crate) fn record(&self, error: bool, elapsed: Duration, now_ms: u64) {
        self.live.calls.fetch_add(1, Ordering::Relaxed);
        if error {
            self.live.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.live.buckets[bucket_of(elapsed)].fetch_add(1, Ordering::Relaxed);
        self.live.last_call_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// When the last call ended (ms since the epoch), if any.
    pub(crate) fn last_call_ms(&self) -> Option<u64> {
        Some(self.live.last_call_ms.load(Ordering::Relaxed)).filter(|ms| *ms > 0)
    }

    /// Calls and errors recorded since the last pass.
    pub(crate) fn pending(&self) -> (u32, u32) {
        (self.live.calls.load(Ordering::Relaxed), self.live.errors.load(Ordering::Relaxed))
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Track> {
        self.track.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes pass `seq`'s sample: drains the live counters, stores the
    /// sample if anything happened and the replicas if they changed, and
    /// forgets what fell out of the window of `window` passes.
    pub(crate) fn sample(&self, seq: u32, window: u32, desired: u64, ready: u64, cold_total: u64) {
        let seq16 = seq as u16;
        let calls = self.live.calls.swap(0, Ordering::Relaxed);
        let errors = self.live.errors.swap(0, Ordering::Relaxed);
        let mut counts = [0u32; BUCKETS];
        for (count, bucket) in counts.iter_mut().zip(&self.live.buckets) {
            *count = bucket.swap(0, Ordering::Relaxed);
        }
        let mut track = self.lock();
        let cold = cold_total.saturating_sub(track.last_cold);
        track.last_cold = cold_total;
        let clamp = |n: u64| u16::try_from(n).unwrap_or(u16::MAX);
        let expired = |at: u16| seq16.wrapping_sub(at) as u32 >= window;
        while track.samples.front().is_some_and(|s| expired(s.seq)) {
            track.samples.pop_front();
        }
        while let Some(change) = track.changes.front().copied().filter(|c| expired(c.seq)) {
            track.base = (change.desired, change.ready);
            track.changes.pop_front();
        }
        if calls > 0 || cold > 0 {
            let sample = Sample {
                calls,
                seq: seq16,
                errors: u16::try_from(errors).unwrap_or(u16::MAX),
                p50: quantile(&counts, 0.5),
                p99: quantile(&counts, 0.99),
                cold_starts: u8::try_from(cold).unwrap_or(u8::MAX),
            };
            // Grows by doubling from 4 but never beyond the window: a function
            // called once costs 4 samples, a busy one exactly `window`.
            let (len, capacity) = (track.samples.len(), track.samples.capacity());
            if len == capacity {
                let grown = (capacity * 2).max(4).min((window as usize).max(len + 1));
                track.samples.reserve_exact(grown - len);
            }
            track.samples.push_back(sample);
        }
        let now = Replicas { seq: seq16, desired: clamp(desired), ready: clamp(ready) };
        let last = track.changes.back().map(|r| (r.desired, r.ready)).unwrap_or(track.base);
        if last != (now.desired, now.ready) {
            track.changes.push_back(now);
        }
    }
}

/// The bucket holding quantile `q` of `counts` (0 when there were no calls).
fn quantile(counts: &[u32; BUCKETS], q: f64) -> u8 {
    let total: u64 = counts.iter().map(|c| u64::from(*c)).sum();
    if total == 0 {
        return 0;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0u64;
    for (index, count) in counts.iter().enumerate() {
        seen += u64::from(*count);
        if seen >= rank {
            return index as u8;
        }
    }
    (BUCKETS - 1) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_bound_the_latency_they_hold() {
        for ms in [0.05, 0.1, 0.3, 1.0, 7.5, 250.0, 9000.0] {
            let index = bucket_of(Duration::from_secs_f64(ms / 1000.0));
            assert!(bucket_bound_ms(index as u8) >= ms * 0.999, "{ms} ms in bucket {index}");
            if index > 0 {
                assert!(bucket_bound_ms(index as u8 - 1) < ms, "{ms} ms in bucket {index}");
            }
        }
        assert_eq!(bucket_of(Duration::from_secs(100_000)), BUCKETS - 1);
    }

    #[test]
    fn samples_are_sparse_and_expire() {
        let entry = Entry::new();
        for _ in 0..99 {
            entry.record(false, Duration::from_millis(2), 1);
        }
        entry.record(true, Duration::from_millis(800), 2);
        entry.sample(1, 3, 1, 1, 0);
        entry.sample(2, 3, 1, 1, 1);
        entry.sample(3, 3, 2, 1, 1);
        {
            let track = entry.lock();
            assert_eq!(track.samples.len(), 2, "the pass with a cold start is stored, idle ones are not");
            let first = track.samples[0];
            assert_eq!((first.calls, first.errors, first.cold_starts), (100, 1, 0));
            assert!(bucket_bound_ms(first.p50) >= 2.0 && bucket_bound_ms(first.p50) < 2.6, "{first:?}");
            assert!(bucket_bound_ms(first.p99) >= 2.0 && bucket_bound_ms(first.p99) < 2.6, "{first:?}");
            assert_eq!(track.samples[1].cold_starts, 1);
            assert_eq!(track.changes.len(), 2);
        }
        entry.sample(4, 3, 2, 1, 1);
        entry.sample(5, 3, 2, 1, 1);
        entry.sample(6, 3, 2, 1, 1);
        let track = entry.lock();
        assert!(track.samples.is_empty(), "passes 1 and 2 left the 3-pass window");
        assert!(track.samples.capacity() <= 4, "{}", track.samples.capacity());
        assert_eq!((track.base, track.changes.len()), ((2, 1), 0));
        assert_eq!(entry.last_call_ms(), Some(2));
    }
}
