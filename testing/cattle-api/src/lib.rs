//! # cattle-test-server
//!
//! A Rancher 1.x (Cattle) server for tests, speaking the v2-beta API over
//! HTTP on 127.0.0.1 as Rancher documents it, so that `provider-cattle` can
//! be tested where no Cattle server can run. See the crate's README for
//! what it covers and what it does not.
//!
//! - The API follows rancher/api-spec: resources with `id`, `type`,
//!   `links` and `actions`; collections with `data`, `links`,
//!   `pagination`, `filters` (`?name=`, `?stackId=`, `name_prefix=`, ...);
//!   schemas at `/v2-beta/schemas` (Rancher's own, embedded), announced by
//!   the `X-API-Schemas` header of every response; errors as `error`
//!   resources with `status`, `code` and `message`; HTTP Basic auth with
//!   an access key and a secret key.
//! - Stacks, services, instances (containers) and, optionally, secrets
//!   (Rancher 1.6), with Cattle's states and `transitioning` fields, and
//!   the service actions `activate`, `deactivate`, `remove`, `upgrade`
//!   (in-service), `cancelupgrade`, `continueupgrade`, `finishupgrade` and
//!   `rollback`, each offered only in the states where it is valid.
//! - A service's `scale` becomes real function instances: each instance is
//!   a real `fwatchdog` process (the faas-watchdog binary, found as
//!   [`Options::fwatchdog`] says) configured from the launch config's
//!   `environment` (`fprocess`, `mode`, ...) as in a container, listening
//!   on its own port at 127.0.0.1, health-checked with the launch config's
//!   `healthCheck` over HTTP. Stopping an instance sends SIGTERM, then
//!   SIGKILL after [`Options::stop_grace`]; a process that exits by itself
//!   leaves its instance `stopped` (status 0) or `error`.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let server = cattle_test_server::TestServer::start(cattle_test_server::Options::default()).await?;
//! println!("Rancher API at {} (keys {}:{})", server.url(), server.access_key(), server.secret_key());
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod actions;
mod api;
mod create;
mod error;
mod instance;
mod orchestrator;
mod render;
mod schemas;
mod state;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use faas_test_support::serve::Connections;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::render::Urls;
use crate::schemas::Schemas;
use crate::state::Store;

/// How the server behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// The API access key (HTTP Basic user name).
    pub access_key: String,
    /// The API secret key (HTTP Basic password).
    pub secret_key: String,
    /// Serve Rancher 1.6's secrets: the `secret` and `secretReference`
    /// schemas and `launchConfig.secrets`. Off, the server has exactly the
    /// v2-beta schemas of the embedded schema file, which has no secrets.
    pub secrets: bool,
    /// Resources per collection page when the request sets no `limit`.
    pub page_size: usize,
    /// How often the orchestrator moves resources a step.
    pub tick: Duration,
    /// How long a stopping instance keeps serving after it left its
    /// service's public endpoints.
    pub drain_delay: Duration,
    /// How long a stopping instance's calls in flight may take: its
    /// fwatchdog gets SIGTERM, then SIGKILL after this.
    pub stop_grace: Duration,
    /// How long removed resources stay visible (state `removed`) before
    /// they are purged.
    pub purge_after: Duration,
    /// The `fwatchdog` binary instances run. None: resolved once per
    /// server, at start, with [`faas_test_support::fwatchdog::resolve`]: env
    /// `FAAS_FWATCHDOG`; else the `fwatchdog` cargo built beside the running
    /// executable when its dep-info shows it was built from this checkout's
    /// current sources; else, under cargo (`cargo test`, `cargo run`),
    /// `$CARGO build -p faas-watchdog --bin fwatchdog`; else a `fwatchdog`
    /// next to the running executable. Without one, every instance goes to
    /// `error` saying why.
    pub fwatchdog: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            access_key: "test-access-key".to_owned(),
            secret_key: "test-secret-key".to_owned(),
            secrets: true,
            page_size: 100,
            tick: Duration::from_millis(25),
            drain_delay: Duration::from_millis(500),
            stop_grace: Duration::from_secs(10),
            purge_after: Duration::from_secs(2),
            fwatchdog: None,
        }
    }
}

