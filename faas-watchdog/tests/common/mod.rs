//! Helpers shared by the integration tests: starting watchdogs with real
//! processes, calling them, and watching processes come and go.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use faas_core::Body;
use faas_watchdog::{Config, LogSink, Options, Stream, Watchdog};
use http::{Request, Response};

/// Every wait in the tests is bounded by this unless said otherwise.
pub const LIMIT: Duration = Duration::from_secs(20);

/// `future`, or a panic naming `what` if it takes longer than [`LIMIT`].
pub async fn bounded<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(LIMIT, future).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {LIMIT:?} waiting for {what}"),
    }
}

/// Polls `check` every 20ms until it holds, panicking after [`LIMIT`].
pub async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    bounded(what, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// The test process's environment, for the functions' processes.
pub fn test_env() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

/// Collects the lines processes write.
#[derive(Default)]
pub struct Lines(Mutex<Vec<(String, Stream, String)>>);

impl LogSink for Lines {
    fn line(&self, instance: &str, stream: Stream, text: &str) {
        self.0.lock().unwrap().push((instance.to_string(), stream, text.to_string()));
    }
}

impl Lines {
    pub fn all(&self) -> Vec<(String, Stream, String)> {
        self.0.lock().unwrap().clone()
    }

    /// The texts of lines that start with `prefix`, without it.
    pub fn values(&self, prefix: &str) -> Vec<String> {
        self.all().into_iter().filter_map(|(_, _, t)| t.strip_prefix(prefix).map(str::to_string)).collect()
    }

    /// Waits until a line starts with `prefix`; returns its rest parsed.
    pub async fn wait_value<T: std::str::FromStr>(&self, prefix: &str) -> T {
        bounded(&format!("a log line starting with {prefix:?}"), async {
            loop {
                if let Some(v) = self.values(prefix).first().and_then(|v| v.trim().parse().ok()) {
                    return v;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
    }
}

/// Starts a watchdog from `vars` with the test's environment.
pub async fn start(vars: &[(&str, &str)], instances: usize) -> (Watchdog, Arc<Lines>) {
    start_with_env(vars, instances, test_env()).await
}

pub async fn start_with_env(
    vars: &[(&str, &str)],
    instances: usize,
    env: BTreeMap<String, String>,
) -> (Watchdog, Arc<Lines>) {
    let config = Config::from_vars(vars.iter().copied()).expect("valid config");
    let lines = Arc::new(Lines::default());
    let options = Options {
        instances,
        env,
        working_dir: None,
        log_sink: Some(lines.clone() as Arc<dyn LogSink>),
        name: "fn".into(),
        ..Options::default()
    };
    let watchdog = Watchdog::start(config, options).await.expect("watchdog starts");
    (watchdog, lines)
}

/// A request with `body`.
pub fn request(method: &str, uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder().method(method).uri(uri).body(body.into()).unwrap()
}

/// Reads a whole (small) response body.
pub async fn read_body(response: Response<Body>) -> Bytes {
    bounded("the response body", response.into_body().collect_limited(16 << 20)).await.expect("body reads")
}

/// Invokes and reads the whole response.
pub async fn call(
    watchdog: &Watchdog,
    request: Request<Body>,
) -> Result<(u16, http::HeaderMap, String), faas_core::Error> {
    let response = bounded("the call", watchdog.invoke(request)).await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = read_body(response).await;
    Ok((status, headers, String::from_utf8_lossy(&body).into_owned()))
}

/// Writes an executable script into `dir`.
pub fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// True while `pid` is a live (not zombie) process.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the command name in parentheses.
            let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some('Z' | 'X') | None)
        }
        Err(_) => false,
    }
}

/// The python3 interpreter itself (not a version-manager shim).
pub fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = std::process::Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 is installed");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `fwatchdog` with only `PATH` and `vars` in its environment; its
/// stderr is collected until it exits.
pub fn spawn_fwatchdog(vars: &[(&str, &str)]) -> (tokio::process::Child, tokio::task::JoinHandle<String>) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fwatchdog"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .envs(vars.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let logs = tokio::spawn(async move {
        let mut text = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text).await;
        text
    });
    (child, logs)
}
