//! A function deployment as a Kubernetes Deployment and Service, and back.

use std::collections::BTreeMap;

use faas_core::{Error, FunctionDeployment, FunctionResources, FunctionStatus, Result};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, EnvVar, HTTPGetAction, KeyToPath, PodSpec, PodTemplateSpec, Probe,
    ProjectedVolumeSource, ResourceRequirements, SecretProjection, SecurityContext, Service, ServicePort, ServiceSpec,
    Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::config::{K8sConfig, WATCHDOG_PORT};

/// The label selecting a function's pods, valued with its name (as
/// OpenFaaS's faas-netes labels them): faas-core's
/// [`faas_core::FUNCTION_LABEL`], reported among the function's labels.
pub const FUNCTION_LABEL: &str = faas_core::FUNCTION_LABEL;
/// The label marking every object this provider manages
/// (`app.kubernetes.io/managed-by=faas-rs`): Deployments, Services,
/// Secrets and namespaces it created. Objects without it are never changed.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "faas-rs";
/// The label of namespaces that hold functions, as faas-netes uses it.
pub const NAMESPACE_LABEL: &str = "openfaas";
/// The label giving a function's initial replicas (0 allowed), as OpenFaaS
/// names it; 1 when absent (see
/// [`FunctionDeployment::initial_replicas`]).
pub const SCALE_MIN_LABEL: &str = faas_core::SCALE_MIN_LABEL;
/// The key prefix reserved for the provider's own labels and annotations;
/// a deployment using it (or [`MANAGED_BY_LABEL`]) is refused, so a
/// function's labels and annotations read back exactly as the user gave
/// them (plus [`FUNCTION_LABEL`], which the user may send only with the
/// function's name).
pub const RESERVED_PREFIX: &str = "faas-rs.dev/";
/// Where secrets are mounted in function containers, one file per secret,
/// as OpenFaaS mounts them.
pub const SECRETS_DIR: &str = "/var/openfaas/secrets";
/// The name of the function's container.
pub(crate) const CONTAINER: &str = "function";
/// The environment variable `fwatchdog` reads the function's command from.
const FPROCESS: &str = "fprocess";
/// The projected volume holding the function's secrets.
const SECRETS_VOLUME: &str = "faas-secrets";
/// The writable `/tmp` of read-only functions.
const TMP_VOLUME: &str = "faas-tmp";

/// The labels every object of the provider carries.
pub(crate) fn managed_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned())])
}

/// The label selector of every function Deployment the provider manages.
pub(crate) fn function_selector() -> String {
    format!("{FUNCTION_LABEL},{MANAGED_BY_LABEL}={MANAGED_BY}")
}

/// Whether the object with these labels is the provider's.
pub(crate) fn is_managed(meta: &ObjectMeta) -> bool {
    meta.labels.as_ref().and_then(|l| l.get(MANAGED_BY_LABEL)).is_some_and(|v| v == MANAGED_BY)
}

/// Whether `deployment` is a function of the provider (and not being
/// deleted).
pub(crate) fn is_function(deployment: &Deployment) -> bool {
    is_managed(&deployment.metadata)
        && deployment.metadata.labels.as_ref().is_some_and(|l| l.contains_key(FUNCTION_LABEL))
        && deployment.metadata.deletion_timestamp.is_none()
}

/// Checks what the Kubernetes mapping adds to
/// [`FunctionDeployment::validate`] (which checks `faas_function` and the
/// scale label): reserved label keys, constraints.
pub(crate) fn validate(deployment: &FunctionDeployment) -> Result<()> {
    deployment.validate()?;
    for (field, map) in [("labels", &deployment.labels), ("annotations", &deployment.annotations)] {
        for key in map.iter().flat_map(|m| m.keys()) {
            if key == MANAGED_BY_LABEL || key.starts_with(RESERVED_PREFIX) {
                return Err(Error::invalid(format!("{field}.{key}"), "is reserved for the provider's own use"));
            }
        }
    }
    node_selector(&deployment.constraints)?;
    Ok(())
}

