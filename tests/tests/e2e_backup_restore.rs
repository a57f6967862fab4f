//! End to end with every real part: the operator's controllers with the embedded WASM plugins, Jobs run by
//! the sandbox as local processes running the built `k8up restic`, the real `restic` binary and a real
//! `restic-rest-server` repository. A Backup of a PVC lands in the repository and in Snapshot resources; a
//! Restore into another PVC brings every file back byte for byte.
//!
//! Against a real cluster, the same flow is what `tests/demo` shows.

// Helpers outside `#[test]` functions fail the calling test by panicking, like assertions do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod operator_common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod, Secret};
use k8up::crd::{Backup, Restore, Snapshot};
use k8up::operator::Controllers;
use k8up::operator::metrics::Metrics;
use k8up::plugin::PluginPlanner;
use k8up_tests::cluster::wait_for;
use kube::api::{ListParams, LogParams, PostParams};
use kube::{Api, Client};
use operator_common::*;
use serde_json::json;

const NS: &str = "default";
const LIMIT: Duration = Duration::from_secs(120);

/// A `restic-rest-server` on a free loopback port, serving a temporary directory; killed on drop.
struct RestServer {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl RestServer {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("restic-rest-server")
            .args(["--no-auth", "--listen", &format!("127.0.0.1:{port}"), "--path"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("restic-rest-server not found (run tests/setup)");
        let addr = format!("127.0.0.1:{port}");
        wait_for("restic-rest-server to listen", LIMIT, || async {
            Ok::<_, std::io::Error>(tokio::net::TcpStream::connect(&addr).await.ok().map(|_| ()))
        })
        .await
        .unwrap();
        RestServer {
            child,
            url: format!("http://127.0.0.1:{port}/e2e"),
            _dir: dir,
        }
    }
}

impl Drop for RestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Secret with the repository password the tests' backend names.
async fn create_repository_secret(client: &Client) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let secret = serde_json::from_value(json!({
        "metadata": { "name": "backup-repo" },
        "stringData": { "password": "e2e-repository-password" },
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &secret).await.unwrap();
}

/// The operator's controllers planning with the embedded built-in plugins.
async fn start_operator_with_builtins(client: &Client) -> Controllers {
    let planner = PluginPlanner::with_builtins(&settings(&[]).plugins)
        .await
        .unwrap();
    start_operator_with_plugins(client, planner)
}

fn start_operator_with_plugins(client: &Client, planner: PluginPlanner) -> Controllers {
    Controllers::start(
        client.clone(),
        Arc::new(settings(&["--restartpolicy", "Never"])),
        Arc::new(planner),
        Arc::new(Metrics::new()),
    )
}

/// The directory backing a bound PVC (the sandbox provisions hostPath volumes).
async fn pvc_dir(client: &Client, name: &str) -> PathBuf {
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), NS);
    let pv_name = pvcs.get(name).await.unwrap().spec.unwrap().volume_name.unwrap();
    let pv = Api::<PersistentVolume>::all(client.clone())
        .get(&pv_name)
        .await
        .unwrap();
    PathBuf::from(pv.spec.unwrap().host_path.unwrap().path)
}

fn backend(url: &str) -> serde_json::Value {
    json!({
        "repoPasswordSecretRef": { "name": "backup-repo", "key": "password" },
        "rest": { "url": url },
    })
}

/// Every regular file under `root`, relative, with its content.
fn files(root: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// The logs of every pod of the Jobs owned by `owned_by`, for failure messages.
async fn job_logs(client: &Client, owned_by: &str) -> String {
    let mut out = String::new();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    for job in owned_jobs(client, NS, owned_by).await {
        let job_name = job.metadata.name.clone().unwrap_or_default();
        let lp = ListParams::default().labels(&format!("job-name={job_name}"));
        for pod in pods.list(&lp).await.map(|l| l.items).unwrap_or_default() {
            let name = pod.metadata.name.unwrap_or_default();
            let log = pods.logs(&name, &LogParams::default()).await.unwrap_or_default();
            let state = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .map(|c| format!("{:?}", c.iter().map(|c| &c.state).collect::<Vec<_>>()))
                .unwrap_or_default();
            out.push_str(&format!("--- pod {name} of job {job_name} ({state})\n{log}\n"));
        }
    }
    out
}

/// Waits until the action's `Completed` condition is set; fails with the job logs unless it succeeded.
async fn wait_completed<K>(client: &Client, api: &Api<K>, name: &str, owned_by: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + HasStatus,
{
    let status = wait_for(&format!("{owned_by} to complete"), LIMIT, || async {
        let s = api.get(name).await?.status_of().cloned().unwrap_or_default();
        let done = s.condition("Completed").is_some_and(|c| c.status == "True");
        Ok::<_, kube::Error>(done.then_some(s))
    })
    .await;
    let status = match status {
        Ok(s) => s,
        Err(e) => panic!("{e}\n{}", job_logs(client, owned_by).await),
    };
    assert!(
        has(&status, "Completed", "True", "Succeeded"),
        "{owned_by} did not succeed: {:?}\n{}",
        status
            .conditions
            .iter()
            .map(|c| format!("{} {} {}: {}", c.type_, c.status, c.reason, c.message))
            .collect::<Vec<_>>(),
        job_logs(client, owned_by).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_a_pvc_lands_in_restic_and_a_restore_brings_every_file_back_byte_for_byte() {
    let sb = sandbox().await;
    let client = sb.client();
    let rest = RestServer::start().await;

    create_repository_secret(&client).await;

    bound_pvc(&client, NS, "app-data").await;
    let source = pvc_dir(&client, "app-data").await;
    std::fs::create_dir_all(source.join("nested/deeper")).unwrap();
    std::fs::write(source.join("hello.txt"), b"hello from the app\n").unwrap();
    let blob: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(source.join("nested/deeper/blob.bin"), &blob).unwrap();
    let before = files(&source);

    let controllers = start_operator_with_builtins(&client).await;

    let backups: Api<Backup> = Api::namespaced(client.clone(), NS);
    let backup = serde_json::from_value(json!({
        "metadata": { "name": "e2e" },
        "spec": { "backend": backend(&rest.url) },
    }))
    .unwrap();
    backups.create(&PostParams::default(), &backup).await.unwrap();
    wait_completed(&client, &backups, "e2e", "backup_e2e").await;

    // The operator keeps Snapshot resources in step with what the Job reported.
    let snapshots: Api<Snapshot> = Api::namespaced(client.clone(), NS);
    let snaps = wait_for("a Snapshot resource", LIMIT, || async {
        let l = snapshots.list(&ListParams::default()).await?;
        Ok::<_, kube::Error>((!l.items.is_empty()).then_some(l.items))
    })
    .await
    .unwrap();
    let paths: Vec<String> = snaps
        .iter()
        .flat_map(|s| s.spec.paths.clone().unwrap_or_default())
        .collect();
    assert!(paths.contains(&"/data/app-data".to_string()), "{paths:?}");

    // Restore into a fresh PVC.
    bound_pvc(&client, NS, "restored").await;
    let restores: Api<Restore> = Api::namespaced(client.clone(), NS);
    let restore = serde_json::from_value(json!({
        "metadata": { "name": "e2e" },
        "spec": {
            "backend": backend(&rest.url),
            "restoreMethod": { "folder": { "claimName": "restored" } },
        },
    }))
    .unwrap();
    restores.create(&PostParams::default(), &restore).await.unwrap();
    wait_completed(&client, &restores, "e2e", "restore_e2e").await;

    let target = pvc_dir(&client, "restored").await;
    let after = files(&target);
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&after), names(&before), "restored files differ in name");
    assert!(after == before, "restored content differs");

    // The Jobs ran the real wrapper image, not a test script.
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let all = jobs.list(&ListParams::default()).await.unwrap().items;
    assert!(all.iter().all(|j| {
        let c = &j
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0];
        c.image.as_deref().unwrap_or_default().contains("k8up")
    }));

    controllers.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_backup_pods_dump_is_backed_up_through_exec_and_restored_as_its_file() {
    let sb = sandbox().await;
    let client = sb.client();
    let rest = RestServer::start().await;
    create_repository_secret(&client).await;

    let pre_backup: k8up::crd::PreBackupPod = serde_json::from_value(json!({
        "metadata": { "name": "dumper" },
        "spec": {
            "backupCommand": "sh -c 'for i in 1 2 3; do echo row-$i; done'",
            "fileExtension": ".sql",
            "pod": { "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{ "name": "db", "image": "mariadb", "command": ["sleep", "infinity"] }],
            }},
        },
    }))
    .unwrap();
    Api::<k8up::crd::PreBackupPod>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &pre_backup)
        .await
        .unwrap();
    // The Job execs into the dump pod as the executor account, with exactly the chart's permissions.
    k8up_tests::chart::install_executor_role(&client).await.unwrap();

    let controllers = start_operator_with_builtins(&client).await;
    let backups: Api<Backup> = Api::namespaced(client.clone(), NS);
    let backup = serde_json::from_value(json!({
        "metadata": { "name": "dump" },
        "spec": { "backend": backend(&rest.url) },
    }))
    .unwrap();
    backups.create(&PostParams::default(), &backup).await.unwrap();
    wait_completed(&client, &backups, "dump", "backup_dump").await;
    let status = backups.get("dump").await.unwrap().status.unwrap();
    let pre = status.condition("PreBackupPodReady").unwrap();
    assert_eq!((pre.status.as_str(), pre.reason.as_str()), ("True", "Finished"));

    // The dump is a snapshot of its own, named after the namespace and container.
    let snapshots: Api<Snapshot> = Api::namespaced(client.clone(), NS);
    let dump = wait_for("the dump's Snapshot resource", LIMIT, || async {
        let l = snapshots.list(&ListParams::default()).await?;
        Ok::<_, kube::Error>(
            l.items
                .into_iter()
                .find(|s| s.spec.paths.clone().unwrap_or_default() == ["/default-db.sql".to_string()]),
        )
    })
    .await
    .unwrap();

    // Restored into a PVC, the dump is a file with exactly what the command printed.
    bound_pvc(&client, NS, "restored").await;
    let restores: Api<Restore> = Api::namespaced(client.clone(), NS);
    let restore = serde_json::from_value(json!({
        "metadata": { "name": "dump" },
        "spec": {
            "backend": backend(&rest.url),
            "snapshot": dump.spec.id,
            "restoreMethod": { "folder": { "claimName": "restored" } },
        },
    }))
    .unwrap();
    restores.create(&PostParams::default(), &restore).await.unwrap();
    wait_completed(&client, &restores, "dump", "restore_dump").await;
    let restored = files(&pvc_dir(&client, "restored").await);
    let names: Vec<&str> = restored.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["default-db.sql"], "{names:?}");
    assert_eq!(restored[0].1, b"row-1\nrow-2\nrow-3\n");

