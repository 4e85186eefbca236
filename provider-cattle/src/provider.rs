//! [`CattleProvider`]: the [`Provider`] contract over the Rancher API.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use faas_core::{
    validate, Body, Capabilities, Error, FunctionDeployment, FunctionNamespace, FunctionRef, FunctionStatus,
    LogRequest, LogStream, Provider, ProviderInfo, Result, Secret, SoleNamespace, DEFAULT_NAMESPACE,
};
use faas_upstream::{Refresh, Targets, Upstream};
use http::{Request, Response};
use serde_json::json;

use self::transitions::{takes_scale, Progress};
use crate::client::{Api, Schemas};
use crate::config::{normalise_url, CattleConfig};
use crate::error::{CattleError, PROVIDER};
use crate::model::{self, decode, Instance, Resource, Service};

mod secrets;
mod transitions;

/// Functions as Rancher 1.x (Cattle) services, one per function, in one
/// stack.
///
/// Cheap to clone: clones share the connection and caches.
#[derive(Clone)]
pub struct CattleProvider {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) api: Api,
    pub(crate) config: CattleConfig,
    url: String,
    schemas: Schemas,
    services_url: String,
    secrets_url: Option<String>,
    stack_id: String,
    /// Each function's call targets (`host:port`).
    targets: Targets<String>,
    upstream: Upstream,
}

impl std::fmt::Debug for CattleProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CattleProvider")
            .field("url", &self.inner.url)
            .field("stack", &self.inner.config.stack)
            .field("stack_id", &self.inner.stack_id)
            .finish_non_exhaustive()
    }
}

impl CattleProvider {
    /// Connects: discovers the API's schemas (the `X-API-Schemas` header of
    /// the endpoint, then the schema collection), checks that services,
    /// stacks and their upgrade actions exist, and finds or creates the
    /// stack, waiting until it is active.
    ///
    /// Errors: `Invalid` for an unusable URL, `Unavailable` when the server
    /// cannot be reached or rejects the keys (401), `Backend` when it is
    /// not a Rancher v2-beta API or lacks a schema, `Timeout` when the
    /// stack does not become active in time.
    pub async fn connect(config: CattleConfig) -> Result<CattleProvider> {
        validate::dns_label("stack", &config.stack)?;
        let url = normalise_url(&config.url)?;
        let api = Api::new(&config.access_key, &config.secret_key, config.request_timeout);
        let schemas = Schemas::discover(&api, &url).await?;
        let services_url = schemas.collection("service")?;
        let stacks_url = schemas.collection("stack")?;
        for action in ["upgrade", "finishupgrade", "rollback", "cancelupgrade"] {
            if !schemas.has_action("service", action) {
                return Err(CattleError::SchemaMissing { schema: format!("service (action {action})") }.into());
            }
        }
        let secrets_url = if schemas.has("secret") && schemas.field("launchConfig", "secrets").is_some() {
            schemas.collection("secret").ok()
        } else {
            None
        };
        let endpoint_cache_ttl = config.endpoint_cache_ttl;
        let mut provider = CattleProvider {
            inner: Arc::new(Inner {
                api,
                config,
                url,
                schemas,
                services_url,
                secrets_url,
                stack_id: String::new(),
                targets: Targets::new(PROVIDER, Refresh { ttl: endpoint_cache_ttl, ..Refresh::default() }),
                upstream: Upstream::new(),
            }),
        };
        let stack_id = provider.ensure_stack(&stacks_url).await?;
        Arc::get_mut(&mut provider.inner).expect("not shared yet").stack_id = stack_id;
        Ok(provider)
    }

    /// The id of the stack functions live in.
    pub fn stack_id(&self) -> &str {
        &self.inner.stack_id
    }

    /// The normalised API URL in use.
    pub fn api_url(&self) -> &str {
        &self.inner.url
    }

