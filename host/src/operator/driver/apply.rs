//! Apply step: the driver's writes besides the status. Jobs are created (never patched: a Job's pod
//! template is immutable) with deterministic names; a `409 AlreadyExists` means an earlier attempt or an
//! earlier operator process created it, so the existing Job is read and used. The executor ServiceAccount
//! and RoleBinding are server-side applied with the operator's field manager.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::{Api, Client};

use super::Error;
use super::validate::{LABEL_K8UP_JOB, LABEL_REPOSITORY_HASH, ValidatedAction};
use crate::crd::Snapshot;
use crate::operator::snapshots::SnapshotChanges;

/// The field manager of every write of the operator.
pub const FIELD_MANAGER: &str = "k8up-operator";
/// The ClusterRole the executor RoleBinding grants (installed by the Helm chart).
pub const EXECUTOR_CLUSTER_ROLE: &str = "k8up-executor";

/// Gives a planned Job what the driver relies on: namespace, controller owner reference and identity labels
/// (on the Job and its pods). Pure.
pub fn finish_job(action: &ValidatedAction, mut job: Job) -> Job {
    job.metadata.namespace = Some(action.namespace.clone());
    job.metadata.owner_references = Some(vec![action.owner.clone()]);
    let mut labels = job.metadata.labels.take().unwrap_or_default();
    labels.extend(action.identity_labels());
    labels
        .entry(LABEL_REPOSITORY_HASH.to_string())
        .or_insert_with(|| action.repository_hash());
    job.metadata.labels = Some(labels);
    if let Some(spec) = job.spec.as_mut() {
        let meta = spec.template.metadata.get_or_insert_with(ObjectMeta::default);
        meta.labels
            .get_or_insert_with(Default::default)
            .insert(LABEL_K8UP_JOB.to_string(), "true".to_string());
    }
    job
}

/// How long the later Jobs of an action wait for the first one to initialise a new repository.
pub const AWAIT_REPOSITORY: &str = "10m";

/// For several Jobs started together on a repository not known to exist: every Job after the first waits
/// for the repository to appear (`K8UP_AWAIT_REPOSITORY`, read by `k8up restic`) instead of initialising it
/// too, since concurrent `restic init` runs can leave a new repository with keys but no config. Pure.
pub fn await_repository(jobs: &mut [Job]) {
    use k8s_openapi::api::core::v1::EnvVar;
    for job in jobs.iter_mut().skip(1) {
        let Some(spec) = job.spec.as_mut().and_then(|s| s.template.spec.as_mut()) else {
            continue;
        };
        for container in &mut spec.containers {
            let env = container.env.get_or_insert_with(Vec::new);
            if !env.iter().any(|e| e.name == "K8UP_AWAIT_REPOSITORY") {
                // First: K8up's convention keeps RESTIC_REPOSITORY the last variable.
                env.insert(
                    0,
                    EnvVar {
                        name: "K8UP_AWAIT_REPOSITORY".into(),
                        value: Some(AWAIT_REPOSITORY.into()),
                        value_from: None,
                    },
                );
            }
        }
    }
}

/// Creates each Job unless it exists; returns the Jobs as stored. A same-named Job that belongs to another
/// object is an error (never adopted).
pub async fn create_jobs(
    client: &Client,
    action: &ValidatedAction,
    jobs: Vec<Job>,
) -> Result<Vec<Job>, Error> {
    let api: Api<Job> = Api::namespaced(client.clone(), &action.namespace);
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PostParams::default()
    };
    let mut stored = Vec::with_capacity(jobs.len());
    for job in jobs {
        let job = finish_job(action, job);
        let name = job.metadata.name.clone().unwrap_or_default();
        match api.create(&pp, &job).await {
            Ok(created) => stored.push(created),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let existing = api.get(&name).await.map_err(|source| Error::ApplyJob {
                    name: name.clone(),
                    source,
                })?;
                let ours = existing
                    .metadata
                    .owner_references
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .any(|r| r.uid == action.uid);
                if !ours {
                    return Err(Error::JobConflict { name });
                }
                stored.push(existing);
            }
            Err(source) => return Err(Error::ApplyJob { name, source }),
        }
    }
    Ok(stored)
}