    controllers.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_naming_a_missing_snapshot_fails_with_a_condition_saying_so() {
    let sb = sandbox().await;
    let client = sb.client();
    let rest = RestServer::start().await;
    create_repository_secret(&client).await;
    bound_pvc(&client, NS, "restored").await;
    let controllers = start_operator_with_builtins(&client).await;

    let restores: Api<Restore> = Api::namespaced(client.clone(), NS);
    let restore = serde_json::from_value(json!({
        "metadata": { "name": "missing" },
        "spec": {
            "backend": backend(&rest.url),
            "snapshot": "deadbeef",
            "restoreMethod": { "folder": { "claimName": "restored" } },
        },
    }))
    .unwrap();
    restores.create(&PostParams::default(), &restore).await.unwrap();
    let status = wait_for("the restore to fail", LIMIT, || async {
        let s = restores.get("missing").await?.status.unwrap_or_default();
        Ok::<_, kube::Error>(s.finished.then_some(s))
    })
    .await
    .unwrap();
    let completed = status.condition("Completed").unwrap();
    assert_eq!(
        (completed.status.as_str(), completed.reason.as_str()),
        ("True", "Failed")
    );
    assert!(completed.message.contains("NoSnapshot"), "{}", completed.message);
    assert!(completed.message.contains("deadbeef"), "{}", completed.message);
    assert!(
        pvc_dir(&client, "restored")
            .await
            .read_dir()
            .unwrap()
            .next()
            .is_none(),
        "nothing was written"
    );
    controllers.shutdown().await;
    sb.shutdown().await;
}
