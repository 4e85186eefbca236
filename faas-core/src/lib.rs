//! # faas-core
//!
//! The contract of a pluggable functions-as-a-service platform:
//!
//! - [`Provider`]: the trait every backend implements (local processes,
//!   Docker Swarm, Kubernetes, Rancher Cattle, or your own), object-safe and
//!   used as `Arc<dyn Provider>`, with optional operations declared in
//!   [`Capabilities`];
//! - [`types`]: the domain types, JSON wire-compatible with OpenFaaS, so
//!   `faas-cli` and existing tooling work unchanged;
//! - [`Error`]: the one error type, each variant mapped to one HTTP status;
//! - [`validate`]: the naming rules;
//! - [`settings`]: the one reader of settings from the environment, with
//!   the table each provider declares its variables in;
//! - [`duration`]: the one parser for durations users write;
//! - [`Body`]: the streaming body of invocations;
//! - [`Layer`]: wrapping a provider, forwarding what the wrapper does not
//!   change;
//! - [`follow`]: following logs across a function's instances as they come
//!   and go;
//! - [`poll`]: how long to pause between looks at something becoming ready;
//! - [`api`] (feature `api`, on by default): the HTTP API that serves any
//!   provider.
//!
//! A provider author needs this crate, `faas-testkit` to run the
//! conformance suite, and the `examples/custom-provider` crate as a
//! template.

pub mod body;
pub mod duration;
pub mod error;
pub mod follow;
pub mod hop_by_hop;
pub mod layer;
pub mod poll;
pub mod provider;
pub mod settings;
pub mod types;
pub mod validate;

#[cfg(feature = "api")]
pub mod api;

pub use body::Body;
pub use error::{error_chain, BoxError, Error, Result};
pub use hop_by_hop::strip_hop_by_hop;
pub use layer::Layer;
pub use provider::{Capabilities, LogStream, Provider, SharedProvider, SoleNamespace};
pub use types::*;
