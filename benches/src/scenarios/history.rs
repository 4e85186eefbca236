//! Scenario 9: the memory of the per-function history behind the portal's
//! charts (`GET /system/metrics/history`), for many functions.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faas_core::{FunctionRef, FunctionStatus, DEFAULT_NAMESPACE};
use faas_gateway::history::{History, PASSES};

use crate::api::{deployment, Api};
use crate::procs::{footprint, Gateway};
use crate::report::{table, Section, Target};
use crate::Res;

use super::Ctx;

/// Clients deploying and calling at once.
const CLIENTS: usize = 8;

/// Runs `work(i)` for every i in 0..n, CLIENTS at a time.
async fn each<F, Fut>(n: usize, work: F) -> Res<()>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Res<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let work = Arc::new(work);
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (next, work) = (next.clone(), work.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), String>(());
                }
                work(i).await.map_err(|e| e.to_string())?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// One gateway with `n` functions, each called once, after two history
/// passes: its RSS in KiB.
async fn gateway_rss(ctx: &Ctx, label: &str, flags: &[&str]) -> Res<u64> {
    let n = ctx.functions;
    let gateway = Gateway::start_with(&ctx.bins, &ctx.work, label, flags)?;
    let api = Api::new(gateway.addr);
    let echo = ctx.bins.echo.display().to_string();
    let deployer = api.clone();
    each(n, move |i| {
        let (api, spec) = (deployer.clone(), deployment(&format!("fn-{i:05}"), &echo, "http", Some(0)));
        async move { api.deploy(&spec).await }
    })
    .await?;
    // At zero replicas without the scaling layer each call is a quick 503:
    // still a call the history counts (as an error).
    let caller = api.clone();
    each(n, move |i| {
        let api = caller.clone();
        async move { api.invoke(&format!("fn-{i:05}"), &Bytes::new()).await.map(|_| ()) }
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(11)).await;
    Ok(footprint(gateway.pid())?.rss_kb)
}

/// This process's RSS in KiB.
fn own_rss_kb() -> Res<u64> {
    Ok(footprint(std::process::id())?.rss_kb)
}

/// The history's worst case, in this process: `n` functions with a call
/// in every one of the window's passes. RSS growth in KiB.
fn full_window_kb(n: usize) -> Res<u64> {
    let before = own_rss_kb()?;
    let history = History::new(None);
    let functions: Vec<FunctionStatus> = (0..n)
        .map(|i| FunctionStatus {
            name: format!("fn-{i:05}"),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            replicas: 1,
            available_replicas: 1,
            ..Default::default()
        })
        .collect();
    let refs: Vec<FunctionRef> = functions.iter().map(|f| FunctionRef::new(&f.name, DEFAULT_NAMESPACE)).collect();
    for pass_index in 0..PASSES {
        for (i, function) in refs.iter().enumerate() {
            let elapsed = Duration::from_micros(200 + ((i as u64 * 7919 + u64::from(pass_index)) % 5000));
            history.record(function, if i % 50 == 0 { 500 } else { 200 }, elapsed);
        }
        let pass = history.begin_pass();
        history.sample(pass, DEFAULT_NAMESPACE, &functions);
    }
    drop(functions);
    let after = own_rss_kb()?;
    let kept = history.series(&refs[0]).map(|s| s.samples.iter().filter(|p| p.calls > 0).count()).unwrap_or(0);
    if kept != PASSES as usize {
        return Err(format!("the full window kept {kept} samples with calls, not {PASSES}").into());
    }
    Ok(after.saturating_sub(before))
}

pub async fn run(ctx: &Ctx) -> Res<Section> {
    let n = ctx.functions;
    eprintln!("history: {n} functions on a gateway without, then with, the history");
    let without =
        gateway_rss(ctx, "gateway-no-history", &["--provider", "local", "--no-autoscale", "--history", "false"])
            .await?;
    let with = gateway_rss(ctx, "gateway-history", &["--provider", "local", "--no-autoscale"]).await?;
    let growth_mb = with.saturating_sub(without) as f64 / 1024.0;
    eprintln!(
        "history: gateway RSS {:.1} MiB without, {:.1} MiB with the history: {growth_mb:+.1} MiB",
        without as f64 / 1024.0,
        with as f64 / 1024.0
    );
    eprintln!("history: {n} functions with a full 15 min window, in process");
    let full_mb = full_window_kb(n)? as f64 / 1024.0;
    let rows = vec![
        vec![format!("gateway RSS, {n} functions, `--history false`"), format!("{:.1} MiB", without as f64 / 1024.0)],
        vec![format!("gateway RSS, {n} functions, history on"), format!("{:.1} MiB", with as f64 / 1024.0)],
        vec!["difference".into(), format!("{growth_mb:+.1} MiB")],
        vec![
            format!("history of {n} functions with calls in all {PASSES} passes (in process)"),
            format!("{full_mb:.1} MiB"),
        ],
    ];
    let mut body = format!(
        "The portal's charts read `GET /system/metrics/history`: per function, 5 s samples over 15 minutes, \
         stored only for intervals with calls (12 bytes each) plus replica changes. Two gateways with the \
         local provider and `--no-autoscale` get {n} functions at zero replicas, each called once (a quick \
         503, counted as an error), then two history passes (11 s) before their RSS is read: one with \
         `--history false`, one with the history on. The worst case, every function called in every pass \
         of the window, is measured in the harness's process: the RSS growth of a `History` after \
         {PASSES} passes of {n} functions each with calls (what a gateway would hold after 15 busy minutes).\n\n"
    );
    body.push_str(&table(&["what", "measured"], &rows));
    let targets = vec![
        Target::at_most(&format!("RSS added by the history, {n} functions"), 30.0, growth_mb, " MB"),
        Target::at_most(&format!("history of {n} functions, full 15 min window"), 30.0, full_mb, " MB"),
    ];
    Ok(Section { title: "9. History".into(), body, targets })
}
