//! Objects, the global resourceVersion and each kind's event history.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::watch;

use crate::kinds::{Kind, KINDS};

/// How many events each kind keeps for watches and continue tokens.
pub(crate) const HISTORY: usize = 10_000;

/// An object's key: (namespace, or "" for cluster-scoped kinds; name).
pub(crate) type Key = (String, String);

/// A watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change of one object.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) rv: u64,
    pub(crate) kind: EventType,
    pub(crate) key: Key,
    /// The object after the change (for DELETED: its last state, with the
    /// deletion's resourceVersion).
    pub(crate) object: Arc<Value>,
    /// The object before the change (None for ADDED).
    pub(crate) prev: Option<Arc<Value>>,
}

/// The objects of one kind and their recent history.
#[derive(Debug, Default)]
pub(crate) struct KindStore {
    pub(crate) objects: BTreeMap<Key, Arc<Value>>,
    pub(crate) events: VecDeque<Event>,
    /// Events up to this resourceVersion were dropped from the history.
    pub(crate) compacted: u64,
}

/// Every object.
#[derive(Debug)]
pub(crate) struct Store {
    rv: u64,
    kinds: HashMap<&'static str, KindStore>,
    /// The uid of every stored object.
    uids: HashSet<String>,
    /// (kind, key) of every object with a deletionTimestamp.
    deleting: HashSet<(&'static str, Key)>,
    /// Cluster IPs handed out (never reused) and the next candidate.
    pub(crate) cluster_ips: HashSet<String>,
    pub(crate) next_cluster_ip: u32,
    changes: watch::Sender<u64>,
}

impl Store {
    pub(crate) fn new(changes: watch::Sender<u64>) -> Store {
        Store {
            rv: 1,
            kinds: KINDS.iter().map(|k| (k.plural, KindStore::default())).collect(),
            uids: HashSet::new(),
            deleting: HashSet::new(),
            cluster_ips: HashSet::new(),
            next_cluster_ip: 11,
            changes,
        }
    }

    /// The current resourceVersion.
    pub(crate) fn rv(&self) -> u64 {
        self.rv
    }

    /// The kind's objects and history.
    pub(crate) fn kind(&self, kind: &Kind) -> &KindStore {
        &self.kinds[kind.plural]
    }

    /// One object.
    pub(crate) fn get(&self, kind: &Kind, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.kinds[kind.plural].objects.get(&(namespace.to_string(), name.to_string())).cloned()
    }

