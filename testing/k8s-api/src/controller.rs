//! The controller: the kubelet (pods bound to this node run as processes),
//! the deployment controller (pods from a Deployment's template, rolling
//! updates, status) and the EndpointSlice controller.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash as _, Hasher as _};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::api::{self, DeleteOptions};
use crate::kinds;
use crate::pods::NODE;
use crate::selectors::LabelSelector;
use crate::store::{self, is_deleting, name_of, namespace_of, str_at, uid_of, EventType, Key, Store};
use crate::validate::int_or_percent;
use crate::Shared;

pub(crate) async fn run(shared: Arc<Shared>) {
    let mut changes = shared.changes.clone();
    let mut state = State::default();
    loop {
        let starts = reconcile(&shared, &mut state);
        for pod in starts {
            shared.pods.start(&shared, &pod);
        }
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What the controller remembers between passes.
#[derive(Debug, Default)]
struct State {
    /// The resourceVersion the previous pass saw (0: none, a full pass).
    last: u64,
    /// Deployments whose pods could not all be created (quota): retried.
    retry: HashSet<Key>,
    /// Services by one (key, value) pair of their selector, to find the
    /// services a pod may belong to: (namespace, key, value) -> services.
    selectors: HashMap<(String, String, String), HashSet<Key>>,
    /// The pair each service is indexed under.
    indexed: HashMap<Key, (String, String)>,
}

impl State {
    /// Indexes (Some) or forgets (None) a service.
    fn index_service(&mut self, key: &Key, service: Option<&Value>) {
        if let Some((k, v)) = self.indexed.remove(key) {
            if let Some(set) = self.selectors.get_mut(&(key.0.clone(), k, v)) {
                set.remove(key);
            }
        }
        let pair = service.and_then(|s| s["spec"]["selector"].as_object()).and_then(|m| m.iter().next());
        if let Some((k, v)) = pair {
            let v = v.as_str().unwrap_or_default().to_string();
            self.selectors.entry((key.0.clone(), k.clone(), v.clone())).or_default().insert(key.clone());
            self.indexed.insert(key.clone(), (k.clone(), v));
        }
    }

    fn reindex(&mut self, store: &Store) {
        self.selectors.clear();
        self.indexed.clear();
        for service in store.list(kinds::by_plural("services"), None) {
            self.index_service(&store::key_of(&service), Some(&service));
        }
    }

    /// The services whose selector matches a pod's labels.
    fn services_of(&self, store: &Store, namespace: &str, labels: &Value) -> Vec<Key> {
        let mut out = Vec::new();
        for (k, v) in labels.as_object().into_iter().flatten() {
            let pair = (namespace.to_string(), k.clone(), v.as_str().unwrap_or_default().to_string());
            for key in self.selectors.get(&pair).into_iter().flatten() {
                let Some(service) = store.get(kinds::by_plural("services"), &key.0, &key.1) else { continue };
                if let Some(selector) = service["spec"]["selector"].as_object() {
                    if LabelSelector::from_map(selector).matches(labels) {
                        out.push(key.clone());
                    }
                }
            }
        }
        out
    }
}

/// One pass; returns the pods to start. Only the deployments and services
/// touched by the events since the previous pass are reconciled.
fn reconcile(shared: &Arc<Shared>, state: &mut State) -> Vec<Value> {
    let mut store = shared.store();
    let pods_kind = kinds::by_plural("pods");
    let deployments_kind = kinds::by_plural("deployments");
    let services_kind = kinds::by_plural("services");
    let since = state.last;
    state.last = store.rv();
    let mut full = since == 0;
    if full {
        state.reindex(&store);
    }
    let mut deployments: HashSet<Key> = std::mem::take(&mut state.retry);
    let mut services: HashSet<Key> = HashSet::new();
    let mut changed_pods: HashSet<Key> = HashSet::new();
    for plural in ["deployments", "services", "endpointslices", "pods"] {
        let kind = kinds::by_plural(plural);
        let Ok(events) = store.events_after(kind, since) else {
            full = true;
            continue;
        };
        for event in events {
            let (ns, _) = &event.key;
            match plural {
                "deployments" => {
                    deployments.insert(event.key.clone());
                }
                "services" => {
                    let live = (event.kind != EventType::Deleted).then_some(&*event.object);
                    state.index_service(&event.key, live);
                    services.insert(event.key.clone());
                }
                "endpointslices" => {
                    let service = str_at(&event.object, &["metadata", "labels", "kubernetes.io/service-name"]);
                    services.insert((ns.clone(), service.to_string()));
                }
                _ => {
                    changed_pods.insert(event.key.clone());
                    let versions = [Some(&event.object), event.prev.as_ref()];
                    for pod in versions.into_iter().flatten() {
                        for owner in pod["metadata"]["ownerReferences"].as_array().into_iter().flatten() {
                            if owner["kind"] == "Deployment" {
                                deployments
                                    .insert((ns.clone(), owner["name"].as_str().unwrap_or_default().to_string()));
                            }
                        }
                        services.extend(state.services_of(&store, ns, &pod["metadata"]["labels"]));
                    }
                }
            }
        }
    }
    if full {
        state.reindex(&store);
        deployments.extend(store.list(deployments_kind, None).iter().map(|d| store::key_of(d)));
        services.extend(store.list(services_kind, None).iter().map(|s| store::key_of(s)));
    }
    let mut starts = Vec::new();
    // The kubelet, for the pods that changed.
    let pods: Vec<Arc<Value>> = if full {
        store.list(pods_kind, None)
    } else {
        changed_pods.iter().filter_map(|(ns, name)| store.get(pods_kind, ns, name)).collect()
    };
    for pod in pods {
        let uid = uid_of(&pod).to_string();
        let node = str_at(&pod, &["spec", "nodeName"]);
        if node.is_empty() && !is_deleting(&pod) {
            let mut bound = (*pod).clone();
            bound["spec"]["nodeName"] = json!(NODE);
            let conditions = json!([{"type": "PodScheduled", "status": "True", "lastTransitionTime": store::now()}]);
            bound["status"]["conditions"] = conditions;
            let bound = store.replace(pods_kind, bound);
            starts.push((*bound).clone());
            continue;
        }
        if node != NODE {
            continue;
        }
        let terminal = matches!(pod["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
        if is_deleting(&pod) {
            if shared.pods.has(&uid) {
                shared.pods.stop(&uid, pod["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(30));
            } else {
                let (ns, name) = store::key_of(&pod);
                store.remove(pods_kind, &ns, &name);
            }
        } else if !shared.pods.has(&uid) && !terminal {
            starts.push((*pod).clone());
        }
    }
    for uid in shared.pods.uids() {
        if !store.uid_exists(&uid) {
            shared.pods.stop(&uid, 0);
        }
    }
    for (ns, name) in deployments {
        if let Some(deployment) = store.get(deployments_kind, &ns, &name) {
            if !reconcile_deployment(shared, &mut store, &deployment) {
                state.retry.insert((ns, name));
            }
        }
    }
    for (ns, name) in services {
        if let Some(service) = store.get(services_kind, &ns, &name) {
            reconcile_slices(&mut store, &service);
        }
    }
    starts
}

/// A short hash of a pod template, as `pod-template-hash` labels carry.
fn template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    template.to_string().hash(&mut hasher);
    let mut n = hasher.finish();
    let mut out = String::new();
    for _ in 0..10 {
        out.push(ALPHABET[(n % ALPHABET.len() as u64) as usize] as char);
        n /= ALPHABET.len() as u64;
    }
    out
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn pick_for_deletion(mut candidates: Vec<Arc<Value>>, n: usize) -> Vec<Arc<Value>> {
    // Not ready first, then the newest.
    candidates.sort_by(|a, b| {
        is_ready(a).cmp(&is_ready(b)).then_with(|| {
            str_at(b, &["metadata", "creationTimestamp"]).cmp(str_at(a, &["metadata", "creationTimestamp"]))
        })
    });
    candidates.truncate(n);
    candidates
}

/// Reconciles one deployment; false when some pod could not be created.
fn reconcile_deployment(shared: &Shared, store: &mut Store, deployment: &Value) -> bool {
    let pods_kind = kinds::by_plural("pods");
    let ns = namespace_of(deployment).to_string();
    let uid = uid_of(deployment).to_string();
    let spec = &deployment["spec"];
    let desired = spec["replicas"].as_i64().unwrap_or(1).max(0) as usize;
    let hash = template_hash(&spec["template"]);
    let owned = |store: &Store| -> Vec<Arc<Value>> {
        store.list(pods_kind, Some(&ns)).into_iter().filter(|p| store::owner_uids(p).any(|u| u == uid)).collect()
    };
    let mut failure: Option<String> = None;
    if !is_deleting(deployment) && spec["paused"] != true {
        let all = owned(store);
        let live: Vec<Arc<Value>> = all.iter().filter(|p| !is_deleting(p)).cloned().collect();
        let (new, old): (Vec<Arc<Value>>, Vec<Arc<Value>>) =
            live.iter().cloned().partition(|p| str_at(p, &["metadata", "labels", "pod-template-hash"]) == hash);
        let mut creates = 0usize;
        let mut deletes: Vec<Arc<Value>> = Vec::new();
        if new.len() > desired {
            deletes.extend(pick_for_deletion(new.clone(), new.len() - desired));
        }
        let old_remaining = all.iter().any(|p| str_at(p, &["metadata", "labels", "pod-template-hash"]) != hash);
        if spec["strategy"]["type"] == "Recreate" && old_remaining {
            // Upstream: every old pod is gone, not just terminating, before
            // a new one is created.
            deletes.extend(old.iter().cloned());
        } else if old.is_empty() {
            creates = desired.saturating_sub(new.len());
        } else {
            let rolling = &spec["strategy"]["rollingUpdate"];
            let total_desired = desired as i64;
            let surge = int_or_percent(&rolling["maxSurge"], total_desired, true).unwrap_or(1).max(0);
            let mut unavailable = int_or_percent(&rolling["maxUnavailable"], total_desired, false).unwrap_or(0).max(0);
            if surge == 0 && unavailable == 0 {
                unavailable = 1;
            }
            let total = live.len() as i64;
            let max_total = total_desired + surge;
            if (new.len() as i64) < total_desired && total < max_total {
                creates = ((total_desired - new.len() as i64).min(max_total - total)).max(0) as usize;
            }
            let min_available = total_desired - unavailable;
            let new_unavailable = new.iter().filter(|p| !is_ready(p)).count() as i64;
            let max_scaled_down = total - min_available - new_unavailable;
            if max_scaled_down > 0 {
                let unhealthy: Vec<Arc<Value>> = old.iter().filter(|p| !is_ready(p)).cloned().collect();
                let first = pick_for_deletion(unhealthy, max_scaled_down as usize);
                let available = live.iter().filter(|p| is_ready(p)).count() as i64;
                let can_remove_ready = (available - min_available).max(0) as usize;
                let remaining = (max_scaled_down as usize).saturating_sub(first.len());
                let healthy: Vec<Arc<Value>> = old.iter().filter(|p| is_ready(p)).cloned().collect();
                let second = pick_for_deletion(healthy, can_remove_ready.min(remaining));
                deletes.extend(first);
                deletes.extend(second);
            }
        }
        for pod in deletes {
            let (pns, pname) = store::key_of(&pod);
            let _ = api::delete(shared, store, pods_kind, &pns, &pname, &DeleteOptions::background());
        }
        for _ in 0..creates {
            let template = &spec["template"];
            let mut labels = template["metadata"]["labels"].clone();
            labels["pod-template-hash"] = json!(hash);
            let mut metadata = json!({
                "generateName": format!("{}-{hash}-", name_of(deployment)),
                "namespace": ns,
                "labels": labels,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name_of(deployment),
                    "uid": uid, "controller": true, "blockOwnerDeletion": true}],
            });
            if template["metadata"]["annotations"].is_object() {
                metadata["annotations"] = template["metadata"]["annotations"].clone();
            }
            let mut pod_spec = template["spec"].clone();
            pod_spec["nodeName"] = json!(NODE);
            let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec});
            if let Err(e) = api::create(store, pods_kind, Some(&ns), pod) {
                failure = Some(e.message);
                break;
            }
        }
    }
    // Status.
    let created_all = failure.is_none();
    let Some(current) = store.get(kinds::by_plural("deployments"), &ns, name_of(deployment)) else { return true };
    let live: Vec<Arc<Value>> = owned(store).into_iter().filter(|p| !is_deleting(p)).collect();
    let replicas = live.len() as i64;
    let updated =
        live.iter().filter(|p| str_at(p, &["metadata", "labels", "pod-template-hash"]) == hash).count() as i64;
    let ready = live.iter().filter(|p| is_ready(p)).count() as i64;
    let available = ready;
    let desired = desired as i64;
    let unavailable = (desired.max(replicas) - available).max(0);
    let rolling = &spec["strategy"]["rollingUpdate"];
    let max_unavailable = if spec["strategy"]["type"] == "Recreate" {
        0
    } else {
        int_or_percent(&rolling["maxUnavailable"], desired, false).unwrap_or(0)
    };
    let old_conditions = current["status"]["conditions"].clone();
    let condition = |kind: &str, status: &str, reason: &str, message: String| -> Value {
        let previous = old_conditions.as_array().into_iter().flatten().find(|c| c["type"] == kind).cloned();
        let now = store::now();
        let (transition, update) = match &previous {
            Some(p) if p["status"] == status && p["reason"] == reason => (
                p["lastTransitionTime"].clone(),
                if p["message"] == message.as_str() { p["lastUpdateTime"].clone() } else { json!(now) },
            ),
            Some(p) if p["status"] == status => (p["lastTransitionTime"].clone(), json!(now)),
            _ => (json!(now), json!(now)),
        };
        json!({"type": kind, "status": status, "reason": reason, "message": message,
            "lastUpdateTime": update, "lastTransitionTime": transition})
    };
    let rs_name = format!("{}-{hash}", name_of(deployment));
    let mut conditions = vec![if available >= desired - max_unavailable {
        condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.".into())
    } else {
        condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
        )
    }];
    let complete = updated == desired && available >= desired && replicas == desired;
    conditions.push(if complete {
        condition(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
        )
    } else {
        condition("Progressing", "True", "ReplicaSetUpdated", format!("ReplicaSet \"{rs_name}\" is progressing."))
    });
    let failure = failure.or_else(|| {
        // Keep a previous failure while pods are still missing.
        old_conditions
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "ReplicaFailure" && c["status"] == "True")
            .filter(|_| replicas < desired)
            .and_then(|c| c["message"].as_str().map(String::from))
    });
    if let Some(message) = failure {
        conditions.push(condition("ReplicaFailure", "True", "FailedCreate", message));
    }
    let mut status = json!({"observedGeneration": current["metadata"]["generation"], "conditions": conditions});
    for (field, value) in [
        ("replicas", replicas),
        ("updatedReplicas", updated),
        ("readyReplicas", ready),
        ("availableReplicas", available),
        ("unavailableReplicas", unavailable),
    ] {
        if value != 0 {
            status[field] = json!(value);
        }
    }
    if current["status"] != status {
        let mut new = (*current).clone();
        new["status"] = status;
        store.replace(kinds::by_plural("deployments"), new);
    }
    created_all
}

