//! K8up's e2e scenarios that concern backup and restore (REFERENCE.md 7.1), ported to the sandbox with every
//! real part: the operator with the embedded plugins, Jobs running the built `k8up restic`, the real `restic`,
//! `restic-rest-server` and SeaweedFS S3 repositories. Each test names the K8up scenario it ports and asserts
//! what a user would see: conditions, Snapshot resources, what `restic` finds in the repository, files
//! restored byte for byte. Beyond K8up: a 1 GiB dump through exec while the operator is killed and
//! restarted, and a dump command that fails halfway.

// Helpers outside `#[test]` functions fail the calling test by panicking, like assertions do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod e2e_common;
mod operator_common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use e2e_common::*;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8up::crd::{Backup, PodConfig, PreBackupPod, Restore, Snapshot};
use k8up_tests::cluster::wait_for;
use kube::api::ListParams;
use kube::{Api, Client};
use operator_common::*;
use serde_json::json;

/// A Deployment `app` whose pods run `containers`, mount `claims` at `/data/<claim>` in every container and
/// carry `annotations`.
fn deployment(
    app: &str,
    containers: &[&str],
    claims: &[&str],
    annotations: serde_json::Value,
) -> serde_json::Value {
    let mounts: Vec<_> = claims
        .iter()
        .map(|c| json!({ "name": c, "mountPath": format!("/data/{c}") }))
        .collect();
    let volumes: Vec<_> = claims
        .iter()
        .map(|c| json!({ "name": c, "persistentVolumeClaim": { "claimName": c } }))
        .collect();
    let containers: Vec<_> = containers
        .iter()
        .map(|c| {
            json!({
                "name": c, "image": "busybox", "command": ["sleep", "infinity"],
                "env": [{ "name": "WHO", "value": format!("container {c}") }],
                "volumeMounts": mounts,
            })
        })
        .collect();
    json!({
        "metadata": { "name": app },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": app } },
            "template": {
                "metadata": { "labels": { "app": app }, "annotations": annotations },
                "spec": { "terminationGracePeriodSeconds": 1, "containers": containers, "volumes": volumes },
            },
        },
    })
}

async fn create_deployment(client: &Client, ns: &str, spec: serde_json::Value) {
    create::<k8s_openapi::api::apps::v1::Deployment>(client, ns, spec).await;
}

/// `restic dump <snapshot> <path>` on the repository; `latest` means the latest snapshot of the PVC folder
/// (`/data/<pvc>`) or dump file the path is in.
fn dump(repository: &str, snapshot: &str, path: &str) -> Vec<u8> {
    if snapshot != "latest" {
        return restic(repository, &["dump", snapshot, path]);
    }
    let of: String = match path.strip_prefix("/data/") {
        Some(rest) => format!("/data/{}", rest.split('/').next().unwrap()),
        None => path.to_owned(),
    };
    restic(repository, &["dump", "--path", &of, "latest", path])
}

/// The restic snapshots of `path`, newest last.
fn snapshots_of(repository: &str, path: &str) -> Vec<serde_json::Value> {
    restic_snapshots(repository)
        .into_iter()
        .filter(|s| s["paths"].as_array().is_some_and(|p| p.iter().any(|p| p == path)))
        .collect()
}

fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// The pods of the Jobs owned by `owned_by`.
async fn job_pods(client: &Client, ns: &str, owned_by: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut out = Vec::new();
    for job in owned_jobs(client, ns, owned_by).await {
        let lp = ListParams::default().labels(&format!("job-name={}", job.metadata.name.unwrap()));
        out.extend(pods.list(&lp).await.unwrap().items);
    }
    out
}

