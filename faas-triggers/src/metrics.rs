//! Prometheus metrics of triggers, per function (`function_name` =
//! `name.namespace`, `kind` = `cron` or `nats`):
//!
//! | metric | type | what |
//! |---|---|---|
//! | `gateway_trigger_fired_total` | counter | calls a trigger put in the asynchronous queue |
//! | `gateway_trigger_failed_total` | counter | calls a trigger could not queue |

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabels {
    function_name: String,
    kind: String,
}

/// The triggers' metrics; register them with [`TriggerMetrics::register`].
#[derive(Debug, Default, Clone)]
pub struct TriggerMetrics {
    fired: Family<TriggerLabels, Counter>,
    failed: Family<TriggerLabels, Counter>,
}

impl TriggerMetrics {
    /// Metrics with no series yet.
    pub fn new() -> Self {
        TriggerMetrics::default()
    }

    /// Adds both metrics to `registry` (counters get `_total` from the encoder).
    pub fn register(&self, registry: &mut Registry) {
        registry.register("gateway_trigger_fired", "Calls queued by triggers", self.fired.clone());
        registry.register("gateway_trigger_failed", "Calls triggers could not queue", self.failed.clone());
    }

    /// Counts a queued call.
    pub fn fired(&self, function: &str, kind: &str) {
        self.fired.get_or_create(&labels(function, kind)).inc();
    }

    /// Counts a call that could not be queued.
    pub fn failed(&self, function: &str, kind: &str) {
        self.failed.get_or_create(&labels(function, kind)).inc();
    }

    /// How many calls `function` fired of `kind` (for tests and listings).
    pub fn fired_count(&self, function: &str, kind: &str) -> u64 {
        self.fired.get_or_create(&labels(function, kind)).get()
    }

    /// How many calls of `kind` for `function` could not be queued.
    pub fn failed_count(&self, function: &str, kind: &str) -> u64 {
        self.failed.get_or_create(&labels(function, kind)).get()
    }
}

fn labels(function: &str, kind: &str) -> TriggerLabels {
    TriggerLabels { function_name: function.to_owned(), kind: kind.to_owned() }
}
