//! The scheduler: gives each unscheduled pod a `spec.nodeName` that satisfies its `nodeSelector`, its
//! required node affinity and the node affinity of the PVs behind its PVCs; among those, the node
//! running the fewest pods (ties by name), so placement is deterministic.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PersistentVolume, Pod, PodSpec,
};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use super::{ControllerError, World, api_err, is_benign, pod_terminal};

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&String>) -> bool {
    let values = r.values.clone().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if r.operator == "Gt" { v > bound } else { v < bound }
        }
        _ => false,
    }
}

fn term_matches(t: &NodeSelectorTerm, node: &Node) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let name = node.metadata.name.clone().unwrap_or_default();
    let exprs = t
        .match_expressions
        .iter()
        .flatten()
        .all(|r| requirement_matches(r, labels.get(&r.key)));
    let fields = t
        .match_fields
        .iter()
        .flatten()
        .all(|r| r.key == "metadata.name" && requirement_matches(r, Some(&name)));
    // An empty term matches nothing, as in Kubernetes.
    let empty = t.match_expressions.as_ref().is_none_or(|v| v.is_empty())
        && t.match_fields.as_ref().is_none_or(|v| v.is_empty());
    !empty && exprs && fields
}

/// Whether `node` satisfies a required node selector (terms are ORed).
pub fn selector_matches(s: &NodeSelector, node: &Node) -> bool {
    s.node_selector_terms.iter().any(|t| term_matches(t, node))
}

/// Whether `node` satisfies the pod's own placement rules (nodeSelector and required affinity).
pub fn pod_fits(spec: &PodSpec, node: &Node) -> bool {
    let labels: BTreeMap<String, String> = node.metadata.labels.clone().unwrap_or_default();
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let affinity_ok = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| na.required_during_scheduling_ignored_during_execution.as_ref())
        .is_none_or(|s| selector_matches(s, node));
    selector_ok && affinity_ok
}

/// The PVs behind a pod's PVCs, or the name of the first PVC that is missing or unbound.
fn pod_pvs<'a>(pod: &Pod, world: &'a World) -> Result<Vec<&'a PersistentVolume>, String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut out = Vec::new();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let Some(c) = &v.persistent_volume_claim else {
            continue;
        };
        let pvc = world
            .pvcs
            .iter()
            .find(|p| {
                p.metadata.namespace.as_deref() == Some(&ns)
                    && p.metadata.name.as_deref() == Some(&c.claim_name)
            })
            .ok_or_else(|| format!("persistentvolumeclaim \"{}\" not found", c.claim_name))?;
        let vn = pvc
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .unwrap_or_default();
        let pv = world
            .pvs
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(vn.as_str()))
            .ok_or_else(|| {
                format!(
                    "pod has unbound immediate PersistentVolumeClaims ({})",
                    c.claim_name
                )
            })?;
        out.push(pv);
    }
    Ok(out)
}

/// The nodes a pod may run on, sorted by preference; or why there are none.
pub(crate) fn candidates<'a>(pod: &Pod, world: &'a World) -> Result<Vec<&'a Node>, String> {
    let spec = pod.spec.clone().unwrap_or_default();
    let pvs = pod_pvs(pod, world)?;
    let mut nodes: Vec<&Node> = world
        .nodes
        .iter()
        .filter(|n| pod_fits(&spec, n))
        .filter(|n| {
            pvs.iter().all(|pv| {
                pv.spec
                    .as_ref()
                    .and_then(|s| s.node_affinity.as_ref())
                    .and_then(|a| a.required.as_ref())
                    .is_none_or(|s| selector_matches(s, n))
            })
        })
        .collect();
    if nodes.is_empty() {
        return Err(format!(
            "0/{} nodes are available: none matches the pod's node selector, affinity or volume node affinity",
            world.nodes.len()
        ));
    }
    let load = |n: &Node| {
        world
            .pods
            .iter()
            .filter(|p| {
                !pod_terminal(p)
                    && p.spec.as_ref().and_then(|s| s.node_name.as_ref()) == n.metadata.name.as_ref()
            })
            .count()
    };
    nodes.sort_by_key(|n| (load(n), n.metadata.name.clone()));
    Ok(nodes)
}

/// Schedules every pending pod.
pub async fn reconcile(client: &Client, world: &World) -> Result<(), ControllerError> {
    for pod in &world.pods {
        let spec = pod.spec.clone().unwrap_or_default();
        if spec.node_name.as_ref().is_some_and(|n| !n.is_empty())
            || pod.metadata.deletion_timestamp.is_some()
            || pod_terminal(pod)
        {
            continue;
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        match candidates(pod, world) {
            Ok(nodes) => {
                let Some(node) = nodes.first().and_then(|n| n.metadata.name.clone()) else {
                    continue;
                };
                let patch = json!({ "spec": { "nodeName": node } });
                if let Err(e) = api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    && !is_benign(&e)
                {
                    return Err(api_err(format!("bind pod {ns}/{name} to {node}"))(e));
                }
            }
            Err(why) => {
                let already = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c.type_ == "PodScheduled" && c.message.as_deref() == Some(why.as_str()))
                    });
                if already {
                    continue;
                }
                let patch = json!({ "status": { "phase": "Pending", "conditions": [{
                    "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": why,
                    "lastTransitionTime": super::now_json(),
                }]}});
                if let Err(e) = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    && !is_benign(&e)
                {
                    return Err(api_err(format!("report pod {ns}/{name} unschedulable"))(e));
                }
            }
        }
    }
    Ok(())
}
