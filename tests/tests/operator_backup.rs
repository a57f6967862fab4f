//! The backup controller against the sandbox: Jobs per plan with labels and owner reference, the status
//! mirrored from the Jobs (K8up's envtest shapes, REFERENCE 7.2), idempotence across operator restarts,
//! invalid specs, the executor account, and metrics.
#![allow(clippy::unwrap_used)]

mod e2e_common;
mod operator_common;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8up::crd::Backup;
use k8up_tests::cluster::wait_for;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use operator_common::*;
use serde_json::json;

async fn create_backup(client: &Client, name: &str, script: &str, spec: serde_json::Value) -> Backup {
    let api: Api<Backup> = Api::namespaced(client.clone(), "default");
    let backup: Backup = serde_json::from_value(json!({
        "apiVersion": "k8up.io/v1",
        "kind": "Backup",
        "metadata": { "name": name, "annotations": { SCRIPT: script } },
        "spec": spec,
    }))
    .unwrap();
    api.create(&PostParams::default(), &backup).await.unwrap()
}

fn label<'a>(job: &'a Job, key: &str) -> Option<&'a str> {
    job.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_creates_one_job_per_planned_job_with_the_standard_labels_and_owner_reference() {
    let sb = sandbox().await;
    let c = sb.client();
    bound_pvc(&c, "default", "data-a").await;
    bound_pvc(&c, "default", "data-b").await;
    let operator = start_operator(&c, settings(&[]));
    let backup = create_backup(&c, "nightly", "sleep 3600", json!({})).await;
    let api: Api<Backup> = Api::namespaced(c.clone(), "default");

    let status = wait_status(&api, "nightly", "backup to start", |s| s.started).await;
    // K8up's Test_GivenBackup_AndJob_KeepBackupProgressing: Progressing/Started + Ready/Ready while active.
    assert_eq!(
        conditions(&status),
        vec![
            cond("PreBackupPodReady", "True", "NoPreBackupPodsFound"),
            cond("Progressing", "True", "Started"),
            cond("Ready", "True", "Ready"),
        ]
    );
    assert!(!status.finished);

    let mut jobs = owned_jobs(&c, "default", "backup_nightly").await;
    jobs.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let names: Vec<_> = jobs.iter().filter_map(|j| j.metadata.name.clone()).collect();
    assert_eq!(names, vec!["backup-nightly-0", "backup-nightly-1"]);
    let uid = backup.meta().uid.clone().unwrap();
    for job in &jobs {
        assert_eq!(label(job, "k8upjob"), Some("true"));
        assert_eq!(label(job, "k8up.io/type"), Some("backup"));
        assert_eq!(label(job, "k8up.io/owned-by"), Some("backup_nightly"));
        assert_eq!(label(job, "k8up.io/repository-hash").map(str::len), Some(63));
        let owners = job.metadata.owner_references.clone().unwrap_or_default();
        assert_eq!(owners.len(), 1);
        assert_eq!(
            (
                owners[0].kind.as_str(),
                owners[0].uid.as_str(),
                owners[0].controller
            ),
            ("Backup", uid.as_str(), Some(true))
        );
        let pod_labels = job
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        assert_eq!(pod_labels.get("k8upjob").map(String::as_str), Some("true"));
    }

    // The executor account of K8up's pod-executor design exists in the namespace.
    let sa: Api<ServiceAccount> = Api::namespaced(c.clone(), "default");
    assert!(sa.get_opt("pod-executor").await.unwrap().is_some());
    let rb: Api<RoleBinding> = Api::namespaced(c.clone(), "default");
    let binding = rb.get("pod-executor-namespaced").await.unwrap();
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    assert_eq!(binding.role_ref.name, "k8up-executor");
    let subjects = binding.subjects.unwrap_or_default();
    assert_eq!(subjects[0].name, "pod-executor");

    // A Normal event tells that the Jobs started.
    let events: Api<Event> = Api::namespaced(c.clone(), "default");
    let started = wait_for("a Started event", LIMIT, || async {
        let list = events.list(&ListParams::default()).await?;
        Ok::<_, kube::Error>(list.items.into_iter().find(|e| {
            e.reason.as_deref() == Some("Started")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("nightly")
        }))
    })
    .await
    .unwrap();
    assert_eq!(started.type_.as_deref(), Some("Normal"));
    operator.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_job_marks_the_backup_completed_succeeded_with_four_conditions() {
    let sb = sandbox().await;
    let c = sb.client();
    bound_pvc(&c, "default", "data").await;
    let operator = start_operator(&c, settings(&[]));
    create_backup(&c, "ok", "exit 0", json!({})).await;
    let api: Api<Backup> = Api::namespaced(c.clone(), "default");
    let status = wait_status(&api, "ok", "backup to be scrubbed", |s| {
        has(s, "Scrubbed", "True", "Succeeded")
    })
    .await;
    // Test_GivenBackup_AndCompletedJob_ThenCompleteBackup: Completed/Succeeded, Progressing/Finished, 4.
    assert_eq!(
        conditions(&status),
        vec![
            cond("Completed", "True", "Succeeded"),
            cond("PreBackupPodReady", "True", "NoPreBackupPodsFound"),
            cond("Progressing", "False", "Finished"),
            cond("Scrubbed", "True", "Succeeded"),
        ]
    );
    assert!(status.started && status.finished);
    assert_eq!(
        status.condition("Scrubbed").map(|c| c.message.as_str()),
        Some("Deleted 0 resources")
    );
    let metrics = operator.context().metrics.render().unwrap();
    assert!(
        metrics.contains(r#"k8up_jobs_successful_counter{namespace="default",jobType="backup"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"k8up_jobs_total{namespace="default",jobType="backup"} 1"#));
    operator.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_marks_the_backup_completed_failed_with_a_warning_event() {
    let sb = sandbox().await;
    let c = sb.client();
    bound_pvc(&c, "default", "data").await;
    let operator = start_operator(&c, settings(&[]));
    create_backup(&c, "broken", "echo no repository >&2; exit 3", json!({})).await;
    let api: Api<Backup> = Api::namespaced(c.clone(), "default");
    let status = wait_status(&api, "broken", "backup to fail", |s| s.finished).await;
    // Test_GivenBackup_AndFailedJob_ThenCompleteBackup: Completed/Failed, Progressing/Finished.
    assert!(has(&status, "Completed", "True", "Failed"), "{status:?}");
    assert!(has(&status, "Progressing", "False", "Finished"));
    assert!(status.condition("Ready").is_none());
    let events: Api<Event> = Api::namespaced(c.clone(), "default");
    let failed = wait_for("a Failed event", LIMIT, || async {
        let list = events.list(&ListParams::default()).await?;
        Ok::<_, kube::Error>(
            list.items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some("Failed")),
        )
    })
    .await
    .unwrap();
    assert_eq!(failed.type_.as_deref(), Some("Warning"));
    assert!(failed.note.unwrap_or_default().contains("backup-broken-0"));
    let metrics = operator.context().metrics.render().unwrap();
    assert!(metrics.contains(r#"k8up_jobs_failed_counter{namespace="default",jobType="backup"} 1"#));
    operator.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_the_operator_while_jobs_run_neither_duplicates_them_nor_loses_the_result() {
    let sb = sandbox().await;
    let c = sb.client();
    bound_pvc(&c, "default", "data").await;
    let first = start_operator(&c, settings(&[]));
    create_backup(&c, "restart", "sleep 3", json!({})).await;
    let api: Api<Backup> = Api::namespaced(c.clone(), "default");
    wait_status(&api, "restart", "backup to start", |s| s.started).await;
    let before = owned_jobs(&c, "default", "backup_restart").await;
    first.shutdown().await;

    let second = start_operator(&c, settings(&[]));
    let status = wait_status(&api, "restart", "backup to finish", |s| s.finished).await;
    assert!(has(&status, "Completed", "True", "Succeeded"), "{status:?}");
    let after = owned_jobs(&c, "default", "backup_restart").await;
    assert_eq!(after.len(), 1);
    assert_eq!(
        after[0].metadata.uid, before[0].metadata.uid,
        "the same Job, not a new one"
    );
    second.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_created_before_a_crash_is_adopted_instead_of_duplicated() {
    let sb = sandbox().await;
    let c = sb.client();
    bound_pvc(&c, "default", "data").await;
    // The previous operator created the Job but died before it wrote `started`.
    let backup = create_backup(&c, "crashed", "sleep 3600", json!({})).await;
    let precreated = precreate_backup_job(&c, &backup, "sleep 3600").await;

    let operator = start_operator(&c, settings(&[]));
    let api: Api<Backup> = Api::namespaced(c.clone(), "default");
    wait_status(&api, "crashed", "backup to start", |s| s.started).await;
    let owned = owned_jobs(&c, "default", "backup_crashed").await;
    assert_eq!(owned.len(), 1);
    assert_eq!(owned[0].metadata.uid, precreated.metadata.uid);
    operator.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_spec_gets_a_condition_saying_what_to_change_and_runs_once_fixed() {
    let sb = sandbox().await;
    let c = sb.client();
    bound_pvc(&c, "default", "data").await;
    let operator = start_operator(&c, settings_without_password());
    create_backup(&c, "nopass", "exit 0", json!({})).await;
    let api: Api<Backup> = Api::namespaced(c.clone(), "default");
    let status = wait_status(&api, "nopass", "an InvalidSpec condition", |s| {
        has(s, "Ready", "False", "InvalidSpec")
    })
    .await;
    let message = status
        .condition("Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("spec.backend.repoPasswordSecretRef")
            && message.contains("BACKUP_GLOBALREPOPASSWORD"),
        "{message}"
    );
    assert!(!status.started);
    assert!(owned_jobs(&c, "default", "backup_nopass").await.is_empty());

    // Fixing the spec is the change the object waits for.
    let fix =
        json!({ "spec": { "backend": { "repoPasswordSecretRef": { "name": "repo", "key": "password" } } } });
    api.patch("nopass", &PatchParams::default(), &Patch::Merge(&fix))
        .await
        .unwrap();
    let status = wait_status(&api, "nopass", "the fixed backup to finish", |s| s.finished).await;
    assert!(has(&status, "Completed", "True", "Succeeded"), "{status:?}");
    operator.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_with_nothing_to_back_up_completes_as_succeeded() {
    let sb = sandbox().await;
    let c = sb.client();
    let operator = start_operator(&c, settings(&[]));
    create_backup(&c, "empty", "exit 1", json!({})).await;
    let api: Api<Backup> = Api::namespaced(c.clone(), "default");
    let status = wait_status(&api, "empty", "the empty backup to finish", |s| s.finished).await;
    assert!(has(&status, "Completed", "True", "Succeeded"), "{status:?}");
    assert_eq!(
        status.condition("Completed").map(|c| c.message.as_str()),
        Some("nothing to backup")
    );
    assert!(owned_jobs(&c, "default", "backup_empty").await.is_empty());
    operator.shutdown().await;
    sb.shutdown().await;
}

async fn create_pre_backup_pod(client: &Client, name: &str, command: &[&str]) {
    let value = json!({
        "apiVersion": "k8up.io/v1",
        "kind": "PreBackupPod",
        "metadata": { "name": name },
        "spec": {
            "backupCommand": "cat /etc/hostname",
            "fileExtension": ".txt",
            "pod": {
                "metadata": { "labels": { "app": "dump" } },
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{ "name": "dump", "image": "busybox", "command": command }],
                },
            },
        },
    });
    let api: Api<k8up::crd::PreBackupPod> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &serde_json::from_value(value).unwrap())
        .await
        .unwrap();
}

async fn wait_gone(deployments: &Api<k8s_openapi::api::apps::v1::Deployment>, name: &str, what: &str) {
    wait_for(what, LIMIT, || async {
        Ok::<_, kube::Error>(deployments.get_opt(name).await?.is_none().then_some(()))
    })
    .await
    .unwrap();
}

fn pre_backup_condition(status: &k8up::crd::Status) -> Option<(String, String)> {
    status
        .condition("PreBackupPodReady")
        .map(|c| (c.status.clone(), c.reason.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_backup_pod_runs_as_a_deployment_of_the_backup_until_the_backup_finished() {
    use k8s_openapi::api::apps::v1::Deployment;
    let sb = sandbox().await;
    let c = sb.client();
    bound_pvc(&c, "default", "data").await;
    create_pre_backup_pod(&c, "mysqldump", &["sleep", "infinity"]).await;
    let operator = start_operator(&c, settings(&[]));
    create_backup(&c, "with-dump", "sleep 1", json!({})).await;
    let backups: Api<Backup> = Api::namespaced(c.clone(), "default");
    let deployments: Api<Deployment> = Api::namespaced(c.clone(), "default");

    // The Backup's own Deployment runs the PreBackupPod's template with the backup-command annotation.
    let deployment = wait_for("the pre-backup Deployment", LIMIT, || async {
        deployments.get_opt("with-dump-mysqldump").await
    })
    .await
    .unwrap();
    let template = deployment.spec.unwrap().template.metadata.unwrap();
    assert_eq!(
        template
            .annotations
            .unwrap()
            .get("k8up.io/backupcommand")
            .map(String::as_str),
        Some("cat /etc/hostname")
    );
    assert_eq!(
        template
            .labels
            .unwrap()
            .get("k8up.io/preBackupPod")
            .map(String::as_str),
        Some("mysqldump")
    );

    // Once its pod is available, the Backup starts; the condition says so.
    let status = wait_status(&backups, "with-dump", "the backup to start", |s| s.started).await;
    assert_eq!(
        pre_backup_condition(&status),
        Some(("True".to_string(), "Ready".to_string()))
    );

    // When the Backup finished, the Deployment is gone.
    let status = wait_status(&backups, "with-dump", "the backup to finish", |s| s.finished).await;
    assert_eq!(
        pre_backup_condition(&status),
        Some(("True".to_string(), "Finished".to_string()))
    );
    wait_gone(
        &deployments,
        "with-dump-mysqldump",
        "the pre-backup Deployment to go",
    )
    .await;
    operator.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_backup_pod_that_never_becomes_available_fails_the_backup_and_is_removed() {
    use k8s_openapi::api::apps::v1::Deployment;
    let sb = sandbox().await;
    let c = sb.client();
    bound_pvc(&c, "default", "data").await;
    create_pre_backup_pod(&c, "crashing", &["sh", "-c", "exit 1"]).await;
    let operator = start_operator(&c, settings(&[]));
    create_backup(&c, "doomed", "exit 0", json!({})).await;
    let backups: Api<Backup> = Api::namespaced(c.clone(), "default");

    // Waiting first ...
    let waiting = wait_status(&backups, "doomed", "the backup to wait", |s| {
        pre_backup_condition(s).is_some_and(|(_, r)| r == "Waiting")
    })
    .await;
    assert_eq!(pre_backup_condition(&waiting).unwrap().0, "Unknown");
    assert!(!waiting.started);
    // ... the sandbox marks the Deployment ProgressDeadlineExceeded (progressDeadlineSeconds 2) ...
    let deployments: Api<Deployment> = Api::namespaced(c.clone(), "default");
    deployments
        .patch(
            "doomed-crashing",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "progressDeadlineSeconds": 2 } })),
        )
        .await
        .unwrap();
    // ... and the Backup fails without any Job, saying why, and the Deployment is removed.
    let status = wait_status(&backups, "doomed", "the backup to fail", |s| s.finished).await;
    let (state, reason) = pre_backup_condition(&status).unwrap();
    assert_eq!((state.as_str(), reason.as_str()), ("False", "Failed"));
    let message = status.condition("PreBackupPodReady").unwrap().message.clone();
    assert!(message.contains("doomed-crashing"), "{message}");
    assert!(
        has(&status, "Completed", "True", "Failed"),
        "{:?}",
        conditions(&status)
    );
    assert!(owned_jobs(&c, "default", "backup_doomed").await.is_empty());
    wait_gone(
        &deployments,
        "doomed-crashing",
        "the failed pre-backup Deployment to go",
    )
    .await;
    operator.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_backup_pod_that_does_not_decode_fails_the_backup_naming_it_and_warns_on_it() {
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::{ApiResource, DynamicObject};
    let sb = sandbox().await;
    let c = sb.client();
    bound_pvc(&c, "default", "data").await;
    // The CRD keeps the pod template's unknown fields, so the API server stores a template whose
    // `containers` is a string; no typed PreBackupPod can hold it.
    let resource = ApiResource::erase::<k8up::crd::PreBackupPod>(&());
    let untyped: Api<DynamicObject> = Api::namespaced_with(c.clone(), "default", &resource);
    let stored: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "k8up.io/v1",
        "kind": "PreBackupPod",
        "metadata": { "name": "mangled" },
        "spec": { "backupCommand": "mysqldump", "pod": { "spec": { "containers": "mysql" } } },
    }))
    .unwrap();
    untyped.create(&PostParams::default(), &stored).await.unwrap();
    let operator = start_operator(&c, settings(&[]));
    create_backup(&c, "selects-it", "exit 0", json!({})).await;
    let backups: Api<Backup> = Api::namespaced(c.clone(), "default");

    // The Backup fails before anything is made for it, naming the PreBackupPod and the field.
    let status = wait_status(&backups, "selects-it", "the backup to fail", |s| s.finished).await;
    let (state, reason) = pre_backup_condition(&status).unwrap();
    assert_eq!((state.as_str(), reason.as_str()), ("False", "InvalidSpec"));
    let message = status.condition("PreBackupPodReady").unwrap().message.clone();
    assert!(
        message.starts_with("PreBackupPod mangled cannot be read (spec.pod.spec.containers"),
        "{message}"
    );
    assert!(
        has(&status, "Completed", "True", "Failed"),
        "{:?}",
        conditions(&status)
    );
    assert!(owned_jobs(&c, "default", "backup_selects-it").await.is_empty());
    let deployments: Api<Deployment> = Api::namespaced(c.clone(), "default");
    assert!(
        deployments
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // The PreBackupPod has no status: a Warning Event about it says the same.
    let events: Api<Event> = Api::namespaced(c.clone(), "default");
    let warning = wait_for("a Warning Event on the PreBackupPod", LIMIT, || async {
        let list = events.list(&ListParams::default()).await?;
        Ok::<_, kube::Error>(list.items.into_iter().find(|e| {
            let regarding = e.regarding.as_ref();
            regarding.and_then(|r| r.kind.as_deref()) == Some("PreBackupPod")
                && regarding.and_then(|r| r.name.as_deref()) == Some("mangled")
        }))
    })
    .await
    .unwrap();
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert_eq!(warning.reason.as_deref(), Some("InvalidSpec"));
    assert_eq!(warning.note.as_deref(), Some(message.as_str()));
    operator.shutdown().await;
    sb.shutdown().await;
}

/// The container env var `name` of a Job.
fn job_env(job: &Job, name: &str) -> Option<String> {
    let spec = job.spec.as_ref()?.template.spec.as_ref()?;
    spec.containers[0]
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == name)
        .and_then(|e| e.value.clone())
}

fn job_node(job: &Job) -> Option<String> {
    let spec = job.spec.as_ref()?.template.spec.as_ref()?;
    spec.node_selector
        .as_ref()?
        .get("kubernetes.io/hostname")
        .cloned()
}

fn job_claims(job: &Job) -> Vec<String> {
    let spec = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let mut claims: Vec<String> = spec
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| v.persistent_volume_claim.as_ref().map(|c| c.claim_name.clone()))
        .collect();
    claims.sort();
    claims
}

/// A pod `name` mounting `claim` (so it runs on the claim's node), running `command`, optionally tolerating
/// a `dedicated=db` taint.
async fn mounting_pod(
    client: &Client,
    ns: &str,
    name: &str,
    claim: &str,
    labels: serde_json::Value,
    command: &str,
    tolerate: bool,
) {
    let tolerations = if tolerate {
        json!([{ "key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule" }])
    } else {
        json!([])
    };
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": labels },
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "tolerations": tolerations,
            "containers": [{
                "name": "app", "image": "busybox", "command": ["sh", "-c", command],
                "volumeMounts": [{ "name": "data", "mountPath": "/data" }],
            }],
            "volumes": [{ "name": "data", "persistentVolumeClaim": { "claimName": claim } }],
        },
    }))
    .unwrap();
    Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
}

