//! The Schedule controller against the sandbox, with short `@every` schedules: objects are created at the
//! ticks with the Schedule's defaults merged, a long-running object makes later ticks skipped rather than
//! queued, invalid expressions are reported, a restart creates no duplicate, and deleting a Schedule takes
//! its EffectiveSchedule with it.

// Helpers outside `#[test]` functions fail the calling test by panicking, like assertions do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod operator_common;

use std::time::Duration;

use k8up::crd::{Backup, EffectiveSchedule, JobType, Prune, Schedule};
use k8up_tests::cluster::wait_for;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use operator_common::*;
use serde_json::json;

const NS: &str = "default";

async fn create_schedule(client: &Client, name: &str, spec: serde_json::Value) {
    let api: Api<Schedule> = Api::namespaced(client.clone(), NS);
    let schedule = serde_json::from_value(json!({ "metadata": { "name": name }, "spec": spec })).unwrap();
    api.create(&PostParams::default(), &schedule).await.unwrap();
}

async fn scheduled<K>(client: &Client, schedule: &str) -> Vec<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), NS);
    api.list(&ListParams::default().labels(&format!("k8up.io/schedule={schedule}")))
        .await
        .unwrap()
        .items
}

async fn effective(client: &Client, name: &str) -> Option<EffectiveSchedule> {
    Api::<EffectiveSchedule>::namespaced(client.clone(), NS)
        .get_opt(name)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_creates_its_actions_at_the_ticks_with_the_schedule_defaults_merged() {
    let sb = sandbox().await;
    let client = sb.client();
    let controllers = start_operator(&client, settings(&[]));
    create_schedule(
        &client,
        "nightly",
        json!({
            "backend": { "repoPasswordSecretRef": { "name": "repo", "key": "password" },
                         "rest": { "url": "http://rest.example:8000/nightly" } },
            "successfulJobsHistoryLimit": 5,
            "podConfigRef": { "name": "defaults" },
            "backup": { "schedule": "@every 2s", "tags": ["scheduled"] },
            "prune": { "schedule": "@every 3s", "retention": { "keepLast": 2 },
                       "backend": { "repoPasswordSecretRef": { "name": "other", "key": "pw" },
                                    "local": { "mountPath": "/repo" } } },
        }),
    )
    .await;

    let backups = wait_for("two scheduled Backups", LIMIT, || async {
        let b: Vec<Backup> = scheduled(&client, "nightly").await;
        Ok::<_, kube::Error>((b.len() >= 2).then_some(b))
    })
    .await
    .unwrap();
    let schedule = Api::<Schedule>::namespaced(client.clone(), NS)
        .get("nightly")
        .await
        .unwrap();
    for b in &backups {
        assert!(b.name_any().starts_with("nightly-backup-"), "{}", b.name_any());
        let owner = &b.owner_references()[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("Schedule", Some(true)));
        assert_eq!(Some(&owner.uid), schedule.metadata.uid.as_ref());
        let spec = serde_json::to_value(&b.spec).unwrap();
        assert_eq!(
            spec["backend"]["rest"]["url"], "http://rest.example:8000/nightly",
            "{spec}"
        );
        assert_eq!(spec["tags"], json!(["scheduled"]));
        assert_eq!(spec["successfulJobsHistoryLimit"], 5);
        assert_eq!(spec["podConfigRef"]["name"], "defaults");
    }
    let prunes = wait_for("a scheduled Prune", LIMIT, || async {
        let p: Vec<Prune> = scheduled(&client, "nightly").await;
        Ok::<_, kube::Error>((!p.is_empty()).then_some(p))
    })
    .await
    .unwrap();
    let spec = serde_json::to_value(&prunes[0].spec).unwrap();
    assert_eq!(
        spec["backend"]["local"]["mountPath"], "/repo",
        "the sub-spec's own backend wins: {spec}"
    );

    let es = effective(&client, "nightly").await.expect("an EffectiveSchedule");
    assert_eq!(es.spec.schedule_ref.name, "nightly");
    assert_eq!(es.owner_references()[0].kind, "Schedule");
    let entry = es.spec.entry(JobType::Backup).unwrap();
    assert_eq!(entry.schedule, "@every 2s");
    assert!(entry.next_run.is_some() && entry.last_run.is_some(), "{entry:?}");
    assert!(
        entry
            .last_object
            .as_deref()
            .unwrap()
            .starts_with("nightly-backup-")
    );
    let status = schedule.status.unwrap_or_default();
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True"),
        "{status:?}"
    );

    // Deleting the Schedule takes its EffectiveSchedule (and its objects) with it.
    Api::<Schedule>::namespaced(client.clone(), NS)
        .delete("nightly", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("the EffectiveSchedule to go", LIMIT, || async {
        Ok::<_, kube::Error>(effective(&client, "nightly").await.is_none().then_some(()))
    })
    .await
    .unwrap();
    controllers.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_running_backup_makes_later_ticks_skipped_not_queued_and_a_restart_duplicates_nothing() {
    let sb = sandbox().await;
    let client = sb.client();
    let planner = ScriptPlanner {
        default_script: Some("sleep 60".to_string()),
    };
    // A PVC to back up, so the Backup has a Job (which sleeps) instead of completing with nothing to do.
    bound_pvc(&client, NS, "data").await;
    let controllers = start_operator_with(&client, settings(&[]), planner);
    create_schedule(&client, "busy", json!({ "backup": { "schedule": "@every 1s" } })).await;
    let es = wait_for("three skipped ticks", LIMIT, || async {
        let es = effective(&client, "busy").await;
        let skipped = es
            .as_ref()
            .and_then(|e| e.spec.entry(JobType::Backup))
            .map_or(0, |e| e.skipped_ticks);
        Ok::<_, kube::Error>((skipped >= 3).then_some(es))
    })
    .await
    .unwrap()
    .unwrap();
    let backups: Vec<Backup> = scheduled(&client, "busy").await;
    assert_eq!(backups.len(), 1, "one run, the other ticks skipped: {es:?}");
    assert_eq!(
        es.spec.entry(JobType::Backup).unwrap().last_object.as_deref(),
        Some(backups[0].name_any().as_str())
    );

    // A restarted operator picks up where the EffectiveSchedule says and still creates no second Backup.
    controllers.shutdown().await;
    let planner = ScriptPlanner {
        default_script: Some("sleep 60".to_string()),
    };
    let controllers = start_operator_with(&client, settings(&[]), planner);
    let before = es.spec.entry(JobType::Backup).unwrap().skipped_ticks;
    wait_for("more skipped ticks after the restart", LIMIT, || async {
        let skipped = effective(&client, "busy")
            .await
            .and_then(|e| e.spec.entry(JobType::Backup).map(|e| e.skipped_ticks))
            .unwrap_or(0);
        Ok::<_, kube::Error>((skipped >= before + 2).then_some(()))
    })
    .await
    .unwrap();
    let backups: Vec<Backup> = scheduled(&client, "busy").await;
    assert_eq!(backups.len(), 1);
    controllers.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_expression_makes_the_schedule_not_ready_quoting_it_and_creates_nothing() {
    let sb = sandbox().await;
    let client = sb.client();
    let controllers = start_operator(&client, settings(&[]));
    create_schedule(
        &client,
        "broken",
        json!({ "backup": { "schedule": "61 * * * *" }, "check": { "schedule": "@every 1s" } }),
    )
    .await;
    let api: Api<Schedule> = Api::namespaced(client.clone(), NS);
    let ready = wait_for("Ready=False", LIMIT, || async {
        let s = api.get("broken").await?;
        let c = s
            .status
            .unwrap_or_default()
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready" && c.status == "False");
        Ok::<_, kube::Error>(c)
    })
    .await
    .unwrap();
    assert!(ready.message.contains("61 * * * *"), "{}", ready.message);
    assert_eq!(ready.reason, "InvalidSchedule");
    // The valid action still runs; the invalid one creates nothing.
    wait_for("a scheduled Check", LIMIT, || async {
        let c: Vec<k8up::crd::Check> = scheduled(&client, "broken").await;
        Ok::<_, kube::Error>((!c.is_empty()).then_some(()))
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let backups: Vec<Backup> = scheduled(&client, "broken").await;
    assert!(backups.is_empty());
    controllers.shutdown().await;
    sb.shutdown().await;
}
