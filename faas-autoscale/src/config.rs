//! [`ScalingConfig`]: the layer's thresholds, the same for every function.

use std::time::Duration;

use crate::labels::{ScaleSettings, ScaleType};

/// The scaling layer's thresholds. Per-function settings come from labels
/// ([`crate::ScaleSettings`]); these apply to all functions.
///
/// Build with [`ScalingConfig::default`] and change the fields you need.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ScalingConfig {
    /// How often the autoscaler looks at every function (default 2s).
    pub tick: Duration,
    /// Scale-down stabilisation: replicas only go down once every
    /// recommendation of this window agrees, and panic mode lasts this
    /// long after it was last triggered (default 60s, Knative's stable
    /// window).
    pub stable_window: Duration,
    /// The window in-flight calls are averaged over for scaling up
    /// (default 6s, Knative's panic window).
    pub panic_window: Duration,
    /// Panic when the in-flight average over the panic window reaches this
    /// many times the ready capacity (ready replicas x target): replicas
    /// then go up at once and never down while panicking (default 2.0).
    pub panic_threshold: f64,
    /// The longest a call is held waiting for a ready replica (default
    /// 30s); beyond it the call gets 504 saying the function is starting.
    pub hold_timeout: Duration,
    /// The most calls held at once per function (default 1000); beyond it
    /// calls get 503 saying the function is starting.
    pub max_held: usize,
    /// The scale type of functions without `com.openfaas.scale.type`
    /// (default `capacity`; the gateway's `--scale-type`).
    pub scale_type: ScaleType,
    /// The target of functions without `com.openfaas.scale.target`
    /// (default 50; the gateway's `--scale-target`).
    pub target: u64,
    /// The idle time before scale to zero of functions labelled
    /// `com.openfaas.scale.zero=true` without their own
    /// `com.openfaas.scale.zero-duration` (default 15m; the gateway's
    /// `--scale-zero-duration`).
    pub zero_duration: Duration,
    /// The shortest pause between readiness polls of a cold start
    /// (default 2ms): each pause is an eighth of the time waited so far,
    /// at least this ...
    pub poll_initial: Duration,
    /// ... and at most this (default 500ms).
    pub poll_max: Duration,
}

impl Default for ScalingConfig {
    fn default() -> Self {
        ScalingConfig {
            tick: Duration::from_secs(2),
            stable_window: Duration::from_secs(60),
            panic_window: Duration::from_secs(6),
            panic_threshold: 2.0,
            hold_timeout: Duration::from_secs(30),
            max_held: 1000,
            scale_type: ScaleType::Capacity,
            target: ScaleSettings::DEFAULT_TARGET,
            zero_duration: ScaleSettings::DEFAULT_ZERO_DURATION,
            poll_initial: Duration::from_millis(2),
            poll_max: Duration::from_millis(500),
        }
    }
}