    async fn ensure_stack(&self, stacks_url: &str) -> Result<String> {
        let name = &self.inner.config.stack;
        let api = &self.inner.api;
        let find = || async {
            let list = api.list(stacks_url, &[("name", name)]).await?;
            let found: Vec<Resource> = list
                .into_iter()
                .filter_map(|v| serde_json::from_value::<Resource>(v).ok())
                .filter(|r| r.name == *name && !r.is_removed())
                .collect();
            Ok::<_, CattleError>(found.into_iter().next())
        };
        let stack = match find().await? {
            Some(stack) => stack,
            None => {
                let body = json!({ "type": "stack", "name": name, "startOnCreate": true });
                match api.post(stacks_url, &body).await {
                    Ok(created) => decode::<Resource>(created, "stack")?,
                    Err(CattleError::Api { status: 422, ref code, .. }) if code == "NotUnique" => {
                        find().await?.ok_or_else(|| Error::backend(PROVIDER, format!("stack {name} vanished"), None))?
                    }
                    Err(err) => return Err(err.into()),
                }
            }
        };
        let link = stack.self_link().ok_or_else(|| Error::backend(PROVIDER, "the stack has no self link", None))?;
        let what = format!("activation of stack {name}");
        self.wait(link, &what, self.inner.config.transition_timeout, |r| match r.state.as_str() {
            "active" => Progress::Done,
            s if s.ends_with("ing") || s == "requested" => Progress::Wait,
            _ => Progress::Fail,
        })
        .await?;
        Ok(stack.id)
    }

    fn check_namespace(namespace: &str) -> Result<()> {
        if namespace == DEFAULT_NAMESPACE {
            Ok(())
        } else {
            Err(Error::unsupported(
                PROVIDER,
                format!("namespaces other than {DEFAULT_NAMESPACE} (one stack holds all functions)"),
            ))
        }
    }

    /// The live service running function `name`, if any.
    pub(crate) async fn find(&self, name: &str) -> Result<Option<Service>> {
        let inner = &self.inner;
        let list = inner.api.list(&inner.services_url, &[("name", name), ("stackId", &inner.stack_id)]).await?;
        for value in list {
            let service: Service = decode(value, "service")?;
            let ours = service.stack_id == inner.stack_id && service.function() == Some(name);
            if ours && service.resource.name == name && !service.resource.is_removed() {
                return Ok(Some(service));
            }
        }
        Ok(None)
    }

    async fn require(&self, function: &FunctionRef) -> Result<Service> {
        Self::check_namespace(&function.namespace)?;
        self.find(&function.name).await?.ok_or_else(|| Error::function_not_found(&function.name, &function.namespace))
    }

    /// The service's instances, through its `instances` link.
    pub(crate) async fn instances(&self, service: &Service) -> Result<Vec<Instance>> {
        let Some(link) = service.resource.links.get("instances") else {
            return Ok(Vec::new());
        };
        let list = self.inner.api.list(link, &[]).await?;
        list.into_iter().map(|v| decode::<Instance>(v, "instance")).collect()
    }

    async fn status_of(&self, service: &Service, namespace: &str) -> Result<FunctionStatus> {
        let available = self.instances(service).await?.iter().filter(|i| i.available()).count() as u64;
        Ok(model::status(service, namespace, available))
    }

    fn forget_targets(&self, name: &str) {
        self.inner.targets.forget(&FunctionRef::new(name, DEFAULT_NAMESPACE));
    }
}

#[async_trait]
impl Provider for CattleProvider {
    async fn info(&self) -> Result<ProviderInfo> {
        Ok(ProviderInfo::new(PROVIDER, env!("CARGO_PKG_VERSION"), "cattle"))
    }

    fn capabilities(&self) -> Capabilities {
        let mut capabilities = Capabilities::default();
        capabilities.secrets = self.inner.secrets_url.is_some();
        capabilities
    }

    fn default_namespace(&self) -> &str {
        DEFAULT_NAMESPACE
    }

    async fn list(&self, namespace: &str) -> Result<Vec<FunctionStatus>> {
        Self::check_namespace(namespace)?;
        let inner = &self.inner;
        let list = inner.api.list(&inner.services_url, &[("stackId", &inner.stack_id)]).await?;
        let mut out = Vec::new();
        for value in list {
            let service: Service = decode(value, "service")?;
            if service.stack_id != inner.stack_id || service.resource.is_removed() || service.function().is_none() {
                continue;
            }
            out.push(self.status_of(&service, namespace).await?);
        }
        Ok(out)
    }

    async fn status(&self, function: &FunctionRef) -> Result<FunctionStatus> {
        let service = self.require(function).await?;
        self.status_of(&service, &function.namespace).await
    }

