//! The scaling layer in the real gateway binary: scale to zero when idle,
//! scale from zero on the next call, label validation, and turning it off.

mod common;

use std::time::{Duration, Instant};

use common::{Gateway, WAIT};
use http::StatusCode;
use serde_json::json;

/// `replicas` of `name` as `GET /system/function/{name}` reports it.
async fn replicas(gateway: &Gateway, name: &str) -> u64 {
    let (status, body) = gateway.get(&format!("/system/function/{name}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    value["replicas"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn an_idle_function_goes_to_zero_and_the_next_call_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(&dir.path().join("state"), &["--autoscale-interval", "500ms"]).await;
    let labels = json!({"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "2s"});
    gateway.deploy(json!({"service": "nap", "image": "cat", "envProcess": "cat", "labels": labels})).await;

    let deadline = Instant::now() + WAIT;
    while replicas(&gateway, "nap").await != 0 {
        assert!(Instant::now() < deadline, "nap was never scaled to zero; stderr:\n{}", gateway.stderr());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(gateway.call("POST", "/function/nap", "awake").await, (StatusCode::OK, "awake".to_owned()));

    let (status, metrics) = gateway.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for line in [
        r#"gateway_cold_starts_total{function_name="nap.openfaas-fn"} 1"#,
        r#"gateway_function_invocation_total{function_name="nap.openfaas-fn",code="200"} 1"#,
        r#"gateway_cold_start_seconds_count{function_name="nap.openfaas-fn"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} missing from /metrics:\n{metrics}");
    }
    assert!(metrics.contains("gateway_replicas_desired{") && metrics.contains("gateway_held_requests"), "{metrics}");
}

#[tokio::test]
async fn bad_scaling_labels_get_400_and_no_autoscale_turns_the_layer_off() {
    let dir = tempfile::tempdir().unwrap();
    let deployment =
        json!({"service": "odd", "image": "cat", "envProcess": "cat", "labels": {"com.openfaas.scale.max": "0"}});

    let gateway = Gateway::start(&dir.path().join("on"), &[]).await;
    let (status, body) = gateway.call("POST", "/system/functions", deployment.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("labels.com.openfaas.scale.max"), "{body}");
    drop(gateway);

    let gateway = Gateway::start(&dir.path().join("off"), &["--no-autoscale"]).await;
    gateway.deploy(deployment).await;
    gateway.wait_available("odd", 1).await;
    let scale = json!({"serviceName": "odd", "replicas": 0}).to_string();
    assert_eq!(gateway.call("POST", "/system/scale-function/odd", scale).await.0, StatusCode::ACCEPTED);
    let (status, body) = gateway.call("POST", "/function/odd", "x").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "without the layer nothing wakes it: {body}");
    let (_, metrics) = gateway.get("/metrics").await;
    assert!(!metrics.contains("gateway_cold_starts"), "{metrics}");
}
