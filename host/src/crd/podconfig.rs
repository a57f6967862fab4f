//! `PodConfig`: a pod template merged into the job pods of actions that reference it.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Pod settings for job pods, referenced by `podConfigRef`: non-empty fields of the template override the
/// job pod's (lists replaced, maps merged); the k8up container's name, image, command and arguments always
/// stay k8up's, and k8up's env, volumes and mounts are appended.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "k8up.io",
    version = "v1",
    kind = "PodConfig",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    shortname = "pc",
    category = "k8up",
    doc = "PodConfig is a pod template merged into the job pods of actions that reference it.",
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct PodConfigSpec {
    /// The pod template merged into job pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::preserve_unknown_object")]
    pub template: Option<PodTemplateSpec>,
}