// test-03-backup and test-04-restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k8up_03_04_a_backup_with_a_pod_config_lands_in_restic_and_a_restore_brings_the_file_back_beside_new_ones()
 {
    let sb = sandbox().await;
    let client = sb.client();
    let rest = RestServer::start().await;
    let repo = rest.repository("e2e-03");
    create_repository_secret(&client).await;
    pvc_with(&client, NS, "subject-pvc", "ReadWriteMany", json!({})).await;
    let subject = pvc_dir(&client, "subject-pvc").await;
    std::fs::write(subject.join("expected.txt"), b"the content of test 03\n").unwrap();

    create::<PodConfig>(
        &client,
        NS,
        json!({
            "metadata": { "name": "podconfig" },
            "spec": { "template": {
                "metadata": { "annotations": { "test.k8up.io/from": "podconfig" } },
                "spec": {
                    "containers": [{
                        "env": [{ "name": "FROM_POD_CONFIG", "value": "yes" }],
                        "securityContext": { "allowPrivilegeEscalation": false },
                        "volumeMounts": [{ "name": "extra", "mountPath": "/extra" }],
                    }],
                    "volumes": [{ "name": "extra", "emptyDir": {} }],
                },
            }},
        }),
    )
    .await;

    let controllers = start_operator_with_builtins(&client).await;
    create::<Backup>(
        &client,
        NS,
        json!({
            "metadata": { "name": "k8up-backup" },
            "spec": { "backend": backend(&repo), "podConfigRef": { "name": "podconfig" } },
        }),
    )
    .await;
    let status = wait_succeeded::<Backup>(&client, "k8up-backup", "backup_k8up-backup").await;
    assert!(status.started && status.finished, "{status:?}");

    // At least one restic snapshot, holding the file as it was.
    let snaps = snapshots_of(&repo, "/data/subject-pvc");
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    assert_eq!(
        dump(&repo, "latest", "/data/subject-pvc/expected.txt"),
        b"the content of test 03\n"
    );

    // The PodConfig shaped the Job's pod.
    let pods = job_pods(&client, NS, "backup_k8up-backup").await;
    assert_eq!(pods.len(), 1);
    let pod = &pods[0];
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get("test.k8up.io/from").map(String::as_str),
        Some("podconfig")
    );
    let spec = pod.spec.as_ref().unwrap();
    let container = &spec.containers[0];
    let env = container.env.clone().unwrap_or_default();
    assert_eq!(env[0].name, "FROM_POD_CONFIG");
    assert_eq!(
        container
            .security_context
            .as_ref()
            .and_then(|s| s.allow_privilege_escalation),
        Some(false)
    );
    assert!(
        container
            .volume_mounts
            .clone()
            .unwrap_or_default()
            .iter()
            .any(|m| m.name == "extra" && m.mount_path == "/extra")
    );
    assert!(
        spec.volumes
            .clone()
            .unwrap_or_default()
            .iter()
            .any(|v| v.name == "extra")
    );

    // test-04: the app lost its file and wrote a new one; a folder restore into the same PVC brings the old
    // file back (at the PVC root: the /data/<pvc> prefix is trimmed) and leaves the new one alone.
    std::fs::remove_file(subject.join("expected.txt")).unwrap();
    std::fs::write(subject.join("new.txt"), b"written after the backup\n").unwrap();
    create::<Restore>(
        &client,
        NS,
        json!({
            "metadata": { "name": "k8up-restore" },
            "spec": {
                "backend": backend(&repo),
                "restoreMethod": { "folder": { "claimName": "subject-pvc" } },
            },
        }),
    )
    .await;
    let status = wait_succeeded::<Restore>(&client, "k8up-restore", "restore_k8up-restore").await;
    assert!(status.started);
    let after = files(&subject);
    assert_eq!(names(&after), ["expected.txt", "new.txt"]);
    assert_eq!(after[0].1, b"the content of test 03\n");
    assert_eq!(after[1].1, b"written after the backup\n");

    controllers.shutdown().await;
    sb.shutdown().await;
}

