//! Parking idle HTTP/1 keep-alive connections.
//!
//! hyper's HTTP/1 server allocates a read buffer and a write buffer of
//! 8 KiB each when a connection starts and keeps them for the connection's
//! life (hyper 1.x has no setting to release them while idle), so every
//! idle keep-alive connection held about 11 KiB (BENCHMARKS.md, "11. Faults
//! and floods"). [`serve`] hands a connection that has been idle for
//! [`PARK_AFTER`] back from hyper (a graceful shutdown of an idle hyper
//! connection whose I/O shutdown is skipped, then `into_parts`) and holds
//! only the bare socket until it is readable again; then a new hyper
//! connection serves it. hyper's buffers, its task state and its header
//! timer are freed in between.
//!
//! Idleness is known from two wrappers on the per-call path: the service
//! counts what is alive of each call (the request body until it ends or is
//! dropped, the call itself, the response body until it ends or is
//! dropped), and the I/O notes whether bytes were read since the count last
//! fell to zero and whether the last write was blocked. A connection is
//! parked only when nothing of a call is alive, no byte of a next request
//! was read and no response bytes wait for the client: then hyper is
//! between requests, so its graceful shutdown closes it at once instead of
//! adding `Connection: close` to a response. Bytes hyper had read ahead
//! (pipelining) are handed to the next hyper connection first.
//!
//! The read timeout still counts from when the connection became idle
//! (give or take [`PARK_AFTER`], the granularity at which idleness is
//! seen): a parked connection is closed when it has not become readable by
//! then, and a resumed one when its next request's head has not arrived
//! by then, so a parked client gets no fresh header timer.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::Router;
use bytes::{Buf, Bytes};
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use pin_project_lite::pin_project;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How long an HTTP/1 connection stays idle (no call alive, no byte read)
/// in hyper before it is parked; idleness is checked at this period, so a
/// connection is parked after between one and two of it.
///
/// Chosen by measurement (BENCHMARKS.md, "11. Faults and floods"): a
/// connection keeps hyper's buffers until it is parked, so the longer the
/// delay, the more of a flood of new connections hold them at once. With
/// 10,000 connections opened in 2.5 to 8 s that each make one call and stay
/// idle, the gateway's RSS peaked at +28 MiB with 100 ms, +31 to +44 MiB
/// with 250 ms and +60 to +64 MiB with 500 ms (2.5 to 3.5 KiB per parked
/// connection afterwards with each). A client that pauses longer than this
/// between calls gets a new hyper connection for its next call: parking and
/// resuming cost about 24,000 instructions (callgrind), against the pause of
/// at least 100 ms they follow; one that pauses less keeps its hyper
/// connection.
pub const PARK_AFTER: Duration = Duration::from_millis(100);

/// How long an idle connection stays in hyper while more than the crowd
/// ([`CROWD`] by default, `ServeOptions::crowd`) are in hyper at once;
/// idleness is then checked at this period.
///
/// A flood of new connections that each make a call and go idle is held in
/// hyper for [`PARK_AFTER`] each; opened faster than they are parked (10,000
/// in under half a second on an idle machine), nearly all of them held
/// hyper's buffers at once and the gateway's RSS peaked at +65 to +73 MiB
/// (BENCHMARKS.md, "11. Faults and floods"). While crowded, a connection
/// idle for this long is parked instead: clients that pause between calls
/// pay a park and resume sooner, only while that many connections are open
/// and not parked.
pub const PARK_AFTER_CROWDED: Duration = Duration::from_millis(10);

/// Connections in hyper (open and not parked: about 11 KiB each) beyond
/// which idle ones are parked after [`PARK_AFTER_CROWDED`]: about 6 MiB of
/// hyper's buffers.
pub const CROWD: usize = 512;

/// The service every parked-and-resumed connection is served by.
pub(super) type Routes = TowerToHyperService<Router>;

/// What is known of one connection's activity, shared by the task, its I/O
/// and its calls (all on the connection's task: relaxed atomics).
#[derive(Debug, Default)]
struct Activity {
    /// Calls, request bodies and response bodies alive.
    live: AtomicUsize,
    /// `live` fell to zero since the task last looked.
    went_idle: AtomicBool,
    /// Bytes were read since `live` last fell to zero (or since the hyper
    /// connection started).
    read: AtomicBool,
    /// The last write or flush could not complete: response bytes wait in
    /// hyper's buffer.
    write_blocked: AtomicBool,
    /// The connection is being parked: its I/O shutdown is skipped.
    parking: AtomicBool,
}

/// One alive part of a call: counted in [`Activity::live`] until dropped.
#[derive(Debug)]
struct Live(Arc<Activity>);

