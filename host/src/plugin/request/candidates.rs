//! Candidate PVCs and pods: what a plugin may mount or exec into, with the facts K8up's placement rules use
//! (REFERENCE 3.2): the *Running* non-k8up pod that mounts a PVC (its node and tolerations), the node of the
//! bound PV's `kubernetes.io/hostname` affinity, and the PreBackupPod a pod was started for.
//!
//! Backups offer the namespace's PVCs and pods, narrowed by `labelSelectors` when set; a folder Restore offers
//! the PVC it restores into; the other kinds offer nothing.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    PersistentVolume, PersistentVolumeClaim, Pod as K8sPod, Toleration as K8sToleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::super::types::{MountingPod, Pod, Pvc, Toleration};
use super::key_values;
use crate::crd::JobType;
use crate::operator::driver::observe::{Observed, restore_claim};
use crate::operator::driver::validate::{LABEL_K8UP_JOB, ValidatedAction};

/// Label of pods started for a PreBackupPod (value: the PreBackupPod's name).
pub const LABEL_PRE_BACKUP_POD: &str = "k8up.io/preBackupPod";
/// Label of pods started for a PreBackupPod: the UID of the Backup they were started for.
pub const LABEL_OWNER_BACKUP_UID: &str = "k8up.io/ownerBackupUID";
/// The node label K8up reads from a PV's node affinity.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// The PVCs `action` may mount, sorted by name.
pub fn candidate_pvcs(action: &ValidatedAction, observed: &Observed) -> Vec<Pvc> {
    let wanted: Box<dyn Fn(&PersistentVolumeClaim) -> bool> = match action.job_type {
        JobType::Backup => {
            let selectors = label_selectors(action);
            Box::new(move |pvc| any_matches(&selectors, pvc.metadata.labels.as_ref()))
        }
        JobType::Restore => {
            let claim = restore_claim(&action.spec);
            Box::new(move |pvc| claim.is_some() && pvc.metadata.name == claim)
        }
        JobType::Archive | JobType::Check | JobType::Prune => return Vec::new(),
    };
    let mounts = mounting_pods(&observed.pods);
    let mut pvcs: Vec<Pvc> = observed
        .pvcs
        .iter()
        .filter(|pvc| wanted(pvc))
        .map(|pvc| {
            let name = pvc.metadata.name.clone().unwrap_or_default();
            Pvc {
                mounted_by: mounts.get(&name).cloned(),
                pv_node: pv_node(pvc, &observed.pvs),
                phase: pvc
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_else(|| "Pending".to_string()),
                access_modes: pvc
                    .spec
                    .as_ref()
                    .and_then(|s| s.access_modes.clone())
                    .unwrap_or_default(),
                labels: key_values(&pvc.metadata.labels.clone().unwrap_or_default()),
                annotations: key_values(&pvc.metadata.annotations.clone().unwrap_or_default()),
                name,
            }
        })
        .collect();
    pvcs.sort_by(|a, b| a.name.cmp(&b.name));
    pvcs
}

/// The pods a Backup may exec into, sorted by name: pods matching `labelSelectors` (all when unset) and the
/// pods started for this Backup's PreBackupPods. k8up's own Job pods and pods started for another Backup's
/// PreBackupPods are never offered.
pub fn candidate_pods(action: &ValidatedAction, observed: &Observed) -> Vec<Pod> {
    if action.job_type != JobType::Backup {
        return Vec::new();
    }
    let selectors = label_selectors(action);
    let mut pods: Vec<Pod> = observed
        .pods
        .iter()
        .filter(|pod| {
            let labels = pod.metadata.labels.as_ref();
            let label = |key: &str| labels.and_then(|l| l.get(key));
            if label(LABEL_K8UP_JOB).is_some() {
                return false;
            }
            match label(LABEL_OWNER_BACKUP_UID) {
                Some(uid) if *uid != action.uid => false,
                Some(_) => true,
                None => any_matches(&selectors, labels),
            }
        })
        .map(pod_record)
        .collect();
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    pods
}

fn pod_record(pod: &K8sPod) -> Pod {
    let meta = &pod.metadata;
    let labels = meta.labels.clone().unwrap_or_default();
    Pod {
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        phase: pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Pending".to_string()),
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        pre_backup_pod: labels.get(LABEL_PRE_BACKUP_POD).cloned(),
        labels: key_values(&labels),
        annotations: key_values(&meta.annotations.clone().unwrap_or_default()),
        containers: pod
            .spec
            .as_ref()
            .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default(),
        owner_uid: meta
            .owner_references
            .as_ref()
            .and_then(|refs| refs.first())
            .map(|r| r.uid.clone()),
    }
}

/// For every PVC mounted by a Running pod that is not a k8up Job pod: that pod (K8up: the last one listed
/// wins; pods are visited in name order, so the result does not depend on the API server's order).
fn mounting_pods(pods: &[K8sPod]) -> BTreeMap<String, MountingPod> {
    let mut sorted: Vec<&K8sPod> = pods.iter().collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut mounts = BTreeMap::new();
    for pod in sorted {
        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        let ours = pod
            .metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(LABEL_K8UP_JOB));
        let Some(spec) = pod.spec.as_ref().filter(|_| running && !ours) else {
            continue;
        };
        let mounting = MountingPod {
            name: pod.metadata.name.clone().unwrap_or_default(),
            node: spec.node_name.clone().unwrap_or_default(),
            tolerations: spec
                .tolerations
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(toleration)
                .collect(),
        };
        for volume in spec.volumes.as_deref().unwrap_or_default() {
            if let Some(claim) = &volume.persistent_volume_claim {
                mounts.insert(claim.claim_name.clone(), mounting.clone());
            }
        }
    }
    mounts
}

/// The contract's shape of a toleration.
pub fn toleration(t: &K8sToleration) -> Toleration {
    Toleration {
        key: t.key.clone(),
        operator: t.operator.clone(),
        value: t.value.clone(),
        effect: t.effect.clone(),
        toleration_seconds: t.toleration_seconds,
    }
}

/// The node of the bound PV's required node affinity term `kubernetes.io/hostname In [node, …]`.
fn pv_node(pvc: &PersistentVolumeClaim, pvs: &[PersistentVolume]) -> Option<String> {
    let volume = pvc.spec.as_ref()?.volume_name.as_deref()?;
    let pv = pvs
        .iter()
        .find(|pv| pv.metadata.name.as_deref() == Some(volume))?;
    let terms = &pv
        .spec
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required
        .as_ref()?
        .node_selector_terms;
    terms
        .iter()
        .flat_map(|term| term.match_expressions.as_deref().unwrap_or_default())
        .find(|e| e.key == HOSTNAME_LABEL && e.operator == "In")
        .and_then(|e| e.values.as_ref()?.first().cloned())
}

/// The Backup's `labelSelectors` (empty for other kinds or when unset).
pub fn label_selectors(action: &ValidatedAction) -> Vec<LabelSelector> {
    action
        .spec
        .get("labelSelectors")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// K8up's rule for `labelSelectors`: none selects everything, otherwise any selector may match (OR), and
/// all terms of one selector must match (AND).
pub fn any_matches(selectors: &[LabelSelector], labels: Option<&BTreeMap<String, String>>) -> bool {
    selectors.is_empty() || selectors.iter().any(|s| matches(s, labels))
}

/// Kubernetes label-selector semantics; an unknown operator matches nothing (the API server would have
/// refused it).
pub fn matches(selector: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let get = |key: &str| labels.and_then(|l| l.get(key));
    let by_label = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| get(k) == Some(v));
    let by_expression = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    by_label && by_expression
}
