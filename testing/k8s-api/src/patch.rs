//! The three patch types the API server accepts: JSON merge patch
//! (RFC 7386), strategic merge patch (Kubernetes' merge keys and `$patch`
//! directives) and JSON patch (RFC 6902).

use serde_json::{Map, Value};

/// RFC 7386: objects merge recursively, `null` deletes, anything else
/// replaces.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let map = target.as_object_mut().expect("object");
    for (k, v) in patch {
        if v.is_null() {
            map.remove(k);
        } else {
            merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// The merge key of a list field, as the Kubernetes types declare it
/// (`patchMergeKey`); None: the list is replaced.
fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    Some(match field {
        "containers" | "initContainers" | "ephemeralContainers" | "env" | "volumes" | "imagePullSecrets" => "name",
        "resourceClaims" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ownerReferences" => "uid",
        "conditions" => "type",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "ports" => {
            if items.iter().any(|i| i.get("containerPort").is_some()) {
                "containerPort"
            } else {
                "port"
            }
        }
        _ => return None,
    })
}

/// Primitive lists merged as sets (`patchStrategy: merge`).
fn is_merged_primitive_list(field: &str) -> bool {
    field == "finalizers"
}

/// Strategic merge patch.
pub(crate) fn strategic_merge_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    let Value::Object(patch) = patch else {
        return Err("strategic merge patch must be a JSON object".to_string());
    };
    smp_object(target, patch)
}

fn smp_object(target: &mut Value, patch: &Map<String, Value>) -> Result<(), String> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replaced = patch.clone();
            replaced.remove("$patch");
            *target = Value::Object(replaced);
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Null;
            return Ok(());
        }
        Some(other) if other != "merge" => return Err(format!("unknown patch type: {other}")),
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let retain: Option<Vec<String>> = patch
        .get("$retainKeys")
        .and_then(Value::as_array)
        .map(|keys| keys.iter().filter_map(|k| k.as_str().map(String::from)).collect());
    let map = target.as_object_mut().expect("object");
    for (k, v) in patch {
        if k == "$patch" || k == "$retainKeys" || k.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(remove)) = (map.get_mut(field), v.as_array()) {
                list.retain(|item| !remove.contains(item));
            }
            continue;
        }
        if v.is_null() {
            map.remove(k);
            continue;
        }
        let slot = map.entry(k.clone()).or_insert(Value::Null);
        match v {
            Value::Object(child) => {
                smp_object(slot, child)?;
                if slot.is_null() {
                    map.remove(k);
                }
            }
            Value::Array(items) => smp_list(k, slot, items)?,
            other => *slot = other.clone(),
        }
    }
    if let Some(retain) = retain {
        map.retain(|k, _| retain.contains(k));
    }
    Ok(())
}

