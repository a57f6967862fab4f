//! The README demo (`tests/demo`, i.e. `sandbox demo`): the product end to end in the sandbox.
//!
//! 1. the k8up CRDs are installed and the operator's controllers start, with the embedded WASM plugins;
//! 2. a Job writes files into the PVC `demo/data`;
//! 3. a `Schedule` backs the PVC up every 15 s into a restic repository served by `restic-rest-server`;
//!    the demo waits for its first Backup to succeed and lists the Snapshot resources;
//! 4. a `Restore` brings the files back into a fresh PVC `demo/restored`, compared byte for byte.
//!
//! Every Job runs the real `k8up restic` and `restic` as local processes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8up::crd::{Backup, Restore, Schedule, Snapshot, Status};
use k8up::operator::Controllers;
use k8up::operator::metrics::Metrics;
use k8up::operator::settings::{OperatorArgs, OperatorSettings};
use k8up::plugin::PluginPlanner;
use kube::api::{ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use crate::cluster::{Sandbox, wait_for};

const NS: &str = "demo";
const LIMIT: Duration = Duration::from_secs(180);

#[derive(Parser)]
struct Operator {
    #[command(flatten)]
    args: OperatorArgs,
}

/// `restic-rest-server` serving a directory on a free loopback port; killed on drop.
struct RestServer {
    child: Child,
    url: String,
}

impl RestServer {
    async fn start(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new("restic-rest-server")
            .args(["--no-auth", "--listen", &addr, "--path"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("failed to start restic-rest-server (tests/setup installs it)")?;
        let server = RestServer {
            child,
            url: format!("http://{addr}/demo"),
        };
        wait_for("restic-rest-server to listen", LIMIT, || async {
            Ok::<_, std::io::Error>(tokio::net::TcpStream::connect(&addr).await.ok().map(|_| ()))
        })
        .await?;
        Ok(server)
    }
}

impl Drop for RestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the demo leaves running: the operator and the repository server. Dropped (stopped) on shutdown.
pub struct Running {
    controllers: Option<Controllers>,
    rest: RestServer,
}

impl Running {
    /// Stops the operator's controllers (the repository server stops when this is dropped).
    pub async fn stop(mut self) {
        if let Some(c) = self.controllers.take() {
            c.shutdown().await;
        }
    }
}

/// Runs the demo; the returned handle keeps the operator running until it is stopped.
pub async fn run(sandbox: &Sandbox) -> anyhow::Result<Running> {
    let client = sandbox.client();
    install_crds(&client).await?;
    let rest = RestServer::start(&sandbox.scratch_dir().join("restic-repositories")).await?;
    println!("restic repository server: {}", rest.url);

    let args = Operator::try_parse_from(["operator", "--operator-namespace", NS])?.args;
    let settings = OperatorSettings::from_args(args).context("invalid operator settings")?;
    let planner = PluginPlanner::with_builtins(&settings.plugins)
        .await
        .context("failed to load the built-in plugins")?;
    let controllers = Controllers::start(
        client.clone(),
        Arc::new(settings),
        Arc::new(planner),
        Arc::new(Metrics::new()),
    );
    let running = Running {
        controllers: Some(controllers),
        rest,
    };
    println!("operator started (controllers for Schedule, Backup, Restore, Archive, Check, Prune)");
    match steps(&client, &running.rest.url).await {
        Ok(()) => Ok(running),
        Err(e) => {
            running.stop().await;
            Err(e)
        }
    }
}

async fn steps(client: &Client, repository: &str) -> anyhow::Result<()> {
    create_namespace(client).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": { "name": "backup-repo" },
                "stringData": { "password": "demo-repository-password" },
            }))?,
        )
        .await
        .context("failed to create the repository password Secret")?;
    pvc(client, "data").await?;
    write_files(client).await?;
    let source = pvc_dir(client, "data").await?;

    let backend = json!({
        "repoPasswordSecretRef": { "name": "backup-repo", "key": "password" },
        "rest": { "url": repository },
    });
    let schedules: Api<Schedule> = Api::namespaced(client.clone(), NS);
    schedules
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": { "name": "demo" },
                "spec": {
                    "backend": backend,
                    "successfulJobsHistoryLimit": 2,
                    "backup": { "schedule": "@every 15s" },
                },
            }))?,
        )
        .await
        .context("failed to create the Schedule")?;
    println!("created Schedule {NS}/demo (backup @every 15s); waiting for its first Backup");
    let backups: Api<Backup> = Api::namespaced(client.clone(), NS);
    let backup = wait_for("the Schedule's first Backup", LIMIT, || async {
        let list = backups
            .list(&ListParams::default().labels("k8up.io/schedule=demo"))
            .await?;
        Ok::<_, kube::Error>(list.items.into_iter().next())
    })
    .await?
    .name_any();
    println!("the Schedule created Backup {NS}/{backup}");
    let status = wait_done(&backups, &backup).await?;
    report(client, "Backup", &backup, &status).await?;

    let snapshots: Api<Snapshot> = Api::namespaced(client.clone(), NS);
    let snaps = wait_for("Snapshot resources", LIMIT, || async {
        let l = snapshots.list(&ListParams::default()).await?;
        Ok::<_, kube::Error>((!l.items.is_empty()).then_some(l.items))
    })
    .await?;
    for s in &snaps {
        println!(
            "Snapshot {}: id {} paths {:?} host {}",
            s.name_any(),
            s.spec
                .id
                .as_deref()
                .unwrap_or_default()
                .get(..8)
                .unwrap_or_default(),
            s.spec.paths.clone().unwrap_or_default(),
            s.spec.hostname.clone().unwrap_or_default()
        );
    }

    pvc(client, "restored").await?;
    let restores: Api<Restore> = Api::namespaced(client.clone(), NS);
    restores
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": { "name": "demo" },
                "spec": { "backend": backend, "restoreMethod": { "folder": { "claimName": "restored" } } },
            }))?,
        )
        .await
        .context("failed to create the Restore")?;
    println!("created Restore {NS}/demo into PVC {NS}/restored; waiting for it");
    let status = wait_done(&restores, "demo").await?;
    report(client, "Restore", "demo", &status).await?;

    let target = pvc_dir(client, "restored").await?;
    let (before, after) = (files(&source)?, files(&target)?);
    for (name, content) in &after {
        println!("restored {name} ({} bytes)", content.len());
    }
    if before != after {
        bail!("the restored PVC differs from the backed-up one");
    }
    println!("every file of {NS}/data came back byte for byte in {NS}/restored");
    Ok(())
}

