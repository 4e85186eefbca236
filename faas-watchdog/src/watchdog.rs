//! The watchdog: one function, run in the configured mode, behind
//! [`Watchdog::invoke`] and [`Watchdog::handle`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use faas_core::Body;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response, StatusCode};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::bodies::guarded;
use crate::call_log::{logged, CallLogger, CallRecord, Ending};
use crate::config::{Config, Mode};
use crate::error::WatchdogError;
use crate::fork::Fork;
use crate::gate::Gate;
use crate::http_pool::{Pool, PoolSettings};
use crate::logs::LogSink;
use crate::process::ProcessSpec;
use crate::sandbox::{Isolation, Jail, Sandbox};
use crate::static_files::StaticFiles;

/// The header that marks responses the platform produced (errors, health),
/// as opposed to the function's own.
pub const PLATFORM_ERROR_HEADER: &str = "x-faas-error";

/// How the watchdog runs its processes; the caller decides what the
/// configuration does not.
#[derive(Clone, Default)]
pub struct Options {
    /// HTTP mode: processes in the pool. Fork modes: calls run at once
    /// (extra calls wait up to `ready_timeout`, then 503). 0 = scaled to zero.
    pub instances: usize,
    /// The complete environment of spawned processes; nothing is inherited.
    pub env: BTreeMap<String, String>,
    /// The processes' working directory; default the watchdog's.
    pub working_dir: Option<PathBuf>,
    /// Receives every line the processes write (HTTP mode: stdout and
    /// stderr; fork modes: stderr).
    pub log_sink: Option<Arc<dyn LogSink>>,
    /// Instance names are `<name>-<n>` (HTTP mode, `n` the slot index) or
    /// `<name>-<pid>` (fork modes).
    pub name: String,
    /// The sandbox processes are spawned in (see [`crate::sandbox`]);
    /// `None` spawns them as they are.
    pub sandbox: Option<Arc<Sandbox>>,
    /// What this function asks of the sandbox (ignored without one).
    pub isolation: Isolation,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The environment may hold secrets: only its names are shown.
        f.debug_struct("Options")
            .field("instances", &self.instances)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("working_dir", &self.working_dir)
            .field("log_sink", &self.log_sink.is_some())
            .field("name", &self.name)
            .field("sandbox", &self.sandbox.as_ref().map(|s| s.mode()))
            .field("isolation", &self.isolation)
            .finish()
    }
}

/// Runs a function and serves calls to it.
///
/// Cheap to clone (an `Arc` inside). Dropping the last handle kills every
/// process the watchdog started.
#[derive(Clone)]
pub struct Watchdog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchdog")
            .field("name", &self.inner.name)
            .field("mode", &self.inner.config.mode)
            .field("instances", &self.instances())
            .field("inflight", &self.inflight())
            .finish()
    }
}

enum Runner {
    Fork(Fork),
    Http(Pool),
    Static { files: StaticFiles, gate: Gate },
}

struct Inner {
    config: Config,
    name: String,
    runner: Runner,
    calls: Arc<Calls>,
    /// Writes the per-call lines (`log_calls` with a sink; not in static mode).
    call_log: Option<Arc<CallLogger>>,
}

/// Calls in flight, and whether new ones are taken.
#[derive(Default)]
struct Calls {
    inflight: AtomicUsize,
    closed: AtomicBool,
    /// Signalled when `inflight` reaches zero.
    idle: Notify,
}

/// One call in flight; released when its response body is dropped.
struct CallGuard(Arc<Calls>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        if self.0.inflight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        match &self.runner {
            Runner::Fork(fork) => fork.groups.kill_all(),
            Runner::Http(pool) => pool.kill_all(),
            Runner::Static { .. } => {}
        }
    }
}

