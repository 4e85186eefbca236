//! [`LocalProvider`]: functions as processes on this machine, each run by
//! an in-process [`faas_watchdog::Watchdog`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use faas_core::{
    validate, Body, Capabilities, Error, FunctionDeployment, FunctionNamespace, FunctionRef, FunctionStatus,
    LogRequest, LogStream, Provider, ProviderInfo, Result, Secret, DEFAULT_NAMESPACE,
};
use faas_watchdog::{Config, Sandbox, SandboxSettings};
use http::{Request, Response};
use tokio::sync::{Mutex, MutexGuard, RwLock};
use tokio::task::JoinSet;

use crate::config::LocalConfig;
use crate::deployment::{check_program, watchdog_config};
use crate::environment::{base_env, process_env};
use crate::error::{io_err, LocalError, PROVIDER};
use crate::function::{Carried, Function, Launch};
use crate::isolation::{isolation, limits, Limits};
use crate::lock::StateLock;
use crate::namespaces::{validate_namespace, Namespaces};
use crate::store::{error_chain, FunctionRecord, Store};

/// How long a replaced or deleted function's calls in flight may take to
/// finish before its processes are stopped regardless.
const DRAIN_GRACE: Duration = Duration::from_secs(30);

/// Runs functions as processes on this machine.
///
/// Each function is one in-process [`faas_watchdog::Watchdog`]: its
/// `envProcess` is the watchdog's `fprocess` and its `envVars` both
/// configure the watchdog (`mode`, `exec_timeout`, ...) and are the
/// processes' environment, on top of a minimal base taken from the
/// gateway's own (`PATH`, `HOME`, `LANG`, `LC_ALL`, `TMPDIR`, `USER`) and
/// `SECRETS_DIR`, the function's private copy of its secrets. `replicas`
/// are live processes in http mode and calls run at once in the fork
/// modes; a function scaled to zero stays listed and its calls are refused
/// with `Unavailable`.
///
/// Deployments, replicas, secrets and namespaces are saved in the state
/// dir, which one provider at a time holds locked; [`LocalProvider::open`]
/// restarts every saved function. Deleting a namespace that still has
/// functions is refused with `Invalid { field: "namespace" }`; deleting one
/// without functions deletes its secrets too. The default namespace cannot
/// be deleted.
///
/// Cheap to clone: clones share the same functions.
#[derive(Clone)]
pub struct LocalProvider {
    inner: Arc<Inner>,
}

struct Inner {
    config: LocalConfig,
    store: Store,
    base_env: BTreeMap<String, String>,
    /// Running functions. Held only briefly: calls clone an `Arc` out.
    functions: RwLock<BTreeMap<FunctionRef, Arc<Function>>>,
    namespaces: std::sync::RwLock<Namespaces>,
    /// Serialises every change (deploy, update, scale, secrets, ...).
    control: Mutex<()>,
    closed: AtomicBool,
    /// Replaced functions draining their calls in flight.
    retiring: std::sync::Mutex<JoinSet<()>>,
    lock: std::sync::Mutex<Option<StateLock>>,
    sandbox: Arc<Sandbox>,
}

impl std::fmt::Debug for LocalProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalProvider").field("state_dir", &self.inner.config.state_dir).finish_non_exhaustive()
    }
}

/// Runs a state-dir task off the async threads.
async fn blocking<T, F>(task: F) -> Result<T, LocalError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, LocalError> + Send + 'static,
{
    tokio::task::spawn_blocking(task).await.map_err(LocalError::Task)?
}