/// Constraints (`key=value` or `key==value`) as a node selector.
pub(crate) fn node_selector(constraints: &[String]) -> Result<BTreeMap<String, String>> {
    let mut selector = BTreeMap::new();
    for constraint in constraints {
        let (key, value) = constraint
            .split_once("==")
            .or_else(|| constraint.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| {
                Error::invalid("constraints", format!("{constraint:?} is not `key=value` (a node label selector)"))
            })?;
        faas_core::validate::label_key("constraints", key)?;
        selector.insert(key.to_owned(), value.to_owned());
    }
    Ok(selector)
}

fn resources(deployment: &FunctionDeployment) -> Option<ResourceRequirements> {
    let map = |r: &Option<FunctionResources>| {
        let r = r.as_ref()?;
        let mut map = BTreeMap::new();
        if !r.memory.is_empty() {
            map.insert("memory".to_owned(), Quantity(r.memory.clone()));
        }
        if !r.cpu.is_empty() {
            map.insert("cpu".to_owned(), Quantity(r.cpu.clone()));
        }
        (!map.is_empty()).then_some(map)
    };
    let limits = map(&deployment.limits);
    let requests = map(&deployment.requests);
    (limits.is_some() || requests.is_some()).then(|| ResourceRequirements { limits, requests, ..Default::default() })
}

fn probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::Int(i32::from(WATCHDOG_PORT)),
            scheme: Some("HTTP".to_owned()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(1),
        failure_threshold: Some(failures),
        success_threshold: Some(1),
        ..Default::default()
    }
}

/// The Deployment of `deployment` with `replicas`. Validate first.
pub(crate) fn deployment(config: &K8sConfig, deployment: &FunctionDeployment, replicas: i32) -> Deployment {
    let name = deployment.service.clone();
    let namespace = deployment.namespace_or_default().to_owned();
    let mut labels = deployment.labels_with_function();
    labels.extend(managed_labels());
    let selector = BTreeMap::from([(FUNCTION_LABEL.to_owned(), name.clone())]);

    let mut env = Vec::with_capacity(deployment.env_vars.len() + 1);
    if !deployment.env_process.is_empty() {
        env.push(EnvVar { name: FPROCESS.to_owned(), value: Some(deployment.env_process.clone()), value_from: None });
    }
    env.extend(deployment.env_vars.iter().map(|(k, v)| EnvVar {
        name: k.clone(),
        value: Some(v.clone()),
        value_from: None,
    }));

    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    if !deployment.secrets.is_empty() {
        volumes.push(Volume {
            name: SECRETS_VOLUME.to_owned(),
            projected: Some(ProjectedVolumeSource {
                sources: Some(
                    deployment
                        .secrets
                        .iter()
                        .map(|secret| VolumeProjection {
                            secret: Some(SecretProjection {
                                name: secret.clone(),
                                items: Some(vec![KeyToPath {
                                    key: secret.clone(),
                                    path: secret.clone(),
                                    ..Default::default()
                                }]),
                                optional: Some(false),
                            }),
                            ..Default::default()
                        })
                        .collect(),
                ),
                default_mode: Some(0o444),
                ..Default::default()
            }),
            ..Default::default()
        });
        mounts.push(VolumeMount {
            name: SECRETS_VOLUME.to_owned(),
            mount_path: SECRETS_DIR.to_owned(),
            read_only: Some(true),
            ..Default::default()
        });
    }
    if deployment.read_only_root_filesystem {
        volumes.push(Volume {
            name: TMP_VOLUME.to_owned(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        });
        mounts.push(VolumeMount { name: TMP_VOLUME.to_owned(), mount_path: "/tmp".to_owned(), ..Default::default() });
    }

    let container = Container {
        name: CONTAINER.to_owned(),
        image: Some(deployment.image.clone()),
        image_pull_policy: config.image_pull_policy.clone(),
        ports: Some(vec![ContainerPort {
            name: Some("http".to_owned()),
            container_port: i32::from(WATCHDOG_PORT),
            protocol: Some("TCP".to_owned()),
            ..Default::default()
        }]),
        env: (!env.is_empty()).then_some(env),
        resources: resources(deployment),
        readiness_probe: Some(probe("/_/ready", 1, 1)),
        liveness_probe: Some(probe("/_/health", 5, 3)),
        security_context: Some(SecurityContext {
            read_only_root_filesystem: Some(deployment.read_only_root_filesystem),
            allow_privilege_escalation: Some(false),
            ..Default::default()
        }),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        ..Default::default()
    };
    let node_selector = node_selector(&deployment.constraints).unwrap_or_default();

    Deployment {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace),
            labels: Some(labels.clone()),
            annotations: deployment.annotations.clone().filter(|a| !a.is_empty()),
            ..Default::default()
        },
        spec: DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector { match_labels: Some(selector), match_expressions: None },
            // A new pod must be ready before an old one stops: an update
            // never leaves the function without a replica taking calls.
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: deployment.annotations.clone().filter(|a| !a.is_empty()),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    volumes: (!volumes.is_empty()).then_some(volumes),
                    node_selector: (!node_selector.is_empty()).then_some(node_selector),
                    termination_grace_period_seconds: Some(config.termination_grace_period.as_secs() as i64),
                    enable_service_links: Some(false),
                    ..Default::default()
                }),
            },
            ..Default::default()
        },
        status: None,
    }
}

