//! The soak's load: steady paced calls in the background (sync http, fork,
//! async with callbacks, calls to churned functions), and what every 10 s
//! period does on top (deploy/update/delete churn, a scale up and down,
//! log follows opened and closed).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::time::MissedTickBehavior;

use super::ledger::{ChurnState, Failure, Ledger};
use crate::api::{deployment, Api};
use crate::Res;

/// Functions deployed, updated and deleted in turn.
pub const CHURNED: usize = 50;
/// Churned functions per group; each period deletes one group, redeploys
/// the one deleted the period before and updates another.
const GROUP: usize = 5;
const GROUPS: u64 = (CHURNED / GROUP) as u64;
/// The function scaled to [`SCALE_UP`] and back to 1 every period.
pub const SCALED: &str = "soak-scale";
const SCALE_UP: u64 = 3;
/// How long a period holds [`SCALED`] up: beyond the gateway's
/// `--scale-down-window`, so the manual floor has expired when it goes down.
const SCALE_HOLD: Duration = Duration::from_secs(6);
/// How long each log follow stays open.
const FOLLOW_HOLD: Duration = Duration::from_secs(3);

/// Calls per second of each steady actor.
pub const SYNC_HTTP_RATE: f64 = 100.0;
pub const SYNC_HTTP_WORKERS: usize = 2;
pub const FORK_RATE: f64 = 10.0;
pub const ASYNC_RATE: f64 = 10.0;
pub const CHURN_CALL_RATE: f64 = 20.0;

/// The functions the sync http calls go to in turn. `soak-async` is among
/// them so that its log ring, which its async calls alone (10 lines a
/// second) would fill only after 1000 s, is full as soon as `soak-fork`'s:
/// the warm-up lasts until every ring is full (see [`ring_fill_time`]).
pub const SYNC_HTTP_TARGETS: [&str; 3] = ["soak-http", SCALED, "soak-async"];

/// Log lines the watchdog writes to a function's log per call (see
/// `faas_watchdog`'s "Call log lines"): http mode one (the request line),
/// the fork modes two (`Forking fprocess.` and `Wrote <N> Bytes`).
pub const LINES_PER_HTTP_CALL: f64 = 1.0;
pub const LINES_PER_FORK_CALL: f64 = 2.0;

/// How long the churn takes to come round: each churned function is
/// deleted (its log ring dropped) and redeployed once per cycle, so after
/// one cycle their rings are as full as they get.
pub const CHURN_CYCLE: Duration = Duration::from_secs(super::PERIOD.as_secs() * GROUPS);

