//! Fork modes (serializing and streaming) with real processes.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use faas_core::Body;
use faas_watchdog::{Stream, PLATFORM_ERROR_HEADER};
use http_body_util::BodyExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serializing_and_streaming_echo_with_cat() {
    for mode in ["serializing", "streaming"] {
        let (wd, _) = start(&[("fprocess", "cat"), ("mode", mode)], 2).await;
        assert_eq!(wd.ready_instances(), 2);
        let (status, headers, body) = call(&wd, request("POST", "/", "hello world")).await.unwrap();
        assert_eq!((status, body.as_str()), (200, "hello world"), "{mode}");
        assert_eq!(headers["content-type"], "text/plain", "{mode}");
        let (status, _, body) = call(&wd, request("GET", "/", Body::empty())).await.unwrap();
        assert_eq!((status, body.as_str()), (200, ""), "{mode}");
        assert_eq!(wd.inflight(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_type_comes_from_config_then_request() {
    let (wd, _) = start(&[("fprocess", "cat"), ("mode", "streaming")], 1).await;
    let mut req = request("POST", "/", "{}");
    req.headers_mut().insert("content-type", "application/json".parse().unwrap());
    let (_, headers, _) = call(&wd, req).await.unwrap();
    assert_eq!(headers["content-type"], "application/json");

    let (wd, _) =
        start(&[("fprocess", "cat"), ("mode", "serializing"), ("content_type", "application/x-custom")], 1).await;
    let mut req = request("POST", "/", "{}");
    req.headers_mut().insert("content-type", "application/json".parse().unwrap());
    let (_, headers, _) = call(&wd, req).await.unwrap();
    assert_eq!(headers["content-type"], "application/x-custom");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_sees_the_request_cgi_style_and_only_the_given_env() {
    let mut env = BTreeMap::new();
    env.insert("PATH".to_string(), std::env::var("PATH").unwrap());
    env.insert("MY_SETTING".to_string(), "42".to_string());
    for mode in ["serializing", "streaming"] {
        let (wd, _) = start_with_env(&[("fprocess", "env"), ("mode", mode)], 1, env.clone()).await;
        let req = http::Request::post("/some/path?a=1&b=two")
            .header("x-conformance", "yes")
            .header("content-type", "text/csv")
            .header("content-length", "0")
            .header("host", "example.test:8080")
            .header("x-multi-word-header", "mw")
            .body(Body::empty())
            .unwrap();
        let (status, _, out) = call(&wd, req).await.unwrap();
        assert_eq!(status, 200);
        let vars: BTreeMap<&str, &str> = out.lines().filter_map(|l| l.split_once('=')).collect();
        assert_eq!(vars.get("Http_Method"), Some(&"POST"), "{out}");
        assert_eq!(vars.get("Http_Path"), Some(&"/some/path"));
        assert_eq!(vars.get("Http_Query"), Some(&"a=1&b=two"));
        assert_eq!(vars.get("Http_X_Conformance"), Some(&"yes"));
        assert_eq!(vars.get("Http_X_Multi_Word_Header"), Some(&"mw"));
        assert_eq!(vars.get("Http_Content_Type"), Some(&"text/csv"));
        assert_eq!(vars.get("Http_ContentLength"), Some(&"0"));
        assert_eq!(vars.get("Http_Host"), Some(&"example.test:8080"));
        assert_eq!(vars.get("MY_SETTING"), Some(&"42"));
        // Nothing is inherited from the watchdog's own environment.
        assert!(!vars.contains_key("CARGO_MANIFEST_DIR"), "{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_zero_exit_is_a_500_with_the_stderr_tail() {
    let dir = tempfile::tempdir().unwrap();
    let failing =
        script(dir.path(), "fail.sh", "echo partial\necho 'first problem' >&2\necho 'bad thing' >&2\nexit 3\n");
    let quiet = script(dir.path(), "quiet.sh", "cat >/dev/null\necho 'no output here' >&2\nexit 1\n");
    let late = script(dir.path(), "late.sh", "echo some output\nsleep 0.2\nexit 1\n");

    let fprocess = format!("sh {}", failing.display());
    let (wd, lines) = start(&[("fprocess", fprocess.as_str()), ("mode", "serializing")], 1).await;
    let (status, headers, body) = call(&wd, request("POST", "/", "x")).await.unwrap();
    assert_eq!(status, 500);
    assert!(body.contains("first problem\nbad thing"), "{body}");
    assert!(!body.contains("partial"), "{body}");
    assert!(headers.get(PLATFORM_ERROR_HEADER).is_none(), "the function's failure, not the platform's");
    let stderr: Vec<_> = lines.all().into_iter().filter(|(_, s, _)| *s == Stream::Stderr).collect();
    assert!(stderr.iter().any(|(instance, _, text)| instance.starts_with("fn-") && text == "bad thing"), "{stderr:?}");

    let fprocess = format!("sh {}", quiet.display());
    let (wd, _) = start(&[("fprocess", fprocess.as_str()), ("mode", "streaming")], 1).await;
    let (status, _, body) = call(&wd, request("POST", "/", "input")).await.unwrap();
    assert_eq!((status, body.as_str()), (500, "no output here"));

    // Streaming: output came first, so the response had started: 200.
    let fprocess = format!("sh {}", late.display());
    let (wd, _) = start(&[("fprocess", fprocess.as_str()), ("mode", "streaming")], 1).await;
    let (status, _, body) = call(&wd, request("GET", "/", Body::empty())).await.unwrap();
    assert_eq!((status, body.as_str()), (200, "some output\n"));
}

/// A script that reports its own pid and a background child's pid on
/// stderr, writes `first` to stdout if given, then waits forever.
fn sleeper(dir: &std::path::Path, first: &str) -> String {
    let path =
        script(dir, "sleeper.sh", &format!("echo \"pid=$$\" >&2\nsleep 30 &\necho \"child=$!\" >&2\n{first}\nwait\n"));
    format!("sh {}", path.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_timeout_gives_timeout_and_kills_the_group() {
    let dir = tempfile::tempdir().unwrap();
    for (mode, first) in [("serializing", ""), ("streaming", "")] {
        let fprocess = sleeper(dir.path(), first);
        let (wd, lines) = start(&[("fprocess", fprocess.as_str()), ("mode", mode), ("exec_timeout", "500ms")], 1).await;
        let err = bounded("the timed-out call", wd.invoke(request("GET", "/", Body::empty()))).await.unwrap_err();
        assert!(matches!(err, faas_core::Error::Timeout { .. }), "{mode}: {err}");
        assert_eq!(err.status(), 504);
        let pid: u32 = lines.wait_value("pid=").await;
        let child: u32 = lines.wait_value("child=").await;
        assert!(!alive(pid), "{mode}: the shell {pid} survived the timeout");
        wait_until("the background sleep to die", || !alive(child)).await;
        assert_eq!(wd.inflight(), 0);

        // Through `handle`, the timeout is a 504 marked as the platform's.
        let response = bounded("handle", wd.handle(request("GET", "/", Body::empty()))).await;
        assert_eq!(response.status(), 504);
        assert_eq!(response.headers()[PLATFORM_ERROR_HEADER], "platform");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_timeout_cuts_a_streaming_response_that_already_started() {
    let dir = tempfile::tempdir().unwrap();
    let fprocess = sleeper(dir.path(), "echo started");
    let (wd, lines) = start(&[("fprocess", fprocess.as_str()), ("mode", "streaming"), ("exec_timeout", "1s")], 1).await;
    let response = bounded("headers", wd.invoke(request("GET", "/", Body::empty()))).await.unwrap();
    assert_eq!(response.status(), 200);
    let result = bounded("the cut body", response.into_body().collect()).await;
    assert!(result.is_err(), "the body must end with an error, not look complete");
    let pid: u32 = lines.wait_value("pid=").await;
    wait_until("the process to die", || !alive(pid)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_response_mid_stream_kills_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let fprocess = sleeper(dir.path(), "echo started");
    let (wd, lines) = start(&[("fprocess", fprocess.as_str()), ("mode", "streaming")], 1).await;
    let response = bounded("headers", wd.invoke(request("GET", "/", Body::empty()))).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let first = bounded("the first chunk", body.frame()).await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"started\n");
    let pid: u32 = lines.wait_value("pid=").await;
    let child: u32 = lines.wait_value("child=").await;
    assert!(alive(pid) && alive(child), "still running while the client reads");
    let named = format!("fn-{pid}");
    assert!(lines.all().iter().any(|(instance, _, _)| *instance == named), "stderr lines carry {named}");
    assert_eq!(wd.inflight(), 1);
    drop(body);
    wait_until("the shell to die", || !alive(pid)).await;
    wait_until("its child to die", || !alive(child)).await;
    assert_eq!(wd.inflight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_inflight_refuses_with_overloaded() {
    let dir = tempfile::tempdir().unwrap();
    let fprocess = sleeper(dir.path(), "echo started");
    let (wd, _) = start(&[("fprocess", fprocess.as_str()), ("mode", "streaming"), ("max_inflight", "1")], 4).await;
    let health = wd.handle(request("GET", "/_/ready", Body::empty())).await;
    assert_eq!(health.status(), 200);
    let held = bounded("headers", wd.invoke(request("GET", "/", Body::empty()))).await.unwrap();
    let err = bounded("refusal", wd.invoke(request("GET", "/", Body::empty()))).await.unwrap_err();
    assert!(matches!(err, faas_core::Error::Overloaded { .. }), "{err}");
    assert_eq!(err.status(), 429);
    let ready = wd.handle(request("GET", "/_/ready", Body::empty())).await;
    assert_eq!(ready.status(), 429);
    assert_eq!(ready.headers()[PLATFORM_ERROR_HEADER], "platform");
    let health = wd.handle(request("GET", "/_/health", Body::empty())).await;
    assert_eq!(health.status(), 200, "health ignores max_inflight");
    drop(held);
    wait_until("the held call to end", || wd.inflight() == 0).await;
    let (wd2, _) = start(&[("fprocess", "cat"), ("mode", "streaming"), ("max_inflight", "1")], 1).await;
    assert_eq!(call(&wd2, request("POST", "/", "ok")).await.unwrap().0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_bound_concurrent_processes_and_zero_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let fprocess = sleeper(dir.path(), "echo started");
    let (wd, _) = start(&[("fprocess", fprocess.as_str()), ("mode", "streaming"), ("ready_timeout", "300ms")], 1).await;
    let held = bounded("headers", wd.invoke(request("GET", "/", Body::empty()))).await.unwrap();
    let err = bounded("refusal", wd.invoke(request("GET", "/", Body::empty()))).await.unwrap_err();
    assert!(matches!(err, faas_core::Error::Unavailable { .. }), "{err}");
    wd.set_instances(2).await;
    assert_eq!(wd.instances(), 2);
    let second = bounded("headers", wd.invoke(request("GET", "/", Body::empty()))).await.unwrap();
    assert_eq!(second.status(), 200);
    drop((held, second));

    wd.set_instances(0).await;
    assert_eq!(wd.ready_instances(), 0);
    let err = bounded("refusal", wd.invoke(request("GET", "/", Body::empty()))).await.unwrap_err();
    assert_eq!(err.status(), 503);
    assert!(err.to_string().contains("scaled to zero"), "{err}");
    let health = wd.handle(request("GET", "/_/health", Body::empty())).await;
    assert_eq!(health.status(), 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_program_is_not_ready_and_says_why() {
    let (wd, _) = start(&[("fprocess", "no-such-program-here --x"), ("mode", "serializing")], 1).await;
    assert_eq!(wd.ready_instances(), 0);
    let why = wd.last_error().expect("a reason");
    assert!(why.contains("no-such-program-here") && why.contains("not found"), "{why}");
    let err = bounded("refusal", wd.invoke(request("GET", "/", Body::empty()))).await.unwrap_err();
    assert_eq!(err.status(), 503);
    let health = wd.handle(request("GET", "/_/health", Body::empty())).await;
    assert_eq!(health.status(), 503);
    let text = read_body(health).await;
    assert!(String::from_utf8_lossy(&text).contains("not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_then_kills() {
    let dir = tempfile::tempdir().unwrap();
    let slow = script(dir.path(), "slow.sh", "sleep 0.5\necho finished\n");
    let fprocess = format!("sh {}", slow.display());
    let (wd, _) = start(&[("fprocess", fprocess.as_str()), ("mode", "serializing")], 2).await;
    let pending = {
        let wd = wd.clone();
        tokio::spawn(async move { call(&wd, request("GET", "/", Body::empty())).await })
    };
    wait_until("the call to be in flight", || wd.inflight() == 1).await;
    bounded("shutdown", wd.shutdown(Duration::from_secs(10))).await;
    let (status, _, body) = bounded("the drained call", pending).await.unwrap().unwrap();
    assert_eq!((status, body.as_str()), (200, "finished\n"));
    let err = bounded("refusal", wd.invoke(request("GET", "/", Body::empty()))).await.unwrap_err();
    assert_eq!(err.status(), 503);

    // A call that outlives the grace is killed.
    let sleeper = sleeper(dir.path(), "echo started");
    let (wd, lines) = start(&[("fprocess", sleeper.as_str()), ("mode", "streaming")], 1).await;
    let held = bounded("headers", wd.invoke(request("GET", "/", Body::empty()))).await.unwrap();
    let pid: u32 = lines.wait_value("pid=").await;
    bounded("shutdown", wd.shutdown(Duration::from_millis(100))).await;
    wait_until("the process to die", || !alive(pid)).await;
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_watchdog_kills_running_processes() {
    let dir = tempfile::tempdir().unwrap();
    let fprocess = sleeper(dir.path(), "echo started");
    let (wd, lines) = start(&[("fprocess", fprocess.as_str()), ("mode", "streaming")], 1).await;
    let held = bounded("headers", wd.invoke(request("GET", "/", Body::empty()))).await.unwrap();
    let pid: u32 = lines.wait_value("pid=").await;
    let child: u32 = lines.wait_value("child=").await;
    drop(wd);
    wait_until("the process to die", || !alive(pid)).await;
    wait_until("its child to die", || !alive(child)).await;
    drop(held);
}
