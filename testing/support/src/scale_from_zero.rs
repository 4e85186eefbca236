//! The scaling layer over a real provider: a function scaled to zero is
//! invoked through [`faas_autoscale::scale_from_zero`], which scales it up,
//! waits for a replica that is ready and forwards the held call.

use std::time::Duration;

use faas_core::{Body, SharedProvider};
use faas_testkit::function::ShellFunction;
use http::{Request, StatusCode};

/// How long the function may take to wake.
const SETTLE: Duration = Duration::from_secs(30);

/// Deploys the conformance script as `nap` on `provider` with no replica
/// running yet, calls it through the scaling layer and checks the call is
/// answered by the replica it woke (`ready` says what a ready replica is
/// on this provider, for the failure message).
pub async fn a_call_wakes_the_function(provider: SharedProvider, ready: &str) {
    let script = ShellFunction::write().expect("the conformance script is written");
    let deployment = script.deployment("nap");
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
    assert!(status.available_replicas >= 1, "{ready} serves the function: {status:?}");
}
