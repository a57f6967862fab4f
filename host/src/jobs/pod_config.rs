//! The PodConfig merge (REFERENCE 1.9) and the assembly of the k8up container's env, volumes and mounts.
//!
//! Semantics: every field the PodConfig's pod spec sets (non-null, non-empty) overrides the Job pod's;
//! objects (maps, nested structs) are merged key by key, lists (tolerations, image pull secrets, …) are
//! replaced whole. The k8up container is merged field by field with the PodConfig's first container (so
//! a PodConfig that only adds an env var keeps the spec's resources and the secure security context),
//! further PodConfig containers run beside it, and the container's name, image, command and args stay
//! k8up's. k8up's env, `envFrom`, volumes and mounts are appended after the PodConfig's.
//!
//! Mount conflicts (K8up's duplicate-mountPath quirk, REFERENCE 9): a PodConfig mount at a scratch path
//! (`/tmp`, `/.cache`, the var dir) replaces k8up's emptyDir there; at any other path k8up mounts (data,
//! restore target, spec volumes) k8up's mount wins and the PodConfig's is dropped. A PodConfig volume whose
//! name k8up also uses is dropped in favour of k8up's. The PodConfig object's labels and annotations (and
//! its template's) are added to the pod template; the host's identity labels are set after them.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, PodSpec, Volume, VolumeMount};
use serde_json::Value;

use super::{OwnParts, container_security_context};
use crate::crd::PodConfig;

/// Labels and annotations the PodConfig adds to the pod template.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodMetadata {
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
}

/// Annotations of a PodConfig object that describe the object, not the pods (kubectl bookkeeping).
const SKIPPED_ANNOTATION_PREFIX: &str = "kubectl.kubernetes.io/";

/// Merges `pod_config` into `base` and appends k8up's own parts. `base` has exactly one container, the
/// k8up container, without env, `envFrom` or mounts.
pub fn assemble(base: PodSpec, own: OwnParts, pod_config: Option<&PodConfig>) -> (PodSpec, PodMetadata) {
    let template = pod_config.and_then(|pc| pc.spec.template.as_ref());
    let pc_spec = template.and_then(|t| t.spec.clone()).unwrap_or_default();
    let mut k8up = base.containers.first().cloned().unwrap_or_default();
    let mut pc_containers = pc_spec.containers.clone().into_iter();
    let pc_first = pc_containers.next().unwrap_or_default();
    let sidecars: Vec<Container> = pc_containers.collect();

    // The pod spec without containers and volumes, merged field-wise.
    let mut spec = merged(
        &PodSpec {
            containers: Vec::new(),
            ..base.clone()
        },
        &PodSpec {
            containers: Vec::new(),
            volumes: None,
            ..pc_spec.clone()
        },
    )
    .unwrap_or(PodSpec {
        containers: Vec::new(),
        ..base
    });

    // The k8up container: merged field-wise with the PodConfig's first container, identity forced.
    let pc_env = pc_first.env.clone().unwrap_or_default();
    let pc_env_from = pc_first.env_from.clone().unwrap_or_default();
    let pc_mounts = pc_first.volume_mounts.clone().unwrap_or_default();
    let stripped = Container {
        env: None,
        env_from: None,
        volume_mounts: None,
        ..pc_first
    };
    let (name, image, command, args) = (
        k8up.name.clone(),
        k8up.image.clone(),
        k8up.command.clone(),
        k8up.args.clone(),
    );
    k8up = merged(&k8up, &stripped).unwrap_or(k8up);
    k8up.name = name;
    k8up.image = image;
    k8up.command = command;
    k8up.args = args;
    if k8up.security_context.is_none() {
        k8up.security_context = Some(container_security_context());
    }

    // Env and envFrom: the PodConfig's first, k8up's after (later duplicates win in the kubelet).
    let OwnParts {
        env: own_env,
        env_from: own_env_from,
        scratch,
        mounts: own_mounts,
    } = own;
    let env: Vec<_> = pc_env.into_iter().chain(own_env).collect();
    let env_from: Vec<_> = pc_env_from.into_iter().chain(own_env_from).collect();
    k8up.env = Some(env).filter(|e| !e.is_empty());
    k8up.env_from = Some(env_from).filter(|e| !e.is_empty());

    let (volumes, mounts) = resolve_mounts(
        pc_spec.volumes.unwrap_or_default(),
        pc_mounts,
        scratch,
        own_mounts,
    );
    k8up.volume_mounts = Some(mounts).filter(|m| !m.is_empty());
    spec.volumes = Some(volumes).filter(|v| !v.is_empty());
    spec.containers = std::iter::once(k8up).chain(sidecars).collect();

    let mut metadata = PodMetadata::default();
    let object_meta = pod_config.map(|pc| &pc.metadata);
    for meta in [template.and_then(|t| t.metadata.as_ref()), object_meta]
        .into_iter()
        .flatten()
    {
        metadata.labels.extend(meta.labels.clone().unwrap_or_default());
        metadata.annotations.extend(
            meta.annotations
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| !k.starts_with(SKIPPED_ANNOTATION_PREFIX)),
        );
    }
    (spec, metadata)
}

