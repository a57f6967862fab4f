//! `Schedule`: cron schedules that create Backup, Check, Prune, Archive and Restore objects.

use k8s_openapi::api::core::v1::{LocalObjectReference, PodSecurityContext, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::archive::ArchiveSpec;
use super::backend::Backend;
use super::backup::BackupSpec;
use super::check::CheckSpec;
use super::prune::PruneSpec;
use super::restore::RestoreSpec;
use super::runnable::{HistoryLimits, RunnableSpec};
use super::status::JobType;

/// Cron schedules for the actions of one repository. At each tick the operator creates an object of the
/// action's kind from the sub-spec, filling unset `backend`, resources, security context and PodConfig
/// from the Schedule level.
// clippy reads the repeated `type_ = ...` inside separate `printcolumn(...)` groups as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "k8up.io",
    version = "v1",
    kind = "Schedule",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    status = "ScheduleStatus",
    shortname = "sched",
    category = "k8up",
    doc = "Schedule creates Backup, Check, Prune, Archive and Restore objects on cron schedules.",
    printcolumn(
        name = "Backup",
        type_ = "string",
        json_path = ".spec.backup.schedule",
        description = "Backup schedule"
    ),
    printcolumn(
        name = "Check",
        type_ = "string",
        json_path = ".spec.check.schedule",
        description = "Check schedule"
    ),
    printcolumn(
        name = "Prune",
        type_ = "string",
        json_path = ".spec.prune.schedule",
        description = "Prune schedule"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type == "Ready")].status"#,
        description = "Whether every schedule was accepted"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSpec {
    // The sub-specs are boxed: inline, a Schedule is large enough that deserializing one overflows a tokio
    // worker thread's stack in debug builds.
    /// Scheduled Backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<Box<BackupSchedule>>,

    /// Scheduled Checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Box<CheckSchedule>>,

    /// Scheduled Prunes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<Box<PruneSchedule>>,

    /// Scheduled Archives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<Box<ArchiveSchedule>>,

    /// Scheduled Restores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<Box<RestoreSchedule>>,

    /// Default repository for every generated object: fields set in a sub-spec's `backend` win, unset ones
    /// are filled from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,

    /// History limits at Schedule level: defaults for sub-specs that set none (K8up accepted but ignored
    /// these).
    #[serde(flatten)]
    pub history: HistoryLimits,

    /// Default compute resources for every generated object (a sub-spec's `resources` win field by field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_requirements_template: Option<ResourceRequirements>,

    /// Default pod security context for every generated object (a sub-spec's fields win). A core/v1
    /// `PodSecurityContext`, checked by the API server when the Jobs are created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::preserve_unknown_object")]
    pub pod_security_context: Option<PodSecurityContext>,

    /// Default PodConfig for every generated object (a sub-spec's `podConfigRef` wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_config_ref: Option<LocalObjectReference>,
}

/// When an action runs and whether runs may overlap; inlined into every Schedule sub-spec.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleCommon {
    /// Standard 5-field cron expression, a descriptor (`@hourly`, `@daily`, `@weekly`, `@monthly`,
    /// `@yearly`, `@every <duration>`) or a randomized descriptor (`@hourly-random`, `@daily-random`,
    /// `@weekly-random`, `@monthly-random`, `@yearly-random`, `@annually-random`) that picks a stable time
    /// from the Schedule's namespace, name and action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,

    /// Whether a new object may be created while the previous one of this Schedule and action is still
    /// running. Default false: such ticks are skipped and counted in the EffectiveSchedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_runs_allowed: Option<bool>,
}

/// Backups on a schedule: every Backup field plus `schedule` and `concurrentRunsAllowed`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct BackupSchedule {
    /// The Backup to create at each tick.
    #[serde(flatten)]
    pub spec: BackupSpec,
    /// When it runs.
    #[serde(flatten)]
    pub common: ScheduleCommon,
}

/// Checks on a schedule: every Check field plus `schedule` and `concurrentRunsAllowed`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct CheckSchedule {
    /// The Check to create at each tick.
    #[serde(flatten)]
    pub spec: CheckSpec,
    /// When it runs.
    #[serde(flatten)]
    pub common: ScheduleCommon,
}

