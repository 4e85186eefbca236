//! The JetStream queue against a real `nats-server` started by each test
//! (faas-test-support's harness: skipped without the binary, except on CI).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body as AxumBody;
use axum::Router;
use custom_provider::InMemoryProvider;
use faas_async::api::{router, AsyncApiConfig};
use faas_async::{
    AsyncError, AsyncMetrics, Backoff, Dispatcher, DispatcherConfig, FailedStage, JetStreamConfig, JetStreamQueue,
    Queue, QueuedCall, MAX_ATTEMPTS_LABEL,
};
use faas_core::{Body, FunctionDeployment, FunctionRef, Provider, SharedProvider};
use faas_test_support::callbacks::CallbackServer;
use faas_test_support::nats::{nats_server, NatsServer};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

const WAIT: Duration = Duration::from_secs(30);

async fn queue(server: &NatsServer) -> Arc<JetStreamQueue> {
    queue_with_ack_wait(server, Duration::from_secs(5)).await
}

async fn queue_with_ack_wait(server: &NatsServer, ack_wait: Duration) -> Arc<JetStreamQueue> {
    let mut config = JetStreamConfig::new(server.url.clone());
    config.ack_wait = ack_wait;
    Arc::new(JetStreamQueue::open(&config).await.expect("the JetStream queue opens"))
}

fn call(id: &str, body: Vec<u8>) -> QueuedCall {
    QueuedCall::post(id, &FunctionRef::new("echo", "openfaas-fn"), body)
}

#[tokio::test]
async fn the_queue_contract_holds_on_jetstream() {
    let Some(server) = nats_server().await else { return };
    let queue = queue(&server).await;
    let wait = Duration::from_millis(200);
    assert!(queue.claim(wait).await.unwrap().is_none());
    queue.enqueue(call("a", b"1".to_vec())).await.unwrap();
    queue.enqueue(call("b", b"2".to_vec())).await.unwrap();
    let a = queue.claim(WAIT).await.unwrap().unwrap();
    assert_eq!((a.call.id.as_str(), a.call.attempts), ("a", 1));
    queue.ack(&a).await.unwrap();
    let b = queue.claim(WAIT).await.unwrap().unwrap();
    assert_eq!(b.call.id, "b");
    queue.nack(&b, Duration::from_millis(500)).await.unwrap();
    let again = queue.claim(WAIT).await.unwrap().expect("redelivered after the delay");
    assert_eq!((again.call.id.as_str(), again.call.attempts), ("b", 2));
    queue.dead_letter(&again, FailedStage::Invoke, "gave up".into()).await.unwrap();
    let dead = queue.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].call.id.as_str(), dead[0].call.attempts, dead[0].reason.as_str()), ("b", 2, "gave up"));
    assert!(queue.claim(wait).await.unwrap().is_none(), "a dead letter is not redelivered");
    assert!(matches!(queue.replay("nope").await, Err(AsyncError::NotFound(_))));
    queue.replay("b").await.unwrap();
    assert!(queue.dead_letters().await.unwrap().is_empty());
    let replayed = queue.claim(WAIT).await.unwrap().unwrap();
    assert_eq!((replayed.call.id.as_str(), replayed.call.attempts, replayed.call.body.as_slice()), ("b", 1, &b"2"[..]));
    queue.ack(&replayed).await.unwrap();
    assert!(queue.claim(wait).await.unwrap().is_none());
    // Beyond the server's max_payload (1 MiB by default): refused, not lost.
    assert!(matches!(queue.enqueue(call("big", vec![0; 2 << 20])).await, Err(AsyncError::TooLarge { .. })));
}

