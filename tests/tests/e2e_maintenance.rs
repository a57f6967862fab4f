//! Prune, Check and Archive end to end with every real part: the operator with the embedded plugins, Jobs
//! running the built `k8up restic`, the real `restic`, a `restic-rest-server` repository shared by two
//! namespaces, SeaweedFS as the archive target, and a `local` repository on a PVC.

// Helpers outside `#[test]` functions fail the calling test by panicking, like assertions do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod e2e_common;
mod operator_common;

use std::collections::BTreeSet;

use e2e_common::*;
use k8up::crd::{Archive, Backup, Check, Prune, Snapshot};
use k8up_tests::cluster::wait_for;
use kube::api::ListParams;
use kube::{Api, Client};
use operator_common::*;
use serde_json::json;

/// Backs up the namespace's PVCs with `tags` and waits for success.
async fn backup(client: &Client, ns: &str, name: &str, backend: &serde_json::Value, tags: &[&str]) {
    create::<Backup>(
        client,
        ns,
        json!({ "metadata": { "name": name }, "spec": { "backend": backend, "tags": tags } }),
    )
    .await;
    wait_succeeded_in::<Backup>(client, ns, name, &format!("backup_{name}")).await;
}

/// (host, tags) of every snapshot in the repository, sorted.
fn hosts_and_tags(repository: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = restic_snapshots(repository)
        .iter()
        .map(|s| {
            let mut tags: Vec<String> = serde_json::from_value(s["tags"].clone()).unwrap_or_default();
            tags.sort();
            (s["hostname"].as_str().unwrap().to_owned(), tags)
        })
        .collect();
    out.sort();
    out
}

async fn snapshot_ids(client: &Client, ns: &str) -> BTreeSet<String> {
    Api::<Snapshot>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|s| s.spec.id)
        .collect()
}

