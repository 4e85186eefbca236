//! The scaling layer over the Cattle provider and the test Cattle server: a
//! function scaled to zero is invoked through `faas_autoscale`, which scales
//! its service up, waits for an instance that passes its health check, and
//! forwards the held call.

mod common;

use std::sync::Arc;
use std::time::Duration;

use cattle_test_server::Options;
use faas_core::{Body, SharedProvider};
use http::{Request, StatusCode};

const SETTLE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_scaled_to_zero_is_woken_by_a_call_through_the_scaler() {
    let (_server, provider) = common::start(Options::default()).await;
    let provider: SharedProvider = Arc::new(provider);
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
    assert!(status.available_replicas >= 1, "a healthy instance serves the function: {status:?}");
}
