//! The production [`Planner`]: choose the plugin, build the request, call the sandboxed engine off the
//! async runtime, check the plan, build the Jobs.
//!
//! ```text
//! PluginSource::plugin_for ─> request::build_request ─> PluginEngine::plan ─> check::check_plan ─> jobs::build_job
//!   (built-in / registry)       (pure)                   (spawn_blocking)      (pure, host policy)   (pure)
//! ```
//! [`plan_jobs`] is the synchronous core shared with `k8up plan`, so the dry run and the operator take the
//! same path. Errors keep their [`Error`] variant name (the Event reason) in the message; a plugin's own
//! `invalid-spec` answer becomes [`PlanError::InvalidSpec`] (the object waits for a change), everything else
//! [`PlanError::Failed`] (retried with backoff).

use std::sync::Arc;

use futures::future::BoxFuture;

use super::check::{Origin, Policy, check_plan};
use super::engine::{Limits, Plugin, PluginEngine};
use super::error::Error;
use super::request::build_request;
use super::source::{Builtins, PluginSource};
use super::types::{PlanRequest, PluginError};
use crate::jobs::build_job;
use crate::operator::driver::observe::Observed;
use crate::operator::driver::validate::ValidatedAction;
use crate::operator::driver::{JobPlan, PlanError, PlanRequest as DriverRequest, Planner};
use crate::operator::settings::PluginSettings;

/// Plans actions with WASM plugins.
#[derive(Clone)]
pub struct PluginPlanner {
    engine: PluginEngine,
    source: Arc<dyn PluginSource>,
}

impl std::fmt::Debug for PluginPlanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginPlanner")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

/// Logs each loaded built-in with its version and digest.
pub fn log_builtins(builtins: &Builtins) {
    for (action, plugin) in builtins.all() {
        tracing::info!(
            %action,
            plugin = plugin.name(),
            version = plugin.version(),
            sha256 = plugin.digest(),
            "loaded built-in plugin"
        );
    }
}

/// The engine limits the operator settings ask for.
pub fn limits(settings: &PluginSettings) -> Limits {
    Limits {
        memory_bytes: usize::try_from(settings.memory_limit_bytes).unwrap_or(usize::MAX),
        timeout: settings.timeout,
        ..Limits::default()
    }
}

impl PluginPlanner {
    /// A planner taking its plugins from `source`.
    pub fn new(engine: PluginEngine, source: Arc<dyn PluginSource>) -> PluginPlanner {
        PluginPlanner { engine, source }
    }

    /// The operator's planner: an engine with the configured limits and the embedded built-ins, compiled on
    /// a blocking thread.
    pub async fn with_builtins(settings: &PluginSettings) -> Result<PluginPlanner, Error> {
        let engine = PluginEngine::new(limits(settings))?;
        let builtins = Builtins::load_blocking(&engine).await?;
        log_builtins(&builtins);
        Ok(PluginPlanner::new(engine, Arc::new(builtins)))
    }

    /// The engine.
    pub fn engine(&self) -> &PluginEngine {
        &self.engine
    }

    /// Plans `action` through the whole pipeline; the error is the plugin host's.
    pub async fn plan_action(&self, action: &ValidatedAction, observed: &Observed) -> Result<JobPlan, Error> {
        let plugin = self.source.plugin_for(action).await?;
        let request = build_request(action, observed);
        let engine = self.engine.clone();
        let called = plugin.clone();
        let (request, raw) = tokio::task::spawn_blocking(move || {
            let raw = engine.plan(&called, &request);
            (request, raw)
        })
        .await
        .map_err(|e| Error::JoinTask(e.to_string()))?;
        finish(action, observed, &plugin, &request, raw?)
    }
}

/// The synchronous pipeline for one plugin: request, call, check, build.
pub fn plan_jobs(
    engine: &PluginEngine,
    plugin: &Plugin,
    action: &ValidatedAction,
    observed: &Observed,
) -> Result<JobPlan, Error> {
    let request = build_request(action, observed);
    let raw = engine.plan(plugin, &request)?;
    finish(action, observed, plugin, &request, raw)
}

fn finish(
    action: &ValidatedAction,
    observed: &Observed,
    plugin: &Plugin,
    request: &PlanRequest,
    raw: super::types::JobPlan,
) -> Result<JobPlan, Error> {
    let origin = Origin {
        plugin: plugin.name(),
        version: plugin.version(),
    };
    check_plan(origin, &Policy::for_action(action), request, &raw)?;
    let jobs = raw
        .jobs
        .iter()
        .map(|job| build_job(action, job, observed.pod_config.as_ref()))
        .collect();
    Ok(JobPlan {
        jobs,
        message: raw.message,
    })
}

/// The driver's view of a plugin host error.
pub fn plan_error(error: Error) -> PlanError {
    match error {
        Error::PlanFailed {
            plugin,
            version,
            error: PluginError::InvalidSpec(message),
        } => PlanError::InvalidSpec(format!("{message} (plugin {plugin} {version})")),
        other => {
            let planner = match &other {
                Error::PluginTimeout { plugin, version, .. }
                | Error::PluginMemory { plugin, version, .. }
                | Error::PluginTrap { plugin, version, .. }
                | Error::CallPlugin { plugin, version, .. }
                | Error::PlanFailed { plugin, version, .. }
                | Error::PlanRejected { plugin, version, .. }
                | Error::ActionNotServed { plugin, version, .. } => format!("plugin {plugin} {version}"),
                Error::CompilePlugin { plugin, .. }
                | Error::UnsupportedWitVersion { plugin, .. }
                | Error::NotAPlugin { plugin, .. }
                | Error::InstantiatePlugin { plugin, .. }
                | Error::PluginNotFound { plugin, .. }
                | Error::PluginUnavailable { plugin, .. }
                | Error::PluginPinMismatch { plugin, .. } => format!("plugin {plugin}"),
                Error::CreateEngine(_) | Error::JoinTask(_) => "the plugin host".to_string(),
            };
            PlanError::Failed {
                planner,
                message: format!("{}: {other}", other.reason()),
            }
        }
    }
}

impl Planner for PluginPlanner {
    fn plan<'a>(&'a self, request: DriverRequest<'a>) -> BoxFuture<'a, Result<JobPlan, PlanError>> {
        Box::pin(async move {
            let result = self.plan_action(request.action, request.observed).await;
            if let Err(error) = &result {
                tracing::warn!(reason = error.reason(), error = %error, "planning failed");
            }
            result.map_err(plan_error)
        })
    }
}
