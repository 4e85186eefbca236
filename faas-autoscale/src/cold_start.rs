//! Scale from zero: holding calls while one shared task scales the
//! function up and polls its status until a replica is ready.

use std::sync::Arc;
use std::time::Duration;

use faas_core::{Error, FunctionRef, Result};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::ScalingConfig;
use crate::error::ScaleError;
use crate::metrics::ScalingMetrics;
use crate::scaler::Inner;
use crate::state::{lock, FunctionState};

/// How a cold start ended, as every held call learns it.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// A replica is ready.
    Ready,
    /// The function does not exist (any more).
    NotFound,
    /// No replica was ready by the task's deadline, or every held call gave
    /// up.
    GaveUp,
    /// The provider refused the scale-up or the status.
    Failed(String),
}

/// Holds a call to `state`'s function until a replica is ready, starting
/// or joining the function's cold start; bounded by the hold timeout and
/// the number of calls held.
pub(crate) async fn hold(inner: &Arc<Inner>, state: &Arc<FunctionState>) -> Result<()> {
    let function = &state.function;
    let max_held = inner.config.max_held;
    let Some(held) = state.hold(max_held) else {
        return Err(ScaleError::TooManyHeld { function: function.clone(), held: max_held }.into());
    };
    let _gauge = HeldGauge::new(&inner.metrics, function);
    tracing::debug!(%function, held = held.held(), "holding a call until a replica is ready");
    let started = Instant::now();
    let deadline = started + inner.config.hold_timeout;
    loop {
        if state.available() > 0 {
            return Ok(());
        }
        let mut outcome = join(inner, state);
        let waited = tokio::time::timeout_at(deadline, outcome.wait_for(Option::is_some)).await;
        let result = match waited {
            Err(_) => None,
            Ok(Err(_)) => Some(Outcome::Failed("the scale-up task stopped unexpectedly".to_owned())),
            Ok(Ok(value)) => value.clone(),
        };
        match result {
            Some(Outcome::Ready) => return Ok(()),
            Some(Outcome::NotFound) => return Err(Error::function_not_found(&function.name, &function.namespace)),
            Some(Outcome::Failed(reason)) => {
                return Err(ScaleError::WakeFailed { function: function.clone(), reason }.into())
            }
            // Another attempt while this call may still wait.
            Some(Outcome::GaveUp) if Instant::now() < deadline => {}
            Some(Outcome::GaveUp) | None => break,
        }
    }
    let last = lock(&state.last_seen).clone();
    Err(ScaleError::StartTimeout { function: function.clone(), waited: started.elapsed(), last }.into())
}

/// The function's cold start in progress, or a new one.
fn join(inner: &Arc<Inner>, state: &Arc<FunctionState>) -> watch::Receiver<Option<Outcome>> {
    let mut slot = lock(&state.cold);
    if let Some(running) = slot.as_ref().filter(|rx| rx.borrow().is_none()) {
        return running.clone();
    }
    let (tx, rx) = watch::channel(None);
    *slot = Some(rx.clone());
    let (inner, state) = (inner.clone(), state.clone());
    tokio::spawn(async move {
        let outcome = wake(&inner, &state).await;
        let _ = tx.send(Some(outcome));
    });
    rx
}

