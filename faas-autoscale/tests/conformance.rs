//! The faas-testkit conformance suite against the local provider wrapped
//! in the scaling layer, with its autoscaler running: the layer must not
//! change any promise of the contract.

use std::sync::Arc;
use std::time::Duration;

use faas_autoscale::{Scaler, ScalingConfig};
use faas_testkit::function::ShellFunction;
use faas_testkit::Subject;
use provider_local::{LocalConfig, LocalProvider};

/// A fresh local provider with its state beside the conformance script,
/// wrapped in a scaler whose autoscaler ticks every 100ms and lives as long
/// as the subject.
async fn subject() -> Subject {
    let function = ShellFunction::write().expect("the conformance script is written");
    let state = function.dir().join("state");
    let local = LocalProvider::open(LocalConfig::new(state)).await.expect("the provider opens");
    let mut config = ScalingConfig::default();
    config.tick = Duration::from_millis(100);
    let scaler = Scaler::new(Arc::new(local), config);
    let autoscaler = scaler.spawn();
    function.subject(Arc::new(scaler), autoscaler)
}

faas_testkit::conformance_tests!(async { subject().await });
