//! # provider-swarm
//!
//! A [`faas_core::Provider`] that runs functions as Docker Swarm services,
//! driven through the engine's API with [bollard](https://docs.rs/bollard):
//! one replicated service per function, labelled as OpenFaaS labels them,
//! on an attachable overlay network, with Swarm secrets, resources,
//! placement constraints, a health check asking each replica's `fwatchdog`
//! for `/_/health`, and rolling updates that start the new task before
//! stopping the old one. [`SwarmProvider`] describes each mapping.
//!
//! ```no_run
//! # async fn run() -> faas_core::Result<()> {
//! use provider_swarm::{SwarmConfig, SwarmProvider};
//!
//! // DOCKER_HOST, or the local socket; the engine must be a swarm manager.
//! let provider = SwarmProvider::from_env(SwarmConfig::from_env().expect("valid FAAS_SWARM_* variables")).await?;
//! # let _ = provider;
//! # Ok(())
//! # }
//! ```
//!
//! ## Reaching functions
//!
//! [`InvokeMode::Network`] (the default) calls `http://<function>:8080` on
//! the overlay network: the gateway runs as a Swarm service attached to
//! [`SwarmConfig::network`]. [`InvokeMode::Published`] is for a gateway
//! outside the swarm: each task publishes the watchdog port on its node
//! (host mode, a free port per task) and calls go to the running tasks'
//! ports. Services use DNS round-robin endpoints by default
//! ([`EndpointMode::Dnsrr`]): the virtual-IP mode and the ingress routing
//! mesh need the kernel's IPVS, which not every engine host has.
//!
//! ## Images
//!
//! The provider never pulls: a deployment whose image is not on the engine
//! is refused with `Invalid { field: "image" }` before anything is created
//! (see [`SwarmConfig::require_local_image`]). A function image holds the
//! static `fwatchdog` as its entrypoint and this crate's static
//! `faas-healthcheck` binary at `/usr/bin/faas-healthcheck` (the health
//! check command, [`DEFAULT_HEALTH_COMMAND`]); `scripts/build-images.sh`
//! builds such images `FROM scratch`.

mod config;
mod error;
mod invoke;
mod logs;
mod provider;
mod secrets;
pub mod settings;
mod spec;

pub use config::{
    EndpointMode, HealthCheck, InvokeMode, SwarmConfig, DEFAULT_HEALTH_COMMAND, DEFAULT_NETWORK, DEFAULT_WATCHDOG_PORT,
};
pub use provider::SwarmProvider;
pub use spec::{ANNOTATION_PREFIX, FUNCTION_LABEL, SECRETS_DIR, SECRET_LABEL};
