//! The REST API: routing, discovery, and the verbs get, list, watch,
//! create, update, patch, delete and deletecollection on every kind, plus
//! the `status` and `scale` subresources.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use serde_json::{json, Map, Value};

use crate::kinds::{self, Kind, KINDS};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::{self, ApiError, Cause};
use crate::store::{self, is_deleting, name_of, now, uid_of, EventType, Store};
use crate::validate;
use crate::{body_from, Body, Shared};

/// The largest request body read (the API server's limit is 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// The query parameters of a request.
pub(crate) type Query = HashMap<String, String>;

/// A JSON response.
pub(crate) fn json_response(code: StatusCode, value: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(body_from(Bytes::from(bytes)))
        .expect("valid response")
}

/// A Status error response.
pub(crate) fn error_response(error: &ApiError) -> Response<Body> {
    json_response(error.code, &error.to_status())
}

/// What a request addresses.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) kind: &'static Kind,
    pub(crate) namespace: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) sub: Option<String>,
    /// For `proxy`: the path after `/proxy` (starts with `/` or is empty).
    pub(crate) rest: String,
    /// A `/watch/` path prefix.
    pub(crate) legacy_watch: bool,
}

enum Route {
    Discovery(Value),
    Text(&'static str),
    Resource(Target),
}

fn discovery_resources(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for kind in KINDS.iter().filter(|k| k.group == group && k.version == version) {
        resources.push(json!({
            "name": kind.plural,
            "singularName": kind.singular,
            "namespaced": kind.namespaced,
            "kind": kind.kind,
            "verbs": kinds::verbs(),
            "shortNames": kind.short_names,
        }));
        for sub in kind.subresources {
            let (sub_kind, verbs, extra): (&str, Vec<&str>, Value) = match *sub {
                "scale" => ("Scale", vec!["get", "patch", "update"], json!({"group": "autoscaling", "version": "v1"})),
                "log" => ("Pod", vec!["get"], json!({})),
                "proxy" => ("ServiceProxyOptions", vec!["create", "delete", "get", "patch", "update"], json!({})),
                "finalize" => (kind.kind, vec!["update"], json!({})),
                _ => (kind.kind, vec!["get", "patch", "update"], json!({})),
            };
            let mut entry = json!({
                "name": format!("{}/{}", kind.plural, sub),
                "singularName": "",
                "namespaced": kind.namespaced,
                "kind": sub_kind,
                "verbs": verbs,
            });
            if let Some(extra) = extra.as_object() {
                for (k, v) in extra {
                    entry[k] = v.clone();
                }
            }
            resources.push(entry);
        }
    }
    let group_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

fn route(shared: &Shared, path: &str) -> Option<Route> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let addr = shared.addr.to_string();
    match segments.as_slice() {
        ["api"] => {
            return Some(Route::Discovery(json!({
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr}],
            })))
        }
        ["apis"] => {
            let groups: Vec<Value> = kinds::groups()
                .into_iter()
                .map(|(g, v)| {
                    let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
                    json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
                })
                .collect();
            return Some(Route::Discovery(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})));
        }
        ["apis", group] => {
            let (g, v) = kinds::groups().into_iter().find(|(g, _)| g == group)?;
            let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
            return Some(Route::Discovery(
                json!({"kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": [gv.clone()], "preferredVersion": gv}),
            ));
        }
        ["api", "v1"] => return Some(Route::Discovery(discovery_resources("", "v1"))),
        ["apis", group, version] if kinds::groups().contains(&(*group, *version)) => {
            return Some(Route::Discovery(discovery_resources(group, version)))
        }
        ["version"] => {
            return Some(Route::Discovery(json!({
                "major": "1",
                "minor": "33",
                "gitVersion": "v1.33.0+k8s-test-server",
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.24.0",
                "compiler": "gc",
                "platform": "linux/amd64",
            })))
        }
        ["healthz"] | ["readyz"] | ["livez"] => return Some(Route::Text("ok")),
        _ => {}
    }
    let (group, version, rest): (&str, &str, &[&str]) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", group, version, rest @ ..] => (group, version, rest),
        _ => return None,
    };
    let (legacy_watch, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let target =
        |kind: &'static Kind, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>, tail: &[&str]| Target {
            kind,
            namespace: namespace.map(String::from),
            name: name.map(String::from),
            sub: sub.map(String::from),
            rest: if tail.is_empty() { String::new() } else { format!("/{}", tail.join("/")) },
            legacy_watch,
        };
    let namespaced = |plural: &str| kinds::find(group, version, plural).filter(|k| k.namespaced);
    let t = match rest {
        ["namespaces", ns, plural, tail @ ..] if namespaced(plural).is_some() => {
            let kind = namespaced(plural)?;
            match tail {
                [] => target(kind, Some(ns), None, None, &[]),
                [name] => target(kind, Some(ns), Some(name), None, &[]),
                [name, "proxy", tail @ ..] if kind.subresources.contains(&"proxy") => {
                    target(kind, Some(ns), Some(name), Some("proxy"), tail)
                }
                [name, sub] if kind.subresources.contains(sub) => target(kind, Some(ns), Some(name), Some(sub), &[]),
                _ => return None,
            }
        }
        [plural, tail @ ..] => {
            let kind = kinds::find(group, version, plural)?;
            match tail {
                [] => target(kind, None, None, None, &[]),
                [name] if !kind.namespaced => target(kind, None, Some(name), None, &[]),
                [name, sub] if !kind.namespaced && kind.subresources.contains(sub) => {
                    target(kind, None, Some(name), Some(sub), &[])
                }
                _ => return None,
            }
        }
        _ => return None,
    };
    Some(Route::Resource(t))
}

