//! The ConfigMap plugin registry: custom plugins registered by ConfigMaps and swapped in without a restart.
//!
//! A ConfigMap in the plugin namespace (the operator's, unless `--plugin-namespace` says otherwise) labelled
//! `k8up.io/plugin=<name>` with the component under `binaryData` key `plugin.wasm` registers the plugin
//! `<name>`. A resource picks it with `spec.plugin.name` (optionally pinning its sha256); `--plugin-<action>`
//! / `K8UP_PLUGIN_<ACTION>` name a ConfigMap that replaces the built-in planner of that action cluster-wide;
//! everything else is planned by the built-ins.
//!
//! ```text
//! watch ConfigMaps ─> Registry::apply (blocking thread: digest, compile, describe) ─> swap the entry
//!   (label k8up.io/plugin)        └─ failure: the previous version keeps serving; Warning Event + metric
//! ```
//! Content is compared by digest, so a resync or an unrelated edit of the ConfigMap neither recompiles
//! nor re-reports anything. The engine caches compiled code by digest, so old versions are freed once
//! no call holds them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::events::{EventType, Recorder, Reporter};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::engine::{Plugin, PluginEngine, sha256_hex};
use super::error::Error;
use super::source::{Builtins, PluginSource, check_pin, override_env, override_for};
use crate::operator::driver::validate::ValidatedAction;
use crate::operator::metrics::Metrics;

/// The label that registers a ConfigMap as a plugin; its value is the plugin's name.
pub const PLUGIN_LABEL: &str = "k8up.io/plugin";
/// The `binaryData` key holding the component.
pub const PLUGIN_KEY: &str = "plugin.wasm";
/// The optional annotation with the sha256 the component must have (the Helm chart sets it): a truncated
/// or mixed-up upload is refused instead of loaded.
pub const PLUGIN_SHA256_ANNOTATION: &str = "k8up.io/plugin-sha256";
/// How long a plan waits for the registry's first list of ConfigMaps before answering from what it has.
const FIRST_SYNC_WAIT: Duration = Duration::from_secs(30);

/// One plugin ConfigMap.
#[derive(Debug, Clone)]
struct Entry {
    /// The value of the label: the name `spec.plugin` uses.
    name: String,
    /// The newest version that loaded; it keeps serving while a newer one is broken.
    serving: Option<Arc<Plugin>>,
    /// Digest (and expected digest) of the newest content seen, loaded or not.
    latest: String,
    /// Why the newest content did not load.
    failure: Option<String>,
}

/// What [`Registry::apply`] did with a ConfigMap.
#[derive(Debug, Clone)]
pub enum Applied {
    /// A new version loaded and serves from now on.
    Loaded(Arc<Plugin>),
    /// The content is the one already seen: nothing was done.
    Unchanged,
    /// The new content could not be used; `serving` is the previous version that still serves, if any.
    Failed {
        /// What is wrong, for the Event.
        error: String,
        /// The version still serving.
        serving: Option<Arc<Plugin>>,
    },
}

/// The plugins registered by ConfigMaps, over the built-ins.
pub struct Registry {
    engine: PluginEngine,
    builtins: Builtins,
    namespace: String,
    /// By ConfigMap name.
    entries: RwLock<BTreeMap<String, Entry>>,
    /// Whether the first list of ConfigMaps has been applied.
    synced: watch::Sender<bool>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("namespace", &self.namespace)
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// An empty registry of ConfigMaps in `namespace`, falling back to `builtins`. Nothing is watched
    /// until [`Registry::watch`].
    pub fn new(engine: PluginEngine, builtins: Builtins, namespace: impl Into<String>) -> Registry {
        Registry {
            engine,
            builtins,
            namespace: namespace.into(),
            entries: RwLock::new(BTreeMap::new()),
            synced: watch::Sender::new(false),
        }
    }

