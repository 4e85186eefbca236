//! Reading requests on system routes: bounded JSON bodies and query
//! strings, each failure an [`Error`] that names the problem.

use axum::body::Body as AxumBody;
use bytes::Bytes;
use http::HeaderMap;
use serde::de::DeserializeOwned;

use crate::body::Body;
use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::validate;

/// Reads a body of at most `limit` bytes, refusing a larger declared
/// `Content-Length` before reading anything.
async fn bounded(headers: &HeaderMap, body: AxumBody, limit: u64) -> Result<Bytes> {
    crate::body::check_declared_length(headers, limit)?;
    Body::new(body).collect_limited(limit).await
}

/// Reads a JSON body of at most `limit` bytes into `T`.
pub(super) async fn json<T: DeserializeOwned>(headers: &HeaderMap, body: AxumBody, limit: u64) -> Result<T> {
    optional_json(headers, body, limit)
        .await?
        .ok_or_else(|| Error::invalid("body", "expected a JSON object, got an empty body"))
}

/// Reads a JSON body that may be empty (`None` then).
pub(super) async fn optional_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: AxumBody,
    limit: u64,
) -> Result<Option<T>> {
    let bytes = bounded(headers, body, limit).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::invalid("body", format!("malformed JSON: {e}")))
}

/// Parses the query string into `T`.
pub(super) fn query<T: DeserializeOwned + Default>(query: Option<&str>) -> Result<T> {
    match query {
        None | Some("") => Ok(T::default()),
        Some(q) => serde_urlencoded::from_str(q).map_err(|e| Error::invalid("query", e.to_string())),
    }
}

/// The query every system route accepts.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub(super) struct NamespaceQuery {
    pub(super) namespace: Option<String>,
}

/// Resolves the namespace a request is about: the body's, else the query's,
/// else the provider's default; validated, and refused when the provider
/// has no namespaces but its default.
pub(super) fn namespace(provider: &dyn Provider, from_body: &str, from_query: Option<&str>) -> Result<String> {
    let chosen = [Some(from_body), from_query].into_iter().flatten().find(|ns| !ns.is_empty());
    let default = provider.default_namespace();
    let namespace = chosen.unwrap_or(default);
    validate::namespace("namespace", namespace)?;
    if namespace != default && !provider.capabilities().namespaces {
        return Err(Error::NotFound { kind: "namespace", name: namespace.to_owned() });
    }
    Ok(namespace.to_owned())
}
