//! Deployments without ReplicaSets: one pod per replica, owned directly by the Deployment and
//! labelled with a `pod-template-hash`; pods of an older template are replaced all at once. The
//! status reports replicas/updated/ready/available and the Available and Progressing conditions,
//! including `ProgressDeadlineExceeded` when pods do not become ready in `progressDeadlineSeconds`.

use std::collections::HashMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{ControllerError, World, api_err, condition, controller_of, is_benign, pod_ready, pod_terminal};

/// Per Deployment: the counts last seen and when they last improved.
#[derive(Default)]
pub struct Memory {
    progress: HashMap<String, (Vec<i32>, Timestamp)>,
}

/// The hash labelling pods of the current template.
pub fn template_hash(d: &Deployment) -> String {
    let t = d
        .spec
        .as_ref()
        .map(|s| serde_json::to_vec(&s.template).unwrap_or_default())
        .unwrap_or_default();
    let digest = Sha256::digest(&t);
    hex::encode(&digest[..5])
}

fn max_unavailable(d: &Deployment, replicas: i32) -> i32 {
    let v = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.max_unavailable.clone())
        .unwrap_or(IntOrString::String("25%".into()));
    match v {
        IntOrString::Int(i) => i,
        IntOrString::String(s) => {
            let pct = s.trim_end_matches('%').parse::<i32>().unwrap_or(25);
            replicas * pct / 100
        }
    }
}

/// Reconciles every Deployment.
pub async fn reconcile(client: &Client, world: &World, mem: &mut Memory) -> Result<(), ControllerError> {
    for d in &world.deployments {
        if d.metadata.deletion_timestamp.is_some() {
            continue;
        }
        reconcile_one(client, world, mem, d).await?;
    }
    let live: Vec<String> = world
        .deployments
        .iter()
        .filter_map(|d| d.metadata.uid.clone())
        .collect();
    mem.progress.retain(|k, _| live.contains(k));
    Ok(())
}

async fn reconcile_one(
    client: &Client,
    world: &World,
    mem: &mut Memory,
    d: &Deployment,
) -> Result<(), ControllerError> {
    let ns = d.metadata.namespace.clone().unwrap_or_default();
    let name = d.metadata.name.clone().unwrap_or_default();
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let spec = d.spec.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1);
    let hash = template_hash(d);
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let owned: Vec<&Pod> = world
        .pods
        .iter()
        .filter(|p| {
            p.metadata.namespace.as_deref() == Some(&ns)
                && controller_of(&p.metadata).is_some_and(|o| o.uid == uid)
        })
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let is_current = |p: &Pod| {
        p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("pod-template-hash"))
            == Some(&hash)
    };
    let mut delete: Vec<&Pod> = owned
        .iter()
        .copied()
        .filter(|p| !is_current(p) || pod_terminal(p))
        .collect();
    let mut current: Vec<&Pod> = owned
        .iter()
        .copied()
        .filter(|p| is_current(p) && !pod_terminal(p))
        .collect();
    if current.len() as i32 > replicas {
        // Scale down: the not-ready and newest pods go first.
        current.sort_by_key(|p| {
            (
                !pod_ready(p),
                std::cmp::Reverse(p.metadata.creation_timestamp.clone().map(|t| t.0)),
            )
        });
        let extra = current.len() - replicas.max(0) as usize;
        delete.extend(current.drain(..extra));
    }
    for p in &delete {
        let pn = p.metadata.name.clone().unwrap_or_default();
        if let Err(e) = pods_api.delete(&pn, &DeleteParams::default()).await
            && !is_benign(&e)
        {
            return Err(api_err(format!("delete pod {ns}/{pn}"))(e));
        }
    }
    let missing = replicas - current.len() as i32;
    let template = spec.template.clone();
    for _ in 0..missing.max(0) {
        let mut meta = template.metadata.clone().unwrap_or_default();
        let mut labels = meta.labels.take().unwrap_or_default();
        labels.insert("pod-template-hash".into(), hash.clone());
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": format!("{name}-{hash}-"),
                "namespace": ns,
                "labels": labels,
                "annotations": meta.annotations,
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": uid,
                    "controller": true, "blockOwnerDeletion": true,
                }],
            },
            "spec": template.spec,
        }))
        .unwrap_or_default();
        pods_api
            .create(&PostParams::default(), &pod)
            .await
            .map_err(api_err(format!("create pod for deployment {ns}/{name}")))?;
    }

    // Status from what exists now (pods created above count from the next pass).
    let active = owned.iter().filter(|p| !pod_terminal(p)).count() as i32;
    let updated = current.len() as i32;
    let ready = owned.iter().filter(|p| !pod_terminal(p) && pod_ready(p)).count() as i32;
    let available = ready;
    let counts = vec![updated, ready, available, active];
    let now = Timestamp::now();
    let entry = mem.progress.entry(uid.clone()).or_insert((counts.clone(), now));
    if entry.0 != counts {
        *entry = (counts, now);
    }
    let complete = updated == replicas && available >= replicas && active == replicas;
    if complete {
        entry.1 = now;
    }
    let deadline = i64::from(spec.progress_deadline_seconds.unwrap_or(600));
    let stalled = !complete && now.duration_since(entry.1).as_secs() >= deadline;
    let prev = d
        .status
        .as_ref()
        .map(|s| serde_json::to_value(&s.conditions).unwrap_or_default());
    let min_available = replicas - max_unavailable(d, replicas);
    let avail_ok = available >= min_available;
    let rs_name = format!("{name}-{hash}");
    let progressing = if complete {
        condition(
            prev.as_ref(),
            "Progressing",
            true,
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
        )
    } else if stalled {
        condition(
            prev.as_ref(),
            "Progressing",
            false,
            "ProgressDeadlineExceeded",
            &format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
        )
    } else {
        condition(
            prev.as_ref(),
            "Progressing",
            true,
            "ReplicaSetUpdated",
            &format!("ReplicaSet \"{rs_name}\" is progressing."),
        )
    };
    let avail_cond = if avail_ok {
        condition(
            prev.as_ref(),
            "Available",
            true,
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        condition(
            prev.as_ref(),
            "Available",
            false,
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    let status = json!({ "status": {
        "observedGeneration": d.metadata.generation,
        "replicas": active,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": (replicas - available).max(0),
        "conditions": [avail_cond, progressing],
    }});
    let old = d
        .status
        .as_ref()
        .map(|s| serde_json::to_value(s).unwrap_or_default());
    if old.as_ref() != status.get("status") {
        let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
        if let Err(e) = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            && !is_benign(&e)
        {
            return Err(api_err(format!("update status of deployment {ns}/{name}"))(e));
        }
    }
    Ok(())
}
