//! Forwarding a call to one replica of a function.
//!
//! The connection is opened before the request is handed over, so a
//! replica that refuses (stopping during an update, not listening yet) is
//! skipped and the next one tried without losing the streaming body. Each
//! call gets its own HTTP/1.1 connection.

use std::net::SocketAddr;
use std::time::Duration;

use faas_core::{strip_hop_by_hop, Body};
use http::header::HOST;
use http::{HeaderValue, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::SwarmError;

/// How long one connection attempt to a replica may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Connects to the first of `targets` that accepts, trying them in order;
/// the refusals seen otherwise.
pub(crate) async fn connect_any(targets: &[SocketAddr]) -> Result<(TcpStream, SocketAddr), String> {
    let mut refusals = Vec::new();
    for target in targets {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok((stream, *target));
            }
            Ok(Err(e)) => refusals.push(format!("{target}: {e}")),
            Err(_) => refusals.push(format!("{target}: no connection within {CONNECT_TIMEOUT:?}")),
        }
    }
    Err(if refusals.is_empty() { "no running replica".to_owned() } else { refusals.join("; ") })
}

/// Sends `request` over `stream` (connected to `target`) and returns the
/// response, its body streaming from the replica.
pub(crate) async fn send(
    function: &str,
    stream: TcpStream,
    target: SocketAddr,
    request: Request<Body>,
) -> Result<Response<Body>, SwarmError> {
    let call_failed = |source: faas_core::BoxError| SwarmError::Call { function: function.to_owned(), source };
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    parts.uri = path.parse().map_err(|e: http::uri::InvalidUri| call_failed(Box::new(e)))?;
    strip_hop_by_hop(&mut parts.headers);
    if !parts.headers.contains_key(HOST) {
        if let Ok(value) = HeaderValue::from_str(&target.to_string()) {
            parts.headers.insert(HOST, value);
        }
    }
    parts.version = http::Version::HTTP_11;
    let request = Request::from_parts(parts, body);

    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| call_failed(Box::new(e)))?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "function connection ended with an error");
        }
    });
    let response = sender.send_request(request).await.map_err(|e| call_failed(Box::new(e)))?;
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, Body::new(body)))
}
