//! The provider contract: what every backend implements.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_core::Stream;
use http::{Request, Response};

use crate::body::Body;
use crate::error::{Error, Result};
use crate::types::{
    FunctionDeployment, FunctionNamespace, FunctionRef, FunctionStatus, LogMessage, LogRequest, ProviderInfo, Secret,
    DEFAULT_NAMESPACE,
};

/// A stream of log messages; ends when the logs are exhausted, or never
/// while following.
pub type LogStream = Pin<Box<dyn Stream<Item = Result<LogMessage>> + Send>>;

/// Which optional operations a provider supports.
///
/// An operation whose flag is false returns [`crate::Error::Unsupported`];
/// the conformance suite checks both halves of that promise. Build one with
/// [`Capabilities::default`] (nothing optional) and set the flags that
/// apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// `list_secrets`, `create_secret`, `update_secret`, `delete_secret`.
    pub secrets: bool,
    /// `logs` without follow.
    pub logs: bool,
    /// `logs` with `follow: true`.
    pub log_follow: bool,
    /// More than one namespace: functions in namespaces other than the
    /// default one. `list_namespaces` and `get_namespace` work either way;
    /// without this flag they answer the provider's one namespace (see
    /// [`SoleNamespace`]), as OpenFaaS providers without namespaces do.
    pub namespaces: bool,
    /// `create_namespace`, `update_namespace`, `delete_namespace`.
    pub manage_namespaces: bool,
    /// `cpu_usage`: the provider can measure the CPU its functions use,
    /// so they can be autoscaled by CPU (`com.openfaas.scale.type=cpu`).
    pub cpu_usage: bool,
}

impl Capabilities {
    /// Every optional operation supported.
    pub fn all() -> Self {
        Capabilities {
            secrets: true,
            logs: true,
            log_follow: true,
            namespaces: true,
            manage_namespaces: true,
            cpu_usage: true,
        }
    }
}

