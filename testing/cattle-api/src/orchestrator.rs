//! The orchestrator: every tick, moves each resource one step towards what
//! its state asks for (start or stop instances, run health checks, advance
//! upgrades), the way Cattle's process handlers do.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::api::numeric;
use crate::instance::{probe, Runtime};
use crate::state::{Instance, Store};
use crate::Shared;

/// Runs until the server shuts down.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut stopped = shared.stopped.subscribe();
    loop {
        tick(&shared);
        tokio::select! {
            () = tokio::time::sleep(shared.options.tick) => {}
            _ = stopped.changed() => break,
        }
    }
}

/// The health check settings of a launch config, with Rancher's defaults.
struct HealthCheck {
    request_line: Option<String>,
    interval: Duration,
    timeout: Duration,
    healthy_threshold: u32,
    unhealthy_threshold: u32,
}

fn health_check(lc: &Map<String, Value>) -> Option<HealthCheck> {
    let hc = lc.get("healthCheck")?.as_object()?;
    let int = |key: &str, default: u64| hc.get(key).and_then(Value::as_u64).unwrap_or(default);
    Some(HealthCheck {
        request_line: hc.get("requestLine").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned),
        interval: Duration::from_millis(int("interval", 2000)),
        timeout: Duration::from_millis(int("responseTimeout", 2000)),
        healthy_threshold: int("healthyThreshold", 2).max(1) as u32,
        unhealthy_threshold: int("unhealthyThreshold", 3).max(1) as u32,
    })
}

/// Up: started or serving.
fn live(i: &Instance) -> bool {
    matches!(i.common.state.as_str(), "starting" | "running")
}

/// Holding one of the service's `scale` slots: up, or failed to start
/// (a failed instance is not replaced, so a broken launch config does not
/// spin up instance after instance).
fn occupies(i: &Instance) -> bool {
    matches!(i.common.state.as_str(), "starting" | "running" | "error")
}

/// Serving and passing its health check (or having none).
fn ready(i: &Instance) -> bool {
    i.common.state == "running" && !i.busy && i.health_state.as_deref().is_none_or(|h| h == "healthy")
}

fn tick(shared: &Arc<Shared>) {
    let now = Instant::now();
    let mut store = shared.store();
    let ids: Vec<String> = store.services.keys().cloned().collect();
    for id in ids {
        reconcile_service(&mut store, &id, now, shared.options.purge_after);
    }
    reconcile_stacks(&mut store, shared.options.purge_after);
    let purge = shared.options.purge_after;
    store.secrets.retain(|_, s| s.common.removed.is_none_or(|r| elapsed(r) < purge));
    let ids: Vec<String> = store.instances.keys().cloned().collect();
    for id in ids {
        reconcile_instance(shared, &mut store, &id, now);
    }
}

fn elapsed(since: chrono::DateTime<chrono::Utc>) -> Duration {
    (chrono::Utc::now() - since).to_std().unwrap_or_default()
}

fn reconcile_stacks(store: &mut Store, purge: Duration) {
    let ids: Vec<String> = store.stacks.keys().cloned().collect();
    for id in ids {
        let state = store.stacks[&id].common.state.clone();
        match state.as_str() {
            "activating" => store.stacks.get_mut(&id).expect("listed").common.set_state("active"),
            "removing" => {
                let left = store.services.values().any(|s| s.stack_id == id);
                if !left {
                    let stack = store.stacks.get_mut(&id).expect("listed");
                    stack.common.set_state("removed");
                    stack.common.removed = Some(chrono::Utc::now());
                }
            }
            "removed" if store.stacks[&id].common.removed.is_some_and(|r| elapsed(r) >= purge) => {
                store.stacks.remove(&id);
            }
            _ => {}
        }
    }
}

/// The instances of `service_id` matching `filter`, oldest first.
fn instance_ids(store: &Store, service_id: &str, filter: impl Fn(&Instance) -> bool) -> Vec<String> {
    let mut list: Vec<&Instance> = store.instances_of(service_id).filter(|i| filter(i)).collect();
    list.sort_by_key(|i| numeric(&i.common.id));
    list.into_iter().map(|i| i.common.id.clone()).collect()
}

fn set_instance_state(store: &mut Store, ids: &[String], state: &str) {
    for id in ids {
        if let Some(instance) = store.instances.get_mut(id) {
            instance.common.set_state(state);
        }
    }
}

fn add_instances(store: &mut Store, service_id: &str, count: usize) {
    let (version, launch_config) = {
        let s = &store.services[service_id];
        (s.version, s.launch_config.clone())
    };
    for _ in 0..count {
        store.add_instance(service_id, version, launch_config.clone());
    }
}

