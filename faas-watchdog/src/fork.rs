//! Fork modes: a process per call, the request on stdin and stdout as the
//! response, either read whole (serializing) or streamed (streaming).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use faas_core::Body;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::{oneshot, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::bodies::{guarded, with_deadline};
use crate::call_log::CallLogger;
use crate::config::ConfigError;
use crate::error::WatchdogError;
use crate::gate::Gate;
use crate::logs::{pump_lines, LogSink, SharedTail, Stream};
use crate::process::{kill_group, Groups, Input, ProcessSpec};
use crate::sandbox::{Lease, MemoryCheck};
use crate::spawned::Proc;

/// Size of the chunks read from stdout.
const CHUNK: usize = 256 * 1024;
/// What the stdin and stdout pipes are grown to (Linux's default is 64 KiB,
/// and 1 MiB is the largest an unprivileged process may ask for): fewer,
/// larger reads and writes and fewer wake-ups of the function and of the
/// watchdog when a large body streams through.
const PIPE_SIZE: i32 = 1024 * 1024;
/// How long stderr may stay open after the process exited before its tail
/// is taken as it is.
const STDERR_DRAIN: Duration = Duration::from_secs(1);
/// How long to look for output after a failed exit before answering 500.
const LATE_OUTPUT: Duration = Duration::from_millis(500);

/// Runs the function as a process per call.
pub(crate) struct Fork {
    streaming: bool,
    spec: Result<ProcessSpec, ConfigError>,
    content_type: Option<String>,
    name: String,
    sink: Option<Arc<dyn LogSink>>,
    pub(crate) gate: Arc<Gate>,
    pub(crate) groups: Arc<Groups>,
    last_error: Mutex<Option<String>>,
    /// Writes `Forking fprocess.` as each process starts (`log_calls`).
    pub(crate) call_log: Option<Arc<CallLogger>>,
}

impl Fork {
    pub(crate) fn new(
        streaming: bool,
        spec: Result<ProcessSpec, ConfigError>,
        content_type: Option<String>,
        name: String,
        sink: Option<Arc<dyn LogSink>>,
        instances: usize,
    ) -> Fork {
        let last_error = spec.as_ref().err().map(ToString::to_string);
        Fork {
            streaming,
            spec,
            content_type,
            name,
            sink,
            gate: Arc::new(Gate::new(instances)),
            groups: Arc::default(),
            last_error: Mutex::new(last_error),
            call_log: None,
        }
    }

