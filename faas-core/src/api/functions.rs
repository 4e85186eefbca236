//! `/system/functions`, `/system/function/{name}`, `/system/scale-function/{name}`.

use axum::body::Body as AxumBody;
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};

use super::error_response::respond;
use super::request::{self, NamespaceQuery};
use super::State;
use crate::error::{Error, Result};
use crate::types::{DeleteFunctionRequest, FunctionDeployment, FunctionRef, FunctionStatus, ScaleServiceRequest};
use crate::validate;

/// `GET /system/functions`
pub(super) async fn list(state: State, RawQuery(query): RawQuery) -> Response {
    respond(
        async {
            let q: NamespaceQuery = request::query(query.as_deref())?;
            let namespace = request::namespace(&*state.provider, "", q.namespace.as_deref())?;
            Ok(json_list(&state.provider.list(&namespace).await?))
        }
        .await,
    )
}

/// Bytes reserved per function when a listing is serialized: a status with
/// a few env vars and labels is about 250 bytes of JSON.
const LISTED_BYTES_HINT: usize = 320;

/// A listing as JSON, serialized into a buffer sized for it up front: with
/// 10,000 functions, growing axum's 128-byte buffer by doubling spent a
/// third of the request in page clearing and copies.
fn json_list(functions: &[FunctionStatus]) -> Response {
    let mut buf = Vec::with_capacity(functions.len().saturating_mul(LISTED_BYTES_HINT).max(2));
    match serde_json::to_writer(&mut buf, functions) {
        Ok(()) => ([(CONTENT_TYPE, HeaderValue::from_static("application/json"))], buf).into_response(),
        Err(err) => Error::backend("api", "cannot encode the function list", Some(Box::new(err) as _)).into_response(),
    }
}

/// Reads, resolves and validates a deployment.
async fn deployment(
    state: &State,
    query: Option<&str>,
    headers: &HeaderMap,
    body: AxumBody,
) -> Result<FunctionDeployment> {
    let q: NamespaceQuery = request::query(query)?;
    let mut deployment: FunctionDeployment = request::json(headers, body, state.config.max_body_bytes).await?;
    deployment.namespace = request::namespace(&*state.provider, &deployment.namespace, q.namespace.as_deref())?;
    deployment.validate()?;
    Ok(deployment)
}

/// `POST /system/functions`
pub(super) async fn deploy(state: State, RawQuery(query): RawQuery, headers: HeaderMap, body: AxumBody) -> Response {
    respond(
        async {
            let deployment = deployment(&state, query.as_deref(), &headers, body).await?;
            state.provider.deploy(deployment).await?;
            Ok(StatusCode::ACCEPTED)
        }
        .await,
    )
}

/// `PUT /system/functions`
pub(super) async fn update(state: State, RawQuery(query): RawQuery, headers: HeaderMap, body: AxumBody) -> Response {
    respond(
        async {
            let deployment = deployment(&state, query.as_deref(), &headers, body).await?;
            state.provider.update(deployment).await?;
            Ok(StatusCode::ACCEPTED)
        }
        .await,
    )
}

/// `DELETE /system/functions`
pub(super) async fn delete(state: State, RawQuery(query): RawQuery, headers: HeaderMap, body: AxumBody) -> Response {
    respond(
        async {
            let q: NamespaceQuery = request::query(query.as_deref())?;
            let req: DeleteFunctionRequest = request::json(&headers, body, state.config.max_body_bytes).await?;
            validate::function_name("functionName", &req.function_name)?;
            let namespace = request::namespace(&*state.provider, &req.namespace, q.namespace.as_deref())?;
            state.provider.delete(&FunctionRef::new(req.function_name, namespace)).await?;
            Ok(StatusCode::ACCEPTED)
        }
        .await,
    )
}

/// `GET /system/function/{name}`
pub(super) async fn status(state: State, Path(name): Path<String>, RawQuery(query): RawQuery) -> Response {
    respond(
        async {
            let q: NamespaceQuery = request::query(query.as_deref())?;
            validate::function_name("name", &name)?;
            let namespace = request::namespace(&*state.provider, "", q.namespace.as_deref())?;
            Ok(Json(state.provider.status(&FunctionRef::new(name, namespace)).await?))
        }
        .await,
    )
}

/// `POST /system/scale-function/{name}`
pub(super) async fn scale(
    state: State,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: AxumBody,
) -> Response {
    respond(
        async {
            let q: NamespaceQuery = request::query(query.as_deref())?;
            let req: ScaleServiceRequest = request::json(&headers, body, state.config.max_body_bytes).await?;
            validate::function_name("name", &name)?;
            if !req.service_name.is_empty() && req.service_name != name {
                return Err(crate::Error::invalid(
                    "serviceName",
                    format!("{:?} does not match the function in the path, {name:?}", req.service_name),
                ));
            }
            validate::replicas("replicas", req.replicas)?;
            let namespace = request::namespace(&*state.provider, &req.namespace, q.namespace.as_deref())?;
            state.provider.scale(&FunctionRef::new(name, namespace), req.replicas).await?;
            Ok(StatusCode::ACCEPTED)
        }
        .await,
    )
}
