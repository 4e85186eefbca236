//! Calls: the function's instances resolved (service DNS name or public
//! endpoints), a connection opened to one of them, and the request
//! streamed over it. Connecting happens before the request body is
//! touched, so an instance that went away is skipped without losing it.

use std::time::Duration;

use faas_core::{strip_hop_by_hop, Body};
use http::{header, HeaderValue, Request, Response, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::CattleError;

/// How long connecting to one instance may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to the first of `targets` (starting at `start`, wrapping)
/// that accepts; the error names them all.
pub(crate) async fn connect(
    function: &str,
    targets: &[String],
    start: usize,
) -> Result<(TcpStream, String), CattleError> {
    let mut last = None;
    for offset in 0..targets.len() {
        let target = &targets[(start + offset) % targets.len()];
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target.as_str())).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok((stream, target.clone()));
            }
            Ok(Err(err)) => last = Some(err),
            Err(_) => {
                last =
                    Some(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("connecting to {target} timed out")))
            }
        }
    }
    Err(CattleError::NoInstance {
        function: function.to_owned(),
        targets: if targets.is_empty() { "no published instance".to_owned() } else { targets.join(", ") },
        source: last,
    })
}

/// Sends `request` over `stream` (HTTP/1.1) to `target`; the response body
/// streams from the instance, and dropping it closes the connection.
pub(crate) async fn send(
    function: &str,
    stream: TcpStream,
    target: &str,
    request: Request<Body>,
) -> Result<Response<Body>, CattleError> {
    let call_error = |source| CattleError::Call { function: function.to_owned(), target: target.to_owned(), source };
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(call_error)?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "function connection ended with an error");
        }
    });
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    parts.uri = Uri::try_from(path).unwrap_or_else(|_| Uri::from_static("/"));
    strip_hop_by_hop(&mut parts.headers);
    if let Ok(host) = HeaderValue::from_str(target) {
        parts.headers.insert(header::HOST, host);
    }
    let response = sender.send_request(Request::from_parts(parts, body)).await.map_err(call_error)?;
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, Body::new(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connecting_skips_dead_targets_and_names_them_all() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let alive = listener.local_addr().unwrap().to_string();
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let (_, used) = connect("f", &[dead.clone(), alive.clone()], 0).await.unwrap();
        assert_eq!(used, alive);
        let err = connect("f", std::slice::from_ref(&dead), 0).await.unwrap_err();
        assert!(err.to_string().contains(&dead), "{err}");
        let err = connect("f", &[], 0).await.unwrap_err();
        assert!(err.to_string().contains("no published instance"), "{err}");
    }
}
