//! Deletion: options, finalizers, graceful deletion and propagation.

use super::*;

/// DeleteOptions from the body and the query.
#[derive(Debug, Default, Clone)]
pub(crate) struct DeleteOptions {
    pub(crate) propagation: Option<String>,
    pub(crate) grace: Option<i64>,
    uid: Option<String>,
    resource_version: Option<String>,
}

impl DeleteOptions {
    pub(super) fn parse(body: &[u8], query: &Query) -> Result<DeleteOptions, ApiError> {
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
    pub(super) fn object(&self) -> &Value {
        match self {
            Deleted::Pending(o) | Deleted::Gone(o) => o,
        }
    }
}

pub(super) fn add_finalizer(object: &mut Value, finalizer: &str) {
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
