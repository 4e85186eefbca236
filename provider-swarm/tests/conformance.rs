//! The faas-testkit conformance suite against the real Docker engine of
//! this machine in swarm mode, with the test function image
//! (`faas-rs/test-fn:ci`: fwatchdog running faas-testkit's script under
//! busybox sh). Skipped with instructions without a usable swarm, failed
//! on CI instead.

mod common;

use std::sync::Arc;

use faas_core::FunctionDeployment;
use faas_testkit::Subject;

/// The subject: a provider reaching functions through their published
/// ports, deploying the conformance function image.
async fn subject(test: &str) -> Option<Subject> {
    let docker = common::engine(test, &[common::FUNCTION_IMAGE]).await?;
    let provider = common::provider(docker).await;
    let subject = Subject::new(Arc::new(provider), |name, namespace| FunctionDeployment {
        service: name.to_owned(),
        namespace: namespace.to_owned(),
        image: common::FUNCTION_IMAGE.to_owned(),
        env_process: "sh /conformance.sh".to_owned(),
        ..FunctionDeployment::default()
    });
    Some(subject.with_settle(common::SETTLE))
}

macro_rules! scenarios {
    ($($scenario:ident)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                if let Some(subject) = subject(concat!("conformance::", stringify!($scenario))).await {
                    faas_testkit::scenarios::$scenario(&subject).await;
                }
            }
        )*
    };
}

scenarios!(
    lifecycle duplicate_deploy invalid_names unknown_function secrets logs
    large_body concurrent_invocations capabilities namespaces function_label status_shape
    initial_replicas
);

#[test]
fn every_kit_scenario_is_run() {
    let here = include_str!("conformance.rs");
    for scenario in faas_testkit::scenarios::ALL {
        assert!(
            here.contains(&format!(" {scenario} ")) || here.contains(&format!(" {scenario}\n")),
            "{scenario} is not run"
        );
    }
}
