//! `RunnableSpec`: the fields every action spec (and every Schedule sub-spec) inlines, plus history limits.

use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, LocalObjectReference, PersistentVolumeClaimVolumeSource, PodSecurityContext,
    ResourceRequirements, SecretVolumeSource,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::backend::Backend;

/// Fields shared by every action that is turned into Kubernetes Jobs (Backup, Restore, Archive, Check, Prune
/// and each Schedule sub-spec). Inlined (flattened) into those specs, exactly like K8up's `RunnableSpec`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunnableSpec {
    /// The restic repository and its credentials. When unset, the operator's global S3 settings are used
    /// (for objects created by a Schedule: the Schedule's `backend` fills missing fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,

    /// Compute resources (cpu, memory) of the job container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Pod-level security context of the job pods (becomes `spec.template.spec.securityContext` of the Job).
    /// A core/v1 `PodSecurityContext`; the API server checks it when the Job is created (its schema is not
    /// repeated here, which keeps the Schedule CRD small enough for `kubectl apply`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::preserve_unknown_object")]
    pub pod_security_context: Option<PodSecurityContext>,

    /// Name of a `PodConfig` in the same namespace whose pod template is merged into the job pods. It takes
    /// precedence over `resources` and `podSecurityContext`; the image, command and arguments of the
    /// k8up container cannot be overridden. For advanced use only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_config_ref: Option<LocalObjectReference>,

    /// Extra volumes for the job pods (for example a Secret with TLS certificates), mounted through
    /// `backend.volumeMounts` or `restoreMethod.volumeMounts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<RunnableVolumeSpec>>,

    /// Seconds, relative to the start time, that a job may be active before Kubernetes terminates it
    /// (copied to `Job.spec.activeDeadlineSeconds`). Must be positive when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub active_deadline_seconds: Option<i64>,

    /// k8up-rs extension: the WASM plugin that plans the jobs of this action. When unset, the built-in
    /// plugin of the action type is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<PluginRef>,
}

/// A volume the job pods may mount: a name plus exactly one source (PVC, Secret or ConfigMap).
/// Entries without any source are ignored, as in K8up.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunnableVolumeSpec {
    /// Name of the volume; a DNS label unique within the pod.
    pub name: String,

    /// A PersistentVolumeClaim in the same namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<PersistentVolumeClaimVolumeSource>,

    /// A Secret whose keys populate the volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretVolumeSource>,

    /// A ConfigMap whose keys populate the volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapVolumeSource>,
}

/// k8up-rs extension: which WASM plugin plans an action's jobs.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginRef {
    /// Name of the plugin, as registered in a ConfigMap labelled `k8up.io/plugin` (or a built-in name).
    #[schemars(length(min = 1))]
    pub name: String,

    /// Expected SHA-256 (lowercase hex) of the plugin's WASM component. When set, the operator refuses to
    /// run a plugin whose content has a different digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub sha256: Option<String>,
}

/// How many finished objects of one kind (per Schedule, or among standalone objects) are kept.
/// Inlined into the action specs and the Schedule spec.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryLimits {
    /// Deprecated: number of finished objects to keep; fallback for both `failedJobsHistoryLimit` and
    /// `successfulJobsHistoryLimit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub keep_jobs: Option<i32>,

    /// Number of failed objects to keep for later analysis (`keepJobs` is used when unset, then the
    /// operator default of 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub failed_jobs_history_limit: Option<i32>,

    /// Number of successful objects to keep (`keepJobs` is used when unset, then the operator default of 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub successful_jobs_history_limit: Option<i32>,
}

impl HistoryLimits {
    /// The failed-objects limit as written: `failedJobsHistoryLimit`, else the deprecated `keepJobs`.
    /// Negative values (possible when CEL/schema validation was skipped) clamp to 0.
    pub fn failed(&self) -> Option<u32> {
        self.failed_jobs_history_limit
            .or(self.keep_jobs)
            .map(clamp_non_negative)
    }

    /// The successful-objects limit as written: `successfulJobsHistoryLimit`, else the deprecated `keepJobs`.
    /// Negative values clamp to 0.
    pub fn successful(&self) -> Option<u32> {
        self.successful_jobs_history_limit
            .or(self.keep_jobs)
            .map(clamp_non_negative)
    }
}

fn clamp_non_negative(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specific_history_limits_win_over_keep_jobs() {
        let limits = HistoryLimits {
            keep_jobs: Some(7),
            failed_jobs_history_limit: Some(1),
            successful_jobs_history_limit: None,
        };
        assert_eq!(limits.failed(), Some(1));
        assert_eq!(limits.successful(), Some(7));
    }

    #[test]
    fn negative_history_limits_clamp_to_zero_and_unset_stays_unset() {
        let limits = HistoryLimits {
            keep_jobs: None,
            failed_jobs_history_limit: Some(-4),
            ..Default::default()
        };
        assert_eq!(limits.failed(), Some(0));
        assert_eq!(limits.successful(), None);
    }
}