    /// Returns once Rancher has accepted the service (`registering`, then
    /// `activating` until its instances are healthy), without waiting for
    /// `active`: as OpenFaaS answers a deploy with 202, a function becomes
    /// available later (`availableReplicas`). The writes that follow wait
    /// for the state they need (`scale`, `update`); `delete` needs none,
    /// Rancher removes a service in any state.
    async fn deploy(&self, deployment: FunctionDeployment) -> Result<()> {
        deployment.validate()?;
        let function = deployment.function_ref();
        Self::check_namespace(&function.namespace)?;
        let secret_ids = self.secret_ids(&deployment).await?;
        if self.find(&function.name).await?.is_some() {
            return Err(Error::AlreadyExists { kind: "function", name: function.to_string() });
        }
        let launch_config = model::launch_config(&deployment, &self.inner.config, &secret_ids)?;
        let body = json!({
            "type": "service",
            "name": function.name,
            "stackId": self.inner.stack_id,
            "scale": deployment.initial_replicas()?,
            "startOnCreate": true,
            "launchConfig": launch_config,
        });
        self.forget_targets(&function.name);
        match self.inner.api.post(&self.inner.services_url, &body).await {
            Ok(_) => Ok(()),
            Err(CattleError::Api { status: 422, ref code, .. }) if code == "NotUnique" => {
                Err(Error::AlreadyExists { kind: "function", name: function.to_string() })
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn update(&self, deployment: FunctionDeployment) -> Result<()> {
        deployment.validate()?;
        let function = deployment.function_ref();
        let service = self.require(&function).await?;
        let secret_ids = self.secret_ids(&deployment).await?;
        let launch_config = model::launch_config(&deployment, &self.inner.config, &secret_ids)?;
        let service = self.settle(service).await?;
        let link = service.resource.self_link().unwrap_or_default().to_owned();
        let upgrade = Self::action_link(&service, "upgrade")?;
        let body = json!({
            "type": "serviceUpgrade",
            "inServiceStrategy": {
                "type": "inServiceUpgradeStrategy",
                "launchConfig": launch_config,
                "secondaryLaunchConfigs": [],
                "startFirst": true,
                "batchSize": 1,
                "intervalMillis": self.inner.config.upgrade_interval.as_millis() as u64,
            },
            "toServiceStrategy": null,
        });
        self.inner.api.post(&upgrade, &body).await?;
        let limit = self.inner.config.upgrade_timeout;
        let what = format!("upgrade of function {}", function.name);
        let outcome = self
            .wait(&link, &what, limit, |r| match r.state.as_str() {
                "upgraded" => Progress::Done,
                "upgrading" => Progress::Wait,
                _ => Progress::Fail,
            })
            .await;
        self.forget_targets(&function.name);
        match outcome {
            Ok(Some(value)) => {
                let upgraded: Service = decode(value, "service")?;
                self.act_and_wait(&upgraded, "finishupgrade", "active").await?;
                Ok(())
            }
            Ok(None) => Err(Error::function_not_found(&function.name, &function.namespace)),
            Err(CattleError::TransitionTimeout { detail, .. }) | Err(CattleError::TransitionFailed { detail, .. }) => {
                tracing::warn!(function = %function, "upgrade did not complete; rolling back{detail}");
                self.roll_back(&link, &function.name).await?;
                let reason = if detail.is_empty() {
                    "no reason given".to_owned()
                } else {
                    detail.trim().trim_matches(['(', ')']).to_owned()
                };
                Err(CattleError::UpgradeRolledBack {
                    function: function.name.clone(),
                    seconds: limit.as_secs(),
                    reason,
                }
                .into())
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn delete(&self, function: &FunctionRef) -> Result<()> {
        let service = self.require(function).await?;
        let link = service.resource.self_link().unwrap_or_default().to_owned();
        self.forget_targets(&function.name);
        match self.inner.api.delete(&link).await {
            Ok(_) => {}
            Err(CattleError::Api { status: 404, .. }) => {
                return Err(Error::function_not_found(&function.name, &function.namespace))
            }
            Err(err) => return Err(err.into()),
        }
        let what = format!("removal of function {}", function.name);
        self.wait(&link, &what, self.inner.config.transition_timeout, |r| {
            if matches!(r.state.as_str(), "removed" | "purging" | "purged") {
                Progress::Done
            } else {
                Progress::Wait
            }
        })
        .await?;
        Ok(())
    }

    async fn scale(&self, function: &FunctionRef, replicas: u64) -> Result<()> {
        validate::replicas("replicas", replicas)?;
        let service = self.require(function).await?;
        if !self.inner.schemas.updatable("service", "scale") || !self.inner.schemas.allows("service", false, "PUT") {
            return Err(CattleError::SchemaMissing { schema: "service (updatable scale)".into() }.into());
        }
        let service =
            if takes_scale(&service.resource.state) { service } else { self.settle_for_scale(service).await? };
        let link = service.resource.self_link().unwrap_or_default();
        self.inner.api.put(link, &json!({ "scale": replicas })).await?;
        self.forget_targets(&function.name);
        Ok(())
    }

    async fn invoke(&self, function: &FunctionRef, request: Request<Body>) -> Result<Response<Body>> {
        Self::check_namespace(&function.namespace)?;
        let inner = &self.inner;
        inner.targets.call(&inner.upstream, function, request, None, || self.resolve_targets(function)).await
    }

    async fn list_secrets(&self, namespace: &str) -> Result<Vec<Secret>> {
        let url = self.secrets_url(namespace)?;
        let list = self.inner.api.list(url, &[]).await?;
        let mut out = Vec::new();
        for value in list {
            let secret: Resource = decode(value, "secret")?;
            if !secret.is_removed() {
                out.push(Secret { name: secret.name, namespace: namespace.to_owned(), ..Secret::default() });
            }
        }
        Ok(out)
    }

    async fn create_secret(&self, secret: Secret) -> Result<()> {
        self.secrets_url(secret.namespace_or_default())?;
        secret.validate()?;
        if self.find_secret(&secret.name).await?.is_some() {
            return Err(Error::AlreadyExists { kind: "secret", name: secret.name.clone() });
        }
        self.post_secret(&secret).await
    }

    /// Rancher 1.6 secrets' `value` cannot be changed by PUT (the schema
    /// says `update: false`): the secret is replaced (deleted and created
    /// again under the same name). Functions deployed before keep the
    /// value they were started with until they are updated.
    async fn update_secret(&self, secret: Secret) -> Result<()> {
        self.secrets_url(secret.namespace_or_default())?;
        secret.validate()?;
        let existing = self
            .find_secret(&secret.name)
            .await?
            .ok_or_else(|| Error::NotFound { kind: "secret", name: secret.name.clone() })?;
        let link = existing.self_link().unwrap_or_default().to_owned();
        if self.inner.schemas.updatable("secret", "value") {
            let value = base64::engine::general_purpose::STANDARD.encode(secret.bytes());
            self.inner.api.put(&link, &json!({ "value": value })).await?;
            return Ok(());
        }
        self.inner.api.delete(&link).await?;
        self.post_secret(&secret).await
    }

    async fn delete_secret(&self, namespace: &str, name: &str) -> Result<()> {
        self.secrets_url(namespace)?;
        let existing =
            self.find_secret(name).await?.ok_or_else(|| Error::NotFound { kind: "secret", name: name.to_owned() })?;
        match self.inner.api.delete(existing.self_link().unwrap_or_default()).await {
            Ok(_) => Ok(()),
            Err(CattleError::Api { status: 404, .. }) => Err(Error::NotFound { kind: "secret", name: name.to_owned() }),
            Err(err) => Err(err.into()),
        }
    }

    async fn logs(&self, _request: LogRequest) -> Result<LogStream> {
        Err(Error::unsupported(
            PROVIDER,
            "logs (Rancher 1.x serves container logs only over a host-agent websocket, which this provider does not speak)",
        ))
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        Ok(SoleNamespace::default().list())
    }

    async fn get_namespace(&self, name: &str) -> Result<FunctionNamespace> {
        SoleNamespace::default().get(name)
    }

    async fn create_namespace(&self, _namespace: FunctionNamespace) -> Result<()> {
        Err(Error::unsupported(PROVIDER, "namespace creation"))
    }

    async fn update_namespace(&self, _namespace: FunctionNamespace) -> Result<()> {
        Err(Error::unsupported(PROVIDER, "namespace updates"))
    }

    async fn delete_namespace(&self, _name: &str) -> Result<()> {
        Err(Error::unsupported(PROVIDER, "namespace deletion"))
    }

    async fn cpu_usage(&self, _function: &FunctionRef) -> Result<std::time::Duration> {
        Err(Error::unsupported(PROVIDER, "CPU measurement"))
    }
}
