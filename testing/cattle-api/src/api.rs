//! The HTTP API: routing, authentication, collections, filters, create,
//! update, delete and actions, following rancher/api-spec's conventions.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::render;
use crate::schemas::Schemas;
use crate::state::Store;
use crate::Shared;

/// The one project (environment) this server has.
pub(crate) const PROJECT: &str = "1a5";
/// Requests bodies larger than this are refused.
const BODY_LIMIT: usize = 1 << 20;
/// Query parameters that are not filters.
const RESERVED: [&str; 6] = ["limit", "marker", "sort", "order", "include", "action"];
/// Modifiers rancher/api-spec defines.
const MODIFIERS: [&str; 11] = ["eq", "ne", "lt", "lte", "gt", "gte", "prefix", "like", "notlike", "null", "notnull"];

/// The number in an id such as `1s12`, for a stable order.
pub(crate) fn numeric(id: &str) -> u64 {
    let rest = id.strip_prefix('1').unwrap_or(id);
    rest.trim_start_matches(|c: char| !c.is_ascii_digit()).parse().unwrap_or(u64::MAX)
}

/// What a request addresses, after the version root.
struct Route {
    /// Whether the URL was project-scoped (`/v2-beta/projects/1a5/...`).
    project_scoped: bool,
    /// The segments after the version root (and project).
    rest: Vec<String>,
}

/// Serves one request: every response is JSON and carries `X-API-Schemas`.
pub(crate) async fn handle(shared: Arc<Shared>, request: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let base = shared.base.clone();
    let segments: Vec<String> = request.uri().path().split('/').filter(|s| !s.is_empty()).map(str::to_owned).collect();
    let project_scoped = segments.len() >= 3 && segments[1] == "projects" && segments[2] == PROJECT;
    let schemas_url = if project_scoped {
        format!("{base}/v2-beta/projects/{PROJECT}/schemas")
    } else {
        format!("{base}/v2-beta/schemas")
    };
    let result = respond(&shared, request, segments).await;
    let (status, body) = match result {
        Ok((status, body)) => (status, body),
        Err(err) => (err.status, err.to_json()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(&schemas_url) {
        headers.insert("x-api-schemas", value);
    }
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Enter API access key and secret key as username and password\""),
        );
    }
    response
}

fn authorized(shared: &Shared, request: &Request<hyper::body::Incoming>) -> bool {
    let Some(value) = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(encoded) = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic ")) else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{}:{}", shared.options.access_key, shared.options.secret_key);
    decoded == expected.as_bytes()
}

async fn respond(
    shared: &Arc<Shared>,
    request: Request<hyper::body::Incoming>,
    segments: Vec<String>,
) -> Result<(StatusCode, Value), ApiError> {
    if !authorized(shared, &request) {
        return Err(ApiError::unauthorized());
    }
    let base = &shared.base;
    let method = request.method().clone();
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(request.uri().query().unwrap_or("")).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "InvalidQuery", format!("the query string is not valid: {e}"))
        })?;
    let body = read_body(request).await?;
    match segments.first().map(String::as_str) {
        None => {
            let versions = json!({
                "type": "collection", "resourceType": "apiVersion",
                "links": { "self": base, "latest": format!("{base}/v2-beta") },
                "data": [version_root(shared)],
                "actions": {}, "createTypes": {}, "filters": {}, "sortLinks": {}, "pagination": null, "sort": null,
            });
            return only_get(&method, "/").map(|()| (StatusCode::OK, versions));
        }
        Some("v2-beta") => {}
        Some(other) => {
            return Err(ApiError::not_found(format!(
                "API version {other:?} (this server serves /v2-beta only; Rancher clients normalise /v1 to /v2-beta)"
            )))
        }
    }
    let route = if segments.get(1).map(String::as_str) == Some("projects") {
        match segments.get(2) {
            None => {
                only_get(&method, "projects")?;
                let collection = collection_of(
                    "project",
                    format!("{base}/v2-beta/projects"),
                    vec![project(shared)],
                    Map::new(),
                    None,
                    None,
                );
                return Ok((StatusCode::OK, collection));
            }
            Some(id) if id == PROJECT => Route { project_scoped: true, rest: segments[3..].to_vec() },
            Some(id) => return Err(ApiError::not_found(format!("project {id}"))),
        }
    } else {
        Route { project_scoped: false, rest: segments[1..].to_vec() }
    };
    let rest: Vec<&str> = route.rest.iter().map(String::as_str).collect();
    match rest.as_slice() {
        [] => {
            only_get(&method, "the API root")?;
            Ok((StatusCode::OK, if route.project_scoped { project(shared) } else { version_root(shared) }))
        }
        ["schemas"] => {
            only_get(&method, "schemas")?;
            let version_root = format!("{base}/v2-beta");
            let data: Vec<Value> = shared
                .schemas
                .ids()
                .filter_map(|id| shared.schemas.get(id))
                .map(|s| shared.schemas.render(s, &shared.urls.project, &version_root))
                .collect();
            Ok((
                StatusCode::OK,
                collection_of("schema", format!("{version_root}/schemas"), data, Map::new(), None, None),
            ))
        }
        ["schemas", id] => {
            only_get(&method, "a schema")?;
            let schema = shared.schemas.get(id).ok_or_else(|| ApiError::not_found(format!("schema {id}")))?;
            Ok((StatusCode::OK, shared.schemas.render(schema, &shared.urls.project, &format!("{base}/v2-beta"))))
        }
        [plural] => collection_request(shared, &method, plural, &query, body),
        [plural, id] => {
            let action = query.iter().find(|(k, _)| k == "action").map(|(_, v)| v.clone());
            resource_request(shared, &method, plural, id, action, body)
        }
        [plural, id, link] => {
            only_get(&method, "a linked collection")?;
            linked_collection(shared, plural, id, link, &query)
        }
        _ => Err(ApiError::not_found(format!("path /{}", segments.join("/")))),
    }
}

