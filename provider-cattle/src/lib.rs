//! # provider-cattle
//!
//! Functions as Rancher 1.x (Cattle) services, driven through the Rancher
//! v2-beta API ([`CattleProvider`]).
//!
//! - **Connection**: an endpoint URL (`/v1` is normalised to `/v2-beta`),
//!   an access key and a secret key (HTTP Basic), and a stack for the
//!   functions, created if missing. The API is discovered as Rancher's
//!   clients do it: the `X-API-Schemas` header names the schemas, whose
//!   `links.collection` give the collections, `collectionMethods`,
//!   `resourceMethods` and `resourceActions` what may be done, and each
//!   resource's `links` and `actions` where (an action absent from a
//!   resource's `actions` is not available in its state and is never
//!   attempted).
//! - **Functions**: one service per function in the stack, labelled
//!   `faas_function=<name>`: `launchConfig.imageUuid = docker:<image>`,
//!   `fprocess` and the env vars in `environment`, the user's labels,
//!   annotations as labels under `faas.annotation/`, constraints as
//!   Rancher host-label affinity, limits and requests as `memory`,
//!   `cpuQuota`/`cpuPeriod`, `memoryReservation`, `milliCpuReservation`,
//!   an HTTP health check of the watchdog (`GET /_/health` on 8080), and
//!   `launchConfig.secrets` when the server has the `secret` schema
//!   (Rancher 1.6). `scale` is the replicas (initially the
//!   `com.openfaas.scale.min` label, else 1); services start on create.
//! - **Status**: `replicas` is `scale`, `availableReplicas` the running,
//!   healthy instances behind the service's `instances` link.
//! - **Scale** is a PUT of `scale`; **update** the `upgrade` action with an
//!   in-service strategy (start first, batch size 1), waited for until
//!   `upgraded`, then `finishupgrade`; an upgrade that does not get there
//!   within the upgrade timeout is cancelled and rolled back, and the
//!   update fails saying so. **Delete** is a DELETE, waited for until the
//!   service is removed. Every wait polls with a growing pause and is
//!   bounded ([`CattleConfig`]).
//! - **Calls** go by the service's DNS name in Rancher's network
//!   (`http://<service>.<stack>:8080`) or, for gateways outside it, to the
//!   public endpoints of the service's healthy instances
//!   ([`Routing`]); connections are opened before the request body is
//!   read, so an instance that went away is skipped.
//! - **Not supported** (declared in [`faas_core::Capabilities`]): logs
//!   (Rancher 1.x serves them only over a host-agent websocket),
//!   namespaces other than `openfaas-fn` (which is listed and read as
//!   OpenFaaS clients expect), and secrets when the server has no
//!   `secret` schema.
//!
//! Errors: wrong keys (401) and an unreachable server are `Unavailable`
//! (503: the gateway cannot use its backend until that is fixed); a
//! missing schema, an action not available in the service's state, an
//! upgrade rolled back and other API errors are `Backend` (502), with the
//! state or Rancher's `code` and `message` in the text; a transition that
//! outlasts its bound is `Timeout` (504).

mod client;
mod config;
mod error;
mod invoke;
mod model;
mod provider;
pub mod settings;

pub use config::{CattleConfig, HealthCheck, Routing};
pub use model::{AFFINITY_LABEL, ANNOTATION_PREFIX, FUNCTION_LABEL};
pub use provider::CattleProvider;
