//! # faas-autoscale
//!
//! Scale to zero, scale from zero and autoscaling for every provider,
//! written once above the [`faas_core::Provider`] trait: [`Scaler`] wraps
//! any `Arc<dyn Provider>` and is itself a provider, so the gateway serves
//! it like any other (it does so by default).
//!
//! ```no_run
//! # async fn run(provider: faas_core::SharedProvider) {
//! use std::sync::Arc;
//! use faas_autoscale::{Scaler, ScalingConfig};
//!
//! let scaler = Scaler::new(provider, ScalingConfig::default());
//! let autoscaler = scaler.spawn(); // the loop stops when this is dropped
//! let served: faas_core::SharedProvider = Arc::new(scaler.clone());
//! # }
//! ```
//!
//! ## Per-function settings
//!
//! From labels, under OpenFaaS's names ([`ScaleSettings`]); bad values are
//! refused at deploy and update with `Invalid` (HTTP 400) naming the label:
//!
//! | label | default | meaning |
//! |---|---|---|
//! | `com.openfaas.scale.min` | 1 | fewest replicas while in use (at least 1) |
//! | `com.openfaas.scale.max` | 20 | most replicas the autoscaler sets (at most 1000, at least min) |
//! | `com.openfaas.scale.type` | `capacity` ([`ScalingConfig::scale_type`]) | what is measured: `capacity` (calls in flight), `rps` (calls begun per second), `cpu` (millicores; only where [`faas_core::Capabilities::cpu_usage`], else 400) |
//! | `com.openfaas.scale.target` | 50 ([`ScalingConfig::target`]) | that load per replica |
//! | `com.openfaas.scale.zero` | false | let the idler scale the function to zero |
//! | `com.openfaas.scale.zero-duration` | 15m ([`ScalingConfig::zero_duration`]) | idle time before that (`30s`, `15m`, `1h`, plain seconds) |
//! | `com.openfaas.scale.factor` | 10 | percent of max a firing AlertManager alert adds (1-100; [`alert`]) |
//!
//! `GET /system/function/{name}` (and the list) shows the type and target
//! in use as the labels `com.openfaas.scale.type` and
//! `com.openfaas.scale.target`, where OpenFaaS users look for them: the
//! function's own, or the gateway-wide defaults filled in.
//!
//! ## Scale from zero
//!
//! A call to a function the layer knows to have no ready replica is held
//! (counted in flight, so it also drives the autoscaler), and one task per
//! function, shared by every held call, scales it to its min (at least 1)
//! if it is at zero, then polls its status with backoff (10ms doubling to
//! 500ms: the trait has no watch) until a replica is ready; the held calls
//! then go through. Held calls are bounded: past
//! [`ScalingConfig::hold_timeout`] (30s) a call gets `Timeout` (504), past
//! [`ScalingConfig::max_held`] (1000) held calls a new one gets
//! `Unavailable` (503); both messages say the function is starting.
//!
//! The call path never asks the provider's status once the function is
//! known: availability is learned at first sight, from the layer's own
//! scale actions and from the autoscaler's listing of every namespace each
//! tick. A call is forwarded before its body is touched, so it is decided
//! whether to hold it before forwarding. If the provider scaled a function
//! to zero behind the layer's back, the one call forwarded in between gets
//! the provider's `Unavailable`, the layer re-reads the status in the
//! background, and the next calls are held and start it.
//!
//! ## Autoscaling
//!
//! Every [`ScalingConfig::tick`] (2s) the autoscaler lists every
//! namespace, then per function measures the load its scale type names
//! over the panic window (6s): the time-weighted average of calls in
//! flight (`capacity`), the request rate, calls begun per second (`rps`;
//! also reported as a metric for every function), or the CPU its replicas
//! used in millicores (`cpu`, from [`faas_core::Provider::cpu_usage`]), and
//! recommends `ceil(load / target)` within `min..=max`
//! ([`decision::recommend`]).
//! Replicas become the highest recommendation of the stable window (60s):
//! up at once, down only once the whole window agrees. When the load
//! reaches twice the ready capacity the function panics for a stable window
//! and is never scaled down meanwhile. See [`decision::Decider`].
//!
//! A manual scale (`POST /system/scale-function`) is applied as asked and
//! counts as a recommendation: it is a floor until a stable window has
//! passed with less load, then the autoscaler's decisions take over again
//! (and `min`/`max` bound it from the next decision on). A function found at
//! some replicas (at gateway start) keeps them for one stable window too. A
//! function at zero replicas stays there until a call wakes it.
//!
//! ## Scale to zero
//!
//! With `com.openfaas.scale.zero=true`, a function with no call in flight
//! and none begun or ended for `zero-duration` is scaled to zero. Without
//! it, an idle function goes down to its min and stays there.
//!
//! ## Metrics
//!
//! [`ScalingMetrics`]: desired and ready replicas, calls in flight and held,
//! the request rate (calls begun per second over the panic window), cold
//! starts and their duration, per function.
//!
//! ## Time
//!
//! Decisions read a [`Clock`] ([`TokioClock`] by default, [`ManualClock`] in
//! tests), so tests step through minutes of windows without waiting; holding
//! calls uses tokio's timers.

pub mod alert;
mod autoscaler;
mod clock;
mod cold_start;
mod config;
pub mod decision;
mod error;
mod labels;
mod metrics;
mod probe;
mod rate;
mod scaler;
mod state;

pub use clock::{Clock, ManualClock, TokioClock};
pub use config::ScalingConfig;
pub use labels::{
    ScaleSettings, ScaleType, SCALE_FACTOR, SCALE_MAX, SCALE_MIN, SCALE_TARGET, SCALE_TYPE, SCALE_ZERO,
    SCALE_ZERO_DURATION,
};
pub use metrics::ScalingMetrics;
pub use probe::{scale_from_zero, ColdStart};
pub use scaler::{AutoscalerTask, Scaler};
pub use state::FunctionView;
