//! The accept loop of the test servers: HTTP/1.1 and HTTP/2 (prior
//! knowledge) on a listener, each connection served by a handler, every
//! open connection cut at once on demand (a paused or stopped server).

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A failed accept (too many open files, ...) is retried after this.
const ACCEPT_RETRY: Duration = Duration::from_millis(20);

/// The connections of one server: [`Connections::serve`] accepts them,
/// [`Connections::cut`] ends every one open now (watches and streams
/// included), as a server that goes away does.
#[derive(Debug)]
pub struct Connections {
    cut: watch::Sender<u64>,
}

impl Default for Connections {
    fn default() -> Self {
        Connections::new()
    }
}

impl Connections {
    /// No connections yet.
    pub fn new() -> Self {
        Connections { cut: watch::channel(0).0 }
    }

    /// Ends every connection open now; later ones are served.
    pub fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    /// Accepts connections on `listener` until the task is aborted and
    /// answers each request with `handler`. Aborting the task closes the
    /// listener, not the connections: [`Connections::cut`] does.
    pub fn serve<H, F, B>(&self, listener: TcpListener, handler: H) -> JoinHandle<()>
    where
        H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Response<B>> + Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let cut = self.cut.subscribe();
        tokio::spawn(accept(listener, handler, cut))
    }
}

async fn accept<H, F, B>(listener: TcpListener, handler: H, cut: watch::Receiver<u64>)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(ACCEPT_RETRY).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let mut cut = cut.clone();
        cut.mark_unchanged();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = handler(request);
                async move { Ok::<_, Infallible>(response.await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = cut.changed() => {}
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, Full};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn hello(_: Request<Incoming>) -> Response<Full<Bytes>> {
        Response::new(Full::new(Bytes::from_static(b"hello")))
    }

    #[tokio::test]
    async fn requests_are_answered_until_the_connections_are_cut() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Connections::new();
        let accept = connections.serve(listener, hello);

        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), async {
            while !response.ends_with(b"hello") {
                let mut chunk = [0u8; 256];
                let n = stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the connection closed early: {:?}", String::from_utf8_lossy(&response));
                response.extend_from_slice(&chunk[..n]);
            }
        })
        .await
        .expect("an answer");
        assert!(response.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&response));

        connections.cut();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await;
        assert!(read.expect("a cut connection is closed").is_ok_and(|n| n == 0), "{rest:?}");

        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(tokio::net::TcpStream::connect(addr).await.unwrap()))
                .await
                .unwrap();
        tokio::spawn(connection);
        let response = sender.send_request(Request::get("/").body(Full::new(Bytes::new())).unwrap()).await.unwrap();
        assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "hello", "later connections are served");
        accept.abort();
    }
}
