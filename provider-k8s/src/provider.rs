//! [`K8sProvider`]: the [`Provider`] operations on Deployments, Services,
//! Secrets, Pods and Namespaces.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use faas_core::{
    Body, Capabilities, Error, FunctionDeployment, FunctionNamespace, FunctionRef, FunctionStatus, LogRequest,
    LogStream, Provider, ProviderInfo, Result, Secret, SoleNamespace,
};
use faas_upstream::{Attempt, Call, Upstream, UpstreamError};
use http::{Request, Response};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};

use crate::cache::Cache;
use crate::config::{InvokeMode, K8sConfig};
use crate::error::{api, K8sError, PROVIDER};
use crate::invoke;
use crate::logs::{self, LogQuery};
use crate::namespaces::Namespaces;
use crate::secrets::Secrets;
use crate::spec;

/// A [`Provider`] running each function as a Kubernetes Deployment and a
/// ClusterIP Service of the same name in the function's namespace.
///
/// - **Objects.** The Deployment and its pods carry `faas_function=<name>`
///   (the Service's selector, reported among the labels) and `app.kubernetes.io/managed-by=faas-rs`
///   (what marks them as the provider's), plus the user's labels; the
///   user's annotations go on the Deployment and its pod template. An
///   existing Deployment or Service of that name without the managed-by
///   label is refused (`AlreadyExists`, naming it as not managed by
///   faas-rs) and left untouched.
/// - **Pods.** One container `function` running the image, `fprocess` and
///   the env vars in its environment, limits and requests as given,
///   `readOnlyRootFilesystem` (with an `emptyDir` at `/tmp`), constraints
///   (`key=value`, `key==value`) as the node selector, secrets in a
///   projected volume at `/var/openfaas/secrets/<name>`, a readiness
///   probe on the watchdog's `/_/ready` and a liveness probe on
///   `/_/health`, port 8080 (`http`). Updates roll with `maxSurge: 1,
///   maxUnavailable: 0`. A new function starts with the replicas of its
///   `com.openfaas.scale.min` label (0 allowed), else 1.
/// - **Reads.** `list`, `status` and endpoint lookups read the watch cache
///   (see the crate docs), never the API server. After each write the
///   provider waits (bounded by
///   [`K8sConfig::write_visibility_timeout`]) for the cache to show it.
/// - **Writes.** `update` replaces the Deployment on a fresh read
///   (replicas kept), `scale` writes the `scale` subresource; both retry
///   a 409 Conflict up to [`K8sConfig::conflict_retries`] times; the
///   Service's spec depends only on the name, so `update` only recreates it
///   if it went missing. `delete` removes the Deployment and the Service
///   with foreground propagation: the function is gone for `list` and
///   `status` at once, but its name stays taken (a new deploy is
///   `AlreadyExists`) until Kubernetes has removed its pods.
pub struct K8sProvider {
    client: Client,
    config: K8sConfig,
    cache: Cache,
    upstream: Upstream,
    next: AtomicUsize,
}

impl std::fmt::Debug for K8sProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("K8sProvider").field("config", &self.config).finish_non_exhaustive()
    }
}

impl K8sProvider {
    /// A provider talking to the cluster through `client`. Starts the
    /// watches and waits (up to [`K8sConfig::sync_timeout`]) for their
    /// first listing: `Unavailable` if the API server cannot be reached or
    /// `Forbidden`-like failures keep the watches from listing.
    pub async fn new(client: Client, config: K8sConfig) -> Result<Self> {
        faas_core::validate::namespace("namespace", &config.namespace)?;
        let cache = Cache::start(&client, &config).await?;
        tracing::info!(
            namespace = %config.namespace,
            cluster_wide = config.cluster_wide,
            invoke = invoke::mode_name(config.invoke),
            "kubernetes provider ready"
        );
        Ok(K8sProvider { client, config, cache, upstream: Upstream::new(), next: AtomicUsize::new(0) })
    }

    /// A provider for the cluster of the local kubeconfig (`KUBECONFIG`,
    /// `~/.kube/config`), or, inside a pod, of its service account.
    pub async fn try_default(config: K8sConfig) -> Result<Self> {
        let client = Client::try_default().await.map_err(|e| {
            Error::unavailable(
                PROVIDER,
                "no Kubernetes client configuration (neither a kubeconfig nor an in-cluster service account)",
                Some(Box::new(e) as faas_core::BoxError),
            )
        })?;
        Self::new(client, config).await
    }

