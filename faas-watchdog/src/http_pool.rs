//! HTTP mode: a pool of long-running processes, each an HTTP server the
//! watchdog proxies to, kept alive and restarted with backoff.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use faas_core::{strip_hop_by_hop, Body};
use http::uri::PathAndQuery;
use http::{HeaderMap, Request, Response, Uri};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use faas_upstream::{Replayable, Upstream};

use crate::bodies::{guarded, with_deadline};
use crate::config::ConfigError;
use crate::error::WatchdogError;
use crate::logs::{pump_lines, LogSink, SharedTail, Stream};
use crate::process::{has_exited, kill_group, Input, ProcessSpec};
use crate::sandbox::{Jail, Lease, MemoryCheck};
use crate::spawned::Proc;

mod supervise;
use supervise::run_slot;

/// First restart delay; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A process that ran this long resets the backoff.
const RESET_AFTER: Duration = Duration::from_secs(10);
/// Probe interval until an instance is ready: an eighth of the time it has
/// been starting ([`starting_interval`]), from the first to the largest, so
/// readiness is seen at most about 12.5% late: a process that starts in a
/// few milliseconds is found ready within about as many. (A fixed 100 ms
/// made every cold start take at least 100 ms; doubling from 1 ms probed at
/// 1, 3, 7, 15, 31 ms, so a process ready at 16 ms was seen at 31.) And
/// once it is ready.
const PROBE_FIRST: Duration = Duration::from_millis(1);
const PROBE_STARTING: Duration = Duration::from_millis(100);
const PROBE_READY: Duration = Duration::from_secs(1);
const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a shutdown waits for the slots' tasks to reap their processes.
const REAP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a dead process's output may take to reach the log sink.
const OUTPUT_DRAIN: Duration = Duration::from_millis(500);

/// What a slot's supervisor is told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Run,
    /// Wait for in-flight calls, then stop.
    Drain,
    /// Stop now.
    Stop,
}

