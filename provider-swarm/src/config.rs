//! How a [`crate::SwarmProvider`] runs and reaches its functions.

use std::collections::BTreeMap;
use std::time::Duration;

use faas_core::settings::Vars;

use crate::settings::{ENDPOINT_MODE, INVOKE, LABELS, NETWORK, PUBLISHED_HOST};

/// The overlay network functions join when none is configured.
pub const DEFAULT_NETWORK: &str = "faas-rs-functions";

/// The port `fwatchdog` listens on inside a function's container.
pub const DEFAULT_WATCHDOG_PORT: u16 = 8080;

/// The health check command of function containers: the static
/// `faas-healthcheck` binary of this crate, which asks the container's
/// `fwatchdog` for `/_/health` (see `src/bin/faas-healthcheck.rs`).
pub const DEFAULT_HEALTH_COMMAND: &[&str] = &["CMD", "/usr/bin/faas-healthcheck"];

/// How the provider reaches a function's replicas for an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvokeMode {
    /// By the service's name on the overlay network, resolved by the
    /// swarm's DNS: the production setup, where the gateway itself runs as
    /// a Swarm service attached to [`SwarmConfig::network`]. Services use
    /// DNS round-robin endpoints (see [`SwarmConfig::endpoint_mode`]).
    Network,
    /// Through a port published on the node of each running replica
    /// (`mode=host`, a free port per task chosen by the engine): for a
    /// gateway outside the swarm, such as a developer's on the host. Calls
    /// go only to tasks the swarm reports running, which with the health
    /// check means healthy. `host` replaces the node's address (from
    /// `docker node inspect`) when set, e.g. `127.0.0.1` on a single node.
    Published {
        /// The address to dial instead of each task's node address.
        host: Option<String>,
    },
}

/// How the swarm exposes a service on its network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointMode {
    /// DNS round-robin: the service name resolves to its tasks' addresses.
    /// Needs nothing from the kernel beyond the overlay network itself.
    Dnsrr,
    /// A virtual IP load-balanced by the kernel's IPVS: the Swarm default,
    /// unusable on kernels without IPVS.
    Vip,
}

/// The container health check the service spec carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Docker's `Test` form: `["CMD", program, args...]` or
    /// `["CMD-SHELL", "command"]`.
    pub command: Vec<String>,
    /// Time between checks.
    pub interval: Duration,
    /// How long one check may take.
    pub timeout: Duration,
    /// Consecutive failures before the container is unhealthy.
    pub retries: u32,
    /// Grace after start during which failures do not count.
    pub start_period: Duration,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            command: DEFAULT_HEALTH_COMMAND.iter().map(|s| s.to_string()).collect(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            retries: 3,
            start_period: Duration::from_secs(10),
        }
    }
}

/// The provider's configuration. [`SwarmConfig::default`] gives the
/// production defaults; [`SwarmConfig::from_env`] reads them from the
/// environment ([`crate::settings::SETTINGS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmConfig {
    /// The attachable overlay network functions join ([`DEFAULT_NETWORK`]).
    pub network: String,
    /// Create the network when it does not exist (else: an error).
    pub create_network: bool,
    /// How invocations reach the replicas.
    pub invoke: InvokeMode,
    /// How the swarm exposes services on the network.
    pub endpoint_mode: EndpointMode,
    /// The port `fwatchdog` listens on in function containers.
    pub watchdog_port: u16,
    /// The health check of function containers; `None` for none (a task
    /// then counts as available as soon as its container started).
    pub health_check: Option<HealthCheck>,
    /// Run function containers with Docker's init (`tini`) as PID 1, so
    /// that `fwatchdog` does not have to reap orphaned grandchildren and
    /// gets SIGTERM forwarded.
    pub init: bool,
    /// Refuse deployments whose image is not on the engine the provider
    /// talks to (a clear 400 up front instead of a task that never starts).
    pub require_local_image: bool,
    /// How long an invocation waits for a reachable replica before 503.
    pub ready_timeout: Duration,
    /// How long a stopping replica may drain (`StopGracePeriod`).
    pub stop_grace_period: Duration,
    /// Labels put on everything the provider creates (services, secrets,
    /// the network), and required on what it lists: scopes a provider to
    /// its own objects, e.g. one test run's.
    pub labels: BTreeMap<String, String>,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        SwarmConfig {
            network: DEFAULT_NETWORK.to_owned(),
            create_network: true,
            invoke: InvokeMode::Network,
            endpoint_mode: EndpointMode::Dnsrr,
            watchdog_port: DEFAULT_WATCHDOG_PORT,
            health_check: Some(HealthCheck::default()),
            init: true,
            require_local_image: true,
            ready_timeout: Duration::from_secs(10),
            stop_grace_period: Duration::from_secs(10),
            labels: BTreeMap::new(),
        }
    }
}

impl SwarmConfig {
    /// The defaults, overridden by the environment variables of
    /// [`crate::settings::SETTINGS`]. The Docker engine itself is chosen by `DOCKER_HOST`
    /// (see [`crate::SwarmProvider::from_env`]). `Invalid` naming the
    /// variable when a value is wrong.
    pub fn from_env() -> faas_core::Result<Self> {
        Self::read(&Vars::process())
    }

    /// As [`SwarmConfig::from_env`], reading variables through `lookup`.
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> faas_core::Result<Self> {
        Self::read(&Vars::new(lookup))
    }

    /// As [`SwarmConfig::from_env`], reading variables from `vars`.
    pub fn read(vars: &Vars<'_>) -> faas_core::Result<Self> {
        let mut config = SwarmConfig { network: vars.value(&NETWORK)?, ..SwarmConfig::default() };
        config.invoke = match vars.value(&INVOKE)? {
            InvokeMode::Published { .. } => InvokeMode::Published { host: vars.get(&PUBLISHED_HOST)? },
            network => network,
        };
        config.endpoint_mode = vars.value(&ENDPOINT_MODE)?;
        config.labels = vars.get(&LABELS)?.unwrap_or_default();
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::SETTINGS;

    fn read(pairs: &[(&str, &str)]) -> faas_core::Result<SwarmConfig> {
        SwarmConfig::read(&Vars::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn environment_overrides_the_defaults() {
        SETTINGS.check().unwrap();
        assert_eq!(read(&[]).unwrap(), SwarmConfig::default(), "the table's defaults are the code's");
        let config = read(&[
            ("FAAS_SWARM_NETWORK", "fns"),
            ("FAAS_SWARM_INVOKE", "published"),
            ("FAAS_SWARM_PUBLISHED_HOST", "127.0.0.1"),
            ("FAAS_SWARM_ENDPOINT_MODE", "vip"),
            ("FAAS_SWARM_LABELS", "a=1, b = two"),
        ])
        .unwrap();
        assert_eq!(config.network, "fns");
        assert_eq!(config.invoke, InvokeMode::Published { host: Some("127.0.0.1".into()) });
        assert_eq!(config.endpoint_mode, EndpointMode::Vip);
        assert_eq!(config.labels.get("b").map(String::as_str), Some("two"));
        let published = read(&[("FAAS_SWARM_INVOKE", "published")]).unwrap();
        assert_eq!(published.invoke, InvokeMode::Published { host: None });
    }

    #[test]
    fn every_setting_is_read_checked_and_documented() {
        faas_testkit::assert_settings_read(&SETTINGS, SwarmConfig::read, &[]);
        faas_testkit::assert_settings_documented(&SETTINGS, concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/swarm.md"));
    }
}
