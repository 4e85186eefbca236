//! Scenario 8: forwarding to a function instance the way the Swarm and
//! Cattle providers do, before and after `faas-upstream`: a new
//! connection per call (how both forwarded before) against the shared
//! pooled client (how they forward now), each a forwarder in this process
//! in front of the same native function, with the function called
//! directly as the baseline.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use faas_core::Body;
use faas_upstream::{Attempt, Call, Upstream};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use super::{fmt, start_direct, Ctx};
use crate::api::wait_listening;
use crate::measure::{alternate, Subject};
use crate::report::{table, Section, Target};
use crate::Res;

const CONCURRENCY: [usize; 2] = [1, 16];

/// How a forwarder reaches the function.
#[derive(Clone, Copy)]
enum Way {
    /// A TCP connection and HTTP/1 handshake per call: the Swarm and
    /// Cattle providers' path before `faas-upstream`.
    ConnectionPerCall,
    /// `faas_upstream::Upstream`: pooled keep-alive connections.
    Pooled,
}

/// One call forwarded to `target` the way `way` says.
async fn forward(way: Way, upstream: &Upstream, target: SocketAddr, request: Request<Body>) -> Response<Body> {
    let failed = |e: String| {
        let mut response = Response::new(Body::from(e));
        *response.status_mut() = StatusCode::BAD_GATEWAY;
        response
    };
    match way {
        Way::Pooled => {
            let mut call = Call::new("echo", request);
            match upstream.send(&mut call, &target, None).await {
                Ok(Attempt::Answered(response)) => response,
                Ok(Attempt::Refused(reason)) => failed(reason),
                Err(e) => failed(e.to_string()),
            }
        }
        Way::ConnectionPerCall => {
            let (mut parts, body) = request.into_parts();
            parts.uri = parts.uri.path_and_query().map_or("/", |p| p.as_str()).parse().unwrap_or_default();
            faas_core::strip_hop_by_hop(&mut parts.headers);
            let stream = match TcpStream::connect(target).await {
                Ok(stream) => stream,
                Err(e) => return failed(e.to_string()),
            };
            let _ = stream.set_nodelay(true);
            let (mut sender, connection) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
                Ok(pair) => pair,
                Err(e) => return failed(e.to_string()),
            };
            tokio::spawn(connection);
            match sender.send_request(Request::from_parts(parts, body)).await {
                Ok(response) => response.map(Body::new),
                Err(e) => failed(e.to_string()),
            }
        }
    }
}

/// Serves a forwarder to `target` on a loopback port, in this process.
async fn forwarder(way: Way, target: SocketAddr) -> Res<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let upstream = Upstream::new();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let upstream = upstream.clone();
                    async move { Ok::<_, Infallible>(forward(way, &upstream, target, request.map(Body::new)).await) }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok(addr)
}

pub async fn run(ctx: &Ctx) -> Res<Section> {
    let (echo, port) = start_direct(&ctx.bins.echo.display().to_string(), &ctx.work.join("upstream-echo.log"), "echo")?;
    let direct = SocketAddr::from(([127, 0, 0, 1], port));
    wait_listening(direct, Duration::from_secs(20)).await?;
    let before = forwarder(Way::ConnectionPerCall, direct).await?;
    let after = forwarder(Way::Pooled, direct).await?;
    let subjects = [
        ("(a) direct", Subject::http_served_by(direct, "/", echo.pid())),
        ("(b) connection per call", Subject::http_served_by(before, "/", echo.pid())),
        ("(c) faas-upstream pooled", Subject::http_served_by(after, "/", echo.pid())),
    ];
    let mut rows = Vec::new();
    let mut ratio_rows = Vec::new();
    let mut targets = Vec::new();
    for c in CONCURRENCY {
        eprintln!("upstream forwarding, concurrency {c}");
        let m = alternate(&subjects, ctx.plan(c), ctx.rounds).await;
        rows.extend(
            subjects.iter().zip(&m).map(|((label, _), r)| [vec![c.to_string(), label.to_string()], r.cells()].concat()),
        );
        let (a, b, p) = (&m[0], &m[1], &m[2]);
        let cpu = |r: &crate::measure::Measured| r.cpu_per_call().0.unwrap_or(f64::NAN);
        ratio_rows.push(vec![
            c.to_string(),
            fmt(b.rps() / a.rps(), 2),
            fmt(p.rps() / a.rps(), 2),
            fmt(p.rps() / b.rps(), 2),
            fmt(cpu(p) / cpu(b), 2),
        ]);
        targets.push(Target::at_least(
            &format!("pooled ÷ connection-per-call throughput at concurrency {c}"),
            1.0,
            p.rps() / b.rps(),
            "×",
        ));
    }
    let mut body = String::from(
        "The Swarm and Cattle providers forward a call to one instance of the function. Before \
         `faas-upstream` each call opened its own TCP connection and HTTP/1 handshake; now both go \
         through its pooled keep-alive client (as k8s and the watchdog's http mode do). Here a native \
         echo function (`bench-echo`) is called (a) directly, (b) through a forwarder in the harness \
         process that opens a connection per call, and (c) through a forwarder using \
         `faas_upstream::Upstream`; (b) and (c) are the providers' forwarding step alone (the target \
         lookup is cached in both). CPU µs per call: the machine, the harness (load generator and both \
         forwarders) and the function process.\n\n",
    );
    body.push_str(&table(
        &["concurrency", "path", "req/s", "p50 ms", "p99 ms", "CPU µs/call: machine", "harness", "function", "errors"],
        &rows,
    ));
    body.push_str("\nRatios in the same run (throughput, and machine CPU per call):\n\n");
    body.push_str(&table(
        &["concurrency", "(b)/(a) req/s", "(c)/(a) req/s", "(c)/(b) req/s", "(c)/(b) CPU µs"],
        &ratio_rows,
    ));
    drop(echo);
    Ok(Section { title: "8. Forwarding to an instance: connection per call vs faas-upstream".into(), body, targets })
}
