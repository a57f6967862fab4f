//! `PreBackupPod`: a pod started before a backup whose command's output is backed up.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A pod the operator starts for the duration of each Backup in the namespace (e.g. a database client);
/// `backupCommand` runs in it and its stdout is stored as a file in the backup.
// clippy reads the repeated `type_ = ...` inside separate `printcolumn(...)` groups as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "k8up.io",
    version = "v1",
    kind = "PreBackupPod",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    shortname = "pbp",
    category = "k8up",
    doc = "PreBackupPod is a pod started for each Backup whose command output is backed up.",
    printcolumn(
        name = "Command",
        type_ = "string",
        json_path = ".spec.backupCommand",
        description = "Backup command"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct PreBackupPodSpec {
    /// Command run in the pod; its stdout is backed up (written to the pod annotation
    /// `k8up.io/backupcommand`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_command: Option<String>,

    /// File name suffix of the backed-up output, e.g. `.sql` (annotation `k8up.io/file-extension`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_extension: Option<String>,

    /// Pod template of the pod (any pod settings). Its labels and annotations are replaced by k8up's.
    #[schemars(schema_with = "super::schema::preserve_unknown_object")]
    pub pod: PodTemplateSpec,
}
