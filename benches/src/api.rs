//! The gateway's API, as the scenarios use it: deploy, scale, delete, list,
//! invoke.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use crate::Res;

/// The label setting a new function's replicas.
const SCALE_MIN: &str = "com.openfaas.scale.min";
/// The label letting a function scale to zero (OpenFaaS's, read by the
/// gateway's scale-from-zero layer when there is one).
const SCALE_ZERO: &str = "com.openfaas.scale.zero";

/// A deployment of `name` running `process` in `mode`, starting at
/// `replicas` (the provider's default of 1 when `None`).
pub fn deployment(name: &str, process: &str, mode: &str, replicas: Option<u64>) -> Value {
    let mut spec = json!({
        "service": name,
        "image": "faas-bench",
        "envProcess": process,
        "envVars": { "mode": mode },
    });
    match replicas {
        // A gateway with a scale-from-zero layer wants zero allowed explicitly.
        Some(0) => spec["labels"] = json!({ SCALE_MIN: "0", SCALE_ZERO: "true" }),
        Some(n) => spec["labels"] = json!({ SCALE_MIN: n.to_string() }),
        None => {}
    }
    spec
}

/// A client of one gateway (pooled keep-alive connections).
#[derive(Clone)]
pub struct Api {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Api {
    pub fn new(addr: SocketAddr) -> Api {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        // Idle connections are dropped after IDLE, below the gateway's
        // read timeout (10 s by default), which also closes keep-alive
        // connections left idle that long: a client that kept them longer
        // could send a call on one at the moment the gateway closed it (the
        // HTTP/1 keep-alive race, "client error (SendRequest)"), an error of
        // the client's pooling, not of the gateway.
        const IDLE: Duration = Duration::from_secs(5);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(connector);
        Api { client, base: format!("http://{addr}") }
    }

    pub async fn request(&self, method: Method, path: &str, body: Bytes) -> Res<(StatusCode, Bytes)> {
        self.send(self.builder(method, path).body(Full::new(body))?).await
    }

    /// A request to `path` on this gateway, to add headers to.
    pub fn builder(&self, method: Method, path: &str) -> http::request::Builder {
        Request::builder().method(method).uri(format!("{}{path}", self.base))
    }

    /// Sends `request` and reads the whole answer (60 s at most).
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Res<(StatusCode, Bytes)> {
        let path = request.uri().path().to_owned();
        let read = async {
            let response = self.open(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, crate::BoxError>((status, body))
        };
        tokio::time::timeout(Duration::from_secs(60), read)
            .await
            .map_err(|_| format!("{path}: no answer within 60s"))?
    }

    /// Sends `request` and returns as soon as the head arrives (60 s at
    /// most), the body still streaming.
    pub async fn open(&self, request: Request<Full<Bytes>>) -> Res<http::Response<hyper::body::Incoming>> {
        let path = request.uri().path().to_owned();
        Ok(tokio::time::timeout(Duration::from_secs(60), self.client.request(request))
            .await
            .map_err(|_| format!("{path}: no answer within 60s"))??)
    }

    async fn expect(&self, method: Method, path: &str, body: Value, want: StatusCode) -> Res<()> {
        let (status, answer) = self.request(method.clone(), path, Bytes::from(body.to_string())).await?;
        if status != want {
            return Err(format!("{method} {path}: {status}: {}", String::from_utf8_lossy(&answer)).into());
        }
        Ok(())
    }

    pub async fn deploy(&self, spec: &Value) -> Res<()> {
        self.expect(Method::POST, "/system/functions", spec.clone(), StatusCode::ACCEPTED).await
    }

    /// `PUT /system/functions`: replaces a deployment.
    pub async fn update(&self, spec: &Value) -> Res<()> {
        self.expect(Method::PUT, "/system/functions", spec.clone(), StatusCode::ACCEPTED).await
    }

    pub async fn delete(&self, name: &str) -> Res<()> {
        self.expect(Method::DELETE, "/system/functions", json!({ "functionName": name }), StatusCode::ACCEPTED).await
    }

    pub async fn scale(&self, name: &str, replicas: u64) -> Res<()> {
        let body = json!({ "serviceName": name, "replicas": replicas });
        self.expect(Method::POST, &format!("/system/scale-function/{name}"), body, StatusCode::ACCEPTED).await
    }

    /// `GET /system/functions`: how long the whole answer took and how many
    /// functions it listed.
    pub async fn list(&self) -> Res<(Duration, usize)> {
        let started = Instant::now();
        let (status, body) = self.request(Method::GET, "/system/functions", Bytes::new()).await?;
        let took = started.elapsed();
        if status != StatusCode::OK {
            return Err(format!("list: {status}").into());
        }
        let functions: Vec<Value> = serde_json::from_slice(&body)?;
        Ok((took, functions.len()))
    }

    pub async fn invoke(&self, name: &str, payload: &Bytes) -> Res<(StatusCode, Bytes)> {
        self.request(Method::POST, &format!("/function/{name}"), payload.clone()).await
    }

    /// Calls `name` until it answers 200 with `payload` echoed, for up to
    /// `limit`; the time that took.
    pub async fn first_ok(&self, name: &str, payload: &Bytes, limit: Duration) -> Res<Duration> {
        self.first_answer(name, payload, payload, limit).await
    }

    /// Calls `name` with `payload` until it answers 200 with `expected`,
    /// for up to `limit`; the time that took.
    pub async fn first_answer(&self, name: &str, payload: &Bytes, expected: &[u8], limit: Duration) -> Res<Duration> {
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < limit {
            match self.invoke(name, payload).await {
                Ok((StatusCode::OK, body)) if body == expected => return Ok(started.elapsed()),
                Ok((StatusCode::OK, body)) => {
                    return Err(format!("{name} answered a wrong body {:?}", String::from_utf8_lossy(&body)).into())
                }
                Ok((status, body)) => last = format!("{status}: {}", String::from_utf8_lossy(&body)),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Err(format!("{name} did not answer 200 within {limit:?}; last: {last}").into())
    }
}

/// Waits until `addr` accepts TCP connections.
pub async fn wait_listening(addr: SocketAddr, limit: Duration) -> Res<()> {
    let started = Instant::now();
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if started.elapsed() > limit {
            return Err(format!("nothing listens on {addr} after {limit:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
