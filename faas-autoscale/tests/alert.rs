//! `POST /system/alert` with AlertManager's webhook payload, over the
//! scaling layer and the real local provider; and the example Prometheus
//! rule and AlertManager receiver shipped in `deploy/prometheus/`.

mod common;

use axum::body::Body as AxumBody;
use base64::Engine;
use common::{cat, function, Fixture};
use faas_autoscale::alert::{self, ALERT_PATH};
use faas_autoscale::{ScalingConfig, SCALE_FACTOR, SCALE_MAX, SCALE_MIN};
use faas_core::api::BasicAuth;
use faas_core::{Provider, SharedProvider};
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use std::path::PathBuf;
use tower::ServiceExt;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus").join(name)
}

/// The shipped example notification (AlertManager's documented webhook
/// payload), with its one alert's status and function set.
fn notification(status: &str, function_name: &str) -> Value {
    let text = std::fs::read_to_string(example("alert-firing.json")).expect("the example payload is shipped");
    let mut value: Value = serde_json::from_str(&text).expect("the example payload is JSON");
    value["status"] = status.into();
    value["alerts"][0]["status"] = status.into();
    value["alerts"][0]["labels"]["function_name"] = function_name.into();
    value
}

async fn post(router: &axum::Router, body: String, auth: Option<&str>) -> (StatusCode, String) {
    let mut request = Request::post(ALERT_PATH).header(header::CONTENT_TYPE, "application/json");
    if let Some(auth) = auth {
        request = request.header(header::AUTHORIZATION, auth);
    }
    let response = router.clone().oneshot(request.body(AxumBody::from(body)).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firing_alerts_scale_up_by_the_factor_and_resolved_ones_return_to_min() {
    let fx = Fixture::new(ScalingConfig::default()).await;
    fx.scaler.deploy(cat("echo", &[(SCALE_MAX, "10"), (SCALE_FACTOR, "30")], &[])).await.unwrap();
    fx.scaler.deploy(cat("other", &[(SCALE_MIN, "2"), (SCALE_MAX, "4")], &[])).await.unwrap();
    let router = alert::router(std::sync::Arc::new(fx.scaler.clone()) as SharedProvider, None);

    // The shipped payload, unchanged: echo.openfaas-fn, firing.
    let shipped = std::fs::read_to_string(example("alert-firing.json")).unwrap();
    assert_eq!(post(&router, shipped, None).await.0, StatusCode::OK);
    assert_eq!(fx.status("echo").await.replicas, 4, "1 + ceil(10 x 30 / 100)");
    let firing = notification("firing", "echo").to_string();
    assert_eq!(post(&router, firing.clone(), None).await.0, StatusCode::OK);
    assert_eq!(fx.status("echo").await.replicas, 7);
    assert_eq!(post(&router, firing, None).await.0, StatusCode::OK);
    assert_eq!(fx.status("echo").await.replicas, 10, "capped at max");
    // The layer treats it as a manual scale: a floor for a stable window.
    fx.scaler.autoscale_once().await;
    assert_eq!(fx.scaler.function(&function("echo")).unwrap().replicas, 10);

    // The default factor is 10: ceil(4 x 10 / 100) = 1 a firing alert.
    let other = notification("firing", "other.openfaas-fn").to_string();
    assert_eq!(post(&router, other, None).await.0, StatusCode::OK);
    assert_eq!(fx.status("other").await.replicas, 3);

    let resolved = notification("resolved", "echo.openfaas-fn").to_string();
    assert_eq!(post(&router, resolved, None).await.0, StatusCode::OK);
    assert_eq!(fx.status("echo").await.replicas, 1, "back to min");
    let resolved = notification("resolved", "other").to_string();
    assert_eq!(post(&router, resolved, None).await.0, StatusCode::OK);
    assert_eq!(fx.status("other").await.replicas, 2, "back to its min of 2");
    fx.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_notifications_get_400_failed_alerts_500_and_auth_401() {
    let fx = Fixture::new(ScalingConfig::default()).await;
    fx.scaler.deploy(cat("echo", &[], &[])).await.unwrap();
    let router = alert::router(std::sync::Arc::new(fx.scaler.clone()) as SharedProvider, None);

    for bad in ["{", "[]", r#"{"alerts": "many"}"#, r#"{"status": "firing"}"#] {
        let (status, body) = post(&router, bad.to_owned(), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body.contains("invalid body") && body.contains("AlertManager"), "{body}");
    }
    assert_eq!(fx.status("echo").await.replicas, 1, "nothing changed");

    // Two alerts fail, the good one and the one about no function apply.
    let mut mixed = notification("firing", "echo");
    let good = mixed["alerts"][0].clone();
    let mut missing = good.clone();
    missing["labels"]["function_name"] = "ghost".into();
    let mut odd = good.clone();
    odd["status"] = "pending".into();
    let mut unrelated = good.clone();
    unrelated["labels"].as_object_mut().unwrap().remove("function_name");
    mixed["alerts"] = Value::Array(vec![missing, good, odd, unrelated]);
    let (status, body) = post(&router, mixed.to_string(), None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 2, "{body}");
    assert!(lines[0].starts_with("alert 0 (function_name=ghost") && lines[0].contains("not found"), "{body}");
    assert!(lines[1].starts_with("alert 2 (function_name=echo") && lines[1].contains("neither firing"), "{body}");
    assert_eq!(fx.status("echo").await.replicas, 3, "the good alert was applied");

    let credentials = BasicAuth { user: "admin".into(), password: "s3cret".into() };
    let guarded = alert::router(std::sync::Arc::new(fx.scaler.clone()) as SharedProvider, Some(credentials));
    let resolved = notification("resolved", "echo").to_string();
    assert_eq!(post(&guarded, resolved.clone(), None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(fx.status("echo").await.replicas, 3, "nothing changed without credentials");
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("admin:s3cret"));
    assert_eq!(post(&guarded, resolved, Some(&auth)).await.0, StatusCode::OK);
    assert_eq!(fx.status("echo").await.replicas, 1);
    fx.close().await;
}

#[test]
fn the_shipped_rule_and_receiver_fit_the_handler() {
    let rules: Value = serde_saphyr::from_str(&std::fs::read_to_string(example("alert.rules.yml")).unwrap())
        .expect("alert.rules.yml is YAML");
    let rule = &rules["groups"][0]["rules"][0];
    let expr = rule["expr"].as_str().expect("the rule has an expression");
    assert!(expr.contains("gateway_function_invocation_total"), "the gateway's own counter: {expr}");
    assert!(expr.contains("by (function_name)"), "alerts carry the label the handler reads: {expr}");
    let alert_name = rule["alert"].as_str().unwrap();

    let manager: Value = serde_saphyr::from_str(&std::fs::read_to_string(example("alertmanager.yml")).unwrap())
        .expect("alertmanager.yml is YAML");
    let receiver_name = manager["route"]["receiver"].as_str().unwrap();
    let receiver = manager["receivers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == receiver_name)
        .expect("the route's receiver is defined");
    let webhook = &receiver["webhook_configs"][0];
    assert!(webhook["url"].as_str().unwrap().ends_with(ALERT_PATH), "{webhook}");
    assert_eq!(webhook["send_resolved"], Value::Bool(true), "resolved alerts return functions to min");
    assert!(webhook["http_config"]["basic_auth"]["username"].is_string(), "{webhook}");

    let payload: Value = serde_json::from_str(&std::fs::read_to_string(example("alert-firing.json")).unwrap()).unwrap();
    assert_eq!(payload["receiver"].as_str(), Some(receiver_name));
    assert_eq!(payload["alerts"][0]["labels"]["alertname"].as_str(), Some(alert_name));
    let parsed: alert::Notification = serde_json::from_value(payload).expect("the handler reads the payload");
    assert_eq!(parsed.alerts[0].labels.get(alert::FUNCTION_NAME_LABEL).map(String::as_str), Some("echo.openfaas-fn"));
}
