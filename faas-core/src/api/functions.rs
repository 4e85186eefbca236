//! `/system/functions`, `/system/function/{name}`, `/system/scale-function/{name}`.

use axum::body::Body as AxumBody;
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};

use super::error_response::respond;
use super::request::{self, NamespaceQuery};
use super::State;
use crate::error::{Error, Result};
use crate::types::status_json;
use crate::types::{DeleteFunctionRequest, FunctionDeployment, FunctionRef, FunctionStatus, ScaleServiceRequest};
use crate::validate;

/// `GET /system/functions`
pub(super) async fn list(state: State, RawQuery(query): RawQuery) -> Response {
    respond(
        async {
            let q: NamespaceQuery = request::query(query.as_deref())?;
            let namespace = request::namespace(&*state.provider, "", q.namespace.as_deref())?;
            Ok(json_list(state.provider.list(&namespace).await?))
        }
        .await,
    )
}

/// Bytes reserved per function when a listing is encoded: a status with
/// a few env vars and labels is about 250 bytes of JSON.
const LISTED_BYTES_HINT: usize = 320;

/// Functions encoded per chunk of a listing (about 40 KB of JSON).
const LISTED_PER_CHUNK: usize = 128;

/// A listing as a JSON array, encoded a chunk at a time as the client reads
/// it. With 10,000 functions one 3 MB buffer, grown by doubling as axum's
/// `Json` does, cost a third of the request in copies and page faults; a
/// list that fits in one chunk is sent whole, with its length.
fn json_list(functions: Vec<FunctionStatus>) -> Response {
    let mut chunks = ListChunks { rest: functions.into_iter(), opened: false, closed: false };
    let first = match chunks.next() {
        Some(Ok(first)) => first,
        Some(Err(err)) => {
            return Error::backend("api", "cannot encode the function list", Some(Box::new(err) as _)).into_response()
        }
        None => Bytes::from_static(b"[]"),
    };
    let body = if chunks.closed {
        AxumBody::from(first)
    } else {
        AxumBody::from_stream(futures_util::stream::iter(std::iter::once(Ok(first)).chain(chunks)))
    };
    ([(CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// The chunks of a JSON array of statuses: `[` and the first
/// [`LISTED_PER_CHUNK`] statuses, then as many at a time, the last chunk
/// ending with `]`.
struct ListChunks {
    rest: std::vec::IntoIter<FunctionStatus>,
    opened: bool,
    closed: bool,
}

impl Iterator for ListChunks {
    type Item = std::result::Result<Bytes, serde_json::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.closed {
            return None;
        }
        let mut buf = Vec::with_capacity(LISTED_PER_CHUNK * LISTED_BYTES_HINT);
        if !self.opened {
            buf.push(b'[');
        }
        for _ in 0..LISTED_PER_CHUNK {
            let Some(status) = self.rest.next() else {
                buf.push(b']');
                self.closed = true;
                break;
            };
            if self.opened {
                buf.push(b',');
            }
            self.opened = true;
            if let Err(err) = status_json::write(&status, &mut buf) {
                self.closed = true;
                return Some(Err(err));
            }
        }
        self.opened = true;
        Some(Ok(Bytes::from(buf)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn statuses(n: usize) -> Vec<FunctionStatus> {
        (0..n)
            .map(|i| FunctionStatus { name: format!("fn-{i}"), replicas: i as u64, ..FunctionStatus::default() })
            .collect()
    }

    #[test]
    fn listing_chunks_join_into_the_json_array_of_the_statuses() {
        for n in [0, 1, LISTED_PER_CHUNK - 1, LISTED_PER_CHUNK, LISTED_PER_CHUNK + 1, 3 * LISTED_PER_CHUNK + 7] {
            let functions = statuses(n);
            let whole = serde_json::to_vec(&functions).unwrap();
            let chunks: Vec<Bytes> =
                ListChunks { rest: functions.into_iter(), opened: false, closed: false }.map(Result::unwrap).collect();
            assert_eq!(chunks.concat(), whole, "{n} functions");
            assert_eq!(chunks.len(), n / LISTED_PER_CHUNK + 1, "{n} functions: chunks of {LISTED_PER_CHUNK}");
        }
    }
}
