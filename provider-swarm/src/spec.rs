//! A function deployment as a Swarm service spec, and back.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum, EndpointSpec,
    EndpointSpecModeEnum, HealthConfig, Limit, NetworkAttachmentConfig, ResourceObject, Service, ServiceSpec,
    ServiceSpecMode, ServiceSpecModeReplicated, ServiceSpecRollbackConfig, ServiceSpecRollbackConfigOrderEnum,
    ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum, TaskSpec,
    TaskSpecContainerSpec, TaskSpecContainerSpecFile, TaskSpecContainerSpecSecrets, TaskSpecPlacement,
    TaskSpecResources, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};
use faas_core::{FunctionDeployment, FunctionResources, FunctionStatus, DEFAULT_NAMESPACE};

use crate::config::{EndpointMode, InvokeMode, SwarmConfig};

/// The label OpenFaaS puts on every function service, valued with its name.
pub const FUNCTION_LABEL: &str = "com.openfaas.function";
/// The prefix under which a function's annotations are stored as labels.
pub const ANNOTATION_PREFIX: &str = "com.openfaas.annotations.";
/// The label on every Swarm secret the provider manages, valued with the
/// secret's name as functions see it.
pub const SECRET_LABEL: &str = "com.openfaas.secret";
/// Where secrets are mounted in function containers, as OpenFaaS mounts them.
pub const SECRETS_DIR: &str = "/var/openfaas/secrets";
/// The prefix of the labels keeping what the spec stores lossily (resource
/// quantities as written).
const QUANTITY_PREFIX: &str = "com.faas-rs.";
/// The environment variable `fwatchdog` reads the function's command from.
const FPROCESS: &str = "fprocess";

/// A secret reference for a service: the Swarm secret's id and name, and
/// the name the function knows it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SecretRef {
    pub(crate) id: String,
    pub(crate) swarm_name: String,
    pub(crate) name: String,
}

