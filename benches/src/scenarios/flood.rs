//! Scenario 11, faults and floods (the fault matrix's load rows): 10,000
//! idle keep-alive connections plus 200 slow-loris clients held against
//! the gateway while normal calls are measured, connections beyond
//! `--max-connections`, and a 10 GiB upload against `--max-body`
//! ([`super::upload`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::{fmt, upload, Ctx};
use crate::api::{deployment, Api};
use crate::load::{EchoCaller, Plan};
use crate::procs::{footprint, open_fds, raise_fd_limit, Gateway, RssSampler};
use crate::report::{table, Section, Target};
use crate::Res;

/// Idle keep-alive connections held open.
const IDLE: usize = 10_000;
/// Slow-loris clients: each sends a header line every second, never
/// finishing its request head.
const LORIS: usize = 200;
/// Connections opened beyond the cap to see that they wait.
const OVERFLOW: usize = 1_000;
/// Room left under the cap for the measured callers.
const CALLERS: usize = 8;
/// The gateway's `--max-connections`: the flood and the callers fit.
const CAP: usize = IDLE + LORIS + 200;
/// Connections opened at once while building the flood.
const OPENING: usize = 200;
/// How long an idle or slow connection may go without a full request
/// head. Above the measurement so the flood is held throughout; at the
/// default (10 s) the gateway closes both kinds after 10 s.
const READ_TIMEOUT: &str = "120s";

/// Opens one connection and makes one keep-alive request on it; the
/// connection is then left idle.
async fn idle_connection(addr: SocketAddr) -> Result<TcpStream, String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: flood\r\n\r\n").await.map_err(|e| format!("write: {e}"))?;
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
        .await
        .map_err(|_| "no answer to /healthz in 30s".to_owned())?
        .map_err(|e| format!("read: {e}"))?;
    if !buf[..n].starts_with(b"HTTP/1.1 200") {
        return Err(format!("/healthz answered {:?}", String::from_utf8_lossy(&buf[..n.min(40)])));
    }
    Ok(stream)
}

/// Opens `count` idle keep-alive connections, [`OPENING`] at a time.
async fn open_idle(addr: SocketAddr, count: usize) -> Res<Vec<TcpStream>> {
    let mut out = Vec::with_capacity(count);
    let mut set = JoinSet::new();
    let mut started = 0;
    while out.len() < count {
        while started < count && set.len() < OPENING {
            set.spawn(idle_connection(addr));
            started += 1;
        }
        match set.join_next().await {
            Some(joined) => out.push(joined?.map_err(|e| format!("idle connection {}: {e}", out.len() + 1))?),
            None => break,
        }
    }
    Ok(out)
}

/// Slow-loris clients until `stop`: connect, send a request line, then one
/// header line a second; when the gateway closes the connection, count it
/// in `cut` and start again.
fn start_loris(addr: SocketAddr, stop: Arc<AtomicBool>, cut: Arc<AtomicU64>) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for client in 0..LORIS {
        let (stop, cut) = (stop.clone(), cut.clone());
        set.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut stream) = TcpStream::connect(addr).await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let mut line = 0u64;
                let mut head = b"POST /function/flood-echo HTTP/1.1\r\nHost: flood\r\n".to_vec();
                while !stop.load(Ordering::Relaxed) {
                    if stream.write_all(&head).await.is_err() {
                        cut.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    line += 1;
                    head = format!("X-Slow-{client}-{line}: a\r\n").into_bytes();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        });
    }
    set
}

/// Normal calls for [`measured`]: p50 and p99 in ms, calls, errors, first
/// error.
async fn measure_calls(ctx: &Ctx, addr: SocketAddr) -> (f64, f64, u64, u64, Option<String>) {
    let plan =
        Plan { concurrency: CALLERS, warmup: Duration::from_secs(1), duration: measured(ctx), max_calls: 2_000_000 };
    let mut outcome = crate::load::run(plan, |i| EchoCaller::new(addr, "/function/flood-echo", i)).await;
    (outcome.latency_ms(0.5), outcome.latency_ms(0.99), outcome.ok, outcome.errors, outcome.first_error.take())
}

/// How long normal calls are measured: `--secs`, at least 10 s.
fn measured(ctx: &Ctx) -> Duration {
    Duration::from_secs_f64(ctx.secs.max(10.0))
}

/// The peak of `pid`'s open fds, sampled until `stop`.
fn sample_fds(pid: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !stop.load(Ordering::Relaxed) {
            peak = peak.max(open_fds(pid).unwrap_or(0));
            std::thread::sleep(Duration::from_millis(200));
        }
        peak
    })
}

