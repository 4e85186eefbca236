//! Scenario 1: warm invocations in http mode, a native and a Python
//! function, each called directly, through `fwatchdog` and through the
//! gateway on the local provider.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use super::{fmt, start_direct, start_watchdog, Ctx};
use crate::api::{deployment, wait_listening, Api};
use crate::measure::{alternate, Subject, CELL_COLUMNS};
use crate::procs::{Gateway, Proc};
use crate::report::{table, Section, Target};
use crate::Res;

const CONCURRENCY: [usize; 3] = [1, 16, 64];

struct Function {
    label: &'static str,
    name: &'static str,
    command: String,
    /// Kept running for the scenario.
    _procs: Vec<Proc>,
    direct: SocketAddr,
    watchdog: SocketAddr,
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

async fn healthy(addr: SocketAddr) -> Res<()> {
    wait_listening(addr, Duration::from_secs(20)).await?;
    let api = Api::new(addr);
    let started = std::time::Instant::now();
    loop {
        if let Ok((status, _)) = api.request(http::Method::GET, "/_/health", Bytes::new()).await {
            if status == 200 {
                return Ok(());
            }
        }
        if started.elapsed() > Duration::from_secs(20) {
            return Err(format!("fwatchdog on {addr} never became healthy").into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn function(ctx: &Ctx, label: &'static str, name: &'static str, command: String) -> Res<Function> {
    let (direct_proc, direct_port) = start_direct(&command, &ctx.work.join(format!("{name}-direct.log")), label)?;
    let (watchdog_proc, watchdog_port) =
        start_watchdog(&ctx.bins, &command, "http", &ctx.work.join(format!("{name}-fwatchdog.log")))?;
    wait_listening(local(direct_port), Duration::from_secs(20)).await?;
    healthy(local(watchdog_port)).await?;
    Ok(Function {
        label,
        name,
        command,
        _procs: vec![direct_proc, watchdog_proc],
        direct: local(direct_port),
        watchdog: local(watchdog_port),
    })
}

pub async fn run(ctx: &Ctx) -> Res<Section> {
    let mut functions =
        vec![function(ctx, "native (hyper echo)", "echo-native", ctx.bins.echo.display().to_string()).await?];
    let mut notes = String::new();
    match ctx.python_command()? {
        Some(command) => functions.push(function(ctx, "Python http.server", "echo-python", command).await?),
        None => notes.push_str("Python is not installed: the Python function was skipped.\n\n"),
    }
    let gateway = Gateway::start(&ctx.bins, &ctx.work, "gateway-invoke")?;
    let api = Api::new(gateway.addr);
    let payload = Bytes::from_static(b"ready?");
    for f in &functions {
        // One replica, as on the direct and fwatchdog paths: at c=64 the
        // autoscaler would otherwise start a second process.
        let mut spec = deployment(f.name, &f.command, "http", Some(1));
        spec["labels"]["com.openfaas.scale.max"] = "1".into();
        api.deploy(&spec).await?;
        api.first_ok(f.name, &payload, Duration::from_secs(20)).await?;
    }

    let mut rows = Vec::new();
    let mut ratio_rows = Vec::new();
    let mut targets = Vec::new();
    for f in &functions {
        let path = format!("/function/{}", f.name);
        let subjects = [
            ("(a) direct", Subject::http_served_by(f.direct, "/", f._procs[0].pid())),
            ("(b) fwatchdog", Subject::http_served_by(f.watchdog, "/", f._procs[1].pid())),
            ("(c) gateway + local provider", Subject::http_served_by(gateway.addr, &path, gateway.pid())),
        ];
        let mut worst_ratio = f64::INFINITY;
        for c in CONCURRENCY {
            eprintln!("warm invoke, {}, concurrency {c}", f.label);
            let m = alternate(&subjects, ctx.plan(c), ctx.rounds).await;
            for ((label, _), r) in subjects.iter().zip(&m) {
                rows.push([vec![f.label.to_owned(), c.to_string(), label.to_string()], r.cells()].concat());
            }
            let (a, b, g) = (&m[0], &m[1], &m[2]);
            let watchdog_ratio = b.rps() / a.rps();
            let gateway_ratio = g.rps() / a.rps();
            worst_ratio = worst_ratio.min(gateway_ratio);
            ratio_rows.push(vec![
                f.label.to_owned(),
                c.to_string(),
                fmt(watchdog_ratio, 2),
                fmt(gateway_ratio, 2),
                fmt(b.p99() - a.p99(), 3),
                fmt(g.p99() - a.p99(), 3),
            ]);
            if c == 16 {
                targets.push(Target::at_most(
                    &format!("{}: p99 added by the gateway at concurrency 16", f.label),
                    1.0,
                    g.p99() - a.p99(),
                    " ms",
                ));
            }
        }
        let goal = if f.name == "echo-python" { 0.90 } else { 0.60 };
        targets.push(Target::at_least(
            &format!("{}: gateway ÷ direct throughput (lowest of c=1, 16, 64)", f.label),
            goal,
            worst_ratio,
            "×",
        ));
    }

    let mut body = String::from(
        "Each function is an HTTP server on a loopback port, called (a) directly, (b) through a standalone \
         `fwatchdog` in http mode and (c) through `faas-gateway` with the local provider (its in-process \
         watchdog). Every call POSTs a 49-byte payload on a keep-alive HTTP/1 connection (one per \
         concurrent caller) and expects 200 with the payload echoed. The load generator runs in the \
         harness process on the same 2 cores, so every subject shares the CPU with it alike. The gateway \
         runs its function at one replica (`com.openfaas.scale.min` = `max` = 1), as the other paths do.\n\n\
         CPU time per call (µs, user + system, over the whole run, warm-up included) is given for the \
         machine (all cores), the harness (the load generator) and the process answering the harness: \
         (a) the function itself, (b) the `fwatchdog` process, (c) the gateway process (their function \
         processes not included). Where the machine's CPU is the limit, throughput is about 2 cores ÷ \
         the machine's µs per call, so these columns show where each path's time goes.\n\n",
    );
    body.push_str(&notes);
    body.push_str(&table(&[&["function", "concurrency", "path"][..], &CELL_COLUMNS].concat(), &rows));
    body.push_str("\nRatios (throughput ÷ direct) and p99 latency added over direct:\n\n");
    body.push_str(&table(
        &["function", "concurrency", "(b)/(a)", "(c)/(a)", "(b) added p99 ms", "(c) added p99 ms"],
        &ratio_rows,
    ));
    drop(gateway);
    Ok(Section { title: "1. Warm invoke, http mode".into(), body, targets })
}