/// A backend that runs functions: processes on this machine, Swarm
/// services, Kubernetes Deployments, Cattle services or anything else.
///
/// The trait is object-safe and used as `Arc<dyn Provider>`. Every method
/// is required: an operation a backend cannot do returns
/// [`crate::Error::Unsupported`] and is declared false in
/// [`Provider::capabilities`]. Cross-cutting behaviour (tracing, metrics,
/// scaling) is added by wrapping a provider, never inside one.
///
/// Namespaces passed in are always resolved: never empty (the HTTP API
/// fills in the provider's [`Provider::default_namespace`]). Deployments arrive validated
/// with [`FunctionDeployment::validate`] by the API, but a provider used as
/// a library should validate too.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The provider's name, version and orchestration.
    async fn info(&self) -> Result<ProviderInfo>;

    /// Which optional operations this provider supports.
    fn capabilities(&self) -> Capabilities;

    /// The namespace a request without one is about (most backends:
    /// [`crate::DEFAULT_NAMESPACE`]; a Kubernetes provider: its configured
    /// namespace). The HTTP API, the scaling layer and the metrics use it.
    fn default_namespace(&self) -> &str;

    /// Every function in `namespace`.
    async fn list(&self, namespace: &str) -> Result<Vec<FunctionStatus>>;

    /// One function's status; `NotFound` if it does not exist.
    async fn status(&self, function: &FunctionRef) -> Result<FunctionStatus>;

    /// Creates a function; `AlreadyExists` if the name is taken.
    async fn deploy(&self, deployment: FunctionDeployment) -> Result<()>;

    /// Replaces an existing function's deployment; `NotFound` if there is
    /// none. Replicas are kept.
    async fn update(&self, deployment: FunctionDeployment) -> Result<()>;

    /// Removes a function; `NotFound` if there is none.
    async fn delete(&self, function: &FunctionRef) -> Result<()>;

    /// Sets a function's desired replicas; `NotFound` if there is none.
    async fn scale(&self, function: &FunctionRef, replicas: u64) -> Result<()>;

    /// Calls a function. The request's URI holds the path below the
    /// function (`/` at least) and the query; method, headers and body are
    /// the caller's. Both bodies stream: dropping the response cancels the
    /// call.
    async fn invoke(&self, function: &FunctionRef, request: Request<Body>) -> Result<Response<Body>>;

    /// The secrets in `namespace`, without their values.
    async fn list_secrets(&self, namespace: &str) -> Result<Vec<Secret>>;

    /// Creates a secret; `AlreadyExists` if the name is taken.
    async fn create_secret(&self, secret: Secret) -> Result<()>;

    /// Replaces a secret's value; `NotFound` if there is none.
    async fn update_secret(&self, secret: Secret) -> Result<()>;

    /// Removes a secret; `NotFound` if there is none.
    async fn delete_secret(&self, namespace: &str, name: &str) -> Result<()>;

    /// A function's log messages, oldest first.
    async fn logs(&self, request: LogRequest) -> Result<LogStream>;

    /// The namespaces functions can be deployed to. Never `Unsupported`:
    /// a provider without [`Capabilities::namespaces`] lists its one
    /// namespace ([`SoleNamespace::list`]).
    async fn list_namespaces(&self) -> Result<Vec<String>>;

    /// One namespace; `NotFound` if it does not exist. Never
    /// `Unsupported` (see [`SoleNamespace::get`]).
    async fn get_namespace(&self, name: &str) -> Result<FunctionNamespace>;

    /// Creates a namespace; `AlreadyExists` if the name is taken.
    async fn create_namespace(&self, namespace: FunctionNamespace) -> Result<()>;

    /// Replaces a namespace's labels and annotations.
    async fn update_namespace(&self, namespace: FunctionNamespace) -> Result<()>;

    /// Removes a namespace; `NotFound` if it does not exist.
    async fn delete_namespace(&self, name: &str) -> Result<()>;

    /// The CPU time used so far by the function's replicas running now,
    /// summed (a replica that stops takes its share with it); `NotFound`
    /// if there is no such function. Read twice, it gives the CPU used in
    /// between: what scale type `cpu` scales by.
    async fn cpu_usage(&self, function: &FunctionRef) -> Result<Duration>;
}

/// A shared, type-erased provider.
pub type SharedProvider = Arc<dyn Provider>;

/// The namespace of a provider whose functions all live in one (one
/// without [`Capabilities::namespaces`]): what its `list_namespaces` and
/// `get_namespace` answer. OpenFaaS clients list namespaces before
/// anything else, so these never fail as unsupported.
///
/// ```
/// use faas_core::SoleNamespace;
/// let sole = SoleNamespace::default();
/// assert_eq!(sole.list(), ["openfaas-fn"]);
/// assert_eq!(sole.get("openfaas-fn").unwrap().name, "openfaas-fn");
/// assert!(sole.get("team").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoleNamespace {
    name: String,
}

impl SoleNamespace {
    /// The provider's one namespace is `name`.
    pub fn new(name: impl Into<String>) -> Self {
        SoleNamespace { name: name.into() }
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `list_namespaces`: the one namespace.
    pub fn list(&self) -> Vec<String> {
        vec![self.name.clone()]
    }

    /// `get_namespace`: the namespace when `name` is it (no labels or
    /// annotations), else `NotFound` for the namespace.
    pub fn get(&self, name: &str) -> Result<FunctionNamespace> {
        if name == self.name {
            Ok(FunctionNamespace { name: self.name.clone(), ..FunctionNamespace::default() })
        } else {
            Err(Error::NotFound { kind: "namespace", name: name.to_owned() })
        }
    }
}

impl Default for SoleNamespace {
    /// [`DEFAULT_NAMESPACE`], the one namespace of providers that have no
    /// namespaces of their own.
    fn default() -> Self {
        SoleNamespace::new(DEFAULT_NAMESPACE)
    }
}
