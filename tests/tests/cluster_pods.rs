//! What a container sees in the sandbox: environment (`valueFrom`, `envFrom`, `$(VAR)`), volumes
//! (PVC, secret, configMap, read-only mounts) and in-cluster credentials.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8up_tests::cluster::{Sandbox, SandboxConfig, wait_for};
use kube::api::{LogParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(90);

async fn create<K>(client: &Client, ns: &str, body: serde_json::Value) -> K
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    api.create(&PostParams::default(), &serde_json::from_value(body).unwrap())
        .await
        .unwrap()
}

/// Waits for pod `name` to end and returns (phase, log).
async fn finished_pod(client: &Client, ns: &str, name: &str) -> (String, String) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let phase = wait_for(&format!("pod {name} to end"), LIMIT, || async {
        let p = pods.get(name).await?;
        let phase = p.status.and_then(|s| s.phase).unwrap_or_default();
        Ok::<_, kube::Error>(matches!(phase.as_str(), "Succeeded" | "Failed").then_some(phase))
    })
    .await
    .unwrap();
    (phase, pods.logs(name, &LogParams::default()).await.unwrap())
}

fn pod(name: &str, script: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut p = json!({
        "metadata": { "name": name, "labels": { "app": "probe" } },
        "spec": { "restartPolicy": "Never", "containers": [{ "name": "main", "image": "alpine", "command": ["sh", "-c", script] }] },
    });
    if let (Some(c), Some(e)) = (
        p["spec"]["containers"][0].as_object_mut(),
        extra.get("container").and_then(|v| v.as_object()),
    ) {
        c.extend(e.clone());
    }
    if let (Some(s), Some(e)) = (
        p["spec"].as_object_mut(),
        extra.get("spec").and_then(|v| v.as_object()),
    ) {
        s.extend(e.clone());
    }
    p
}