/// The service spec for `deployment` with `replicas`, its secrets resolved.
pub(crate) fn service_spec(
    config: &SwarmConfig,
    network_id: &str,
    deployment: &FunctionDeployment,
    replicas: u64,
    secrets: &[SecretRef],
) -> ServiceSpec {
    let name = deployment.service.clone();
    let mut labels: HashMap<String, String> = config.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    // The user's labels and `faas_function=<name>`, reported as they are.
    labels.extend(deployment.labels_with_function());
    for (key, value) in deployment.annotations.iter().flatten() {
        labels.insert(format!("{ANNOTATION_PREFIX}{key}"), value.clone());
    }
    for (kind, resources) in [("limits", &deployment.limits), ("requests", &deployment.requests)] {
        if let Some(resources) = resources {
            for (what, value) in [("memory", &resources.memory), ("cpu", &resources.cpu)] {
                if !value.is_empty() {
                    labels.insert(format!("{QUANTITY_PREFIX}{kind}.{what}"), value.clone());
                }
            }
        }
    }
    labels.insert(FUNCTION_LABEL.to_owned(), name.clone());

    let mut env = Vec::with_capacity(deployment.env_vars.len() + 1);
    if !deployment.env_process.is_empty() {
        env.push(format!("{FPROCESS}={}", deployment.env_process));
    }
    env.extend(deployment.env_vars.iter().map(|(k, v)| format!("{k}={v}")));

    let mut container_labels: HashMap<String, String> =
        config.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    container_labels.insert(FUNCTION_LABEL.to_owned(), name.clone());

    let health_check = config.health_check.as_ref().map(|h| HealthConfig {
        test: Some(h.command.clone()),
        interval: Some(nanos(h.interval)),
        timeout: Some(nanos(h.timeout)),
        retries: Some(i64::from(h.retries)),
        start_period: Some(nanos(h.start_period)),
        start_interval: None,
    });

    let container = TaskSpecContainerSpec {
        image: Some(deployment.image.clone()),
        labels: Some(container_labels),
        env: Some(env),
        read_only: Some(deployment.read_only_root_filesystem),
        init: Some(config.init),
        health_check,
        stop_grace_period: Some(nanos(config.stop_grace_period)),
        secrets: Some(
            secrets
                .iter()
                .map(|s| TaskSpecContainerSpecSecrets {
                    file: Some(TaskSpecContainerSpecFile {
                        name: Some(format!("{SECRETS_DIR}/{}", s.name)),
                        uid: Some("0".into()),
                        gid: Some("0".into()),
                        mode: Some(0o444),
                    }),
                    secret_id: Some(s.id.clone()),
                    secret_name: Some(s.swarm_name.clone()),
                })
                .collect(),
        ),
        ..TaskSpecContainerSpec::default()
    };

    let resources = TaskSpecResources {
        limits: deployment.limits.as_ref().map(|r| Limit {
            nano_cpus: cpu_nanos(&r.cpu),
            memory_bytes: memory_bytes(&r.memory),
            pids: None,
        }),
        reservations: deployment.requests.as_ref().map(|r| ResourceObject {
            nano_cpus: cpu_nanos(&r.cpu),
            memory_bytes: memory_bytes(&r.memory),
            generic_resources: None,
        }),
        ..TaskSpecResources::default()
    };

    let ports = match config.invoke {
        InvokeMode::Network => None,
        InvokeMode::Published { .. } => Some(vec![EndpointPortConfig {
            protocol: Some(EndpointPortConfigProtocolEnum::TCP),
            target_port: Some(i64::from(config.watchdog_port)),
            published_port: None,
            publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
            name: None,
        }]),
    };

    ServiceSpec {
        name: Some(name),
        labels: Some(labels),
        task_template: Some(TaskSpec {
            container_spec: Some(container),
            resources: Some(resources),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                delay: Some(nanos(std::time::Duration::from_secs(1))),
                ..TaskSpecRestartPolicy::default()
            }),
            placement: Some(TaskSpecPlacement {
                constraints: Some(deployment.constraints.clone()),
                ..TaskSpecPlacement::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(network_id.to_owned()),
                ..NetworkAttachmentConfig::default()
            }]),
            ..TaskSpec::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(replicas as i64) }),
            ..ServiceSpecMode::default()
        }),
        // Start the new task, wait for it to be healthy, then stop the old
        // one: an update never leaves the function without a replica.
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(1),
            delay: Some(0),
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
            order: Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST),
            ..ServiceSpecUpdateConfig::default()
        }),
        rollback_config: Some(ServiceSpecRollbackConfig {
            parallelism: Some(1),
            order: Some(ServiceSpecRollbackConfigOrderEnum::START_FIRST),
            ..ServiceSpecRollbackConfig::default()
        }),
        endpoint_spec: Some(EndpointSpec {
            mode: Some(match config.endpoint_mode {
                EndpointMode::Dnsrr => EndpointSpecModeEnum::DNSRR,
                EndpointMode::Vip => EndpointSpecModeEnum::VIP,
            }),
            ports,
        }),
        ..ServiceSpec::default()
    }
}

