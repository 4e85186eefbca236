//! The garbage collector and namespace lifecycle: objects whose owners are
//! gone are deleted, foreground deletions wait for their dependents,
//! terminating namespaces are emptied then removed, ResourceQuota status
//! is kept current.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::api::{self, DeleteOptions};
use crate::kinds::{self, KINDS};
use crate::store::{self, is_deleting, name_of, namespace_of, owner_uids, uid_of, EventType, Store};
use crate::Shared;

pub(crate) async fn run(shared: Arc<Shared>) {
    let mut changes = shared.changes.clone();
    let mut last = 0;
    loop {
        pass(&shared, &mut last);
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        // Let a burst of writes land before the next pass.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn finalizers(object: &Value) -> Vec<String> {
    object["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(String::from))
        .collect()
}

/// One pass; `last` is the resourceVersion the previous pass saw (0: none).
pub(crate) fn pass(shared: &Shared, last: &mut u64) {
    let mut store = shared.store();
    let since = *last;
    *last = store.rv();
    // Objects whose owners may be gone: those written since the last pass
    // with owner references, and the dependents of objects deleted since.
    let mut candidates: Vec<(&'static kinds::Kind, Arc<Value>)> = Vec::new();
    let mut deleted: HashSet<String> = HashSet::new();
    let mut full = since == 0;
    for kind in KINDS.iter() {
        match store.events_after(kind, since) {
            Err(_) => full = true,
            Ok(events) => {
                for event in events {
                    if event.kind == EventType::Deleted {
                        deleted.insert(uid_of(&event.object).to_string());
                    } else if kind.namespaced && owner_uids(&event.object).next().is_some() {
                        candidates.push((kind, event.object));
                    }
                }
            }
        }
    }
    if full || !deleted.is_empty() {
        for kind in KINDS.iter().filter(|k| k.namespaced) {
            for object in store.list(kind, None) {
                if owner_uids(&object).any(|u| full || deleted.contains(u)) {
                    candidates.push((kind, object));
                }
            }
        }
    }
    for (kind, object) in candidates {
        let (ns, name) = store::key_of(&object);
        let Some(current) = store.get(kind, &ns, &name) else { continue };
        if uid_of(&current) != uid_of(&object) || is_deleting(&current) {
            continue;
        }
        let owners: Vec<&str> = owner_uids(&current).collect();
        if !owners.is_empty() && !owners.iter().any(|u| store.uid_exists(u)) {
            let _ = api::delete(shared, &mut store, kind, &ns, &name, &DeleteOptions::background());
        }
    }
    // Foreground deletions (dependents first, then the owner) and
    // terminating namespaces.
    for (kind, object) in store.deleting() {
        if kind.plural == "namespaces" {
            let name = name_of(&object).to_string();
            let mut remaining = 0;
            for kind in KINDS.iter().filter(|k| k.namespaced) {
                for object in store.list(kind, Some(&name)) {
                    remaining += 1;
                    if !is_deleting(&object) {
                        let _ = api::delete(
                            shared,
                            &mut store,
                            kind,
                            &name,
                            name_of(&object),
                            &DeleteOptions::background(),
                        );
                    }
                }
            }
            if remaining == 0 {
                store.remove(kind, "", &name);
            }
            continue;
        }
        if !kind.namespaced || !finalizers(&object).iter().any(|f| f == "foregroundDeletion") {
            continue;
        }
        let dependents = store.dependents(namespace_of(&object), uid_of(&object));
        for (dep_kind, dep) in &dependents {
            if !is_deleting(dep) {
                let (ns, name) = store::key_of(dep);
                let _ = api::delete(shared, &mut store, dep_kind, &ns, &name, &DeleteOptions::background());
            }
        }
        if dependents.is_empty() {
            let mut new = (*object).clone();
            let rest: Vec<String> = finalizers(&object).into_iter().filter(|f| f != "foregroundDeletion").collect();
            new["metadata"]["finalizers"] = json!(rest);
            let (ns, name) = store::key_of(&object);
            if rest.is_empty() {
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.remove("finalizers");
                }
                store.replace(kind, new);
                store.remove(kind, &ns, &name);
            } else {
                store.replace(kind, new);
            }
        }
    }
    update_quotas(&mut store);
}

fn update_quotas(store: &mut Store) {
    let quotas = kinds::by_plural("resourcequotas");
    for quota in store.list(quotas, None) {
        let hard = quota["spec"]["hard"].clone();
        let mut used = Map::new();
        for key in hard.as_object().into_iter().flatten().map(|(k, _)| k) {
            if let Some(n) = api::quota_used(store, key, namespace_of(&quota)) {
                used.insert(key.clone(), json!(n.to_string()));
            }
        }
        let status = json!({"hard": hard, "used": used});
        if quota["status"] != status {
            let mut new = (*quota).clone();
            new["status"] = status;
            store.replace(quotas, new);
        }
    }
}
