//! Functions as Cattle services: the launch config a deployment becomes,
//! and the status a service reads back as.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use faas_core::{FunctionDeployment, FunctionResources, FunctionStatus, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

use crate::config::{CattleConfig, Routing};

/// The label naming the function a service runs (faas-core's
/// [`faas_core::FUNCTION_LABEL`], reported among the function's labels);
/// services without it are not functions and are left alone.
pub const FUNCTION_LABEL: &str = faas_core::FUNCTION_LABEL;
/// Annotations are kept as launch config labels under this prefix.
pub const ANNOTATION_PREFIX: &str = "faas.annotation/";
/// Rancher's host-label scheduling rule, where constraints go.
pub const AFFINITY_LABEL: &str = "io.rancher.scheduler.affinity:host_label";
/// The environment variable holding the watchdog's process.
const FPROCESS: &str = "fprocess";

fn null_default<'de, D: Deserializer<'de>, T: Default + DeserializeOwned>(d: D) -> std::result::Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The fields of a resource every operation looks at.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Resource {
    #[serde(deserialize_with = "null_default")]
    pub(crate) id: String,
    #[serde(deserialize_with = "null_default")]
    pub(crate) name: String,
    #[serde(deserialize_with = "null_default")]
    pub(crate) state: String,
    #[serde(deserialize_with = "null_default")]
    pub(crate) transitioning_message: String,
    #[serde(deserialize_with = "null_default")]
    pub(crate) links: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_default")]
    pub(crate) actions: BTreeMap<String, String>,
}

impl Resource {
    /// Gone or going: removed resources stay visible for a while.
    pub(crate) fn is_removed(&self) -> bool {
        matches!(self.state.as_str(), "removing" | "removed" | "purging" | "purged")
    }

    pub(crate) fn self_link(&self) -> Option<&str> {
        self.links.get("self").map(String::as_str)
    }
}

/// A service.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Service {
    #[serde(flatten)]
    pub(crate) resource: Resource,
    #[serde(deserialize_with = "null_default")]
    pub(crate) stack_id: String,
    #[serde(deserialize_with = "null_default")]
    pub(crate) scale: u64,
    #[serde(deserialize_with = "null_default")]
    pub(crate) launch_config: LaunchConfig,
    pub(crate) created: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "null_default")]
    pub(crate) public_endpoints: Vec<PublicEndpoint>,
}

impl Service {
    /// The function this service runs, if it is one.
    pub(crate) fn function(&self) -> Option<&str> {
        self.launch_config.labels.get(FUNCTION_LABEL).map(String::as_str)
    }
}

/// A published port of one instance.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct PublicEndpoint {
    #[serde(deserialize_with = "null_default")]
    pub(crate) ip_address: String,
    #[serde(deserialize_with = "null_default")]
    pub(crate) instance_id: String,
    pub(crate) port: Option<u16>,
}

/// The launch config fields the provider reads back.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct LaunchConfig {
    #[serde(deserialize_with = "null_default")]
    pub(crate) image_uuid: String,
    #[serde(deserialize_with = "null_default")]
    pub(crate) environment: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_default")]
    pub(crate) labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_default")]
    pub(crate) secrets: Vec<SecretReference>,
    pub(crate) memory: Option<u64>,
    pub(crate) memory_reservation: Option<u64>,
    pub(crate) milli_cpu_reservation: Option<u64>,
    pub(crate) cpu_quota: Option<u64>,
    pub(crate) cpu_period: Option<u64>,
    #[serde(deserialize_with = "null_default")]
    pub(crate) read_only: bool,
}

/// A secret mounted into a service's containers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct SecretReference {
    #[serde(deserialize_with = "null_default")]
    pub(crate) secret_id: String,
    #[serde(deserialize_with = "null_default")]
    pub(crate) name: String,
}

/// An instance (container) of a service.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Instance {
    #[serde(flatten)]
    pub(crate) resource: Resource,
    pub(crate) health_state: Option<String>,
}

impl Instance {
    /// Running and healthy (or without a health check).
    pub(crate) fn available(&self) -> bool {
        self.resource.state == "running" && self.health_state.as_deref().is_none_or(|h| h == "healthy")
    }
}

/// Decodes a resource, naming what was expected on failure.
pub(crate) fn decode<T: DeserializeOwned>(value: Value, what: &str) -> std::result::Result<T, faas_core::Error> {
    serde_json::from_value(value).map_err(|e| {
        faas_core::Error::backend(
            crate::error::PROVIDER,
            format!("Rancher sent a {what} this provider cannot read"),
            Some(Box::new(e) as faas_core::BoxError),
        )
    })
}

/// Constraints as Rancher host labels: `key=value`, `key==value` or
/// Swarm's `node.labels.key==value`.
fn constraint(text: &str) -> Option<String> {
    let text = text.trim();
    let (key, value) = text.split_once("==").or_else(|| text.split_once('='))?;
    let key = key.trim().trim_start_matches("node.labels.");
    let value = value.trim();
    let ok = |s: &str| !s.is_empty() && !s.contains([',', '=', ' ']);
    (ok(key) && ok(value)).then(|| format!("{key}={value}"))
}

