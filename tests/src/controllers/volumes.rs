//! PVC binding, like a local-path provisioner: a pending PVC binds to a matching Available PV (or the
//! one it names), otherwise a new PV backed by a local directory is provisioned for it. RWO volumes
//! live on one node (`nodeAffinity.required` on `kubernetes.io/hostname`), RWX volumes on all. PVs
//! whose claim is gone are deleted with their directory (`Delete`) or marked `Released` (`Retain`).

use std::collections::HashSet;
use std::path::Path;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use super::nodes::HOSTNAME_LABEL;
use super::{ControllerConfig, ControllerError, World, api_err, is_benign};

/// Storage class given to provisioned PVs when the claim names none.
pub const DEFAULT_STORAGE_CLASS: &str = "standard";

fn is_rwx(modes: &[String]) -> bool {
    modes.iter().any(|m| m == "ReadWriteMany" || m == "ReadOnlyMany")
}

fn pv_phase(pv: &PersistentVolume) -> &str {
    pv.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Available")
}

/// The node a new RWO volume goes to: one that suits a pending pod using the claim if there is one,
/// else the node holding the fewest local volumes (ties by name).
fn choose_node(pvc: &PersistentVolumeClaim, world: &World) -> Option<String> {
    if let Some(n) = pvc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("volume.kubernetes.io/selected-node"))
    {
        return Some(n.clone());
    }
    let ns = pvc.metadata.namespace.as_deref();
    let claim = pvc.metadata.name.as_deref();
    let consumer: Option<&Pod> = world.pods.iter().find(|p| {
        p.metadata.namespace.as_deref() == ns
            && p.spec
                .iter()
                .flat_map(|s| s.volumes.iter().flatten())
                .any(|v| v.persistent_volume_claim.as_ref().map(|c| c.claim_name.as_str()) == claim)
    });
    let mut nodes: Vec<&k8s_openapi::api::core::v1::Node> = world
        .nodes
        .iter()
        .filter(|n| match consumer {
            Some(p) => {
                let spec = p.spec.clone().unwrap_or_default();
                match spec.node_name.as_ref().filter(|s| !s.is_empty()) {
                    Some(bound) => n.metadata.name.as_ref() == Some(bound),
                    None => super::scheduler::pod_fits(&spec, n),
                }
            }
            None => true,
        })
        .collect();
    let load = |n: &k8s_openapi::api::core::v1::Node| {
        world
            .pvs
            .iter()
            .filter(|pv| {
                pv.spec
                    .as_ref()
                    .and_then(|s| s.node_affinity.as_ref())
                    .and_then(|a| a.required.as_ref())
                    .is_some_and(|s| super::scheduler::selector_matches(s, n))
            })
            .count()
    };
    nodes.sort_by_key(|n| (load(n), n.metadata.name.clone()));
    nodes.first().and_then(|n| n.metadata.name.clone())
}

