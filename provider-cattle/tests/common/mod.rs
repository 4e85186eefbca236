//! What the tests share: a test Cattle server and a provider connected to
//! it, configured for fast convergence.

#![allow(dead_code)]

use std::time::Duration;

use cattle_test_server::{Options, TestServer};
use provider_cattle::{CattleConfig, CattleProvider, HealthCheck, Routing};

/// The provider's configuration for `server`: public-endpoint routing
/// (the tests run outside any Rancher network) and short intervals.
pub fn config(server: &TestServer) -> CattleConfig {
    let mut config = CattleConfig::new(server.url(), server.access_key(), server.secret_key());
    config.stack = "faas-test".to_owned();
    config.routing = Routing::PublicEndpoints;
    config.health_check = HealthCheck {
        interval: Duration::from_millis(100),
        response_timeout: Duration::from_millis(1000),
        healthy_threshold: 1,
        unhealthy_threshold: 3,
        initializing_timeout: Duration::from_secs(30),
    };
    config.upgrade_interval = Duration::from_millis(50);
    config.upgrade_timeout = Duration::from_secs(20);
    config.transition_timeout = Duration::from_secs(20);
    config.poll_interval = Duration::from_millis(25);
    config.request_timeout = Duration::from_secs(10);
    config
}

/// A server with `options` and a provider connected to it.
pub async fn start(options: Options) -> (TestServer, CattleProvider) {
    let server = TestServer::start(options).await.expect("the test server starts");
    let provider = CattleProvider::connect(config(&server)).await.expect("the provider connects");
    (server, provider)
}

/// A raw call to `server`'s API, as another Rancher client would make it:
/// `url` absolute or below the version root (`/services?name=x`).
pub async fn rancher(
    server: &TestServer,
    method: http::Method,
    url: &str,
    body: Option<serde_json::Value>,
) -> (http::StatusCode, serde_json::Value) {
    use base64::Engine;
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let url = if url.starts_with("http") { url.to_owned() } else { format!("{}{url}", server.url()) };
    let token =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", server.access_key(), server.secret_key()));
    let bytes = body.map(|b| bytes::Bytes::from(b.to_string())).unwrap_or_default();
    let request = http::Request::builder()
        .method(method)
        .uri(&url)
        .header("authorization", format!("Basic {token}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes))
        .expect("a request");
    let response = client.request(request).await.expect("the test server answers");
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("a body").to_bytes();
    let json = if bytes.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&bytes).expect("JSON") };
    (status, json)
}

/// The live service of function `name`, as the API shows it.
pub async fn service(server: &TestServer, name: &str) -> serde_json::Value {
    let (status, list) = rancher(server, http::Method::GET, &format!("/services?name={name}"), None).await;
    assert_eq!(status, http::StatusCode::OK, "{list}");
    list["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["state"] != "removed" && s["state"] != "removing")
        .cloned()
        .unwrap_or_else(|| panic!("no service {name}: {list}"))
}

/// Polls the service of function `name` until its state is `state`.
pub async fn wait_state(server: &TestServer, name: &str, state: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let service = service(server, name).await;
        if service["state"] == state {
            return service;
        }
        assert!(tokio::time::Instant::now() < deadline, "{name} never became {state}: {service}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
