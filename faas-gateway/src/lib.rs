//! # faas-gateway
//!
//! The reference gateway: one binary serving faas-core's OpenFaaS-compatible
//! HTTP API over one provider compiled in with a Cargo feature (`local`, the
//! default, runs functions as processes on this machine).
//!
//! What the gateway adds around the provider:
//!
//! - Prometheus metrics on `/metrics` under OpenFaaS's names, so its
//!   dashboards work: invocations are counted and timed by the [`Metered`]
//!   wrapper provider, API requests by a middleware ([`app::router`]);
//! - the scaling layer of `faas-autoscale`, on by default
//!   (`--no-autoscale` turns it off): autoscaling by calls in flight,
//!   scale to zero of idle functions labelled
//!   `com.openfaas.scale.zero=true` and scale from zero on the next call,
//!   for every provider; it sits between [`Metered`] and the provider;
//! - asynchronous calls (crate `faas-async`, on by default,
//!   `--async-queue off` turns them off): `/async-function/{name}` answers
//!   202 once the request is persisted in a durable queue (embedded in the
//!   state directory, or NATS JetStream shared by several gateways with
//!   `--async-queue nats`); workers invoke it through the same wrapped provider, retry,
//!   deliver `X-Callback-Url` callbacks and keep dead letters
//!   (`/system/async/dead-letters`, behind basic auth like `/system`);
//! - triggers (crate `faas-triggers`, with the asynchronous queue): cron
//!   functions (`topic: cron-function`, `schedule`) and functions called for
//!   each message on NATS subjects (`topic: a,b`, `--trigger-nats-url`),
//!   queued as asynchronous calls; `GET /system/triggers` lists them
//!   ([`triggers`]);
//! - configuration from flags with OpenFaaS's environment variables as
//!   fallbacks ([`cli::Args`]), including basic auth read from secret files
//!   ([`auth`]);
//! - serving with a header read timeout and a graceful shutdown on SIGINT or
//!   SIGTERM bounded by the write timeout ([`server`]).
//!
//! The binary (`src/main.rs`) only parses the command line, sets up logging
//! and calls [`server::run`]; everything else lives here so tests and
//! benchmarks can reuse it.

pub mod app;
pub mod auth;
pub mod cli;
pub mod error;
pub mod history;
pub mod logging;
pub mod metrics;
pub mod providers;
pub mod server;
pub mod settings;
pub mod triggers;
pub mod ui;

pub use error::GatewayError;
pub use metrics::{Metered, Metrics};

use faas_core::VersionInfo;

/// This gateway's version, as `GET /system/info` reports it: the crate's
/// version and the commit in `FAAS_GIT_SHA` at build time (`unknown` when
/// the variable was not set).
pub fn version_info() -> VersionInfo {
    VersionInfo::build(env!("CARGO_PKG_VERSION"))
}
