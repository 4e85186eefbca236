//! Streaming mode moves a large body through `cat` in flat memory. Alone
//! in its test binary so the memory measure sees only this call.

mod common;

use bytes::Bytes;
use common::*;
use faas_core::Body;
use http_body_util::BodyExt;

/// 256 MiB.
const TOTAL: u64 = 256 << 20;
const CHUNK: usize = 64 * 1024;
/// The pattern's period: prime, so chunk boundaries never line up with it
/// and a lost, repeated or reordered chunk shows.
const PERIOD: usize = 65_521;

fn pattern() -> Vec<u8> {
    let mut state: u32 = 0x1234_5678;
    (0..PERIOD)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect()
}

/// The body generated on the fly: the pattern repeated up to `TOTAL` bytes.
fn generated(pattern: std::sync::Arc<Vec<u8>>) -> Body {
    let stream = futures_util::stream::unfold(0u64, move |sent| {
        let pattern = pattern.clone();
        async move {
            if sent >= TOTAL {
                return None;
            }
            let len = CHUNK.min((TOTAL - sent) as usize);
            let mut chunk = Vec::with_capacity(len);
            let mut at = (sent % PERIOD as u64) as usize;
            while chunk.len() < len {
                let take = (PERIOD - at).min(len - chunk.len());
                chunk.extend_from_slice(&pattern[at..at + take]);
                at = 0;
            }
            Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), sent + len as u64))
        }
    });
    Body::from_stream(stream)
}

/// Peak resident memory of this process, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_256_mib_body_streams_through_cat_in_flat_memory() {
    let pattern = std::sync::Arc::new(pattern());
    let (wd, _) = start(&[("fprocess", "cat"), ("mode", "streaming")], 1).await;
    // Warm up so the baseline includes the runtime and a first process.
    assert_eq!(call(&wd, request("POST", "/", "warm")).await.unwrap().0, 200);
    let before = peak_rss_kib();

    let response = bounded("headers", wd.invoke(request("POST", "/", generated(pattern.clone())))).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received: u64 = 0;
    let check = async {
        while let Some(frame) = body.frame().await {
            let data = frame.expect("body streams without error").into_data().expect("data frames only");
            let mut at = (received % PERIOD as u64) as usize;
            let mut rest = &data[..];
            while !rest.is_empty() {
                let take = (PERIOD - at).min(rest.len());
                assert!(rest[..take] == pattern[at..at + take], "content differs at byte {received}");
                rest = &rest[take..];
                at = 0;
            }
            received += data.len() as u64;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(300), check).await.expect("256 MiB streamed within 5 minutes");
    assert_eq!(received, TOTAL);

    let grown_mib = (peak_rss_kib().saturating_sub(before)) / 1024;
    assert!(grown_mib < 64, "peak memory grew by {grown_mib} MiB while streaming 256 MiB");
}
