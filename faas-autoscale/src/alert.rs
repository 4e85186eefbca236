//! `POST /system/alert`: scaling by Prometheus AlertManager, as OpenFaaS
//! CE's gateway does it, so existing alert rules keep working.
//!
//! AlertManager posts its webhook notification (`{"version": "4",
//! "status": ..., "alerts": [...], ...}`); for each alert whose
//! `labels.function_name` names a function (`name` or `name.namespace`):
//!
//! - `status: firing` adds `ceil(max × factor / 100)` replicas, capped at
//!   `com.openfaas.scale.max`, where factor is the function's label
//!   `com.openfaas.scale.factor` (1-100, default 10);
//! - `status: resolved` sets `com.openfaas.scale.min`.
//!
//! Replicas are set with [`faas_core::Provider::scale`] on the provider
//! given: through the [`crate::Scaler`] that is a manual scale, a floor
//! for one stable window. Alerts without `function_name` are not about a
//! function and are skipped, as OpenFaaS does. The answer is 200 when every
//! alert was applied, 400 for a body that is not a notification, and 500
//! listing each alert that failed, one a line.
//!
//! `deploy/prometheus/` in the repository has an alert rule and an
//! AlertManager receiver for it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body as AxumBody;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use faas_core::api::{require_basic_auth, BasicAuth, PLATFORM_ERROR_HEADER};
use faas_core::{Error, FunctionRef, Provider, SharedProvider};
use http::{header, HeaderValue, StatusCode};
use serde::Deserialize;

use crate::config::ScalingConfig;
use crate::labels::ScaleSettings;

/// The route AlertManager's receiver posts to.
pub const ALERT_PATH: &str = "/system/alert";

/// The largest notification accepted (413 beyond).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// AlertManager's webhook notification: only what scaling reads; the
/// other fields (`version`, `groupKey`, `receiver`, `groupLabels`,
/// `commonLabels`, `externalURL`, ...) are accepted and ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Notification {
    /// The alerts of the group.
    pub alerts: Vec<Alert>,
}

/// One alert of a [`Notification`].
#[derive(Debug, Clone, Deserialize)]
pub struct Alert {
    /// `firing` or `resolved`.
    pub status: String,
    /// The alert's labels; `function_name` names the function.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// The label naming the function, as OpenFaaS's alert rule sets it.
pub const FUNCTION_NAME_LABEL: &str = "function_name";

/// The replicas an alert of `status` sets on a function at `current`
/// replicas: firing adds `ceil(max × factor / 100)`, capped at max;
/// resolved sets min. `None` for another status.
pub fn replicas_for(status: &str, current: u64, settings: &ScaleSettings) -> Option<u64> {
    match status {
        "firing" => {
            let step = (settings.max * settings.factor).div_ceil(100);
            Some(current.saturating_add(step).min(settings.max))
        }
        "resolved" => Some(settings.min),
        _ => None,
    }
}

/// Applies every alert of `notification` through `provider`; the alerts
/// that failed, each with why.
pub async fn apply(provider: &dyn Provider, notification: &Notification) -> Vec<String> {
    let mut failed = Vec::new();
    for (index, alert) in notification.alerts.iter().enumerate() {
        let Some(name) = alert.labels.get(FUNCTION_NAME_LABEL).filter(|n| !n.trim().is_empty()) else {
            tracing::debug!(index, "alert without function_name: not about a function; skipped");
            continue;
        };
        if let Err(err) = apply_one(provider, name.trim(), &alert.status).await {
            failed.push(format!("alert {index} ({FUNCTION_NAME_LABEL}={name}, status {}): {err}", alert.status));
        }
    }
    failed
}

async fn apply_one(provider: &dyn Provider, name: &str, status: &str) -> Result<(), String> {
    let function = FunctionRef::parse(name).map_err(|e| e.message())?;
    let current = provider.status(&function).await.map_err(|e| e.message())?;
    // Only min, max and factor are read: the gateway-wide type and target
    // defaults do not matter here.
    let settings =
        ScaleSettings::from_labels(current.labels.as_ref(), &ScalingConfig::default()).map_err(|e| e.message())?;
    let replicas = replicas_for(status, current.replicas, &settings)
        .ok_or_else(|| format!("status {status:?} is neither firing nor resolved"))?;
    tracing::info!(%function, status, from = current.replicas, to = replicas, "AlertManager alert: scaling");
    if replicas != current.replicas {
        provider.scale(&function, replicas).await.map_err(|e| e.message())?;
    }
    Ok(())
}

/// `POST /system/alert` over `provider` (the [`crate::Scaler`], so alert
/// scales count as manual ones), behind `basic_auth` when set.
pub fn router(provider: SharedProvider, basic_auth: Option<BasicAuth>) -> Router {
    let mut router = Router::new().route(ALERT_PATH, post(handle)).with_state(provider);
    if let Some(credentials) = basic_auth {
        router = router.route_layer(axum::middleware::from_fn_with_state(Arc::new(credentials), require_basic_auth));
    }
    router
}

async fn handle(State(provider): State<SharedProvider>, body: AxumBody) -> Response {
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => return Error::PayloadTooLarge { limit: MAX_BODY_BYTES as u64 }.into_response(),
    };
    let notification: Notification = match serde_json::from_slice(&bytes) {
        Ok(notification) => notification,
        Err(e) => {
            let reason = format!("not an AlertManager webhook notification: {e}");
            return Error::invalid("body", reason).into_response();
        }
    };
    let failed = apply(&*provider, &notification).await;
    if failed.is_empty() {
        return (StatusCode::OK, format!("{} alerts applied\n", notification.alerts.len())).into_response();
    }
    let mut response = (StatusCode::INTERNAL_SERVER_ERROR, failed.join("\n") + "\n").into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(PLATFORM_ERROR_HEADER, HeaderValue::from_static("platform"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(min: u64, max: u64, factor: u64) -> ScaleSettings {
        ScaleSettings { min, max, factor, ..ScaleSettings::default() }
    }

    #[test]
    fn firing_adds_a_factor_of_max_and_resolved_returns_to_min() {
        // (status, current, min, max, factor, expected)
        type Row = (&'static str, u64, u64, u64, u64, Option<u64>);
        let table: &[Row] = &[
            ("firing", 1, 1, 20, 10, Some(3)),
            ("firing", 3, 1, 20, 10, Some(5)),
            ("firing", 19, 1, 20, 10, Some(20)),
            ("firing", 20, 1, 20, 10, Some(20)),
            ("firing", 1, 1, 5, 10, Some(2)),
            ("firing", 1, 1, 20, 100, Some(20)),
            ("firing", 0, 1, 7, 1, Some(1)),
            ("resolved", 20, 2, 20, 10, Some(2)),
            ("pending", 3, 1, 20, 10, None),
        ];
        for &(status, current, min, max, factor, expected) in table {
            let got = replicas_for(status, current, &settings(min, max, factor));
            assert_eq!(got, expected, "{status} at {current} in {min}..={max}, factor {factor}");
        }
    }
}
