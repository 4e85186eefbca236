//! The gateway's router: faas-core's API plus `/metrics`, with request
//! metrics around every route.

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use faas_core::api::ApiConfig;
use faas_core::SharedProvider;

use crate::metrics::{http, Metrics};

/// The route serving the metrics; never behind basic auth, as OpenFaaS
/// serves it.
pub const METRICS_PATH: &str = "/metrics";

/// faas-core's API over `provider` (wrap it in [`crate::Metered`] sharing
/// `metrics` for invocation metrics), `GET /metrics`, and the API request
/// metrics of [`http::track`] on every route. Usable as a tower service
/// (in tests, `tower::ServiceExt::oneshot`) or served by
/// [`crate::server::serve`].
pub fn router(provider: SharedProvider, config: ApiConfig, metrics: Arc<Metrics>) -> Router {
    router_with(provider, config, metrics, Router::new())
}

/// [`router`] with `extra` routes merged in (the asynchronous call routes
/// of `faas-async`), under the same request metrics.
pub fn router_with(provider: SharedProvider, config: ApiConfig, metrics: Arc<Metrics>, extra: Router) -> Router {
    let metrics_route = Router::new().route(METRICS_PATH, get(http::render)).with_state(metrics.clone());
    faas_core::api::router(provider, config)
        .merge(extra)
        .merge(metrics_route)
        .layer(axum::middleware::from_fn_with_state(metrics, http::track))
}