/// The launch config that runs `deployment`: image `docker:<image>`,
/// `fprocess` and the env vars in the environment, labels (the function
/// label, the user's, annotations under [`ANNOTATION_PREFIX`],
/// constraints as host-label affinity), the watchdog health check,
/// resources, secret references (resolved to ids by `secret_ids`) and,
/// when calls go through public endpoints, the published port 8080.
pub(crate) fn launch_config(
    deployment: &FunctionDeployment,
    config: &CattleConfig,
    secret_ids: &BTreeMap<String, String>,
) -> Result<Value> {
    let mut environment: BTreeMap<String, String> = deployment.env_vars.clone();
    if !deployment.env_process.is_empty() {
        environment.insert(FPROCESS.to_owned(), deployment.env_process.clone());
    }
    let mut labels: BTreeMap<String, String> = deployment.labels_with_function();
    for (key, value) in deployment.annotations.iter().flatten() {
        labels.insert(format!("{ANNOTATION_PREFIX}{key}"), value.clone());
    }
    let mut affinity = Vec::new();
    for text in &deployment.constraints {
        let rule = constraint(text).ok_or_else(|| {
            faas_core::Error::invalid(
                "constraints",
                format!("{text:?} is not a host label constraint (key=value or node.labels.key==value)"),
            )
        })?;
        affinity.push(rule);
    }
    if !affinity.is_empty() {
        labels.insert(AFFINITY_LABEL.to_owned(), affinity.join(","));
    }
    let hc = &config.health_check;
    let mut lc = json!({
        "type": "launchConfig",
        "imageUuid": format!("docker:{}", deployment.image),
        "environment": environment,
        "labels": labels,
        "startOnCreate": true,
        "readOnly": deployment.read_only_root_filesystem,
        "healthCheck": {
            "type": "instanceHealthCheck",
            "port": 8080,
            "requestLine": "GET /_/health HTTP/1.0",
            "interval": hc.interval.as_millis() as u64,
            "responseTimeout": hc.response_timeout.as_millis() as u64,
            "healthyThreshold": hc.healthy_threshold,
            "unhealthyThreshold": hc.unhealthy_threshold,
            "initializingTimeout": hc.initializing_timeout.as_millis() as u64,
            "strategy": "recreate",
        },
    });
    let map = lc.as_object_mut().expect("built as an object");
    if config.routing == Routing::PublicEndpoints {
        map.insert("ports".into(), json!(["8080/tcp"]));
    }
    let quantity = faas_core::validate::quantity_value;
    let bytes = |field: &str, q: &str| quantity(field, q).map(|n| n.round() as u64);
    if let Some(limits) = &deployment.limits {
        if !limits.memory.is_empty() {
            map.insert("memory".into(), json!(bytes("limits.memory", &limits.memory)?));
        }
        if !limits.cpu.is_empty() {
            let cores = quantity("limits.cpu", &limits.cpu)?;
            map.insert("cpuPeriod".into(), json!(100_000));
            map.insert("cpuQuota".into(), json!((cores * 100_000.0).round() as u64));
        }
    }
    if let Some(requests) = &deployment.requests {
        if !requests.memory.is_empty() {
            map.insert("memoryReservation".into(), json!(bytes("requests.memory", &requests.memory)?));
        }
        if !requests.cpu.is_empty() {
            let cores = quantity("requests.cpu", &requests.cpu)?;
            map.insert("milliCpuReservation".into(), json!((cores * 1000.0).round() as u64));
        }
    }
    if !deployment.secrets.is_empty() {
        let references: Vec<Value> = deployment
            .secrets
            .iter()
            .map(|name| {
                json!({
                    "type": "secretReference",
                    "secretId": secret_ids.get(name).cloned().unwrap_or_default(),
                    "name": name,
                    "uid": "0",
                    "gid": "0",
                    "mode": "444",
                })
            })
            .collect();
        map.insert("secrets".into(), Value::Array(references));
    }
    Ok(lc)
}

