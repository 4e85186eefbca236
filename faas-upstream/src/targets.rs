//! Each function's instances: resolved by the provider, cached with one
//! refresh policy, taken in round-robin order.

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faas_core::{Body, FunctionRef, Result};
use http::{Request, Response};
use tokio::time::Instant;

use crate::client::{Attempt, Call, Upstream};
use crate::error::UpstreamError;

/// When a function's instances are looked up again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refresh {
    /// How long a lookup is reused.
    pub ttl: Duration,
    /// How long a call whose instances all refuse keeps looking them up
    /// again (pausing [`Refresh::pause`] between tries) before it fails
    /// with [`UpstreamError::Unreachable`]. Whatever this is, a refused
    /// call is tried once more on a fresh lookup.
    pub retry_for: Duration,
    /// The pause between fresh lookups after the first.
    pub pause: Duration,
}

impl Default for Refresh {
    /// Lookups reused for a second; one fresh lookup after a refusal.
    fn default() -> Self {
        Refresh { ttl: Duration::from_secs(1), retry_for: Duration::ZERO, pause: Duration::from_millis(100) }
    }
}

/// One lookup of a function's instances, and when it was made.
type Lookup<T> = (Instant, Arc<[T]>);

/// Each function's instances (`T`: an address that displays as
/// `host:port`) and the round-robin cursor over them, for one provider.
#[derive(Debug)]
pub struct Targets<T> {
    provider: &'static str,
    refresh: Refresh,
    cache: Mutex<HashMap<FunctionRef, Lookup<T>>>,
    next: AtomicUsize,
}

impl<T: Display + Send + Sync + 'static> Targets<T> {
    /// An empty set for `provider` (its name in errors) with `refresh` as
    /// its policy.
    pub fn new(provider: &'static str, refresh: Refresh) -> Self {
        Targets { provider, refresh, cache: Mutex::new(HashMap::new()), next: AtomicUsize::new(0) }
    }

    /// The policy in use.
    pub fn refresh(&self) -> Refresh {
        self.refresh
    }

    /// Drops what is known of `function`'s instances (it was updated,
    /// scaled or removed): the next call looks them up.
    pub fn forget(&self, function: &FunctionRef) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).remove(function);
    }

    /// The cached instances of `function`, if looked up within the TTL.
    fn cached(&self, function: &FunctionRef) -> Option<Arc<[T]>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let (at, targets) = cache.get(function)?;
        (at.elapsed() < self.refresh.ttl).then(|| targets.clone())
    }

    fn store(&self, function: &FunctionRef, targets: Vec<T>) -> Arc<[T]> {
        let targets: Arc<[T]> = targets.into();
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(function.clone(), (Instant::now(), targets.clone()));
        targets
    }

    /// Calls `function`: its instances from the cache or `resolve`, the
    /// call sent to the next one in round-robin order and moved on to the
    /// others while they refuse. When all refuse, the instances are looked
    /// up again as [`Refresh`] says. `timeout` bounds the wait for the
    /// response headers. Failures are [`UpstreamError::into_error`]'s.
    pub async fn call<F, Fut>(
        &self,
        upstream: &Upstream,
        function: &FunctionRef,
        request: Request<Body>,
        timeout: Option<Duration>,
        mut resolve: F,
    ) -> Result<Response<Body>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Vec<T>>>,
    {
        let into_error = |err: UpstreamError| err.into_error(self.provider);
        let deadline = Instant::now() + self.refresh.retry_for;
        let mut call = Call::new(function.to_string(), request);
        let mut fresh = false;
        loop {
            let targets = match self.cached(function).filter(|_| !fresh) {
                Some(targets) => targets,
                None => self.store(function, resolve().await?),
            };
            let start = self.next.fetch_add(1, Ordering::Relaxed);
            let reason = match upstream.send_any(&mut call, &targets, start, timeout).await.map_err(into_error)? {
                Attempt::Answered(response) => return Ok(response),
                Attempt::Refused(reason) => reason,
            };
            let now = Instant::now();
            if fresh && now >= deadline {
                return Err(into_error(UpstreamError::Unreachable { function: function.to_string(), reason }));
            }
            tracing::debug!(%function, %reason, "no instance reachable; looking them up again");
            if fresh {
                tokio::time::sleep(self.refresh.pause.min(deadline - now)).await;
            }
            fresh = true;
        }
    }
}
