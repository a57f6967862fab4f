//! `pods/exec` and `pods/log` through the sandbox API server over TCP, with a test node agent
//! (see `api_common`): stdin/stdout/stderr channels, exit statuses, and a 256 MiB stream that
//! arrives intact while memory stays bounded.

mod api_common;

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8up_tests::api::{ApiConfig, ApiServer};
use kube::api::{AttachParams, LogParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

async fn tcp_server(tls: bool) -> Result<(Arc<ApiServer>, Client)> {
    let server = ApiServer::new(ApiConfig::default())?;
    server.set_node_agent(api_common::EchoAgent::shared());
    let url = if tls {
        format!("https://{}", server.serve_tls("127.0.0.1:0".parse()?).await?)
    } else {
        format!("http://{}", server.serve("127.0.0.1:0".parse()?).await?)
    };
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig_yaml(&url))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let client = Client::try_from(config)?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(
        json!({"metadata": {"name": "app"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}),
    )?;
    pods.create(&PostParams::default(), &pod).await?;
    Ok((server, client))
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_streams_256_mib_over_https_with_a_matching_checksum_and_bounded_memory() -> Result {
    let (_server, client) = tcp_server(true).await?;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let total: u64 = 256 * 1024 * 1024;
    let mut expected = Sha256::new();
    let mut left = total;
    let mut index = 0;
    while left > 0 {
        let chunk = api_common::gen_chunk(index);
        let n = chunk.len().min(left as usize);
        expected.update(&chunk[..n]);
        left -= n as u64;
        index += 1;
    }
    let before = peak_rss_kib().unwrap_or(0);
    // kube-rs buffers 1 KiB per channel by default; a larger buffer keeps the client from being the bottleneck.
    let ap = AttachParams::default().max_stdout_buf_size(1 << 20);
    let mut proc = pods
        .exec("app", ["gen".to_string(), total.to_string()], &ap)
        .await?;
    let mut stdout = proc.stdout().ok_or("no stdout")?;
    let stderr = proc.stderr().ok_or("no stderr")?;
    let err_task = tokio::spawn(api_common::read_all(stderr));
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    loop {
        let n = stdout.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        got += n as u64;
    }
    assert_eq!(got, total);
    assert_eq!(hex::encode(hasher.finalize()), hex::encode(expected.finalize()));
    assert_eq!(err_task.await??, b"done\n");
    let status = proc
        .take_status()
        .ok_or("no status")?
        .await
        .ok_or("no status sent")?;
    assert_eq!(status.status.as_deref(), Some("Success"));
    let after = peak_rss_kib().unwrap_or(0);
    assert!(
        after.saturating_sub(before) < 128 * 1024,
        "peak memory grew by {} KiB while streaming 256 MiB",
        after.saturating_sub(before)
    );
    Ok(())
}

#[tokio::test]
async fn exec_forwards_stdin_and_reports_non_zero_exit_codes_like_the_kubelet() -> Result {
    let (_server, client) = tcp_server(false).await?;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let mut proc = pods
        .exec("app", ["cat"], &AttachParams::default().stdin(true).stderr(false))
        .await?;
    let mut stdin = proc.stdin().ok_or("no stdin")?;
    let stdout = proc.stdout().ok_or("no stdout")?;
    let reader = tokio::spawn(api_common::read_all(stdout));
    stdin.write_all(b"hello through channel zero").await?;
    stdin.shutdown().await?;
    drop(stdin);
    assert_eq!(reader.await??, b"hello through channel zero");
    proc.join().await?;

    let mut proc = pods.exec("app", ["exit", "3"], &AttachParams::default()).await?;
    let stderr = proc.stderr().ok_or("no stderr")?;
    assert_eq!(api_common::read_all(stderr).await?, b"bye\n");
    let status = proc
        .take_status()
        .ok_or("no status")?
        .await
        .ok_or("no status sent")?;
    assert_eq!(status.status.as_deref(), Some("Failure"));
    assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
    let causes = status.details.and_then(|d| d.causes).unwrap_or_default();
    assert_eq!(
        causes.first().and_then(|c| c.reason.clone()).as_deref(),
        Some("ExitCode")
    );
    assert_eq!(
        causes.first().and_then(|c| c.message.clone()).as_deref(),
        Some("3")
    );
    Ok(())
}

#[tokio::test]
async fn exec_into_a_missing_pod_is_404_and_into_a_stopped_one_is_the_agents_400() -> Result {
    let (server, client) = tcp_server(false).await?;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    match pods.exec("nope", ["echo"], &AttachParams::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 404),
        other => panic!("expected 404, got {:?}", other.err()),
    }
    let missing: Pod =
        serde_json::from_value(json!({"metadata": {"name": "missing"}, "spec": {"containers": []}}))?;
    Api::<Pod>::namespaced(server.client(), "default")
        .create(&PostParams::default(), &missing)
        .await?;
    match pods.exec("missing", ["echo"], &AttachParams::default()).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 400);
            assert_eq!(s.message, "pod missing is not running");
        }
        other => panic!("expected 400, got {:?}", other.err()),
    }
    Ok(())
}

#[tokio::test]
async fn pod_logs_stream_what_the_node_agent_returns() -> Result {
    let (_server, client) = tcp_server(true).await?;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let text = pods.logs("app", &LogParams::default()).await?;
    assert_eq!(text, "app line 1\napp line 2\napp line 3\n");
    Ok(())
}