/// The RBAC verb of a request on a target, and the resource as RBAC names it.
fn rbac(method: &Method, target: &Target, query: &Query) -> (&'static str, String) {
    let resource = match &target.sub {
        Some(sub) => format!("{}/{}", target.kind.plural, sub),
        None => target.kind.plural.to_string(),
    };
    if target.sub.as_deref() == Some("proxy") {
        return ("proxy", resource);
    }
    let watching = target.legacy_watch || query.get("watch").is_some_and(|w| w == "1" || w == "true");
    let verb = match (method.as_str(), target.name.is_some()) {
        ("GET" | "HEAD", false) if watching => "watch",
        ("GET" | "HEAD", false) => "list",
        ("GET" | "HEAD", true) if watching => "watch",
        ("GET" | "HEAD", true) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", false) => "deletecollection",
        ("DELETE", true) => "delete",
        _ => "unknown",
    };
    (verb, resource)
}

/// The HTTP-derived verb of a proxy request, as RBAC checks it.
fn proxy_verb(method: &Method) -> &'static str {
    match method.as_str() {
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => "get",
    }
}

/// Serves one request.
pub(crate) async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_string();
    let query: Query = request
        .uri()
        .query()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
        .into_iter()
        .collect();
    let Some(route) = route(&shared, &path) else {
        shared.count("get", "");
        return error_response(&ApiError::path_not_found());
    };
    let target = match route {
        Route::Discovery(doc) => {
            shared.count("get", "");
            return json_response(StatusCode::OK, &doc);
        }
        Route::Text(text) => {
            shared.count("get", "");
            return Response::builder()
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(body_from(Bytes::from_static(text.as_bytes())))
                .expect("valid response");
        }
        Route::Resource(target) => target,
    };
    let (verb, resource) = rbac(request.method(), &target, &query);
    shared.count(verb, &resource);
    let alt_verb = if verb == "proxy" { proxy_verb(request.method()) } else { verb };
    shared.record_access(crate::Access {
        verb: alt_verb.to_owned(),
        group: target.kind.group.to_owned(),
        resource: resource.clone(),
        namespace: target.namespace.clone(),
    });
    if shared.is_forbidden(verb, alt_verb, &resource, target.namespace.as_deref()) {
        let scope = match &target.namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        let why = format!(
            "User \"system:anonymous\" cannot {alt_verb} resource \"{resource}\" in API group \"{}\" {scope}",
            target.kind.group
        );
        return error_response(&ApiError::forbidden(target.kind, target.name.as_deref().unwrap_or(""), &why));
    }
    // `Accept: application/json;as=PartialObjectMetadata(List);g=meta.k8s.io;v=v1`
    let partial = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("as=PartialObjectMetadata"));
    if let Some(accept) = request.headers().get(header::ACCEPT).and_then(|a| a.to_str().ok()) {
        let acceptable = accept.split(',').any(|a| {
            let media = a.split(';').next().unwrap_or_default().trim();
            matches!(media, "application/json" | "*/*" | "application/*" | "" | "text/plain" | "application/json-seq")
                || media.starts_with("application/json")
        });
        if !acceptable && target.sub.as_deref() != Some("proxy") {
            return error_response(&ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                "NotAcceptable",
                "only the following media types are accepted: application/json",
            ));
        }
    }
    match target.sub.as_deref() {
        Some("proxy") => return crate::proxy::serve(shared, target, request).await,
        Some("log") if request.method() == Method::GET => {
            return match crate::proxy::logs(&shared, &target, &query) {
                Ok(response) => response,
                Err(e) => error_response(&e),
            }
        }
        _ => {}
    }
    if verb == "watch" {
        return match watch(shared, &target, &query, partial) {
            Ok(response) => response,
            Err(e) => error_response(&e),
        };
    }
    let method = request.method().clone();
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .map(|c| c.split(';').next().unwrap_or_default().trim().to_string())
        .unwrap_or_default();
    let body = match read_body(request.into_body()).await {
        Ok(body) => body,
        Err(e) => return error_response(&e),
    };
    let result = dispatch(&shared, &method, verb, &target, &query, &content_type, &body);
    match result {
        Ok((code, value)) if partial && matches!(verb, "get" | "list") && target.sub.is_none() => {
            json_response(code, &partial_metadata(&value))
        }
        Ok((code, value)) => json_response(code, &value),
        Err(e) => error_response(&e),
    }
}

async fn read_body(body: Incoming) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "request entity too large: limit is 3145728",
        )),
    }
}

fn parse_json(kind: &Kind, content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    if !content_type.is_empty() && !content_type.starts_with("application/json") && content_type != "*/*" {
        return Err(ApiError::unsupported_media_type(content_type, "application/json"));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            kind.kind, kind.version, kind.kind
        ))
    })
}

