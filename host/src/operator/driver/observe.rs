//! Observe step: the only place the driver reads from the API server. Reads are direct (not from a cache)
//! so that a Job created a moment ago is always seen, which is what keeps Job creation idempotent.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ListParams;
use kube::{Api, Client};

use super::Error;
use super::status::{JobState, job_state};
use super::validate::{LABEL_K8UP_JOB, LABEL_OWNED_BY};
use crate::crd::{JobType, PodConfig, PreBackupPod, Snapshot};
use crate::operator::kinds::ActionKind;

/// What the driver read about one action.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Jobs labelled `k8up.io/owned-by=<type>_<name>`, sorted by name.
    pub jobs: Vec<Job>,
    /// PVCs of the namespace (Backup, before its Jobs exist); for a folder Restore, the PVC it restores into.
    pub pvcs: Vec<PersistentVolumeClaim>,
    /// PVs (for the node affinity of unmounted RWO PVCs; Backup, before its Jobs exist).
    pub pvs: Vec<PersistentVolume>,
    /// Pods of the namespace except those of k8up Jobs (label `k8upjob`) (Backup, before its Jobs exist).
    pub pods: Vec<Pod>,
    /// PreBackupPods of the namespace (Backup, before its Jobs exist).
    pub pre_backup_pods: Vec<PreBackupPod>,
    /// PreBackupPods of the namespace that are stored but do not decode (the CRD keeps the pod template's
    /// unknown fields): their metadata and where they do not fit.
    pub unreadable_pre_backup_pods: Vec<Unreadable>,
    /// The pre-backup Deployments of this Backup (label `k8up.io/ownerBackupUID`), not yet deleted.
    pub pre_backup_deployments: Vec<k8s_openapi::api::apps::v1::Deployment>,
    /// The PodConfig `spec.podConfigRef` names; `None` when unset or missing (ignored, as in K8up).
    pub pod_config: Option<PodConfig>,
    /// Termination messages of finished Jobs' containers (only when every Job finished): (job name,
    /// message).
    pub reports: Vec<(String, String)>,
    /// Snapshot resources of the namespace (read together with `reports`).
    pub snapshots: Vec<Snapshot>,
    /// Whether `reports` were read (every Job in `jobs` had finished).
    pub reports_read: bool,
}

/// A stored object that does not decode as its kind: its metadata and where it does not fit.
#[derive(Debug, Clone, Default)]
pub struct Unreadable {
    /// The object's metadata (which decodes whatever the spec holds).
    pub metadata: ObjectMeta,
    /// Where the object does not fit the typed model, and why.
    pub reason: String,
}

/// What the observe step should read besides the Jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wants {
    /// The action has not started: read what planning needs.
    pub plan_inputs: bool,
    /// The action has not finished: read reports once all Jobs are done.
    pub reports: bool,
}

fn read(what: &'static str) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Observe { what, source }
}

/// Lists `K` in `namespace`, decoding each object on its own: one stored object that does not decode is
/// left out (logged, and returned apart) instead of failing the whole list, so it cannot hold up every
/// other object of the namespace (its own controller, if it has one, reports it on the object, see
/// [`crate::operator::decoded`]).
async fn list_decoded<K>(
    client: &Client,
    namespace: &str,
    what: &'static str,
) -> Result<(Vec<K>, Vec<Unreadable>), Error>
where
    K: kube::Resource<DynamicType = ()> + serde::de::DeserializeOwned,
{
    let resource = kube::api::ApiResource::erase::<K>(&());
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let list = api.list(&ListParams::default()).await.map_err(read(what))?;
    let mut decoded = Vec::with_capacity(list.items.len());
    let mut unreadable = Vec::new();
    for object in list.items {
        match crate::operator::decoded::decode::<K>(&object) {
            Ok(k) => decoded.push(k),
            Err(reason) => {
                tracing::warn!(
                    kind = resource.kind,
                    namespace,
                    name = object.metadata.name.as_deref().unwrap_or_default(),
                    reason,
                    "left out an object that does not decode"
                );
                unreadable.push(Unreadable {
                    metadata: object.metadata,
                    reason,
                });
            }
        }
    }
    Ok((decoded, unreadable))
}