pub async fn run(ctx: &Ctx) -> Res<Section> {
    let limit = raise_fd_limit()?;
    let needed = (CAP + OVERFLOW + 500) as u64;
    if limit < needed {
        return Err(format!("the open-file limit is {limit} (hard), the flood needs about {needed}").into());
    }
    let cap = CAP.to_string();
    let flags = ["--max-connections", &cap, "--read-timeout", READ_TIMEOUT];
    let gateway = Gateway::start_with(&ctx.bins, &ctx.work, "gateway-flood", &flags)?;
    let api = Api::new(gateway.addr);
    let echo = ctx.bins.echo.display().to_string();
    api.deploy(&deployment("flood-echo", &echo, "http", Some(1))).await?;
    api.first_ok("flood-echo", &Bytes::from_static(b"ready?"), Duration::from_secs(20)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    eprintln!("flood: normal calls on a quiet gateway");
    let quiet = measure_calls(ctx, gateway.addr).await;
    let rest = footprint(gateway.pid())?;
    let rest_fds = open_fds(gateway.pid())?;

    let sampling = Arc::new(AtomicBool::new(false));
    let fds = sample_fds(gateway.pid(), sampling.clone());
    let rss = RssSampler::start(gateway.pid());
    eprintln!("flood: opening {IDLE} idle keep-alive connections");
    let opening = Instant::now();
    let idle = open_idle(gateway.addr, IDLE).await?;
    let opened_in = opening.elapsed();
    let (stop, cut) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let mut loris = start_loris(gateway.addr, stop.clone(), cut.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!("flood: normal calls with {IDLE} idle and {LORIS} slow-loris connections open");
    let flooded = measure_calls(ctx, gateway.addr).await;
    let during = footprint(gateway.pid())?;
    let during_fds = open_fds(gateway.pid())?;

    // Beyond the cap: the newcomers wait in the listen backlog; the
    // gateway's descriptors stay bounded.
    eprintln!("flood: {OVERFLOW} more connections beyond the cap");
    let mut overflow = JoinSet::new();
    let addr = gateway.addr;
    for _ in 0..OVERFLOW {
        overflow.spawn(async move { tokio::time::timeout(Duration::from_secs(4), idle_connection(addr)).await });
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let over_fds = open_fds(gateway.pid())?;
    let mut beyond = Vec::new();
    while let Some(joined) = overflow.join_next().await {
        if let Ok(Ok(Ok(stream))) = joined {
            beyond.push(stream);
        }
    }
    let served_beyond = beyond.len();
    drop(beyond);

    stop.store(true, Ordering::Relaxed);
    loris.abort_all();
    drop(idle);
    sampling.store(true, Ordering::Relaxed);
    let peak_fds = fds.join().unwrap_or(0).max(over_fds);
    let peak_kb = rss.finish();
    let growth_mb = peak_kb.saturating_sub(rest.rss_kb) as f64 / 1024.0;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = footprint(gateway.pid())?;
    let after_fds = open_fds(gateway.pid())?;
    let cut = cut.load(Ordering::Relaxed);

    let calls_row = |what: &str, m: &(f64, f64, u64, u64, Option<String>)| {
        vec![what.to_owned(), fmt(m.0, 2), fmt(m.1, 2), m.2.to_string(), m.3.to_string()]
    };
    let mut body = format!(
        "Gateway on the local provider with `--max-connections {CAP} --read-timeout {READ_TIMEOUT}` (the \
         read timeout raised so the flood is held for the whole measurement; at its default of 10 s the gateway \
         closes idle keep-alive and slow-header connections after 10 s). {IDLE} connections each make one \
         keep-alive request (`GET /healthz`) and then stay idle (opened in {:.1} s, {OPENING} at a time); \
         {LORIS} slow-loris clients each send a request line and then one header line per second, never \
         finishing. Meanwhile {CALLERS} callers POST to a native http-mode echo function for {} s on keep-alive \
         connections, as on the quiet gateway before. The machine is shared with other agents' builds and \
         tests: latencies are noisier than on an idle machine.\n\n",
        opened_in.as_secs_f64(),
        fmt(measured(ctx).as_secs_f64(), 0),
    );
    body.push_str(&table(
        &["normal calls", "p50 ms", "p99 ms", "ok", "errors"],
        &[calls_row("quiet gateway", &quiet), calls_row(&format!("{IDLE} idle + {LORIS} slow-loris open"), &flooded)],
    ));
    if let Some(e) = &flooded.4 {
        body.push_str(&format!("\nFirst error under the flood: {e}\n"));
    }
    body.push('\n');
    let mb = |kb: u64| format!("{:.1}", kb as f64 / 1024.0);
    body.push_str(&table(
        &["gateway", "RSS MiB", "open fds"],
        &[
            vec!["at rest, before".into(), mb(rest.rss_kb), rest_fds.to_string()],
            vec!["flood held".into(), mb(during.rss_kb), during_fds.to_string()],
            vec![format!("{OVERFLOW} more beyond the cap"), "-".into(), over_fds.to_string()],
            vec!["peak".into(), mb(peak_kb), peak_fds.to_string()],
            vec!["2 s after the flood closed".into(), mb(after.rss_kb), after_fds.to_string()],
        ],
    ));
    body.push_str(&format!(
        "\nOf the {OVERFLOW} connections opened beyond the cap, {served_beyond} were served within 3 s (the \
         cap left room for {} more); the rest waited in the listen backlog. Slow-loris connections cut by the \
         gateway during the run: {cut}.\n\n",
        CAP.saturating_sub(IDLE + LORIS + CALLERS)
    ));
    let mut targets = vec![
        Target::at_most("p99 of normal calls under the flood", 50.0, flooded.1, " ms"),
        Target::at_most("gateway RSS growth under the flood", 64.0, growth_mb, " MB"),
        Target::at_most(
            "gateway fds above rest, at most --max-connections",
            CAP as f64,
            peak_fds.saturating_sub(rest_fds) as f64,
            "",
        ),
        Target::at_most("errors of normal calls under the flood", 0.0, flooded.3 as f64, ""),
    ];
    drop(gateway);
    let (upload_body, upload_targets) = upload::run(ctx).await?;
    body.push_str(&upload_body);
    targets.extend(upload_targets);
    Ok(Section { title: "11. Faults and floods".into(), body, targets })
}
