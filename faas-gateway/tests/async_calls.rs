//! Asynchronous calls through the real binary with the embedded queue:
//! a gateway killed with SIGKILL while calls are queued and in flight runs
//! every accepted call after a restart, and each callback arrives.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{script, Gateway, WAIT};
use faas_core::Body;
use faas_test_support::callbacks::CallbackServer;
use http::{Request, StatusCode};
use nix::sys::signal::{kill, Signal};
use serde_json::json;

const FAST_RETRIES: [&str; 4] = ["--async-retry-base", "50ms", "--async-retry-cap", "500ms"];

#[tokio::test]
async fn every_accepted_call_completes_across_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // Each call takes a while, two at a time: a dozen calls cannot all be
    // done when the first callback arrives.
    let slow = script(dir.path(), "slow.sh", "sleep 0.4\ncat\n");
    let callbacks = CallbackServer::start().await.expect("the callback server starts");
    let url = callbacks.url().to_owned();

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
    while callbacks.received().is_empty() {
        assert!(Instant::now() < deadline, "no callback arrived; stderr:\n{}", gateway.stderr());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill(gateway.pid(), Signal::SIGKILL).expect("SIGKILL delivered");
    gateway.wait_exit().await;
    let before = callbacks.received().len();
    assert!(before < expected.len(), "calls were still queued or in flight at the kill ({before} done)");

    let gateway = Gateway::start(&state, &FAST_RETRIES).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ids: BTreeSet<String> = callbacks.received().into_iter().map(|c| c.call_id).collect();
        if expected.keys().all(|id| ids.contains(id)) {
            break;
        }
        let missing = expected.keys().filter(|id| !ids.contains(*id)).count();
        assert!(Instant::now() < deadline, "{missing} accepted calls never called back; stderr:\n{}", gateway.stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all = callbacks.received();
    for callback in &all {
        let id = &callback.call_id;
        assert_eq!(expected.get(id), Some(&callback.text()), "callback {id} carries its own call's response");
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

    let mut callbacks = CallbackServer::start().await.expect("the callback server starts");
    let url = callbacks.url().to_owned();

    // Dispatcher -> Metered -> Scaler -> provider: the scaler holds the
    // call while the function scales up, then the call runs.
    let request = Request::post("/async-function/sleepy").header("x-callback-url", &url).body(Body::from("wake up"));
    let (status, headers, body) = gateway.send(request.unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body:?}");
    let id = headers.get("x-call-id").expect("an X-Call-Id").to_str().unwrap().to_owned();
    let Some(got) = callbacks.next(WAIT).await else {
        panic!("no callback arrived; stderr:\n{}", gateway.stderr());
    };
    assert_eq!(
        (got.call_id.as_str(), got.function_status.as_str(), got.text().as_str()),
        (id.as_str(), "200", "wake up")
    );
    assert_eq!(callbacks.received().len(), 1, "one callback");

    // The call counts as completed once its callback is delivered, a moment
    // after the callback server has it.
    gateway
        .wait_metrics(&[
            r#"gateway_cold_starts_total{function_name="sleepy.openfaas-fn"} 1"#,
            r#"gateway_async_completed_total{function_name="sleepy.openfaas-fn"} 1"#,
        ])
        .await;
    gateway.wait_available("sleepy", 1).await;
}
