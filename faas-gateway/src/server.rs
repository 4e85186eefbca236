//! Serving: the listener, the header read timeout, signals and the
//! graceful shutdown.
//!
//! HTTP/1 connections idle for [`PARK_AFTER`] are parked: hyper's
//! connection and its buffers are dropped and only the socket is kept until
//! the client sends again (module `park`, BENCHMARKS.md "11. Faults and floods").

mod park;

pub use park::{CROWD, PARK_AFTER, PARK_AFTER_CROWDED};

use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use faas_async::api::AsyncApiConfig;
use faas_async::{AsyncMetrics, Dispatcher, EmbeddedQueue, JetStreamQueue, Queue};
use faas_autoscale::{ScaleType, Scaler};
use faas_core::api::ApiConfig;
use faas_core::SharedProvider;
use faas_upstream::Shards;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::cli::{Args, AsyncQueueKind};
use crate::error::GatewayError;
use crate::history::{self, History};
use crate::metrics::{Metered, Metrics};
use crate::triggers::Wiring;
use crate::{app, auth, providers, ui, version_info};

/// How often `gateway_service_count` is refreshed from the provider.
pub const SERVICE_COUNT_REFRESH: Duration = Duration::from_secs(5);

/// Refuses `--scale-type cpu` with a provider that cannot measure CPU,
/// naming the provider (`name`, as `--provider` takes it).
fn check_scaling(args: &Args, provider: &dyn faas_core::Provider, name: &str) -> Result<(), GatewayError> {
    if args.scaling().is_some_and(|c| c.scale_type == ScaleType::Cpu) && !provider.capabilities().cpu_usage {
        return Err(GatewayError::Flag {
            flag: "--scale-type",
            value: ScaleType::Cpu.to_string(),
            reason: format!("the {name} provider cannot measure CPU; use capacity or rps"),
        });
    }
    Ok(())
}

/// How [`serve`] treats connections.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// How long an HTTP/1 client may take to send a request's headers;
    /// `None` for no limit.
    pub header_read_timeout: Option<Duration>,
    /// How long in-flight requests may take to finish once shutdown began.
    pub drain_timeout: Duration,
    /// The largest request head in bytes (431 beyond); at least 8192.
    pub max_header_bytes: usize,
    /// The most connections served at once; beyond it the listener is not
    /// accepted from, so new connections wait in the kernel's backlog.
    pub max_connections: usize,
    /// Set to the number of HTTP/1 connections parked while idle
    /// (`gateway_http_connections_parked` on `/metrics`).
    pub parked: Gauge,
    /// HTTP/1 connections open and not parked beyond which idle ones are
    /// parked after [`PARK_AFTER_CROWDED`] instead of [`PARK_AFTER`]
    /// ([`CROWD`] in the gateway).
    pub crowd: usize,
}

