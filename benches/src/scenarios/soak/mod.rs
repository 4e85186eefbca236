//! Scenario 10: the soak. One gateway on the local provider under mixed
//! load for 30 minutes (or `--soak-duration`, or 3 minutes with `--quick`):
//! steady sync http, fork and async calls (with callbacks to the harness),
//! calls to 50 churned functions, and every 10 s period a deploy, update and
//! delete churn, a scale up and down and three log follows opened and
//! closed. At the end of each period the gateway's RSS, open fds, threads
//! and async backlog are sampled. Passes when no error is left that the
//! churn does not explain and, after the warm-up (until the load has filled
//! every function's log ring), RSS, fds and threads are flat: the slope of
//! a least-squares line below 1% of their mean per 10 minutes. The samples
//! go to `benches/soak[-quick].csv` and a chart to
//! `benches/soak[-quick].svg`.

mod actors;
mod chart;
mod ledger;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use provider_local::DEFAULT_LOG_LINES;

use self::actors::{Shared, CHURNED};
use self::chart::{Panel, Sample};
use self::ledger::{ChurnState, Ledger};
use super::{fmt, Ctx};
use crate::api::Api;
use crate::procs::{footprint, Gateway};
use crate::report::{table, Section, Target};
use crate::stats::{linear_fit, Fit};
use crate::Res;

/// The time between two samples (one period of churn).
const PERIOD: Duration = Duration::from_secs(10);
/// The soak's length with `--quick` (30 minutes by default: `--soak-duration`).
pub const QUICK_DURATION: Duration = Duration::from_secs(3 * 60);
/// The largest growth allowed after the warm-up: % of the mean per 10 min.
const FLAT_PCT: f64 = 1.0;
/// The fixed warm-up of the runs before the warm-up was the rings' fill
/// time; the fits from it are still reported, to compare with those runs.
const FIXED_WARMUP: Duration = Duration::from_secs(300);
/// The shortest window after the warm-up over which flatness is judged.
const MIN_JUDGED: Duration = Duration::from_secs(10 * 60);
/// How long the harness waits for the last callbacks after the load stops.
const DRAIN: Duration = Duration::from_secs(60);

/// A measure judged for flatness: its name, unit and how to read it.
type Measure = (&'static str, &'static str, fn(&Sample) -> f64);

/// How long the soak runs and where its files go.
#[derive(Debug, Clone)]
pub struct SoakPlan {
    pub duration: Duration,
    /// `soak` or `soak-quick`: the name of the CSV and SVG in `benches/`.
    pub label: &'static str,
}

impl SoakPlan {
    /// The warm-up excluded from the flatness fits: the time the load takes
    /// to fill every function's log ring (provider-local's
    /// [`DEFAULT_LOG_LINES`], the gateway's default), the bounded stores
    /// whose filling is growth that stops, so that what is fitted after it
    /// is the steady state. At most half the run, so that a short run still
    /// has samples to fit (its rings are then not all full, which the
    /// report says).
    pub fn warmup(&self) -> Duration {
        self.rings_full().min(self.duration / 2)
    }

    /// When the last log ring is full at the load's rates.
    pub fn rings_full(&self) -> Duration {
        actors::ring_fill_time(DEFAULT_LOG_LINES).0
    }

    fn path(&self, extension: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("{}.{extension}", self.label))
    }
}

/// The gateway's measures now.
async fn sample(shared: &Shared, pid: u32, t_s: f64) -> Res<Sample> {
    let footprint = footprint(pid)?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64;
    let (errors_explained, errors_unexplained) = shared.ledger.error_totals();
    Ok(Sample {
        t_s,
        rss_kb: footprint.rss_kb,
        fds,
        threads: footprint.threads,
        async_backlog: actors::async_backlog(&shared.api).await?,
        pending_callbacks: shared.pending.lock().unwrap_or_else(|p| p.into_inner()).len() as u64,
        ok: shared.ledger.successes().values().sum(),
        errors_explained,
        errors_unexplained,
    })
}

/// Growth per 10 minutes of the line fitted to `value` after `warmup_s`,
/// in % of the mean.
pub fn growth_pct(fit: &Fit) -> f64 {
    fit.slope * 600.0 / fit.mean * 100.0
}