/// The status a service reads back as; `available` counts its running,
/// healthy instances.
pub(crate) fn status(service: &Service, namespace: &str, available: u64) -> FunctionStatus {
    let lc = &service.launch_config;
    let mut env_vars = lc.environment.clone();
    let env_process = env_vars.remove(FPROCESS).unwrap_or_default();
    let mut labels = BTreeMap::new();
    let mut annotations = BTreeMap::new();
    let mut constraints = Vec::new();
    for (key, value) in &lc.labels {
        if let Some(annotation) = key.strip_prefix(ANNOTATION_PREFIX) {
            annotations.insert(annotation.to_owned(), value.clone());
        } else if key == AFFINITY_LABEL {
            constraints.extend(value.split(',').filter(|c| !c.is_empty()).map(str::to_owned));
        } else if !key.starts_with("io.rancher.") {
            labels.insert(key.clone(), value.clone());
        }
    }
    let limits = FunctionResources {
        memory: lc.memory.map(|m| m.to_string()).unwrap_or_default(),
        cpu: match (lc.cpu_quota, lc.cpu_period) {
            (Some(quota), Some(period)) if period > 0 => format!("{}m", quota * 1000 / period),
            _ => String::new(),
        },
    };
    let requests = FunctionResources {
        memory: lc.memory_reservation.map(|m| m.to_string()).unwrap_or_default(),
        cpu: lc.milli_cpu_reservation.map(|m| format!("{m}m")).unwrap_or_default(),
    };
    let some = |r: FunctionResources| (r != FunctionResources::default()).then_some(r);
    FunctionStatus {
        name: service.function().unwrap_or(&service.resource.name).to_owned(),
        image: lc.image_uuid.strip_prefix("docker:").unwrap_or(&lc.image_uuid).to_owned(),
        namespace: namespace.to_owned(),
        env_process,
        env_vars,
        constraints,
        secrets: lc.secrets.iter().map(|s| s.name.clone()).collect(),
        labels: Some(labels),
        annotations: Some(annotations),
        limits: some(limits),
        requests: some(requests),
        read_only_root_filesystem: lc.read_only,
        replicas: service.scale,
        available_replicas: available,
        created_at: service.created,
        ..FunctionStatus::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> FunctionDeployment {
        FunctionDeployment {
            service: "figlet".into(),
            image: "functions/figlet:latest".into(),
            env_process: "figlet -f small".into(),
            env_vars: BTreeMap::from([("A".into(), "1".into())]),
            labels: Some(BTreeMap::from([("team".into(), "blue".into())])),
            annotations: Some(BTreeMap::from([("example.com/note".into(), "hi".into())])),
            constraints: vec!["node.labels.zone == east".into()],
            limits: Some(FunctionResources { memory: "128Mi".into(), cpu: "500m".into() }),
            requests: Some(FunctionResources { memory: "64Mi".into(), cpu: "0.25".into() }),
            secrets: vec!["db".into()],
            ..FunctionDeployment::default()
        }
    }

    #[test]
    fn a_deployment_becomes_a_launch_config_and_reads_back() {
        let mut config = CattleConfig::new("http://r:8080", "a", "s");
        config.routing = Routing::PublicEndpoints;
        let ids = BTreeMap::from([("db".to_owned(), "1se4".to_owned())]);
        let lc = launch_config(&deployment(), &config, &ids).unwrap();
        assert_eq!(lc["imageUuid"], "docker:functions/figlet:latest");
        assert_eq!(lc["environment"]["fprocess"], "figlet -f small");
        assert_eq!(lc["labels"][FUNCTION_LABEL], "figlet");
        assert_eq!(lc["labels"]["faas.annotation/example.com/note"], "hi");
        assert_eq!(lc["labels"][AFFINITY_LABEL], "zone=east");
        assert_eq!(lc["memory"], 134217728);
        assert_eq!(lc["cpuQuota"], 50000);
        assert_eq!(lc["milliCpuReservation"], 250);
        assert_eq!(lc["ports"], json!(["8080/tcp"]));
        assert_eq!(lc["secrets"][0]["secretId"], "1se4");
        assert_eq!(lc["healthCheck"]["requestLine"], "GET /_/health HTTP/1.0");

        let service: Service = serde_json::from_value(json!({
            "id": "1s3", "name": "figlet", "state": "active", "scale": 2, "launchConfig": lc,
            "created": "2024-05-01T10:00:00Z", "publicEndpoints": null, "links": {"self": "http://r/s/1s3"},
        }))
        .unwrap();
        let status = status(&service, "openfaas-fn", 1);
        assert_eq!(status.image, "functions/figlet:latest");
        assert_eq!(status.env_process, "figlet -f small");
        assert_eq!(status.env_vars, BTreeMap::from([("A".into(), "1".into())]));
        let labels = BTreeMap::from([("team".into(), "blue".into()), (FUNCTION_LABEL.into(), "figlet".into())]);
        assert_eq!(status.labels.unwrap(), labels);
        assert_eq!(status.annotations.unwrap()["example.com/note"], "hi");
        assert_eq!(status.constraints, vec!["zone=east".to_owned()]);
        assert_eq!(status.limits.unwrap(), FunctionResources { memory: "134217728".into(), cpu: "500m".into() });
        assert_eq!(status.requests.unwrap().cpu, "250m");
        assert_eq!(status.secrets, vec!["db".to_owned()]);
        assert_eq!((status.replicas, status.available_replicas), (2, 1));
        assert!(status.created_at.is_some());
    }

    #[test]
    fn bad_constraints_are_refused() {
        let mut d = deployment();
        d.constraints = vec!["node.role != manager".into()];
        let err = launch_config(&d, &CattleConfig::new("http://r", "a", "s"), &BTreeMap::new()).unwrap_err();
        assert!(matches!(err, faas_core::Error::Invalid { ref field, .. } if field == "constraints"), "{err}");
    }
}
