//! The watch-fed cache: reflectors over the provider's Deployments and its
//! Services' EndpointSlices.
//!
//! Two watches (cluster-wide, or in the one function namespace when
//! [`crate::K8sConfig::cluster_wide`] is false) keep in-memory stores
//! current: `list`, `status` and endpoint selection read them without an
//! API request. After a write the provider waits (bounded) until the store
//! shows the written `resourceVersion` or deletion, so a caller reads its
//! own writes. While the API server is unreachable the stores keep their
//! last state and the watches reconnect with a short backoff, re-listing
//! once they can.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faas_core::Result;
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::utils::Backoff;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{K8sConfig, WATCHDOG_PORT};
use crate::error::PROVIDER;
use crate::spec::{self, MANAGED_BY, MANAGED_BY_LABEL};

/// The label EndpointSlices carry naming their Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The longest pause between two attempts to re-establish a watch.
const WATCH_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// The stores, and the tasks feeding them (stopped when the cache is
/// dropped).
pub(crate) struct Cache {
    deployments: Store<Deployment>,
    slices: Store<EndpointSlice>,
    /// Bumped on every watch event: what waits for the stores listen to.
    changed: watch::Receiver<u64>,
    /// The last watch failure, cleared by the next event.
    last_error: Arc<Mutex<Option<WatchFailure>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Cache {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Why the watches failed last.
#[derive(Debug, Clone)]
struct WatchFailure {
    /// The API server refused to list or watch (RBAC): retrying will not
    /// help until an operator grants the rights.
    forbidden: bool,
    message: String,
}

/// The API server's answer in a watch failure, if it answered one.
fn answer(err: &watcher::Error) -> Option<&kube::core::Status> {
    match err {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => Some(status),
        watcher::Error::WatchError(status) => Some(status),
        _ => None,
    }
}

/// Whether the API server refused a watch with 403 Forbidden.
fn refused(err: &watcher::Error) -> bool {
    answer(err).is_some_and(|status| status.code == 403)
}

/// A watch failure in words: the API server's message when it answered.
fn describe(err: &watcher::Error) -> String {
    match answer(err) {
        Some(status) => format!("{} ({} {})", status.message, status.code, status.reason),
        None => err.to_string(),
    }
}

/// Reconnects a broken watch quickly (100 ms doubling up to
/// [`WATCH_BACKOFF_MAX`]): a gateway should see the cluster again as soon
/// as the API server is back.
struct QuickBackoff {
    next: Duration,
}

impl Iterator for QuickBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let current = self.next;
        self.next = (self.next * 2).min(WATCH_BACKOFF_MAX);
        Some(current)
    }
}

impl Backoff for QuickBackoff {
    fn reset(&mut self) {
        self.next = Duration::from_millis(100);
    }
}

fn spawn_reflector<K>(
    api: Api<K>,
    selector: String,
    notify: Arc<watch::Sender<u64>>,
    last_error: Arc<Mutex<Option<WatchFailure>>>,
) -> (Store<K>, JoinHandle<()>)
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let config = watcher::Config::default().labels(&selector).timeout(290);
    let stream =
        reflector::reflector(writer, watcher(api, config)).backoff(QuickBackoff { next: Duration::from_millis(100) });
    let kind = K::kind(&()).into_owned();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => {
                    if let Ok(mut last) = last_error.lock() {
                        *last = None;
                    }
                }
                Err(err) => {
                    tracing::debug!(kind = %kind, error = %err, "watch failed; reconnecting");
                    if let Ok(mut last) = last_error.lock() {
                        *last = Some(WatchFailure {
                            forbidden: refused(&err),
                            message: format!("watching {kind}: {}", describe(&err)),
                        });
                    }
                }
            }
            notify.send_modify(|n| *n = n.wrapping_add(1));
        }
    });
    (reader, task)
}

