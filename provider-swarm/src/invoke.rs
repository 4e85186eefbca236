//! Choosing where a call goes: the addresses of a function's replicas,
//! on the overlay network or published on the nodes, as [`InvokeMode`]
//! says. Forwarding, caching and round-robin are `faas_upstream`'s.

use std::net::SocketAddr;

use faas_core::{FunctionRef, Result};

use crate::config::InvokeMode;
use crate::error::SwarmError;
use crate::provider::SwarmProvider;

impl SwarmProvider {
    /// The addresses of `function`'s replicas, asked of the engine (and
    /// of DNS).
    pub(crate) async fn resolve_targets(&self, function: &FunctionRef) -> Result<Vec<SocketAddr>> {
        let service = self.service(function).await?;
        let port = self.config().watchdog_port;
        Ok(match &self.config().invoke {
            InvokeMode::Network => match tokio::net::lookup_host((function.name.as_str(), port)).await {
                Ok(addresses) => addresses.collect(),
                Err(e) => {
                    tracing::debug!(function = %function, error = %e, "the service name does not resolve yet");
                    Vec::new()
                }
            },
            InvokeMode::Published { host } => {
                let id = service.id.clone().unwrap_or_default();
                let tasks = self.running_tasks(Some(&id)).await?.remove(&id).unwrap_or_default();
                let mut out = Vec::new();
                for task in tasks {
                    let published = task
                        .status
                        .as_ref()
                        .and_then(|s| s.port_status.as_ref())
                        .and_then(|p| p.ports.as_ref())
                        .and_then(|ports| ports.iter().find(|p| p.target_port == Some(i64::from(port))))
                        .and_then(|p| p.published_port);
                    let Some(published) = published.and_then(|p| u16::try_from(p).ok()) else { continue };
                    let host = match host {
                        Some(host) => host.clone(),
                        None => self.node_address(task.node_id.as_deref().unwrap_or_default()).await?,
                    };
                    let resolved = tokio::net::lookup_host((host.as_str(), published)).await;
                    if let Ok(mut resolved) = resolved {
                        out.extend(resolved.next());
                    }
                }
                out
            }
        })
    }

    /// A node's address, as the swarm knows it.
    async fn node_address(&self, node_id: &str) -> Result<String> {
        let known = self.inner.node_addresses.lock().unwrap_or_else(|e| e.into_inner()).get(node_id).cloned();
        if let Some(addr) = known {
            return Ok(addr);
        }
        let node = self
            .docker_ref()
            .inspect_node(node_id)
            .await
            .map_err(|e| SwarmError::docker(format!("inspect node {node_id}"), e))?;
        let addr = node.status.and_then(|s| s.addr).filter(|a| !a.is_empty()).unwrap_or_else(|| "127.0.0.1".into());
        self.inner.node_addresses.lock().unwrap_or_else(|e| e.into_inner()).insert(node_id.to_owned(), addr.clone());
        Ok(addr)
    }
}