impl LocalProvider {
    /// Locks the state dir (a second opener gets `Unavailable` saying the
    /// dir is in use by another gateway, with its pid), loads every saved
    /// deployment, secret and namespace and starts each function at its
    /// saved replicas. Saved state that cannot be read or is invalid is
    /// logged and skipped.
    pub async fn open(mut config: LocalConfig) -> Result<LocalProvider> {
        // Function processes run in other directories and mount namespaces,
        // where a relative path would name something else (or nothing): the
        // state dir, and every path under it, is absolute from here on.
        config.state_dir = std::path::absolute(&config.state_dir)
            .map_err(io_err("resolve the state directory", config.state_dir.clone()))?;
        let dir = config.state_dir.clone();
        let mode = config.sandbox;
        let (store, lock, namespaces, records, sandbox) = blocking(move || {
            let store = Store::open(&dir)?;
            let lock = StateLock::acquire(&dir, crate::lock::PATIENCE)?;
            // Holding the lock: whatever the last holder left running is
            // reaped before anything starts.
            let sandbox = Sandbox::open(SandboxSettings {
                mode,
                cgroup_name: format!("faas-rs-{}", std::process::id()),
                record_dir: Some(std::path::absolute(&dir).unwrap_or_else(|_| dir.clone()).join("sandbox")),
            })?;
            let namespaces = store.load_namespaces();
            let records = store.load_functions();
            Ok((store, lock, namespaces, records, sandbox))
        })
        .await?;
        tracing::info!(sandbox = ?sandbox.info(), "function sandbox");
        let provider = LocalProvider {
            inner: Arc::new(Inner {
                base_env: base_env(|name| std::env::var(name).ok()),
                store,
                functions: RwLock::new(BTreeMap::new()),
                namespaces: std::sync::RwLock::new(Namespaces::new(namespaces)),
                control: Mutex::new(()),
                closed: AtomicBool::new(false),
                retiring: std::sync::Mutex::new(JoinSet::new()),
                lock: std::sync::Mutex::new(Some(lock)),
                sandbox,
                config,
            }),
        };
        provider.adopt_namespaces(&records).await;
        let total = records.len();
        let mut restored = 0;
        for record in records {
            let function = record.function_ref();
            match provider.restore(record).await {
                Ok(()) => restored += 1,
                Err(err) => {
                    tracing::error!(%function, error = %err.message(), "cannot restart a saved function; skipped")
                }
            }
        }
        tracing::info!(state_dir = %provider.inner.config.state_dir.display(), restored, skipped = total - restored, "local provider open");
        Ok(provider)
    }

    /// Stops every function gracefully (calls in flight get up to `grace`
    /// to finish) and releases the state dir's lock. Every later call on
    /// this provider is refused with `Unavailable`; saved state is kept for
    /// the next [`LocalProvider::open`].
    pub async fn shutdown(&self, grace: Duration) {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        // A change still running (a delete draining its calls) gets the
        // grace period too; after it, stop regardless.
        let _control = tokio::time::timeout(grace, self.inner.control.lock()).await.ok();
        let functions = std::mem::take(&mut *self.inner.functions.write().await);
        let mut stopping = JoinSet::new();
        for function in functions.into_values() {
            stopping.spawn(async move { function.retire(grace).await });
        }
        let mut retiring = std::mem::take(&mut *self.inner.retiring.lock().unwrap_or_else(|e| e.into_inner()));
        let all = async {
            while stopping.join_next().await.is_some() {}
            while retiring.join_next().await.is_some() {}
        };
        if tokio::time::timeout(grace + Duration::from_secs(5), all).await.is_err() {
            tracing::warn!("functions still stopping after the grace period are killed");
        }
        // Dropping the sets aborts what is left, which kills their processes.
        self.inner.sandbox.close();
        drop(self.inner.lock.lock().unwrap_or_else(|e| e.into_inner()).take());
        tracing::info!(state_dir = %self.inner.config.state_dir.display(), "local provider shut down");
    }