/// Prunes on a schedule: every Prune field plus `schedule` and `concurrentRunsAllowed`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PruneSchedule {
    /// The Prune to create at each tick.
    #[serde(flatten)]
    pub spec: PruneSpec,
    /// When it runs.
    #[serde(flatten)]
    pub common: ScheduleCommon,
}

/// Archives on a schedule: every Archive field plus `schedule` and `concurrentRunsAllowed`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ArchiveSchedule {
    /// The Archive to create at each tick.
    #[serde(flatten)]
    pub spec: ArchiveSpec,
    /// When it runs.
    #[serde(flatten)]
    pub common: ScheduleCommon,
}

/// Restores on a schedule: every Restore field plus `schedule` and `concurrentRunsAllowed`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct RestoreSchedule {
    /// The Restore to create at each tick.
    #[serde(flatten)]
    pub spec: RestoreSpec,
    /// When it runs.
    #[serde(flatten)]
    pub common: ScheduleCommon,
}

/// One scheduled action of a Schedule, borrowed: its type, timing and runnable fields.
#[derive(Clone, Copy, Debug)]
pub struct ScheduledAction<'a> {
    /// Which action.
    pub job_type: JobType,
    /// Its `schedule` and `concurrentRunsAllowed`.
    pub common: &'a ScheduleCommon,
    /// Its runnable fields (backend, resources, pod settings, plugin).
    pub runnable: &'a RunnableSpec,
    /// Its history limits.
    pub history: &'a HistoryLimits,
}

impl ScheduleSpec {
    /// Every action this Schedule defines, in the order backup, check, archive, restore, prune.
    pub fn actions(&self) -> Vec<ScheduledAction<'_>> {
        let mut actions = Vec::new();
        if let Some(s) = &self.backup {
            actions.push(ScheduledAction {
                job_type: JobType::Backup,
                common: &s.common,
                runnable: &s.spec.runnable,
                history: &s.spec.history,
            });
        }
        if let Some(s) = &self.check {
            actions.push(ScheduledAction {
                job_type: JobType::Check,
                common: &s.common,
                runnable: &s.spec.runnable,
                history: &s.spec.history,
            });
        }
        if let Some(s) = &self.archive {
            actions.push(ScheduledAction {
                job_type: JobType::Archive,
                common: &s.common,
                runnable: &s.spec.restore.runnable,
                history: &s.spec.restore.history,
            });
        }
        if let Some(s) = &self.restore {
            actions.push(ScheduledAction {
                job_type: JobType::Restore,
                common: &s.common,
                runnable: &s.spec.runnable,
                history: &s.spec.history,
            });
        }
        if let Some(s) = &self.prune {
            actions.push(ScheduledAction {
                job_type: JobType::Prune,
                common: &s.common,
                runnable: &s.spec.runnable,
                history: &s.spec.history,
            });
        }
        actions
    }
}

/// Observed state of a Schedule.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleStatus {
    /// Standard conditions; `Ready` is False with reason `Failed` when a schedule cannot be parsed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The concrete cron expressions chosen for randomized schedules (K8up's status field; the
    /// EffectiveSchedule object of this Schedule has the details).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["jobType"]))]
    pub effective_schedules: Vec<GeneratedSchedule>,
}

/// The concrete cron expression chosen for one randomized schedule.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GeneratedSchedule {
    /// The action whose schedule was randomized.
    pub job_type: JobType,
    /// The generated cron expression, e.g. `52 4 * * *` for `@daily-random`.
    pub generated_schedule: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_lists_each_defined_sub_spec_with_its_schedule() {
        let spec = ScheduleSpec {
            backup: Some(Box::new(BackupSchedule {
                common: ScheduleCommon {
                    schedule: Some("@daily-random".into()),
                    ..Default::default()
                },
                ..Default::default()
            })),
            prune: Some(Box::new(PruneSchedule {
                common: ScheduleCommon {
                    schedule: Some("0 1 * * 0".into()),
                    ..Default::default()
                },
                ..Default::default()
            })),
            ..Default::default()
        };
        let listed: Vec<(JobType, Option<&str>)> = spec
            .actions()
            .iter()
            .map(|a| (a.job_type, a.common.schedule.as_deref()))
            .collect();
        assert_eq!(
            listed,
            vec![
                (JobType::Backup, Some("@daily-random")),
                (JobType::Prune, Some("0 1 * * 0"))
            ]
        );
    }
}
