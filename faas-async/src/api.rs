//! The HTTP side: accepting asynchronous calls and managing dead letters.
//!
//! | route | what |
//! |---|---|
//! | any method on `/async-function/{name}[.{namespace}][/path]` | persist the call, answer 202 with `X-Call-Id` |
//! | `GET /system/async/dead-letters` | the dead letters as JSON (no bodies), oldest first |
//! | `POST /system/async/dead-letters/{id}/replay` | queue a dead letter again, 202 |
//!
//! The `/system/async` routes are behind the same HTTP Basic credentials as
//! faas-core's `/system` routes when configured.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use faas_core::api::{function_target, require_basic_auth, BasicAuth, ErrorMessage, CALL_ID_HEADER};
use faas_core::{Body, Error, SharedProvider};
use http::{header, HeaderValue, StatusCode};

use crate::call::{now_ms, DeadLetterSummary, QueuedCall};
use crate::callback::{parse_callback_url, CALLBACK_URL_HEADER};
use crate::config::{DispatcherConfig, FunctionSettings};
use crate::error::AsyncError;
use crate::metrics::AsyncMetrics;
use crate::queue::Queue;
use crate::reply::REPLY_SUBJECT_HEADER;

/// The default largest request body of an asynchronous call: 8 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 8 * 1024 * 1024;

/// How the routes behave.
#[derive(Debug, Clone)]
pub struct AsyncApiConfig {
    /// The largest request body accepted (413 beyond).
    pub max_body_bytes: u64,
    /// Credentials required on `/system/async/*`; `None` leaves them open.
    pub basic_auth: Option<BasicAuth>,
    /// Used to check the called function's labels at enqueue time.
    pub dispatcher: DispatcherConfig,
}

impl Default for AsyncApiConfig {
    fn default() -> Self {
        AsyncApiConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            basic_auth: None,
            dispatcher: DispatcherConfig::default(),
        }
    }
}

struct ApiState {
    queue: Arc<dyn Queue>,
    provider: SharedProvider,
    metrics: Arc<AsyncMetrics>,
    config: AsyncApiConfig,
}

/// The routes, ready to merge into the gateway's router.
pub fn router(
    queue: Arc<dyn Queue>,
    provider: SharedProvider,
    metrics: Arc<AsyncMetrics>,
    config: AsyncApiConfig,
) -> Router {
    let basic_auth = config.basic_auth.clone();
    let state = Arc::new(ApiState { queue, provider, metrics, config });
    let mut system = Router::new()
        .route("/system/async/dead-letters", get(list_dead_letters))
        .route("/system/async/dead-letters/{id}/replay", post(replay));
    if let Some(credentials) = basic_auth {
        system = system.route_layer(axum::middleware::from_fn_with_state(Arc::new(credentials), require_basic_auth));
    }
    Router::new().merge(system).route("/async-function/{*rest}", any(enqueue)).with_state(state)
}

async fn enqueue(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    match accept(&state, request).await {
        Ok(id) => {
            let mut response = StatusCode::ACCEPTED.into_response();
            if let Ok(value) = HeaderValue::from_str(&id) {
                response.headers_mut().insert(CALL_ID_HEADER, value);
            }
            response
        }
        Err(err) => err.into_response(),
    }
}

/// Why a call was not accepted.
enum Rejected {
    Core(Error),
    Queue(AsyncError),
}

impl From<Error> for Rejected {
    fn from(err: Error) -> Self {
        Rejected::Core(err)
    }
}

impl From<AsyncError> for Rejected {
    fn from(err: AsyncError) -> Self {
        Rejected::Queue(err)
    }
}

impl IntoResponse for Rejected {
    fn into_response(self) -> Response {
        match self {
            // The 413 faas-core would send, with the queue's own words on
            // what the limit is.
            Rejected::Queue(AsyncError::TooLarge { limit, message }) => {
                let mut response = Error::PayloadTooLarge { limit }.into_response();
                *response.body_mut() = axum::body::Body::from(format!("{message}\n"));
                response.headers_mut().remove(header::CONTENT_LENGTH);
                response.extensions_mut().insert(ErrorMessage(message));
                response
            }
            Rejected::Queue(err) => Error::from(err).into_response(),
            Rejected::Core(err) => err.into_response(),
        }
    }
}

