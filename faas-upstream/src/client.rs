//! The pooled client and one call's way to an instance.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Display;
use std::sync::{Arc, Weak};
use std::time::Duration;

use faas_core::{error_chain, strip_hop_by_hop, Body};
use http::{HeaderMap, Method, Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::{Reclaim, Replayable};
use crate::error::UpstreamError;

/// How long one connection attempt to an instance may take, everywhere.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an idle pooled connection to an instance is kept. The pool's
/// timer looks at the idle connections once per this period: it closes
/// those idle for longer and forgets those whose instance went away.
/// (Without a timer hyper looks at a host's idle connections only when that
/// host is called again, so the connections to every instance that stopped,
/// about 8 KB each, were kept as long as the client: a function scaled up
/// and down all day grew the gateway's memory; BENCHMARKS.md §10.)
pub const POOL_IDLE: Duration = Duration::from_secs(60);

/// Idle connections kept per instance address.
const POOL_MAX_IDLE: usize = 64;

/// The one client calls to function instances go through: keep-alive
/// HTTP/1.1 connections pooled per instance address (each kept at most
/// [`POOL_IDLE`] while idle), connected with [`CONNECT_TIMEOUT`] and
/// `TCP_NODELAY`. Cheap to clone (the pool is
/// shared).
///
/// The `Host` rule: the caller's `Host` header is forwarded; a request
/// without one gets the instance's address (`host:port`).
///
/// On a single-threaded runtime (a [`crate::Shards`] thread) each thread
/// gets its own pool: a connection is then driven by the thread whose
/// calls use it, and a call never wakes another thread.
#[derive(Clone)]
pub struct Upstream {
    client: Client<HttpConnector, Replayable>,
    /// This client's identity, keying the per-thread pools.
    id: Arc<()>,
}

/// The pooled client type.
type Pooled = Client<HttpConnector, Replayable>;

thread_local! {
    /// This thread's pools, by [`Upstream`] (its `id`'s address; the weak
    /// reference tells a live one from a dropped one at the same address).
    static LOCAL_POOLS: RefCell<HashMap<usize, (Weak<()>, Pooled)>> = RefCell::new(HashMap::new());
}

/// A client with its own connection pool.
fn pooled() -> Pooled {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_max_idle_per_host(POOL_MAX_IDLE)
        .pool_timer(TokioTimer::new())
        .build(connector)
}

impl Default for Upstream {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream").field("connect_timeout", &CONNECT_TIMEOUT).finish()
    }
}

/// What sending a call to instances gave, short of an error.
#[derive(Debug)]
pub enum Attempt {
    /// An instance answered: the response, its body streaming from it,
    /// hop-by-hop headers removed.
    Answered(Response<Body>),
    /// Every instance tried refused the connection before anything was
    /// sent; the body is back in the [`Call`], which can go elsewhere.
    /// Why, in words (each instance and its refusal, or that there was
    /// none).
    Refused(String),
}

impl Upstream {
    /// A client with its own connection pool.
    pub fn new() -> Self {
        Upstream { client: pooled(), id: Arc::new(()) }
    }

