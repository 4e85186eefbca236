//! Step 1 and 2: the [`Provider`] implementation and its capabilities.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::Utc;
use faas_core::{
    validate, Body, Capabilities, FunctionDeployment, FunctionNamespace, FunctionRef, FunctionStatus, LogRequest,
    LogStream, Provider, ProviderInfo, Result, Secret, VersionInfo, DEFAULT_NAMESPACE,
};
use http::{Request, Response};

use crate::error::{MemoryError, PROVIDER};
use crate::handler::{boxed, FunctionContext, Handler};
use crate::logs::{LogBook, Logger};
use crate::state::State;

/// How many log messages are kept by default, across all functions.
pub const DEFAULT_LOG_CAPACITY: usize = 10_000;

/// A provider that keeps everything in memory and serves each function
/// with the async handler registered for its image.
///
/// Build it with [`InMemoryProvider::new`] and
/// [`InMemoryProvider::with_handler`], then share it as an
/// `Arc<dyn Provider>`. Deploying a function whose image has no handler is
/// `Invalid { field: "image" }`. Replicas are bookkeeping: every call runs
/// the same handler, and `availableReplicas` equals `replicas` at once.
pub struct InMemoryProvider {
    state: Mutex<State>,
    handlers: HashMap<String, Handler>,
    logs: Arc<LogBook>,
}

impl InMemoryProvider {
    /// A provider with no handlers, the default namespace, and room for
    /// [`DEFAULT_LOG_CAPACITY`] log messages.
    pub fn new() -> Self {
        InMemoryProvider {
            state: Mutex::new(State::new()),
            handlers: HashMap::new(),
            logs: Arc::new(LogBook::new(DEFAULT_LOG_CAPACITY)),
        }
    }

    /// Serves functions deployed with `image` by `handler`, which gets each
    /// request and the function's [`FunctionContext`].
    pub fn with_handler<F, Fut>(mut self, image: impl Into<String>, handler: F) -> Self
    where
        F: Fn(Request<Body>, FunctionContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        self.handlers.insert(image.into(), boxed(handler));
        self
    }

    /// Keeps the latest `capacity` log messages (across all functions)
    /// instead of [`DEFAULT_LOG_CAPACITY`]. Drops any messages so far.
    pub fn with_log_capacity(mut self, capacity: usize) -> Self {
        self.logs = Arc::new(LogBook::new(capacity));
        self
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is consistent after every statement, so a panic
        // elsewhere while holding the lock does not corrupt it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Validates a deployment the way the HTTP API would, and checks that
    /// its image has a handler.
    fn check(&self, deployment: &FunctionDeployment) -> Result<()> {
        deployment.validate()?;
        if !self.handlers.contains_key(&deployment.image) {
            return Err(MemoryError::UnknownImage { image: deployment.image.clone() }.into());
        }
        Ok(())
    }
}

impl Default for InMemoryProvider {
    fn default() -> Self {
        InMemoryProvider::new()
    }
}

impl std::fmt::Debug for InMemoryProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryProvider").field("images", &self.handlers.keys().collect::<Vec<_>>()).finish()
    }
}

/// The namespace a secret lives in, with the default standing in for none.
fn secret_namespace(secret: &Secret) -> &str {
    if secret.namespace.is_empty() {
        DEFAULT_NAMESPACE
    } else {
        &secret.namespace
    }
}

/// Checks a namespace's name and metadata keys.
fn check_namespace(namespace: &FunctionNamespace) -> Result<()> {
    validate::namespace("name", &namespace.name)?;
    for key in namespace.labels.keys() {
        validate::label_key(&format!("labels.{key}"), key)?;
    }
    for key in namespace.annotations.keys() {
        validate::label_key(&format!("annotations.{key}"), key)?;
    }
    Ok(())
}

#[async_trait]
impl Provider for InMemoryProvider {
    async fn info(&self) -> Result<ProviderInfo> {
        Ok(ProviderInfo {
            name: PROVIDER.to_owned(),
            version: VersionInfo { release: env!("CARGO_PKG_VERSION").to_owned(), ..VersionInfo::default() },
            orchestration: "in-process".to_owned(),
            sandbox: None,
        })
    }

