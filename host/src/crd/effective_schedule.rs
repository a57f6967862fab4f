//! `EffectiveSchedule`: the operator's record of when each action of a Schedule runs.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::status::JobType;

/// Written by the operator only: one per Schedule (same name, owned by it), with the concrete cron
/// expression of each action and its last and next fire times. Users read it; edits are overwritten.
// clippy reads the repeated `type_ = ...` inside separate `printcolumn(...)` groups as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "k8up.io",
    version = "v1",
    kind = "EffectiveSchedule",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    status = "EffectiveScheduleStatus",
    shortname = "esched",
    category = "k8up",
    doc = "EffectiveSchedule records the concrete cron expressions and fire times of a Schedule's actions.",
    printcolumn(
        name = "Schedule",
        type_ = "string",
        json_path = ".spec.scheduleRef.name",
        description = "The Schedule"
    ),
    printcolumn(
        name = "Next Backup",
        type_ = "date",
        json_path = r#".spec.schedules[?(@.jobType == "backup")].nextRun"#,
        description = "Next backup fire time"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveScheduleSpec {
    /// The Schedule this record belongs to.
    pub schedule_ref: ScheduleRef,

    /// One entry per action of the Schedule.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["jobType"]))]
    pub schedules: Vec<EffectiveScheduleEntry>,
}

/// Name and UID of a Schedule (the UID tells a recreated Schedule of the same name apart).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleRef {
    /// Name of the Schedule in the same namespace.
    pub name: String,
    /// UID of the Schedule.
    pub uid: String,
}

/// When one action of a Schedule runs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveScheduleEntry {
    /// The action.
    pub job_type: JobType,

    /// The schedule as written in the Schedule, e.g. `@daily-random`.
    pub schedule: String,

    /// The concrete cron expression in use, e.g. `52 4 * * *`.
    pub effective_schedule: String,

    /// Next time the action fires (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<Time>,

    /// Last time the action fired (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<Time>,

    /// Name of the object created at the last fire time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_object: Option<String>,

    /// Ticks skipped because the previous run was still active and `concurrentRunsAllowed` is false.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub skipped_ticks: i64,

    /// Ticks missed while the operator was not running (not caught up, only counted).
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub missed_ticks: i64,
}

/// Observed state of an EffectiveSchedule.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveScheduleStatus {
    /// Standard conditions; `Ready` is False when a schedule could not be parsed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

impl EffectiveScheduleSpec {
    /// The entry of one action, if the Schedule defines it.
    pub fn entry(&self, job_type: JobType) -> Option<&EffectiveScheduleEntry> {
        self.schedules.iter().find(|e| e.job_type == job_type)
    }
}
