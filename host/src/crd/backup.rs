//! `Backup`: one backup run of the PVCs and annotated pods of a namespace.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::runnable::{HistoryLimits, RunnableSpec};
use super::status::Status;

/// A single backup: every PVC annotated for backup (or matched by `labelSelectors`), the output of every pod
/// with a backup command annotation, and the PreBackupPods of the namespace, sent to one restic repository.
// clippy reads the repeated `type_ = ...` inside separate `printcolumn(...)` groups as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "k8up.io",
    version = "v1",
    kind = "Backup",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    status = "Status",
    shortname = "bk",
    category = "k8up",
    doc = "Backup is one restic backup run of the PVCs and annotated pods of a namespace.",
    printcolumn(
        name = "Schedule Ref",
        type_ = "string",
        json_path = r#".metadata.ownerReferences[?(@.kind == "Schedule")].name"#,
        description = "Reference to Schedule"
    ),
    printcolumn(
        name = "Completion",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type == "Completed")].reason"#,
        description = "Status of Completion"
    ),
    printcolumn(
        name = "PreBackup",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type == "PreBackupPodReady")].reason"#,
        description = "Status of PreBackupPods"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// Repository, resources, pod settings and plugin (K8up's inlined `RunnableSpec`).
    #[serde(flatten)]
    pub runnable: RunnableSpec,

    /// How many finished Backups to keep.
    #[serde(flatten)]
    pub history: HistoryLimits,

    /// Prometheus Pushgateway URL the backup job pushes metrics to (default: the operator's setting).
    #[serde(default, rename = "promURL", skip_serializing_if = "Option::is_none")]
    pub prom_url: Option<String>,

    /// Cluster name used as a Pushgateway grouping key (default: the operator's setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,

    /// URL the job posts a JSON summary of the snapshots to, in addition to the Pushgateway.
    #[serde(default, rename = "statsURL", skip_serializing_if = "Option::is_none")]
    pub stats_url: Option<String>,

    /// Tags added to every snapshot of this backup (restic `--tag`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,

    /// When set, only PVCs, PreBackupPods and annotated pods matching at least one of these selectors are
    /// backed up (the selectors are OR-ed; the terms inside one selector are AND-ed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selectors: Option<Vec<LabelSelector>>,
}