impl Watchdog {
    /// Starts the instances (HTTP mode spawns its processes; this returns
    /// without waiting for them to be ready).
    ///
    /// Errors only on a configuration that cannot work, such as a fixed
    /// `upstream_url` with more than one instance.
    pub async fn start(config: Config, options: Options) -> Result<Watchdog, WatchdogError> {
        let name = if options.name.is_empty() { "function".to_string() } else { options.name.clone() };
        let call_log = match (&options.log_sink, config.mode) {
            (Some(sink), Mode::Serializing | Mode::Streaming | Mode::Http) if config.log_calls => {
                Some(Arc::new(CallLogger::new(sink.clone(), name.clone())))
            }
            _ => None,
        };
        let jail = match &options.sandbox {
            Some(sandbox) => {
                let shared = matches!(config.mode, Mode::Serializing | Mode::Streaming);
                Jail::new(sandbox, options.isolation.clone(), shared)
                    .map_err(|e| WatchdogError::backend(format!("sandbox: {e}"), None))?
            }
            None => None,
        };
        let runner = match config.mode {
            Mode::Serializing | Mode::Streaming => {
                let words = config.command_words();
                let spec = ProcessSpec::resolve(&words, &options.env, options.working_dir.clone(), jail);
                let mut fork = Fork::new(
                    config.mode == Mode::Streaming,
                    spec,
                    config.content_type.clone(),
                    name.clone(),
                    options.log_sink.clone(),
                    options.instances,
                );
                fork.call_log = call_log.clone();
                Runner::Fork(fork)
            }
            Mode::Http => Runner::Http(Pool::start(
                PoolSettings {
                    words: config.command_words(),
                    env: options.env,
                    working_dir: options.working_dir.clone(),
                    jail,
                    sink: options.log_sink.clone(),
                    name: name.clone(),
                    upstream: config.upstream_url.clone(),
                    exec_timeout: config.exec_timeout,
                    ready_timeout: config.ready_timeout,
                },
                options.instances,
            )?),
            Mode::Static => Runner::Static {
                files: StaticFiles::new(config.static_path.clone()),
                gate: Gate::new(options.instances),
            },
        };
        tracing::debug!(%name, mode = %config.mode, instances = options.instances, "watchdog started");
        Ok(Watchdog { inner: Arc::new(Inner { config, name, runner, calls: Arc::default(), call_log }) })
    }

    /// Calls the function. The request URI is the path below the function
    /// plus the query; headers and body are the caller's.
    ///
    /// Errors: `Overloaded` (max_inflight), `Timeout` (exec_timeout; fork
    /// modes kill the process group), `Unavailable` (0 instances, no ready
    /// instance within ready_timeout, shutting down), `Backend` (the
    /// process crashed mid-request or could not be reached). A fork process
    /// that exits non-zero before writing any stdout is not an error: it is
    /// a 500 response whose body is the tail of its stderr.
    pub async fn invoke(&self, request: Request<Body>) -> Result<Response<Body>, faas_core::Error> {
        Ok(self.call(request).await?)
    }

    async fn call(&self, request: Request<Body>) -> Result<Response<Body>, WatchdogError> {
        let inner = &self.inner;
        let guard = self.enter()?;
        let now = Instant::now();
        let exec_timeout = inner.config.exec_timeout;
        let deadline = exec_timeout.map(|t| now + t);
        let wait_until = now + inner.config.ready_timeout;
        let record = inner.call_log.as_ref().map(|logger| {
            let ending = match &inner.runner {
                Runner::Http(_) => Ending::Http {
                    method: request.method().clone(),
                    uri: request.uri().clone(),
                    status: StatusCode::OK,
                },
                _ => Ending::Fork,
            };
            CallRecord::new(logger.clone(), now, ending)
        });
        let response = match &inner.runner {
            Runner::Fork(fork) => fork.call(request, deadline, wait_until, exec_timeout).await,
            Runner::Http(pool) => pool.call(request, deadline, wait_until, exec_timeout).await,
            Runner::Static { files, gate } => {
                if gate.limit() == 0 {
                    return Err(WatchdogError::unavailable("the function is scaled to zero (0 instances)"));
                }
                if let Some(problem) = files.problem() {
                    return Err(WatchdogError::unavailable(problem));
                }
                Ok(files.serve(request).await)
            }
        };
        let response = match response {
            Ok(response) => response,
            Err(err) => {
                // A call that got no response logs the error, not a call line.
                if let Some(record) = record {
                    record.cancel();
                }
                return Err(err);
            }
        };
        Ok(match record {
            Some(mut record) => {
                record.set_status(response.status());
                response.map(|body| logged(body, guard, record))
            }
            None => response.map(|body| guarded(body, guard)),
        })
    }