impl Live {
    fn new(activity: &Arc<Activity>) -> Live {
        activity.live.fetch_add(1, Ordering::Relaxed);
        Live(activity.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.read.store(false, Ordering::Relaxed);
            self.0.went_idle.store(true, Ordering::Relaxed);
        }
    }
}

pin_project! {
    /// A request or response body counted as alive until it ends or is
    /// dropped.
    #[derive(Debug)]
    pub(super) struct Counted<B> {
        #[pin]
        inner: B,
        live: Option<Live>,
    }
}

impl<B: Body> Counted<B> {
    fn new(inner: B, activity: &Arc<Activity>) -> Counted<B> {
        let live = (!inner.is_end_stream()).then(|| Live::new(activity));
        Counted { inner, live }
    }
}

impl<B: Body> Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let frame = this.inner.poll_frame(cx);
        if matches!(frame, Poll::Ready(None | Some(Err(_)))) {
            *this.live = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The hyper service of one connection: counts each call, its request body
/// and its response body in the connection's [`Activity`].
#[derive(Debug)]
struct Calls {
    inner: Routes,
    activity: Arc<Activity>,
}

impl hyper::service::Service<Request<Incoming>> for Calls {
    type Response = Response<Counted<axum::body::Body>>;
    type Error = std::convert::Infallible;
    type Future = Call<<Routes as hyper::service::Service<Request<Counted<Incoming>>>>::Future>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let live = Live::new(&self.activity);
        let request = request.map(|body| Counted::new(body, &self.activity));
        Call { inner: self.inner.call(request), live: Some(live) }
    }
}

pin_project! {
    /// One call's future: alive until it answers, then its liveness moves to
    /// the response body.
    struct Call<F> {
        #[pin]
        inner: F,
        live: Option<Live>,
    }
}

impl<F, B, E> Future for Call<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<Counted<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let answer = ready!(this.inner.poll(cx));
        let live = this.live.take();
        Poll::Ready(answer.map(|response| {
            response.map(|inner| {
                // A body that is already over keeps nothing alive.
                let live = live.filter(|_| !inner.is_end_stream());
                Counted { inner, live }
            })
        }))
    }
}

/// A connection's socket as hyper sees it: bytes hyper had read ahead come
/// first, reads and blocked writes are noted in [`Activity`], and the
/// shutdown is skipped while parking.
#[derive(Debug)]
struct Io {
    stream: TcpStream,
    /// Read before and not served yet: given to hyper before the socket.
    ahead: Bytes,
    activity: Arc<Activity>,
}

impl AsyncRead for Io {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.ahead.is_empty() {
            let n = this.ahead.len().min(buf.remaining());
            buf.put_slice(&this.ahead[..n]);
            this.ahead.advance(n);
            this.activity.read.store(true, Ordering::Relaxed);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.read.store(true, Ordering::Relaxed);
        }
        read
    }
}

impl Io {
    /// Notes whether a write or flush is left waiting for the client.
    fn wrote<T>(&self, poll: Poll<T>) -> Poll<T> {
        self.activity.write_blocked.store(poll.is_pending(), Ordering::Relaxed);
        poll
    }
}

