//! `/system/namespaces` and `/system/namespace/{name}`.

use axum::body::Body as AxumBody;
use axum::extract::Path;
use axum::response::Response;
use axum::Json;
use http::{HeaderMap, StatusCode};

use super::error_response::respond;
use super::request;
use super::State;
use crate::error::{Error, Result};
use crate::types::FunctionNamespace;
use crate::validate;

/// `GET /system/namespaces`
pub(super) async fn list(state: State) -> Response {
    respond(async { Ok(Json(state.provider.list_namespaces().await?)) }.await)
}

/// `GET /system/namespace/{name}`
pub(super) async fn get(state: State, Path(name): Path<String>) -> Response {
    respond(
        async {
            validate::namespace("name", &name)?;
            Ok(Json(state.provider.get_namespace(&name).await?))
        }
        .await,
    )
}

/// Reads the namespace from an optional body; the path names it.
async fn read(state: &State, name: String, headers: &HeaderMap, body: AxumBody) -> Result<FunctionNamespace> {
    validate::namespace("name", &name)?;
    let mut namespace: FunctionNamespace =
        request::optional_json(headers, body, state.config.max_body_bytes).await?.unwrap_or_default();
    if !namespace.name.is_empty() && namespace.name != name {
        return Err(Error::invalid(
            "name",
            format!("{:?} does not match the namespace in the path, {name:?}", namespace.name),
        ));
    }
    namespace.name = name;
    for key in namespace.labels.keys() {
        validate::label_key(&format!("labels.{key}"), key)?;
    }
    for key in namespace.annotations.keys() {
        validate::label_key(&format!("annotations.{key}"), key)?;
    }
    Ok(namespace)
}

/// `POST /system/namespace/{name}`
pub(super) async fn create(state: State, Path(name): Path<String>, headers: HeaderMap, body: AxumBody) -> Response {
    respond(
        async {
            let namespace = read(&state, name, &headers, body).await?;
            state.provider.create_namespace(namespace).await?;
            Ok(StatusCode::CREATED)
        }
        .await,
    )
}

/// `PUT /system/namespace/{name}`
pub(super) async fn update(state: State, Path(name): Path<String>, headers: HeaderMap, body: AxumBody) -> Response {
    respond(
        async {
            let namespace = read(&state, name, &headers, body).await?;
            state.provider.update_namespace(namespace).await?;
            Ok(StatusCode::ACCEPTED)
        }
        .await,
    )
}

/// `DELETE /system/namespace/{name}`
pub(super) async fn delete(state: State, Path(name): Path<String>) -> Response {
    respond(
        async {
            validate::namespace("name", &name)?;
            state.provider.delete_namespace(&name).await?;
            Ok(StatusCode::ACCEPTED)
        }
        .await,
    )
}
