//! `Restore`: restore a snapshot into a PVC or upload it as a tarball to S3.

use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, VolumeMount};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::backend::{S3Spec, TlsOptions};
use super::runnable::{HistoryLimits, RunnableSpec};
use super::status::Status;
use super::validation::ValidationError;

/// Restore one snapshot: into a PVC (`restoreMethod.folder`) or as a `.tar.gz` into an S3 bucket
/// (`restoreMethod.s3`).
// clippy reads the repeated `type_ = ...` inside separate `printcolumn(...)` groups as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "k8up.io",
    version = "v1",
    kind = "Restore",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    status = "Status",
    shortname = "rst",
    category = "k8up",
    doc = "Restore restores one restic snapshot into a PVC or uploads it as a tarball to S3.",
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
pub struct RestoreSpec {
    /// Repository, resources, pod settings and plugin (K8up's inlined `RunnableSpec`).
    #[serde(flatten)]
    pub runnable: RunnableSpec,

    /// How many finished Restores to keep.
    #[serde(flatten)]
    pub history: HistoryLimits,

    /// Where the snapshot goes: exactly one of `s3` or `folder`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_method: Option<RestoreMethod>,

    /// Restore only paths matching this pattern (restic `restore --include`; folder restores only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_filter: Option<String>,

    /// Pick the newest snapshot whose time, written `YYYY-MM-DD hh:mm:ss`, starts with this prefix
    /// (e.g. `2024-05-01`); the latest snapshot when none matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_time_filter: Option<String>,

    /// Snapshot id, or a unique prefix of it. Empty: the latest snapshot matching `tags` and `paths`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,

    /// Consider only snapshots with these tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,

    /// Consider only snapshots of these paths, e.g. `/data/<claimName>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,

    /// Delete files in the target that are not in the snapshot (restic `restore --delete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete: Option<bool>,
}

/// Where a restored snapshot goes. Exactly one of `s3` and `folder` must be set; the CRD enforces this with
/// a CEL rule and the operator checks it again with [`RestoreMethod::validate`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.s3) != has(self.folder)",
    "message": "set exactly one of s3 or folder",
}]))]
pub struct RestoreMethod {
    /// Upload the snapshot as a `.tar.gz` to this bucket (empty fields: the operator's global restore S3
    /// settings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Spec>,

    /// Restore the files into this PVC (mounted at `/restore` in the job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<PersistentVolumeClaimVolumeSource>,

    /// TLS files for the S3 target (paths inside the job pod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_options: Option<TlsOptions>,

    /// Extra mounts of the job container, e.g. certificates for the S3 target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_mounts: Option<Vec<VolumeMount>>,
}

/// The kind of restore target, derived from which field of [`RestoreMethod`] is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreTarget {
    /// Upload a tarball to S3.
    S3,
    /// Restore into a PVC.
    Folder,
}

impl RestoreMethod {
    /// Check the rule the CRD also states as CEL: exactly one of `s3` and `folder`.
    pub fn validate(&self) -> Result<RestoreTarget, ValidationError> {
        match (self.s3.is_some(), self.folder.is_some()) {
            (true, false) => Ok(RestoreTarget::S3),
            (false, true) => Ok(RestoreTarget::Folder),
            (false, false) => Err(ValidationError::NoRestoreMethod),
            (true, true) => Err(ValidationError::MultipleRestoreMethods),
        }
    }
}

impl RestoreSpec {
    /// The restore target of this spec: `restoreMethod` must be present and set exactly one of `s3` and
    /// `folder` (K8up crashed on a Restore without `restoreMethod`; the schema cannot require it because
    /// Archives and Schedules share this spec).
    pub fn target(&self) -> Result<RestoreTarget, ValidationError> {
        self.restore_method
            .as_ref()
            .ok_or(ValidationError::MissingRestoreMethod)?
            .validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_method_needs_exactly_one_target() {
        let folder = PersistentVolumeClaimVolumeSource {
            claim_name: "data".into(),
            read_only: None,
        };
        let mut method = RestoreMethod::default();
        assert_eq!(method.validate(), Err(ValidationError::NoRestoreMethod));
        method.folder = Some(folder);
        assert_eq!(method.validate(), Ok(RestoreTarget::Folder));
        method.s3 = Some(S3Spec::default());
        assert_eq!(method.validate(), Err(ValidationError::MultipleRestoreMethods));
        method.folder = None;
        assert_eq!(method.validate(), Ok(RestoreTarget::S3));
    }

    #[test]
    fn restore_method_messages_tell_the_user_what_to_set() {
        assert_eq!(
            ValidationError::NoRestoreMethod.to_string(),
            "restoreMethod sets neither s3 nor folder; set exactly one of them"
        );
        assert!(
            ValidationError::MultipleRestoreMethods
                .to_string()
                .contains("both s3 and folder")
        );
    }

    #[test]
    fn a_restore_without_restore_method_has_no_target() {
        assert_eq!(
            RestoreSpec::default().target(),
            Err(ValidationError::MissingRestoreMethod)
        );
        let spec = RestoreSpec {
            restore_method: Some(RestoreMethod {
                s3: Some(S3Spec::default()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(spec.target(), Ok(RestoreTarget::S3));
    }
}