/// Brings the current version's live instances to `scale`: restarts
/// stopped ones first, then creates new ones; removes the newest extras.
fn ensure_scale(store: &mut Store, service_id: &str) {
    let (version, scale) = {
        let s = &store.services[service_id];
        (s.version, s.scale.max(0) as usize)
    };
    let live_ids = instance_ids(store, service_id, |i| i.version == version && occupies(i));
    if live_ids.len() > scale {
        set_instance_state(store, &live_ids[scale..], "removing");
        return;
    }
    let mut missing = scale - live_ids.len();
    let stopped = instance_ids(store, service_id, |i| i.version == version && i.common.state == "stopped");
    for id in stopped.into_iter().take(missing) {
        if let Some(instance) = store.instances.get_mut(&id) {
            instance.common.set_state("starting");
            missing -= 1;
        }
    }
    add_instances(store, service_id, missing);
}

/// Whether the current version runs `scale` ready instances and nothing
/// of it is still starting.
fn converged(store: &Store, service_id: &str) -> bool {
    let s = &store.services[service_id];
    let current: Vec<&Instance> =
        store.instances_of(service_id).filter(|i| i.version == s.version && occupies(i)).collect();
    current.len() == s.scale.max(0) as usize && current.iter().all(|i| ready(i))
}

fn waiting_message(store: &Store, service_id: &str) -> Option<String> {
    let s = &store.services[service_id];
    let pending: Vec<String> = store
        .instances_of(service_id)
        .filter(|i| i.version == s.version && occupies(i) && !ready(i))
        .map(|i| match (&i.common.message, &i.health_state) {
            (Some(m), _) => format!("{}: {m}", i.common.name),
            (None, Some(h)) => format!("{} is {h}", i.common.name),
            (None, None) => format!("{} is {}", i.common.name, i.common.state),
        })
        .collect();
    (!pending.is_empty()).then(|| format!("Waiting for instances to become healthy: {}", pending.join("; ")))
}

fn reconcile_service(store: &mut Store, id: &str, now: Instant, purge: Duration) {
    let state = store.services[id].common.state.clone();
    match state.as_str() {
        "registering" => {
            let next = if store.services[id].start_on_create { "activating" } else { "inactive" };
            store.services.get_mut(id).expect("listed").common.set_state(next);
        }
        "activating" | "updating-active" => {
            ensure_scale(store, id);
            if converged(store, id) {
                store.services.get_mut(id).expect("listed").common.set_state("active");
            } else {
                let message = waiting_message(store, id);
                store.services.get_mut(id).expect("listed").common.message = message;
            }
        }
        "updating-inactive" => store.services.get_mut(id).expect("listed").common.set_state("inactive"),
        "upgrading" => upgrade_step(store, id, now),
        "canceling-upgrade" => store.services.get_mut(id).expect("listed").common.set_state("canceled-upgrade"),
        "finishing-upgrade" => {
            let version = store.services[id].version;
            let old = instance_ids(store, id, |i| i.version != version && i.common.state != "removed");
            let removable: Vec<String> =
                old.iter().filter(|i| store.instances[*i].common.state != "removing").cloned().collect();
            set_instance_state(store, &removable, "removing");
            if old.is_empty() {
                let service = store.services.get_mut(id).expect("listed");
                service.previous = None;
                service.upgrade = None;
                service.common.set_state("active");
            }
        }
        "rolling-back" => {
            ensure_scale(store, id);
            if converged(store, id) {
                let version = store.services[id].version;
                let other = instance_ids(store, id, |i| i.version != version && i.common.state != "removed");
                let removable: Vec<String> =
                    other.iter().filter(|i| store.instances[*i].common.state != "removing").cloned().collect();
                set_instance_state(store, &removable, "removing");
                if other.is_empty() {
                    let service = store.services.get_mut(id).expect("listed");
                    service.upgrade = None;
                    service.common.set_state("active");
                }
            }
        }
        "deactivating" => {
            let running = instance_ids(store, id, live);
            set_instance_state(store, &running, "stopping");
            let busy = instance_ids(store, id, |i| live(i) || i.common.state == "stopping");
            if busy.is_empty() {
                store.services.get_mut(id).expect("listed").common.set_state("inactive");
            }
        }
        "removing" => {
            let left = instance_ids(store, id, |i| i.common.state != "removed");
            let removable: Vec<String> =
                left.iter().filter(|i| store.instances[*i].common.state != "removing").cloned().collect();
            set_instance_state(store, &removable, "removing");
            if left.is_empty() {
                let service = store.services.get_mut(id).expect("listed");
                service.common.set_state("removed");
                service.common.removed = Some(chrono::Utc::now());
            }
        }
        "removed" if store.services[id].common.removed.is_some_and(|r| elapsed(r) >= purge) => {
            store.services.remove(id);
            store.instances.retain(|_, i| i.service_id != id || i.runtime.is_some());
        }
        _ => {}
    }
}

