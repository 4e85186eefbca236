//! Shared helpers of the process-level tests: start the real binary on a
//! free port with its own state directory, talk HTTP/1 to it over a real
//! socket, and always stop it.

#![allow(dead_code)]

pub mod markdown;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use faas_core::Body;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// The longest any single wait in these tests may take before it fails.
pub const WAIT: Duration = Duration::from_secs(30);

/// The gateway binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_faas-gateway")
}

/// A command running the gateway on a free port with `state_dir`, logs at
/// debug for the gateway (to help when a test fails).
pub fn command(state_dir: &Path) -> Command {
    let mut cmd = command_without_listen(state_dir);
    cmd.arg("--listen").arg("127.0.0.1:0");
    cmd
}

/// [`command`] without `--listen`, for tests choosing the address through
/// the environment.
pub fn command_without_listen(state_dir: &Path) -> Command {
    command_of(Path::new(binary()), state_dir)
}

/// [`command_without_listen`] running the gateway binary at `program`
/// (a copy placed where another user can reach it).
pub fn command_of(program: &Path, state_dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.arg("--state-dir").arg(state_dir);
    cmd.env("RUST_LOG", "info,faas_gateway=debug");
    for var in [
        "FAAS_LISTEN",
        "FAAS_STATE_DIR",
        "FAAS_PROVIDER",
        "basic_auth",
        "secret_mount_path",
        "read_timeout",
        "write_timeout",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// A running gateway process. Dropping it stops the process (SIGTERM, then
/// SIGKILL if it does not exit) so no test leaks one.
pub struct Gateway {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    stderr_path: PathBuf,
}

impl Gateway {
    /// Starts the gateway on `state_dir` with extra arguments; its stderr
    /// goes to `<state_dir>.stderr` (a sibling file).
    pub async fn start(state_dir: &Path, extra: &[&str]) -> Gateway {
        let mut cmd = command(state_dir);
        cmd.args(extra);
        Gateway::spawn(cmd, state_dir).await
    }

    /// Starts `cmd` (built with [`command`]) and waits for its
    /// `listening on <addr>` line.
    pub async fn spawn(mut cmd: Command, state_dir: &Path) -> Gateway {
        let stderr_path = stderr_path(state_dir);
        let stderr = std::fs::OpenOptions::new().create(true).append(true).open(&stderr_path).unwrap();
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(stderr);
        let mut child = cmd.spawn().expect("the gateway binary starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr.trim().parse::<SocketAddr>().ok());
                    }
                }
            }
        });
        let mut gateway = Gateway { child: Some(child), addr: "127.0.0.1:0".parse().unwrap(), stderr_path };
        match tokio::time::timeout(WAIT, rx).await {
            Ok(Ok(Some(addr))) => gateway.addr = addr,
            other => panic!("the gateway did not report its address ({other:?}); stderr:\n{}", gateway.stderr()),
        }
        gateway
    }

    /// The process id.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().expect("running").id() as i32)
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        kill(self.pid(), Signal::SIGTERM).expect("SIGTERM delivered");
    }

    /// Waits for the process to exit on its own.
    pub async fn wait_exit(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "the gateway did not exit within {WAIT:?}; stderr:\n{}", self.stderr());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// `http://<addr><path>` as a URI.
    pub fn uri(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends `request` (its URI: a path) and returns the status, headers and
    /// whole body.
    pub async fn send(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Bytes) {
        let (response, _connection) = open_call(self.addr, request).await;
        let (parts, body) = response.into_parts();
        let body = tokio::time::timeout(WAIT, body.collect()).await.expect("the body arrives in time").unwrap();
        (parts.status, parts.headers, body.to_bytes())
    }

    /// `method path` with `body`, no extra headers.
    pub async fn call(&self, method: &str, path: &str, body: impl Into<Body>) -> (StatusCode, String) {
        let request = Request::builder().method(method).uri(path).body(body.into()).unwrap();
        let (status, _, body) = self.send(request).await;
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        self.call("GET", path, Body::empty()).await
    }

    /// Polls `GET /metrics` until it holds every line of `lines`, for
    /// counters bumped after the answer a test waited on (a callback is
    /// delivered before its call counts as completed).
    pub async fn wait_metrics(&self, lines: &[&str]) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let (_, metrics) = self.get("/metrics").await;
            let missing: Vec<&str> = lines.iter().copied().filter(|line| !metrics.contains(line)).collect();
            if missing.is_empty() {
                return metrics;
            }
            assert!(Instant::now() < deadline, "{missing:?} never appeared in /metrics:\n{metrics}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Deploys `deployment` (JSON) and expects 202.
    pub async fn deploy(&self, deployment: serde_json::Value) {
        let (status, body) = self.call("POST", "/system/functions", deployment.to_string()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "deploy {deployment}: {body}");
    }

    /// Polls `GET /system/function/{name}` until `availableReplicas` is
    /// `replicas`.
    pub async fn wait_available(&self, name: &str, replicas: u64) -> serde_json::Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let (status, body) = self.get(&format!("/system/function/{name}")).await;
            if status == StatusCode::OK {
                let value: serde_json::Value = serde_json::from_str(&body).unwrap();
                if value["availableReplicas"].as_u64().unwrap_or(0) == replicas {
                    return value;
                }
            }
            assert!(Instant::now() < deadline, "{name} never had {replicas} available replicas: {status} {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Where a gateway on `state_dir` writes its stderr.
pub fn stderr_path(state_dir: &Path) -> PathBuf {
    let mut name = state_dir.file_name().unwrap_or_default().to_os_string();
    name.push(".stderr");
    state_dir.with_file_name(name)
}

/// Runs a gateway that is expected to fail at start-up and returns its exit
/// status and stderr.
pub async fn run_to_failure(mut cmd: Command) -> (ExitStatus, String) {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let child = tokio::process::Command::from(cmd).kill_on_drop(true).spawn().expect("the gateway binary starts");
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("a gateway that cannot start exits promptly")
        .unwrap();
    (output.status, String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Opens a fresh HTTP/1 connection to `addr`, sends `request` and returns
/// the response (headers read, body streaming) and the connection's task;
/// dropping the response and aborting the task closes the socket.
pub async fn open_call(addr: SocketAddr, request: Request<Body>) -> (Response<Incoming>, JoinHandle<()>) {
    let stream = TcpStream::connect(addr).await.expect("the gateway accepts connections");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.expect("HTTP/1 handshake");
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut request = request;
    request.headers_mut().insert(http::header::HOST, http::HeaderValue::from_str(&addr.to_string()).unwrap());
    let response = tokio::time::timeout(WAIT, sender.send_request(request))
        .await
        .expect("the response headers arrive in time")
        .expect("the request is answered");
    (response, task)
}

/// Whether process `pid` is gone (no such process, or a zombie).
pub fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(") ").map(|(_, rest)| rest.starts_with('Z')).unwrap_or(false),
    }
}

/// Waits until `pid` is gone, failing after [`WAIT`].
pub async fn wait_gone(pid: i32, what: &str) {
    let deadline = Instant::now() + WAIT;
    while !process_gone(pid) {
        assert!(Instant::now() < deadline, "{what} (pid {pid}) is still running after {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `path` exists and holds a pid; returns it.
pub async fn wait_pid_file(path: &Path) -> i32 {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse() {
                return pid;
            }
        }
        assert!(Instant::now() < deadline, "{} was never written", path.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes an executable-by-sh script `name` into `dir`; returns its path.
pub fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `Authorization: Basic ...` for `user:password`.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}
