//! The shared client against real sockets: instances are small HTTP
//! servers on 127.0.0.1 that echo what they received.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faas_core::{Body, FunctionRef};
use faas_upstream::{Attempt, Call, Refresh, Targets, Upstream, UpstreamError, POOL_IDLE};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// An instance: answers with its `name`, the `Host` and `Connection`
/// headers it saw, and the body it read; counts the connections it
/// accepted and those that ended.
struct Instance {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
}

async fn instance(name: &'static str) -> Instance {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let (counter, ended) = (connections.clone(), closed.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let ended = ended.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<hyper::body::Incoming>| async move {
                    let host =
                        request.headers().get("host").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
                    let hop = request.headers().contains_key("x-hop");
                    let body = request.into_body().collect().await.unwrap().to_bytes();
                    let text = format!("{name} host={host} hop={hop} body={}", String::from_utf8_lossy(&body));
                    let response = Response::builder()
                        .header("connection", "x-private")
                        .header("x-private", "1")
                        .body(http_body_util::Full::new(Bytes::from(text)))
                        .unwrap();
                    Ok::<_, Infallible>(response)
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                ended.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    Instance { addr, connections, closed }
}

/// An address nothing listens on.
fn dead() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A request whose body streams in two chunks.
fn request(host: Option<&str>) -> Request<Body> {
    let chunks = futures_util::stream::iter([Ok::<_, Infallible>(Bytes::from("pay")), Ok(Bytes::from("load"))]);
    let mut builder = Request::post("/p?q=1").header("connection", "x-hop").header("x-hop", "1");
    if let Some(host) = host {
        builder = builder.header("host", host);
    }
    builder.body(Body::from_stream(chunks)).unwrap()
}