/// The steady functions and the log lines a second the load writes to each.
pub fn steady_log_rates() -> [(&'static str, f64); 4] {
    let sync_each = SYNC_HTTP_RATE / SYNC_HTTP_TARGETS.len() as f64 * LINES_PER_HTTP_CALL;
    [
        ("soak-http", sync_each),
        (SCALED, sync_each),
        ("soak-fork", FORK_RATE * LINES_PER_FORK_CALL),
        ("soak-async", sync_each + ASYNC_RATE * LINES_PER_HTTP_CALL),
    ]
}

/// The time until every function's log ring of `ring_lines` lines is full
/// at the load's rates, and the function that takes longest: the bounded
/// stores the soak fills, so the time its memory takes to reach its steady
/// state. The churned functions' rings are dropped with them once per
/// [`CHURN_CYCLE`], which bounds them from below.
pub fn ring_fill_time(ring_lines: usize) -> (Duration, &'static str) {
    steady_log_rates()
        .into_iter()
        .map(|(name, per_second)| (Duration::from_secs_f64(ring_lines as f64 / per_second), name))
        .fold((CHURN_CYCLE, "the churn"), |slowest, fill| if fill.0 > slowest.0 { fill } else { slowest })
}

/// What every actor shares.
pub struct Shared {
    pub api: Api,
    pub ledger: Arc<Ledger>,
    /// The churned functions' states, by index.
    pub churn: Mutex<Vec<ChurnState>>,
    /// Async calls accepted and not yet called back: call number → when.
    pub pending: Arc<Mutex<HashMap<u64, Instant>>>,
    pub callback_url: String,
    /// The native echo function's and `cat`'s paths.
    pub echo: String,
    pub cat: String,
    pub stop: AtomicBool,
}

/// The name of churned function `i`.
pub fn churn_name(i: usize) -> String {
    format!("churn-{i:02}")
}

/// Churned function `i` at revision `rev`: even ones native http-mode
/// echo functions, odd ones `cat` in fork (streaming) mode.
pub fn churn_spec(shared: &Shared, i: usize, rev: u64) -> Value {
    let mut spec = if i % 2 == 0 {
        deployment(&churn_name(i), &shared.echo, "http", None)
    } else {
        deployment(&churn_name(i), &shared.cat, "streaming", None)
    };
    spec["envVars"]["SOAK_REV"] = json!(rev.to_string());
    spec
}

/// The steady functions: (name, spec).
pub fn steady_specs(shared: &Shared) -> Vec<(&'static str, Value)> {
    let mut scaled = deployment(SCALED, &shared.echo, "http", Some(1));
    scaled["labels"]["com.openfaas.scale.max"] = json!("4");
    vec![
        ("soak-http", deployment("soak-http", &shared.echo, "http", Some(1))),
        (SCALED, scaled),
        ("soak-fork", deployment("soak-fork", &shared.cat, "streaming", Some(2))),
        ("soak-async", deployment("soak-async", &shared.echo, "http", Some(1))),
    ]
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `call(n)` `per_second` times a second until `stop`.
async fn paced<F, Fut>(stop: &AtomicBool, per_second: f64, mut call: F)
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        call(n).await;
        n += 1;
    }
}

/// POSTs `payload` to `path`, expecting 200 and the payload echoed.
async fn echo_call(api: &Api, path: &str, payload: Bytes) -> Result<(), Failure> {
    match api.request(Method::POST, path, payload.clone()).await {
        Ok((StatusCode::OK, body)) if body == payload => Ok(()),
        Ok((status, _)) => Err(Failure::Status(status.as_u16())),
        Err(e) => Err(Failure::NoAnswer(e.to_string())),
    }
}

/// Sync http calls to the [`SYNC_HTTP_TARGETS`] in turn.
pub async fn sync_http(shared: Arc<Shared>, worker: usize) {
    let rate = SYNC_HTTP_RATE / SYNC_HTTP_WORKERS as f64;
    echo_loop(shared, "sync http", rate, move |n| {
        let function = SYNC_HTTP_TARGETS[n as usize % SYNC_HTTP_TARGETS.len()];
        (format!("/function/{function}"), format!("sync-{worker}-{n}"))
    })
    .await;
}

/// Fork-mode calls: `cat` per call.
pub async fn fork(shared: Arc<Shared>) {
    echo_loop(shared, "fork", FORK_RATE, |n| ("/function/soak-fork".to_owned(), format!("fork-{n}"))).await;
}

/// Echo calls counted as `kind`, `per_second`, to the path and with the
/// payload `call(n)` names.
async fn echo_loop(shared: Arc<Shared>, kind: &'static str, per_second: f64, call: impl Fn(u64) -> (String, String)) {
    paced(&shared.stop, per_second, |n| {
        let (shared, (path, payload)) = (shared.clone(), call(n));
        async move {
            match echo_call(&shared.api, &path, Bytes::from(payload)).await {
                Ok(()) => shared.ledger.ok(kind),
                Err(failure) => shared.ledger.failed(kind, &failure),
            }
        }
    })
    .await;
}

