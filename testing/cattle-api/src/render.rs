//! Resources as the API shows them: fields, `links` and the `actions`
//! valid in the resource's current state.

use serde_json::{json, Map, Value};

use crate::state::{Instance, SecretRecord, Service, Stack, Store};

/// Where links point: the project-scoped base of the API.
#[derive(Debug, Clone)]
pub(crate) struct Urls {
    /// `http://127.0.0.1:<port>/v2-beta/projects/1a5`
    pub(crate) project: String,
}

impl Urls {
    pub(crate) fn resource(&self, plural: &str, id: &str) -> String {
        format!("{}/{plural}/{id}", self.project)
    }

    fn action(&self, plural: &str, id: &str, action: &str) -> String {
        format!("{}/{plural}/{id}/?action={action}", self.project)
    }

    fn actions(&self, plural: &str, id: &str, names: &[&str]) -> Value {
        let map: Map<String, Value> =
            names.iter().map(|n| ((*n).to_owned(), Value::String(self.action(plural, id, n)))).collect();
        Value::Object(map)
    }
}

fn date(d: &chrono::DateTime<chrono::Utc>) -> Value {
    Value::String(d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn common(out: &mut Map<String, Value>, c: &crate::state::Common, kind: &str, base_type: &str) {
    out.insert("id".into(), json!(c.id));
    out.insert("type".into(), json!(kind));
    out.insert("baseType".into(), json!(base_type));
    out.insert("kind".into(), json!(kind));
    out.insert("name".into(), json!(c.name));
    out.insert("uuid".into(), json!(c.uuid));
    out.insert("state".into(), json!(c.state));
    out.insert("accountId".into(), json!("1a5"));
    out.insert("created".into(), date(&c.created));
    out.insert("createdTS".into(), json!(c.created.timestamp_millis()));
    out.insert("removed".into(), c.removed.as_ref().map(date).unwrap_or(Value::Null));
    out.insert("transitioning".into(), json!(c.transitioning()));
    out.insert("transitioningMessage".into(), json!(c.message));
    out.insert("transitioningProgress".into(), Value::Null);
}

/// The actions a service offers in `state`.
pub(crate) fn service_actions(state: &str) -> &'static [&'static str] {
    match state {
        "inactive" => &["activate", "remove"],
        "active" => &["deactivate", "upgrade", "remove"],
        "upgrading" => &["cancelupgrade", "remove"],
        "upgraded" => &["finishupgrade", "rollback", "remove"],
        "canceled-upgrade" => &["continueupgrade", "finishupgrade", "rollback", "remove"],
        "removing" | "removed" => &[],
        _ => &["remove"],
    }
}

pub(crate) fn stack(s: &Stack, store: &Store, urls: &Urls) -> Value {
    let mut out = Map::new();
    common(&mut out, &s.common, "stack", "stack");
    out.insert("description".into(), json!(s.description));
    let ids: Vec<&str> = store
        .services
        .values()
        .filter(|svc| svc.stack_id == s.common.id && svc.common.state != "removed")
        .map(|svc| svc.common.id.as_str())
        .collect();
    out.insert("serviceIds".into(), json!(ids));
    out.insert("healthState".into(), json!("healthy"));
    out.insert("system".into(), json!(false));
    let this = urls.resource("stacks", &s.common.id);
    out.insert("links".into(), json!({ "self": this, "services": format!("{this}/services") }));
    let actions: &[&str] = if matches!(s.common.state.as_str(), "removing" | "removed") { &[] } else { &["remove"] };
    out.insert("actions".into(), urls.actions("stacks", &s.common.id, actions));
    Value::Object(out)
}

/// Whether a launch config publishes the watchdog's port 8080 (`8080`,
/// `8080/tcp`, `9000:8080/tcp` or `ip:9000:8080`).
pub(crate) fn publishes_watchdog(lc: &Map<String, Value>) -> bool {
    lc.get("ports").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).any(|spec| {
        let spec = spec.split('/').next().unwrap_or(spec);
        spec.rsplit(':').next() == Some("8080")
    })
}

/// Instances that are up: serving.
fn is_up(i: &Instance) -> bool {
    i.common.state == "running"
}

