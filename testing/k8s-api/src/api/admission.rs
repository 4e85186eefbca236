//! Admission before a write: type meta and namespace checks, generated names, ResourceQuota accounting, Secret stringData and Service cluster IPs.

use super::*;

/// Removes apiVersion and kind, as list items omit them.
pub(super) fn strip_type_meta(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("apiVersion");
        map.remove("kind");
    }
    object
}

pub(super) fn check_type_meta(kind: &Kind, object: &mut Value) -> Result<(), ApiError> {
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

pub(super) fn check_namespace(kind: &Kind, object: &mut Value, namespace: Option<&str>) -> Result<(), ApiError> {
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

pub(super) fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes.iter().take(len).map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

/// The objects a ResourceQuota's `spec.hard` key counts, for a kind.
pub(super) fn quota_keys(kind: &Kind) -> &'static [&'static str] {
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

pub(super) fn parse_quantity(value: &Value) -> Option<u64> {
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

pub(super) fn check_quota(store: &Store, kind: &Kind, namespace: &str, name: &str) -> Result<(), ApiError> {
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

pub(super) fn merge_string_data(kind: &Kind, object: &mut Value) -> Result<(), ApiError> {
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
pub(super) fn allocate_cluster_ip(store: &mut Store) -> String {
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