async fn wait_pod_phase(client: &Client, ns: &str, name: &str, phase: &str) {
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), ns);
    wait_for(&format!("pod {ns}/{name} to be {phase}"), LIMIT, || async {
        let p = pods.get(name).await?;
        Ok::<_, kube::Error>((p.status.and_then(|s| s.phase).as_deref() == Some(phase)).then_some(()))
    })
    .await
    .unwrap();
}

async fn rwo_pvc(client: &Client, ns: &str, name: &str, node: &str) {
    e2e_common::pvc_with(
        client,
        ns,
        name,
        "ReadWriteOnce",
        json!({ "annotations": { "volume.kubernetes.io/selected-node": node } }),
    )
    .await;
}

/// K8up's backup controller integration tests on node placement, spec copying and arguments (REFERENCE
/// 7.2: ...MountedRWOPVCOnOneNode, ...OnTwoNodes (tolerations), ...UnmountedRWOPVCOnTwoNodes,
/// ...WithFinishedBackupPod / ...WithFinishedPod (ignored), ...RWXPVCWithAnnotation, ...WithSecurityContext,
/// ...WithTlsOptions / ...WithMutualTlsOptions, ...WithTags), with the embedded backup plugin, one namespace
/// per case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_jobs_are_grouped_and_pinned_like_k8ups_and_carry_the_specs_settings() {
    let sb = sandbox().await;
    let client = sb.client();
    for ns in ["one-node", "two-nodes", "unmounted", "annotated", "settings"] {
        let namespace = serde_json::from_value(json!({ "metadata": { "name": ns } })).unwrap();
        Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap();
    }
    // Two RWO PVCs mounted on one node, plus pods that must not count: a finished pod and a k8up Job pod.
    rwo_pvc(&client, "one-node", "pvc-1", "node-a").await;
    rwo_pvc(&client, "one-node", "pvc-2", "node-a").await;
    mounting_pod(
        &client,
        "one-node",
        "app-1",
        "pvc-1",
        json!({}),
        "sleep infinity",
        false,
    )
    .await;
    mounting_pod(
        &client,
        "one-node",
        "app-2",
        "pvc-2",
        json!({}),
        "sleep infinity",
        false,
    )
    .await;
    mounting_pod(&client, "one-node", "finished", "pvc-1", json!({}), "true", false).await;
    mounting_pod(
        &client,
        "one-node",
        "old-backup",
        "pvc-2",
        json!({ "k8upjob": "true" }),
        "sleep infinity",
        false,
    )
    .await;
    for pod in ["app-1", "app-2", "old-backup"] {
        wait_pod_phase(&client, "one-node", pod, "Running").await;
    }
    wait_pod_phase(&client, "one-node", "finished", "Succeeded").await;
    // Two RWO PVCs mounted on two nodes by pods with a toleration.
    rwo_pvc(&client, "two-nodes", "pvc-a", "node-a").await;
    rwo_pvc(&client, "two-nodes", "pvc-b", "node-b").await;
    mounting_pod(
        &client,
        "two-nodes",
        "app-a",
        "pvc-a",
        json!({}),
        "sleep infinity",
        true,
    )
    .await;
    mounting_pod(
        &client,
        "two-nodes",
        "app-b",
        "pvc-b",
        json!({}),
        "sleep infinity",
        true,
    )
    .await;
    wait_pod_phase(&client, "two-nodes", "app-a", "Running").await;
    wait_pod_phase(&client, "two-nodes", "app-b", "Running").await;
    // Two RWO PVCs on two nodes that no pod mounts: the node comes from the PV's affinity.
    rwo_pvc(&client, "unmounted", "pvc-a", "node-a").await;
    rwo_pvc(&client, "unmounted", "pvc-b", "node-c").await;
    // An RWX PVC whose annotation names the node.
    e2e_common::pvc_with(
        &client,
        "annotated",
        "shared",
        "ReadWriteMany",
        json!({ "annotations": { "k8up.io/hostname": "node-c" } }),
    )
    .await;
    bound_pvc(&client, "settings", "data").await;

    let planner = k8up::plugin::PluginPlanner::with_builtins(&settings(&[]).plugins)
        .await
        .unwrap();
    let controllers = k8up::operator::Controllers::start(
        client.clone(),
        std::sync::Arc::new(settings(&[])),
        std::sync::Arc::new(planner),
        std::sync::Arc::new(k8up::operator::metrics::Metrics::new()),
    );
    for ns in ["one-node", "two-nodes", "unmounted", "annotated"] {
        let backup = serde_json::from_value(json!({ "metadata": { "name": "b" }, "spec": {} })).unwrap();
        Api::<Backup>::namespaced(client.clone(), ns)
            .create(&PostParams::default(), &backup)
            .await
            .unwrap();
    }
    let backup = serde_json::from_value(json!({
        "metadata": { "name": "b" },
        "spec": {
            "activeDeadlineSeconds": 500,
            "podSecurityContext": { "runAsUser": 1234, "fsGroup": 4321 },
            "tags": ["daily", "db"],
            "backend": {
                "s3": { "endpoint": "https://s3.example", "bucket": "b" },
                "tlsOptions": {
                    "caCert": "/mnt/ca/ca.crt",
                    "clientCert": "/mnt/tls/tls.crt",
                    "clientKey": "/mnt/tls/tls.key",
                },
                "volumeMounts": [{ "name": "ca", "mountPath": "/mnt/ca" }],
            },
            "volumes": [{ "name": "ca", "secret": { "secretName": "ca-tls" } }],
        },
    }))
    .unwrap();
    Api::<Backup>::namespaced(client.clone(), "settings")
        .create(&PostParams::default(), &backup)
        .await
        .unwrap();

    let jobs_of = |ns: &'static str, count: usize| {
        let client = client.clone();
        async move {
            wait_for(&format!("{count} backup jobs in {ns}"), LIMIT, || async {
                let jobs = owned_jobs(&client, ns, "backup_b").await;
                Ok::<_, kube::Error>((jobs.len() >= count).then_some(jobs))
            })
            .await
            .unwrap()
        }
    };

    // One node: one Job for both PVCs, pinned, with exactly the two app pods as targets.
    let jobs = jobs_of("one-node", 1).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(job_node(&jobs[0]).as_deref(), Some("node-a"));
    assert_eq!(job_claims(&jobs[0]), ["pvc-1", "pvc-2"]);
    let mut targets: Vec<String> = job_env(&jobs[0], "TARGET_PODS")
        .unwrap_or_default()
        .split(',')
        .map(String::from)
        .collect();
    targets.sort();
    assert_eq!(targets, ["app-1", "app-2"]);

    // Two nodes: one Job per node, each pinned, with the app pods' tolerations.
    let mut jobs = jobs_of("two-nodes", 2).await;
    jobs.sort_by_key(job_node);
    let placed: Vec<(Option<String>, Vec<String>)> =
        jobs.iter().map(|j| (job_node(j), job_claims(j))).collect();
    assert_eq!(
        placed,
        [
            (Some("node-a".into()), vec!["pvc-a".to_string()]),
            (Some("node-b".into()), vec!["pvc-b".to_string()])
        ]
    );
    for job in &jobs {
        let tolerations = job
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .tolerations
            .clone();
        let keys: Vec<_> = tolerations
            .unwrap_or_default()
            .into_iter()
            .filter_map(|t| t.key)
            .collect();
        assert_eq!(keys, ["dedicated"]);
    }

    // Unmounted: pinned by the PV's node affinity, no target pods.
    let mut jobs = jobs_of("unmounted", 2).await;
    jobs.sort_by_key(job_node);
    let nodes: Vec<_> = jobs.iter().map(job_node).collect();
    assert_eq!(nodes, [Some("node-a".to_string()), Some("node-c".to_string())]);
    assert!(
        jobs.iter()
            .all(|j| job_env(j, "TARGET_PODS").is_none_or(|t| t.is_empty()))
    );

    // The annotation names the node, also for an RWX PVC.
    let jobs = jobs_of("annotated", 1).await;
    assert_eq!(job_node(&jobs[0]).as_deref(), Some("node-c"));

    // The spec's deadline, pod security context, tags and TLS options reach the Job.
    let jobs = jobs_of("settings", 1).await;
    let job_spec = jobs[0].spec.as_ref().unwrap();
    assert_eq!(job_spec.active_deadline_seconds, Some(500));
    let pod = job_spec.template.spec.as_ref().unwrap();
    let security = pod.security_context.as_ref().unwrap();
    assert_eq!(
        (security.run_as_user, security.fs_group),
        (Some(1234), Some(4321))
    );
    let args = pod.containers[0].args.clone().unwrap_or_default();
    let after = |flag: &str| -> Vec<&str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    };
    assert_eq!(after("--tag"), ["daily", "db"], "{args:?}");
    assert_eq!(after("--caCert"), ["/mnt/ca/ca.crt"], "{args:?}");
    assert_eq!(after("--clientCert"), ["/mnt/tls/tls.crt"], "{args:?}");
    assert_eq!(after("--clientKey"), ["/mnt/tls/tls.key"], "{args:?}");
    let mounts = pod.containers[0].volume_mounts.clone().unwrap_or_default();
    assert!(
        mounts.iter().any(|m| m.name == "ca" && m.mount_path == "/mnt/ca"),
        "{mounts:?}"
    );
    let volumes = pod.volumes.clone().unwrap_or_default();
    assert!(volumes.iter().any(
        |v| v.name == "ca" && v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some("ca-tls")
    ));

    controllers.shutdown().await;
    sb.shutdown().await;
}