/// Server-side applies the executor ServiceAccount and its RoleBinding to the `k8up-executor` ClusterRole
/// in the action's namespace (K8up's `pod-executor` design: the Job may read pods and exec, nothing more).
pub async fn ensure_executor(client: &Client, action: &ValidatedAction) -> Result<(), Error> {
    let jobs = &action.settings.jobs;
    let ns = &action.namespace;
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(jobs.pod_exec_account_name.clone()),
            namespace: Some(ns.clone()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    let err = |source| Error::EnsureExecutor { source };
    let mut account_json = serde_json::to_value(&account).map_err(|e| err(kube::Error::SerdeError(e)))?;
    account_json["apiVersion"] = "v1".into();
    account_json["kind"] = "ServiceAccount".into();
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .patch(&jobs.pod_exec_account_name, &pp, &Patch::Apply(account_json))
        .await
        .map_err(err)?;
    let binding_name = format!("{}-namespaced", jobs.pod_exec_role_name);
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some(binding_name.clone()),
            namespace: Some(ns.clone()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: EXECUTOR_CLUSTER_ROLE.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: jobs.pod_exec_account_name.clone(),
            namespace: Some(ns.clone()),
            api_group: None,
        }]),
    };
    let mut binding_json = serde_json::to_value(&binding).map_err(|e| err(kube::Error::SerdeError(e)))?;
    binding_json["apiVersion"] = "rbac.authorization.k8s.io/v1".into();
    binding_json["kind"] = "RoleBinding".into();
    Api::<RoleBinding>::namespaced(client.clone(), ns)
        .patch(&binding_name, &pp, &Patch::Apply(binding_json))
        .await
        .map_err(err)?;
    Ok(())
}

/// Creates and deletes Snapshot resources; an existing resource (409) or an already deleted one (404) is
/// fine, so a repeated sync converges.
pub async fn apply_snapshots(
    client: &Client,
    namespace: &str,
    changes: &SnapshotChanges,
) -> Result<(), Error> {
    let api: Api<Snapshot> = Api::namespaced(client.clone(), namespace);
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PostParams::default()
    };
    for snapshot in &changes.create {
        match api.create(&pp, snapshot).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(source) => return Err(Error::SyncSnapshots { source }),
        }
    }
    for name in &changes.delete {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(source) => return Err(Error::SyncSnapshots { source }),
        }
    }
    Ok(())
}

/// Deletes the named objects of kind `K` with foreground propagation (their Jobs and pods go first).
/// Already-deleted objects count as deleted.
pub async fn delete_objects<K>(client: &Client, namespace: &str, names: &[String]) -> Result<usize, Error>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        ..DeleteParams::default()
    };
    let mut deleted = 0;
    for name in names {
        match api.delete(name, &dp).await {
            Ok(_) => deleted += 1,
            Err(kube::Error::Api(s)) if s.code == 404 => deleted += 1,
            Err(source) => {
                return Err(Error::Cleanup {
                    name: name.clone(),
                    source,
                });
            }
        }
    }
    Ok(deleted)
}

/// Creates the pre-backup Deployments of `chosen` that do not exist yet (a 409 means a retry made it).
pub async fn ensure_pre_backup_deployments(
    client: &Client,
    action: &ValidatedAction,
    chosen: &[&crate::crd::PreBackupPod],
    existing: &[k8s_openapi::api::apps::v1::Deployment],
) -> Result<(), Error> {
    let api: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), &action.namespace);
    for pre_backup_pod in chosen {
        let deployment = super::prebackup::deployment(action, pre_backup_pod);
        let name = deployment.metadata.name.clone().unwrap_or_default();
        if existing
            .iter()
            .any(|d| d.metadata.name.as_deref() == Some(name.as_str()))
        {
            continue;
        }
        match api.create(&PostParams::default(), &deployment).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(source) => {
                return Err(Error::PreBackup {
                    verb: "create",
                    name,
                    source,
                });
            }
        }
    }
    Ok(())
}

/// Deletes pre-backup Deployments (foreground: their pods go first).
pub async fn delete_pre_backup_deployments(
    client: &Client,
    namespace: &str,
    deployments: &[k8s_openapi::api::apps::v1::Deployment],
) -> Result<(), Error> {
    let api: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), namespace);
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        ..DeleteParams::default()
    };
    for d in deployments {
        let name = d.metadata.name.clone().unwrap_or_default();
        match api.delete(&name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(source) => {
                return Err(Error::PreBackup {
                    verb: "delete",
                    name,
                    source,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_but_the_first_waits_for_a_new_repository() {
        let job = |name: &str| -> Job {
            serde_json::from_value(serde_json::json!({
                "metadata": { "name": name },
                "spec": { "template": { "spec": { "containers": [
                    { "name": "backup", "image": "k8up", "env": [{ "name": "HOSTNAME", "value": "ns" }] },
                ]}}},
            }))
            .expect("a job")
        };
        let mut jobs = vec![job("a"), job("b"), job("c")];
        await_repository(&mut jobs);
        await_repository(&mut jobs);
        let awaits: Vec<usize> = jobs
            .iter()
            .map(|j| {
                let spec = j
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.spec.as_ref())
                    .expect("spec");
                spec.containers[0]
                    .env
                    .iter()
                    .flatten()
                    .filter(|e| e.name == "K8UP_AWAIT_REPOSITORY" && e.value.as_deref() == Some("10m"))
                    .count()
            })
            .collect();
        assert_eq!(
            awaits,
            [0, 1, 1],
            "the first initialises, the others wait, once each"
        );
    }
}
