//! Talking to function instances: what every provider and the watchdog's
//! HTTP mode share when they forward a call.
//!
//! - [`Upstream`]: one pooled keep-alive HTTP/1.1 client with one connect
//!   timeout ([`CONNECT_TIMEOUT`]), one `Host` rule (the caller's `Host`
//!   is kept; without one, the instance's address) and hop-by-hop headers
//!   stripped both ways ([`faas_core::strip_hop_by_hop`]).
//! - [`Replayable`]: a request body that can be taken back while nobody
//!   read it, so a call refused at connect time goes to the next instance
//!   with its streaming body intact.
//! - [`Targets`]: each function's instances, cached with a refresh policy
//!   ([`Refresh`]) and taken in round-robin order.
//! - [`Shards`]: threads each running a single-threaded runtime, so a
//!   caller's connection and the calls it makes stay on one thread
//!   ([`Upstream`] keeps a pool per such thread).
//! - `allocator` (feature `mimalloc`): the binaries' global allocator and
//!   how soon it returns freed memory to the OS.
//! - [`UpstreamError`]: what can go wrong, mapped once to
//!   [`faas_core::Error`]: 503 when no instance is reachable, 502 when the
//!   call failed after one was, 504 when it took too long.
//!
//! A provider's `invoke` is then reduced to choosing targets:
//!
//! ```no_run
//! # async fn example(request: http::Request<faas_core::Body>) -> faas_core::Result<()> {
//! use faas_core::FunctionRef;
//! use faas_upstream::{Refresh, Targets, Upstream};
//! let upstream = Upstream::new();
//! let targets: Targets<String> = Targets::new("my-provider", Refresh::default());
//! let function = FunctionRef::new("echo", "openfaas-fn");
//! let response = targets
//!     .call(&upstream, &function, request, None, || async {
//!         Ok(vec!["127.0.0.1:8080".to_owned()])
//!     })
//!     .await?;
//! # drop(response); Ok(()) }
//! ```

#[cfg(feature = "mimalloc")]
pub mod allocator;
mod body;
mod client;
mod error;
mod shards;
mod targets;

pub use body::{Reclaim, Replayable};
pub use client::{Attempt, Call, Upstream, CONNECT_TIMEOUT, POOL_IDLE};
pub use error::UpstreamError;
pub use shards::{Shards, BLOCKING_KEEP_ALIVE};
pub use targets::{Refresh, Targets};
