//! The server's resources: stacks, services, instances and secrets, and the
//! state each is in.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::instance::Runtime;

/// What every resource has.
#[derive(Debug, Clone)]
pub(crate) struct Common {
    pub(crate) id: String,
    pub(crate) uuid: String,
    pub(crate) name: String,
    pub(crate) state: String,
    pub(crate) created: DateTime<Utc>,
    pub(crate) removed: Option<DateTime<Utc>>,
    /// Why a transition is not progressing, shown as `transitioningMessage`.
    pub(crate) message: Option<String>,
}

impl Common {
    fn new(id: String, name: String, state: &str) -> Self {
        Common {
            uuid: uuid_like(&id),
            id,
            name,
            state: state.to_owned(),
            created: Utc::now(),
            removed: None,
            message: None,
        }
    }

    /// Moves to `state`, clearing the transitioning message.
    pub(crate) fn set_state(&mut self, state: &str) {
        if self.state != state {
            tracing::debug!(id = %self.id, from = %self.state, to = %state, "state change");
            self.state = state.to_owned();
            self.message = None;
        }
    }

    /// `transitioning`: `yes` while in a state ending in `-ing`, else `no`.
    pub(crate) fn transitioning(&self) -> &'static str {
        if self.state == "error" {
            "error"
        } else if is_transitioning(&self.state) {
            "yes"
        } else {
            "no"
        }
    }
}

/// States that are on their way to another.
pub(crate) fn is_transitioning(state: &str) -> bool {
    matches!(
        state,
        "registering"
            | "activating"
            | "updating-active"
            | "updating-inactive"
            | "upgrading"
            | "canceling-upgrade"
            | "finishing-upgrade"
            | "rolling-back"
            | "deactivating"
            | "removing"
            | "starting"
            | "stopping"
            | "creating"
    )
}

fn uuid_like(id: &str) -> String {
    format!("{:0>8}-cafe-4e11-8000-{:0>12}", id.len(), id)
}

/// A stack: a named group of services.
#[derive(Debug, Clone)]
pub(crate) struct Stack {
    pub(crate) common: Common,
    pub(crate) description: Option<String>,
}

/// A service: `scale` instances of its `launchConfig`.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub(crate) common: Common,
    pub(crate) stack_id: String,
    pub(crate) scale: i64,
    pub(crate) start_on_create: bool,
    pub(crate) description: Option<String>,
    pub(crate) metadata: Option<Value>,
    /// The launch config instances of `version` run.
    pub(crate) launch_config: Map<String, Value>,
    pub(crate) version: u64,
    /// During an upgrade: the launch config and version being replaced.
    pub(crate) previous: Option<(u64, Map<String, Value>)>,
    /// The `serviceUpgrade` input of the current upgrade.
    pub(crate) upgrade: Option<Value>,
    /// When the next upgrade batch may start.
    pub(crate) next_batch: Instant,
    /// Old instances still to stop once the started batch is healthy.
    pub(crate) stops_owed: usize,
}

/// One container of a service: an fwatchdog process on its own port.
pub(crate) struct Instance {
    pub(crate) common: Common,
    pub(crate) service_id: String,
    pub(crate) version: u64,
    pub(crate) launch_config: Map<String, Value>,
    /// The managed-network address Rancher would give it (not reachable).
    pub(crate) primary_ip: String,
    /// The port it is published on at 127.0.0.1, once running.
    pub(crate) public_port: Option<u16>,
    pub(crate) health_state: Option<String>,
    pub(crate) health_successes: u32,
    pub(crate) health_failures: u32,
    pub(crate) next_check: Instant,
    pub(crate) start_count: u32,
    pub(crate) first_running: Option<DateTime<Utc>>,
    /// Set while the runtime is being started or stopped.
    pub(crate) busy: bool,
    pub(crate) runtime: Option<Arc<Runtime>>,
}

/// A secret: a name and a value (base64, as the API carries it).
#[derive(Debug, Clone)]
pub(crate) struct SecretRecord {
    pub(crate) common: Common,
    pub(crate) value: String,
    pub(crate) description: Option<String>,
}

/// Everything the server holds.
#[derive(Default)]
pub(crate) struct Store {
    next_id: u64,
    pub(crate) stacks: BTreeMap<String, Stack>,
    pub(crate) services: BTreeMap<String, Service>,
    pub(crate) instances: BTreeMap<String, Instance>,
    pub(crate) secrets: BTreeMap<String, SecretRecord>,
}

impl Store {
    /// A new id with Rancher's look: `1` + a type prefix + a number.
    pub(crate) fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("1{prefix}{}", self.next_id)
    }

    pub(crate) fn add_stack(&mut self, name: String, description: Option<String>) -> String {
        let id = self.id("st");
        self.stacks.insert(id.clone(), Stack { common: Common::new(id.clone(), name, "activating"), description });
        id
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_service(
        &mut self,
        name: String,
        stack_id: String,
        scale: i64,
        start_on_create: bool,
        description: Option<String>,
        metadata: Option<Value>,
        launch_config: Map<String, Value>,
    ) -> String {
        let id = self.id("s");
        let service = Service {
            common: Common::new(id.clone(), name, "registering"),
            stack_id,
            scale,
            start_on_create,
            description,
            metadata,
            launch_config,
            version: 1,
            previous: None,
            upgrade: None,
            next_batch: Instant::now(),
            stops_owed: 0,
        };
        self.services.insert(id.clone(), service);
        id
    }

    /// A new instance of `service_id` running `version` of its launch config.
    pub(crate) fn add_instance(&mut self, service_id: &str, version: u64, launch_config: Map<String, Value>) -> String {
        let id = self.id("i");
        let (stack_name, service_name) = self
            .services
            .get(service_id)
            .map(|s| {
                let stack = self.stacks.get(&s.stack_id).map(|st| st.common.name.clone()).unwrap_or_default();
                (stack, s.common.name.clone())
            })
            .unwrap_or_default();
        let index = self.instances.values().filter(|i| i.service_id == service_id).count() + 1;
        let number: u64 = id[2..].parse().unwrap_or(0);
        let instance = Instance {
            common: Common::new(id.clone(), format!("{stack_name}-{service_name}-{index}"), "starting"),
            service_id: service_id.to_owned(),
            version,
            launch_config,
            primary_ip: format!("10.42.{}.{}", (number / 250) % 250, number % 250 + 2),
            public_port: None,
            health_state: None,
            health_successes: 0,
            health_failures: 0,
            next_check: Instant::now(),
            start_count: 0,
            first_running: None,
            busy: false,
            runtime: None,
        };
        self.instances.insert(id.clone(), instance);
        id
    }

    pub(crate) fn add_secret(&mut self, name: String, value: String, description: Option<String>) -> String {
        let id = self.id("se");
        self.secrets
            .insert(id.clone(), SecretRecord { common: Common::new(id.clone(), name, "active"), value, description });
        id
    }

    /// The instances of a service, oldest first.
    pub(crate) fn instances_of<'a>(&'a self, service_id: &'a str) -> impl Iterator<Item = &'a Instance> + 'a {
        self.instances.values().filter(move |i| i.service_id == service_id)
    }
}
