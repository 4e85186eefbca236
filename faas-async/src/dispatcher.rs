//! The workers: claim calls, invoke them through the provider, retry,
//! deliver callbacks, dead-letter.
//!
//! A call goes through two stages, each with its own bound:
//!
//! 1. **Invoke.** At most [`DispatcherConfig::max_claimed`] calls are
//!    claimed for invocation at once (waiting for their function's
//!    concurrency slot, or running), and at most the function's
//!    concurrency of them run at once.
//! 2. **Callback.** Once the function answered, a call with an
//!    `X-Callback-Url` takes one of [`DispatcherConfig::callback_concurrency`]
//!    delivery slots and gives back its invoke claim and function slot, so a
//!    slow or dead callback receiver holds only delivery slots, never the
//!    capacity that runs functions. Delivery is retried with the backoff
//!    ([`DispatcherConfig::callback_attempts`] attempts, each limited to
//!    [`DispatcherConfig::callback_timeout`]); then the call is dead-lettered
//!    with stage `callback`. When every delivery slot is taken, answered
//!    calls wait for one while keeping their invoke claim: backpressure
//!    rather than holding an unbounded number of responses in memory.
//!
//! **When the call is acked.** The queue hears the outcome only when the
//! call is settled: acked after its callback was delivered (or at once when
//! it has none), dead-lettered, or nacked for a retry. During callback
//! delivery the call stays claimed in the queue (JetStream claims are kept
//! alive as during the invocation), and the function's response exists only
//! in memory. A crash before the callback was delivered therefore runs the
//! function again at the next start (or on another gateway) and delivers
//! that response: the callback is never lost, the function may run twice,
//! which at-least-once allows. Acking after the invocation and storing the
//! response for a later delivery would avoid the rerun but put responses (up
//! to [`DispatcherConfig::max_response_bytes`]) in the queue, beyond what a
//! NATS message can carry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use faas_core::{Body, FunctionRef, SharedProvider};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::call::{Claimed, FailedStage, QueuedCall};
use crate::callback::{Callbacks, FunctionResponse};
use crate::config::{DispatcherConfig, FunctionSettings};
use crate::metrics::AsyncMetrics;
use crate::observe::{Attempted, CallObserver};
use crate::queue::Queue;
use crate::reply::{Replier, REPLY_SUBJECT_HEADER};

/// How long one claim waits before checking for shutdown again.
const CLAIM_WAIT: Duration = Duration::from_millis(500);
/// How long to wait before claiming again after the queue failed.
const QUEUE_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Statuses that mean "try again later": 429, 502, 503, 504.
pub fn is_retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// Runs queued calls against a provider.
pub struct Dispatcher {
    queue: Arc<dyn Queue>,
    provider: SharedProvider,
    config: DispatcherConfig,
    metrics: Arc<AsyncMetrics>,
    callbacks: Callbacks,
    /// Per function: its concurrency limit and the semaphore enforcing it.
    limits: Mutex<HashMap<FunctionRef, (usize, Arc<Semaphore>)>>,
    /// The callback stage's delivery slots.
    callback_slots: Arc<Semaphore>,
    /// Where answers of calls with a reply subject go, once set.
    replier: std::sync::OnceLock<Arc<dyn Replier>>,
    /// Who hears what each attempt came to, once set.
    observer: std::sync::OnceLock<Arc<dyn CallObserver>>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").field("queue", &self.queue.kind()).field("config", &self.config).finish()
    }
}

/// What one invocation attempt came to.
enum Attempt {
    /// A final answer (any status but the retryable ones).
    Done(FunctionResponse),
    /// A retryable failure, in words.
    Retry(String),
}

impl Dispatcher {
    /// A dispatcher taking calls from `queue` and invoking them on
    /// `provider` (give it the same wrapped provider the gateway serves, so
    /// scale from zero and metrics apply).
    pub fn new(
        queue: Arc<dyn Queue>,
        provider: SharedProvider,
        config: DispatcherConfig,
        metrics: Arc<AsyncMetrics>,
    ) -> Arc<Dispatcher> {
        let callbacks = Callbacks::new(config.callback_timeout);
        let callback_slots = Arc::new(Semaphore::new(config.callback_concurrency.max(1)));
        Arc::new(Dispatcher {
            queue,
            provider,
            config,
            metrics,
            callbacks,
            limits: Mutex::new(HashMap::new()),
            callback_slots,
            replier: std::sync::OnceLock::new(),
            observer: std::sync::OnceLock::new(),
        })
    }

