//! The gateway built with `--features k8s`, run as a process with
//! `--provider k8s` against `k8s-test-server` (a test API server, not a
//! real cluster), in both invoke modes: a function deployed, invoked and
//! deleted through the gateway's HTTP API.

#![cfg(feature = "k8s")]

mod common;
mod remote;

use http::StatusCode;
use k8s_test_server::{Options, TestServer};
use serde_json::json;

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

/// The test API server with `namespaces`, and a gateway on it with `env`
/// set (and no ambient cluster or namespace settings).
async fn gateway_on(namespaces: &[&str], env: &[(&str, &str)]) -> (TestServer, common::Gateway, tempfile::TempDir) {
    let options = Options { namespaces: namespaces.iter().map(|n| n.to_string()).collect(), ..Options::default() };
    let server = TestServer::start(options).await.expect("the test API server starts");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kubeconfig");
    std::fs::write(&config, kubeconfig(&server)).unwrap();

    let state = dir.path().join("state");
    let mut cmd = common::command(&state);
    cmd.args(["--provider", "k8s"]).env("KUBECONFIG", &config);
    // Never the cluster of a pod this test might run in.
    for var in ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "FAAS_K8S_NAMESPACE", "FAAS_K8S_CLUSTER_WIDE"] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let gateway = common::Gateway::spawn(cmd, &state).await;
    (server, gateway, dir)
}

async fn function_life_with(invoke: &str, name: &str) {
    let (server, gateway, _dir) = gateway_on(&["openfaas-fn"], &[("FAAS_K8S_INVOKE", invoke)]).await;
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

/// With `FAAS_K8S_NAMESPACE=fns` and cluster-wide mode off, requests that
/// name no namespace are about `fns`: the deploy lands there and the call
/// reaches the function there (`openfaas-fn` does not even exist).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_a_namespace_reach_the_configured_namespace() {
    let env = [("FAAS_K8S_INVOKE", "service-proxy"), ("FAAS_K8S_NAMESPACE", "fns"), ("FAAS_K8S_CLUSTER_WIDE", "false")];
    let (server, gateway, _dir) = gateway_on(&["fns"], &env).await;
    let (status, body) = gateway.get("/system/info").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["provider"]["provider"], "k8s", "the name errors use too: {body}");

    gateway.deploy(json!({"service": "rev-fns", "image": "faas-rs/rev:latest", "envProcess": "rev"})).await;
    let status = gateway.wait_available("rev-fns", 1).await;
    assert_eq!(status["namespace"], "fns", "{status}");
    let (status, body) = gateway.call("POST", "/function/rev-fns", "hello fns\n").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "snf olleh\n"));
    let in_fns = |resource: &str| {
        server.accesses().iter().any(|a| a.resource == resource && a.namespace.as_deref() == Some("fns"))
    };
    assert!(in_fns("deployments") && in_fns("services/proxy"), "{:?}", server.accesses());

    let (status, body) = gateway.call("POST", "/function/rev-fns.openfaas-fn", "x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "another namespace is still refused: {body}");
    drop(gateway);
    server.shutdown().await;
}

/// Issue 13: `--scale-type cpu` on a provider that cannot measure CPU
/// (k8s does not read the metrics API) stops the gateway at start, naming
/// the flag, the provider and what to use instead; it never listens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_refuses_to_start_with_a_scale_type_the_provider_cannot_measure() {
    let server = TestServer::start(Options::default()).await.expect("the test API server starts");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kubeconfig");
    std::fs::write(&config, kubeconfig(&server)).unwrap();
    let state = dir.path().join("state");
    let mut cmd = common::command(&state);
    cmd.args(["--provider", "k8s", "--scale-type", "cpu"]).env("KUBECONFIG", &config);
    for var in ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "FAAS_K8S_NAMESPACE", "FAAS_K8S_CLUSTER_WIDE"] {
        cmd.env_remove(var);
    }
    let (status, stderr) = common::run_to_failure(cmd).await;
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("--scale-type cpu: the k8s provider cannot measure CPU; use capacity or rps"),
        "the refusal names the flag and the provider: {stderr}"
    );
    assert!(!stderr.contains("listening on"), "{stderr}");
    server.shutdown().await;
}
