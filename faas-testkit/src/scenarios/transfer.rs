use std::convert::Infallible;

use bytes::Bytes;
use faas_core::{Body, DEFAULT_NAMESPACE};
use futures_util::stream;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tokio::task::JoinSet;

use crate::helpers::{echo_expected, invoke_bytes, ok};
use crate::scenario::run_scenario;
use crate::subject::Subject;

/// The size `large_body` streams through `/cat`: 64 MiB.
pub const LARGE_BODY_SIZE: u64 = 64 << 20;
const CHUNK: usize = 64 << 10;
const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// 64 MiB streamed to `/cat`, generated on the fly and hashed as it streams
/// back: same length and hash, and never held whole in memory.
pub async fn large_body(subject: &Subject) {
    run_scenario(subject, "large_body", |s| async move {
        let function = s.deploy_ready(s.deployment(&s.name("big"), DEFAULT_NAMESPACE)).await;
        let chunks = (LARGE_BODY_SIZE as usize).div_ceil(CHUNK);
        let body = stream::unfold((Pattern::new(), 0usize), move |(mut pattern, sent)| async move {
            (sent < chunks).then(|| (Ok::<_, Infallible>(pattern.chunk(CHUNK)), (pattern, sent + 1)))
        });
        let request = Request::builder().method(Method::POST).uri("/cat").body(Body::from_stream(body));
        let response = ok("large_body: invoke /cat", s.provider().invoke(&function, request.expect("valid")).await);
        assert_eq!(response.status(), StatusCode::OK, "large_body: /cat status");

        let mut body = response.into_body();
        let mut received = Fnv::new();
        let mut length = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.unwrap_or_else(|e| panic!("large_body: the response failed after {length} bytes: {e}"));
            if let Ok(data) = frame.into_data() {
                length += data.len() as u64;
                received.update(&data);
            }
        }
        assert_eq!(length, LARGE_BODY_SIZE, "large_body: bytes that came back");

        let mut pattern = Pattern::new();
        let mut sent = Fnv::new();
        for _ in 0..chunks {
            sent.update(&pattern.chunk(CHUNK));
        }
        assert_eq!(received.0, sent.0, "large_body: the bytes that came back differ from those sent (FNV-1a)");
    })
    .await
}

/// 32 concurrent echo calls with distinct bodies each get their own body
/// back.
pub async fn concurrent_invocations(subject: &Subject) {
    run_scenario(subject, "concurrent_invocations", |s| async move {
        let function = s.deploy_ready(s.deployment(&s.name("conc"), DEFAULT_NAMESPACE)).await;
        let mut calls = JoinSet::new();
        for i in 0..32 {
            let provider = s.shared_provider();
            let function = function.clone();
            calls.spawn(async move {
                let body = format!("body of call {i}: {}", "x".repeat(i * 100));
                let path = format!("/concurrent/{i}");
                let result =
                    invoke_bytes(provider.as_ref(), &function, Method::POST, &path, Default::default(), body.clone())
                        .await;
                (i, path, body, result)
            });
        }
        let mut done = 0;
        while let Some(joined) = calls.join_next().await {
            let (i, path, body, result) = joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            let (status, _, got) = ok(&format!("concurrent_invocations: call {i}"), result);
            assert_eq!(status, StatusCode::OK, "concurrent_invocations: call {i} status");
            let expected = echo_expected(&Method::POST, &path, "", "", body.as_bytes());
            assert!(
                got == expected,
                "concurrent_invocations: call {i} got {:?}",
                String::from_utf8_lossy(&got[..got.len().min(200)])
            );
            done += 1;
        }
        assert_eq!(done, 32, "concurrent_invocations: calls completed");
    })
    .await
}

/// A deterministic byte pattern (xorshift64), so that reordered, dropped or
/// duplicated chunks change the hash.
struct Pattern(u64);

impl Pattern {
    fn new() -> Self {
        Pattern(SEED)
    }

    fn chunk(&mut self, len: usize) -> Bytes {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            out.extend_from_slice(&self.0.to_le_bytes());
        }
        out.truncate(len);
        Bytes::from(out)
    }
}

/// FNV-1a, 64 bits: independent of how the bytes are split into chunks.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn update(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_ignores_chunking_but_not_order() {
        let data = Pattern::new().chunk(1000);
        let mut whole = Fnv::new();
        whole.update(&data);
        let mut split = Fnv::new();
        split.update(&data[..333]);
        split.update(&data[333..]);
        assert_eq!(whole.0, split.0);
        let mut swapped = Fnv::new();
        swapped.update(&data[500..]);
        swapped.update(&data[..500]);
        assert_ne!(whole.0, swapped.0);
        assert_ne!(Pattern::new().chunk(16), Bytes::from(vec![0u8; 16]));
    }
}
