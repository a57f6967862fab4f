//! Concurrency on a repository against the sandbox (REFERENCE 2.3): Check and Prune run alone, Restore blocks
//! the others, per-kind limits hold, a waiting object says what it waits for and starts when the blocker
//! finishes; objects on another repository are not held up. Overlaps are asserted from the Jobs' own
//! start and completion times.
#![allow(clippy::unwrap_used, clippy::panic)]

mod operator_common;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use k8up::crd::{Backup, Check, Prune, Restore};
use k8up_tests::cluster::wait_for;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use operator_common::*;
use serde_json::json;

async fn create<K>(client: &Client, name: &str, script: &str, spec: serde_json::Value)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let object: K = serde_json::from_value(json!({
        "metadata": { "name": name, "annotations": { SCRIPT: script } },
        "spec": spec,
    }))
    .unwrap();
    Api::<K>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
}

/// (owned-by, type, start, completion) of every finished Job; panics on a Job that failed.
async fn intervals(client: &Client) -> Vec<(String, String, Timestamp, Timestamp)> {
    let jobs = Api::<Job>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    jobs.iter()
        .map(|j| {
            let labels = j.metadata.labels.clone().unwrap_or_default();
            let status = j.status.clone().unwrap_or_default();
            let name = j.metadata.name.clone().unwrap_or_default();
            let end = status
                .completion_time
                .clone()
                .unwrap_or_else(|| panic!("job {name} did not complete: {status:?}"));
            (
                labels["k8up.io/owned-by"].clone(),
                labels["k8up.io/type"].clone(),
                status.start_time.clone().unwrap().0,
                end.0,
            )
        })
        .collect()
}

fn overlaps(a: &(String, String, Timestamp, Timestamp), b: &(String, String, Timestamp, Timestamp)) -> bool {
    // Kubernetes times have second precision: touching intervals do not overlap.
    a.2 < b.3 && b.2 < a.3
}

