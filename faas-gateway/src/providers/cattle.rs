//! The `cattle` provider: functions as Rancher 1.x (Cattle) services.
//!
//! Configured by the environment rather than flags, so that the gateway's
//! command line stays the same for every provider: Rancher's own
//! `CATTLE_URL`, `CATTLE_ACCESS_KEY` and `CATTLE_SECRET_KEY`, and
//! `CATTLE_STACK`, `CATTLE_INVOKE`: `provider_cattle::settings::SETTINGS`
//! (listed by `--help` and in `docs/cattle.md`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faas_core::SharedProvider;
use provider_cattle::{CattleConfig, CattleProvider};

use super::{Backend, OpenFuture};
use crate::cli::Args;
use crate::error::GatewayError;

/// Connects to the Rancher API named by `CATTLE_URL` with the `CATTLE_*`
/// configuration.
pub(super) fn open(_args: &Args) -> OpenFuture<'_> {
    Box::pin(async move {
        let failed = |source| GatewayError::Provider { provider: "cattle", source };
        let config = CattleConfig::from_env().map_err(failed)?;
        let provider = CattleProvider::connect(config).await.map_err(failed)?;
        Ok(Box::new(Cattle(Arc::new(provider))) as Box<dyn Backend>)
    })
}

struct Cattle(Arc<CattleProvider>);

#[async_trait]
impl Backend for Cattle {
    fn provider(&self) -> SharedProvider {
        self.0.clone()
    }

    /// Functions are Cattle services: they keep running when the gateway
    /// stops.
    async fn shutdown(&self, _grace: Duration) {}
}
