//! Function namespaces: the namespaces labelled `openfaas=1` (as
//! faas-netes labels them) plus the default function namespace. Creating,
//! updating and deleting them is allowed only when configured
//! ([`crate::K8sConfig::manage_namespaces`]); the provider labels what it
//! creates and changes or deletes only namespaces labelled `openfaas=1`.
//! A namespace being deleted (`Terminating`) counts as gone.

use std::collections::BTreeMap;
use std::time::Duration;

use faas_core::{Error, FunctionNamespace, Result};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};

use crate::error::{api, K8sError};
use crate::spec::{managed_labels, MANAGED_BY_LABEL, NAMESPACE_LABEL, RESERVED_PREFIX};

/// Namespaces, and the API calls on them.
pub(crate) struct Namespaces {
    api: Api<Namespace>,
    default: String,
    limit: Duration,
}

fn labelled(namespace: &Namespace) -> bool {
    namespace.metadata.labels.as_ref().and_then(|l| l.get(NAMESPACE_LABEL)).is_some_and(|v| v == "1")
}

fn terminating(namespace: &Namespace) -> bool {
    namespace.metadata.deletion_timestamp.is_some()
        || namespace.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating")
}

/// The labels a namespace of the provider carries: the user's, plus
/// `openfaas=1` and the managed-by label.
fn namespace_labels(user: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut labels = user.clone();
    labels.extend(managed_labels());
    labels.insert(NAMESPACE_LABEL.to_owned(), "1".to_owned());
    labels
}

fn validate(namespace: &FunctionNamespace) -> Result<()> {
    faas_core::validate::namespace("name", &namespace.name)?;
    for (field, map) in [("labels", &namespace.labels), ("annotations", &namespace.annotations)] {
        for key in map.keys() {
            faas_core::validate::label_key(&format!("{field}.{key}"), key)?;
            if key == NAMESPACE_LABEL || key == MANAGED_BY_LABEL || key.starts_with(RESERVED_PREFIX) {
                return Err(Error::invalid(format!("{field}.{key}"), "is reserved for the provider's own use"));
            }
        }
    }
    Ok(())
}

fn function_namespace(namespace: Namespace) -> FunctionNamespace {
    let labels = namespace
        .metadata
        .labels
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k != NAMESPACE_LABEL && k != MANAGED_BY_LABEL && !k.starts_with(RESERVED_PREFIX))
        .collect();
    FunctionNamespace {
        name: namespace.metadata.name.unwrap_or_default(),
        labels,
        annotations: namespace.metadata.annotations.unwrap_or_default(),
    }
}

impl Namespaces {
    pub(crate) fn new(client: &Client, default: &str, limit: Duration) -> Self {
        Namespaces { api: Api::all(client.clone()), default: default.to_owned(), limit }
    }

    /// The function namespace `name` (labelled, or the default one), not
    /// being deleted.
    async fn get_raw(&self, name: &str) -> Result<Option<Namespace>> {
        match api(self.limit, "read a namespace", "namespace", name, self.api.get(name)).await {
            Ok(ns) if !terminating(&ns) && (labelled(&ns) || name == self.default) => Ok(Some(ns)),
            Ok(_) => Ok(None),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Every function namespace, sorted, the default one included.
    pub(crate) async fn list(&self) -> Result<Vec<String>> {
        let params = ListParams::default().labels(&format!("{NAMESPACE_LABEL}=1"));
        let list = api(self.limit, "list namespaces", "namespace", "", self.api.list(&params)).await?;
        let mut names: Vec<String> =
            list.items.into_iter().filter(|ns| !terminating(ns)).filter_map(|ns| ns.metadata.name).collect();
        if !names.contains(&self.default) {
            names.push(self.default.clone());
        }
        names.sort();
        Ok(names)
    }

    /// One function namespace; `NotFound` when it does not exist, is not
    /// labelled for functions, or is being deleted.
    pub(crate) async fn get(&self, name: &str) -> Result<FunctionNamespace> {
        faas_core::validate::namespace("name", name)?;
        match self.get_raw(name).await? {
            Some(ns) => Ok(function_namespace(ns)),
            None => Err(Error::NotFound { kind: "namespace", name: name.to_owned() }),
        }
    }

    /// Checks that functions may live in `name`.
    pub(crate) async fn require(&self, name: &str) -> Result<()> {
        if name == self.default {
            return Ok(());
        }
        match self.get_raw(name).await? {
            Some(_) => Ok(()),
            None => Err(Error::invalid(
                "namespace",
                format!(
                    "{name:?} is not a function namespace (it does not exist or lacks the label {NAMESPACE_LABEL}=1)"
                ),
            )),
        }
    }

    pub(crate) async fn create(&self, namespace: &FunctionNamespace) -> Result<()> {
        validate(namespace)?;
        let object = Namespace {
            metadata: ObjectMeta {
                name: Some(namespace.name.clone()),
                labels: Some(namespace_labels(&namespace.labels)),
                annotations: (!namespace.annotations.is_empty()).then(|| namespace.annotations.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        let params = PostParams::default();
        let created = self.api.create(&params, &object);
        api(self.limit, "create a namespace", "namespace", &namespace.name, created).await?;
        Ok(())
    }

    pub(crate) async fn update(&self, namespace: &FunctionNamespace, retries: u32) -> Result<()> {
        validate(namespace)?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let Some(mut current) = self.get_raw(&namespace.name).await?.filter(labelled) else {
                return Err(Error::NotFound { kind: "namespace", name: namespace.name.clone() });
            };
            current.metadata.labels = Some(namespace_labels(&namespace.labels));
            current.metadata.annotations = Some(namespace.annotations.clone());
            let params = PostParams::default();
            let replaced = self.api.replace(&namespace.name, &params, &current);
            match api(self.limit, "update a namespace", "namespace", &namespace.name, replaced).await {
                Ok(_) => return Ok(()),
                Err(err) if err.is_conflict() && attempts <= retries => continue,
                Err(err) if err.is_conflict() => {
                    return Err(K8sError::Conflict {
                        action: format!("update namespace {}", namespace.name),
                        attempts,
                        message: err.to_string(),
                    }
                    .into())
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    pub(crate) async fn delete(&self, name: &str) -> Result<()> {
        faas_core::validate::namespace("name", name)?;
        if self.get_raw(name).await?.filter(labelled).is_none() {
            return Err(Error::NotFound { kind: "namespace", name: name.to_owned() });
        }
        let params = DeleteParams::foreground();
        let deleted = self.api.delete(name, &params);
        api(self.limit, "delete a namespace", "namespace", name, deleted).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_labels_are_added_and_hidden() {
        let user = BTreeMap::from([("team".to_owned(), "blue".to_owned())]);
        let labels = namespace_labels(&user);
        assert_eq!(labels.get(NAMESPACE_LABEL).map(String::as_str), Some("1"));
        let ns = Namespace {
            metadata: ObjectMeta { name: Some("fns".into()), labels: Some(labels), ..Default::default() },
            ..Default::default()
        };
        assert!(labelled(&ns));
        assert_eq!(function_namespace(ns).labels, user);
        let reserved = FunctionNamespace {
            name: "fns".into(),
            labels: BTreeMap::from([(NAMESPACE_LABEL.to_owned(), "0".to_owned())]),
            ..Default::default()
        };
        assert!(validate(&reserved).is_err());
    }
}
