//! Which plugin plans an action: the [`PluginSource`] seam, and its built-in implementation.
//!
//! [`Builtins`] serves only the embedded plugins and refuses what only the ConfigMap registry could serve
//! with an error that says so, instead of silently planning with something else; the operator runs the
//! registry ([`super::registry::Registry`]), which falls back to these built-ins.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::builtin;
use super::engine::{Plugin, PluginEngine};
use super::error::Error;
use crate::crd::JobType;
use crate::operator::driver::validate::ValidatedAction;

/// Chooses (and loads) the plugin that plans an action.
pub trait PluginSource: Send + Sync + 'static {
    /// The plugin for `action`, loaded and described. Errors name what was asked for.
    fn plugin_for<'a>(&'a self, action: &'a ValidatedAction) -> BoxFuture<'a, Result<Arc<Plugin>, Error>>;
}

/// The embedded built-in plugins, compiled once at start.
#[derive(Debug, Clone, Default)]
pub struct Builtins {
    plugins: BTreeMap<JobType, Arc<Plugin>>,
}

impl Builtins {
    /// Compiles and describes every embedded built-in (tens of milliseconds each: call it off the async
    /// runtime, or use [`Builtins::load_blocking`]).
    pub fn load(engine: &PluginEngine) -> Result<Builtins, Error> {
        let mut plugins = BTreeMap::new();
        for embedded in builtin::embedded() {
            let Some(job_type) = JobType::ALL.into_iter().find(|t| t.as_str() == embedded.action) else {
                continue;
            };
            plugins.insert(job_type, engine.load(&embedded.source(), embedded.bytes)?);
        }
        Ok(Builtins { plugins })
    }

    /// [`Builtins::load`] on a blocking thread.
    pub async fn load_blocking(engine: &PluginEngine) -> Result<Builtins, Error> {
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || Builtins::load(&engine))
            .await
            .map_err(|e| Error::JoinTask(e.to_string()))?
    }

    /// The loaded built-in of `job_type`.
    pub fn get(&self, job_type: JobType) -> Option<&Arc<Plugin>> {
        self.plugins.get(&job_type)
    }

    /// Every loaded built-in by action.
    pub fn all(&self) -> impl Iterator<Item = (JobType, &Arc<Plugin>)> {
        self.plugins.iter().map(|(t, p)| (*t, p))
    }

    /// The loaded built-in of `job_type` if `name` names it (by its declared name or its action, e.g.
    /// `k8up-backup` or `backup`).
    pub fn named(&self, job_type: JobType, name: &str) -> Option<Arc<Plugin>> {
        self.plugins
            .get(&job_type)
            .filter(|p| name == p.name() || name == job_type.as_str())
            .cloned()
    }

    /// The declared names of the loaded built-ins, comma-separated (`none` without any).
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.plugins.values().map(|p| p.name()).collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    }

    /// The built-in of the action, or an error saying this build has none.
    pub fn default_for(&self, job_type: JobType) -> Result<Arc<Plugin>, Error> {
        self.plugins
            .get(&job_type)
            .cloned()
            .ok_or_else(|| Error::PluginNotFound {
                plugin: format!("for action {job_type}"),
                hint: Some(format!(
                    "this build embeds no planner for action {job_type}; built-in planners: {}",
                    builtin::actions()
                )),
            })
    }

    /// The built-in for `action`, honouring `spec.plugin` when it names that built-in (by its declared name
    /// or its action, e.g. `k8up-backup` or `backup`) and its `sha256` pin.
    pub fn choose(&self, action: &ValidatedAction) -> Result<Arc<Plugin>, Error> {
        let job_type = action.job_type;
        if let Some(wanted) = &action.runnable.plugin {
            let plugin = self
                .named(job_type, &wanted.name)
                .ok_or_else(|| Error::PluginNotFound {
                    plugin: wanted.name.clone(),
                    hint: Some(format!(
                        "spec.plugin names it, but this operator serves only its built-in plugins ({}); \
                         plugins from ConfigMaps need the plugin registry",
                        self.names()
                    )),
                })?;
            check_pin(&plugin, wanted.sha256.as_deref())?;
            return Ok(plugin);
        }
        if let Some(config_map) = override_for(action) {
            return Err(Error::PluginNotFound {
                plugin: config_map.to_string(),
                hint: Some(format!(
                    "{} names it as the {job_type} planner, but this operator serves only its \
                     built-in plugins; plugins from ConfigMaps need the plugin registry",
                    override_env(job_type)
                )),
            });
        }
        self.default_for(job_type)
    }
}

/// Refuses `plugin` when the resource pins another digest.
pub(crate) fn check_pin(plugin: &Plugin, pinned: Option<&str>) -> Result<(), Error> {
    match pinned {
        Some(pinned) if pinned != plugin.digest() => Err(Error::PluginPinMismatch {
            plugin: plugin.name().to_string(),
            pinned: pinned.to_string(),
            actual: plugin.digest().to_string(),
        }),
        _ => Ok(()),
    }
}

/// The environment variable of the cluster-wide override of `job_type` (its flag is `--plugin-<action>`).
pub(crate) fn override_env(job_type: JobType) -> String {
    format!("K8UP_PLUGIN_{}", job_type.as_str().to_ascii_uppercase())
}

/// The ConfigMap the operator settings name as the planner of the action, if any.
pub(crate) fn override_for(action: &ValidatedAction) -> Option<&str> {
    let o = &action.settings.plugins.overrides;
    match action.job_type {
        JobType::Backup => o.backup.as_deref(),
        JobType::Prune => o.prune.as_deref(),
        JobType::Check => o.check.as_deref(),
        JobType::Archive => o.archive.as_deref(),
        JobType::Restore => o.restore.as_deref(),
    }
}

impl PluginSource for Builtins {
    fn plugin_for<'a>(&'a self, action: &'a ValidatedAction) -> BoxFuture<'a, Result<Arc<Plugin>, Error>> {
        Box::pin(async move { self.choose(action) })
    }
}

/// One component for every action (`k8up plan --plugin-file`, tests with fixture plugins).
#[derive(Debug, Clone)]
pub struct Fixed(pub Arc<Plugin>);

impl Fixed {
    /// Loads the component in `path`.
    pub fn from_file(engine: &PluginEngine, path: &Path) -> Result<Fixed, Error> {
        let source = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| Error::PluginNotFound {
            plugin: source.clone(),
            hint: Some(format!("failed to read the file: {e}")),
        })?;
        Ok(Fixed(engine.load(&source, &bytes)?))
    }
}

impl PluginSource for Fixed {
    fn plugin_for<'a>(&'a self, _action: &'a ValidatedAction) -> BoxFuture<'a, Result<Arc<Plugin>, Error>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}