    /// The configuration in use.
    pub fn config(&self) -> &K8sConfig {
        &self.config
    }

    /// `namespace`, or the configured one when empty.
    fn resolve<'a>(&'a self, namespace: &'a str) -> &'a str {
        if namespace.is_empty() {
            &self.config.namespace
        } else {
            namespace
        }
    }

    /// Checks that the provider serves `namespace`.
    fn check_namespace(&self, namespace: &str) -> Result<()> {
        faas_core::validate::namespace("namespace", namespace)?;
        if !self.config.cluster_wide && namespace != self.config.namespace {
            return Err(Error::invalid(
                "namespace",
                format!("this provider serves only namespace {:?} (cluster_wide is off)", self.config.namespace),
            ));
        }
        Ok(())
    }

    fn deployments(&self, namespace: &str) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn services(&self, namespace: &str) -> Api<Service> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn secrets(&self, namespace: &str) -> Result<Secrets> {
        self.check_namespace(namespace)?;
        Ok(Secrets::new(&self.client, namespace, self.config.api_timeout))
    }

    fn namespaces(&self) -> Namespaces {
        Namespaces::new(&self.client, &self.config.namespace, self.config.api_timeout)
    }

    /// Checks the namespace, its existence, and the secrets of a
    /// deployment about to be written.
    async fn check_deployment(&self, deployment: &FunctionDeployment, namespace: &str) -> Result<()> {
        spec::validate(deployment)?;
        self.check_namespace(namespace)?;
        if self.config.cluster_wide && namespace != self.config.namespace {
            self.namespaces().require(namespace).await?;
        }
        if !deployment.secrets.is_empty() {
            self.secrets(namespace)?.require(&deployment.secrets).await?;
        }
        Ok(())
    }

    /// The Deployment of function `name` read from the API server (not the
    /// cache); `NotFound` unless it is a function of the provider.
    async fn read_function(&self, namespace: &str, name: &str) -> Result<Deployment> {
        let qualified = format!("{name}.{namespace}");
        let deployments = self.deployments(namespace);
        let read = deployments.get(name);
        match api(self.config.api_timeout, "read a deployment", "function", &qualified, read).await {
            Ok(deployment) if spec::is_function(&deployment) => Ok(deployment),
            Ok(_) => Err(Error::function_not_found(name, namespace)),
            Err(err) => Err(err.into()),
        }
    }