/// Deploys every function and waits until each answers.
async fn deploy_all(shared: &Shared) -> Res<()> {
    for (name, spec) in actors::steady_specs(shared) {
        shared.api.deploy(&spec).await?;
        shared.api.first_ok(name, &Bytes::from_static(b"ready?"), Duration::from_secs(60)).await?;
    }
    for i in 0..CHURNED {
        shared.api.deploy(&actors::churn_spec(shared, i, 0)).await?;
    }
    for i in 0..CHURNED {
        shared.api.first_ok(&actors::churn_name(i), &Bytes::from_static(b"ready?"), Duration::from_secs(60)).await?;
    }
    Ok(())
}

pub async fn run(ctx: &Ctx, plan: &SoakPlan) -> Res<Section> {
    let gateway = Gateway::start_with(
        &ctx.bins,
        &ctx.work,
        "gateway-soak",
        &["--provider", "local", "--scale-down-window", "5s"],
    )?;
    let ledger = Arc::new(Ledger::default());
    let pending = Arc::new(Mutex::new(HashMap::new()));
    let (callbacks, callback_task) = actors::callback_server(ledger.clone(), pending.clone()).await?;
    let shared = Arc::new(Shared {
        api: Api::new(gateway.addr),
        ledger,
        churn: Mutex::new(vec![ChurnState { deployed: true, changed: Instant::now() }; CHURNED]),
        pending,
        callback_url: format!("http://{callbacks}/callback"),
        echo: ctx.bins.echo.display().to_string(),
        cat: ctx.bins.cat.display().to_string(),
        stop: Default::default(),
    });
    eprintln!("soak: deploying 4 steady and {CHURNED} churned functions");
    deploy_all(&shared).await?;
    for state in shared.churn.lock().unwrap_or_else(|p| p.into_inner()).iter_mut() {
        state.changed = Instant::now();
    }
    let mut steady = Vec::new();
    for worker in 0..actors::SYNC_HTTP_WORKERS {
        steady.push(tokio::spawn(actors::sync_http(shared.clone(), worker)));
    }
    steady.push(tokio::spawn(actors::fork(shared.clone())));
    steady.push(tokio::spawn(actors::async_calls(shared.clone())));
    steady.push(tokio::spawn(actors::churn_calls(shared.clone())));

    let periods = plan.duration.as_secs().div_ceil(PERIOD.as_secs()).max(1);
    eprintln!("soak: {periods} periods of {} s, warm-up {} s", PERIOD.as_secs(), plan.warmup().as_secs());
    let started = Instant::now();
    let mut samples = vec![sample(&shared, gateway.pid(), 0.0).await?];
    let mut late = 0;
    for k in 0..periods {
        actors::period(&shared, k).await;
        let end = started + PERIOD * u32::try_from(k + 1)?;
        if Instant::now() > end {
            late += 1;
        }
        tokio::time::sleep_until(end.into()).await;
        let s = sample(&shared, gateway.pid(), started.elapsed().as_secs_f64()).await?;
        eprintln!(
            "soak: {:>5.0} s  RSS {:.1} MiB  fds {}  threads {}  backlog {}  errors {} explained, {} not",
            s.t_s,
            s.rss_mib(),
            s.fds,
            s.threads,
            s.async_backlog,
            s.errors_explained,
            s.errors_unexplained
        );
        samples.push(s);
    }
    shared.stop.store(true, Ordering::Relaxed);
    for task in steady {
        let _ = tokio::time::timeout(Duration::from_secs(90), task).await;
    }
    let missing = actors::drain(&shared, DRAIN).await;
    let backlog_end = actors::async_backlog(&shared.api).await?;
    callback_task.abort();
    let (explained, unexplained) = shared.ledger.error_totals();

    let warmup_s = plan.warmup().as_secs_f64();
    let after: Vec<&Sample> = samples.iter().filter(|s| s.t_s >= warmup_s).collect();
    let fit_of = |value: fn(&Sample) -> f64| linear_fit(&after.iter().map(|s| (s.t_s, value(s))).collect::<Vec<_>>());
    let measures: [Measure; 3] =
        [("RSS", " MiB", Sample::rss_mib), ("open fds", "", |s| s.fds as f64), ("threads", "", |s| s.threads as f64)];
    let fits: Vec<Option<Fit>> = measures.iter().map(|(_, _, value)| fit_of(*value)).collect();
    // The same fits from the fixed 300 s of the earlier runs, reported beside.
    let fixed_s = FIXED_WARMUP.as_secs_f64();
    let from_fixed: Vec<&Sample> = samples.iter().filter(|s| s.t_s >= fixed_s).collect();
    let fixed_rows: Vec<Vec<String>> = measures
        .iter()
        .filter_map(|(name, unit, value)| {
            let fit = linear_fit(&from_fixed.iter().map(|s| (s.t_s, value(s))).collect::<Vec<_>>())?;
            Some(vec![
                name.to_string(),
                format!("{}{unit}", fmt(fit.mean, 1)),
                format!("{:+.2}{unit}", fit.slope * 600.0),
                format!("{:+.2}%", growth_pct(&fit)),
            ])
        })
        .collect();
    let mut panels: Vec<Panel<'_>> = measures
        .iter()
        .zip(&fits)
        .map(|((name, unit, value), fit)| Panel {
            title: if unit.is_empty() { name } else { "RSS (MiB)" },
            value: *value,
            fit: *fit,
        })
        .collect();
    panels.push(Panel { title: "async backlog (accepted, not finished)", value: |s| s.async_backlog, fit: None });
    let minutes = plan.duration.as_secs_f64() / 60.0;
    // Which build ran: the directory of the binaries (`release` or `debug`).
    let build = ctx.bins.gateway.parent().and_then(|d| d.file_name()).map_or("?".into(), |d| d.to_string_lossy());
    let title = format!("faas-gateway soak: {minutes:.0} min of mixed load, local provider, {build} build");
    std::fs::write(plan.path("csv"), chart::csv(&samples))?;
    chart::svg(&plan.path("svg"), &title, &samples, warmup_s, &panels)?;
    eprintln!("soak: wrote {} and {}", plan.path("csv").display(), plan.path("svg").display());

    // Flatness is judged over at least 10 minutes after the warm-up: over a
    // shorter window one more thread or a few KiB read as several % per 10
    // minutes (the quick mode reports the slopes, not a verdict on them).
    let judged = after.last().is_some_and(|s| s.t_s - warmup_s >= MIN_JUDGED.as_secs_f64());
    let mut targets = Vec::new();
    let mut trend_rows = Vec::new();
    for ((name, unit, value), fit) in measures.iter().zip(&fits) {
        let values: Vec<f64> = after.iter().map(|s| value(s)).collect();
        let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(*v), h.max(*v)));
        let growth = fit.as_ref().map_or(f64::NAN, growth_pct);
        trend_rows.push(vec![
            name.to_string(),
            format!("{}{unit}", fmt(values.first().copied().unwrap_or(f64::NAN), 1)),
            format!("{}{unit}", fmt(values.last().copied().unwrap_or(f64::NAN), 1)),
            format!("{} – {}{unit}", fmt(lo, 1), fmt(hi, 1)),
            format!("{}{unit}", fit.as_ref().map_or("-".into(), |f| fmt(f.mean, 1))),
            format!("{}{unit}", fit.as_ref().map_or("-".into(), |f| format!("{:+.2}", f.slope * 600.0))),
            format!("{growth:+.2}%"),
        ]);
        let mut target = Target::at_most(
            &format!("soak ({minutes:.0} min): {name} growth after warm-up, per 10 min"),
            FLAT_PCT,
            growth,
            "%",
        );
        target.measured = format!("{growth:+.2}%");
        target.met = growth < FLAT_PCT;
        if judged {
            targets.push(target);
        }
    }
    targets.push(Target {
        what: format!("soak ({minutes:.0} min): errors the churn does not explain"),
        goal: "0".into(),
        measured: unexplained.to_string(),
        met: unexplained == 0,
    });

    let successes = shared.ledger.successes();
    let work_rows: Vec<Vec<String>> = successes.iter().map(|(kind, n)| vec![kind.to_string(), n.to_string()]).collect();
    let error_rows: Vec<Vec<String>> = shared
        .ledger
        .error_rows()
        .into_iter()
        .map(|e| {
            vec![
                e.class,
                e.count.to_string(),
                if e.explained { "yes (churn)" } else { "**no**" }.into(),
                format!("`{}`", e.example.replace(['|', '`'], "/")),
            ]
        })
        .collect();
    let peak_backlog = samples.iter().map(|s| s.async_backlog).fold(0.0, f64::max);
    let (fill, slowest) = actors::ring_fill_time(DEFAULT_LOG_LINES);
    let rates: Vec<String> = actors::steady_log_rates()
        .iter()
        .map(|(name, per_second)| {
            format!("`{name}` {per_second:.1} lines/s, full after {:.0} s", DEFAULT_LOG_LINES as f64 / per_second)
        })
        .collect();
    let warmup_text = if plan.warmup() >= fill {
        format!(
            "The warm-up is the time until the load has filled every function's log ring ({DEFAULT_LOG_LINES} lines, \
             provider-local's default; one line per http-mode call, two per fork-mode call: {rates}; a churned \
             function's ring goes with it every {cycle} s), the last being `{slowest}`'s at {fill:.0} s. The rings \
             are bounded stores whose filling is growth that stops; after it the memory is in its steady state",
            rates = rates.join(", "),
            cycle = actors::CHURN_CYCLE.as_secs(),
            fill = fill.as_secs_f64(),
        )
    } else {
        format!(
            "The warm-up is half the run: the log rings ({DEFAULT_LOG_LINES} lines) are all full only after \
             {fill:.0} s (`{slowest}`'s), beyond what this run can leave to fit, so the slopes below include rings \
             still filling",
            fill = fill.as_secs_f64(),
        )
    };
    let mut body = format!(
        "One gateway ({build} build; local provider, default sandbox, scaling layer with `--scale-down-window 5s`, embedded \
         async queue) under {minutes:.1} minutes of mixed load, all on this machine: sync http calls \
         ({sync:.0}/s, in turn to `soak-http`, `soak-scale` and `soak-async`, native echo), fork-mode calls \
         ({fork:.0}/s, `cat`), async calls ({async_rate:.0}/s) each with an `X-Callback-Url` to the harness, \
         which checks every callback, and calls to {CHURNED} churned functions ({churn_rate:.0}/s; half native \
         http, half `cat`). Every {period} s period deletes 5 churned functions, redeploys the 5 deleted the \
         period before and updates 5 others (`PUT`, a new env value), scales `soak-scale` to 3 and back to 1 \
         after 6 s, and opens three log follows (`/system/logs?follow=true`) for 3 s each. At the end of each \
         period the gateway's RSS, open fds and threads (from `/proc`) and its async backlog (queued − \
         completed − dead-lettered, from `/metrics`) are sampled: the churn of the period is over by then, so \
         the samples compare like with like. A call to a churned function that fails while it is deleted or \
         within {window} s of its deploy, update or delete is explained by the churn; every other error is \
         not. Flat means the least-squares slope after the {warmup:.0} s warm-up is below {FLAT_PCT}% of the \
         mean per 10 minutes. {warmup_text}.\n\n\
         Samples: [benches/{label}.csv](benches/{label}.csv); chart (blue: samples, red: the fit, grey: end \
         of the warm-up):\n\n![soak chart](benches/{label}.svg)\n\n",
        sync = actors::SYNC_HTTP_RATE,
        fork = actors::FORK_RATE,
        async_rate = actors::ASYNC_RATE,
        churn_rate = actors::CHURN_CALL_RATE,
        period = PERIOD.as_secs(),
        window = ledger::CHANGE_WINDOW.as_secs(),
        warmup = warmup_s,
        label = plan.label,
    );
    body.push_str(&table(
        &["measure", "after warm-up", "at the end", "range", "mean", "fit slope per 10 min", "% of the mean"],
        &trend_rows,
    ));
    if !fixed_rows.is_empty() && fixed_s != warmup_s {
        body.push_str(&format!(
            "\nThe same fits from {fixed_s:.0} s, the fixed warm-up of the runs before the warm-up was the rings' \
             fill time (for comparison with them; not judged):\n\n"
        ));
        body.push_str(&table(&["measure", "mean", "fit slope per 10 min", "% of the mean"], &fixed_rows));
    }
    body.push_str("\nWork done (successes):\n\n");
    body.push_str(&table(&["what", "count"], &work_rows));
    body.push_str(&format!(
        "\nErrors: {explained} explained by the churn, {unexplained} not. Async backlog: at most {peak_backlog} \
         at a sample, {backlog_end} at the end; {missing} callbacks missing after the {} s drain. Periods whose \
         churn overran 10 s (shared machine): {late} of {periods}.\n\n",
        DRAIN.as_secs()
    ));
    if !judged {
        body.push_str(&format!(
            "Flatness not judged: {:.0} s after the warm-up is shorter than the {} minutes it is judged over \
             (the slopes above are reported, not asserted).\n\n",
            after.last().map_or(0.0, |s| s.t_s - warmup_s),
            MIN_JUDGED.as_secs() / 60
        ));
    }
    if !error_rows.is_empty() {
        body.push_str(&table(&["error class", "count", "explained", "first example"], &error_rows));
    }
    drop(gateway);
    Ok(Section { title: format!("10. Soak: {minutes:.1} minutes of mixed load"), body, targets })
}
