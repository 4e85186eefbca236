//! Prometheus metrics under OpenFaaS's names, so its Grafana dashboards and
//! alerts work against this gateway:
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `gateway_function_invocation_total` | counter | `function_name` (`name.namespace`), `code` |
//! | `gateway_functions_seconds` | histogram | `function_name`, `code` |
//! | `gateway_service_count` | gauge (desired replicas) | `function_name` |
//! | `http_requests_total` | counter | `method`, `path` (route template), `status` |
//! | `http_request_duration_seconds` | histogram | `method`, `path`, `status` |
//! | `gateway_http_connections_parked` | gauge (idle HTTP/1 connections holding only their socket, see [`crate::server::PARK_AFTER`]) | |
//!
//! Invocation metrics are recorded by the [`Metered`] wrapper provider, API
//! request metrics by [`http::track`], parked connections by
//! [`crate::server::serve`]; [`http::render`] serves them all,
//! with the scaling layer's (`gateway_replicas_desired`,
//! `gateway_replicas_actual`, `gateway_inflight_requests`,
//! `gateway_held_requests`, `gateway_cold_starts_total`,
//! `gateway_cold_start_seconds`; see [`faas_autoscale::ScalingMetrics`])
//! when it is on.

pub mod http;
mod metered;
mod series;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faas_core::FunctionRef;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use metered::Metered;
pub use series::FunctionSeries;
use series::{Families, InvocationSeries, RequestSeries};

/// The `Content-Type` of [`Metrics::encode`]'s output (OpenMetrics text,
/// which Prometheus scrapes natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Prometheus' default buckets, the ones OpenFaaS's gateway uses, in seconds.
const BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Labels of the invocation metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InvocationLabels {
    /// `name.namespace`.
    function_name: String,
    /// The HTTP status the caller got.
    code: u16,
}

/// Labels of `gateway_service_count`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionLabels {
    /// `name.namespace`.
    function_name: String,
}

/// Labels of the API request metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    /// The route template (`/system/function/{name}`), never the raw path.
    path: String,
    status: u16,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The gateway's metrics registry. Cheap to share as `Arc<Metrics>`; every
/// method takes `&self`.
pub struct Metrics {
    registry: Registry,
    /// `gateway_function_invocation_total` and `gateway_functions_seconds`,
    /// resolved per function.
    invocations: InvocationSeries,
    service_count: Family<FunctionLabels, Gauge>,
    /// The functions `service_count` has a series for, so series of
    /// functions that disappeared can be removed.
    gauged: Mutex<BTreeSet<FunctionRef>>,
    /// `http_requests_total` and `http_request_duration_seconds`, resolved
    /// per route, method and status.
    requests: RequestSeries,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every metric registered and no series yet.
    pub fn new() -> Self {
        Metrics::with_registration(|_| {})
    }

    /// [`Metrics::new`], plus whatever `register` adds to the registry
    /// (the scaling layer's metrics), served on `/metrics` with the rest.
    pub fn with_registration(register: impl FnOnce(&mut Registry)) -> Self {
        let mut registry = Registry::default();
        let invocations = Family::<InvocationLabels, Counter>::default();
        let invocation_seconds =
            Family::<InvocationLabels, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
        let service_count = Family::<FunctionLabels, Gauge>::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_seconds = Family::<HttpLabels, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
        // Counters get their `_total` suffix from the encoder.
        registry.register("gateway_function_invocation", "Function calls, by function and status", invocations.clone());
        registry.register(
            "gateway_functions_seconds",
            "Function call duration in seconds, to the end of the response body",
            invocation_seconds.clone(),
        );
        registry.register("gateway_service_count", "Desired replicas of each function", service_count.clone());
        registry.register("http_requests", "API requests, by method, route and status", http_requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "API request duration in seconds, to the response headers",
            http_seconds.clone(),
        );
        register(&mut registry);
        Metrics {
            registry,
            invocations: InvocationSeries::new(Families { counters: invocations, histograms: invocation_seconds }),
            service_count,
            gauged: Mutex::new(BTreeSet::new()),
            requests: RequestSeries::new(Families { counters: http_requests, histograms: http_seconds }),
        }
    }

    /// Counts and times one function call that answered `code`.
    pub fn record_invocation(&self, function: &FunctionRef, code: u16, elapsed: Duration) {
        self.function_series(function).record(code, elapsed);
    }