fn only_get(method: &Method, what: &str) -> Result<(), ApiError> {
    if method == Method::GET {
        Ok(())
    } else {
        Err(ApiError::method_not_allowed(method, what))
    }
}

async fn read_body(request: Request<hyper::body::Incoming>) -> Result<Option<Map<String, Value>>, ApiError> {
    let bytes = Limited::new(request.into_body(), BODY_LIMIT)
        .collect()
        .await
        .map_err(|e| ApiError::bad_json(format!("cannot read the request body: {e}")))?
        .to_bytes();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(ApiError::bad_json("the request body must be a JSON object")),
        Err(e) => Err(ApiError::bad_json(format!("the request body is not valid JSON: {e}"))),
    }
}

fn collection_links(shared: &Shared) -> Map<String, Value> {
    let mut links = Map::new();
    for schema in shared.schemas.ids().filter_map(|id| shared.schemas.get(id)) {
        if Schemas::allows(schema, true, "GET") {
            let plural = schema["pluralName"].as_str().unwrap_or_default();
            if served(shared, plural) {
                links.insert(plural.to_owned(), json!(format!("{}/{plural}", shared.urls.project)));
            }
        }
    }
    links
}

fn version_root(shared: &Shared) -> Value {
    let base = &shared.base;
    let mut links = collection_links(shared);
    links.insert("self".into(), json!(format!("{base}/v2-beta")));
    links.insert("schemas".into(), json!(format!("{base}/v2-beta/schemas")));
    links.insert("projects".into(), json!(format!("{base}/v2-beta/projects")));
    json!({ "id": "v2-beta", "type": "apiVersion", "baseType": "apiVersion", "links": links, "actions": {} })
}

fn project(shared: &Shared) -> Value {
    let mut links = collection_links(shared);
    links.insert("self".into(), json!(shared.urls.project));
    links.insert("schemas".into(), json!(format!("{}/schemas", shared.urls.project)));
    json!({
        "id": PROJECT, "type": "project", "baseType": "account", "name": "Default", "state": "active",
        "orchestration": "cattle", "links": links, "actions": {},
    })
}

/// Collections this server implements.
fn served(shared: &Shared, plural: &str) -> bool {
    match plural {
        "stacks" | "services" | "instances" | "containers" => true,
        "secrets" => shared.options.secrets,
        _ => false,
    }
}

fn schema_of<'a>(shared: &'a Shared, plural: &str) -> Result<&'a Map<String, Value>, ApiError> {
    if !served(shared, plural) {
        return Err(ApiError::not_found(format!("collection {plural}")));
    }
    shared.schemas.by_plural(plural).ok_or_else(|| ApiError::not_found(format!("collection {plural}")))
}

