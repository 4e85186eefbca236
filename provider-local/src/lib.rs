//! # provider-local
//!
//! A [`faas_core::Provider`] that runs functions as processes on this
//! machine, each through an in-process [`faas_watchdog::Watchdog`]: no
//! container runtime, no extra network hop.
//!
//! ```no_run
//! # async fn run() -> faas_core::Result<()> {
//! use provider_local::{LocalConfig, LocalProvider};
//!
//! let provider = LocalProvider::open(LocalConfig::new("/var/lib/faas-rs")).await?;
//! // serve it with the faas-core HTTP API, then:
//! provider.shutdown(std::time::Duration::from_secs(10)).await;
//! # Ok(())
//! # }
//! ```
//!
//! What a deployment means here, how state is kept and how errors are
//! reported is described on [`LocalProvider`]. The state dir's layout:
//!
//! ```text
//! <state>/lock                          flock held by the running gateway, with its pid
//! <state>/functions/<ns>/<name>.json    each function's deployment, replicas and createdAt
//! <state>/namespaces/<name>.json        namespaces other than the default (or with labels)
//! <state>/secrets/<ns>/<name>           secret values, mode 0600 in 0700 dirs
//! <state>/run/<ns>/<name>/              a function's working dir
//! <state>/run/<ns>/<name>/secrets/      copies of its secrets: its $SECRETS_DIR
//! <state>/sandbox/                      what to reap after a crash: cgroups, process groups
//! ```

mod config;
mod cpu;
mod deployment;
mod environment;
mod error;
mod files;
mod function;
mod isolation;
mod lock;
mod logs;
mod namespaces;
mod provider;
mod secrets;
mod store;

pub use config::{LocalConfig, DEFAULT_LOG_LINES};
pub use faas_watchdog::SandboxMode;
pub use function::{LAST_ERROR_ANNOTATION, WATCHDOG_INSTANCE};
pub use provider::LocalProvider;
