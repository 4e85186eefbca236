//! The writing verbs: create, update, patch (JSON, merge and strategic merge) and the scale subresource.

use super::*;

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

pub(super) fn apply_patch(kind: &Kind, base: &Value, content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
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

pub(super) fn update_scale(
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
