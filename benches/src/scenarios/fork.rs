//! Scenario 2: fork mode, `cat` per request through the gateway (and
//! through `fwatchdog`) against the harness spawning `cat` itself.

use std::time::Duration;

use bytes::Bytes;

use super::{fmt, start_watchdog, Ctx};
use crate::api::{deployment, wait_listening, Api};
use crate::measure::{alternate, Subject};
use crate::procs::Gateway;
use crate::report::{table, Section, Target};
use crate::Res;

const CONCURRENCY: [usize; 2] = [1, 16];

pub async fn run(ctx: &Ctx) -> Res<Section> {
    let cat = ctx.bins.cat.display().to_string();
    let gateway = Gateway::start(&ctx.bins, &ctx.work, "gateway-fork")?;
    let api = Api::new(gateway.addr);
    // Fork mode runs as many calls at once as replicas.
    api.deploy(&deployment("cat", &cat, "streaming", Some(16))).await?;
    api.first_ok("cat", &Bytes::from_static(b"ready?"), Duration::from_secs(20)).await?;
    let (_watchdog, port) = start_watchdog(&ctx.bins, &cat, "streaming", &ctx.work.join("cat-fwatchdog.log"))?;
    let watchdog_addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    wait_listening(watchdog_addr, Duration::from_secs(20)).await?;

    let subjects = [
        ("harness spawns cat", Subject::Spawn { cat: ctx.bins.cat.clone() }),
        ("fwatchdog, streaming", Subject::http(watchdog_addr, "/")),
        ("gateway + local provider", Subject::http(gateway.addr, "/function/cat")),
    ];
    let mut rows = Vec::new();
    let mut ratio_rows = Vec::new();
    let mut worst = f64::INFINITY;
    for c in CONCURRENCY {
        eprintln!("fork mode, concurrency {c}");
        let m = alternate(&subjects, ctx.plan(c), ctx.rounds).await;
        for ((label, _), r) in subjects.iter().zip(&m) {
            rows.push(vec![
                c.to_string(),
                label.to_string(),
                r.rps_text(),
                fmt(r.p50(), 3),
                fmt(r.p99(), 3),
                r.errors_text(),
            ]);
        }
        let ratio = m[2].rps() / m[0].rps();
        worst = worst.min(ratio);
        ratio_rows.push(vec![c.to_string(), fmt(m[1].rps() / m[0].rps(), 2), fmt(ratio, 2)]);
    }
    let mut body = String::from(
        "A process per call: `cat` gets the 49-byte payload on stdin and its stdout is the answer \
         (streaming mode, 16 replicas so 16 calls run at once). The baseline is the harness itself \
         spawning `cat` with tokio, piping the same payload and reading it back: the limit of \
         fork-per-request on this machine.\n\n",
    );
    body.push_str(&table(&["concurrency", "path", "req/s", "p50 ms", "p99 ms", "errors"], &rows));
    body.push_str("\nRatios (throughput ÷ the harness's spawn loop):\n\n");
    body.push_str(&table(&["concurrency", "fwatchdog", "gateway"], &ratio_rows));
    let targets = vec![Target::at_least("fork mode: gateway ÷ spawn loop (lowest of c=1, 16)", 0.85, worst, "×")];
    Ok(Section { title: "2. Fork mode".into(), body, targets })
}
