//! The garbage collector: deletes dependents whose owners are gone (background propagation),
//! finishes foreground and orphan deletions, empties terminating namespaces, and drops objects of
//! CRDs that were removed. Woken after every write; each pass rescans the (small) store, borrowing from
//! it, and the next pass waits twice as long as the last one took, so under a stream of writes (a bench's
//! thousands of objects) the collector takes at most a third of a core instead of all of it, like a real
//! API server's collector, which also lags behind the writes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::ApiServer;
use super::objects::{DeleteOptions, Propagation, finalizers, is_deleting, meta_mut, meta_str};
use super::store::{Mutation, ObjKey};

pub(crate) fn spawn(server: &Arc<ApiServer>) {
    let weak: Weak<ApiServer> = Arc::downgrade(server);
    let token = server.shutdown.clone();
    let wake = server.gc.clone();
    tokio::spawn(async move {
        loop {
            let Some(server) = weak.upgrade() else { return };
            let started = Instant::now();
            // Passes repeat until nothing changes: one deletion can orphan the next level.
            for _ in 0..100 {
                if !server.gc_pass() {
                    break;
                }
            }
            drop(server);
            // A write during the pause is not lost: `notified` keeps its permit.
            let pause = started.elapsed().saturating_mul(2).min(MAX_PAUSE);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = token.cancelled() => return,
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = token.cancelled() => return,
            }
        }
    });
}

/// The longest pause between two collections.
const MAX_PAUSE: Duration = Duration::from_millis(250);

fn owner_uids(obj: &Value) -> Vec<&str> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

impl ApiServer {
    fn delete_key(&self, key: &ObjKey, propagation: Propagation) -> bool {
        let Some(res) = self.registry.by_plural(&key.group, &key.resource) else {
            return false;
        };
        let opts = DeleteOptions {
            propagation: Some(propagation),
            ..Default::default()
        };
        self.delete_object(&res, &key.namespace, &key.name, &opts).is_ok()
    }

    /// One collection pass; whether it changed anything.
    pub(crate) fn gc_pass(&self) -> bool {
        let all = self.store.all();
        let mut changed = false;
        let uids: HashSet<&str> = all.iter().filter_map(|(_, o)| meta_str(o, "uid")).collect();
        // Server-side apply memory of deleted objects is dropped.
        self.applied
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(uid, _), _| uids.contains(uid.as_str()));
        let mut dependents: HashMap<&str, Vec<&(ObjKey, Arc<Value>)>> = HashMap::new();
        for entry in &all {
            for u in owner_uids(&entry.1) {
                dependents.entry(u).or_default().push(entry);
            }
        }
        let mut served: HashMap<(&str, &str), bool> = HashMap::new();
        for (key, obj) in &all {
            // Objects of a resource that is no longer served (its CRD was deleted).
            let is_served = *served
                .entry((key.group.as_str(), key.resource.as_str()))
                .or_insert_with(|| self.registry.by_plural(&key.group, &key.resource).is_some());
            if !is_served {
                let _ = self.store.mutate(key, |_| Ok(Mutation::Delete));
                changed = true;
                continue;
            }
            let uid = meta_str(obj, "uid").unwrap_or("");
            let deleting = is_deleting(obj);
            let fins = finalizers(obj);
            // Background: every owner is gone.
            let owners = owner_uids(obj);
            if !owners.is_empty() && !deleting && owners.iter().all(|u| !uids.contains(u)) {
                changed |= self.delete_key(key, Propagation::Background);
                continue;
            }
            if deleting && fins.iter().any(|f| f == "orphan") {
                for (dk, _) in dependents.get(uid).map(Vec::as_slice).unwrap_or_default() {
                    self.drop_owner_ref(dk, uid);
                }
                self.remove_finalizer(key, "orphan");
                changed = true;
                continue;
            }
            if deleting && fins.iter().any(|f| f == "foregroundDeletion") {
                let deps = dependents.get(uid).map(Vec::as_slice).unwrap_or_default();
                if deps.is_empty() {
                    self.remove_finalizer(key, "foregroundDeletion");
                    changed = true;
                } else {
                    for (dk, dobj) in deps {
                        if !is_deleting(dobj) {
                            changed |= self.delete_key(dk, Propagation::Foreground);
                        }
                    }
                }
                continue;
            }
            if deleting && key.group.is_empty() && key.resource == "namespaces" {
                let contents: Vec<&(ObjKey, Arc<Value>)> =
                    all.iter().filter(|(k, _)| k.namespace == key.name).collect();
                if contents.is_empty() {
                    if fins.is_empty() {
                        let _ = self.store.mutate(key, |_| Ok(Mutation::Delete));
                        changed = true;
                    }
                } else {
                    for (k, o) in contents {
                        if !is_deleting(o) {
                            changed |= self.delete_key(k, Propagation::Background);
                        }
                    }
                }
            }
        }
        changed
    }

    fn drop_owner_ref(&self, key: &ObjKey, owner_uid: &str) {
        let result = self.store.mutate(key, |existing| {
            let Some(existing) = existing else {
                return Ok(Mutation::Unchanged);
            };
            let mut next = existing.clone();
            let m = meta_mut(&mut next);
            let refs: Vec<Value> = m
                .get("ownerReferences")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid))
                .collect();
            if refs.is_empty() {
                m.remove("ownerReferences");
            } else {
                m.insert("ownerReferences".into(), json!(refs));
            }
            Ok(Mutation::Put(next))
        });
        if result.is_ok() {
            self.gc.notify_one();
        }
    }
}