fn dispatch(
    shared: &Shared,
    method: &Method,
    verb: &str,
    target: &Target,
    query: &Query,
    content_type: &str,
    body: &[u8],
) -> Result<(StatusCode, Value), ApiError> {
    let kind = target.kind;
    if query.get("dryRun").is_some_and(|d| !d.is_empty()) {
        return Err(ApiError::bad_request("dryRun is not supported by k8s-test-server"));
    }
    let ns = target.namespace.as_deref().unwrap_or("");
    let sub = target.sub.as_deref();
    match (verb, sub) {
        ("list", None) => list(shared, target, query).map(|v| (StatusCode::OK, v)),
        ("create", None) => {
            let object = parse_json(kind, content_type, body)?;
            let mut store = shared.store();
            create(&mut store, kind, target.namespace.as_deref(), object).map(|v| (StatusCode::CREATED, v))
        }
        ("deletecollection", None) => {
            let options = DeleteOptions::parse(body, query)?;
            let labels = LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))
                .map_err(ApiError::bad_request)?;
            let fields = FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or(""), kind)
                .map_err(ApiError::bad_request)?;
            let mut store = shared.store();
            let mut items = Vec::new();
            for object in store.list(kind, target.namespace.as_deref()) {
                if labels.matches(&object["metadata"]["labels"]) && fields.matches(&object) {
                    let (ns, name) = store::key_of(&object);
                    if let Ok(outcome) = delete(shared, &mut store, kind, &ns, &name, &options) {
                        items.push(strip_type_meta(outcome.object()));
                    }
                }
            }
            let list = json!({"kind": format!("{}List", kind.kind), "apiVersion": kind.api_version(),
                "metadata": {"resourceVersion": store.rv().to_string()}, "items": items});
            Ok((StatusCode::OK, list))
        }
        ("get", None) => {
            let name = target.name.as_deref().unwrap_or_default();
            let store = shared.store();
            let object = store.get(kind, ns, name).ok_or_else(|| ApiError::not_found(kind, name))?;
            Ok((StatusCode::OK, (*object).clone()))
        }
        ("get", Some("status")) => {
            let name = target.name.as_deref().unwrap_or_default();
            let store = shared.store();
            let object = store.get(kind, ns, name).ok_or_else(|| ApiError::not_found(kind, name))?;
            Ok((StatusCode::OK, (*object).clone()))
        }
        ("get", Some("scale")) => {
            let name = target.name.as_deref().unwrap_or_default();
            let store = shared.store();
            let object = store.get(kind, ns, name).ok_or_else(|| ApiError::not_found(kind, name))?;
            Ok((StatusCode::OK, scale_of(&object)))
        }
        ("update" | "patch", _) => {
            let name = target.name.as_deref().unwrap_or_default();
            let resource = match sub {
                Some(s) => format!("{}/{s}", kind.plural),
                None => kind.plural.to_string(),
            };
            let mut store = shared.store();
            let old = store.get(kind, ns, name).ok_or_else(|| ApiError::not_found(kind, name))?;
            if shared.take_conflict(&resource) {
                // Another client wrote first: the object's resourceVersion moves on.
                store.replace(kind, (*old).clone());
                return Err(ApiError::conflict(kind, name));
            }
            let base = if sub == Some("scale") { scale_of(&old) } else { (*old).clone() };
            let mut new = if verb == "update" {
                parse_json(kind, content_type, body)?
            } else {
                apply_patch(kind, &base, content_type, body)?
            };
            if sub == Some("scale") {
                return update_scale(shared, &mut store, kind, &old, new, verb == "update");
            }
            let body_name = name_of(&new).to_string();
            if !body_name.is_empty() && body_name != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({name})"
                )));
            }
            new["metadata"]["name"] = json!(name);
            check_type_meta(kind, &mut new)?;
            check_namespace(kind, &mut new, target.namespace.as_deref())?;
            let result = update(shared, &mut store, kind, &old, new, sub == Some("status"))?;
            Ok((StatusCode::OK, (*result).clone()))
        }
        ("delete", None) => {
            let name = target.name.as_deref().unwrap_or_default();
            let options = DeleteOptions::parse(body, query)?;
            let mut store = shared.store();
            let outcome = delete(shared, &mut store, kind, ns, name, &options)?;
            Ok(match outcome {
                Deleted::Pending(object) => (StatusCode::OK, (*object).clone()),
                Deleted::Gone(object) if matches!(kind.plural, "pods" | "services" | "namespaces") => {
                    (StatusCode::OK, (*object).clone())
                }
                Deleted::Gone(object) => (StatusCode::OK, status::success(kind, name, uid_of(&object))),
            })
        }
        _ => Err(ApiError::method_not_allowed(method)),
    }
}

/// Removes apiVersion and kind, as list items omit them.
fn strip_type_meta(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("apiVersion");
        map.remove("kind");
    }
    object
}

fn check_type_meta(kind: &Kind, object: &mut Value) -> Result<(), ApiError> {
    if !object.is_object() {
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: expected an object",
            kind.kind, kind.version, kind.kind
        )));
    }
    let api_version = kind.api_version();
    match object["apiVersion"].as_str() {
        None | Some("") => object["apiVersion"] = json!(api_version),
        Some(v) if v == api_version => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )))
        }
    }
    match object["kind"].as_str() {
        None | Some("") => object["kind"] = json!(kind.kind),
        Some(k) if k == kind.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                kind.kind
            )))
        }
    }
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    Ok(())
}

fn check_namespace(kind: &Kind, object: &mut Value, namespace: Option<&str>) -> Result<(), ApiError> {
    let given = store::namespace_of(object).to_string();
    match (kind.namespaced, namespace) {
        (true, Some(ns)) => {
            if !given.is_empty() && given != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            object["metadata"]["namespace"] = json!(ns);
        }
        (true, None) => {
            return Err(ApiError::bad_request(
                "the server could not find the requested resource: a namespace is required",
            ))
        }
        (false, _) => {
            if let Some(m) = object["metadata"].as_object_mut() {
                m.remove("namespace");
            }
        }
    }
    Ok(())
}

fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes.iter().take(len).map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

