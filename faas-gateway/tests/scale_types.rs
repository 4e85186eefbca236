//! OpenFaaS's scaling types in the real gateway binary on the local
//! provider, in real time: the issue's rps scenario, the type and target
//! in status and metrics, the AlertManager route, and bad scaling flags.
//! The decisions are checked to the second on a manual clock in
//! faas-autoscale's tests; here the bounds have margins for a loaded
//! machine.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{basic, command, run_to_failure, Gateway};
use http::StatusCode;
use serde_json::{json, Value};

/// `GET /system/function/{name}`.
async fn status(gateway: &Gateway, name: &str) -> Value {
    let (code, body) = gateway.get(&format!("/system/function/{name}")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    serde_json::from_str(&body).unwrap()
}

async fn replicas(gateway: &Gateway, name: &str) -> u64 {
    // OpenFaaS omits `replicas: 0`.
    status(gateway, name).await["replicas"].as_u64().unwrap_or(0)
}

/// Polls every 500ms until `name` is at `want` replicas, for at most
/// `limit`; how long it took.
async fn time_until(gateway: &Gateway, name: &str, want: u64, since: Instant, limit: Duration) -> Duration {
    loop {
        if replicas(gateway, name).await == want {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < limit,
            "{name} not at {want} replicas {limit:?} after; now {}; stderr:\n{}",
            replicas(gateway, name).await,
            gateway.stderr()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rps_scaling_in_real_time_up_under_load_then_to_min_and_to_zero() {
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--scale-type", "rps", "--scale-target", "5", "--scale-down-window", "30s"];
    let gateway = Arc::new(
        Gateway::start(&dir.path().join("state"), &[&flags[..], &["--scale-zero-duration", "30s"]].concat()).await,
    );
    let max = json!({"com.openfaas.scale.max": "2"});
    gateway.deploy(json!({"service": "steady", "image": "cat", "envProcess": "cat", "labels": max})).await;
    let sleepy = json!({"com.openfaas.scale.max": "2", "com.openfaas.scale.zero": "true"});
    gateway.deploy(json!({"service": "sleepy", "image": "cat", "envProcess": "cat", "labels": sleepy})).await;
    gateway.wait_available("steady", 1).await;
    gateway.wait_available("sleepy", 1).await;

    let shown = status(&gateway, "steady").await;
    assert_eq!(shown["labels"]["com.openfaas.scale.type"], "rps", "{shown}");
    assert_eq!(shown["labels"]["com.openfaas.scale.target"], "5", "{shown}");

    // 2 callers a function, each a call every 200ms on a new connection:
    // 10 calls a second to each.
    let stop = Arc::new(AtomicBool::new(false));
    let mut callers = Vec::new();
    for name in ["steady", "sleepy"] {
        for _ in 0..2 {
            let (gateway, stop) = (gateway.clone(), stop.clone());
            callers.push(tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_millis(200));
                let mut failed = 0;
                for _ in 0..1000 {
                    every.tick().await;
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let (code, body) = gateway.call("POST", &format!("/function/{name}"), "x").await;
                    if code != StatusCode::OK {
                        failed += 1;
                        eprintln!("{name}: {code} {body}");
                    }
                }
                failed
            }));
        }
    }
    let load_began = Instant::now();
    let up_steady = time_until(&gateway, "steady", 2, load_began, Duration::from_secs(30)).await;
    let up_sleepy = time_until(&gateway, "sleepy", 2, load_began, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(replicas(&gateway, "steady").await, 2, "max is 2");
    let (code, metrics) = gateway.get("/metrics").await;
    assert_eq!(code, StatusCode::OK);
    let target = r#"gateway_scale_target{function_name="steady.openfaas-fn",scale_type="rps"} 5"#;
    assert!(metrics.contains(target), "{target} missing from\n{metrics}");
    stop.store(true, Ordering::SeqCst);
    for caller in callers {
        assert_eq!(caller.await.unwrap(), 0, "every call answered 200");
    }

    // Generous bounds over the issue's 45s and 60s: the machine is shared.
    let load_ended = Instant::now();
    let down_steady = time_until(&gateway, "steady", 1, load_ended, Duration::from_secs(60)).await;
    let zero_sleepy = time_until(&gateway, "sleepy", 0, load_ended, Duration::from_secs(75)).await;
    eprintln!(
        "measured: steady at 2 after {up_steady:?}, sleepy at 2 after {up_sleepy:?}; \
         steady at min {down_steady:?} and sleepy at 0 {zero_sleepy:?} after the load stopped"
    );
    assert!(down_steady >= Duration::from_secs(25), "held for the 30s window, down after {down_steady:?}");
}

#[tokio::test]
async fn bad_scaling_flags_are_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value) in [
        ("--scale-type", "memory"),
        ("--scale-target", "0"),
        ("--scale-target", "many"),
        ("--scale-zero-duration", "1x"),
        ("--scale-down-window", "0s"),
    ] {
        let mut cmd = command(&dir.path().join("state"));
        cmd.args([flag, value]);
        let (code, stderr) = run_to_failure(cmd).await;
        assert!(!code.success(), "{flag} {value}: {stderr}");
        assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
    }
}

#[tokio::test]
async fn alerts_are_served_behind_basic_auth_like_other_system_routes() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("basic-auth-user"), "admin").unwrap();
    std::fs::write(secrets.join("basic-auth-password"), "s3cret").unwrap();
    let secrets = secrets.display().to_string();
    let gateway = Gateway::start(&dir.path().join("state"), &["--basic-auth", "--secret-mount-path", &secrets]).await;
    let payload =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/prometheus/alert-firing.json"))
            .unwrap();
    assert_eq!(gateway.call("POST", "/system/alert", payload.clone()).await.0, StatusCode::UNAUTHORIZED);
    let request = http::Request::post("/system/alert")
        .header(http::header::AUTHORIZATION, basic("admin", "s3cret"))
        .body(faas_core::Body::from(payload))
        .unwrap();
    let (code, _, body) = gateway.send(request).await;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(body.contains("function_name=echo.openfaas-fn") && body.contains("not found"), "{body}");
}
