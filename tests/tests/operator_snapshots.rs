//! Snapshot sync: the restic report a backup or prune Job leaves in its termination message becomes
//! `Snapshot` resources of the namespace and repository (created by the operator, not by the Job).
#![allow(clippy::unwrap_used)]

mod operator_common;

use k8up::crd::{Backup, Prune, Snapshot};
use k8up_tests::cluster::wait_for;
use kube::api::PostParams;
use kube::{Api, Client};
use operator_common::*;
use serde_json::json;

const ID_1: &str = "1111111122222222333333334444444455555555666666667777777788888888";
const ID_2: &str = "aaaaaaaabbbbbbbbccccccccddddddddeeeeeeeeffffffff0000000011111111";

/// A script that writes `report` as the termination message and exits 0.
fn reporting(report: &serde_json::Value) -> String {
    format!("printf '%s' '{}' > /dev/termination-log", report)
}

async fn create(client: &Client, kind: &str, name: &str, script: &str) {
    let body = json!({
        "apiVersion": "k8up.io/v1", "kind": kind,
        "metadata": { "name": name, "annotations": { SCRIPT: script } },
        "spec": { "backend": {
            "repoPasswordSecretRef": { "name": "repo", "key": "password" },
            "s3": { "endpoint": "http://seaweed:8333", "bucket": "ns-backups" },
        } },
    });
    match kind {
        "Backup" => {
            let api: Api<Backup> = Api::namespaced(client.clone(), "default");
            api.create(&PostParams::default(), &serde_json::from_value(body).unwrap())
                .await
                .unwrap();
        }
        _ => {
            let api: Api<Prune> = Api::namespaced(client.clone(), "default");
            api.create(&PostParams::default(), &serde_json::from_value(body).unwrap())
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_reported_by_a_backup_appear_and_those_a_prune_removed_disappear() {
    let sb = sandbox().await;
    let c = sb.client();
    bound_pvc(&c, "default", "data").await;
    let operator = start_operator(&c, settings(&[]));
    let report = json!({
        "version": 1, "actions": ["backup"], "host": "default", "success": true,
        "created": [
            { "id": ID_1, "time": "2026-11-25T10:00:00.123456789Z", "paths": ["/data/data"], "host": "default", "tags": ["nightly"] },
            { "id": ID_2, "time": "2026-11-25T10:00:05Z", "paths": ["/default-db.sql"], "host": "default",
              "tags": [], "dumpBytes": 1234, "dumpSha256": "ab".repeat(32) },
            { "id": "9".repeat(64), "time": "2026-11-25T10:00:05Z", "paths": ["/x"], "host": "another-namespace" },
        ],
    });
    create(&c, "Backup", "with-report", &reporting(&report)).await;
    let backups: Api<Backup> = Api::namespaced(c.clone(), "default");
    let status = wait_status(&backups, "with-report", "the backup to finish", |s| s.finished).await;
    assert!(has(&status, "Completed", "True", "Succeeded"), "{status:?}");

    let snapshots: Api<Snapshot> = Api::namespaced(c.clone(), "default");
    let first = snapshots.get("11111111").await.unwrap();
    assert_eq!(first.spec.id.as_deref(), Some(ID_1));
    assert_eq!(first.spec.paths, Some(vec!["/data/data".to_string()]));
    assert_eq!(
        first.spec.repository.as_deref(),
        Some("s3:http://seaweed:8333/ns-backups")
    );
    assert_eq!(first.spec.tags, Some(vec!["nightly".to_string()]));
    assert!(first.spec.date.is_some());
    let dump = snapshots.get("aaaaaaaa").await.unwrap();
    assert_eq!(dump.spec.dump_bytes, Some(1234));
    assert_eq!(dump.spec.dump_sha256, Some("ab".repeat(32)));
    assert!(
        snapshots.get_opt("99999999").await.unwrap().is_none(),
        "another namespace's snapshot must not be mirrored here"
    );

    let removal = json!({ "actions": ["prune"], "host": "default", "success": true, "removed": [ID_1] });
    create(&c, "Prune", "forget-old", &reporting(&removal)).await;
    let prunes: Api<Prune> = Api::namespaced(c.clone(), "default");
    wait_status(&prunes, "forget-old", "the prune to finish", |s| s.finished).await;
    wait_for("the pruned snapshot to be deleted", LIMIT, || async {
        Ok::<_, kube::Error>(snapshots.get_opt("11111111").await?.is_none().then_some(()))
    })
    .await
    .unwrap();
    assert!(snapshots.get_opt("aaaaaaaa").await.unwrap().is_some());
    operator.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_sync_is_skipped_when_the_operator_is_told_to() {
    let sb = sandbox().await;
    let c = sb.client();
    bound_pvc(&c, "default", "data").await;
    let operator = start_operator(&c, settings(&["--global-skip-snapshot-sync"]));
    let report = json!({ "created": [{ "id": ID_1, "paths": ["/data/data"], "host": "default" }] });
    create(&c, "Backup", "no-sync", &reporting(&report)).await;
    let backups: Api<Backup> = Api::namespaced(c.clone(), "default");
    wait_status(&backups, "no-sync", "the backup to finish", |s| s.finished).await;
    let snapshots: Api<Snapshot> = Api::namespaced(c.clone(), "default");
    assert!(snapshots.get_opt("11111111").await.unwrap().is_none());
    operator.shutdown().await;
    sb.shutdown().await;
}
