//! Asynchronous calls through the real binary with the embedded queue:
//! a gateway killed with SIGKILL while calls are queued and in flight runs
//! every accepted call after a restart, and each callback arrives.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body as AxumBody;
use axum::extract::State;
use axum::Router;
use common::{script, Gateway, WAIT};
use faas_core::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use nix::sys::signal::{kill, Signal};
use serde_json::json;

/// Callbacks received: (call id, body), in arrival order.
type Received = Arc<Mutex<Vec<(String, String)>>>;

async fn record(State(received): State<Received>, request: Request<AxumBody>) -> StatusCode {
    let (parts, body) = request.into_parts();
    let id = parts.headers.get("x-call-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    received.lock().unwrap().push((id, String::from_utf8_lossy(&body).into_owned()));
    StatusCode::OK
}

/// A loopback server recording callbacks; its URL.
async fn callback_server() -> (String, Received) {
    let received = Received::default();
    let app = Router::new().fallback(record).with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/callback"), received)
}

const FAST_RETRIES: [&str; 4] = ["--async-retry-base", "50ms", "--async-retry-cap", "500ms"];

#[tokio::test]
async fn every_accepted_call_completes_across_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // Each call takes a while, two at a time: a dozen calls cannot all be
    // done when the first callback arrives.
    let slow = script(dir.path(), "slow.sh", "sleep 0.4\ncat\n");
    let (url, received) = callback_server().await;

    let mut gateway = Gateway::start(&state, &FAST_RETRIES).await;
    gateway
        .deploy(json!({
            "service": "slow",
            "image": "sh",
            "envProcess": format!("sh {}", slow.display()),
            "labels": {"com.openfaas.async.concurrency": "2"},
        }))
        .await;
    gateway.wait_available("slow", 1).await;

    let mut expected = BTreeMap::new();
    for i in 0..12 {
        let request = Request::post("/async-function/slow")
            .header("x-callback-url", &url)
            .body(Body::from(format!("call-{i}")))
            .unwrap();
        let (status, headers, body) = gateway.send(request).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body:?}");
        let id = headers.get("x-call-id").expect("an X-Call-Id").to_str().unwrap().to_owned();
        expected.insert(id, format!("call-{i}"));
    }

    let deadline = Instant::now() + WAIT;
    while received.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no callback arrived; stderr:\n{}", gateway.stderr());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill(gateway.pid(), Signal::SIGKILL).expect("SIGKILL delivered");
    gateway.wait_exit().await;
    let before = received.lock().unwrap().len();
    assert!(before < expected.len(), "calls were still queued or in flight at the kill ({before} done)");

    let gateway = Gateway::start(&state, &FAST_RETRIES).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ids: BTreeSet<String> = received.lock().unwrap().iter().map(|(id, _)| id.clone()).collect();
        if expected.keys().all(|id| ids.contains(id)) {
            break;
        }
        let missing = expected.keys().filter(|id| !ids.contains(*id)).count();
        assert!(Instant::now() < deadline, "{missing} accepted calls never called back; stderr:\n{}", gateway.stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all = received.lock().unwrap().clone();
    for (id, body) in &all {
        assert_eq!(expected.get(id), Some(body), "callback {id} carries its own call's response");
    }
    let duplicates = all.len() - expected.len();
    eprintln!("{} calls, {} callbacks before the kill, {duplicates} duplicate callbacks", expected.len(), before);
    let (_, metrics) = gateway.get("/metrics").await;
    assert!(metrics.contains(r#"gateway_async_redelivered_total{function_name="slow.openfaas-fn"}"#), "{metrics}");
}

#[tokio::test]
async fn the_async_flags_shape_the_routes() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let gateway = Gateway::start(&state, &["--async-max-body", "1KiB"]).await;
    gateway.deploy(json!({"service": "echo", "image": "cat", "envProcess": "cat"})).await;
    let (status, body) = gateway.call("POST", "/async-function/echo", vec![b'x'; 2048]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let (status, body) = gateway.call("POST", "/async-function/missing", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = gateway.get("/system/async/dead-letters").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "[]"));
    assert!(state.join("async").join(faas_async::DATABASE_FILE).exists(), "the queue lives in the state dir");
    drop(gateway);

    let gateway = Gateway::start(&dir.path().join("off"), &["--async-queue", "off"]).await;
    let (status, _) = gateway.call("POST", "/async-function/echo", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Callbacks received with their `X-Function-Status`: (call id, status, body).
type WithStatus = Arc<Mutex<Vec<(String, String, String)>>>;

async fn record_with_status(State(received): State<WithStatus>, request: Request<AxumBody>) -> StatusCode {
    let (parts, body) = request.into_parts();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let body = String::from_utf8_lossy(&body).into_owned();
    received.lock().unwrap().push((header("x-call-id"), header("x-function-status"), body));
    StatusCode::OK
}

#[tokio::test]
async fn an_async_call_wakes_a_function_at_zero_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(&dir.path().join("state"), &FAST_RETRIES).await;
    let labels = json!({"com.openfaas.scale.zero": "true"});
    gateway.deploy(json!({"service": "sleepy", "image": "cat", "envProcess": "cat", "labels": labels})).await;
    gateway.wait_available("sleepy", 1).await;
    let scale = json!({"serviceName": "sleepy", "replicas": 0}).to_string();
    let (status, body) = gateway.call("POST", "/system/scale-function/sleepy", scale).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let asleep = gateway.wait_available("sleepy", 0).await;
    assert_eq!(asleep["replicas"].as_u64().unwrap_or(0), 0, "{asleep}");

    let received = WithStatus::default();
    let app = Router::new().fallback(record_with_status).with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/callback", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // Dispatcher -> Metered -> Scaler -> provider: the scaler holds the
    // call while the function scales up, then the call runs.
    let request = Request::post("/async-function/sleepy").header("x-callback-url", &url).body(Body::from("wake up"));
    let (status, headers, body) = gateway.send(request.unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body:?}");
    let id = headers.get("x-call-id").expect("an X-Call-Id").to_str().unwrap().to_owned();
    let deadline = Instant::now() + WAIT;
    while received.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no callback arrived; stderr:\n{}", gateway.stderr());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = received.lock().unwrap().clone();
    assert_eq!(got, vec![(id, "200".to_owned(), "wake up".to_owned())]);

    let (_, metrics) = gateway.get("/metrics").await;
    for line in [
        r#"gateway_cold_starts_total{function_name="sleepy.openfaas-fn"} 1"#,
        r#"gateway_async_completed_total{function_name="sleepy.openfaas-fn"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} missing from /metrics:\n{metrics}");
    }
    gateway.wait_available("sleepy", 1).await;
}