/// Runs the gateway until SIGINT or SIGTERM, then drains and stops the
/// provider: the whole life of the `faas-gateway` binary.
///
/// In order: choose the provider, read the basic auth credentials, open
/// the provider (the local one takes the state directory's lock), bind
/// `--listen` (stopping the provider again if that fails), open the
/// asynchronous call queue (unless `--async-queue off`), wrap the provider
/// in the scaling layer (unless `--no-autoscale`) and start its
/// autoscaler, start the asynchronous call workers, print `listening on
/// <addr>` on stdout and serve; on a signal stop accepting, let in-flight
/// calls finish for up to `--write-timeout`, stop the workers within what
/// is left of it, then give the provider the rest to stop its functions.
pub async fn run(args: Args) -> Result<(), GatewayError> {
    let entry = providers::select(args.provider.as_deref())?;
    let basic_auth = if args.basic_auth { Some(auth::load(&args.secret_mount_path)?) } else { None };
    let mut signals = Signals::install()?;
    // Dropped last: tasks that calls started (a function's processes, for
    // the local provider) may live on these threads.
    let shards = match args.serving_threads() {
        0 => None,
        threads => Some(
            Shards::start(threads, "faas-serve")
                .map_err(|source| GatewayError::Io { what: "cannot start the serving threads", source })?,
        ),
    };
    // The provider before the listener: it takes the state directory's
    // lock and says clearly when another gateway uses it, which a second
    // gateway on the same `--listen` would otherwise hide behind "address
    // in use".
    if let Some(table) = entry.settings {
        providers::warn_unknown(table, providers::process_var_names().iter().map(String::as_str));
    }
    let backend = (entry.open)(&args).await?;
    if let Err(err) = check_scaling(&args, &*backend.provider(), entry.name) {
        backend.shutdown(args.write_timeout).await;
        return Err(err);
    }
    let (listener, addr) = match bind(&args.listen).await {
        Ok(bound) => bound,
        Err(err) => {
            backend.shutdown(args.write_timeout).await;
            return Err(err);
        }
    };
    let queue = match open_queue(&args).await {
        Ok(queue) => queue,
        Err(err) => {
            backend.shutdown(args.write_timeout).await;
            return Err(err);
        }
    };
    // The scaling layer sits under Metered: invocation metrics then show
    // what callers got, hold time of a scale from zero and 503/504 at its
    // bounds included.
    let mut triggers = match Wiring::open(&args, queue.as_ref()).await {
        Ok(triggers) => triggers,
        Err(err) => {
            backend.shutdown(args.write_timeout).await;
            return Err(err);
        }
    };
    let scaler = args.scaling().map(|config| Scaler::new(backend.provider(), config));
    let async_metrics = Arc::new(AsyncMetrics::new());
    let parked = Gauge::default();
    let metrics = Arc::new(Metrics::with_registration(|registry| {
        registry.register(
            "gateway_http_connections_parked",
            "Idle HTTP/1 connections parked: only their socket is held",
            parked.clone(),
        );
        if let Some(scaler) = &scaler {
            scaler.metrics().register(registry);
        }
        if queue.is_some() {
            async_metrics.register(registry);
        }
        if let Some(triggers) = &triggers {
            triggers.register(registry);
        }
    }));
    let served: SharedProvider = match &scaler {
        Some(scaler) => Arc::new(scaler.clone()),
        None => backend.provider(),
    };
    let served = match &mut triggers {
        Some(triggers) => triggers.wrap(served),
        None => served,
    };
    let history = args.history.then(|| Arc::new(History::new(scaler.as_ref().map(|s| s.metrics().clone()))));
    let metered = match &history {
        Some(history) => Arc::new(Metered::new(served, metrics.clone()).with_history(history.clone())),
        None => Arc::new(Metered::new(served, metrics.clone())),
    };
    let config = ApiConfig {
        basic_auth: basic_auth.clone(),
        gateway_version: Some(version_info()),
        max_invoke_body_bytes: args.max_body,
        ..ApiConfig::default()
    };
    let async_routes = match &queue {
        Some(queue) => {
            let config = AsyncApiConfig {
                max_body_bytes: args.async_max_body,
                basic_auth: basic_auth.clone(),
                dispatcher: args.async_dispatcher(),
            };
            faas_async::api::router(queue.clone(), metered.clone(), async_metrics.clone(), config)
        }
        None => Router::new(),
    };
    let async_routes = match &triggers {
        Some(triggers) => async_routes.merge(triggers.routes(basic_auth.clone())),
        None => async_routes,
    };
    // Alert scales go through the scaling layer: a floor for one window.
    let mut extra = async_routes.merge(faas_autoscale::alert::router(metered.clone(), basic_auth.clone()));
    // The portal, and the history its charts read.
    extra = extra.merge(ui::router());
    if let Some(history) = history {
        extra = extra.merge(history::router(history, metered.clone(), basic_auth.clone()));
    }
    let router = app::router_with(metered.clone(), config, metrics, extra);
    // The workers invoke through the same wrapped provider as `/function/`:
    // metrics and scale from zero apply to asynchronous calls too.
    let dispatcher =
        queue.map(|queue| Dispatcher::new(queue, metered.clone(), args.async_dispatcher(), async_metrics.clone()));
    if let (Some(triggers), Some(dispatcher)) = (&mut triggers, &dispatcher) {
        triggers.start(dispatcher).await;
    }
    let workers = dispatcher.map(|dispatcher| dispatcher.spawn());
    let refresh = metered.spawn_refresh(SERVICE_COUNT_REFRESH);
    let autoscaler = scaler.as_ref().map(Scaler::spawn);

    // A machine-readable line for scripts and tests using port 0; a closed
    // stdout is not a reason to stop.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "listening on {addr}").and_then(|()| stdout.flush());
    drop(stdout);
    tracing::info!(
        listen = %addr,
        provider = entry.name,
        version = env!("CARGO_PKG_VERSION"),
        basic_auth = basic_auth.is_some(),
        autoscale = scaler.is_some(),
        async_queue = ?args.async_queue,
        "faas-gateway listening on {addr} with the {} provider",
        entry.name
    );

    let options = ServeOptions {
        header_read_timeout: Some(args.read_timeout).filter(|d| !d.is_zero()),
        drain_timeout: args.write_timeout,
        max_header_bytes: usize::try_from(args.max_header_size).unwrap_or(usize::MAX),
        max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        parked,
        crowd: CROWD,
    };
    let shutdown = async move {
        let name = signals.recv().await;
        tracing::info!(signal = name, "shutting down: no new connections, draining in-flight calls");
    };
    let drain = serve(listener, router, options, shards.as_ref(), shutdown).await;
    refresh.abort();
    if let Some(triggers) = triggers {
        triggers.stop();
    }
    // No scaling decisions while the provider stops.
    drop(autoscaler);
    if !drain.complete {
        tracing::warn!(limit = ?args.write_timeout, "in-flight calls did not finish within the write timeout");
    }
    // Calls the workers are running get what is left of the write
    // timeout; any still running after it stay queued and run again at the
    // next start.
    let stopping = Instant::now();
    if let Some(workers) = workers {
        workers.shutdown(args.write_timeout.saturating_sub(drain.took)).await;
    }
    let grace = args.write_timeout.saturating_sub(drain.took + stopping.elapsed());
    backend.shutdown(grace).await;
    drop(shards);
    tracing::info!("faas-gateway stopped");
    Ok(())
}