/// A collection resource: `type`, `resourceType`, `links`, `data` and the
/// rest of rancher/api-spec's collection attributes.
fn collection_of(
    resource_type: &str,
    self_link: String,
    data: Vec<Value>,
    filters: Map<String, Value>,
    create_url: Option<String>,
    pagination: Option<Value>,
) -> Value {
    let create_types = match create_url {
        Some(url) => json!({ resource_type: url }),
        None => json!({}),
    };
    json!({
        "type": "collection",
        "resourceType": resource_type,
        "links": { "self": self_link },
        "createTypes": create_types,
        "actions": {},
        "data": data,
        "sortLinks": {},
        "pagination": pagination,
        "sort": null,
        "filters": filters,
        "createDefaults": {},
    })
}

/// A page of a collection: its resources, `filters` and `pagination`.
type Page = (Vec<Value>, Map<String, Value>, Value);

/// Applies `query`'s filters to `data` (rendered resources of `schema`),
/// then its `limit` and `marker`; returns the page, the collection's
/// `filters` map and its `pagination`.
fn filter_page(
    shared: &Shared,
    schema: &Map<String, Value>,
    mut data: Vec<Value>,
    query: &[(String, String)],
    self_link: &str,
) -> Result<Page, ApiError> {
    let mut applied: Map<String, Value> = Map::new();
    if let Some(Value::Object(filters)) = schema.get("collectionFilters") {
        for field in filters.keys() {
            applied.insert(field.clone(), Value::Null);
        }
    }
    for (key, value) in query.iter().filter(|(k, _)| !RESERVED.contains(&k.as_str())) {
        let (field, modifier) = match key.rsplit_once('_') {
            Some((field, modifier)) if MODIFIERS.contains(&modifier) => (field, modifier),
            _ => (key.as_str(), "eq"),
        };
        // Fields the schema does not declare filterable are ignored.
        let Some(allowed) = Schemas::filter_modifiers(schema, field) else {
            continue;
        };
        if !allowed.contains(&modifier) {
            return Err(ApiError::invalid(
                "InvalidFilterModifier",
                key,
                format!("filter modifier {modifier:?} is not allowed on {field} (allowed: {})", allowed.join(", ")),
            ));
        }
        data.retain(|resource| matches(&resource[field], modifier, value));
        if let Some(Value::Array(list)) = applied.get_mut(field) {
            list.push(json!({ "modifier": modifier, "value": value }));
        } else {
            applied.insert(field.to_owned(), json!([{ "modifier": modifier, "value": value }]));
        }
    }
    data.sort_by_key(|r| numeric(r["id"].as_str().unwrap_or_default()));
    let limit = match query.iter().find(|(k, _)| k == "limit") {
        Some((_, v)) => v
            .parse::<usize>()
            .map_err(|_| ApiError::invalid("InvalidType", "limit", format!("limit must be a number, not {v:?}")))?,
        None => shared.options.page_size,
    }
    .min(1000);
    let offset = match query.iter().find(|(k, _)| k == "marker") {
        Some((_, v)) => v
            .strip_prefix('m')
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| ApiError::invalid("InvalidMarker", "marker", format!("marker {v:?} is not valid")))?,
        None => 0,
    };
    let total = data.len();
    let page: Vec<Value> = data.into_iter().skip(offset).take(limit).collect();
    let partial = offset + page.len() < total;
    let with_marker = |marker: usize| {
        let mut pairs: Vec<(String, String)> = query.iter().filter(|(k, _)| k != "marker").cloned().collect();
        pairs.push(("marker".into(), format!("m{marker}")));
        format!("{self_link}?{}", serde_urlencoded::to_string(&pairs).unwrap_or_default())
    };
    let mut pagination = json!({ "limit": limit, "partial": partial, "total": total });
    if partial {
        pagination["next"] = json!(with_marker(offset + limit));
    }
    if offset > 0 {
        let pairs: Vec<(String, String)> = query.iter().filter(|(k, _)| k != "marker").cloned().collect();
        let first = if pairs.is_empty() {
            self_link.to_owned()
        } else {
            format!("{self_link}?{}", serde_urlencoded::to_string(&pairs).unwrap_or_default())
        };
        pagination["first"] = json!(first);
        pagination["previous"] = json!(with_marker(offset.saturating_sub(limit)));
    }
    Ok((page, applied, pagination))
}