/// PodConfig mounts first, then k8up's scratch mounts at paths the PodConfig leaves free, then k8up's other
/// mounts (which drop a PodConfig mount at the same path). Volumes likewise, k8up's names winning.
fn resolve_mounts(
    pc_volumes: Vec<Volume>,
    pc_mounts: Vec<VolumeMount>,
    scratch: Vec<(Volume, VolumeMount)>,
    (own_volumes, own_mounts): (Vec<Volume>, Vec<VolumeMount>),
) -> (Vec<Volume>, Vec<VolumeMount>) {
    let path = |m: &VolumeMount| m.mount_path.trim_end_matches('/').to_string();
    let own_paths: BTreeSet<String> = own_mounts.iter().map(path).collect();
    let pc_mounts: Vec<VolumeMount> = pc_mounts
        .into_iter()
        .filter(|m| !own_paths.contains(&path(m)))
        .collect();
    let pc_paths: BTreeSet<String> = pc_mounts.iter().map(path).collect();
    let scratch: Vec<(Volume, VolumeMount)> = scratch
        .into_iter()
        .filter(|(_, m)| !pc_paths.contains(&path(m)))
        .collect();
    let ours: Vec<Volume> = scratch
        .iter()
        .map(|(v, _)| v.clone())
        .chain(own_volumes)
        .collect();
    let our_names: BTreeSet<&str> = ours.iter().map(|v| v.name.as_str()).collect();
    let volumes: Vec<Volume> = pc_volumes
        .into_iter()
        .filter(|v| !our_names.contains(v.name.as_str()))
        .chain(ours.iter().cloned())
        .collect();
    let mounts = pc_mounts
        .into_iter()
        .chain(scratch.into_iter().map(|(_, m)| m))
        .chain(own_mounts)
        .collect();
    (volumes, mounts)
}

/// `base` with every non-empty field of `overlay` merged in (objects key by key, lists replaced). `None`
/// only if the result does not deserialize, which cannot happen for two values of the same type.
fn merged<T: serde::Serialize + serde::de::DeserializeOwned>(base: &T, overlay: &T) -> Option<T> {
    let mut value = serde_json::to_value(base).ok()?;
    merge(&mut value, &serde_json::to_value(overlay).ok()?);
    serde_json::from_value(value).ok()
}

fn merge(base: &mut Value, overlay: &Value) {
    let (Value::Object(base), Value::Object(overlay)) = (base, overlay) else {
        return;
    };
    for (key, value) in overlay {
        if is_empty(value) {
            continue;
        }
        match base.get_mut(key) {
            Some(existing) if existing.is_object() && value.is_object() => merge(existing, value),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Unset in the PodConfig's sense: null, the empty string, an empty list or object. `false` and `0` are
/// values (Kubernetes' optional booleans and numbers are explicit when present).
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}