/// The objects a ResourceQuota's `spec.hard` key counts, for a kind.
fn quota_keys(kind: &Kind) -> &'static [&'static str] {
    match kind.plural {
        "pods" => &["pods", "count/pods"],
        "services" => &["services", "count/services"],
        "secrets" => &["secrets", "count/secrets"],
        "configmaps" => &["configmaps", "count/configmaps"],
        "resourcequotas" => &["resourcequotas", "count/resourcequotas"],
        "deployments" => &["count/deployments.apps"],
        _ => &[],
    }
}

/// Counts what a ResourceQuota key covers in a namespace.
pub(crate) fn quota_used(store: &Store, key: &str, namespace: &str) -> Option<u64> {
    let kind = KINDS.iter().find(|k| quota_keys(k).contains(&key))?;
    let objects = store.list(kind, Some(namespace));
    let count = if kind.plural == "pods" {
        objects.iter().filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))).count()
    } else {
        objects.len()
    };
    Some(count as u64)
}

fn parse_quantity(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => {
            let s = s.trim();
            let (digits, mult) = match s {
                _ if s.ends_with('k') => (&s[..s.len() - 1], 1_000),
                _ if s.ends_with("Ki") => (&s[..s.len() - 2], 1_024),
                _ => (s, 1),
            };
            digits.parse::<u64>().ok().map(|n| n * mult)
        }
        _ => None,
    }
}

fn check_quota(store: &Store, kind: &Kind, namespace: &str, name: &str) -> Result<(), ApiError> {
    let keys = quota_keys(kind);
    if keys.is_empty() {
        return Ok(());
    }
    for quota in store.list(kinds::by_plural("resourcequotas"), Some(namespace)) {
        for key in keys {
            let Some(hard) = quota["spec"]["hard"].get(*key).and_then(parse_quantity) else { continue };
            let used = quota_used(store, key, namespace).unwrap_or_default();
            if used + 1 > hard {
                let why = format!(
                    "exceeded quota: {}, requested: {key}=1, used: {key}={used}, limited: {key}={hard}",
                    name_of(&quota)
                );
                return Err(ApiError::forbidden(kind, name, &why));
            }
        }
    }
    Ok(())
}

fn merge_string_data(kind: &Kind, object: &mut Value) -> Result<(), ApiError> {
    if kind.plural != "secrets" {
        return Ok(());
    }
    if let Some(Value::Object(string_data)) = object.as_object_mut().and_then(|m| m.remove("stringData")) {
        if !object["data"].is_object() {
            object["data"] = json!({});
        }
        for (k, v) in string_data {
            let text = v.as_str().unwrap_or_default();
            object["data"][k.as_str()] = json!(base64::engine::general_purpose::STANDARD.encode(text));
        }
    }
    for (k, v) in object["data"].as_object().into_iter().flatten() {
        let ok = v.as_str().is_some_and(|s| base64::engine::general_purpose::STANDARD.decode(s).is_ok());
        if !ok {
            return Err(ApiError::bad_request(format!(
                "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data in data[{k}]"
            )));
        }
    }
    Ok(())
}

/// The next free address of 10.96.0.0/12 (from .0.11: .0.1 is the
/// `kubernetes` service and .0.10 DNS); addresses are not reused.
fn allocate_cluster_ip(store: &mut Store) -> String {
    while store.next_cluster_ip < (1 << 20) {
        let n = store.next_cluster_ip;
        store.next_cluster_ip += 1;
        let ip = std::net::Ipv4Addr::from((10u32 << 24) | (96 << 16) | n).to_string();
        if store.cluster_ips.insert(ip.clone()) {
            return ip;
        }
    }
    "10.96.0.2".to_string()
}