// test-05-annotated-backup, test-08-restore-backupcommand and test-09-pod-backupcommand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k8up_05_08_09_dumps_of_an_annotated_deployment_and_a_bare_pod_land_in_restic_and_restore_into_a_pvc()
{
    let sb = sandbox().await;
    let client = sb.client();
    let rest = RestServer::start().await;
    let repo = rest.repository("e2e-05");
    create_repository_secret(&client).await;
    k8up_tests::chart::install_executor_role(&client).await.unwrap();
    pvc_with(&client, NS, "subject-pvc", "ReadWriteMany", json!({})).await;
    std::fs::write(
        pvc_dir(&client, "subject-pvc").await.join("file.txt"),
        b"pvc file\n",
    )
    .unwrap();

    // test-05: the command runs in the container the annotation names (the second one), not the first.
    create_deployment(
        &client,
        NS,
        deployment(
            "subject",
            &["sidecar", "subject-container"],
            &["subject-pvc"],
            json!({
                "k8up.io/backupcommand": "sh -c 'echo dump from $WHO'",
                "k8up.io/file-extension": ".txt",
                "k8up.io/backupcommand-container": "subject-container",
            }),
        ),
    )
    .await;
    // test-09: a bare pod without an owner.
    create::<Pod>(
        &client,
        NS,
        json!({
            "metadata": {
                "name": "bare",
                "labels": { "app": "bare" },
                "annotations": { "k8up.io/backupcommand": "sh -c 'printf \"bare pod %s\" dump'" },
            },
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{ "name": "bare-container", "image": "busybox", "command": ["sleep", "infinity"] }],
            },
        }),
    )
    .await;
    wait_running(&client, NS, "subject", 1).await;
    wait_running(&client, NS, "bare", 1).await;

    let controllers = start_operator_with_builtins(&client).await;
    create::<Backup>(
        &client,
        NS,
        json!({ "metadata": { "name": "annotated" }, "spec": { "backend": backend(&repo) } }),
    )
    .await;
    wait_succeeded::<Backup>(&client, "annotated", "backup_annotated").await;

    assert_eq!(dump(&repo, "latest", "/data/subject-pvc/file.txt"), b"pvc file\n");
    let deployment_dump = snapshots_of(&repo, "/default-subject-container.txt");
    assert_eq!(deployment_dump.len(), 1, "{:?}", restic_snapshots(&repo));
    let dump_id = deployment_dump[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        dump(&repo, &dump_id, "/default-subject-container.txt"),
        b"dump from container subject-container\n"
    );
    let bare = snapshots_of(&repo, "/default-bare-container");
    assert_eq!(bare.len(), 1, "{:?}", restic_snapshots(&repo));
    assert_eq!(
        dump(&repo, bare[0]["id"].as_str().unwrap(), "/default-bare-container"),
        b"bare pod dump"
    );

    // The Snapshot resources show the dump with its size and digest.
    let resources = wait_for("three Snapshot resources", E2E_LIMIT, || async {
        let l = Api::<Snapshot>::namespaced(client.clone(), NS)
            .list(&ListParams::default())
            .await?;
        Ok::<_, kube::Error>((l.items.len() == 3).then_some(l.items))
    })
    .await
    .unwrap();
    let dump_resource = resources
        .iter()
        .find(|s| s.spec.id.as_deref() == Some(dump_id.as_str()))
        .expect("a Snapshot resource for the deployment's dump");
    assert_eq!(
        dump_resource.spec.dump_bytes,
        Some("dump from container subject-container\n".len() as i64)
    );

    // test-08: the stdin snapshot restores into a PVC as its file.
    pvc_with(&client, NS, "restore-pvc", "ReadWriteMany", json!({})).await;
    create::<Restore>(
        &client,
        NS,
        json!({
            "metadata": { "name": "dump" },
            "spec": {
                "backend": backend(&repo),
                "snapshot": &dump_id[..8],
                "restoreMethod": { "folder": { "claimName": "restore-pvc" } },
            },
        }),
    )
    .await;
    wait_succeeded::<Restore>(&client, "dump", "restore_dump").await;
    let restored = files(&pvc_dir(&client, "restore-pvc").await);
    assert_eq!(names(&restored), ["default-subject-container.txt"]);
    assert_eq!(restored[0].1, b"dump from container subject-container\n");

    assert_no_secrets(&client, &[PASSWORD]).await;
    controllers.shutdown().await;
    sb.shutdown().await;
}