/// One instance of the pool: a process, restarted when it dies.
struct Slot {
    index: usize,
    name: String,
    ready: AtomicBool,
    /// Bumped when a call finds the instance broken, so a probe that
    /// started before does not mark it ready again.
    epoch: AtomicU64,
    inflight: AtomicUsize,
    draining: AtomicBool,
    pid: AtomicU32,
    /// Whether the kernel killed the process for memory.
    memory: Mutex<Option<Arc<MemoryCheck>>>,
    base: Mutex<Option<Uri>>,
    status: Mutex<Option<String>>,
    order: watch::Sender<Order>,
    /// Probe now (a call found the instance broken).
    wake: Notify,
    /// Signalled when in-flight calls reach zero.
    drained: Notify,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Slot {
    fn set_status(&self, text: Option<String>) {
        if let Ok(mut status) = self.status.lock() {
            *status = text;
        }
    }

    fn status(&self) -> Option<String> {
        self.status.lock().ok()?.clone()
    }

    fn base(&self) -> Option<Uri> {
        self.base.lock().ok()?.clone()
    }

    /// The 502 naming the memory limit, if the kernel killed the process
    /// for memory since this was last asked.
    fn memory_exceeded(&self) -> Option<Response<Body>> {
        self.memory.lock().ok()?.as_ref()?.exceeded()
    }

    fn mark_broken(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.ready.store(false, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

struct PoolState {
    slots: Vec<Arc<Slot>>,
    target: usize,
    closed: bool,
}

/// What every slot's supervisor needs.
struct Shared {
    words: Vec<String>,
    env: BTreeMap<String, String>,
    working_dir: Option<PathBuf>,
    jail: Option<Arc<Jail>>,
    sink: Option<Arc<dyn LogSink>>,
    name: String,
    upstream: Option<Uri>,
    /// Longest wait for a draining instance's calls; `None` waits for them all.
    drain_limit: Option<Duration>,
    state: Mutex<PoolState>,
    /// Readiness or membership changed.
    changed: Notify,
}

/// The pool of HTTP-serving processes and the client that talks to them.
pub(crate) struct Pool {
    shared: Arc<Shared>,
    /// Made on the first call: its connection pool is ~450 bytes that a
    /// function never called (10,000 of them at zero replicas) does not need.
    client: OnceLock<Upstream>,
    ready_timeout: Duration,
}

/// Settings of a [`Pool`].
pub(crate) struct PoolSettings {
    pub(crate) words: Vec<String>,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) working_dir: Option<PathBuf>,
    pub(crate) jail: Option<Arc<Jail>>,
    pub(crate) sink: Option<Arc<dyn LogSink>>,
    pub(crate) name: String,
    pub(crate) upstream: Option<Uri>,
    pub(crate) exec_timeout: Option<Duration>,
    pub(crate) ready_timeout: Duration,
}

impl Pool {
    /// Starts `instances` processes without waiting for them.
    pub(crate) fn start(settings: PoolSettings, instances: usize) -> Result<Pool, ConfigError> {
        if settings.upstream.is_some() && instances > 1 {
            return Err(ConfigError::invalid(
                "upstream_url",
                format!("a fixed upstream serves one instance, not {instances}"),
            ));
        }
        let shared = Arc::new(Shared {
            words: settings.words,
            env: settings.env,
            working_dir: settings.working_dir,
            jail: settings.jail,
            sink: settings.sink,
            name: settings.name,
            upstream: settings.upstream,
            drain_limit: settings.exec_timeout,
            state: Mutex::new(PoolState { slots: Vec::new(), target: 0, closed: false }),
            changed: Notify::new(),
        });
        let pool = Pool { shared, client: OnceLock::new(), ready_timeout: settings.ready_timeout };
        pool.set_instances(instances);
        Ok(pool)
    }

    /// Starts or drains instances to reach `n`.
    pub(crate) fn set_instances(&self, n: usize) {
        let n = if self.shared.upstream.is_some() && n > 1 {
            tracing::warn!(requested = n, "a fixed upstream_url serves one instance; using 1");
            1
        } else {
            n
        };
        let Ok(mut state) = self.shared.state.lock() else { return };
        if state.closed {
            return;
        }
        state.target = n;
        let mut active: Vec<Arc<Slot>> =
            state.slots.iter().filter(|s| !s.draining.load(Ordering::SeqCst)).cloned().collect();
        active.sort_by_key(|s| s.index);
        if active.len() > n {
            for slot in &active[n..] {
                slot.draining.store(true, Ordering::SeqCst);
                slot.order.send_replace(Order::Drain);
            }
        }
        for _ in active.len()..n {
            let index = (0..).find(|i| state.slots.iter().all(|s| s.index != *i)).unwrap_or(state.slots.len());
            let (order, orders) = watch::channel(Order::Run);
            let slot = Arc::new(Slot {
                index,
                name: format!("{}-{index}", self.shared.name),
                ready: AtomicBool::new(false),
                epoch: AtomicU64::new(0),
                inflight: AtomicUsize::new(0),
                draining: AtomicBool::new(false),
                pid: AtomicU32::new(0),
                memory: Mutex::new(None),
                base: Mutex::new(None),
                status: Mutex::new(None),
                order,
                wake: Notify::new(),
                drained: Notify::new(),
                task: Mutex::new(None),
            });
            let task = tokio::spawn(run_slot(self.shared.clone(), slot.clone(), orders));
            if let Ok(mut slot_task) = slot.task.lock() {
                *slot_task = Some(task);
            }
            state.slots.push(slot);
        }
        drop(state);
        self.shared.changed.notify_waiters();
    }

    pub(crate) fn instances(&self) -> usize {
        self.shared.state.lock().map(|s| s.target).unwrap_or(0)
    }

    pub(crate) fn ready_instances(&self) -> usize {
        self.shared.state.lock().map(|s| s.slots.iter().filter(|s| serving(s)).count()).unwrap_or(0)
    }

    pub(crate) fn last_error(&self) -> Option<String> {
        let state = self.shared.state.lock().ok()?;
        if state.target == 0 {
            return Some("the function is scaled to zero (0 instances)".into());
        }
        let waiting: Vec<&Arc<Slot>> = state
            .slots
            .iter()
            .filter(|s| !s.draining.load(Ordering::SeqCst) && !s.ready.load(Ordering::SeqCst))
            .collect();
        if waiting.is_empty() {
            return None;
        }
        waiting.iter().find_map(|s| s.status()).or_else(|| {
            let slot = waiting[0];
            Some(match slot.base() {
                Some(base) => format!("{} is not accepting connections at {base} yet", slot.name),
                None => format!("{} is starting", slot.name),
            })
        })
    }

    /// The ready instance with the fewest calls in flight, if there is one
    /// now; errors when the pool is closed or scaled to zero.
    fn try_pick(&self) -> Result<Option<SlotGuard>, WatchdogError> {
        let state = self.shared.state.lock().map_err(|_| WatchdogError::unavailable("pool state poisoned"))?;
        if state.closed {
            return Err(WatchdogError::unavailable("the watchdog is shutting down"));
        }
        if state.target == 0 {
            return Err(WatchdogError::unavailable("the function is scaled to zero (0 instances)"));
        }
        loop {
            let best = state.slots.iter().filter(|s| serving(s)).min_by_key(|s| s.inflight.load(Ordering::SeqCst));
            let Some(slot) = best else { return Ok(None) };
            // The supervisor may not have seen the process die yet.
            if has_exited(slot.pid.load(Ordering::SeqCst)) {
                slot.mark_broken();
                continue;
            }
            slot.inflight.fetch_add(1, Ordering::SeqCst);
            return Ok(Some(SlotGuard(slot.clone())));
        }
    }

    /// The ready instance with the fewest calls in flight, waiting for one
    /// until `wait_until`.
    async fn pick(&self, wait_until: Instant) -> Result<SlotGuard, WatchdogError> {
        // The usual case, an instance ready: no waiter is registered.
        if let Some(found) = self.try_pick()? {
            return Ok(found);
        }
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            // Registered before looking, so a change after the look wakes it.
            notified.as_mut().enable();
            if let Some(found) = self.try_pick()? {
                return Ok(found);
            }
            if tokio::time::timeout_at(wait_until, notified).await.is_err() {
                let why = self.last_error().unwrap_or_else(|| "no instance is ready".into());
                return Err(WatchdogError::unavailable(format!(
                    "no instance became ready within {:.1}s: {why}",
                    self.ready_timeout.as_secs_f64()
                )));
            }
        }
    }

    /// Proxies one call to a ready instance. A connection refused before
    /// the request was sent is retried on the next ready instance; so is,
    /// once, a replayable request (idempotent method, body never read)
    /// whose connection failed before any response, as Go's HTTP client
    /// does for connections found dead on reuse.
    pub(crate) async fn call(
        &self,
        request: Request<Body>,
        deadline: Option<Instant>,
        wait_until: Instant,
        exec_timeout: Option<Duration>,
    ) -> Result<Response<Body>, WatchdogError> {
        let timeout_error = || WatchdogError::Timeout { after: exec_timeout.unwrap_or_default() };
        let (parts, mut body) = request.into_parts();
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        // Shared, not copied: the URI to the instance reuses its bytes.
        let path_and_query = parts.uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
        let mut may_replay = replayable(&parts.method, &headers);
        loop {
            let wait = match deadline {
                Some(at) if at < wait_until => at,
                _ => wait_until,
            };
            let guard = match self.pick(wait).await {
                Err(_) if deadline.is_some_and(|at| Instant::now() >= at) => return Err(timeout_error()),
                other => other?,
            };
            let slot = guard.0.clone();
            let Some(base) = slot.base() else {
                slot.mark_broken();
                continue;
            };
            let uri = join_uri(&base, &path_and_query)
                .map_err(|e| WatchdogError::backend(format!("bad upstream URL for {path_and_query:?}"), Some(e)))?;
            let (upstream_body, reclaim) = Replayable::new(body);
            let mut upstream = Request::new(upstream_body);
            *upstream.method_mut() = parts.method.clone();
            *upstream.uri_mut() = uri;
            *upstream.headers_mut() = headers.clone();

            let sent = self.client.get_or_init(Upstream::new).request(upstream);
            let result = match deadline {
                Some(at) => tokio::time::timeout_at(at, sent).await.map_err(|_| timeout_error())?,
                None => sent.await,
            };
            if result.is_err() {
                // Killed for memory: the call is answered so, never retried.
                if let Some(response) = slot.memory_exceeded() {
                    slot.mark_broken();
                    return Ok(response);
                }
            }
            match result {
                Ok(response) => {
                    let (mut parts, incoming) = response.into_parts();
                    strip_hop_by_hop(&mut parts.headers);
                    let body = with_deadline(guarded(Body::new(incoming), guard), deadline);
                    return Ok(Response::from_parts(parts, body));
                }
                Err(e) if e.is_connect() => {
                    tracing::debug!(instance = %slot.name, error = %e, "instance refused the connection; trying another");
                    slot.mark_broken();
                    drop(guard);
                    match reclaim.take() {
                        Some(back) => body = back,
                        None => {
                            return Err(WatchdogError::backend(
                                format!("{} refused the connection", slot.name),
                                Some(Box::new(e) as _),
                            ))
                        }
                    }
                }
                Err(e) => {
                    slot.mark_broken();
                    if may_replay {
                        if let Some(back) = reclaim.take() {
                            tracing::debug!(instance = %slot.name, error = %e, "connection failed before a response; replaying once");
                            may_replay = false;
                            body = back;
                            continue;
                        }
                    }
                    return Err(WatchdogError::backend(
                        format!("{} failed during the call", slot.name),
                        Some(Box::new(e) as _),
                    ));
                }
            }
        }
    }

    /// Stops every instance at once and waits (bounded) for them to be reaped.
    pub(crate) async fn shutdown(&self) {
        let slots: Vec<Arc<Slot>> = match self.shared.state.lock() {
            Ok(mut state) => {
                state.closed = true;
                state.target = 0;
                state.slots.clone()
            }
            Err(_) => return,
        };
        self.shared.changed.notify_waiters();
        for slot in &slots {
            slot.order.send_replace(Order::Stop);
        }
        for slot in slots {
            let task = slot.task.lock().ok().and_then(|mut t| t.take());
            if let Some(task) = task {
                if tokio::time::timeout(REAP_TIMEOUT, task).await.is_err() {
                    kill_group(slot.pid.load(Ordering::SeqCst));
                }
            }
        }
    }

    /// Kills every process now, without waiting (the watchdog is dropped).
    /// The pids of the instances' processes running now.
    pub(crate) fn pids(&self) -> Vec<u32> {
        let Ok(state) = self.shared.state.lock() else { return Vec::new() };
        state.slots.iter().map(|s| s.pid.load(Ordering::SeqCst)).filter(|pid| *pid != 0).collect()
    }

    pub(crate) fn kill_all(&self) {
        if let Ok(mut state) = self.shared.state.lock() {
            state.closed = true;
            for slot in &state.slots {
                slot.order.send_replace(Order::Stop);
                kill_group(slot.pid.load(Ordering::SeqCst));
            }
        }
    }
}

/// Whether a request may be sent again after its connection failed:
/// an idempotent method (or an idempotency key), as Go's client decides.
fn replayable(method: &http::Method, headers: &HeaderMap) -> bool {
    matches!(*method, http::Method::GET | http::Method::HEAD | http::Method::OPTIONS | http::Method::TRACE)
        || headers.contains_key("idempotency-key")
        || headers.contains_key("x-idempotency-key")
}

fn serving(slot: &Slot) -> bool {
    slot.ready.load(Ordering::SeqCst) && !slot.draining.load(Ordering::SeqCst)
}

/// A call in flight on a slot.
struct SlotGuard(Arc<Slot>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if self.0.inflight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.drained.notify_waiters();
        }
    }
}

/// `base` with its path joined to `path_and_query`.
fn join_uri(base: &Uri, path_and_query: &PathAndQuery) -> Result<Uri, faas_core::BoxError> {
    let prefix = base.path().trim_end_matches('/');
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(match prefix {
        // An instance served at its root (the usual upstream): nothing to copy.
        "" => path_and_query.clone(),
        _ => format!("{prefix}{path_and_query}").parse()?,
    });
    Ok(Uri::from_parts(parts)?)
}

/// A free loopback port, found by binding port 0.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_paths_and_queries() {
        let base: Uri = "http://127.0.0.1:5000".parse().unwrap();
        assert_eq!(
            join_uri(&base, &PathAndQuery::from_static("/a?b=1")).unwrap().to_string(),
            "http://127.0.0.1:5000/a?b=1"
        );
        let base: Uri = "http://h:1/api/".parse().unwrap();
        assert_eq!(join_uri(&base, &PathAndQuery::from_static("/x")).unwrap().to_string(), "http://h:1/api/x");
    }
}
