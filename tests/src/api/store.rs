//! Generic object storage: JSON objects keyed by group/resource/namespace/name, one global
//! `resourceVersion` counter, a bounded event history and a broadcast of every change for watches.
//!
//! The store knows nothing about Kubernetes semantics beyond `metadata.resourceVersion`; creation,
//! finalizers, generations and validation live in `objects`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::broadcast;

use super::status::ApiError;

/// Where an object lives. Versions share storage (no conversion), so the key has no version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjKey {
    /// API group (`""` for core).
    pub group: String,
    /// Plural resource name.
    pub resource: String,
    /// Namespace (`""` for cluster-scoped objects).
    pub namespace: String,
    /// Object name.
    pub name: String,
}

impl ObjKey {
    /// A key from its parts.
    pub fn new(group: &str, resource: &str, namespace: &str, name: &str) -> Self {
        Self {
            group: group.to_string(),
            resource: resource.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed from storage.
    Deleted,
}

impl EventType {
    /// The watch event type string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as kept in the history and sent to watchers.
#[derive(Debug, Clone)]
pub struct StoreEvent {
    /// The resourceVersion this change produced.
    pub rv: u64,
    /// Which object.
    pub key: ObjKey,
    /// Kind of change.
    pub kind: EventType,
    /// The object after the change (for `Deleted`: its last state, with the new resourceVersion).
    pub object: Arc<Value>,
    /// The object before the change (for selector transitions).
    pub prev: Option<Arc<Value>>,
}

/// What a mutation wants done.
#[derive(Debug)]
pub enum Mutation {
    /// Store this object (create or replace).
    Put(Value),
    /// Remove the object.
    Delete,
    /// Leave everything as is.
    Unchanged,
}

struct Inner {
    rv: u64,
    objects: BTreeMap<ObjKey, Arc<Value>>,
    history: VecDeque<Arc<StoreEvent>>,
    /// Oldest resourceVersion a watch may resume from.
    oldest: u64,
}

/// The object store.
pub struct Store {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<StoreEvent>>,
    history_limit: usize,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// An empty store keeping `history_limit` events for watch resumption.
    pub fn new(history_limit: usize) -> Self {
        let (tx, _) = broadcast::channel(16_384);
        Self {
            inner: Mutex::new(Inner {
                rv: 1,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                oldest: 1,
            }),
            tx,
            history_limit: history_limit.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-written map (every write is a single
        // insert/remove), so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current (latest) resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// One object.
    pub fn get(&self, key: &ObjKey) -> Option<Arc<Value>> {
        self.lock().objects.get(key).cloned()
    }

    /// Objects of a resource, optionally in one namespace, with the resourceVersion of the snapshot.
    pub fn list(&self, group: &str, resource: &str, namespace: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let inner = self.lock();
        let items = inner
            .objects
            .iter()
            .filter(|(k, _)| {
                k.group == group && k.resource == resource && namespace.is_none_or(|ns| k.namespace == ns)
            })
            .map(|(_, v)| v.clone())
            .collect();
        (items, inner.rv)
    }

    /// Every object (for the garbage collector).
    pub fn all(&self) -> Vec<(ObjKey, Arc<Value>)> {
        self.lock()
            .objects
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Atomically read-modify-write one object. `f` sees the current object and decides; a `Put`
    /// gets a fresh resourceVersion. Returns the stored object (or the removed one for `Delete`).
    pub fn mutate<F>(&self, key: &ObjKey, f: F) -> Result<Option<Arc<Value>>, ApiError>
    where
        F: FnOnce(Option<&Value>) -> Result<Mutation, ApiError>,
    {
        let mut inner = self.lock();
        let prev = inner.objects.get(key).cloned();
        match f(prev.as_deref())? {
            Mutation::Unchanged => Ok(prev),
            Mutation::Put(mut obj) => {
                inner.rv += 1;
                let rv = inner.rv;
                set_rv(&mut obj, rv);
                let obj = Arc::new(obj);
                inner.objects.insert(key.clone(), obj.clone());
                let kind = if prev.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                };
                self.record(
                    &mut inner,
                    StoreEvent {
                        rv,
                        key: key.clone(),
                        kind,
                        object: obj.clone(),
                        prev,
                    },
                );
                Ok(Some(obj))
            }
            Mutation::Delete => {
                let Some(old) = inner.objects.remove(key) else {
                    return Ok(None);
                };
                inner.rv += 1;
                let rv = inner.rv;
                let mut last = (*old).clone();
                set_rv(&mut last, rv);
                let last = Arc::new(last);
                self.record(
                    &mut inner,
                    StoreEvent {
                        rv,
                        key: key.clone(),
                        kind: EventType::Deleted,
                        object: last.clone(),
                        prev: Some(old),
                    },
                );
                Ok(Some(last))
            }
        }
    }

    fn record(&self, inner: &mut Inner, event: StoreEvent) {
        let event = Arc::new(event);
        inner.history.push_back(event.clone());
        while inner.history.len() > self.history_limit {
            if let Some(dropped) = inner.history.pop_front() {
                inner.oldest = dropped.rv;
            }
        }
        // No receivers is fine: nobody watches.
        let _ = self.tx.send(event);
    }

    /// Events of one resource after `rv` still in the history, plus a receiver for everything
    /// later; taken under the lock so nothing is missed or duplicated. `Gone` when `rv` is older
    /// than the history.
    pub fn watch_from(
        &self,
        group: &str,
        resource: &str,
        rv: u64,
    ) -> Result<(Vec<Arc<StoreEvent>>, broadcast::Receiver<Arc<StoreEvent>>), ApiError> {
        let inner = self.lock();
        if rv < inner.oldest {
            return Err(ApiError::gone(format!(
                "too old resource version: {rv} ({})",
                inner.oldest
            )));
        }
        let past = inner
            .history
            .iter()
            .filter(|e| e.rv > rv && e.key.group == group && e.key.resource == resource)
            .cloned()
            .collect();
        Ok((past, self.tx.subscribe()))
    }

    /// A snapshot of a resource plus a receiver of all later changes (for `watch` without a
    /// resourceVersion, which starts with the current state).
    pub fn snapshot_and_subscribe(
        &self,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> (Vec<Arc<Value>>, u64, broadcast::Receiver<Arc<StoreEvent>>) {
        let inner = self.lock();
        let items = inner
            .objects
            .iter()
            .filter(|(k, _)| {
                k.group == group && k.resource == resource && namespace.is_none_or(|ns| k.namespace == ns)
            })
            .map(|(_, v)| v.clone())
            .collect();
        (items, inner.rv, self.tx.subscribe())
    }

    /// A receiver of every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StoreEvent>> {
        self.tx.subscribe()
    }
}

fn set_rv(obj: &mut Value, rv: u64) {
    if let Some(map) = obj.as_object_mut() {
        let meta = map
            .entry("metadata")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
    }
}
