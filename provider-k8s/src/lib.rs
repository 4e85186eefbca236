//! # provider-k8s
//!
//! A [`faas_core::Provider`] that runs functions on Kubernetes, driven
//! through the API server with [kube](https://docs.rs/kube) and
//! [k8s-openapi](https://docs.rs/k8s-openapi): one Deployment and one
//! ClusterIP Service per function, in its namespace, as OpenFaaS's
//! faas-netes lays them out. [`K8sProvider`] describes each mapping.
//!
//! ```no_run
//! # async fn run() -> faas_core::Result<()> {
//! use provider_k8s::{K8sConfig, K8sProvider};
//!
//! // The kubeconfig (KUBECONFIG, ~/.kube/config) or, inside a pod, its
//! // service account.
//! let config = K8sConfig::from_env().expect("valid FAAS_K8S_* variables");
//! let provider = K8sProvider::try_default(config).await?;
//! # let _ = provider;
//! # Ok(())
//! # }
//! ```
//!
//! This library enables no k8s-openapi version feature: the binary that
//! links it (the gateway's `k8s` feature, the tests) picks the Kubernetes
//! version, as k8s-openapi requires.
//!
//! ## Configuration
//!
//! [`K8sConfig`] holds every setting, each documented there; the main
//! ones:
//!
//! - [`K8sConfig::namespace`]: the default function namespace,
//!   `openfaas-fn`. Other namespaces hold functions when labelled
//!   `openfaas=1`.
//! - [`K8sConfig::cluster_wide`] (default true): one cluster-wide watch of
//!   Deployments and one of EndpointSlices, both filtered by the label
//!   `app.kubernetes.io/managed-by=faas-rs`, so every function namespace is
//!   served by the same two watches whatever their number. This needs a
//!   ClusterRole to list and watch deployments and endpointslices. Off,
//!   the provider watches the default namespace only, needs only a Role
//!   there, and reports namespaces unsupported.
//! - [`K8sConfig::manage_namespaces`] (default false): allow creating,
//!   labelling and deleting namespaces.
//! - [`K8sConfig::invoke`]: how calls reach functions (below).
//!
//! ## The watch cache
//!
//! `list`, `status`, `invoke` and `logs` find functions in in-memory
//! stores fed by watches (kube-runtime reflectors): no API request per
//! call, whatever the number of functions. [`K8sProvider::new`] waits for
//! the first full listing (bounded by [`K8sConfig::sync_timeout`]). After
//! each write the provider waits, bounded, until the cache shows the
//! written `resourceVersion` (or the deletion), so a caller always reads
//! its own writes.
//!
//! While the API server is unreachable, writes fail promptly with
//! `Unavailable` (503), bounded by [`K8sConfig::api_timeout`]; `list` and
//! `status` keep answering from the last state the watches saw (possibly
//! stale, as any informer's), and calls keep reaching the pods already
//! known in [`InvokeMode::Endpoints`]. The watches reconnect with a short
//! backoff (at most 2 s apart) and re-list as soon as the server answers.
//!
//! ## Reaching functions: the two invoke modes
//!
//! - [`InvokeMode::Endpoints`] (default, in-cluster): the provider reads
//!   the function Service's EndpointSlices from its watch cache and sends
//!   each call straight to one ready pod address on port 8080, chosen
//!   round-robin, over pooled keep-alive connections. A pod that refuses
//!   the connection (stopping during a rolling update) is skipped for the
//!   next ready one without losing the streaming request body. The
//!   gateway must run where pod IPs are routable, i.e. in the cluster.
//! - [`InvokeMode::ServiceProxy`] (out of cluster): calls go through the
//!   API server's service proxy,
//!   `/api/v1/namespaces/{ns}/services/{name}:8080/proxy/{path}`, with the
//!   provider's own credentials, so a developer's gateway works against
//!   any cluster with nothing but a kubeconfig. Each call crosses the API
//!   server, and request bodies are buffered in memory (up to
//!   [`K8sConfig::proxy_body_limit`]); responses stream.
//!
//! Either way, a call waits (up to [`K8sConfig::ready_timeout`]) for a
//! ready endpoint, e.g. after a deploy or a scale from zero, then answers
//! 503.
//!
//! ## Errors
//!
//! API server unreachable or too slow: `Unavailable` (503). RBAC refusals
//! and exhausted ResourceQuotas (403): `Forbidden`, with the API server's
//! message. 404: `NotFound`. 409 AlreadyExists: `AlreadyExists`. 409
//! Conflict: retried on a fresh read, then `Backend` (502). 422 Invalid:
//! `Invalid`. Anything else: `Backend`. Secret values never appear in
//! errors or logs.

mod cache;
mod config;
mod error;
mod invoke;
mod logs;
mod namespaces;
mod provider;
mod secrets;
pub mod settings;
mod spec;

pub use config::{InvokeMode, K8sConfig, WATCHDOG_PORT};
pub use provider::K8sProvider;
pub use spec::{
    FUNCTION_LABEL, MANAGED_BY, MANAGED_BY_LABEL, NAMESPACE_LABEL, RESERVED_PREFIX, SCALE_MIN_LABEL, SECRETS_DIR,
};