/// One step of an in-service upgrade, batch by batch: with `startFirst`,
/// a batch of new instances starts and must pass its health check before
/// as many old ones stop; without, old ones stop first. Old instances are
/// stopped, not removed, so that a rollback can restart them.
fn upgrade_step(store: &mut Store, id: &str, now: Instant) {
    let (version, scale, start_first, batch, interval, owed, next_batch) = {
        let s = &store.services[id];
        let strategy = s.upgrade.as_ref().and_then(|u| u.get("inServiceStrategy"));
        let get = |key: &str| strategy.and_then(|st| st.get(key));
        (
            s.version,
            s.scale.max(0) as usize,
            get("startFirst").and_then(Value::as_bool).unwrap_or(false),
            get("batchSize").and_then(Value::as_u64).unwrap_or(1).max(1) as usize,
            Duration::from_millis(get("intervalMillis").and_then(Value::as_u64).unwrap_or(2000)),
            s.stops_owed,
            s.next_batch,
        )
    };
    let new_live = instance_ids(store, id, |i| i.version == version && occupies(i));
    let pending = new_live.iter().any(|i| !ready(&store.instances[i]));
    if pending {
        let message = waiting_message(store, id);
        store.services.get_mut(id).expect("listed").common.message = message;
        return;
    }
    let old_running = instance_ids(store, id, |i| i.version != version && live(i));
    if owed > 0 {
        let count = owed.min(old_running.len());
        set_instance_state(store, &old_running[..count], "stopping");
        let service = store.services.get_mut(id).expect("listed");
        service.stops_owed = 0;
        service.next_batch = now + interval;
        return;
    }
    if now < next_batch {
        return;
    }
    if start_first {
        if new_live.len() < scale {
            let count = batch.min(scale - new_live.len());
            add_instances(store, id, count);
            store.services.get_mut(id).expect("listed").stops_owed = count.min(old_running.len());
            return;
        }
        if !old_running.is_empty() {
            let count = batch.min(old_running.len());
            set_instance_state(store, &old_running[..count], "stopping");
            store.services.get_mut(id).expect("listed").next_batch = now + interval;
            return;
        }
    } else {
        if !old_running.is_empty() {
            let count = batch.min(old_running.len());
            set_instance_state(store, &old_running[..count], "stopping");
            add_instances(store, id, count.min(scale.saturating_sub(new_live.len())));
            store.services.get_mut(id).expect("listed").next_batch = now + interval;
            return;
        }
        if new_live.len() < scale {
            add_instances(store, id, scale - new_live.len());
            return;
        }
    }
    let stopping = instance_ids(store, id, |i| i.version != version && i.common.state == "stopping");
    if stopping.is_empty() && new_live.len() == scale {
        store.services.get_mut(id).expect("listed").common.set_state("upgraded");
    }
}

