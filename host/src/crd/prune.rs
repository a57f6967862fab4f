//! `Prune`: forget snapshots outside the retention policy and prune the repository.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::retention::RetentionPolicy;
use super::runnable::{HistoryLimits, RunnableSpec};
use super::status::Status;

/// Run `restic forget --prune` with a retention policy, exclusively on the repository.
// clippy reads the repeated `type_ = ...` inside separate `printcolumn(...)` groups as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "k8up.io",
    version = "v1",
    kind = "Prune",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    status = "Status",
    shortname = "prn",
    category = "k8up",
    doc = "Prune removes snapshots outside a retention policy from a restic repository.",
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
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct PruneSpec {
    /// Repository, resources, pod settings and plugin (K8up's inlined `RunnableSpec`).
    #[serde(flatten)]
    pub runnable: RunnableSpec,

    /// How many finished Prunes to keep.
    #[serde(flatten)]
    pub history: HistoryLimits,

    /// Which snapshots to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionPolicy>,
}
