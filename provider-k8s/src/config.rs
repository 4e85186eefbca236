//! How a [`crate::K8sProvider`] runs and reaches its functions.

use std::time::Duration;

use faas_core::DEFAULT_NAMESPACE;

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
    /// The defaults, overridden by these environment variables:
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `FAAS_K8S_NAMESPACE` | [`K8sConfig::namespace`] |
    /// | `FAAS_K8S_INVOKE` | `endpoints` or `service-proxy` ([`InvokeMode`]) |
    /// | `FAAS_K8S_CLUSTER_WIDE` | `true` or `false` ([`K8sConfig::cluster_wide`]) |
    /// | `FAAS_K8S_MANAGE_NAMESPACES` | `true` or `false` ([`K8sConfig::manage_namespaces`]) |
    /// | `FAAS_K8S_IMAGE_PULL_POLICY` | [`K8sConfig::image_pull_policy`] |
    ///
    /// The cluster itself is chosen by the kubeconfig (`KUBECONFIG`) or the
    /// in-cluster service account (see [`crate::K8sProvider::try_default`]).
    pub fn from_env() -> Result<Self, String> {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// As [`K8sConfig::from_env`], reading variables through `get`.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut config = K8sConfig::default();
        if let Some(namespace) = get("FAAS_K8S_NAMESPACE") {
            config.namespace = namespace.trim().to_owned();
        }
        match get("FAAS_K8S_INVOKE").as_deref().map(str::trim) {
            None | Some("endpoints") => {}
            Some("service-proxy") => config.invoke = InvokeMode::ServiceProxy,
            Some(other) => return Err(format!("FAAS_K8S_INVOKE={other:?} is neither `endpoints` nor `service-proxy`")),
        }
        let flag = |name: &str, default: bool| match get(name) {
            None => Ok(default),
            Some(value) => faas_core::validate::boolean(name, &value).map_err(|e| e.to_string()),
        };
        config.cluster_wide = flag("FAAS_K8S_CLUSTER_WIDE", config.cluster_wide)?;
        config.manage_namespaces = flag("FAAS_K8S_MANAGE_NAMESPACES", config.manage_namespaces)?;
        if let Some(policy) = get("FAAS_K8S_IMAGE_PULL_POLICY") {
            let policy = policy.trim();
            if !matches!(policy, "Always" | "IfNotPresent" | "Never") {
                return Err(format!("FAAS_K8S_IMAGE_PULL_POLICY={policy:?} is not one of Always, IfNotPresent, Never"));
            }
            config.image_pull_policy = Some(policy.to_owned());
        }
        faas_core::validate::namespace("FAAS_K8S_NAMESPACE", &config.namespace).map_err(|e| e.to_string())?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Result<K8sConfig, String> {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        K8sConfig::from_vars(|name| map.get(name).cloned())
    }

    #[test]
    fn environment_overrides_the_defaults() {
        assert_eq!(vars(&[]).unwrap(), K8sConfig::default());
        let config = vars(&[
            ("FAAS_K8S_NAMESPACE", "fns"),
            ("FAAS_K8S_INVOKE", "service-proxy"),
            ("FAAS_K8S_CLUSTER_WIDE", "false"),
            ("FAAS_K8S_MANAGE_NAMESPACES", "true"),
            ("FAAS_K8S_IMAGE_PULL_POLICY", "IfNotPresent"),
        ])
        .unwrap();
        assert_eq!(config.namespace, "fns");
        assert_eq!(config.invoke, InvokeMode::ServiceProxy);
        assert!(!config.cluster_wide);
        assert!(config.manage_namespaces);
        assert_eq!(config.image_pull_policy.as_deref(), Some("IfNotPresent"));
    }

    #[test]
    fn bad_values_are_named() {
        assert!(vars(&[("FAAS_K8S_INVOKE", "dns")]).unwrap_err().contains("FAAS_K8S_INVOKE"));
        assert!(vars(&[("FAAS_K8S_CLUSTER_WIDE", "maybe")]).unwrap_err().contains("FAAS_K8S_CLUSTER_WIDE"));
        assert!(vars(&[("FAAS_K8S_IMAGE_PULL_POLICY", "sometimes")]).unwrap_err().contains("PULL_POLICY"));
        assert!(vars(&[("FAAS_K8S_NAMESPACE", "Bad_NS")]).unwrap_err().contains("FAAS_K8S_NAMESPACE"));
    }
}