    /// The namespace whose ConfigMaps register plugins.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Loads the plugin a ConfigMap carries, if its content changed. Compiles: call it off the async
    /// runtime.
    pub fn apply(&self, config_map: &ConfigMap) -> Applied {
        let cm = config_map.name_any();
        let name = config_map
            .labels()
            .get(PLUGIN_LABEL)
            .map(|v| v.trim().to_string())
            .unwrap_or_default();
        let content = match plugin_bytes(config_map) {
            Ok(bytes) if !name.is_empty() => Ok(bytes),
            Ok(_) => Err(format!(
                "the label {PLUGIN_LABEL} has no value: set it to the plugin's name (the name spec.plugin uses)"
            )),
            Err(e) => Err(e),
        };
        let digest = match &content {
            Ok(bytes) => sha256_hex(bytes),
            Err(e) => format!("invalid: {e}"),
        };
        // What was seen: the content and the digest it is expected to have.
        let seen = format!(
            "{digest} {}",
            config_map
                .annotations()
                .get(PLUGIN_SHA256_ANNOTATION)
                .map_or("", |a| a.trim())
        );
        if self
            .read()
            .get(&cm)
            .is_some_and(|e| e.latest == seen && e.name == name)
        {
            return Applied::Unchanged;
        }
        let content = content.and_then(|bytes| match config_map.annotations().get(PLUGIN_SHA256_ANNOTATION) {
            Some(expected) if expected.trim() != digest => Err(format!(
                "the component's sha256 is {digest}, but the annotation {PLUGIN_SHA256_ANNOTATION} says {}: \
                 the upload is truncated or not the one meant",
                expected.trim()
            )),
            _ => Ok(bytes),
        });
        let source = format!("configmap:{}/{cm}", self.namespace);
        let loaded = content.and_then(|bytes| self.engine.load(&source, bytes).map_err(|e| e.to_string()));
        let mut entries = self.write();
        match loaded {
            Ok(plugin) => {
                entries.insert(
                    cm,
                    Entry {
                        name,
                        serving: Some(plugin.clone()),
                        latest: seen,
                        failure: None,
                    },
                );
                Applied::Loaded(plugin)
            }
            Err(error) => {
                let entry = entries.entry(cm).or_insert_with(|| Entry {
                    name: name.clone(),
                    serving: None,
                    latest: String::new(),
                    failure: None,
                });
                if entry.name != name {
                    // Relabelled to another name: the old version is not that plugin.
                    entry.name = name;
                    entry.serving = None;
                }
                entry.latest = seen;
                entry.failure = Some(error.clone());
                Applied::Failed {
                    error,
                    serving: entry.serving.clone(),
                }
            }
        }
    }

    /// Forgets a deleted (or unlabelled) ConfigMap; the plugin is no longer offered.
    pub fn remove(&self, config_map: &str) -> bool {
        self.write().remove(config_map).is_some()
    }

    /// Forgets every ConfigMap not in `names` (after a relist).
    fn retain(&self, names: &BTreeSet<String>) {
        self.write().retain(|cm, _| names.contains(cm));
    }

    /// The plugin for `action`: the ConfigMap plugin `spec.plugin` names (or the built-in it names), the
    /// ConfigMap the operator settings name for the action, or the built-in.
    pub fn choose(&self, action: &ValidatedAction) -> Result<Arc<Plugin>, Error> {
        let job_type = action.job_type;
        if let Some(wanted) = &action.runnable.plugin {
            let entries = self.read();
            let matching: Vec<(&String, &Entry)> =
                entries.iter().filter(|(_, e)| e.name == wanted.name).collect();
            let plugin = match matching.as_slice() {
                [] => self
                    .builtins
                    .named(job_type, &wanted.name)
                    .ok_or_else(|| Error::PluginNotFound {
                        plugin: wanted.name.clone(),
                        hint: Some(format!(
                            "spec.plugin names it, but no ConfigMap in namespace {} is labelled {PLUGIN_LABEL}={} \
                             and no built-in has that name; registered: {}; built-in: {}",
                            self.namespace,
                            wanted.name,
                            registered(&entries),
                            self.builtins.names()
                        )),
                    })?,
                [(cm, entry)] => self.usable(cm, entry)?,
                many => {
                    let names: Vec<&str> = many.iter().map(|(cm, _)| cm.as_str()).collect();
                    return Err(Error::PluginUnavailable {
                        plugin: wanted.name.clone(),
                        reason: format!(
                            "the ConfigMaps {} in namespace {} all register it; remove or relabel all but one",
                            names.join(", "),
                            self.namespace
                        ),
                    });
                }
            };
            check_pin(&plugin, wanted.sha256.as_deref())?;
            return Ok(plugin);
        }
        if let Some(cm) = override_for(action) {
            let entries = self.read();
            return match entries.get(cm) {
                Some(entry) => self.usable(cm, entry),
                None => Err(Error::PluginNotFound {
                    plugin: cm.to_string(),
                    hint: Some(format!(
                        "{} names ConfigMap {cm} as the {job_type} planner, but namespace {} has no ConfigMap \
                         of that name labelled {PLUGIN_LABEL}; registered: {}",
                        override_env(job_type),
                        self.namespace,
                        registered(&entries)
                    )),
                }),
            };
        }
        self.builtins.default_for(job_type)
    }

    fn usable(&self, cm: &str, entry: &Entry) -> Result<Arc<Plugin>, Error> {
        entry.serving.clone().ok_or_else(|| Error::PluginUnavailable {
            plugin: entry.name.clone(),
            reason: format!(
                "ConfigMap {}/{cm} holds no loadable version: {}",
                self.namespace,
                entry.failure.as_deref().unwrap_or("not loaded yet")
            ),
        })
    }

    /// Watches the plugin ConfigMaps until the task is aborted. Relists and reconnects with backoff on API
    /// errors; every load runs on a blocking thread.
    pub fn watch(self: &Arc<Self>, client: Client, metrics: Arc<Metrics>) -> JoinHandle<()> {
        let registry = self.clone();
        tokio::spawn(async move { registry.run(client, metrics).await })
    }