// test-06-pvc-rwo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k8up_06_two_rwo_pvcs_on_two_nodes_are_backed_up_by_jobs_on_those_nodes_and_restore_byte_for_byte() {
    let sb = sandbox().await;
    let client = sb.client();
    let rest = RestServer::start().await;
    let repo = rest.repository("e2e-06");
    create_repository_secret(&client).await;
    for (pvc, node) in [("pvc-a", "node-a"), ("pvc-b", "node-b")] {
        pvc_with(
            &client,
            NS,
            pvc,
            "ReadWriteOnce",
            json!({ "annotations": { "volume.kubernetes.io/selected-node": node } }),
        )
        .await;
        std::fs::write(
            pvc_dir(&client, pvc).await.join("file.txt"),
            format!("on {node}\n"),
        )
        .unwrap();
        create_deployment(
            &client,
            NS,
            deployment(&format!("app-{pvc}"), &["app"], &[pvc], json!({})),
        )
        .await;
    }
    let a = wait_running(&client, NS, "app-pvc-a", 1).await;
    let b = wait_running(&client, NS, "app-pvc-b", 1).await;
    let node_of = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        (node_of(&a[0]), node_of(&b[0])),
        ("node-a".into(), "node-b".into())
    );

    let controllers = start_operator_with_builtins(&client).await;
    create::<Backup>(
        &client,
        NS,
        json!({ "metadata": { "name": "rwo" }, "spec": { "backend": backend(&repo) } }),
    )
    .await;
    wait_succeeded::<Backup>(&client, "rwo", "backup_rwo").await;

    let nodes: BTreeSet<String> = job_pods(&client, NS, "backup_rwo")
        .await
        .iter()
        .map(node_of)
        .collect();
    assert_eq!(
        nodes,
        BTreeSet::from(["node-a".to_string(), "node-b".to_string()])
    );
    // The repository was new: one Job initialised it, the other waited for it instead of racing it.
    let mut awaiting: Vec<bool> = owned_jobs(&client, NS, "backup_rwo")
        .await
        .iter()
        .map(|j| {
            let spec = j.spec.as_ref().and_then(|s| s.template.spec.as_ref());
            spec.into_iter()
                .flat_map(|s| &s.containers)
                .flat_map(|c| c.env.iter().flatten())
                .any(|e| e.name == "K8UP_AWAIT_REPOSITORY")
        })
        .collect();
    awaiting.sort();
    assert_eq!(awaiting, [false, true], "one initialises, one awaits");
    for (pvc, node) in [("pvc-a", "node-a"), ("pvc-b", "node-b")] {
        assert_eq!(
            dump(&repo, "latest", &format!("/data/{pvc}/file.txt")),
            format!("on {node}\n").as_bytes(),
            "{pvc}"
        );
    }
    // Restore equality of the RWO groups: each PVC's snapshot (from its Snapshot resource) restores into a
    // fresh PVC byte for byte.
    let snapshots = snapshot_resources(&client, NS).await;
    for pvc in ["pvc-a", "pvc-b"] {
        let id = snapshots
            .iter()
            .find(|s| s.spec.paths.as_deref() == Some(&[format!("/data/{pvc}")][..]))
            .and_then(|s| s.spec.id.clone())
            .unwrap_or_else(|| panic!("no Snapshot resource of {pvc}"));
        let target = format!("restored-{pvc}");
        pvc_with(&client, NS, &target, "ReadWriteOnce", json!({})).await;
        create::<Restore>(
            &client,
            NS,
            json!({ "metadata": { "name": target }, "spec": {
                "backend": backend(&repo),
                "snapshot": id,
                "restoreMethod": { "folder": { "claimName": target } },
            } }),
        )
        .await;
        wait_succeeded::<Restore>(&client, &target, &format!("restore_{target}")).await;
        assert_eq!(
            files(&pvc_dir(&client, &target).await),
            files(&pvc_dir(&client, pvc).await),
            "{pvc} restored differs"
        );
    }
    controllers.shutdown().await;
    sb.shutdown().await;
}

// test-12-annotated-failure, and beyond it: a dump that fails halfway leaves no snapshot claiming success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k8up_12_an_invalid_backup_command_and_a_dump_failing_halfway_fail_the_backup_and_leave_no_snapshot()
{
    let sb = sandbox().await;
    let client = sb.client();
    let rest = RestServer::start().await;
    k8up_tests::chart::install_executor_role(&client).await.unwrap();
    let cases = [
        ("invalid-command", "invalid"),
        // 8 MiB of output, then the command fails: the part that was streamed must not stay as a snapshot.
        (
            "halfway",
            "sh -c 'head -c 8388608 /dev/zero; echo broken >&2; exit 3'",
        ),
    ];
    for (ns, command) in cases {
        namespace(&client, ns).await;
        create_repository_secret_in(&client, ns).await;
        create_deployment(
            &client,
            ns,
            deployment(
                "subject",
                &["subject-container"],
                &[],
                json!({ "k8up.io/backupcommand": command }),
            ),
        )
        .await;
        wait_running(&client, ns, "subject", 1).await;
    }
    let controllers = start_operator_with_flags(&client, &["--global-backoff-limit", "1"]).await;
    for (ns, _) in cases {
        create::<Backup>(
            &client,
            ns,
            json!({ "metadata": { "name": "failing" }, "spec": { "backend": backend(&rest.repository(ns)) } }),
        )
        .await;
    }
    for (ns, _) in cases {
        let status = wait_finished_in::<Backup>(&client, ns, "failing", "backup_failing").await;
        let completed = status.condition("Completed").unwrap();
        assert_eq!(completed.reason, "Failed", "{ns}: {completed:?}");
        assert!(completed.message.contains("Dump"), "{ns}: {}", completed.message);
        // Nothing in the repository claims to hold the dump, and no Snapshot resource shows one.
        let snaps = restic_snapshots(&rest.repository(ns));
        assert!(snaps.is_empty(), "{ns}: {snaps:?}");
        assert!(snapshot_resources(&client, ns).await.is_empty(), "{ns}");
    }
    assert_no_secrets(&client, &[PASSWORD]).await;
    controllers.shutdown().await;
    sb.shutdown().await;
}