fn ids_of_host(repository: &str, host: &str) -> BTreeSet<String> {
    restic_snapshots(repository)
        .iter()
        .filter(|s| s["hostname"] == host)
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_filters_by_tag_within_the_namespace_check_reports_damage_and_archive_uploads_the_latest() {
    let sb = sandbox().await;
    let client = sb.client();
    let rest = RestServer::start().await;
    let weed = Seaweed::start().await;
    let repo = rest.repository("shared");
    let backend = backend(&repo);
    namespace(&client, "other").await;
    k8up_tests::chart::install_executor_role(&client).await.unwrap();
    for ns in [NS, "other"] {
        create_repository_secret_in(&client, ns).await;
        pvc_with(&client, ns, "app", "ReadWriteMany", json!({})).await;
        std::fs::write(
            pvc_dir_in(&client, ns, "app").await.join("file.txt"),
            ns.as_bytes(),
        )
        .unwrap();
    }
    let controllers = start_operator_with_builtins(&client).await;

    // Three snapshots here (one tagged keep, two daily) and two daily ones of another namespace, one repository.
    backup(&client, NS, "first", &backend, &["keep"]).await;
    backup(&client, NS, "second", &backend, &["daily"]).await;
    backup(&client, NS, "third", &backend, &["daily"]).await;
    backup(&client, "other", "first", &backend, &["daily"]).await;
    backup(&client, "other", "second", &backend, &["daily"]).await;
    let other_before = ids_of_host(&repo, "other");
    assert_eq!(other_before.len(), 2);

    // keepLast 1 among the daily snapshots: exactly this namespace's older daily snapshot goes.
    create::<Prune>(
        &client,
        NS,
        json!({
            "metadata": { "name": "daily" },
            "spec": { "backend": backend, "retention": { "keepLast": 1, "tags": ["daily"] } },
        }),
    )
    .await;
    wait_succeeded::<Prune>(&client, "daily", "prune_daily").await;
    assert_eq!(
        hosts_and_tags(&repo),
        [
            (NS.to_string(), vec!["daily".to_string()]),
            (NS.to_string(), vec!["keep".to_string()]),
            ("other".to_string(), vec!["daily".to_string()]),
            ("other".to_string(), vec!["daily".to_string()]),
        ]
    );
    assert_eq!(
        ids_of_host(&repo, "other"),
        other_before,
        "another namespace's snapshots are never pruned"
    );
    // The operator re-syncs the Snapshot resources from what the prune reported.
    let expected = ids_of_host(&repo, NS);
    wait_for(
        "the Snapshot resources to follow the prune",
        E2E_LIMIT,
        || async {
            let ids = snapshot_ids(&client, NS).await;
            Ok::<_, kube::Error>((ids == expected).then_some(()))
        },
    )
    .await
    .unwrap();

    // Archive: by default the newest snapshot per host and path of this namespace; on request all of them.
    create_s3_credentials(&client, NS, &weed).await;
    let s3 = |bucket: &str| s3_spec(&weed, bucket);
    for (name, bucket, all) in [("latest", "archive-latest", false), ("all", "archive-all", true)] {
        create::<Archive>(
            &client,
            NS,
            json!({
                "metadata": { "name": name },
                "spec": { "backend": backend, "restoreMethod": { "s3": s3(bucket) }, "allSnapshots": all },
            }),
        )
        .await;
        wait_succeeded::<Archive>(&client, name, &format!("archive_{name}")).await;
    }
    let latest = weed.client("archive-latest").list().await.unwrap();
    assert_eq!(latest.len(), 1, "{latest:?}");
    assert!(latest[0].starts_with("backup-default-app-"), "{latest:?}");
    let all = weed.client("archive-all").list().await.unwrap();
    assert_eq!(all.len(), 2, "{all:?}");

    // Check: a healthy repository passes; with a pack file gone the Check fails and says so.
    create::<Check>(
        &client,
        NS,
        json!({ "metadata": { "name": "healthy" }, "spec": { "backend": backend } }),
    )
    .await;
    wait_succeeded::<Check>(&client, "healthy", "check_healthy").await;
    let data = rest.data_dir().join("shared/data");
    let pack = std::fs::read_dir(&data)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .next()
        .expect("a pack file");
    std::fs::remove_file(&pack).unwrap();
    create::<Check>(
        &client,
        NS,
        json!({ "metadata": { "name": "damaged" }, "spec": { "backend": backend } }),
    )
    .await;
    let status = wait_finished_in::<Check>(&client, NS, "damaged", "check_damaged").await;
    let completed = status.condition("Completed").unwrap();
    assert_eq!(completed.reason, "Failed", "{completed:?}");
    assert!(completed.message.contains("Check"), "{}", completed.message);

    controllers.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_repository_on_a_pvc_takes_a_backup_and_passes_a_check() {
    let sb = sandbox().await;
    let client = sb.client();
    create_repository_secret(&client).await;
    // The repository's own PVC is not backed up.
    pvc_with(
        &client,
        NS,
        "repository",
        "ReadWriteMany",
        json!({ "annotations": { "k8up.io/backup": "false" } }),
    )
    .await;
    pvc_with(&client, NS, "app", "ReadWriteMany", json!({})).await;
    std::fs::write(
        pvc_dir(&client, "app").await.join("file.txt"),
        b"to a local repository\n",
    )
    .unwrap();
    let spec = json!({
        "backend": {
            "repoPasswordSecretRef": { "name": "backup-repo", "key": "password" },
            "local": { "mountPath": "/repository" },
            "volumeMounts": [{ "name": "repository", "mountPath": "/repository" }],
        },
        "volumes": [{ "name": "repository", "persistentVolumeClaim": { "claimName": "repository" } }],
    });
    let controllers = start_operator_with_builtins(&client).await;
    create::<Backup>(
        &client,
        NS,
        json!({ "metadata": { "name": "local" }, "spec": spec }),
    )
    .await;
    wait_succeeded::<Backup>(&client, "local", "backup_local").await;
    create::<Check>(
        &client,
        NS,
        json!({ "metadata": { "name": "local" }, "spec": spec }),
    )
    .await;
    wait_succeeded::<Check>(&client, "local", "check_local").await;

    let repository = pvc_dir(&client, "repository").await;
    let repository = repository.to_str().unwrap();
    let snaps = restic_snapshots(repository);
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    assert_eq!(snaps[0]["paths"], json!(["/data/app"]));
    assert_eq!(
        restic(repository, &["dump", "latest", "/data/app/file.txt"]),
        b"to a local repository\n"
    );
    controllers.shutdown().await;
    sb.shutdown().await;
}
