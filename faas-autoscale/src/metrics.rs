//! [`ScalingMetrics`]: the layer's Prometheus series, per function.

use std::sync::atomic::AtomicU64;

use faas_core::FunctionRef;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::labels::ScaleType;

/// Cold start durations, in seconds.
const COLD_START_BUCKETS: [f64; 12] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionLabels {
    /// `name.namespace`, as the gateway's other series.
    function_name: String,
}

impl FunctionLabels {
    fn of(function: &FunctionRef) -> Self {
        FunctionLabels { function_name: function.to_string() }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScaleLabels {
    /// `name.namespace`.
    function_name: String,
    /// `capacity`, `rps` or `cpu`.
    scale_type: String,
}

impl ScaleLabels {
    fn of(function: &FunctionRef, kind: ScaleType) -> Self {
        ScaleLabels { function_name: function.to_string(), scale_type: kind.as_str().to_owned() }
    }
}

fn cold_start_histogram() -> Histogram {
    Histogram::new(COLD_START_BUCKETS)
}

/// The scaling layer's metrics, labelled `function_name` (`name.namespace`):
///
/// | metric | type | meaning |
/// |---|---|---|
/// | `gateway_replicas_desired` | gauge | replicas the layer wants (its last decision, or the last scale) |
/// | `gateway_replicas_actual` | gauge | ready replicas, as the provider last reported |
/// | `gateway_inflight_requests` | gauge | calls in flight at the last autoscaler tick (held ones included) |
/// | `gateway_held_requests` | gauge | calls held now, waiting for a ready replica |
/// | `gateway_request_rate` | gauge | calls begun per second over the panic window (6s), at the last autoscaler tick (held and refused ones included) |
/// | `gateway_scale_target` | gauge | the target per replica in use, labelled `scale_type` too (`capacity`, `rps`, `cpu`) |
/// | `gateway_scale_load` | gauge | the load the autoscaler last saw (panic-window average, the `scale_type`'s unit) |
/// | `gateway_cold_starts_total` | counter | scale-ups from zero |
/// | `gateway_cold_start_seconds` | histogram | from a scale-up from zero to the first ready replica |
///
/// Clones share the same series. Register them into the registry that
/// serves `/metrics` with [`ScalingMetrics::register`].
#[derive(Clone)]
pub struct ScalingMetrics {
    desired: Family<FunctionLabels, Gauge>,
    actual: Family<FunctionLabels, Gauge>,
    inflight: Family<FunctionLabels, Gauge>,
    held: Family<FunctionLabels, Gauge>,
    rate: Family<FunctionLabels, Gauge<f64, AtomicU64>>,
    target: Family<ScaleLabels, Gauge>,
    load: Family<ScaleLabels, Gauge<f64, AtomicU64>>,
    cold_starts: Family<FunctionLabels, Counter>,
    cold_start_seconds: Family<FunctionLabels, Histogram, fn() -> Histogram>,
}

impl std::fmt::Debug for ScalingMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScalingMetrics").finish_non_exhaustive()
    }
}

impl Default for ScalingMetrics {
    fn default() -> Self {
        ScalingMetrics::new()
    }
}