// test-13-cleanup-empty-jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k8up_13_backups_with_nothing_to_back_up_succeed_and_the_history_limit_cleans_them_up() {
    let sb = sandbox().await;
    let client = sb.client();
    create_repository_secret(&client).await;
    let controllers = start_operator_with_builtins(&client).await;
    let backups: Api<Backup> = Api::namespaced(client.clone(), NS);
    for name in ["k8up-backup-1", "k8up-backup-2"] {
        create::<Backup>(
            &client,
            NS,
            json!({
                "metadata": { "name": name },
                "spec": {
                    "backend": backend("http://127.0.0.1:9/unused"),
                    "successfulJobsHistoryLimit": 1,
                    "failedJobsHistoryLimit": 1,
                },
            }),
        )
        .await;
        wait_succeeded::<Backup>(&client, name, &format!("backup_{name}")).await;
        // Completion timestamps are second-precise: keep the two apart so "oldest" is well defined.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    let status = wait_status(
        &backups,
        "k8up-backup-2",
        "the second backup to be scrubbed",
        |s| s.condition("Scrubbed").is_some_and(|c| c.status == "True"),
    )
    .await;
    let scrubbed = status.condition("Scrubbed").unwrap();
    assert_eq!(scrubbed.message, "Deleted 1 resources");
    wait_for("the first backup to be gone", E2E_LIMIT, || async {
        Ok::<_, kube::Error>(backups.get_opt("k8up-backup-1").await?.is_none().then_some(()))
    })
    .await
    .unwrap();
    assert!(owned_jobs(&client, NS, "backup_k8up-backup-2").await.is_empty());
    controllers.shutdown().await;
    sb.shutdown().await;
}

// test-15-backup-with-selectors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k8up_15_label_selectors_back_up_only_the_matching_pvcs_and_pre_backup_pods() {
    let sb = sandbox().await;
    let client = sb.client();
    let rest = RestServer::start().await;
    let repo = rest.repository("e2e-15");
    create_repository_secret(&client).await;
    k8up_tests::chart::install_executor_role(&client).await.unwrap();
    let labelled = [
        ("pvc-exists", json!({ "exists": "" })),
        ("pvc-value-1", json!({ "specific-values": "specific-value-1" })),
        ("pvc-value-2", json!({ "specific-values": "specific-value-2" })),
        ("pvc-other-value", json!({ "specific-values": "other" })),
        ("pvc-unlabelled", json!({})),
    ];
    for (name, labels) in &labelled {
        pvc_with(&client, NS, name, "ReadWriteMany", json!({ "labels": labels })).await;
        std::fs::write(pvc_dir(&client, name).await.join("file.txt"), name.as_bytes()).unwrap();
    }
    for (name, labels) in [
        ("pbp-exists", json!({ "exists": "yes" })),
        ("pbp-value-1", json!({ "specific-values": "specific-value-1" })),
        ("pbp-unlabelled", json!({})),
    ] {
        create::<PreBackupPod>(
            &client,
            NS,
            json!({
                "metadata": { "name": name, "labels": labels },
                "spec": {
                    "backupCommand": format!("echo {name}"),
                    "fileExtension": ".txt",
                    "pod": { "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "containers": [{ "name": name, "image": "busybox", "command": ["sleep", "infinity"] }],
                    }},
                },
            }),
        )
        .await;
    }
    let controllers = start_operator_with_builtins(&client).await;
    create::<Backup>(
        &client,
        NS,
        json!({
            "metadata": { "name": "selectors" },
            "spec": {
                "backend": backend(&repo),
                "labelSelectors": [
                    { "matchExpressions": [{ "key": "exists", "operator": "Exists" }] },
                    { "matchExpressions": [{
                        "key": "specific-values", "operator": "In",
                        "values": ["specific-value-1", "specific-value-2"],
                    }] },
                ],
            },
        }),
    )
    .await;
    wait_succeeded::<Backup>(&client, "selectors", "backup_selectors").await;

    let paths = wait_for("five Snapshot resources", E2E_LIMIT, || async {
        let items = Api::<Snapshot>::namespaced(client.clone(), NS)
            .list(&ListParams::default())
            .await?
            .items;
        let paths: BTreeSet<String> = items
            .iter()
            .flat_map(|s| s.spec.paths.clone().unwrap_or_default())
            .collect();
        Ok::<_, kube::Error>((items.len() >= 5).then_some(paths))
    })
    .await
    .unwrap();
    let expected: BTreeSet<String> = [
        "/data/pvc-exists",
        "/data/pvc-value-1",
        "/data/pvc-value-2",
        "/default-pbp-exists.txt",
        "/default-pbp-value-1.txt",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(paths, expected);
    assert_eq!(snapshot_resources(&client, NS).await.len(), 5);
    assert_eq!(restic_snapshots(&repo).len(), 5);
    controllers.shutdown().await;
    sb.shutdown().await;
}

