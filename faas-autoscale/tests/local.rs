//! The scaling layer over the real local provider (real processes), with a
//! manual clock where decisions depend on time.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{cat, function, post, within, Fixture};
use faas_autoscale::{ScalingConfig, SCALE_MAX, SCALE_MIN, SCALE_TARGET, SCALE_ZERO, SCALE_ZERO_DURATION};
use faas_core::{Body, Error, Provider};
use http::StatusCode;
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_call_after_a_scale_to_zero_is_answered() {
    let fx = Fixture::new(ScalingConfig::default()).await;
    fx.scaler.deploy(cat("echo", &[], &[])).await.unwrap();
    assert_eq!(post(&fx.scaler, "echo", "warm").await.unwrap(), (StatusCode::OK, Bytes::from("warm")));

    fx.scaler.scale(&function("echo"), 0).await.unwrap();
    assert_eq!(fx.status("echo").await.replicas, 0);
    // Without the layer the provider refuses the call.
    assert!(matches!(post(fx.local.as_ref(), "echo", "x").await, Err(Error::Unavailable { .. })));
    fx.counting.take_scales();

    let answer = within("the cold call", post(&fx.scaler, "echo", "cold")).await.unwrap();
    assert_eq!(answer, (StatusCode::OK, Bytes::from("cold")));
    assert_eq!(fx.counting.take_scales(), [(function("echo"), 1)], "scaled to its min of 1");
    let status = fx.status("echo").await;
    assert_eq!((status.replicas, status.available_replicas), (1, 1));
    assert_eq!(fx.scaler.metrics().cold_starts(&function("echo")), 1);
    fx.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_calls_share_one_scale_up() {
    let fx = Fixture::new(ScalingConfig::default()).await;
    // Four replicas take the burst; a long ready_timeout lets calls queue
    // for a free one instead of failing.
    let deployment = cat("burst", &[(SCALE_MIN, "4")], &[("ready_timeout", "60s")]);
    fx.scaler.deploy(deployment).await.unwrap();
    fx.scaler.scale(&function("burst"), 0).await.unwrap();
    fx.counting.take_scales();

    // The scale-up cannot finish until every call is held at once.
    fx.counting.shut_scales();
    let calls: Vec<_> = (0..100)
        .map(|i| {
            let scaler = fx.scaler.clone();
            tokio::spawn(async move { post(&scaler, "burst", format!("call {i}")).await })
        })
        .collect();
    fx.wait_view("burst", "all 100 calls held together", |v| v.held == 100 && v.inflight == 100).await;
    assert_eq!(fx.counting.scales(), [(function("burst"), 4)], "one scale-up, waiting, for all 100 calls");
    assert_eq!(fx.status("burst").await.replicas, 0, "nothing has started yet");
    fx.counting.open_scales();
    for (i, call) in calls.into_iter().enumerate() {
        let answer = within("a held call", call).await.unwrap();
        let (status, body) = answer.unwrap_or_else(|e| panic!("call {i}: {}", e.message()));
        assert_eq!((status, body), (StatusCode::OK, Bytes::from(format!("call {i}"))));
    }
    assert_eq!(fx.counting.take_scales(), [(function("burst"), 4)], "exactly one scale-up, to the min");
    assert_eq!(fx.scaler.metrics().cold_starts(&function("burst")), 1);
    let view = fx.scaler.function(&function("burst")).unwrap();
    assert_eq!((view.inflight, view.held), (0, 0), "{view:?}");
    fx.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_never_gets_ready_gets_the_documented_errors_at_the_bounds() {
    let mut config = ScalingConfig::default();
    config.hold_timeout = Duration::from_secs(2);
    config.max_held = 2;
    let fx = Fixture::new(config).await;
    // HTTP mode, but the process never listens on $PORT: never ready.
    let mut never = cat("never", &[], &[("mode", "http")]);
    never.env_process = "sleep 600".to_owned();
    fx.scaler.deploy(never).await.unwrap();

    let held: Vec<_> = (0..2)
        .map(|_| {
            let scaler = fx.scaler.clone();
            tokio::spawn(async move { post(&scaler, "never", "x").await })
        })
        .collect();
    fx.wait_view("never", "two held calls", |v| v.held == 2).await;
    match post(&fx.scaler, "never", "third").await {
        Err(err @ Error::Unavailable { .. }) => {
            assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(err.message().contains("is starting and 2 calls are already waiting"), "{}", err.message());
        }
        other => panic!("a call past max_held: expected Unavailable, got {other:?}"),
    }
    for call in held {
        match within("a held call", call).await.unwrap() {
            Err(err @ Error::Timeout { .. }) => {
                assert_eq!(err.status(), StatusCode::GATEWAY_TIMEOUT);
                let message = err.message();
                assert!(message.contains("function never.openfaas-fn is starting"), "{message}");
                assert!(message.contains("replicas 1, available 0"), "{message}");
            }
            other => panic!("a call held past hold_timeout: expected Timeout, got {other:?}"),
        }
    }
    assert!(fx.counting.take_scales().is_empty(), "a function at 1 replica is waited for, not scaled");
    fx.close().await;
}

/// A call whose request body stays open until its sender is dropped: in
/// flight as long as the test wants.
fn open_call(
    scaler: &faas_autoscale::Scaler,
    name: &'static str,
) -> (mpsc::Sender<Bytes>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
    });
    let scaler = scaler.clone();
    let call = tokio::spawn(async move {
        let answer = post(&scaler, name, Body::from_stream(chunks)).await;
        let (status, body) = answer.unwrap_or_else(|e| panic!("an open call: {}", e.message()));
        assert_eq!((status, body), (StatusCode::OK, Bytes::from("payload")));
    });
    (tx, call)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_above_target_scales_up_to_max_and_idle_back_to_min() {
    let fx = Fixture::new(ScalingConfig::default()).await;
    let labels = [(SCALE_TARGET, "1"), (SCALE_MAX, "3")];
    fx.scaler.deploy(cat("busy", &labels, &[("ready_timeout", "60s")])).await.unwrap();
    fx.scaler.autoscale_once().await;
    assert_eq!(fx.scaler.function(&function("busy")).unwrap().replicas, 1);

    let calls: Vec<_> = (0..5).map(|_| open_call(&fx.scaler, "busy")).collect();
    fx.wait_view("busy", "five calls in flight", |v| v.inflight == 5).await;
    for _ in 0..3 {
        fx.clock.advance(Duration::from_secs(2));
        fx.scaler.autoscale_once().await;
        assert_eq!(fx.status("busy").await.replicas, 3, "ceil(5 / 1) capped at max 3");
    }
    assert_eq!(fx.counting.take_scales(), [(function("busy"), 3)], "one scale-up, never past max");

    // Every body ends before any call is awaited: two of the five calls
    // wait for a free replica until three others are done.
    let mut running = Vec::new();
    for (tx, call) in calls {
        tx.send(Bytes::from("payload")).await.unwrap();
        drop(tx);
        running.push(call);
    }
    for call in running {
        within("an open call to finish", call).await.unwrap();
    }
    fx.wait_view("busy", "no call in flight", |v| v.inflight == 0).await;
    fx.clock.advance(Duration::from_secs(30));
    fx.scaler.autoscale_once().await;
    assert_eq!(fx.status("busy").await.replicas, 3, "still within the stable window");
    fx.clock.advance(Duration::from_secs(31));
    fx.scaler.autoscale_once().await;
    assert_eq!(fx.status("busy").await.replicas, 1, "down to min once the stable window agrees");
    fx.clock.advance(Duration::from_secs(3600));
    fx.scaler.autoscale_once().await;
    assert_eq!(fx.status("busy").await.replicas, 1, "never to zero without scale.zero");
    assert_eq!(fx.counting.take_scales(), [(function("busy"), 1)]);
    fx.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_functions_scale_to_zero_only_when_enabled_and_wake_on_a_call() {
    let fx = Fixture::new(ScalingConfig::default()).await;
    fx.scaler.deploy(cat("keep", &[(SCALE_ZERO_DURATION, "5m")], &[])).await.unwrap();
    fx.scaler.deploy(cat("nap", &[(SCALE_ZERO, "true"), (SCALE_ZERO_DURATION, "5m")], &[])).await.unwrap();
    fx.scaler.autoscale_once().await;
    assert_eq!(post(&fx.scaler, "nap", "hi").await.unwrap().0, StatusCode::OK);

    fx.clock.advance(Duration::from_secs(299));
    fx.scaler.autoscale_once().await;
    assert_eq!((fx.status("keep").await.replicas, fx.status("nap").await.replicas), (1, 1), "not idle long enough");
    fx.clock.advance(Duration::from_secs(2));
    fx.scaler.autoscale_once().await;
    assert_eq!(fx.status("keep").await.replicas, 1, "scale.zero is off");
    assert_eq!(fx.status("nap").await.replicas, 0, "idle for zero-duration");
    fx.clock.advance(Duration::from_secs(600));
    fx.scaler.autoscale_once().await;
    assert_eq!(fx.status("nap").await.replicas, 0, "the autoscaler does not wake it");
    assert_eq!(fx.counting.take_scales(), [(function("nap"), 0)]);

    let answer = within("the call waking nap", post(&fx.scaler, "nap", "wake up")).await.unwrap();
    assert_eq!(answer, (StatusCode::OK, Bytes::from("wake up")));
    assert_eq!(fx.counting.take_scales(), [(function("nap"), 1)]);
    fx.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_scale_holds_until_the_stable_window_passes() {
    let fx = Fixture::new(ScalingConfig::default()).await;
    fx.scaler.deploy(cat("manual", &[], &[])).await.unwrap();
    fx.scaler.autoscale_once().await;
    fx.scaler.scale(&function("manual"), 3).await.unwrap();
    fx.clock.advance(Duration::from_secs(59));
    fx.scaler.autoscale_once().await;
    assert_eq!(fx.status("manual").await.replicas, 3);
    fx.clock.advance(Duration::from_secs(2));
    fx.scaler.autoscale_once().await;
    assert_eq!(fx.status("manual").await.replicas, 1);
    assert_eq!(fx.counting.take_scales(), [(function("manual"), 3), (function("manual"), 1)]);
    fx.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_scaling_labels_are_refused_and_deletes_are_forgotten() {
    let fx = Fixture::new(ScalingConfig::default()).await;
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[(SCALE_MAX, "0")], SCALE_MAX),
        (&[(SCALE_MIN, "5"), (SCALE_MAX, "2")], SCALE_MIN),
        (&[(SCALE_TARGET, "lots")], SCALE_TARGET),
        (&[(SCALE_ZERO_DURATION, "soon")], SCALE_ZERO_DURATION),
    ];
    for (labels, label) in cases {
        match fx.scaler.deploy(cat("bad", labels, &[])).await {
            Err(Error::Invalid { field, .. }) => assert_eq!(field, format!("labels.{label}")),
            other => panic!("{labels:?}: expected Invalid, got {other:?}"),
        }
    }
    assert!(matches!(fx.local.status(&function("bad")).await, Err(Error::NotFound { .. })), "nothing was deployed");

    fx.scaler.deploy(cat("good", &[(SCALE_MAX, "4")], &[])).await.unwrap();
    let bad_update = cat("good", &[(SCALE_ZERO, "sometimes")], &[]);
    assert!(matches!(fx.scaler.update(bad_update).await, Err(Error::Invalid { .. })));
    post(&fx.scaler, "good", "x").await.unwrap();
    assert_eq!(fx.scaler.function(&function("good")).unwrap().settings.max, 4);
    fx.scaler.update(cat("good", &[(SCALE_MAX, "6")], &[])).await.unwrap();
    assert_eq!(fx.scaler.function(&function("good")).unwrap().settings.max, 6);
    fx.scaler.delete(&function("good")).await.unwrap();
    assert!(fx.scaler.function(&function("good")).is_none());
    fx.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_to_zero_behind_the_layers_back_costs_one_call() {
    let fx = Fixture::new(ScalingConfig::default()).await;
    fx.scaler.deploy(cat("behind", &[], &[])).await.unwrap();
    post(&fx.scaler, "behind", "x").await.unwrap();
    fx.local.scale(&function("behind"), 0).await.unwrap();
    // The layer believed it ready: this call reaches the provider, which
    // refuses it, and the layer re-reads the status.
    assert!(matches!(post(&fx.scaler, "behind", "lost").await, Err(Error::Unavailable { .. })));
    fx.wait_view("behind", "learning it is at zero", |v| v.available == 0).await;
    let answer = within("the next call", post(&fx.scaler, "behind", "found")).await.unwrap();
    assert_eq!(answer, (StatusCode::OK, Bytes::from("found")));
    fx.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_measures_a_scale_from_zero() {
    let fx = Fixture::new(ScalingConfig::default()).await;
    fx.local.deploy(cat("probe", &[], &[])).await.unwrap();
    let provider: Arc<dyn Provider> = fx.local.clone();
    let request = http::Request::builder().method("POST").uri("/").body(Body::from("ping")).unwrap();
    let sample = faas_autoscale::scale_from_zero(provider, &function("probe"), request, common::WAIT).await.unwrap();
    assert_eq!((sample.status, sample.body, sample.replicas), (StatusCode::OK, Bytes::from("ping"), 1));
    assert!(sample.latency > Duration::ZERO);
    fx.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_rate_is_calls_begun_per_second_over_the_window() {
    let fx = Fixture::new(ScalingConfig::default()).await;
    let mut registry = prometheus_client::registry::Registry::default();
    fx.scaler.metrics().register(&mut registry);
    fx.scaler.deploy(cat("rated", &[], &[])).await.unwrap();
    fx.scaler.autoscale_once().await;
    let f = function("rated");
    assert_eq!(fx.scaler.metrics().request_rate(&f), 0.0, "no call yet");

    // Twelve calls while the clock stands still, then none: the 6s window
    // sees them over 2s, then 4s, then 6s, then no more.
    for i in 0..12 {
        assert_eq!(post(&fx.scaler, "rated", format!("{i}")).await.unwrap().0, StatusCode::OK);
    }
    let mut rates = Vec::new();
    for _ in 0..4 {
        fx.clock.advance(Duration::from_secs(2));
        fx.scaler.autoscale_once().await;
        rates.push(fx.scaler.metrics().request_rate(&f));
        if rates.len() == 1 {
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
            let line = r#"gateway_request_rate{function_name="rated.openfaas-fn"} 6.0"#;
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
    assert_eq!(rates, [6.0, 3.0, 2.0, 0.0], "calls begun per second over the last 6s");
    fx.close().await;
}
