//! The `swarm` provider: functions as Docker Swarm services.
//!
//! Configured by the environment rather than flags, so that the gateway's
//! command line stays the same for every provider: `DOCKER_HOST` and the
//! `FAAS_SWARM_*` variables of `provider_swarm::settings::SETTINGS`
//! (listed by `--help` and in `docs/swarm.md`).

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
        let config = SwarmConfig::from_env().map_err(failed)?;
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
