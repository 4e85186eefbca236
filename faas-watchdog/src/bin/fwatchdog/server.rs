//! The HTTP server: hyper-util's auto (HTTP/1 and HTTP/2) connections,
//! each request handed to [`Watchdog::handle`], drained on SIGTERM.

use std::convert::Infallible;
use std::time::Duration;

use faas_core::Body;
use faas_upstream::Shards;
use faas_watchdog::{Config, Watchdog};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

use crate::read_timeout::ReadTimeout;

/// How long connections get to finish writing once the calls are done.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Serves until SIGTERM or SIGINT, then drains and stops the watchdog.
/// With `shards`, each connection is served on one of their threads.
pub(crate) async fn serve(watchdog: Watchdog, config: &Config, shards: Option<&Shards>) -> std::io::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let listener = TcpListener::bind((config.listen_address, config.port)).await?;
    tracing::info!(address = %config.listen_address, port = config.port, mode = %config.mode, "listening");

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(config.read_timeout);
    let graceful = GracefulShutdown::new();
    let read_timeout = config.read_timeout;

    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        };
        // Small answers written in two pieces (headers, then body) must not
        // wait for the client's delayed ACK (Nagle): ~40 ms per call.
        let _ = stream.set_nodelay(true);
        let watchdog = watchdog.clone();
        let service = service_fn(move |request: http::Request<Incoming>| {
            let watchdog = watchdog.clone();
            async move {
                let request = request.map(|body| Body::new(ReadTimeout::new(body, read_timeout)));
                Ok::<_, Infallible>(watchdog.handle(request).await)
            }
        });
        let Some(shards) = shards else {
            let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned());
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
            });
            continue;
        };
        // Served on a shard from start to end: registered with its runtime.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(%peer, "cannot hand a connection to a serving thread: {e}");
                continue;
            }
        };
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        shards.spawn(move || async move {
            let stream = match tokio::net::TcpStream::from_std(stream) {
                Ok(stream) => stream,
                Err(e) => return tracing::warn!(%peer, "cannot hand a connection to a serving thread: {e}"),
            };
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }

    drop(listener);
    tracing::info!(inflight = watchdog.inflight(), "signal received; draining");
    watchdog.shutdown(config.write_timeout).await;
    if tokio::time::timeout(CLOSE_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the drain; closing them");
    }
    tracing::info!("stopped");
    Ok(())
}
