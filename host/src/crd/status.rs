//! The status shared by the action kinds, condition names, and the job types.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Observed state of a Backup, Restore, Archive, Check or Prune (K8up's `Status`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Deprecated (kept for K8up compatibility): true once the jobs were started.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub started: bool,

    /// Deprecated (kept for K8up compatibility): true once the jobs finished, successfully or not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub finished: bool,

    /// Kept for K8up compatibility: true when the action ran exclusively on its repository.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exclusive: bool,

    /// Standard conditions: `Ready`, `Progressing`, `Completed`, `Scrubbed` and, for Backups,
    /// `PreBackupPodReady`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

impl Status {
    /// The condition of the given type, if present.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}

/// Condition types used in statuses (K8up's names).
pub mod condition_type {
    /// The object was accepted and its jobs exist.
    pub const READY: &str = "Ready";
    /// Jobs are running.
    pub const PROGRESSING: &str = "Progressing";
    /// All jobs finished; the reason says whether they succeeded.
    pub const COMPLETED: &str = "Completed";
    /// History cleanup ran.
    pub const SCRUBBED: &str = "Scrubbed";
    /// Backup only: state of the PreBackupPods.
    pub const PRE_BACKUP_POD_READY: &str = "PreBackupPodReady";
}

/// Condition reasons used in statuses (K8up's names).
pub mod condition_reason {
    /// Resource is ready.
    pub const READY: &str = "Ready";
    /// Jobs were started.
    pub const STARTED: &str = "Started";
    /// Jobs finished.
    pub const FINISHED: &str = "Finished";
    /// Jobs succeeded.
    pub const SUCCEEDED: &str = "Succeeded";
    /// Jobs failed.
    pub const FAILED: &str = "Failed";
    /// An object could not be created.
    pub const CREATION_FAILED: &str = "CreationFailed";
    /// An object could not be updated.
    pub const UPDATE_FAILED: &str = "UpdateFailed";
    /// An object could not be deleted.
    pub const DELETION_FAILED: &str = "DeletionFailed";
    /// An object could not be read.
    pub const RETRIEVAL_FAILED: &str = "RetrievalFailed";
    /// No PreBackupPod matched.
    pub const NO_PRE_BACKUP_PODS_FOUND: &str = "NoPreBackupPodsFound";
    /// Waiting for something (a lock, a PreBackupPod).
    pub const WAITING: &str = "Waiting";
}

/// The kind of action a Job performs (label `k8up.io/type`, Schedule sub-spec names).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobType {
    /// A Backup.
    Backup,
    /// A Check.
    Check,
    /// An Archive.
    Archive,
    /// A Restore.
    Restore,
    /// A Prune.
    Prune,
}

impl JobType {
    /// Every job type, in the order Schedules list them.
    pub const ALL: [JobType; 5] = [
        Self::Backup,
        Self::Check,
        Self::Archive,
        Self::Restore,
        Self::Prune,
    ];

    /// The lowercase name used in labels and JSON (`backup`, `check`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backup => "backup",
            Self::Check => "check",
            Self::Archive => "archive",
            Self::Restore => "restore",
            Self::Prune => "prune",
        }
    }

    /// The Kubernetes kind created for this job type (`Backup`, `Check`, ...).
    pub fn kind(self) -> &'static str {
        match self {
            Self::Backup => "Backup",
            Self::Check => "Check",
            Self::Archive => "Archive",
            Self::Restore => "Restore",
            Self::Prune => "Prune",
        }
    }
}

impl std::fmt::Display for JobType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_type_serialises_to_the_same_name_it_displays() {
        for job_type in JobType::ALL {
            let json = serde_json::to_value(job_type).ok();
            assert_eq!(json, Some(serde_json::Value::String(job_type.to_string())));
        }
    }
}