/// Reads the cluster state of `object`.
pub async fn observe<K: ActionKind>(client: &Client, object: &K, wants: Wants) -> Result<Observed, Error> {
    let namespace = object.meta().namespace.clone().unwrap_or_default();
    let name = object.meta().name.clone().unwrap_or_default();
    let owned_by = format!("{}_{}", K::JOB_TYPE.as_str(), name);
    let jobs_api: Api<Job> = Api::namespaced(client.clone(), &namespace);
    let mut jobs = jobs_api
        .list(&ListParams::default().labels(&format!("{LABEL_OWNED_BY}={owned_by}")))
        .await
        .map_err(read("jobs"))?
        .items;
    jobs.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut observed = Observed {
        jobs,
        ..Observed::default()
    };

    if K::JOB_TYPE == JobType::Backup
        && let Some(uid) = object.meta().uid.as_deref()
    {
        observed.pre_backup_deployments =
            Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), &namespace)
                .list(&ListParams::default().labels(&super::prebackup::owned_selector(uid)))
                .await
                .map_err(read("deployments"))?
                .items
                .into_iter()
                .filter(|d| d.metadata.deletion_timestamp.is_none())
                .collect();
    }

    if wants.plan_inputs {
        if K::OBSERVES_WORKLOADS {
            let lp = ListParams::default();
            observed.pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &namespace)
                .list(&lp)
                .await
                .map_err(read("persistentvolumeclaims"))?
                .items;
            observed.pvs = Api::<PersistentVolume>::all(client.clone())
                .list(&lp)
                .await
                .map_err(read("persistentvolumes"))?
                .items;
            // The pods of k8up's own Jobs are no workload to back up (and a namespace collects one per
            // action run): only the others are read.
            observed.pods = Api::<Pod>::namespaced(client.clone(), &namespace)
                .list(&ListParams::default().labels(&format!("!{LABEL_K8UP_JOB}")))
                .await
                .map_err(read("pods"))?
                .items;
            (observed.pre_backup_pods, observed.unreadable_pre_backup_pods) =
                list_decoded::<PreBackupPod>(client, &namespace, "prebackuppods").await?;
        } else if K::JOB_TYPE == JobType::Restore
            && let Some(claim) = restore_claim(&object.spec_json())
        {
            // A folder Restore mounts the one PVC it names: that PVC is its only candidate.
            observed.pvcs.extend(
                Api::<PersistentVolumeClaim>::namespaced(client.clone(), &namespace)
                    .get_opt(&claim)
                    .await
                    .map_err(read("persistentvolumeclaims"))?,
            );
        }
        if let Some(reference) = &object.runnable().pod_config_ref {
            observed.pod_config = Api::<PodConfig>::namespaced(client.clone(), &namespace)
                .get_opt(&reference.name)
                .await
                .map_err(read("podconfigs"))?;
        }
    }

    let all_done =
        !observed.jobs.is_empty() && observed.jobs.iter().all(|j| job_state(j) != JobState::Running);
    // Reports of every kind: a failed run's report says why, which the status quotes.
    if wants.reports && all_done {
        observed.reports_read = true;
        let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        for job in &observed.jobs {
            let job_name = job.metadata.name.clone().unwrap_or_default();
            let list = pods
                .list(&ListParams::default().labels(&format!("job-name={job_name}")))
                .await
                .map_err(read("pods of jobs"))?;
            observed.reports.extend(
                termination_messages(&list.items)
                    .into_iter()
                    .map(|m| (job_name.clone(), m)),
            );
        }
        if K::SYNCS_SNAPSHOTS && !observed.reports.is_empty() {
            observed.snapshots = Api::<Snapshot>::namespaced(client.clone(), &namespace)
                .list(&ListParams::default())
                .await
                .map_err(read("snapshots"))?
                .items;
        }
    }
    Ok(observed)
}

/// The PVC a folder Restore writes into (`spec.restoreMethod.folder.claimName`), if any.
pub fn restore_claim(spec: &serde_json::Value) -> Option<String> {
    let claim = spec.pointer("/restoreMethod/folder/claimName")?.as_str()?;
    (!claim.is_empty()).then(|| claim.to_string())
}

/// The non-empty termination messages of the terminated containers of `pods`, oldest pod first (a Job
/// may have retried: each attempt's report counts, because a failed attempt may have withdrawn snapshots).
pub fn termination_messages(pods: &[Pod]) -> Vec<String> {
    let mut pods: Vec<&Pod> = pods.iter().collect();
    pods.sort_by(|a, b| {
        a.metadata
            .creation_timestamp
            .cmp(&b.metadata.creation_timestamp)
            .then(a.metadata.name.cmp(&b.metadata.name))
    });
    pods.iter()
        .filter_map(|p| p.status.as_ref()?.container_statuses.as_ref())
        .flatten()
        .filter_map(|cs| {
            let terminated = cs
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .or_else(|| cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()))?;
            terminated.message.clone().filter(|m| !m.trim().is_empty())
        })
        .collect()
}

/// Reads the sibling facts of every object of kind `K` in `namespace` (for history cleanup).
pub async fn observe_siblings<K: ActionKind>(
    client: &Client,
    namespace: &str,
) -> Result<Vec<super::history::Sibling>, Error> {
    let (list, _) = list_decoded::<K>(client, namespace, "siblings").await?;
    Ok(list.iter().map(super::history::sibling).collect())
}
