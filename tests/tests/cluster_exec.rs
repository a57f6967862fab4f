//! `pods/exec` through the sandbox's HTTPS endpoint with kube-rs: large outputs stream, stdin
//! reaches the command, and the exit status comes back.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8up_tests::cluster::{Sandbox, SandboxConfig, wait_for};
use kube::api::{AttachParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

const LIMIT: Duration = Duration::from_secs(90);

/// A kube client over TCP+TLS from the sandbox's kubeconfig (not the in-process one).
async fn tcp_client(sb: &Sandbox) -> Client {
    let kc = Kubeconfig::read_from(sb.kubeconfig_path()).unwrap();
    let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    assert!(cfg.cluster_url.to_string().starts_with("https://127.0.0.1:"));
    Client::try_from(cfg).unwrap()
}

async fn running_app(c: &Client, name: &str) -> Api<Pod> {
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let body = json!({ "metadata": { "name": name }, "spec": { "containers": [{ "name": "app", "image": "ubuntu" }] } });
    pods.create(&PostParams::default(), &serde_json::from_value(body).unwrap())
        .await
        .unwrap();
    wait_for("the app to run", LIMIT, || async {
        let p = pods.get(name).await?;
        Ok::<_, kube::Error>((p.status.and_then(|s| s.phase).as_deref() == Some("Running")).then_some(()))
    })
    .await
    .unwrap();
    pods
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_streams_one_gibibyte_with_a_matching_sha256() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let c = tcp_client(&sb).await;
    let pods = running_app(&c, "big").await;
    const SIZE: u64 = 1 << 30;
    let line = b"k8up sandbox exec stream\n";
    let cmd = format!("yes 'k8up sandbox exec stream' | head -c {SIZE}");
    let mut proc = pods
        .exec(
            "big",
            vec!["sh", "-c", &cmd],
            &AttachParams::default().stderr(false),
        )
        .await
        .unwrap();
    let mut out = ReaderStream::with_capacity(proc.stdout().unwrap(), 1 << 20);
    let mut hasher = Sha256::new();
    let mut n: u64 = 0;
    while let Some(chunk) = out.next().await {
        let chunk = chunk.unwrap();
        n += chunk.len() as u64;
        hasher.update(&chunk);
    }
    let status = proc.take_status().unwrap().await.unwrap();
    assert_eq!(status.status.as_deref(), Some("Success"), "{status:?}");
    assert_eq!(n, SIZE);
    let mut expected = Sha256::new();
    let mut left = SIZE as usize;
    let block: Vec<u8> = line.iter().copied().cycle().take(line.len() * 40_000).collect();
    while left > 0 {
        let take = left.min(block.len());
        expected.update(&block[..take]);
        left -= take;
    }
    assert_eq!(hex::encode(hasher.finalize()), hex::encode(expected.finalize()));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_passes_stdin_runs_in_the_pod_namespace_and_reports_the_exit_code() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let c = tcp_client(&sb).await;
    let pods = running_app(&c, "echo").await;
    let ap = AttachParams::default().stdin(true).stderr(true);
    let mut proc = pods
        .exec(
            "echo",
            vec!["sh", "-c", "head -n 1; hostname; echo oops >&2; exit 7"],
            &ap,
        )
        .await
        .unwrap();
    let mut stdin = proc.stdin().unwrap();
    stdin.write_all(b"through stdin\n").await.unwrap();
    drop(stdin);
    let mut stdout = proc.stdout().unwrap();
    let mut stderr = proc.stderr().unwrap();
    let (mut out, mut err) = (String::new(), String::new());
    let (a, b) = tokio::join!(stdout.read_to_string(&mut out), stderr.read_to_string(&mut err));
    a.unwrap();
    b.unwrap();
    let status = proc.take_status().unwrap().await.unwrap();
    assert_eq!(out, "through stdin\necho\n");
    assert_eq!(err, "oops\n");
    assert_eq!(status.status.as_deref(), Some("Failure"));
    let code = status
        .details
        .and_then(|d| d.causes)
        .and_then(|c| c.into_iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
        .and_then(|c| c.message);
    assert_eq!(code.as_deref(), Some("7"));
    sb.shutdown().await;
}