/// Creates an object (the API's POST, and the controller's pod creation).
pub(crate) fn create(
    store: &mut Store,
    kind: &'static Kind,
    namespace: Option<&str>,
    mut object: Value,
) -> Result<Value, ApiError> {
    check_type_meta(kind, &mut object)?;
    check_namespace(kind, &mut object, namespace)?;
    let metadata = object["metadata"].as_object_mut().expect("metadata object");
    for field in [
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "selfLink",
        "managedFields",
    ] {
        metadata.remove(field);
    }
    if store::name_of(&object).is_empty() {
        if let Some(prefix) = object["metadata"]["generateName"].as_str().filter(|p| !p.is_empty()) {
            object["metadata"]["name"] = json!(format!("{prefix}{}", random_suffix(5)));
        }
    }
    let name = name_of(&object).to_string();
    if let Some(ns) = namespace.filter(|_| kind.namespaced) {
        match store.get(kinds::by_plural("namespaces"), "", ns) {
            None => return Err(ApiError::not_found(kinds::by_plural("namespaces"), ns)),
            Some(n) if is_deleting(&n) => {
                let why = format!("unable to create new content in namespace {ns} because it is being terminated");
                let mut error = ApiError::forbidden(kind, &name, &why);
                if let Some(d) = error.details.as_mut() {
                    d["causes"] = json!([{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]);
                }
                return Err(error);
            }
            _ => {}
        }
    }
    merge_string_data(kind, &mut object)?;
    validate::default_object(kind, &mut object);
    store::strip_nulls(&mut object);
    let causes = validate::validate(kind, &object, None);
    if !causes.is_empty() {
        return Err(ApiError::invalid(kind, &name, causes));
    }
    let ns = namespace.filter(|_| kind.namespaced).unwrap_or("");
    if store.get(kind, ns, &name).is_some() {
        return Err(ApiError::already_exists(kind, &name));
    }
    if kind.namespaced {
        check_quota(store, kind, ns, &name)?;
    }
    object["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
    object["metadata"]["creationTimestamp"] = json!(now());
    match kind.plural {
        "deployments" => {
            object["metadata"]["generation"] = json!(1);
            object["status"] = json!({});
        }
        "namespaces" => object["status"] = json!({"phase": "Active"}),
        "services" => {
            let ip = match object["spec"]["clusterIP"].as_str() {
                Some(ip) if !ip.is_empty() => {
                    store.cluster_ips.insert(ip.to_string());
                    ip.to_string()
                }
                _ => allocate_cluster_ip(store),
            };
            object["spec"]["clusterIP"] = json!(ip);
            object["spec"]["clusterIPs"] = json!([ip]);
            if ip != "None" {
                object["spec"]["ipFamilies"] = json!(["IPv4"]);
                object["spec"]["ipFamilyPolicy"] = json!("SingleStack");
            }
            object["status"] = json!({"loadBalancer": {}});
        }
        "pods" => {
            object["metadata"]["generation"] = json!(1);
            object["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
        }
        "resourcequotas" => {
            let hard = object["spec"]["hard"].clone();
            let mut used = Map::new();
            for key in hard.as_object().into_iter().flatten().map(|(k, _)| k) {
                if let Some(n) = quota_used(store, key, ns) {
                    used.insert(key.clone(), json!(n.to_string()));
                }
            }
            object["status"] = json!({"hard": hard, "used": used});
        }
        _ => {}
    }
    let stored = store.insert(kind, object);
    Ok((*stored).clone())
}

/// Replaces a stored object with `new` (the API's PUT and PATCH;
/// `status_only` for the status subresource).
pub(crate) fn update(
    shared: &Shared,
    store: &mut Store,
    kind: &'static Kind,
    old: &Value,
    mut new: Value,
    status_only: bool,
) -> Result<Arc<Value>, ApiError> {
    let name = name_of(old).to_string();
    let given_rv = new["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_string();
    if !given_rv.is_empty() && given_rv != store::str_at(old, &["metadata", "resourceVersion"]) {
        return Err(ApiError::conflict(kind, &name));
    }
    if status_only {
        let status = new["status"].clone();
        new = old.clone();
        new["status"] = status;
    } else {
        if kind.has_status {
            new["status"] = old["status"].clone();
        }
        for field in
            ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "namespace"]
        {
            match old["metadata"].get(field) {
                Some(v) => new["metadata"][field] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        merge_string_data(kind, &mut new)?;
        if kind.plural == "services" {
            if new["spec"]["clusterIP"].as_str().unwrap_or_default().is_empty() {
                new["spec"]["clusterIP"] = old["spec"]["clusterIP"].clone();
            }
            if new["spec"]["clusterIPs"].is_null() {
                new["spec"]["clusterIPs"] = old["spec"]["clusterIPs"].clone();
            }
            for field in ["ipFamilies", "ipFamilyPolicy"] {
                if new["spec"][field].is_null() && !old["spec"][field].is_null() {
                    new["spec"][field] = old["spec"][field].clone();
                }
            }
        }
        if kind.plural == "namespaces" && new["spec"].is_null() {
            new["spec"] = old["spec"].clone();
        }
        validate::default_object(kind, &mut new);
        store::strip_nulls(&mut new);
        let causes = validate::validate(kind, &new, Some(old));
        if !causes.is_empty() {
            return Err(ApiError::invalid(kind, &name, causes));
        }
        if matches!(kind.plural, "deployments" | "pods") && new["spec"] != old["spec"] {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
            new["metadata"]["generation"] = json!(generation + 1);
        }
    }
    new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
    store::strip_nulls(&mut new);
    if new == *old {
        return Ok(Arc::new(new));
    }
    let deleting = is_deleting(&new);
    let no_finalizers = new["metadata"]["finalizers"].as_array().is_none_or(|f| f.is_empty());
    // With the controller, the kubelet removes a deleted pod once its
    // process stopped.
    if deleting && no_finalizers && (kind.plural != "pods" || !shared.controller) {
        let (ns, n) = store::key_of(&new);
        store.replace(kind, new);
        return Ok(store.remove(kind, &ns, &n).expect("just stored"));
    }
    Ok(store.replace(kind, new))
}

fn apply_patch(kind: &Kind, base: &Value, content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    let patch: Value = match content_type {
        "application/merge-patch+json" | "application/strategic-merge-patch+json" | "application/json-patch+json" => {
            serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
        }
        other => {
            return Err(ApiError::unsupported_media_type(
                other,
                "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json",
            ))
        }
    };
    let mut doc = base.clone();
    let result = match content_type {
        "application/merge-patch+json" => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("error decoding patch: a merge patch must be a JSON object"));
            }
            crate::patch::merge_patch(&mut doc, &patch);
            Ok(())
        }
        "application/strategic-merge-patch+json" => crate::patch::strategic_merge_patch(&mut doc, &patch),
        _ => crate::patch::json_patch(&mut doc, &patch),
    };
    result.map_err(|e| match content_type {
        "application/json-patch+json" => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("the server rejected our request due to an error in our request: {e}"),
        ),
        _ => ApiError::bad_request(format!("error applying patch to {}: {e}", kind.kind)),
    })?;
    Ok(doc)
}

/// The autoscaling/v1 Scale of a deployment.
pub(crate) fn scale_of(object: &Value) -> Value {
    let selector = LabelSelector::from_object(&object["spec"]["selector"]).render();
    let meta = &object["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": object["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": object["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

fn update_scale(
    shared: &Shared,
    store: &mut Store,
    kind: &'static Kind,
    old: &Value,
    scale: Value,
    is_update: bool,
) -> Result<(StatusCode, Value), ApiError> {
    let name = name_of(old).to_string();
    if is_update {
        if let Some(k) = scale["kind"].as_str().filter(|k| *k != "Scale") {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind (Scale)"
            )));
        }
    }
    let replicas = &scale["spec"]["replicas"];
    let scale_kind = Kind { kind: "Scale", group: "autoscaling", ..*kinds::by_plural("deployments") };
    match replicas.as_i64() {
        Some(n) if n >= 0 => {}
        Some(_) => {
            return Err(ApiError::invalid(
                &scale_kind,
                &name,
                vec![Cause::invalid("spec.replicas", replicas, "must be greater than or equal to 0")],
            ))
        }
        None if replicas.is_null() => {}
        None => {
            return Err(ApiError::bad_request(
                "Scale in version \"v1\" cannot be handled as a Scale: spec.replicas must be an integer",
            ))
        }
    }
    let mut new = old.clone();
    new["metadata"]["resourceVersion"] = scale["metadata"]["resourceVersion"].clone();
    if new["metadata"]["resourceVersion"].is_null() {
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
    }
    new["spec"]["replicas"] = json!(replicas.as_i64().unwrap_or(0));
    let stored = update(shared, store, kind, old, new, false)?;
    Ok((StatusCode::OK, scale_of(&stored)))
}

/// DeleteOptions from the body and the query.
#[derive(Debug, Default, Clone)]
pub(crate) struct DeleteOptions {
    pub(crate) propagation: Option<String>,
    pub(crate) grace: Option<i64>,
    uid: Option<String>,
    resource_version: Option<String>,
}

impl DeleteOptions {
    fn parse(body: &[u8], query: &Query) -> Result<DeleteOptions, ApiError> {
        let mut options = DeleteOptions::default();
        if !body.iter().all(u8::is_ascii_whitespace) {
            let value: Value = serde_json::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!(
                    "DeleteOptions in version \"v1\" cannot be handled as a DeleteOptions: {e}"
                ))
            })?;
            options.propagation = value["propagationPolicy"].as_str().map(String::from);
            options.grace = value["gracePeriodSeconds"].as_i64();
            options.uid = value["preconditions"]["uid"].as_str().map(String::from);
            options.resource_version = value["preconditions"]["resourceVersion"].as_str().map(String::from);
            if value["orphanDependents"] == true && options.propagation.is_none() {
                options.propagation = Some("Orphan".into());
            }
            if let Some(dry) = value["dryRun"].as_array() {
                if !dry.is_empty() {
                    return Err(ApiError::bad_request("dryRun is not supported by k8s-test-server"));
                }
            }
        }
        if let Some(p) = query.get("propagationPolicy") {
            options.propagation = Some(p.clone());
        }
        if let Some(g) = query.get("gracePeriodSeconds") {
            options.grace = g.parse().ok();
        }
        if let Some(p) = &options.propagation {
            if !matches!(p.as_str(), "Background" | "Foreground" | "Orphan") {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    format!("DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""),
                ));
            }
        }
        Ok(options)
    }

    /// Background deletion (what the garbage collector uses).
    pub(crate) fn background() -> DeleteOptions {
        DeleteOptions { propagation: Some("Background".into()), ..DeleteOptions::default() }
    }
}

