//! The controllers and the kubelet under fault injection: with a share of API requests failing
//! (409/429/500), delayed, and watches dropped, Jobs still complete and Deployments still become
//! available, because every loop is level-triggered and retries.

// Helpers outside #[test] functions unwrap too: a failed setup step fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8up_tests::api::FaultConfig;
use k8up_tests::cluster::{Sandbox, SandboxConfig, wait_for, wait_job_finished};
use kube::{Api, Client};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(120);

/// Creates an object in `default`, retrying injected failures.
async fn create_retrying<K>(client: &Client, body: serde_json::Value)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), "default");
    let obj: K = serde_json::from_value(body).unwrap();
    k8up_tests::cluster::create_retrying(&api, &obj, LIMIT)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_and_deployments_converge_while_the_api_injects_faults() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let c = sb.client();
    sb.server().faults().set(FaultConfig {
        seed: 7,
        error_rate: 0.15,
        delay_rate: 0.1,
        delay: Duration::from_millis(100),
        watch_drop_rate: 0.5,
        watch_drop_after: Duration::from_secs(1),
        ..FaultConfig::default()
    });
    create_retrying::<PersistentVolumeClaim>(
        &c,
        json!({ "metadata": { "name": "data" }, "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "1Gi" } } } }),
    )
    .await;
    create_retrying::<Job>(
        &c,
        json!({
            "metadata": { "name": "writer" },
            "spec": { "backoffLimit": 6, "template": { "spec": {
                "restartPolicy": "Never",
                "containers": [{ "name": "w", "image": "busybox", "command": ["sh", "-c", "echo ok > /data/ok"],
                    "volumeMounts": [{ "name": "d", "mountPath": "/data" }] }],
                "volumes": [{ "name": "d", "persistentVolumeClaim": { "claimName": "data" } }],
            }}},
        }),
    )
    .await;
    create_retrying::<Deployment>(
        &c,
        json!({
            "metadata": { "name": "app" },
            "spec": {
                "replicas": 2,
                "selector": { "matchLabels": { "app": "app" } },
                "template": { "metadata": { "labels": { "app": "app" } }, "spec": { "containers": [{ "name": "app", "image": "busybox" }] } },
            },
        }),
    )
    .await;
    let j = wait_job_finished(&c, "default", "writer", LIMIT).await.unwrap();
    let st = j.status.unwrap();
    assert_eq!(st.succeeded, Some(1), "{st:?}");
    let deps: Api<Deployment> = Api::namespaced(c.clone(), "default");
    wait_for("the deployment to be available", LIMIT, || async {
        let d = deps.get("app").await?;
        Ok::<_, kube::Error>((d.status.and_then(|s| s.available_replicas) == Some(2)).then_some(()))
    })
    .await
    .unwrap();
    assert!(sb.server().faults().injected() > 0, "faults were injected");
    sb.server().faults().disable();
    // Exactly two app pods: retries did not create extra replicas.
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(c.clone(), "default");
    let app_pods = wait_for("a stable pod list", LIMIT, || async {
        let l = pods
            .list(&kube::api::ListParams::default().labels("app=app"))
            .await?;
        Ok::<_, kube::Error>(Some(l.items.len()))
    })
    .await
    .unwrap();
    assert_eq!(app_pods, 2);
    sb.shutdown().await;
}