    /// The Service of function `name`: `None` if absent, `NotOurs` if not
    /// the provider's.
    async fn read_service(&self, namespace: &str, name: &str) -> Result<Option<Service>, K8sError> {
        let qualified = format!("{name}.{namespace}");
        let services = self.services(namespace);
        let read = services.get(name);
        match api(self.config.api_timeout, "read a service", "function", &qualified, read).await {
            Ok(service) if spec::is_managed(&service.metadata) => Ok(Some(service)),
            Ok(_) => Err(K8sError::NotOurs { what: format!("Service {namespace}/{name}") }),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Removes a Deployment this call created, when the rest of the deploy
    /// failed.
    async fn roll_back(&self, namespace: &str, name: &str) {
        let (deployments, params) = (self.deployments(namespace), DeleteParams::background());
        let delete = deployments.delete(name, &params);
        if let Err(err) = api(self.config.api_timeout, "roll back a deployment", "function", name, delete).await {
            tracing::warn!(namespace, name, error = %err, "could not remove the deployment of a failed deploy");
        }
    }

    /// Creates the Service of function `name` unless it exists.
    async fn ensure_service(&self, namespace: &str, name: &str) -> Result<(), K8sError> {
        if self.read_service(namespace, name).await?.is_some() {
            return Ok(());
        }
        self.create_service(namespace, name).await
    }

    /// Creates the Service of function `name`; one of ours already there
    /// is fine.
    async fn create_service(&self, namespace: &str, name: &str) -> Result<(), K8sError> {
        let qualified = format!("{name}.{namespace}");
        let (services, params, service) =
            (self.services(namespace), PostParams::default(), spec::service(name, namespace));
        let create = services.create(&params, &service);
        match api(self.config.api_timeout, "create a service", "function", &qualified, create).await {
            Ok(_) => Ok(()),
            // Created meanwhile: fine if it is ours.
            Err(err) if err.is_already_exists() => self.read_service(namespace, name).await.map(|_| ()),
            Err(err) => Err(err),
        }
    }

    fn conflict(action: String, attempts: u32, err: K8sError) -> Error {
        K8sError::Conflict { action, attempts, message: err.to_string() }.into()
    }
}

#[async_trait]
impl Provider for K8sProvider {
    async fn info(&self) -> Result<ProviderInfo> {
        Ok(ProviderInfo::new(PROVIDER, env!("CARGO_PKG_VERSION"), "kubernetes"))
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.secrets = true;
        caps.logs = true;
        caps.log_follow = true;
        caps.namespaces = self.config.cluster_wide;
        caps.manage_namespaces = self.config.cluster_wide && self.config.manage_namespaces;
        caps
    }

    /// The configured namespace (`FAAS_K8S_NAMESPACE`), not `openfaas-fn`.
    fn default_namespace(&self) -> &str {
        &self.config.namespace
    }

    async fn list(&self, namespace: &str) -> Result<Vec<FunctionStatus>> {
        let namespace = self.resolve(namespace);
        self.check_namespace(namespace)?;
        Ok(self.cache.functions(namespace).iter().map(|d| spec::function_status(d)).collect())
    }

    async fn status(&self, function: &FunctionRef) -> Result<FunctionStatus> {
        let namespace = self.resolve(&function.namespace);
        self.check_namespace(namespace)?;
        match self.cache.function(namespace, &function.name) {
            Some(deployment) => Ok(spec::function_status(&deployment)),
            None => Err(Error::function_not_found(&function.name, namespace)),
        }
    }

    async fn deploy(&self, deployment: FunctionDeployment) -> Result<()> {
        let namespace = self.resolve(&deployment.namespace).to_owned();
        self.check_deployment(&deployment, &namespace).await?;
        let name = deployment.service.clone();
        let qualified = format!("{name}.{namespace}");
        // A foreign Service of the name is refused before anything is made.
        let existing_service = self.read_service(&namespace, &name).await?;

        let replicas = i32::try_from(deployment.initial_replicas()?).unwrap_or(i32::MAX);
        let object = spec::deployment(&self.config, &deployment, replicas);
        let created = match api(
            self.config.api_timeout,
            "create a deployment",
            "function",
            &qualified,
            self.deployments(&namespace).create(&PostParams::default(), &object),
        )
        .await
        {
            Ok(created) => created,
            Err(err) if err.is_already_exists() => {
                return match api(
                    self.config.api_timeout,
                    "read a deployment",
                    "function",
                    &qualified,
                    self.deployments(&namespace).get(&name),
                )
                .await
                {
                    Ok(existing) if spec::is_managed(&existing.metadata) => {
                        Err(Error::AlreadyExists { kind: "function", name: qualified })
                    }
                    Ok(_) => Err(K8sError::NotOurs { what: format!("Deployment {namespace}/{name}") }.into()),
                    Err(err) => Err(err.into()),
                };
            }
            Err(err) => return Err(err.into()),
        };
        let service = match existing_service {
            Some(_) => Ok(()),
            None => self.create_service(&namespace, &name).await,
        };
        if let Err(err) = service {
            self.roll_back(&namespace, &name).await;
            return Err(err.into());
        }
        if let Some(rv) = created.metadata.resource_version.as_deref() {
            self.cache.wait_written(self.config.write_visibility_timeout, &namespace, &name, rv).await;
        }
        Ok(())
    }

    async fn update(&self, deployment: FunctionDeployment) -> Result<()> {
        let namespace = self.resolve(&deployment.namespace).to_owned();
        self.check_deployment(&deployment, &namespace).await?;
        let name = deployment.service.clone();
        let qualified = format!("{name}.{namespace}");
        let mut attempts = 0;
        let written = loop {
            attempts += 1;
            let current = self.read_function(&namespace, &name).await?;
            let replicas = current.spec.replicas.unwrap_or(1);
            let mut object = spec::deployment(&self.config, &deployment, replicas);
            object.metadata.resource_version = current.metadata.resource_version.clone();
            match api(
                self.config.api_timeout,
                "update a deployment",
                "function",
                &qualified,
                self.deployments(&namespace).replace(&name, &PostParams::default(), &object),
            )
            .await
            {
                Ok(written) => break written,
                Err(err) if err.is_conflict() && attempts <= self.config.conflict_retries => {
                    tracing::debug!(function = %qualified, attempts, "update conflicted; retrying on a fresh read");
                }
                Err(err) if err.is_conflict() => {
                    return Err(Self::conflict(format!("update function {qualified}"), attempts, err))
                }
                Err(err) => return Err(err.into()),
            }
        };
        self.ensure_service(&namespace, &name).await?;
        if let Some(rv) = written.metadata.resource_version.as_deref() {
            self.cache.wait_written(self.config.write_visibility_timeout, &namespace, &name, rv).await;
        }
        Ok(())
    }

    async fn delete(&self, function: &FunctionRef) -> Result<()> {
        let namespace = self.resolve(&function.namespace).to_owned();
        self.check_namespace(&namespace)?;
        let name = &function.name;
        let qualified = format!("{name}.{namespace}");
        self.read_function(&namespace, name).await?;
        api(
            self.config.api_timeout,
            "delete a deployment",
            "function",
            &qualified,
            self.deployments(&namespace).delete(name, &DeleteParams::foreground()),
        )
        .await?;
        match self.read_service(&namespace, name).await {
            Ok(Some(_)) => {
                match api(
                    self.config.api_timeout,
                    "delete a service",
                    "function",
                    &qualified,
                    self.services(&namespace).delete(name, &DeleteParams::foreground()),
                )
                .await
                {
                    Ok(_) => {}
                    Err(err) if err.is_not_found() => {}
                    Err(err) => return Err(err.into()),
                }
            }
            Ok(None) => {}
            Err(K8sError::NotOurs { what }) => tracing::warn!(%what, "left a service not managed by faas-rs in place"),
            Err(err) => return Err(err.into()),
        }
        self.cache.wait_deleted(self.config.write_visibility_timeout, &namespace, name).await;
        Ok(())
    }

    async fn scale(&self, function: &FunctionRef, replicas: u64) -> Result<()> {
        faas_core::validate::replicas("replicas", replicas)?;
        let namespace = self.resolve(&function.namespace).to_owned();
        self.check_namespace(&namespace)?;
        let name = &function.name;
        let qualified = format!("{name}.{namespace}");
        self.read_function(&namespace, name).await?;
        let deployments = self.deployments(&namespace);
        let mut attempts = 0;
        let written = loop {
            attempts += 1;
            let read = deployments.get_scale(name);
            let mut scale = api(self.config.api_timeout, "read a scale", "function", &qualified, read).await?;
            scale.spec.get_or_insert_with(Default::default).replicas = Some(replicas as i32);
            scale.status = None;
            match api(
                self.config.api_timeout,
                "scale a deployment",
                "function",
                &qualified,
                deployments.replace_scale(name, &PostParams::default(), &scale),
            )
            .await
            {
                Ok(written) => break written,
                Err(err) if err.is_conflict() && attempts <= self.config.conflict_retries => {
                    tracing::debug!(function = %qualified, attempts, "scale conflicted; retrying on a fresh read");
                }
                Err(err) if err.is_conflict() => {
                    return Err(Self::conflict(format!("scale function {qualified}"), attempts, err))
                }
                Err(err) => return Err(err.into()),
            }
        };
        if let Some(rv) = written.metadata.resource_version.as_deref() {
            self.cache.wait_written(self.config.write_visibility_timeout, &namespace, name, rv).await;
        }
        Ok(())
    }

    async fn invoke(&self, function: &FunctionRef, request: Request<Body>) -> Result<Response<Body>> {
        let namespace = self.resolve(&function.namespace).to_owned();
        self.check_namespace(&namespace)?;
        let name = function.name.as_str();
        if self.cache.function(&namespace, name).is_none() {
            return Err(Error::function_not_found(name, &namespace));
        }
        let function = FunctionRef::new(name, &namespace);
        let deadline = tokio::time::Instant::now() + self.config.ready_timeout;
        let gone = || Error::function_not_found(name, &namespace);
        let mut refusals = Vec::new();
        let mut call = match self.config.invoke {
            InvokeMode::Endpoints => Some(Call::new(function.to_string(), request)),
            InvokeMode::ServiceProxy => {
                let ready = |cache: &Cache| {
                    !cache.ready_endpoints(&namespace, name).is_empty() || cache.function(&namespace, name).is_none()
                };
                self.cache.wait_until(self.config.ready_timeout, ready).await;
                if self.cache.function(&namespace, name).is_none() {
                    return Err(gone());
                }
                if self.cache.ready_endpoints(&namespace, name).is_empty() {
                    refusals.push(format!("none became ready within {:?}", self.config.ready_timeout));
                } else {
                    let (client, limit, timeout) =
                        (&self.client, self.config.proxy_body_limit, self.config.call_timeout);
                    return invoke::through_proxy(client, &function, request, limit, timeout).await;
                }
                None
            }
        };
        // Endpoints: a ready pod from the cache; when every known one
        // refuses (stopping in a rolling update the cache has not shown
        // yet), wait for the endpoints to change and try again.
        while let Some(call) = &mut call {
            let addresses = self.cache.ready_endpoints(&namespace, name);
            if !addresses.is_empty() {
                let start = self.next.fetch_add(1, Ordering::Relaxed);
                let timeout = Some(self.config.call_timeout);
                let sent = self.upstream.send_any(call, &addresses, start, timeout).await;
                match sent.map_err(|e| e.into_error(PROVIDER))? {
                    Attempt::Answered(response) => return Ok(response),
                    Attempt::Refused(reason) => refusals = vec![reason],
                }
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let changed = |cache: &Cache| {
                cache.ready_endpoints(&namespace, name) != addresses || cache.function(&namespace, name).is_none()
            };
            let changed = self.cache.wait_until(left, changed).await;
            if self.cache.function(&namespace, name).is_none() {
                return Err(gone());
            }
            if !changed {
                if addresses.is_empty() {
                    refusals.push(format!("none became ready within {:?}", self.config.ready_timeout));
                }
                break;
            }
        }
        Err(UpstreamError::Unreachable { function: function.to_string(), reason: refusals.join("; ") }
            .into_error(PROVIDER))
    }

    async fn list_secrets(&self, namespace: &str) -> Result<Vec<Secret>> {
        self.secrets(self.resolve(namespace))?.list().await
    }

    async fn create_secret(&self, secret: Secret) -> Result<()> {
        secret.validate()?;
        self.secrets(self.resolve(&secret.namespace))?.create(&secret).await
    }

    async fn update_secret(&self, secret: Secret) -> Result<()> {
        secret.validate()?;
        self.secrets(self.resolve(&secret.namespace))?.update(&secret, self.config.conflict_retries).await
    }

    async fn delete_secret(&self, namespace: &str, name: &str) -> Result<()> {
        faas_core::validate::secret_name("name", name)?;
        self.secrets(self.resolve(namespace))?.delete(name).await
    }

    async fn logs(&self, request: LogRequest) -> Result<LogStream> {
        let namespace = self.resolve(&request.namespace).to_owned();
        self.check_namespace(&namespace)?;
        faas_core::validate::function_name("name", &request.name)?;
        if self.cache.function(&namespace, &request.name).is_none() {
            return Err(Error::function_not_found(&request.name, &namespace));
        }
        let query = LogQuery {
            function: request.name.clone(),
            namespace,
            instance: (!request.instance.is_empty()).then(|| request.instance.clone()),
            since: request.since,
            tail: (request.tail > 0).then_some(request.tail),
            limit: self.config.api_timeout,
        };
        if request.follow {
            return Ok(logs::follow(self.client.clone(), query));
        }
        let messages = logs::read_all(&self.client, &query).await?;
        Ok(Box::pin(futures_util::stream::iter(messages.into_iter().map(Ok))))
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        if !self.capabilities().namespaces {
            return Ok(SoleNamespace::new(&self.config.namespace).list());
        }
        self.namespaces().list().await
    }

    async fn get_namespace(&self, name: &str) -> Result<FunctionNamespace> {
        if !self.capabilities().namespaces {
            return SoleNamespace::new(&self.config.namespace).get(name);
        }
        self.namespaces().get(name).await
    }

    async fn create_namespace(&self, namespace: FunctionNamespace) -> Result<()> {
        if !self.capabilities().manage_namespaces {
            return Err(Error::unsupported(PROVIDER, "namespace management (manage_namespaces is off)"));
        }
        self.namespaces().create(&namespace).await
    }

    async fn update_namespace(&self, namespace: FunctionNamespace) -> Result<()> {
        if !self.capabilities().manage_namespaces {
            return Err(Error::unsupported(PROVIDER, "namespace management (manage_namespaces is off)"));
        }
        self.namespaces().update(&namespace, self.config.conflict_retries).await
    }

    async fn delete_namespace(&self, name: &str) -> Result<()> {
        if !self.capabilities().manage_namespaces {
            return Err(Error::unsupported(PROVIDER, "namespace management (manage_namespaces is off)"));
        }
        if name == self.config.namespace {
            return Err(Error::invalid("name", format!("{name:?} is the default function namespace")));
        }
        self.namespaces().delete(name).await
    }

    async fn cpu_usage(&self, _function: &FunctionRef) -> Result<std::time::Duration> {
        Err(Error::unsupported(PROVIDER, "CPU measurement (the metrics API is not read)"))
    }
}