pub(crate) fn service(s: &Service, store: &Store, urls: &Urls) -> Value {
    let mut out = Map::new();
    common(&mut out, &s.common, "service", "service");
    out.insert("stackId".into(), json!(s.stack_id));
    out.insert("scale".into(), json!(s.scale));
    out.insert("description".into(), json!(s.description));
    out.insert("metadata".into(), s.metadata.clone().unwrap_or(Value::Null));
    out.insert("startOnCreate".into(), json!(s.start_on_create));
    out.insert("system".into(), json!(false));
    out.insert("vip".into(), Value::Null);
    out.insert("fqdn".into(), Value::Null);
    out.insert("assignServiceIpAddress".into(), json!(false));
    let mut launch_config = s.launch_config.clone();
    launch_config.insert("type".into(), json!("launchConfig"));
    out.insert("launchConfig".into(), Value::Object(launch_config));
    out.insert("secondaryLaunchConfigs".into(), json!([]));
    out.insert("upgrade".into(), s.upgrade.clone().unwrap_or(Value::Null));
    let mut instances: Vec<&Instance> =
        store.instances_of(&s.common.id).filter(|i| i.common.state != "removed").collect();
    instances.sort_by_key(|i| crate::api::numeric(&i.common.id));
    let up: Vec<&&Instance> = instances.iter().filter(|i| is_up(i)).collect();
    out.insert("currentScale".into(), json!(up.len()));
    out.insert("instanceIds".into(), json!(instances.iter().map(|i| i.common.id.as_str()).collect::<Vec<_>>()));
    let endpoints: Vec<Value> = up
        .iter()
        .filter(|i| publishes_watchdog(&i.launch_config))
        .filter_map(|i| {
            i.public_port.map(|port| {
                json!({
                    "type": "publicEndpoint",
                    "ipAddress": "127.0.0.1",
                    "port": port,
                    "hostId": "1h1",
                    "instanceId": i.common.id,
                    "serviceId": s.common.id,
                })
            })
        })
        .collect();
    out.insert("publicEndpoints".into(), json!(endpoints));
    let healthy = up.iter().filter(|i| i.health_state.as_deref().is_none_or(|h| h == "healthy")).count();
    let health = if up.is_empty() {
        "initializing"
    } else if healthy == up.len() {
        "healthy"
    } else {
        "degraded"
    };
    out.insert("healthState".into(), json!(health));
    let this = urls.resource("services", &s.common.id);
    out.insert(
        "links".into(),
        json!({
            "self": this,
            "instances": format!("{this}/instances"),
            "stack": urls.resource("stacks", &s.stack_id),
        }),
    );
    out.insert("actions".into(), urls.actions("services", &s.common.id, service_actions(&s.common.state)));
    Value::Object(out)
}

pub(crate) fn instance(i: &Instance, urls: &Urls) -> Value {
    let mut out = Map::new();
    common(&mut out, &i.common, "container", "instance");
    for key in ["imageUuid", "environment", "labels", "healthCheck", "command", "secrets"] {
        if let Some(value) = i.launch_config.get(key) {
            out.insert(key.into(), value.clone());
        }
    }
    out.insert("primaryIpAddress".into(), json!(i.primary_ip));
    let ports: Vec<String> = match i.public_port {
        Some(port) if i.common.state == "running" && publishes_watchdog(&i.launch_config) => {
            vec![format!("127.0.0.1:{port}:8080/tcp")]
        }
        _ => Vec::new(),
    };
    out.insert("ports".into(), json!(ports));
    out.insert("healthState".into(), json!(i.health_state));
    out.insert("serviceIds".into(), json!([i.service_id]));
    out.insert("hostId".into(), json!("1h1"));
    out.insert("startCount".into(), json!(i.start_count));
    out.insert("firstRunning".into(), i.first_running.as_ref().map(date).unwrap_or(Value::Null));
    out.insert("nativeContainer".into(), json!(false));
    out.insert("system".into(), json!(false));
    out.insert("version".into(), json!(i.version.to_string()));
    let this = urls.resource("containers", &i.common.id);
    out.insert("links".into(), json!({ "self": this, "services": format!("{this}/services") }));
    out.insert("actions".into(), json!({}));
    Value::Object(out)
}

pub(crate) fn secret(s: &SecretRecord, urls: &Urls) -> Value {
    let mut out = Map::new();
    common(&mut out, &s.common, "secret", "secret");
    out.insert("description".into(), json!(s.description));
    // As Rancher does, the value is write-only: never shown.
    out.insert("value".into(), Value::Null);
    out.insert("links".into(), json!({ "self": urls.resource("secrets", &s.common.id) }));
    let actions: &[&str] = if s.common.state == "active" { &["remove"] } else { &[] };
    out.insert("actions".into(), urls.actions("secrets", &s.common.id, actions));
    Value::Object(out)
}
