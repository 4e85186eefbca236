//! What the layer knows of one function, read and written by calls on the
//! hot path with atomics and one short lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use faas_core::{FunctionRef, FunctionStatus};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::clock::Timeline;
use crate::cold_start::Outcome;
use crate::config::ScalingConfig;
use crate::decision::Decider;
use crate::labels::ScaleSettings;
use crate::rate::RateWindow;

/// Locks a std mutex, ignoring poisoning (the data stays consistent: every
/// critical section is a few assignments).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Busy time accounting: the integral of in-flight calls over time, in
/// microseconds since the layer's epoch, so the autoscaler gets exact
/// time-weighted averages between two looks.
#[derive(Debug, Default)]
struct Busy {
    /// Calls in flight.
    running: u64,
    /// Sum of the start times of the calls in flight.
    started_sum: u64,
    /// Total time of the calls that ended.
    done: u64,
}

impl Busy {
    /// The integral up to `now`.
    fn at(&self, now: u64) -> u64 {
        self.done.wrapping_add(self.running.wrapping_mul(now)).wrapping_sub(self.started_sum)
    }
}

/// One function's state.
pub(crate) struct FunctionState {
    pub(crate) function: FunctionRef,
    settings: Mutex<ScaleSettings>,
    /// Desired replicas, as last set by the layer or reported.
    replicas: AtomicU64,
    /// Ready replicas as last known; 0 makes calls wait for a cold start.
    available: AtomicU64,
    /// Bumped by every scale the layer makes, so a status read before it
    /// does not overwrite what the scale changed.
    epoch: AtomicU64,
    /// Calls in flight (held ones included).
    inflight: AtomicU64,
    /// Microseconds since the epoch when a call last began or ended.
    last_activity: AtomicU64,
    /// Calls held now.
    held: AtomicU64,
    /// Calls begun since the function was first seen (held ones included).
    begun: AtomicU64,
    busy: Mutex<Busy>,
    /// Serialises the layer's scale operations on this function.
    pub(crate) scale_lock: tokio::sync::Mutex<()>,
    /// The cold start in progress (or the last one), shared by held calls.
    pub(crate) cold: Mutex<Option<watch::Receiver<Option<Outcome>>>>,
    /// The last status a cold start saw, in words, for held calls' errors.
    pub(crate) last_seen: Mutex<String>,
    /// The autoscaler's memory and its previous look.
    pub(crate) decider: Mutex<Memory>,
    /// The calls begun as the autoscaler's looks saw them, for the rate.
    pub(crate) rate: Mutex<RateWindow>,
}

/// The autoscaler's memory of one function: its [`Decider`] and what it
/// read at its previous look.
#[derive(Debug)]
pub(crate) struct Memory {
    pub(crate) decider: Decider,
    /// When.
    pub(crate) at: Instant,
    /// The busy integral then.
    pub(crate) busy: u64,
    /// The provider's CPU time of the function then (scale type `cpu`).
    pub(crate) cpu: Option<Duration>,
}

/// What the layer knows of a function, for inspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionView {
    /// Its scaling settings.
    pub settings: ScaleSettings,
    /// Desired replicas as last set or reported.
    pub replicas: u64,
    /// Ready replicas as last known.
    pub available: u64,
    /// Calls in flight now, held ones included.
    pub inflight: u64,
    /// Calls held now.
    pub held: u64,
}

impl FunctionState {
    /// State for `function` as `status` shows it, first seen at `now`
    /// (`micros` since the epoch). Its replicas are a floor for one stable
    /// window, so a function is never scaled down the moment it is seen.
    pub(crate) fn new(
        function: FunctionRef,
        status: &FunctionStatus,
        config: &ScalingConfig,
        now: Instant,
        micros: u64,
    ) -> Self {
        let mut decider = Decider::new();
        decider.floor(now, status.replicas);
        FunctionState {
            function,
            settings: Mutex::new(ScaleSettings::lenient(status.labels.as_ref(), config)),
            replicas: AtomicU64::new(status.replicas),
            available: AtomicU64::new(status.available_replicas.min(status.replicas)),
            epoch: AtomicU64::new(0),
            inflight: AtomicU64::new(0),
            last_activity: AtomicU64::new(micros),
            held: AtomicU64::new(0),
            begun: AtomicU64::new(0),
            busy: Mutex::new(Busy::default()),
            scale_lock: tokio::sync::Mutex::new(()),
            cold: Mutex::new(None),
            last_seen: Mutex::new(format!("replicas {}, available {}", status.replicas, status.available_replicas)),
            decider: Mutex::new(Memory { decider, at: now, busy: 0, cpu: None }),
            rate: Mutex::new(RateWindow::new(now, 0)),
        }
    }

    pub(crate) fn settings(&self) -> ScaleSettings {
        *lock(&self.settings)
    }

