//! The `fwatchdog` binary end to end: configured by environment, called
//! over HTTP on a free loopback port, drained by SIGTERM.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const FUNCTION: &str = r#"
case "$Http_Path" in
  /slow)
    touch "$MARKER"
    sleep 1
    echo "slow done"
    ;;
  *)
    printf 'method=%s header=%s body=' "$Http_Method" "$Http_X_Conformance"
    cat
    ;;
esac
"#;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

async fn get(client: &HttpClient, port: u16, method: &str, path: &str, body: &str) -> hyper::Result<(u16, String)> {
    let request = http::Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}{path}"))
        .header("x-conformance", "e2e")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = match client.request(request).await {
        Ok(response) => response,
        Err(e) => panic!("request failed: {e:?}"),
    };
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_calls_and_drains_on_sigterm() {
    serves_calls_and_drains_on_sigterm_with("0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_calls_and_drains_on_sigterm_from_serving_threads() {
    serves_calls_and_drains_on_sigterm_with("2").await;
}

async fn serves_calls_and_drains_on_sigterm_with(serve_threads: &str) {
    let dir = tempfile::tempdir().unwrap();
    let function = script(dir.path(), "function.sh", FUNCTION);
    let marker = dir.path().join("slow-started");
    let port = free_port();
    let (mut child, logs) = spawn_fwatchdog(&[
        ("fprocess", format!("sh {}", function.display()).as_str()),
        ("mode", "streaming"),
        ("port", port.to_string().as_str()),
        ("write_timeout", "10s"),
        ("serve_threads", serve_threads),
        ("MARKER", marker.to_str().unwrap()),
    ]);

    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    bounded("the health check to pass", async {
        loop {
            let request =
                http::Request::get(format!("http://127.0.0.1:{port}/_/health")).body(Full::new(Bytes::new())).unwrap();
            if let Ok(response) = client.request(request).await {
                if response.status() == 200 {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;

    let (status, body) = bounded("an echo call", get(&client, port, "POST", "/echo", "payload")).await.unwrap();
    assert_eq!((status, body.as_str()), (200, "method=POST header=e2e body=payload"));

    // A slow call is in flight when SIGTERM arrives: it still completes.
    let slow = {
        let client = client.clone();
        tokio::spawn(async move { get(&client, port, "GET", "/slow", "").await })
    };
    wait_until("the slow call to start", || marker.exists()).await;
    kill(Pid::from_raw(child.id().unwrap() as i32), Signal::SIGTERM).unwrap();
    let (status, body) = bounded("the slow call", slow).await.unwrap().unwrap();
    assert_eq!((status, body.as_str()), (200, "slow done\n"));
    let exit = bounded("fwatchdog to exit", child.wait()).await.unwrap();
    assert!(exit.success(), "fwatchdog exited with {exit}");
    let logs = bounded("stderr", logs).await.unwrap();
    assert!(logs.contains("draining"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_exits_non_zero_naming_the_variable() {
    let too_many = format!("{}", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) + 1);
    let cases = [
        (vec![("fprocess", "cat"), ("mode", "fork")], "mode"),
        (vec![("fprocess", "cat"), ("exec_timeout", "soon")], "exec_timeout"),
        (vec![("mode", "streaming")], "fprocess"),
        (vec![("fprocess", "no-such-program-anywhere")], "not found"),
        // The sandbox's settings (sandbox_env.rs), refused before it opens.
        (vec![("fprocess", "cat"), ("sandbox", "maybe")], "sandbox"),
        (vec![("fprocess", "cat"), ("sandbox", "auto"), ("memory_limit", "3Mi")], "memory_limit"),
        (vec![("fprocess", "cat"), ("sandbox", "auto"), ("memory_limit", "lots")], "memory_limit"),
        (vec![("fprocess", "cat"), ("sandbox", "auto"), ("cpu_limit", "0")], "cpu_limit"),
        (vec![("fprocess", "cat"), ("sandbox", "auto"), ("cpu_limit", too_many.as_str())], "cpu_limit"),
        (vec![("fprocess", "cat"), ("sandbox", "auto"), ("read_only_root", "maybe")], "read_only_root"),
    ];
    for (vars, expected) in cases {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_fwatchdog"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("port", free_port().to_string())
            .envs(vars.iter().copied())
            .output();
        let output = bounded("fwatchdog to refuse", output).await.unwrap();
        assert_eq!(output.status.code(), Some(2), "{vars:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("invalid configuration") && stderr.contains(expected), "{vars:?}: {stderr}");
    }
}

/// Runs `fwatchdog` with `prefix_logs` set to `prefix`, makes one call to
/// a function that writes a line to stderr, stops it, and returns what it
/// wrote to its own stderr.
async fn stderr_of_one_call(prefix: &str) -> String {
    stderr_of_one_call_with(&[("prefix_logs", prefix)]).await
}

/// [`stderr_of_one_call`] with `vars` set.
async fn stderr_of_one_call_with(vars: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let function = script(dir.path(), "noisy.sh", "echo 'a line for the log' >&2\ncat\n");
    let port = free_port();
    let fprocess = format!("sh {}", function.display());
    let port_text = port.to_string();
    let mut all = vec![("fprocess", fprocess.as_str()), ("port", port_text.as_str()), ("RUST_LOG", "off")];
    all.extend_from_slice(vars);
    let (mut child, logs) = spawn_fwatchdog(&all);
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let answer = bounded("a call", async {
        loop {
            let request = http::Request::post(format!("http://127.0.0.1:{port}/"))
                .body(Full::new(Bytes::from_static(b"hi")))
                .unwrap();
            if let Ok(response) = client.request(request).await {
                let status = response.status().as_u16();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                break (status, body);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(answer, (200, Bytes::from_static(b"hi")));
    kill(Pid::from_raw(child.id().unwrap() as i32), Signal::SIGTERM).unwrap();
    bounded("fwatchdog to exit", child.wait()).await.unwrap();
    bounded("stderr", logs).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_logs_puts_a_timestamp_and_the_stream_before_each_function_line() {
    let prefixed = stderr_of_one_call("true").await;
    let line = prefixed.lines().find(|l| l.ends_with("a line for the log")).unwrap_or_else(|| panic!("{prefixed}"));
    let (stamp, rest) = line.split_once(' ').unwrap();
    assert_eq!(rest, "stderr: a line for the log", "{line}");
    assert!(
        chrono::DateTime::parse_from_rfc3339(stamp).is_ok() && stamp.ends_with('Z'),
        "an RFC 3339 UTC timestamp: {line}"
    );

    let plain = stderr_of_one_call("false").await;
    assert!(plain.lines().any(|l| l == "a line for the log"), "{plain}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fork_call_writes_forking_and_wrote_lines_to_stderr_unless_log_calls_is_false() {
    for mode in ["streaming", "serializing"] {
        let logs = stderr_of_one_call_with(&[("mode", mode), ("prefix_logs", "false")]).await;
        let lines: Vec<&str> = logs.lines().collect();
        let forking = lines.iter().position(|l| *l == "Forking fprocess.").unwrap_or_else(|| panic!("{mode}: {logs}"));
        let wrote =
            lines.iter().position(|l| l.starts_with("Wrote 2 Bytes - Duration: ")).unwrap_or_else(|| panic!("{logs}"));
        assert!(forking < wrote, "{mode}: {logs}");
        let seconds = lines[wrote].strip_prefix("Wrote 2 Bytes - Duration: ").unwrap().strip_suffix('s').unwrap();
        assert!(seconds.parse::<f64>().unwrap() > 0.0 && seconds.split('.').nth(1).unwrap().len() == 6, "{seconds}");
        assert_eq!(lines.iter().filter(|l| l.starts_with("Wrote ")).count(), 1, "one line per call: {logs}");
    }

    let prefixed = stderr_of_one_call_with(&[("prefix_logs", "true")]).await;
    let line = prefixed.lines().find(|l| l.ends_with(" Forking fprocess.")).unwrap_or_else(|| panic!("{prefixed}"));
    assert!(chrono::DateTime::parse_from_rfc3339(line.split_once(' ').unwrap().0).is_ok(), "time, no stream: {line}");

    let quiet = stderr_of_one_call_with(&[("log_calls", "false"), ("prefix_logs", "false")]).await;
    assert!(quiet.lines().any(|l| l == "a line for the log"), "{quiet}");
    assert!(!quiet.contains("Forking fprocess.") && !quiet.contains("Wrote "), "{quiet}");
}
