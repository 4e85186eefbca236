//! `GET /system/triggers`: every trigger with its next run and last
//! outcome, as JSON, behind the `/system` credentials when configured.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use faas_core::api::{require_basic_auth, BasicAuth};

use crate::registry::{TriggerInfo, Triggers};

/// The route, ready to merge into the gateway's router.
pub fn router(triggers: Arc<Triggers>, basic_auth: Option<BasicAuth>) -> Router {
    let mut router = Router::new().route("/system/triggers", get(list));
    if let Some(credentials) = basic_auth {
        router = router.route_layer(axum::middleware::from_fn_with_state(Arc::new(credentials), require_basic_auth));
    }
    router.with_state(triggers)
}

async fn list(State(triggers): State<Arc<Triggers>>) -> Json<Vec<TriggerInfo>> {
    Json(triggers.list())
}
