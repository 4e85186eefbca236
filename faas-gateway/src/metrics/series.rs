//! Series resolved once and reused: a call finds its counter and histogram
//! with one map lookup by reference, without building label `String`s
//! (with 16 callers on one function, the label strings and the two family
//! lookups per call were most of what metrics cost on the invoke path).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use faas_core::FunctionRef;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use super::{HttpLabels, InvocationLabels};

/// The counter and histogram of one label set.
type Pair = (Counter, Histogram);

/// The families a series is created in on its first use.
#[derive(Clone)]
pub(super) struct Families<L> {
    pub(super) counters: Family<L, Counter>,
    pub(super) histograms: Family<L, Histogram, fn() -> Histogram>,
}

impl<L: Clone + std::hash::Hash + Eq> Families<L> {
    fn pair(&self, labels: &L) -> Pair {
        (self.counters.get_or_create(labels).clone(), self.histograms.get_or_create(labels).clone())
    }
}

fn observe((counter, histogram): &Pair, elapsed: Duration) {
    counter.inc();
    histogram.observe(elapsed.as_secs_f64());
}

/// One function's invocation series: its `function_name` label, formatted
/// once, and its series per status code (usually one or two).
pub struct FunctionSeries {
    name: String,
    by_code: RwLock<Vec<(u16, Pair)>>,
    families: Families<InvocationLabels>,
}

impl std::fmt::Debug for FunctionSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionSeries").field("name", &self.name).finish_non_exhaustive()
    }
}

impl FunctionSeries {
    /// The function as its `function_name` label gives it (`name.namespace`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Counts and times one call that answered `code`.
    pub fn record(&self, code: u16, elapsed: Duration) {
        {
            let by_code = self.by_code.read().unwrap_or_else(|p| p.into_inner());
            if let Some((_, pair)) = by_code.iter().find(|(c, _)| *c == code) {
                observe(pair, elapsed);
                return;
            }
        }
        // The first call with this code: the label set is built this once.
        let pair = self.families.pair(&InvocationLabels { function_name: self.name.clone(), code });
        observe(&pair, elapsed);
        let mut by_code = self.by_code.write().unwrap_or_else(|p| p.into_inner());
        if !by_code.iter().any(|(c, _)| *c == code) {
            by_code.push((code, pair));
        }
    }
}

/// The invocation series of every function called so far. Like the
/// families' own series, they stay once created (the metric keeps its
/// value after the function is deleted, as OpenFaaS's does).
pub(super) struct InvocationSeries {
    families: Families<InvocationLabels>,
    functions: RwLock<HashMap<FunctionRef, Arc<FunctionSeries>>>,
}

impl InvocationSeries {
    pub(super) fn new(families: Families<InvocationLabels>) -> Self {
        InvocationSeries { families, functions: RwLock::new(HashMap::new()) }
    }

    /// `function`'s series, created on first use.
    pub(super) fn of(&self, function: &FunctionRef) -> Arc<FunctionSeries> {
        if let Some(series) = self.functions.read().unwrap_or_else(|p| p.into_inner()).get(function) {
            return series.clone();
        }
        let mut functions = self.functions.write().unwrap_or_else(|p| p.into_inner());
        functions
            .entry(function.clone())
            .or_insert_with(|| {
                Arc::new(FunctionSeries {
                    name: function.to_string(),
                    by_code: RwLock::new(Vec::new()),
                    families: self.families.clone(),
                })
            })
            .clone()
    }
}

/// One route's series: method, status and their pair.
type RouteSeries = Vec<(String, u16, Pair)>;

/// The API request series, by route template, then method and status.
pub(super) struct RequestSeries {
    families: Families<HttpLabels>,
    routes: RwLock<HashMap<String, RouteSeries>>,
}

impl RequestSeries {
    pub(super) fn new(families: Families<HttpLabels>) -> Self {
        RequestSeries { families, routes: RwLock::new(HashMap::new()) }
    }

    /// Counts and times one request.
    pub(super) fn record(&self, method: &str, path: &str, status: u16, elapsed: Duration) {
        {
            let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
            let found = routes.get(path).and_then(|series| series.iter().find(|(m, s, _)| *s == status && m == method));
            if let Some((_, _, pair)) = found {
                observe(pair, elapsed);
                return;
            }
        }
        let pair = self.families.pair(&HttpLabels { method: method.to_owned(), path: path.to_owned(), status });
        observe(&pair, elapsed);
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        let series = routes.entry(path.to_owned()).or_default();
        if !series.iter().any(|(m, s, _)| *s == status && m == method) {
            series.push((method.to_owned(), status, pair));
        }
    }
}
