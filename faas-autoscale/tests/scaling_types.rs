//! OpenFaaS's scaling types (`com.openfaas.scale.type`: capacity, rps,
//! cpu) over the real local provider, deciding by a manual clock: the
//! issue's scenario stepped through in simulated seconds.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::{cat, function, post, Fixture};
use faas_autoscale::{
    Clock, ManualClock, ScaleType, Scaler, ScalingConfig, SCALE_MAX, SCALE_TARGET, SCALE_TYPE, SCALE_ZERO,
};
use faas_core::{Capabilities, Error, FunctionRef, Provider, Result, SharedProvider};
use http::StatusCode;
use provider_local::{LocalConfig, LocalProvider};

/// The issue's gateway: `--scale-type rps --scale-target 5
/// --scale-down-window 30s --scale-zero-duration 30s`.
fn rps_config() -> ScalingConfig {
    let mut config = ScalingConfig::default();
    config.scale_type = ScaleType::Rps;
    config.target = 5;
    config.stable_window = Duration::from_secs(30);
    config.zero_duration = Duration::from_secs(30);
    config
}

/// One simulated second: `calls` calls to each of `names` (each a real
/// call through the layer), then the clock moves 1s; the autoscaler looks
/// every 2s (its default tick).
async fn second(fx: &Fixture, names: &[&str], calls: usize, elapsed: &mut u64) {
    for _ in 0..calls {
        for name in names {
            let (status, body) = post(&fx.scaler, name, "x").await.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!((status, &body[..]), (StatusCode::OK, &b"x"[..]), "{name}");
        }
    }
    fx.clock.advance(Duration::from_secs(1));
    *elapsed += 1;
    if *elapsed % 2 == 0 {
        fx.scaler.autoscale_once().await;
    }
}