async fn wait_all_finished<K>(client: &Client, names: &[&str])
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + HasStatus,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), "default");
    for name in names {
        let status = wait_status(&api, name, &format!("{name} to finish"), |s| s.finished).await;
        assert!(
            has(&status, "Completed", "True", "Succeeded"),
            "{name}: {:?}",
            conditions(&status)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_and_check_run_alone_restore_blocks_backups_and_other_repositories_are_not_held_up() {
    let sb = sandbox().await;
    let client = sb.client();
    bound_pvc(&client, "default", "data").await;
    let controllers = start_operator(
        &client,
        settings(&["--global-successful-jobs-history-limit", "10"]),
    );

    create::<Prune>(&client, "prune", "sleep 4", json!({})).await;
    wait_for("the prune job", LIMIT, || async {
        Ok::<_, kube::Error>((!owned_jobs(&client, "default", "prune_prune").await.is_empty()).then_some(()))
    })
    .await
    .unwrap();
    create::<Backup>(&client, "backup-1", "sleep 1", json!({})).await;
    create::<Backup>(&client, "backup-2", "sleep 1", json!({})).await;
    create::<Check>(&client, "check", "sleep 1", json!({})).await;
    // Another repository (its own bucket) is not held up by the prune.
    create::<Backup>(
        &client,
        "elsewhere",
        "sleep 1",
        json!({ "backend": { "s3": { "bucket": "another-bucket" } } }),
    )
    .await;

    let backups: Api<Backup> = Api::namespaced(client.clone(), "default");
    let waiting = wait_status(&backups, "backup-1", "backup-1 to wait for the prune", |s| {
        s.condition("Ready").is_some_and(|c| c.reason == "Waiting")
    })
    .await;
    let message = &waiting.condition("Ready").unwrap().message;
    assert!(message.contains("prune-prune (prune)"), "{message}");
    assert!(!waiting.started);
    assert!(owned_jobs(&client, "default", "backup_backup-1").await.is_empty());
    let elsewhere = wait_status(
        &backups,
        "elsewhere",
        "the other repository's backup to finish",
        |s| s.finished,
    )
    .await;
    assert!(has(&elsewhere, "Completed", "True", "Succeeded"));

    wait_all_finished::<Prune>(&client, &["prune"]).await;
    wait_all_finished::<Backup>(&client, &["backup-1", "backup-2"]).await;
    wait_all_finished::<Check>(&client, &["check"]).await;

    // A restore blocks backups but not the other way round.
    create::<Backup>(&client, "backup-3", "sleep 3", json!({})).await;
    wait_for("backup-3's job", LIMIT, || async {
        Ok::<_, kube::Error>(
            (!owned_jobs(&client, "default", "backup_backup-3").await.is_empty()).then_some(()),
        )
    })
    .await
    .unwrap();
    create::<Restore>(
        &client,
        "restore",
        "sleep 3",
        json!({ "restoreMethod": { "folder": { "claimName": "data" } } }),
    )
    .await;
    let restores: Api<Restore> = Api::namespaced(client.clone(), "default");
    let restore = wait_status(&restores, "restore", "the restore to start", |s| s.started).await;
    assert!(!restore.finished);
    create::<Backup>(&client, "backup-4", "sleep 1", json!({})).await;
    let waiting = wait_status(&backups, "backup-4", "backup-4 to wait for the restore", |s| {
        s.condition("Ready").is_some_and(|c| c.reason == "Waiting")
    })
    .await;
    assert!(
        waiting
            .condition("Ready")
            .unwrap()
            .message
            .contains("restore-restore (restore)"),
        "{:?}",
        waiting.condition("Ready")
    );
    wait_all_finished::<Restore>(&client, &["restore"]).await;
    wait_all_finished::<Backup>(&client, &["backup-3", "backup-4"]).await;

    // From the Jobs' own times: nothing overlapped a prune, a check or a restore on the shared repository,
    // except a backup that was already running when the restore started.
    let jobs = intervals(&client).await;
    let shared: Vec<_> = jobs.iter().filter(|j| j.0 != "backup_elsewhere").collect();
    for a in &shared {
        for b in &shared {
            if a.0 == b.0 || !overlaps(a, b) {
                continue;
            }
            let allowed = (a.0 == "restore_restore" && b.0 == "backup_backup-3")
                || (b.0 == "restore_restore" && a.0 == "backup_backup-3")
                || (a.1 == "backup" && b.1 == "backup");
            assert!(allowed, "{} overlapped {}: {jobs:?}", a.0, b.0);
        }
    }
    let elsewhere = jobs.iter().find(|j| j.0 == "backup_elsewhere").unwrap();
    let prune = jobs.iter().find(|j| j.0 == "prune_prune").unwrap();
    assert!(
        overlaps(elsewhere, prune),
        "the other repository's backup ran beside the prune: {jobs:?}"
    );

    controllers.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_limit_of_one_runs_backups_of_a_repository_one_after_the_other() {
    let sb = sandbox().await;
    let client = sb.client();
    bound_pvc(&client, "default", "data").await;
    let controllers = start_operator(&client, settings(&["--global-concurrent-backup-jobs-limit", "1"]));
    for name in ["one", "two", "three"] {
        create::<Backup>(&client, name, "sleep 2", json!({})).await;
    }
    let backups: Api<Backup> = Api::namespaced(client.clone(), "default");
    let waiting = wait_for("a backup waiting for a free slot", LIMIT, || async {
        for name in ["one", "two", "three"] {
            let s = backups.get(name).await?.status.unwrap_or_default();
            if let Some(c) = s.condition("Ready").filter(|c| c.reason == "Waiting") {
                return Ok::<_, kube::Error>(Some(c.message.clone()));
            }
        }
        Ok(None)
    })
    .await
    .unwrap();
    assert!(waiting.contains("the limit is 1"), "{waiting}");
    assert!(
        waiting.contains("BACKUP_GLOBAL_CONCURRENT_BACKUP_JOBS_LIMIT"),
        "{waiting}"
    );
    wait_all_finished::<Backup>(&client, &["one", "two", "three"]).await;
    let jobs = intervals(&client).await;
    assert_eq!(jobs.len(), 3);
    for a in &jobs {
        for b in &jobs {
            assert!(
                a.0 == b.0 || !overlaps(a, b),
                "{} overlapped {}: {jobs:?}",
                a.0,
                b.0
            );
        }
    }
    controllers.shutdown().await;
    sb.shutdown().await;
}
