//! The faas-testkit conformance suite against the Cattle provider and the
//! test Cattle server (with Rancher 1.6's secrets), every function a
//! service whose instances are real watchdogs running the kit's script.

mod common;

use std::sync::Arc;

use cattle_test_server::{Options, TestServer};
use faas_testkit::Subject;
use provider_cattle::CattleProvider;

/// The server lives as long as the subject: the closure owns it.
async fn subject() -> Subject {
    let server = Arc::new(TestServer::start(Options::default()).await.expect("the test server starts"));
    let provider = CattleProvider::connect(common::config(&server)).await.expect("the provider connects");
    let (dir, fprocess) = common::script();
    Subject::new(Arc::new(provider), move |name, namespace| {
        let _alive = (&server, &dir);
        let mut deployment = common::deployment(name, &fprocess);
        deployment.namespace = namespace.to_owned();
        deployment
    })
}

faas_testkit::conformance_tests!(async { subject().await });
