//! The generic action driver: one reconcile pipeline for Backup, Restore, Archive, Check and Prune.
//!
//! ```text
//! observe ──> validate ──> plan ──> apply ──> status ──> (finished) snapshots, history cleanup
//! [API read]  [pure]       [planner] [API write] [pure + status write]  [API write]
//! ```
//! Which steps touch the API server: `observe` (every read, including siblings), `apply` (Jobs, the executor
//! ServiceAccount/RoleBinding, the global-credentials Secret, Snapshot resources, deletion of old siblings)
//! and the status write at the end of a step. `validate`, `status`, `history::select_for_deletion` and
//! `snapshots::diff` are pure; `plan` calls the [`Planner`] (the sandboxed WASM plugin in production), which
//! never sees a client.
//!
//! Idempotence: Jobs have deterministic names and are created, never updated; `409` means "already there".
//! Planning runs only until the object is `started`; from then on the status mirrors the owned Jobs, whose
//! changes reach the controller through `.owns(Job)`.

pub mod apply;
pub mod concurrency;
pub mod credentials;
pub mod history;
pub mod observe;
pub mod plan;
pub mod prebackup;
pub mod repository;
pub mod status;
pub mod validate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Client, ResourceExt};

use crate::crd::{JobType, Status, condition_reason as reason, condition_type as ctype};
use crate::operator::kinds::ActionKind;
use crate::operator::metrics::Metrics;
use crate::operator::settings::OperatorSettings;
use crate::operator::snapshots;

pub use plan::{JobPlan, PlanError, PlanRequest, Planner};
use status::Outcome;
pub use validate::ValidatedAction;

/// How long a running action waits without any Job event before it is looked at again (a safety net; Job
/// changes arrive through the watch).
const RUNNING_RESYNC: Duration = Duration::from_secs(300);
/// How often an action waiting for its turn on the repository looks again without being woken (a safety net:
/// a finishing k8up Job wakes it).
const CONCURRENCY_RECHECK: Duration = Duration::from_secs(30);
/// How often a Backup waiting for its pre-backup pods looks again.
const PRE_BACKUP_POLL: Duration = Duration::from_secs(2);

/// How long the executor account and the global-credentials Secret applied in a namespace are trusted to
/// be there before the next action of that namespace applies them again. Without it each action made three
/// server-side applies; a burst of Backups in one namespace now makes three per minute.
const REAPPLY_AFTER: Duration = Duration::from_secs(60);

/// How long a start decision waits for the watch cache of k8up Jobs to be synced before it retries later.
const CACHE_SYNC_WAIT: Duration = Duration::from_secs(5);
/// Longest retry delay after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Longest retry delay after repeated transient API failures (throttling, server errors, conflicts, lost
/// connections): those clear by themselves, so the object is retried soon rather than minutes later.
const MAX_TRANSIENT_BACKOFF: Duration = Duration::from_secs(8);

