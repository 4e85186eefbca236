//! Asynchronous calls through two real gateways sharing one NATS JetStream
//! queue, on a `nats-server` each test starts (skipped without the binary,
//! except on CI where that fails).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
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

/// One call during the outage: its body, status, call id if accepted, and
/// how long its answer took.
type Answer = (String, StatusCode, Option<String>, Duration);

/// `POST /async-function/work` with `body` and the callback.
async fn try_enqueue(gateway: &Gateway, callback: &str, body: String) -> Answer {
    let request =
        Request::post("/async-function/work").header("x-callback-url", callback).body(Body::from(body.clone()));
    let sent = Instant::now();
    let (status, headers, _) = gateway.send(request.unwrap()).await;
    let id = headers.get("x-call-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (body, status, id, sent.elapsed())
}

/// The fault matrix's NATS row: nats-server down for 10 s while calls are
/// queued and keep arriving. Calls accepted before the stop all run once
/// it is back; calls arriving during the outage are refused with 503 at
/// once and do not run (a call sent just as the connection dropped is
/// held until the server is back and then accepted: never 202 and lost,
/// never 503 and run anyway); once the server is back, new calls are
/// accepted again without a gateway restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_outage_refuses_new_calls_with_503_and_runs_the_queued_ones_after() {
    const OUTAGE: Duration = Duration::from_secs(10);
    let Some(mut nats) = nats_server().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let script = common::script(dir.path(), "work.sh", "sleep 0.3\ncat\n");
    let gateway = Arc::new(gateway(&dir.path().join("one"), &nats.url, &script).await);
    let callbacks = CallbackServer::start().await.expect("the callback server starts");
    let url = callbacks.url().to_owned();
    // More than the function's concurrency of 2 can finish before the stop.
    let mut expected = BTreeMap::new();
    for i in 0..12 {
        expected.insert(enqueue(&gateway, &url, format!("before-{i}")).await, format!("before-{i}"));
    }
    nats.stop();
    let ran_before_stop = callbacks.received().len();
    assert!(ran_before_stop < expected.len(), "calls were still queued at the stop");

    // Calls arriving during the outage, every 250 ms, each on its own.
    let mut during = tokio::task::JoinSet::new();
    let stopped = Instant::now();
    let mut i = 0;
    while stopped.elapsed() < OUTAGE {
        let (gateway, url) = (gateway.clone(), url.clone());
        during.spawn(async move { try_enqueue(&gateway, &url, format!("during-{i}")).await });
        i += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    nats.restart().await;
    let mut refused = Vec::new();
    while let Some(answer) = during.join_next().await {
        let (body, status, id, took) = answer.unwrap();
        match (status, id) {
            (StatusCode::SERVICE_UNAVAILABLE, _) => {
                assert!(took < Duration::from_secs(2), "{body}: the 503 took {took:?}");
                refused.push(body);
            }
            // Sent as the connection dropped: held, then stored; it must run.
            (StatusCode::ACCEPTED, Some(id)) => {
                expected.insert(id, body);
            }
            (other, _) => panic!("{body} during the outage got {other}"),
        }
    }
    assert!(refused.len() >= 30, "calls during the outage were refused with 503: {} of {i}", refused.len());

    // Accepted again once the client has reconnected (its back-off is at
    // most 4 s), without restarting the gateway.
    let deadline = Instant::now() + WAIT;
    let mut after = 0;
    while after < 4 {
        match try_enqueue(&gateway, &url, format!("after-{after}")).await {
            (body, StatusCode::ACCEPTED, Some(id), _) => {
                expected.insert(id, body);
                after += 1;
            }
            (_, StatusCode::SERVICE_UNAVAILABLE, _, _) => {
                assert!(Instant::now() < deadline, "calls still refused {WAIT:?} after the restart");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            (body, other, _, _) => panic!("{body} after the restart got {other}"),
        }
    }
    wait_all(&callbacks, &expected, "every accepted call ran after the outage").await;
    // Redelivered duplicates and stragglers have time to show up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = callbacks.received();
    for body in &refused {
        assert!(!got.iter().any(|c| c.text() == *body), "{body} was refused with 503 but ran");
    }
    eprintln!(
        "{} accepted calls ran ({ran_before_stop} before the stop), {} of {i} refused during the outage, {} callbacks",
        expected.len(),
        refused.len(),
        got.len()
    );
}
