//! The faas-testkit conformance suite against the local provider, with the
//! kit's shell script run by the watchdog in streaming (fork) mode.

use std::collections::BTreeMap;
use std::sync::Arc;

use faas_core::FunctionDeployment;
use faas_testkit::Subject;
use provider_local::{LocalConfig, LocalProvider};

/// A fresh provider on a temporary state dir, deploying the conformance
/// script as `sh <path>`. The closure owns the temporary dir, so it lives
/// as long as the subject.
async fn subject() -> Subject {
    let dir = Arc::new(tempfile::tempdir().expect("a temporary dir"));
    let script = faas_testkit::function::write_shell_script(dir.path()).expect("the conformance script is written");
    let provider = LocalProvider::open(LocalConfig::new(dir.path().join("state"))).await.expect("the provider opens");
    let env_process = format!("sh {}", script.display());
    Subject::new(Arc::new(provider), move |name, namespace| {
        let _state_dir_lives_as_long_as_the_subject = &dir;
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
