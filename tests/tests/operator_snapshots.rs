//! Snapshot sync: the restic report a backup or prune Job leaves in its termination message becomes
//! `Snapshot` resources of the namespace and repository (created by the operator, not by the Job).
#![allow(clippy::unwrap_used)]

mod operator_common;

use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use k8up::crd::{Backup, Prune, Snapshot};
use k8up::operator::Controllers;
use k8up::operator::driver::{JobPlan, PlanError, PlanRequest, Planner};
use k8up::operator::metrics::Metrics;
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

/// The test planner, but it plans only once the Job `job` has finished: the Job an earlier operator created
/// finishes between the operator's reads and its (idempotent) create.
struct PlansAfterTheJobFinished {
    inner: ScriptPlanner,
    client: Client,
    job: String,
}

impl Planner for PlansAfterTheJobFinished {
    fn plan<'a>(&'a self, request: PlanRequest<'a>) -> BoxFuture<'a, Result<JobPlan, PlanError>> {
        Box::pin(async move {
            let jobs: Api<Job> = Api::namespaced(self.client.clone(), "default");
            wait_for("the adopted job to finish", LIMIT, || async {
                let job = jobs.get(&self.job).await?;
                let done = job.status.and_then(|s| s.succeeded).unwrap_or(0) > 0;
                Ok::<_, kube::Error>(done.then_some(()))
            })
            .await
            .unwrap();
            self.inner.plan(request).await
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_finishes_while_a_restarted_operator_adopts_it_still_gets_its_snapshots() {
    // Found by the SIGKILL fault suite: the operator died after creating the Job and before writing
    // `started`; the next one read the Job as running, and it finished before the create found it again,
    // so the Backup was Completed without reading the Job's report (no Snapshot resource).
    let sb = sandbox().await;
    let c = sb.client();
    bound_pvc(&c, "default", "data").await;
    let report = json!({ "created": [{ "id": ID_1, "paths": ["/data/data"], "host": "default" }] });
    let script = format!("sleep 1; {}", reporting(&report));
    create(&c, "Backup", "adopted", &script).await;
    let backups: Api<Backup> = Api::namespaced(c.clone(), "default");
    let backup = backups.get("adopted").await.unwrap();
    precreate_backup_job(&c, &backup, &script).await;
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");

    let planner = PlansAfterTheJobFinished {
        inner: ScriptPlanner::default(),
        client: c.clone(),
        job: "backup-adopted-0".into(),
    };
    let operator = Controllers::start(
        c.clone(),
        Arc::new(settings(&[])),
        Arc::new(planner),
        Arc::new(Metrics::new()),
    );
    let status = wait_status(&backups, "adopted", "the backup to finish", |s| s.finished).await;
    assert!(has(&status, "Completed", "True", "Succeeded"), "{status:?}");
    let snapshots: Api<Snapshot> = Api::namespaced(c.clone(), "default");
    let synced = snapshots.get_opt("11111111").await.unwrap();
    assert!(
        synced.is_some_and(|s| s.spec.id.as_deref() == Some(ID_1)),
        "the adopted Job's report must become a Snapshot resource"
    );
    assert_eq!(jobs.list(&Default::default()).await.unwrap().items.len(), 1);
    operator.shutdown().await;
    sb.shutdown().await;
}
