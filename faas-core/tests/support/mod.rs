//! A small in-memory provider for exercising the HTTP API: it keeps
//! functions and secrets like a real backend, answers invocations with an
//! echo of what reached it, and can be told to fail in chosen ways.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use faas_core::{
    Body, BoxError, Capabilities, Error, FunctionDeployment, FunctionNamespace, FunctionRef, FunctionStatus,
    LogMessage, LogRequest, LogStream, Provider, ProviderInfo, Result, Secret, SoleNamespace, VersionInfo,
};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;

/// The in-memory provider.
#[derive(Default)]
pub struct MemoryProvider {
    pub functions: Mutex<BTreeMap<FunctionRef, FunctionStatus>>,
    pub secrets: Mutex<BTreeMap<(String, String), Secret>>,
    pub caps: Capabilities,
    /// Set when a response body the provider produced was dropped.
    pub dropped_bodies: Arc<AtomicU64>,
    /// Log messages served by `logs`, and how many more to send slowly when following.
    pub logs: Mutex<Vec<LogMessage>>,
}

impl MemoryProvider {
    pub fn new() -> Self {
        MemoryProvider { caps: Capabilities::all(), ..Default::default() }
    }

    pub fn without_optional_features() -> Self {
        MemoryProvider::default()
    }

    pub fn shared(self) -> Arc<dyn Provider> {
        Arc::new(self)
    }

    fn check(&self, on: bool, what: &str) -> Result<()> {
        if on {
            Ok(())
        } else {
            Err(Error::unsupported("memory", what))
        }
    }
}

/// Functions whose name starts with `fail-<variant>` make every operation
/// fail with that error variant.
fn scripted_failure(name: &str) -> Option<Error> {
    let variant = name.strip_prefix("fail-")?;
    Some(match variant {
        "notfound" => Error::function_not_found(name, "openfaas-fn"),
        "exists" => Error::AlreadyExists { kind: "function", name: name.into() },
        "invalid" => Error::invalid("envProcess", "nope"),
        "toolarge" => Error::PayloadTooLarge { limit: 1 },
        "unsupported" => Error::unsupported("memory", "this"),
        "overloaded" => Error::Overloaded { function: name.into() },
        "forbidden" => Error::forbidden("memory", "quota exhausted"),
        "unavailable" => Error::unavailable("memory", "backend down", None),
        "timeout" => Error::Timeout { what: "function call".into(), seconds: 1.0 },
        "nospace" => Error::InsufficientStorage { provider: "memory".into(), reason: "disk full".into(), source: None },
        "backend" => {
            let cause: BoxError = Box::new(std::io::Error::other("engine said no"));
            Error::backend("memory", "task failed", Some(cause))
        }
        _ => return None,
    })
}

