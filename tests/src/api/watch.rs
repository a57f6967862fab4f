//! Watch streams: the initial state or the history after a resourceVersion, then live changes,
//! filtered by namespace and selectors (objects leaving a selector are sent as DELETED), with
//! bookmarks, `timeoutSeconds`, `410 Gone` as an ERROR event, and injected drops.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::ApiServer;
use super::objects::present;
use super::resources::ResourceInfo;
use super::selectors::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{EventType, StoreEvent};

/// What a watch asks for.
#[derive(Debug, Clone)]
pub(crate) struct WatchParams {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub resource_version: Option<String>,
    pub bookmarks: bool,
    pub send_initial_events: bool,
    pub timeout: Option<Duration>,
}

struct Watcher {
    res: ResourceInfo,
    version: String,
    params: WatchParams,
    tx: mpsc::Sender<Bytes>,
}

impl Watcher {
    fn matches(&self, obj: &Value) -> bool {
        self.params.labels.matches_object(obj) && self.params.fields.matches(obj)
    }

    async fn send(&self, kind: &str, obj: &Value) -> bool {
        let mut line = match serde_json::to_vec(&json!({"type": kind, "object": obj})) {
            Ok(l) => l,
            Err(_) => return true,
        };
        line.push(b'\n');
        self.tx.send(Bytes::from(line)).await.is_ok()
    }

    async fn send_object(&self, kind: EventType, obj: &Value) -> bool {
        let obj = present(&self.res, &self.version, obj);
        self.send(kind.as_str(), &obj).await
    }

    async fn bookmark(&self, rv: u64, initial_end: bool) -> bool {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": self.res.kind, "apiVersion": self.res.api_version(&self.version), "metadata": meta});
        self.send("BOOKMARK", &obj).await
    }

    /// Translate a store event for this watcher (None = not for us).
    fn translate(&self, ev: &StoreEvent) -> Option<(EventType, Arc<Value>)> {
        if ev.key.group != self.res.group || ev.key.resource != self.res.plural {
            return None;
        }
        if let Some(ns) = &self.params.namespace
            && ev.key.namespace != *ns
        {
            return None;
        }
        let now = self.matches(&ev.object);
        let before = ev.prev.as_ref().is_some_and(|p| self.matches(p));
        match ev.kind {
            EventType::Added => now.then(|| (EventType::Added, ev.object.clone())),
            EventType::Deleted => before.then(|| (EventType::Deleted, ev.object.clone())),
            EventType::Modified => match (before, now) {
                (true, true) => Some((EventType::Modified, ev.object.clone())),
                (false, true) => Some((EventType::Added, ev.object.clone())),
                (true, false) => Some((EventType::Deleted, ev.object.clone())),
                (false, false) => None,
            },
        }
    }
}

impl ApiServer {
    /// Start a watch; the receiver yields newline-delimited JSON events.
    pub(crate) fn start_watch(
        self: &Arc<Self>,
        res: ResourceInfo,
        version: String,
        params: WatchParams,
    ) -> Result<mpsc::Receiver<Bytes>, ApiError> {
        let (tx, rx) = mpsc::channel(64);
        let rv = params
            .resource_version
            .clone()
            .filter(|v| !v.is_empty() && v != "0");
        let start_rv: Option<u64> = match &rv {
            Some(v) => Some(
                v.parse()
                    .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {v:?}")))?,
            ),
            None => None,
        };
        let drop_after = self.faults.watch_drop();
        let bookmark_every = self.config.bookmark_interval;
        let server = self.clone();
        tokio::spawn(async move {
            let w = Watcher {
                res,
                version,
                params,
                tx,
            };
            let deadline = w.params.timeout.or(drop_after).map(|t| match drop_after {
                Some(d) => t.min(d),
                None => t,
            });
            let end = async {
                match deadline {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = server.run_watch(&w, start_rv, bookmark_every) => {}
                _ = end => {}
                _ = server.shutdown.cancelled() => {}
                _ = w.tx.closed() => {}
            }
        });
        Ok(rx)
    }

    async fn run_watch(&self, w: &Watcher, start_rv: Option<u64>, bookmark_every: Duration) {
        let (mut last, mut rx) = match start_rv {
            Some(rv) if !w.params.send_initial_events => {
                match self.store.watch_from(&w.res.group, &w.res.plural, rv) {
                    Ok((past, rx)) => {
                        let mut last = rv;
                        for ev in past {
                            last = ev.rv;
                            if let Some((kind, obj)) = w.translate(&ev)
                                && !w.send_object(kind, &obj).await
                            {
                                return;
                            }
                        }
                        (last.max(rv), rx)
                    }
                    Err(e) => {
                        w.send("ERROR", &e.to_status()).await;
                        return;
                    }
                }
            }
            _ => {
                let (items, rv, rx) = self.store.snapshot_and_subscribe(
                    &w.res.group,
                    &w.res.plural,
                    w.params.namespace.as_deref(),
                );
                for obj in items.iter().filter(|o| w.matches(o)) {
                    if !w.send_object(EventType::Added, obj).await {
                        return;
                    }
                }
                if w.params.send_initial_events && !w.bookmark(rv, true).await {
                    return;
                }
                (rv, rx)
            }
        };
        let mut tick = tokio::time::interval(bookmark_every);
        tick.tick().await;
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Ok(ev) => {
                        if ev.rv <= last {
                            continue;
                        }
                        last = ev.rv;
                        if let Some((kind, obj)) = w.translate(&ev)
                            && !w.send_object(kind, &obj).await
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // This watcher fell behind the broadcast buffer: like a compacted etcd,
                        // tell the client to relist.
                        w.send("ERROR", &ApiError::gone("watch fell behind; too old resource version").to_status()).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    if w.params.bookmarks && !w.bookmark(last, false).await {
                        return;
                    }
                }
            }
        }
    }
}