    /// Sends the answers of calls carrying [`REPLY_SUBJECT_HEADER`] to
    /// `replier` (once, right after the function answered; a failed reply
    /// is logged, never retried: whoever asked has moved on). Set once;
    /// false if one was set already.
    pub fn set_replier(&self, replier: Arc<dyn Replier>) -> bool {
        self.replier.set(replier).is_ok()
    }

    /// Tells `observer` what each invocation attempt came to (answered,
    /// retrying, dead-lettered). Set once; false if one was set already.
    pub fn set_observer(&self, observer: Arc<dyn CallObserver>) -> bool {
        self.observer.set(observer).is_ok()
    }

    /// Starts the workers. Stop them with [`DispatcherHandle::shutdown`].
    pub fn spawn(self: &Arc<Self>) -> DispatcherHandle {
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(self.clone().run(stop_rx));
        DispatcherHandle { stop: stop_tx, task }
    }

    async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let claims = Arc::new(Semaphore::new(self.config.max_claimed.max(1)));
        let mut workers = JoinSet::new();
        loop {
            // Reap finished workers so the set does not grow.
            while workers.try_join_next().is_some() {}
            let permit = tokio::select! {
                permit = claims.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                _ = stop.changed() => break,
            };
            let claimed = tokio::select! {
                claimed = self.queue.claim(CLAIM_WAIT) => claimed,
                _ = stop.changed() => break,
            };
            match claimed {
                Ok(Some(claimed)) => {
                    let this = self.clone();
                    workers.spawn(async move { this.process(claimed, permit).await });
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(queue = self.queue.kind(), error = %err, "cannot claim asynchronous calls");
                    tokio::time::sleep(QUEUE_ERROR_PAUSE).await;
                }
            }
        }
        // Shutdown: let running calls finish; the handle bounds the wait.
        while workers.join_next().await.is_some() {}
    }

    /// The function's semaphore, re-created when its limit changed.
    fn semaphore(&self, function: &FunctionRef, limit: usize) -> Arc<Semaphore> {
        let mut limits = self.limits.lock().unwrap_or_else(PoisonError::into_inner);
        match limits.get(function) {
            Some((current, semaphore)) if *current == limit => semaphore.clone(),
            _ => {
                let semaphore = Arc::new(Semaphore::new(limit));
                limits.insert(function.clone(), (limit, semaphore.clone()));
                semaphore
            }
        }
    }

    /// The function's settings from its labels; defaults when the function
    /// cannot be read or its labels are bad (they were checked when the
    /// call was accepted).
    async fn settings(&self, function: &FunctionRef) -> FunctionSettings {
        let labels = match self.provider.status(function).await {
            Ok(status) => status.labels,
            Err(_) => None,
        };
        FunctionSettings::from_labels(labels.as_ref(), &self.config).unwrap_or_else(|err| {
            tracing::warn!(function = %function, error = %err, "using default async settings");
            FunctionSettings {
                concurrency: self.config.default_concurrency,
                max_attempts: self.config.default_max_attempts,
            }
        })
    }

    /// Runs one claimed call to its outcome. `claim` is its invoke claim
    /// (one of `max_claimed`), given back when the call leaves the invoke
    /// stage.
    async fn process(&self, claimed: Claimed, claim: OwnedSemaphorePermit) {
        let function = claimed.call.function();
        let name = function.to_string();
        let call_id = claimed.call.id.clone();
        if claimed.redelivered {
            self.metrics.redelivered(&name);
        }
        // Ends the renewals and the in-flight count however this ends, a
        // panic included: a claim nobody works on must expire.
        let keep_alive = self.queue.keep_alive_interval().map(|every| self.spawn_keep_alive(&claimed, every));
        let _held = Held::new(self.metrics.clone(), name.clone(), keep_alive);
        let settings = self.settings(&function).await;
        let attempt = {
            let semaphore = self.semaphore(&function, settings.concurrency);
            let _permit = semaphore.acquire_owned().await;
            self.invoke(&function, &claimed.call).await
        };
        if let Attempt::Done(response) = &attempt {
            self.reply(&claimed.call, &name, response).await;
        }
        self.observe(&claimed.call, &attempt, settings.max_attempts);
        let outcome = match attempt {
            Attempt::Retry(reason) if claimed.call.attempts < settings.max_attempts => {
                let delay = self.config.backoff.delay(claimed.call.attempts);
                tracing::debug!(call_id, function = name, attempt = claimed.call.attempts, ?delay, reason, "retrying");
                self.metrics.retried(&name);
                self.queue.nack(&claimed, delay).await
            }
            Attempt::Retry(reason) => {
                let reason = format!("{} attempts failed; last: {reason}", claimed.call.attempts);
                tracing::warn!(call_id, function = name, reason, "dead-lettering an asynchronous call");
                self.metrics.dead_lettered(&name, FailedStage::Invoke);
                self.queue.dead_letter(&claimed, FailedStage::Invoke, reason).await
            }
            Attempt::Done(_) if claimed.call.callback_url.is_none() => {
                self.metrics.completed(&name);
                self.queue.ack(&claimed).await
            }
            Attempt::Done(response) => {
                // The callback stage: a delivery slot, then the invoke
                // claim goes back (the function slot went back already).
                let slot = self.callback_slots.clone().acquire_owned().await;
                drop(claim);
                self.metrics.callbacks_pending(&name, 1);
                let delivered = self.callback(&claimed.call, &name, &response).await;
                self.metrics.callbacks_pending(&name, -1);
                let outcome = match delivered {
                    Ok(()) => {
                        self.metrics.completed(&name);
                        self.queue.ack(&claimed).await
                    }
                    Err(reason) => {
                        tracing::warn!(call_id, function = name, reason, "callback undeliverable; dead-lettering");
                        self.metrics.dead_lettered(&name, FailedStage::Callback);
                        self.queue.dead_letter(&claimed, FailedStage::Callback, reason).await
                    }
                };
                drop(slot);
                outcome
            }
        };
        if let Err(err) = outcome {
            // The call stays claimed until the queue gives up on the claim
            // (lease timeout, ack wait), then runs again.
            tracing::error!(call_id, function = name, error = %err, "cannot record an asynchronous call's outcome");
        }
    }

    /// Renews `claimed` every `every` until aborted.
    fn spawn_keep_alive(&self, claimed: &Claimed, every: Duration) -> tokio::task::JoinHandle<()> {
        let queue = self.queue.clone();
        let claimed = claimed.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(err) = queue.keep_alive(&claimed).await {
                    tracing::debug!(call_id = claimed.call.id, error = %err, "cannot extend a claim");
                }
            }
        })
    }

    /// One invocation attempt, through the provider.
    async fn invoke(&self, function: &FunctionRef, call: &QueuedCall) -> Attempt {
        let request = match build_request(call) {
            Ok(request) => request,
            Err(reason) => return Attempt::Done(platform_response(StatusCode::BAD_REQUEST, reason, 0.0)),
        };
        let started = Instant::now();
        let result = self.provider.invoke(function, request).await;
        let seconds = || started.elapsed().as_secs_f64();
        match result {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                if is_retryable(parts.status) {
                    // Drain nothing: dropping the body cancels the call.
                    return Attempt::Retry(format!("the function answered {}", parts.status));
                }
                match body.collect_limited(self.config.max_response_bytes).await {
                    Ok(body) => Attempt::Done(FunctionResponse {
                        status: parts.status,
                        headers: parts.headers,
                        body,
                        seconds: seconds(),
                    }),
                    Err(err) => Attempt::Done(platform_response(StatusCode::BAD_GATEWAY, err.message(), seconds())),
                }
            }
            Err(err) if is_retryable(err.status()) => Attempt::Retry(err.message()),
            Err(err) => Attempt::Done(platform_response(err.status(), err.message(), seconds())),
        }
    }

    /// Tells the observer, if one is set, what `attempt` came to.
    fn observe(&self, call: &QueuedCall, attempt: &Attempt, max_attempts: u32) {
        let Some(observer) = self.observer.get() else { return };
        let result = match attempt {
            Attempt::Done(response) => Attempted::Answered { status: response.status, seconds: response.seconds },
            Attempt::Retry(reason) if call.attempts < max_attempts => {
                Attempted::Retrying { attempt: call.attempts, reason: reason.clone() }
            }
            Attempt::Retry(reason) => Attempted::DeadLettered { reason: reason.clone() },
        };
        observer.attempted(call, &result);
    }

    /// Publishes the answer to the call's reply subject, if it has one and
    /// a replier is set.
    async fn reply(&self, call: &QueuedCall, name: &str, response: &FunctionResponse) {
        let Some(replier) = self.replier.get() else { return };
        let subject = call.headers.iter().find(|(header, _)| header.eq_ignore_ascii_case(REPLY_SUBJECT_HEADER));
        let Some(subject) = subject.and_then(|(_, value)| std::str::from_utf8(value).ok()) else { return };
        if let Err(reason) = replier.reply(subject, response).await {
            tracing::warn!(call_id = call.id, function = name, subject, reason, "cannot publish a reply");
        }
    }

    /// Delivers the callback, if the call has one, with retries.
    async fn callback(&self, call: &QueuedCall, name: &str, response: &FunctionResponse) -> Result<(), String> {
        let Some(url) = &call.callback_url else { return Ok(()) };
        let attempts = self.config.callback_attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            match self.callbacks.deliver(url, &call.id, name, response).await {
                Ok(()) => return Ok(()),
                Err(reason) => {
                    self.metrics.callback_failed(name);
                    tracing::debug!(call_id = call.id, attempt, reason, "callback attempt failed");
                    last = reason;
                }
            }
            if attempt < attempts {
                tokio::time::sleep(self.config.backoff.delay(attempt)).await;
            }
        }
        Err(format!("{attempts} callback attempts failed; last: {last}"))
    }
}