/// Whether `service` is a function this provider manages (it carries the
/// function label and every configured label).
pub(crate) fn is_function(config: &SwarmConfig, service: &Service) -> bool {
    let Some(labels) = service.spec.as_ref().and_then(|s| s.labels.as_ref()) else {
        return false;
    };
    labels.contains_key(FUNCTION_LABEL) && config.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The replicas a service's spec asks for.
pub(crate) fn desired_replicas(service: &Service) -> u64 {
    service
        .spec
        .as_ref()
        .and_then(|s| s.mode.as_ref())
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        .map_or(0, |r| r.max(0) as u64)
}

/// The function a service runs, without the counters (replicas, available
/// replicas) the caller fills in.
pub(crate) fn function_status(config: &SwarmConfig, service: &Service) -> FunctionStatus {
    let spec = service.spec.clone().unwrap_or_default();
    let labels = spec.labels.unwrap_or_default();
    let container = spec.task_template.as_ref().and_then(|t| t.container_spec.clone()).unwrap_or_default();
    let name = spec.name.unwrap_or_default();

    let mut env_process = String::new();
    let mut env_vars = BTreeMap::new();
    for entry in container.env.unwrap_or_default() {
        let (key, value) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
        if key == FPROCESS {
            env_process = value.to_owned();
        } else {
            env_vars.insert(key.to_owned(), value.to_owned());
        }
    }

    let mut user_labels = BTreeMap::new();
    let mut annotations = BTreeMap::new();
    for (key, value) in &labels {
        if let Some(annotation) = key.strip_prefix(ANNOTATION_PREFIX) {
            annotations.insert(annotation.to_owned(), value.clone());
        } else if key != FUNCTION_LABEL && !key.starts_with(QUANTITY_PREFIX) && config.labels.get(key) != Some(value) {
            user_labels.insert(key.clone(), value.clone());
        }
    }
    let quantities = |kind: &str| {
        let memory = labels.get(&format!("{QUANTITY_PREFIX}{kind}.memory")).cloned().unwrap_or_default();
        let cpu = labels.get(&format!("{QUANTITY_PREFIX}{kind}.cpu")).cloned().unwrap_or_default();
        (!memory.is_empty() || !cpu.is_empty()).then_some(FunctionResources { memory, cpu })
    };

    let secrets = container
        .secrets
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| s.file.and_then(|f| f.name))
        .map(|path| path.rsplit('/').next().unwrap_or(&path).to_owned())
        .collect();
    let constraints = spec
        .task_template
        .as_ref()
        .and_then(|t| t.placement.as_ref())
        .and_then(|p| p.constraints.clone())
        .unwrap_or_default();

    FunctionStatus {
        name,
        image: container.image.unwrap_or_default(),
        namespace: DEFAULT_NAMESPACE.to_owned(),
        env_process,
        env_vars,
        constraints,
        secrets,
        labels: Some(user_labels),
        annotations: Some(annotations),
        limits: quantities("limits"),
        requests: quantities("requests"),
        read_only_root_filesystem: container.read_only.unwrap_or(false),
        replicas: desired_replicas(service),
        created_at: service
            .created_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(Into::into),
        ..FunctionStatus::default()
    }
}