fn smp_list(field: &str, slot: &mut Value, items: &[Value]) -> Result<(), String> {
    if items.iter().any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace")) {
        *slot = Value::Array(
            items.iter().filter(|i| i.get("$patch").and_then(Value::as_str) != Some("replace")).cloned().collect(),
        );
        return Ok(());
    }
    if is_merged_primitive_list(field) {
        let mut list = slot.as_array().cloned().unwrap_or_default();
        for item in items {
            if !list.contains(item) {
                list.push(item.clone());
            }
        }
        *slot = Value::Array(list);
        return Ok(());
    }
    let Some(key) = merge_key(field, items) else {
        *slot = Value::Array(items.to_vec());
        return Ok(());
    };
    let mut list = slot.as_array().cloned().unwrap_or_default();
    for item in items {
        let Some(item_map) = item.as_object() else {
            return Err(format!("{field}: list items must be objects with the merge key {key}"));
        };
        let id = item_map.get(key).ok_or_else(|| format!("map: {item} does not contain declared merge key: {key}"))?;
        let position = list.iter().position(|existing| existing.get(key) == Some(id));
        if item_map.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(p) = position {
                list.remove(p);
            }
            continue;
        }
        match position {
            Some(p) => smp_object(&mut list[p], item_map)?,
            None => {
                let mut fresh = Value::Object(Map::new());
                smp_object(&mut fresh, item_map)?;
                list.push(fresh);
            }
        }
    }
    *slot = Value::Array(list);
    Ok(())
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn pointer_parent<'a>(doc: &'a mut Value, path: &str) -> Result<(&'a mut Value, String), String> {
    if path.is_empty() {
        return Err("the root cannot be the target here".to_string());
    }
    let (parent, last) = path.rsplit_once('/').ok_or_else(|| format!("invalid JSON pointer {path:?}"))?;
    let target = doc.pointer_mut(parent).ok_or_else(|| format!("doc is missing path: {path:?}"))?;
    Ok((target, unescape(last)))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = pointer_parent(doc, path)?;
    match parent {
        Value::Object(map) => {
            map.insert(last, value);
            Ok(())
        }
        Value::Array(list) => {
            let index =
                if last == "-" { list.len() } else { last.parse().map_err(|_| format!("invalid index {last:?}"))? };
            if index > list.len() {
                return Err(format!("index {index} out of bounds"));
            }
            list.insert(index, value);
            Ok(())
        }
        _ => Err(format!("doc is missing path: {path:?}")),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = pointer_parent(doc, path)?;
    match parent {
        Value::Object(map) => map.remove(&last).ok_or_else(|| format!("doc is missing path: {path:?}")),
        Value::Array(list) => {
            let index: usize = last.parse().map_err(|_| format!("invalid index {last:?}"))?;
            if index >= list.len() {
                return Err(format!("index {index} out of bounds"));
            }
            Ok(list.remove(index))
        }
        _ => Err(format!("doc is missing path: {path:?}")),
    }
}

/// RFC 6902 JSON patch.
pub(crate) fn json_patch(doc: &mut Value, patch: &Value) -> Result<(), String> {
    let ops = patch.as_array().ok_or("a JSON patch must be an array of operations")?;
    for op in ops {
        let path = op["path"].as_str().ok_or("missing path")?;
        match op["op"].as_str().unwrap_or_default() {
            "add" => add(doc, path, op.get("value").cloned().ok_or("missing value")?)?,
            "remove" => {
                remove(doc, path)?;
            }
            "replace" => {
                let value = op.get("value").cloned().ok_or("missing value")?;
                let slot = doc.pointer_mut(path).ok_or_else(|| format!("doc is missing path: {path:?}"))?;
                *slot = value;
            }
            "move" => {
                let from = op["from"].as_str().ok_or("missing from")?;
                let value = remove(doc, from)?;
                add(doc, path, value)?;
            }
            "copy" => {
                let from = op["from"].as_str().ok_or("missing from")?;
                let value = doc.pointer(from).cloned().ok_or_else(|| format!("doc is missing path: {from:?}"))?;
                add(doc, path, value)?;
            }
            "test" => {
                let expected = op.get("value").ok_or("missing value")?;
                if doc.pointer(path) != Some(expected) {
                    return Err(format!("testing value {path} failed"));
                }
            }
            other => return Err(format!("Unexpected kind: {other}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_patch_merges_containers_and_env_by_name() {
        let mut doc = json!({"spec": {"containers": [
            {"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "b", "image": "y"}]}});
        let patch = json!({"spec": {"containers": [
            {"name": "a", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}, {"name": "A", "$patch": "delete"}]}]}});
        strategic_merge_patch(&mut doc, &patch).unwrap();
        assert_eq!(
            doc,
            json!({"spec": {"containers": [
                {"name": "a", "image": "x", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]},
                {"name": "b", "image": "y"}]}})
        );
    }

    #[test]
    fn merge_patch_replaces_lists_and_deletes_nulls() {
        let mut doc = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge_patch(&mut doc, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(doc, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn json_patch_operations() {
        let mut doc = json!({"a": [1, 2], "b": {"c": 1}});
        json_patch(
            &mut doc,
            &json!([{"op": "add", "path": "/a/-", "value": 3}, {"op": "replace", "path": "/b/c", "value": 2},
                    {"op": "test", "path": "/b/c", "value": 2}, {"op": "remove", "path": "/a/0"}]),
        )
        .unwrap();
        assert_eq!(doc, json!({"a": [2, 3], "b": {"c": 2}}));
        assert!(json_patch(&mut doc, &json!([{"op": "test", "path": "/b/c", "value": 9}])).is_err());
    }
}
