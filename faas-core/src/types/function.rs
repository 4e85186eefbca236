use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    go_float, is_false, is_zero_f64, is_zero_u64, map_or_empty, null_as_default, rfc3339, DEFAULT_NAMESPACE,
    FUNCTION_LABEL, SCALE_MIN_LABEL,
};
use crate::error::{Error, Result};
use crate::validate;

/// A request to create or update a function (`POST`/`PUT /system/functions`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FunctionDeployment {
    /// The function's name, a DNS-1123 label.
    pub service: String,
    /// The container image, or whatever the provider records in its place.
    pub image: String,
    /// The namespace; empty means [`DEFAULT_NAMESPACE`].
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The process the watchdog runs (`fprocess`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub env_process: String,
    /// Environment variables for the function's process.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "null_as_default")]
    pub env_vars: BTreeMap<String, String>,
    /// Placement constraints, in the provider's syntax.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_default")]
    pub constraints: Vec<String>,
    /// Names of secrets made available to the function.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_default")]
    pub secrets: Vec<String>,
    /// Labels: metadata the provider and gateway may act on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations: free-form metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Resource limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<FunctionResources>,
    /// Resource requests (reservations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<FunctionResources>,
    /// Run with a read-only root filesystem.
    #[serde(skip_serializing_if = "is_false")]
    pub read_only_root_filesystem: bool,
}

impl FunctionDeployment {
    /// The namespace, with [`DEFAULT_NAMESPACE`] standing in for an empty one.
    pub fn namespace_or_default(&self) -> &str {
        if self.namespace.is_empty() {
            DEFAULT_NAMESPACE
        } else {
            &self.namespace
        }
    }

    /// This function's reference (name and namespace).
    pub fn function_ref(&self) -> FunctionRef {
        FunctionRef::new(&self.service, self.namespace_or_default())
    }

    /// Checks every field against the platform's rules; the error names the
    /// first offending field and the rule it breaks.
    pub fn validate(&self) -> Result<()> {
        validate::function_name("service", &self.service)?;
        if !self.namespace.is_empty() {
            validate::namespace("namespace", &self.namespace)?;
        }
        for key in self.env_vars.keys() {
            validate::env_var_name(&format!("envVars.{key}"), key)?;
        }
        validate::watchdog_env(&self.env_vars)?;
        for secret in &self.secrets {
            validate::secret_name("secrets", secret)?;
        }
        for key in self.labels.iter().flat_map(|m| m.keys()) {
            validate::label_key(&format!("labels.{key}"), key)?;
        }
        if let Some(value) = self.labels.as_ref().and_then(|l| l.get(FUNCTION_LABEL)) {
            if *value != self.service {
                return Err(Error::invalid(
                    format!("labels.{FUNCTION_LABEL}"),
                    format!(
                        "{value:?} is not the function's name; the platform sets this label to the name \
                         ({:?}), so send that or leave it out",
                        self.service
                    ),
                ));
            }
        }
        self.initial_replicas()?;
        for key in self.annotations.iter().flat_map(|m| m.keys()) {
            validate::label_key(&format!("annotations.{key}"), key)?;
        }
        if let Some(limits) = &self.limits {
            limits.validate("limits")?;
        }
        if let Some(requests) = &self.requests {
            requests.validate("requests")?;
        }
        Ok(())
    }

    /// The replicas a new function starts with: its
    /// [`SCALE_MIN_LABEL`] (`com.openfaas.scale.min`, a whole number up
    /// to [`validate::MAX_REPLICAS`], 0 allowed), else 1. Every provider
    /// creates functions with this count, so `replicas` in the status is
    /// the desired count from the moment the deploy returns. `Invalid`
    /// naming the label when its value is not such a number.
    pub fn initial_replicas(&self) -> Result<u64> {
        let Some(value) = self.labels.as_ref().and_then(|l| l.get(SCALE_MIN_LABEL)) else {
            return Ok(1);
        };
        let field = format!("labels.{SCALE_MIN_LABEL}");
        let replicas: u64 =
            value.trim().parse().map_err(|_| Error::invalid(&field, format!("{value:?} is not a whole number")))?;
        validate::replicas(&field, replicas)?;
        Ok(replicas)
    }

