//! # k8s-test-server
//!
//! A Kubernetes API server for tests: the Kubernetes REST API over HTTP on
//! 127.0.0.1, following the upstream API conventions (API concepts, API
//! conventions), so that `provider-k8s` (kube-rs) can be tested where no
//! cluster can run. It is **not** a Kubernetes cluster: see the crate's
//! README for what it covers and what it does not.
//!
//! - Namespaces, Secrets, ConfigMaps, Services, Pods, ResourceQuotas
//!   (`/api/v1`), Deployments (`/apis/apps/v1`, with the `scale` and
//!   `status` subresources) and EndpointSlices (`/apis/discovery.k8s.io/v1`),
//!   with discovery documents.
//! - get, list (label and field selectors, `limit`/`continue` pagination on
//!   consistent snapshots), watch (from a resourceVersion, bookmarks, `410
//!   Expired`), create, update (optimistic concurrency), patch (merge,
//!   strategic merge, JSON patch), delete (Background, Foreground, Orphan),
//!   deletecollection; `Status` errors with their reasons.
//! - A controller: a Deployment's replicas become Pods, each a real
//!   `fwatchdog` process on its own loopback address (127.77.x.y); readiness
//!   probes, EndpointSlices, rolling updates, pod logs and the service
//!   proxy.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let server = k8s_test_server::TestServer::start(k8s_test_server::Options::default()).await?;
//! println!("Kubernetes API at {}", server.url());
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod api;
mod controller;
mod gc;
mod kinds;
mod patch;
mod pod_spec;
mod pods;
mod proxy;
mod selectors;
mod status;
mod store;
mod validate;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use faas_test_support::serve::Connections;

use crate::store::Store;

/// How often watches with `allowWatchBookmarks=true` get a BOOKMARK event.
pub(crate) const BOOKMARK_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every response body.
pub(crate) type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// A complete body.
pub(crate) fn body_from(bytes: Bytes) -> Body {
    use http_body_util::BodyExt as _;
    http_body_util::Full::new(bytes).map_err(|never| match never {}).boxed_unsync()
}

/// How the server behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// fwatchdog binary used for pods. None: resolve it, once per server,
    /// with [`faas_test_support::fwatchdog::resolve`]: env `FAAS_FWATCHDOG`; else
    /// the `fwatchdog` cargo built beside the running executable
    /// (`target/<profile>/`) when its dep-info shows it was built from this
    /// checkout's current sources (as `cargo test --workspace` leaves it);
    /// else, under cargo (`cargo test` sets `CARGO`), `$CARGO build -p
    /// faas-watchdog --bin fwatchdog` in that profile and the executable
    /// cargo reports; else any `fwatchdog` next to the running executable or
    /// in its parent directories.
    pub fwatchdog: Option<PathBuf>,
    /// Namespaces that exist at start besides default, kube-system,
    /// kube-public.
    pub namespaces: Vec<String>,
    /// Run the controller (pods as processes, endpoint slices, deployment
    /// status). Default true.
    pub controller: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { fwatchdog: None, namespaces: Vec::new(), controller: true }
    }
}

/// A `forbid` rule.
#[derive(Debug, Clone)]
struct Rule {
    verb: String,
    resource: String,
    namespace: Option<String>,
}

/// What the API, the garbage collector and the controller share.
pub(crate) struct Shared {
    store: Mutex<Store>,
    /// The latest resourceVersion, for watchers and the controller.
    pub(crate) changes: watch::Receiver<u64>,
    pub(crate) addr: SocketAddr,
    pub(crate) controller: bool,
    pub(crate) options: Options,
    counts: Mutex<HashMap<(String, String), u64>>,
    accesses: Mutex<std::collections::BTreeSet<Access>>,
    total: AtomicU64,
    rules: Mutex<Vec<Rule>>,
    conflicts: Mutex<HashMap<String, u32>>,
    /// Cut by `pause` and `shutdown`.
    pub(crate) connections: Connections,
    pub(crate) pods: pods::Runtime,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// The objects; never held across an await.
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    pub(crate) fn count(&self, verb: &str, resource: &str) {
        self.total.fetch_add(1, Ordering::Relaxed);
        *lock(&self.counts).entry((verb.to_string(), resource.to_string())).or_default() += 1;
    }

