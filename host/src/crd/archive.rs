//! `Archive`: upload snapshots of a repository as tarballs to an S3 bucket.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::restore::RestoreSpec;
use super::status::Status;

/// Archive snapshots as `.tar.gz` files into the S3 bucket of `restoreMethod.s3`. Accepts every Restore
/// field, as K8up does; `tags` and `paths` select the snapshots, while `snapshot`, `restoreFilter`,
/// `restoreTimeFilter`, `delete` and `restoreMethod.folder` have no effect on an Archive.
// clippy reads the repeated `type_ = ...` inside separate `printcolumn(...)` groups as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "k8up.io",
    version = "v1",
    kind = "Archive",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    status = "Status",
    shortname = "arc",
    category = "k8up",
    doc = "Archive uploads restic snapshots as tarballs to an S3 bucket.",
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
pub struct ArchiveSpec {
    /// Every Restore field (K8up inlines the whole RestoreSpec).
    #[serde(flatten)]
    pub restore: RestoreSpec,

    /// k8up-rs extension: archive every snapshot. Default false: only the latest snapshot of each
    /// host and path (K8up archived every snapshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_snapshots: Option<bool>,
}