    /// The labels a provider stores and reports for this function: the
    /// deployment's own plus [`FUNCTION_LABEL`]`=<service>`, as OpenFaaS's
    /// providers add it. A user's own `faas_function` label (which
    /// [`FunctionDeployment::validate`] only accepts with the function's
    /// name) is the same entry, never a second one.
    pub fn labels_with_function(&self) -> BTreeMap<String, String> {
        let mut labels = self.labels.clone().unwrap_or_default();
        labels.insert(FUNCTION_LABEL.to_owned(), self.service.clone());
        labels
    }
}

/// Memory and CPU, as quantities in Kubernetes' notation (`128Mi`, `500m`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FunctionResources {
    /// Memory, e.g. `128Mi`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub memory: String,
    /// CPU, e.g. `500m` or `0.5`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cpu: String,
}

impl FunctionResources {
    fn validate(&self, field: &str) -> Result<()> {
        if !self.memory.is_empty() {
            validate::quantity(&format!("{field}.memory"), &self.memory)?;
        }
        if !self.cpu.is_empty() {
            validate::quantity(&format!("{field}.cpu"), &self.cpu)?;
        }
        Ok(())
    }
}

/// Resource usage reported by providers that can measure it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FunctionUsage {
    /// CPU in use, in cores.
    #[serde(skip_serializing_if = "is_zero_f64", serialize_with = "go_float")]
    pub cpu: f64,
    /// Memory in use across all replicas, in bytes.
    #[serde(skip_serializing_if = "is_zero_f64", serialize_with = "go_float")]
    pub total_memory_bytes: f64,
}

/// A deployed function as `GET /system/functions` reports it.
///
/// One shape on every provider: `envVars`, `constraints`, `secrets`,
/// `labels` and `annotations` are always written, empty (`{}`, `[]`) when
/// there are none, never `null` or missing; `labels` and `annotations` of
/// `None` are written as `{}`, so `None` and an empty map mean the same.
/// `labels` carries [`FUNCTION_LABEL`] on every provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FunctionStatus {
    /// The function's name.
    pub name: String,
    /// The image it was deployed from.
    pub image: String,
    /// Its namespace.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The watchdog's process.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub env_process: String,
    /// Environment variables.
    #[serde(deserialize_with = "null_as_default")]
    pub env_vars: BTreeMap<String, String>,
    /// Placement constraints.
    #[serde(deserialize_with = "null_as_default")]
    pub constraints: Vec<String>,
    /// Secret names.
    #[serde(deserialize_with = "null_as_default")]
    pub secrets: Vec<String>,
    /// Labels, [`FUNCTION_LABEL`] included.
    #[serde(serialize_with = "map_or_empty")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations.
    #[serde(serialize_with = "map_or_empty")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Resource limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<FunctionResources>,
    /// Resource requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<FunctionResources>,
    /// Read-only root filesystem.
    #[serde(skip_serializing_if = "is_false")]
    pub read_only_root_filesystem: bool,
    /// Calls counted since the provider started.
    #[serde(skip_serializing_if = "is_zero_f64", serialize_with = "go_float")]
    pub invocation_count: f64,
    /// Desired replicas.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub replicas: u64,
    /// Replicas that passed their health check and take calls.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub available_replicas: u64,
    /// When the function was created.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "rfc3339")]
    pub created_at: Option<DateTime<Utc>>,
    /// Resource usage, where the provider measures it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<FunctionUsage>,
}

impl FunctionStatus {
    /// A status carrying the deployment's fields, with the namespace filled
    /// in, [`FUNCTION_LABEL`] among the labels, annotations present (empty
    /// when none) and every status field zero.
    pub fn from_deployment(deployment: &FunctionDeployment) -> Self {
        FunctionStatus {
            name: deployment.service.clone(),
            image: deployment.image.clone(),
            namespace: deployment.namespace_or_default().to_owned(),
            env_process: deployment.env_process.clone(),
            env_vars: deployment.env_vars.clone(),
            constraints: deployment.constraints.clone(),
            secrets: deployment.secrets.clone(),
            labels: Some(deployment.labels_with_function()),
            annotations: Some(deployment.annotations.clone().unwrap_or_default()),
            limits: deployment.limits.clone(),
            requests: deployment.requests.clone(),
            read_only_root_filesystem: deployment.read_only_root_filesystem,
            ..FunctionStatus::default()
        }
    }