fn reconcile_slices(store: &mut Store, service: &Value) {
    let slices_kind = kinds::by_plural("endpointslices");
    let Some(selector) = service["spec"]["selector"].as_object().filter(|s| !s.is_empty()) else { return };
    if is_deleting(service) {
        return;
    }
    let selector = LabelSelector::from_map(selector);
    let ns = namespace_of(service).to_string();
    let name = name_of(service).to_string();
    let mut pods: Vec<Arc<Value>> = store
        .list(kinds::by_plural("pods"), Some(&ns))
        .into_iter()
        .filter(|p| selector.matches(&p["metadata"]["labels"]) && !str_at(p, &["status", "podIP"]).is_empty())
        .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
        .collect();
    pods.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    let mut ports = Vec::new();
    for port in service["spec"]["ports"].as_array().into_iter().flatten() {
        let target = &port["targetPort"];
        let number = match target.as_u64() {
            Some(n) => Some(n),
            None => pods.iter().find_map(|p| {
                p["spec"]["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|c| c["ports"].as_array().into_iter().flatten())
                    .find(|cp| cp["name"] == *target)
                    .and_then(|cp| cp["containerPort"].as_u64())
            }),
        };
        if let Some(number) = number {
            ports.push(json!({"name": port["name"].as_str().unwrap_or(""), "port": number,
                "protocol": port["protocol"].as_str().unwrap_or("TCP")}));
        }
    }
    let endpoints: Vec<Value> = pods
        .iter()
        .map(|p| {
            let terminating = is_deleting(p);
            let ready = is_ready(p);
            json!({
                "addresses": [str_at(p, &["status", "podIP"])],
                "conditions": {"ready": ready && !terminating, "serving": ready, "terminating": terminating},
                "targetRef": {"kind": "Pod", "namespace": ns, "name": name_of(p), "uid": uid_of(p)},
                "nodeName": NODE,
            })
        })
        .collect();
    let mut labels: BTreeMap<String, Value> =
        service["metadata"]["labels"].as_object().map(|m| m.clone().into_iter().collect()).unwrap_or_default();
    labels.insert("kubernetes.io/service-name".into(), json!(name));
    labels.insert("endpointslice.kubernetes.io/managed-by".into(), json!("endpointslice-controller.k8s.io"));
    let owner = json!([{"apiVersion": "v1", "kind": "Service", "name": name, "uid": uid_of(service),
        "controller": true, "blockOwnerDeletion": true}]);
    // Slices are named `<service>-<suffix>` (generateName).
    let existing: Vec<Arc<Value>> = store
        .list_prefix(slices_kind, &ns, &format!("{name}-"))
        .into_iter()
        .filter(|s| {
            str_at(s, &["metadata", "labels", "kubernetes.io/service-name"]) == name
                && str_at(s, &["metadata", "labels", "endpointslice.kubernetes.io/managed-by"])
                    == "endpointslice-controller.k8s.io"
                && !is_deleting(s)
        })
        .collect();
    let mut desired = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"namespace": ns, "labels": labels, "ownerReferences": owner},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    });
    match existing.first() {
        None => {
            desired["metadata"]["generateName"] = json!(format!("{name}-"));
            let _ = api::create(store, slices_kind, Some(&ns), desired);
        }
        Some(slice) => {
            let mut new = (**slice).clone();
            for field in ["addressType", "endpoints", "ports"] {
                new[field] = desired[field].clone();
            }
            new["metadata"]["labels"] = desired["metadata"]["labels"].clone();
            new["metadata"]["ownerReferences"] = desired["metadata"]["ownerReferences"].clone();
            if new != **slice {
                store.replace(slices_kind, new);
            }
            for extra in existing.iter().skip(1) {
                store.remove(slices_kind, &ns, name_of(extra));
            }
        }
    }
}
