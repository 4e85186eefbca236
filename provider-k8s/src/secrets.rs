//! Function secrets as Kubernetes Secrets of type `Opaque`, labelled
//! [`MANAGED_BY_LABEL`]` = faas-rs`, the value under a key named as the
//! secret (so a projected volume item maps it to
//! `/var/openfaas/secrets/<name>`). Secrets without the label are neither
//! listed nor changed. Values never appear in errors or logs.

use std::collections::BTreeMap;
use std::time::Duration;

use faas_core::{Error, Result, Secret};
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};

use crate::error::{api, K8sError};
use crate::spec::{is_managed, managed_labels, MANAGED_BY, MANAGED_BY_LABEL};

/// The Kubernetes Secret holding `secret`.
pub(crate) fn kube_secret(secret: &Secret, namespace: &str) -> KubeSecret {
    KubeSecret {
        metadata: ObjectMeta {
            name: Some(secret.name.clone()),
            namespace: Some(namespace.to_owned()),
            labels: Some(managed_labels()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(secret.name.clone(), ByteString(secret.bytes().to_vec()))])),
        type_: Some("Opaque".to_owned()),
        ..Default::default()
    }
}

/// The secrets of namespace, and the API calls on them.
pub(crate) struct Secrets {
    api: Api<KubeSecret>,
    namespace: String,
    limit: Duration,
}

impl Secrets {
    pub(crate) fn new(client: &Client, namespace: &str, limit: Duration) -> Self {
        Secrets { api: Api::namespaced(client.clone(), namespace), namespace: namespace.to_owned(), limit }
    }

    fn qualified(&self, name: &str) -> String {
        format!("{name}.{}", self.namespace)
    }

    /// The provider's secrets, without values.
    pub(crate) async fn list(&self) -> Result<Vec<Secret>> {
        let params = ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
        let list = api(self.limit, "list secrets", "secret", &self.namespace, self.api.list(&params)).await?;
        let mut secrets: Vec<Secret> = list
            .items
            .into_iter()
            .filter(|s| s.metadata.deletion_timestamp.is_none())
            .filter_map(|s| s.metadata.name)
            .map(|name| Secret { name, namespace: self.namespace.clone(), ..Secret::default() })
            .collect();
        secrets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(secrets)
    }

    /// The provider's secret `name`, if there is one.
    pub(crate) async fn get(&self, name: &str) -> Result<Option<KubeSecret>> {
        match api(self.limit, "read a secret", "secret", &self.qualified(name), self.api.get(name)).await {
            Ok(secret) if is_managed(&secret.metadata) && secret.metadata.deletion_timestamp.is_none() => {
                Ok(Some(secret))
            }
            Ok(_) => Ok(None),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Creates `secret`; `AlreadyExists` if the name is taken (ours or
    /// not).
    pub(crate) async fn create(&self, secret: &Secret) -> Result<()> {
        let object = kube_secret(secret, &self.namespace);
        let qualified = self.qualified(&secret.name);
        api(self.limit, "create a secret", "secret", &qualified, self.api.create(&PostParams::default(), &object))
            .await?;
        Ok(())
    }

    /// Replaces the value of the provider's secret, retrying conflicts.
    pub(crate) async fn update(&self, secret: &Secret, retries: u32) -> Result<()> {
        let qualified = self.qualified(&secret.name);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let Some(mut current) = self.get(&secret.name).await? else {
                return Err(Error::NotFound { kind: "secret", name: qualified });
            };
            current.data = Some(BTreeMap::from([(secret.name.clone(), ByteString(secret.bytes().to_vec()))]));
            current.string_data = None;
            let params = PostParams::default();
            let replaced = self.api.replace(&secret.name, &params, &current);
            match api(self.limit, "update a secret", "secret", &qualified, replaced).await {
                Ok(_) => return Ok(()),
                Err(err) if err.is_conflict() && attempts <= retries => continue,
                Err(err) if err.is_conflict() => {
                    return Err(K8sError::Conflict {
                        action: format!("update secret {qualified}"),
                        attempts,
                        message: err.to_string(),
                    }
                    .into())
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Deletes the provider's secret `name`.
    pub(crate) async fn delete(&self, name: &str) -> Result<()> {
        let qualified = self.qualified(name);
        if self.get(name).await?.is_none() {
            return Err(Error::NotFound { kind: "secret", name: qualified });
        }
        api(self.limit, "delete a secret", "secret", &qualified, self.api.delete(name, &DeleteParams::default()))
            .await?;
        Ok(())
    }

    /// Checks that every one of `names` is a secret of the provider, for a
    /// deployment mounting them.
    pub(crate) async fn require(&self, names: &[String]) -> Result<()> {
        for name in names {
            if self.get(name).await?.is_none() {
                return Err(Error::invalid(
                    "secrets",
                    format!("secret {name:?} does not exist in namespace {:?}; create it first", self.namespace),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_values_are_stored_under_the_secret_name() {
        let secret = Secret { name: "db.password".into(), raw_value: b"\0\xffraw".to_vec(), ..Secret::default() };
        let object = kube_secret(&secret, "fns");
        assert!(is_managed(&object.metadata));
        assert_eq!(object.metadata.namespace.as_deref(), Some("fns"));
        assert_eq!(object.data.unwrap().get("db.password").unwrap().0, b"\0\xffraw");
        let debug = format!("{:?}", Secret { value: "hunter2".into(), ..secret });
        assert!(!debug.contains("hunter2"));
    }
}