/// Binds `--listen`; returns the listener and the address it got (the
/// port chosen when `listen` asks for port 0).
async fn bind(listen: &str) -> Result<(TcpListener, std::net::SocketAddr), GatewayError> {
    let listener = TcpListener::bind(listen).await.map_err(|e| GatewayError::bind(listen, e))?;
    let addr =
        listener.local_addr().map_err(|source| GatewayError::Io { what: "cannot read the bound address", source })?;
    Ok((listener, addr))
}

/// Opens the asynchronous call queue chosen by `--async-queue`, `None` when
/// it is off.
async fn open_queue(args: &Args) -> Result<Option<Arc<dyn Queue>>, GatewayError> {
    match args.async_queue {
        AsyncQueueKind::Off => Ok(None),
        AsyncQueueKind::Embedded => {
            let dir = args.state_dir()?.join("async");
            let (queue, recovered) = EmbeddedQueue::open(&dir)
                .await
                .map_err(|source| GatewayError::AsyncQueue { kind: "embedded", source })?;
            let queue = queue.with_lease_timeout(args.async_lease_timeout);
            if recovered > 0 {
                tracing::info!(recovered, "asynchronous calls in flight at the last stop will run again");
            }
            Ok(Some(Arc::new(queue)))
        }
        AsyncQueueKind::Nats => {
            let queue = JetStreamQueue::open(&args.jetstream())
                .await
                .map_err(|source| GatewayError::AsyncQueue { kind: "nats", source })?;
            Ok(Some(Arc::new(queue)))
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops
/// accepting, lets open connections finish their requests for up to
/// `options.drain_timeout`, and reports how that went.
///
/// The header read timeout also covers a connection's first bytes (HTTP/1
/// or HTTP/2 is only known once they arrive), so an idle connection is
/// closed after it too, a keep-alive one counting from the end of its last
/// call (plus up to [`PARK_AFTER`] once parked). An HTTP/1 connection idle
/// for [`PARK_AFTER`] is parked: only its socket is kept until the client
/// sends again, then a new hyper connection serves it. A request head above `max_header_bytes` is answered
/// 431 (HTTP/1: hyper's read buffer is capped at that size; HTTP/2: the
/// header list size). At `max_connections` open connections nothing more
/// is accepted until one closes: new clients queue in the listen backlog
/// rather than taking file descriptors.
///
/// With `shards`, each connection is served on one of their threads from
/// start to end; without, on the caller's runtime.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shards: Option<&Shards>,
    shutdown: impl Future<Output = ()>,
) -> Drain {
    let protocols = Arc::new(Protocols::new(&options));
    let slots = Arc::new(tokio::sync::Semaphore::new(options.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    // Closed when shutdown begins, releasing connections that have not
    // sent anything yet and parked ones, and ending HTTP/1 connections
    // after their call in progress.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    tokio::pin!(shutdown);
    loop {
        // A free slot first, then a connection: at the cap the listener is
        // left alone and the kernel's backlog holds the newcomers.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let connection = Connection {
                        peer,
                        slot,
                        watcher: graceful.watcher(),
                        stop: stop_rx.clone(),
                        protocols: protocols.clone(),
                        service: TowerToHyperService::new(router.clone()),
                    };
                    match shards {
                        None => {
                            tokio::spawn(connection.serve(stream));
                        }
                        // Moved to the shard's runtime: registered there,
                        // served there to its end.
                        Some(shards) => match stream.into_std() {
                            Ok(stream) => {
                                shards.spawn(move || async move {
                                    match tokio::net::TcpStream::from_std(stream) {
                                        Ok(stream) => connection.serve(stream).await,
                                        Err(err) => tracing::warn!(%peer, error = %err, "cannot hand a connection to a serving thread"),
                                    }
                                });
                            }
                            Err(err) => tracing::warn!(%peer, error = %err, "cannot hand a connection to a serving thread"),
                        },
                    }
                }
                Err(err) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    let began = Instant::now();
    drop(listener);
    drop(stop_tx);
    let complete = tokio::time::timeout(options.drain_timeout, graceful.shutdown()).await.is_ok();
    Drain { complete, took: began.elapsed() }
}

/// The connection builders [`serve`] uses and what else every connection
/// shares.
struct Protocols {
    /// Connections whose first bytes are an HTTP/1 request.
    http1: http1::Builder,
    /// Connections whose first bytes may be HTTP/2's preface: hyper-util
    /// reads them and picks the protocol.
    either: auto::Builder<TokioExecutor>,
    /// How long a client may take to send its first bytes, a request head,
    /// or its next request; `None` for no limit.
    read_timeout: Option<Duration>,
    /// Connections parked now.
    parked: Gauge,
    /// HTTP/1 connections in hyper now (open, not parked).
    in_hyper: std::sync::atomic::AtomicUsize,
    /// Beyond this many in hyper, idle connections are parked sooner.
    crowd: usize,
}

impl Protocols {
    /// Both builders with `options`' header read timeout and header limit
    /// (the HTTP/1 settings are the same in both).
    fn new(options: &ServeOptions) -> Protocols {
        let max_buf = options.max_header_bytes.max(MIN_HEADER_BYTES);
        let mut http1 = http1::Builder::new();
        http1.timer(TokioTimer::new()).header_read_timeout(options.header_read_timeout).max_buf_size(max_buf);
        let mut either = auto::Builder::new(TokioExecutor::new());
        either.http1().timer(TokioTimer::new()).header_read_timeout(options.header_read_timeout).max_buf_size(max_buf);
        either.http2().max_header_list_size(u32::try_from(options.max_header_bytes).unwrap_or(u32::MAX));
        Protocols {
            http1,
            either,
            read_timeout: options.header_read_timeout,
            parked: options.parked.clone(),
            in_hyper: std::sync::atomic::AtomicUsize::new(0),
            crowd: options.crowd,
        }
    }
}

/// One accepted connection and what serving it takes.
struct Connection {
    peer: std::net::SocketAddr,
    /// Held while the connection is open (`max_connections`).
    slot: tokio::sync::OwnedSemaphorePermit,
    watcher: Watcher,
    stop: tokio::sync::watch::Receiver<()>,
    protocols: Arc<Protocols>,
    service: TowerToHyperService<Router>,
}

impl Connection {
    /// Serves `stream` until it closes (or, once its first bytes are late
    /// or shutdown began before them, closes it).
    ///
    /// A connection that opens with an HTTP/1 request (every one that is
    /// not HTTP/2 with prior knowledge) goes straight to hyper's HTTP/1
    /// server, parked whenever idle (module `park`). Through hyper-util's
    /// protocol detection it would cost about twice the memory while
    /// active: the detection's first read leaves hyper's read buffer one
    /// request short, so hyper grows it from 8 to 16 KiB for the
    /// connection's life, and the task holds room for an HTTP/2 connection
    /// too (BENCHMARKS.md, "11. Faults and floods"). That path serves no
    /// protocol upgrade, as no route answers one.
    async fn serve(mut self, stream: tokio::net::TcpStream) {
        let _slot = self.slot;
        // Held to the end: the drain waits for it.
        let watcher = self.watcher;
        let peer = self.peer;
        let protocols = &*self.protocols;
        let result = match first_bytes(&stream, protocols.read_timeout, &mut self.stop).await {
            Opening::Late => {
                tracing::debug!(%peer, "closing a connection that sent nothing in time");
                return;
            }
            Opening::Http1 => {
                let settings = park::Settings {
                    builder: &protocols.http1,
                    read_timeout: protocols.read_timeout,
                    parked: &protocols.parked,
                    in_hyper: &protocols.in_hyper,
                    crowd: protocols.crowd,
                };
                let served = park::serve(stream, self.service, settings, &mut self.stop).await;
                drop(watcher);
                served.map_err(|err| err.to_string())
            }
            // Rare: boxed so that it does not size every connection's task.
            Opening::Either => {
                let connection = protocols.either.serve_connection_with_upgrades(TokioIo::new(stream), self.service);
                Box::pin(watcher.watch(connection)).await.map_err(|err| err.to_string())
            }
        };
        if let Err(err) = result {
            tracing::debug!(%peer, error = %err, "connection ended with an error");
        }
    }
}

/// hyper's smallest HTTP/1 read buffer, hence the smallest header limit.
pub const MIN_HEADER_BYTES: usize = 8192;

/// How [`serve`]'s drain went.
#[derive(Debug, Clone, Copy)]
pub struct Drain {
    /// Every connection finished within the drain timeout.
    pub complete: bool,
    /// How long the drain took.
    pub took: Duration,
}

/// What a new connection's first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opening {
    /// Nothing within the header read timeout, or shutdown began first.
    Late,
    /// Bytes that cannot begin HTTP/2's connection preface: HTTP/1.
    Http1,
    /// HTTP/2's preface or a part of it, or the connection's end or an
    /// error: left to hyper-util's detection.
    Either,
}

/// HTTP/2's connection preface (RFC 9113, section 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Waits for a new connection's first bytes (or its end) for up to
/// `limit`, or until shutdown begins, and looks at what arrived without
/// consuming it.
async fn first_bytes(
    stream: &tokio::net::TcpStream,
    limit: Option<Duration>,
    stop: &mut tokio::sync::watch::Receiver<()>,
) -> Opening {
    let mut head = [0u8; H2_PREFACE.len()];
    let peeked = async {
        match limit {
            Some(limit) => tokio::time::timeout(limit, stream.peek(&mut head)).await.ok(),
            None => Some(stream.peek(&mut head).await),
        }
    };
    let peeked = tokio::select! {
        peeked = peeked => peeked,
        _ = stop.changed() => None,
    };
    match peeked {
        None => Opening::Late,
        Some(Ok(n)) => opening_of(&head[..n]),
        Some(Err(_)) => Opening::Either,
    }
}

/// [`Opening::Http1`] for bytes that cannot begin HTTP/2's preface.
fn opening_of(head: &[u8]) -> Opening {
    if head.is_empty() || H2_PREFACE.starts_with(head) {
        Opening::Either
    } else {
        Opening::Http1
    }
}

/// SIGINT and SIGTERM, installed before the provider starts so a signal
/// during start-up is not lost.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    fn install() -> Result<Self, GatewayError> {
        let failed = |source| GatewayError::Io { what: "cannot install the signal handlers", source };
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).map_err(failed)?,
            terminate: signal(SignalKind::terminate()).map_err(failed)?,
        })
    }

    /// Waits for either signal and names it.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// Long enough for any connection idle past [`PARK_AFTER`] to be
    /// parked (it is looked at every `PARK_AFTER`).
    const PARKED: Duration = PARK_AFTER.saturating_mul(5);
    const WAIT: Duration = Duration::from_secs(10);

    /// A server on a loopback port with a quick route and one that answers
    /// after `slow`, the parked gauge, and how to stop it.
    struct Server {
        addr: std::net::SocketAddr,
        parked: Gauge,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        done: tokio::task::JoinHandle<Drain>,
    }

    impl Server {
        async fn start(read_timeout: Duration, slow: Duration) -> Server {
            Server::start_with_crowd(read_timeout, slow, CROWD).await
        }

        /// As [`Server::start`], idle connections parked sooner beyond
        /// `crowd` connections in hyper.
        async fn start_with_crowd(read_timeout: Duration, slow: Duration, crowd: usize) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let router = Router::new().route("/quick", get(|| async { "quick" })).route(
                "/slow",
                get(move || async move {
                    tokio::time::sleep(slow).await;
                    "slow"
                }),
            );
            let parked = Gauge::default();
            let options = ServeOptions {
                header_read_timeout: Some(read_timeout),
                drain_timeout: WAIT,
                max_header_bytes: MIN_HEADER_BYTES,
                max_connections: 100,
                parked: parked.clone(),
                crowd,
            };
            let (stop, stopped) = tokio::sync::oneshot::channel();
            let done = tokio::spawn(async move {
                serve(listener, router, options, None, async {
                    let _ = stopped.await;
                })
                .await
            });
            Server { addr, parked, stop: Some(stop), done }
        }

        async fn connect(&self) -> TcpStream {
            let stream = TcpStream::connect(self.addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            stream
        }

        /// Begins the shutdown and waits for the drain.
        async fn shut_down(&mut self) -> Drain {
            let _ = self.stop.take().unwrap().send(());
            tokio::time::timeout(WAIT, &mut self.done).await.expect("the drain ends").unwrap()
        }
    }

    /// Reads one response with a `Content-Length`: its head (lower case)
    /// and its body.
    async fn response(stream: &mut TcpStream) -> (String, String) {
        let mut bytes = Vec::new();
        let mut byte = [0u8; 1];
        while !bytes.ends_with(b"\r\n\r\n") {
            let n = tokio::time::timeout(WAIT, stream.read(&mut byte)).await.expect("an answer in time").unwrap();
            assert_eq!(n, 1, "the connection closed after {:?}", String::from_utf8_lossy(&bytes));
            bytes.push(byte[0]);
        }
        let head = String::from_utf8(bytes).unwrap().to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .map(|n| n.trim().parse::<usize>().unwrap())
            .expect("a content-length");
        let mut body = vec![0u8; length];
        tokio::time::timeout(WAIT, stream.read_exact(&mut body)).await.unwrap().unwrap();
        (head, String::from_utf8(body).unwrap())
    }

    /// Asserts a 200 answer kept alive, with `body`.
    fn assert_kept_alive((head, got): &(String, String), body: &str) {
        assert!(head.starts_with("http/1.1 200 ok"), "{head}");
        assert!(!head.contains("connection: close"), "{head}");
        assert_eq!(got, body, "{head}");
    }

    const QUICK: &[u8] = b"GET /quick HTTP/1.1\r\nHost: x\r\n\r\n";
    const SLOW: &[u8] = b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";

    #[tokio::test]
    async fn an_idle_keep_alive_connection_is_parked_and_then_served_on_the_same_socket() {
        let server = Server::start(WAIT, Duration::ZERO).await;
        let mut stream = server.connect().await;
        let local = stream.local_addr().unwrap();
        for round in 0..3 {
            stream.write_all(QUICK).await.unwrap();
            assert_kept_alive(&response(&mut stream).await, "quick");
            assert_eq!(server.parked.get(), 0, "round {round}: busy, not parked");
            tokio::time::sleep(PARKED).await;
            assert_eq!(server.parked.get(), 1, "round {round}: idle past the park delay");
        }
        stream.write_all(QUICK).await.unwrap();
        assert_kept_alive(&response(&mut stream).await, "quick");
        assert_eq!(server.parked.get(), 0);
        assert_eq!(stream.local_addr().unwrap(), local);
    }

    /// How long after its call `stream`'s connection is parked (the only
    /// one of `server`), looked at every millisecond up to `WAIT`.
    async fn parked_after_a_call(server: &Server, stream: &mut TcpStream) -> Duration {
        stream.write_all(QUICK).await.unwrap();
        assert_kept_alive(&response(stream).await, "quick");
        let answered = Instant::now();
        while server.parked.get() == 0 {
            assert!(answered.elapsed() < WAIT, "never parked");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        answered.elapsed()
    }

    #[tokio::test]
    async fn idle_connections_are_parked_sooner_while_more_than_the_crowd_are_in_hyper() {
        // A crowd of 0: any connection in hyper is a crowd.
        let crowded = Server::start_with_crowd(WAIT, Duration::ZERO, 0).await;
        let mut stream = crowded.connect().await;
        let took = parked_after_a_call(&crowded, &mut stream).await;
        assert!(took < PARK_AFTER, "parked {took:?} after its call, not within {PARK_AFTER:?}");
        // Still served on the same socket.
        stream.write_all(QUICK).await.unwrap();
        assert_kept_alive(&response(&mut stream).await, "quick");

        // Below the crowd: the usual delay.
        let calm = Server::start_with_crowd(WAIT, Duration::ZERO, 1).await;
        let mut stream = calm.connect().await;
        let took = parked_after_a_call(&calm, &mut stream).await;
        assert!(took >= PARK_AFTER / 2, "parked {took:?} after its call, before {:?}", PARK_AFTER / 2);
    }

    #[tokio::test]
    async fn bytes_of_a_next_request_read_before_or_after_a_pause_are_served() {
        let server = Server::start(WAIT, PARK_AFTER / 5).await;
        let mut stream = server.connect().await;
        // The next request's head partly pipelined behind a call: hyper has
        // read it when the call ends, so it is handed to the next hyper
        // connection if the connection is parked.
        stream.write_all(&[SLOW, &QUICK[..20]].concat()).await.unwrap();
        assert_kept_alive(&response(&mut stream).await, "slow");
        tokio::time::sleep(PARKED).await;
        stream.write_all(&QUICK[20..]).await.unwrap();
        assert_kept_alive(&response(&mut stream).await, "quick");
        // Half a head after a pause (parked), the rest after another.
        tokio::time::sleep(PARKED).await;
        assert_eq!(server.parked.get(), 1);
        stream.write_all(&QUICK[..10]).await.unwrap();
        tokio::time::sleep(PARKED).await;
        stream.write_all(&QUICK[10..]).await.unwrap();
        assert_kept_alive(&response(&mut stream).await, "quick");
        // Two whole requests at once after a pause.
        tokio::time::sleep(PARKED).await;
        stream.write_all(&[QUICK, SLOW].concat()).await.unwrap();
        assert_kept_alive(&response(&mut stream).await, "quick");
        assert_kept_alive(&response(&mut stream).await, "slow");
    }

    #[tokio::test]
    async fn a_call_longer_than_the_park_delay_is_answered_and_kept_alive() {
        let server = Server::start(WAIT, PARKED).await;
        let mut stream = server.connect().await;
        for _ in 0..2 {
            stream.write_all(SLOW).await.unwrap();
            assert_kept_alive(&response(&mut stream).await, "slow");
        }
        assert_eq!(server.parked.get(), 0, "calls in flight are never parked");
    }

    #[tokio::test]
    async fn a_parked_connection_is_closed_after_the_read_timeout_from_its_last_call() {
        let read_timeout = Duration::from_secs(1);
        let server = Server::start(read_timeout, Duration::ZERO).await;
        let mut stream = server.connect().await;
        stream.write_all(QUICK).await.unwrap();
        assert_kept_alive(&response(&mut stream).await, "quick");
        let idle = Instant::now();
        tokio::time::sleep(PARKED).await;
        assert_eq!(server.parked.get(), 1);
        let mut rest = Vec::new();
        tokio::time::timeout(WAIT, stream.read_to_end(&mut rest)).await.expect("closed").unwrap();
        let closed = idle.elapsed();
        assert!(rest.is_empty(), "{rest:?}");
        // Not before the read timeout, and not much after it.
        let early = Duration::from_millis(50);
        let late = PARK_AFTER + Duration::from_millis(400);
        assert!(closed + early >= read_timeout && closed < read_timeout + late, "{closed:?}");
        assert_eq!(server.parked.get(), 0);
    }

    #[tokio::test]
    async fn shutdown_closes_parked_connections_at_once_and_waits_for_calls_in_flight() {
        let mut server = Server::start(WAIT, Duration::from_secs(1)).await;
        let mut parked = Vec::new();
        for _ in 0..3 {
            let mut stream = server.connect().await;
            stream.write_all(QUICK).await.unwrap();
            assert_kept_alive(&response(&mut stream).await, "quick");
            parked.push(stream);
        }
        tokio::time::sleep(PARKED).await;
        assert_eq!(server.parked.get(), 3);
        let mut busy = server.connect().await;
        busy.write_all(SLOW).await.unwrap();
        tokio::time::sleep(PARK_AFTER).await;

        let began = Instant::now();
        let stopping = tokio::spawn(async move {
            let drain = server.shut_down().await;
            (drain, server.parked.get())
        });
        for stream in &mut parked {
            let mut rest = Vec::new();
            tokio::time::timeout(Duration::from_millis(500), stream.read_to_end(&mut rest))
                .await
                .expect("a parked connection is closed at once")
                .unwrap();
            assert!(rest.is_empty(), "{rest:?}");
        }
        let (head, body) = response(&mut busy).await;
        assert!(head.starts_with("http/1.1 200 ok"), "{head}");
        assert_eq!(body, "slow");
        let (drain, left) = stopping.await.unwrap();
        assert!(drain.complete);
        assert!(began.elapsed() < Duration::from_secs(2), "{:?}", began.elapsed());
        assert_eq!(left, 0);
    }

    #[test]
    fn http1_requests_skip_protocol_detection_and_a_possible_h2_preface_does_not() {
        for http1 in [&b"GET / HTTP/1.1\r\n"[..], b"POST /function/f HTTP/1.1\r\n", b"PO", b"G", b"PRI * HTTP/1.1"] {
            assert_eq!(opening_of(http1), Opening::Http1, "{:?}", String::from_utf8_lossy(http1));
        }
        for either in [&b""[..], b"P", b"PRI", b"PRI * HTTP/2.0\r\n", H2_PREFACE] {
            assert_eq!(opening_of(either), Opening::Either, "{:?}", String::from_utf8_lossy(either));
        }
    }
}
