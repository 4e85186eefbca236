//! The faas-testkit conformance suite against the local provider wrapped
//! in the scaling layer, with its autoscaler running: the layer must not
//! change any promise of the contract.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use faas_autoscale::{Scaler, ScalingConfig};
use faas_core::FunctionDeployment;
use faas_testkit::Subject;
use provider_local::{LocalConfig, LocalProvider};

/// A fresh local provider in a temporary state dir, wrapped in a scaler
/// whose autoscaler ticks every 100ms. The closure owns the dir and the
/// autoscaler task, so both live as long as the subject.
async fn subject() -> Subject {
    let dir = Arc::new(tempfile::tempdir().expect("a temporary dir"));
    let script = faas_testkit::function::write_shell_script(dir.path()).expect("the conformance script is written");
    let local = LocalProvider::open(LocalConfig::new(dir.path().join("state"))).await.expect("the provider opens");
    let mut config = ScalingConfig::default();
    config.tick = Duration::from_millis(100);
    let scaler = Scaler::new(Arc::new(local), config);
    let autoscaler = Arc::new(scaler.spawn());
    let env_process = format!("sh {}", script.display());
    Subject::new(Arc::new(scaler), move |name, namespace| {
        let _kept_alive_with_the_subject = (&dir, &autoscaler);
        FunctionDeployment {
            service: name.to_owned(),
            namespace: namespace.to_owned(),
            image: "conformance-sh".to_owned(),
            env_process: env_process.clone(),
            env_vars: BTreeMap::from([("mode".to_owned(), "streaming".to_owned())]),
            ..FunctionDeployment::default()
        }
    })
}

faas_testkit::conformance_tests!(async { subject().await });