    pub(crate) fn record_access(&self, access: Access) {
        lock(&self.accesses).insert(access);
    }

    pub(crate) fn is_forbidden(&self, verb: &str, alt_verb: &str, resource: &str, namespace: Option<&str>) -> bool {
        lock(&self.rules).iter().any(|rule| {
            (rule.verb == "*" || rule.verb == verb || rule.verb == alt_verb)
                && (rule.resource == "*" || rule.resource == resource)
                && (rule.namespace.is_none() || rule.namespace.as_deref() == namespace)
        })
    }

    pub(crate) fn take_conflict(&self, resource: &str) -> bool {
        let mut conflicts = lock(&self.conflicts);
        match conflicts.get_mut(resource) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }
}

/// One kind of API request, in the attributes RBAC authorises: verb, API
/// group, resource (with its subresource) and namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Access {
    /// The RBAC verb: `get`, `list`, `watch`, `create`, `update`, `patch`,
    /// `delete`, `deletecollection`; for the service proxy, the verb of the
    /// HTTP method (`get` for GET, `create` for POST, ...).
    pub verb: String,
    /// The API group (`""` for the core group, `apps`, ...).
    pub group: String,
    /// The resource as RBAC names it: `deployments`, `deployments/scale`,
    /// `pods/log`, `services/proxy`, ...
    pub resource: String,
    /// The namespace, or `None` for a cluster-scoped request (a
    /// cluster-wide list or watch, or a cluster-scoped resource).
    pub namespace: Option<String>,
}

