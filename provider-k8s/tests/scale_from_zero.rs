//! The scaling layer over the Kubernetes provider and the test API server:
//! a function scaled to zero is invoked through `faas_autoscale::Scaler`,
//! which scales its Deployment up, waits for a pod that passes its
//! readiness probe, and forwards the held call. In both invoke modes.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use faas_autoscale::{Scaler, ScalingConfig, SCALE_ZERO};
use faas_core::{Body, Provider, SharedProvider};
use faas_testkit::wait_for;
use http::{Request, StatusCode};
use provider_k8s::InvokeMode;

const SETTLE: Duration = Duration::from_secs(30);

async fn scaled_to_zero_then_woken_by_a_call(invoke: InvokeMode) {
    let server = common::server().await;
    let provider: SharedProvider = Arc::new(common::provider(&server, invoke).await);
    let scaler = Scaler::new(provider.clone(), ScalingConfig::default());
    let (_dir, fprocess) = common::script();
    let mut deployment = common::deployment("nap", &fprocess);
    deployment.labels = Some(BTreeMap::from([(SCALE_ZERO.to_owned(), "true".to_owned())]));
    scaler.deploy(deployment.clone()).await.expect("deploy");
    let function = deployment.function_ref();
    let replicas = |want: u64| {
        let (provider, function) = (provider.clone(), function.clone());
        async move {
            let status = provider.status(&function).await.map_err(|e| e.message())?;
            match (status.replicas, status.available_replicas) {
                (r, a) if r == want && a == want => Ok(()),
                (r, a) => Err(format!("replicas {r}, available {a}")),
            }
        }
    };
    wait_for(SETTLE, "nap to be available", || replicas(1)).await;

    scaler.scale(&function, 0).await.expect("scale to zero");
    wait_for(SETTLE, "nap to have no pod left", || replicas(0)).await;

    let request = Request::post("/cat").body(Body::from("ping from zero")).expect("a request");
    let response = tokio::time::timeout(SETTLE, scaler.invoke(&function, request))
        .await
        .expect("the held call is answered in time")
        .unwrap_or_else(|e| panic!("the call that wakes nap: {}", e.message()));
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect_limited(1 << 20).await.expect("the body");
    assert_eq!(body, "ping from zero");
    let status = provider.status(&function).await.expect("status");
    assert_eq!(status.replicas, 1, "woken to its min of 1");
    assert!(status.available_replicas >= 1, "{status:?}");
    assert_eq!(scaler.metrics().cold_starts(&function), 1, "one scale-up from zero");
    drop(provider);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_scaled_to_zero_is_woken_by_a_call_to_its_pods() {
    scaled_to_zero_then_woken_by_a_call(InvokeMode::Endpoints).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_scaled_to_zero_is_woken_by_a_call_through_the_service_proxy() {
    scaled_to_zero_then_woken_by_a_call(InvokeMode::ServiceProxy).await;
}