    /// Step 2: declare what you support. Anything declared false must
    /// return `Error::Unsupported`; the conformance kit checks both halves.
    fn capabilities(&self) -> Capabilities {
        let mut capabilities = Capabilities::all();
        // Nothing runs: there is no CPU use to measure.
        capabilities.cpu_usage = false;
        capabilities
    }

    /// The namespace a request without one is about.
    fn default_namespace(&self) -> &str {
        faas_core::DEFAULT_NAMESPACE
    }

    async fn list(&self, namespace: &str) -> Result<Vec<FunctionStatus>> {
        Ok(self.state().list(namespace)?)
    }

    async fn status(&self, function: &FunctionRef) -> Result<FunctionStatus> {
        Ok(self.state().status(function)?)
    }

    async fn deploy(&self, deployment: FunctionDeployment) -> Result<()> {
        self.check(&deployment)?;
        // `com.openfaas.scale.min`, else 1: the status shows the desired
        // replicas from the moment deploy returns.
        let replicas = deployment.initial_replicas()?;
        Ok(self.state().deploy(deployment, replicas, Utc::now())?)
    }

    async fn update(&self, deployment: FunctionDeployment) -> Result<()> {
        self.check(&deployment)?;
        Ok(self.state().update(deployment)?)
    }

    async fn delete(&self, function: &FunctionRef) -> Result<()> {
        Ok(self.state().delete(function)?)
    }

    async fn scale(&self, function: &FunctionRef, replicas: u64) -> Result<()> {
        validate::replicas("replicas", replicas)?;
        Ok(self.state().scale(function, replicas)?)
    }

    async fn invoke(&self, function: &FunctionRef, request: Request<Body>) -> Result<Response<Body>> {
        // The lock is released at the end of this statement, before the
        // handler runs: calls proceed concurrently.
        let call = self.state().begin_invocation(function)?;
        let handler = self.handlers.get(&call.image).ok_or(MemoryError::UnknownImage { image: call.image })?;
        let context = FunctionContext {
            name: function.name.clone(),
            namespace: function.namespace.clone(),
            instance: call.instance,
            env: call.env,
            secrets: call.secrets,
            logger: Logger::new(self.logs.clone(), &function.name, &function.namespace),
        };
        Ok(handler(request, context).await)
    }

    async fn list_secrets(&self, namespace: &str) -> Result<Vec<Secret>> {
        Ok(self.state().list_secrets(namespace)?)
    }

    async fn create_secret(&self, secret: Secret) -> Result<()> {
        secret.validate()?;
        Ok(self.state().create_secret(secret_namespace(&secret), &secret.name, secret.bytes())?)
    }

    async fn update_secret(&self, secret: Secret) -> Result<()> {
        secret.validate()?;
        Ok(self.state().update_secret(secret_namespace(&secret), &secret.name, secret.bytes())?)
    }

    async fn delete_secret(&self, namespace: &str, name: &str) -> Result<()> {
        Ok(self.state().delete_secret(namespace, name)?)
    }

    async fn logs(&self, request: LogRequest) -> Result<LogStream> {
        let function = FunctionRef::new(&request.name, &request.namespace);
        self.state().status(&function)?;
        let request = LogRequest { namespace: function.namespace, ..request };
        Ok(self.logs.read(&request))
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        Ok(self.state().list_namespaces())
    }

    async fn get_namespace(&self, name: &str) -> Result<FunctionNamespace> {
        Ok(self.state().get_namespace(name)?)
    }

    async fn create_namespace(&self, namespace: FunctionNamespace) -> Result<()> {
        check_namespace(&namespace)?;
        Ok(self.state().create_namespace(namespace)?)
    }

    async fn update_namespace(&self, namespace: FunctionNamespace) -> Result<()> {
        check_namespace(&namespace)?;
        Ok(self.state().update_namespace(namespace)?)
    }

    async fn delete_namespace(&self, name: &str) -> Result<()> {
        Ok(self.state().delete_namespace(name)?)
    }

    async fn cpu_usage(&self, _function: &FunctionRef) -> Result<std::time::Duration> {
        Err(faas_core::Error::unsupported(PROVIDER, "CPU measurement"))
    }
}
