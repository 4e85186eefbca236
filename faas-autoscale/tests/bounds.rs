//! The bounds on held calls, deterministically: a stub provider whose
//! function starts at zero replicas and never gets a ready one, and tokio's
//! paused clock, so the 30s hold timeout passes at once and exactly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use faas_autoscale::{Scaler, ScalingConfig};
use faas_core::{
    Body, Capabilities, Error, FunctionDeployment, FunctionNamespace, FunctionRef, FunctionStatus, LogRequest,
    LogStream, Provider, ProviderInfo, Result, Secret, DEFAULT_NAMESPACE,
};
use http::{Request, Response, StatusCode};
use tokio::time::Instant;

/// One function, `nap`, at zero replicas until scaled; however many
/// replicas it is given, none is ever ready. Records every scale.
#[derive(Default)]
struct NeverReady {
    replicas: AtomicU64,
    scales: Mutex<Vec<(FunctionRef, u64)>>,
}

impl NeverReady {
    fn nope<T>(&self, what: &str) -> Result<T> {
        Err(Error::unsupported("never-ready", what))
    }
}

#[async_trait]
impl Provider for NeverReady {
    async fn info(&self) -> Result<ProviderInfo> {
        self.nope("info")
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    fn default_namespace(&self) -> &str {
        DEFAULT_NAMESPACE
    }

    async fn list(&self, namespace: &str) -> Result<Vec<FunctionStatus>> {
        let function = FunctionRef::new("nap", namespace);
        Ok(vec![self.status(&function).await?])
    }

    async fn status(&self, function: &FunctionRef) -> Result<FunctionStatus> {
        if function.name != "nap" || function.namespace != DEFAULT_NAMESPACE {
            return Err(Error::function_not_found(&function.name, &function.namespace));
        }
        Ok(FunctionStatus {
            name: "nap".to_owned(),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            image: "nap".to_owned(),
            replicas: self.replicas.load(Ordering::SeqCst),
            available_replicas: 0,
            ..FunctionStatus::default()
        })
    }

    async fn deploy(&self, _deployment: FunctionDeployment) -> Result<()> {
        self.nope("deploy")
    }

    async fn update(&self, _deployment: FunctionDeployment) -> Result<()> {
        self.nope("update")
    }

    async fn delete(&self, _function: &FunctionRef) -> Result<()> {
        self.nope("delete")
    }

    async fn scale(&self, function: &FunctionRef, replicas: u64) -> Result<()> {
        self.scales.lock().unwrap().push((function.clone(), replicas));
        self.replicas.store(replicas, Ordering::SeqCst);
        Ok(())
    }

    async fn invoke(&self, function: &FunctionRef, _request: Request<Body>) -> Result<Response<Body>> {
        panic!("{function} has no ready replica: the layer must not forward a call to it");
    }

    async fn list_secrets(&self, _namespace: &str) -> Result<Vec<Secret>> {
        self.nope("secrets")
    }

    async fn create_secret(&self, _secret: Secret) -> Result<()> {
        self.nope("secrets")
    }

    async fn update_secret(&self, _secret: Secret) -> Result<()> {
        self.nope("secrets")
    }

    async fn delete_secret(&self, _namespace: &str, _name: &str) -> Result<()> {
        self.nope("secrets")
    }

    async fn logs(&self, _request: LogRequest) -> Result<LogStream> {
        self.nope("logs")
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        self.nope("namespaces")
    }

    async fn get_namespace(&self, _name: &str) -> Result<FunctionNamespace> {
        self.nope("namespaces")
    }

    async fn create_namespace(&self, _namespace: FunctionNamespace) -> Result<()> {
        self.nope("namespaces")
    }

    async fn update_namespace(&self, _namespace: FunctionNamespace) -> Result<()> {
        self.nope("namespaces")
    }

    async fn delete_namespace(&self, _name: &str) -> Result<()> {
        self.nope("namespaces")
    }

    async fn cpu_usage(&self, _function: &FunctionRef) -> Result<Duration> {
        self.nope("CPU measurement")
    }
}

async fn call(scaler: &Scaler) -> Result<StatusCode> {
    let request = Request::builder().method("POST").uri("/").body(Body::from("x")).expect("a request");
    scaler.invoke(&FunctionRef::new("nap", DEFAULT_NAMESPACE), request).await.map(|r| r.status())
}

/// Runs the other tasks until `check` holds, without letting the paused
/// clock move (the clock only jumps once every task is idle).
async fn until(what: &str, check: impl Fn() -> bool) {
    for _ in 0..100_000 {
        if check() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("{what} never happened");
}

#[tokio::test(start_paused = true)]
async fn a_function_at_zero_that_never_gets_ready_is_scaled_once_then_504_and_503_at_the_bounds() {
    let provider = Arc::new(NeverReady::default());
    let config = ScalingConfig::default();
    let (hold_timeout, max_held) = (config.hold_timeout, config.max_held);
    assert_eq!((hold_timeout, max_held), (Duration::from_secs(30), 1000), "the documented defaults");
    let scaler = Scaler::new(provider.clone(), config);
    let nap = FunctionRef::new("nap", DEFAULT_NAMESPACE);
    let started = Instant::now();

    let held: Vec<_> = (0..max_held)
        .map(|_| {
            let scaler = scaler.clone();
            tokio::spawn(async move { (call(&scaler).await, Instant::now()) })
        })
        .collect();
    until("every call held", || scaler.function(&nap).is_some_and(|v| v.held == max_held as u64)).await;
    assert_eq!(Instant::now(), started, "the clock has not moved yet");

    // The bound on held calls: the next call is refused at once.
    match call(&scaler).await {
        Err(err @ Error::Unavailable { .. }) => {
            assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(
                err.message(),
                "autoscale backend unavailable: function nap.openfaas-fn is starting and 1000 calls are already \
                 waiting for it; retry shortly"
            );
        }
        other => panic!("a call past max_held: expected 503, got {other:?}"),
    }
    assert_eq!(Instant::now(), started, "refused without waiting");

    // The bound on time: every held call gets 504 at the hold timeout.
    for call in held {
        let (answer, at) = call.await.expect("the call's task");
        match answer {
            Err(err @ Error::Timeout { .. }) => {
                assert_eq!(err.status(), StatusCode::GATEWAY_TIMEOUT);
                assert_eq!(
                    err.message(),
                    "function nap.openfaas-fn is starting: no replica became ready within the hold timeout \
                     (replicas 1, available 0) timed out after 30.000s"
                );
            }
            other => panic!("a call held past hold_timeout: expected 504, got {other:?}"),
        }
        assert_eq!(at - started, hold_timeout, "answered at the hold timeout, not before or after");
    }
    assert_eq!(*provider.scales.lock().unwrap(), [(nap.clone(), 1)], "exactly one scale-up, to min 1");
    assert_eq!(scaler.metrics().cold_starts(&nap), 1);
    let view = scaler.function(&nap).expect("the layer knows nap");
    assert_eq!((view.replicas, view.available, view.held, view.inflight), (1, 0, 0, 0), "{view:?}");
}