    /// Counts a call in, refusing it when closed or at `max_inflight`.
    fn enter(&self) -> Result<CallGuard, WatchdogError> {
        let calls = &self.inner.calls;
        if calls.closed.load(Ordering::SeqCst) {
            return Err(WatchdogError::unavailable("the watchdog is shutting down"));
        }
        let max = self.inner.config.max_inflight;
        let taken =
            calls.inflight.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (max == 0 || n < max).then_some(n + 1));
        match taken {
            Ok(_) => Ok(CallGuard(calls.clone())),
            Err(_) => Err(WatchdogError::Overloaded { function: self.inner.name.clone(), max }),
        }
    }

    /// Serves the watchdog's own routes (`/_/health`, `/_/ready`) and
    /// forwards everything else to [`Watchdog::invoke`], turning errors into
    /// responses: the error's status, its message as plain text, and the
    /// header `X-Faas-Error: platform`.
    pub async fn handle(&self, request: Request<Body>) -> Response<Body> {
        match request.uri().path() {
            "/_/health" => return self.health(false),
            "/_/ready" => return self.health(true),
            _ => {}
        }
        match self.invoke(request).await {
            Ok(response) => response,
            Err(err) => {
                if err.status().is_server_error() {
                    tracing::warn!(function = %self.inner.name, "call failed: {}", err.message());
                }
                platform_response(err.status(), err.message())
            }
        }
    }

    fn health(&self, ready_check: bool) -> Response<Body> {
        let closed = self.inner.calls.closed.load(Ordering::SeqCst);
        if closed || self.ready_instances() == 0 {
            let why = if closed {
                "shutting down".to_string()
            } else {
                self.last_error().unwrap_or_else(|| "no instance is ready".into())
            };
            return platform_response(StatusCode::SERVICE_UNAVAILABLE, why);
        }
        let max = self.inner.config.max_inflight;
        if ready_check && max > 0 && self.inflight() >= max {
            return platform_response(StatusCode::TOO_MANY_REQUESTS, format!("{max} calls in flight (max_inflight)"));
        }
        let mut response = Response::new(Body::from("OK"));
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        response
    }

    /// Starts or stops instances without dropping calls in flight (a
    /// stopped HTTP instance drains first).
    pub async fn set_instances(&self, n: usize) {
        match &self.inner.runner {
            Runner::Fork(fork) => fork.gate.set_limit(n),
            Runner::Http(pool) => pool.set_instances(n),
            Runner::Static { gate, .. } => gate.set_limit(n),
        }
    }

    /// The pids of the processes running now (each the leader of its
    /// process group): HTTP mode's instances, the fork modes' calls in
    /// progress; none in static mode.
    pub fn pids(&self) -> Vec<u32> {
        match &self.inner.runner {
            Runner::Fork(fork) => fork.groups.pids(),
            Runner::Http(pool) => pool.pids(),
            Runner::Static { .. } => Vec::new(),
        }
    }

    /// The instances asked for.
    pub fn instances(&self) -> usize {
        match &self.inner.runner {
            Runner::Fork(fork) => fork.gate.limit(),
            Runner::Http(pool) => pool.instances(),
            Runner::Static { gate, .. } => gate.limit(),
        }
    }

    /// Instances that passed their health check (HTTP mode: the process
    /// is alive and accepts TCP connections; fork modes: `instances` if the
    /// program resolves, else 0; static mode: `instances` if the directory
    /// exists, else 0).
    pub fn ready_instances(&self) -> usize {
        match &self.inner.runner {
            Runner::Fork(fork) => fork.ready_instances(),
            Runner::Http(pool) => pool.ready_instances(),
            Runner::Static { files, gate } => {
                if files.problem().is_none() {
                    gate.limit()
                } else {
                    0
                }
            }
        }
    }

    /// Why instances are not ready, if they are not (for example
    /// `function-0 exited with exit status: 127 right after start: <stderr tail>`).
    pub fn last_error(&self) -> Option<String> {
        match &self.inner.runner {
            Runner::Fork(fork) => fork.last_error(),
            Runner::Http(pool) => pool.last_error(),
            Runner::Static { files, .. } => files.problem(),
        }
    }

    /// Calls in flight now (a call ends when its response body is done).
    pub fn inflight(&self) -> usize {
        self.inner.calls.inflight.load(Ordering::SeqCst)
    }

    /// Stops taking calls, waits up to `grace` for the ones in flight, then
    /// kills every process (their whole process groups).
    pub async fn shutdown(&self, grace: Duration) {
        let calls = &self.inner.calls;
        calls.closed.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + grace;
        let idle = crate::gate::until_zero(&calls.inflight, &calls.idle);
        if tokio::time::timeout_at(deadline, idle).await.is_err() {
            tracing::warn!(
                function = %self.inner.name,
                inflight = self.inflight(),
                "calls still in flight after the grace period; killing the processes"
            );
        }
        match &self.inner.runner {
            Runner::Fork(fork) => {
                fork.gate.set_limit(0);
                fork.groups.kill_all();
            }
            Runner::Http(pool) => pool.shutdown().await,
            Runner::Static { gate, .. } => gate.set_limit(0),
        }
    }
}

/// A response the platform produced: plain text, marked with
/// `X-Faas-Error: platform`.
pub(crate) fn platform_response(status: StatusCode, message: String) -> Response<Body> {
    let mut response = Response::new(Body::from(message));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(PLATFORM_ERROR_HEADER, HeaderValue::from_static("platform"));
    response
}
