//! A pod's spec as its process sees it: volumes written to a per-pod
//! directory (secrets, config maps, downward API), the environment
//! (literal values, `secretKeyRef`, `configMapKeyRef`, `fieldRef`) and
//! the container port.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::Path;

use base64::Engine as _;
use serde_json::Value;

use crate::kinds;
use crate::pods::NODE;
use crate::store;
use crate::Shared;

/// Writes a pod's volumes into `root`, mirroring the container's mount
/// paths; returns the environment for the mounts (SECRETS_DIR).
pub(crate) fn materialise_volumes(
    shared: &Shared,
    pod: &Value,
    root: &Path,
) -> Result<BTreeMap<String, String>, String> {
    let store = shared.store();
    let ns = store::namespace_of(pod);
    let secrets = kinds::by_plural("secrets");
    let configmaps = kinds::by_plural("configmaps");
    let decode = |s: &Value| {
        base64::engine::general_purpose::STANDARD.decode(s.as_str().unwrap_or_default()).unwrap_or_default()
    };
    // (volume name) -> files (relative path -> bytes)
    let mut volumes: HashMap<String, Vec<(String, Vec<u8>)>> = HashMap::new();
    let project = |source: &Value,
                   kind: &'static kinds::Kind,
                   files: &mut Vec<(String, Vec<u8>)>|
     -> Result<(), String> {
        let name = source["name"].as_str().or(source["secretName"].as_str()).unwrap_or_default();
        let optional = source["optional"] == true;
        let Some(object) = store.get(kind, ns, name) else {
            return if optional { Ok(()) } else { Err(format!("{} \"{name}\" not found", kind.singular)) };
        };
        let mut data: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for (k, v) in object["data"].as_object().into_iter().flatten() {
            data.insert(
                k.clone(),
                if kind.plural == "secrets" { decode(v) } else { v.as_str().unwrap_or_default().as_bytes().to_vec() },
            );
        }
        match source["items"].as_array() {
            Some(items) => {
                for item in items {
                    let key = item["key"].as_str().unwrap_or_default();
                    let path = item["path"].as_str().unwrap_or(key);
                    match data.get(key) {
                        Some(bytes) => files.push((path.to_string(), bytes.clone())),
                        None if optional => {}
                        None => return Err(format!("couldn't find key {key} in {} {ns}/{name}", kind.kind)),
                    }
                }
            }
            None => files.extend(data),
        }
        Ok(())
    };
    for volume in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let name = volume["name"].as_str().unwrap_or_default().to_string();
        let mut files = Vec::new();
        if volume["secret"].is_object() {
            project(&volume["secret"], secrets, &mut files)?;
        } else if volume["configMap"].is_object() {
            project(&volume["configMap"], configmaps, &mut files)?;
        } else if volume["projected"].is_object() {
            for source in volume["projected"]["sources"].as_array().into_iter().flatten() {
                if source["secret"].is_object() {
                    project(&source["secret"], secrets, &mut files)?;
                } else if source["configMap"].is_object() {
                    project(&source["configMap"], configmaps, &mut files)?;
                }
            }
        }
        volumes.insert(name, files);
    }
    drop(store);
    let mut env = BTreeMap::new();
    let container = &pod["spec"]["containers"][0];
    for mount in container["volumeMounts"].as_array().into_iter().flatten() {
        let mount_path = mount["mountPath"].as_str().unwrap_or_default();
        let dir = root.join(mount_path.trim_start_matches('/'));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for (path, bytes) in volumes.get(mount["name"].as_str().unwrap_or_default()).into_iter().flatten() {
            if path.split('/').any(|p| p == "..") {
                continue;
            }
            let file = dir.join(path);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            std::fs::write(&file, bytes).map_err(|e| format!("{}: {e}", file.display()))?;
        }
        if mount_path.trim_end_matches('/') == "/var/openfaas/secrets"
            || mount_path.starts_with("/var/openfaas/secrets/")
        {
            env.insert("SECRETS_DIR".to_string(), root.join("var/openfaas/secrets").display().to_string());
        }
    }
    Ok(env)
}

