//! The faas-testkit conformance suite against the Kubernetes provider and
//! the test API server: every function a Deployment whose pods are real
//! `fwatchdog` processes running the kit's shell script. The suite runs
//! twice: calls straight to the pod addresses (`endpoints`, the in-cluster
//! invoke mode) and through the API server's service proxy
//! (`service_proxy`, the out-of-cluster mode).

mod common;

use std::sync::Arc;

use faas_testkit::function::ShellFunction;
use faas_testkit::Subject;
use provider_k8s::InvokeMode;

/// The server lives as long as the subject.
async fn subject(invoke: InvokeMode) -> Subject {
    let server = common::server().await;
    let provider = common::provider(&server, invoke).await;
    ShellFunction::write().expect("the conformance script is written").subject(Arc::new(provider), server)
}

faas_testkit::conformance_tests!(mod endpoints, async { subject(InvokeMode::Endpoints).await });
faas_testkit::conformance_tests!(mod service_proxy, async { subject(InvokeMode::ServiceProxy).await });