/// Why a reconcile failed. The variant name is the Event reason.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A read failed.
    #[error("failed to read {what}")]
    Observe {
        /// What was read.
        what: &'static str,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The planner failed.
    #[error("failed to plan the jobs")]
    Plan(#[source] PlanError),
    /// A Job could not be created.
    #[error("failed to create job {name}")]
    ApplyJob {
        /// The Job name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A Job with the planned name exists and belongs to another object.
    #[error("failed to create job {name}: a job of that name exists and is not owned by this object")]
    JobConflict {
        /// The Job name.
        name: String,
    },
    /// The executor ServiceAccount or RoleBinding could not be applied.
    #[error("failed to apply the executor service account and role binding")]
    EnsureExecutor {
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The Secret mirroring the operator's global credentials could not be applied.
    #[error("failed to apply the global credentials secret")]
    EnsureCredentials {
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A pre-backup Deployment could not be created or deleted.
    #[error("failed to {verb} pre-backup deployment {name}")]
    PreBackup {
        /// `create` or `delete`.
        verb: &'static str,
        /// The Deployment name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Snapshot resources could not be written.
    #[error("failed to sync snapshot resources")]
    SyncSnapshots {
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// An old sibling could not be deleted.
    #[error("failed to delete {name} during history cleanup")]
    Cleanup {
        /// The object name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The watch cache of k8up Jobs has not completed its first list (the API is slow or failing).
    #[error("the watch cache of k8up jobs is not synced yet; retrying")]
    CacheNotSynced,
    /// The status could not be written.
    #[error("failed to write the status")]
    WriteStatus {
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

impl Error {
    /// Whether the cause is an API failure that clears by itself: 409 Conflict (a stale write, retried on
    /// fresh reads), 429, 500, 502, 503, 504, or no answer at all (connection, timeout). Refusals such as
    /// 403 or 422, plan errors and name conflicts with foreign Jobs are not.
    pub fn is_transient(&self) -> bool {
        if matches!(self, Self::CacheNotSynced) {
            return true;
        }
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            if let Some(e) = s.downcast_ref::<kube::Error>() {
                return match e {
                    kube::Error::Api(status) => matches!(status.code, 409 | 429 | 500 | 502 | 503 | 504),
                    // An answer that does not decode (an object the API server stores but the typed model
                    // cannot read) or a request that cannot be built (a name too long for a URI) fails the
                    // same way every time.
                    kube::Error::SerdeError(_) | kube::Error::BuildRequest(_) => false,
                    _ => true,
                };
            }
            source = s.source();
        }
        false
    }

    /// The variant name, used as Event reason and log field.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Observe { .. } => "Observe",
            Self::Plan(_) => "Plan",
            Self::ApplyJob { .. } => "ApplyJob",
            Self::JobConflict { .. } => "JobConflict",
            Self::PreBackup { .. } => "PreBackup",
            Self::EnsureExecutor { .. } => "EnsureExecutor",
            Self::EnsureCredentials { .. } => "EnsureCredentials",
            Self::SyncSnapshots { .. } => "SyncSnapshots",
            Self::Cleanup { .. } => "Cleanup",
            Self::WriteStatus { .. } => "WriteStatus",
            Self::CacheNotSynced => "CacheNotSynced",
        }
    }
}

pub use crate::errors::error_chain;

/// Shared state of every controller.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Operator settings.
    pub settings: Arc<OperatorSettings>,
    /// Turns actions into Jobs.
    pub planner: Arc<dyn Planner>,
    /// Publishes Events.
    pub recorder: Recorder,
    /// Operator metrics.
    pub metrics: Arc<Metrics>,
    /// Who may start on a repository ([`concurrency`]).
    pub gate: concurrency::Gate,
    /// Consecutive failures per object (`kind/namespace/name`), for the retry backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// When the per-namespace objects were last applied: (what, namespace).
    applied: Mutex<HashMap<(&'static str, String), std::time::Instant>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl Context {
    /// A context for the controllers; `jobs` is a watch cache of the k8up Jobs (`k8upjob=true`) for the
    /// concurrency decisions (`None`: they list the Jobs from the API).
    pub fn new(
        client: Client,
        settings: Arc<OperatorSettings>,
        planner: Arc<dyn Planner>,
        recorder: Recorder,
        metrics: Arc<Metrics>,
        jobs: Option<kube::runtime::reflector::Store<k8s_openapi::api::batch::v1::Job>>,
    ) -> Self {
        Context {
            client,
            settings,
            planner,
            recorder,
            metrics,
            gate: concurrency::Gate::new(jobs),
            failures: Mutex::new(HashMap::new()),
            applied: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `apply` (a per-namespace server-side apply) unless it succeeded in `namespace` within
    /// [`REAPPLY_AFTER`].
    async fn apply_once<F>(&self, what: &'static str, namespace: &str, apply: F) -> Result<(), Error>
    where
        F: std::future::Future<Output = Result<(), Error>>,
    {
        let key = (what, namespace.to_string());
        let fresh = |applied: &HashMap<_, std::time::Instant>| {
            applied.get(&key).is_some_and(|at| at.elapsed() < REAPPLY_AFTER)
        };
        if fresh(&self.applied.lock().unwrap_or_else(|p| p.into_inner())) {
            return Ok(());
        }
        apply.await?;
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        applied.retain(|_, at| at.elapsed() < REAPPLY_AFTER);
        applied.insert(key, std::time::Instant::now());
        Ok(())
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        // A poisoned lock only means another reconcile panicked mid-update; the counts are still usable.
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn object_key<K: ActionKind>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        K::JOB_TYPE,
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// Reconciles one action object (the entry point handed to `Controller::run`).
pub async fn reconcile<K: ActionKind>(object: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let span = tracing::info_span!(
        "reconcile",
        kind = K::JOB_TYPE.kind(),
        namespace = object.namespace().unwrap_or_default(),
        name = object.name_any()
    );
    let started = std::time::Instant::now();
    tracing::trace!(parent: &span, "reconcile started");
    let result = tracing::Instrument::instrument(reconcile_inner(&object, &ctx), span.clone()).await;
    tracing::trace!(parent: &span, elapsed_ms = started.elapsed().as_millis() as u64, ok = result.is_ok(), "reconcile ended");
    if result.is_ok() {
        ctx.failures().remove(&object_key(&*object));
    }
    result
}

/// Retry policy: exponential backoff per object (2 s, 4 s, ... up to 5 min) and a Warning Event carrying
/// the error chain.
pub fn error_policy<K: ActionKind>(object: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    let chain = error_chain(error);
    tracing::warn!(
        kind = K::JOB_TYPE.kind(),
        namespace = object.namespace().unwrap_or_default(),
        name = object.name_any(),
        reason = error.reason(),
        error = %chain,
        "reconcile failed"
    );
    let attempts = {
        let mut failures = ctx.failures();
        let n = failures.entry(object_key(&*object)).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let reason = error.reason();
    let reference = object.object_ref(&());
    let recorder = ctx.recorder.clone();
    tokio::spawn(async move {
        publish(&recorder, &reference, EventType::Warning, reason, chain).await;
    });
    let delay = retry_delay(error.is_transient(), attempts);
    tracing::debug!(attempts, delay_ms = delay.as_millis() as u64, "retrying later");
    Action::requeue(delay)
}

/// The delay before retry number `attempts` (1-based): 0.5 s doubling up to 8 s for transient API
/// failures, 2 s doubling up to 5 min for the rest.
fn retry_delay(transient: bool, attempts: u32) -> Duration {
    if transient {
        Duration::from_millis(250u64 << attempts.min(6)).min(MAX_TRANSIENT_BACKOFF)
    } else {
        Duration::from_secs(1u64 << attempts.min(9)).min(MAX_BACKOFF)
    }
}

async fn publish(
    recorder: &Recorder,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: &str,
    note: String,
) {
    publish_event(recorder, reference, "Reconcile", type_, reason, note).await;
}

/// The failure message for the PreBackupPods of a Backup that do not decode, after a Warning Event on each.
async fn unreadable_pre_backup_pods(ctx: &Context, unreadable: &[&observe::Unreadable]) -> String {
    let mut messages = Vec::with_capacity(unreadable.len());
    for u in unreadable {
        let name = u.metadata.name.clone().unwrap_or_default();
        let message = format!(
            "PreBackupPod {name} cannot be read ({}); correct that field and apply it again",
            u.reason
        );
        let reference = k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some(<crate::crd::PreBackupPod as kube::Resource>::api_version(&()).into_owned()),
            kind: Some(<crate::crd::PreBackupPod as kube::Resource>::kind(&()).into_owned()),
            name: Some(name),
            namespace: u.metadata.namespace.clone(),
            uid: u.metadata.uid.clone(),
            resource_version: u.metadata.resource_version.clone(),
            ..Default::default()
        };
        publish(
            &ctx.recorder,
            &reference,
            EventType::Warning,
            status::REASON_INVALID_SPEC,
            message.clone(),
        )
        .await;
        messages.push(message);
    }
    messages.join("; ")
}

/// Publishes one Event about `reference` (the note cut to the Events API's 1 kB); a failure is logged, never
/// fatal. Shared by the action controllers, the Schedule controller and the plugin registry.
pub async fn publish_event(
    recorder: &Recorder,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    action: &str,
    type_: EventType,
    reason: &str,
    note: String,
) {
    // Events are a person's record of what happened to an object; the log keeps the same lines (per
    // object, in order) for whoever reads the operator's log instead. Notes never hold secrets.
    let level_warn = matches!(type_, EventType::Warning);
    let (kind, namespace, name) = (
        reference.kind.as_deref().unwrap_or_default(),
        reference.namespace.as_deref().unwrap_or_default(),
        reference.name.as_deref().unwrap_or_default(),
    );
    if level_warn {
        tracing::warn!(kind, namespace, name, reason, note = %note, "event");
    } else {
        tracing::info!(kind, namespace, name, reason, note = %note, "event");
    }
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note.chars().take(1000).collect()),
        action: action.to_string(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, reference).await {
        tracing::warn!(error = %e, reason, "failed to publish an event");
    }
}

fn now() -> Time {
    Time(Timestamp::now())
}

async fn write_status<K: ActionKind>(client: &Client, object: &K, status: &Status) -> Result<(), Error> {
    let api: Api<K> = Api::namespaced(client.clone(), &object.namespace().unwrap_or_default());
    let patch = serde_json::json!({ "status": status });
    api.patch_status(&object.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| Error::WriteStatus { source })?;
    Ok(())
}

/// A failure before any Job was created that retrying will not clear (a PodConfig that does not decode, a
/// pre-backup Deployment the API server refuses): shown as `Ready=False/CreationFailed` with its cause, so
/// the user sees it on the object and not only in Events. The error is returned for the retry policy.
async fn unstarted_failure<K: ActionKind>(
    object: &K,
    ctx: &Context,
    previous: &Status,
    action: &ValidatedAction,
    error: Error,
) -> Error {
    if previous.started || error.is_transient() {
        return error;
    }
    let outcome = Outcome::CreationFailed(error_chain(&error));
    let next = status::next_status(previous, &outcome, action.generation, &now());
    if next != *previous
        && let Err(e) = write_status(&ctx.client, object, &next).await
    {
        return e;
    }
    error
}

async fn reconcile_inner<K: ActionKind>(object: &Arc<K>, ctx: &Context) -> Result<Action, Error> {
    if object.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let previous = object.status().cloned().unwrap_or_default();
    if status::is_finished(&previous) {
        return scrub(object.as_ref(), ctx, previous).await;
    }

    // validate (pure)
    let action = match validate::validate(object.as_ref(), &ctx.settings) {
        Ok(action) => action,
        Err(invalid) => {
            return await_change_with(
                object.as_ref(),
                ctx,
                &previous,
                Outcome::InvalidSpec(invalid.to_string()),
            )
            .await;
        }
    };

    // observe (API reads)
    let observed = match observe::observe(
        &ctx.client,
        object.as_ref(),
        observe::Wants {
            plan_inputs: !previous.started,
            reports: true,
        },
    )
    .await
    {
        Ok(observed) => observed,
        Err(e) => return Err(unstarted_failure(object.as_ref(), ctx, &previous, &action, e).await),
    };

    // concurrency: an action that may not start yet waits before anything is started for it.
    if !previous.started
        && let Some(wait) = concurrency_wait(&action, ctx).await?
    {
        return waiting(object.as_ref(), ctx, &action, &previous, wait).await;
    }

    let mut extra_conditions = Vec::new();
    let mut pre_backup_failed = None;
    if K::JOB_TYPE == JobType::Backup && !previous.started {
        let chosen = prebackup::selected(&action, &observed.pre_backup_pods, |p| &p.metadata);
        let unreadable = prebackup::selected(&action, &observed.unreadable_pre_backup_pods, |u| &u.metadata);
        if !unreadable.is_empty() {
            // A PreBackupPod the Backup selects but that cannot be read: running without it would back up
            // everything but the dump it stands for and still report success, so the Backup fails saying
            // which one and where, before anything is made; the PreBackupPod (it has no status) gets a
            // Warning Event.
            let message = unreadable_pre_backup_pods(ctx, &unreadable).await;
            extra_conditions.push(status::condition(
                ctype::PRE_BACKUP_POD_READY,
                false,
                status::REASON_INVALID_SPEC,
                message.clone(),
                action.generation,
                &now(),
            ));
            pre_backup_failed = Some(message);
        } else if chosen.is_empty() {
            extra_conditions.push(status::condition(
                ctype::PRE_BACKUP_POD_READY,
                true,
                reason::NO_PRE_BACKUP_PODS_FOUND,
                "no PreBackupPods found",
                action.generation,
                &now(),
            ));
        } else {
            let expected: Vec<String> = chosen
                .iter()
                .map(|p| prebackup::deployment_name(&action.name, &p.name_any()))
                .collect();
            if let Err(e) = apply::ensure_pre_backup_deployments(
                &ctx.client,
                &action,
                &chosen,
                &observed.pre_backup_deployments,
            )
            .await
            {
                return Err(unstarted_failure(object.as_ref(), ctx, &previous, &action, e).await);
            }
            match prebackup::readiness(&expected, &observed.pre_backup_deployments) {
                prebackup::Readiness::Waiting { pending, total } => {
                    let mut next = previous.clone();
                    let mut waiting = status::condition(
                        ctype::PRE_BACKUP_POD_READY,
                        false,
                        reason::WAITING,
                        format!("waiting for {pending} of {total} PreBackupPods to become ready"),
                        action.generation,
                        &now(),
                    );
                    waiting.status = "Unknown".to_string();
                    status::set_condition(&mut next.conditions, waiting);
                    if next != previous {
                        write_status(&ctx.client, object.as_ref(), &next).await?;
                    }
                    return Ok(Action::requeue(PRE_BACKUP_POLL));
                }
                prebackup::Readiness::Failed(message) => {
                    extra_conditions.push(status::condition(
                        ctype::PRE_BACKUP_POD_READY,
                        false,
                        reason::FAILED,
                        message.clone(),
                        action.generation,
                        &now(),
                    ));
                    pre_backup_failed = Some(message);
                }
                prebackup::Readiness::Ready(n) => extra_conditions.push(status::condition(
                    ctype::PRE_BACKUP_POD_READY,
                    true,
                    reason::READY,
                    format!("{n} PreBackupPod(s) ready"),
                    action.generation,
                    &now(),
                )),
            }
        }
    }
    let outcome = if previous.started {
        status::outcome_from_jobs(&action.owned_by, &observed.jobs)
    } else if let Some(message) = pre_backup_failed {
        Outcome::Failed(message)
    } else {
        // apply (API writes): the executor account must exist before Jobs that run as it.
        if K::NEEDS_EXECUTOR {
            ctx.apply_once(
                "executor",
                &action.namespace,
                apply::ensure_executor(&ctx.client, &action),
            )
            .await?;
        }
        // Jobs reference the operator's global credentials through this Secret, never as literals.
        if !credentials::offered_keys(&action).is_empty() {
            ctx.apply_once(
                "credentials",
                &action.namespace,
                credentials::ensure_global_credentials(&ctx.client, &action),
            )
            .await?;
        }
        // plan (the planner never sees a client)
        let plan = match ctx
            .planner
            .plan(PlanRequest {
                action: &action,
                observed: &observed,
            })
            .await
        {
            Ok(plan) => plan,
            Err(PlanError::InvalidSpec(message)) => {
                return await_change_with(object.as_ref(), ctx, &previous, Outcome::InvalidSpec(message))
                    .await;
            }
            Err(e) => {
                let outcome = Outcome::CreationFailed(error_chain(&e));
                let next = status::next_status(&previous, &outcome, action.generation, &now());
                if next != previous {
                    write_status(&ctx.client, object.as_ref(), &next).await?;
                }
                return Err(Error::Plan(e));
            }
        };
        if plan.jobs.is_empty() {
            let what = if K::JOB_TYPE == JobType::Backup {
                "nothing to backup".to_string()
            } else {
                format!("nothing to {}", K::JOB_TYPE)
            };
            Outcome::Succeeded(plan.message.clone().unwrap_or(what))
        } else {
            // apply (API writes): create the Jobs, idempotently, once the repository is ours to use. The
            // permit serialises this decision with every other one, so two actions cannot both pass.
            if !ctx.gate.cache_synced(CACHE_SYNC_WAIT).await {
                return Err(Error::CacheNotSynced);
            }
            let permit = ctx.gate.permit().await;
            if let Some(wait) = concurrency_wait(&action, ctx).await? {
                drop(permit);
                return waiting(object.as_ref(), ctx, &action, &previous, wait).await;
            }
            let mut jobs = plan.jobs;
            if !ctx.gate.initialised(&action.repository_hash()) {
                apply::await_repository(&mut jobs);
            }
            let created = apply::create_jobs(&ctx.client, &action, jobs).await;
            if let Ok(stored) = &created {
                ctx.gate.created(stored);
            }
            drop(permit);
            ctx.gate.set_waiting(&action, false);
            match created {
                Ok(stored) => {
                    let names: Vec<String> = stored.iter().filter_map(|j| j.metadata.name.clone()).collect();
                    let observed_done = observed.reports_read
                        && stored
                            .iter()
                            .all(|j| observed.jobs.iter().any(|o| o.metadata.name == j.metadata.name));
                    publish(
                        &ctx.recorder,
                        &object.object_ref(&()),
                        EventType::Normal,
                        reason::STARTED,
                        format!("started {} job(s): {}", names.len(), names.join(", ")),
                    )
                    .await;
                    match status::outcome_from_jobs(&action.owned_by, &stored) {
                        // An earlier attempt created these Jobs and they finished after `observe` read
                        // them as running, so their reports were not read: finishing now would skip the
                        // snapshot sync. Record the start; the next pass reads the reports and finishes.
                        Outcome::Succeeded(m) | Outcome::Failed(m) if !observed_done => {
                            let next = status::next_status(
                                &previous,
                                &Outcome::Running(m),
                                action.generation,
                                &now(),
                            );
                            if next != previous {
                                write_status(&ctx.client, object.as_ref(), &next).await?;
                            }
                            return Ok(Action::requeue(Duration::ZERO));
                        }
                        outcome => outcome,
                    }
                }
                Err(e) => {
                    let outcome = Outcome::CreationFailed(error_chain(&e));
                    let next = status::next_status(&previous, &outcome, action.generation, &now());
                    if next != previous {
                        write_status(&ctx.client, object.as_ref(), &next).await?;
                    }
                    return Err(e);
                }
            }
        }
    };

    // Snapshot sync before `Completed` is written: if it fails the reconcile is retried and the object is
    // not yet finished, so the sync is never skipped.
    if outcome.is_final() && K::SYNCS_SNAPSHOTS && !ctx.settings.jobs.skip_snapshot_sync {
        let reports: Vec<snapshots::JobReport> = observed
            .reports
            .iter()
            .filter_map(|(_, message)| snapshots::parse_report(message))
            .collect();
        if !reports.is_empty() {
            let changes = snapshots::diff(
                &action.namespace,
                &action.repository.url,
                &reports,
                &observed.snapshots,
            );
            apply::apply_snapshots(&ctx.client, &action.namespace, &changes).await?;
            tracing::info!(
                namespace = %action.namespace,
                name = %action.name,
                reports = reports.len(),
                created = changes.create.len(),
                deleted = changes.delete.len(),
                "snapshot resources synced"
            );
        }
    }

    // A failed run says why in its report: the status quotes it, so a person sees the cause (a missing
    // snapshot, a refused exec) without reading pod logs.
    let outcome = match outcome {
        Outcome::Failed(message) => {
            let causes = snapshots::failure_causes(&observed.reports);
            if causes.is_empty() {
                Outcome::Failed(message)
            } else {
                Outcome::Failed(format!("{message}; {}", causes.join("; ")))
            }
        }
        other => other,
    };

    // The pre-backup pods have done their part once the Backup finished (or could not start).
    if outcome.is_final() && !observed.pre_backup_deployments.is_empty() {
        apply::delete_pre_backup_deployments(
            &ctx.client,
            &action.namespace,
            &observed.pre_backup_deployments,
        )
        .await?;
        let failed = previous
            .condition(ctype::PRE_BACKUP_POD_READY)
            .is_some_and(|c| c.reason == reason::FAILED)
            || extra_conditions
                .iter()
                .any(|c| c.type_ == ctype::PRE_BACKUP_POD_READY && c.reason == reason::FAILED);
        if !failed {
            extra_conditions.push(status::condition(
                ctype::PRE_BACKUP_POD_READY,
                true,
                reason::FINISHED,
                "pre-backup pods removed",
                action.generation,
                &now(),
            ));
        }
    }

    // status (pure) + write
    let mut next = status::next_status(&previous, &outcome, action.generation, &now());
    for c in extra_conditions {
        status::set_condition(&mut next.conditions, c);
    }
    if next != previous {
        write_status(&ctx.client, object.as_ref(), &next).await?;
    }
    if outcome.is_final() {
        let succeeded = matches!(outcome, Outcome::Succeeded(_));
        ctx.metrics.finished(&action.namespace, K::JOB_TYPE, succeeded);
        if let Some(schedule) = action.labels.get(crate::operator::scheduler::SCHEDULE_LABEL) {
            ctx.metrics
                .schedule_job_finished(&action.namespace, schedule, K::JOB_TYPE, succeeded);
        }
        let (type_, reason, note) = match &outcome {
            Outcome::Succeeded(m) => (EventType::Normal, reason::SUCCEEDED, m.clone()),
            Outcome::Failed(m) => (EventType::Warning, reason::FAILED, m.clone()),
            _ => (EventType::Normal, reason::FINISHED, String::new()),
        };
        publish(&ctx.recorder, &object.object_ref(&()), type_, reason, note).await;
        return scrub(object.as_ref(), ctx, next).await;
    }
    Ok(Action::requeue(RUNNING_RESYNC))
}

/// Why `action` may not start now, if it may not ([`concurrency::decide`] on the running k8up Jobs).
async fn concurrency_wait(action: &ValidatedAction, ctx: &Context) -> Result<Option<String>, Error> {
    let running = ctx
        .gate
        .running(&ctx.client)
        .await
        .map_err(|source| Error::Observe {
            what: "the running k8up jobs",
            source,
        })?;
    let hash = action.repository_hash();
    Ok(
        match concurrency::decide(
            action.job_type,
            &action.namespace,
            &action.owned_by,
            (&hash, ctx.gate.initialised(&hash)),
            &running,
            &action.settings.concurrency,
        ) {
            concurrency::Decision::Start => None,
            concurrency::Decision::Wait(message) => Some(message),
        },
    )
}

/// Records that the action waits for its turn (`Ready=False`, reason `Waiting`, with an Event when this
/// starts), and looks again when a k8up Job finishes or after [`CONCURRENCY_RECHECK`].
async fn waiting<K: ActionKind>(
    object: &K,
    ctx: &Context,
    action: &ValidatedAction,
    previous: &Status,
    message: String,
) -> Result<Action, Error> {
    ctx.gate.set_waiting(action, true);
    let outcome = Outcome::Waiting(message.clone());
    let next = status::next_status(previous, &outcome, action.generation, &now());
    let was_waiting = previous
        .condition(ctype::READY)
        .is_some_and(|c| c.reason == reason::WAITING);
    if next != *previous {
        write_status(&ctx.client, object, &next).await?;
        if !was_waiting {
            publish(
                &ctx.recorder,
                &object.object_ref(&()),
                EventType::Normal,
                reason::WAITING,
                message,
            )
            .await;
        }
    }
    Ok(Action::requeue(CONCURRENCY_RECHECK))
}

/// Writes the outcome (an invalid spec) if it changed, with a Warning Event, and waits for a change.
async fn await_change_with<K: ActionKind>(
    object: &K,
    ctx: &Context,
    previous: &Status,
    outcome: Outcome,
) -> Result<Action, Error> {
    let next = status::next_status(previous, &outcome, object.meta().generation, &now());
    if &next != previous {
        write_status(&ctx.client, object, &next).await?;
        if let Outcome::InvalidSpec(message) = &outcome {
            publish(
                &ctx.recorder,
                &object.object_ref(&()),
                EventType::Warning,
                status::REASON_INVALID_SPEC,
                message.clone(),
            )
            .await;
        }
    }
    Ok(Action::await_change())
}

/// History cleanup of a finished object, once (until `Scrubbed` is True).
async fn scrub<K: ActionKind>(object: &K, ctx: &Context, current: Status) -> Result<Action, Error> {
    let scrubbed = |s: &Status| s.condition(ctype::SCRUBBED).is_some_and(|c| c.status == "True");
    if scrubbed(&current) {
        return Ok(Action::await_change());
    }
    let namespace = object.namespace().unwrap_or_default();
    // The object handed to a reconcile can predate our own last status write (the watch lags): read it fresh,
    // so a second pass neither cleans up again nor overwrites "Deleted N resources" with "Deleted 0".
    let fresh = Api::<K>::namespaced(ctx.client.clone(), &namespace)
        .get_opt(&object.name_any())
        .await
        .map_err(|source| Error::Observe {
            what: "the object before history cleanup",
            source,
        })?;
    match fresh.as_ref().and_then(|f| f.status()) {
        None if fresh.is_none() => return Ok(Action::await_change()),
        Some(s) if scrubbed(s) => return Ok(Action::await_change()),
        _ => {}
    }
    let limits = object.history();
    let limits = validate::EffectiveHistory {
        successful: limits.successful().unwrap_or(ctx.settings.history.successful),
        failed: limits.failed().unwrap_or(ctx.settings.history.failed),
    };
    let generation = object.meta().generation;
    let fail = |reason_: &str, e: &Error| {
        let mut next = current.clone();
        status::set_condition(
            &mut next.conditions,
            status::condition(
                ctype::SCRUBBED,
                false,
                reason_,
                error_chain(e),
                generation,
                &now(),
            ),
        );
        next
    };
    let siblings = match observe::observe_siblings::<K>(&ctx.client, &namespace).await {
        Ok(s) => s,
        Err(e) => {
            write_status(&ctx.client, object, &fail(reason::RETRIEVAL_FAILED, &e)).await?;
            return Err(e);
        }
    };
    let doomed = history::select_for_deletion(&siblings, &history::owner_key(object), limits);
    let deleted = match apply::delete_objects::<K>(&ctx.client, &namespace, &doomed).await {
        Ok(n) => n,
        Err(e) => {
            write_status(&ctx.client, object, &fail(reason::DELETION_FAILED, &e)).await?;
            return Err(e);
        }
    };
    if doomed.iter().any(|n| *n == object.name_any()) {
        // This object was among the oldest: it is being deleted, nothing left to record on it.
        return Ok(Action::await_change());
    }
    let mut next = current.clone();
    status::set_condition(
        &mut next.conditions,
        status::condition(
            ctype::SCRUBBED,
            true,
            reason::SUCCEEDED,
            format!("Deleted {deleted} resources"),
            generation,
            &now(),
        ),
    );
    write_status(&ctx.client, object, &next).await?;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str) -> kube::Error {
        let mut status = kube::core::Status::failure("refused", reason);
        status.code = code;
        kube::Error::Api(status.boxed())
    }

    #[test]
    fn throttling_server_errors_and_conflicts_are_transient_refusals_are_not() {
        for (code, reason, transient) in [
            (409, "Conflict", true),
            (429, "TooManyRequests", true),
            (500, "InternalError", true),
            (503, "ServiceUnavailable", true),
            (403, "Forbidden", false),
            (422, "Invalid", false),
            (404, "NotFound", false),
        ] {
            let e = Error::ApplyJob {
                name: "backup-x".to_string(),
                source: api(code, reason),
            };
            assert_eq!(e.is_transient(), transient, "{code} {reason}");
        }
        let lost = Error::WriteStatus {
            source: kube::Error::LinesCodecMaxLineLengthExceeded,
        };
        assert!(lost.is_transient());
        let undecodable = Error::Observe {
            what: "podconfigs",
            source: kube::Error::SerdeError(serde_json::from_str::<u32>("\"main\"").unwrap_err()),
        };
        assert!(!undecodable.is_transient());
        assert!(!Error::JobConflict { name: "x".into() }.is_transient());
        assert!(!Error::Plan(PlanError::InvalidSpec("bad".into())).is_transient());
    }

    #[test]
    fn transient_failures_are_retried_within_seconds_others_back_off_to_minutes() {
        let transient: Vec<u64> = (1..=8).map(|n| retry_delay(true, n).as_millis() as u64).collect();
        assert_eq!(transient, [500, 1000, 2000, 4000, 8000, 8000, 8000, 8000]);
        assert_eq!(retry_delay(false, 1), Duration::from_secs(2));
        assert_eq!(retry_delay(false, 20), MAX_BACKOFF);
    }
}
