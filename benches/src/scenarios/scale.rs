//! Scenario 4: many functions on one gateway: deploy rate, list latency,
//! memory and idle CPU.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{fmt, Ctx};
use crate::api::{deployment, Api};
use crate::procs::{cpu_time, footprint, gateway_has_autoscale, Gateway};
use crate::report::{table, Section, Target};
use crate::stats::{median, ms};
use crate::Res;

/// Deploying clients at once.
const DEPLOYERS: usize = 8;
/// Timed listings.
const LISTINGS: usize = 10;

pub async fn run(ctx: &Ctx) -> Res<Section> {
    let n = ctx.functions;
    eprintln!("scale: deploying {n} functions at zero replicas");
    // A scaling layer does not let a function be deployed at zero replicas
    // (min is at least 1; zero is reached after idling): it is turned off
    // here so the functions hold no processes.
    let layer = gateway_has_autoscale(&ctx.bins);
    let flags: &[&str] = if layer { &["--no-autoscale"] } else { &[] };
    let gateway = Gateway::start_with(&ctx.bins, &ctx.work, "gateway-scale", flags)?;
    let api = Api::new(gateway.addr);
    let before = footprint(gateway.pid())?;
    let echo = ctx.bins.echo.display().to_string();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..DEPLOYERS {
        let (api, next, echo) = (api.clone(), next.clone(), echo.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), String>(());
                }
                let spec = deployment(&format!("fn-{i:05}"), &echo, "http", Some(0));
                api.deploy(&spec).await.map_err(|e| e.to_string())?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let deploy_time = started.elapsed();
    let rate = n as f64 / deploy_time.as_secs_f64();
    eprintln!("  deployed {n} in {:.1} s ({rate:.0}/s)", deploy_time.as_secs_f64());

    let mut listings = Vec::new();
    for _ in 0..LISTINGS {
        let (took, count) = api.list().await?;
        if count != n {
            return Err(format!("the list holds {count} functions, not {n}").into());
        }
        listings.push(ms(took));
    }
    let list_ms = median(&listings);
    // At rest with every function deployed: memory and CPU.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu_before = cpu_time(gateway.pid())?;
    let rest = Duration::from_secs(3);
    tokio::time::sleep(rest).await;
    let idle_cpu = ms(cpu_time(gateway.pid())?.saturating_sub(cpu_before)) / rest.as_secs_f64();
    let after = footprint(gateway.pid())?;
    let rss_mb = after.rss_kb as f64 / 1024.0;

    let rows = vec![
        vec!["deploy rate (8 clients, each deploy saved durably)".into(), format!("{rate:.0} functions/s")],
        vec![format!("time to deploy {n}"), format!("{:.1} s", deploy_time.as_secs_f64())],
        vec![
            format!("`GET /system/functions` ({n} functions), median of {LISTINGS}"),
            format!("{} ms", fmt(list_ms, 1)),
        ],
        vec!["gateway RSS before / after".into(), format!("{:.1} / {:.1} MiB", before.rss_kb as f64 / 1024.0, rss_mb)],
        vec!["gateway peak RSS".into(), format!("{:.1} MiB", after.hwm_kb as f64 / 1024.0)],
        vec!["gateway threads".into(), after.threads.to_string()],
        vec!["gateway idle CPU with every function deployed".into(), format!("{idle_cpu:.0} ms/s")],
    ];
    let mut body = format!(
        "{n} native http-mode functions deployed at zero replicas (label `com.openfaas.scale.min: 0`) \
         on one gateway with the local provider, 8 deploy requests at a time; then the list is read \
         {LISTINGS} times (time to the last byte; the count is checked).{}\n\n",
        if layer {
            " The gateway runs with `--no-autoscale`: its scaling layer refuses `com.openfaas.scale.min: 0` \
             (functions reach zero by idling), and deploying at 1 replica would start 10,000 processes."
        } else {
            ""
        }
    );
    body.push_str(&table(&["what", "measured"], &rows));
    let targets = vec![
        Target::at_most(&format!("list of {n} functions"), 20.0, list_ms, " ms"),
        Target::at_most(&format!("gateway RSS with {n} functions"), 100.0, rss_mb, " MB"),
    ];
    Ok(Section { title: "4. Scale".into(), body, targets })
}