    /// Takes the control lock, refusing once shut down.
    async fn control(&self) -> Result<MutexGuard<'_, ()>> {
        self.check_open()?;
        let guard = self.inner.control.lock().await;
        self.check_open()?;
        Ok(guard)
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(LocalError::ShutDown.into());
        }
        Ok(())
    }

    fn namespaces(&self) -> std::sync::RwLockReadGuard<'_, Namespaces> {
        self.inner.namespaces.read().unwrap_or_else(|e| e.into_inner())
    }

    async fn function(&self, function: &FunctionRef) -> Result<Arc<Function>> {
        self.inner
            .functions
            .read()
            .await
            .get(function)
            .cloned()
            .ok_or_else(|| Error::function_not_found(&function.name, &function.namespace))
    }

    /// The watchdog settings and the limits of a deployment (validating it).
    fn check(&self, deployment: &FunctionDeployment) -> Result<(Config, Limits)> {
        let config = watchdog_config(deployment, self.inner.config.default_exec_timeout)?;
        Ok((config, limits(deployment)?))
    }

    /// Prepares a function's working dir and secrets and builds its
    /// environment. On deploy and update a missing secret or program is
    /// `Invalid`; when restoring they are logged and the function starts
    /// anyway (its status then shows why it is not ready).
    async fn launch(&self, deployment: &FunctionDeployment, limits: Limits, restoring: bool) -> Result<Launch> {
        let function = deployment.function_ref();
        let store = self.inner.store.clone();
        let names = deployment.secrets.clone();
        let namespace = function.namespace.clone();
        let values = blocking(move || {
            let secrets = store.secrets();
            names.into_iter().map(|name| Ok((secrets.read(&namespace, &name)?, name))).collect::<Result<Vec<_>, _>>()
        })
        .await?;
        let mut secrets = Vec::new();
        for (value, name) in values {
            match value {
                Some(value) => secrets.push((name, value)),
                None if restoring => {
                    tracing::warn!(%function, secret = %name, "a secret the function uses no longer exists")
                }
                None => {
                    let reason = format!("secret {name:?} does not exist in namespace {}", function.namespace);
                    return Err(Error::invalid("secrets", reason));
                }
            }
        }
        let store = &self.inner.store;
        let env = process_env(&self.inner.base_env, &deployment.env_vars, &store.secrets_dir(&function));
        let working_dir = store.run_dir(&function);
        if !restoring {
            check_program(deployment, &env, &working_dir)?;
        }
        let isolation =
            isolation(deployment, limits, &self.inner.config.state_dir, &working_dir, &store.secrets_dir(&function));
        let store = store.clone();
        blocking(move || store.prepare_run_dir(&function, &secrets)).await?;
        Ok(Launch { env, working_dir, sandbox: self.inner.sandbox.clone(), isolation })
    }

    /// Recreates the namespaces of saved functions whose own namespace
    /// record was lost (unreadable), so those functions stay reachable.
    async fn adopt_namespaces(&self, records: &[FunctionRecord]) {
        let mut missing: Vec<String> =
            records.iter().map(|r| r.function_ref().namespace).filter(|ns| !self.namespaces().contains(ns)).collect();
        missing.dedup();
        for name in missing {
            tracing::warn!(namespace = %name, "saved functions use a namespace with no readable record; recreating it");
            let namespace = FunctionNamespace { name, ..FunctionNamespace::default() };
            let store = self.inner.store.clone();
            let saved = namespace.clone();
            if let Err(err) = blocking(move || store.save_namespace(&saved)).await {
                tracing::error!(namespace = %namespace.name, error = %error_chain(&err), "cannot save a recreated namespace");
            }
            self.inner.namespaces.write().unwrap_or_else(|e| e.into_inner()).insert(namespace);
        }
    }

    /// Starts a saved function at its saved replicas.
    async fn restore(&self, record: FunctionRecord) -> Result<()> {
        let (config, limits) = self.check(&record.deployment)?;
        let launch = self.launch(&record.deployment, limits, true).await?;
        let reference = record.function_ref();
        let carried = Carried::new(&reference, self.inner.config.log_lines);
        let function = Function::start(record, config, launch, carried).await?;
        tracing::info!(function = %reference, replicas = function.replicas(), "restored function");
        self.inner.functions.write().await.insert(reference, Arc::new(function));
        Ok(())
    }

    async fn save(&self, record: FunctionRecord) -> Result<()> {
        let store = self.inner.store.clone();
        Ok(blocking(move || store.save_function(&record)).await?)
    }

    /// Stops `function` in the background once its calls are done.
    fn retire_later(&self, function: Arc<Function>) {
        let mut retiring = self.inner.retiring.lock().unwrap_or_else(|e| e.into_inner());
        while retiring.try_join_next().is_some() {}
        retiring.spawn(async move { function.retire(DRAIN_GRACE).await });
    }

    /// Functions in `namespace` using secret `name`.
    async fn users_of_secret(&self, namespace: &str, name: &str) -> Vec<Arc<Function>> {
        let functions = self.inner.functions.read().await;
        functions
            .values()
            .filter(|f| f.reference().namespace == namespace && f.secrets().iter().any(|s| s == name))
            .cloned()
            .collect()
    }

    /// Writes (or removes, `None`) the copy of secret `name` in every
    /// function of `namespace` that uses it.
    async fn refresh_copies(&self, namespace: &str, name: &str, value: Option<Vec<u8>>) -> Result<()> {
        let users: Vec<FunctionRef> =
            self.users_of_secret(namespace, name).await.iter().map(|f| f.reference().clone()).collect();
        if users.is_empty() {
            return Ok(());
        }
        let store = self.inner.store.clone();
        let name = name.to_owned();
        blocking(move || {
            for function in &users {
                store.refresh_secret_copy(function, &name, value.as_deref())?;
            }
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Resolves a secret's namespace and checks it exists.
    fn secret_namespace(&self, namespace: &str) -> Result<String> {
        let namespace = if namespace.is_empty() { DEFAULT_NAMESPACE } else { namespace };
        self.namespaces().require(namespace)?;
        Ok(namespace.to_owned())
    }
}

#[async_trait]
impl Provider for LocalProvider {
    async fn info(&self) -> Result<ProviderInfo> {
        Ok(ProviderInfo {
            sandbox: Some(self.inner.sandbox.info()),
            ..ProviderInfo::new(PROVIDER, env!("CARGO_PKG_VERSION"), "process")
        })
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::all()
    }

    fn default_namespace(&self) -> &str {
        DEFAULT_NAMESPACE
    }

    async fn list(&self, namespace: &str) -> Result<Vec<FunctionStatus>> {
        self.check_open()?;
        self.namespaces().require(namespace)?;
        let functions: Vec<Arc<Function>> = self
            .inner
            .functions
            .read()
            .await
            .iter()
            .filter(|(reference, _)| reference.namespace == namespace)
            .map(|(_, function)| function.clone())
            .collect();
        Ok(functions.iter().map(|f| f.status()).collect())
    }

    async fn status(&self, function: &FunctionRef) -> Result<FunctionStatus> {
        self.check_open()?;
        Ok(self.function(function).await?.status())
    }

    /// From `/proc/<pid>/stat` of each running process: HTTP mode's
    /// instances, and in the fork modes the calls in progress (a call's
    /// CPU time leaves the sum when its process ends).
    async fn cpu_usage(&self, function: &FunctionRef) -> Result<std::time::Duration> {
        self.check_open()?;
        Ok(self.function(function).await?.cpu_used())
    }

    async fn deploy(&self, mut deployment: FunctionDeployment) -> Result<()> {
        let _control = self.control().await?;
        let (config, limits) = self.check(&deployment)?;
        let reference = deployment.function_ref();
        self.namespaces().require(&reference.namespace)?;
        if self.inner.functions.read().await.contains_key(&reference) {
            return Err(Error::AlreadyExists { kind: "function", name: reference.to_string() });
        }
        deployment.namespace = reference.namespace.clone();
        let launch = self.launch(&deployment, limits, false).await?;
        let replicas = deployment.initial_replicas()?;
        let record = FunctionRecord { deployment, replicas, created_at: Utc::now() };
        let carried = Carried::new(&reference, self.inner.config.log_lines);
        let started = Function::start(record.clone(), config, launch, carried).await;
        let saved = match started {
            Ok(function) => match self.save(record).await {
                Ok(()) => Ok(function),
                Err(err) => {
                    function.retire(Duration::ZERO).await;
                    Err(err)
                }
            },
            Err(err) => Err(err),
        };
        match saved {
            Ok(function) => {
                tracing::info!(function = %reference, replicas, "deployed function");
                self.inner.functions.write().await.insert(reference, Arc::new(function));
                Ok(())
            }
            Err(err) => {
                let store = self.inner.store.clone();
                let _ = blocking(move || store.remove_run_dir(&reference)).await;
                Err(err)
            }
        }
    }

    async fn update(&self, mut deployment: FunctionDeployment) -> Result<()> {
        let _control = self.control().await?;
        let (config, limits) = self.check(&deployment)?;
        let reference = deployment.function_ref();
        let old = self.function(&reference).await?;
        deployment.namespace = reference.namespace.clone();
        let launch = self.launch(&deployment, limits, false).await?;
        let old_record = old.record();
        let record = FunctionRecord { deployment, replicas: old_record.replicas, created_at: old_record.created_at };
        let function = Function::start(record.clone(), config, launch, old.carried()).await?;
        if let Err(err) = self.save(record).await {
            function.retire(Duration::ZERO).await;
            return Err(err);
        }
        self.inner.functions.write().await.insert(reference.clone(), Arc::new(function));
        tracing::info!(function = %reference, replicas = old_record.replicas, "updated function; draining the previous deployment");
        self.retire_later(old);
        Ok(())
    }

    async fn delete(&self, function: &FunctionRef) -> Result<()> {
        let _control = self.control().await?;
        let removed = self.inner.functions.write().await.remove(function);
        let removed = removed.ok_or_else(|| Error::function_not_found(&function.name, &function.namespace))?;
        let store = self.inner.store.clone();
        let reference = function.clone();
        let forgotten = blocking(move || store.remove_function(&reference)).await;
        if let Err(err) = forgotten {
            self.inner.functions.write().await.insert(function.clone(), removed);
            return Err(err.into());
        }
        removed.retire(DRAIN_GRACE).await;
        let store = self.inner.store.clone();
        let reference = function.clone();
        if let Err(err) = blocking(move || store.remove_run_dir(&reference)).await {
            tracing::warn!(%function, error = %error_chain(&err), "cannot remove the deleted function's working dir");
        }
        tracing::info!(%function, "deleted function");
        Ok(())
    }

    async fn scale(&self, function: &FunctionRef, replicas: u64) -> Result<()> {
        validate::replicas("replicas", replicas)?;
        let _control = self.control().await?;
        let target = self.function(function).await?;
        let previous = target.replicas();
        target.scale(replicas).await;
        if let Err(err) = self.save(target.record()).await {
            target.scale(previous).await;
            return Err(err);
        }
        tracing::info!(%function, from = previous, to = replicas, "scaled function");
        Ok(())
    }

    async fn invoke(&self, function: &FunctionRef, request: Request<Body>) -> Result<Response<Body>> {
        self.check_open()?;
        let (target, admission) = {
            let functions = self.inner.functions.read().await;
            let target = functions
                .get(function)
                .cloned()
                .ok_or_else(|| Error::function_not_found(&function.name, &function.namespace))?;
            let admission = target.admit();
            (target, admission)
        };
        let admission = admission.ok_or_else(|| {
            Error::unavailable(PROVIDER, format!("function {function} is being replaced; retry the call"), None)
        })?;
        target.invoke(admission, request).await
    }

    async fn list_secrets(&self, namespace: &str) -> Result<Vec<Secret>> {
        self.check_open()?;
        let namespace = self.secret_namespace(namespace)?;
        let store = self.inner.store.clone();
        let ns = namespace.clone();
        let names = blocking(move || store.secrets().names(&ns)).await?;
        Ok(names.into_iter().map(|name| Secret { name, namespace: namespace.clone(), ..Secret::default() }).collect())
    }

    async fn create_secret(&self, secret: Secret) -> Result<()> {
        secret.validate()?;
        let _control = self.control().await?;
        let namespace = self.secret_namespace(&secret.namespace)?;
        let store = self.inner.store.clone();
        let (ns, name) = (namespace.clone(), secret.name.clone());
        let value = secret.bytes().to_vec();
        let created = blocking(move || {
            let secrets = store.secrets();
            if secrets.exists(&ns, &name) {
                return Ok(false);
            }
            secrets.write(&ns, &name, &value).map(|()| true)
        })
        .await?;
        if !created {
            return Err(Error::AlreadyExists { kind: "secret", name: format!("{}.{namespace}", secret.name) });
        }
        tracing::info!(secret = %secret.name, %namespace, "created secret");
        Ok(())
    }

    async fn update_secret(&self, secret: Secret) -> Result<()> {
        secret.validate()?;
        let _control = self.control().await?;
        let namespace = self.secret_namespace(&secret.namespace)?;
        let store = self.inner.store.clone();
        let (ns, name) = (namespace.clone(), secret.name.clone());
        let value = secret.bytes().to_vec();
        let written = value.clone();
        let updated = blocking(move || {
            let secrets = store.secrets();
            if !secrets.exists(&ns, &name) {
                return Ok(false);
            }
            secrets.write(&ns, &name, &written).map(|()| true)
        })
        .await?;
        if !updated {
            return Err(Error::NotFound { kind: "secret", name: format!("{}.{namespace}", secret.name) });
        }
        self.refresh_copies(&namespace, &secret.name, Some(value)).await?;
        tracing::info!(secret = %secret.name, %namespace, "updated secret");
        Ok(())
    }

    async fn delete_secret(&self, namespace: &str, name: &str) -> Result<()> {
        let _control = self.control().await?;
        let namespace = self.secret_namespace(namespace)?;
        validate::secret_name("name", name)?;
        let store = self.inner.store.clone();
        let (ns, secret) = (namespace.clone(), name.to_owned());
        let deleted = blocking(move || {
            let secrets = store.secrets();
            if !secrets.exists(&ns, &secret) {
                return Ok(false);
            }
            secrets.remove(&ns, &secret).map(|()| true)
        })
        .await?;
        if !deleted {
            return Err(Error::NotFound { kind: "secret", name: format!("{name}.{namespace}") });
        }
        for user in self.users_of_secret(&namespace, name).await {
            tracing::warn!(function = %user.reference(), secret = %name, "deleted a secret a function still uses");
        }
        self.refresh_copies(&namespace, name, None).await?;
        tracing::info!(secret = %name, %namespace, "deleted secret");
        Ok(())
    }

    async fn logs(&self, request: LogRequest) -> Result<LogStream> {
        self.check_open()?;
        let function = self.function(&FunctionRef::new(&request.name, &request.namespace)).await?;
        Ok(function.logs().read(&request))
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        self.check_open()?;
        Ok(self.namespaces().names())
    }

    async fn get_namespace(&self, name: &str) -> Result<FunctionNamespace> {
        self.check_open()?;
        Ok(self.namespaces().require(name)?.clone())
    }

    async fn create_namespace(&self, namespace: FunctionNamespace) -> Result<()> {
        validate_namespace(&namespace)?;
        let _control = self.control().await?;
        if self.namespaces().contains(&namespace.name) {
            return Err(Error::AlreadyExists { kind: "namespace", name: namespace.name });
        }
        let store = self.inner.store.clone();
        let saved = namespace.clone();
        blocking(move || store.save_namespace(&saved)).await?;
        tracing::info!(namespace = %namespace.name, "created namespace");
        self.inner.namespaces.write().unwrap_or_else(|e| e.into_inner()).insert(namespace);
        Ok(())
    }

    async fn update_namespace(&self, namespace: FunctionNamespace) -> Result<()> {
        validate_namespace(&namespace)?;
        let _control = self.control().await?;
        self.namespaces().require(&namespace.name)?;
        let store = self.inner.store.clone();
        let saved = namespace.clone();
        blocking(move || store.save_namespace(&saved)).await?;
        tracing::info!(namespace = %namespace.name, "updated namespace");
        self.inner.namespaces.write().unwrap_or_else(|e| e.into_inner()).insert(namespace);
        Ok(())
    }

    async fn delete_namespace(&self, name: &str) -> Result<()> {
        let _control = self.control().await?;
        self.namespaces().require(name)?;
        if name == DEFAULT_NAMESPACE {
            return Err(Error::invalid("namespace", format!("the default namespace {name} cannot be deleted")));
        }
        let count = self.inner.functions.read().await.keys().filter(|f| f.namespace == name).count();
        if count > 0 {
            let plural = if count == 1 { "function" } else { "functions" };
            return Err(Error::invalid("namespace", format!("namespace {name} still has {count} {plural}")));
        }
        let store = self.inner.store.clone();
        let ns = name.to_owned();
        blocking(move || {
            let secrets = store.secrets();
            for secret in secrets.names(&ns)? {
                secrets.remove(&ns, &secret)?;
            }
            store.remove_namespace(&ns)
        })
        .await?;
        self.inner.namespaces.write().unwrap_or_else(|e| e.into_inner()).remove(name);
        tracing::info!(namespace = %name, "deleted namespace");
        Ok(())
    }
}