/// Async calls to `soak-async`, each with a callback to the harness.
pub async fn async_calls(shared: Arc<Shared>) {
    paced(&shared.stop, ASYNC_RATE, |n| {
        let shared = shared.clone();
        async move {
            lock(&shared.pending).insert(n, Instant::now());
            let request = shared
                .api
                .builder(Method::POST, "/async-function/soak-async")
                .header("X-Callback-Url", &shared.callback_url)
                .body(Full::new(Bytes::from(format!("async-{n}"))));
            let outcome = match request {
                Ok(request) => shared.api.send(request).await,
                Err(e) => Err(e.into()),
            };
            match outcome {
                Ok((StatusCode::ACCEPTED, _)) => shared.ledger.ok("async accepted"),
                Ok((status, _)) => {
                    lock(&shared.pending).remove(&n);
                    shared.ledger.failed("async", &Failure::Status(status.as_u16()));
                }
                Err(e) => {
                    lock(&shared.pending).remove(&n);
                    shared.ledger.failed("async", &Failure::NoAnswer(e.to_string()));
                }
            }
        }
    })
    .await;
}

/// Calls to the churned functions, spread over all of them; failures are
/// classified against the churn.
pub async fn churn_calls(shared: Arc<Shared>) {
    paced(&shared.stop, CHURN_CALL_RATE, |n| {
        let shared = shared.clone();
        async move {
            let i = (n as usize * 7) % CHURNED;
            let began = Instant::now();
            let before = lock(&shared.churn)[i];
            let path = format!("/function/{}", churn_name(i));
            let outcome = echo_call(&shared.api, &path, Bytes::from(format!("churn-{n}"))).await;
            let after = lock(&shared.churn)[i];
            match outcome {
                Ok(()) => shared.ledger.ok("churn call"),
                Err(failure) => shared.ledger.churn_failed(&failure, began, before, after),
            }
        }
    })
    .await;
}

/// Serves the async calls' callbacks on a loopback port: each must name a
/// pending call and carry the function's 200.
pub async fn callback_server(
    ledger: Arc<Ledger>,
    pending: Arc<Mutex<HashMap<u64, Instant>>>,
) -> Res<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (ledger, pending) = (ledger.clone(), pending.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let (ledger, pending) = (ledger.clone(), pending.clone());
                    async move {
                        called_back(&ledger, &pending, request).await;
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok((addr, task))
}

async fn called_back(ledger: &Ledger, pending: &Mutex<HashMap<u64, Instant>>, request: Request<Incoming>) {
    let status = request.headers().get("x-function-status").and_then(|v| v.to_str().ok()?.parse::<u16>().ok());
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return ledger.failed("callback", &Failure::NoAnswer(e.to_string())),
    };
    let call = std::str::from_utf8(&body).ok().and_then(|b| b.strip_prefix("async-")?.parse::<u64>().ok());
    let known = call.is_some_and(|n| lock(pending).remove(&n).is_some());
    match status {
        _ if !known => ledger.error(
            "callback: for no pending call (duplicate or wrong body)".into(),
            false,
            &String::from_utf8_lossy(&body),
            1,
        ),
        Some(200) => ledger.ok("callback"),
        Some(code) => ledger.failed("callback", &Failure::Status(code)),
        None => ledger.failed("callback", &Failure::NoAnswer("no X-Function-Status header".into())),
    }
}

/// Waits up to `limit` for every pending async call's callback; counts
/// those still missing as errors. How many were missing.
pub async fn drain(shared: &Shared, limit: Duration) -> usize {
    let until = Instant::now() + limit;
    while !lock(&shared.pending).is_empty() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let missing = lock(&shared.pending).len();
    if missing > 0 {
        let class = format!("async: no callback within {} s of the end", limit.as_secs());
        shared.ledger.error(class, false, &format!("{missing} calls"), missing as u64);
    }
    missing
}

/// Sets churned function `i`'s state.
fn mark(shared: &Shared, i: usize, deployed: bool) {
    lock(&shared.churn)[i] = ChurnState { deployed, changed: Instant::now() };
}

