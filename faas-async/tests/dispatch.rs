//! The whole asynchronous path over an in-memory provider: accept, persist,
//! invoke, retry, callback, dead letters and replay. Loopback only.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body as AxumBody;
use axum::Router;
use bytes::Bytes;
use custom_provider::InMemoryProvider;
use faas_async::api::{router, AsyncApiConfig};
use faas_async::{
    AsyncMetrics, Backoff, Dispatcher, DispatcherConfig, DispatcherHandle, EmbeddedQueue, Queue, MAX_ATTEMPTS_LABEL,
};
use faas_core::api::BasicAuth;
use faas_core::{Body, FunctionDeployment, Provider, SharedProvider};
use faas_test_support::callbacks::{Callback, CallbackServer};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

const WAIT: Duration = Duration::from_secs(30);

/// The dead letters, once there is at least one (at most [`WAIT`]).
async fn first_dead_letters(harness: &Harness, what: &str) -> Vec<faas_async::DeadLetter> {
    tokio::time::timeout(WAIT, async {
        loop {
            let dead = harness.queue.dead_letters().await.unwrap();
            if !dead.is_empty() {
                return dead;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}"))
}

async fn next_callback(callbacks: &mut CallbackServer) -> Callback {
    callbacks.next(WAIT).await.expect("a callback in time")
}

struct Counters {
    flaky: AtomicUsize,
    panicky: AtomicUsize,
    broken: AtomicUsize,
    broken_fixed: AtomicBool,
}

fn text(status: u16, body: impl Into<String>) -> Response<Body> {
    Response::builder().status(status).body(Body::from(body.into())).unwrap()
}

/// A provider with `ok` (echoes method, path and body), `flaky` (503 twice,
/// then 200) and `broken` (502 until fixed, at most 3 attempts).
async fn provider(counters: Arc<Counters>) -> SharedProvider {
    let flaky = counters.clone();
    let panicky = counters.clone();
    let broken = counters.clone();
    let provider = InMemoryProvider::new()
        .with_handler("ok", |request: Request<Body>, _| async move {
            let method = request.method().to_string();
            let uri = request.uri().to_string();
            let header = request.headers().get("x-test").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let body = request.into_body().collect_limited(1 << 20).await.unwrap();
            text(200, format!("{method} {uri} {header} {}", String::from_utf8_lossy(&body)))
        })
        .with_handler("flaky", move |_, _| {
            let n = flaky.flaky.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    text(503, "not yet")
                } else {
                    text(200, "finally")
                }
            }
        })
        .with_handler("panicky", move |_, _| {
            let n = panicky.panicky.fetch_add(1, Ordering::SeqCst);
            async move {
                assert!(n > 0, "the first attempt's worker panics");
                text(200, "survived")
            }
        })
        .with_handler("broken", move |_, _| {
            broken.broken.fetch_add(1, Ordering::SeqCst);
            let fixed = broken.broken_fixed.load(Ordering::SeqCst);
            async move {
                if fixed {
                    text(200, "fixed")
                } else {
                    text(502, "broken")
                }
            }
        });
    for (name, labels) in [
        ("ok", None),
        ("flaky", None),
        ("panicky", None),
        ("broken", Some(BTreeMap::from([(MAX_ATTEMPTS_LABEL.to_owned(), "3".to_owned())]))),
        ("serial", Some(BTreeMap::from([("com.openfaas.async.concurrency".to_owned(), "1".to_owned())]))),
        ("badlabel", Some(BTreeMap::from([(MAX_ATTEMPTS_LABEL.to_owned(), "zero".to_owned())]))),
    ] {
        let image = if name == "serial" || name == "badlabel" { "ok" } else { name };
        let deployment =
            FunctionDeployment { service: name.into(), image: image.into(), labels, ..FunctionDeployment::default() };
        provider.deploy(deployment).await.unwrap();
    }
    Arc::new(provider)
}

struct Harness {
    app: Router,
    queue: Arc<EmbeddedQueue>,
    metrics: Arc<AsyncMetrics>,
    counters: Arc<Counters>,
    workers: Option<DispatcherHandle>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start(dispatcher: DispatcherConfig, basic_auth: Option<BasicAuth>) -> Harness {
        Harness::start_with_lease(dispatcher, basic_auth, faas_async::DEFAULT_LEASE_TIMEOUT).await
    }

    async fn start_with_lease(dispatcher: DispatcherConfig, basic_auth: Option<BasicAuth>, lease: Duration) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let queue = Arc::new(EmbeddedQueue::open(dir.path()).await.unwrap().0.with_lease_timeout(lease));
        let counters = Arc::new(Counters {
            flaky: AtomicUsize::new(0),
            panicky: AtomicUsize::new(0),
            broken: AtomicUsize::new(0),
            broken_fixed: AtomicBool::new(false),
        });
        let provider = provider(counters.clone()).await;
        let metrics = Arc::new(AsyncMetrics::new());
        let config = AsyncApiConfig { max_body_bytes: 1024, basic_auth, dispatcher: dispatcher.clone() };
        let app = router(queue.clone(), provider.clone(), metrics.clone(), config);
        let workers = Dispatcher::new(queue.clone(), provider, dispatcher, metrics.clone()).spawn();
        Harness { app, queue, metrics, counters, workers: Some(workers), _dir: dir }
    }

    async fn send(&self, request: Request<AxumBody>) -> (StatusCode, http::HeaderMap, Bytes) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        (parts.status, parts.headers, body.collect().await.unwrap().to_bytes())
    }

    /// Enqueues a call and returns its id.
    async fn call(&self, path: &str, callback: Option<&str>, body: &'static str) -> String {
        let mut request = Request::post(path).header("x-test", "kept");
        if let Some(url) = callback {
            request = request.header("x-callback-url", url);
        }
        let (status, headers, text) = self.send(request.body(AxumBody::from(body)).unwrap()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{path}: {text:?}");
        headers.get("x-call-id").expect("an X-Call-Id").to_str().unwrap().to_owned()
    }

    fn metrics_text(&self) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        self.metrics.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    async fn stop(mut self) {
        if let Some(workers) = self.workers.take() {
            workers.shutdown(Duration::from_secs(5)).await;
        }
    }
}

