//! The conformance scenarios. Each takes the [`Subject`](crate::Subject),
//! runs in its own [`Scenario`](crate::Scenario) context (unique names,
//! cleanup even on failure) and panics with a message naming what broke.
//! Parts that need a capability the provider does not declare are skipped
//! with a `skipped: ...` line on stderr.

mod capabilities;
mod errors;
mod lifecycle;
mod logs;
mod namespaces;
mod secrets;
mod shape;
mod transfer;

pub use capabilities::capabilities;
pub use errors::{duplicate_deploy, invalid_names, unknown_function};
pub use lifecycle::lifecycle;
pub use logs::logs;
pub use namespaces::namespaces;
pub use secrets::secrets;
pub use shape::{function_label, initial_replicas, status_shape};
pub use transfer::{concurrent_invocations, large_body};

/// The name of every scenario, in the order the macro runs them.
pub const ALL: &[&str] = &[
    "lifecycle",
    "duplicate_deploy",
    "invalid_names",
    "unknown_function",
    "secrets",
    "logs",
    "large_body",
    "concurrent_invocations",
    "capabilities",
    "namespaces",
    "function_label",
    "status_shape",
    "initial_replicas",
];