    /// `instances` if the program resolves, else 0.
    pub(crate) fn ready_instances(&self) -> usize {
        if self.spec.is_ok() {
            self.gate.limit()
        } else {
            0
        }
    }

    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok()?.clone()
    }

    /// Runs one call. `wait_until` bounds the wait for a free instance.
    pub(crate) async fn call(
        &self,
        request: Request<Body>,
        deadline: Option<Instant>,
        wait_until: Instant,
        exec_timeout: Option<Duration>,
    ) -> Result<Response<Body>, WatchdogError> {
        let spec = match &self.spec {
            Ok(spec) => spec,
            Err(e) => return Err(WatchdogError::unavailable(format!("no instance can start: {e}"))),
        };
        let permit = self.gate.acquire(wait_until).await?;
        let timeout_error = || WatchdogError::Timeout { after: exec_timeout.unwrap_or_default() };

        let (parts, body) = request.into_parts();
        let content_type = self
            .content_type
            .as_deref()
            .and_then(|ct| HeaderValue::from_str(ct).ok())
            .or_else(|| parts.headers.get(CONTENT_TYPE).cloned())
            .unwrap_or_else(|| HeaderValue::from_static("text/plain"));

        let (mut child, lease) = spec.spawn(&cgi_env(&parts), Input::Piped).await.map_err(|source| {
            let err = WatchdogError::Spawn { program: spec.arg0.clone(), source };
            if let Ok(mut last) = self.last_error.lock() {
                *last = Some(err.to_string());
            }
            err
        })?;
        if let Ok(mut last) = self.last_error.lock() {
            if self.spec.is_ok() {
                *last = None;
            }
        }
        if let Some(log) = &self.call_log {
            log.forking();
        }
        let Some(pid) = child.id() else {
            return Err(WatchdogError::backend("the process exited before it could be tracked", None));
        };
        let (Some(stdin), Some(mut stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(WatchdogError::backend("the process's standard streams are missing", None));
        };

        grow_pipe(&stdin);
        grow_pipe(&stdout);

        let memory = lease.as_ref().and_then(Lease::memory);
        let instance = format!("{}-{pid}", self.name);
        let tail = SharedTail::default();
        let stderr_task =
            tokio::spawn(pump_lines(stderr, instance, Stream::Stderr, self.sink.clone(), Some(tail.clone())));
        let stdin_task = tokio::spawn(feed_stdin(body, stdin));
        let (cancel_tx, cancel_rx) = oneshot::channel();
        let (exit_tx, mut exit_rx) = watch::channel(None);
        let timed_out = Arc::new(AtomicBool::new(false));
        tokio::spawn(supervise(child, lease, pid, deadline, cancel_rx, timed_out.clone(), exit_tx));
        self.groups.add(pid);
        let handle = ProcHandle {
            pgid: pid,
            groups: self.groups.clone(),
            stdin_task: stdin_task.abort_handle(),
            _cancel: cancel_tx,
        };

        if !self.streaming {
            let run = async {
                let mut out = Vec::new();
                let read = stdout.read_to_end(&mut out).await;
                let status = wait_exit(&mut exit_rx).await;
                (read, status, out)
            };
            let (read, status, out) = match sleep_until_or(deadline, run).await {
                Some(done) => done,
                None => {
                    drop(handle);
                    let _ = tokio::time::timeout(STDERR_DRAIN, wait_exit(&mut exit_rx)).await;
                    return Err(timeout_error());
                }
            };
            if timed_out.load(Ordering::SeqCst) {
                return Err(timeout_error());
            }
            drop(handle);
            if let Err(e) = read {
                return Err(WatchdogError::backend("reading the process's stdout failed", Some(Box::new(e) as _)));
            }
            return Ok(match status {
                Some(status) if status.success() => respond(StatusCode::OK, content_type, Body::from(out)),
                status => failure(status, stderr_task, &tail, memory.as_deref()).await,
            });
        }

        let mut first = BytesMut::with_capacity(CHUNK);
        enum First {
            Data,
            Eof,
            Exited(Option<ExitStatus>),
            Failed(std::io::Error),
        }
        let started = async {
            tokio::select! {
                read = stdout.read_buf(&mut first) => match read {
                    Ok(0) => First::Eof,
                    Ok(_) => First::Data,
                    Err(e) => First::Failed(e),
                },
                status = wait_exit(&mut exit_rx) => First::Exited(status),
            }
        };
        let Some(mut outcome) = sleep_until_or(deadline, started).await else {
            drop(handle);
            let _ = tokio::time::timeout(STDERR_DRAIN, wait_exit(&mut exit_rx)).await;
            return Err(timeout_error());
        };
        if timed_out.load(Ordering::SeqCst) {
            return Err(timeout_error());
        }
        if let First::Exited(status) = &outcome {
            if !status.is_some_and(|s| s.success()) {
                // Output written just before a failing exit still counts as output.
                outcome = match tokio::time::timeout(LATE_OUTPUT, stdout.read_buf(&mut first)).await {
                    Ok(Ok(n)) if n > 0 => First::Data,
                    _ => First::Exited(*status),
                };
            }
        }
        match outcome {
            First::Failed(e) => {
                Err(WatchdogError::backend("reading the process's stdout failed", Some(Box::new(e) as _)))
            }
            First::Eof => {
                let Some(status) = sleep_until_or(deadline, wait_exit(&mut exit_rx)).await else {
                    drop(handle);
                    return Err(timeout_error());
                };
                if timed_out.load(Ordering::SeqCst) {
                    return Err(timeout_error());
                }
                drop(handle);
                Ok(match status {
                    Some(status) if status.success() => respond(StatusCode::OK, content_type, Body::empty()),
                    status => failure(status, stderr_task, &tail, memory.as_deref()).await,
                })
            }
            First::Exited(Some(status)) if status.success() => {
                let body = stream_stdout(first.freeze(), stdout, handle, timed_out, permit);
                Ok(respond(StatusCode::OK, content_type, with_deadline(body, deadline)))
            }
            First::Exited(status) => {
                drop(handle);
                Ok(failure(status, stderr_task, &tail, memory.as_deref()).await)
            }
            First::Data => {
                let body = stream_stdout(first.freeze(), stdout, handle, timed_out, permit);
                Ok(respond(StatusCode::OK, content_type, with_deadline(body, deadline)))
            }
        }
    }
}

/// Owns the running call's process group: dropping it (the call ended,
/// or the client went away) kills the group and stops feeding stdin.
struct ProcHandle {
    pgid: u32,
    groups: Arc<Groups>,
    stdin_task: AbortHandle,
    /// Dropped with the handle, which tells the supervisor to kill and reap.
    _cancel: oneshot::Sender<()>,
}

