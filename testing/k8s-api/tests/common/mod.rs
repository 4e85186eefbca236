//! A plain HTTP/1.1 client for the tests (hyper), and polling helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use serde_json::Value;

/// How long any wait in the tests may take.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A client for one server.
#[derive(Clone, Debug)]
pub struct Client {
    pub addr: SocketAddr,
}

/// A response, body read.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client { addr }
    }

    /// Sends a request and returns the response with its body unread.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> std::io::Result<http::Response<Incoming>> {
        self.send_accept(method, path, content_type, body, "application/json").await
    }

    /// Sends a request with an Accept header.
    pub async fn send_accept(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
        accept: &str,
    ) -> std::io::Result<http::Response<Incoming>> {
        let stream = tokio::net::TcpStream::connect(self.addr).await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(connection);
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string())
            .header("accept", accept);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let request = request.body(Full::new(Bytes::from(body))).map_err(std::io::Error::other)?;
        sender.send_request(request).await.map_err(std::io::Error::other)
    }

    pub async fn request(&self, method: &str, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Reply {
        let response = self.send(method, path, content_type, body).await.expect("request");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Reply { status: parts.status.as_u16(), headers: parts.headers, body }
    }

    /// GET with an Accept header.
    pub async fn get_accept(&self, path: &str, accept: &str) -> Reply {
        let response = self.send_accept("GET", path, None, Vec::new(), accept).await.expect("request");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Reply { status: parts.status.as_u16(), headers: parts.headers, body }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request("GET", path, None, Vec::new()).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.request("POST", path, Some("application/json"), body.to_string().into_bytes()).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.request("PUT", path, Some("application/json"), body.to_string().into_bytes()).await
    }

    pub async fn patch(&self, path: &str, content_type: &str, body: &Value) -> Reply {
        self.request("PATCH", path, Some(content_type), body.to_string().into_bytes()).await
    }

    pub async fn delete(&self, path: &str, options: Option<&Value>) -> Reply {
        let body = options.map(|o| o.to_string().into_bytes()).unwrap_or_default();
        self.request("DELETE", path, options.map(|_| "application/json"), body).await
    }

    /// Opens a streaming GET (watch, log follow).
    pub async fn stream(&self, path: &str) -> Lines {
        let response = self.send("GET", path, None, Vec::new()).await.expect("stream");
        assert_eq!(response.status(), 200, "{path}");
        Lines { body: response.into_body(), buffer: Vec::new() }
    }
}

/// Lines of a streamed body.
pub struct Lines {
    body: Incoming,
    buffer: Vec<u8>,
}

impl Lines {
    /// The next line, None at the end of the stream; panics after DEADLINE.
    pub async fn next(&mut self) -> Option<String> {
        tokio::time::timeout(DEADLINE, self.next_inner()).await.expect("a line within the deadline")
    }

    async fn next_inner(&mut self) -> Option<String> {
        loop {
            if let Some(pos) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=pos).collect();
                return Some(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
                _ => {
                    if self.buffer.is_empty() {
                        return None;
                    }
                    let line = std::mem::take(&mut self.buffer);
                    return Some(String::from_utf8_lossy(&line).into_owned());
                }
            }
        }
    }

    /// The next watch event as JSON.
    pub async fn event(&mut self) -> Option<Value> {
        let line = self.next().await?;
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("event {line:?}: {e}")))
    }
}

/// Polls `check` until it returns Some, for at most DEADLINE.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts a Status error's shape.
pub fn assert_status(reply: &Reply, code: u16, reason: &str) -> Value {
    assert_eq!(reply.status, code, "{}", reply.text());
    let status = reply.json();
    assert_eq!(status["kind"], "Status", "{status}");
    assert_eq!(status["apiVersion"], "v1");
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], reason, "{status}");
    assert_eq!(status["code"], code);
    assert!(status["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(status["metadata"].is_object());
    status
}

/// A namespace object.
pub fn namespace(name: &str) -> Value {
    serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// A deployment running `fprocess` with the watchdog's readiness probe.
pub fn deployment(name: &str, replicas: i64, env: &[(&str, &str)]) -> Value {
    let env: Vec<Value> = env.iter().map(|(k, v)| serde_json::json!({"name": k, "value": v})).collect();
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"faas_function": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"faas_function": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": {"faas_function": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [{
                        "name": name,
                        "image": "example/fn:1",
                        "env": env,
                        "ports": [{"containerPort": 8080, "name": "http"}],
                        "readinessProbe": {"httpGet": {"path": "/_/ready", "port": 8080}, "periodSeconds": 1},
                    }],
                },
            },
        },
    })
}

/// A ClusterIP service selecting `faas_function=<name>` on port 8080.
pub fn service(name: &str) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"faas_function": name}},
        "spec": {"selector": {"faas_function": name}, "ports": [{"name": "http", "port": 8080, "targetPort": 8080}]},
    })
}

/// Writes an executable shell script; returns its path.
pub fn script(dir: &std::path::Path, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.display().to_string()
}