/// Scales the function up if it is at zero, then polls its status with
/// backoff until a replica is ready, for at most the hold timeout.
async fn wake(inner: &Inner, state: &FunctionState) -> Outcome {
    let function = &state.function;
    let started = Instant::now();
    let deadline = started + inner.config.hold_timeout;

    let woke = {
        let Ok(_scaling) = tokio::time::timeout_at(deadline, state.scale_lock.lock()).await else {
            *lock(&state.last_seen) = "another scale of the function was still running".to_owned();
            return Outcome::GaveUp;
        };
        state.bump_epoch();
        let status = match inner.provider.status(function).await {
            Ok(status) => status,
            Err(Error::NotFound { .. }) => return Outcome::NotFound,
            Err(err) => return Outcome::Failed(err.message()),
        };
        *lock(&state.last_seen) = format!("replicas {}, available {}", status.replicas, status.available_replicas);
        let settings = crate::labels::ScaleSettings::lenient(status.labels.as_ref(), &inner.config);
        state.set_settings(settings);
        let ready = status.available_replicas.min(status.replicas);
        if ready > 0 {
            state.set_replicas(status.replicas);
            state.set_available(ready);
            inner.metrics.set_actual(function, ready);
            return Outcome::Ready;
        }
        if status.replicas == 0 {
            let replicas = settings.wake_replicas();
            tracing::info!(%function, replicas, "scaling from zero for a waiting call");
            inner.metrics.cold_start(function);
            match inner.provider.scale(function, replicas).await {
                Ok(()) => {}
                Err(Error::NotFound { .. }) => return Outcome::NotFound,
                Err(err) => return Outcome::Failed(err.message()),
            }
            state.set_replicas(replicas);
            lock(&state.decider).decider.floor(inner.time.now(), replicas);
            inner.metrics.set_desired(function, replicas);
            true
        } else {
            state.set_replicas(status.replicas);
            false
        }
    };

    loop {
        let pause = poll_pause(started.elapsed(), &inner.config);
        tokio::time::sleep_until((Instant::now() + pause).min(deadline)).await;
        match inner.provider.status(function).await {
            Ok(status) => {
                let ready = status.available_replicas.min(status.replicas);
                if ready > 0 {
                    state.bump_epoch();
                    state.set_available(ready);
                    inner.metrics.set_actual(function, ready);
                    let took = started.elapsed();
                    if woke {
                        inner.metrics.cold_start_took(function, took.as_secs_f64());
                    }
                    tracing::info!(%function, took_ms = took.as_secs_f64() * 1000.0, woke, "a replica is ready");
                    return Outcome::Ready;
                }
                *lock(&state.last_seen) =
                    format!("replicas {}, available {}", status.replicas, status.available_replicas);
            }
            Err(Error::NotFound { .. }) => return Outcome::NotFound,
            // The backend may be busy; keep polling until the deadline.
            Err(err) => *lock(&state.last_seen) = err.message(),
        }
        if Instant::now() >= deadline || state.view().held == 0 {
            let last = lock(&state.last_seen).clone();
            tracing::warn!(%function, %last, "no replica became ready while calls were held");
            return Outcome::GaveUp;
        }
    }
}

/// The pause before the next readiness poll of a cold start that has
/// waited `waited`: an eighth of it, from `poll_initial` up to `poll_max`,
/// so a replica is seen ready at most about 12.5% (or `poll_initial`) after
/// it is ([`faas_core::poll::pause_after`]). (Doubling from 10 ms polled at
/// 10, 30 and 70 ms: a replica ready at 11 ms was seen at 30.)
fn poll_pause(waited: Duration, config: &ScalingConfig) -> Duration {
    faas_core::poll::pause_after(waited, config.poll_initial, config.poll_max)
}

/// `gateway_held_requests` up while a call is held.
struct HeldGauge<'a> {
    metrics: &'a ScalingMetrics,
    function: &'a FunctionRef,
}

impl<'a> HeldGauge<'a> {
    fn new(metrics: &'a ScalingMetrics, function: &'a FunctionRef) -> Self {
        metrics.held_changed(function, 1);
        HeldGauge { metrics, function }
    }
}

impl Drop for HeldGauge<'_> {
    fn drop(&mut self) {
        self.metrics.held_changed(self.function, -1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// When polls that start at 0 and follow [`poll_pause`] first see a
    /// replica that is ready at `ready`; and how many polls that took.
    fn seen_at(ready: Duration, config: &ScalingConfig) -> (Duration, u32) {
        let (mut now, mut polls) = (Duration::ZERO, 0);
        while now < ready {
            now += poll_pause(now, config);
            polls += 1;
        }
        (now, polls)
    }

    #[test]
    fn a_ready_replica_is_seen_within_an_eighth_of_the_wait_or_the_first_pause() {
        let config = ScalingConfig::default();
        for ms in 1..=5000u64 {
            let ready = Duration::from_millis(ms);
            let late = seen_at(ready, &config).0 - ready;
            assert!(late <= config.poll_initial.max(ready / 8), "ready at {ready:?}, seen {late:?} late");
        }
        // Doubling from 10 ms saw a replica ready at 11 ms only at 30 ms.
        assert!(seen_at(Duration::from_millis(11), &config).0 <= Duration::from_millis(14));
        // A slow start (a container pulled for 30 s) costs about a hundred
        // status calls, then one each poll_max.
        let (_, polls) = seen_at(Duration::from_secs(30), &config);
        assert!(polls <= 120, "{polls} polls");
    }
}
