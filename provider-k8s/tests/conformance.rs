//! The faas-testkit conformance suite against the Kubernetes provider and
//! the test API server: every function a Deployment whose pods are real
//! `fwatchdog` processes running the kit's shell script. The suite runs
//! twice: calls straight to the pod addresses (`endpoints`, the in-cluster
//! invoke mode) and through the API server's service proxy
//! (`service_proxy`, the out-of-cluster mode).

mod common;

use std::sync::Arc;

use faas_testkit::Subject;
use provider_k8s::InvokeMode;

/// The server lives as long as the subject: the closure owns it.
async fn subject(invoke: InvokeMode) -> Subject {
    let server = Arc::new(common::server().await);
    let provider = common::provider(&server, invoke).await;
    let (dir, fprocess) = common::script();
    Subject::new(Arc::new(provider), move |name, namespace| {
        let _alive = (&server, &dir);
        let mut deployment = common::deployment(name, &fprocess);
        deployment.namespace = namespace.to_owned();
        deployment
    })
}

faas_testkit::conformance_tests!(mod endpoints, async { subject(InvokeMode::Endpoints).await });
faas_testkit::conformance_tests!(mod service_proxy, async { subject(InvokeMode::ServiceProxy).await });
