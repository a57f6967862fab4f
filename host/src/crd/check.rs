//! `Check`: verify the integrity of a restic repository.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::runnable::{HistoryLimits, RunnableSpec};
use super::status::Status;

/// Run `restic check` on the repository, exclusively (no other job may use the repository meanwhile).
// clippy reads the repeated `type_ = ...` inside separate `printcolumn(...)` groups as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "k8up.io",
    version = "v1",
    kind = "Check",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    status = "Status",
    shortname = "chk",
    category = "k8up",
    doc = "Check verifies the integrity of a restic repository.",
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
pub struct CheckSpec {
    /// Repository, resources, pod settings and plugin (K8up's inlined `RunnableSpec`).
    #[serde(flatten)]
    pub runnable: RunnableSpec,

    /// How many finished Checks to keep.
    #[serde(flatten)]
    pub history: HistoryLimits,

    /// Prometheus Pushgateway URL the check job pushes metrics to (default: the operator's setting).
    #[serde(default, rename = "promURL", skip_serializing_if = "Option::is_none")]
    pub prom_url: Option<String>,

    /// Cluster name used as a Pushgateway grouping key (default: the operator's setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,

    /// k8up-rs extension: also read this part of the pack data (restic `check --read-data-subset`), e.g.
    /// `10%`, `1/5` or `500M`. Unset: only the repository structure is checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+/[0-9]+|[0-9]+(\.[0-9]+)?%|[0-9]+[KMGT]?)$"))]
    pub read_data_subset: Option<String>,
}
