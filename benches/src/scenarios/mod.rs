//! The end-to-end scenarios, each measured against its baseline in the
//! same run.

pub mod cold;
pub mod flood;
pub mod fork;
pub mod history;
pub mod idle;
pub mod invoke;
pub mod sandbox;
pub mod scale;
pub mod soak;
pub mod stream;
pub mod upload;
pub mod upstream;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::load::Plan;
use crate::procs::{free_port, server_command, Binaries, Proc};
use crate::Res;

/// What every scenario gets.
pub struct Ctx {
    pub bins: Binaries,
    /// Where the started processes' logs and the Python function go.
    pub work: PathBuf,
    /// Rounds of alternation per measurement.
    pub rounds: usize,
    /// Measured seconds per load run.
    pub secs: f64,
    /// Functions deployed by the scale scenario.
    pub functions: usize,
    /// MiB streamed by the streaming scenario.
    pub stream_mib: u64,
    /// Samples of each cold start.
    pub cold_samples: usize,
    /// OpenFaaS's of-watchdog binary, measured beside `fwatchdog` by the
    /// fork scenario when given.
    pub of_watchdog: Option<PathBuf>,
}

impl Ctx {
    /// A load plan at `concurrency`.
    pub fn plan(&self, concurrency: usize) -> Plan {
        Plan {
            concurrency,
            warmup: Duration::from_secs_f64((self.secs / 4.0).max(0.1)),
            duration: Duration::from_secs_f64(self.secs),
            max_calls: 2_000_000,
        }
    }

    /// The Python function's script, written once.
    pub fn python_script(&self) -> Res<PathBuf> {
        let path = self.work.join("echo.py");
        std::fs::write(&path, PYTHON_ECHO)?;
        Ok(path)
    }

    /// The Python function's command line, if Python is installed.
    pub fn python_command(&self) -> Res<Option<String>> {
        match &self.bins.python {
            Some(python) => Ok(Some(format!("{} {}", python.display(), self.python_script()?.display()))),
            None => Ok(None),
        }
    }
}

/// The Python function: `http.server`, answering 200 with the request body.
///
/// Its listen backlog is 128, not `socketserver`'s 5: with 64 callers
/// connecting at once a backlog of 5 overflows, the kernel drops the
/// handshakes' last ACKs, and the callers' first requests wait on TCP
/// retransmissions (seconds, then tens of seconds) or are reset, which
/// measured the kernel's backoff instead of the paths. Servers that run
/// Python functions in production listen with a larger one (gunicorn: 2048).
const PYTHON_ECHO: &str = r#"import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

class Server(ThreadingHTTPServer):
    request_queue_size = 128

Server(("127.0.0.1", int(os.environ["PORT"])), Echo).serve_forever()
"#;

/// A minimal environment for started processes.
fn base_env() -> BTreeMap<String, String> {
    ["PATH", "HOME", "LANG", "TMPDIR", "USER"]
        .iter()
        .filter_map(|k| Some((k.to_string(), std::env::var(k).ok()?)))
        .collect()
}

/// Starts `command_line` (split on whitespace) with `PORT` set: a function
/// called directly. Returns the process and its port.
pub fn start_direct(command_line: &str, log: &Path, what: &str) -> Res<(Proc, u16)> {
    let port = free_port()?;
    let mut words = command_line.split_whitespace();
    let mut command = server_command(words.next().ok_or("empty command")?);
    command
        .args(words)
        .env_clear()
        .envs(base_env())
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?);
    Ok((Proc::spawn(command, what)?, port))
}

/// A watchdog (`binary`) set up to run `command_line` in `mode` on a free
/// port, its stderr to `log`: the settings `fwatchdog` and of-watchdog
/// share. Returns the command and the port.
fn watchdog_command(binary: &Path, command_line: &str, mode: &str, log: &Path) -> Res<(Command, u16)> {
    let port = free_port()?;
    let mut command = server_command(binary);
    command
        .env_clear()
        .envs(base_env())
        .env("fprocess", command_line)
        .env("mode", mode)
        .env("port", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?);
    Ok((command, port))
}

/// Starts `fwatchdog` running `command_line` in `mode`. Returns the
/// process and its port.
pub fn start_watchdog(bins: &Binaries, command_line: &str, mode: &str, log: &Path) -> Res<(Proc, u16)> {
    let (mut command, port) = watchdog_command(&bins.watchdog, command_line, mode, log)?;
    command.env("RUST_LOG", "warn");
    Ok((Proc::spawn(command, &format!("fwatchdog ({command_line})"))?, port))
}

/// Starts OpenFaaS's of-watchdog (`binary`) running `command_line` in
/// streaming mode, configured as [`start_watchdog`] configures `fwatchdog`.
/// Its health-check interval is 1 s, which only shortens its graceful
/// shutdown (30 s by default, longer than [`Proc`]'s grace), and its lock
/// file goes to `work`. Returns the process and its port.
pub fn start_of_watchdog(binary: &Path, command_line: &str, work: &Path, log: &Path) -> Res<(Proc, u16)> {
    let (mut command, port) = watchdog_command(binary, command_line, "streaming", log)?;
    command.env("healthcheck_interval", "1s").env("TMPDIR", work);
    Ok((Proc::spawn(command, &format!("of-watchdog ({command_line})"))?, port))
}

/// `x` with a fixed number of decimals, or `-` when not a number.
pub fn fmt(x: f64, decimals: usize) -> String {
    if x.is_finite() {
        format!("{x:.decimals$}")
    } else {
        "-".into()
    }
}