/// Whether `value` passes the filter `modifier` `wanted`.
fn matches(value: &Value, modifier: &str, wanted: &str) -> bool {
    let text = match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    };
    let compare = |t: &str| match (t.parse::<f64>(), wanted.parse::<f64>()) {
        (Ok(a), Ok(b)) => a.partial_cmp(&b),
        _ => Some(t.cmp(wanted)),
    };
    match (modifier, text.as_deref()) {
        ("null", t) => t.is_none(),
        ("notnull", t) => t.is_some(),
        (_, None) => modifier == "ne" || modifier == "notlike",
        ("eq", Some(t)) => t == wanted,
        ("ne", Some(t)) => t != wanted,
        ("prefix", Some(t)) => t.starts_with(wanted),
        ("like", Some(t)) => like(t, wanted),
        ("notlike", Some(t)) => !like(t, wanted),
        ("lt", Some(t)) => compare(t) == Some(std::cmp::Ordering::Less),
        ("lte", Some(t)) => compare(t) != Some(std::cmp::Ordering::Greater),
        ("gt", Some(t)) => compare(t) == Some(std::cmp::Ordering::Greater),
        ("gte", Some(t)) => compare(t) != Some(std::cmp::Ordering::Less),
        _ => false,
    }
}

/// SQL `LIKE`: `%` any run, `_` one character, `\` escapes.
fn like(text: &str, pattern: &str) -> bool {
    fn go(t: &[char], p: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('%') => (0..=t.len()).any(|i| go(&t[i..], &p[1..])),
            Some('_') => !t.is_empty() && go(&t[1..], &p[1..]),
            Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && go(&t[1..], &p[2..]),
            Some(c) => t.first() == Some(c) && go(&t[1..], &p[1..]),
        }
    }
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    go(&t, &p)
}

fn render_all(shared: &Shared, store: &Store, plural: &str) -> Vec<Value> {
    let urls = &shared.urls;
    match plural {
        "stacks" => store.stacks.values().map(|s| render::stack(s, store, urls)).collect(),
        "services" => store.services.values().map(|s| render::service(s, store, urls)).collect(),
        "instances" | "containers" => store.instances.values().map(|i| render::instance(i, urls)).collect(),
        "secrets" => store.secrets.values().map(|s| render::secret(s, urls)).collect(),
        _ => Vec::new(),
    }
}

fn render_one(shared: &Shared, store: &Store, plural: &str, id: &str) -> Option<Value> {
    let urls = &shared.urls;
    match plural {
        "stacks" => store.stacks.get(id).map(|s| render::stack(s, store, urls)),
        "services" => store.services.get(id).map(|s| render::service(s, store, urls)),
        "instances" | "containers" => store.instances.get(id).map(|i| render::instance(i, urls)),
        "secrets" => store.secrets.get(id).map(|s| render::secret(s, urls)),
        _ => None,
    }
}

fn collection_request(
    shared: &Shared,
    method: &Method,
    plural: &str,
    query: &[(String, String)],
    body: Option<Map<String, Value>>,
) -> Result<(StatusCode, Value), ApiError> {
    let schema = schema_of(shared, plural)?;
    let resource_type = schema["id"].as_str().unwrap_or_default().to_owned();
    let self_link = format!("{}/{plural}", shared.urls.project);
    match *method {
        Method::GET if Schemas::allows(schema, true, "GET") => {
            let data = render_all(shared, &shared.store(), plural);
            let (page, filters, pagination) = filter_page(shared, schema, data, query, &self_link)?;
            let create = Schemas::allows(schema, true, "POST").then(|| self_link.clone());
            Ok((StatusCode::OK, collection_of(&resource_type, self_link, page, filters, create, Some(pagination))))
        }
        Method::POST if Schemas::allows(schema, true, "POST") => {
            let body = body.unwrap_or_default();
            let mut store = shared.store();
            let id = match plural {
                "stacks" => crate::create::stack(shared, &mut store, schema, &body)?,
                "services" => crate::create::service(shared, &mut store, schema, &body)?,
                "secrets" => crate::create::secret(&mut store, schema, &body)?,
                _ => {
                    return Err(ApiError::method_not_allowed(
                        method,
                        &format!("{plural} (creating them directly is not implemented by this test server)"),
                    ))
                }
            };
            let created = render_one(shared, &store, plural, &id).unwrap_or(Value::Null);
            Ok((StatusCode::CREATED, created))
        }
        _ => Err(ApiError::method_not_allowed(method, &format!("the {plural} collection"))),
    }
}