impl Cache {
    /// Starts the watches and waits, up to `config.sync_timeout`, for their
    /// first full listing.
    pub(crate) async fn start(client: &Client, config: &K8sConfig) -> Result<Cache> {
        let (deployments_api, slices_api): (Api<Deployment>, Api<EndpointSlice>) = if config.cluster_wide {
            (Api::all(client.clone()), Api::all(client.clone()))
        } else {
            (Api::namespaced(client.clone(), &config.namespace), Api::namespaced(client.clone(), &config.namespace))
        };
        let (tx, changed) = watch::channel(0u64);
        let tx = Arc::new(tx);
        let last_error = Arc::new(Mutex::new(None));
        let (deployments, deployments_task) =
            spawn_reflector(deployments_api, spec::function_selector(), tx.clone(), last_error.clone());
        let slice_selector = format!("{SERVICE_NAME_LABEL},{MANAGED_BY_LABEL}={MANAGED_BY}");
        let (slices, slices_task) = spawn_reflector(slices_api, slice_selector, tx, last_error.clone());
        let cache = Cache { deployments, slices, changed, last_error, tasks: vec![deployments_task, slices_task] };

        let synced = async {
            let _ = cache.deployments.wait_until_ready().await;
            let _ = cache.slices.wait_until_ready().await;
        };
        // A refusal (RBAC) is final: report it at once instead of waiting.
        let forbidden = async {
            let mut changed = cache.changed.clone();
            loop {
                if let Some(failure) = cache.failure().filter(|f| f.forbidden) {
                    return failure.message;
                }
                if changed.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
        };
        tokio::select! {
            synced = tokio::time::timeout(config.sync_timeout, synced) => {
                if synced.is_err() {
                    let cause = cache.last_error().unwrap_or_else(|| "no answer".to_owned());
                    return Err(faas_core::Error::unavailable(
                        PROVIDER,
                        format!("the watch cache did not sync within {:?}: {cause}", config.sync_timeout),
                        None,
                    ));
                }
            }
            message = forbidden => {
                return Err(faas_core::Error::forbidden(PROVIDER, format!("cannot list and watch: {message}")));
            }
        }
        Ok(cache)
    }

    fn failure(&self) -> Option<WatchFailure> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// The last watch failure, if the watches are failing now.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.failure().map(|f| f.message)
    }

    /// The cached Deployment `name` in `namespace`, whatever its labels.
    pub(crate) fn deployment(&self, namespace: &str, name: &str) -> Option<Arc<Deployment>> {
        self.deployments.get(&ObjectRef::new(name).within(namespace))
    }

    /// The function `name` in `namespace`: a Deployment of ours not being
    /// deleted.
    pub(crate) fn function(&self, namespace: &str, name: &str) -> Option<Arc<Deployment>> {
        self.deployment(namespace, name).filter(|d| spec::is_function(d))
    }

    /// Every function in `namespace`.
    pub(crate) fn functions(&self, namespace: &str) -> Vec<Arc<Deployment>> {
        let mut functions = self
            .deployments
            .state_filter(|d| d.metadata.namespace.as_deref() == Some(namespace) && spec::is_function(d));
        functions.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        functions
    }

    /// The addresses of the ready pods behind Service `name`.
    pub(crate) fn ready_endpoints(&self, namespace: &str, name: &str) -> Vec<SocketAddr> {
        let slices = self.slices.state_filter(|s| {
            s.metadata.namespace.as_deref() == Some(namespace)
                && s.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)).map(String::as_str) == Some(name)
        });
        let mut addresses: Vec<SocketAddr> = slices.iter().flat_map(|slice| slice_addresses(slice)).collect();
        addresses.sort();
        addresses.dedup();
        addresses
    }

    /// Waits until `done` holds on the stores, or `timeout` passes;
    /// whether it held.
    pub(crate) async fn wait_until(&self, timeout: Duration, mut done: impl FnMut(&Cache) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut changed = self.changed.clone();
        loop {
            changed.borrow_and_update();
            if done(self) {
                return true;
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                // The watch tasks are gone (the cache is being dropped), or
                // time is up: one last look.
                Ok(Err(_)) | Err(_) => return done(self),
            }
        }
    }

    /// Waits until the store shows Deployment `name` at `resource_version`
    /// or later.
    pub(crate) async fn wait_written(&self, timeout: Duration, namespace: &str, name: &str, resource_version: &str) {
        let seen = self
            .wait_until(timeout, |cache| {
                cache.deployment(namespace, name).is_some_and(|d| {
                    d.metadata.resource_version.as_deref().is_some_and(|rv| version_reached(rv, resource_version))
                })
            })
            .await;
        if !seen {
            tracing::warn!(namespace, name, resource_version, "the watch cache did not show a write in time");
        }
    }

    /// Waits until the store no longer shows function `name` (gone, or
    /// being deleted).
    pub(crate) async fn wait_deleted(&self, timeout: Duration, namespace: &str, name: &str) {
        if !self.wait_until(timeout, |cache| cache.function(namespace, name).is_none()).await {
            tracing::warn!(namespace, name, "the watch cache did not show a deletion in time");
        }
    }
}