#[tokio::test]
async fn a_claim_left_to_expire_is_a_redelivery_and_a_retry_is_not() {
    let Some(server) = nats_server().await else { return };
    let queue = queue_with_ack_wait(&server, Duration::from_secs(1)).await;
    queue.enqueue(call("lost", b"1".to_vec())).await.unwrap();
    let first = queue.claim(WAIT).await.unwrap().unwrap();
    assert_eq!((first.call.attempts, first.redelivered), (1, false));
    // Neither acked nor nacked, as when its gateway died: after ack_wait
    // JetStream hands it out again, and it may have run.
    let again = queue.claim(WAIT).await.unwrap().expect("redelivered after ack_wait");
    assert_eq!((again.call.id.as_str(), again.call.attempts, again.redelivered), ("lost", 2, true));
    // A retry the worker asked for is not a redelivery.
    queue.nack(&again, Duration::from_millis(100)).await.unwrap();
    let retry = queue.claim(WAIT).await.unwrap().expect("back after the retry delay");
    assert_eq!((retry.call.attempts, retry.redelivered), (3, false));
    queue.ack(&retry).await.unwrap();
    assert!(queue.claim(Duration::from_millis(1500)).await.unwrap().is_none(), "acked for good");

    // Through the dispatcher: the redelivery is counted.
    let metrics = Arc::new(AsyncMetrics::new());
    let provider = InMemoryProvider::new().with_handler("echo", |_, _| async { text(200, "ok") });
    let deployment = FunctionDeployment { service: "echo".into(), image: "echo".into(), ..Default::default() };
    provider.deploy(deployment).await.unwrap();
    queue.enqueue(call("dies", b"2".to_vec())).await.unwrap();
    let _held = queue.claim(WAIT).await.unwrap().unwrap();
    let workers =
        Dispatcher::new(queue.clone(), Arc::new(provider), DispatcherConfig::default(), metrics.clone()).spawn();
    let encoded = || {
        let mut registry = prometheus_client::registry::Registry::default();
        metrics.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    };
    wait_for("the call completes", || {
        encoded().contains(r#"gateway_async_completed_total{function_name="echo.openfaas-fn"} 1"#)
    })
    .await;
    let text = encoded();
    assert!(text.contains(r#"gateway_async_redelivered_total{function_name="echo.openfaas-fn"} 1"#), "{text}");
    workers.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn bodies_near_max_payload_are_queued_and_larger_ones_get_413_naming_the_server_limit() {
    let Some(server) = nats_server().await else { return };
    let queue = queue(&server).await;
    // 900 KiB of every byte value: as base64 inside JSON this did not fit
    // the server's default max_payload of 1 MiB.
    let body: Vec<u8> = (0..900 * 1024).map(|i| (i % 251) as u8).collect();
    let mut big = call("big", body.clone());
    big.headers = vec![("x-bin".into(), vec![0, 255, b'\n'])];
    queue.enqueue(big.clone()).await.unwrap();
    let claimed = queue.claim(WAIT).await.unwrap().unwrap();
    assert_eq!(claimed.call, QueuedCall { attempts: 1, ..big.clone() });
    // Its dead letter fits too, with a long reason, and replays whole.
    queue.dead_letter(&claimed, FailedStage::Invoke, "x".repeat(100_000)).await.unwrap();
    let dead = queue.dead_letters().await.unwrap();
    assert_eq!((dead.len(), dead[0].call.body == body), (1, true));
    assert!(dead[0].reason.len() <= 1024, "the reason is cut short");
    queue.replay("big").await.unwrap();
    let replayed = queue.claim(WAIT).await.unwrap().unwrap();
    assert_eq!((replayed.call.body == body, replayed.call.headers.clone()), (true, big.headers.clone()));
    queue.ack(&replayed).await.unwrap();

    // Just under max_payload: the headers do not fit alongside; refused
    // with the limit named, never stored.
    match queue.enqueue(call("over", vec![1; 1024 * 1024 - 100])).await {
        Err(AsyncError::TooLarge { message, .. }) => {
            assert!(message.contains("max_payload of 1048576 bytes"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(queue.claim(Duration::from_millis(300)).await.unwrap().is_none());

    // Calls in the earlier format (the whole call as JSON) are still read.
    let client = async_nats::connect(server.url.as_str()).await.unwrap();
    let old = call("old", b"legacy".to_vec()).encode().unwrap();
    async_nats::jetstream::new(client).publish("FAAS_ASYNC.calls", old.into()).await.unwrap().await.unwrap();
    let legacy = queue.claim(WAIT).await.unwrap().unwrap();
    assert_eq!((legacy.call.id.as_str(), legacy.call.body.as_slice()), ("old", &b"legacy"[..]));
    queue.ack(&legacy).await.unwrap();

    // Through the routes: 413 with the server's limit in words, whether
    // the size is declared or only found while reading; 202 below it.
    let provider = InMemoryProvider::new().with_handler("echo", |_, _| async { text(200, "ok") });
    let deployment = FunctionDeployment { service: "echo".into(), image: "echo".into(), ..Default::default() };
    provider.deploy(deployment).await.unwrap();
    let app = router(queue.clone(), Arc::new(provider), Arc::new(AsyncMetrics::new()), AsyncApiConfig::default());
    let send = |request: Request<AxumBody>| {
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await.unwrap();
            let status = response.status();
            let platform = response.headers().contains_key("x-faas-error");
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, platform, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let declared = Request::post("/async-function/echo")
        .header("content-length", 2 << 20)
        .body(AxumBody::from(vec![0u8; 2 << 20]))
        .unwrap();
    let (status, platform, message) = send(declared).await;
    assert_eq!((status, platform), (StatusCode::PAYLOAD_TOO_LARGE, true), "{message}");
    assert!(message.contains("of 2097152 bytes") && message.contains("max_payload of 1048576 bytes"), "{message}");
    let chunks = (0..12).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0u8; 100 * 1024])));
    let streamed =
        Request::post("/async-function/echo").body(AxumBody::from_stream(futures_util::stream::iter(chunks))).unwrap();
    let (status, _, message) = send(streamed).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{message}");
    assert!(message.contains("max_payload of 1048576 bytes"), "{message}");
    let fits = Request::post("/async-function/echo").body(AxumBody::from(body)).unwrap();
    assert_eq!(send(fits).await.0, StatusCode::ACCEPTED);
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// What the functions of one "gateway" share with the test.
#[derive(Default)]
struct Runs {
    /// Invocations by call id, across gateways.
    by_call: Mutex<HashMap<String, usize>>,
    flaky: AtomicUsize,
    broken_fixed: AtomicBool,
}

fn text(status: u16, body: &str) -> Response<Body> {
    Response::builder().status(status).body(Body::from(body.to_owned())).unwrap()
}

/// One gateway: its own provider (same functions), router and workers,
/// sharing the JetStream queue.
async fn gateway(server: &NatsServer, runs: Arc<Runs>) -> (Router, faas_async::DispatcherHandle) {
    let (ok_runs, flaky_runs, broken_runs) = (runs.clone(), runs.clone(), runs);
    let provider = InMemoryProvider::new()
        .with_handler("ok", move |request: Request<Body>, _| {
            let id = request.headers().get("x-call-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            *ok_runs.by_call.lock().unwrap().entry(id).or_default() += 1;
            async move { text(200, "ok") }
        })
        .with_handler("flaky", move |_, _| {
            let n = flaky_runs.flaky.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    text(503, "not yet")
                } else {
                    text(200, "finally")
                }
            }
        })
        .with_handler("broken", move |_, _| {
            let fixed = broken_runs.broken_fixed.load(Ordering::SeqCst);
            async move {
                if fixed {
                    text(200, "fixed")
                } else {
                    text(504, "slow")
                }
            }
        });
    for (name, labels) in [
        ("ok", None),
        ("flaky", None),
        ("broken", Some(BTreeMap::from([(MAX_ATTEMPTS_LABEL.to_owned(), "2".to_owned())]))),
    ] {
        let deployment =
            FunctionDeployment { service: name.into(), image: name.into(), labels, ..FunctionDeployment::default() };
        provider.deploy(deployment).await.unwrap();
    }
    let provider: SharedProvider = Arc::new(provider);
    let queue = queue(server).await;
    let config = DispatcherConfig {
        backoff: Backoff { base: Duration::from_millis(20), cap: Duration::from_millis(200) },
        ..DispatcherConfig::default()
    };
    let metrics = Arc::new(AsyncMetrics::new());
    let api = AsyncApiConfig { dispatcher: config.clone(), ..AsyncApiConfig::default() };
    let app = router(queue.clone(), provider.clone(), metrics.clone(), api);
    let workers = Dispatcher::new(queue, provider, config, metrics).spawn();
    (app, workers)
}

async fn post(app: &Router, path: &str, callback: &str) -> (StatusCode, String) {
    let request = Request::post(path).header("x-callback-url", callback).body(AxumBody::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let id = response.headers().get("x-call-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    (response.status(), id)
}

#[tokio::test]
async fn two_gateways_share_the_queue_and_run_each_call_once() {
    let Some(server) = nats_server().await else { return };
    let runs = Arc::new(Runs::default());
    let (one, one_workers) = gateway(&server, runs.clone()).await;
    let (two, two_workers) = gateway(&server, runs.clone()).await;
    let callbacks = CallbackServer::start().await.expect("the callback server starts");
    let url = callbacks.url().to_owned();
    let mut ids = Vec::new();
    for i in 0..20 {
        let app = if i % 2 == 0 { &one } else { &two };
        let (status, id) = post(app, "/async-function/ok", &url).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        ids.push(id);
    }
    wait_for("every call calls back", || callbacks.received().len() >= ids.len()).await;
    // Give a duplicate, if there were one, time to show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let by_call = runs.by_call.lock().unwrap().clone();
    for id in &ids {
        assert_eq!(by_call.get(id), Some(&1), "call {id} ran exactly once");
    }
    let received = callbacks.received();
    assert_eq!(received.len(), ids.len(), "one callback per call");
    assert!(received.iter().all(|c| c.function_status == "200"));
    one_workers.shutdown(Duration::from_secs(5)).await;
    two_workers.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn retries_dead_letters_and_replay_work_over_jetstream() {
    let Some(server) = nats_server().await else { return };
    let runs = Arc::new(Runs::default());
    let (app, workers) = gateway(&server, runs.clone()).await;
    let mut callbacks = CallbackServer::start().await.expect("the callback server starts");
    let url = callbacks.url().to_owned();

    let (_, flaky) = post(&app, "/async-function/flaky", &url).await;
    let got = callbacks.next(WAIT).await.expect("the flaky call succeeds");
    assert_eq!(
        (got.call_id.as_str(), got.function_status.as_str(), got.text().as_str()),
        (flaky.as_str(), "200", "finally")
    );
    assert_eq!(runs.flaky.load(Ordering::SeqCst), 3);

    let (_, broken) = post(&app, "/async-function/broken", &url).await;
    let list = || async {
        let request = Request::get("/system/async/dead-letters").body(AxumBody::empty()).unwrap();
        let body = app.clone().oneshot(request).await.unwrap().into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()
    };
    let deadline = Instant::now() + WAIT;
    let dead = loop {
        let dead = list().await;
        if dead.as_array().is_some_and(|a| !a.is_empty()) {
            break dead;
        }
        assert!(Instant::now() < deadline, "the broken call is dead-lettered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(dead[0]["id"], broken.as_str());
    assert_eq!(dead[0]["attempts"], 2);
    runs.broken_fixed.store(true, Ordering::SeqCst);
    let (status, _) = {
        let request = Request::post(format!("/system/async/dead-letters/{broken}/replay")).body(AxumBody::empty());
        let response = app.clone().oneshot(request.unwrap()).await.unwrap();
        (response.status(), ())
    };
    assert_eq!(status, StatusCode::ACCEPTED);
    let got = callbacks.next(WAIT).await.expect("the replayed call succeeds");
    assert_eq!(
        (got.call_id.as_str(), got.function_status.as_str(), got.text().as_str()),
        (broken.as_str(), "200", "fixed")
    );
    assert_eq!(list().await, serde_json::json!([]));
    workers.shutdown(Duration::from_secs(5)).await;
}