// test-10's restore half without TLS (the TLS variant belongs to the TLS work): a repository on S3 and a
// Restore to S3, checked the way K8up's checker pod does it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_to_an_s3_repository_restores_to_an_s3_bucket_as_a_tar_gz_named_after_the_snapshot() {
    let sb = sandbox().await;
    let client = sb.client();
    let weed = Seaweed::start().await;
    create_repository_secret(&client).await;
    create_s3_credentials(&client, NS, &weed).await;
    let s3 = |bucket: &str| s3_spec(&weed, bucket);
    let backend = json!({
        "repoPasswordSecretRef": { "name": "backup-repo", "key": "password" },
        "s3": s3("repository"),
    });
    pvc_with(&client, NS, "subject-pvc", "ReadWriteMany", json!({})).await;
    let subject = pvc_dir(&client, "subject-pvc").await;
    std::fs::create_dir_all(subject.join("dir")).unwrap();
    std::fs::write(subject.join("dir/expected.txt"), b"restored through S3\n").unwrap();

    let controllers = start_operator_with_builtins(&client).await;
    create::<Backup>(
        &client,
        NS,
        json!({ "metadata": { "name": "to-s3" }, "spec": { "backend": backend } }),
    )
    .await;
    wait_succeeded::<Backup>(&client, "to-s3", "backup_to-s3").await;
    let snapshot = wait_for("the Snapshot resource", E2E_LIMIT, || async {
        Ok::<_, kube::Error>(
            Api::<Snapshot>::namespaced(client.clone(), NS)
                .list(&ListParams::default())
                .await?
                .items
                .pop(),
        )
    })
    .await
    .unwrap();

    create::<Restore>(
        &client,
        NS,
        json!({
            "metadata": { "name": "to-s3" },
            "spec": { "backend": backend, "restoreMethod": { "s3": s3("restore") } },
        }),
    )
    .await;
    wait_succeeded::<Restore>(&client, "to-s3", "restore_to-s3").await;

    // backup-<hostname>-<pvc>-<snapshot time, seconds, Z>.tar.gz, extracted with --strip-components=2.
    let time = snapshot
        .spec
        .date
        .unwrap()
        .0
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let key = format!("backup-{NS}-subject-pvc-{time}.tar.gz");
    let bucket = weed.client("restore");
    assert_eq!(bucket.list().await.unwrap(), vec![key.clone()]);
    let restored = untar_pvc_archive(&bucket.get(&key).await.unwrap());
    assert_eq!(names(&restored), ["dir/expected.txt"]);
    assert_eq!(restored[0].1, b"restored through S3\n");

    assert_no_secrets(&client, &[PASSWORD, &weed.access_key, &weed.secret_key]).await;
    controllers.shutdown().await;
    sb.shutdown().await;
}