/// Checks and persists the call; returns its id once it is durable.
async fn accept(state: &ApiState, request: Request) -> Result<String, Rejected> {
    let (parts, body) = request.into_parts();
    let (function, uri) = function_target("/async-function/", &parts.uri, state.provider.default_namespace())?;
    let path_and_query = uri.to_string();
    let callback_url = match parts.headers.get(CALLBACK_URL_HEADER) {
        Some(value) => {
            let text = value.to_str().map_err(|_| Error::invalid(CALLBACK_URL_HEADER, "not valid text"))?;
            parse_callback_url(text)?;
            Some(text.to_owned())
        }
        None => None,
    };
    // The queue's own limit, when it is the lower one, is named in the 413.
    let (limit, queue_limit) = match state.queue.body_limit() {
        Some((bytes, set_by)) if bytes < state.config.max_body_bytes => (bytes, Some(set_by)),
        _ => (state.config.max_body_bytes, None),
    };
    let too_large = |size: Option<u64>| match &queue_limit {
        Some(set_by) => Rejected::Queue(AsyncError::TooLarge {
            limit,
            message: format!(
                "request body{} exceeds the limit of {limit} bytes set by {set_by}",
                size.map(|size| format!(" of {size} bytes")).unwrap_or_default()
            ),
        }),
        None => Rejected::Core(Error::PayloadTooLarge { limit }),
    };
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large(declared));
    }
    let status = state.provider.status(&function).await?;
    FunctionSettings::from_labels(status.labels.as_ref(), &state.config.dispatcher)?;
    let body = match Body::new(body).collect_limited(limit).await {
        Ok(body) => body,
        Err(Error::PayloadTooLarge { .. }) => return Err(too_large(None)),
        Err(err) => return Err(err.into()),
    };

    let id = uuid::Uuid::new_v4().to_string();
    let headers = parts
        .headers
        .iter()
        .filter(|(name, _)| {
            name.as_str() != CALLBACK_URL_HEADER
                && name.as_str() != REPLY_SUBJECT_HEADER
                && ![header::HOST, header::CONTENT_LENGTH, header::TRANSFER_ENCODING, header::CONNECTION]
                    .contains(*name)
        })
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    let call = QueuedCall {
        id: id.clone(),
        name: function.name.clone(),
        namespace: function.namespace.clone(),
        method: parts.method.as_str().to_owned(),
        path_and_query,
        headers,
        body: body.to_vec(),
        callback_url,
        attempts: 0,
        accepted_at_ms: now_ms(),
    };
    state.queue.enqueue(call).await.map_err(Rejected::Queue)?;
    state.metrics.queued(&function.to_string());
    tracing::debug!(call_id = id, function = %function, "accepted an asynchronous call");
    Ok(id)
}

async fn list_dead_letters(State(state): State<Arc<ApiState>>) -> Response {
    match state.queue.dead_letters().await {
        Ok(dead) => Json(dead.iter().map(DeadLetterSummary::from).collect::<Vec<_>>()).into_response(),
        Err(err) => Error::from(err).into_response(),
    }
}

async fn replay(State(state): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    match state.queue.replay(&id).await {
        Ok(call) => {
            state.metrics.replayed(&call.function().to_string());
            let mut response = StatusCode::ACCEPTED.into_response();
            if let Ok(value) = HeaderValue::from_str(&call.id) {
                response.headers_mut().insert(CALL_ID_HEADER, value);
            }
            response
        }
        Err(err) => Error::from(err).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_keep_path_and_query() {
        let target =
            |uri: &str| function_target("/async-function/", &uri.parse().unwrap(), faas_core::DEFAULT_NAMESPACE);
        let (f, uri) = target("/async-function/echo.team-a/a/b?x=1").unwrap();
        assert_eq!((f.name.as_str(), f.namespace.as_str(), uri.to_string().as_str()), ("echo", "team-a", "/a/b?x=1"));
        let (f, uri) = target("/async-function/echo").unwrap();
        assert_eq!((f.namespace.as_str(), uri.to_string().as_str()), ("openfaas-fn", "/"));
        assert!(target("/async-function/Bad").is_err());
    }
}
