//! The provider's state: namespaces holding functions and secrets, behind
//! one lock that is never held across an `.await`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use faas_core::{FunctionDeployment, FunctionNamespace, FunctionRef, FunctionStatus, Secret, DEFAULT_NAMESPACE};

use crate::error::MemoryError;

/// Everything the provider knows, by namespace name.
pub(crate) struct State {
    namespaces: BTreeMap<String, Namespace>,
}

struct Namespace {
    meta: FunctionNamespace,
    functions: BTreeMap<String, Function>,
    secrets: BTreeMap<String, Vec<u8>>,
}

struct Function {
    deployment: FunctionDeployment,
    replicas: u64,
    invocations: u64,
    created_at: DateTime<Utc>,
}

/// What one call needs, copied out of the state so the lock is released
/// before the handler runs.
pub(crate) struct Invocation {
    pub(crate) image: String,
    pub(crate) instance: String,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) secrets: BTreeMap<String, Vec<u8>>,
}

impl State {
    /// A state with just the default namespace.
    pub(crate) fn new() -> Self {
        let mut state = State { namespaces: BTreeMap::new() };
        state
            .insert_namespace(FunctionNamespace { name: DEFAULT_NAMESPACE.to_owned(), ..FunctionNamespace::default() });
        state
    }

    fn insert_namespace(&mut self, meta: FunctionNamespace) {
        let namespace = Namespace { meta, functions: BTreeMap::new(), secrets: BTreeMap::new() };
        self.namespaces.insert(namespace.meta.name.clone(), namespace);
    }

    fn namespace(&self, name: &str) -> Result<&Namespace, MemoryError> {
        self.namespaces.get(name).ok_or_else(|| MemoryError::NamespaceNotFound { name: name.to_owned() })
    }

    fn namespace_mut(&mut self, name: &str) -> Result<&mut Namespace, MemoryError> {
        self.namespaces.get_mut(name).ok_or_else(|| MemoryError::NamespaceNotFound { name: name.to_owned() })
    }

    fn function_mut(&mut self, function: &FunctionRef) -> Result<&mut Function, MemoryError> {
        self.namespaces
            .get_mut(&function.namespace)
            .and_then(|ns| ns.functions.get_mut(&function.name))
            .ok_or_else(|| not_found(function))
    }

    // Functions.

    pub(crate) fn list(&self, namespace: &str) -> Result<Vec<FunctionStatus>, MemoryError> {
        Ok(self.namespace(namespace)?.functions.values().map(Function::status).collect())
    }

    pub(crate) fn status(&self, function: &FunctionRef) -> Result<FunctionStatus, MemoryError> {
        let namespace = self.namespaces.get(&function.namespace);
        let entry = namespace.and_then(|ns| ns.functions.get(&function.name)).ok_or_else(|| not_found(function))?;
        Ok(entry.status())
    }

    pub(crate) fn deploy(
        &mut self,
        deployment: FunctionDeployment,
        replicas: u64,
        now: DateTime<Utc>,
    ) -> Result<(), MemoryError> {
        let function = deployment.function_ref();
        let namespace = self.namespace_mut(&function.namespace)?;
        if namespace.functions.contains_key(&function.name) {
            return Err(MemoryError::FunctionExists { name: function.name, namespace: function.namespace });
        }
        namespace.check_secrets(&deployment)?;
        let entry = Function { deployment, replicas, invocations: 0, created_at: now };
        namespace.functions.insert(function.name, entry);
        Ok(())
    }

    pub(crate) fn update(&mut self, deployment: FunctionDeployment) -> Result<(), MemoryError> {
        let function = deployment.function_ref();
        let namespace = self.namespaces.get_mut(&function.namespace).ok_or_else(|| not_found(&function))?;
        namespace.check_secrets(&deployment)?;
        let entry = namespace.functions.get_mut(&function.name).ok_or_else(|| not_found(&function))?;
        entry.deployment = deployment;
        Ok(())
    }

    pub(crate) fn delete(&mut self, function: &FunctionRef) -> Result<(), MemoryError> {
        let namespace = self.namespaces.get_mut(&function.namespace).ok_or_else(|| not_found(function))?;
        namespace.functions.remove(&function.name).map(drop).ok_or_else(|| not_found(function))
    }

    pub(crate) fn scale(&mut self, function: &FunctionRef, replicas: u64) -> Result<(), MemoryError> {
        self.function_mut(function)?.replicas = replicas;
        Ok(())
    }

