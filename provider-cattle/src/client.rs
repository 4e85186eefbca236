//! A small Rancher API client: HTTP Basic auth, JSON, error objects,
//! collections followed through their `pagination.next` links, and schema
//! discovery the way Rancher's clients do it (the `X-API-Schemas` header,
//! then each schema's collection link).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::error::CattleError;

/// Answers larger than this are refused.
const RESPONSE_LIMIT: usize = 32 << 20;
/// Pages followed at most in one listing.
const MAX_PAGES: usize = 1000;

/// The API client. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Api {
    client: Client<HttpConnector, Full<Bytes>>,
    auth: HeaderValue,
    timeout: Duration,
}

impl Api {
    pub(crate) fn new(access_key: &str, secret_key: &str, timeout: Duration) -> Api {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{access_key}:{secret_key}"));
        let mut auth = HeaderValue::from_str(&format!("Basic {token}")).unwrap_or(HeaderValue::from_static(""));
        auth.set_sensitive(true);
        Api { client, auth, timeout }
    }

    /// One request; the answer's headers and JSON body (`Null` when
    /// empty). Non-2xx answers are errors: 401 and 403 their own, others
    /// carrying the API's error object.
    pub(crate) async fn request(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(http::HeaderMap, Value), CattleError> {
        let bytes = match body {
            Some(value) => Bytes::from(serde_json::to_vec(value).expect("JSON values serialise")),
            None => Bytes::new(),
        };
        let mut request = Request::builder()
            .method(method.clone())
            .uri(url)
            .header(header::ACCEPT, "application/json")
            .header(header::AUTHORIZATION, self.auth.clone());
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(bytes))
            .map_err(|e| CattleError::Url { url: url.to_owned(), reason: format!("not a valid request URL: {e}") })?;
        let seconds = self.timeout.as_secs();
        let timed_out = || CattleError::RequestTimeout { method: method.to_string(), url: url.to_owned(), seconds };
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| CattleError::Connect { url: url.to_owned(), source: Box::new(e) })?;
        let (parts, body) = response.into_parts();
        let bytes = tokio::time::timeout(self.timeout, Limited::new(body, RESPONSE_LIMIT).collect())
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| CattleError::Connect { url: url.to_owned(), source: e })?
            .to_bytes();
        let status = parts.status;
        if status == StatusCode::UNAUTHORIZED {
            return Err(CattleError::Unauthorized { url: url.to_owned() });
        }
        if status == StatusCode::FORBIDDEN {
            return Err(CattleError::Forbidden { method: method.to_string(), url: url.to_owned() });
        }
        let json: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(json) => json,
                Err(_) if !status.is_success() => Value::Null,
                Err(source) => {
                    return Err(CattleError::Decode { method: method.to_string(), url: url.to_owned(), source })
                }
            }
        };
        if !status.is_success() {
            let text = |key: &str| json.get(key).and_then(Value::as_str).map(str::to_owned);
            return Err(CattleError::Api {
                method: method.to_string(),
                url: url.to_owned(),
                status: status.as_u16(),
                code: text("code").unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned()),
                message: text("message").unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_owned()),
            });
        }
        Ok((parts.headers, json))
    }

    pub(crate) async fn get(&self, url: &str) -> Result<Value, CattleError> {
        Ok(self.request(Method::GET, url, None).await?.1)
    }

    pub(crate) async fn post(&self, url: &str, body: &Value) -> Result<Value, CattleError> {
        Ok(self.request(Method::POST, url, Some(body)).await?.1)
    }

    pub(crate) async fn put(&self, url: &str, body: &Value) -> Result<Value, CattleError> {
        Ok(self.request(Method::PUT, url, Some(body)).await?.1)
    }

    pub(crate) async fn delete(&self, url: &str) -> Result<Value, CattleError> {
        Ok(self.request(Method::DELETE, url, None).await?.1)
    }

    /// Every resource of the collection at `url` filtered by `filters`
    /// (`name=x`, `stackId=1st5`, ...), following `pagination.next`.
    pub(crate) async fn list(&self, url: &str, filters: &[(&str, &str)]) -> Result<Vec<Value>, CattleError> {
        let mut next = if filters.is_empty() {
            url.to_owned()
        } else {
            let query = serde_urlencoded::to_string(filters).expect("string pairs encode");
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}{query}")
        };
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = self.get(&next).await?;
            if page.get("type").and_then(Value::as_str) != Some("collection") {
                return Err(CattleError::NotRancher { url: next, reason: "a collection was expected".into() });
            }
            match page.get("data") {
                Some(Value::Array(data)) => out.extend(data.iter().cloned()),
                _ => {
                    return Err(CattleError::NotRancher {
                        url: next,
                        reason: "the collection has no data array".into(),
                    })
                }
            }
            match page.pointer("/pagination/next").and_then(Value::as_str) {
                Some(link) if page.pointer("/pagination/partial") != Some(&Value::Bool(false)) => {
                    next = link.to_owned()
                }
                _ => return Ok(out),
            }
        }
        Ok(out)
    }
}

/// What the server told about itself: its schemas, by id.
#[derive(Debug, Clone, Default)]
pub(crate) struct Schemas {
    by_id: BTreeMap<String, Value>,
}

impl Schemas {
    /// Discovery: `GET url`, whose `X-API-Schemas` header names the schema
    /// collection, then that collection.
    pub(crate) async fn discover(api: &Api, url: &str) -> Result<Schemas, CattleError> {
        let (headers, _) = api.request(Method::GET, url, None).await?;
        let schemas_url = headers
            .get("x-api-schemas")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| CattleError::NotRancher { url: url.to_owned(), reason: "no X-API-Schemas header".into() })?
            .to_owned();
        let list = api.list(&schemas_url, &[]).await?;
        let by_id = list
            .into_iter()
            .filter_map(|schema| schema.get("id").and_then(Value::as_str).map(str::to_owned).map(|id| (id, schema)))
            .collect();
        Ok(Schemas { by_id })
    }

    pub(crate) fn has(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// The collection URL of schema `id`, where the server lists (and
    /// creates) its resources.
    pub(crate) fn collection(&self, id: &str) -> Result<String, CattleError> {
        self.by_id
            .get(id)
            .and_then(|s| s.pointer("/links/collection"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| CattleError::SchemaMissing { schema: id.to_owned() })
    }

    /// Whether `method` is allowed on schema `id`'s collection
    /// (`collectionMethods`) or resources (`resourceMethods`).
    pub(crate) fn allows(&self, id: &str, collection: bool, method: &str) -> bool {
        let key = if collection { "collectionMethods" } else { "resourceMethods" };
        self.by_id
            .get(id)
            .and_then(|s| s.get(key))
            .and_then(Value::as_array)
            .is_some_and(|m| m.iter().any(|m| m == method))
    }

    /// Whether schema `id` declares the resource action `action`.
    pub(crate) fn has_action(&self, id: &str, action: &str) -> bool {
        self.by_id.get(id).and_then(|s| s.get("resourceActions")).and_then(|a| a.get(action)).is_some()
    }

    /// Field `field` of schema `id`, if declared.
    pub(crate) fn field(&self, id: &str, field: &str) -> Option<&Value> {
        self.by_id.get(id)?.get("resourceFields")?.get(field)
    }

    /// Whether field `field` of schema `id` can be changed by PUT.
    pub(crate) fn updatable(&self, id: &str, field: &str) -> bool {
        self.field(id, field).and_then(|f| f.get("update")) == Some(&Value::Bool(true))
    }
}
