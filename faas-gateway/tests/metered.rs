//! The `Metered` wrapper and the gateway router in-process, over the
//! example provider, called as a tower service.

use std::sync::Arc;

use axum::body::Body as AxumBody;
use custom_provider::InMemoryProvider;
use faas_core::api::ApiConfig;
use faas_core::{Body, FunctionDeployment, Provider, SharedProvider};
use faas_gateway::metrics::Metrics;
use faas_gateway::{app, Metered};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

struct Fixture {
    router: axum::Router,
    metered: Arc<Metered>,
    inner: SharedProvider,
}

fn fixture() -> Fixture {
    let provider = InMemoryProvider::new()
        .with_handler("echo", |request: Request<Body>, _| async move { Response::new(request.into_body()) })
        .with_handler("teapot", |_, _| async move {
            let mut response = Response::new(Body::from("short and stout"));
            *response.status_mut() = StatusCode::IM_A_TEAPOT;
            response
        });
    let inner: SharedProvider = Arc::new(provider);
    let metrics = Arc::new(Metrics::new());
    let metered = Arc::new(Metered::new(inner.clone(), metrics.clone()));
    let router = app::router(metered.clone(), ApiConfig::default(), metrics);
    Fixture { router, metered, inner }
}

impl Fixture {
    async fn call(&self, method: &str, path: &str, body: impl Into<AxumBody>) -> (StatusCode, String) {
        let request = Request::builder().method(method).uri(path).body(body.into()).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn deploy(&self, name: &str, image: &str) {
        let deployment = json!({"service": name, "image": image}).to_string();
        assert_eq!(self.call("POST", "/system/functions", deployment).await.0, StatusCode::ACCEPTED);
    }

    async fn metrics(&self) -> String {
        let (status, text) = self.call("GET", "/metrics", AxumBody::empty()).await;
        assert_eq!(status, StatusCode::OK);
        text
    }
}

#[tokio::test]
async fn calls_are_counted_and_timed_by_function_and_status() {
    let f = fixture();
    f.deploy("echo", "echo").await;
    f.deploy("tea", "teapot").await;
    assert_eq!(f.call("POST", "/function/echo", "hello").await, (StatusCode::OK, "hello".to_owned()));
    assert_eq!(f.call("POST", "/function/echo.openfaas-fn/x/y", "again").await, (StatusCode::OK, "again".to_owned()));
    assert_eq!(f.call("GET", "/function/tea", AxumBody::empty()).await.0, StatusCode::IM_A_TEAPOT);
    assert_eq!(f.call("GET", "/function/no-such-function", AxumBody::empty()).await.0, StatusCode::NOT_FOUND);

    let text = f.metrics().await;
    for wanted in [
        r#"gateway_function_invocation_total{function_name="echo.openfaas-fn",code="200"} 2"#,
        r#"gateway_function_invocation_total{function_name="tea.openfaas-fn",code="418"} 1"#,
        r#"gateway_functions_seconds_count{function_name="echo.openfaas-fn",code="200"} 2"#,
        r#"http_requests_total{method="POST",path="/system/functions",status="202"} 2"#,
        r#"http_requests_total{method="GET",path="/function/{*rest}",status="404"} 1"#,
    ] {
        assert!(text.contains(wanted), "missing {wanted} in:\n{text}");
    }
    assert!(!text.contains("no-such-function"), "unknown names add no series:\n{text}");
}

#[tokio::test]
async fn a_response_dropped_unread_is_still_counted_once() {
    let f = fixture();
    f.deploy("echo", "echo").await;
    let request = Request::post("/function/echo").body(AxumBody::from("never read")).unwrap();
    let response = f.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let before = f.metrics().await;
    assert!(!before.contains(r#"gateway_function_invocation_total{function_name="echo.openfaas-fn""#), "{before}");
    drop(response);
    let after = f.metrics().await;
    assert!(
        after.contains(r#"gateway_function_invocation_total{function_name="echo.openfaas-fn",code="200"} 1"#),
        "{after}"
    );
}

#[tokio::test]
async fn service_count_follows_refresh_scale_and_delete() {
    let f = fixture();
    f.deploy("echo", "echo").await;
    f.deploy("tea", "teapot").await;
    // Listing is passed through without touching the gauges...
    assert_eq!(f.call("GET", "/system/functions", AxumBody::empty()).await.0, StatusCode::OK);
    assert!(!f.metrics().await.contains("gateway_service_count{"), "a list call sets no gauge");
    // ...the periodic refresh sets them from a full listing.
    f.metered.refresh_service_counts().await.unwrap();
    let text = f.metrics().await;
    assert!(text.contains(r#"gateway_service_count{function_name="echo.openfaas-fn"} 1"#), "{text}");

    let scale = json!({"serviceName": "echo", "replicas": 3}).to_string();
    assert_eq!(f.call("POST", "/system/scale-function/echo", scale).await.0, StatusCode::ACCEPTED);
    let text = f.metrics().await;
    assert!(text.contains(r#"gateway_service_count{function_name="echo.openfaas-fn"} 3"#), "{text}");

    let delete = json!({"functionName": "echo"}).to_string();
    assert_eq!(f.call("DELETE", "/system/functions", delete).await.0, StatusCode::ACCEPTED);
    let text = f.metrics().await;
    assert!(!text.contains(r#"gateway_service_count{function_name="echo.openfaas-fn""#), "{text}");

    // A function removed behind the gateway's back disappears at the next refresh.
    f.inner.delete(&faas_core::FunctionRef::new("tea", "")).await.unwrap();
    assert!(f.metrics().await.contains(r#"gateway_service_count{function_name="tea.openfaas-fn"} 1"#));
    f.metered.refresh_service_counts().await.unwrap();
    let text = f.metrics().await;
    assert!(!text.contains("tea.openfaas-fn"), "{text}");
}

#[tokio::test]
async fn everything_else_is_delegated_unchanged() {
    let f = fixture();
    assert_eq!(f.metered.info().await.unwrap(), f.inner.info().await.unwrap());
    assert_eq!(f.metered.capabilities(), f.inner.capabilities());
    let deployment =
        FunctionDeployment { service: "direct".into(), image: "echo".into(), ..FunctionDeployment::default() };
    f.metered.deploy(deployment).await.unwrap();
    assert_eq!(f.inner.list("openfaas-fn").await.unwrap().len(), 1);
    let secret = faas_core::Secret { name: "token".into(), value: "v".into(), ..faas_core::Secret::default() };
    f.metered.create_secret(secret).await.unwrap();
    assert_eq!(f.inner.list_secrets("openfaas-fn").await.unwrap()[0].name, "token");
    assert_eq!(f.metered.list_namespaces().await.unwrap(), f.inner.list_namespaces().await.unwrap());
    let (status, body) = f.call("GET", "/system/info", AxumBody::empty()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["provider"], f.inner.info().await.unwrap().name, "{body}");
}
