//! Shared helpers: a real local provider in a temporary state dir, a
//! wrapper counting the scale calls that reach it, and call helpers.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use faas_autoscale::{Clock, ManualClock, Scaler, ScalingConfig};
use faas_core::{
    Body, FunctionDeployment, FunctionRef, FunctionStatus, Layer, Provider, Result, SharedProvider, DEFAULT_NAMESPACE,
};
use http::{Request, StatusCode};
use provider_local::{LocalConfig, LocalProvider};
use tempfile::TempDir;
use tokio::sync::watch;

/// Bound on every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(30);

/// Delegates everything to `inner`, recording every `scale` call; while
/// the gate is shut, scale calls are recorded then wait for it to open.
pub struct Counting {
    pub inner: SharedProvider,
    pub scales: Mutex<Vec<(FunctionRef, u64)>>,
    gate: watch::Sender<bool>,
}

impl Counting {
    pub fn new(inner: SharedProvider) -> Counting {
        Counting { inner, scales: Mutex::new(Vec::new()), gate: watch::Sender::new(true) }
    }

    /// The scale calls so far, then forgets them.
    pub fn take_scales(&self) -> Vec<(FunctionRef, u64)> {
        std::mem::take(&mut *self.scales.lock().unwrap())
    }

    /// The scale calls so far.
    pub fn scales(&self) -> Vec<(FunctionRef, u64)> {
        self.scales.lock().unwrap().clone()
    }

    /// From now on scale calls wait (after being recorded) until
    /// [`Counting::open_scales`].
    pub fn shut_scales(&self) {
        self.gate.send_replace(false);
    }

    /// Lets waiting and future scale calls through.
    pub fn open_scales(&self) {
        self.gate.send_replace(true);
    }
}

#[async_trait]
impl Layer for Counting {
    fn inner(&self) -> &dyn Provider {
        &*self.inner
    }

    async fn scale(&self, function: &FunctionRef, replicas: u64) -> Result<()> {
        self.scales.lock().unwrap().push((function.clone(), replicas));
        let mut gate = self.gate.subscribe();
        gate.wait_for(|open| *open).await.expect("the gate's sender lives in self");
        self.inner.scale(function, replicas).await
    }
}

/// A local provider in a temporary state dir, counted, wrapped in a
/// scaler deciding by a manual clock.
pub struct Fixture {
    _dir: TempDir,
    pub local: Arc<LocalProvider>,
    pub counting: Arc<Counting>,
    pub scaler: Scaler,
    pub clock: ManualClock,
}

impl Fixture {
    pub async fn new(config: ScalingConfig) -> Fixture {
        let dir = tempfile::tempdir().expect("a temporary dir");
        let local = Arc::new(
            LocalProvider::open(LocalConfig::new(dir.path().join("state"))).await.expect("the provider opens"),
        );
        let counting = Arc::new(Counting::new(local.clone()));
        let clock = ManualClock::new();
        let scaler = Scaler::with_clock(counting.clone(), config, Arc::new(clock.clone()) as Arc<dyn Clock>);
        Fixture { _dir: dir, local, counting, scaler, clock }
    }

    /// Stops the functions' processes.
    pub async fn close(self) {
        self.local.shutdown(Duration::from_secs(2)).await;
    }

    /// The local provider's own status of `name`.
    pub async fn status(&self, name: &str) -> FunctionStatus {
        self.local.status(&function(name)).await.expect("the function exists")
    }

    /// Waits until `check` holds of the scaler's view of `name`.
    pub async fn wait_view(&self, name: &str, what: &str, check: impl Fn(&faas_autoscale::FunctionView) -> bool) {
        let f = function(name);
        let waited = tokio::time::timeout(WAIT, async {
            loop {
                if self.scaler.function(&f).as_ref().is_some_and(&check) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "{name}: {what} never happened; last view {:?}", self.scaler.function(&f));
    }
}

/// `name` in the default namespace.
pub fn function(name: &str) -> FunctionRef {
    FunctionRef::new(name, DEFAULT_NAMESPACE)
}

/// `cat` in streaming mode, with `labels` and extra env vars.
pub fn cat(name: &str, labels: &[(&str, &str)], vars: &[(&str, &str)]) -> FunctionDeployment {
    let mut env_vars: BTreeMap<String, String> = BTreeMap::from([("mode".to_owned(), "streaming".to_owned())]);
    env_vars.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    FunctionDeployment {
        service: name.to_owned(),
        image: "cat".to_owned(),
        env_process: "cat".to_owned(),
        env_vars,
        labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        ..FunctionDeployment::default()
    }
}

/// POSTs `body` to `provider`'s `name` and reads the whole answer.
pub async fn post(provider: &dyn Provider, name: &str, body: impl Into<Body>) -> Result<(StatusCode, Bytes)> {
    let request = Request::builder().method("POST").uri("/").body(body.into()).expect("a request");
    let response = provider.invoke(&function(name), request).await?;
    let status = response.status();
    let bytes = response.into_body().collect_limited(1 << 20).await?;
    Ok((status, bytes))
}

/// Fails with `what` if `future` takes longer than [`WAIT`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future).await.unwrap_or_else(|_| panic!("{what} took longer than {WAIT:?}"))
}
