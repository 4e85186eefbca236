//! Asynchronous calls through two real gateways sharing one NATS JetStream
//! queue, on a `nats-server` each test starts (skipped without the binary,
//! except on CI where that fails).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Gateway, WAIT};
use faas_core::Body;
use faas_test_support::callbacks::CallbackServer;
use faas_test_support::nats::nats_server;
use http::{Request, StatusCode};
use nix::sys::signal::{kill, Signal};
use serde_json::json;

/// A gateway on the shared queue with the function `fn` (`script`).
async fn gateway(state: &std::path::Path, url: &str, script: &std::path::Path) -> Gateway {
    let args = ["--async-queue", "nats", "--nats-url", url, "--nats-ack-wait", "2s", "--async-retry-base", "50ms"];
    let gateway = Gateway::start(state, &args).await;
    gateway
        .deploy(json!({
            "service": "work",
            "image": "sh",
            "envProcess": format!("sh {}", script.display()),
            "labels": {"com.openfaas.async.concurrency": "2"},
        }))
        .await;
    gateway.wait_available("work", 1).await;
    gateway
}

async fn enqueue(gateway: &Gateway, callback: &str, body: String) -> String {
    let request = Request::post("/async-function/work").header("x-callback-url", callback).body(Body::from(body));
    let (status, headers, text) = gateway.send(request.unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text:?}");
    headers.get("x-call-id").expect("an X-Call-Id").to_str().unwrap().to_owned()
}

async fn wait_all(callbacks: &CallbackServer, expected: &BTreeMap<String, String>, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = callbacks.received();
        if expected.keys().all(|id| got.iter().any(|c| c.call_id == *id)) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {} of {} callbacks", got.len(), expected.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_gateways_share_the_queue_and_run_each_call_once() {
    let Some(nats) = nats_server().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let script = common::script(dir.path(), "work.sh", "sleep 0.1\ncat\n");
    let one = gateway(&dir.path().join("one"), &nats.url, &script).await;
    let two = gateway(&dir.path().join("two"), &nats.url, &script).await;
    let callbacks = CallbackServer::start().await.expect("the callback server starts");
    let url = callbacks.url().to_owned();
    let mut expected = BTreeMap::new();
    for i in 0..16 {
        let gateway = if i % 2 == 0 { &one } else { &two };
        expected.insert(enqueue(gateway, &url, format!("call-{i}")).await, format!("call-{i}"));
    }
    wait_all(&callbacks, &expected, "every call calls back").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = callbacks.received();
    assert_eq!(got.len(), expected.len(), "each call ran once: {got:?}");
    for callback in &got {
        assert_eq!(expected.get(&callback.call_id), Some(&callback.text()));
    }
}

#[tokio::test]
async fn calls_of_a_killed_gateway_run_on_the_other() {
    let Some(nats) = nats_server().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let script = common::script(dir.path(), "work.sh", "sleep 0.4\ncat\n");
    let mut one = gateway(&dir.path().join("one"), &nats.url, &script).await;
    let callbacks = CallbackServer::start().await.expect("the callback server starts");
    let url = callbacks.url().to_owned();
    let mut expected = BTreeMap::new();
    for i in 0..8 {
        expected.insert(enqueue(&one, &url, format!("call-{i}")).await, format!("call-{i}"));
    }
    let deadline = Instant::now() + WAIT;
    while callbacks.received().is_empty() {
        assert!(Instant::now() < deadline, "no callback arrived; stderr:\n{}", one.stderr());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill(one.pid(), Signal::SIGKILL).expect("SIGKILL delivered");
    one.wait_exit().await;
    let before = callbacks.received().len();
    assert!(before < expected.len(), "calls were still queued or in flight at the kill");
    let two = gateway(&dir.path().join("two"), &nats.url, &script).await;
    wait_all(&callbacks, &expected, "the surviving gateway runs the rest").await;
    let got = callbacks.received();
    eprintln!("{} calls, {before} before the kill, {} duplicate callbacks", expected.len(), got.len() - expected.len());
    drop(two);
}

#[tokio::test]
async fn bodies_up_to_the_server_max_payload_run_and_larger_ones_get_413() {
    let Some(nats) = nats_server().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let script = common::script(dir.path(), "work.sh", "cat\n");
    let gateway = gateway(&dir.path().join("one"), &nats.url, &script).await;
    let callbacks = CallbackServer::start().await.expect("the callback server starts");
    let url = callbacks.url().to_owned();
    // 900 KiB: more than fitted when the call was stored as JSON with a
    // base64 body, less than the server's default max_payload of 1 MiB.
    let body: String = (0..900 * 1024).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let id = enqueue(&gateway, &url, body.clone()).await;
    wait_all(&callbacks, &BTreeMap::from([(id.clone(), body.clone())]), "the large call calls back").await;
    assert!(callbacks.received().iter().any(|c| c.call_id == id && c.text() == body), "the body arrives whole");

    // Above max_payload though below --async-max-body (8 MiB): 413 naming
    // the server's limit, not a 5xx.
    let (status, text) = gateway.call("POST", "/async-function/work", vec![b'x'; 2 << 20]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    assert!(text.contains("NATS server's max_payload of 1048576 bytes"), "{text}");
}
