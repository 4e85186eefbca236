//! HTTP mode with a small Python HTTP server as the function.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::*;
use faas_core::Body;
use faas_watchdog::{Config, Options, Stream, Watchdog};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const SERVER: &str = r#"
import os, sys, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.answer()

    def do_POST(self):
        self.answer()

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/crash"):
            sys.stderr.write("crashing on purpose\n")
            sys.stderr.flush()
            os._exit(3)
        if self.path.startswith("/slow"):
            time.sleep(float(self.path.split("=", 1)[1]))
        out = ("pid=%d\npath=%s\nheader=%s\nconnection=%s\nbody=" % (
            os.getpid(), self.path, self.headers.get("X-Conformance", ""),
            self.headers.get("X-Hop", ""))).encode() + body
        self.send_response(201)
        self.send_header("Content-Type", "text/x-python")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, fmt, *args):
        sys.stderr.write("request %s\n" % (fmt % args))
        sys.stderr.flush()

print("serving on port %s" % os.environ["PORT"], flush=True)
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

fn write_server(dir: &Path) -> String {
    let path = dir.join("server.py");
    std::fs::write(&path, SERVER).unwrap();
    format!("{} -u {}", python(), path.display())
}

/// Calls and returns (status, pid the answer came from, body).
async fn call_pid(wd: &Watchdog, path: &str) -> Result<(u16, u32, String), faas_core::Error> {
    let (status, _, body) = call(wd, request("GET", path, Body::empty())).await?;
    let pid = body.lines().find_map(|l| l.strip_prefix("pid=")).and_then(|p| p.parse().ok()).unwrap_or(0);
    Ok((status, pid, body))
}

