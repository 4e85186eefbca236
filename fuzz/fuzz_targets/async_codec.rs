//! The async call codec (faas-async): `QueuedCall` and `DeadLetter` as the
//! queue stores them, and the `X-Callback-Url` check.
//!
//! Two inputs, chosen by the first byte: stored bytes as they may be found
//! in a queue (never a panic; a record that decodes encodes and decodes to
//! itself, and lists as a summary), or a call built from parts (any
//! method, path, binary headers and body) that must encode and decode to
//! itself, as a call and inside a dead letter. A callback URL that is
//! accepted is absolute `http://` with a host; a refusal is `Invalid`
//! naming the header.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use faas_async::{parse_callback_url, DeadLetter, DeadLetterSummary, FailedStage, QueuedCall};
use faas_fuzz::{expect_invalid, text};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Parts {
    id: String,
    name: String,
    namespace: String,
    method: String,
    path_and_query: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    callback_url: Option<String>,
    attempts: u32,
    accepted_at_ms: u64,
    invoke_failed: bool,
    reason: String,
    dead_at_ms: u64,
}

fn check_callback(url: &str) {
    match parse_callback_url(url) {
        Ok(uri) => {
            assert_eq!(uri.scheme_str(), Some("http"), "{url:?}");
            assert!(uri.host().is_some_and(|h| !h.is_empty()), "{url:?} has no host");
        }
        Err(err) => expect_invalid(&faas_core::Error::from(err), &["x-callback-url"]),
    }
}

fn round_trip_call(call: &QueuedCall) {
    let bytes = call.encode().expect("a call encodes");
    assert_eq!(&QueuedCall::decode(&call.id, &bytes).expect("an encoded call decodes"), call);
}

fn round_trip_dead(dead: &DeadLetter) {
    let bytes = dead.encode().expect("a dead letter encodes");
    assert_eq!(&DeadLetter::decode(&dead.call.id, &bytes).expect("an encoded dead letter decodes"), dead);
    let summary = DeadLetterSummary::from(dead);
    assert_eq!((summary.body_bytes, summary.attempts), (dead.call.body.len(), dead.call.attempts));
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        if let Ok(call) = QueuedCall::decode("fuzz", rest) {
            round_trip_call(&call);
            if let Some(url) = &call.callback_url {
                check_callback(url);
            }
        }
        if let Ok(dead) = DeadLetter::decode("fuzz", rest) {
            round_trip_dead(&dead);
        }
        check_callback(&text(rest));
        return;
    }
    let Ok(p) = Parts::arbitrary(&mut Unstructured::new(rest)) else { return };
    let call = QueuedCall {
        id: p.id,
        name: p.name,
        namespace: p.namespace,
        method: p.method,
        path_and_query: p.path_and_query,
        headers: p.headers,
        body: p.body,
        callback_url: p.callback_url,
        attempts: p.attempts,
        accepted_at_ms: p.accepted_at_ms,
    };
    round_trip_call(&call);
    if let Some(url) = &call.callback_url {
        check_callback(url);
    }
    let stage = if p.invoke_failed { FailedStage::Invoke } else { FailedStage::Callback };
    round_trip_dead(&DeadLetter { call, stage, reason: p.reason, dead_at_ms: p.dead_at_ms });
});