fn matches_claim(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> bool {
    let spec = pv.spec.clone().unwrap_or_default();
    let cspec = pvc.spec.clone().unwrap_or_default();
    if pv_phase(pv) != "Available" {
        return false;
    }
    if let Some(r) = &spec.claim_ref
        && (r.name.as_deref() != pvc.metadata.name.as_deref()
            || r.namespace.as_deref() != pvc.metadata.namespace.as_deref())
    {
        return false;
    }
    let want_class = cspec.storage_class_name.clone().unwrap_or_default();
    let have_class = spec.storage_class_name.clone().unwrap_or_default();
    let modes = spec.access_modes.clone().unwrap_or_default();
    want_class == have_class && cspec.access_modes.iter().flatten().all(|m| modes.contains(m))
}

/// Binds and provisions PVCs, and reclaims PVs whose claim is gone.
pub async fn reconcile(
    client: &Client,
    cfg: &ControllerConfig,
    world: &World,
) -> Result<(), ControllerError> {
    let pvs_api: Api<PersistentVolume> = Api::all(client.clone());
    let live: HashSet<String> = world.pvcs.iter().filter_map(|p| p.metadata.uid.clone()).collect();
    for pvc in &world.pvcs {
        let ns = pvc.metadata.namespace.clone().unwrap_or_default();
        let name = pvc.metadata.name.clone().unwrap_or_default();
        let uid = pvc.metadata.uid.clone().unwrap_or_default();
        let phase = pvc
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("Pending");
        if pvc.metadata.deletion_timestamp.is_some() || phase == "Bound" {
            continue;
        }
        let cspec = pvc.spec.clone().unwrap_or_default();
        let named = cspec.volume_name.clone().filter(|n| !n.is_empty());
        let existing = match &named {
            Some(n) => world
                .pvs
                .iter()
                .find(|pv| pv.metadata.name.as_deref() == Some(n.as_str())),
            None => world.pvs.iter().find(|pv| matches_claim(pv, pvc)),
        };
        let pv_name = match (existing, named) {
            (Some(pv), _) => pv.metadata.name.clone().unwrap_or_default(),
            // The claim names a PV that does not exist (yet): wait for it, as Kubernetes does.
            (None, Some(_)) => continue,
            (None, None) => match provision(&pvs_api, cfg, world, pvc).await? {
                Some(n) => n,
                None => continue,
            },
        };
        let claim_ref = json!({ "apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": ns, "name": name, "uid": uid });
        if let Err(e) = pvs_api
            .patch(
                &pv_name,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "spec": { "claimRef": claim_ref } })),
            )
            .await
            && !is_benign(&e)
        {
            return Err(api_err(format!("claim persistentvolume {pv_name}"))(e));
        }
        if let Err(e) = pvs_api
            .patch_status(
                &pv_name,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "status": { "phase": "Bound" } })),
            )
            .await
            && !is_benign(&e)
        {
            return Err(api_err(format!("mark persistentvolume {pv_name} bound"))(e));
        }
        let pv = pvs_api
            .get(&pv_name)
            .await
            .map_err(api_err(format!("get persistentvolume {pv_name}")))?;
        let pspec = pv.spec.unwrap_or_default();
        let pvcs_api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
        let spec_patch = json!({
            "metadata": { "annotations": { "pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes" } },
            "spec": { "volumeName": pv_name },
        });
        let status_patch = json!({ "status": { "phase": "Bound", "accessModes": pspec.access_modes, "capacity": pspec.capacity } });
        if let Err(e) = pvcs_api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&spec_patch))
            .await
            && !is_benign(&e)
        {
            return Err(api_err(format!("bind persistentvolumeclaim {ns}/{name}"))(e));
        }
        if let Err(e) = pvcs_api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status_patch))
            .await
            && !is_benign(&e)
        {
            return Err(api_err(format!("mark persistentvolumeclaim {ns}/{name} bound"))(
                e,
            ));
        }
    }
    for pv in &world.pvs {
        let spec = pv.spec.clone().unwrap_or_default();
        let Some(claim_uid) = spec.claim_ref.as_ref().and_then(|r| r.uid.clone()) else {
            continue;
        };
        if live.contains(&claim_uid) || pv.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let pv_name = pv.metadata.name.clone().unwrap_or_default();
        if spec.persistent_volume_reclaim_policy.as_deref() == Some("Delete") {
            let path = spec.local.map(|l| l.path).or(spec.host_path.map(|h| h.path));
            // Only directories this provisioner made are removed.
            if let Some(p) = path.filter(|p| Path::new(p).starts_with(&cfg.volumes_dir)) {
                let _ = std::fs::remove_dir_all(p);
            }
            if let Err(e) = pvs_api.delete(&pv_name, &DeleteParams::default()).await
                && !is_benign(&e)
            {
                return Err(api_err(format!("delete persistentvolume {pv_name}"))(e));
            }
        } else if pv_phase(pv) != "Released" {
            let _ = pvs_api
                .patch_status(
                    &pv_name,
                    &PatchParams::default(),
                    &Patch::Merge(&json!({ "status": { "phase": "Released" } })),
                )
                .await;
        }
    }
    Ok(())
}

async fn provision(
    api: &Api<PersistentVolume>,
    cfg: &ControllerConfig,
    world: &World,
    pvc: &PersistentVolumeClaim,
) -> Result<Option<String>, ControllerError> {
    let cspec = pvc.spec.clone().unwrap_or_default();
    let modes = cspec
        .access_modes
        .clone()
        .unwrap_or_else(|| vec!["ReadWriteOnce".into()]);
    let uid = pvc.metadata.uid.clone().unwrap_or_default();
    let pv_name = format!("pvc-{uid}");
    let storage = cspec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .map(|q| q.0.clone())
        .unwrap_or_else(|| "1Gi".into());
    let class = cspec
        .storage_class_name
        .clone()
        .unwrap_or_else(|| DEFAULT_STORAGE_CLASS.into());
    let (dir, source) = if is_rwx(&modes) {
        let dir = cfg.volumes_dir.join("shared").join(&pv_name);
        (
            dir.clone(),
            json!({ "hostPath": { "path": dir, "type": "DirectoryOrCreate" } }),
        )
    } else {
        let Some(node) = choose_node(pvc, world) else {
            return Ok(None);
        };
        let dir = cfg.volumes_dir.join(&node).join(&pv_name);
        let source = json!({
            "local": { "path": dir },
            "nodeAffinity": { "required": { "nodeSelectorTerms": [{ "matchExpressions": [{
                "key": HOSTNAME_LABEL, "operator": "In", "values": [node],
            }]}]}},
        });
        (dir, source)
    };
    std::fs::create_dir_all(&dir).map_err(|source| ControllerError::VolumeDir {
        path: dir.clone(),
        source,
    })?;
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777));
    }
    let mut spec = json!({
        "capacity": { "storage": storage },
        "accessModes": modes,
        "persistentVolumeReclaimPolicy": "Delete",
        "storageClassName": class,
        "volumeMode": "Filesystem",
    });
    if let (Some(s), Some(src)) = (spec.as_object_mut(), source.as_object()) {
        s.extend(src.clone());
    }
    let pv: PersistentVolume = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": { "name": pv_name, "annotations": { "pv.kubernetes.io/provisioned-by": "sandbox.k8up.io/local-path" } },
        "spec": spec,
    }))
    .unwrap_or_default();
    match api.create(&PostParams::default(), &pv).await {
        Ok(_) => Ok(Some(pv_name)),
        Err(e) if is_benign(&e) => Ok(Some(pv_name)),
        Err(e) => Err(api_err(format!("create persistentvolume {pv_name}"))(e)),
    }
}
