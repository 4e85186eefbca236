//! What the tests share: a test API server with the `openfaas-fn`
//! namespace, a kube client for it and a provider configured for quick
//! convergence.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use faas_core::{FunctionDeployment, DEFAULT_NAMESPACE};
use k8s_test_server::{Options, TestServer};
use provider_k8s::{InvokeMode, K8sConfig, K8sProvider, SCALE_MIN_LABEL};

/// A test API server whose `openfaas-fn` namespace exists.
pub async fn server() -> TestServer {
    let options = Options { namespaces: vec![DEFAULT_NAMESPACE.to_owned()], ..Options::default() };
    TestServer::start(options).await.expect("the test API server starts")
}

/// A kube client for `server`, as a kubeconfig pointing at it would give.
pub fn client(server: &TestServer) -> kube::Client {
    let url = server.url().parse().expect("the server URL is a URI");
    kube::Client::try_from(kube::Config::new(url)).expect("a client for the test server")
}

/// The provider's configuration for the tests: namespaces managed, short
/// bounds.
pub fn config(invoke: InvokeMode) -> K8sConfig {
    K8sConfig {
        invoke,
        manage_namespaces: true,
        ready_timeout: Duration::from_secs(20),
        api_timeout: Duration::from_secs(5),
        sync_timeout: Duration::from_secs(20),
        termination_grace_period: Duration::from_secs(5),
        call_timeout: Duration::from_secs(30),
        ..K8sConfig::default()
    }
}

/// A provider connected to `server`.
pub async fn provider(server: &TestServer, invoke: InvokeMode) -> K8sProvider {
    K8sProvider::new(client(server), config(invoke)).await.expect("the provider starts")
}

/// A deployment that starts no pod (`com.openfaas.scale.min: 0`).
pub fn idle(name: &str) -> FunctionDeployment {
    FunctionDeployment {
        service: name.to_owned(),
        image: "faas-rs/idle:latest".to_owned(),
        env_process: "cat".to_owned(),
        labels: Some(BTreeMap::from([(SCALE_MIN_LABEL.to_owned(), "0".to_owned())])),
        ..FunctionDeployment::default()
    }
}
