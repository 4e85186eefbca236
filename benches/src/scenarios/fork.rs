//! Scenario 2: fork mode, `cat` per request through the gateway (and
//! through `fwatchdog`, and OpenFaaS's of-watchdog when given) against the
//! harness spawning `cat` itself.

use std::time::Duration;

use bytes::Bytes;

use super::{fmt, start_of_watchdog, start_watchdog, Ctx};
use crate::api::{deployment, wait_listening, Api};
use crate::measure::{alternate, Subject, CELL_COLUMNS};
use crate::procs::Gateway;
use crate::report::{table, Section, Target};
use crate::Res;

/// c=8 is issue 19's point of comparison with of-watchdog.
const CONCURRENCY: [usize; 3] = [1, 8, 16];

/// The concurrency at which `fwatchdog` ÷ of-watchdog is a target.
const OF_WATCHDOG_AT: usize = 8;

/// Measures the rows (of-watchdog's only with `ctx.of_watchdog`) in
/// alternation at each concurrency.
pub async fn run(ctx: &Ctx) -> Res<Section> {
    let cat = ctx.bins.cat.display().to_string();
    let gateway = Gateway::start(&ctx.bins, &ctx.work, "gateway-fork")?;
    let api = Api::new(gateway.addr);
    // Fork mode runs as many calls at once as replicas.
    api.deploy(&deployment("cat", &cat, "streaming", Some(16))).await?;
    api.first_ok("cat", &Bytes::from_static(b"ready?"), Duration::from_secs(20)).await?;
    let (watchdog, port) = start_watchdog(&ctx.bins, &cat, "streaming", &ctx.work.join("cat-fwatchdog.log"))?;
    let watchdog_addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    wait_listening(watchdog_addr, Duration::from_secs(20)).await?;

    let mut subjects = vec![
        ("harness spawns cat", Subject::Spawn { cat: ctx.bins.cat.clone() }),
        ("fwatchdog, streaming", Subject::http_served_by(watchdog_addr, "/", watchdog.pid())),
        ("gateway + local provider", Subject::http_served_by(gateway.addr, "/function/cat", gateway.pid())),
    ];
    // The same `cat`, payload and keep-alive callers as fwatchdog's row.
    let _of_watchdog = match &ctx.of_watchdog {
        Some(binary) => {
            let log = ctx.work.join("cat-of-watchdog.log");
            let (proc, port) = start_of_watchdog(binary, &cat, &ctx.work, &log)?;
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            wait_listening(addr, Duration::from_secs(20)).await?;
            subjects.push(("of-watchdog, streaming", Subject::http_served_by(addr, "/", proc.pid())));
            Some(proc)
        }
        None => None,
    };
    let mut rows = Vec::new();
    let mut ratio_rows = Vec::new();
    let mut worst = f64::INFINITY;
    let mut versus_of_watchdog = None;
    for c in CONCURRENCY {
        eprintln!("fork mode, concurrency {c}");
        let m = alternate(&subjects, ctx.plan(c), ctx.rounds).await;
        for ((label, _), r) in subjects.iter().zip(&m) {
            rows.push([vec![c.to_string(), label.to_string()], r.cells()].concat());
        }
        let ratio = m[2].rps() / m[0].rps();
        worst = worst.min(ratio);
        let mut ratios = vec![c.to_string(), fmt(m[1].rps() / m[0].rps(), 2), fmt(ratio, 2)];
        if let Some(of) = m.get(3) {
            let versus = m[1].rps() / of.rps();
            ratios.extend([fmt(of.rps() / m[0].rps(), 2), fmt(versus, 2)]);
            if c == OF_WATCHDOG_AT {
                versus_of_watchdog = Some(versus);
            }
        }
        ratio_rows.push(ratios);
    }
    let mut body = String::from(
        "A process per call: `cat` gets the 49-byte payload on stdin and its stdout is the answer \
         (streaming mode, 16 replicas so 16 calls run at once). The baseline is the harness itself \
         spawning `cat` with tokio, piping the same payload and reading it back: the limit of \
         fork-per-request on this machine.\n\n\
         CPU time per call (µs, user + system, over the whole run, warm-up included) is given for the \
         machine (all cores, other users' load included), the harness (the load generator, and for the \
         spawn loop its spawning) and the process answering the harness (the watchdog or the gateway; \
         the `cat` processes not included).\n\n",
    );
    if ctx.of_watchdog.is_some() {
        body.push_str(
            "OpenFaaS's of-watchdog (Go) runs the same `cat` in its streaming mode with its defaults \
             (it logs two lines a call to its stderr, a file here), called like fwatchdog.\n\n",
        );
    }
    body.push_str(&table(&[&["concurrency", "path"][..], &CELL_COLUMNS].concat(), &rows));
    body.push_str("\nRatios (throughput ÷ the harness's spawn loop, and fwatchdog's ÷ of-watchdog's):\n\n");
    let mut ratio_columns = vec!["concurrency", "fwatchdog", "gateway"];
    if ctx.of_watchdog.is_some() {
        ratio_columns.extend(["of-watchdog", "fwatchdog ÷ of-watchdog"]);
    }
    body.push_str(&table(&ratio_columns, &ratio_rows));
    let mut targets =
        vec![Target::at_least("fork mode: gateway ÷ spawn loop (lowest of c=1, 8, 16)", 0.85, worst, "×")];
    if let Some(versus) = versus_of_watchdog {
        let what = format!("fork mode: fwatchdog ÷ of-watchdog at c={OF_WATCHDOG_AT}");
        targets.push(Target::at_least(&what, 1.5, versus, "×"));
    }
    Ok(Section { title: "2. Fork mode".into(), body, targets })
}