    /// The deployment this status describes (the inverse of
    /// [`FunctionStatus::from_deployment`]).
    pub fn to_deployment(&self) -> FunctionDeployment {
        FunctionDeployment {
            service: self.name.clone(),
            image: self.image.clone(),
            namespace: self.namespace.clone(),
            env_process: self.env_process.clone(),
            env_vars: self.env_vars.clone(),
            constraints: self.constraints.clone(),
            secrets: self.secrets.clone(),
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            limits: self.limits.clone(),
            requests: self.requests.clone(),
            read_only_root_filesystem: self.read_only_root_filesystem,
        }
    }
}

/// `POST /system/scale-function/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ScaleServiceRequest {
    /// The function's name.
    pub service_name: String,
    /// The desired replicas.
    pub replicas: u64,
    /// The namespace; empty means the default.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// `DELETE /system/functions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeleteFunctionRequest {
    /// The function's name.
    pub function_name: String,
    /// The namespace; empty means the default.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// A function's name and namespace: how every operation names a function.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunctionRef {
    /// The function's name.
    pub name: String,
    /// Its namespace (never empty once resolved).
    pub namespace: String,
}

impl FunctionRef {
    /// A reference to `name` in `namespace`; an empty namespace becomes
    /// [`DEFAULT_NAMESPACE`].
    pub fn new(name: impl Into<String>, namespace: impl Into<String>) -> Self {
        let namespace = namespace.into();
        let namespace = if namespace.is_empty() { DEFAULT_NAMESPACE.to_owned() } else { namespace };
        FunctionRef { name: name.into(), namespace }
    }

    /// Parses the invocation form `name` or `name.namespace`, validating
    /// both parts; a bare `name` is in [`DEFAULT_NAMESPACE`].
    pub fn parse(qualified: &str) -> Result<Self> {
        Self::parse_in(qualified, DEFAULT_NAMESPACE)
    }

    /// Parses `name` or `name.namespace` like [`FunctionRef::parse`], a
    /// bare `name` being in `default_namespace` (the provider's, see
    /// [`crate::Provider::default_namespace`]).
    pub fn parse_in(qualified: &str, default_namespace: &str) -> Result<Self> {
        let (name, namespace) = match qualified.split_once('.') {
            Some((name, namespace)) => (name, namespace),
            None => (qualified, default_namespace),
        };
        validate::function_name("function name", name)?;
        validate::namespace("namespace", namespace)?;
        Ok(FunctionRef::new(name, namespace))
    }
}

impl fmt::Display for FunctionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.name, self.namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_labels(pairs: &[(&str, &str)]) -> FunctionDeployment {
        FunctionDeployment {
            service: "echo".into(),
            image: "i".into(),
            labels: Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            ..FunctionDeployment::default()
        }
    }

    fn invalid_field(deployment: &FunctionDeployment) -> String {
        match deployment.validate() {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn the_function_label_is_added_once_and_only_with_the_functions_name() {
        let plain = with_labels(&[("team", "web")]);
        let labels = plain.labels_with_function();
        assert_eq!(labels, BTreeMap::from([("team".into(), "web".into()), (FUNCTION_LABEL.into(), "echo".into())]));
        let same = with_labels(&[(FUNCTION_LABEL, "echo")]);
        same.validate().unwrap();
        assert_eq!(same.labels_with_function().len(), 1);
        let other = with_labels(&[(FUNCTION_LABEL, "figlet")]);
        assert_eq!(invalid_field(&other), "labels.faas_function");
        let none = FunctionDeployment { labels: None, ..plain };
        assert_eq!(FunctionStatus::from_deployment(&none).labels.unwrap()[FUNCTION_LABEL], "echo");
    }

    #[test]
    fn initial_replicas_come_from_scale_min() {
        assert_eq!(with_labels(&[]).initial_replicas().unwrap(), 1);
        for (value, expected) in [("2", 2), (" 3 ", 3), ("0", 0), ("1000", 1000)] {
            assert_eq!(with_labels(&[(SCALE_MIN_LABEL, value)]).initial_replicas().unwrap(), expected, "{value}");
        }
        for bad in ["two", "-1", "1.5", "1001", ""] {
            assert_eq!(
                invalid_field(&with_labels(&[(SCALE_MIN_LABEL, bad)])),
                "labels.com.openfaas.scale.min",
                "{bad:?}"
            );
        }
    }
}