fn reconcile_instance(shared: &Arc<Shared>, store: &mut Store, id: &str, now: Instant) {
    let Some(instance) = store.instances.get(id) else {
        return;
    };
    // A process that ended by itself: a container that exited. Cattle
    // shows it `stopped` (status 0) or `error`; it is not restarted.
    if instance.common.state == "running" {
        if let Some(exit) = instance.runtime.as_ref().and_then(|r| r.exited()) {
            tracing::debug!(%id, message = %exit.message, "instance exited");
            let instance = store.instances.get_mut(id).expect("listed");
            instance.runtime = None;
            instance.public_port = None;
            instance.health_state = None;
            if exit.success {
                instance.common.set_state("stopped");
            } else {
                instance.common.set_state("error");
                instance.common.message = Some(exit.message);
            }
            return;
        }
    }
    if instance.busy {
        return;
    }
    let state = instance.common.state.clone();
    match state.as_str() {
        "starting" if instance.runtime.is_none() => {
            let job = shared.fwatchdog.clone().and_then(|fwatchdog| {
                let (name, env, secrets, port) = start_job(store, id)?;
                Ok((fwatchdog, name, env, secrets, port))
            });
            let instance = store.instances.get_mut(id).expect("listed");
            instance.busy = true;
            let shared = shared.clone();
            let id = id.to_owned();
            tokio::spawn(async move {
                let result = match job {
                    Ok((fwatchdog, name, env, secrets, port)) => {
                        Runtime::start(&fwatchdog, &name, &env, &secrets, port).await
                    }
                    Err(message) => Err(message),
                };
                let mut store = shared.store();
                let Some(instance) = store.instances.get_mut(&id) else {
                    return;
                };
                instance.busy = false;
                match result {
                    Ok(runtime) => {
                        instance.public_port = Some(runtime.port);
                        instance.runtime = Some(Arc::new(runtime));
                        instance.start_count += 1;
                        instance.health_successes = 0;
                        instance.health_failures = 0;
                        instance.health_state =
                            health_check(&instance.launch_config).map(|_| "initializing".to_owned());
                        instance.next_check = Instant::now();
                        if instance.common.state == "starting" {
                            instance.first_running.get_or_insert_with(chrono::Utc::now);
                            instance.common.set_state("running");
                        }
                    }
                    Err(message) => {
                        tracing::debug!(%id, %message, "instance failed to start");
                        instance.common.set_state("error");
                        instance.common.message = Some(message);
                    }
                }
            });
        }
        "running" => {
            let Some(check) = health_check(&instance.launch_config) else {
                return;
            };
            let (Some(port), true) = (instance.public_port, now >= instance.next_check) else {
                return;
            };
            let instance = store.instances.get_mut(id).expect("listed");
            instance.next_check = now + check.interval;
            instance.busy = true;
            let shared = shared.clone();
            let id = id.to_owned();
            tokio::spawn(async move {
                let passed = match &check.request_line {
                    Some(line) => probe(port, line, check.timeout).await,
                    None => tokio::time::timeout(check.timeout, tokio::net::TcpStream::connect(("127.0.0.1", port)))
                        .await
                        .is_ok_and(|r| r.is_ok()),
                };
                let mut store = shared.store();
                let Some(instance) = store.instances.get_mut(&id) else {
                    return;
                };
                instance.busy = false;
                if instance.common.state != "running" {
                    return;
                }
                if passed {
                    instance.health_successes += 1;
                    instance.health_failures = 0;
                    if instance.health_successes >= check.healthy_threshold {
                        instance.health_state = Some("healthy".into());
                        instance.common.message = None;
                    }
                } else {
                    instance.health_failures += 1;
                    instance.health_successes = 0;
                    if instance.health_state.as_deref() == Some("healthy")
                        && instance.health_failures >= check.unhealthy_threshold
                    {
                        instance.health_state = Some("unhealthy".into());
                    }
                    instance.common.message =
                        Some(format!("health check failed {} time(s) in a row", instance.health_failures));
                }
            });
        }
        "stopping" | "removing" | "error" if instance.runtime.is_some() => {
            let runtime = instance.runtime.clone().expect("checked");
            let instance = store.instances.get_mut(id).expect("listed");
            instance.busy = true;
            let shared = shared.clone();
            let id = id.to_owned();
            tokio::spawn(async move {
                // Out of the service's public endpoints already; keep
                // serving a little while for callers that looked it up just
                // before, as a load balancer's deregistration delay does.
                tokio::time::sleep(shared.options.drain_delay).await;
                runtime.stop(shared.options.stop_grace).await;
                let mut store = shared.store();
                if let Some(instance) = store.instances.get_mut(&id) {
                    instance.runtime = None;
                    instance.busy = false;
                    instance.public_port = None;
                    instance.health_state = None;
                }
            });
        }
        "stopping" => store.instances.get_mut(id).expect("listed").common.set_state("stopped"),
        "removing" => {
            let instance = store.instances.get_mut(id).expect("listed");
            instance.common.set_state("removed");
            instance.common.removed = Some(chrono::Utc::now());
        }
        "removed" => {
            let gone = !store.services.contains_key(&instance.service_id);
            if gone || instance.common.removed.is_some_and(|r| elapsed(r) >= shared.options.purge_after) {
                store.instances.remove(id);
            }
        }
        _ => {}
    }
}

type StartJob = (String, BTreeMap<String, String>, Vec<(String, Vec<u8>)>, u16);

/// What starting `id` needs: its name, environment, secret files and the
/// public port its launch config asks for (0: any).
fn start_job(store: &Store, id: &str) -> Result<StartJob, String> {
    let instance = &store.instances[id];
    let lc = &instance.launch_config;
    let env: BTreeMap<String, String> = lc
        .get("environment")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned()))).collect())
        .unwrap_or_default();
    let mut secrets = Vec::new();
    for reference in lc.get("secrets").and_then(Value::as_array).into_iter().flatten() {
        let secret_id = reference.get("secretId").and_then(Value::as_str).unwrap_or_default();
        let secret = store.secrets.get(secret_id).ok_or_else(|| format!("secret {secret_id} does not exist"))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(secret.value.as_bytes())
            .map_err(|e| format!("secret {secret_id} is not base64: {e}"))?;
        let file = reference.get("name").and_then(Value::as_str).unwrap_or(&secret.common.name).to_owned();
        secrets.push((file, bytes));
    }
    let port = lc
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find_map(|spec| {
            let spec = spec.split('/').next().unwrap_or(spec);
            let parts: Vec<&str> = spec.split(':').collect();
            match parts.as_slice() {
                [public, "8080"] | [_, public, "8080"] => public.parse::<u16>().ok(),
                _ => None,
            }
        })
        .unwrap_or(0);
    Ok((instance.common.name.clone(), env, secrets, port))
}