/// Period `k`'s churn: deletes group `k`, redeploys group `k - 1` (deleted
/// the period before) and updates group `k + 5`, one request at a time.
async fn churn(shared: &Shared, k: u64) {
    let group = |g: u64| ((g % GROUPS) as usize * GROUP)..((g % GROUPS) as usize * GROUP + GROUP);
    for i in group(k) {
        mark(shared, i, false);
        match shared.api.delete(&churn_name(i)).await {
            Ok(()) => shared.ledger.ok("delete"),
            Err(e) => shared.ledger.failed("delete", &Failure::NoAnswer(e.to_string())),
        }
        mark(shared, i, false);
    }
    if k > 0 {
        for i in group(k + GROUPS - 1) {
            mark(shared, i, false);
            match shared.api.deploy(&churn_spec(shared, i, k)).await {
                Ok(()) => {
                    shared.ledger.ok("deploy");
                    mark(shared, i, true);
                }
                Err(e) => shared.ledger.failed("deploy", &Failure::NoAnswer(e.to_string())),
            }
        }
    }
    for i in group(k + GROUPS / 2) {
        mark(shared, i, true);
        match shared.api.update(&churn_spec(shared, i, k)).await {
            Ok(()) => shared.ledger.ok("update"),
            Err(e) => shared.ledger.failed("update", &Failure::NoAnswer(e.to_string())),
        }
        mark(shared, i, true);
    }
}

/// Scales [`SCALED`] up, holds, and back down to 1.
async fn scale_cycle(shared: &Shared) {
    for (replicas, then) in [(SCALE_UP, SCALE_HOLD), (1, Duration::ZERO)] {
        match shared.api.scale(SCALED, replicas).await {
            Ok(()) => shared.ledger.ok("scale"),
            Err(e) => shared.ledger.failed("scale", &Failure::NoAnswer(e.to_string())),
        }
        tokio::time::sleep(then).await;
    }
}

/// Follows `name`'s logs for [`FOLLOW_HOLD`], then drops the stream.
async fn follow(shared: &Shared, name: &str) {
    let path = format!("/system/logs?name={name}&follow=true&tail=5");
    let request = match shared.api.builder(Method::GET, &path).body(Full::new(Bytes::new())) {
        Ok(request) => request,
        Err(e) => return shared.ledger.failed("log follow", &Failure::NoAnswer(e.to_string())),
    };
    let response = match shared.api.open(request).await {
        Ok(response) => response,
        Err(e) => return shared.ledger.failed("log follow", &Failure::NoAnswer(e.to_string())),
    };
    if response.status() != StatusCode::OK {
        return shared.ledger.failed("log follow", &Failure::Status(response.status().as_u16()));
    }
    let mut body = response.into_body();
    let until = tokio::time::Instant::now() + FOLLOW_HOLD;
    // Read whatever comes until the hold ends (or the stream does).
    while let Ok(Some(Ok(_frame))) = tokio::time::timeout_at(until, body.frame()).await {}
    drop(body);
    shared.ledger.ok("log follow");
}

/// Follows three functions' logs at once: two steady ones and a churned
/// one this period neither deletes, redeploys nor updates.
async fn follows(shared: &Shared, k: u64) {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let untouched = churn_name(((k + 2) % GROUPS) as usize * GROUP + (k % GROUP as u64) as usize);
    tokio::join!(follow(shared, "soak-http"), follow(shared, "soak-fork"), follow(shared, &untouched));
}

/// Everything period `k` does on top of the steady calls.
pub async fn period(shared: &Shared, k: u64) {
    tokio::join!(churn(shared, k), scale_cycle(shared), follows(shared, k));
}

/// Async calls accepted and not finished, from the gateway's `/metrics`:
/// queued − completed − dead-lettered.
pub async fn async_backlog(api: &Api) -> Res<f64> {
    let (status, body) = api.request(Method::GET, "/metrics", Bytes::new()).await?;
    if status != StatusCode::OK {
        return Err(format!("/metrics: {status}").into());
    }
    let text = String::from_utf8_lossy(&body);
    let sum = |metric: &str| -> f64 {
        text.lines()
            .filter(|l| l.strip_prefix(metric).is_some_and(|rest| rest.starts_with(['{', ' '])))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    Ok(sum("gateway_async_queued_total")
        - sum("gateway_async_completed_total")
        - sum("gateway_async_dead_lettered_total"))
}
