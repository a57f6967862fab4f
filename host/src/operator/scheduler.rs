//! The Schedule controller: turns each Schedule's cron rules into action objects at their due times and
//! keeps the Schedule's `EffectiveSchedule` (same name, owned by it) in step.
//!
//! Each reconcile computes, per action, the ticks that came due since the last fire (or since the Schedule
//! was created), creates at most one object for them, records the rest as missed, and requeues for the
//! earliest next tick: there is no polling loop. Object names are derived from the Schedule, the action and
//! the tick (`<schedule>-<action>-<tick in hex seconds>`), so a restart or a retry between creating the
//! object and recording it never creates a second one.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::driver::Context;
use super::driver::status::{condition, set_condition};
use super::schedule::{CronSpec, RandomSeed, ScheduleContext, zone};
use crate::crd::{
    Archive, Backup, Check, EffectiveSchedule, EffectiveScheduleEntry, EffectiveScheduleSpec,
    GeneratedSchedule, JobType, Prune, Restore, Schedule, ScheduleRef, ScheduleSpec,
};

/// Field manager of the operator's writes to Schedules and EffectiveSchedules.
const MANAGER: &str = "k8up-scheduler";
/// Label on every object a Schedule created, naming the Schedule.
pub const SCHEDULE_LABEL: &str = "k8up.io/schedule";
/// Wake-up when no action has a next tick (all invalid), to notice nothing but a change of the Schedule.
const IDLE: Duration = Duration::from_secs(3600);

/// Why a Schedule could not be reconciled (retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("{what} failed")]
    Api {
        /// What was attempted.
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A sub-spec could not be turned into an action object.
    #[error("failed to build the {0} object")]
    Build(JobType, #[source] serde_json::Error),
}

fn api_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Api { what, source }
}

/// Runs the Schedule controller until `token` is cancelled.
pub async fn run(context: Arc<Context>, token: CancellationToken) {
    let client = context.client.clone();
    let (store, schedules) = super::decoded::watch::<Schedule>(client.clone(), context.recorder.clone());
    let controller =
        Controller::for_stream(schedules, store).with_config(super::controller::config(&context));
    let metrics = context.metrics.clone();
    metrics.watch_schedules(Some(controller.store()));
    controller
        // Edits of an EffectiveSchedule wake its Schedule, whose reconcile writes it back.
        .owns(Api::<EffectiveSchedule>::all(client), watcher::Config::default())
        .graceful_shutdown_on(async move { token.cancelled().await })
        // Boxed: the reconcile future is large, and kept inline it overflows a worker's stack in debug builds.
        .run(|s, c| Box::pin(reconcile(s, c)), error_policy, context)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "schedule controller event");
            }
        })
        .await;
    metrics.watch_schedules(None);
}

fn error_policy(schedule: Arc<Schedule>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(
        namespace = schedule.namespace().unwrap_or_default(),
        name = schedule.name_any(),
        error = %super::driver::error_chain(error),
        "reconciling the schedule failed; retrying"
    );
    Action::requeue(Duration::from_secs(10))
}

fn to_time(at: DateTime<Utc>) -> Time {
    Time(Timestamp::from_second(at.timestamp()).unwrap_or_default())
}

fn from_time(t: &Time) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.0.as_second(), 0)
}

/// The name of the object created for the tick `due` of one action.
pub fn object_name(schedule: &str, job_type: JobType, due: DateTime<Utc>) -> String {
    format!("{schedule}-{}-{:x}", job_type.as_str(), due.timestamp())
}

fn api_resource(job_type: JobType) -> ApiResource {
    match job_type {
        JobType::Backup => ApiResource::erase::<Backup>(&()),
        JobType::Check => ApiResource::erase::<Check>(&()),
        JobType::Archive => ApiResource::erase::<Archive>(&()),
        JobType::Restore => ApiResource::erase::<Restore>(&()),
        JobType::Prune => ApiResource::erase::<Prune>(&()),
    }
}