fn fast() -> DispatcherConfig {
    DispatcherConfig {
        backoff: Backoff { base: Duration::from_millis(20), cap: Duration::from_millis(200) },
        callback_attempts: 2,
        callback_timeout: Duration::from_secs(5),
        ..DispatcherConfig::default()
    }
}

#[tokio::test]
async fn accepted_calls_run_and_their_response_reaches_the_callback() {
    let harness = Harness::start(fast(), None).await;
    let mut callbacks = CallbackServer::start().await.expect("the callback server starts");
    let url = callbacks.url().to_owned();
    let id = harness.call("/async-function/ok/sub/path?q=1", Some(&url), "payload").await;
    let got = next_callback(&mut callbacks).await;
    assert_eq!(got.call_id, id);
    assert_eq!(got.function_status, "200");
    assert!(got.duration.is_some_and(|d| d.parse::<f64>().is_ok()), "X-Duration-Seconds");
    assert_eq!(got.body, Bytes::from("POST /sub/path?q=1 kept payload"));
    // Without a callback the call still runs and completes.
    harness.call("/async-function/ok.openfaas-fn", None, "").await;
    let text = harness.metrics_text();
    tokio::time::timeout(WAIT, async {
        while !harness.metrics_text().contains(r#"gateway_async_completed_total{function_name="ok.openfaas-fn"} 2"#) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("both calls complete: {text}"));
    assert!(harness.metrics_text().contains(r#"gateway_async_queued_total{function_name="ok.openfaas-fn"} 2"#));
    harness.stop().await;
}

#[tokio::test]
async fn bad_calls_are_refused_before_they_are_queued() {
    let harness = Harness::start(fast(), None).await;
    let post = |path: &str, body: Vec<u8>| Request::post(path).body(AxumBody::from(body)).unwrap();
    let (status, headers, _) = harness.send(post("/async-function/nope", vec![])).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers.get("x-faas-error").unwrap(), "platform");
    for impossible in ["/async-function/.openfaas-fn", "/async-function/Not_Valid/x", "/async-function/ok."] {
        let (status, _, body) = harness.send(post(impossible, vec![])).await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, StatusCode::NOT_FOUND, "{impossible}: {text}");
        assert!(text.contains("not found"), "{impossible}: {text}");
    }
    let (status, headers, _) = harness.send(post("/async-function/ok", vec![b'x'; 1025])).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(headers.get("x-faas-error").unwrap(), "platform");
    let (status, _, _) = harness.send(post("/async-function/ok", vec![b'x'; 1024])).await;
    assert_eq!(status, StatusCode::ACCEPTED, "exactly the limit is fine");
    let request =
        Request::post("/async-function/ok").header("x-callback-url", "https://x.invalid/").body(AxumBody::empty());
    let (status, _, text) = harness.send(request.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text:?}");
    let (status, _, text) = harness.send(post("/async-function/badlabel", vec![])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&text).contains(MAX_ATTEMPTS_LABEL), "{text:?}");
    harness.stop().await;
}

#[tokio::test]
async fn failures_are_retried_then_dead_lettered_and_replayed() {
    let harness = Harness::start(fast(), None).await;
    let mut callbacks = CallbackServer::start().await.expect("the callback server starts");
    let url = callbacks.url().to_owned();

    // Fails twice with 503, then succeeds: retried, one callback, 200.
    let flaky = harness.call("/async-function/flaky", Some(&url), "").await;
    let got = next_callback(&mut callbacks).await;
    assert_eq!((got.call_id.as_str(), got.function_status.as_str()), (flaky.as_str(), "200"));
    assert_eq!(got.body, Bytes::from("finally"));
    assert_eq!(harness.counters.flaky.load(Ordering::SeqCst), 3);
    assert!(harness.metrics_text().contains(r#"gateway_async_retried_total{function_name="flaky.openfaas-fn"} 2"#));

    // Always 502 with max-attempts 3: dead-lettered after three attempts.
    let broken = harness.call("/async-function/broken", Some(&url), "keep me").await;
    let dead = first_dead_letters(&harness, "the call is dead-lettered").await;
    assert_eq!(dead.len(), 1);
    assert_eq!(harness.counters.broken.load(Ordering::SeqCst), 3);
    let (status, _, listing) =
        harness.send(Request::get("/system/async/dead-letters").body(AxumBody::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let listing: serde_json::Value = serde_json::from_slice(&listing).unwrap();
    assert_eq!(listing[0]["id"], broken.as_str());
    assert_eq!(listing[0]["attempts"], 3);
    assert_eq!(listing[0]["stage"], "invoke");
    assert_eq!(listing[0]["function"], "broken.openfaas-fn");
    assert_eq!(listing[0]["bodyBytes"], 7);
    assert!(harness
        .metrics_text()
        .contains(r#"gateway_async_dead_lettered_total{function_name="broken.openfaas-fn",stage="invoke"} 1"#));

    // Replaying an unknown id is a 404; replaying the call runs it again.
    let replay =
        |id: &str| Request::post(format!("/system/async/dead-letters/{id}/replay")).body(AxumBody::empty()).unwrap();
    assert_eq!(harness.send(replay("no-such-id")).await.0, StatusCode::NOT_FOUND);
    harness.counters.broken_fixed.store(true, Ordering::SeqCst);
    let (status, headers, _) = harness.send(replay(&broken)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(headers.get("x-call-id").unwrap().to_str().unwrap(), broken);
    let got = next_callback(&mut callbacks).await;
    assert_eq!((got.call_id.as_str(), got.function_status.as_str()), (broken.as_str(), "200"));
    assert_eq!(got.body, Bytes::from("fixed"));
    assert!(harness.queue.dead_letters().await.unwrap().is_empty());
    assert_eq!(callbacks.next(Duration::ZERO).await, None, "no callback for the failed attempts");
    harness.stop().await;
}

#[tokio::test]
async fn unreachable_callbacks_are_retried_and_recorded_without_blocking_other_calls() {
    let mut config = fast();
    // Slow callback retries: the stuck call would hold things up if it could.
    config.backoff = Backoff { base: Duration::from_millis(400), cap: Duration::from_millis(800) };
    config.callback_attempts = 3;
    let harness = Harness::start(config, None).await;
    let mut callbacks = CallbackServer::start().await.expect("the callback server starts");
    let url = callbacks.url().to_owned();
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}/gone", listener.local_addr().unwrap())
    };
    // `serial` runs one call at a time; the stuck one goes first.
    let stuck = harness.call("/async-function/serial", Some(&closed), "first").await;
    let fine = harness.call("/async-function/serial", Some(&url), "second").await;
    let got = next_callback(&mut callbacks).await;
    assert_eq!(got.call_id, fine);
    assert!(
        harness.queue.dead_letters().await.unwrap().is_empty(),
        "the other call finished while the stuck callback was still being retried"
    );
    let dead = first_dead_letters(&harness, "the stuck call is recorded").await;
    assert_eq!(dead[0].call.id, stuck);
    assert_eq!(dead[0].stage, faas_async::FailedStage::Callback);
    assert!(dead[0].reason.contains("3 callback attempts failed"), "{}", dead[0].reason);
    assert!(harness
        .metrics_text()
        .contains(r#"gateway_async_callback_failures_total{function_name="serial.openfaas-fn"} 3"#));
    harness.stop().await;
}

#[tokio::test]
async fn dead_letter_routes_need_the_credentials_when_set() {
    let credentials = BasicAuth { user: "admin".into(), password: "secret".into() };
    let harness = Harness::start(fast(), Some(credentials)).await;
    let (status, headers, _) =
        harness.send(Request::get("/system/async/dead-letters").body(AxumBody::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.contains_key("www-authenticate"));
    let request = Request::get("/system/async/dead-letters")
        .header("authorization", "Basic YWRtaW46c2VjcmV0")
        .body(AxumBody::empty())
        .unwrap();
    let (status, _, body) = harness.send(request).await;
    assert_eq!((status, body), (StatusCode::OK, Bytes::from("[]")));
    // Calls themselves stay open, as /function/ does.
    harness.call("/async-function/ok", None, "").await;
    harness.stop().await;
}

/// A callback receiver that accepts connections and never answers; how
/// many connections it got.
async fn silent_server() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/never", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (url, accepted)
}

#[tokio::test]
async fn a_dead_callback_does_not_hold_the_capacity_that_runs_functions() {
    let mut config = fast();
    // One call claimed at a time: with the callback delivered inline, the
    // second call would wait for the first callback's 3 attempts of 2s.
    config.max_claimed = 1;
    config.callback_attempts = 3;
    config.callback_timeout = Duration::from_secs(2);
    config.backoff = Backoff { base: Duration::from_millis(200), cap: Duration::from_millis(400) };
    let harness = Harness::start(config, None).await;
    let (silent, accepted) = silent_server().await;
    let mut callbacks = CallbackServer::start().await.expect("the callback server starts");
    let url = callbacks.url().to_owned();

    let stuck = harness.call("/async-function/ok", Some(&silent), "first").await;
    tokio::time::timeout(WAIT, async {
        while accepted.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the first call reaches its callback stage");
    let started = std::time::Instant::now();
    let fine = harness.call("/async-function/serial", Some(&url), "second").await;
    let got = next_callback(&mut callbacks).await;
    let took = started.elapsed();
    assert_eq!((got.call_id.as_str(), got.function_status.as_str()), (fine.as_str(), "200"));
    assert!(took < Duration::from_millis(1500), "the second call waited {took:?} behind a dead callback");
    assert!(harness.metrics_text().contains(r#"gateway_async_callbacks_pending{function_name="ok.openfaas-fn"} 1"#));

    // The stuck call still gets all its delivery attempts, then is recorded.
    let dead = first_dead_letters(&harness, "the stuck call is recorded").await;
    assert_eq!((dead[0].call.id.as_str(), dead[0].stage), (stuck.as_str(), faas_async::FailedStage::Callback));
    assert!(dead[0].reason.contains("timed out"), "{}", dead[0].reason);
    assert_eq!(accepted.load(Ordering::SeqCst), 3, "three delivery attempts");
    let text = harness.metrics_text();
    assert!(text.contains(r#"gateway_async_callbacks_pending{function_name="ok.openfaas-fn"} 0"#), "{text}");
    harness.stop().await;
}

#[tokio::test]
async fn the_call_of_a_worker_that_panicked_runs_again_after_the_lease_timeout() {
    let harness = Harness::start_with_lease(fast(), None, Duration::from_millis(600)).await;
    let mut callbacks = CallbackServer::start().await.expect("the callback server starts");
    let url = callbacks.url().to_owned();
    let id = harness.call("/async-function/panicky", Some(&url), "").await;
    let got = next_callback(&mut callbacks).await;
    assert_eq!((got.call_id.as_str(), got.function_status.as_str()), (id.as_str(), "200"));
    assert_eq!(got.body, Bytes::from("survived"));
    assert_eq!(harness.counters.panicky.load(Ordering::SeqCst), 2);
    let settled = r#"gateway_async_completed_total{function_name="panicky.openfaas-fn"} 1"#;
    tokio::time::timeout(WAIT, async {
        while !harness.metrics_text().contains(settled) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the call completes");
    // The panicked worker is no longer counted in flight.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let text = harness.metrics_text();
    for line in [
        r#"gateway_async_redelivered_total{function_name="panicky.openfaas-fn"} 1"#,
        r#"gateway_async_inflight{function_name="panicky.openfaas-fn"} 0"#,
    ] {
        assert!(text.contains(line), "{line}:\n{text}");
    }
    harness.stop().await;
}