impl Drop for ProcHandle {
    fn drop(&mut self) {
        kill_group(self.pgid);
        self.groups.remove(self.pgid);
        self.stdin_task.abort();
    }
}

/// Waits for the process, killing its group at `deadline` or when the call
/// is cancelled, and always reaps it; publishes the exit status. Once the
/// call has also ended (its [`ProcHandle`] dropped, which killed the
/// group), releases the sandbox instance: at once when it is empty, as it
/// is unless the process left descendants.
async fn supervise(
    mut child: Proc,
    lease: Option<Lease>,
    pgid: u32,
    deadline: Option<Instant>,
    mut cancel: oneshot::Receiver<()>,
    timed_out: Arc<AtomicBool>,
    exit: watch::Sender<Option<Option<ExitStatus>>>,
) {
    let mut ended = false;
    let status = tokio::select! {
        status = child.wait() => status,
        _ = sleep_until_opt(deadline) => {
            timed_out.store(true, Ordering::SeqCst);
            kill_group(pgid);
            let _ = child.start_kill();
            child.wait().await
        }
        _ = &mut cancel => {
            ended = true;
            kill_group(pgid);
            let _ = child.start_kill();
            child.wait().await
        }
    };
    exit.send_replace(Some(status.ok()));
    if !ended {
        let _ = cancel.await;
    }
    drop(lease);
}

/// The exit status once the supervisor has reaped the process (`None`
/// inside when waiting failed).
async fn wait_exit(exit: &mut watch::Receiver<Option<Option<ExitStatus>>>) -> Option<ExitStatus> {
    match exit.wait_for(Option::is_some).await {
        Ok(status) => status.flatten(),
        Err(_) => None,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// `future`'s output, or `None` if `deadline` passes first.
async fn sleep_until_or<F: std::future::Future>(deadline: Option<Instant>, future: F) -> Option<F::Output> {
    match deadline {
        Some(at) => tokio::time::timeout_at(at, future).await.ok(),
        None => Some(future.await),
    }
}

/// Copies the request body into the process's stdin, then closes it. A
/// process that stops reading ends the copy quietly.
async fn feed_stdin(mut body: Body, mut stdin: pipe::Sender) {
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            if stdin.write_all(&data).await.is_err() {
                return;
            }
        }
    }
    let _ = stdin.shutdown().await;
}

fn respond(status: StatusCode, content_type: HeaderValue, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response
}

/// A 500 whose body is the tail of stderr (or the exit status when the
/// process wrote nothing there); a 502 naming the limit when the kernel
/// killed the process for memory.
async fn failure(
    status: Option<ExitStatus>,
    stderr_task: tokio::task::JoinHandle<()>,
    tail: &SharedTail,
    memory: Option<&MemoryCheck>,
) -> Response<Body> {
    use std::os::unix::process::ExitStatusExt;
    if status.and_then(|s| s.signal()) == Some(nix::libc::SIGKILL) {
        if let Some(response) = memory.and_then(MemoryCheck::exceeded) {
            return response;
        }
    }
    let _ = tokio::time::timeout(STDERR_DRAIN, stderr_task).await;
    let mut text = tail.lock().map(|t| t.text()).unwrap_or_default();
    if text.is_empty() {
        text = match status {
            Some(status) => format!("the function {status}"),
            None => "the function failed".to_string(),
        };
    }
    respond(StatusCode::INTERNAL_SERVER_ERROR, HeaderValue::from_static("text/plain"), Body::from(text))
}

/// The response body of a streaming call: `first`, then stdout until it
/// closes. Dropping it kills the process group.
fn stream_stdout<G: Send + 'static>(
    first: Bytes,
    stdout: pipe::Receiver,
    handle: ProcHandle,
    timed_out: Arc<AtomicBool>,
    guard: G,
) -> Body {
    struct State {
        first: Option<Bytes>,
        stdout: pipe::Receiver,
        timed_out: Arc<AtomicBool>,
        done: bool,
    }
    let state = State { first: Some(first).filter(|b| !b.is_empty()), stdout, timed_out, done: false };
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        if let Some(first) = state.first.take() {
            return Some((Ok(first), state));
        }
        let mut buf = BytesMut::with_capacity(CHUNK);
        match read_some(&mut state.stdout, &mut buf).await {
            Ok(0) if state.timed_out.load(Ordering::SeqCst) => {
                state.done = true;
                Some((
                    Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "function call exceeded exec_timeout")),
                    state,
                ))
            }
            Ok(0) => None,
            Ok(_) => Some((Ok(buf.freeze()), state)),
            Err(e) => {
                state.done = true;
                Some((Err(e), state))
            }
        }
    });
    guarded(Body::from_stream(stream), (handle, guard))
}