fn resource_request(
    shared: &Shared,
    method: &Method,
    plural: &str,
    id: &str,
    action: Option<String>,
    body: Option<Map<String, Value>>,
) -> Result<(StatusCode, Value), ApiError> {
    let schema = schema_of(shared, plural)?;
    let mut store = shared.store();
    let kind = schema["id"].as_str().unwrap_or_default().to_owned();
    if render_one(shared, &store, plural, id).is_none() {
        return Err(ApiError::not_found(format!("{kind} {id}")));
    }
    match (method.clone(), action) {
        (Method::POST, Some(action)) => {
            let declared = schema.get("resourceActions").and_then(|a| a.get(&action)).is_some();
            if !declared {
                return Err(ApiError::not_found(format!("action {action:?} of {kind}")));
            }
            crate::actions::run(shared, &mut store, plural, id, &action, body.unwrap_or_default(), false)?;
            let out = render_one(shared, &store, plural, id).unwrap_or(Value::Null);
            Ok((StatusCode::OK, out))
        }
        (Method::GET, None) if Schemas::allows(schema, false, "GET") => {
            Ok((StatusCode::OK, render_one(shared, &store, plural, id).unwrap_or(Value::Null)))
        }
        (Method::PUT, None) if Schemas::allows(schema, false, "PUT") => {
            crate::create::update(&mut store, schema, plural, id, &body.unwrap_or_default())?;
            Ok((StatusCode::OK, render_one(shared, &store, plural, id).unwrap_or(Value::Null)))
        }
        (Method::DELETE, None) if Schemas::allows(schema, false, "DELETE") => {
            crate::actions::run(shared, &mut store, plural, id, "remove", Map::new(), true)?;
            Ok((StatusCode::OK, render_one(shared, &store, plural, id).unwrap_or(Value::Null)))
        }
        (method, _) => Err(ApiError::method_not_allowed(&method, &format!("{kind} resources"))),
    }
}

fn linked_collection(
    shared: &Shared,
    plural: &str,
    id: &str,
    link: &str,
    query: &[(String, String)],
) -> Result<(StatusCode, Value), ApiError> {
    schema_of(shared, plural)?;
    let store = shared.store();
    let self_link = format!("{}/{plural}/{id}/{link}", shared.urls.project);
    let (target, data): (&str, Vec<Value>) = match (plural, link) {
        ("services", "instances") => {
            let service = store.services.get(id).ok_or_else(|| ApiError::not_found(format!("service {id}")))?;
            let data = store.instances_of(&service.common.id).map(|i| render::instance(i, &shared.urls)).collect();
            ("instances", data)
        }
        ("stacks", "services") => {
            store.stacks.get(id).ok_or_else(|| ApiError::not_found(format!("stack {id}")))?;
            let data = store
                .services
                .values()
                .filter(|s| s.stack_id == id)
                .map(|s| render::service(s, &store, &shared.urls))
                .collect();
            ("services", data)
        }
        ("instances" | "containers", "services") => {
            let instance = store.instances.get(id).ok_or_else(|| ApiError::not_found(format!("instance {id}")))?;
            let data = store
                .services
                .get(&instance.service_id)
                .map(|s| vec![render::service(s, &store, &shared.urls)])
                .unwrap_or_default();
            ("services", data)
        }
        _ => return Err(ApiError::not_found(format!("link {link:?} of {plural}/{id}"))),
    };
    let schema = schema_of(shared, target)?;
    let resource_type = schema["id"].as_str().unwrap_or_default().to_owned();
    let (page, filters, pagination) = filter_page(shared, schema, data, query, &self_link)?;
    Ok((StatusCode::OK, collection_of(&resource_type, self_link, page, filters, None, Some(pagination))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_follow_the_spec_modifiers() {
        assert!(matches(&json!("figlet"), "eq", "figlet"));
        assert!(matches(&json!("figlet"), "prefix", "fig"));
        assert!(matches(&json!("figlet"), "like", "f%t"));
        assert!(matches(&json!("figlet"), "like", "figle_"));
        assert!(!matches(&json!("figlet"), "notlike", "%let"));
        assert!(matches(&Value::Null, "null", ""));
        assert!(matches(&json!(3), "gt", "2"));
        assert!(!matches(&json!(3), "lt", "2"));
        assert!(matches(&Value::Null, "ne", "x"));
    }

    #[test]
    fn ids_sort_by_their_number() {
        assert!(numeric("1s9") < numeric("1s10"));
        assert!(numeric("1i2") < numeric("1i11"));
    }
}
