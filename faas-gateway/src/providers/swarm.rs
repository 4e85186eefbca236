//! The `swarm` provider: functions as Docker Swarm services.
//!
//! Configured by the environment rather than flags, so that the gateway's
//! command line stays the same for every provider:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `DOCKER_HOST` | the engine (`unix://` or `tcp://`), a swarm manager | `unix:///var/run/docker.sock` |
//! | `FAAS_SWARM_NETWORK` | the attachable overlay network functions join (created if missing) | `faas-rs-functions` |
//! | `FAAS_SWARM_INVOKE` | `network`: call functions by service name on that network (the gateway runs as a service on it); `published`: through ports each task publishes on its node (a gateway outside the swarm) | `network` |
//! | `FAAS_SWARM_PUBLISHED_HOST` | with `published`: the host to dial instead of each node's address | the node's address |
//! | `FAAS_SWARM_ENDPOINT_MODE` | `dnsrr` or `vip` | `dnsrr` |
//! | `FAAS_SWARM_LABELS` | `key=value,...` put on everything the gateway creates, and required on what it lists | none |

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faas_core::SharedProvider;
use provider_swarm::{SwarmConfig, SwarmProvider};

use super::{Backend, OpenFuture};
use crate::cli::Args;
use crate::error::GatewayError;

/// Connects to the engine named by `DOCKER_HOST` with the `FAAS_SWARM_*`
/// configuration.
pub(super) fn open(_args: &Args) -> OpenFuture<'_> {
    Box::pin(async move {
        let failed = |source| GatewayError::Provider { provider: "swarm", source };
        let config =
            SwarmConfig::from_env().map_err(|reason| failed(faas_core::Error::invalid("FAAS_SWARM_*", reason)))?;
        let provider = SwarmProvider::from_env(config).await.map_err(failed)?;
        Ok(Box::new(Swarm(Arc::new(provider))) as Box<dyn Backend>)
    })
}

struct Swarm(Arc<SwarmProvider>);

#[async_trait]
impl Backend for Swarm {
    fn provider(&self) -> SharedProvider {
        self.0.clone()
    }

    /// Functions are Swarm services: they keep running when the gateway
    /// stops, as OpenFaaS's do.
    async fn shutdown(&self, _grace: Duration) {}
}
