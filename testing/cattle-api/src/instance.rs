//! An instance's runtime: a real `fwatchdog` process (the binary of
//! faas-watchdog) configured from the container's environment and
//! listening on the instance's own port at 127.0.0.1, standing in for a
//! container running `fwatchdog`.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faas_test_support::process::{self, Stop, StopAsked};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Child;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a started fwatchdog may take to listen on its port.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);
/// Output lines kept for the message of a process that exits.
const TAIL_LINES: usize = 8;
/// Start attempts when the server picked the port (another process may
/// take a free port between the pick and fwatchdog's bind).
const ATTEMPTS: usize = 3;

/// How the process ended.
#[derive(Debug, Clone)]
pub(crate) struct Exit {
    /// Exit status 0.
    pub(crate) success: bool,
    /// The status and the last line the process wrote.
    pub(crate) message: String,
}

/// A running instance: its fwatchdog process.
pub(crate) struct Runtime {
    pub(crate) port: u16,
    pub(crate) pid: u32,
    stop: Stop,
    exit: watch::Receiver<Option<Exit>>,
    task: tokio::sync::Mutex<Option<JoinHandle<()>>>,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("port", &self.port).field("pid", &self.pid).finish_non_exhaustive()
    }
}

impl Runtime {
    /// Starts `fwatchdog` configured by `environment` (the container's
    /// environment: `fprocess`, `mode`, ...), with `secrets` as files in a
    /// directory named by `SECRETS_DIR` (standing in for `/run/secrets`),
    /// listening on `port` at 127.0.0.1 (0: a free port), and returns once
    /// it accepts connections there.
    pub(crate) async fn start(
        fwatchdog: &Path,
        name: &str,
        environment: &BTreeMap<String, String>,
        secrets: &[(String, Vec<u8>)],
        port: u16,
    ) -> Result<Runtime, String> {
        let dir = tempfile::Builder::new()
            .prefix("cattle-instance-")
            .tempdir()
            .map_err(|e| format!("cannot create the instance directory: {e}"))?;
        let secrets_dir: PathBuf = dir.path().join("secrets");
        std::fs::create_dir(&secrets_dir).map_err(|e| format!("cannot create the secrets directory: {e}"))?;
        for (file, bytes) in secrets {
            if file.is_empty() || file.contains('/') || file.starts_with('.') {
                return Err(format!("secret file name {file:?} is not a plain file name"));
            }
            std::fs::write(secrets_dir.join(file), bytes).map_err(|e| format!("cannot write secret {file}: {e}"))?;
        }
        let mut env = process::container_env(name, environment.clone());
        env.insert("SECRETS_DIR".into(), secrets_dir.to_string_lossy().into_owned());
        // The container's 8080, published on the instance's port.
        env.insert("listen_address".into(), "127.0.0.1".into());
        let attempts = if port == 0 { ATTEMPTS } else { 1 };
        let mut last = String::new();
        for _ in 0..attempts {
            let port = if port == 0 {
                process::free_port().map_err(|e| format!("no free port on 127.0.0.1: {e}"))?
            } else {
                port
            };
            env.insert("port".into(), port.to_string());
            match spawn(fwatchdog, name, &env, dir.path(), port).await {
                Ok((pid, stop, exit, task)) => {
                    return Ok(Runtime { port, pid, stop, exit, task: tokio::sync::Mutex::new(Some(task)), _dir: dir })
                }
                Err(message) => {
                    let retry = message.contains("in use");
                    last = message;
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(last)
    }

    /// How the process ended, once it has (by itself or stopped).
    pub(crate) fn exited(&self) -> Option<Exit> {
        self.exit.borrow().clone()
    }

    /// Sends SIGTERM (fwatchdog stops taking connections, lets the calls
    /// in flight finish, stops the function's processes and exits), then
    /// SIGKILL if it is still running after `grace`; returns once it is
    /// gone.
    pub(crate) async fn stop(&self, grace: Duration) {
        self.stop.ask(grace);
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Runtime {
    /// Kills the process (its monitor does, at once).
    fn drop(&mut self) {
        self.stop.ask(Duration::ZERO);
    }
}

type Spawned = (u32, Stop, watch::Receiver<Option<Exit>>, JoinHandle<()>);

/// The last lines a process wrote.
type Tail = Arc<Mutex<VecDeque<String>>>;

/// Runs fwatchdog with exactly `env` in `dir` and waits until it listens
/// on `port`; a process that exits first, or does not listen in time, is
/// an error.
async fn spawn(
    fwatchdog: &Path,
    name: &str,
    env: &BTreeMap<String, String>,
    dir: &Path,
    port: u16,
) -> Result<Spawned, String> {
    let mut child = process::command(fwatchdog, env, dir)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", fwatchdog.display()))?;
    let pid = child.id().ok_or("fwatchdog exited at once")?;
    let tail = Tail::default();
    let readers = [
        child.stdout.take().map(|out| process::read_lines(out, forward(name, "stdout", tail.clone()))),
        child.stderr.take().map(|err| process::read_lines(err, forward(name, "stderr", tail.clone()))),
    ];
    let (stop, asked) = process::stop_channel();
    let (exit_tx, mut exit) = watch::channel(None);
    let task = tokio::spawn(monitor(child, asked, exit_tx, readers, tail));
    let listening = async {
        loop {
            if let Some(exit) = exit.borrow_and_update().clone() {
                return Err(exit.message);
            }
            if TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).await.is_ok() {
                return Ok(());
            }
            let _ = tokio::time::timeout(Duration::from_millis(20), exit.changed()).await;
        }
    };
    let outcome = match tokio::time::timeout(LISTEN_TIMEOUT, listening).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("fwatchdog did not listen on 127.0.0.1:{port} within {LISTEN_TIMEOUT:?}")),
    };
    match outcome {
        Ok(()) => Ok((pid, stop, exit, task)),
        Err(message) => {
            stop.ask(Duration::ZERO);
            let _ = task.await;
            Err(message)
        }
    }
}

/// Hands the process's output lines to `tracing` (debug, target
/// `cattle_test_server::instance`; the API has no container logs) and keeps
/// the last few for the message of an exit.
fn forward(name: &str, stream: &'static str, tail: Tail) -> impl FnMut(String) + Send + 'static {
    let name = name.to_owned();
    move |line| {
        tracing::debug!(instance = %name, stream, "{line}");
        let mut tail = tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tail.push_back(line);
        while tail.len() > TAIL_LINES {
            tail.pop_front();
        }
    }
}

/// Owns the process: waits for it to exit, or stops it when asked, then
/// reports how it ended.
async fn monitor(
    mut child: Child,
    mut asked: StopAsked,
    exit: watch::Sender<Option<Exit>>,
    readers: [Option<JoinHandle<()>>; 2],
    tail: Tail,
) {
    let status = tokio::select! {
        status = child.wait() => status,
        grace = asked.wait() => process::terminate(&mut child, grace).await,
    };
    process::drain(readers.into_iter().flatten()).await;
    let last = {
        let tail = tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tail.iter().rev().find(|line| !line.trim().is_empty()).cloned()
    };
    let (success, status) = match status {
        Ok(status) => (status.success(), status.to_string()),
        Err(e) => (false, format!("unknown status: {e}")),
    };
    let message = match last {
        Some(line) => format!("fwatchdog exited ({status}): {line}"),
        None => format!("fwatchdog exited ({status})"),
    };
    exit.send_replace(Some(Exit { success, message }));
}

/// Rancher's HTTP health check: sends `request_line` to `port` and passes
/// on a 2xx or 3xx status line within `limit`.
pub(crate) async fn probe(port: u16, request_line: &str, limit: Duration) -> bool {
    let check = async {
        let mut stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).await.ok()?;
        let request = format!("{}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", request_line.trim_end());
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 16];
        let mut read = 0;
        while read < 12 {
            let n = stream.read(&mut head[read..]).await.ok()?;
            if n == 0 {
                break;
            }
            read += n;
        }
        let text = std::str::from_utf8(&head[..read]).ok()?;
        let status = text.split_whitespace().nth(1)?;
        Some(status.starts_with('2') || status.starts_with('3'))
    };
    matches!(tokio::time::timeout(limit, check).await, Ok(Some(true)))
}
