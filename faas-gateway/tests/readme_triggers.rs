//! The README's trigger examples, run verbatim against the real gateway
//! binary: a cron function that runs on its own, and a NATS-triggered
//! function answering a request (on a `nats-server` the test starts; only
//! its port is substituted for the README's 4222).

mod common;

use std::time::{Duration, Instant};

use common::{markdown, Gateway};
use faas_test_support::nats::nats_server;

/// The `n`th `sh` block under the README's triggers heading.
fn block(n: usize) -> String {
    markdown::sh_block("README.md", "## Triggers: cron schedules and NATS subjects", n)
}

/// Runs `script` with bash (`-euo pipefail`) against `gateway`; its stdout.
async fn run(script: &str, gateway: &Gateway) -> String {
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", script])
            .env("GW", format!("http://{}", gateway.addr))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the example finishes in time")
    .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{}: {stdout}\n{}", output.status, String::from_utf8_lossy(&output.stderr));
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_cron_function_runs_on_schedule() {
    let state = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(&state.path().join("state"), &[]).await;
    let stdout = run(&block(0), &gateway).await;
    let listed: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(listed[0]["function"], "tick.openfaas-fn", "{stdout}");
    assert_eq!(listed[0]["schedule"], "@every 2s");
    assert!(listed[0]["nextRun"].as_str().is_some_and(|t| t.ends_with('Z')), "{listed}");

    // Ticks fire, run, and the function's answer is the last outcome.
    eventually_listed(&gateway, r#""result":"answered 200","status":200"#).await;
    let (_, metrics) = gateway.get("/metrics").await;
    assert!(
        metrics.lines().any(|l| l.starts_with("gateway_trigger_fired_total{") && l.contains("tick.openfaas-fn")),
        "{metrics}"
    );
    // A bad schedule is refused, naming the annotation.
    let (code, body) = gateway
        .call(
            "POST",
            "/system/functions",
            r#"{"service":"bad","image":"local","envProcess":"cat","annotations":{"topic":"cron-function","schedule":"*/5 * * *"}}"#,
        )
        .await;
    assert_eq!(code, http::StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("annotations.schedule") && body.contains("@every"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_nats_function_answers_a_request() {
    let Some(nats) = nats_server().await else { return };
    let example = block(1);
    assert!(example.contains("4222"), "{example}");
    let port = nats.url.rsplit(':').next().unwrap().to_owned();
    let state = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(&state.path().join("state"), &["--trigger-nats-url", &nats.url]).await;
    let stdout = run(&example.replace("4222", &port), &gateway).await;
    assert!(stdout.lines().any(|line| line == "HELLO NATS!"), "{stdout}");
    let listed = eventually_listed(&gateway, r#""result":"answered 200","status":200"#).await;
    assert!(listed.contains(r#""subjects":["greetings"]"#), "{listed}");
}

/// Polls `GET /system/triggers` until it contains `wanted` (60 s at most).
async fn eventually_listed(gateway: &Gateway, wanted: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, listed) = gateway.get("/system/triggers").await;
        if listed.contains(wanted) {
            return listed;
        }
        assert!(Instant::now() < deadline, "no {wanted} after 60 s: {listed}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
