//! The `k8s` provider: functions as Kubernetes Deployments and Services.
//!
//! The cluster is the one of the kubeconfig (`KUBECONFIG`, else
//! `~/.kube/config`) or, inside a pod, of its service account. The rest is
//! configured by the environment rather than flags, so that the gateway's
//! command line stays the same for every provider: the `FAAS_K8S_*`
//! variables of `provider_k8s::settings::SETTINGS` (listed by `--help` and
//! in `docs/k8s.md`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faas_core::SharedProvider;
use provider_k8s::{K8sConfig, K8sProvider};

use super::{Backend, OpenFuture};
use crate::cli::Args;
use crate::error::GatewayError;

/// Connects to the cluster of the kubeconfig or service account with the
/// `FAAS_K8S_*` configuration.
pub(super) fn open(_args: &Args) -> OpenFuture<'_> {
    Box::pin(async move {
        let failed = |source| GatewayError::Provider { provider: "k8s", source };
        let config = K8sConfig::from_env().map_err(failed)?;
        let provider = K8sProvider::try_default(config).await.map_err(failed)?;
        Ok(Box::new(K8s(Arc::new(provider))) as Box<dyn Backend>)
    })
}

struct K8s(Arc<K8sProvider>);

#[async_trait]
impl Backend for K8s {
    fn provider(&self) -> SharedProvider {
        self.0.clone()
    }

    /// Functions are Deployments: they keep running when the gateway stops.
    async fn shutdown(&self, _grace: Duration) {}
}