/// The stored request, rebuilt.
fn build_request(call: &QueuedCall) -> Result<Request<Body>, String> {
    let method = Method::from_bytes(call.method.as_bytes()).map_err(|e| format!("bad method: {e}"))?;
    let mut request = Request::builder()
        .method(method)
        .uri(call.path_and_query.as_str())
        .body(Body::from(Bytes::from(call.body.clone())))
        .map_err(|e| format!("cannot rebuild the request: {e}"))?;
    let headers = request.headers_mut();
    for (name, value) in &call.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) {
            headers.append(name, value);
        }
    }
    let id = HeaderValue::from_str(&call.id).map_err(|e| format!("bad call id: {e}"))?;
    headers.insert(faas_core::api::CALL_ID_HEADER, id);
    Ok(request)
}

/// A platform error as the callback's response.
fn platform_response(status: StatusCode, message: String, seconds: f64) -> FunctionResponse {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(faas_core::api::PLATFORM_ERROR_HEADER, HeaderValue::from_static("platform"));
    FunctionResponse { status, headers, body: Bytes::from(format!("{message}\n")), seconds }
}

/// A call being worked on: counted in flight, its claim renewed; dropping
/// it ends both.
struct Held {
    metrics: Arc<AsyncMetrics>,
    function: String,
    keep_alive: Option<tokio::task::JoinHandle<()>>,
}

impl Held {
    fn new(metrics: Arc<AsyncMetrics>, function: String, keep_alive: Option<tokio::task::JoinHandle<()>>) -> Held {
        metrics.inflight(&function, 1);
        Held { metrics, function, keep_alive }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(keep_alive) = self.keep_alive.take() {
            keep_alive.abort();
        }
        self.metrics.inflight(&self.function, -1);
    }
}

/// The running workers.
#[derive(Debug)]
pub struct DispatcherHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl DispatcherHandle {
    /// Stops claiming, lets running calls finish for up to `grace`, then
    /// abandons the rest (they stay in the queue and run again later).
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(grace, &mut self.task).await.is_err() {
            self.task.abort();
        }
    }
}