/// Beyond K8up (#1109, truncated dumps): a 1 GiB dump streamed through exec, while the operator is killed and
/// started again in the middle of the backup: one Job, the backup completes, and the dump restores with the
/// same sha256 the source had, which the Snapshot resource also records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_gib_dump_survives_an_operator_restart_mid_backup_and_restores_with_the_same_sha256() {
    let sb = sandbox().await;
    let client = sb.client();
    let rest = RestServer::start().await;
    let repo = rest.repository("e2e-big");
    create_repository_secret(&client).await;
    k8up_tests::chart::install_executor_role(&client).await.unwrap();

    // The source is a file on a PVC the backup skips as a folder; the dump command streams it.
    pvc_with(
        &client,
        NS,
        "source",
        "ReadWriteMany",
        json!({ "annotations": { "k8up.io/backup": "false" } }),
    )
    .await;
    let big = pvc_dir(&client, "source").await.join("big.bin");
    let made = Command::new("head")
        .args(["-c", "1073741824", "/dev/urandom"])
        .stdout(std::fs::File::create(&big).unwrap())
        .status()
        .unwrap();
    assert!(made.success());
    let expected = sha256_file(&big);
    create_deployment(
        &client,
        NS,
        deployment(
            "db",
            &["db"],
            &["source"],
            json!({ "k8up.io/backupcommand": "cat /data/source/big.bin", "k8up.io/file-extension": ".bin" }),
        ),
    )
    .await;
    wait_running(&client, NS, "db", 1).await;

    let controllers = start_operator_with_builtins(&client).await;
    create::<Backup>(
        &client,
        NS,
        json!({ "metadata": { "name": "big" }, "spec": { "backend": backend(&repo) } }),
    )
    .await;
    // Kill the operator once the Job's pod runs, and start a new one.
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    wait_for("the backup pod to run", E2E_LIMIT, || async {
        let l = pods
            .list(&ListParams::default().labels("k8up.io/owned-by=backup_big"))
            .await?;
        let running = l
            .items
            .iter()
            .any(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"));
        Ok::<_, kube::Error>(running.then_some(()))
    })
    .await
    .unwrap();
    drop(controllers);
    let jobs_before: Vec<String> = owned_jobs(&client, NS, "backup_big")
        .await
        .into_iter()
        .map(|j| j.metadata.name.unwrap())
        .collect();
    let controllers = start_operator_with_builtins(&client).await;
    let status = wait_succeeded::<Backup>(&client, "big", "backup_big").await;
    assert!(status.finished);
    let jobs_after: Vec<String> = Api::<Job>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|j| j.metadata.name.unwrap())
        .collect();
    assert_eq!(jobs_after, jobs_before, "no Job was duplicated");

    let dumps = snapshots_of(&repo, "/default-db.bin");
    assert_eq!(dumps.len(), 1, "{:?}", restic_snapshots(&repo));
    let tags: Vec<String> = serde_json::from_value(dumps[0]["tags"].clone()).unwrap();
    assert!(
        tags.contains(&format!("k8up.io/dump-sha256={expected}")),
        "{tags:?}"
    );
    assert!(
        tags.contains(&"k8up.io/dump-bytes=1073741824".to_string()),
        "{tags:?}"
    );
    let resource = wait_for("the dump's Snapshot resource", E2E_LIMIT, || async {
        Ok::<_, kube::Error>(
            Api::<Snapshot>::namespaced(client.clone(), NS)
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .find(|s| s.spec.paths.clone().unwrap_or_default() == ["/default-db.bin".to_string()]),
        )
    })
    .await
    .unwrap();
    assert_eq!(resource.spec.dump_bytes, Some(1 << 30));

    // Restore (the wrapper verifies the digest as it writes) and compare with the source.
    pvc_with(&client, NS, "restored", "ReadWriteMany", json!({})).await;
    create::<Restore>(
        &client,
        NS,
        json!({
            "metadata": { "name": "big" },
            "spec": {
                "backend": backend(&repo),
                "snapshot": dumps[0]["id"],
                "restoreMethod": { "folder": { "claimName": "restored" } },
            },
        }),
    )
    .await;
    wait_succeeded::<Restore>(&client, "big", "restore_big").await;
    let restored = pvc_dir(&client, "restored").await.join("default-db.bin");
    assert_eq!(sha256_file(&restored), expected);

    controllers.shutdown().await;
    sb.shutdown().await;
}