fn nanos(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

/// A Kubernetes quantity (`128Mi`, `1G`, `500m`, `0.5`) as a number of
/// units; `None` when empty or unreadable (deployments are validated first).
fn quantity(value: &str) -> Option<f64> {
    faas_core::validate::quantity_value("quantity", value).ok()
}

/// Memory in bytes, as Swarm's `MemoryBytes`.
fn memory_bytes(value: &str) -> Option<i64> {
    quantity(value).map(|bytes| bytes.round() as i64)
}

/// CPU in billionths of a core, as Swarm's `NanoCPUs`.
fn cpu_nanos(value: &str) -> Option<i64> {
    quantity(value).map(|cores| (cores * 1e9).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> FunctionDeployment {
        FunctionDeployment {
            service: "figlet".into(),
            image: "faas-rs/test-fn:ci".into(),
            env_process: "sh /conformance.sh".into(),
            env_vars: BTreeMap::from([("GREETING".into(), "a=b".into())]),
            constraints: vec!["node.role == manager".into()],
            secrets: vec!["db.password".into()],
            labels: Some(BTreeMap::from([("team".into(), "blue".into())])),
            annotations: Some(BTreeMap::from([("topic".into(), "cron".into())])),
            limits: Some(FunctionResources { memory: "128Mi".into(), cpu: "500m".into() }),
            requests: Some(FunctionResources { memory: "1G".into(), cpu: String::new() }),
            read_only_root_filesystem: true,
            ..FunctionDeployment::default()
        }
    }

    fn secret() -> SecretRef {
        SecretRef { id: "sid".into(), swarm_name: "db.password_1234abcd".into(), name: "db.password".into() }
    }

    #[test]
    fn the_spec_carries_every_field_the_openfaas_way() {
        let mut config = SwarmConfig::default();
        config.labels.insert("faas-rs.test".into(), "run1".into());
        let spec = service_spec(&config, "netid", &deployment(), 2, &[secret()]);
        let labels = spec.labels.as_ref().unwrap();
        assert_eq!(labels.get(FUNCTION_LABEL).map(String::as_str), Some("figlet"));
        assert_eq!(labels.get("team").map(String::as_str), Some("blue"));
        assert_eq!(labels.get(faas_core::FUNCTION_LABEL).map(String::as_str), Some("figlet"));
        assert_eq!(labels.get("com.openfaas.annotations.topic").map(String::as_str), Some("cron"));
        assert_eq!(labels.get("faas-rs.test").map(String::as_str), Some("run1"));
        let task = spec.task_template.as_ref().unwrap();
        let container = task.container_spec.as_ref().unwrap();
        assert_eq!(
            container.env.as_deref().unwrap(),
            ["fprocess=sh /conformance.sh".to_owned(), "GREETING=a=b".to_owned()]
        );
        assert_eq!(container.read_only, Some(true));
        assert_eq!(container.init, Some(true));
        let mount = container.secrets.as_ref().unwrap()[0].file.as_ref().unwrap();
        assert_eq!(mount.name.as_deref(), Some("/var/openfaas/secrets/db.password"));
        let limits = task.resources.as_ref().unwrap().limits.as_ref().unwrap();
        assert_eq!((limits.memory_bytes, limits.nano_cpus), (Some(128 << 20), Some(500_000_000)));
        let reservations = task.resources.as_ref().unwrap().reservations.as_ref().unwrap();
        assert_eq!((reservations.memory_bytes, reservations.nano_cpus), (Some(1_000_000_000), None));
        assert_eq!(task.placement.as_ref().unwrap().constraints.as_deref().unwrap(), ["node.role == manager"]);
        assert_eq!(spec.mode.as_ref().unwrap().replicated.as_ref().unwrap().replicas, Some(2));
        let update = spec.update_config.as_ref().unwrap();
        assert_eq!(update.order, Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST));
        let health = container.health_check.as_ref().unwrap().test.as_ref().unwrap();
        assert_eq!(health[1], "/usr/bin/faas-healthcheck");
        assert!(spec.endpoint_spec.as_ref().unwrap().ports.is_none());

        config.invoke = InvokeMode::Published { host: None };
        let spec = service_spec(&config, "netid", &deployment(), 1, &[]);
        let port = &spec.endpoint_spec.as_ref().unwrap().ports.as_ref().unwrap()[0];
        assert_eq!((port.target_port, port.published_port), (Some(8080), None));
        assert_eq!(port.publish_mode, Some(EndpointPortConfigPublishModeEnum::HOST));
    }

    #[test]
    fn a_service_reads_back_as_the_deployment() {
        let mut config = SwarmConfig::default();
        config.labels.insert("faas-rs.test".into(), "run1".into());
        let spec = service_spec(&config, "netid", &deployment(), 3, &[secret()]);
        let service = Service {
            spec: Some(spec),
            created_at: Some("2026-11-23T16:01:40.962663896Z".into()),
            ..Service::default()
        };
        assert!(is_function(&config, &service));
        assert!(!is_function(
            &SwarmConfig { labels: BTreeMap::from([("x".into(), "y".into())]), ..config.clone() },
            &service
        ));
        let status = function_status(&config, &service);
        let mut expected = deployment();
        expected.namespace = DEFAULT_NAMESPACE.into();
        expected.labels = Some(expected.labels_with_function());
        assert_eq!(status.to_deployment(), expected);
        assert_eq!(status.replicas, 3);
        assert_eq!(status.created_at.unwrap().timestamp(), 1_795_449_700);
    }

    #[test]
    fn quantities_convert_to_swarm_units() {
        assert_eq!(memory_bytes("128Mi"), Some(134_217_728));
        assert_eq!(memory_bytes("1G"), Some(1_000_000_000));
        assert_eq!(cpu_nanos("0.5"), Some(500_000_000));
        assert_eq!(cpu_nanos("250m"), Some(250_000_000));
        assert_eq!(cpu_nanos("2"), Some(2_000_000_000));
        assert_eq!(cpu_nanos(""), None);
    }
}
