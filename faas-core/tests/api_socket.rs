//! The HTTP API over a real loopback socket: invocation, cancellation when
//! the client hangs up, and logs that stream line by line.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use faas_core::api::{self, ApiConfig};
use faas_core::{FunctionDeployment, Provider};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use support::{connect, serve, MemoryProvider};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn invocation_round_trips_over_a_socket() {
    let provider = MemoryProvider::new();
    provider.deploy(FunctionDeployment { service: "echo".into(), ..Default::default() }).await.unwrap();
    let addr = serve(api::router(provider.shared(), ApiConfig::default())).await;
    let (mut sender, _conn) = connect(addr).await;
    for i in 0..3 {
        let request = Request::post(format!("/function/echo/p{i}?q={i}"))
            .header("host", "x")
            .body(Body::from(format!("hello {i}")))
            .unwrap();
        let response = timeout(LIMIT, sender.send_request(request)).await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-echo-uri"], format!("/p{i}?q={i}").as_str());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, format!("hello {i}"));
    }
}

#[tokio::test]
async fn hanging_up_mid_stream_drops_the_functions_response() {
    let provider = MemoryProvider::new();
    provider.deploy(FunctionDeployment { service: "echo".into(), ..Default::default() }).await.unwrap();
    let dropped = provider.dropped_bodies.clone();
    let addr = serve(api::router(provider.shared(), ApiConfig::default())).await;

    let (mut sender, conn) = connect(addr).await;
    // A request body that sends one chunk and then never ends.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tx.send(Ok(Bytes::from_static(b"first"))).await.unwrap();
    let body = Body::from_stream(tokio_stream_from(rx));
    let request = Request::post("/function/echo").header("host", "x").body(body).unwrap();
    let response = timeout(LIMIT, sender.send_request(request)).await.unwrap().unwrap();
    let mut body = response.into_body();
    let first = timeout(LIMIT, body.frame()).await.unwrap().unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "first");
    assert_eq!(dropped.load(Ordering::SeqCst), 0, "the call is still running");

    drop(body);
    drop(sender);
    conn.abort();
    timeout(LIMIT, async {
        while dropped.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the provider's response body was dropped after the client hung up");
    drop(tx);
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test]
async fn followed_logs_arrive_line_by_line() {
    let addr = serve(api::router(MemoryProvider::new().shared(), ApiConfig::default())).await;
    let (mut sender, _conn) = connect(addr).await;
    let request = Request::get("/system/logs?name=a&follow=true").header("host", "x").body(Body::empty()).unwrap();
    let response = timeout(LIMIT, sender.send_request(request)).await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    // The stream never ends; each message must arrive on its own, as written.
    for n in 0..3 {
        let frame = timeout(LIMIT, body.frame()).await.expect("a line within the limit").unwrap().unwrap();
        let line = frame.into_data().unwrap();
        let message: faas_core::LogMessage = serde_json::from_slice(&line).unwrap();
        assert_eq!(message.text, format!("live {n}"));
        assert!(line.ends_with(b"\n"));
    }
}