/// Whether a store at `seen` holds the write that returned `written`:
/// equal, or later where both are numbers (as every API server's are,
/// though the API calls them opaque).
pub(crate) fn version_reached(seen: &str, written: &str) -> bool {
    if seen == written {
        return true;
    }
    matches!((seen.parse::<u64>(), written.parse::<u64>()), (Ok(seen), Ok(written)) if seen >= written)
}

/// The ready addresses of one EndpointSlice, on its `http` port (8080 when
/// the slice names none).
fn slice_addresses(slice: &EndpointSlice) -> Vec<SocketAddr> {
    let ports = slice.ports.as_deref().unwrap_or_default();
    let port = ports
        .iter()
        .find(|p| p.name.as_deref() == Some("http"))
        .or(ports.first())
        .and_then(|p| p.port)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(WATCHDOG_PORT);
    slice
        .endpoints
        .iter()
        .flatten()
        .filter(|e| {
            let conditions = e.conditions.as_ref();
            // Absent `ready` means ready, as the API documents it.
            conditions.and_then(|c| c.ready).unwrap_or(true) && !conditions.and_then(|c| c.terminating).unwrap_or(false)
        })
        .flat_map(|e| e.addresses.iter())
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, port))
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};

    use super::*;

    fn endpoint(ip: &str, ready: Option<bool>, terminating: Option<bool>) -> Endpoint {
        Endpoint {
            addresses: vec![ip.to_owned()],
            conditions: Some(EndpointConditions { ready, serving: None, terminating }),
            ..Default::default()
        }
    }

    #[test]
    fn only_ready_endpoints_take_calls() {
        let slice = EndpointSlice {
            address_type: "IPv4".into(),
            endpoints: Some(vec![
                endpoint("127.77.0.1", Some(true), None),
                endpoint("127.77.0.2", Some(false), None),
                endpoint("127.77.0.3", None, None),
                endpoint("127.77.0.4", Some(true), Some(true)),
            ]),
            ports: Some(vec![EndpointPort { name: Some("http".into()), port: Some(8080), ..Default::default() }]),
            metadata: Default::default(),
        };
        let addresses: Vec<String> = slice_addresses(&slice).iter().map(|a| a.to_string()).collect();
        assert_eq!(addresses, ["127.77.0.1:8080", "127.77.0.3:8080"]);
    }

    #[test]
    fn resource_versions_compare_as_numbers_when_they_are() {
        assert!(version_reached("10", "10"));
        assert!(version_reached("11", "9"));
        assert!(!version_reached("9", "11"));
        assert!(!version_reached("abc", "abd"));
        assert!(version_reached("abc", "abc"));
    }

    #[test]
    fn the_backoff_is_short_and_resets() {
        let mut backoff = QuickBackoff { next: Duration::from_millis(100) };
        let first: Vec<_> = backoff.by_ref().take(6).collect();
        assert_eq!(first[0], Duration::from_millis(100));
        assert_eq!(*first.last().unwrap(), WATCH_BACKOFF_MAX);
        backoff.reset();
        assert_eq!(backoff.next(), Some(Duration::from_millis(100)));
    }
}
