//! The watchdog's per-call log lines read back through `GET /system/logs`
//! on the local provider (the real gateway binary), and watchdog settings
//! checked at deploy: durations in Go's syntax take effect, bad ones are
//! 400 and create nothing.

mod common;

use std::time::{Duration, Instant};

use common::{Gateway, WAIT};
use http::StatusCode;
use serde_json::json;

/// The `text` of every line of `name`'s log.
async fn log_texts(gateway: &Gateway, name: &str) -> Vec<String> {
    let (status, body) = gateway.get(&format!("/system/logs?name={name}&tail=100")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let message: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
            message["text"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

/// Polls `name`'s log until `found` holds for its texts; returns them.
async fn wait_log(gateway: &Gateway, name: &str, what: &str, found: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let texts = log_texts(gateway, name).await;
        if found(&texts) {
            return texts;
        }
        assert!(Instant::now() < deadline, "{what} never appeared in {name}'s log: {texts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The digits after the decimal point of `<seconds>` in `text`, which ends
/// with `suffix` right after the number.
fn decimals(text: &str, suffix: &str) -> usize {
    let number = text.strip_suffix(suffix).unwrap_or_else(|| panic!("{text:?} ends with {suffix:?}"));
    let number = number.rsplit([' ', '(']).next().unwrap();
    assert!(number.parse::<f64>().is_ok(), "{text}");
    number.split('.').nth(1).map_or(0, str::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_lines_reach_system_logs_in_fork_and_http_mode_unless_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(&dir.path().join("state"), &[]).await;
    let hello = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/functions/hello.py");
    gateway.deploy(json!({"service": "stream", "image": "local", "envProcess": "cat"})).await;
    gateway
        .deploy(json!({"service": "serial", "image": "local", "envProcess": "cat", "envVars": {"mode": "serializing"}}))
        .await;
    gateway
        .deploy(json!({"service": "quiet", "image": "local", "envProcess": "cat", "envVars": {"log_calls": "false"}}))
        .await;
    let web = json!({"service": "web", "image": "local", "envProcess": format!("python3 {}", hello.display()),
        "envVars": {"mode": "http"}});
    gateway.deploy(web).await;
    for name in ["stream", "serial", "quiet", "web"] {
        gateway.wait_available(name, 1).await;
    }

    for name in ["stream", "serial"] {
        let (status, body) = gateway.call("POST", &format!("/function/{name}"), "12345").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "12345"));
        let texts = wait_log(&gateway, name, "the Wrote line", |t| t.iter().any(|l| l.starts_with("Wrote "))).await;
        let forking = texts.iter().position(|l| l == "Forking fprocess.").unwrap_or_else(|| panic!("{texts:?}"));
        let wrote = texts.iter().position(|l| l.starts_with("Wrote 5 Bytes - Duration: ")).expect("5 bytes");
        assert!(forking < wrote, "{name}: {texts:?}");
        assert_eq!(decimals(&texts[wrote], "s"), 6, "{}", texts[wrote]);
    }

    let (status, body) = gateway.call("POST", "/function/web/any/path?x=1", "some bytes").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let prefix = "POST /any/path?x=1 - 200 OK - ContentLength: ";
    let texts = wait_log(&gateway, "web", "the access line", |t| t.iter().any(|l| l.starts_with(prefix))).await;
    let line = texts.iter().find(|l| l.starts_with(prefix)).unwrap();
    assert!(line.starts_with(&format!("{prefix}{}B (", body.len())), "{line}");
    assert_eq!(decimals(line, "s)"), 4, "{line}");

    let (status, _) = gateway.call("POST", "/function/quiet", "shh").await;
    assert_eq!(status, StatusCode::OK);
    // The stream function's next call shows the log is read after quiet's call.
    gateway.call("POST", "/function/stream", "later").await;
    wait_log(&gateway, "stream", "a later call", |t| t.iter().any(|l| l.starts_with("Wrote 5 Bytes"))).await;
    let quiet = log_texts(&gateway, "quiet").await;
    assert!(quiet.iter().all(|l| l != "Forking fprocess." && !l.starts_with("Wrote ")), "{quiet:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchdog_durations_in_go_syntax_take_effect_and_bad_ones_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(&dir.path().join("state"), &[]).await;
    for (field, value) in [("exec_timeout", "1x"), ("exec_timeout", "--"), ("read_timeout", "9999999h")] {
        let deployment =
            json!({"service": "bad", "image": "local", "envProcess": "cat", "envVars": {field: value}}).to_string();
        let (status, body) = gateway.call("POST", "/system/functions", deployment).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}={value}: {body}");
        assert!(body.contains(&format!("envVars.{field}")) && body.contains("1m30s"), "{body}");
    }
    assert_eq!(gateway.get("/system/functions").await, (StatusCode::OK, "[]".to_owned()), "nothing created");

    gateway
        .deploy(
            json!({"service": "patient", "image": "local", "envProcess": "cat", "envVars": {"exec_timeout": "1m30s"}}),
        )
        .await;
    let sleeper = json!({"service": "sleeper", "image": "local", "envProcess": "sleep 30",
        "envVars": {"exec_timeout": "0m1s500ms"}});
    gateway.deploy(sleeper).await;
    gateway.wait_available("patient", 1).await;
    gateway.wait_available("sleeper", 1).await;
    assert_eq!(gateway.call("POST", "/function/patient", "ok").await, (StatusCode::OK, "ok".to_owned()));
    let started = Instant::now();
    let (status, body) = gateway.call("POST", "/function/sleeper", "").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert!(started.elapsed() < Duration::from_secs(25), "1.5s, not sleep's 30s: {:?}", started.elapsed());
}
