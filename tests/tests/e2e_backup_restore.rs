//! End to end with every real part: the operator's controllers with the embedded WASM plugins, Jobs run by
//! the sandbox as local processes running the built `k8up restic`, the real `restic` binary and a real
//! `restic-rest-server` repository. A Backup of a PVC lands in the repository and in Snapshot resources; a
//! Restore into another PVC brings every file back byte for byte.
//!
//! Against a real cluster, the same flow is what `tests/demo` shows. K8up's e2e scenarios are in
//! `e2e_scenarios.rs`.

// Helpers outside `#[test]` functions fail the calling test by panicking, like assertions do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod e2e_common;
mod operator_common;

use e2e_common::*;
use k8s_openapi::api::batch::v1::Job;
use k8up::crd::{Backup, Restore, Snapshot};
use k8up_tests::cluster::wait_for;
use kube::Api;
use kube::api::{ListParams, PostParams};
use operator_common::*;
use serde_json::json;

const LIMIT: std::time::Duration = E2E_LIMIT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_a_pvc_lands_in_restic_and_a_restore_brings_every_file_back_byte_for_byte() {
    let sb = sandbox().await;
    let client = sb.client();
    let rest = RestServer::start().await;

    create_repository_secret(&client).await;

    bound_pvc(&client, NS, "app-data").await;
    let source = pvc_dir(&client, "app-data").await;
    std::fs::create_dir_all(source.join("nested/deeper")).unwrap();
    std::fs::write(source.join("hello.txt"), b"hello from the app\n").unwrap();
    let blob: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(source.join("nested/deeper/blob.bin"), &blob).unwrap();
    let before = files(&source);

    let controllers = start_operator_with_builtins(&client).await;

    let backups: Api<Backup> = Api::namespaced(client.clone(), NS);
    let backup = serde_json::from_value(json!({
        "metadata": { "name": "e2e" },
        "spec": { "backend": backend(&rest.repository("e2e")) },
    }))
    .unwrap();
    backups.create(&PostParams::default(), &backup).await.unwrap();
    wait_succeeded::<Backup>(&client, "e2e", "backup_e2e").await;

    // The operator keeps Snapshot resources in step with what the Job reported.
    let snapshots: Api<Snapshot> = Api::namespaced(client.clone(), NS);
    let snaps = wait_for("a Snapshot resource", LIMIT, || async {
        let l = snapshots.list(&ListParams::default()).await?;
        Ok::<_, kube::Error>((!l.items.is_empty()).then_some(l.items))
    })
    .await
    .unwrap();
    let paths: Vec<String> = snaps
        .iter()
        .flat_map(|s| s.spec.paths.clone().unwrap_or_default())
        .collect();
    assert!(paths.contains(&"/data/app-data".to_string()), "{paths:?}");

    // Restore into a fresh PVC.
    bound_pvc(&client, NS, "restored").await;
    let restores: Api<Restore> = Api::namespaced(client.clone(), NS);
    let restore = serde_json::from_value(json!({
        "metadata": { "name": "e2e" },
        "spec": {
            "backend": backend(&rest.repository("e2e")),
            "restoreMethod": { "folder": { "claimName": "restored" } },
        },
    }))
    .unwrap();
    restores.create(&PostParams::default(), &restore).await.unwrap();
    wait_succeeded::<Restore>(&client, "e2e", "restore_e2e").await;

    let target = pvc_dir(&client, "restored").await;
    let after = files(&target);
    assert_eq!(names(&after), names(&before), "restored files differ in name");
    assert!(after == before, "restored content differs");

    // The Jobs ran the real wrapper image, not a test script.
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let all = jobs.list(&ListParams::default()).await.unwrap().items;
    assert!(all.iter().all(|j| {
        let c = &j
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0];
        c.image.as_deref().unwrap_or_default().contains("k8up")
    }));

    assert_no_secrets(&client, &[PASSWORD]).await;
    controllers.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_backup_pods_dump_is_backed_up_through_exec_and_restored_as_its_file() {
    let sb = sandbox().await;
    let client = sb.client();
    let rest = RestServer::start().await;
    create_repository_secret(&client).await;

    let pre_backup: k8up::crd::PreBackupPod = serde_json::from_value(json!({
        "metadata": { "name": "dumper" },
        "spec": {
            "backupCommand": "sh -c 'for i in 1 2 3; do echo row-$i; done'",
            "fileExtension": ".sql",
            "pod": { "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{ "name": "db", "image": "mariadb", "command": ["sleep", "infinity"] }],
            }},
        },
    }))
    .unwrap();
    Api::<k8up::crd::PreBackupPod>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &pre_backup)
        .await
        .unwrap();
    // The Job execs into the dump pod as the executor account, with exactly the chart's permissions.
    k8up_tests::chart::install_executor_role(&client).await.unwrap();

    let controllers = start_operator_with_builtins(&client).await;
    let backups: Api<Backup> = Api::namespaced(client.clone(), NS);
    let backup = serde_json::from_value(json!({
        "metadata": { "name": "dump" },
        "spec": { "backend": backend(&rest.repository("e2e")) },
    }))
    .unwrap();
    backups.create(&PostParams::default(), &backup).await.unwrap();
    wait_succeeded::<Backup>(&client, "dump", "backup_dump").await;
    let status = backups.get("dump").await.unwrap().status.unwrap();
    let pre = status.condition("PreBackupPodReady").unwrap();
    assert_eq!((pre.status.as_str(), pre.reason.as_str()), ("True", "Finished"));

    // The dump is a snapshot of its own, named after the namespace and container.
    let snapshots: Api<Snapshot> = Api::namespaced(client.clone(), NS);
    let dump = wait_for("the dump's Snapshot resource", LIMIT, || async {
        let l = snapshots.list(&ListParams::default()).await?;
        Ok::<_, kube::Error>(
            l.items
                .into_iter()
                .find(|s| s.spec.paths.clone().unwrap_or_default() == ["/default-db.sql".to_string()]),
        )
    })
    .await
    .unwrap();

    // Restored into a PVC, the dump is a file with exactly what the command printed.
    bound_pvc(&client, NS, "restored").await;
    let restores: Api<Restore> = Api::namespaced(client.clone(), NS);
    let restore = serde_json::from_value(json!({
        "metadata": { "name": "dump" },
        "spec": {
            "backend": backend(&rest.repository("e2e")),
            "snapshot": dump.spec.id,
            "restoreMethod": { "folder": { "claimName": "restored" } },
        },
    }))
    .unwrap();
    restores.create(&PostParams::default(), &restore).await.unwrap();
    wait_succeeded::<Restore>(&client, "dump", "restore_dump").await;
    let restored = files(&pvc_dir(&client, "restored").await);
    let names: Vec<&str> = restored.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["default-db.sql"], "{names:?}");
    assert_eq!(restored[0].1, b"row-1\nrow-2\nrow-3\n");

    assert_no_secrets(&client, &[PASSWORD]).await;
    controllers.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_naming_a_missing_snapshot_fails_with_a_condition_saying_so() {
    let sb = sandbox().await;
    let client = sb.client();
    let rest = RestServer::start().await;
    create_repository_secret(&client).await;
    bound_pvc(&client, NS, "restored").await;
    let controllers = start_operator_with_builtins(&client).await;

    let restores: Api<Restore> = Api::namespaced(client.clone(), NS);
    let restore = serde_json::from_value(json!({
        "metadata": { "name": "missing" },
        "spec": {
            "backend": backend(&rest.repository("e2e")),
            "snapshot": "deadbeef",
            "restoreMethod": { "folder": { "claimName": "restored" } },
        },
    }))
    .unwrap();
    restores.create(&PostParams::default(), &restore).await.unwrap();
    let status = wait_for("the restore to fail", LIMIT, || async {
        let s = restores.get("missing").await?.status.unwrap_or_default();
        Ok::<_, kube::Error>(s.finished.then_some(s))
    })
    .await
    .unwrap();
    let completed = status.condition("Completed").unwrap();
    assert_eq!(
        (completed.status.as_str(), completed.reason.as_str()),
        ("True", "Failed")
    );
    assert!(completed.message.contains("NoSnapshot"), "{}", completed.message);
    assert!(completed.message.contains("deadbeef"), "{}", completed.message);
    // A permanent failure is not retried: the wrapper's exit status matches the Job's podFailurePolicy.
    let jobs = owned_jobs(&client, NS, "restore_missing").await;
    let failed = jobs[0]
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Failed" && c.status == "True"))
        .and_then(|c| c.reason.clone());
    assert_eq!(failed.as_deref(), Some("PodFailurePolicy"));
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), NS);
    let lp = ListParams::default().labels(&format!("job-name={}", jobs[0].metadata.name.clone().unwrap()));
    assert_eq!(
        pods.list(&lp).await.unwrap().items.len(),
        1,
        "one pod, no retries"
    );
    assert!(
        pvc_dir(&client, "restored")
            .await
            .read_dir()
            .unwrap()
            .next()
            .is_none(),
        "nothing was written"
    );
    assert_no_secrets(&client, &[PASSWORD]).await;
    controllers.shutdown().await;
    sb.shutdown().await;
}
