//! The limits the gateway enforces, through the real binary over real
//! sockets: `--max-body` (413), `--max-header-size` (431) and
//! `--max-connections` (the listen backlog, not more descriptors).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{script, Gateway, WAIT};
use faas_core::Body;
use http::{header, Request, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A fresh temporary directory with a state dir inside.
fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    (dir, state)
}

/// Deploys `count`: a streaming function that notes each start in
/// `<dir>/started` and answers the number of bytes it read (`wc -c`, which
/// writes only once its stdin ends).
async fn deploy_counter(gateway: &Gateway, dir: &std::path::Path) -> std::path::PathBuf {
    let started = dir.join("started");
    let counter = script(dir, "count.sh", &format!("echo run >> {}\nexec wc -c\n", started.display()));
    gateway.deploy(json!({"service": "count", "image": "sh", "envProcess": format!("sh {}", counter.display())})).await;
    gateway.wait_available("count", 1).await;
    started
}

/// A body of `chunks` chunks of 1 MiB, made as it is read (nothing of it
/// is held by the test).
fn generated(chunks: u64) -> Body {
    let chunk = Bytes::from(vec![b'x'; 1 << 20]);
    Body::from_stream(futures_util::stream::iter((0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone()))))
}

/// The process's resident set, in bytes.
fn rss(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kib * 1024
}

/// The process's open file descriptors.
fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

#[tokio::test]
async fn a_body_over_max_body_is_413_naming_the_limit_declared_or_streamed() {
    let (dir, state) = setup();
    let gateway = Gateway::start(&state, &["--max-body", "1MiB"]).await;
    let started = deploy_counter(&gateway, dir.path()).await;

    // Declared too long: refused on the header alone, before the function
    // starts; this body never yields a byte, so reading it would hang.
    let never = futures_util::stream::pending::<Result<Bytes, std::io::Error>>();
    let request = Request::post("/function/count")
        .header(header::CONTENT_LENGTH, (1 << 20) + 1)
        .body(Body::from_stream(never))
        .unwrap();
    let (status, headers, body) = gateway.send(request).await;
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body.contains("limit of 1048576 bytes"), "{body}");
    assert_eq!(headers.get("x-faas-error").map(|v| v.as_bytes()), Some(&b"platform"[..]));
    assert!(!started.exists(), "the function ran for a body refused on its declared length");

    // Streamed (chunked, no length): counted as it arrives and cut at the
    // limit; the function saw a short stdin and answered, but the caller
    // learns the body was over the limit.
    let request = Request::post("/function/count").body(generated(4)).unwrap();
    assert!(request.headers().get(header::CONTENT_LENGTH).is_none());
    let (status, _, body) = gateway.send(request).await;
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body.contains("limit of 1048576 bytes"), "{body}");

    // Exactly at the limit is fine, declared or streamed.
    let (status, body) = gateway.call("POST", "/function/count", vec![b'y'; 1 << 20]).await;
    assert_eq!((status, body.trim()), (StatusCode::OK, "1048576"));
    let request = Request::post("/function/count").body(generated(1)).unwrap();
    let (status, _, body) = gateway.send(request).await;
    assert_eq!((status, String::from_utf8_lossy(&body).trim()), (StatusCode::OK, "1048576"));
}

