//! Scenario 3: cold start on the local provider, deploy → first 200 and
//! scale 0 → 1 → first 200.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;

use super::{fmt, Ctx};
use crate::api::{deployment, Api};
use crate::procs::Gateway;
use crate::report::{table, Section, Target};
use crate::stats::{median, ms};
use crate::Res;

const LIMIT: Duration = Duration::from_secs(20);

/// Milliseconds: median, min, max.
fn summary(samples: &[f64]) -> Vec<String> {
    let lo = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    vec![samples.len().to_string(), fmt(median(samples), 1), fmt(lo, 1), fmt(hi, 1)]
}

/// Deploys, calls until 200, deletes; `samples` times.
async fn deploy_to_first_ok(api: &Api, kind: &str, process: &str, mode: &str, samples: usize) -> Res<Vec<f64>> {
    let payload = Bytes::from_static(b"cold?");
    let mut out = Vec::new();
    for i in 0..samples {
        let name = format!("cold-{kind}-{i}");
        let started = Instant::now();
        api.deploy(&deployment(&name, process, mode, None)).await?;
        api.first_ok(&name, &payload, LIMIT).await?;
        out.push(ms(started.elapsed()));
        api.delete(&name).await?;
    }
    Ok(out)
}

/// Whether the gateway has a scale-from-zero layer: from the source tree
/// (a `faas-autoscale` crate the gateway depends on).
fn autoscale_in_tree() -> bool {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("."));
    let manifest = std::fs::read_to_string(workspace.join("faas-gateway/Cargo.toml")).unwrap_or_default();
    workspace.join("faas-autoscale").is_dir() && manifest.contains("faas-autoscale")
}

pub async fn run(ctx: &Ctx) -> Res<Section> {
    let gateway = Gateway::start(&ctx.bins, &ctx.work, "gateway-cold")?;
    let api = Api::new(gateway.addr);
    let n = ctx.cold_samples;
    let echo = ctx.bins.echo.display().to_string();
    let cat = ctx.bins.cat.display().to_string();

    eprintln!("cold start: deploy -> first 200 ({n} samples each)");
    let native = deploy_to_first_ok(&api, "native", &echo, "http", n).await?;
    let fork = deploy_to_first_ok(&api, "fork", &cat, "streaming", n).await?;

    eprintln!("cold start: scale 0 -> 1 -> first 200 ({n} samples)");
    let payload = Bytes::from_static(b"cold?");
    if api.deploy(&deployment("cold-zero", &echo, "http", Some(0))).await.is_err() {
        // A scaling layer refuses min 0: deploy allowed to reach zero, then
        // scale it there.
        let mut spec = deployment("cold-zero", &echo, "http", None);
        spec["labels"] = serde_json::json!({ "com.openfaas.scale.zero": "true" });
        api.deploy(&spec).await?;
        api.first_ok("cold-zero", &payload, LIMIT).await?;
        api.scale("cold-zero", 0).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Through a scale-from-zero layer, a call to a function at zero
    // replicas starts it; without one, it is refused and the scale API is
    // called first.
    let (status, _) = api.invoke("cold-zero", &payload).await?;
    let autoscaled = status == StatusCode::OK;
    if autoscaled {
        api.scale("cold-zero", 0).await?;
    }
    let mut zero = Vec::new();
    for _ in 0..n {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        if !autoscaled {
            api.scale("cold-zero", 1).await?;
        }
        api.first_ok("cold-zero", &payload, LIMIT).await?;
        zero.push(ms(started.elapsed()));
        api.scale("cold-zero", 0).await?;
    }
    let how = if autoscaled {
        "the first call itself, through the gateway's scale-from-zero layer (faas-autoscale)"
    } else if autoscale_in_tree() {
        "`POST /system/scale-function` then calls until 200 (a faas-autoscale crate is in the tree, but this gateway refused a call at zero replicas)"
    } else {
        "`POST /system/scale-function` then calls until 200 (this gateway has no scale-from-zero layer: a call at zero replicas is refused)"
    };

    let rows = vec![
        [vec!["deploy → first 200, native http-mode function".to_owned()], summary(&native)].concat(),
        [vec!["deploy → first 200, fork mode (`cat`)".to_owned()], summary(&fork)].concat(),
        [vec!["scale 0 → 1 → first 200, native http-mode function".to_owned()], summary(&zero)].concat(),
    ];
    let mut body = format!(
        "Milliseconds from the deploy request to the first 200 answer with the right body (calls are \
         retried every millisecond while refused); the function is deleted between samples. Scale from \
         zero is timed as {how}.\n\n"
    );
    body.push_str(&table(&["what", "samples", "median ms", "min ms", "max ms"], &rows));
    let targets = vec![
        Target::at_most("cold start, native http-mode function (deploy → first 200)", 20.0, median(&native), " ms"),
        Target::at_most("scale 0 → 1 → first 200", 30.0, median(&zero), " ms"),
    ];
    Ok(Section { title: "3. Cold start".into(), body, targets })
}