    /// `function`'s invocation series, resolved once: a caller that keeps
    /// it records calls without looking the function up again.
    pub fn function_series(&self, function: &FunctionRef) -> Arc<FunctionSeries> {
        self.invocations.of(function)
    }

    /// Sets `function`'s `gateway_service_count`.
    pub fn set_replicas(&self, function: &FunctionRef, replicas: u64) {
        let labels = FunctionLabels { function_name: function.to_string() };
        self.service_count.get_or_create(&labels).set(i64::try_from(replicas).unwrap_or(i64::MAX));
        self.gauged_set().insert(function.clone());
    }

    /// Removes `function`'s `gateway_service_count` series (it was deleted).
    pub fn forget_function(&self, function: &FunctionRef) {
        self.service_count.remove(&FunctionLabels { function_name: function.to_string() });
        self.gauged_set().remove(function);
    }

    /// Removes the series of functions in `namespace` other than `present`,
    /// after a full listing of that namespace.
    pub fn retain_functions(&self, namespace: &str, present: &BTreeSet<FunctionRef>) {
        let gone: Vec<FunctionRef> =
            self.gauged_set().iter().filter(|f| f.namespace == namespace && !present.contains(*f)).cloned().collect();
        for function in &gone {
            self.forget_function(function);
        }
    }

    /// Counts and times one API request.
    pub fn record_request(&self, method: &str, path: &str, status: u16, elapsed: Duration) {
        self.requests.record(method, path, status, elapsed);
    }

    /// Every metric in the text exposition format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    fn gauged_set(&self) -> std::sync::MutexGuard<'_, BTreeSet<FunctionRef>> {
        self.gauged.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_use_openfaas_names_and_labels() {
        let metrics = Metrics::new();
        let f = FunctionRef::new("echo", "openfaas-fn");
        metrics.record_invocation(&f, 200, Duration::from_millis(3));
        metrics.set_replicas(&f, 2);
        metrics.record_request("GET", "/system/functions", 200, Duration::from_millis(1));
        let text = metrics.encode();
        assert!(
            text.contains(r#"gateway_function_invocation_total{function_name="echo.openfaas-fn",code="200"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"gateway_functions_seconds_count{function_name="echo.openfaas-fn",code="200"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"gateway_service_count{function_name="echo.openfaas-fn"} 2"#), "{text}");
        assert!(
            text.contains(r#"http_requests_total{method="GET",path="/system/functions",status="200"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"http_request_duration_seconds_bucket{le="0.005",method="GET",path="/system/functions",status="200"} 1"#), "{text}");
    }

    #[test]
    fn resolved_series_count_every_call_under_its_labels() {
        let metrics = Metrics::new();
        let f = FunctionRef::new("echo", "openfaas-fn");
        let series = metrics.function_series(&f);
        assert_eq!(series.name(), "echo.openfaas-fn");
        for _ in 0..3 {
            series.record(200, Duration::from_millis(1));
        }
        metrics.record_invocation(&f, 200, Duration::from_millis(1));
        series.record(502, Duration::from_millis(1));
        for method in ["GET", "GET", "POST"] {
            metrics.record_request(method, "/system/functions", 200, Duration::from_millis(1));
        }
        metrics.record_request("GET", "/system/functions", 500, Duration::from_millis(1));
        let text = metrics.encode();
        for line in [
            r#"gateway_function_invocation_total{function_name="echo.openfaas-fn",code="200"} 4"#,
            r#"gateway_function_invocation_total{function_name="echo.openfaas-fn",code="502"} 1"#,
            r#"gateway_functions_seconds_count{function_name="echo.openfaas-fn",code="200"} 4"#,
            r#"http_requests_total{method="GET",path="/system/functions",status="200"} 2"#,
            r#"http_requests_total{method="POST",path="/system/functions",status="200"} 1"#,
            r#"http_requests_total{method="GET",path="/system/functions",status="500"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn gone_functions_lose_their_gauge() {
        let metrics = Metrics::new();
        let keep = FunctionRef::new("keep", "openfaas-fn");
        let gone = FunctionRef::new("gone", "openfaas-fn");
        let other = FunctionRef::new("other", "team");
        for f in [&keep, &gone, &other] {
            metrics.set_replicas(f, 1);
        }
        metrics.retain_functions("openfaas-fn", &BTreeSet::from([keep.clone()]));
        let text = metrics.encode();
        assert!(text.contains("keep.openfaas-fn") && text.contains("other.team"), "{text}");
        assert!(!text.contains("gone.openfaas-fn"), "{text}");
    }
}