    /// Counts a call and copies out what the handler needs.
    pub(crate) fn begin_invocation(&mut self, function: &FunctionRef) -> Result<Invocation, MemoryError> {
        let namespace = self.namespaces.get_mut(&function.namespace).ok_or_else(|| not_found(function))?;
        let entry = namespace.functions.get_mut(&function.name).ok_or_else(|| not_found(function))?;
        if entry.replicas == 0 {
            return Err(MemoryError::NoReplicas { name: function.name.clone(), namespace: function.namespace.clone() });
        }
        let instance = format!("{}-{}", function.name, entry.invocations % entry.replicas);
        entry.invocations += 1;
        let secrets = entry
            .deployment
            .secrets
            .iter()
            .filter_map(|name| namespace.secrets.get(name).map(|bytes| (name.clone(), bytes.clone())))
            .collect();
        Ok(Invocation {
            image: entry.deployment.image.clone(),
            instance,
            env: entry.deployment.env_vars.clone(),
            secrets,
        })
    }

    // Secrets.

    pub(crate) fn list_secrets(&self, namespace: &str) -> Result<Vec<Secret>, MemoryError> {
        let names = self.namespace(namespace)?.secrets.keys();
        Ok(names
            .map(|name| Secret { name: name.clone(), namespace: namespace.to_owned(), ..Secret::default() })
            .collect())
    }

    pub(crate) fn create_secret(&mut self, namespace: &str, name: &str, bytes: &[u8]) -> Result<(), MemoryError> {
        let secrets = &mut self.namespace_mut(namespace)?.secrets;
        if secrets.contains_key(name) {
            return Err(MemoryError::SecretExists { name: name.to_owned(), namespace: namespace.to_owned() });
        }
        secrets.insert(name.to_owned(), bytes.to_vec());
        Ok(())
    }

    pub(crate) fn update_secret(&mut self, namespace: &str, name: &str, bytes: &[u8]) -> Result<(), MemoryError> {
        let value = self.namespace_mut(namespace)?.secrets.get_mut(name);
        let value = value.ok_or_else(|| secret_not_found(namespace, name))?;
        *value = bytes.to_vec();
        Ok(())
    }

    pub(crate) fn delete_secret(&mut self, namespace: &str, name: &str) -> Result<(), MemoryError> {
        let secrets = &mut self.namespace_mut(namespace)?.secrets;
        secrets.remove(name).map(drop).ok_or_else(|| secret_not_found(namespace, name))
    }

    // Namespaces.

    pub(crate) fn list_namespaces(&self) -> Vec<String> {
        self.namespaces.keys().cloned().collect()
    }

    pub(crate) fn get_namespace(&self, name: &str) -> Result<FunctionNamespace, MemoryError> {
        Ok(self.namespace(name)?.meta.clone())
    }

    pub(crate) fn create_namespace(&mut self, meta: FunctionNamespace) -> Result<(), MemoryError> {
        if self.namespaces.contains_key(&meta.name) {
            return Err(MemoryError::NamespaceExists { name: meta.name });
        }
        self.insert_namespace(meta);
        Ok(())
    }

    pub(crate) fn update_namespace(&mut self, meta: FunctionNamespace) -> Result<(), MemoryError> {
        let namespace = self.namespace_mut(&meta.name)?;
        namespace.meta = meta;
        Ok(())
    }

    /// Removes a namespace with its functions and secrets, as Kubernetes
    /// does; the default namespace stays.
    pub(crate) fn delete_namespace(&mut self, name: &str) -> Result<(), MemoryError> {
        if name == DEFAULT_NAMESPACE {
            return Err(MemoryError::DefaultNamespace { name: name.to_owned() });
        }
        self.namespaces.remove(name).map(drop).ok_or_else(|| MemoryError::NamespaceNotFound { name: name.to_owned() })
    }
}

impl Namespace {
    /// Every secret a deployment names must exist in its namespace.
    fn check_secrets(&self, deployment: &FunctionDeployment) -> Result<(), MemoryError> {
        match deployment.secrets.iter().find(|name| !self.secrets.contains_key(*name)) {
            Some(missing) => Err(secret_not_found(&self.meta.name, missing)),
            None => Ok(()),
        }
    }
}

impl Function {
    fn status(&self) -> FunctionStatus {
        FunctionStatus {
            replicas: self.replicas,
            // In memory, a replica is available the moment it is asked for.
            available_replicas: self.replicas,
            invocation_count: self.invocations as f64,
            created_at: Some(self.created_at),
            ..FunctionStatus::from_deployment(&self.deployment)
        }
    }
}

fn not_found(function: &FunctionRef) -> MemoryError {
    MemoryError::FunctionNotFound { name: function.name.clone(), namespace: function.namespace.clone() }
}

fn secret_not_found(namespace: &str, name: &str) -> MemoryError {
    MemoryError::SecretNotFound { name: name.to_owned(), namespace: namespace.to_owned() }
}