#[tokio::test]
async fn a_10_gib_upload_stops_at_the_default_64_mib_with_rss_flat() {
    let (dir, state) = setup();
    let gateway = Gateway::start(&state, &[]).await;
    deploy_counter(&gateway, dir.path()).await;
    let pid = gateway.pid().as_raw();
    // Warm up the connection and call paths before the baseline.
    assert_eq!(gateway.call("POST", "/function/count", "warm").await.0, StatusCode::OK);
    let before = rss(pid);

    let ten_gib = 10u64 << 30;
    let never = futures_util::stream::pending::<Result<Bytes, std::io::Error>>();
    let request = Request::post("/function/count")
        .header(header::CONTENT_LENGTH, ten_gib)
        .body(Body::from_stream(never))
        .unwrap();
    let (status, _, body) = gateway.send(request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(String::from_utf8_lossy(&body).contains("limit of 67108864 bytes"), "{body:?}");

    // The same 10 GiB streamed: the answer comes once 64 MiB have passed,
    // long before the client could have sent it all.
    let request = Request::post("/function/count").body(generated(ten_gib >> 20)).unwrap();
    let (status, _, body) = gateway.send(request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("limit of 67108864 bytes"), "{body:?}");

    let grown = rss(pid).saturating_sub(before);
    assert!(grown < 32 << 20, "the gateway's RSS grew by {grown} bytes over a 64 MiB upload");
    assert_eq!(gateway.call("POST", "/function/count", "after").await, (StatusCode::OK, "5\n".to_owned()));
}

/// Sends one raw HTTP/1.1 request with an `X-Big` header of `size` bytes
/// and returns the response's status line.
async fn status_line_with_header_of(gateway: &Gateway, size: usize) -> String {
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    let head = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "b".repeat(size));
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(head.as_bytes()).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut response)).await.expect("an answer in time");
    String::from_utf8_lossy(&response).lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn headers_over_max_header_size_are_431() {
    let (_dir, state) = setup();
    let gateway = Gateway::start(&state, &["--max-header-size", "16KiB"]).await;
    assert_eq!(status_line_with_header_of(&gateway, 8 << 10).await, "HTTP/1.1 200 OK");
    assert_eq!(status_line_with_header_of(&gateway, 1 << 20).await, "HTTP/1.1 431 Request Header Fields Too Large");
    assert_eq!(status_line_with_header_of(&gateway, 20 << 10).await, "HTTP/1.1 431 Request Header Fields Too Large");
    assert_eq!(gateway.get("/healthz").await.0, StatusCode::OK);

    // The default, 64 KiB, lets a 32 KiB header through.
    let (_dir, state) = setup();
    let gateway = Gateway::start(&state, &[]).await;
    assert_eq!(status_line_with_header_of(&gateway, 32 << 10).await, "HTTP/1.1 200 OK");
    assert_eq!(status_line_with_header_of(&gateway, 1 << 20).await, "HTTP/1.1 431 Request Header Fields Too Large");
}

#[tokio::test]
async fn past_max_connections_newcomers_wait_in_the_backlog_and_fds_stay_bounded() {
    let (_dir, state) = setup();
    let gateway = Gateway::start(&state, &["--max-connections", "2", "--read-timeout", "5m"]).await;
    let pid = gateway.pid().as_raw();
    let baseline = open_fds(pid);

    // Two silent connections take both slots.
    let holders = [TcpStream::connect(gateway.addr).await.unwrap(), TcpStream::connect(gateway.addr).await.unwrap()];
    // Fifty more connect (the kernel's backlog takes them) but are not
    // accepted: the gateway's descriptors do not grow with them.
    let mut waiting = Vec::new();
    for _ in 0..50 {
        waiting.push(TcpStream::connect(gateway.addr).await.unwrap());
    }
    let mut late = waiting.pop().unwrap();
    late.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds = open_fds(pid);
    assert!(fds <= baseline + 6, "{fds} descriptors open, {baseline} before 2 connections were allowed");
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_secs(1), late.read(&mut byte)).await;
    assert!(early.is_err(), "a connection past the cap was served: {early:?}");

    // Closing the holders and the other waiters frees slots: the late
    // request is answered then, without a retry.
    drop(holders);
    drop(waiting);
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, late.read_to_end(&mut response)).await.expect("served once a slot is free").unwrap();
    assert!(String::from_utf8_lossy(&response).starts_with("HTTP/1.1 200 OK"), "{response:?}");
    assert_eq!(gateway.get("/healthz").await.0, StatusCode::OK);
}
