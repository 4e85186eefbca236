//! A resizable limit on calls running at once (fork modes: one process
//! per instance).

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::WatchdogError;

#[derive(Debug)]
struct State {
    limit: usize,
    running: usize,
}

/// Lets at most `limit` calls through; the others wait for a place.
#[derive(Debug)]
pub(crate) struct Gate {
    state: Mutex<State>,
    changed: Notify,
}

/// A place taken in a [`Gate`], given back on drop.
#[derive(Debug)]
pub(crate) struct Place(Arc<Gate>);

impl Drop for Place {
    fn drop(&mut self) {
        if let Ok(mut state) = self.0.state.lock() {
            state.running = state.running.saturating_sub(1);
        }
        self.0.changed.notify_waiters();
    }
}

impl Gate {
    pub(crate) fn new(limit: usize) -> Gate {
        Gate { state: Mutex::new(State { limit, running: 0 }), changed: Notify::new() }
    }

    pub(crate) fn limit(&self) -> usize {
        self.state.lock().map(|s| s.limit).unwrap_or(0)
    }

    /// Changes the limit; calls running beyond a lowered limit finish.
    pub(crate) fn set_limit(&self, limit: usize) {
        if let Ok(mut state) = self.state.lock() {
            state.limit = limit;
        }
        self.changed.notify_waiters();
    }

    /// Takes a place, waiting until `wait_until` at most. Scaled to zero,
    /// it refuses at once.
    pub(crate) async fn acquire(self: &Arc<Self>, wait_until: Instant) -> Result<Place, WatchdogError> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let limit = {
                let mut state =
                    self.state.lock().map_err(|_| WatchdogError::unavailable("the instance gate is poisoned"))?;
                if state.limit == 0 {
                    return Err(WatchdogError::unavailable("the function is scaled to zero (0 instances)"));
                }
                if state.running < state.limit {
                    state.running += 1;
                    return Ok(Place(self.clone()));
                }
                state.limit
            };
            if tokio::time::timeout_at(wait_until, notified).await.is_err() {
                return Err(WatchdogError::unavailable(format!(
                    "all {limit} instances stayed busy until the ready timeout passed"
                )));
            }
        }
    }
}

/// Waits until `count` is zero, woken by `zeroed` (which whoever brings
/// the count to zero notifies). Registers before each check, so a
/// notification between the check and the wait is not lost.
pub(crate) async fn until_zero(count: &std::sync::atomic::AtomicUsize, zeroed: &tokio::sync::Notify) {
    loop {
        let notified = zeroed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if count.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            return;
        }
        notified.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn waits_for_a_place_and_times_out() {
        let gate = Arc::new(Gate::new(1));
        let soon = || Instant::now() + Duration::from_millis(50);
        let first = gate.acquire(soon()).await.unwrap();
        assert!(gate.acquire(soon()).await.is_err());
        let waiter = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.acquire(Instant::now() + Duration::from_secs(10)).await.map(|_| ()) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap().unwrap();
    }

    #[tokio::test]
    async fn raising_the_limit_lets_waiters_in_and_zero_refuses() {
        let gate = Arc::new(Gate::new(1));
        let _first = gate.acquire(Instant::now()).await.unwrap();
        let waiter = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.acquire(Instant::now() + Duration::from_secs(10)).await.map(|_| ()) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        gate.set_limit(2);
        tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap().unwrap();
        gate.set_limit(0);
        let err = gate.acquire(Instant::now() + Duration::from_secs(10)).await.unwrap_err();
        assert!(err.to_string().contains("scaled to zero"), "{err}");
    }
}