impl AsyncWrite for Io {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.wrote(poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.wrote(poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_flush(cx);
        this.wrote(poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.activity.parking.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

/// What [`serve`] needs besides the socket.
pub(super) struct Settings<'a> {
    /// The HTTP/1 connection builder (header timeout, buffer limit).
    pub builder: &'a http1::Builder,
    /// The read timeout: how long a connection may stay idle, and take to
    /// send a request head; `None` for no limit.
    pub read_timeout: Option<Duration>,
    /// Connections parked now.
    pub parked: &'a Gauge,
    /// Connections in hyper now (open and not parked), across every
    /// connection [`serve`] serves.
    pub in_hyper: &'a AtomicUsize,
    /// Beyond this many connections in hyper, idle ones are parked after
    /// [`PARK_AFTER_CROWDED`] instead of [`PARK_AFTER`].
    pub crowd: usize,
}

impl Settings<'_> {
    /// How long a connection idle from now on stays in hyper.
    fn park_after(&self) -> Duration {
        if self.in_hyper.load(Ordering::Relaxed) > self.crowd {
            PARK_AFTER_CROWDED
        } else {
            PARK_AFTER
        }
    }
}

/// One connection counted in [`Settings::in_hyper`] while it is alive.
struct InHyper<'a>(&'a AtomicUsize);

impl<'a> InHyper<'a> {
    fn new(count: &'a AtomicUsize) -> InHyper<'a> {
        count.fetch_add(1, Ordering::Relaxed);
        InHyper(count)
    }
}

impl Drop for InHyper<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The hyper connection of one stretch between parkings: boxed, so that a
/// parked connection's task does not keep room for it.
type Hyper = Pin<Box<http1::Connection<TokioIo<Io>, Calls>>>;

/// Serves an HTTP/1 connection until it closes, parking it whenever it is
/// idle for [`PARK_AFTER`] ([`PARK_AFTER_CROWDED`] while the connections
/// in hyper are more than the crowd); once `stop` reports shutdown (its sender is
/// dropped), a parked connection is closed at once and an active one after
/// its call in progress, if any.
pub(super) async fn serve(
    stream: TcpStream,
    service: Routes,
    settings: Settings<'_>,
    stop: &mut tokio::sync::watch::Receiver<()>,
) -> Result<(), hyper::Error> {
    let activity = Arc::new(Activity::default());
    let mut stream = stream;
    let mut service = service;
    let mut ahead = Bytes::new();
    // The last time a call was seen alive (or the connection started): the
    // read timeout counts from it while nothing is alive.
    let mut idle_from = Instant::now();
    let deadline = |idle_from: Instant| settings.read_timeout.map(|timeout| idle_from + timeout);
    let timer = tokio::time::sleep(PARK_AFTER);
    tokio::pin!(timer);
    loop {
        activity.read.store(!ahead.is_empty(), Ordering::Relaxed);
        activity.write_blocked.store(false, Ordering::Relaxed);
        activity.parking.store(false, Ordering::Relaxed);
        let in_hyper = InHyper::new(settings.in_hyper);
        let io = TokioIo::new(Io { stream, ahead, activity: activity.clone() });
        let mut hyper: Hyper =
            Box::pin(settings.builder.serve_connection(io, Calls { inner: service, activity: activity.clone() }));
        let mut stopping = false;
        let mut parking = false;
        timer.as_mut().reset(next_check(Instant::now(), settings.park_after(), deadline(idle_from)));
        loop {
            tokio::select! {
                biased;
                ended = hyper.as_mut() => {
                    // A connection that failed while being parked is not
                    // kept.
                    if parking && !stopping && ended.is_ok() {
                        break;
                    }
                    return ended;
                }
                _ = stop.changed(), if !stopping => {
                    stopping = true;
                    activity.parking.store(false, Ordering::Relaxed);
                    if !parking {
                        hyper.as_mut().graceful_shutdown();
                    }
                }
                () = &mut timer, if !stopping && !parking => {
                    let now = Instant::now();
                    let park_after = settings.park_after();
                    if activity.went_idle.swap(false, Ordering::Relaxed) || activity.live.load(Ordering::Relaxed) > 0 {
                        idle_from = now;
                    } else if deadline(idle_from).is_some_and(|deadline| now >= deadline) {
                        // As hyper's header timer would: no request within
                        // the read timeout of becoming idle.
                        return Ok(());
                    } else if !activity.read.load(Ordering::Relaxed)
                        && !activity.write_blocked.load(Ordering::Relaxed)
                        && now >= idle_from + park_after
                    {
                        // hyper is between requests: its graceful shutdown
                        // ends the connection at once, the I/O left open.
                        parking = true;
                        activity.parking.store(true, Ordering::Relaxed);
                        hyper.as_mut().graceful_shutdown();
                        continue;
                    }
                    timer.as_mut().reset(next_check(now, park_after, deadline(idle_from)));
                }
            }
        }
        // Taken apart here, so that nothing of hyper's (its read buffer is
        // behind `read_buf` even when that is empty) outlives the parking.
        (stream, service, ahead) = {
            let parts = Pin::into_inner(hyper).into_parts();
            let io = parts.io.into_inner();
            // What hyper had read and not served, then what it had not read
            // yet of what came before.
            let ahead = match (parts.read_buf.is_empty(), io.ahead.is_empty()) {
                (true, true) => Bytes::new(),
                (false, true) => parts.read_buf,
                (true, false) => io.ahead,
                (false, false) => [parts.read_buf, io.ahead].concat().into(),
            };
            (io.stream, parts.service.inner, ahead)
        };
        drop(in_hyper);
        if !ahead.is_empty() {
            continue;
        }
        settings.parked.inc();
        tracing::trace!("parked an idle connection");
        let parked_until = deadline(idle_from);
        if let Some(until) = parked_until {
            timer.as_mut().reset(until);
        }
        let resume = tokio::select! {
            readable = stream.readable() => readable.is_ok(),
            _ = stop.changed() => false,
            () = &mut timer, if parked_until.is_some() => false,
        };
        settings.parked.dec();
        if !resume {
            return Ok(());
        }
    }
}

/// When to look at a connection again: after `park_after`, or at its
/// read deadline if that comes first.
fn next_check(now: Instant, park_after: Duration, deadline: Option<Instant>) -> Instant {
    let next = now + park_after;
    deadline.map_or(next, |deadline| next.min(deadline.max(now)))
}
