//! The scaling layer over the Kubernetes provider and the test API server:
//! a function scaled to zero is invoked through `faas_autoscale`, which
//! scales its Deployment up, waits for a pod that passes its readiness
//! probe, and forwards the held call. In both invoke modes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use faas_core::{Body, SharedProvider};
use http::{Request, StatusCode};
use provider_k8s::InvokeMode;

const SETTLE: Duration = Duration::from_secs(30);

async fn scaled_to_zero_then_woken_by_a_call(invoke: InvokeMode) {
    let server = common::server().await;
    let provider: SharedProvider = Arc::new(common::provider(&server, invoke).await);
    let (_dir, fprocess) = common::script();
    let deployment = common::deployment("nap", &fprocess);
    let function = deployment.function_ref();
    provider.deploy(deployment).await.expect("deploy");

    let request = Request::post("/cat").body(Body::from("ping from zero")).expect("a request");
    let cold = faas_autoscale::scale_from_zero(provider.clone(), &function, request, SETTLE)
        .await
        .unwrap_or_else(|e| panic!("scaled to zero, invoked, answered: {}", e.message()));
    assert_eq!(cold.status, StatusCode::OK, "{:?}", cold.body);
    assert_eq!(cold.body, "ping from zero");
    assert_eq!(cold.replicas, 1, "woken to its min of 1");
    let status = provider.status(&function).await.expect("status");
    assert!(status.available_replicas >= 1, "a ready pod serves the function: {status:?}");
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
