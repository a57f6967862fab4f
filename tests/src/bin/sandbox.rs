//! The `sandbox` binary: `serve` runs the sandbox cluster in the foreground for kubectl; `demo`
//! starts it and shows a Job writing into a PVC.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod};
use k8up_tests::cluster::{Sandbox, SandboxConfig};
use kube::api::{ListParams, LogParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "sandbox",
    about = "A Kubernetes-API test cluster that runs pods as local processes"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the sandbox in the foreground until Ctrl-C/SIGTERM.
    Serve {
        /// Where to write the admin kubeconfig.
        #[arg(long, env = "SANDBOX_KUBECONFIG")]
        kubeconfig: PathBuf,
        /// Scratch directory (default: a fresh temporary directory, removed on exit).
        #[arg(long, env = "SANDBOX_SCRATCH")]
        scratch: Option<PathBuf>,
        /// The k8up binary that `k8up` images run (default: $K8UP_BINARY or target/debug/k8up).
        #[arg(long, env = "K8UP_BINARY")]
        k8up_binary: Option<PathBuf>,
        /// HTTPS port (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        https_port: u16,
    },
    /// Start the sandbox, run a Job that writes into a PVC, print its log, then keep serving.
    Demo {
        /// Where to write the admin kubeconfig.
        #[arg(long, default_value = "/tmp/k8up-sandbox-demo.kubeconfig")]
        kubeconfig: PathBuf,
        /// Exit after the demo instead of serving until Ctrl-C.
        #[arg(long)]
        exit: bool,
    },
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("failed to listen for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("failed to listen for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Cmd::Serve {
            kubeconfig,
            scratch,
            k8up_binary,
            https_port,
        } => {
            let cfg = SandboxConfig {
                kubeconfig_path: Some(kubeconfig),
                scratch_dir: scratch,
                k8up_binary,
                https_addr: ([127, 0, 0, 1], https_port).into(),
                ..SandboxConfig::default()
            };
            let sandbox = Sandbox::start(cfg).await.context("failed to start the sandbox")?;
            eprintln!(
                "sandbox: serving at {} (plain HTTP at {})",
                sandbox.https_url(),
                sandbox.http_url()
            );
            eprintln!(
                "sandbox: kubeconfig written to {}",
                sandbox.kubeconfig_path().display()
            );
            wait_for_signal().await?;
            eprintln!("sandbox: stopping");
            sandbox.shutdown().await;
        }
        Cmd::Demo { kubeconfig, exit } => {
            let cfg = SandboxConfig {
                kubeconfig_path: Some(kubeconfig),
                ..SandboxConfig::default()
            };
            let sandbox = Sandbox::start(cfg).await.context("failed to start the sandbox")?;
            let result = demo(sandbox.client()).await;
            let kc = sandbox.kubeconfig_path().display().to_string();
            match &result {
                Ok(()) => {
                    println!("\nThe sandbox is running. Continue with kubectl:");
                    println!("  export KUBECONFIG={kc}");
                    println!("  kubectl get nodes");
                    println!("  kubectl -n demo get jobs,pods,pvc,pv");
                    println!("  kubectl -n demo logs job/write-files");
                    println!(
                        "  kubectl -n demo create job hello --image=busybox -- sh -c 'echo hello from the sandbox'"
                    );
                }
                Err(e) => eprintln!("demo failed: {e:#}"),
            }
            if !exit && result.is_ok() {
                println!("Press Ctrl-C to stop the sandbox.");
                wait_for_signal().await?;
            }
            sandbox.shutdown().await;
            result?;
        }
    }
    Ok(())
}

async fn demo(client: Client) -> anyhow::Result<()> {
    let ns = "demo";
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({ "metadata": { "name": ns } }))?,
    )
    .await
    .context("failed to create namespace")?;
    println!("created namespace {ns}");
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    pvcs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": { "name": "data" },
            "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "1Gi" } } },
        }))?,
    )
    .await
    .context("failed to create PVC")?;
    println!("created PVC {ns}/data");
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let script = "for i in 1 2 3; do echo \"file $i\" > /data/file-$i.txt; done; ls -l /data; echo written by $(hostname) on node $NODE";
    jobs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": { "name": "write-files" },
            "spec": { "backoffLimit": 0, "template": { "spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "writer", "image": "busybox", "command": ["sh", "-c", script],
                    "env": [{ "name": "NODE", "valueFrom": { "fieldRef": { "fieldPath": "spec.nodeName" } } }],
                    "volumeMounts": [{ "name": "data", "mountPath": "/data" }],
                }],
                "volumes": [{ "name": "data", "persistentVolumeClaim": { "claimName": "data" } }],
            }}},
        }))?,
    )
    .await
    .context("failed to create Job")?;
    println!("created Job {ns}/write-files; waiting for it to complete");
    let done = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let j = jobs.get("write-files").await?;
            let st = j.status.unwrap_or_default();
            if st.succeeded.unwrap_or(0) > 0 {
                return Ok::<bool, kube::Error>(true);
            }
            if st.failed.unwrap_or(0) > 0 {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .context("timed out waiting for the Job")??;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = pods
        .list(&ListParams::default().labels("job-name=write-files"))
        .await?;
    for p in list.items {
        let name = p.metadata.name.unwrap_or_default();
        let log = pods.logs(&name, &LogParams::default()).await?;
        println!("--- log of pod {ns}/{name} ---\n{log}---");
    }
    let pvc = pvcs.get("data").await?;
    println!(
        "PVC {ns}/data is bound to PV {}",
        pvc.spec.and_then(|s| s.volume_name).unwrap_or_default()
    );
    if !done {
        bail!("the Job failed");
    }
    println!("Job {ns}/write-files completed");
    Ok(())
}
