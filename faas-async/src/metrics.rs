//! Prometheus metrics of asynchronous calls, per function
//! (`function_name` = `name.namespace`):
//!
//! | metric | type | what |
//! |---|---|---|
//! | `gateway_async_queued_total` | counter | calls accepted (202) |
//! | `gateway_async_inflight` | gauge | calls claimed by this gateway's workers now |
//! | `gateway_async_callbacks_pending` | gauge | of those, calls whose function answered and whose callback is being delivered |
//! | `gateway_async_retried_total` | counter | invocation attempts that failed and were retried later |
//! | `gateway_async_dead_lettered_total` | counter | calls moved to the dead letters (`stage` label: `invoke` or `callback`) |
//! | `gateway_async_completed_total` | counter | calls that finished (callback delivered, if any) |
//! | `gateway_async_redelivered_total` | counter | calls run again after a crash: possible duplicates |
//! | `gateway_async_callback_failures_total` | counter | callback attempts that failed |
//! | `gateway_async_replayed_total` | counter | dead letters replayed |

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::call::FailedStage;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionLabels {
    function_name: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeadLabels {
    function_name: String,
    stage: String,
}

/// The asynchronous layer's metrics. Register them with
/// [`AsyncMetrics::register`]; share as `Arc<AsyncMetrics>`.
#[derive(Debug, Default, Clone)]
pub struct AsyncMetrics {
    queued: Family<FunctionLabels, Counter>,
    inflight: Family<FunctionLabels, Gauge>,
    callbacks_pending: Family<FunctionLabels, Gauge>,
    retried: Family<FunctionLabels, Counter>,
    dead: Family<DeadLabels, Counter>,
    completed: Family<FunctionLabels, Counter>,
    redelivered: Family<FunctionLabels, Counter>,
    callback_failures: Family<FunctionLabels, Counter>,
    replayed: Family<FunctionLabels, Counter>,
}

impl AsyncMetrics {
    /// Metrics with no series yet.
    pub fn new() -> Self {
        AsyncMetrics::default()
    }

    /// Adds every metric to `registry` (counters get `_total` from the encoder).
    pub fn register(&self, registry: &mut Registry) {
        registry.register("gateway_async_queued", "Asynchronous calls accepted", self.queued.clone());
        registry.register("gateway_async_inflight", "Asynchronous calls claimed by workers", self.inflight.clone());
        registry.register(
            "gateway_async_callbacks_pending",
            "Asynchronous calls whose callback is being delivered",
            self.callbacks_pending.clone(),
        );
        registry.register("gateway_async_retried", "Asynchronous call attempts retried", self.retried.clone());
        registry.register("gateway_async_dead_lettered", "Asynchronous calls dead-lettered", self.dead.clone());
        registry.register("gateway_async_completed", "Asynchronous calls completed", self.completed.clone());
        registry.register(
            "gateway_async_redelivered",
            "Asynchronous calls run again after a crash (possible duplicates)",
            self.redelivered.clone(),
        );
        registry.register(
            "gateway_async_callback_failures",
            "Callback delivery attempts that failed",
            self.callback_failures.clone(),
        );
        registry.register("gateway_async_replayed", "Dead letters replayed", self.replayed.clone());
    }

    fn labels(function: &str) -> FunctionLabels {
        FunctionLabels { function_name: function.to_owned() }
    }

    pub(crate) fn queued(&self, function: &str) {
        self.queued.get_or_create(&Self::labels(function)).inc();
    }

    pub(crate) fn inflight(&self, function: &str, delta: i64) {
        self.inflight.get_or_create(&Self::labels(function)).inc_by(delta);
    }

    pub(crate) fn callbacks_pending(&self, function: &str, delta: i64) {
        self.callbacks_pending.get_or_create(&Self::labels(function)).inc_by(delta);
    }

    pub(crate) fn retried(&self, function: &str) {
        self.retried.get_or_create(&Self::labels(function)).inc();
    }

    pub(crate) fn dead_lettered(&self, function: &str, stage: FailedStage) {
        let stage = match stage {
            FailedStage::Invoke => "invoke",
            FailedStage::Callback => "callback",
        };
        self.dead.get_or_create(&DeadLabels { function_name: function.to_owned(), stage: stage.to_owned() }).inc();
    }

    pub(crate) fn completed(&self, function: &str) {
        self.completed.get_or_create(&Self::labels(function)).inc();
    }

    pub(crate) fn redelivered(&self, function: &str) {
        self.redelivered.get_or_create(&Self::labels(function)).inc();
    }

    pub(crate) fn callback_failed(&self, function: &str) {
        self.callback_failures.get_or_create(&Self::labels(function)).inc();
    }

    pub(crate) fn replayed(&self, function: &str) {
        self.replayed.get_or_create(&Self::labels(function)).inc();
    }
}
