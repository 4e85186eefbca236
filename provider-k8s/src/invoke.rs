//! Forwarding a call to a function: straight to a ready pod
//! ([`InvokeMode::Endpoints`]) or through the API server's service proxy
//! ([`InvokeMode::ServiceProxy`]).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use faas_core::{strip_hop_by_hop, Body, BoxError, Error, FunctionRef, Result};
use http::header::HOST;
use http::{HeaderMap, Request, Response};
use http_body::{Frame, SizeHint};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;

use crate::config::{InvokeMode, WATCHDOG_PORT};
use crate::error::K8sError;

/// How long one connection attempt to a pod may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an idle pooled connection to a pod is kept.
const POOL_IDLE: Duration = Duration::from_secs(60);

/// The pooled keep-alive HTTP/1.1 client calls to pods go through.
pub(crate) type PodClient = HttpClient<HttpConnector, ReplayBody>;

/// A pod client: keep-alive connections pooled per pod address.
pub(crate) fn pod_client() -> PodClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_nodelay(true);
    HttpClient::builder(TokioExecutor::new()).pool_idle_timeout(POOL_IDLE).pool_max_idle_per_host(64).build(connector)
}

/// A request body that stays recoverable until the first time it is read:
/// when a connection to a pod fails before anything was sent (the pod
/// stopped during an update), the same streaming body goes to the next pod.
pub(crate) struct ReplayBody {
    slot: Arc<Mutex<Option<Body>>>,
    body: Option<Body>,
}

impl ReplayBody {
    fn take(&mut self) -> Option<&mut Body> {
        if self.body.is_none() {
            self.body = self.slot.lock().ok().and_then(|mut slot| slot.take());
        }
        self.body.as_mut()
    }

    fn peek<T>(&self, f: impl FnOnce(&Body) -> T) -> Option<T> {
        match &self.body {
            Some(body) => Some(f(body)),
            None => self.slot.lock().ok().and_then(|slot| slot.as_ref().map(f)),
        }
    }
}

impl http_body::Body for ReplayBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut().take() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.peek(http_body::Body::is_end_stream).unwrap_or(true)
    }

    fn size_hint(&self) -> SizeHint {
        self.peek(http_body::Body::size_hint).unwrap_or_else(|| SizeHint::with_exact(0))
    }
}

fn path_and_query(request: &Request<Body>) -> String {
    request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned()
}

/// A call on its way to a pod: what is needed to send it again to another
/// pod while its body has not been read.
pub(crate) struct PodCall {
    method: http::Method,
    headers: HeaderMap,
    target: String,
    slot: Arc<Mutex<Option<Body>>>,
}

/// What sending a call to the ready pods gave.
pub(crate) enum Outcome {
    /// A pod answered.
    Answered(Response<Body>),
    /// Every pod refused the connection before anything was sent; the call
    /// can go to other pods. The refusals, in words.
    Refused(Vec<String>),
}

impl PodCall {
    pub(crate) fn new(request: Request<Body>) -> Self {
        let target = path_and_query(&request);
        let (parts, body) = request.into_parts();
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        PodCall { method: parts.method, headers, target, slot: Arc::new(Mutex::new(Some(body))) }
    }

    /// Whether the body is still unread, so the call can be sent again.
    fn untouched(&self) -> bool {
        self.slot.lock().map(|s| s.is_some()).unwrap_or(false)
    }