async fn text(response: Response<Body>) -> String {
    String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

#[tokio::test]
async fn a_refused_instance_is_skipped_with_the_streaming_body_intact() {
    let live = instance("a").await;
    let upstream = Upstream::new();
    let mut call = Call::new("f", request(Some("gateway.example:8080")));
    let targets = [dead(), live.addr];
    let Attempt::Answered(response) = upstream.send_any(&mut call, &targets, 0, None).await.unwrap() else {
        panic!("the live instance answers")
    };
    assert!(!response.headers().contains_key("x-private"), "hop-by-hop headers named by Connection are dropped");
    assert_eq!(text(response).await, "a host=gateway.example:8080 hop=false body=payload");
}

#[tokio::test]
async fn without_a_host_the_instance_address_is_sent() {
    let live = instance("a").await;
    let mut call = Call::new("f", request(None));
    let Attempt::Answered(response) = Upstream::new().send(&mut call, &live.addr, None).await.unwrap() else {
        panic!("answered")
    };
    assert_eq!(text(response).await, format!("a host={} hop=false body=payload", live.addr));
}

#[tokio::test]
async fn refusals_name_every_instance() {
    let (one, two) = (dead(), dead());
    let mut call = Call::new("f", request(None));
    let Attempt::Refused(reason) = Upstream::new().send_any(&mut call, &[one, two], 1, None).await.unwrap() else {
        panic!("nothing listens")
    };
    assert!(reason.contains(&one.to_string()) && reason.contains(&two.to_string()), "{reason}");
    assert!(reason.to_lowercase().contains("refused"), "{reason}");
    let mut call = Call::new("f", request(None));
    let none: [SocketAddr; 0] = [];
    let Attempt::Refused(reason) = Upstream::new().send_any(&mut call, &none, 0, None).await.unwrap() else {
        panic!("no instance")
    };
    assert_eq!(reason, "no running instance");
}

#[tokio::test]
async fn connections_are_pooled_across_calls() {
    let live = instance("a").await;
    let upstream = Upstream::new();
    for _ in 0..5 {
        let mut call = Call::new("f", Request::get("/").body(Body::empty()).unwrap());
        let Attempt::Answered(response) = upstream.send(&mut call, &live.addr, None).await.unwrap() else {
            panic!("answered")
        };
        text(response).await;
    }
    assert_eq!(live.connections.load(Ordering::SeqCst), 1, "five calls, one connection");
}

#[tokio::test]
async fn the_pool_closes_connections_idle_for_longer_than_pool_idle() {
    let live = instance("a").await;
    let upstream = Upstream::new();
    let mut call = Call::new("f", Request::get("/").body(Body::empty()).unwrap());
    let Attempt::Answered(response) = upstream.send(&mut call, &live.addr, None).await.unwrap() else {
        panic!("answered")
    };
    text(response).await;
    assert_eq!(live.closed.load(Ordering::SeqCst), 0, "the connection waits in the pool");
    // Nobody calls the instance again: only the pool's timer can close the
    // connection. The connection goes back to the pool on a task of its
    // own, so the clock may have to move past POOL_IDLE more than once.
    for _ in 0..3 {
        tokio::time::pause();
        tokio::time::advance(POOL_IDLE + Duration::from_secs(1)).await;
        tokio::time::resume();
        for _ in 0..100 {
            if live.closed.load(Ordering::SeqCst) == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    panic!("the idle connection is still open {} s after its call", 3 * (POOL_IDLE.as_secs() + 1));
}

#[tokio::test]
async fn a_silent_instance_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and never answers.
    let held = tokio::spawn(async move {
        let (_stream, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    let mut call = Call::new("f", request(None));
    let err = Upstream::new().send(&mut call, &addr, Some(Duration::from_millis(200))).await.unwrap_err();
    assert!(matches!(err, UpstreamError::TimedOut { .. }), "{err}");
    assert_eq!(err.into_error("swarm").status(), StatusCode::GATEWAY_TIMEOUT);
    held.abort();
}

#[tokio::test]
async fn targets_take_turns_and_are_cached() {
    let (a, b) = (instance("a").await, instance("b").await);
    let targets: Targets<SocketAddr> =
        Targets::new("test", Refresh { ttl: Duration::from_secs(600), ..Refresh::default() });
    let lookups = AtomicUsize::new(0);
    let function = FunctionRef::new("f", "ns");
    let mut seen = Vec::new();
    for _ in 0..4 {
        let response = targets
            .call(&Upstream::new(), &function, request(None), None, || {
                lookups.fetch_add(1, Ordering::SeqCst);
                let found = vec![a.addr, b.addr];
                async move { Ok::<_, faas_core::Error>(found) }
            })
            .await
            .unwrap();
        seen.push(text(response).await.chars().next().unwrap());
    }
    assert_eq!(lookups.load(Ordering::SeqCst), 1, "one lookup within the TTL");
    assert_eq!(seen.iter().filter(|c| **c == 'a').count(), 2, "{seen:?}");
    assert_eq!(seen.iter().filter(|c| **c == 'b').count(), 2, "{seen:?}");

    targets.forget(&function);
    targets
        .call(&Upstream::new(), &function, request(None), None, || {
            lookups.fetch_add(1, Ordering::SeqCst);
            let found = vec![a.addr];
            async move { Ok::<_, faas_core::Error>(found) }
        })
        .await
        .unwrap();
    assert_eq!(lookups.load(Ordering::SeqCst), 2, "a forgotten function is looked up again");
}

#[tokio::test]
async fn refused_calls_look_again_until_the_retry_window_closes() {
    let live = instance("a").await;
    let function = FunctionRef::new("f", "ns");
    let refresh =
        Refresh { ttl: Duration::from_secs(600), retry_for: Duration::ZERO, pause: Duration::from_millis(10) };
    let targets: Targets<SocketAddr> = Targets::new("cattle", refresh);
    // The cached instance is gone; the fresh lookup finds the new one.
    let lookups = AtomicUsize::new(0);
    let gone = dead();
    let response = targets
        .call(&Upstream::new(), &function, request(None), None, || {
            let n = lookups.fetch_add(1, Ordering::SeqCst);
            let found = if n == 0 { vec![gone] } else { vec![live.addr] };
            async move { Ok::<_, faas_core::Error>(found) }
        })
        .await
        .unwrap();
    assert_eq!(text(response).await, format!("a host={} hop=false body=payload", live.addr));
    assert_eq!(lookups.load(Ordering::SeqCst), 2);

    // Nothing ever listens: looked up again while the window is open, then 503.
    let refresh = Refresh { retry_for: Duration::from_millis(300), ..refresh };
    let targets: Targets<SocketAddr> = Targets::new("cattle", refresh);
    let lookups = AtomicUsize::new(0);
    let err = targets
        .call(&Upstream::new(), &function, request(None), None, || {
            lookups.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, faas_core::Error>(vec![gone]) }
        })
        .await
        .unwrap_err();
    assert!(lookups.load(Ordering::SeqCst) >= 3, "looked up again while the window was open");
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        err.message().starts_with("cattle backend unavailable: no instance of f.ns is reachable: 127.0.0.1:"),
        "{}",
        err.message()
    );
}