/// The spec of the object one action of `spec` creates: the sub-spec, with the Schedule-level defaults
/// (backend, resources, pod security context, PodConfig, history limits) filling the fields it leaves unset.
pub fn action_spec(spec: &ScheduleSpec, job_type: JobType) -> Result<Value, serde_json::Error> {
    let sub = match job_type {
        JobType::Backup => serde_json::to_value(spec.backup.as_ref().map(|s| &s.spec))?,
        JobType::Check => serde_json::to_value(spec.check.as_ref().map(|s| &s.spec))?,
        JobType::Archive => serde_json::to_value(spec.archive.as_ref().map(|s| &s.spec))?,
        JobType::Restore => serde_json::to_value(spec.restore.as_ref().map(|s| &s.spec))?,
        JobType::Prune => serde_json::to_value(spec.prune.as_ref().map(|s| &s.spec))?,
    };
    let mut sub = match sub {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    let defaults = [
        ("backend", serde_json::to_value(&spec.backend)?),
        (
            "resources",
            serde_json::to_value(&spec.resource_requirements_template)?,
        ),
        (
            "podSecurityContext",
            serde_json::to_value(&spec.pod_security_context)?,
        ),
        ("podConfigRef", serde_json::to_value(&spec.pod_config_ref)?),
        ("keepJobs", serde_json::to_value(spec.history.keep_jobs)?),
        (
            "failedJobsHistoryLimit",
            serde_json::to_value(spec.history.failed_jobs_history_limit)?,
        ),
        (
            "successfulJobsHistoryLimit",
            serde_json::to_value(spec.history.successful_jobs_history_limit)?,
        ),
    ];
    for (field, value) in defaults {
        let unset = sub.get(field).is_none_or(Value::is_null);
        if unset && !value.is_null() {
            sub.insert(field.to_string(), value);
        }
    }
    Ok(Value::Object(sub))
}

/// What the operator would report about the spec of the object one action of `spec` creates: the rules
/// the CRD states as CEL for its backend (not evaluated by every API server) and [`super::lint::spec`].
pub fn spec_problems(spec: &ScheduleSpec, job_type: JobType) -> Vec<String> {
    let merged = match action_spec(spec, job_type) {
        Ok(merged) => merged,
        Err(e) => return vec![format!("its spec does not serialise: {e}")],
    };
    let mut problems = Vec::new();
    match merged.get("backend").filter(|b| !b.is_null()) {
        None => {}
        Some(backend) => match serde_json::from_value::<crate::crd::Backend>(backend.clone()) {
            Ok(backend) => problems.extend(backend.validate().err().map(|e| format!("spec.backend: {e}"))),
            Err(e) => problems.push(format!("spec.backend: {e}")),
        },
    }
    problems.extend(super::lint::spec(&merged));
    problems
}

fn owner(schedule: &Schedule) -> Option<OwnerReference> {
    schedule.controller_owner_ref(&())
}

/// Whether the object `name` of this action exists and has not completed.
async fn is_running(ctx: &Context, ns: &str, job_type: JobType, name: &str) -> Result<bool, Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &api_resource(job_type));
    let Some(object) = api
        .get_opt(name)
        .await
        .map_err(api_err(format!("reading {} {name}", job_type.kind())))?
    else {
        return Ok(false);
    };
    let completed = object.data["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Completed" && c["status"] == "True");
    Ok(!completed)
}

async fn create_object(
    ctx: &Context,
    schedule: &Schedule,
    job_type: JobType,
    name: &str,
) -> Result<(), Error> {
    let ns = schedule.namespace().unwrap_or_default();
    let resource = api_resource(job_type);
    let spec = action_spec(&schedule.spec, job_type).map_err(|e| Error::Build(job_type, e))?;
    let object = json!({
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": { SCHEDULE_LABEL: schedule.name_any() },
            "ownerReferences": owner(schedule).into_iter().collect::<Vec<_>>(),
        },
        "spec": spec,
    });
    let object: DynamicObject = serde_json::from_value(object).map_err(|e| Error::Build(job_type, e))?;
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &resource);
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => Ok(()),
        // Created before a restart or a failed status write: the tick has its object already.
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(api_err(format!("creating {} {name}", job_type.kind()))(e)),
    }
}

