//! Choosing where a call goes: the public endpoints of a function's
//! healthy instances, or its service DNS name, as [`Routing`] says.
//! Forwarding, caching and round-robin are `faas_upstream`'s.

use std::collections::HashSet;

use faas_core::{Error, FunctionRef, Result};

use crate::config::Routing;
use crate::model::Instance;
use crate::provider::CattleProvider;

impl CattleProvider {
    /// Where calls to `function` go (`host:port` each), asked of the API.
    pub(crate) async fn resolve_targets(&self, function: &FunctionRef) -> Result<Vec<String>> {
        let name = function.name.as_str();
        let service = self.find(name).await?.ok_or_else(|| Error::function_not_found(name, &function.namespace))?;
        Ok(match &self.inner.config.routing {
            Routing::ServiceDns { port } => {
                vec![format!("{}.{}:{port}", service.resource.name, self.inner.config.stack)]
            }
            Routing::PublicEndpoints => {
                let healthy: HashSet<String> = self
                    .instances(&service)
                    .await?
                    .into_iter()
                    .filter(Instance::available)
                    .map(|i| i.resource.id)
                    .collect();
                service
                    .public_endpoints
                    .iter()
                    .filter(|e| healthy.contains(&e.instance_id))
                    .filter_map(|e| {
                        let port = e.port?;
                        Some(if e.ip_address.contains(':') {
                            format!("[{}]:{port}", e.ip_address)
                        } else {
                            format!("{}:{port}", e.ip_address)
                        })
                    })
                    .collect()
            }
        })
    }
}
