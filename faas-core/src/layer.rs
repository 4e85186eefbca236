//! Wrapping a provider: cross-cutting behaviour (metrics, scaling,
//! tracing, fault injection in tests) written once, around any provider.

use std::time::Duration;

use async_trait::async_trait;
use http::{Request, Response};

use crate::body::Body;
use crate::error::Result;
use crate::provider::{Capabilities, LogStream, Provider};
use crate::types::{
    FunctionDeployment, FunctionNamespace, FunctionRef, FunctionStatus, LogRequest, ProviderInfo, Secret,
};

/// A provider that wraps another: every operation it does not override is
/// forwarded to [`Layer::inner`] unchanged, and every `Layer` is a
/// [`Provider`] (blanket impl), so it serves wherever a provider does.
///
/// Write only what the layer changes:
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use faas_core::{Body, FunctionRef, Layer, Provider, Result, SharedProvider};
/// use http::{Request, Response};
///
/// /// Counts calls, and changes nothing else.
/// struct Counted { inner: SharedProvider, calls: AtomicU64 }
///
/// #[async_trait::async_trait]
/// impl Layer for Counted {
///     fn inner(&self) -> &dyn Provider {
///         &*self.inner
///     }
///     async fn invoke(&self, function: &FunctionRef, request: Request<Body>) -> Result<Response<Body>> {
///         self.calls.fetch_add(1, Ordering::Relaxed);
///         self.inner.invoke(function, request).await
///     }
/// }
/// ```
///
/// The [`Provider`] trait itself has no default bodies: a backend must
/// decide every operation. Only wrappers get forwarding for free. Each
/// layer adds one boxed future per call it forwards.
#[async_trait]
#[allow(missing_docs)] // each method is the Provider method of the same name
pub trait Layer: Send + Sync + 'static {
    /// The wrapped provider.
    fn inner(&self) -> &dyn Provider;

    async fn info(&self) -> Result<ProviderInfo> {
        self.inner().info().await
    }
    fn capabilities(&self) -> Capabilities {
        self.inner().capabilities()
    }
    fn default_namespace(&self) -> &str {
        self.inner().default_namespace()
    }
    async fn list(&self, namespace: &str) -> Result<Vec<FunctionStatus>> {
        self.inner().list(namespace).await
    }
    async fn status(&self, function: &FunctionRef) -> Result<FunctionStatus> {
        self.inner().status(function).await
    }
    async fn deploy(&self, deployment: FunctionDeployment) -> Result<()> {
        self.inner().deploy(deployment).await
    }
    async fn update(&self, deployment: FunctionDeployment) -> Result<()> {
        self.inner().update(deployment).await
    }
    async fn delete(&self, function: &FunctionRef) -> Result<()> {
        self.inner().delete(function).await
    }
    async fn scale(&self, function: &FunctionRef, replicas: u64) -> Result<()> {
        self.inner().scale(function, replicas).await
    }
    async fn invoke(&self, function: &FunctionRef, request: Request<Body>) -> Result<Response<Body>> {
        self.inner().invoke(function, request).await
    }
    async fn list_secrets(&self, namespace: &str) -> Result<Vec<Secret>> {
        self.inner().list_secrets(namespace).await
    }
    async fn create_secret(&self, secret: Secret) -> Result<()> {
        self.inner().create_secret(secret).await
    }
    async fn update_secret(&self, secret: Secret) -> Result<()> {
        self.inner().update_secret(secret).await
    }
    async fn delete_secret(&self, namespace: &str, name: &str) -> Result<()> {
        self.inner().delete_secret(namespace, name).await
    }
    async fn logs(&self, request: LogRequest) -> Result<LogStream> {
        self.inner().logs(request).await
    }
    async fn list_namespaces(&self) -> Result<Vec<String>> {
        self.inner().list_namespaces().await
    }
    async fn get_namespace(&self, name: &str) -> Result<FunctionNamespace> {
        self.inner().get_namespace(name).await
    }
    async fn create_namespace(&self, namespace: FunctionNamespace) -> Result<()> {
        self.inner().create_namespace(namespace).await
    }
    async fn update_namespace(&self, namespace: FunctionNamespace) -> Result<()> {
        self.inner().update_namespace(namespace).await
    }
    async fn delete_namespace(&self, name: &str) -> Result<()> {
        self.inner().delete_namespace(name).await
    }
    async fn cpu_usage(&self, function: &FunctionRef) -> Result<Duration> {
        self.inner().cpu_usage(function).await
    }
}

#[async_trait]
impl<L: Layer> Provider for L {
    async fn info(&self) -> Result<ProviderInfo> {
        Layer::info(self).await
    }
    fn capabilities(&self) -> Capabilities {
        Layer::capabilities(self)
    }
    fn default_namespace(&self) -> &str {
        Layer::default_namespace(self)
    }
    async fn list(&self, namespace: &str) -> Result<Vec<FunctionStatus>> {
        Layer::list(self, namespace).await
    }
    async fn status(&self, function: &FunctionRef) -> Result<FunctionStatus> {
        Layer::status(self, function).await
    }
    async fn deploy(&self, deployment: FunctionDeployment) -> Result<()> {
        Layer::deploy(self, deployment).await
    }
    async fn update(&self, deployment: FunctionDeployment) -> Result<()> {
        Layer::update(self, deployment).await
    }
    async fn delete(&self, function: &FunctionRef) -> Result<()> {
        Layer::delete(self, function).await
    }
    async fn scale(&self, function: &FunctionRef, replicas: u64) -> Result<()> {
        Layer::scale(self, function, replicas).await
    }
    async fn invoke(&self, function: &FunctionRef, request: Request<Body>) -> Result<Response<Body>> {
        Layer::invoke(self, function, request).await
    }
    async fn list_secrets(&self, namespace: &str) -> Result<Vec<Secret>> {
        Layer::list_secrets(self, namespace).await
    }
    async fn create_secret(&self, secret: Secret) -> Result<()> {
        Layer::create_secret(self, secret).await
    }
    async fn update_secret(&self, secret: Secret) -> Result<()> {
        Layer::update_secret(self, secret).await
    }
    async fn delete_secret(&self, namespace: &str, name: &str) -> Result<()> {
        Layer::delete_secret(self, namespace, name).await
    }
    async fn logs(&self, request: LogRequest) -> Result<LogStream> {
        Layer::logs(self, request).await
    }
    async fn list_namespaces(&self) -> Result<Vec<String>> {
        Layer::list_namespaces(self).await
    }
    async fn get_namespace(&self, name: &str) -> Result<FunctionNamespace> {
        Layer::get_namespace(self, name).await
    }
    async fn create_namespace(&self, namespace: FunctionNamespace) -> Result<()> {
        Layer::create_namespace(self, namespace).await
    }
    async fn update_namespace(&self, namespace: FunctionNamespace) -> Result<()> {
        Layer::update_namespace(self, namespace).await
    }
    async fn delete_namespace(&self, name: &str) -> Result<()> {
        Layer::delete_namespace(self, name).await
    }
    async fn cpu_usage(&self, function: &FunctionRef) -> Result<Duration> {
        Layer::cpu_usage(self, function).await
    }
}
