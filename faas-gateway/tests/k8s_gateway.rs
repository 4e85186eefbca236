//! The gateway built with `--features k8s`, run as a process with
//! `--provider k8s` against `k8s-test-server` (a test API server, not a
//! real cluster), in both invoke modes: a function deployed, invoked and
//! deleted through the gateway's HTTP API.

#![cfg(feature = "k8s")]

mod common;
mod remote;

use k8s_test_server::{Options, TestServer};

/// A kubeconfig pointing at `server` (plain HTTP, no credentials), as the
/// test server's binary writes with `--kubeconfig`.
fn kubeconfig(server: &TestServer) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: k8s-test-server\n  cluster:\n    server: {url}\n\
         contexts:\n- name: k8s-test-server\n  context:\n    cluster: k8s-test-server\n    user: k8s-test-server\n    \
         namespace: default\ncurrent-context: k8s-test-server\nusers:\n- name: k8s-test-server\n  user: {{}}\n",
        url = server.url()
    )
}

async fn function_life_with(invoke: &str, name: &str) {
    let options = Options { namespaces: vec!["openfaas-fn".to_owned()], ..Options::default() };
    let server = TestServer::start(options).await.expect("the test API server starts");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kubeconfig");
    std::fs::write(&config, kubeconfig(&server)).unwrap();

    let state = dir.path().join("state");
    let mut cmd = common::command(&state);
    cmd.args(["--provider", "k8s"]).env("KUBECONFIG", &config).env("FAAS_K8S_INVOKE", invoke);
    // Never the cluster of a pod this test might run in.
    for var in ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "FAAS_K8S_NAMESPACE", "FAAS_K8S_CLUSTER_WIDE"] {
        cmd.env_remove(var);
    }
    let gateway = common::Gateway::spawn(cmd, &state).await;
    remote::function_life(&gateway, "kubernetes", name).await;
    drop(gateway);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_lives_and_dies_through_the_k8s_gateway_via_the_service_proxy() {
    function_life_with("service-proxy", "rev-proxy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_lives_and_dies_through_the_k8s_gateway_via_endpoints() {
    function_life_with("endpoints", "rev-endpoints").await;
}
