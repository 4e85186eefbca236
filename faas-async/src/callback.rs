//! Delivering a function's response to the caller's `X-Callback-Url`.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::error::AsyncError;

/// Header on an async request naming where the response goes.
pub const CALLBACK_URL_HEADER: &str = "x-callback-url";
/// Header on a callback: the function's HTTP status.
pub const FUNCTION_STATUS_HEADER: &str = "x-function-status";
/// Header on a callback: `name.namespace` of the function.
pub const FUNCTION_NAME_HEADER: &str = "x-function-name";

/// Checks a callback URL: absolute `http://host[:port]/...` (this build
/// has no TLS client).
pub fn parse_callback_url(text: &str) -> Result<Uri, AsyncError> {
    let invalid =
        |reason: &str| AsyncError::Invalid { field: CALLBACK_URL_HEADER.to_owned(), reason: reason.to_owned() };
    let uri: Uri = text.parse().map_err(|_| invalid("not a valid URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(invalid("only http:// callback URLs are supported"));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host"));
    }
    Ok(uri)
}

/// What the function answered, kept in memory for the callback.
#[derive(Debug, Clone)]
pub struct FunctionResponse {
    /// The function's status.
    pub status: StatusCode,
    /// The function's headers.
    pub headers: HeaderMap,
    /// The function's body.
    pub body: Bytes,
    /// Seconds the attempt took.
    pub seconds: f64,
}

/// How long an idle connection to a callback host is kept. The pool's
/// timer closes it after that: without a timer hyper closes a host's idle
/// connections only when that host is called back again, so one socket to
/// every host that ever got a callback stayed open until the host closed it.
const CALLBACK_IDLE: Duration = Duration::from_secs(90);

/// Posts responses to callback URLs.
#[derive(Clone)]
pub(crate) struct Callbacks {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl Callbacks {
    pub(crate) fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(CALLBACK_IDLE)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Callbacks { client, timeout }
    }

    /// One delivery attempt; `Err` says why it failed.
    pub(crate) async fn deliver(
        &self,
        url: &str,
        call_id: &str,
        function: &str,
        response: &FunctionResponse,
    ) -> Result<(), String> {
        let uri = parse_callback_url(url).map_err(|e| e.to_string())?;
        let mut request = Request::builder().method(Method::POST).uri(uri);
        let headers = request.headers_mut().ok_or("cannot build the callback request")?;
        for (name, value) in &response.headers {
            if !is_hop_by_hop(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        let text = |s: &str| HeaderValue::from_str(s).map_err(|e| format!("bad header value {s:?}: {e}"));
        headers.insert(faas_core::api::CALL_ID_HEADER, text(call_id)?);
        headers.insert(FUNCTION_STATUS_HEADER, HeaderValue::from(response.status.as_u16()));
        headers.insert(faas_core::api::DURATION_HEADER, text(&format!("{:.6}", response.seconds))?);
        headers.insert(FUNCTION_NAME_HEADER, text(function)?);
        let request =
            request.body(Full::new(response.body.clone())).map_err(|e| format!("cannot build the callback: {e}"))?;
        let answer = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| format!("callback to {url} timed out after {:?}", self.timeout))?
            .map_err(|e| format!("callback to {url} failed: {}", faas_core::error_chain(&e)))?;
        let status = answer.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("callback to {url} answered {status}"))
        }
    }
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    [header::CONNECTION, header::TRANSFER_ENCODING, header::CONTENT_LENGTH, header::HOST, header::TE, header::UPGRADE]
        .contains(name)
        || name.as_str() == "keep-alive"
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    #[tokio::test]
    async fn idle_connections_to_callback_hosts_are_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/cb", listener.local_addr().unwrap());
        // A host that answers one callback, keeps the connection open and
        // reports when the gateway closes it.
        let host = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buffer).await.unwrap();
                assert!(n > 0, "the request arrives");
                request.extend_from_slice(&buffer[..n]);
            }
            stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.unwrap();
            // Whatever else arrives (the body), until the end of the stream.
            while stream.read(&mut buffer).await.unwrap_or(0) > 0 {}
        });
        let callbacks = Callbacks::new(Duration::from_secs(5));
        let response =
            FunctionResponse { status: StatusCode::OK, headers: HeaderMap::new(), body: Bytes::new(), seconds: 0.0 };
        callbacks.deliver(&url, "call-1", "f.ns", &response).await.unwrap();
        assert!(!host.is_finished(), "the connection waits in the pool");
        // Nobody is called back again: only the pool's timer can close it.
        // The connection goes back to the pool on a task of its own, so the
        // clock may have to move past CALLBACK_IDLE more than once.
        for _ in 0..3 {
            tokio::time::pause();
            tokio::time::advance(CALLBACK_IDLE + Duration::from_secs(1)).await;
            tokio::time::resume();
            for _ in 0..100 {
                if host.is_finished() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        panic!("the idle callback connection is still open");
    }

    #[test]
    fn only_absolute_http_urls_are_accepted() {
        assert!(parse_callback_url("http://127.0.0.1:9000/cb?x=1").is_ok());
        for bad in ["https://example.invalid/", "/relative", "ftp://x/", "not a url", "http:///nohost"] {
            assert!(matches!(parse_callback_url(bad), Err(AsyncError::Invalid { .. })), "{bad}");
        }
    }
}
