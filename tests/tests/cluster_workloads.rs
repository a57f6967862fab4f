//! Nodes, scheduling and Deployments in the sandbox.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8up_tests::cluster::{Sandbox, SandboxConfig, wait_for};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(90);

async fn create<K>(client: &Client, body: serde_json::Value) -> K
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &serde_json::from_value(body).unwrap())
        .await
        .unwrap()
}

async fn node_of(c: &Client, pod: &str) -> String {
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    wait_for(&format!("pod {pod} to be scheduled"), LIMIT, || async {
        Ok::<_, kube::Error>(pods.get(pod).await?.spec.and_then(|s| s.node_name))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_has_three_ready_nodes_labelled_with_their_hostname() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let nodes: Api<Node> = Api::all(sb.client());
    let list = wait_for("three nodes", LIMIT, || async {
        let l = nodes.list(&ListParams::default()).await?;
        Ok::<_, kube::Error>((l.items.len() == 3).then_some(l.items))
    })
    .await
    .unwrap();
    let mut names: Vec<String> = list.iter().map(|n| n.metadata.name.clone().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["node-a", "node-b", "node-c"]);
    for n in &list {
        assert_eq!(
            n.metadata.labels.as_ref().unwrap().get("kubernetes.io/hostname"),
            n.metadata.name.as_ref()
        );
        let ready = n
            .status
            .as_ref()
            .unwrap()
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        assert!(ready);
    }
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_land_on_the_node_of_their_rwo_pvc_and_honour_node_selectors() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let c = sb.client();
    create::<PersistentVolumeClaim>(
        &c,
        json!({ "metadata": { "name": "rwo" }, "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "1Gi" } } } }),
    )
    .await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), "default");
    let pv_name = wait_for("the PVC to bind", LIMIT, || async {
        let p = pvcs.get("rwo").await?;
        let bound = p.status.and_then(|s| s.phase).as_deref() == Some("Bound");
        Ok::<_, kube::Error>(if bound {
            p.spec.and_then(|s| s.volume_name)
        } else {
            None
        })
    })
    .await
    .unwrap();
    let pv = Api::<PersistentVolume>::all(c.clone())
        .get(&pv_name)
        .await
        .unwrap();
    let term = &pv
        .spec
        .as_ref()
        .unwrap()
        .node_affinity
        .as_ref()
        .unwrap()
        .required
        .as_ref()
        .unwrap()
        .node_selector_terms[0];
    let expr = &term.match_expressions.as_ref().unwrap()[0];
    assert_eq!(expr.key, "kubernetes.io/hostname");
    let pv_node = expr.values.as_ref().unwrap()[0].clone();
    for i in 0..3 {
        let name = format!("user-{i}");
        create::<Pod>(
            &c,
            json!({
                "metadata": { "name": name },
                "spec": {
                    "containers": [{ "name": "app", "image": "busybox", "volumeMounts": [{ "name": "v", "mountPath": "/data" }] }],
                    "volumes": [{ "name": "v", "persistentVolumeClaim": { "claimName": "rwo" } }],
                },
            }),
        )
        .await;
        assert_eq!(node_of(&c, &name).await, pv_node, "pod {name}");
    }
    for target in ["node-b", "node-c"] {
        let name = format!("pinned-to-{target}");
        create::<Pod>(
            &c,
            json!({
                "metadata": { "name": name },
                "spec": { "nodeSelector": { "kubernetes.io/hostname": target }, "containers": [{ "name": "app", "image": "busybox" }] },
            }),
        )
        .await;
        assert_eq!(node_of(&c, &name).await, target);
    }
    create::<Pod>(
        &c,
        json!({
            "metadata": { "name": "by-affinity" },
            "spec": {
                "affinity": { "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": { "nodeSelectorTerms": [
                    { "matchExpressions": [{ "key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["node-a", "node-b"] }] },
                ]}}},
                "containers": [{ "name": "app", "image": "busybox" }],
            },
        }),
    )
    .await;
    assert_eq!(node_of(&c, "by-affinity").await, "node-c");
    sb.shutdown().await;
}

fn deployment(name: &str, replicas: i32, command: &[&str], deadline: i32) -> serde_json::Value {
    json!({
        "metadata": { "name": name },
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": deadline,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "app", "image": "postgres", "command": command }] },
            },
        },
    })
}

fn condition(d: &Deployment, type_: &str) -> Option<(String, String)> {
    d.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_becomes_available_and_replaces_a_deleted_pod() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let c = sb.client();
    create::<Deployment>(&c, deployment("web", 2, &["sleep", "infinity"], 600)).await;
    let deps: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let available = || async {
        let d = deps.get("web").await?;
        let st = d.status.clone().unwrap_or_default();
        let ok = st.available_replicas == Some(2)
            && condition(&d, "Available") == Some(("True".into(), "MinimumReplicasAvailable".into()));
        Ok::<_, kube::Error>(ok.then_some(d))
    };
    let d = wait_for("the deployment to be available", LIMIT, available)
        .await
        .unwrap();
    let st = d.status.clone().unwrap();
    assert_eq!(
        (st.replicas, st.ready_replicas, st.updated_replicas),
        (Some(2), Some(2), Some(2))
    );
    assert_eq!(
        condition(&d, "Progressing"),
        Some(("True".into(), "NewReplicaSetAvailable".into()))
    );
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let list = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items;
    assert_eq!(list.len(), 2);
    let victim = list[0].metadata.name.clone().unwrap();
    pods.delete(&victim, &DeleteParams::default()).await.unwrap();
    wait_for("a replacement pod", LIMIT, || async {
        let l = pods.list(&ListParams::default().labels("app=web")).await?.items;
        let running = l
            .iter()
            .filter(|p| {
                p.metadata.name.as_deref() != Some(victim.as_str())
                    && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            })
            .count();
        Ok::<_, kube::Error>((running == 2).then_some(()))
    })
    .await
    .unwrap();
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_whose_pods_never_become_ready_exceeds_its_progress_deadline() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let c = sb.client();
    create::<Deployment>(&c, deployment("crashy", 1, &["sh", "-c", "exit 1"], 2)).await;
    let deps: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let d = wait_for("the progress deadline", LIMIT, || async {
        let d = deps.get("crashy").await?;
        Ok::<_, kube::Error>(
            (condition(&d, "Progressing") == Some(("False".into(), "ProgressDeadlineExceeded".into())))
                .then_some(d),
        )
    })
    .await
    .unwrap();
    assert_eq!(condition(&d, "Available").map(|c| c.0).as_deref(), Some("False"));
    assert_eq!(d.status.unwrap().available_replicas.unwrap_or(0), 0);
    sb.shutdown().await;
}