    async fn run(self: Arc<Self>, client: Client, metrics: Arc<Metrics>) {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &self.namespace);
        let events = Events {
            client,
            reporter: crate::operator::controller::reporter(),
        };
        let stream = watcher(api, watcher::Config::default().labels(PLUGIN_LABEL)).default_backoff();
        let mut stream = std::pin::pin!(stream);
        let mut listed = BTreeSet::new();
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Init) => listed.clear(),
                Ok(watcher::Event::InitApply(cm)) => {
                    listed.insert(cm.name_any());
                    self.update(cm, &events, &metrics).await;
                }
                Ok(watcher::Event::InitDone) => {
                    self.retain(&listed);
                    self.synced.send_replace(true);
                    tracing::debug!(namespace = %self.namespace, plugins = listed.len(), "plugin ConfigMaps listed");
                }
                Ok(watcher::Event::Apply(cm)) => self.update(cm, &events, &metrics).await,
                Ok(watcher::Event::Delete(cm)) => {
                    if self.remove(&cm.name_any()) {
                        tracing::info!(configmap = %cm.name_any(), namespace = %self.namespace, "plugin ConfigMap removed");
                    }
                }
                Err(e) => {
                    tracing::warn!(namespace = %self.namespace, error = %e, "watching plugin ConfigMaps failed")
                }
            }
        }
    }

    async fn update(self: &Arc<Self>, cm: ConfigMap, events: &Events, metrics: &Metrics) {
        let registry = self.clone();
        let name = cm.name_any();
        let applied = match tokio::task::spawn_blocking({
            let cm = cm.clone();
            move || registry.apply(&cm)
        })
        .await
        {
            Ok(applied) => applied,
            Err(e) => Applied::Failed {
                error: Error::JoinTask(e.to_string()).to_string(),
                serving: None,
            },
        };
        let (type_, reason, note) = match &applied {
            Applied::Unchanged => return,
            Applied::Loaded(plugin) => {
                tracing::info!(
                    configmap = %name,
                    namespace = %self.namespace,
                    plugin = plugin.name(),
                    version = plugin.version(),
                    sha256 = plugin.digest(),
                    "loaded plugin from ConfigMap"
                );
                metrics.plugin_load(&self.namespace, &name, true);
                (
                    EventType::Normal,
                    "PluginLoaded",
                    format!(
                        "loaded plugin {} {} (sha256 {}, {} bytes, k8up:plugin@{})",
                        plugin.name(),
                        plugin.version(),
                        plugin.digest(),
                        plugin.size(),
                        plugin.wit_version()
                    ),
                )
            }
            Applied::Failed { error, serving } => {
                tracing::warn!(configmap = %name, namespace = %self.namespace, %error, "failed to load plugin from ConfigMap");
                metrics.plugin_load(&self.namespace, &name, false);
                let keeps = match serving {
                    Some(p) => format!("; version {} (sha256 {}) keeps serving", p.version(), p.digest()),
                    None => "; no version of it serves".to_string(),
                };
                (EventType::Warning, "PluginLoadFailed", format!("{error}{keeps}"))
            }
        };
        // A Recorder folds repeats of a reason into one Event and keeps its first note; every load is news
        // (another version, another error), and loads are rare, so each gets an Event of its own.
        let recorder = Recorder::new(events.client.clone(), events.reporter.clone());
        let reference = cm.object_ref(&());
        crate::operator::driver::publish_event(&recorder, &reference, "LoadPlugin", type_, reason, note)
            .await;
    }

    /// Waits (bounded) for the first list of ConfigMaps, so a plan right after start does not miss them.
    async fn first_sync(&self) {
        let mut synced = self.synced.subscribe();
        if tokio::time::timeout(FIRST_SYNC_WAIT, synced.wait_for(|s| *s))
            .await
            .is_err()
        {
            tracing::warn!(namespace = %self.namespace, "plugin ConfigMaps not listed yet; planning with what is known");
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Entry>> {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Entry>> {
        self.entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl PluginSource for Registry {
    fn plugin_for<'a>(&'a self, action: &'a ValidatedAction) -> BoxFuture<'a, Result<Arc<Plugin>, Error>> {
        Box::pin(async move {
            if action.runnable.plugin.is_some() || override_for(action).is_some() {
                self.first_sync().await;
            }
            self.choose(action)
        })
    }
}

/// Where the registry's Events go.
struct Events {
    client: Client,
    reporter: Reporter,
}

/// The component of a plugin ConfigMap, or what is wrong with it.
fn plugin_bytes(cm: &ConfigMap) -> Result<&[u8], String> {
    if let Some(bytes) = cm.binary_data.as_ref().and_then(|d| d.get(PLUGIN_KEY)) {
        return Ok(&bytes.0);
    }
    if cm.data.as_ref().is_some_and(|d| d.contains_key(PLUGIN_KEY)) {
        return Err(format!(
            "{PLUGIN_KEY} is under data, but a component is binary: put it under binaryData \
             (kubectl create configmap NAME --from-file={PLUGIN_KEY}=FILE does)"
        ));
    }
    Err(format!("the ConfigMap has no binaryData key {PLUGIN_KEY}"))
}

fn registered(entries: &BTreeMap<String, Entry>) -> String {
    let names: Vec<String> = entries
        .iter()
        .map(|(cm, e)| format!("{} (ConfigMap {cm})", e.name))
        .collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests;
