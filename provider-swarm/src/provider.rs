//! [`SwarmProvider`]: the [`Provider`] implementation.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bollard::models::{NetworkCreateRequest, Service, ServiceSpec, TaskState};
use bollard::query_parameters::{InspectServiceOptions, ListServicesOptions, ListTasksOptions, UpdateServiceOptions};
use bollard::Docker;
use faas_core::{
    Body, Capabilities, Error, FunctionDeployment, FunctionNamespace, FunctionRef, FunctionStatus, LogRequest,
    LogStream, Provider, ProviderInfo, Result, Secret, SoleNamespace, DEFAULT_NAMESPACE,
};
use faas_upstream::{Refresh, Targets, Upstream};
use http::{Request, Response};

use crate::config::SwarmConfig;
use crate::error::{status_of, SwarmError, PROVIDER};
use crate::logs::{self, LogQuery};
use crate::secrets;
use crate::spec::{self, SecretRef, FUNCTION_LABEL};

/// How long the replicas found for a function are reused before the
/// engine is asked again.
const TARGET_CACHE: Duration = Duration::from_secs(1);
/// Pause between looks for a reachable replica.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Attempts at a service update that lost a race with another writer.
const UPDATE_ATTEMPTS: usize = 5;

/// Functions as Docker Swarm services, driven through the engine's API.
///
/// Each function is one replicated service named after it, labelled
/// `com.openfaas.function=<name>` and `faas_function=<name>` with the
/// deployment's labels (`com.openfaas.scale.min` replicas at creation), its
/// annotations under `com.openfaas.annotations.`, `fprocess` and the env
/// vars in the container environment, attached to the configured overlay
/// network. Limits and requests become Swarm resources, constraints
/// placement constraints, `readOnlyRootFilesystem` a read-only container.
/// The spec carries a health check asking the container's `fwatchdog` for
/// `/_/health`; a task counts as available once the swarm reports it
/// running, which it does only after the check passed. Updates are rolling
/// and start the new task before stopping the old one.
///
/// Secrets are Swarm secrets mounted at `/var/openfaas/secrets/<name>`
/// (versioned, since Swarm secrets are immutable: see the `secrets`
/// module). Logs are the tasks' logs, the task id as the instance.
/// Invocations go to the service's DNS name on the overlay network or to
/// the ports published on the nodes, as [`crate::InvokeMode`] says.
///
/// Only the default namespace (`openfaas-fn`) exists: Swarm has no
/// namespaces. It is listed and read as OpenFaaS clients expect; managing
/// namespaces is unsupported.
#[derive(Clone)]
pub struct SwarmProvider {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    docker: Docker,
    config: SwarmConfig,
    network_id: String,
    targets: Targets<SocketAddr>,
    upstream: Upstream,
    pub(crate) node_addresses: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for SwarmProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwarmProvider")
            .field("config", &self.inner.config)
            .field("network_id", &self.inner.network_id)
            .finish_non_exhaustive()
    }
}

