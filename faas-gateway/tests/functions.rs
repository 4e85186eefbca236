//! Functions through the real binary with the local provider: deploy,
//! invoke (streaming), list, status, scale, logs, delete, bad inputs,
//! crashes, timeouts, disconnects and metrics.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{open_call, script, wait_gone, wait_pid_file, Gateway, WAIT};
use faas_core::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;
use sha2::{Digest, Sha512};

/// A fresh temporary directory with a state dir inside.
fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    (dir, state)
}

#[tokio::test]
async fn sha512sum_streams_and_the_lifecycle_works() {
    let (dir, state) = setup();
    let gateway = Gateway::start(&state, &[]).await;

    gateway
        .deploy(json!({"service": "sha", "image": "sha512sum", "envProcess": "sha512sum", "envVars": {"mode": "streaming"}}))
        .await;
    gateway.wait_available("sha", 1).await;

    // 3 MiB in 48 chunks, sent as a stream.
    let data: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let expected = format!("{:x}  -\n", Sha512::digest(&data));
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        data.chunks(64 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let request = Request::post("/function/sha").body(Body::from_stream(futures_util::stream::iter(chunks))).unwrap();
    let (status, headers, body) = gateway.send(request).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(String::from_utf8_lossy(&body), expected);
    assert!(headers.contains_key("x-call-id"), "{headers:?}");

    // list and status
    let (status, body) = gateway.get("/system/functions").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let entry = list.as_array().unwrap().iter().find(|f| f["name"] == "sha").unwrap_or_else(|| panic!("{body}"));
    assert_eq!(entry["envProcess"], "sha512sum");
    assert_eq!(entry["namespace"], "openfaas-fn");
    let (status, body) = gateway.get("/system/function/sha").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let one: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(one["replicas"], 1, "{body}");

    // scale to 2
    let (status, body) = gateway
        .call("POST", "/system/scale-function/sha", json!({"serviceName": "sha", "replicas": 2}).to_string())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let scaled = gateway.wait_available("sha", 2).await;
    assert_eq!(scaled["replicas"], 2, "{scaled}");

    // logs of a function writing to stderr
    let logger = script(dir.path(), "logger.sh", "echo \"line-on-stderr-$$\" >&2\necho \"pid-$$\"\n");
    gateway.deploy(json!({"service": "logger", "image": "sh", "envProcess": format!("sh {}", logger.display())})).await;
    gateway.wait_available("logger", 1).await;
    let (status, body) = gateway.call("POST", "/function/logger", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pid = body.trim().strip_prefix("pid-").unwrap_or_else(|| panic!("unexpected output {body:?}")).to_owned();
    let marker = format!("line-on-stderr-{pid}");
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = gateway.get("/system/logs?name=logger&tail=100").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let found = body.lines().filter(|l| !l.trim().is_empty()).any(|line| {
            let message: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
            message["name"] == "logger" && message["text"] == marker.as_str()
        });
        if found {
            break;
        }
        assert!(Instant::now() < deadline, "{marker} never appeared in the logs: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // delete
    let (status, body) = gateway.call("DELETE", "/system/functions", json!({"functionName": "sha"}).to_string()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = gateway.get("/system/function/sha").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = gateway.call("POST", "/function/sha", "x").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn bad_inputs_get_the_right_status_and_name_the_problem() {
    let (_dir, state) = setup();
    let gateway = Gateway::start(&state, &[]).await;
    let deploy = |value: serde_json::Value| {
        let gateway = &gateway;
        async move { gateway.call("POST", "/system/functions", value.to_string()).await }
    };

    let (status, body) = deploy(json!({"service": "noproc", "image": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("envProcess"), "no envProcess: {body}");

    let (status, body) =
        deploy(json!({"service": "missing", "image": "x", "envProcess": "definitely-missing-program-1f3c"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("definitely-missing-program-1f3c"), "missing executable: {body}");

    let (status, body) = deploy(json!({"service": "Bad_Name", "image": "x", "envProcess": "cat"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("service"), "invalid name: {body}");

    let (status, body) =
        deploy(json!({"service": "badmode", "image": "x", "envProcess": "cat", "envVars": {"mode": "fork"}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("mode") && body.contains("fork"), "bad mode: {body}");

    let (status, body) = gateway.call("POST", "/system/functions", "{\"service\": \"x\",").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(!body.trim().is_empty(), "malformed JSON needs a message");

    let huge = "a".repeat(1024 * 1024 + 100);
    let (status, body) =
        deploy(json!({"service": "huge", "image": "x", "envProcess": "cat", "envVars": {"BIG": huge}})).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{}", &body[..body.len().min(200)]);

    let (status, body) = gateway.call("POST", "/function/nope", "x").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("nope"), "unknown function: {body}");
    let (status, body) = gateway.get("/system/function/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // None of the refused deployments exists.
    let (status, body) = gateway.get("/system/functions").await;
    assert_eq!((status, body.trim()), (StatusCode::OK, "[]"));
}

/// An HTTP-mode function on Python's http.server: `/crash` kills the
/// process mid-request, anything else answers `ok`.
const PY_SERVER: &str = r#"import os
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/crash"):
            os._exit(3)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

#[tokio::test]
async fn a_crash_mid_request_is_a_502_and_the_next_call_succeeds() {
    let (dir, state) = setup();
    let server = script(dir.path(), "server.py", PY_SERVER);
    let gateway = Gateway::start(&state, &[]).await;
    gateway
        .deploy(json!({
            "service": "py", "image": "python3",
            "envProcess": format!("python3 {}", server.display()),
            "envVars": {"mode": "http"}
        }))
        .await;
    gateway.wait_available("py", 1).await;
    assert_eq!(gateway.get("/function/py/hello").await, (StatusCode::OK, "ok".to_owned()));

    let request = Request::get("/function/py/crash").body(Body::empty()).unwrap();
    let (status, headers, body) = gateway.send(request).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers.get("x-faas-error").map(|v| v.as_bytes()), Some(&b"platform"[..]));

    assert_eq!(gateway.get("/function/py/again").await, (StatusCode::OK, "ok".to_owned()));
}

#[tokio::test]
async fn a_hung_function_gets_504_at_its_exec_timeout_and_is_killed() {
    let (dir, state) = setup();
    let pid_file = dir.path().join("hang.pid");
    let hang = script(dir.path(), "hang.sh", &format!("echo $$ > {}\nexec sleep 600\n", pid_file.display()));
    let gateway = Gateway::start(&state, &[]).await;
    gateway
        .deploy(json!({
            "service": "hang", "image": "sh",
            "envProcess": format!("sh {}", hang.display()),
            "envVars": {"exec_timeout": "1s"}
        }))
        .await;
    gateway.wait_available("hang", 1).await;

    let (status, body) = gateway.call("POST", "/function/hang", "").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    let pid = wait_pid_file(&pid_file).await;
    wait_gone(pid, "the timed-out function").await;
}

#[tokio::test]
async fn the_write_timeout_bounds_functions_without_an_exec_timeout() {
    let (dir, state) = setup();
    let pid_file = dir.path().join("sleepy.pid");
    let sleepy = script(dir.path(), "sleepy.sh", &format!("echo $$ > {}\nexec sleep 600\n", pid_file.display()));
    let gateway = Gateway::start(&state, &["--write-timeout", "1s"]).await;
    gateway.deploy(json!({"service": "sleepy", "image": "sh", "envProcess": format!("sh {}", sleepy.display())})).await;
    gateway.wait_available("sleepy", 1).await;

    let (status, body) = gateway.call("POST", "/function/sleepy", "").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    wait_gone(wait_pid_file(&pid_file).await, "the function past the write timeout").await;
}

#[tokio::test]
async fn a_client_disconnect_mid_stream_ends_the_function_process() {
    let (dir, state) = setup();
    let pid_file = dir.path().join("ticker.pid");
    let ticker = script(
        dir.path(),
        "ticker.sh",
        &format!("echo $$ > {}\nwhile true; do echo tick; sleep 0.1; done\n", pid_file.display()),
    );
    let gateway = Gateway::start(&state, &[]).await;
    gateway
        .deploy(json!({
            "service": "ticker", "image": "sh",
            "envProcess": format!("sh {}", ticker.display()),
            "envVars": {"mode": "streaming"}
        }))
        .await;
    gateway.wait_available("ticker", 1).await;

    let request = Request::post("/function/ticker").body(Body::empty()).unwrap();
    let (response, connection) = open_call(gateway.addr, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("tick\ntick\n") {
        let frame =
            tokio::time::timeout(WAIT, body.frame()).await.expect("ticks stream in").expect("more ticks").unwrap();
        if let Ok(data) = frame.into_data() {
            seen.extend_from_slice(&data);
        }
    }
    let pid = wait_pid_file(&pid_file).await;
    assert!(!common::process_gone(pid), "the function runs while the client reads");

    drop(body);
    connection.abort();
    wait_gone(pid, "the function whose client went away").await;
    // The gateway is fine afterwards.
    assert_eq!(gateway.get("/healthz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn metrics_use_openfaas_names_with_the_function_labels() {
    let (_dir, state) = setup();
    let gateway = Gateway::start(&state, &[]).await;
    gateway.deploy(json!({"service": "echo", "image": "cat", "envProcess": "cat"})).await;
    gateway.wait_available("echo", 1).await;
    for _ in 0..2 {
        assert_eq!(gateway.call("POST", "/function/echo", "hi").await, (StatusCode::OK, "hi".to_owned()));
    }
    assert_eq!(gateway.call("POST", "/function/echo.openfaas-fn/sub/path", "yo").await.0, StatusCode::OK);
    assert_eq!(gateway.get("/system/functions").await.0, StatusCode::OK);

    let wanted = [
        r#"gateway_function_invocation_total{function_name="echo.openfaas-fn",code="200"} 3"#,
        r#"gateway_functions_seconds_count{function_name="echo.openfaas-fn",code="200"} 3"#,
        r#"gateway_functions_seconds_bucket{le="+Inf",function_name="echo.openfaas-fn",code="200"} 3"#,
        r#"gateway_service_count{function_name="echo.openfaas-fn"} 1"#,
        r#"http_requests_total{method="POST",path="/system/functions",status="202"} 1"#,
        r#"http_request_duration_seconds_count{method="POST",path="/system/functions",status="202"} 1"#,
    ];
    let deadline = Instant::now() + WAIT;
    let text = loop {
        let request = Request::get("/metrics").body(Body::empty()).unwrap();
        let (status, headers, body) = gateway.send(request).await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"), "{headers:?}");
        let text = String::from_utf8(body.to_vec()).unwrap();
        if wanted.iter().all(|w| text.contains(w)) {
            break text;
        }
        assert!(Instant::now() < deadline, "missing some of {wanted:#?} in:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Invocations are labelled by route template, never by the raw path.
    let invocation_lines: Vec<&str> =
        text.lines().filter(|l| l.starts_with("http_requests_total{") && l.contains("path=\"/function/")).collect();
    assert!(!invocation_lines.is_empty(), "{text}");
    assert!(invocation_lines.iter().all(|l| !l.contains("echo") && !l.contains("sub/path")), "{invocation_lines:#?}");
}
