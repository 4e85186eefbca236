//! The scaling layer over the Kubernetes provider and the test API server:
//! a function scaled to zero is invoked through `faas_autoscale`, which
//! scales its Deployment up, waits for a pod that passes its readiness
//! probe, and forwards the held call. In both invoke modes.

mod common;

use std::sync::Arc;

use faas_test_support::scale_from_zero::a_call_wakes_the_function;
use provider_k8s::InvokeMode;

async fn scaled_to_zero_then_woken_by_a_call(invoke: InvokeMode) {
    let server = common::server().await;
    a_call_wakes_the_function(Arc::new(common::provider(&server, invoke).await), "a ready pod").await;
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
