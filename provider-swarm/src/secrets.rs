//! Secrets as Swarm secrets.
//!
//! Swarm secrets are immutable, so each value is one Swarm secret named
//! `<name>_<8 hex>` and labelled [`SECRET_LABEL`]`=<name>`. Updating a
//! secret creates a new version, moves every function using the old one to
//! it (a rolling update of each service) and removes the old version.

use std::collections::HashMap;

use base64::Engine;
use bollard::models::{Secret as SwarmSecret, SecretSpec};
use bollard::query_parameters::ListSecretsOptions;
use bollard::Docker;

use crate::config::SwarmConfig;
use crate::error::{status_of, SwarmError};
use crate::spec::{SecretRef, SECRET_LABEL};

/// Every version of every managed secret, by secret name, newest last.
pub(crate) async fn versions(
    docker: &Docker,
    config: &SwarmConfig,
) -> Result<HashMap<String, Vec<SecretRef>>, SwarmError> {
    let mut labels = vec![SECRET_LABEL.to_owned()];
    labels.extend(config.labels.iter().map(|(k, v)| format!("{k}={v}")));
    let filters = HashMap::from([("label".to_owned(), labels)]);
    let listed = docker
        .list_secrets(Some(ListSecretsOptions { filters: Some(filters) }))
        .await
        .map_err(|e| SwarmError::docker("list secrets", e))?;
    let mut sorted: Vec<SwarmSecret> = listed;
    sorted.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    let mut out: HashMap<String, Vec<SecretRef>> = HashMap::new();
    for secret in sorted {
        let Some(spec) = secret.spec else { continue };
        let Some(name) = spec.labels.as_ref().and_then(|l| l.get(SECRET_LABEL)).cloned() else { continue };
        let (Some(id), Some(swarm_name)) = (secret.id, spec.name) else { continue };
        out.entry(name.clone()).or_default().push(SecretRef { id, swarm_name, name });
    }
    Ok(out)
}

/// Creates a new version of secret `name` holding `value`.
pub(crate) async fn create_version(
    docker: &Docker,
    config: &SwarmConfig,
    name: &str,
    value: &[u8],
) -> Result<SecretRef, SwarmError> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let swarm_name = format!("{name}_{}", &id[..8]);
    let mut labels: HashMap<String, String> = config.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    labels.insert(SECRET_LABEL.to_owned(), name.to_owned());
    let spec = SecretSpec {
        name: Some(swarm_name.clone()),
        labels: Some(labels),
        data: Some(base64::engine::general_purpose::STANDARD.encode(value)),
        ..SecretSpec::default()
    };
    let created =
        docker.create_secret(spec).await.map_err(|e| SwarmError::docker(format!("create secret {name}"), e))?;
    Ok(SecretRef { id: created.id, swarm_name, name: name.to_owned() })
}

/// Removes one version; `false` if the engine refused because a service
/// still uses it. Already gone counts as removed.
pub(crate) async fn remove_version(docker: &Docker, version: &SecretRef) -> Result<bool, SwarmError> {
    match docker.delete_secret(&version.id).await {
        Ok(()) => Ok(true),
        Err(e) if status_of(&e) == Some(404) => Ok(true),
        Err(e) if matches!(status_of(&e), Some(400 | 409 | 500)) && e.to_string().contains("in use") => Ok(false),
        Err(e) => Err(SwarmError::docker(format!("remove secret {}", version.swarm_name), e)),
    }
}
