//! The swarm provider's environment variables, declared once: the
//! configuration reads them ([`crate::SwarmConfig::from_env`]), the docs
//! (`docs/swarm.md`, "Settings") and the gateway's `--help` list them.

use faas_core::settings::{kind, Setting, Table, Unset};

use crate::config::{EndpointMode, InvokeMode, DEFAULT_NETWORK};

/// `DOCKER_HOST`, read by the Docker client.
pub static DOCKER_HOST: Setting<kind::Text> = Setting::new(
    "DOCKER_HOST",
    kind::Text,
    Unset::Means("the local socket"),
    "the engine, a swarm manager: `unix://` or `tcp://`",
);

/// `FAAS_SWARM_NETWORK`: [`crate::SwarmConfig::network`].
pub static NETWORK: Setting<kind::Text> = Setting::new(
    "FAAS_SWARM_NETWORK",
    kind::Text,
    Unset::Default(DEFAULT_NETWORK),
    "attachable overlay network functions join (created if missing)",
);

/// `FAAS_SWARM_INVOKE`: [`crate::SwarmConfig::invoke`].
pub static INVOKE: Setting<kind::Choice<InvokeMode>> = Setting::new(
    "FAAS_SWARM_INVOKE",
    kind::Choice(&[("network", InvokeMode::Network), ("published", InvokeMode::Published { host: None })]),
    Unset::Default("network"),
    "`network`: call `http://<function>:8080` on that network (the gateway runs as a Swarm service on it); \
     `published`: through a port each task publishes on its node (a gateway outside the swarm)",
);

/// `FAAS_SWARM_PUBLISHED_HOST`: the host of [`crate::InvokeMode::Published`].
pub static PUBLISHED_HOST: Setting<kind::Text> = Setting::new(
    "FAAS_SWARM_PUBLISHED_HOST",
    kind::Text,
    Unset::Means("node address"),
    "with `published`: dial this host instead of each node's address",
);

/// `FAAS_SWARM_ENDPOINT_MODE`: [`crate::SwarmConfig::endpoint_mode`].
pub static ENDPOINT_MODE: Setting<kind::Choice<EndpointMode>> = Setting::new(
    "FAAS_SWARM_ENDPOINT_MODE",
    kind::Choice(&[("dnsrr", EndpointMode::Dnsrr), ("vip", EndpointMode::Vip)]),
    Unset::Default("dnsrr"),
    "how the swarm exposes services: DNS round-robin, or a virtual IP (needs IPVS in the kernel)",
);

/// `FAAS_SWARM_LABELS`: [`crate::SwarmConfig::labels`].
pub static LABELS: Setting<kind::Pairs> = Setting::new(
    "FAAS_SWARM_LABELS",
    kind::Pairs,
    Unset::Means("none"),
    "labels put on everything the gateway creates and required on what it lists",
);

/// Every environment variable of the swarm provider: the docs'
/// (`docs/swarm.md`) and the gateway's `--help` list them from here.
pub static SETTINGS: Table = Table {
    provider: "swarm",
    prefix: "FAAS_SWARM_",
    settings: &[&DOCKER_HOST, &NETWORK, &INVOKE, &PUBLISHED_HOST, &ENDPOINT_MODE, &LABELS],
};
