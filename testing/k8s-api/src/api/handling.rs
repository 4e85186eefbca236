//! Handling one request: authorisation, body reading and decoding, and dispatch to the verbs.

use super::*;

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

pub(super) async fn read_body(body: Incoming) -> Result<Bytes, ApiError> {
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

pub(super) fn parse_json(kind: &Kind, content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
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

pub(super) fn dispatch(
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