/// Signals through a counter when dropped.
struct DropSignal(Arc<AtomicU64>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Provider for MemoryProvider {
    async fn info(&self) -> Result<ProviderInfo> {
        Ok(ProviderInfo {
            name: "memory".into(),
            orchestration: "none".into(),
            version: VersionInfo { sha: "abc".into(), release: "1.0.0".into(), ..Default::default() },
            sandbox: None,
        })
    }

    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    fn default_namespace(&self) -> &str {
        faas_core::DEFAULT_NAMESPACE
    }

    async fn list(&self, namespace: &str) -> Result<Vec<FunctionStatus>> {
        let functions = self.functions.lock().unwrap();
        Ok(functions.iter().filter(|(k, _)| k.namespace == namespace).map(|(_, v)| v.clone()).collect())
    }

    async fn status(&self, function: &FunctionRef) -> Result<FunctionStatus> {
        if let Some(err) = scripted_failure(&function.name) {
            return Err(err);
        }
        let functions = self.functions.lock().unwrap();
        functions.get(function).cloned().ok_or_else(|| Error::function_not_found(&function.name, &function.namespace))
    }

    async fn deploy(&self, deployment: FunctionDeployment) -> Result<()> {
        let key = deployment.function_ref();
        let mut functions = self.functions.lock().unwrap();
        if functions.contains_key(&key) {
            return Err(Error::AlreadyExists { kind: "function", name: key.to_string() });
        }
        let mut status = FunctionStatus::from_deployment(&deployment);
        status.replicas = 1;
        status.available_replicas = 1;
        functions.insert(key, status);
        Ok(())
    }

    async fn update(&self, deployment: FunctionDeployment) -> Result<()> {
        let key = deployment.function_ref();
        let mut functions = self.functions.lock().unwrap();
        let current = functions.get_mut(&key).ok_or_else(|| Error::function_not_found(&key.name, &key.namespace))?;
        let replicas = current.replicas;
        *current = FunctionStatus::from_deployment(&deployment);
        current.replicas = replicas;
        current.available_replicas = replicas;
        Ok(())
    }

    async fn delete(&self, function: &FunctionRef) -> Result<()> {
        let mut functions = self.functions.lock().unwrap();
        functions
            .remove(function)
            .map(drop)
            .ok_or_else(|| Error::function_not_found(&function.name, &function.namespace))
    }

    async fn scale(&self, function: &FunctionRef, replicas: u64) -> Result<()> {
        let mut functions = self.functions.lock().unwrap();
        let current = functions
            .get_mut(function)
            .ok_or_else(|| Error::function_not_found(&function.name, &function.namespace))?;
        current.replicas = replicas;
        current.available_replicas = replicas;
        Ok(())
    }

    /// `echo`: answers with what reached it (method, URI and the
    /// `x-test` header in response headers, the body streamed back).
    /// `crash`: answers the function's own 500. `fail-*`: the scripted error.
    async fn invoke(&self, function: &FunctionRef, request: Request<Body>) -> Result<Response<Body>> {
        if let Some(err) = scripted_failure(&function.name) {
            return Err(err);
        }
        if !self.functions.lock().unwrap().contains_key(function) {
            return Err(Error::function_not_found(&function.name, &function.namespace));
        }
        if function.name == "crash" {
            return Ok(Response::builder().status(StatusCode::INTERNAL_SERVER_ERROR).body(Body::from("boom")).unwrap());
        }
        let (parts, body) = request.into_parts();
        let signal = DropSignal(self.dropped_bodies.clone());
        let frames = body.into_data_stream();
        let echoed = futures_util::StreamExt::map(frames, move |chunk| {
            let _keep = &signal;
            chunk
        });
        let mut builder = Response::builder()
            .header("x-echo-method", parts.method.as_str())
            .header("x-echo-uri", parts.uri.to_string())
            .header("x-echo-function", function.to_string());
        for name in ["x-test", "x-call-id", "x-start-time"] {
            if let Some(value) = parts.headers.get(name) {
                builder = builder.header(format!("x-echo-{name}"), value);
            }
        }
        Ok(builder.body(Body::from_stream(echoed)).unwrap())
    }

    async fn list_secrets(&self, namespace: &str) -> Result<Vec<Secret>> {
        self.check(self.caps.secrets, "secrets")?;
        let secrets = self.secrets.lock().unwrap();
        Ok(secrets.iter().filter(|((ns, _), _)| ns == namespace).map(|(_, s)| s.clone()).collect())
    }

    async fn create_secret(&self, secret: Secret) -> Result<()> {
        self.check(self.caps.secrets, "secrets")?;
        let mut secrets = self.secrets.lock().unwrap();
        let key = (secret.namespace.clone(), secret.name.clone());
        if secrets.contains_key(&key) {
            return Err(Error::AlreadyExists { kind: "secret", name: secret.name });
        }
        secrets.insert(key, secret);
        Ok(())
    }

    async fn update_secret(&self, secret: Secret) -> Result<()> {
        self.check(self.caps.secrets, "secrets")?;
        let mut secrets = self.secrets.lock().unwrap();
        let key = (secret.namespace.clone(), secret.name.clone());
        match secrets.get_mut(&key) {
            Some(current) => {
                *current = secret;
                Ok(())
            }
            None => Err(Error::NotFound { kind: "secret", name: secret.name }),
        }
    }

    async fn delete_secret(&self, namespace: &str, name: &str) -> Result<()> {
        self.check(self.caps.secrets, "secrets")?;
        let mut secrets = self.secrets.lock().unwrap();
        secrets
            .remove(&(namespace.to_owned(), name.to_owned()))
            .map(drop)
            .ok_or_else(|| Error::NotFound { kind: "secret", name: name.to_owned() })
    }

    /// Serves the stored messages of the function; with follow, then sends
    /// one more message every 50 ms, forever.
    async fn logs(&self, request: LogRequest) -> Result<LogStream> {
        self.check(self.caps.logs, "logs")?;
        let stored: Vec<_> = self.logs.lock().unwrap().iter().filter(|m| m.name == request.name).cloned().collect();
        let head = futures_util::stream::iter(stored.into_iter().map(Ok));
        if !request.follow {
            return Ok(Box::pin(head));
        }
        let name = request.name.clone();
        let tail = futures_util::stream::unfold(0u64, move |n| {
            let name = name.clone();
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                let message = LogMessage {
                    name,
                    namespace: "openfaas-fn".into(),
                    instance: "live".into(),
                    timestamp: chrono::Utc::now(),
                    text: format!("live {n}"),
                };
                Some((Ok(message), n + 1))
            }
        });
        Ok(Box::pin(futures_util::StreamExt::chain(head, tail)))
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        if !self.caps.namespaces {
            return Ok(SoleNamespace::default().list());
        }
        Ok(vec!["openfaas-fn".into(), "team-a".into()])
    }

    async fn get_namespace(&self, name: &str) -> Result<FunctionNamespace> {
        if !self.caps.namespaces {
            return SoleNamespace::default().get(name);
        }
        match name {
            "openfaas-fn" | "team-a" => Ok(FunctionNamespace { name: name.into(), ..Default::default() }),
            _ => Err(Error::NotFound { kind: "namespace", name: name.into() }),
        }
    }

    async fn create_namespace(&self, namespace: FunctionNamespace) -> Result<()> {
        self.check(self.caps.manage_namespaces, "namespace creation")?;
        match namespace.name.as_str() {
            "openfaas-fn" | "team-a" => Err(Error::AlreadyExists { kind: "namespace", name: namespace.name }),
            _ => Ok(()),
        }
    }

    async fn update_namespace(&self, namespace: FunctionNamespace) -> Result<()> {
        self.check(self.caps.manage_namespaces, "namespace updates")?;
        self.get_namespace(&namespace.name).await.map(drop)
    }

    async fn delete_namespace(&self, name: &str) -> Result<()> {
        self.check(self.caps.manage_namespaces, "namespace deletion")?;
        self.get_namespace(name).await.map(drop)
    }

    async fn cpu_usage(&self, function: &FunctionRef) -> Result<std::time::Duration> {
        self.check(self.caps.cpu_usage, "CPU measurement")?;
        self.status(function).await.map(|_| std::time::Duration::ZERO)
    }
}

/// Reads a whole response body (test bodies are small).
pub async fn body_bytes(body: axum::body::Body) -> Bytes {
    body.collect().await.expect("body").to_bytes()
}

/// Serves `router` on a free loopback port; returns its address.
pub async fn serve(router: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    addr
}

/// An HTTP/1 connection to `addr`; the connection task is returned so a
/// test can drop it to hang up.
pub async fn connect(
    addr: std::net::SocketAddr,
) -> (hyper::client::conn::http1::SendRequest<AxumBody>, tokio::task::JoinHandle<()>) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.expect("handshake");
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    (sender, task)
}

type AxumBody = axum::body::Body;
