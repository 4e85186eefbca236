//! The API request metrics middleware and the `/metrics` handler.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use faas_core::api::ErrorMessage;
use http::header;

use super::{Metrics, CONTENT_TYPE};

/// The `path` label of requests no route matched, so unknown paths cannot
/// grow the label set.
pub const UNMATCHED_PATH: &str = "unmatched";

/// Middleware: counts and times every request under its route template
/// (axum's [`MatchedPath`]), and logs platform failures (5xx outside
/// invocations, which [`super::Metered`] logs itself) at `warn`.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Both are reference-counted (a standard method is not even that):
    // nothing is copied per request.
    let method = request.method().clone();
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    let status = response.status();
    let method = method.as_str();
    let path = matched.as_ref().map_or(UNMATCHED_PATH, MatchedPath::as_str);
    metrics.record_request(method, path, status.as_u16(), started.elapsed());
    if status.is_server_error() && !path.starts_with("/function/") {
        let reason = response.extensions().get::<ErrorMessage>().map_or("", |m| m.0.as_str());
        tracing::warn!(method, path, status = status.as_u16(), error = reason, "request failed");
    }
    response
}

/// `GET /metrics`: every metric in the text format.
pub async fn render(State(metrics): State<Arc<Metrics>>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.encode()).into_response()
}
