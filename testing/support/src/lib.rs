//! # faas-test-support
//!
//! What this workspace's tests and its API emulators (`k8s-test-server`,
//! `cattle-test-server`) share, kept apart from the product crates (which
//! use it only as a dev-dependency) and from `faas-testkit` (the public
//! conformance kit provider authors use):
//!
//! - [`serve`]: the emulators' accept loop, with every open connection cut
//!   on demand.
//! - [`process`]: `fwatchdog` processes standing in for containers: their
//!   environment, command, output lines and SIGTERM-then-SIGKILL stop.
//! - [`fwatchdog`]: finding (or building) this checkout's `fwatchdog`.
//! - [`nats`]: a real `nats-server` with JetStream for the tests of the
//!   async queue, the triggers and the gateway.
//! - [`callbacks`]: a loopback server recording asynchronous calls'
//!   callbacks.
//! - [`python`]: HTTP-mode functions written as small Python servers.
//! - `scale_from_zero` (feature `autoscale`): the scaling layer's wake-up
//!   check over any provider.

pub mod callbacks;
pub mod fwatchdog;
pub mod nats;
pub mod process;
pub mod python;
#[cfg(feature = "autoscale")]
pub mod scale_from_zero;
pub mod serve;
