//! History cleanup among siblings (REFERENCE 2.4, K8up's TestCleanup/TestJobCleanup and the #1053/#1212
//! fix): only the oldest finished objects of the same owner beyond the limits are deleted.
#![allow(clippy::unwrap_used)]

mod operator_common;

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::ConfigMap;
use k8up::crd::{Backup, Check};
use k8up_tests::cluster::wait_for;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, Resource};
use operator_common::*;
use serde_json::json;

async fn create<K>(
    client: &Client,
    kind: &str,
    name: &str,
    script: &str,
    spec: serde_json::Value,
    owner: Option<serde_json::Value>,
) where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
    K: Resource<Scope = kube::core::NamespaceResourceScope>,
{
    let api: Api<K> = Api::namespaced(client.clone(), "default");
    let mut metadata = json!({ "name": name, "annotations": { SCRIPT: script } });
    if let Some(owner) = owner {
        metadata["ownerReferences"] = json!([owner]);
    }
    let object: K = serde_json::from_value(json!({
        "apiVersion": "k8up.io/v1", "kind": kind, "metadata": metadata, "spec": spec,
    }))
    .unwrap();
    api.create(&PostParams::default(), &object).await.unwrap();
}

async fn names<K>(client: &Client) -> BTreeSet<String>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), "default");
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|o| o.meta().name.clone())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_cleanup_deletes_only_the_oldest_finished_siblings_of_the_same_owner() {
    let sb = sandbox().await;
    let c = sb.client();
    bound_pvc(&c, "default", "data").await;
    let operator = start_operator(&c, settings(&[]));
    let backups: Api<Backup> = Api::namespaced(c.clone(), "default");
    let limits = json!({ "successfulJobsHistoryLimit": 2, "failedJobsHistoryLimit": 1 });

    // Another owner's finished Backup (a ConfigMap stands in for a Schedule: only the owner UID matters).
    let owner: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let cm = owner
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "schedule-b"}})).unwrap(),
        )
        .await
        .unwrap();
    let owner_ref = json!({
        "apiVersion": "v1", "kind": "ConfigMap", "name": "schedule-b",
        "uid": cm.metadata.uid.clone().unwrap(), "controller": true,
    });
    create::<Backup>(
        &c,
        "Backup",
        "other-owner",
        "exit 0",
        limits.clone(),
        Some(owner_ref),
    )
    .await;
    wait_status(
        &backups,
        "other-owner",
        "the other owner's backup to finish",
        |s| s.finished,
    )
    .await;

    // A running Backup is never deleted.
    create::<Backup>(&c, "Backup", "running", "sleep 3600", limits.clone(), None).await;
    wait_status(&backups, "running", "the long backup to start", |s| s.started).await;

    // Standalone siblings finish one after the other, so their ages are distinct.
    for name in ["ok-1", "ok-2", "ok-3"] {
        create::<Backup>(&c, "Backup", name, "exit 0", limits.clone(), None).await;
        wait_status(&backups, name, "a backup to finish", |s| s.finished).await;
    }
    for name in ["bad-1", "bad-2"] {
        create::<Backup>(&c, "Backup", name, "exit 1", limits.clone(), None).await;
        wait_status(&backups, name, "a backup to fail", |s| s.finished).await;
    }
    let expected = set(&["other-owner", "running", "ok-2", "ok-3", "bad-2"]);
    let remaining = wait_for("the oldest siblings to be deleted", LIMIT, || async {
        let now = names::<Backup>(&c).await;
        Ok::<_, kube::Error>((now == expected).then_some(now))
    })
    .await;
    assert!(
        remaining.is_ok(),
        "{remaining:?}; now: {:?}",
        names::<Backup>(&c).await
    );

    let newest = wait_status(&backups, "bad-2", "bad-2 to be scrubbed", |s| {
        has(s, "Scrubbed", "True", "Succeeded")
    })
    .await;
    assert_eq!(
        newest.condition("Scrubbed").map(|c| c.message.as_str()),
        Some("Deleted 1 resources")
    );
    // The deleted Backups' Jobs went with them (foreground deletion).
    wait_for("the Jobs of ok-1 to be gone", LIMIT, || async {
        Ok::<_, kube::Error>(
            owned_jobs(&c, "default", "backup_ok-1")
                .await
                .is_empty()
                .then_some(()),
        )
    })
    .await
    .unwrap();
    operator.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_limits_apply_per_kind_so_checks_do_not_evict_backups() {
    let sb = sandbox().await;
    let c = sb.client();
    let operator = start_operator(&c, settings(&["--global-successful-jobs-history-limit", "1"]));
    let checks: Api<Check> = Api::namespaced(c.clone(), "default");
    let backups: Api<Backup> = Api::namespaced(c.clone(), "default");
    create::<Backup>(&c, "Backup", "lonely", "exit 0", json!({}), None).await;
    wait_status(&backups, "lonely", "the backup to finish", |s| s.finished).await;
    for name in ["check-1", "check-2"] {
        create::<Check>(&c, "Check", name, "exit 0", json!({}), None).await;
        wait_status(&checks, name, "a check to finish", |s| s.finished).await;
    }
    let expected = set(&["check-2"]);
    wait_for("the older check to be deleted", LIMIT, || async {
        Ok::<_, kube::Error>((names::<Check>(&c).await == expected).then_some(()))
    })
    .await
    .unwrap();
    assert_eq!(names::<Backup>(&c).await, set(&["lonely"]));
    operator.shutdown().await;
    sb.shutdown().await;
}