    /// Every object of a kind (in a namespace, or all of them).
    pub(crate) fn list(&self, kind: &Kind, namespace: Option<&str>) -> Vec<Arc<Value>> {
        let objects = &self.kinds[kind.plural].objects;
        match namespace {
            Some(ns) => objects
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, v)| v.clone())
                .collect(),
            None => objects.values().cloned().collect(),
        }
    }

    /// The objects of a kind in a namespace whose name starts with `prefix`.
    pub(crate) fn list_prefix(&self, kind: &Kind, namespace: &str, prefix: &str) -> Vec<Arc<Value>> {
        self.kinds[kind.plural]
            .objects
            .range((namespace.to_string(), prefix.to_string())..)
            .take_while(|((n, name), _)| n == namespace && name.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn record(&mut self, plural: &'static str, event: Event) {
        let rv = event.rv;
        let store = self.kinds.get_mut(plural).expect("known kind");
        store.events.push_back(event);
        while store.events.len() > HISTORY {
            if let Some(dropped) = store.events.pop_front() {
                store.compacted = dropped.rv;
            }
        }
        self.changes.send_replace(rv);
    }

    /// Stores a new object (stamping its resourceVersion); returns it.
    pub(crate) fn insert(&mut self, kind: &'static Kind, mut object: Value) -> Arc<Value> {
        strip_nulls(&mut object);
        let rv = self.next_rv();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let key = key_of(&object);
        self.uids.insert(uid_of(&object).to_string());
        if is_deleting(&object) {
            self.deleting.insert((kind.plural, key.clone()));
        } else {
            self.deleting.remove(&(kind.plural, key.clone()));
        }
        let object = Arc::new(object);
        let prev = self.kinds.get_mut(kind.plural).expect("known kind").objects.insert(key.clone(), object.clone());
        let event_kind = if prev.is_some() { EventType::Modified } else { EventType::Added };
        self.record(kind.plural, Event { rv, kind: event_kind, key, object: object.clone(), prev });
        object
    }

    /// Replaces an object (stamping a new resourceVersion); returns it.
    pub(crate) fn replace(&mut self, kind: &'static Kind, object: Value) -> Arc<Value> {
        self.insert(kind, object)
    }

    /// Removes an object; returns its last state.
    pub(crate) fn remove(&mut self, kind: &Kind, namespace: &str, name: &str) -> Option<Arc<Value>> {
        let key = (namespace.to_string(), name.to_string());
        let prev = self.kinds.get_mut(kind.plural).expect("known kind").objects.remove(&key)?;
        self.uids.remove(uid_of(&prev));
        self.deleting.remove(&(kind.plural, key.clone()));
        let rv = self.next_rv();
        let mut last = (*prev).clone();
        last["metadata"]["resourceVersion"] = json!(rv.to_string());
        let last = Arc::new(last);
        self.record(kind.plural, Event { rv, kind: EventType::Deleted, key, object: last.clone(), prev: Some(prev) });
        Some(last)
    }

    /// The kind's objects as they were at `rv`, or None when the history
    /// no longer reaches back that far.
    pub(crate) fn snapshot(&self, kind: &Kind, rv: u64) -> Option<BTreeMap<Key, Arc<Value>>> {
        let store = &self.kinds[kind.plural];
        if rv >= self.rv {
            return Some(store.objects.clone());
        }
        if rv < store.compacted {
            return None;
        }
        let mut objects = store.objects.clone();
        for event in store.events.iter().rev().take_while(|e| e.rv > rv) {
            match &event.prev {
                Some(prev) => objects.insert(event.key.clone(), prev.clone()),
                None => objects.remove(&event.key),
            };
        }
        Some(objects)
    }

    /// Events of a kind after `rv`, or Err(compacted) when some were dropped.
    pub(crate) fn events_after(&self, kind: &Kind, rv: u64) -> Result<Vec<Event>, u64> {
        let store = &self.kinds[kind.plural];
        if rv < store.compacted {
            return Err(store.compacted);
        }
        let start = store.events.partition_point(|e| e.rv <= rv);
        Ok(store.events.range(start..).cloned().collect())
    }

    /// Every object with a deletionTimestamp (kind, object).
    pub(crate) fn deleting(&self) -> Vec<(&'static Kind, Arc<Value>)> {
        let mut out: Vec<(&'static Kind, Arc<Value>)> = self
            .deleting
            .iter()
            .filter_map(|(plural, key)| {
                let kind = crate::kinds::by_plural(plural);
                self.kinds[plural].objects.get(key).map(|o| (kind, o.clone()))
            })
            .collect();
        out.sort_by(|a, b| (a.0.plural, key_of(&a.1)).cmp(&(b.0.plural, key_of(&b.1))));
        out
    }

    /// Whether an object with this uid exists.
    pub(crate) fn uid_exists(&self, uid: &str) -> bool {
        self.uids.contains(uid)
    }

    /// Every (kind, object) whose metadata.uid is `uid`'s dependents: objects
    /// in `namespace` with an ownerReference to `uid`.
    pub(crate) fn dependents(&self, namespace: &str, uid: &str) -> Vec<(&'static Kind, Arc<Value>)> {
        let mut out = Vec::new();
        for kind in KINDS.iter().filter(|k| k.namespaced) {
            for object in self.list(kind, Some(namespace)) {
                if owner_uids(&object).any(|u| u == uid) {
                    out.push((kind, object));
                }
            }
        }
        out
    }
}

/// Removes null members (Go's omitted fields), recursively.
pub(crate) fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// The uids an object's ownerReferences name.
pub(crate) fn owner_uids(object: &Value) -> impl Iterator<Item = &str> {
    object["metadata"]["ownerReferences"].as_array().into_iter().flatten().filter_map(|r| r["uid"].as_str())
}

/// An object's (namespace, name).
pub(crate) fn key_of(object: &Value) -> Key {
    (str_at(object, &["metadata", "namespace"]).to_string(), str_at(object, &["metadata", "name"]).to_string())
}

/// The string at a path, or "".
pub(crate) fn str_at<'a>(object: &'a Value, path: &[&str]) -> &'a str {
    let mut v = object;
    for p in path {
        v = &v[*p];
    }
    v.as_str().unwrap_or("")
}

/// `metadata.name`.
pub(crate) fn name_of(object: &Value) -> &str {
    str_at(object, &["metadata", "name"])
}

/// `metadata.namespace`.
pub(crate) fn namespace_of(object: &Value) -> &str {
    str_at(object, &["metadata", "namespace"])
}

/// `metadata.uid`.
pub(crate) fn uid_of(object: &Value) -> &str {
    str_at(object, &["metadata", "uid"])
}

/// Whether `metadata.deletionTimestamp` is set.
pub(crate) fn is_deleting(object: &Value) -> bool {
    !object["metadata"]["deletionTimestamp"].is_null()
}

/// An RFC 3339 timestamp with second precision, as metadata uses.
pub(crate) fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}
