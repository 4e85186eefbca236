//! The gateway's triggers (crate faas-triggers): cron functions and NATS
//! subjects, queued as asynchronous calls. On whenever the asynchronous
//! queue is; NATS subjects only with `--trigger-nats-url`.
//!
//! The last fired tick of each cron function (for
//! `com.openfaas.cron.catch-up`) is kept beside the queue: in
//! `<state dir>/triggers/ticks.json` with the embedded queue, in the
//! JetStream stream `<--nats-stream>_TICKS` with the NATS queue (shared by
//! the gateways sharing the queue).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use chrono::Utc;
use faas_async::{Dispatcher, Queue};
use faas_core::api::BasicAuth;
use faas_core::SharedProvider;
use faas_triggers::{FileTickLog, NatsReplier, NatsTickLog, TickLog, TriggerLayer, TriggerMetrics, Triggers};
use prometheus_client::registry::Registry;
use tokio::task::JoinHandle;

use crate::cli::{Args, AsyncQueueKind};
use crate::error::GatewayError;

/// How often the triggers are read again from the provider (functions
/// deployed through another gateway or before this one started).
pub const RESYNC: Duration = Duration::from_secs(10);

/// The triggers, from opening to shutdown.
pub struct Wiring {
    triggers: Arc<Triggers>,
    subjects: Option<async_nats::Client>,
    layer: Option<Arc<TriggerLayer>>,
    tasks: Vec<JoinHandle<()>>,
}

fn failed(reason: impl std::fmt::Display) -> GatewayError {
    GatewayError::Triggers { reason: reason.to_string() }
}

impl Wiring {
    /// Opens the tick log and the `--trigger-nats-url` connection; `None`
    /// without a queue.
    pub async fn open(args: &Args, queue: Option<&Arc<dyn Queue>>) -> Result<Option<Wiring>, GatewayError> {
        let Some(queue) = queue else {
            if args.trigger_nats_url.is_some() {
                tracing::warn!("--trigger-nats-url is ignored: triggers need the asynchronous queue");
            }
            return Ok(None);
        };
        let ticks: Arc<dyn TickLog> = match args.async_queue {
            AsyncQueueKind::Nats => {
                let client = async_nats::connect(args.nats_url.as_str()).await.map_err(failed)?;
                Arc::new(NatsTickLog::open(client, &format!("{}_TICKS", args.nats_stream)).await.map_err(failed)?)
            }
            _ => Arc::new(FileTickLog::open(args.state_dir()?.join("triggers/ticks.json")).await.map_err(failed)?),
        };
        let subjects = match &args.trigger_nats_url {
            Some(url) => Some(async_nats::connect(url.as_str()).await.map_err(failed)?),
            None => None,
        };
        let triggers = Triggers::new(queue.clone(), ticks, Arc::new(TriggerMetrics::new()));
        Ok(Some(Wiring { triggers, subjects, layer: None, tasks: Vec::new() }))
    }

    /// Adds the metrics to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        self.triggers.metrics().register(registry);
    }

    /// Wraps `provider` so deploys set triggers (and bad ones are refused).
    pub fn wrap(&mut self, provider: SharedProvider) -> SharedProvider {
        let layer = Arc::new(TriggerLayer::new(provider, self.triggers.clone()));
        self.layer = Some(layer.clone());
        layer
    }

    /// `GET /system/triggers`.
    pub fn routes(&self, basic_auth: Option<BasicAuth>) -> Router {
        faas_triggers::api::router(self.triggers.clone(), basic_auth)
    }

    /// Reads the triggers and queues due ticks (a catch-up included) before
    /// the workers start, so a tick queued before a crash is not queued
    /// again after the workers ran it; then starts the cron loop, the
    /// subscriptions and the replies through `dispatcher`.
    pub async fn start(&mut self, dispatcher: &Dispatcher) {
        let Some(layer) = &self.layer else { return };
        if let Err(err) = layer.refresh().await {
            tracing::warn!(error = %err.message(), "cannot read the functions' triggers");
        }
        self.triggers.fire_due(Utc::now()).await;
        self.tasks.push(layer.spawn(RESYNC));
        dispatcher.set_observer(self.triggers.clone());
        if let Some(client) = &self.subjects {
            dispatcher.set_replier(Arc::new(NatsReplier::new(client.clone())));
            self.tasks.push(faas_triggers::spawn_subscriber(self.triggers.clone(), client.clone()));
        }
    }

    /// Stops the cron loop and the subscriptions.
    pub fn stop(self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}