/// What a delete did.
pub(crate) enum Deleted {
    /// The object remains, with a deletionTimestamp (finalizers or
    /// graceful termination pending).
    Pending(Arc<Value>),
    /// The object is gone; its last state.
    Gone(Arc<Value>),
}

impl Deleted {
    fn object(&self) -> &Value {
        match self {
            Deleted::Pending(o) | Deleted::Gone(o) => o,
        }
    }
}

fn add_finalizer(object: &mut Value, finalizer: &str) {
    if !object["metadata"]["finalizers"].is_array() {
        object["metadata"]["finalizers"] = json!([]);
    }
    let list = object["metadata"]["finalizers"].as_array_mut().expect("array");
    if !list.iter().any(|f| f == finalizer) {
        list.push(json!(finalizer));
    }
}

/// Deletes an object as the API does (propagation, finalizers, graceful
/// pod termination).
pub(crate) fn delete(
    shared: &Shared,
    store: &mut Store,
    kind: &'static Kind,
    namespace: &str,
    name: &str,
    options: &DeleteOptions,
) -> Result<Deleted, ApiError> {
    let object = store.get(kind, namespace, name).ok_or_else(|| ApiError::not_found(kind, name))?;
    if let Some(uid) = &options.uid {
        if uid != uid_of(&object) {
            let why =
                format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", uid_of(&object));
            return Err(ApiError::conflict_because(kind, name, &why));
        }
    }
    if let Some(rv) = &options.resource_version {
        let actual = store::str_at(&object, &["metadata", "resourceVersion"]);
        if rv != actual {
            let why = format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
            );
            return Err(ApiError::conflict_because(kind, name, &why));
        }
    }
    let propagation = options.propagation.as_deref().unwrap_or("Background");
    let uid = uid_of(&object).to_string();
    if propagation == "Orphan" && kind.namespaced {
        for (dep_kind, dep) in store.dependents(namespace, &uid) {
            let mut dep = (*dep).clone();
            if let Some(refs) = dep["metadata"]["ownerReferences"].as_array_mut() {
                refs.retain(|r| r["uid"] != uid.as_str());
            }
            store.replace(dep_kind, dep);
        }
    }
    let mut new = (*object).clone();
    if is_deleting(&object) {
        if propagation == "Foreground" && kind.namespaced {
            add_finalizer(&mut new, "foregroundDeletion");
            if new != *object {
                return Ok(Deleted::Pending(store.replace(kind, new)));
            }
        }
        if kind.plural == "pods" && options.grace == Some(0) {
            return Ok(Deleted::Gone(store.remove(kind, namespace, name).expect("exists")));
        }
        return Ok(Deleted::Pending(object));
    }
    new["metadata"]["deletionTimestamp"] = json!(now());
    if kind.plural == "namespaces" {
        new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        new["status"]["phase"] = json!("Terminating");
        return Ok(Deleted::Pending(store.replace(kind, new)));
    }
    if propagation == "Foreground" && kind.namespaced {
        new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        add_finalizer(&mut new, "foregroundDeletion");
        return Ok(Deleted::Pending(store.replace(kind, new)));
    }
    let has_finalizers = new["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
    if has_finalizers {
        new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        return Ok(Deleted::Pending(store.replace(kind, new)));
    }
    if kind.plural == "pods" && shared.controller && !store::str_at(&object, &["spec", "nodeName"]).is_empty() {
        let grace =
            options.grace.or_else(|| object["spec"]["terminationGracePeriodSeconds"].as_i64()).unwrap_or(30).max(0);
        if grace > 0 && !matches!(object["status"]["phase"].as_str(), Some("Succeeded" | "Failed")) {
            let at = chrono::Utc::now() + chrono::Duration::seconds(grace);
            new["metadata"]["deletionTimestamp"] = json!(at.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            new["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
            return Ok(Deleted::Pending(store.replace(kind, new)));
        }
    }
    Ok(Deleted::Gone(store.remove(kind, namespace, name).expect("exists")))
}

struct ContinueToken {
    rv: u64,
    start: String,
}

impl ContinueToken {
    fn encode(&self) -> String {
        let json = json!({"v": "meta.k8s.io/v1", "rv": self.rv, "start": self.start});
        base64::engine::general_purpose::URL_SAFE.encode(json.to_string())
    }

    fn decode(token: &str) -> Result<ContinueToken, ApiError> {
        let invalid = || {
            ApiError::bad_request(
                "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
            )
        };
        let bytes = base64::engine::general_purpose::URL_SAFE.decode(token).map_err(|_| invalid())?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if value["v"] != "meta.k8s.io/v1" {
            return Err(invalid());
        }
        Ok(ContinueToken {
            rv: value["rv"].as_u64().ok_or_else(invalid)?,
            start: value["start"].as_str().ok_or_else(invalid)?.to_string(),
        })
    }
}

fn selectors(kind: &Kind, query: &Query) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or(""), kind)
        .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

fn list(shared: &Shared, target: &Target, query: &Query) -> Result<Value, ApiError> {
    let kind = target.kind;
    let (labels, fields) = selectors(kind, query)?;
    let limit: usize = match query.get("limit") {
        Some(l) => l.parse::<i64>().map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?.max(0) as usize,
        None => 0,
    };
    let token = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(c) => Some(ContinueToken::decode(c)?),
        None => None,
    };
    let store = shared.store();
    let current = store.rv();
    let exact = query.get("resourceVersionMatch").is_some_and(|m| m == "Exact");
    let snapshot_rv = match (&token, query.get("resourceVersion")) {
        (Some(t), _) => t.rv,
        (None, Some(rv)) if exact => {
            rv.parse().map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?
        }
        _ => current,
    };
    let owned;
    let objects: &std::collections::BTreeMap<store::Key, Arc<Value>> = if snapshot_rv >= current {
        &store.kind(kind).objects
    } else {
        owned = store.snapshot(kind, snapshot_rv).ok_or_else(|| {
            if token.is_some() {
                ApiError::expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
            } else {
                ApiError::expired(format!("too old resource version: {snapshot_rv} ({})", store.kind(kind).compacted))
            }
        })?;
        &owned
    };
    let namespace = target.namespace.as_deref();
    let start_key: Option<store::Key> = token.as_ref().map(|t| {
        let (ns, name) = t.start.split_once('/').unwrap_or(("", &t.start));
        (ns.to_string(), name.to_string())
    });
    let iter: Box<dyn Iterator<Item = (&store::Key, &Arc<Value>)>> = match (&start_key, namespace) {
        (Some(start), _) => {
            Box::new(objects.range((std::ops::Bound::Excluded(start.clone()), std::ops::Bound::Unbounded)))
        }
        (None, Some(ns)) => Box::new(objects.range((ns.to_string(), String::new())..)),
        (None, None) => Box::new(objects.iter()),
    };
    let mut items = Vec::new();
    let mut last_key = None;
    let mut more = false;
    let mut remaining = 0usize;
    for (key, object) in iter {
        if let Some(ns) = namespace {
            if key.0 != ns {
                if key.0.as_str() > ns {
                    break;
                }
                continue;
            }
        }
        if !labels.matches(&object["metadata"]["labels"]) || !fields.matches(object) {
            continue;
        }
        if limit > 0 && items.len() == limit {
            more = true;
            remaining += 1;
            continue;
        }
        items.push(strip_type_meta(object));
        last_key = Some(key.clone());
    }
    let mut metadata = json!({"resourceVersion": snapshot_rv.to_string()});
    if more {
        if let Some((ns, name)) = last_key {
            metadata["continue"] = json!(ContinueToken { rv: snapshot_rv, start: format!("{ns}/{name}") }.encode());
            if labels.is_empty() && query.get("fieldSelector").is_none_or(|f| f.is_empty()) {
                metadata["remainingItemCount"] = json!(remaining);
            }
        }
    }
    Ok(
        json!({"kind": format!("{}List", kind.kind), "apiVersion": kind.api_version(), "metadata": metadata, "items": items}),
    )
}