/// The container's environment (env and envFrom resolved).
pub(crate) fn container_env(shared: &Shared, pod: &Value, ip: Ipv4Addr) -> Result<BTreeMap<String, String>, String> {
    let store = shared.store();
    let ns = store::namespace_of(pod);
    let container = &pod["spec"]["containers"][0];
    let mut env = BTreeMap::new();
    let lookup = |kind: &str, name: &str, key: &str| -> Option<String> {
        let object = store.get(kinds::by_plural(kind), ns, name)?;
        let value = object["data"][key].as_str()?;
        if kind == "secrets" {
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(value).ok()?).ok()
        } else {
            Some(value.to_string())
        }
    };
    for from in container["envFrom"].as_array().into_iter().flatten() {
        let prefix = from["prefix"].as_str().unwrap_or_default();
        for (kind, source) in [("secrets", &from["secretRef"]), ("configmaps", &from["configMapRef"])] {
            if !source.is_object() {
                continue;
            }
            let name = source["name"].as_str().unwrap_or_default();
            match store.get(kinds::by_plural(kind), ns, name) {
                Some(object) => {
                    for (k, _) in object["data"].as_object().into_iter().flatten() {
                        if let Some(v) = lookup(kind, name, k) {
                            env.insert(format!("{prefix}{k}"), v);
                        }
                    }
                }
                None if source["optional"] == true => {}
                None => return Err(format!("{} \"{name}\" not found", kinds::by_plural(kind).singular)),
            }
        }
    }
    for var in container["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().unwrap_or_default().to_string();
        if let Some(value) = var["value"].as_str() {
            env.insert(name, value.to_string());
            continue;
        }
        let from = &var["valueFrom"];
        let value = if from["secretKeyRef"].is_object() || from["configMapKeyRef"].is_object() {
            let (kind, r) = if from["secretKeyRef"].is_object() {
                ("secrets", &from["secretKeyRef"])
            } else {
                ("configmaps", &from["configMapKeyRef"])
            };
            match lookup(kind, r["name"].as_str().unwrap_or_default(), r["key"].as_str().unwrap_or_default()) {
                Some(v) => Some(v),
                None if r["optional"] == true => None,
                None => {
                    return Err(format!(
                        "couldn't find key {} in {} {}",
                        r["key"],
                        kinds::by_plural(kind).kind,
                        r["name"]
                    ))
                }
            }
        } else if from["fieldRef"].is_object() {
            match from["fieldRef"]["fieldPath"].as_str().unwrap_or_default() {
                "status.podIP" | "status.hostIP" => Some(ip.to_string()),
                "spec.nodeName" => Some(NODE.to_string()),
                // The downward API's `metadata.labels['<key>']` and
                // `metadata.annotations['<key>']`.
                path if path.ends_with("']")
                    && (path.starts_with("metadata.labels['") || path.starts_with("metadata.annotations['")) =>
                {
                    let (map, key) = path.trim_end_matches("']").split_once("['").expect("checked");
                    pod["metadata"][map.trim_start_matches("metadata.")][key].as_str().map(String::from)
                }
                path => {
                    let mut v = pod;
                    for p in path.split('.') {
                        v = &v[p];
                    }
                    v.as_str().map(String::from)
                }
            }
        } else {
            Some(String::new())
        };
        if let Some(value) = value {
            env.insert(name, value);
        }
    }
    Ok(env)
}

/// The container port the process listens on (first containerPort, 8080).
pub(crate) fn container_port(pod: &Value) -> u16 {
    pod["spec"]["containers"][0]["ports"][0]["containerPort"].as_u64().map(|p| p as u16).unwrap_or(8080)
}

pub(crate) fn resolve_port(pod: &Value, port: &Value) -> u16 {
    if let Some(n) = port.as_u64() {
        return n as u16;
    }
    let name = port.as_str().unwrap_or_default();
    if let Ok(n) = name.parse() {
        return n;
    }
    pod["spec"]["containers"][0]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .map(|p| p as u16)
        .unwrap_or(0)
}