    /// Starts `request` on the pool of this thread when it runs a
    /// single-threaded runtime, else on the shared pool.
    fn start(&self, request: Request<Replayable>) -> ResponseFuture {
        let single = tokio::runtime::Handle::try_current()
            .is_ok_and(|runtime| runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
        if !single {
            return self.client.request(request);
        }
        LOCAL_POOLS.with_borrow_mut(|pools| {
            let key = Arc::as_ptr(&self.id) as usize;
            match pools.get(&key) {
                Some((id, client)) if id.strong_count() > 0 => client.request(request),
                _ => {
                    // First use on this thread: forget dropped clients' pools.
                    pools.retain(|_, (id, _)| id.strong_count() > 0);
                    let client = pooled();
                    let future = client.request(request);
                    pools.insert(key, (Arc::downgrade(&self.id), client));
                    future
                }
            }
        })
    }

    /// Sends a prepared request (absolute `http://` URI, headers as they
    /// go). For callers that pick instances and retry themselves, such as
    /// the watchdog's HTTP mode; [`Upstream::send`] does the rest.
    pub async fn request(
        &self,
        request: Request<Replayable>,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        self.start(request).await
    }

    /// Sends `call` to `target` (`host:port`), waiting at most `timeout`
    /// for the response headers. A connection refused before the body was
    /// read gives [`Attempt::Refused`] with the body back in `call`.
    pub async fn send(
        &self,
        call: &mut Call,
        target: &(dyn Display + Sync),
        timeout: Option<Duration>,
    ) -> Result<Attempt, UpstreamError> {
        let (request, reclaim) = call.request_to(target)?;
        let sent = self.start(request);
        let result = match timeout {
            Some(limit) => tokio::time::timeout(limit, sent).await.map_err(|_| UpstreamError::TimedOut {
                function: call.function.clone(),
                seconds: limit.as_secs_f64(),
            })?,
            None => sent.await,
        };
        match result {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Ok(Attempt::Answered(Response::from_parts(parts, Body::new(body))))
            }
            Err(err) if err.is_connect() && reclaim.untouched() => {
                call.body = reclaim.take();
                Ok(Attempt::Refused(format!("{target}: {}", error_chain(&err))))
            }
            Err(err) => Err(UpstreamError::Failed {
                function: call.function.clone(),
                target: target.to_string(),
                source: Box::new(err),
            }),
        }
    }

    /// Sends `call` to one of `targets`, starting at `start` (wrapping)
    /// and moving on only when an instance refused the connection before
    /// anything was sent. [`Attempt::Refused`] names every refusal, or
    /// says there was no instance.
    pub async fn send_any<T: Display + Sync>(
        &self,
        call: &mut Call,
        targets: &[T],
        start: usize,
        timeout: Option<Duration>,
    ) -> Result<Attempt, UpstreamError> {
        if targets.is_empty() {
            return Ok(Attempt::Refused("no running instance".to_owned()));
        }
        let mut refusals = Vec::new();
        for offset in 0..targets.len() {
            let target = &targets[(start + offset) % targets.len()];
            match self.send(call, target, timeout).await? {
                Attempt::Answered(response) => return Ok(Attempt::Answered(response)),
                Attempt::Refused(reason) => {
                    tracing::debug!(function = %call.function, %reason, "instance refused; trying the next");
                    refusals.push(reason);
                }
            }
        }
        Ok(Attempt::Refused(refusals.join("; ")))
    }
}

/// A call on its way to an instance of a function: what is needed to send
/// it again to another instance while its body has not been read.
/// Hop-by-hop headers are removed once, here.
#[derive(Debug)]
pub struct Call {
    function: String,
    method: Method,
    path_and_query: String,
    headers: HeaderMap,
    body: Option<Body>,
}

impl Call {
    /// The call `request` (its URI holding the path below the function
    /// and the query) to `function` (its name in errors).
    pub fn new(function: impl Into<String>, request: Request<Body>) -> Self {
        let (parts, body) = request.into_parts();
        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        Call { function: function.into(), method: parts.method, path_and_query, headers, body: Some(body) }
    }

    /// The function's name, as errors give it.
    pub fn function(&self) -> &str {
        &self.function
    }

    /// The request to `target` carrying the body, and the handle that
    /// takes the body back while it is unread.
    fn request_to(&mut self, target: &(dyn Display + Sync)) -> Result<(Request<Replayable>, Reclaim), UpstreamError> {
        let path = &self.path_and_query;
        let uri: Uri = format!("http://{target}{path}").parse().map_err(|e: http::uri::InvalidUri| {
            UpstreamError::BadPath { function: self.function.clone(), path: path.clone(), reason: e.to_string() }
        })?;
        let body = self.body.take().ok_or_else(|| UpstreamError::Failed {
            function: self.function.clone(),
            target: target.to_string(),
            source: "the request body was already sent".into(),
        })?;
        let (body, reclaim) = Replayable::new(body);
        let mut request = Request::new(body);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = uri;
        *request.headers_mut() = self.headers.clone();
        Ok((request, reclaim))
    }
}