async fn secret_and_configmap(c: &Client) {
    create::<Secret>(c, "default", json!({ "metadata": { "name": "creds" }, "stringData": { "user": "alice", "password": "s3cr3t", "bad-key": "x" } })).await;
    create::<ConfigMap>(
        c,
        "default",
        json!({ "metadata": { "name": "settings" }, "data": { "MODE": "fast", "level": "3" } }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_value_from_env_from_and_var_expansion_reach_the_container() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let c = sb.client();
    secret_and_configmap(&c).await;
    let extra = json!({ "container": {
        "envFrom": [{ "configMapRef": { "name": "settings" } }, { "secretRef": { "name": "creds" }, "prefix": "S_" }],
        "env": [
            { "name": "USER_NAME", "valueFrom": { "secretKeyRef": { "name": "creds", "key": "user" } } },
            { "name": "LEVEL", "valueFrom": { "configMapKeyRef": { "name": "settings", "key": "level" } } },
            { "name": "POD", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } },
            { "name": "NS", "valueFrom": { "fieldRef": { "fieldPath": "metadata.namespace" } } },
            { "name": "NODE", "valueFrom": { "fieldRef": { "fieldPath": "spec.nodeName" } } },
            { "name": "SA", "valueFrom": { "fieldRef": { "fieldPath": "spec.serviceAccountName" } } },
            { "name": "IP", "valueFrom": { "fieldRef": { "fieldPath": "status.podIP" } } },
            { "name": "GREETING", "value": "hi $(USER_NAME) at level $(LEVEL), $(UNDEFINED) $$(USER_NAME)" },
            { "name": "MISSING_OPTIONAL", "valueFrom": { "secretKeyRef": { "name": "creds", "key": "nope", "optional": true } } },
        ],
        "args": ["$(POD)"],
    }});
    let script = "echo \"$1|$MODE|$S_password|$USER_NAME|$NS|$NODE|$SA|$IP|$GREETING|${MISSING_OPTIONAL-unset}|$HOSTNAME\"";
    let mut body = pod("env-probe", script, extra);
    body["spec"]["containers"][0]["command"] = json!(["sh", "-c", script, "sh"]);
    create::<Pod>(&c, "default", body).await;
    let (phase, log) = finished_pod(&c, "default", "env-probe").await;
    assert_eq!(phase, "Succeeded", "{log}");
    let node = Api::<Pod>::namespaced(c.clone(), "default")
        .get("env-probe")
        .await
        .unwrap()
        .spec
        .unwrap()
        .node_name
        .unwrap();
    assert_eq!(
        log,
        format!(
            "env-probe|fast|s3cr3t|alice|default|{node}|default|127.0.0.1|hi alice at level 3, $(UNDEFINED) $(USER_NAME)|unset|env-probe\n"
        )
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pvc_shared_by_two_pods_shows_the_same_bytes_and_read_only_mounts_refuse_writes() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let c = sb.client();
    create::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(
        &c,
        "default",
        json!({ "metadata": { "name": "shared" }, "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "1Gi" } } } }),
    )
    .await;
    let volumes = |ro: bool| {
        json!({
            "container": { "volumeMounts": [{ "name": "v", "mountPath": "/data/shared", "readOnly": ro }] },
            "spec": { "volumes": [{ "name": "v", "persistentVolumeClaim": { "claimName": "shared" } }] },
        })
    };
    create::<Pod>(
        &c,
        "default",
        pod(
            "writer",
            "head -c 100000 /dev/urandom > /data/shared/blob && sha256sum /data/shared/blob",
            volumes(false),
        ),
    )
    .await;
    let (phase, written) = finished_pod(&c, "default", "writer").await;
    assert_eq!(phase, "Succeeded", "{written}");
    create::<Pod>(
        &c,
        "default",
        pod("reader", "sha256sum /data/shared/blob; if touch /data/shared/x 2>/dev/null; then echo writable; else echo read-only; fi", volumes(true)),
    )
    .await;
    let (phase, read) = finished_pod(&c, "default", "reader").await;
    assert_eq!(phase, "Succeeded", "{read}");
    assert_eq!(read, format!("{written}read-only\n"));
    assert!(
        !std::path::Path::new("/data/shared").exists(),
        "the mount point must not appear on the host"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_and_configmap_volumes_are_files_with_items_and_modes() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let c = sb.client();
    secret_and_configmap(&c).await;
    let extra = json!({
        "container": { "volumeMounts": [
            { "name": "creds", "mountPath": "/etc/creds" },
            { "name": "settings", "mountPath": "/config" },
        ]},
        "spec": { "volumes": [
            { "name": "creds", "secret": { "secretName": "creds", "defaultMode": 0o400 } },
            { "name": "settings", "configMap": { "name": "settings", "items": [{ "key": "MODE", "path": "sub/mode.txt", "mode": 0o600 }] } },
        ]},
    });
    let script = "cat /etc/creds/password; echo; stat -c %a /etc/creds/user; cat /config/sub/mode.txt; echo; stat -c %a /config/sub/mode.txt; ls /config";
    create::<Pod>(&c, "default", pod("files", script, extra)).await;
    let (phase, log) = finished_pod(&c, "default", "files").await;
    assert_eq!(phase, "Succeeded", "{log}");
    assert_eq!(log, "s3cr3t\n400\nfast\n600\nsub\n");
    assert!(!std::path::Path::new("/etc/creds").exists() && !std::path::Path::new("/config").exists());
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_get_service_account_credentials_that_the_api_server_accepts() {
    if k8up_tests::runtime::images::which("curl").is_none() {
        eprintln!("curl not installed; skipping the HTTPS half of this test");
        return;
    }
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let c = sb.client();
    let script = "D=/var/run/secrets/kubernetes.io/serviceaccount; cat $D/namespace; echo; \
                  curl -sS -o /dev/null -w '%{http_code}\\n' --cacert $D/ca.crt -H \"Authorization: Bearer $(cat $D/token)\" \
                  https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api/v1/namespaces/default/pods; \
                  curl -sS -o /dev/null -w '%{http_code}\\n' --cacert $D/ca.crt -H 'Authorization: Bearer wrong' \
                  https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api/v1/namespaces/default/pods";
    create::<Pod>(&c, "default", pod("sa-probe", script, json!({}))).await;
    let (phase, log) = finished_pod(&c, "default", "sa-probe").await;
    assert_eq!(phase, "Succeeded", "{log}");
    // The token is known (403: no RBAC grants it pods) while a wrong token is unknown (401); the CA
    // verifies the server certificate or curl would fail.
    assert_eq!(log, "default\n403\n401\n");
    sb.shutdown().await;
}
