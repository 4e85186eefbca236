//! Per-function history for the portal's charts, and useful on its own:
//! `GET /system/metrics/history?name=&namespace=` answers, as JSON, one
//! sample per 5 s pass over the last 15 minutes (calls, errors, p50 and p99
//! latency, replicas desired and ready, cold starts); without `name`, a
//! summary per function of the namespace (calls and errors over the
//! window, the latest p99, the last call).
//!
//! Calls are counted with atomics on the call path by [`crate::Metered`];
//! [`crate::Metered::refresh_service_counts`], which lists every function
//! every 5 s anyway, closes a pass. Memory is bounded: entries exist only
//! for listed (or called, until the next listing) functions, each stores at
//! most [`PASSES`] samples of 12 bytes and only for intervals with calls or
//! cold starts, and replicas only when they change.

mod ring;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use faas_autoscale::ScalingMetrics;
use faas_core::api::{require_basic_auth, BasicAuth};
use faas_core::{Error, FunctionRef, FunctionStatus, SharedProvider, DEFAULT_NAMESPACE};
use serde::{Deserialize, Serialize};

use ring::{bucket_bound_ms, Entry};

/// The route serving the history.
pub const HISTORY_PATH: &str = "/system/metrics/history";
/// The time between two samples: the gateway's listing refresh.
pub const INTERVAL: Duration = crate::server::SERVICE_COUNT_REFRESH;
/// How many samples are kept: 15 minutes of 5 s passes.
pub const PASSES: u32 = 180;

/// The history of every function. Share it as `Arc<History>`.
pub struct History {
    entries: RwLock<HashMap<FunctionRef, Arc<Entry>>>,
    /// The passes in the window, oldest first: sequence number and time
    /// (ms since the Unix epoch).
    passes: Mutex<VecDeque<(u32, u64)>>,
    next_seq: AtomicU32,
    cold_starts: Option<ScalingMetrics>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History").finish_non_exhaustive()
    }
}

/// One sampling pass, from [`History::begin_pass`].
#[derive(Debug, Clone, Copy)]
pub struct Pass {
    seq: u32,
}

/// One function's record in a [`History`] (from [`History::recorder`]).
/// A function deleted meanwhile is recorded into its detached entry,
/// which nobody reads any more.
#[derive(Clone)]
pub struct Recorder(Arc<Entry>);

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

impl Recorder {
    /// Records one answered call (errors are 5xx answers).
    pub fn record(&self, code: u16, elapsed: Duration) {
        self.0.record(code >= 500, elapsed, now_ms());
    }
}

/// A function's samples, as the history route serves them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Series {
    /// The function's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Seconds between samples.
    pub interval_seconds: u64,
    /// One per pass in the window, oldest first.
    pub samples: Vec<Point>,
}

/// One 5 s sample.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// When the pass ran, ms since the Unix epoch.
    pub time: u64,
    /// Calls that ended in the interval.
    pub calls: u32,
    /// Of them, those answered 5xx.
    pub errors: u32,
    /// Median latency (the bound of its histogram bucket), when there were calls.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, likewise.
    pub p99_ms: Option<f64>,
    /// Replicas wanted at the pass.
    pub replicas_desired: u32,
    /// Replicas ready at the pass.
    pub replicas_ready: u32,
    /// Scale-ups from zero in the interval (with the scaling layer).
    pub cold_starts: u32,
}

/// A function's numbers over the window, for the portal's table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// The function's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Calls over the window.
    pub calls: u64,
    /// Of them, those answered 5xx.
    pub errors: u64,
    /// The p99 latency of the latest interval with calls.
    pub p99_ms: Option<f64>,
    /// When the last call ended, ms since the Unix epoch.
    pub last_call: Option<u64>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}

impl History {
    /// An empty history; with `cold_starts` (the scaling layer's metrics)
    /// samples count the scale-ups from zero.
    pub fn new(cold_starts: Option<ScalingMetrics>) -> Self {
        History {
            entries: RwLock::new(HashMap::new()),
            passes: Mutex::new(VecDeque::with_capacity(PASSES as usize + 1)),
            next_seq: AtomicU32::new(0),
            cold_starts,
        }
    }

    fn entry(&self, function: &FunctionRef) -> Arc<Entry> {
        if let Some(entry) = self.entries.read().unwrap_or_else(|p| p.into_inner()).get(function) {
            return entry.clone();
        }
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        entries.entry(function.clone()).or_insert_with(|| Arc::new(Entry::new())).clone()
    }

