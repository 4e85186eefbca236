//! Rancher 1.6's secrets: finding them by name, creating them, and the
//! ids a deployment's launch config refers to them by.

use std::collections::BTreeMap;

use base64::Engine;
use faas_core::{Error, FunctionDeployment, Result, Secret, DEFAULT_NAMESPACE};
use serde_json::json;

use super::CattleProvider;
use crate::error::{CattleError, PROVIDER};
use crate::model::{decode, Resource};

impl CattleProvider {
    pub(super) async fn secret_ids(&self, deployment: &FunctionDeployment) -> Result<BTreeMap<String, String>> {
        let mut ids = BTreeMap::new();
        if deployment.secrets.is_empty() {
            return Ok(ids);
        }
        if self.inner.secrets_url.is_none() {
            return Err(self.no_secrets());
        }
        for name in &deployment.secrets {
            let secret = self
                .find_secret(name)
                .await?
                .ok_or_else(|| Error::invalid("secrets", format!("secret {name:?} does not exist; create it first")))?;
            ids.insert(name.clone(), secret.id);
        }
        Ok(ids)
    }

    pub(super) fn no_secrets(&self) -> Error {
        Error::unsupported(PROVIDER, "secrets (this Rancher server has no secret schema)")
    }

    pub(super) fn secrets_url(&self, namespace: &str) -> Result<&str> {
        let url = self.inner.secrets_url.as_deref().ok_or_else(|| self.no_secrets())?;
        Self::check_namespace(namespace)?;
        Ok(url)
    }

    pub(super) async fn find_secret(&self, name: &str) -> Result<Option<Resource>> {
        let url = self.secrets_url(DEFAULT_NAMESPACE)?;
        let list = self.inner.api.list(url, &[("name", name)]).await?;
        for value in list {
            let secret: Resource = decode(value, "secret")?;
            if secret.name == name && !secret.is_removed() {
                return Ok(Some(secret));
            }
        }
        Ok(None)
    }

    pub(super) async fn post_secret(&self, secret: &Secret) -> Result<()> {
        let url = self.secrets_url(secret.namespace_or_default())?;
        let body = json!({
            "type": "secret",
            "name": secret.name,
            "value": base64::engine::general_purpose::STANDARD.encode(secret.bytes()),
        });
        match self.inner.api.post(url, &body).await {
            Ok(_) => Ok(()),
            Err(CattleError::Api { status: 422, ref code, .. }) if code == "NotUnique" => {
                Err(Error::AlreadyExists { kind: "secret", name: secret.name.clone() })
            }
            Err(err) => Err(err.into()),
        }
    }
}
