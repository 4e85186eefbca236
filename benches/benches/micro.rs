//! Micro-benchmarks of the hot pieces: name parsing and validation, JSON
//! of a 10,000-function list, and routing an invocation through the API
//! router (over an in-memory provider, so only the routing is measured).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_main, Criterion};
use custom_provider::InMemoryProvider;
use faas_core::api::{router, ApiConfig};
use faas_core::{FunctionDeployment, FunctionRef, FunctionStatus, Provider};
use http_body_util::Full;
use tower::ServiceExt;

fn deployment(i: usize) -> FunctionDeployment {
    FunctionDeployment {
        service: format!("function-{i:05}"),
        image: "ghcr.io/example/function:1.2.3".into(),
        env_process: "python3 handler.py".into(),
        env_vars: BTreeMap::from([("mode".into(), "http".into()), ("exec_timeout".into(), "30s".into())]),
        labels: Some(BTreeMap::from([("com.openfaas.scale.min".into(), "0".into())])),
        annotations: Some(BTreeMap::from([("topic".into(), "orders".into())])),
        ..FunctionDeployment::default()
    }
}

fn names(c: &mut Criterion) {
    c.bench_function("FunctionRef::parse name.namespace", |b| {
        b.iter(|| FunctionRef::parse(black_box("figlet-renderer.team-a")))
    });
    c.bench_function("validate::function_name", |b| {
        b.iter(|| faas_core::validate::function_name("service", black_box("figlet-renderer")))
    });
    let d = deployment(1);
    c.bench_function("FunctionDeployment::validate", |b| b.iter(|| black_box(&d).validate()));
}

fn json(c: &mut Criterion) {
    let list: Vec<FunctionStatus> = (0..10_000).map(|i| FunctionStatus::from_deployment(&deployment(i))).collect();
    let encoded = serde_json::to_vec(&list).expect("encodes");
    let mut group = c.benchmark_group("10,000-function list");
    group.sample_size(20);
    group.bench_function("encode", |b| b.iter(|| serde_json::to_vec(black_box(&list)).expect("encodes")));
    group.bench_function("decode", |b| {
        b.iter(|| serde_json::from_slice::<Vec<FunctionStatus>>(black_box(&encoded)).expect("decodes"))
    });
    group.finish();
}

fn routing(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let provider = InMemoryProvider::new()
        .with_handler("bench", |request, _cx| async move { http::Response::new(request.into_body()) });
    let provider = Arc::new(provider);
    runtime.block_on(async {
        let mut d = deployment(0);
        d.service = "echo".into();
        d.image = "bench".into();
        provider.deploy(d).await.expect("deploys");
    });
    let app = router(provider, ApiConfig::default());
    c.bench_function("router: POST /function/echo/path?q (in-memory provider)", |b| {
        b.iter(|| {
            let request = http::Request::post("/function/echo/some/path?q=1")
                .body(Full::new(Bytes::from_static(b"hello")))
                .expect("request");
            let response = runtime.block_on(app.clone().oneshot(request)).expect("infallible");
            assert_eq!(response.status(), 200);
        })
    });
}

/// The benchmark groups (criterion's macro makes a public function).
mod groups {
    use super::{json, names, routing};
    criterion::criterion_group!(benches, names, json, routing);
}

criterion_main!(groups::benches);