impl SwarmProvider {
    /// A provider driving the engine `docker` talks to.
    ///
    /// Negotiates the API version with the engine (so a client newer than
    /// the engine works), checks the engine is a manager of an active
    /// swarm, and finds or creates the overlay network. Errors:
    /// `Unavailable` when the engine cannot be reached or is not a swarm
    /// manager (the message says to run `docker swarm init`), `Unavailable`
    /// when the network exists but is not an attachable overlay network.
    pub async fn new(docker: Docker, config: SwarmConfig) -> Result<Self> {
        let docker =
            docker.negotiate_version().await.map_err(|e| SwarmError::docker("negotiate the API version", e))?;
        let info = docker.info().await.map_err(|e| SwarmError::docker("read the engine's info", e))?;
        let swarm = info.swarm.unwrap_or_default();
        let state = swarm.local_node_state.map(|s| s.to_string()).unwrap_or_else(|| "unknown".to_owned());
        if state != "active" || swarm.control_available != Some(true) {
            let state = if state == "active" { "active, but this node is a worker".to_owned() } else { state };
            return Err(SwarmError::NotManager { state }.into());
        }
        let network_id = ensure_network(&docker, &config).await?;
        Ok(SwarmProvider {
            inner: Arc::new(Inner {
                docker,
                network_id,
                targets: Targets::new(
                    PROVIDER,
                    Refresh { ttl: TARGET_CACHE, retry_for: config.ready_timeout, pause: RETRY_PAUSE },
                ),
                upstream: Upstream::new(),
                config,
                node_addresses: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// A provider for the engine named by `DOCKER_HOST` (`unix://` or
    /// `tcp://`; default the local socket `/var/run/docker.sock`).
    pub async fn from_env(config: SwarmConfig) -> Result<Self> {
        let docker =
            Docker::connect_with_defaults().map_err(|e| SwarmError::docker("connect (check DOCKER_HOST)", e))?;
        Self::new(docker, config).await
    }

    /// The engine client.
    pub fn docker(&self) -> &Docker {
        &self.inner.docker
    }

    /// The configuration.
    pub fn config(&self) -> &SwarmConfig {
        &self.inner.config
    }

    /// The id of the overlay network functions join.
    pub fn network_id(&self) -> &str {
        &self.inner.network_id
    }

    pub(crate) fn docker_ref(&self) -> &Docker {
        &self.inner.docker
    }

    /// The function's service; `NotFound` if there is none or it is not a
    /// function this provider manages.
    pub(crate) async fn service(&self, function: &FunctionRef) -> Result<Service> {
        require_default_namespace(&function.namespace)?;
        let not_found = || Error::function_not_found(&function.name, &function.namespace);
        match self.docker_ref().inspect_service(&function.name, None::<InspectServiceOptions>).await {
            Ok(service) if spec::is_function(&self.inner.config, &service) => Ok(service),
            Ok(_) => Err(not_found()),
            Err(e) if status_of(&e) == Some(404) => Err(not_found()),
            Err(e) => Err(SwarmError::docker(format!("inspect service {}", function.name), e).into()),
        }
    }

    /// Running tasks (those the swarm reports running, i.e. healthy) per
    /// service id.
    pub(crate) async fn running_tasks(
        &self,
        service_id: Option<&str>,
    ) -> Result<HashMap<String, Vec<bollard::models::Task>>> {
        let mut filters = HashMap::from([("desired-state".to_owned(), vec!["running".to_owned()])]);
        if let Some(id) = service_id {
            filters.insert("service".to_owned(), vec![id.to_owned()]);
        }
        let tasks = self
            .docker_ref()
            .list_tasks(Some(ListTasksOptions { filters: Some(filters) }))
            .await
            .map_err(|e| SwarmError::docker("list tasks", e))?;
        let mut out: HashMap<String, Vec<bollard::models::Task>> = HashMap::new();
        for task in tasks {
            let running = task.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING);
            if let (true, Some(service)) = (running, task.service_id.clone()) {
                out.entry(service).or_default().push(task);
            }
        }
        Ok(out)
    }

    fn status_of(&self, service: &Service, running: &HashMap<String, Vec<bollard::models::Task>>) -> FunctionStatus {
        let mut status = spec::function_status(&self.inner.config, service);
        let id = service.id.as_deref().unwrap_or_default();
        status.available_replicas = running.get(id).map_or(0, |t| t.len() as u64);
        status
    }

    /// Resolves secret names to their newest Swarm secret versions;
    /// `Invalid` naming `secrets` when one does not exist.
    async fn resolve_secrets(&self, names: &[String]) -> Result<Vec<SecretRef>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let versions = secrets::versions(self.docker_ref(), &self.inner.config).await?;
        names
            .iter()
            .map(|name| {
                versions.get(name).and_then(|v| v.last()).cloned().ok_or_else(|| {
                    Error::invalid("secrets", format!("secret {name:?} does not exist in {DEFAULT_NAMESPACE}"))
                })
            })
            .collect()
    }

    /// Checks what a deployment needs exists before anything is created.
    async fn prepare(&self, deployment: &FunctionDeployment) -> Result<Vec<SecretRef>> {
        deployment.validate()?;
        require_default_namespace(deployment.namespace_or_default())?;
        if deployment.image.trim().is_empty() {
            return Err(Error::invalid("image", "must not be empty"));
        }
        if self.inner.config.require_local_image {
            match self.docker_ref().inspect_image(&deployment.image).await {
                Ok(_) => {}
                Err(e) if status_of(&e) == Some(404) => {
                    return Err(Error::invalid(
                        "image",
                        format!(
                            "image {:?} is not present on the Docker engine; build or load it there first \
                             (this provider does not pull images)",
                            deployment.image
                        ),
                    ))
                }
                Err(e) => return Err(SwarmError::docker(format!("inspect image {}", deployment.image), e).into()),
            }
        }
        self.resolve_secrets(&deployment.secrets).await
    }

    /// Applies `change` to the current spec of `service` and updates it,
    /// retrying when another writer updated it in between.
    async fn update_service(
        &self,
        function: &FunctionRef,
        mut service: Service,
        change: impl Fn(&mut ServiceSpec),
    ) -> Result<()> {
        for attempt in 1..=UPDATE_ATTEMPTS {
            let version = service.version.as_ref().and_then(|v| v.index).unwrap_or_default();
            let mut spec = service.spec.clone().unwrap_or_default();
            change(&mut spec);
            let options = UpdateServiceOptions { version: version as i32, ..UpdateServiceOptions::default() };
            match self.docker_ref().update_service(&function.name, spec, options, None).await {
                Ok(_) => {
                    self.forget_targets(&function.name);
                    return Ok(());
                }
                Err(e) if attempt < UPDATE_ATTEMPTS && e.to_string().contains("out of sequence") => {
                    service = self.service(function).await?;
                }
                Err(e) if status_of(&e) == Some(404) => {
                    return Err(Error::function_not_found(&function.name, &function.namespace))
                }
                Err(e) => return Err(SwarmError::docker(format!("update service {}", function.name), e).into()),
            }
        }
        Err(Error::backend(PROVIDER, format!("service {} kept changing during the update", function.name), None))
    }

    fn forget_targets(&self, name: &str) {
        self.inner.targets.forget(&FunctionRef::new(name, DEFAULT_NAMESPACE));
    }
}

/// Finds the configured network, or creates it when allowed: an
/// attachable overlay network, so that a gateway container can join it.
///
/// Several providers (gateways, or tests in parallel) may start at once and
/// race to create the same network: the loser's create is refused (409, or
/// 500 "name conflicts with an existing object" from a swarm manager), and
/// it then finds the winner's network, once the manager shows it complete
/// (its driver is empty while it is being created). Bounded: a network
/// that keeps conflicting or stays incomplete is an error, not a loop.
async fn ensure_network(docker: &Docker, config: &SwarmConfig) -> Result<String> {
    const ATTEMPTS: usize = 6;
    for attempt in 1..=ATTEMPTS {
        match find_or_create_network(docker, config).await? {
            Some(id) => return Ok(id),
            None => {
                tracing::debug!(network = %config.network, attempt, "another client created the network first");
                tokio::time::sleep(Duration::from_millis(100 * attempt as u64)).await;
            }
        }
    }
    Err(SwarmError::Network {
        name: config.network.clone(),
        reason: format!("another client kept creating it: still conflicting or incomplete after {ATTEMPTS} attempts"),
    }
    .into())
}

/// One round of [`ensure_network`]: `Ok(None)` when the create lost a race
/// or the network is still being created.
async fn find_or_create_network(docker: &Docker, config: &SwarmConfig) -> Result<Option<String>> {
    let name = &config.network;
    let unusable = |reason: String| SwarmError::Network { name: name.clone(), reason };
    match docker.inspect_network(name, None::<bollard::query_parameters::InspectNetworkOptions>).await {
        Ok(network) => {
            // A network another client is creating this very moment is
            // listed by a swarm manager before its driver is filled in.
            if network.driver.as_deref().is_none_or(str::is_empty) {
                return Ok(None);
            }
            if network.driver.as_deref() != Some("overlay") {
                return Err(unusable(format!("its driver is {:?}, not overlay", network.driver)).into());
            }
            if network.attachable != Some(true) && network.ingress != Some(true) {
                tracing::warn!(network = %name, "the functions' network is not attachable: a gateway container cannot join it");
            }
            network.id.map(Some).ok_or_else(|| unusable("the engine reported no id".into()).into())
        }
        Err(e) if status_of(&e) == Some(404) && config.create_network => {
            let request = NetworkCreateRequest {
                name: name.clone(),
                driver: Some("overlay".into()),
                attachable: Some(true),
                labels: Some(config.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
                ..NetworkCreateRequest::default()
            };
            match docker.create_network(request).await {
                Ok(created) => Ok(Some(created.id)),
                Err(e) if is_name_conflict(&e) => Ok(None),
                Err(e) => Err(SwarmError::docker(format!("create network {name}"), e).into()),
            }
        }
        Err(e) if status_of(&e) == Some(404) => {
            Err(unusable("it does not exist (create it with `docker network create -d overlay --attachable`)".into())
                .into())
        }
        Err(e) => Err(SwarmError::docker(format!("inspect network {name}"), e).into()),
    }
}

/// Whether the engine refused a create because the name is taken: 409 from
/// a plain engine, 500 with "name conflicts" from a swarm manager.
fn is_name_conflict(err: &bollard::errors::Error) -> bool {
    match err {
        bollard::errors::Error::DockerResponseServerError { status_code: 409, .. } => true,
        bollard::errors::Error::DockerResponseServerError { message, .. } => {
            message.contains("name conflicts") || message.contains("already exists")
        }
        _ => false,
    }
}

fn require_default_namespace(namespace: &str) -> Result<()> {
    if namespace.is_empty() || namespace == DEFAULT_NAMESPACE {
        Ok(())
    } else {
        Err(Error::unsupported(
            PROVIDER,
            format!("namespaces other than {DEFAULT_NAMESPACE} (asked for {namespace:?})"),
        ))
    }
}

#[async_trait]
impl Provider for SwarmProvider {
    async fn info(&self) -> Result<ProviderInfo> {
        Ok(ProviderInfo::new(PROVIDER, env!("CARGO_PKG_VERSION"), "swarm"))
    }

    fn capabilities(&self) -> Capabilities {
        let mut capabilities = Capabilities::default();
        capabilities.secrets = true;
        capabilities.logs = true;
        capabilities.log_follow = true;
        capabilities
    }

    fn default_namespace(&self) -> &str {
        DEFAULT_NAMESPACE
    }

    async fn list(&self, namespace: &str) -> Result<Vec<FunctionStatus>> {
        require_default_namespace(namespace)?;
        let mut labels = vec![FUNCTION_LABEL.to_owned()];
        labels.extend(self.inner.config.labels.iter().map(|(k, v)| format!("{k}={v}")));
        let filters = HashMap::from([("label".to_owned(), labels)]);
        let services = self
            .docker_ref()
            .list_services(Some(ListServicesOptions { filters: Some(filters), ..ListServicesOptions::default() }))
            .await
            .map_err(|e| SwarmError::docker("list services", e))?;
        let running = self.running_tasks(None).await?;
        let mut out: Vec<FunctionStatus> = services
            .iter()
            .filter(|s| spec::is_function(&self.inner.config, s))
            .map(|s| self.status_of(s, &running))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn status(&self, function: &FunctionRef) -> Result<FunctionStatus> {
        let service = self.service(function).await?;
        let running = self.running_tasks(service.id.as_deref()).await?;
        Ok(self.status_of(&service, &running))
    }

    async fn deploy(&self, deployment: FunctionDeployment) -> Result<()> {
        let function = deployment.function_ref();
        // Checked first so that a taken name is AlreadyExists even when
        // the new deployment names a missing image.
        deployment.validate()?;
        require_default_namespace(&function.namespace)?;
        match self.docker_ref().inspect_service(&function.name, None::<InspectServiceOptions>).await {
            Ok(_) => return Err(Error::AlreadyExists { kind: "function", name: function.to_string() }),
            Err(e) if status_of(&e) == Some(404) => {}
            Err(e) => return Err(SwarmError::docker(format!("inspect service {}", function.name), e).into()),
        }
        let secrets = self.prepare(&deployment).await?;
        let replicas = deployment.initial_replicas()?;
        let spec = spec::service_spec(&self.inner.config, &self.inner.network_id, &deployment, replicas, &secrets);
        match self.docker_ref().create_service(spec, None).await {
            Ok(_) => {
                self.forget_targets(&function.name);
                Ok(())
            }
            Err(e) if status_of(&e) == Some(409) => {
                Err(Error::AlreadyExists { kind: "function", name: function.to_string() })
            }
            Err(e) => Err(SwarmError::docker(format!("create service {}", function.name), e).into()),
        }
    }

    async fn update(&self, deployment: FunctionDeployment) -> Result<()> {
        let function = deployment.function_ref();
        deployment.validate()?;
        let service = self.service(&function).await?;
        let secrets = self.prepare(&deployment).await?;
        let replicas = spec::desired_replicas(&service);
        let config = self.inner.config.clone();
        let network = self.inner.network_id.clone();
        self.update_service(&function, service, move |spec| {
            *spec = spec::service_spec(&config, &network, &deployment, replicas, &secrets);
        })
        .await
    }

    async fn delete(&self, function: &FunctionRef) -> Result<()> {
        self.service(function).await?;
        self.forget_targets(&function.name);
        match self.docker_ref().delete_service(&function.name).await {
            Ok(()) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Err(Error::function_not_found(&function.name, &function.namespace)),
            Err(e) => Err(SwarmError::docker(format!("remove service {}", function.name), e).into()),
        }
    }

    async fn scale(&self, function: &FunctionRef, replicas: u64) -> Result<()> {
        faas_core::validate::replicas("replicas", replicas)?;
        let service = self.service(function).await?;
        self.update_service(function, service, |spec| {
            let mode = spec.mode.get_or_insert_with(Default::default);
            mode.replicated.get_or_insert_with(Default::default).replicas = Some(replicas as i64);
        })
        .await
    }

    async fn invoke(&self, function: &FunctionRef, request: Request<Body>) -> Result<Response<Body>> {
        let inner = &self.inner;
        inner.targets.call(&inner.upstream, function, request, None, || self.resolve_targets(function)).await
    }

    async fn list_secrets(&self, namespace: &str) -> Result<Vec<Secret>> {
        require_default_namespace(namespace)?;
        let versions = secrets::versions(self.docker_ref(), &self.inner.config).await?;
        let mut names: Vec<Secret> = versions
            .into_keys()
            .map(|name| Secret { name, namespace: DEFAULT_NAMESPACE.to_owned(), ..Secret::default() })
            .collect();
        names.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(names)
    }

    async fn create_secret(&self, secret: Secret) -> Result<()> {
        secret.validate()?;
        require_default_namespace(&secret.namespace)?;
        let versions = secrets::versions(self.docker_ref(), &self.inner.config).await?;
        if versions.contains_key(&secret.name) {
            return Err(Error::AlreadyExists { kind: "secret", name: secret.name.clone() });
        }
        secrets::create_version(self.docker_ref(), &self.inner.config, &secret.name, secret.bytes()).await?;
        Ok(())
    }

    async fn update_secret(&self, secret: Secret) -> Result<()> {
        secret.validate()?;
        require_default_namespace(&secret.namespace)?;
        let versions = secrets::versions(self.docker_ref(), &self.inner.config).await?;
        let Some(old) = versions.get(&secret.name).cloned() else {
            return Err(Error::NotFound { kind: "secret", name: secret.name.clone() });
        };
        let new = secrets::create_version(self.docker_ref(), &self.inner.config, &secret.name, secret.bytes()).await?;
        // Move every function using an old version to the new one.
        for status in self.list(DEFAULT_NAMESPACE).await? {
            if !status.secrets.contains(&secret.name) {
                continue;
            }
            let function = FunctionRef::new(&status.name, DEFAULT_NAMESPACE);
            let service = self.service(&function).await?;
            let (old_ids, new) = (old.iter().map(|v| v.id.clone()).collect::<Vec<_>>(), new.clone());
            self.update_service(&function, service, move |spec| {
                let refs = spec
                    .task_template
                    .as_mut()
                    .and_then(|t| t.container_spec.as_mut())
                    .and_then(|c| c.secrets.as_mut());
                for reference in refs.into_iter().flatten() {
                    if reference.secret_id.as_ref().is_some_and(|id| old_ids.contains(id)) {
                        reference.secret_id = Some(new.id.clone());
                        reference.secret_name = Some(new.swarm_name.clone());
                    }
                }
            })
            .await?;
        }
        for version in &old {
            if !secrets::remove_version(self.docker_ref(), version).await? {
                tracing::warn!(secret = %version.swarm_name, "an old secret version is still in use; it is removed with the secret");
            }
        }
        Ok(())
    }

    async fn delete_secret(&self, namespace: &str, name: &str) -> Result<()> {
        require_default_namespace(namespace)?;
        let versions = secrets::versions(self.docker_ref(), &self.inner.config).await?;
        let Some(all) = versions.get(name) else {
            return Err(Error::NotFound { kind: "secret", name: name.to_owned() });
        };
        let users: Vec<String> = self
            .list(DEFAULT_NAMESPACE)
            .await?
            .into_iter()
            .filter(|f| f.secrets.iter().any(|s| s == name))
            .map(|f| f.name)
            .collect();
        if !users.is_empty() {
            return Err(Error::invalid("name", format!("secret {name:?} is used by {}", users.join(", "))));
        }
        for version in all {
            if !secrets::remove_version(self.docker_ref(), version).await? {
                return Err(Error::invalid("name", format!("secret {name:?} is still in use by a service")));
            }
        }
        Ok(())
    }

    async fn logs(&self, request: LogRequest) -> Result<LogStream> {
        let function = FunctionRef::new(&request.name, &request.namespace);
        let service = self.service(&function).await?;
        let query = LogQuery {
            function: function.name.clone(),
            service_id: service.id.unwrap_or_default(),
            instance: Some(request.instance.clone()).filter(|i| !i.is_empty()),
            since: request.since.map_or(0, |t| i32::try_from(t.timestamp()).unwrap_or(i32::MAX)),
            tail: usize::try_from(request.tail).ok().filter(|t| *t > 0),
        };
        if request.follow {
            return Ok(logs::follow(self.inner.docker.clone(), query));
        }
        let messages = logs::read_all(self.docker_ref(), &query).await?;
        Ok(Box::pin(futures_util::stream::iter(messages.into_iter().map(Ok))))
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        Ok(SoleNamespace::default().list())
    }

    async fn get_namespace(&self, name: &str) -> Result<FunctionNamespace> {
        SoleNamespace::default().get(name)
    }

    async fn create_namespace(&self, _namespace: FunctionNamespace) -> Result<()> {
        Err(Error::unsupported(PROVIDER, "namespace management"))
    }

    async fn update_namespace(&self, _namespace: FunctionNamespace) -> Result<()> {
        Err(Error::unsupported(PROVIDER, "namespace management"))
    }

    async fn delete_namespace(&self, _name: &str) -> Result<()> {
        Err(Error::unsupported(PROVIDER, "namespace management"))
    }

    async fn cpu_usage(&self, _function: &FunctionRef) -> Result<std::time::Duration> {
        Err(Error::unsupported(PROVIDER, "CPU measurement"))
    }
}