/// What the API, the orchestrator and the instances share.
pub(crate) struct Shared {
    pub(crate) options: Options,
    pub(crate) schemas: Schemas,
    /// `http://127.0.0.1:<port>`
    pub(crate) base: String,
    pub(crate) urls: Urls,
    /// The binary instances run, or why there is none.
    pub(crate) fwatchdog: Result<PathBuf, String>,
    store: Mutex<Store>,
    pub(crate) stopped: watch::Sender<bool>,
    /// Cut when the server stops.
    connections: Connections,
}

impl Shared {
    /// The resources; never held across an await.
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running test server. Dropping it stops the API and kills every
/// instance's fwatchdog; [`TestServer::shutdown`] also lets calls in flight
/// finish.
pub struct TestServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl TestServer {
    /// Starts a server on a free port of 127.0.0.1, once the fwatchdog
    /// binary is found (under cargo it may be built first, which counts
    /// against start-up rather than against a test's wait for instances).
    pub async fn start(options: Options) -> std::io::Result<TestServer> {
        let fwatchdog = faas_test_support::fwatchdog::resolve(options.fwatchdog.clone()).await;
        if let Err(err) = &fwatchdog {
            eprintln!("cattle-test-server: no fwatchdog for instances: {err}");
        }
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let base = format!("http://{addr}");
        let (stopped, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            schemas: Schemas::load(options.secrets),
            urls: Urls { project: format!("{base}/v2-beta/projects/{}", api::PROJECT) },
            base,
            options,
            fwatchdog,
            store: Mutex::new(Store::default()),
            stopped,
            connections: Connections::new(),
        });
        let api = shared.clone();
        let accept = shared.connections.serve(listener, move |request| api::handle(api.clone(), request));
        let orchestrator = tokio::spawn(orchestrator::run(shared.clone()));
        Ok(TestServer { shared, addr, tasks: vec![accept, orchestrator] })
    }

    /// The address the API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API's version root, `http://127.0.0.1:<port>/v2-beta`.
    pub fn url(&self) -> String {
        format!("{}/v2-beta", self.shared.base)
    }

    /// The project (environment) URL, `.../v2-beta/projects/1a5`, as
    /// Rancher shows it for environment API keys.
    pub fn project_url(&self) -> String {
        self.shared.urls.project.clone()
    }

    /// The access key the server accepts.
    pub fn access_key(&self) -> &str {
        &self.shared.options.access_key
    }

    /// The secret key the server accepts.
    pub fn secret_key(&self) -> &str {
        &self.shared.options.secret_key
    }

    /// Instances whose fwatchdog process is running now (any service, any
    /// state).
    pub fn running_instances(&self) -> usize {
        self.shared.store().instances.values().filter(|i| i.runtime.is_some()).count()
    }

    /// The process id of an instance's fwatchdog (by instance id, such as
    /// `1i3`) while it runs.
    pub fn instance_pid(&self, instance_id: &str) -> Option<u32> {
        self.shared.store().instances.get(instance_id)?.runtime.as_ref().map(|r| r.pid)
    }

    /// The fwatchdog binary instances run, or why there is none.
    pub fn fwatchdog(&self) -> Result<&Path, &str> {
        self.shared.fwatchdog.as_deref().map_err(String::as_str)
    }

    /// Stops the API, then stops every instance (calls in flight get
    /// `stop_grace` to finish).
    pub async fn shutdown(mut self) {
        let _ = self.shared.stopped.send(true);
        self.shared.connections.cut();
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
        let runtimes: Vec<_> = {
            let mut store = self.shared.store();
            store.instances.values_mut().filter_map(|i| i.runtime.take()).collect()
        };
        for runtime in runtimes {
            runtime.stop(self.shared.options.stop_grace).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.shared.stopped.send(true);
        self.shared.connections.cut();
        for task in &self.tasks {
            task.abort();
        }
        // Dropping a runtime kills its fwatchdog.
        let mut store = self.shared.store();
        for instance in store.instances.values_mut() {
            instance.runtime = None;
        }
    }
}
