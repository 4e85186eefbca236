//! Defaulting and validation of objects, as the API server does before it
//! stores them: DNS-1123 names, label syntax, required fields, the
//! Deployment selector matching its template, immutable fields.

use serde_json::{json, Value};

use crate::kinds::Kind;
use crate::selectors::LabelSelector;
use crate::status::Cause;

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Dot-separated DNS labels, at most 253 characters.
pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn is_dns1035_label(s: &str) -> bool {
    is_dns_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

/// The name part of a qualified name (label keys):
/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, at most 63 characters.
pub(crate) fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !s.is_empty()
        && s.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A label value: empty, or a qualified name part.
pub(crate) fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_qualified_name_part(s)
}

fn is_qualified_name(s: &str) -> bool {
    match s.rsplit_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_qualified_name_part(name),
        None => is_qualified_name_part(s),
    }
}

/// Fills the defaults the API server sets on create (and on update).
pub(crate) fn default_object(kind: &Kind, object: &mut Value) {
    match kind.plural {
        "namespaces" => {
            let name = object["metadata"]["name"].clone();
            if !object["metadata"]["labels"].is_object() {
                object["metadata"]["labels"] = json!({});
            }
            object["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
            if object["spec"]["finalizers"].is_null() {
                object["spec"]["finalizers"] = json!(["kubernetes"]);
            }
        }
        "secrets" if object["type"].is_null() => object["type"] = json!("Opaque"),
        "services" => {
            let spec = &mut object["spec"];
            if spec["type"].is_null() {
                spec["type"] = json!("ClusterIP");
            }
            if spec["sessionAffinity"].is_null() {
                spec["sessionAffinity"] = json!("None");
            }
            if spec["internalTrafficPolicy"].is_null() {
                spec["internalTrafficPolicy"] = json!("Cluster");
            }
            for port in spec["ports"].as_array_mut().into_iter().flatten() {
                if port["protocol"].is_null() {
                    port["protocol"] = json!("TCP");
                }
                if port["targetPort"].is_null() {
                    port["targetPort"] = port["port"].clone();
                }
            }
        }
        "pods" => default_pod_spec(&mut object["spec"]),
        "deployments" => {
            let spec = &mut object["spec"];
            if spec["replicas"].is_null() {
                spec["replicas"] = json!(1);
            }
            if spec["revisionHistoryLimit"].is_null() {
                spec["revisionHistoryLimit"] = json!(10);
            }
            if spec["progressDeadlineSeconds"].is_null() {
                spec["progressDeadlineSeconds"] = json!(600);
            }
            if spec["strategy"]["type"].is_null() {
                spec["strategy"]["type"] = json!("RollingUpdate");
            }
            if spec["strategy"]["type"] == "RollingUpdate" {
                let rolling = &mut spec["strategy"]["rollingUpdate"];
                if rolling["maxUnavailable"].is_null() {
                    rolling["maxUnavailable"] = json!("25%");
                }
                if rolling["maxSurge"].is_null() {
                    rolling["maxSurge"] = json!("25%");
                }
            }
            if spec["template"].is_object() {
                default_pod_spec(&mut spec["template"]["spec"]);
            }
        }
        _ => {}
    }
}

fn default_probe(probe: &mut Value) {
    if !probe.is_object() {
        return;
    }
    for (field, value) in
        [("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3)]
    {
        if probe[field].is_null() {
            probe[field] = json!(value);
        }
    }
    if probe["httpGet"].is_object() && probe["httpGet"]["scheme"].is_null() {
        probe["httpGet"]["scheme"] = json!("HTTP");
    }
}

fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    for (field, value) in [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("securityContext", json!({})),
    ] {
        if spec[field].is_null() {
            spec[field] = value;
        }
    }
    for container in spec["containers"].as_array_mut().into_iter().flatten() {
        if container["terminationMessagePath"].is_null() {
            container["terminationMessagePath"] = json!("/dev/termination-log");
        }
        if container["terminationMessagePolicy"].is_null() {
            container["terminationMessagePolicy"] = json!("File");
        }
        if container["imagePullPolicy"].is_null() {
            let image = container["image"].as_str().unwrap_or_default();
            let tag = image.rsplit('/').next().unwrap_or_default();
            let latest = !tag.contains(':') || tag.ends_with(":latest");
            container["imagePullPolicy"] = json!(if latest { "Always" } else { "IfNotPresent" });
        }
        for port in container["ports"].as_array_mut().into_iter().flatten() {
            if port["protocol"].is_null() {
                port["protocol"] = json!("TCP");
            }
        }
        default_probe(&mut container["readinessProbe"]);
        default_probe(&mut container["livenessProbe"]);
        default_probe(&mut container["startupProbe"]);
    }
    for volume in spec["volumes"].as_array_mut().into_iter().flatten() {
        if volume["secret"].is_object() && volume["secret"]["defaultMode"].is_null() {
            volume["secret"]["defaultMode"] = json!(420);
        }
        if volume["projected"].is_object() && volume["projected"]["defaultMode"].is_null() {
            volume["projected"]["defaultMode"] = json!(420);
        }
    }
}

/// Validates metadata: the name and the labels/annotations keys and values.
fn validate_meta(kind: &Kind, object: &Value, causes: &mut Vec<Cause>) {
    let name_value = &object["metadata"]["name"];
    let name = name_value.as_str().unwrap_or_default();
    if name.is_empty() {
        causes.push(Cause::required("metadata.name", "name or generateName is required"));
    } else {
        let (ok, msg) = match kind.plural {
            "namespaces" => (is_dns_label(name), DNS1123_LABEL_MSG),
            "services" => (is_dns1035_label(name), DNS1035_LABEL_MSG),
            _ => (is_dns_subdomain(name), DNS1123_SUBDOMAIN_MSG),
        };
        if !ok {
            causes.push(Cause::invalid("metadata.name", name_value, msg));
        }
    }
    validate_labels(&object["metadata"]["labels"], "metadata.labels", causes);
    for (key, _) in object["metadata"]["annotations"].as_object().into_iter().flatten() {
        if !is_qualified_name(key) {
            causes.push(Cause::invalid("metadata.annotations", &json!(key), "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"));
        }
    }
}

fn validate_labels(labels: &Value, field: &str, causes: &mut Vec<Cause>) {
    for (key, value) in labels.as_object().into_iter().flatten() {
        if !is_qualified_name(key) {
            causes.push(Cause::invalid(field, &json!(key), "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"));
        }
        match value.as_str() {
            Some(v) if is_label_value(v) => {}
            _ => causes.push(Cause::invalid(field, value, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")),
        }
    }
}

fn validate_port(value: &Value, field: String, causes: &mut Vec<Cause>) {
    match value.as_i64() {
        Some(p) if (1..=65535).contains(&p) => {}
        _ => causes.push(Cause::invalid(field, value, "must be between 1 and 65535, inclusive")),
    }
}

fn validate_pod_spec(spec: &Value, path: &str, causes: &mut Vec<Cause>) {
    let volumes: Vec<&str> =
        spec["volumes"].as_array().into_iter().flatten().filter_map(|v| v["name"].as_str()).collect();
    for (i, v) in volumes.iter().enumerate() {
        if volumes[..i].contains(v) {
            causes.push(Cause::duplicate(format!("{path}.volumes[{i}].name"), &json!(v)));
        }
    }
    let containers = spec["containers"].as_array().filter(|c| !c.is_empty());
    let Some(containers) = containers else {
        causes.push(Cause::required(format!("{path}.containers"), ""));
        return;
    };
    let mut names = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let field = format!("{path}.containers[{i}]");
        match c["name"].as_str() {
            None | Some("") => causes.push(Cause::required(format!("{field}.name"), "")),
            Some(n) if !is_dns_label(n) => {
                causes.push(Cause::invalid(format!("{field}.name"), &c["name"], DNS1123_LABEL_MSG))
            }
            Some(n) if names.contains(&n) => causes.push(Cause::duplicate(format!("{field}.name"), &c["name"])),
            Some(n) => names.push(n),
        }
        if c["image"].as_str().unwrap_or_default().trim().is_empty() {
            causes.push(Cause::required(format!("{field}.image"), ""));
        }
        for (j, port) in c["ports"].as_array().into_iter().flatten().enumerate() {
            validate_port(&port["containerPort"], format!("{field}.ports[{j}].containerPort"), causes);
        }
        for (j, env) in c["env"].as_array().into_iter().flatten().enumerate() {
            match env["name"].as_str() {
                None | Some("") => causes.push(Cause::required(format!("{field}.env[{j}].name"), "")),
                Some(n) if n.contains('=') => causes.push(Cause::invalid(
                    format!("{field}.env[{j}].name"),
                    &env["name"],
                    "a valid environment variable name must consist only of printable ASCII characters other than '='",
                )),
                _ => {}
            }
        }
        for (j, mount) in c["volumeMounts"].as_array().into_iter().flatten().enumerate() {
            let name = mount["name"].as_str().unwrap_or_default();
            if !volumes.contains(&name) {
                causes.push(Cause {
                    reason: "FieldValueNotFound",
                    field: format!("{field}.volumeMounts[{j}].name"),
                    message: format!("Not found: {:?}", name),
                });
            }
            if mount["mountPath"].as_str().unwrap_or_default().is_empty() {
                causes.push(Cause::required(format!("{field}.volumeMounts[{j}].mountPath"), ""));
            }
        }
    }
    let policy = &spec["restartPolicy"];
    if !matches!(policy.as_str(), Some("Always" | "OnFailure" | "Never")) {
        causes.push(Cause::not_supported(format!("{path}.restartPolicy"), policy, &["Always", "OnFailure", "Never"]));
    }
}

/// Resolves an int-or-percent against a total (`round_up` for maxSurge).
pub(crate) fn int_or_percent(value: &Value, total: i64, round_up: bool) -> Option<i64> {
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    let pct: f64 = value.as_str()?.strip_suffix('%')?.parse().ok()?;
    let exact = pct * total as f64 / 100.0;
    Some(if round_up { exact.ceil() } else { exact.floor() } as i64)
}

fn validate_deployment(object: &Value, causes: &mut Vec<Cause>) {
    let spec = &object["spec"];
    if let Some(r) = spec["replicas"].as_i64() {
        if r < 0 {
            causes.push(Cause::invalid("spec.replicas", &spec["replicas"], "must be greater than or equal to 0"));
        }
    } else if !spec["replicas"].is_null() {
        causes.push(Cause::invalid("spec.replicas", &spec["replicas"], "must be an integer"));
    }
    let selector = &spec["selector"];
    let parsed = LabelSelector::from_object(selector);
    if selector.is_null() {
        causes.push(Cause::required("spec.selector", ""));
    } else if parsed.is_empty() {
        causes.push(Cause::invalid("spec.selector", selector, "empty selector is invalid for deployment"));
    }
    validate_labels(&selector["matchLabels"], "spec.selector.matchLabels", causes);
    let template_labels = &spec["template"]["metadata"]["labels"];
    if !parsed.is_empty() && !parsed.matches(template_labels) {
        causes.push(Cause::invalid(
            "spec.template.metadata.labels",
            template_labels,
            "`selector` does not match template `labels`",
        ));
    }
    validate_labels(template_labels, "spec.template.metadata.labels", causes);
    if spec["template"].is_null() {
        causes.push(Cause::required("spec.template", ""));
    } else {
        validate_pod_spec(&spec["template"]["spec"], "spec.template.spec", causes);
        let policy = &spec["template"]["spec"]["restartPolicy"];
        if policy.as_str() != Some("Always") {
            causes.push(Cause::not_supported("spec.template.spec.restartPolicy", policy, &["Always"]));
        }
    }
    let strategy = &spec["strategy"];
    match strategy["type"].as_str() {
        Some("Recreate") => {
            if !strategy["rollingUpdate"].is_null() {
                causes.push(Cause::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        Some("RollingUpdate") => {
            let rolling = &strategy["rollingUpdate"];
            let surge = int_or_percent(&rolling["maxSurge"], 100, true);
            let unavailable = int_or_percent(&rolling["maxUnavailable"], 100, false);
            for (field, v) in [("maxSurge", surge), ("maxUnavailable", unavailable)] {
                match v {
                    None => causes.push(Cause::invalid(
                        format!("spec.strategy.rollingUpdate.{field}"),
                        &rolling[field],
                        "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                    )),
                    Some(n) if n < 0 => causes.push(Cause::invalid(
                        format!("spec.strategy.rollingUpdate.{field}"),
                        &rolling[field],
                        "must be greater than or equal to 0",
                    )),
                    _ => {}
                }
            }
            if surge == Some(0) && unavailable == Some(0) {
                causes.push(Cause::invalid(
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    &rolling["maxUnavailable"],
                    "may not be 0 when `maxSurge` is 0",
                ));
            }
        }
        _ => causes.push(Cause::not_supported("spec.strategy.type", &strategy["type"], &["Recreate", "RollingUpdate"])),
    }
}

fn validate_service(object: &Value, causes: &mut Vec<Cause>) {
    let spec = &object["spec"];
    let kind = spec["type"].as_str().unwrap_or("ClusterIP");
    if !matches!(kind, "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName") {
        causes.push(Cause::not_supported(
            "spec.type",
            &spec["type"],
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ));
    }
    let ports = spec["ports"].as_array().cloned().unwrap_or_default();
    let headless = spec["clusterIP"].as_str() == Some("None");
    if ports.is_empty() && kind != "ExternalName" && !headless {
        causes.push(Cause::required("spec.ports", ""));
    }
    let mut names = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        validate_port(&port["port"], format!("spec.ports[{i}].port"), causes);
        let name = port["name"].as_str().unwrap_or_default();
        if ports.len() > 1 && name.is_empty() {
            causes.push(Cause::required(format!("spec.ports[{i}].name"), ""));
        } else if !name.is_empty() && !is_dns_label(name) {
            causes.push(Cause::invalid(format!("spec.ports[{i}].name"), &port["name"], DNS1123_LABEL_MSG));
        } else if names.contains(&name) && !name.is_empty() {
            causes.push(Cause::duplicate(format!("spec.ports[{i}].name"), &port["name"]));
        }
        names.push(name);
        let target = &port["targetPort"];
        if target.is_i64() {
            validate_port(target, format!("spec.ports[{i}].targetPort"), causes);
        }
        let protocol = &port["protocol"];
        if !matches!(protocol.as_str(), Some("TCP" | "UDP" | "SCTP")) {
            causes.push(Cause::not_supported(format!("spec.ports[{i}].protocol"), protocol, &["SCTP", "TCP", "UDP"]));
        }
    }
    if let Some(selector) = spec["selector"].as_object() {
        validate_labels(&Value::Object(selector.clone()), "spec.selector", causes);
    }
}

fn validate_secret(object: &Value, causes: &mut Vec<Cause>) {
    let mut total = 0;
    for (key, value) in object["data"].as_object().into_iter().flatten() {
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
            causes.push(Cause::invalid(format!("data[{key}]"), &json!(key), "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"));
        }
        total += value.as_str().map(str::len).unwrap_or_default() * 3 / 4;
    }
    if total > 1024 * 1024 {
        causes.push(Cause::forbidden("data", "Too long: must have at most 1048576 bytes"));
    }
}

/// Validates an object about to be stored (`old`: the stored version on
/// update).
pub(crate) fn validate(kind: &Kind, object: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    validate_meta(kind, object, &mut causes);
    match kind.plural {
        "deployments" => validate_deployment(object, &mut causes),
        "services" => validate_service(object, &mut causes),
        "secrets" => validate_secret(object, &mut causes),
        "configmaps" => {}
        "pods" => validate_pod_spec(&object["spec"], "spec", &mut causes),
        "endpointslices" => {
            let t = &object["addressType"];
            if !matches!(t.as_str(), Some("IPv4" | "IPv6" | "FQDN")) {
                causes.push(Cause::not_supported("addressType", t, &["FQDN", "IPv4", "IPv6"]));
            }
        }
        _ => {}
    }
    if let Some(old) = old {
        match kind.plural {
            "deployments" if object["spec"]["selector"] != old["spec"]["selector"] => {
                causes.push(Cause::immutable("spec.selector", &object["spec"]["selector"]));
            }
            "services" if object["spec"]["clusterIP"] != old["spec"]["clusterIP"] => {
                causes.push(Cause::immutable("spec.clusterIP", &object["spec"]["clusterIP"]));
            }
            "secrets" if object["type"] != old["type"] => causes.push(Cause::immutable("type", &object["type"])),
            "secrets" | "configmaps" if old["immutable"] == true && object["data"] != old["data"] => {
                causes.push(Cause::forbidden("data", "field is immutable when `immutable` is set"));
            }
            "pods" => {
                let mut a = object["spec"].clone();
                let mut b = old["spec"].clone();
                for s in [&mut a, &mut b] {
                    if let Some(m) = s.as_object_mut() {
                        m.remove("activeDeadlineSeconds");
                        m.remove("tolerations");
                    }
                    for c in s["containers"].as_array_mut().into_iter().flatten() {
                        if let Some(m) = c.as_object_mut() {
                            m.remove("image");
                        }
                    }
                }
                if a != b {
                    causes.push(Cause::forbidden("spec", "pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations)"));
                }
            }
            _ => {}
        }
    }
    causes
}