/// An object (or list) as PartialObjectMetadata (metadata only).
fn partial_metadata(value: &Value) -> Value {
    match value["items"].as_array() {
        Some(items) => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": value["metadata"],
            "items": items.iter().map(|i| json!({"metadata": i["metadata"]})).collect::<Vec<_>>(),
        }),
        None => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": value["metadata"]}),
    }
}

fn maybe_partial(object: &Value, partial: bool) -> std::borrow::Cow<'_, Value> {
    if partial {
        std::borrow::Cow::Owned(partial_metadata(object))
    } else {
        std::borrow::Cow::Borrowed(object)
    }
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn watch(shared: Arc<Shared>, target: &Target, query: &Query, partial: bool) -> Result<Response<Body>, ApiError> {
    let kind = target.kind;
    let (labels, mut fields) = selectors(kind, query)?;
    if let Some(name) = &target.name {
        fields = FieldSelector::parse(&format!("metadata.name={name}"), kind).map_err(ApiError::bad_request)?;
    }
    let bookmarks = query.get("allowWatchBookmarks").is_some_and(|b| b == "true" || b == "1");
    let send_initial = query.get("sendInitialEvents").map(|s| s == "true");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let rv_param = query.get("resourceVersion").cloned().unwrap_or_default();
    let namespace = target.namespace.clone();
    let matches = move |object: &Value| -> bool {
        if let Some(ns) = &namespace {
            if store::namespace_of(object) != ns {
                return false;
            }
        }
        labels.matches(&object["metadata"]["labels"]) && fields.matches(object)
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1024);
    let mut changes = shared.changes.clone();
    let initial_mode = send_initial.unwrap_or(rv_param.is_empty() || rv_param == "0");
    let start: Result<(u64, Vec<Bytes>), Bytes> = {
        let store = shared.store();
        changes.mark_unchanged();
        if initial_mode {
            let mut lines = Vec::new();
            for object in store.kind(kind).objects.values() {
                if matches(object) {
                    lines.push(event_line("ADDED", &maybe_partial(object, partial)));
                }
            }
            if send_initial == Some(true) && bookmarks {
                let bookmark = json!({"kind": kind.kind, "apiVersion": kind.api_version(),
                    "metadata": {"resourceVersion": store.rv().to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}});
                lines.push(event_line("BOOKMARK", &bookmark));
            }
            Ok((store.rv(), lines))
        } else {
            let rv: u64 =
                rv_param.parse().map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv_param}")))?;
            let compacted = store.kind(kind).compacted;
            if rv < compacted {
                Err(event_line(
                    "ERROR",
                    &ApiError::expired(format!("too old resource version: {rv} ({compacted})")).to_status(),
                ))
            } else {
                Ok((rv, Vec::new()))
            }
        }
    };
    let task_shared = shared.clone();
    tokio::spawn(async move {
        let (mut last, lines) = match start {
            Ok(start) => start,
            Err(error) => {
                let _ = tx.send(error).await;
                return;
            }
        };
        for line in lines {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut bookmark_tick = tokio::time::interval(crate::BOOKMARK_INTERVAL);
        bookmark_tick.tick().await;
        loop {
            // Deliver what happened since `last`.
            let batch: Result<(u64, Vec<Bytes>), Bytes> = {
                let store = task_shared.store();
                changes.mark_unchanged();
                match store.events_after(kind, last) {
                    Err(compacted) => Err(event_line(
                        "ERROR",
                        &ApiError::expired(format!("too old resource version: {last} ({compacted})")).to_status(),
                    )),
                    Ok(events) => {
                        let mut lines = Vec::new();
                        for event in events {
                            let now_matches = event.kind != EventType::Deleted && matches(&event.object);
                            let was_matching = event.prev.as_deref().is_some_and(&matches);
                            let kind = match (event.kind, was_matching, now_matches) {
                                (EventType::Deleted, true, _) => "DELETED",
                                (EventType::Deleted, false, _) => continue,
                                (_, true, true) => "MODIFIED",
                                (_, false, true) => "ADDED",
                                (_, true, false) => "DELETED",
                                (_, false, false) => continue,
                            };
                            lines.push(event_line(kind, &maybe_partial(&event.object, partial)));
                        }
                        Ok((store.rv().max(last), lines))
                    }
                }
            };
            match batch {
                Err(error) => {
                    let _ = tx.send(error).await;
                    return;
                }
                Ok((rv, lines)) => {
                    last = rv;
                    for line in lines {
                        if tx.send(line).await.is_err() {
                            return;
                        }
                    }
                }
            }
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = bookmark_tick.tick(), if bookmarks => {
                    let bookmark = json!({"kind": kind.kind, "apiVersion": kind.api_version(),
                        "metadata": {"resourceVersion": last.to_string()}});
                    if tx.send(event_line("BOOKMARK", &bookmark)).await.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tx.closed() => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|bytes| (Ok::<_, crate::BoxError>(hyper::body::Frame::data(bytes)), rx))
    });
    let body = http_body_util::BodyExt::boxed_unsync(http_body_util::StreamBody::new(stream));
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(body)
        .expect("valid response"))
}
