//! `/system/secrets`.

use axum::body::Body as AxumBody;
use axum::extract::RawQuery;
use axum::response::Response;
use axum::Json;
use http::{HeaderMap, StatusCode};

use super::error_response::respond;
use super::request::{self, NamespaceQuery};
use super::State;
use crate::error::Result;
use crate::types::Secret;
use crate::validate;

async fn read_secret(state: &State, query: Option<&str>, headers: &HeaderMap, body: AxumBody) -> Result<Secret> {
    let q: NamespaceQuery = request::query(query)?;
    let mut secret: Secret = request::json(headers, body, state.config.max_body_bytes).await?;
    secret.namespace = request::namespace(&*state.provider, &secret.namespace, q.namespace.as_deref())?;
    Ok(secret)
}

/// `GET /system/secrets`
pub(super) async fn list(state: State, RawQuery(query): RawQuery) -> Response {
    respond(
        async {
            let q: NamespaceQuery = request::query(query.as_deref())?;
            let namespace = request::namespace(&*state.provider, "", q.namespace.as_deref())?;
            let secrets = state.provider.list_secrets(&namespace).await?;
            Ok(Json(secrets.iter().map(Secret::without_value).collect::<Vec<_>>()))
        }
        .await,
    )
}

/// `POST /system/secrets`
pub(super) async fn create(state: State, RawQuery(query): RawQuery, headers: HeaderMap, body: AxumBody) -> Response {
    respond(
        async {
            let secret = read_secret(&state, query.as_deref(), &headers, body).await?;
            secret.validate()?;
            state.provider.create_secret(secret).await?;
            Ok(StatusCode::CREATED)
        }
        .await,
    )
}

/// `PUT /system/secrets`
pub(super) async fn update(state: State, RawQuery(query): RawQuery, headers: HeaderMap, body: AxumBody) -> Response {
    respond(
        async {
            let secret = read_secret(&state, query.as_deref(), &headers, body).await?;
            secret.validate()?;
            state.provider.update_secret(secret).await?;
            Ok(StatusCode::ACCEPTED)
        }
        .await,
    )
}

/// `DELETE /system/secrets`
pub(super) async fn delete(state: State, RawQuery(query): RawQuery, headers: HeaderMap, body: AxumBody) -> Response {
    respond(
        async {
            let secret = read_secret(&state, query.as_deref(), &headers, body).await?;
            validate::secret_name("name", &secret.name)?;
            state.provider.delete_secret(&secret.namespace, &secret.name).await?;
            Ok(StatusCode::ACCEPTED)
        }
        .await,
    )
}
