//! The in-memory provider's own behaviour, beyond the conformance kit.

use std::time::Duration;

use chrono::Utc;
use custom_provider::InMemoryProvider;
use faas_core::{Body, Error, FunctionDeployment, FunctionNamespace, FunctionRef, LogRequest, Provider, Secret};
use faas_testkit::function::respond;
use faas_testkit::{expect_invalid, expect_not_found, invoke_bytes};
use futures_util::StreamExt;
use http::{HeaderMap, Method, StatusCode};

fn provider() -> InMemoryProvider {
    InMemoryProvider::new().with_handler("conformance", |request, cx| async move {
        respond(request, &cx.env, &cx.secrets, &|line| cx.log(line)).await
    })
}

fn deployment(name: &str, namespace: &str) -> FunctionDeployment {
    FunctionDeployment {
        service: name.to_owned(),
        namespace: namespace.to_owned(),
        image: "conformance".to_owned(),
        ..FunctionDeployment::default()
    }
}

async fn get(
    provider: &InMemoryProvider,
    function: &FunctionRef,
    path: &str,
) -> faas_core::Result<(StatusCode, String)> {
    let (status, _, body) =
        invoke_bytes(provider, function, Method::GET, path, HeaderMap::new(), Body::empty()).await?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

async fn collect_logs(provider: &InMemoryProvider, request: LogRequest) -> Vec<String> {
    let stream = provider.logs(request).await.unwrap();
    let messages: Vec<_> = tokio::time::timeout(Duration::from_secs(5), stream.collect()).await.expect("logs end");
    messages.into_iter().map(|m| m.unwrap().text).collect()
}

#[tokio::test]
async fn an_image_without_a_handler_is_invalid() {
    let provider = provider();
    let mut unknown = deployment("f", "");
    unknown.image = "no-such-image".to_owned();
    expect_invalid("deploy", provider.deploy(unknown.clone()).await, "image");
    provider.deploy(deployment("f", "")).await.unwrap();
    expect_invalid("update", provider.update(unknown).await, "image");
    let status = provider.status(&FunctionRef::new("f", "")).await.unwrap();
    assert_eq!(status.image, "conformance", "a refused update must not change the function");
}

#[tokio::test]
async fn a_missing_namespace_is_not_found() {
    let provider = provider();
    expect_not_found("deploy", provider.deploy(deployment("f", "nowhere")).await, "namespace");
    expect_not_found("list", provider.list("nowhere").await, "namespace");
    expect_not_found("list_secrets", provider.list_secrets("nowhere").await, "namespace");
    provider.create_namespace(FunctionNamespace { name: "somewhere".into(), ..Default::default() }).await.unwrap();
    provider.deploy(deployment("f", "somewhere")).await.unwrap();
    assert_eq!(provider.list("somewhere").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_deployment_naming_a_missing_secret_is_refused() {
    let provider = provider();
    let mut with_secret = deployment("f", "");
    with_secret.secrets = vec!["api-key".to_owned()];
    expect_not_found("deploy", provider.deploy(with_secret.clone()).await, "secret");
    let secret = Secret { name: "api-key".into(), value: "k1".into(), ..Secret::default() };
    provider.create_secret(secret).await.unwrap();
    provider.deploy(with_secret).await.unwrap();
    let function = FunctionRef::new("f", "");
    assert_eq!(get(&provider, &function, "/secret/api-key").await.unwrap(), (StatusCode::OK, "k1".to_owned()));
    // Handlers see a secret's current value on every call.
    let updated = Secret { name: "api-key".into(), raw_value: b"k2".to_vec(), ..Secret::default() };
    provider.update_secret(updated).await.unwrap();
    assert_eq!(get(&provider, &function, "/secret/api-key").await.unwrap().1, "k2");
}

#[tokio::test]
async fn replicas_count_calls_and_zero_replicas_refuse_them() {
    let provider = provider();
    provider.deploy(deployment("f", "")).await.unwrap();
    let function = FunctionRef::new("f", "");
    provider.scale(&function, 2).await.unwrap();
    for i in 0..4 {
        get(&provider, &function, &format!("/log/call-{i}")).await.unwrap();
    }
    let status = provider.status(&function).await.unwrap();
    assert_eq!((status.replicas, status.available_replicas, status.invocation_count), (2, 2, 4.0));
    let request = LogRequest { name: "f".into(), instance: "f-1".into(), ..LogRequest::default() };
    assert_eq!(collect_logs(&provider, request).await, ["call-1", "call-3"], "calls alternate between replicas");

    provider.scale(&function, 0).await.unwrap();
    let refused = get(&provider, &function, "/").await;
    assert!(matches!(refused, Err(Error::Unavailable { .. })), "{refused:?}");
    expect_invalid("scale", provider.scale(&function, 1_000_000).await, "replicas");
}

#[tokio::test]
async fn logs_honour_tail_since_and_capacity() {
    let provider = provider().with_log_capacity(3);
    provider.deploy(deployment("f", "")).await.unwrap();
    let function = FunctionRef::new("f", "");
    for i in 0..5 {
        get(&provider, &function, &format!("/log/line-{i}")).await.unwrap();
    }
    let all = LogRequest { name: "f".into(), ..LogRequest::default() };
    assert_eq!(collect_logs(&provider, all.clone()).await, ["line-2", "line-3", "line-4"], "the ring keeps 3");
    let tail = LogRequest { tail: 1, ..all.clone() };
    assert_eq!(collect_logs(&provider, tail).await, ["line-4"]);
    let since = LogRequest { since: Some(Utc::now() + chrono::Duration::hours(1)), ..all };
    assert!(collect_logs(&provider, since).await.is_empty());
    let unknown = LogRequest { name: "g".into(), ..LogRequest::default() };
    expect_not_found("logs of an unknown function", provider.logs(unknown).await.map(|_| ()), "function");
}

#[tokio::test]
async fn deleting_a_namespace_removes_what_it_holds() {
    let provider = provider();
    provider.create_namespace(FunctionNamespace { name: "team".into(), ..Default::default() }).await.unwrap();
    provider.deploy(deployment("f", "team")).await.unwrap();
    provider.delete_namespace("team").await.unwrap();
    expect_not_found("status", provider.status(&FunctionRef::new("f", "team")).await, "function");
    expect_invalid("delete default", provider.delete_namespace(faas_core::DEFAULT_NAMESPACE).await, "name");
    let bad = FunctionNamespace { name: "Team".into(), ..Default::default() };
    expect_invalid("create", provider.create_namespace(bad).await, "name");
}
