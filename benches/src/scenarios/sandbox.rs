//! Scenario 7: the local provider's sandbox (no orphans, a mount namespace
//! per instance, cgroup limits) on and off, in the same run: fork-mode and
//! http-mode throughput, and cold start with the sandbox.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{fmt, Ctx};
use crate::api::{deployment, Api};
use crate::measure::{alternate, Subject};
use crate::procs::{cpu_throttling, Gateway};
use crate::report::{table, Section, Target};
use crate::stats::{median, ms};
use crate::Res;

const CONCURRENCY: usize = 16;
const LIMIT: Duration = Duration::from_secs(20);

/// `spec` with limits, so every instance also gets its cgroup with limits.
fn limited(mut spec: serde_json::Value) -> serde_json::Value {
    spec["limits"] = serde_json::json!({ "memory": "64Mi", "cpu": "1" });
    spec
}

/// `spec` with a cpu limit of every core this machine has: a cpu cgroup
/// with a quota that cannot bind (and, as every cpu cgroup, one
/// scheduling entity for all the instance's threads).
fn all_cores(mut spec: serde_json::Value) -> serde_json::Value {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    spec["limits"] = serde_json::json!({ "memory": "64Mi", "cpu": cores.to_string() });
    spec
}

/// `spec` with a memory limit only: a memory cgroup and no cpu cgroup, so
/// the instance is scheduled as one of the machine's tasks, not as a group.
fn memory_limited(mut spec: serde_json::Value) -> serde_json::Value {
    spec["limits"] = serde_json::json!({ "memory": "64Mi" });
    spec
}

/// Deploys the fork-mode `cat` (16 replicas) and the native http function
/// on a gateway started with `--sandbox <mode>`.
async fn gateway(ctx: &Ctx, mode: &str) -> Res<(Gateway, Api)> {
    let gateway = Gateway::start_with(&ctx.bins, &ctx.work, &format!("gateway-sandbox-{mode}"), &["--sandbox", mode])?;
    let api = Api::new(gateway.addr);
    let cat = ctx.bins.cat.display().to_string();
    let echo = ctx.bins.echo.display().to_string();
    api.deploy(&limited(deployment("cat", &cat, "streaming", Some(16)))).await?;
    api.deploy(&limited(deployment("echo", &echo, "http", Some(1)))).await?;
    api.deploy(&memory_limited(deployment("echo-mem", &echo, "http", Some(1)))).await?;
    api.deploy(&all_cores(deployment("echo-cores", &echo, "http", Some(1)))).await?;
    let payload = Bytes::from_static(b"ready?");
    for name in ["cat", "echo", "echo-mem", "echo-cores"] {
        api.first_ok(name, &payload, LIMIT).await?;
    }
    Ok((gateway, api))
}

pub async fn run(ctx: &Ctx) -> Res<Section> {
    let (off, _off_api) = gateway(ctx, "off").await?;
    let (on, on_api) = gateway(ctx, "auto").await?;
    let (off_pid, on_pid) = (off.proc.pid(), on.proc.pid());
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    let mut throttled = Vec::new();
    let functions = [
        ("fork mode (`cat`)", "/function/cat"),
        ("http mode (native)", "/function/echo"),
        ("http mode, memory limit only", "/function/echo-mem"),
        ("http mode, cpu limit of every core", "/function/echo-cores"),
    ];
    for (label, path) in functions {
        eprintln!("sandbox: {label}, concurrency {CONCURRENCY}");
        let subjects = [
            ("sandbox off", Subject::http_served_by(off.addr, path, off_pid)),
            ("sandbox on", Subject::http_served_by(on.addr, path, on_pid)),
        ];
        let before = cpu_throttling(on_pid);
        let m = alternate(&subjects, ctx.plan(CONCURRENCY), ctx.rounds).await;
        if let (Some(before), Some(after)) = (before, cpu_throttling(on_pid)) {
            let t = after.since(before);
            throttled.push(format!(
                "{label}: {} periods, {} ms waited",
                t.periods,
                fmt(t.waited.as_secs_f64() * 1000.0, 1)
            ));
        }
        for ((which, _), r) in subjects.iter().zip(&m) {
            let (machine, _, server) = r.cpu_per_call();
            let cpu = |v: Option<f64>| v.map(|v| fmt(v, 1)).unwrap_or_else(|| "-".into());
            rows.push(vec![
                label.to_owned(),
                which.to_string(),
                r.rps_text(),
                fmt(r.p50(), 3),
                fmt(r.p99(), 3),
                cpu(machine),
                cpu(server),
                r.errors_text(),
            ]);
        }
        ratios.push(m[1].rps() / m[0].rps());
    }
    eprintln!("sandbox: cold start with the sandbox ({} samples)", ctx.cold_samples);
    let echo = ctx.bins.echo.display().to_string();
    let payload = Bytes::from_static(b"cold?");
    let mut cold = Vec::new();
    for i in 0..ctx.cold_samples {
        let name = format!("cold-{i}");
        let started = Instant::now();
        on_api.deploy(&limited(deployment(&name, &echo, "http", None))).await?;
        on_api.first_ok(&name, &payload, LIMIT).await?;
        cold.push(ms(started.elapsed()));
        on_api.delete(&name).await?;
    }
    let mut body = String::from(
        "Two gateways side by side, `--sandbox off` and `--sandbox auto` (here: root, cgroup v1, so a \
         mount namespace per instance and a cgroup per instance with `limits` 64Mi / 1 CPU), each \
         serving the fork-mode `cat` (16 replicas), the native http-mode echo (1 replica), and the \
         same echo with a memory limit only (its instance has no cpu cgroup) and with a cpu limit of \
         every core (a quota that cannot bind); concurrency 16, measured alternately round by round. CPU µs per call: the machine's, and the \
         gateway process's own (its function processes not included).\n\n",
    );
    body.push_str(&table(
        &["function", "sandbox", "req/s", "p50 ms", "p99 ms", "CPU µs/call: machine", "gateway", "errors"],
        &rows,
    ));
    body.push_str(&format!(
        "\nRatios (on ÷ off): fork mode **{}**, http mode **{}** (with a memory limit only, no cpu cgroup: {}; with a cpu limit of every core: {}). Cold start with the sandbox (deploy → \
         first 200, native http mode, {} samples): median {} ms.\n",
        fmt(ratios[0], 2),
        fmt(ratios[1], 2),
        fmt(ratios[2], 2),
        fmt(ratios[3], 2),
        cold.len(),
        fmt(median(&cold), 1)
    ));
    if !throttled.is_empty() {
        body.push_str(&format!(
            "\nThe instances' cpu cgroups throttled (quota used up) while measured: {}.\n",
            throttled.join("; ")
        ));
    }
    let targets = vec![
        Target::at_least("fork mode: sandbox on ÷ off", 0.8, ratios[0], "×"),
        Target::at_least("http mode: sandbox on ÷ off", 0.97, ratios[1], "×"),
        Target::at_most("cold start with the sandbox (deploy → first 200)", 20.0, median(&cold), " ms"),
    ];
    Ok(Section { title: "7. Sandbox".into(), body, targets })
}