async fn publish(ctx: &Context, schedule: &Schedule, type_: EventType, reason: &str, note: String) {
    let reference = schedule.object_ref(&());
    super::driver::publish_event(&ctx.recorder, &reference, "Schedule", type_, reason, note).await;
}

/// Reconciles one Schedule: fires what is due, records it, and requeues for the next tick.
pub async fn reconcile(schedule: Arc<Schedule>, ctx: Arc<Context>) -> Result<Action, Error> {
    if schedule.metadata.deletion_timestamp.is_some() {
        // Its objects and its EffectiveSchedule go with it (owner references).
        return Ok(Action::await_change());
    }
    let ns = schedule.namespace().unwrap_or_default();
    let name = schedule.name_any();
    let uid = schedule.uid().unwrap_or_default();
    let now = Utc::now();
    let created = schedule
        .metadata
        .creation_timestamp
        .as_ref()
        .and_then(from_time)
        .unwrap_or(now);
    let zone_name = &ctx.settings.scheduling.timezone;
    let default_zone = zone::resolve(zone_name).unwrap_or(chrono_tz::Tz::UTC);

    let effective_api: Api<EffectiveSchedule> = Api::namespaced(ctx.client.clone(), &ns);
    let existing = effective_api
        .get_opt(&name)
        .await
        .map_err(api_err(format!("reading EffectiveSchedule {name}")))?;
    let previous: Vec<EffectiveScheduleEntry> = existing
        .as_ref()
        // A leftover of an earlier Schedule of the same name starts from scratch.
        .filter(|e| e.spec.schedule_ref.uid == uid)
        .map(|e| e.spec.schedules.clone())
        .unwrap_or_default();

    let mut entries = Vec::new();
    let mut problems = Vec::new();
    let mut generated = Vec::new();
    let mut wake: Option<DateTime<Utc>> = None;
    for action in schedule.spec.actions() {
        let job_type = action.job_type;
        let Some(expression) = action.common.schedule.as_deref() else {
            problems.push(format!("{job_type}: `schedule` is not set"));
            continue;
        };
        let context = ScheduleContext::new(default_zone)
            .with_anchor(created)
            .with_seed(RandomSeed::new(ns.clone(), name.clone(), job_type.as_str()));
        let cron = match CronSpec::parse_with(expression, &context) {
            Ok(c) => c,
            Err(e) => {
                problems.push(format!("{job_type}: {e}"));
                continue;
            }
        };
        let invalid = spec_problems(&schedule.spec, job_type);
        if !invalid.is_empty() {
            // Not scheduled: every object it created would fail the same way.
            problems.push(format!(
                "{job_type}: the {} it would create is invalid: {}",
                job_type.kind(),
                invalid.join("; ")
            ));
            continue;
        }
        let mut entry = previous
            .iter()
            .find(|e| e.job_type == job_type)
            .cloned()
            .unwrap_or(EffectiveScheduleEntry {
                job_type,
                schedule: String::new(),
                effective_schedule: String::new(),
                next_run: None,
                last_run: None,
                last_object: None,
                skipped_ticks: 0,
                missed_ticks: 0,
            });
        entry.schedule = expression.to_string();
        entry.effective_schedule = cron.effective_expression().to_string();
        let last = entry.last_run.as_ref().and_then(from_time).unwrap_or(created);
        let ticks = cron.due_ticks(last, now);
        if let Some(due) = ticks.due {
            if ticks.missed > 0 {
                entry.missed_ticks = entry.missed_ticks.saturating_add(ticks.missed as i64);
                ctx.metrics.schedule_missed_ticks(&ns, job_type, ticks.missed);
                publish(
                    &ctx,
                    &schedule,
                    EventType::Warning,
                    "MissedTicks",
                    format!(
                        "{} {} tick(s) of the {job_type} schedule {expression:?} came due while the operator was \
                         not running; one run is made for them",
                        if ticks.missed_is_lower_bound { "at least" } else { "" },
                        ticks.missed
                    )
                    .trim_start()
                    .to_string(),
                )
                .await;
            }
            let concurrent = action.common.concurrent_runs_allowed.unwrap_or(false);
            let busy = match (&entry.last_object, concurrent) {
                (Some(previous), false) => is_running(&ctx, &ns, job_type, previous).await?,
                _ => false,
            };
            if busy {
                entry.skipped_ticks = entry.skipped_ticks.saturating_add(1);
                ctx.metrics.schedule_skipped_tick(&ns, job_type);
                let previous = entry.last_object.clone().unwrap_or_default();
                publish(
                    &ctx,
                    &schedule,
                    EventType::Normal,
                    "SkippedTick",
                    format!(
                        "the {job_type} tick at {due} was skipped: {} {previous} is still running and \
                         concurrentRunsAllowed is false",
                        job_type.kind()
                    ),
                )
                .await;
            } else {
                let object = object_name(&name, job_type, due);
                create_object(&ctx, &schedule, job_type, &object).await?;
                tracing::info!(namespace = %ns, schedule = %name, %object, "created a scheduled {job_type}");
                publish(
                    &ctx,
                    &schedule,
                    EventType::Normal,
                    "Created",
                    format!("created {} {object} for the tick at {due}", job_type.kind()),
                )
                .await;
                entry.last_object = Some(object);
            }
            entry.last_run = Some(to_time(due));
        }
        entry.next_run = ticks.next.map(to_time);
        if let Some(next) = ticks.next {
            wake = Some(wake.map_or(next, |w| w.min(next)));
        }
        if cron.is_random() {
            generated.push(GeneratedSchedule {
                job_type,
                generated_schedule: cron.effective_expression().to_string(),
            });
        }
        entries.push(entry);
    }

    write_effective_schedule(&schedule, &effective_api, existing.as_ref(), entries).await?;
    write_status(&ctx, &schedule, &problems, generated).await?;
    if !problems.is_empty() {
        publish(
            &ctx,
            &schedule,
            EventType::Warning,
            "InvalidSchedule",
            problems.join("; "),
        )
        .await;
    }
    Ok(Action::requeue(requeue_after(wake, Utc::now())))
}