// test-10-restore-self-signed-tls and test-11-archive-self-signed-tls: a repository on S3 over mutual TLS
// (self-signed CA, server and client certificates from a Secret volume), restored and archived to S3 over
// mutual TLS, with the TLS options on both the backend and the restore method.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k8up_10_11_backup_restore_and_archive_over_mutual_tls_with_a_self_signed_ca() {
    let sb = sandbox().await;
    let client = sb.client();
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = k8up_tests::pki::write_pki(pki_dir.path()).unwrap();
    let weed = Seaweed::start_mutual_tls(&pki).await;
    create_repository_secret(&client).await;
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap();
    create::<Secret>(
        &client,
        NS,
        json!({
            "metadata": { "name": "client-tls" },
            "stringData": { "ca.crt": read(&pki.ca), "tls.crt": read(&pki.client_cert), "tls.key": read(&pki.client_key) },
        }),
    )
    .await;
    create_s3_credentials(&client, NS, &weed).await;
    let s3 = |bucket: &str| s3_spec(&weed, bucket);
    let tls = json!({
        "caCert": "/mnt/tls/ca.crt",
        "clientCert": "/mnt/tls/tls.crt",
        "clientKey": "/mnt/tls/tls.key",
    });
    let mounts = json!([{ "name": "client-tls", "mountPath": "/mnt/tls" }]);
    let volumes = json!([{ "name": "client-tls", "secret": { "secretName": "client-tls" } }]);
    let backend = json!({
        "repoPasswordSecretRef": { "name": "backup-repo", "key": "password" },
        "s3": s3("repository"),
        "tlsOptions": tls,
        "volumeMounts": mounts,
    });
    pvc_with(&client, NS, "subject-pvc", "ReadWriteMany", json!({})).await;
    std::fs::write(
        pvc_dir(&client, "subject-pvc").await.join("expected.txt"),
        b"over mutual TLS\n",
    )
    .unwrap();

    let controllers = start_operator_with_builtins(&client).await;
    create::<Backup>(
        &client,
        NS,
        json!({
            "metadata": { "name": "mtls" },
            "spec": { "backend": backend, "volumes": volumes, "podSecurityContext": { "fsGroup": 65532 } },
        }),
    )
    .await;
    wait_succeeded::<Backup>(&client, "mtls", "backup_mtls").await;
    let restore_method =
        |bucket: &str| json!({ "s3": s3(bucket), "tlsOptions": tls, "volumeMounts": mounts });
    create::<Restore>(
        &client,
        NS,
        json!({
            "metadata": { "name": "mtls" },
            "spec": { "backend": backend, "volumes": volumes, "restoreMethod": restore_method("restore") },
        }),
    )
    .await;
    wait_succeeded::<Restore>(&client, "mtls", "restore_mtls").await;
    create::<k8up::crd::Archive>(
        &client,
        NS,
        json!({
            "metadata": { "name": "mtls" },
            "spec": { "backend": backend, "volumes": volumes, "restoreMethod": restore_method("archive") },
        }),
    )
    .await;
    wait_succeeded::<k8up::crd::Archive>(&client, "mtls", "archive_mtls").await;
    // Check and Prune on the same S3 repository over mutual TLS.
    create::<k8up::crd::Check>(
        &client,
        NS,
        json!({ "metadata": { "name": "mtls" }, "spec": { "backend": backend, "volumes": volumes } }),
    )
    .await;
    wait_succeeded::<k8up::crd::Check>(&client, "mtls", "check_mtls").await;
    create::<k8up::crd::Prune>(
        &client,
        NS,
        json!({
            "metadata": { "name": "mtls" },
            "spec": { "backend": backend, "volumes": volumes, "retention": { "keepLast": 1 } },
        }),
    )
    .await;
    wait_succeeded::<k8up::crd::Prune>(&client, "mtls", "prune_mtls").await;

    // The server really demands the client certificate.
    let (endpoint, bucket) =
        k8up::restic::config::split_endpoint(&format!("{}/restore", weed.endpoint)).unwrap();
    let anonymous = k8up::restic::s3::S3Client::new(&k8up::restic::config::S3Target {
        endpoint,
        bucket,
        access_key: weed.access_key.clone(),
        secret_key: weed.secret_key.clone(),
        ca_cert: Some(pki.ca.clone()),
        client_cert: None,
    })
    .unwrap();
    assert!(
        anonymous.list().await.is_err(),
        "a client without certificate was let in"
    );

    // The restored tarball holds the file; the archive holds one object per snapshot.
    let restored = weed.client("restore");
    let keys = restored.list().await.unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].starts_with("backup-default-subject-pvc-"), "{keys:?}");
    assert_eq!(
        untar_pvc_archive(&restored.get(&keys[0]).await.unwrap()),
        [("expected.txt".to_string(), b"over mutual TLS\n".to_vec())]
    );
    assert_eq!(
        weed.client("archive").list().await.unwrap().len(),
        snapshot_resources(&client, NS).await.len()
    );

    assert_no_secrets(&client, &[PASSWORD, &weed.access_key, &weed.secret_key]).await;
    controllers.shutdown().await;
    sb.shutdown().await;
}