    fn existing(&self, function: &FunctionRef) -> Option<Arc<Entry>> {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).get(function).cloned()
    }

    /// Records one answered call of `function` (errors are 5xx answers).
    pub fn record(&self, function: &FunctionRef, code: u16, elapsed: Duration) {
        self.recorder(function).record(code, elapsed);
    }

    /// `function`'s record, looked up once, for a call that records when
    /// it ends (its response body may stream long after this).
    pub fn recorder(&self, function: &FunctionRef) -> Recorder {
        Recorder(self.entry(function))
    }

    /// Forgets a deleted function.
    pub fn forget(&self, function: &FunctionRef) {
        self.entries.write().unwrap_or_else(|p| p.into_inner()).remove(function);
    }

    /// Starts a pass; every namespace's listing then goes to
    /// [`History::sample`] with it.
    pub fn begin_pass(&self) -> Pass {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let mut passes = self.passes.lock().unwrap_or_else(|p| p.into_inner());
        passes.push_back((seq, now_ms()));
        while passes.len() > PASSES as usize {
            passes.pop_front();
        }
        Pass { seq }
    }

    /// Takes `pass`'s sample of every function of a full listing of
    /// `namespace`, and forgets the functions of `namespace` not in it.
    pub fn sample(&self, pass: Pass, namespace: &str, functions: &[FunctionStatus]) {
        let mut listed = std::collections::HashSet::with_capacity(functions.len());
        for status in functions {
            let function =
                FunctionRef::new(&status.name, if status.namespace.is_empty() { namespace } else { &status.namespace });
            let cold = self.cold_starts.as_ref().map_or(0, |m| m.cold_starts(&function));
            self.entry(&function).sample(pass.seq, PASSES, status.replicas, status.available_replicas, cold);
            listed.insert(function);
        }
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|function, _| function.namespace != namespace || listed.contains(function));
    }

    /// How many functions have an entry.
    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no function has an entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `function`'s samples, one per pass in the window; `None` if it has
    /// no entry.
    pub fn series(&self, function: &FunctionRef) -> Option<Series> {
        let entry = self.existing(function)?;
        let passes: Vec<(u32, u64)> = self.passes.lock().unwrap_or_else(|p| p.into_inner()).iter().copied().collect();
        let track = entry.lock();
        let mut samples = track.samples.iter().peekable();
        let mut changes = track.changes.iter().peekable();
        let (mut desired, mut ready) = track.base;
        let mut points = Vec::with_capacity(passes.len());
        for (seq, time) in passes {
            let seq16 = seq as u16;
            // Samples older than the oldest pass (none, normally) are skipped.
            while samples.peek().is_some_and(|s| (seq16.wrapping_sub(s.seq) as i16) > 0) {
                samples.next();
            }
            while let Some(change) = changes.next_if(|c| (seq16.wrapping_sub(c.seq) as i16) >= 0) {
                (desired, ready) = (change.desired, change.ready);
            }
            let mut point = Point {
                time,
                calls: 0,
                errors: 0,
                p50_ms: None,
                p99_ms: None,
                replicas_desired: u32::from(desired),
                replicas_ready: u32::from(ready),
                cold_starts: 0,
            };
            if let Some(sample) = samples.next_if(|s| s.seq == seq16) {
                point.calls = sample.calls;
                point.errors = u32::from(sample.errors);
                point.cold_starts = u32::from(sample.cold_starts);
                if sample.calls > 0 {
                    point.p50_ms = Some(round(bucket_bound_ms(sample.p50)));
                    point.p99_ms = Some(round(bucket_bound_ms(sample.p99)));
                }
            }
            points.push(point);
        }
        Some(Series {
            name: function.name.clone(),
            namespace: function.namespace.clone(),
            interval_seconds: INTERVAL.as_secs(),
            samples: points,
        })
    }

    /// The summary of every function of `namespace` with an entry, by name.
    pub fn summaries(&self, namespace: &str) -> Vec<Summary> {
        let entries: Vec<(FunctionRef, Arc<Entry>)> = self
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(f, _)| f.namespace == namespace)
            .map(|(f, e)| (f.clone(), e.clone()))
            .collect();
        let mut out: Vec<Summary> = entries
            .into_iter()
            .map(|(function, entry)| {
                let (pending_calls, pending_errors) = entry.pending();
                let track = entry.lock();
                let calls = track.samples.iter().map(|s| u64::from(s.calls)).sum::<u64>() + u64::from(pending_calls);
                let errors = track.samples.iter().map(|s| u64::from(s.errors)).sum::<u64>() + u64::from(pending_errors);
                let p99_ms = track.samples.iter().rev().find(|s| s.calls > 0).map(|s| round(bucket_bound_ms(s.p99)));
                Summary {
                    name: function.name,
                    namespace: function.namespace,
                    calls,
                    errors,
                    p99_ms,
                    last_call: entry.last_call_ms(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

fn round(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// The history route's query.
#[derive(Debug, Default, Deserialize)]
struct HistoryQuery {
    name: Option<String>,
    namespace: Option<String>,
}

struct RouteState {
    history: Arc<History>,
    provider: SharedProvider,
}

/// `GET /system/metrics/history` over `history`, behind `basic_auth` when
/// set (like every `/system` route). A function the history has no entry
/// for yet is looked up with the provider: 404 if it does not exist, else
/// its samples so far (none).
pub fn router(history: Arc<History>, provider: SharedProvider, basic_auth: Option<BasicAuth>) -> Router {
    let mut routes = Router::new().route(HISTORY_PATH, get(serve));
    if let Some(credentials) = basic_auth {
        routes = routes.route_layer(axum::middleware::from_fn_with_state(Arc::new(credentials), require_basic_auth));
    }
    routes.with_state(Arc::new(RouteState { history, provider }))
}

async fn serve(State(state): State<Arc<RouteState>>, RawQuery(query): RawQuery) -> Response {
    let query: HistoryQuery = match serde_urlencoded::from_str(query.as_deref().unwrap_or("")) {
        Ok(query) => query,
        Err(err) => return Error::invalid("query", err.to_string()).into_response(),
    };
    let namespace = query.namespace.filter(|n| !n.is_empty()).unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
    if let Err(err) = faas_core::validate::namespace("namespace", &namespace) {
        return err.into_response();
    }
    let Some(name) = query.name.filter(|n| !n.is_empty()) else {
        return Json(state.history.summaries(&namespace)).into_response();
    };
    if let Err(err) = faas_core::validate::function_name("name", &name) {
        return err.into_response();
    }
    let function = FunctionRef::new(name, namespace);
    if let Some(series) = state.history.series(&function) {
        return Json(series).into_response();
    }
    match state.provider.status(&function).await {
        Ok(_) => Json(Series {
            name: function.name,
            namespace: function.namespace,
            interval_seconds: INTERVAL.as_secs(),
            samples: Vec::new(),
        })
        .into_response(),
        Err(err) => err.into_response(),
    }
}

#[cfg(test)]
mod tests;