/// How long to sleep until the next tick `wake` (a little past it); a tick that already passed while the
/// reconcile ran (a slow API server) is due now and must not fall back to the idle wait.
pub fn requeue_after(wake: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Duration {
    wake.map(|w| (w - now).to_std().unwrap_or(Duration::ZERO) + Duration::from_millis(50))
        .unwrap_or(IDLE)
        .min(IDLE)
}

async fn write_effective_schedule(
    schedule: &Schedule,
    api: &Api<EffectiveSchedule>,
    existing: Option<&EffectiveSchedule>,
    entries: Vec<EffectiveScheduleEntry>,
) -> Result<(), Error> {
    let name = schedule.name_any();
    let mut effective = EffectiveSchedule::new(
        &name,
        EffectiveScheduleSpec {
            schedule_ref: ScheduleRef {
                name: name.clone(),
                uid: schedule.uid().unwrap_or_default(),
            },
            schedules: entries,
        },
    );
    effective.metadata.namespace = schedule.namespace();
    effective.metadata.owner_references = owner(schedule).map(|o| vec![o]);
    effective.metadata.labels = Some([(SCHEDULE_LABEL.to_string(), name.clone())].into());
    let unchanged = existing.is_some_and(|e| {
        e.spec == effective.spec
            && e.metadata.owner_references == effective.metadata.owner_references
            && e.labels().get(SCHEDULE_LABEL) == Some(&name)
    });
    if unchanged {
        // No write, so no watch event that would wake this Schedule again.
        return Ok(());
    }
    api.patch(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&effective),
    )
    .await
    .map_err(api_err(format!("writing EffectiveSchedule {name}")))?;
    Ok(())
}

