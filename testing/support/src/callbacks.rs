//! A loopback server recording the callbacks of asynchronous calls (the
//! `X-Callback-Url` an async call names), for the tests of the queue and
//! of the gateway.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::serve::Connections;

/// One callback as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// `X-Call-Id`: the call it reports on.
    pub call_id: String,
    /// `X-Function-Status`: the function's status code (or the gateway's
    /// for a call that could not run).
    pub function_status: String,
    /// `X-Duration-Seconds`, when sent.
    pub duration: Option<String>,
    /// The function's response body.
    pub body: Bytes,
}

impl Callback {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Records every request to it as a [`Callback`] and answers `200 OK`;
/// stops when dropped.
#[derive(Debug)]
pub struct CallbackServer {
    url: String,
    received: Arc<Mutex<Vec<Callback>>>,
    count: watch::Receiver<usize>,
    /// Callbacks [`CallbackServer::next`] has returned.
    taken: usize,
    accept: JoinHandle<()>,
    connections: Connections,
}

fn lock(received: &Mutex<Vec<Callback>>) -> MutexGuard<'_, Vec<Callback>> {
    received.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl CallbackServer {
    /// A server on a free port of 127.0.0.1.
    pub async fn start() -> std::io::Result<CallbackServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/callback", listener.local_addr()?);
        let received = Arc::new(Mutex::new(Vec::new()));
        let (counter, count) = watch::channel(0);
        let counter = Arc::new(counter);
        let connections = Connections::new();
        let kept = received.clone();
        let accept = connections.serve(listener, move |request: Request<Incoming>| {
            let (received, counter) = (kept.clone(), counter.clone());
            async move {
                let (parts, body) = request.into_parts();
                let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
                let callback = Callback {
                    call_id: header("x-call-id").unwrap_or_default(),
                    function_status: header("x-function-status").unwrap_or_default(),
                    duration: header("x-duration-seconds"),
                    body: body.collect().await.map(|b| b.to_bytes()).unwrap_or_default(),
                };
                let total = {
                    let mut received = lock(&received);
                    received.push(callback);
                    received.len()
                };
                counter.send_replace(total);
                let mut response = Response::new(Empty::<Bytes>::new());
                *response.status_mut() = StatusCode::OK;
                response
            }
        });
        Ok(CallbackServer { url, received, count, taken: 0, accept, connections })
    }

    /// The URL to give as `X-Callback-Url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every callback so far, in arrival order.
    pub fn received(&self) -> Vec<Callback> {
        lock(&self.received).clone()
    }

    /// The next callback this method has not returned yet, in arrival
    /// order, once it arrives; None if none arrives `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Callback> {
        let wanted = self.taken + 1;
        tokio::time::timeout(within, self.count.wait_for(|n| *n >= wanted)).await.ok()?.ok()?;
        self.taken = wanted;
        lock(&self.received).get(wanted - 1).cloned()
    }
}

impl Drop for CallbackServer {
    fn drop(&mut self) {
        self.accept.abort();
        self.connections.cut();
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::Full;
    use hyper_util::rt::TokioIo;

    use super::*;

    #[tokio::test]
    async fn callbacks_are_recorded_in_order() {
        let mut server = CallbackServer::start().await.unwrap();
        assert_eq!(server.next(Duration::from_millis(50)).await, None);
        let authority = server.url().trim_start_matches("http://").split('/').next().unwrap().to_owned();
        for (id, body) in [("a", "first"), ("b", "second")] {
            let stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
            tokio::spawn(connection);
            let request = Request::post(server.url())
                .header("x-call-id", id)
                .header("x-function-status", "200")
                .body(Full::new(Bytes::from(body)))
                .unwrap();
            assert_eq!(sender.send_request(request).await.unwrap().status(), StatusCode::OK);
        }
        let first = server.next(Duration::from_secs(10)).await.unwrap();
        assert_eq!(
            (first.call_id.as_str(), first.function_status.as_str(), first.text()),
            ("a", "200", "first".into())
        );
        assert_eq!(server.next(Duration::from_secs(10)).await.unwrap().call_id, "b");
        assert_eq!(server.received().len(), 2);
    }
}