    /// Sends the call to one of `addresses`, starting at `start` and moving
    /// to the next address only when connecting failed before anything was
    /// sent.
    pub(crate) async fn send(
        &self,
        client: &PodClient,
        function: &FunctionRef,
        addresses: &[SocketAddr],
        start: usize,
        timeout: Duration,
    ) -> Result<Outcome> {
        let mut refusals = Vec::new();
        for i in 0..addresses.len() {
            let address = addresses[(start + i) % addresses.len()];
            let target = &self.target;
            let uri: http::Uri = format!("http://{address}{target}")
                .parse()
                .map_err(|e| Error::invalid("path", format!("cannot forward {target:?}: {e}")))?;
            let mut builder = Request::builder().method(self.method.clone()).uri(uri);
            if let Some(map) = builder.headers_mut() {
                *map = self.headers.clone();
                if !map.contains_key(HOST) {
                    if let Ok(value) = http::HeaderValue::from_str(&format!("{}:{WATCHDOG_PORT}", function.name)) {
                        map.insert(HOST, value);
                    }
                }
            }
            let outgoing = builder
                .body(ReplayBody { slot: self.slot.clone(), body: None })
                .map_err(|e| Error::invalid("request", format!("cannot forward the call: {e}")))?;
            match tokio::time::timeout(timeout, client.request(outgoing)).await {
                Ok(Ok(response)) => {
                    let (mut parts, body) = response.into_parts();
                    strip_hop_by_hop(&mut parts.headers);
                    return Ok(Outcome::Answered(Response::from_parts(parts, Body::new(body))));
                }
                Ok(Err(err)) if err.is_connect() && self.untouched() => {
                    tracing::debug!(function = %function, %address, error = %err, "pod refused; trying the next");
                    refusals.push(format!("{address}: {err}"));
                }
                Ok(Err(err)) => {
                    return Err(K8sError::Call { function: function.to_string(), source: Box::new(err) }.into())
                }
                Err(_) => return Err(Error::Timeout { what: "function call".into(), seconds: timeout.as_secs_f64() }),
            }
        }
        Ok(Outcome::Refused(refusals))
    }
}

/// The service proxy path of `function` for `target` (path and query).
pub(crate) fn proxy_path(function: &FunctionRef, target: &str) -> String {
    let target = if target.starts_with('/') { target.to_owned() } else { format!("/{target}") };
    format!("/api/v1/namespaces/{}/services/{}:{WATCHDOG_PORT}/proxy{target}", function.namespace, function.name)
}

/// Sends `request` through the API server's service proxy with `client`,
/// its body read into memory first (at most `limit` bytes).
pub(crate) async fn through_proxy(
    client: &kube::Client,
    function: &FunctionRef,
    request: Request<Body>,
    limit: u64,
    timeout: Duration,
) -> Result<Response<Body>> {
    let target = path_and_query(&request);
    let (parts, body) = request.into_parts();
    let bytes = body.collect_limited(limit).await?;
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    headers.remove(HOST);
    let mut builder = Request::builder().method(parts.method).uri(proxy_path(function, &target));
    if let Some(map) = builder.headers_mut() {
        *map = headers;
    }
    let outgoing = builder
        .body(kube::client::Body::from(bytes))
        .map_err(|e| Error::invalid("request", format!("cannot forward the call: {e}")))?;
    match tokio::time::timeout(timeout, client.send(outgoing)).await {
        Ok(Ok(response)) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Ok(Response::from_parts(parts, Body::new(body)))
        }
        Ok(Err(err)) => Err(K8sError::kube("proxy a call", "function", function.to_string(), err).into()),
        Err(_) => Err(Error::Timeout { what: "function call".into(), seconds: timeout.as_secs_f64() }),
    }
}

/// The documented name of `mode`, for logs.
pub(crate) fn mode_name(mode: InvokeMode) -> &'static str {
    match mode {
        InvokeMode::Endpoints => "endpoints",
        InvokeMode::ServiceProxy => "service-proxy",
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[test]
    fn the_proxy_path_names_the_port() {
        let function = FunctionRef::new("echo", "openfaas-fn");
        assert_eq!(
            proxy_path(&function, "/a/b?x=1"),
            "/api/v1/namespaces/openfaas-fn/services/echo:8080/proxy/a/b?x=1"
        );
        assert_eq!(proxy_path(&function, "/"), "/api/v1/namespaces/openfaas-fn/services/echo:8080/proxy/");
    }

    #[tokio::test]
    async fn a_replay_body_is_recoverable_until_read() {
        let slot = Arc::new(Mutex::new(Some(Body::from("payload"))));
        let first = ReplayBody { slot: slot.clone(), body: None };
        assert_eq!(http_body::Body::size_hint(&first).exact(), Some(7));
        drop(first);
        assert!(slot.lock().unwrap().is_some(), "an unread body stays in the slot");
        let second = ReplayBody { slot: slot.clone(), body: None };
        let bytes = second.collect().await.unwrap().to_bytes();
        assert_eq!(bytes, Bytes::from("payload"));
        assert!(slot.lock().unwrap().is_none(), "a read body is gone");
    }
}
