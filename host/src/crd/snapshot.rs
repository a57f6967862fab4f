//! `Snapshot`: a restic snapshot of a repository, mirrored into the namespace.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One restic snapshot, kept in sync with the repository by the operator after backups and prunes.
/// Named after the first 8 characters of the snapshot id.
// clippy reads the repeated `type_ = ...` inside separate `printcolumn(...)` groups as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "k8up.io",
    version = "v1",
    kind = "Snapshot",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    shortname = "snap",
    category = "k8up",
    doc = "Snapshot mirrors one restic snapshot of a repository.",
    printcolumn(
        name = "Date taken",
        type_ = "string",
        json_path = ".spec.date",
        format = "date-time"
    ),
    printcolumn(name = "Paths", type_ = "string", json_path = ".spec.paths[*]"),
    printcolumn(name = "Repository", type_ = "string", json_path = ".spec.repository")
)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotSpec {
    /// Full restic snapshot id (64 hex characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,

    /// When the snapshot was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<Time>,

    /// Paths in the snapshot, e.g. `/data/<pvc>` or `/<namespace>-<pod>-<container>.sql`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,

    /// The repository (restic `RESTIC_REPOSITORY` string, credentials left as `$(VAR)` placeholders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,

    /// Host name restic recorded (the namespace for PVC backups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,

    /// Tags of the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,

    /// For a backup of a command's output (stdin backup): number of bytes the command produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub dump_bytes: Option<i64>,

    /// For a backup of a command's output: SHA-256 (lowercase hex) of the bytes the command produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub dump_sha256: Option<String>,
}