async fn write_status(
    ctx: &Context,
    schedule: &Schedule,
    problems: &[String],
    generated: Vec<GeneratedSchedule>,
) -> Result<(), Error> {
    let mut status = schedule.status.clone().unwrap_or_default();
    let now = Time(Timestamp::now());
    let generation = schedule.metadata.generation;
    let ready = if problems.is_empty() {
        condition(
            "Ready",
            true,
            "Scheduled",
            "every schedule is valid",
            generation,
            &now,
        )
    } else {
        condition(
            "Ready",
            false,
            "InvalidSchedule",
            problems.join("; "),
            generation,
            &now,
        )
    };
    set_condition(&mut status.conditions, ready);
    status.effective_schedules = generated;
    if schedule.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let api: Api<Schedule> = Api::namespaced(ctx.client.clone(), &schedule.namespace().unwrap_or_default());
    let name = schedule.name_any();
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .map_err(api_err(format!("writing the status of Schedule {name}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tick_that_passed_during_the_reconcile_is_due_at_once_not_after_the_idle_wait() {
        let now = Utc::now();
        let later = requeue_after(Some(now + chrono::Duration::seconds(2)), now);
        assert!(
            later > Duration::from_secs(2) && later < Duration::from_secs(3),
            "{later:?}"
        );
        assert_eq!(
            requeue_after(Some(now - chrono::Duration::seconds(5)), now),
            Duration::from_millis(50)
        );
        assert_eq!(requeue_after(None, now), IDLE);
    }

    fn spec() -> ScheduleSpec {
        serde_json::from_value(json!({
            "backend": { "repoPasswordSecretRef": { "name": "repo", "key": "password" },
                         "rest": { "url": "http://rest:8000/" } },
            "successfulJobsHistoryLimit": 7,
            "podConfigRef": { "name": "defaults" },
            "backup": { "schedule": "@hourly", "tags": ["nightly"],
                        "backend": { "repoPasswordSecretRef": { "name": "own", "key": "pw" },
                                     "local": { "mountPath": "/repo" } } },
            "prune": { "schedule": "0 3 * * *", "retention": { "keepLast": 3 } },
        }))
        .unwrap()
    }

    #[test]
    fn a_sub_spec_keeps_its_own_fields_and_takes_the_schedule_defaults_for_the_rest() {
        let s = spec();
        let backup = action_spec(&s, JobType::Backup).unwrap();
        assert_eq!(backup["backend"]["local"]["mountPath"], "/repo");
        assert_eq!(backup["tags"], json!(["nightly"]));
        assert_eq!(backup["successfulJobsHistoryLimit"], 7);
        assert_eq!(backup["podConfigRef"]["name"], "defaults");
        assert!(backup.get("schedule").is_none(), "{backup}");
        let prune = action_spec(&s, JobType::Prune).unwrap();
        assert_eq!(prune["backend"]["rest"]["url"], "http://rest:8000/");
        assert_eq!(prune["retention"]["keepLast"], 3);
    }

    #[test]
    fn object_names_are_stable_per_tick_and_distinct_between_ticks() {
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let later = DateTime::from_timestamp(1_700_003_600, 0).unwrap();
        assert_eq!(
            object_name("nightly", JobType::Backup, t),
            "nightly-backup-6553f100"
        );
        assert_eq!(
            object_name("nightly", JobType::Backup, t),
            object_name("nightly", JobType::Backup, t)
        );
        assert_ne!(
            object_name("nightly", JobType::Backup, t),
            object_name("nightly", JobType::Backup, later)
        );
    }
}