/// A running test server. Dropping it stops the API and kills every pod's
/// process; [`TestServer::shutdown`] does the same and waits for them.
pub struct TestServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Mutex<Option<JoinHandle<()>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl TestServer {
    /// Starts a server on a free port of 127.0.0.1.
    pub async fn start(options: Options) -> std::io::Result<TestServer> {
        TestServer::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), options).await
    }

    /// Starts a server on `addr` (the binary's `--listen`).
    pub async fn start_on(addr: SocketAddr, options: Options) -> std::io::Result<TestServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (changes_tx, changes) = watch::channel(1);
        let mut store = Store::new(changes_tx);
        let namespaces = kinds::by_plural("namespaces");
        let mut names = vec!["default".to_string(), "kube-system".to_string(), "kube-public".to_string()];
        names.extend(options.namespaces.iter().cloned());
        for name in names {
            if store.get(namespaces, "", &name).is_none() {
                let object = json!({"metadata": {"name": name}});
                api::create(&mut store, namespaces, None, object)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.message))?;
            }
        }
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            changes,
            addr,
            controller: options.controller,
            options: options.clone(),
            counts: Mutex::new(HashMap::new()),
            accesses: Mutex::new(std::collections::BTreeSet::new()),
            total: AtomicU64::new(0),
            rules: Mutex::new(Vec::new()),
            conflicts: Mutex::new(HashMap::new()),
            connections: Connections::new(),
            pods: pods::Runtime::default(),
        });
        if options.controller {
            // Resolved (built, under cargo, when stale) before serving: a
            // first build counts against start-up, not against a test's
            // bounded wait for its pods. A failure is kept and shows in the
            // log of every pod that cannot start.
            if let Err(err) = shared.pods.fwatchdog(&shared).await {
                eprintln!("k8s-test-server: no fwatchdog for pods: {err}");
            }
        }
        let accept = serve(listener, &shared);
        let mut tasks = vec![tokio::spawn(gc::run(shared.clone()))];
        if options.controller {
            tasks.push(tokio::spawn(controller::run(shared.clone())));
        }
        Ok(TestServer { shared, addr, accept: Mutex::new(Some(accept)), tasks })
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// API requests served so far, by verb (`get`, `list`, `watch`,
    /// `create`, `update`, `patch`, `delete`, `deletecollection`, `proxy`)
    /// and resource as Kubernetes names it in RBAC (`deployments`,
    /// `deployments/scale`, `pods/log`, `services/proxy`, `namespaces`,
    /// ...). Discovery documents (`/api`, `/apis`, `/version`, ...) and
    /// unknown paths are counted under verb `get` and resource `""`.
    pub fn requests(&self, verb: &str, resource: &str) -> u64 {
        lock(&self.shared.counts).get(&(verb.to_string(), resource.to_string())).copied().unwrap_or(0)
    }

    /// API requests served so far by verb (as in [`TestServer::requests`]),
    /// all resources together, read at one instant: e.g. every request but
    /// watches, which a client's reflectors may reopen at any time.
    pub fn requests_by_verb(&self) -> std::collections::BTreeMap<String, u64> {
        let mut by_verb = std::collections::BTreeMap::new();
        for ((verb, _), n) in lock(&self.shared.counts).iter() {
            *by_verb.entry(verb.clone()).or_default() += *n;
        }
        by_verb
    }

    /// Every distinct request served so far as RBAC would authorise it
    /// (discovery documents excluded), sorted: what a Role must grant for
    /// the same client to work against a real API server.
    pub fn accesses(&self) -> Vec<Access> {
        lock(&self.shared.accesses).iter().cloned().collect()
    }

    /// Total API requests served so far (all verbs and resources,
    /// discovery included).
    pub fn total_requests(&self) -> u64 {
        self.shared.total.load(Ordering::Relaxed)
    }

    /// Every request for `verb` on `resource` (RBAC names as in
    /// [`TestServer::requests`]; `"*"` matches any) in `namespace` (None =
    /// any) is refused with 403 Forbidden, as RBAC refuses it, until
    /// [`TestServer::allow_all`] is called. Service proxy requests match
    /// both the verb `proxy` and the verb their HTTP method maps to.
    pub fn forbid(&self, verb: &str, resource: &str, namespace: Option<&str>) {
        lock(&self.shared.rules).push(Rule {
            verb: verb.to_string(),
            resource: resource.to_string(),
            namespace: namespace.map(String::from),
        });
    }

    /// Removes every `forbid` rule.
    pub fn allow_all(&self) {
        lock(&self.shared.rules).clear();
    }

    /// The next `n` writes (update/patch) of `resource` are refused with
    /// 409 Conflict, as if another client had written first (the object's
    /// resourceVersion is bumped).
    pub fn conflict_next_writes(&self, resource: &str, n: u32) {
        *lock(&self.shared.conflicts).entry(resource.to_string()).or_default() += n;
    }

    /// Stops answering: the listener closes and open connections (watches
    /// included) are cut; state and pods are kept.
    pub async fn pause(&self) {
        let accept = lock(&self.accept).take();
        if let Some(accept) = accept {
            accept.abort();
            let _ = accept.await;
        }
        self.shared.connections.cut();
    }

    /// Listens again on the same address after [`TestServer::pause`].
    pub async fn resume(&self) -> std::io::Result<()> {
        if lock(&self.accept).is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.addr).await?;
        *lock(&self.accept) = Some(serve(listener, &self.shared));
        Ok(())
    }

    /// Kills every pod process and stops the server.
    pub async fn shutdown(mut self) {
        self.pause().await;
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
        self.shared.pods.kill_all().await;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(accept) = lock(&self.accept).take() {
            accept.abort();
        }
        self.shared.connections.cut();
        for task in &self.tasks {
            task.abort();
        }
        self.shared.pods.abort_all();
    }
}

/// Serves the API on `listener` until the task is aborted.
fn serve(listener: TcpListener, shared: &Arc<Shared>) -> JoinHandle<()> {
    let api = shared.clone();
    shared.connections.serve(listener, move |request| api::handle(api.clone(), request))
}
