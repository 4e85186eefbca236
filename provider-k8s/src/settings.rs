//! The k8s provider's environment variables, declared once: the
//! configuration reads them ([`crate::K8sConfig::from_env`]), the docs
//! (`docs/k8s.md`, "Settings") and the gateway's `--help` list them.

use faas_core::settings::{kind, Setting, Table, Unset};
use faas_core::DEFAULT_NAMESPACE;

use crate::config::InvokeMode;

/// `KUBECONFIG`, read by the Kubernetes client.
pub static KUBECONFIG: Setting<kind::Text> = Setting::new(
    "KUBECONFIG",
    kind::Text,
    Unset::Means("`~/.kube/config`, else the pod's service account"),
    "the kubeconfig naming the cluster and the credentials",
);

/// `FAAS_K8S_NAMESPACE`: [`crate::K8sConfig::namespace`].
pub static NAMESPACE: Setting<kind::DnsLabel> = Setting::new(
    "FAAS_K8S_NAMESPACE",
    kind::DnsLabel,
    Unset::Default(DEFAULT_NAMESPACE),
    "the function namespace used when a request names none",
);

/// `FAAS_K8S_INVOKE`: [`crate::K8sConfig::invoke`].
pub static INVOKE: Setting<kind::Choice<InvokeMode>> = Setting::new(
    "FAAS_K8S_INVOKE",
    kind::Choice(&[("endpoints", InvokeMode::Endpoints), ("service-proxy", InvokeMode::ServiceProxy)]),
    Unset::Default("endpoints"),
    "`endpoints`: call pods at their Services' ready EndpointSlice addresses (the gateway runs in the cluster); \
     `service-proxy`: through the API server's service proxy (a gateway outside the cluster, with only a kubeconfig)",
);

/// `FAAS_K8S_CLUSTER_WIDE`: [`crate::K8sConfig::cluster_wide`].
pub static CLUSTER_WIDE: Setting<kind::Boolean> = Setting::new(
    "FAAS_K8S_CLUSTER_WIDE",
    kind::Boolean,
    Unset::Default("true"),
    "watch Deployments and EndpointSlices in all namespaces, so functions may live in any namespace labelled \
     `openfaas=1`; `false` watches `FAAS_K8S_NAMESPACE` only and needs only a namespaced Role",
);

/// `FAAS_K8S_MANAGE_NAMESPACES`: [`crate::K8sConfig::manage_namespaces`].
pub static MANAGE_NAMESPACES: Setting<kind::Boolean> = Setting::new(
    "FAAS_K8S_MANAGE_NAMESPACES",
    kind::Boolean,
    Unset::Default("false"),
    "allow creating, relabelling and deleting function namespaces",
);

/// `FAAS_K8S_IMAGE_PULL_POLICY`: [`crate::K8sConfig::image_pull_policy`].
pub static IMAGE_PULL_POLICY: Setting<kind::Choice<&'static str>> = Setting::new(
    "FAAS_K8S_IMAGE_PULL_POLICY",
    kind::Choice(&[("Always", "Always"), ("IfNotPresent", "IfNotPresent"), ("Never", "Never")]),
    Unset::Means("Kubernetes' default"),
    "the image pull policy of function containers",
);

/// Every environment variable of the k8s provider: the docs
/// (`docs/k8s.md`) and the gateway's `--help` list them from here.
pub static SETTINGS: Table = Table {
    provider: "k8s",
    prefix: "FAAS_K8S_",
    settings: &[&KUBECONFIG, &NAMESPACE, &INVOKE, &CLUSTER_WIDE, &MANAGE_NAMESPACES, &IMAGE_PULL_POLICY],
};
