//! The faas-testkit conformance suite against the local provider, with the
//! kit's shell script run by the watchdog in streaming (fork) mode.

use std::sync::Arc;

use faas_testkit::function::ShellFunction;
use faas_testkit::Subject;
use provider_local::{LocalConfig, LocalProvider};

/// A fresh provider with its state beside the conformance script.
async fn subject() -> Subject {
    let function = ShellFunction::write().expect("the conformance script is written");
    let state = function.dir().join("state");
    let provider = LocalProvider::open(LocalConfig::new(state)).await.expect("the provider opens");
    function.subject(Arc::new(provider), ())
}

faas_testkit::conformance_tests!(async { subject().await });
