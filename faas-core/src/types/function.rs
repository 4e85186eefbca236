use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{go_float, is_false, is_zero_f64, is_zero_u64, null_as_default, DEFAULT_NAMESPACE};
use crate::error::Result;
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
        for secret in &self.secrets {
            validate::secret_name("secrets", secret)?;
        }
        for key in self.labels.iter().flat_map(|m| m.keys()) {
            validate::label_key(&format!("labels.{key}"), key)?;
        }
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
    #[serde(skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "null_as_default")]
    pub env_vars: BTreeMap<String, String>,
    /// Placement constraints.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_default")]
    pub constraints: Vec<String>,
    /// Secret names.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_default")]
    pub secrets: Vec<String>,
    /// Labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations.
    #[serde(skip_serializing_if = "Option::is_none")]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// Resource usage, where the provider measures it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<FunctionUsage>,
}

impl FunctionStatus {
    /// A status carrying the deployment's fields, with the namespace filled
    /// in and every status field zero.
    pub fn from_deployment(deployment: &FunctionDeployment) -> Self {
        FunctionStatus {
            name: deployment.service.clone(),
            image: deployment.image.clone(),
            namespace: deployment.namespace_or_default().to_owned(),
            env_process: deployment.env_process.clone(),
            env_vars: deployment.env_vars.clone(),
            constraints: deployment.constraints.clone(),
            secrets: deployment.secrets.clone(),
            labels: deployment.labels.clone(),
            annotations: deployment.annotations.clone(),
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
