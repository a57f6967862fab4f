//! Plan step: the seam between the driver and whatever turns a validated action into Jobs.
//!
//! The driver only needs "give me the Jobs for this action". In production that is the WASM plugin engine
//! (`plugin::PluginEngine::plan` -> `plugin::check_plan` -> `jobs::build_job` per planned job); in tests it
//! can be any [`Planner`]. The driver itself adds what it is responsible for (the controller owner reference
//! and the identity labels it finds its Jobs by), so a planner cannot make a Job the driver loses track of.

use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;

use super::observe::Observed;
use super::validate::ValidatedAction;

/// Everything a planner gets for one action: the validated action and what the observe step read.
#[derive(Debug, Clone, Copy)]
pub struct PlanRequest<'a> {
    /// The action, defaults and settings merged.
    pub action: &'a ValidatedAction,
    /// The cluster state read for this action.
    pub observed: &'a Observed,
}

/// A planner's answer: the Jobs to create (built, named deterministically, without owner reference).
#[derive(Debug, Clone, Default)]
pub struct JobPlan {
    /// Jobs to create. Empty means "nothing to do": the action completes as Succeeded.
    pub jobs: Vec<Job>,
    /// A note for people (e.g. why PVCs were skipped); becomes the status message of an empty plan.
    pub message: Option<String>,
}

/// Why planning failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PlanError {
    /// The spec cannot be planned; the message tells a person what to change. Waits for a change.
    #[error("{0}")]
    InvalidSpec(String),
    /// The planner could not run (plugin missing, crashed, timed out, plan refused by host policy).
    /// Retried with backoff.
    #[error("failed to plan with {planner}: {message}")]
    Failed {
        /// The planner (plugin name and version).
        planner: String,
        /// What went wrong.
        message: String,
    },
}

/// Turns a validated action plus observed state into Jobs. Implementations must be deterministic in the Job
/// names they produce (`<type>-<name>[-<suffix>]`), so that a retry or a restarted operator finds the Jobs it
/// already created instead of creating more.
pub trait Planner: Send + Sync + 'static {
    /// Plan the Jobs of one action.
    fn plan<'a>(&'a self, request: PlanRequest<'a>) -> BoxFuture<'a, Result<JobPlan, PlanError>>;
}

/// The planner used until the plugin engine is wired in: refuses every action with a clear message, so
/// objects show why nothing happens instead of silently waiting.
#[derive(Debug, Default, Clone, Copy)]
pub struct Unwired;

impl Planner for Unwired {
    fn plan<'a>(&'a self, _request: PlanRequest<'a>) -> BoxFuture<'a, Result<JobPlan, PlanError>> {
        Box::pin(async {
            Err(PlanError::Failed {
                planner: "none".into(),
                message: "no planning plugin engine is configured in this build".into(),
            })
        })
    }
}
