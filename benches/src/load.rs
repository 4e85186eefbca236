//! Load generation: workers calling in a loop, bounded by count and time,
//! every answer checked, latencies recorded.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::stats;

/// One caller: makes one call and checks its answer.
pub trait Worker: Send + 'static {
    fn call(&mut self) -> impl Future<Output = Result<(), String>> + Send;
}

/// How long and how hard to load.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub concurrency: usize,
    /// Calls made before measuring, not counted.
    pub warmup: Duration,
    pub duration: Duration,
    /// Measured calls at most (across workers).
    pub max_calls: u64,
}

/// What a load run measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub window: Duration,
    /// Every call finished, warm-up included (CPU time is divided by it).
    pub calls: u64,
    /// Latency of each measured successful call, in microseconds.
    pub latencies_us: Vec<u32>,
}

impl Outcome {
    pub fn rps(&self) -> f64 {
        if self.window.is_zero() {
            0.0
        } else {
            self.ok as f64 / self.window.as_secs_f64()
        }
    }

    /// The `q` quantile of the latencies, in milliseconds.
    pub fn latency_ms(&mut self, q: f64) -> f64 {
        stats::quantile_sorted(&self.latencies_us, q) / 1000.0
    }
}

/// Runs `plan` with one worker per slot made by `make`.
pub async fn run<W: Worker>(plan: Plan, make: impl Fn(usize) -> W) -> Outcome {
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let end = measure_from + plan.duration;
    let counted = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..plan.concurrency {
        let mut worker = make(i);
        let counted = counted.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Outcome::default();
            let mut last = measure_from;
            loop {
                let began = Instant::now();
                if began >= end {
                    break;
                }
                let measured = began >= measure_from;
                if measured && counted.fetch_add(1, Ordering::Relaxed) >= plan.max_calls {
                    break;
                }
                let result = worker.call().await;
                let done = Instant::now();
                out.calls += 1;
                if !measured {
                    continue;
                }
                last = last.max(done);
                match result {
                    Ok(()) => {
                        out.ok += 1;
                        out.latencies_us.push(u32::try_from((done - began).as_micros()).unwrap_or(u32::MAX));
                    }
                    Err(e) => {
                        out.errors += 1;
                        out.first_error.get_or_insert(e);
                        // Do not spin on a broken target.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
            (out, last)
        }));
    }
    let mut total = Outcome::default();
    let mut last = measure_from;
    for task in tasks {
        match task.await {
            Ok((out, worker_last)) => {
                total.ok += out.ok;
                total.calls += out.calls;
                total.errors += out.errors;
                if total.first_error.is_none() {
                    total.first_error = out.first_error;
                }
                total.latencies_us.extend(out.latencies_us);
                last = last.max(worker_last);
            }
            Err(e) => {
                total.errors += 1;
                total.first_error.get_or_insert(format!("a load worker failed: {e}"));
            }
        }
    }
    total.window = last.saturating_duration_since(measure_from).min(plan.duration).max(Duration::from_millis(1));
    total.latencies_us.sort_unstable();
    total
}

/// An HTTP/1 keep-alive connection to `addr`.
pub async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(connection);
    Ok(sender)
}

/// POSTs a payload on its own keep-alive connection and expects 200 with
/// the payload echoed back.
pub struct EchoCaller {
    addr: SocketAddr,
    path: String,
    payload: Bytes,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl EchoCaller {
    pub fn new(addr: SocketAddr, path: &str, worker: usize) -> EchoCaller {
        let payload = Bytes::from(format!("faas-bench worker {worker:03} payload 0123456789abcdef"));
        EchoCaller { addr, path: path.to_owned(), payload, sender: None }
    }

    async fn send(&mut self) -> Result<(), String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.sender = Some(connect(self.addr).await?);
        }
        let sender = self.sender.as_mut().ok_or("no connection")?;
        sender.ready().await.map_err(|e| format!("connection: {e}"))?;
        let request = Request::post(self.path.as_str())
            .header(HOST, "127.0.0.1")
            .header(CONTENT_TYPE, "text/plain")
            .body(Full::new(self.payload.clone()))
            .map_err(|e| e.to_string())?;
        let response = sender.send_request(request).await.map_err(|e| format!("request: {e}"))?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|e| format!("response body: {e}"))?.to_bytes();
        if status != 200 {
            return Err(format!("status {status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])));
        }
        if body != self.payload {
            return Err(format!("wrong body: {:?}", String::from_utf8_lossy(&body[..body.len().min(200)])));
        }
        Ok(())
    }
}

impl Worker for EchoCaller {
    async fn call(&mut self) -> Result<(), String> {
        let result = self.send().await;
        if result.is_err() {
            self.sender = None;
        }
        result
    }
}

/// The fork-per-request baseline: spawns `cat`, pipes the payload through
/// it and expects it back.
pub struct SpawnCat {
    cat: std::path::PathBuf,
    payload: Bytes,
}

impl SpawnCat {
    pub fn new(cat: &std::path::Path, worker: usize) -> SpawnCat {
        let payload = Bytes::from(format!("faas-bench worker {worker:03} payload 0123456789abcdef"));
        SpawnCat { cat: cat.to_path_buf(), payload }
    }
}

impl Worker for SpawnCat {
    async fn call(&mut self) -> Result<(), String> {
        let mut child = tokio::process::Command::new(&self.cat)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn cat: {e}"))?;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        let mut stdout = child.stdout.take().ok_or("no stdout")?;
        let payload = self.payload.clone();
        let feed = async move {
            stdin.write_all(&payload).await?;
            stdin.shutdown().await
        };
        let mut out = Vec::with_capacity(self.payload.len());
        let (fed, read) = tokio::join!(feed, stdout.read_to_end(&mut out));
        fed.map_err(|e| format!("write stdin: {e}"))?;
        read.map_err(|e| format!("read stdout: {e}"))?;
        let status = child.wait().await.map_err(|e| format!("wait: {e}"))?;
        if !status.success() || out != self.payload {
            return Err(format!("cat {status} gave {:?}", String::from_utf8_lossy(&out)));
        }
        Ok(())
    }
}
