//! A running function: its record, its watchdog, its counters and logs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use faas_core::{Body, Error, FunctionRef, FunctionStatus};
use faas_watchdog::{Config, Isolation, LogSink, Options, Sandbox, Stream, Watchdog};
use http::{Request, Response};
use http_body_util::BodyExt;
use tokio::sync::{Notify, OwnedRwLockReadGuard, RwLock};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::PROVIDER;
use crate::logs::LogBook;
use crate::store::FunctionRecord;

/// The annotation carrying why a function's instances are not ready.
pub const LAST_ERROR_ANNOTATION: &str = "faas-rs/last-error";

/// The instance name of the provider's own lines in a function's log.
pub const WATCHDOG_INSTANCE: &str = "watchdog";

/// How often the watchdog's health is looked at for new errors to log.
const MONITOR_INTERVAL: Duration = Duration::from_millis(250);

/// What a function keeps across updates: its log and its call counter.
#[derive(Clone)]
pub(crate) struct Carried {
    /// The function's log.
    pub(crate) logs: Arc<LogBook>,
    /// Calls made so far.
    pub(crate) invocations: Arc<AtomicU64>,
}

impl Carried {
    /// A fresh log (of `log_lines` lines) and counter for `function`.
    pub(crate) fn new(function: &FunctionRef, log_lines: usize) -> Carried {
        Carried {
            logs: Arc::new(LogBook::new(&function.name, &function.namespace, log_lines)),
            invocations: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// One deployed function and the watchdog running it.
pub(crate) struct Function {
    reference: FunctionRef,
    record: FunctionRecord,
    replicas: AtomicU64,
    watchdog: Watchdog,
    /// Held (shared) by every call from the moment it picks this function
    /// until its response body is gone; taken exclusively when the function
    /// is retired, so no call that picked it is cut short.
    gate: Arc<RwLock<()>>,
    carried: Carried,
    /// Wakes the monitor when the function is scaled.
    rescaled: Arc<Notify>,
    /// The monitor, started the first time the function has replicas: a
    /// function deployed at zero and never scaled up has nothing to watch
    /// (its parked task was ~500 bytes of each of 10,000 such functions).
    monitor: std::sync::Mutex<Option<JoinHandle<()>>>,
}

/// What a function's processes are given, besides the watchdog settings.
pub(crate) struct Launch {
    /// The complete environment.
    pub(crate) env: BTreeMap<String, String>,
    /// The working dir.
    pub(crate) working_dir: PathBuf,
    /// The sandbox they run in.
    pub(crate) sandbox: Arc<Sandbox>,
    /// What the function asks of it.
    pub(crate) isolation: Isolation,
}

impl Function {
    /// Starts a watchdog for `record` at its replicas.
    pub(crate) async fn start(
        record: FunctionRecord,
        config: Config,
        launch: Launch,
        carried: Carried,
    ) -> Result<Function, Error> {
        let reference = record.function_ref();
        let options = Options {
            instances: usize::try_from(record.replicas).unwrap_or(usize::MAX),
            env: launch.env,
            working_dir: Some(launch.working_dir),
            log_sink: Some(Arc::new(Sink(carried.logs.clone())) as Arc<dyn LogSink>),
            name: reference.name.clone(),
            sandbox: Some(launch.sandbox),
            isolation: launch.isolation,
        };
        let watchdog = Watchdog::start(config, options).await?;
        let function = Function {
            reference,
            replicas: AtomicU64::new(record.replicas),
            record,
            watchdog,
            gate: Arc::new(RwLock::new(())),
            carried,
            rescaled: Arc::new(Notify::new()),
            monitor: std::sync::Mutex::new(None),
        };
        if function.replicas() > 0 {
            function.watch();
        }
        Ok(function)
    }

    /// Starts the monitor unless it runs already.
    fn watch(&self) {
        let mut monitor = self.monitor.lock().unwrap_or_else(|e| e.into_inner());
        if monitor.is_none() {
            let (logs, rescaled) = (self.carried.logs.clone(), self.rescaled.clone());
            *monitor =
                Some(tokio::spawn(monitor_health(self.reference.clone(), self.watchdog.clone(), logs, rescaled)));
        }
    }

    /// Stops the monitor.
    fn unwatch(&self) {
        if let Some(monitor) = self.monitor.lock().unwrap_or_else(|e| e.into_inner()).take() {
            monitor.abort();
        }
    }

    /// The function's name and namespace.
    pub(crate) fn reference(&self) -> &FunctionRef {
        &self.reference
    }

    /// The saved record, with the current replicas.
    pub(crate) fn record(&self) -> FunctionRecord {
        FunctionRecord { replicas: self.replicas(), ..self.record.clone() }
    }

    /// Desired replicas.
    /// The CPU time used so far by the function's processes running now.
    pub(crate) fn cpu_used(&self) -> Duration {
        crate::cpu::used_by(&self.watchdog.pids())
    }

    pub(crate) fn replicas(&self) -> u64 {
        self.replicas.load(Ordering::SeqCst)
    }

    /// Names of the secrets the function uses.
    pub(crate) fn secrets(&self) -> &[String] {
        &self.record.deployment.secrets
    }

    /// The log and counter, for the function's next deployment.
    pub(crate) fn carried(&self) -> Carried {
        self.carried.clone()
    }

    /// The function's log.
    pub(crate) fn logs(&self) -> &LogBook {
        &self.carried.logs
    }

    /// The function as `status` and `list` report it.
    pub(crate) fn status(&self) -> FunctionStatus {
        let mut status = FunctionStatus::from_deployment(&self.record.deployment);
        status.replicas = self.replicas();
        status.invocation_count = self.carried.invocations.load(Ordering::Relaxed) as f64;
        status.created_at = Some(self.record.created_at);
        // At zero replicas nothing is ready and nothing is wrong: the
        // watchdog is not asked (with 10,000 functions at zero, asking was
        // a sixth of a list).
        if status.replicas > 0 {
            let ready = u64::try_from(self.watchdog.ready_instances()).unwrap_or(u64::MAX);
            status.available_replicas = ready.min(status.replicas);
            if let Some(error) = self.watchdog.last_error() {
                status.annotations.get_or_insert_with(BTreeMap::new).insert(LAST_ERROR_ANNOTATION.to_owned(), error);
            }
        }
        status
    }

    /// Admits one call: the guard keeps this function from being retired
    /// under the call. `None` once retirement has begun.
    pub(crate) fn admit(&self) -> Option<OwnedRwLockReadGuard<()>> {
        self.gate.clone().try_read_owned().ok()
    }

    /// Calls the function; `admission` (from [`Function::admit`]) is held
    /// until the response body is finished or dropped.
    pub(crate) async fn invoke(
        &self,
        admission: OwnedRwLockReadGuard<()>,
        request: Request<Body>,
    ) -> Result<Response<Body>, Error> {
        if self.replicas() == 0 {
            return Err(Error::unavailable(
                PROVIDER,
                format!("function {} is scaled to zero; scale it up to call it", self.reference),
                None,
            ));
        }
        self.carried.invocations.fetch_add(1, Ordering::Relaxed);
        let response = self.watchdog.invoke(request).await?;
        Ok(response.map(|body| {
            Body::new(body.map_frame(move |frame| {
                let _held_until_the_body_ends = &admission;
                frame
            }))
        }))
    }

    /// Changes the number of live instances, without dropping calls.
    pub(crate) async fn scale(&self, replicas: u64) {
        self.replicas.store(replicas, Ordering::SeqCst);
        self.watchdog.set_instances(usize::try_from(replicas).unwrap_or(usize::MAX)).await;
        if replicas > 0 {
            self.watch();
        }
        self.rescaled.notify_one();
    }

    /// Stops the function once the calls that picked it are done (waiting
    /// at most `grace`), then stops its processes.
    pub(crate) async fn retire(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        let drained = tokio::time::timeout(grace, self.gate.write()).await.is_ok();
        if !drained {
            tracing::warn!(function = %self.reference, ?grace, "calls still running past the drain grace are cut");
        }
        self.watchdog.shutdown(deadline.saturating_duration_since(Instant::now())).await;
        self.unwatch();
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        self.unwatch();
    }
}

/// Feeds the processes' output lines into the function's log.
struct Sink(Arc<LogBook>);

impl LogSink for Sink {
    fn line(&self, instance: &str, _stream: Stream, text: &str) {
        self.0.push(instance, text);
    }
}

/// Watches the watchdog's health: each new reason for instances not being
/// ready is written to the function's log (instance `watchdog`) and traced.
/// At zero instances there is nothing to watch: it sleeps until the
/// function is scaled (`rescaled`), so idle functions cost no wake-ups.
async fn monitor_health(function: FunctionRef, watchdog: Watchdog, logs: Arc<LogBook>, rescaled: Arc<Notify>) {
    let mut reported: Option<String> = None;
    loop {
        if reported.is_none() && watchdog.instances() == 0 {
            rescaled.notified().await;
        }
        tokio::time::sleep(MONITOR_INTERVAL).await;
        let current = if watchdog.instances() > 0 { watchdog.last_error() } else { None };
        if current != reported {
            if let Some(error) = &current {
                tracing::warn!(%function, %error, "function instances are not ready");
                logs.push(WATCHDOG_INSTANCE, &format!("instances not ready: {error}"));
            }
            reported = current;
        }
    }
}
