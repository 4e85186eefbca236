//! The faas-testkit conformance suite against the Cattle provider and the
//! test Cattle server (with Rancher 1.6's secrets), every function a
//! service whose instances are real watchdogs running the kit's script.

mod common;

use std::sync::Arc;

use cattle_test_server::Options;
use faas_testkit::function::ShellFunction;
use faas_testkit::Subject;

/// The server lives as long as the subject.
async fn subject() -> Subject {
    let (server, provider) = common::start(Options::default()).await;
    ShellFunction::write().expect("the conformance script is written").subject(Arc::new(provider), server)
}

faas_testkit::conformance_tests!(async { subject().await });
