//! The HTTP API: OpenFaaS's provider and gateway routes over any
//! [`Provider`](crate::Provider).
//!
//! [`router`] builds an [`axum::Router`] that serves:
//!
//! | route | what |
//! |---|---|
//! | `GET /system/functions` | list (`?namespace=`) |
//! | `POST /system/functions` | deploy, 202 |
//! | `PUT /system/functions` | update, 202 (404 if unknown) |
//! | `DELETE /system/functions` | delete, 202 (404 if unknown) |
//! | `GET /system/function/{name}` | one function's status |
//! | `POST /system/scale-function/{name}` | scale, 202 |
//! | `GET /system/info` | provider (or gateway) info |
//! | `GET/POST/PUT/DELETE /system/secrets` | secrets: list, create 201, update 202, delete 202 |
//! | `GET /system/logs` | logs as `application/x-ndjson`, one message a line; `follow=true` streams |
//! | `GET /system/namespaces` | namespace names |
//! | `GET/POST/PUT/DELETE /system/namespace/{name}` | one namespace: read, create 201, update 202, delete 202 |
//! | `GET /healthz` | liveness |
//! | any method on `/function/{name}[.{namespace}][/path]` | invocation, streamed both ways |
//!
//! Errors are served with [`Error::status`](crate::Error::status), a
//! plain-text message and the header [`PLATFORM_ERROR_HEADER`], so a client
//! can tell a platform error from a function's own 500. JSON bodies on
//! system routes are limited ([`ApiConfig::max_body_bytes`], 413 beyond);
//! invocation bodies stream, counted as they arrive
//! ([`ApiConfig::max_invoke_body_bytes`], 413 beyond).

mod auth;
mod error_response;
mod functions;
mod info;
mod invoke;
mod logs;
mod namespaces;
mod request;
mod secrets;

use std::sync::Arc;

use axum::routing::{any, get, post};
use axum::Router;

use crate::provider::SharedProvider;
use crate::types::VersionInfo;

pub use auth::{require_basic_auth, BasicAuth};
pub use error_response::ErrorMessage;
pub use invoke::function_target;

/// Header set to `platform` on every error response the platform itself
/// produced (as opposed to a response the function returned).
pub const PLATFORM_ERROR_HEADER: &str = "x-faas-error";
/// Header carrying the call's id, added to the request when absent and
/// echoed on the response.
pub const CALL_ID_HEADER: &str = "x-call-id";
/// Header with the call's start time, in nanoseconds since the Unix epoch.
pub const START_TIME_HEADER: &str = "x-start-time";
/// Header with the seconds from the call's start to the function's
/// response headers.
pub const DURATION_HEADER: &str = "x-duration-seconds";

/// How the API behaves.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The largest JSON body accepted on `/system/*` routes, in bytes
    /// (413 beyond). Default 1 MiB.
    pub max_body_bytes: u64,
    /// The largest request body of a synchronous call (`/function/...`), in
    /// bytes: a larger declared `Content-Length` is answered 413 before the
    /// function is called; a streamed body is counted as it arrives and the
    /// call answered 413 when it passes the limit. Default 64 MiB.
    pub max_invoke_body_bytes: u64,
    /// HTTP Basic credentials required on `/system/*`; `None` leaves them
    /// open. Invocation routes are never behind them.
    pub basic_auth: Option<BasicAuth>,
    /// When set, `GET /system/info` answers as a gateway (the provider's
    /// info, this version and the CPU architecture, as `faas-cli version`
    /// reads it); otherwise as a provider.
    pub gateway_version: Option<VersionInfo>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: 1024 * 1024,
            max_invoke_body_bytes: 64 * 1024 * 1024,
            basic_auth: None,
            gateway_version: None,
        }
    }
}

/// What every handler shares.
struct ApiState {
    provider: SharedProvider,
    config: ApiConfig,
}

type State = axum::extract::State<Arc<ApiState>>;

/// Builds the router serving `provider` with `config`. Merge other routes
/// (metrics, a UI) into it as with any [`axum::Router`].
pub fn router(provider: SharedProvider, config: ApiConfig) -> Router {
    let basic_auth = config.basic_auth.clone();
    let state = Arc::new(ApiState { provider, config });

    let mut system = Router::new()
        .route(
            "/system/functions",
            get(functions::list).post(functions::deploy).put(functions::update).delete(functions::delete),
        )
        .route("/system/function/{name}", get(functions::status))
        .route("/system/scale-function/{name}", post(functions::scale))
        .route("/system/info", get(info::info))
        .route("/system/secrets", get(secrets::list).post(secrets::create).put(secrets::update).delete(secrets::delete))
        .route("/system/logs", get(logs::logs))
        .route("/system/namespaces", get(namespaces::list))
        .route(
            "/system/namespace/{name}",
            get(namespaces::get).post(namespaces::create).put(namespaces::update).delete(namespaces::delete),
        );
    if let Some(credentials) = basic_auth {
        system =
            system.route_layer(axum::middleware::from_fn_with_state(Arc::new(credentials), auth::require_basic_auth));
    }

    Router::new()
        .merge(system)
        .route("/function/{*rest}", any(invoke::invoke))
        .route("/healthz", get(info::healthz))
        .fallback(error_response::no_route)
        .with_state(state)
}