/// Grows a pipe to [`PIPE_SIZE`]; where the system refuses (a lower
/// `pipe-max-size`, the user's pipe quota), it stays as it is.
fn grow_pipe(pipe: &impl std::os::fd::AsRawFd) {
    use nix::fcntl::{fcntl, FcntlArg};
    if let Err(err) = fcntl(pipe.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(PIPE_SIZE)) {
        tracing::trace!(error = %err, "cannot grow a pipe; keeping its size");
    }
}

async fn read_some<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut BytesMut) -> std::io::Result<usize> {
    reader.read_buf(buf).await
}

/// The request as CGI-style variables: `Http_Method`, `Http_Path`,
/// `Http_Query`, `Http_Content_Type`, `Http_ContentLength`, `Http_Host`,
/// and `Http_<Header>` for each header (first value; name canonicalised
/// as Go does, `-` replaced by `_`).
pub(crate) fn cgi_env(parts: &http::request::Parts) -> BTreeMap<OsString, OsString> {
    let mut env = BTreeMap::new();
    let mut put = |k: String, v: Vec<u8>| {
        env.insert(OsString::from(k), OsString::from_vec(v));
    };
    for name in parts.headers.keys() {
        if let Some(value) = parts.headers.get(name) {
            put(format!("Http_{}", canonical_header(name.as_str()).replace('-', "_")), value.as_bytes().to_vec());
        }
    }
    put("Http_Method".into(), parts.method.as_str().as_bytes().to_vec());
    put("Http_Path".into(), parts.uri.path().as_bytes().to_vec());
    put("Http_Query".into(), parts.uri.query().unwrap_or("").as_bytes().to_vec());
    if let Some(ct) = parts.headers.get(CONTENT_TYPE) {
        put("Http_Content_Type".into(), ct.as_bytes().to_vec());
    }
    if let Some(len) = parts.headers.get(CONTENT_LENGTH) {
        put("Http_ContentLength".into(), len.as_bytes().to_vec());
    }
    let host = parts
        .headers
        .get(HOST)
        .map(|h| h.as_bytes().to_vec())
        .or_else(|| parts.uri.authority().map(|a| a.as_str().as_bytes().to_vec()));
    if let Some(host) = host {
        put("Http_Host".into(), host);
    }
    env
}

/// A header name as Go's `CanonicalMIMEHeaderKey` spells it:
/// `x-conformance` -> `X-Conformance`.
pub(crate) fn canonical_header(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() });
        upper = c == '-';
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipes_are_grown_to_a_mebibyte() {
        use nix::fcntl::{fcntl, FcntlArg};
        use std::os::fd::AsRawFd;
        let (read, write) = nix::unistd::pipe().unwrap();
        let size = |fd: &std::os::fd::OwnedFd| fcntl(fd.as_raw_fd(), FcntlArg::F_GETPIPE_SZ).unwrap();
        assert!(size(&read) < PIPE_SIZE, "a new pipe is smaller (Linux: 64 KiB)");
        grow_pipe(&write);
        assert_eq!(size(&read), PIPE_SIZE);
    }

    #[test]
    fn header_names_are_canonicalised_like_go() {
        assert_eq!(canonical_header("x-conformance"), "X-Conformance");
        assert_eq!(canonical_header("CONTENT-TYPE"), "Content-Type");
        assert_eq!(canonical_header("x-a--b"), "X-A--B");
        assert_eq!(canonical_header("accept"), "Accept");
    }

    #[test]
    fn cgi_env_exposes_the_request() {
        let request = Request::post("/a/b?x=1&y=2")
            .header("x-conformance", "hello")
            .header("content-type", "application/json")
            .header("content-length", "7")
            .header("host", "example:8080")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let env = cgi_env(&parts);
        let get = |k: &str| env.get(&OsString::from(k)).map(|v| v.to_string_lossy().into_owned());
        assert_eq!(get("Http_Method").as_deref(), Some("POST"));
        assert_eq!(get("Http_Path").as_deref(), Some("/a/b"));
        assert_eq!(get("Http_Query").as_deref(), Some("x=1&y=2"));
        assert_eq!(get("Http_X_Conformance").as_deref(), Some("hello"));
        assert_eq!(get("Http_Content_Type").as_deref(), Some("application/json"));
        assert_eq!(get("Http_ContentLength").as_deref(), Some("7"));
        assert_eq!(get("Http_Host").as_deref(), Some("example:8080"));
    }
}