fn gauge_value(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl ScalingMetrics {
    /// Metrics with no series yet, not registered anywhere.
    pub fn new() -> Self {
        ScalingMetrics {
            desired: Family::default(),
            actual: Family::default(),
            inflight: Family::default(),
            held: Family::default(),
            rate: Family::default(),
            target: Family::default(),
            load: Family::default(),
            cold_starts: Family::default(),
            cold_start_seconds: Family::new_with_constructor(cold_start_histogram),
        }
    }

    /// Registers every metric into `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register("gateway_replicas_desired", "Replicas the scaling layer wants", self.desired.clone());
        registry.register("gateway_replicas_actual", "Ready replicas, as last reported", self.actual.clone());
        registry.register(
            "gateway_inflight_requests",
            "Calls in flight at the last autoscaler tick",
            self.inflight.clone(),
        );
        registry.register("gateway_held_requests", "Calls held waiting for a ready replica", self.held.clone());
        registry.register(
            "gateway_request_rate",
            "Calls begun per second over the panic window, at the last autoscaler tick",
            self.rate.clone(),
        );
        registry.register(
            "gateway_scale_target",
            "Target load per replica in use, in the unit of scale_type",
            self.target.clone(),
        );
        registry.register(
            "gateway_scale_load",
            "Load the autoscaler last saw, averaged over the panic window, in the unit of scale_type",
            self.load.clone(),
        );
        // Counters get their `_total` suffix from the encoder.
        registry.register("gateway_cold_starts", "Scale-ups from zero replicas", self.cold_starts.clone());
        registry.register(
            "gateway_cold_start_seconds",
            "Time from a scale-up from zero to the first ready replica, in seconds",
            self.cold_start_seconds.clone(),
        );
    }

    /// Scale-ups from zero of `function` so far.
    pub fn cold_starts(&self, function: &FunctionRef) -> u64 {
        self.cold_starts.get_or_create(&FunctionLabels::of(function)).get()
    }

    /// Calls begun per second of `function` over the panic window, as the
    /// last autoscaler tick measured it; 0 before its first tick.
    pub fn request_rate(&self, function: &FunctionRef) -> f64 {
        self.rate.get(&FunctionLabels::of(function)).map_or(0.0, |gauge| gauge.get())
    }

    pub(crate) fn set_desired(&self, function: &FunctionRef, replicas: u64) {
        self.desired.get_or_create(&FunctionLabels::of(function)).set(gauge_value(replicas));
    }

    pub(crate) fn set_actual(&self, function: &FunctionRef, replicas: u64) {
        self.actual.get_or_create(&FunctionLabels::of(function)).set(gauge_value(replicas));
    }

    pub(crate) fn set_inflight(&self, function: &FunctionRef, calls: u64) {
        self.inflight.get_or_create(&FunctionLabels::of(function)).set(gauge_value(calls));
    }

    pub(crate) fn set_rate(&self, function: &FunctionRef, per_second: f64) {
        self.rate.get_or_create(&FunctionLabels::of(function)).set(per_second);
    }

    /// Records the scale type and target in use and the load seen; the
    /// series of another type (before an update) are dropped.
    pub(crate) fn set_scale(&self, function: &FunctionRef, kind: ScaleType, target: u64, load: f64) {
        for other in ScaleType::ALL.into_iter().filter(|t| *t != kind) {
            let labels = ScaleLabels::of(function, other);
            self.target.remove(&labels);
            self.load.remove(&labels);
        }
        let labels = ScaleLabels::of(function, kind);
        self.target.get_or_create(&labels).set(gauge_value(target));
        self.load.get_or_create(&labels).set(load);
    }

    pub(crate) fn held_changed(&self, function: &FunctionRef, delta: i64) {
        self.held.get_or_create(&FunctionLabels::of(function)).inc_by(delta);
    }

    pub(crate) fn cold_start(&self, function: &FunctionRef) {
        self.cold_starts.get_or_create(&FunctionLabels::of(function)).inc();
    }

    pub(crate) fn cold_start_took(&self, function: &FunctionRef, seconds: f64) {
        self.cold_start_seconds.get_or_create(&FunctionLabels::of(function)).observe(seconds);
    }

    /// Drops every series of `function` (it was deleted).
    pub(crate) fn forget(&self, function: &FunctionRef) {
        let labels = FunctionLabels::of(function);
        self.desired.remove(&labels);
        self.actual.remove(&labels);
        self.inflight.remove(&labels);
        self.held.remove(&labels);
        self.rate.remove(&labels);
        for kind in ScaleType::ALL {
            let labels = ScaleLabels::of(function, kind);
            self.target.remove(&labels);
            self.load.remove(&labels);
        }
        self.cold_starts.remove(&labels);
        self.cold_start_seconds.remove(&labels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_named_and_labelled_per_function() {
        let metrics = ScalingMetrics::new();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let f = FunctionRef::new("echo", "openfaas-fn");
        metrics.set_desired(&f, 3);
        metrics.set_actual(&f, 2);
        metrics.held_changed(&f, 1);
        metrics.set_rate(&f, 2.5);
        metrics.set_scale(&f, ScaleType::Capacity, 50, 1.0);
        metrics.set_scale(&f, ScaleType::Rps, 5, 7.5);
        metrics.cold_start(&f);
        metrics.cold_start_took(&f, 0.2);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            r#"gateway_replicas_desired{function_name="echo.openfaas-fn"} 3"#,
            r#"gateway_replicas_actual{function_name="echo.openfaas-fn"} 2"#,
            r#"gateway_held_requests{function_name="echo.openfaas-fn"} 1"#,
            r#"gateway_request_rate{function_name="echo.openfaas-fn"} 2.5"#,
            r#"gateway_scale_target{function_name="echo.openfaas-fn",scale_type="rps"} 5"#,
            r#"gateway_scale_load{function_name="echo.openfaas-fn",scale_type="rps"} 7.5"#,
            r#"gateway_cold_starts_total{function_name="echo.openfaas-fn"} 1"#,
            r#"gateway_cold_start_seconds_count{function_name="echo.openfaas-fn"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(!text.contains(r#"scale_type="capacity""#), "the type before the change is gone: {text}");
        assert_eq!(metrics.cold_starts(&f), 1);
        assert_eq!(metrics.request_rate(&f), 2.5);
        metrics.forget(&f);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(!text.contains("echo.openfaas-fn"), "{text}");
    }
}