/// The ClusterIP Service of a function, port 8080 (`http`) to its pods.
pub(crate) fn service(name: &str, namespace: &str) -> Service {
    let mut labels = managed_labels();
    labels.insert(FUNCTION_LABEL.to_owned(), name.to_owned());
    Service {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(BTreeMap::from([(FUNCTION_LABEL.to_owned(), name.to_owned())])),
            ports: Some(vec![ServicePort {
                name: Some("http".to_owned()),
                port: i32::from(WATCHDOG_PORT),
                target_port: Some(IntOrString::Int(i32::from(WATCHDOG_PORT))),
                protocol: Some("TCP".to_owned()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

/// The function a Deployment runs.
pub(crate) fn function_status(deployment: &Deployment) -> FunctionStatus {
    let meta = &deployment.metadata;
    let spec = deployment.spec.clone();
    let pod = spec.template.spec.unwrap_or_default();
    let container = pod.containers.iter().find(|c| c.name == CONTAINER).or(pod.containers.first()).cloned();
    let container = container.unwrap_or_default();

    let mut env_process = String::new();
    let mut env_vars = BTreeMap::new();
    for var in container.env.unwrap_or_default() {
        let value = var.value.unwrap_or_default();
        if var.name == FPROCESS {
            env_process = value;
        } else {
            env_vars.insert(var.name, value);
        }
    }
    let labels: BTreeMap<String, String> = meta
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| *k != MANAGED_BY_LABEL && !k.starts_with(RESERVED_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let annotations: BTreeMap<String, String> = meta
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| !k.starts_with(RESERVED_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let quantities = |map: Option<&BTreeMap<String, Quantity>>| {
        let map = map?;
        let memory = map.get("memory").map(|q| q.0.clone()).unwrap_or_default();
        let cpu = map.get("cpu").map(|q| q.0.clone()).unwrap_or_default();
        (!memory.is_empty() || !cpu.is_empty()).then_some(FunctionResources { memory, cpu })
    };
    let resources = container.resources.unwrap_or_default();
    let secrets = pod
        .volumes
        .iter()
        .flatten()
        .filter(|v| v.name == SECRETS_VOLUME)
        .filter_map(|v| v.projected.as_ref())
        .flat_map(|p| p.sources.iter().flatten())
        .filter_map(|s| s.secret.as_ref().map(|s| s.name.clone()))
        .collect();
    let constraints = pod.node_selector.iter().flatten().map(|(k, v)| format!("{k}={v}")).collect();

    FunctionStatus {
        name: meta.name.clone().unwrap_or_default(),
        image: container.image.unwrap_or_default(),
        namespace: meta.namespace.clone().unwrap_or_default(),
        env_process,
        env_vars,
        constraints,
        secrets,
        labels: Some(labels),
        annotations: Some(annotations),
        limits: quantities(resources.limits.as_ref()),
        requests: quantities(resources.requests.as_ref()),
        read_only_root_filesystem: container
            .security_context
            .and_then(|s| s.read_only_root_filesystem)
            .unwrap_or(false),
        replicas: spec.replicas.unwrap_or(1).max(0) as u64,
        available_replicas: deployment.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0).max(0) as u64,
        created_at: meta
            .creation_timestamp
            .as_ref()
            .and_then(|t| chrono::DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().max(0) as u32)),
        ..FunctionStatus::default()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::DeploymentStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn function() -> FunctionDeployment {
        FunctionDeployment {
            service: "figlet".into(),
            image: "faas-rs/test-fn:ci".into(),
            namespace: "fns".into(),
            env_process: "sh /conformance.sh".into(),
            env_vars: BTreeMap::from([("GREETING".into(), "a=b".into())]),
            constraints: vec!["disktype==ssd".into(), "zone = a".into()],
            secrets: vec!["db.password".into()],
            labels: Some(BTreeMap::from([("team".into(), "blue".into()), (SCALE_MIN_LABEL.into(), "3".into())])),
            annotations: Some(BTreeMap::from([("topic".into(), "cron".into())])),
            limits: Some(FunctionResources { memory: "128Mi".into(), cpu: "500m".into() }),
            requests: Some(FunctionResources { memory: "64Mi".into(), cpu: String::new() }),
            read_only_root_filesystem: true,
        }
    }

    #[test]
    fn the_deployment_carries_every_field() {
        let config = K8sConfig { image_pull_policy: Some("Never".into()), ..K8sConfig::default() };
        let d = deployment(&config, &function(), 3);
        let labels = d.metadata.labels.as_ref().unwrap();
        assert_eq!(labels.get(FUNCTION_LABEL).map(String::as_str), Some("figlet"));
        assert_eq!(labels.get(MANAGED_BY_LABEL).map(String::as_str), Some(MANAGED_BY));
        assert_eq!(labels.get("team").map(String::as_str), Some("blue"));
        assert_eq!(d.metadata.namespace.as_deref(), Some("fns"));
        assert_eq!(d.metadata.annotations.as_ref().unwrap().get("topic").map(String::as_str), Some("cron"));
        let spec = &d.spec;
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(
            spec.selector.match_labels.as_ref().unwrap(),
            &BTreeMap::from([(FUNCTION_LABEL.to_owned(), "figlet".to_owned())])
        );
        let rolling = spec.strategy.as_ref().unwrap().rolling_update.as_ref().unwrap();
        assert_eq!(rolling.max_unavailable, Some(IntOrString::Int(0)));
        assert_eq!(rolling.max_surge, Some(IntOrString::Int(1)));
        let template_labels = spec.template.metadata.as_ref().unwrap().labels.as_ref().unwrap();
        assert_eq!(template_labels.get(FUNCTION_LABEL).map(String::as_str), Some("figlet"));
        let pod = spec.template.spec.as_ref().unwrap();
        assert_eq!(
            pod.node_selector.as_ref().unwrap(),
            &BTreeMap::from([("disktype".to_owned(), "ssd".to_owned()), ("zone".to_owned(), "a".to_owned())])
        );
        let c = &pod.containers[0];
        assert_eq!(c.image_pull_policy.as_deref(), Some("Never"));
        let env: Vec<_> = c.env.as_ref().unwrap().iter().map(|e| (e.name.as_str(), e.value.as_deref())).collect();
        assert_eq!(env, [("fprocess", Some("sh /conformance.sh")), ("GREETING", Some("a=b"))]);
        assert_eq!(c.ports.as_ref().unwrap()[0].container_port, 8080);
        let ready = c.readiness_probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!((ready.path.as_deref(), &ready.port), (Some("/_/ready"), &IntOrString::Int(8080)));
        let live = c.liveness_probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(live.path.as_deref(), Some("/_/health"));
        assert_eq!(c.security_context.as_ref().unwrap().read_only_root_filesystem, Some(true));
        let limits = c.resources.as_ref().unwrap().limits.as_ref().unwrap();
        assert_eq!(limits.get("memory"), Some(&Quantity("128Mi".into())));
        let mounts: Vec<_> = c.volume_mounts.as_ref().unwrap().iter().map(|m| m.mount_path.as_str()).collect();
        assert_eq!(mounts, [SECRETS_DIR, "/tmp"]);
        let projected = pod.volumes.as_ref().unwrap()[0].projected.as_ref().unwrap();
        let source = projected.sources.as_ref().unwrap()[0].secret.as_ref().unwrap();
        assert_eq!(source.name, "db.password");
        assert_eq!(source.items.as_ref().unwrap()[0].path, "db.password");
        assert!(pod.volumes.as_ref().unwrap()[1].empty_dir.is_some());
    }

    #[test]
    fn a_deployment_reads_back_as_the_function() {
        let mut d = deployment(&K8sConfig::default(), &function(), 2);
        d.metadata.creation_timestamp = Some(Time("2026-11-23T16:01:40Z".parse().unwrap()));
        d.status = Some(DeploymentStatus { available_replicas: Some(1), ..Default::default() });
        assert!(is_function(&d));
        let status = function_status(&d);
        assert_eq!(status.replicas, 2);
        assert_eq!(status.available_replicas, 1);
        assert_eq!(status.created_at.unwrap().timestamp(), 1_795_449_700);
        let mut expected = function();
        expected.constraints = vec!["disktype=ssd".into(), "zone=a".into()];
        expected.labels = Some(expected.labels_with_function());
        assert_eq!(status.to_deployment(), expected);

        d.metadata.deletion_timestamp = d.metadata.creation_timestamp.clone();
        assert!(!is_function(&d), "a deployment being deleted is no longer a function");
    }

    #[test]
    fn the_service_selects_the_pods_on_8080() {
        let s = service("figlet", "fns");
        assert!(is_managed(&s.metadata));
        let spec = s.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(spec.selector.unwrap().get(FUNCTION_LABEL).map(String::as_str), Some("figlet"));
        let port = &spec.ports.unwrap()[0];
        assert_eq!((port.name.as_deref(), port.port), (Some("http"), 8080));
    }

    #[test]
    fn validation_adds_the_kubernetes_rules() {
        assert!(validate(&function()).is_ok());
        let mut bad = function();
        bad.labels.get_or_insert_with(Default::default).insert(FUNCTION_LABEL.into(), "x".into());
        assert!(matches!(validate(&bad), Err(Error::Invalid { field, .. }) if field == "labels.faas_function"));
        let mut bad = function();
        bad.constraints = vec!["node.role".into()];
        assert!(matches!(validate(&bad), Err(Error::Invalid { field, .. }) if field == "constraints"));
        let mut bad = function();
        bad.labels.get_or_insert_with(Default::default).insert(SCALE_MIN_LABEL.into(), "many".into());
        assert!(validate(&bad).is_err());
        let mut bad = function();
        bad.limits = Some(FunctionResources { memory: "lots".into(), cpu: String::new() });
        assert!(matches!(validate(&bad), Err(Error::Invalid { field, .. }) if field == "limits.memory"));
        let mut own = function();
        own.labels.get_or_insert_with(Default::default).insert(FUNCTION_LABEL.into(), "figlet".into());
        assert!(validate(&own).is_ok(), "faas_function with the function's name is the platform's own label");
        let mut reserved = function();
        reserved.labels.get_or_insert_with(Default::default).insert(MANAGED_BY_LABEL.into(), "me".into());
        assert!(matches!(validate(&reserved), Err(Error::Invalid { field, .. }) if field.starts_with("labels.app")));
    }
}