async fn install_crds(client: &Client) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in k8up::crd::all() {
        let name = crd.name_any();
        crds.patch(
            &name,
            &PatchParams::apply("k8up-demo").force(),
            &Patch::Apply(&crd),
        )
        .await
        .with_context(|| format!("failed to install CRD {name}"))?;
    }
    println!("installed the k8up.io/v1 CRDs");
    Ok(())
}

async fn create_namespace(client: &Client) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({ "metadata": { "name": NS } }))?,
    )
    .await
    .context("failed to create the namespace")?;
    println!("created namespace {NS}");
    Ok(())
}

async fn pvc(client: &Client, name: &str) -> anyhow::Result<()> {
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), NS);
    pvcs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": { "name": name },
            "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "1Gi" } } },
        }))?,
    )
    .await
    .with_context(|| format!("failed to create PVC {name}"))?;
    wait_for(&format!("PVC {name} to bind"), LIMIT, || async {
        let p = pvcs.get(name).await?;
        Ok::<_, kube::Error>((p.status.and_then(|s| s.phase).as_deref() == Some("Bound")).then_some(()))
    })
    .await?;
    println!("created PVC {NS}/{name} (Bound)");
    Ok(())
}

async fn write_files(client: &Client) -> anyhow::Result<()> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let script = "mkdir -p /data/www; for i in 1 2 3; do echo \"file $i\" > /data/www/file-$i.txt; done; \
                  echo '{\"orders\": 42}' > /data/db.json; ls -lR /data; echo written on node $NODE";
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
    .context("failed to create the Job")?;
    println!("created Job {NS}/write-files; waiting for it to complete");
    let ok = wait_for("Job write-files to finish", LIMIT, || async {
        let st = jobs.get("write-files").await?.status.unwrap_or_default();
        let done = (st.succeeded.unwrap_or(0) > 0).then_some(true);
        Ok::<_, kube::Error>(done.or((st.failed.unwrap_or(0) > 0).then_some(false)))
    })
    .await?;
    print_logs(client, "job-name=write-files").await?;
    if !ok {
        bail!("the Job write-files failed");
    }
    Ok(())
}

async fn print_logs(client: &Client, selector: &str) -> anyhow::Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    for p in pods.list(&ListParams::default().labels(selector)).await?.items {
        let name = p.name_any();
        let log = pods.logs(&name, &LogParams::default()).await.unwrap_or_default();
        println!("--- log of pod {NS}/{name} ---\n{log}---");
    }
    Ok(())
}

async fn wait_done<K>(api: &Api<K>, name: &str) -> anyhow::Result<Status>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let status = wait_for(&format!("{name} to complete"), LIMIT, || async {
        let o = serde_json::to_value(api.get(name).await?).unwrap_or_default();
        let status: Status = serde_json::from_value(o["status"].clone()).unwrap_or_default();
        let done = status.condition("Completed").is_some_and(|c| c.status == "True");
        Ok::<_, kube::Error>(done.then_some(status))
    })
    .await?;
    Ok(status)
}

async fn report(client: &Client, kind: &str, name: &str, status: &Status) -> anyhow::Result<()> {
    let completed = status.condition("Completed");
    let reason = completed.map(|c| c.reason.as_str()).unwrap_or_default();
    let message = completed.map(|c| c.message.as_str()).unwrap_or_default();
    println!("{kind} {NS}/{name}: Completed ({reason}) {message}");
    if reason != "Succeeded" {
        print_logs(
            client,
            &format!("k8up.io/owned-by={}_{name}", kind.to_lowercase()),
        )
        .await?;
        bail!("{kind} {name} did not succeed");
    }
    Ok(())
}

async fn pvc_dir(client: &Client, name: &str) -> anyhow::Result<PathBuf> {
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), NS);
    let volume = pvcs
        .get(name)
        .await?
        .spec
        .and_then(|s| s.volume_name)
        .context("PVC not bound")?;
    let pv = Api::<PersistentVolume>::all(client.clone()).get(&volume).await?;
    let spec = pv.spec.context("PV without spec")?;
    let path = match (spec.host_path, spec.local) {
        (Some(h), _) => h.path,
        (None, Some(l)) => l.path,
        (None, None) => bail!("PV {volume} has neither hostPath nor local"),
    };
    Ok(PathBuf::from(path))
}

/// Every regular file under `root`, relative, with its content, sorted.
fn files(root: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let p = e?.path();
            if p.is_dir() {
                walk(root, &p, out)?;
            } else {
                let rel = p.strip_prefix(root).unwrap_or(&p).to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&p)?));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, root, &mut out).with_context(|| format!("failed to read {}", root.display()))?;
    out.sort();
    Ok(out)
}