    pub(crate) fn set_settings(&self, settings: ScaleSettings) {
        *lock(&self.settings) = settings;
    }

    pub(crate) fn replicas(&self) -> u64 {
        self.replicas.load(Ordering::SeqCst)
    }

    pub(crate) fn available(&self) -> u64 {
        self.available.load(Ordering::SeqCst)
    }

    pub(crate) fn inflight(&self) -> u64 {
        self.inflight.load(Ordering::SeqCst)
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Marks the start of a scale by the layer.
    pub(crate) fn bump_epoch(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn set_replicas(&self, replicas: u64) {
        self.replicas.store(replicas, Ordering::SeqCst);
    }

    pub(crate) fn set_available(&self, available: u64) {
        self.available.store(available, Ordering::SeqCst);
    }

    /// Takes a status read while the epoch was `epoch`; ignored if the
    /// layer scaled the function since.
    pub(crate) fn observe(&self, status: &FunctionStatus, config: &ScalingConfig, epoch: u64) -> bool {
        if self.epoch() != epoch {
            return false;
        }
        self.set_replicas(status.replicas);
        self.set_available(status.available_replicas.min(status.replicas));
        self.set_settings(ScaleSettings::lenient(status.labels.as_ref(), config));
        true
    }

    /// Microseconds since the epoch of the last call activity.
    pub(crate) fn last_activity(&self) -> u64 {
        self.last_activity.load(Ordering::SeqCst)
    }

    /// Calls begun since the function was first seen.
    pub(crate) fn begun(&self) -> u64 {
        self.begun.load(Ordering::SeqCst)
    }

    /// The busy integral up to `micros`.
    pub(crate) fn busy_at(&self, micros: u64) -> u64 {
        lock(&self.busy).at(micros)
    }

    /// Counts a call in from `micros` on; the guard counts it out.
    pub(crate) fn begin(self: &Arc<Self>, micros: u64, clock: Timeline) -> CallGuard {
        {
            let mut busy = lock(&self.busy);
            busy.running += 1;
            busy.started_sum = busy.started_sum.wrapping_add(micros);
        }
        self.inflight.fetch_add(1, Ordering::SeqCst);
        self.begun.fetch_add(1, Ordering::Relaxed);
        self.last_activity.fetch_max(micros, Ordering::SeqCst);
        CallGuard { state: self.clone(), started: micros, clock }
    }

    /// Counts a held call in; `None` when `limit` calls are held already.
    pub(crate) fn hold(self: &Arc<Self>, limit: usize) -> Option<HeldGuard> {
        let before = self.held.fetch_add(1, Ordering::SeqCst);
        if before >= limit as u64 {
            self.held.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(HeldGuard { state: self.clone() })
    }

    pub(crate) fn view(&self) -> FunctionView {
        FunctionView {
            settings: self.settings(),
            replicas: self.replicas(),
            available: self.available(),
            inflight: self.inflight(),
            held: self.held.load(Ordering::SeqCst),
        }
    }

    /// How long the function has been idle at `micros`, or zero with calls
    /// in flight.
    pub(crate) fn idle_for(&self, micros: u64) -> Duration {
        if self.inflight() > 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(micros.saturating_sub(self.last_activity()))
    }
}

/// One call counted in flight until dropped: when the response body ends
/// or is dropped, or the call failed.
pub(crate) struct CallGuard {
    state: Arc<FunctionState>,
    started: u64,
    clock: Timeline,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        let now = self.clock.micros();
        {
            let mut busy = lock(&self.state.busy);
            busy.running = busy.running.saturating_sub(1);
            busy.started_sum = busy.started_sum.wrapping_sub(self.started);
            busy.done = busy.done.wrapping_add(now.saturating_sub(self.started));
        }
        self.state.last_activity.fetch_max(now, Ordering::SeqCst);
        self.state.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One held call, counted until dropped.
pub(crate) struct HeldGuard {
    state: Arc<FunctionState>,
}

impl HeldGuard {
    pub(crate) fn held(&self) -> u64 {
        self.state.held.load(Ordering::SeqCst)
    }
}

impl Drop for HeldGuard {
    fn drop(&mut self) {
        self.state.held.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_integral_counts_running_and_finished_calls() {
        // A call from 10 to 30, another from 20, still running at 50.
        let both = Busy { running: 2, started_sum: 10 + 20, done: 0 };
        assert_eq!(both.at(20), 10);
        let one = Busy { running: 1, started_sum: 20, done: 20 };
        assert_eq!(one.at(50), 20 + 30);
        // Near the end of the range the wrapping sums still give the
        // right integral.
        let first = u64::MAX - 5;
        let second = first.wrapping_add(10);
        let late = Busy { running: 2, started_sum: first.wrapping_add(second), done: 7 };
        assert_eq!(late.at(second), 7 + 10);
        assert_eq!(late.at(second.wrapping_add(20)).wrapping_sub(late.at(second)), 40);
    }
}
