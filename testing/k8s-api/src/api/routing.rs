//! Routing: which kind, namespace, name and subresource a path names, discovery documents, and the RBAC verb a request needs.

use super::*;

pub(super) enum Route {
    Discovery(Value),
    Text(&'static str),
    Resource(Target),
}

pub(super) fn discovery_resources(group: &str, version: &str) -> Value {
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

pub(super) fn route(shared: &Shared, path: &str) -> Option<Route> {
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
pub(super) fn rbac(method: &Method, target: &Target, query: &Query) -> (&'static str, String) {
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
pub(super) fn proxy_verb(method: &Method) -> &'static str {
    match method.as_str() {
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => "get",
    }
}
