//! A 1 GiB invocation body streams through the API and back with flat
//! memory: nothing on the path collects it. One test in its own binary,
//! since it reads this process's peak memory.

mod support;

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use faas_core::api::{self, ApiConfig};
use faas_core::{FunctionDeployment, Provider};
use http::Request;
use http_body_util::BodyExt;
use support::{connect, serve, MemoryProvider};

const TOTAL: u64 = 1 << 30;
const CHUNK: usize = 256 * 1024;

/// Peak resident memory of this process, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_round_trips_with_flat_memory() {
    let provider = MemoryProvider::new();
    provider.deploy(FunctionDeployment { service: "echo".into(), ..Default::default() }).await.unwrap();
    // The sync-call body limit (64 MiB by default) raised to the body's size.
    let config = ApiConfig { max_invoke_body_bytes: TOTAL, ..ApiConfig::default() };
    let addr = serve(api::router(provider.shared(), config)).await;
    let (mut sender, _conn) = connect(addr).await;
    let before = peak_rss();

    let chunk = Bytes::from(vec![0xA5u8; CHUNK]);
    let chunks = (TOTAL / CHUNK as u64) as usize;
    let stream = futures_util::stream::iter((0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let request = Request::post("/function/echo/stream").header("host", "x").body(Body::from_stream(stream)).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(300), sender.send_request(request)).await.unwrap().unwrap();
    let mut body = response.into_body();
    let mut received = 0u64;
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        assert!(data.iter().all(|b| *b == 0xA5));
        received += data.len() as u64;
    }
    assert_eq!(received, TOTAL);
    let growth = peak_rss().saturating_sub(before);
    assert!(growth < 64 * 1024 * 1024, "peak memory grew by {} MiB while streaming 1 GiB", growth >> 20);
}
