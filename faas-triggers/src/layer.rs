//! Following deploys: the provider wrapped so triggers change with the
//! functions, and checked before a deploy reaches the backend.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use faas_core::{FunctionDeployment, FunctionRef, Layer, Provider, Result, SharedProvider, DEFAULT_NAMESPACE};
use tokio::task::JoinHandle;

use crate::registry::Triggers;
use crate::spec::TriggerSpec;

/// The longest a cron loop sleeps before looking at the triggers again.
const CRON_POLL: Duration = Duration::from_millis(500);

/// A provider whose deploys, updates and deletes also set the function's
/// trigger: a bad schedule, time zone or subject is refused with 400
/// before the backend sees the deployment.
pub struct TriggerLayer {
    inner: SharedProvider,
    triggers: Arc<Triggers>,
}

impl TriggerLayer {
    /// Wraps `inner`.
    pub fn new(inner: SharedProvider, triggers: Arc<Triggers>) -> TriggerLayer {
        TriggerLayer { inner, triggers }
    }

    /// Reads every function's annotations from the provider and replaces
    /// the triggers with theirs (functions deployed by another gateway, or
    /// before this one started).
    pub async fn refresh(&self) -> Result<()> {
        let namespaces = if self.inner.capabilities().namespaces {
            self.inner.list_namespaces().await?
        } else {
            vec![DEFAULT_NAMESPACE.to_owned()]
        };
        let mut functions = Vec::new();
        for namespace in namespaces {
            functions.extend(self.inner.list(&namespace).await?);
        }
        self.triggers.sync(&functions, Utc::now());
        Ok(())
    }

    /// Starts the background work: a refresh every `resync`, and the cron
    /// loop queueing ticks as they come due on the wall clock.
    pub fn spawn(self: &Arc<Self>, resync: Duration) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut last_refresh: Option<tokio::time::Instant> = None;
            loop {
                if last_refresh.is_none_or(|at| at.elapsed() >= resync) {
                    if let Err(err) = this.refresh().await {
                        tracing::warn!(error = %err.message(), "cannot read the functions' triggers");
                    }
                    last_refresh = Some(tokio::time::Instant::now());
                }
                this.triggers.fire_due(Utc::now()).await;
                let until_tick =
                    this.triggers.next_tick().and_then(|next| (next - Utc::now()).to_std().ok()).unwrap_or(CRON_POLL);
                tokio::time::sleep(until_tick.min(CRON_POLL)).await;
            }
        })
    }
}

#[async_trait]
impl Layer for TriggerLayer {
    fn inner(&self) -> &dyn Provider {
        &*self.inner
    }

    async fn deploy(&self, deployment: FunctionDeployment) -> Result<()> {
        let spec = TriggerSpec::from_deployment(&deployment)?;
        let function = FunctionRef::new(deployment.service.clone(), deployment.namespace.clone());
        self.inner.deploy(deployment).await?;
        self.triggers.set(&function, spec, Utc::now());
        Ok(())
    }

    async fn update(&self, deployment: FunctionDeployment) -> Result<()> {
        let spec = TriggerSpec::from_deployment(&deployment)?;
        let function = FunctionRef::new(deployment.service.clone(), deployment.namespace.clone());
        self.inner.update(deployment).await?;
        self.triggers.set(&function, spec, Utc::now());
        Ok(())
    }

    async fn delete(&self, function: &FunctionRef) -> Result<()> {
        self.inner.delete(function).await?;
        self.triggers.set(function, None, Utc::now());
        Ok(())
    }
}