fn replicas(fx: &Fixture, name: &str) -> u64 {
    fx.scaler.function(&function(name)).expect("the layer knows the function").replicas
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rps_reaches_max_under_10_calls_a_second_and_returns_to_min_then_zero() {
    let fx = Fixture::new(rps_config()).await;
    fx.scaler.deploy(cat("steady", &[(SCALE_MAX, "2")], &[])).await.unwrap();
    fx.scaler.deploy(cat("sleepy", &[(SCALE_MAX, "2"), (SCALE_ZERO, "true")], &[])).await.unwrap();
    // The same load by calls in flight: sequential calls are never 50 (or
    // even 1) in flight, so it stays at 1 replica, as the issue saw.
    fx.scaler.deploy(cat("inflight", &[(SCALE_MAX, "2"), (SCALE_TYPE, "capacity")], &[])).await.unwrap();
    fx.scaler.autoscale_once().await;
    let names = ["steady", "sleepy", "inflight"];

    // Load: 10 calls a second to each, until both rps functions are at 2.
    let mut elapsed = 0;
    let mut reached = None;
    while elapsed < 30 {
        second(&fx, &names, 10, &mut elapsed).await;
        if replicas(&fx, "steady") == 2 && replicas(&fx, "sleepy") == 2 {
            reached = Some(elapsed);
            break;
        }
    }
    let reached = reached.unwrap_or_else(|| panic!("not at 2 replicas within 30s of load: {:?}", fx.counting.scales()));
    assert!(reached <= 4, "the first looks see 10 calls/s over a target of 5: at 2 after {reached}s");
    assert_eq!(fx.status("steady").await.replicas, 2, "the provider was scaled");
    assert_eq!(fx.scaler.metrics().request_rate(&function("steady")).round(), 10.0);
    // A few more seconds of load: max bounds it, capacity does not move.
    for _ in 0..6 {
        second(&fx, &names, 10, &mut elapsed).await;
        assert_eq!(replicas(&fx, "steady"), 2, "max is 2");
    }
    assert_eq!(replicas(&fx, "inflight"), 1, "capacity counts calls in flight, not calls begun");

    // Load stops.
    let (mut at_min, mut at_zero) = (None, None);
    for idle in 1..=70u64 {
        second(&fx, &names, 0, &mut elapsed).await;
        if at_min.is_none() && replicas(&fx, "steady") == 1 {
            at_min = Some(idle);
        }
        if at_zero.is_none() && replicas(&fx, "sleepy") == 0 {
            at_zero = Some(idle);
        }
    }
    let at_min = at_min.expect("steady never went back to min");
    let at_zero = at_zero.expect("sleepy never went to zero");
    // The rate leaves the 6s window, then the 30s window must agree.
    assert!((30..=45).contains(&at_min), "back at min {at_min}s after the load stopped");
    assert!((30..=60).contains(&at_zero), "at zero {at_zero}s after the load stopped");
    assert_eq!(replicas(&fx, "steady"), 1, "min, not zero, without scale.zero");
    assert_eq!(fx.status("sleepy").await.replicas, 0);
    fx.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_metrics_show_the_type_and_target_in_use() {
    let fx = Fixture::new(rps_config()).await;
    fx.scaler.deploy(cat("plain", &[], &[])).await.unwrap();
    fx.scaler.deploy(cat("own", &[(SCALE_TYPE, "capacity"), (SCALE_TARGET, "20")], &[])).await.unwrap();
    for (name, kind, target) in [("plain", "rps", "5"), ("own", "capacity", "20")] {
        let status = fx.scaler.status(&function(name)).await.unwrap();
        let labels = status.labels.unwrap_or_default();
        assert_eq!(labels.get(SCALE_TYPE).map(String::as_str), Some(kind), "{name}: {labels:?}");
        assert_eq!(labels.get(SCALE_TARGET).map(String::as_str), Some(target), "{name}: {labels:?}");
        let listed = fx.scaler.list("openfaas-fn").await.unwrap();
        let listed = listed.iter().find(|s| s.name == name).unwrap();
        assert_eq!(listed.labels.as_ref().and_then(|l| l.get(SCALE_TYPE)).map(String::as_str), Some(kind));
    }
    let raw = fx.local.status(&function("plain")).await.unwrap();
    assert!(!raw.labels.unwrap_or_default().contains_key(SCALE_TYPE), "shown, not stored");

    fx.scaler.autoscale_once().await;
    let mut registry = prometheus_client::registry::Registry::default();
    fx.scaler.metrics().register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for line in [
        r#"gateway_scale_target{function_name="plain.openfaas-fn",scale_type="rps"} 5"#,
        r#"gateway_scale_target{function_name="own.openfaas-fn",scale_type="capacity"} 20"#,
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    fx.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_scaling_labels_are_refused_naming_the_label_and_change_nothing() {
    let fx = Fixture::new(ScalingConfig::default()).await;
    for (label, value, words) in [
        (SCALE_TYPE, "memory", "capacity, rps or cpu"),
        (SCALE_TARGET, "fast", "whole number"),
        (SCALE_TARGET, "0", "below 1"),
        (SCALE_TARGET, "-5", "whole number"),
    ] {
        match fx.scaler.deploy(cat("odd", &[(label, value)], &[])).await {
            Err(err @ Error::Invalid { .. }) => {
                assert_eq!(err.status(), StatusCode::BAD_REQUEST);
                let message = err.message();
                assert!(message.contains(&format!("labels.{label}")) && message.contains(words), "{message}");
            }
            other => panic!("{label}={value}: expected Invalid, got {other:?}"),
        }
        assert!(matches!(fx.local.status(&function("odd")).await, Err(Error::NotFound { .. })), "not deployed");
    }
    fx.scaler.deploy(cat("kept", &[(SCALE_TYPE, "rps")], &[])).await.unwrap();
    let refused = fx.scaler.update(cat("kept", &[(SCALE_TYPE, "gpu")], &[])).await;
    assert!(matches!(refused, Err(Error::Invalid { .. })), "{refused:?}");
    let labels = fx.local.status(&function("kept")).await.unwrap().labels.unwrap_or_default();
    assert_eq!(labels.get(SCALE_TYPE).map(String::as_str), Some("rps"), "the update changed nothing");
    fx.close().await;
}

/// The local provider, reporting the CPU time the test says (or declaring
/// it cannot measure CPU).
struct Cpu {
    inner: SharedProvider,
    measures: bool,
    used: Mutex<Duration>,
}

#[async_trait]
impl faas_core::Layer for Cpu {
    fn inner(&self) -> &dyn Provider {
        &*self.inner
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = self.inner.capabilities();
        caps.cpu_usage = self.measures;
        caps
    }

    async fn cpu_usage(&self, function: &FunctionRef) -> Result<Duration> {
        if !self.measures {
            return Err(Error::unsupported("cpu-test", "CPU measurement"));
        }
        self.inner.status(function).await?;
        Ok(*self.used.lock().unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_scales_by_millicores_only_where_the_provider_measures_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let local =
        Arc::new(LocalProvider::open(LocalConfig::new(dir.path().join("state"))).await.expect("the provider opens"));
    let blind = Cpu { inner: local.clone(), measures: false, used: Mutex::default() };
    let blind = Scaler::new(Arc::new(blind), ScalingConfig::default());
    match blind.deploy(cat("hot", &[(SCALE_TYPE, "cpu")], &[])).await {
        Err(err @ Error::Invalid { .. }) => {
            let message = err.message();
            assert!(message.contains("labels.com.openfaas.scale.type"), "{message}");
            assert!(message.contains("cannot measure CPU"), "{message}");
        }
        other => panic!("cpu without the capability: expected Invalid, got {other:?}"),
    }
    assert!(matches!(local.status(&function("hot")).await, Err(Error::NotFound { .. })), "nothing deployed");

    let cpu = Arc::new(Cpu { inner: local.clone(), measures: true, used: Mutex::default() });
    let clock = ManualClock::new();
    let mut config = ScalingConfig::default();
    config.stable_window = Duration::from_secs(30);
    let scaler = Scaler::with_clock(cpu.clone(), config, Arc::new(clock.clone()) as Arc<dyn Clock>);
    let labels = [(SCALE_TYPE, "cpu"), (SCALE_TARGET, "500"), (SCALE_MAX, "4")];
    scaler.deploy(cat("hot", &labels, &[])).await.unwrap();
    scaler.autoscale_once().await;
    let replicas = || scaler.function(&function("hot")).unwrap().replicas;
    // 1.2 CPU seconds every second: 1200 millicores over 500 a replica.
    for _ in 0..5 {
        *cpu.used.lock().unwrap() += Duration::from_millis(2400);
        clock.advance(Duration::from_secs(2));
        scaler.autoscale_once().await;
    }
    assert_eq!(replicas(), 3, "ceil(1200 / 500)");
    assert_eq!(local.status(&function("hot")).await.unwrap().replicas, 3);
    // Idle: down to min once the stable window agrees.
    let mut idle = 0;
    while replicas() != 1 {
        assert!(idle < 60, "never back at min");
        clock.advance(Duration::from_secs(2));
        scaler.autoscale_once().await;
        idle += 2;
    }
    assert!(idle >= 30, "held for the stable window: down after {idle}s");
    drop((scaler, blind));
    local.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_provider_reads_the_cpu_its_processes_use() {
    let fx = Fixture::new(ScalingConfig::default()).await;
    assert!(fx.local.capabilities().cpu_usage);
    // HTTP mode, never listening: one long-lived process that only burns
    // CPU.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("busy.sh");
    std::fs::write(&script, "while :; do :; done\n").unwrap();
    let mut busy = cat("busy", &[], &[("mode", "http")]);
    busy.env_process = format!("sh {}", script.display());
    fx.scaler.deploy(busy).await.unwrap();
    let started = std::time::Instant::now();
    let used = loop {
        let used = fx.scaler.cpu_usage(&function("busy")).await.unwrap();
        if used >= Duration::from_millis(300) {
            break used;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the busy loop used only {used:?} of CPU");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(used <= started.elapsed() + Duration::from_secs(1), "one process, at most one core: {used:?}");
    assert!(matches!(fx.scaler.cpu_usage(&function("none")).await, Err(Error::NotFound { .. })));
    fx.close().await;
}
