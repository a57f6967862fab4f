//! The operator under API fault injection: with 10% of requests answered 409/429/500, 10% delayed and
//! watches dropped early, every action (Backup, Restore, Archive, Check, Prune) converges to Succeeded and
//! each object ends with exactly one Job: retries and restarted watches never duplicate a Job.
//!
//! The faults hit every client of the sandbox API, the operator's and the test's alike (the test retries its
//! own creates); the Jobs run the test planner's `exit 0` scripts, so what is exercised is the operator's
//! reconcile loop, not restic.

// Helpers outside #[test] functions unwrap too: a failed setup step fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod operator_common;

use std::time::Duration;

use k8up_tests::api::FaultConfig;
use k8up_tests::cluster::wait_for;
use kube::api::DynamicObject;
use kube::{Api, Client};
use operator_common::*;
use serde_json::json;

/// Objects per action kind.
const PER_KIND: usize = 4;
/// Deadline of the convergence wait (faults slow everything down; not a speed assertion).
const CONVERGE: Duration = Duration::from_secs(120);

/// Creates an object, retrying injected failures (an `AlreadyExists` means an earlier try landed).
async fn create_retrying(client: &Client, kind: &str, name: &str, spec: serde_json::Value) {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource(kind));
    let obj = serde_json::from_value(json!({
        "apiVersion": "k8up.io/v1", "kind": kind,
        "metadata": { "name": name, "annotations": { SCRIPT: "exit 0" } },
        "spec": spec,
    }))
    .unwrap();
    k8up_tests::cluster::create_retrying(&api, &obj, LIMIT)
        .await
        .unwrap();
}

/// The API resource of a k8up.io/v1 kind.
fn resource(kind: &str) -> kube::api::ApiResource {
    kube::api::ApiResource {
        group: "k8up.io".into(),
        version: "v1".into(),
        api_version: "k8up.io/v1".into(),
        kind: kind.into(),
        plural: format!("{}s", kind.to_lowercase()),
    }
}

/// `(kind, owned-by prefix, spec)` of every action kind.
fn kinds() -> Vec<(&'static str, &'static str, serde_json::Value)> {
    vec![
        ("Backup", "backup", json!({})),
        ("Check", "check", json!({})),
        ("Prune", "prune", json!({ "retention": { "keepLast": 3 } })),
        (
            "Restore",
            "restore",
            json!({ "restoreMethod": { "folder": { "claimName": "data" } } }),
        ),
        (
            "Archive",
            "archive",
            json!({ "restoreMethod": { "s3": { "endpoint": "http://archive.example:9000", "bucket": "archive" } } }),
        ),
    ]
}

/// Whether the object of `kind` named `name` completed with `Succeeded` (errors count as not yet).
async fn succeeded(client: &Client, kind: &str, name: &str) -> bool {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource(kind));
    let Ok(object) = api.get(name).await else {
        return false;
    };
    object.data["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Completed" && c["status"] == "True" && c["reason"] == "Succeeded")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_converges_with_one_job_each_while_the_api_injects_faults() {
    // RUST_LOG=k8up=debug shows the operator's reconciles.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let sb = sandbox().await;
    let client = sb.client();
    bound_pvc(&client, "default", "data").await;
    sb.server().faults().set(FaultConfig {
        seed: 10,
        error_rate: 0.10,
        delay_rate: 0.10,
        delay: Duration::from_millis(100),
        watch_drop_rate: 0.5,
        watch_drop_after: Duration::from_secs(2),
        ..FaultConfig::default()
    });
    // Finished objects are all kept: history cleanup would delete the oldest of each kind otherwise.
    let _operator = start_operator(
        &client,
        settings(&["--global-successful-jobs-history-limit", "10"]),
    );

    let mut objects = Vec::new();
    for (kind, prefix, spec) in kinds() {
        for i in 0..PER_KIND {
            let name = format!("{prefix}-{i}");
            create_retrying(&client, kind, &name, spec.clone()).await;
            objects.push((kind, prefix, name));
        }
    }

    let pending = wait_for("every action to succeed under faults", CONVERGE, || async {
        let mut pending = Vec::new();
        for (kind, _, name) in &objects {
            if !succeeded(&client, kind, name).await {
                pending.push(format!("{kind}/{name}"));
            }
        }
        Ok::<_, kube::Error>(pending.is_empty().then_some(()))
    })
    .await;
    // Judge the outcome with the faults off, so that the test's own reads are exact.
    sb.server().faults().set(FaultConfig::default());
    if let Err(e) = pending {
        let mut open = Vec::new();
        for (kind, _, name) in &objects {
            if !succeeded(&client, kind, name).await {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), "default", &resource(kind));
                let status = api.get(name).await.ok().map(|o| o.data["status"].to_string());
                let jobs = owned_jobs(&client, "default", &format!("{}_{name}", kind.to_lowercase())).await;
                let jobs: Vec<_> = jobs
                    .iter()
                    .map(|j| (j.metadata.name.clone(), j.status.clone()))
                    .collect();
                open.push(format!("{kind}/{name}: status {status:?}, jobs {jobs:?}"));
            }
        }
        panic!("{e}: not succeeded: {open:?}");
    }
    for (kind, prefix, name) in &objects {
        let jobs = owned_jobs(&client, "default", &format!("{prefix}_{name}")).await;
        let names: Vec<_> = jobs.iter().filter_map(|j| j.metadata.name.clone()).collect();
        assert_eq!(
            names.len(),
            1,
            "{kind}/{name} has {} jobs: {names:?}",
            names.len()
        );
    }
    sb.shutdown().await;
}
