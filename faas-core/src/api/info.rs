//! `/system/info` and `/healthz`.

use axum::response::{IntoResponse, Response};
use axum::Json;

use super::error_response::respond;
use super::State;
use crate::types::GatewayInfo;

/// `GET /system/info`
pub(super) async fn info(state: State) -> Response {
    respond(
        async {
            let provider = state.provider.info().await?;
            Ok(match &state.config.gateway_version {
                Some(version) => {
                    Json(GatewayInfo { provider, version: version.clone(), arch: std::env::consts::ARCH.to_owned() })
                        .into_response()
                }
                None => Json(provider).into_response(),
            })
        }
        .await,
    )
}

/// `GET /healthz`
pub(super) async fn healthz() -> &'static str {
    "OK\n"
}
