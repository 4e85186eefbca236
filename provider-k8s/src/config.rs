//! How a [`crate::K8sProvider`] runs and reaches its functions.

use std::time::Duration;

use faas_core::settings::Vars;
use faas_core::DEFAULT_NAMESPACE;

use crate::settings::{CLUSTER_WIDE, IMAGE_PULL_POLICY, INVOKE, MANAGE_NAMESPACES, NAMESPACE};

/// The port `fwatchdog` listens on in function pods, and the port of each
/// function's Service.
pub const WATCHDOG_PORT: u16 = 8080;

/// How the provider reaches a function's pods for an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvokeMode {
    /// Straight to the pods: the ready addresses of the function Service's
    /// EndpointSlices (from the provider's watch cache, no API request per
    /// call), one chosen per call round-robin, over pooled keep-alive
    /// HTTP/1.1 connections. Needs a gateway that can reach pod IPs: the
    /// production setup, with the gateway running in the cluster.
    Endpoints,
    /// Through the API server's service proxy
    /// (`/api/v1/namespaces/{ns}/services/{name}:8080/proxy/{path}`) with
    /// the provider's own Kubernetes client and credentials: for a gateway
    /// outside the cluster, e.g. a developer's, that has nothing but a
    /// kubeconfig. Every call crosses the API server, and request bodies are
    /// buffered (up to [`K8sConfig::proxy_body_limit`]) because the client
    /// sends whole bodies; responses stream.
    ServiceProxy,
}

/// The configuration of a [`crate::K8sProvider`]. [`K8sConfig::default`]
/// gives the production defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K8sConfig {
    /// The function namespace used when a request names none
    /// ([`DEFAULT_NAMESPACE`], `openfaas-fn`). It must exist; it need not be
    /// labelled `openfaas=1`.
    pub namespace: String,
    /// Watch Deployments and EndpointSlices cluster-wide (one watch each),
    /// so functions may live in any namespace labelled `openfaas=1`. Needs
    /// a ClusterRole to list and watch them. When false, the provider
    /// watches [`K8sConfig::namespace`] only (a namespaced Role suffices)
    /// and functions live only there: namespace operations are then
    /// reported unsupported.
    pub cluster_wide: bool,
    /// Whether `create_namespace`, `update_namespace` and
    /// `delete_namespace` are allowed (they need cluster-scoped rights on
    /// namespaces). Namespaces the provider creates are labelled
    /// `openfaas=1`; it updates and deletes only namespaces so labelled.
    pub manage_namespaces: bool,
    /// How invocations reach the pods.
    pub invoke: InvokeMode,
    /// How long a call may take until its response headers arrive.
    pub call_timeout: Duration,
    /// How long an invocation waits for a ready endpoint (after a deploy, or
    /// a scale from zero) before answering 503.
    pub ready_timeout: Duration,
    /// How long one request to the API server may take before the provider
    /// gives up with `Unavailable`.
    pub api_timeout: Duration,
    /// How long [`crate::K8sProvider::new`] waits for the watch cache's
    /// first full listing.
    pub sync_timeout: Duration,
    /// How long a write waits for the watch cache to show it, so that a
    /// caller reads its own writes (deploy then status, delete then 404).
    pub write_visibility_timeout: Duration,
    /// How many times a write refused with 409 Conflict (another client
    /// wrote first) is retried on a freshly read object.
    pub conflict_retries: u32,
    /// The image pull policy of function containers (`Always`,
    /// `IfNotPresent`, `Never`); `None` leaves Kubernetes' default.
    pub image_pull_policy: Option<String>,
    /// The largest request body [`InvokeMode::ServiceProxy`] buffers, in
    /// bytes; larger calls fail with 413.
    pub proxy_body_limit: u64,
    /// The pods' `terminationGracePeriodSeconds`: how long a stopping
    /// replica may drain its calls.
    pub termination_grace_period: Duration,
}

impl Default for K8sConfig {
    fn default() -> Self {
        K8sConfig {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            cluster_wide: true,
            manage_namespaces: false,
            invoke: InvokeMode::Endpoints,
            call_timeout: Duration::from_secs(60),
            ready_timeout: Duration::from_secs(10),
            api_timeout: Duration::from_secs(15),
            sync_timeout: Duration::from_secs(30),
            write_visibility_timeout: Duration::from_secs(5),
            conflict_retries: 5,
            image_pull_policy: None,
            proxy_body_limit: 128 << 20,
            termination_grace_period: Duration::from_secs(30),
        }
    }
}

impl K8sConfig {
    /// The defaults, overridden by the environment variables of
    /// [`crate::settings::SETTINGS`]. The cluster itself is chosen by the
    /// kubeconfig (`KUBECONFIG`) or the in-cluster service account (see
    /// [`crate::K8sProvider::try_default`]). `Invalid` naming the variable
    /// when a value is wrong.
    pub fn from_env() -> faas_core::Result<Self> {
        Self::read(&Vars::process())
    }

    /// As [`K8sConfig::from_env`], reading variables through `lookup`.
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> faas_core::Result<Self> {
        Self::read(&Vars::new(lookup))
    }

    /// As [`K8sConfig::from_env`], reading variables from `vars`.
    pub fn read(vars: &Vars<'_>) -> faas_core::Result<Self> {
        Ok(K8sConfig {
            namespace: vars.value(&NAMESPACE)?,
            invoke: vars.value(&INVOKE)?,
            cluster_wide: vars.value(&CLUSTER_WIDE)?,
            manage_namespaces: vars.value(&MANAGE_NAMESPACES)?,
            image_pull_policy: vars.get(&IMAGE_PULL_POLICY)?.map(str::to_owned),
            ..K8sConfig::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::SETTINGS;

    fn read(pairs: &[(&str, &str)]) -> faas_core::Result<K8sConfig> {
        K8sConfig::read(&Vars::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn environment_overrides_the_defaults() {
        SETTINGS.check().unwrap();
        assert_eq!(read(&[]).unwrap(), K8sConfig::default(), "the table's defaults are the code's");
        let config = read(&[
            ("FAAS_K8S_NAMESPACE", "fns"),
            ("FAAS_K8S_INVOKE", "service-proxy"),
            ("FAAS_K8S_CLUSTER_WIDE", "false"),
            ("FAAS_K8S_MANAGE_NAMESPACES", "yes"),
            ("FAAS_K8S_IMAGE_PULL_POLICY", "IfNotPresent"),
        ])
        .unwrap();
        assert_eq!(
            (config.namespace.as_str(), config.invoke, config.cluster_wide, config.manage_namespaces),
            ("fns", InvokeMode::ServiceProxy, false, true)
        );
        assert_eq!(config.image_pull_policy.as_deref(), Some("IfNotPresent"));
    }

    #[test]
    fn every_setting_is_read_checked_and_documented() {
        faas_testkit::assert_settings_read(&SETTINGS, K8sConfig::read, &[]);
        faas_testkit::assert_settings_documented(&SETTINGS, concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/k8s.md"));
    }
}