async fn start_pool(dir: &Path, instances: usize, extra: &[(&str, &str)]) -> (Watchdog, std::sync::Arc<Lines>) {
    let fprocess = write_server(dir);
    let mut vars = vec![("fprocess", fprocess.as_str()), ("mode", "http"), ("ready_timeout", "15s")];
    vars.extend_from_slice(extra);
    let (wd, lines) = start(&vars, instances).await;
    (wd, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_through_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let (wd, lines) = start_pool(dir.path(), 1, &[]).await;
    // The first call waits for the process to be ready.
    let req = http::Request::post("/hello/there?x=1")
        .header("x-conformance", "abc")
        .header("connection", "x-hop")
        .header("x-hop", "must not pass")
        .body(Body::from("payload"))
        .unwrap();
    let (status, headers, body) = call(&wd, req).await.unwrap();
    assert_eq!(status, 201);
    assert_eq!(headers["content-type"], "text/x-python");
    assert!(body.contains("path=/hello/there?x=1\nheader=abc\nconnection=\nbody=payload"), "{body}");
    assert_eq!(wd.ready_instances(), 1);
    assert_eq!(wd.last_error(), None);
    let health = wd.handle(request("GET", "/_/health", Body::empty())).await;
    assert_eq!(health.status(), 200);

    // Both streams reach the sink under the slot's instance name.
    lines.wait_value::<String>("serving on port").await;
    wait_until("the request log line", || {
        lines.all().iter().any(|(i, s, t)| i == "fn-0" && *s == Stream::Stderr && t.starts_with("request "))
    })
    .await;
    assert!(lines.all().iter().any(|(i, s, _)| i == "fn-0" && *s == Stream::Stdout));
    bounded("shutdown", wd.shutdown(Duration::from_secs(5))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_of_two_shares_the_calls_and_survives_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let (wd, _) = start_pool(dir.path(), 2, &[]).await;
    wait_until("two ready instances", || wd.ready_instances() == 2).await;

    // Concurrent slow calls go to the least busy instance: both get some.
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let wd = wd.clone();
            tokio::spawn(async move { call_pid(&wd, "/slow?t=0.4").await })
        })
        .collect();
    let mut pids = BTreeSet::new();
    for c in calls {
        let (status, pid, _) = bounded("a slow call", c).await.unwrap().unwrap();
        assert_eq!(status, 201);
        pids.insert(pid);
    }
    assert_eq!(pids.len(), 2, "both instances served calls: {pids:?}");

    // Kill one: calls keep succeeding, and it comes back with a new pid.
    let victim = *pids.iter().next().unwrap();
    kill(Pid::from_raw(victim as i32), Signal::SIGKILL).unwrap();
    for _ in 0..10 {
        let (status, pid, _) = call_pid(&wd, "/").await.unwrap();
        assert_eq!(status, 201);
        assert_ne!(pid, victim);
    }
    wait_until("the killed instance to be restarted", || wd.ready_instances() == 2).await;
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let wd = wd.clone();
            tokio::spawn(async move { call_pid(&wd, "/slow?t=0.4").await })
        })
        .collect();
    let mut after = BTreeSet::new();
    for c in calls {
        after.insert(bounded("a slow call", c).await.unwrap().unwrap().1);
    }
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(!after.contains(&victim));
    bounded("shutdown", wd.shutdown(Duration::from_secs(5))).await;
    for pid in after {
        wait_until("the processes to be gone after shutdown", || !alive(pid)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_request_fails_that_call_only() {
    let dir = tempfile::tempdir().unwrap();
    let (wd, lines) = start_pool(dir.path(), 1, &[]).await;
    let (_, first_pid, _) = call_pid(&wd, "/").await.unwrap();
    // A POST is never replayed: the process saw it and died.
    let err = bounded("the crashing call", wd.invoke(request("POST", "/crash", "x"))).await.unwrap_err();
    assert!(matches!(err, faas_core::Error::Backend { .. }), "{err}");
    assert_eq!(err.status(), 502);
    // The next call waits for the restart and succeeds.
    let (status, pid, _) = call_pid(&wd, "/").await.unwrap();
    assert_eq!(status, 201);
    assert_ne!(pid, first_pid);
    assert!(!alive(first_pid));
    assert!(lines.all().iter().any(|(_, _, t)| t == "crashing on purpose"));
    bounded("shutdown", wd.shutdown(Duration::from_secs(5))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_up_and_down_keeps_calls_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let (wd, _) = start_pool(dir.path(), 1, &[]).await;
    wait_until("one ready instance", || wd.ready_instances() == 1).await;
    wd.set_instances(3).await;
    assert_eq!(wd.instances(), 3);
    wait_until("three ready instances", || wd.ready_instances() == 3).await;

    // Three slow calls occupy the three instances; scaling down to one
    // lets all of them finish.
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let wd = wd.clone();
            tokio::spawn(async move { call_pid(&wd, "/slow?t=1").await })
        })
        .collect();
    wait_until("three calls in flight", || wd.inflight() == 3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    wd.set_instances(1).await;
    assert_eq!(wd.instances(), 1);
    let mut pids = BTreeSet::new();
    for c in calls {
        let (status, pid, _) = bounded("a call during scale-down", c).await.unwrap().unwrap();
        assert_eq!(status, 201);
        pids.insert(pid);
    }
    assert_eq!(pids.len(), 3, "{pids:?}");
    wait_until("one instance left", || wd.ready_instances() == 1).await;
    let (_, survivor, _) = call_pid(&wd, "/").await.unwrap();
    for pid in pids.iter().filter(|p| **p != survivor) {
        wait_until("the drained processes to be gone", || !alive(*pid)).await;
    }
    assert!(alive(survivor));

    wd.set_instances(0).await;
    wait_until("no instance left", || !alive(survivor)).await;
    let err = bounded("refusal", wd.invoke(request("GET", "/", Body::empty()))).await.unwrap_err();
    assert_eq!(err.status(), 503);
    wd.set_instances(1).await;
    let (status, _, _) = call_pid(&wd, "/").await.unwrap();
    assert_eq!(status, 201);
    bounded("shutdown", wd.shutdown(Duration::from_secs(5))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_keeps_dying_gives_503_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let failing = script(dir.path(), "fail.sh", "echo 'cannot load the model' >&2\nexit 127\n");
    let fprocess = format!("sh {}", failing.display());
    let (wd, _) = start(&[("fprocess", fprocess.as_str()), ("mode", "http"), ("ready_timeout", "700ms")], 1).await;
    let err = bounded("refusal", wd.invoke(request("GET", "/", Body::empty()))).await.unwrap_err();
    assert_eq!(err.status(), 503);
    let message = err.message();
    assert!(message.contains("exit status: 127") && message.contains("cannot load the model"), "{message}");
    assert_eq!(wd.ready_instances(), 0);
    let health = wd.handle(request("GET", "/_/health", Body::empty())).await;
    assert_eq!(health.status(), 503);
    assert_eq!(health.headers()["x-faas-error"], "platform");
    let why = wd.last_error().unwrap();
    assert!(why.contains("cannot load the model"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_timeout_applies_to_proxied_calls() {
    let dir = tempfile::tempdir().unwrap();
    let (wd, _) = start_pool(dir.path(), 1, &[("exec_timeout", "300ms")]).await;
    wait_until("one ready instance", || wd.ready_instances() == 1).await;
    let err = bounded("the slow call", wd.invoke(request("GET", "/slow?t=3", Body::empty()))).await.unwrap_err();
    assert!(matches!(err, faas_core::Error::Timeout { .. }), "{err}");
    // The shared process is not killed for it.
    assert_eq!(call_pid(&wd, "/").await.unwrap().0, 201);
    bounded("shutdown", wd.shutdown(Duration::from_secs(5))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_upstream_is_used_verbatim_and_allows_one_instance() {
    let dir = tempfile::tempdir().unwrap();
    let fprocess = write_server(dir.path());
    let port = free_port();
    let upstream = format!("http://127.0.0.1:{port}");
    let vars = [("fprocess", fprocess.as_str()), ("mode", "http"), ("upstream_url", upstream.as_str())];
    let mut env = test_env();
    env.insert("PORT".into(), port.to_string());
    let (wd, _) = start_with_env(&vars, 1, env.clone()).await;
    let (status, _, body) = call_pid(&wd, "/fixed").await.unwrap();
    assert_eq!(status, 201);
    assert!(body.contains("path=/fixed"), "{body}");
    bounded("shutdown", wd.shutdown(Duration::from_secs(5))).await;

    let config = Config::from_vars(vars.iter().copied()).unwrap();
    let err = Watchdog::start(config, Options { instances: 2, env, ..Options::default() }).await.unwrap_err();
    assert!(err.to_string().contains("upstream_url"), "{err}");
    let core: faas_core::Error = err.into();
    assert_eq!(core.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_proxied_call_writes_one_line_in_of_watchdog_wording_unless_log_calls_is_false() {
    let dir = tempfile::tempdir().unwrap();
    let (wd, lines) = start_pool(dir.path(), 1, &[]).await;
    let (status, _, body) = call(&wd, request("POST", "/a/b?x=1", Body::from("payload"))).await.unwrap();
    assert_eq!(status, 201);
    let calls = lines.values("POST /a/b?x=1 - 201 Created - ContentLength: ");
    assert_eq!(calls.len(), 1, "{:?}", lines.all());
    let (bytes, seconds) = calls[0].split_once("B (").unwrap();
    assert_eq!(bytes.parse::<usize>().unwrap(), body.len());
    let seconds = seconds.strip_suffix("s)").unwrap();
    assert!(seconds.parse::<f64>().unwrap() > 0.0 && seconds.split('.').nth(1).unwrap().len() == 4, "{seconds}");
    assert!(lines.all().iter().any(|(i, _, t)| i == "fn" && t.starts_with("POST /a/b")), "the watchdog's own instance");
    assert!(lines.values("Forking fprocess.").is_empty(), "http mode forks nothing per call");
    bounded("shutdown", wd.shutdown(Duration::from_secs(5))).await;

    let (quiet, lines) = start_pool(dir.path(), 1, &[("log_calls", "false")]).await;
    assert_eq!(call(&quiet, request("GET", "/", Body::empty())).await.unwrap().0, 201);
    assert!(lines.all().iter().all(|(_, _, t)| !t.contains("ContentLength:")), "{:?}", lines.all());
    bounded("shutdown", quiet.shutdown(Duration::from_secs(5))).await;
}
