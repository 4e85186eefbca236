//! The `local` provider: functions as processes on this machine.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faas_core::SharedProvider;
use provider_local::{LocalConfig, LocalProvider};

use super::{Backend, OpenFuture};
use crate::cli::Args;
use crate::error::GatewayError;

/// Opens the state directory (`--state-dir`), with `--write-timeout` as
/// the exec timeout of functions that set none.
pub(super) fn open(args: &Args) -> OpenFuture<'_> {
    Box::pin(async move {
        let mut config = LocalConfig::new(args.state_dir()?);
        config.default_exec_timeout = Some(args.write_timeout);
        config.sandbox = args.sandbox.parse().unwrap_or_default();
        let provider =
            LocalProvider::open(config).await.map_err(|source| GatewayError::Provider { provider: "local", source })?;
        Ok(Box::new(Local(Arc::new(provider))) as Box<dyn Backend>)
    })
}

struct Local(Arc<LocalProvider>);

#[async_trait]
impl Backend for Local {
    fn provider(&self) -> SharedProvider {
        self.0.clone()
    }

    async fn shutdown(&self, grace: Duration) {
        self.0.shutdown(grace).await;
    }
}
