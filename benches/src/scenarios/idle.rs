//! Scenario 6: the gateway (and a standalone fwatchdog) at rest.

use std::time::Duration;

use super::{start_watchdog, Ctx};
use crate::api::wait_listening;
use crate::procs::{cpu_time, footprint, Gateway};
use crate::report::{table, Section};
use crate::stats::ms;
use crate::Res;

/// How long the processes rest before and while being looked at.
const REST: Duration = Duration::from_secs(2);

pub async fn run(ctx: &Ctx) -> Res<Section> {
    eprintln!("idle footprint");
    let gateway = Gateway::start(&ctx.bins, &ctx.work, "gateway-idle")?;
    let echo = ctx.bins.echo.display().to_string();
    let (watchdog, port) = start_watchdog(&ctx.bins, &echo, "http", &ctx.work.join("idle-fwatchdog.log"))?;
    wait_listening(std::net::SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(20)).await?;
    tokio::time::sleep(REST).await;
    let mut rows = Vec::new();
    for (what, pid) in [
        ("faas-gateway, local provider, no functions", gateway.pid()),
        ("fwatchdog, http mode, one native instance", watchdog.pid()),
    ] {
        let before = cpu_time(pid)?;
        tokio::time::sleep(REST).await;
        let cpu = cpu_time(pid)?.saturating_sub(before);
        let f = footprint(pid)?;
        rows.push(vec![
            what.to_owned(),
            format!("{:.1}", f.rss_kb as f64 / 1024.0),
            f.threads.to_string(),
            format!("{:.0}", ms(cpu) / REST.as_secs_f64()),
        ]);
    }
    let mut body = String::from(
        "Resident memory and threads after resting 2 s, and the CPU used over the next 2 s (ms per second). \
         The fwatchdog figure is the watchdog process alone, not its function.\n\n",
    );
    body.push_str(&table(&["process", "RSS MiB", "threads", "idle CPU ms/s"], &rows));
    Ok(Section { title: "6. Idle footprint".into(), body, targets: Vec::new() })
}
