//! Shared harness of the end-to-end suites: the operator with the embedded plugins, real repositories
//! (`restic-rest-server`, SeaweedFS S3), PVC directories, the real `restic` binary to look into a repository,
//! and waits that fail with the Jobs' logs.

// Helpers fail the calling test by panicking, like assertions do.
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod, Secret};
use k8up::crd::Status;
use k8up::operator::Controllers;
use k8up::operator::metrics::Metrics;
use k8up::plugin::PluginPlanner;
use k8up_tests::cluster::wait_for;
use kube::api::{ListParams, LogParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

pub use k8up_tests::servers::{RestServer, Seaweed};

use crate::operator_common::*;

/// The namespace of the e2e objects.
pub const NS: &str = "default";
/// Upper bound of an e2e wait (a deadline, not a speed assertion): Jobs run the real restic.
pub const E2E_LIMIT: Duration = Duration::from_secs(180);
/// The repository password the tests' backends name.
pub const PASSWORD: &str = "e2e-repository-password";

/// The Secret `backup-repo` with the repository password, in `ns`.
pub async fn create_repository_secret_in(client: &Client, ns: &str) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = serde_json::from_value(json!({
        "metadata": { "name": "backup-repo" },
        "stringData": { "password": PASSWORD },
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &secret).await.unwrap();
}

/// The Secret `backup-repo` in [`NS`].
pub async fn create_repository_secret(client: &Client) {
    create_repository_secret_in(client, NS).await;
}

/// The operator's controllers planning with the embedded built-in plugins (Job pods never restart, so
/// their logs stay readable).
pub async fn start_operator_with_builtins(client: &Client) -> Controllers {
    start_operator_with_flags(client, &[]).await
}

/// Like [`start_operator_with_builtins`], with extra `k8up operator` flags.
pub async fn start_operator_with_flags(client: &Client, flags: &[&str]) -> Controllers {
    let planner = PluginPlanner::with_builtins(&settings(&[]).plugins)
        .await
        .unwrap();
    start_operator_with_plugins_and_flags(client, planner, flags)
}

pub fn start_operator_with_plugins(client: &Client, planner: PluginPlanner) -> Controllers {
    start_operator_with_plugins_and_flags(client, planner, &[])
}

fn start_operator_with_plugins_and_flags(
    client: &Client,
    planner: PluginPlanner,
    flags: &[&str],
) -> Controllers {
    let mut all = vec!["--restartpolicy", "Never"];
    all.extend_from_slice(flags);
    Controllers::start(
        client.clone(),
        Arc::new(settings(&all)),
        Arc::new(planner),
        Arc::new(Metrics::new()),
    )
}

/// A PVC with the given access mode, labels and annotations, waited for until Bound.
pub async fn pvc_with(client: &Client, ns: &str, name: &str, mode: &str, meta: serde_json::Value) {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let mut metadata = json!({ "name": name });
    if let Some(extra) = meta.as_object() {
        for (k, v) in extra {
            metadata[k] = v.clone();
        }
    }
    let pvc = serde_json::from_value(json!({
        "metadata": metadata,
        "spec": { "accessModes": [mode], "resources": { "requests": { "storage": "1Gi" } } },
    }))
    .unwrap();
    api.create(&PostParams::default(), &pvc).await.unwrap();
    wait_for(&format!("pvc {name} to bind"), E2E_LIMIT, || async {
        let p = api.get(name).await?;
        let bound = p.status.and_then(|s| s.phase).as_deref() == Some("Bound");
        Ok::<_, kube::Error>(bound.then_some(()))
    })
    .await
    .unwrap();
}

/// The directory backing a bound PVC (the sandbox provisions hostPath volumes).
pub async fn pvc_dir_in(client: &Client, ns: &str, name: &str) -> PathBuf {
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let pv_name = pvcs.get(name).await.unwrap().spec.unwrap().volume_name.unwrap();
    let pv = Api::<PersistentVolume>::all(client.clone())
        .get(&pv_name)
        .await
        .unwrap();
    let spec = pv.spec.unwrap();
    match (spec.host_path, spec.local) {
        (Some(host_path), _) => PathBuf::from(host_path.path),
        (None, Some(local)) => PathBuf::from(local.path),
        _ => panic!("PV {pv_name} has neither hostPath nor local"),
    }
}

pub async fn pvc_dir(client: &Client, name: &str) -> PathBuf {
    pvc_dir_in(client, NS, name).await
}

/// A backend on a `rest` repository with the `backup-repo` password.
pub fn backend(url: &str) -> serde_json::Value {
    json!({
        "repoPasswordSecretRef": { "name": "backup-repo", "key": "password" },
        "rest": { "url": url },
    })
}

/// Every regular file under `root`, relative, with its content.
pub fn files(root: &Path) -> Vec<(String, Vec<u8>)> {
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

/// The names of [`files`].
pub fn names(files: &[(String, Vec<u8>)]) -> Vec<&str> {
    files.iter().map(|(n, _)| n.as_str()).collect()
}

/// The real `restic` on `repository` (a rest-server URL or a local path) with the e2e password: what a user
/// would run to look inside.
pub fn restic(repository: &str, args: &[&str]) -> Vec<u8> {
    let repository = if repository.starts_with("http") {
        format!("rest:{repository}")
    } else {
        repository.to_owned()
    };
    let out = Command::new("restic")
        .args(args)
        .env("RESTIC_REPOSITORY", repository)
        .env("RESTIC_PASSWORD", PASSWORD)
        .env(
            "RESTIC_CACHE_DIR",
            std::env::temp_dir().join("k8up-e2e-restic-cache"),
        )
        .output()
        .expect("restic not found (run tests/setup)");
    assert!(
        out.status.success(),
        "restic {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The repository's snapshots as restic lists them.
pub fn restic_snapshots(repository: &str) -> Vec<serde_json::Value> {
    serde_json::from_slice(&restic(repository, &["snapshots", "--json"])).unwrap()
}

/// The logs of every pod of the Jobs owned by `owned_by`, for failure messages.
pub async fn job_logs_in(client: &Client, ns: &str, owned_by: &str) -> String {
    let mut out = String::new();
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    for job in owned_jobs(client, ns, owned_by).await {
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

pub async fn job_logs(client: &Client, owned_by: &str) -> String {
    job_logs_in(client, NS, owned_by).await
}

fn describe(status: &Status) -> Vec<String> {
    status
        .conditions
        .iter()
        .map(|c| format!("{} {} {}: {}", c.type_, c.status, c.reason, c.message))
        .collect()
}

/// Waits until the action's `Completed` condition is True, whatever its reason; fails with the Job logs
/// when it never comes.
pub async fn wait_finished_in<K>(client: &Client, ns: &str, name: &str, owned_by: &str) -> Status
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + HasStatus,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let status = wait_for(&format!("{owned_by} to complete"), E2E_LIMIT, || async {
        let s = api.get(name).await?.status_of().cloned().unwrap_or_default();
        let done = s.condition("Completed").is_some_and(|c| c.status == "True");
        Ok::<_, kube::Error>(done.then_some(s))
    })
    .await;
    match status {
        Ok(s) => s,
        Err(e) => {
            let last = api
                .get(name)
                .await
                .ok()
                .and_then(|o| o.status_of().cloned())
                .unwrap_or_default();
            panic!(
                "{e}: {:?}\n{}",
                describe(&last),
                job_logs_in(client, ns, owned_by).await
            )
        }
    }
}

/// Waits until the action completed and asserts it succeeded (with the Job logs otherwise).
pub async fn wait_succeeded_in<K>(client: &Client, ns: &str, name: &str, owned_by: &str) -> Status
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + HasStatus,
    K::DynamicType: Default,
{
    let status = wait_finished_in::<K>(client, ns, name, owned_by).await;
    assert!(
        has(&status, "Completed", "True", "Succeeded"),
        "{owned_by} did not succeed: {:?}\n{}",
        describe(&status),
        job_logs_in(client, ns, owned_by).await
    );
    status
}

pub async fn wait_succeeded<K>(client: &Client, name: &str, owned_by: &str) -> Status
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + HasStatus,
    K::DynamicType: Default,
{
    wait_succeeded_in::<K>(client, NS, name, owned_by).await
}

/// Creates a namespaced object from JSON.
pub async fn create<K>(client: &Client, ns: &str, value: serde_json::Value) -> K
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let object: K = serde_json::from_value(value).unwrap();
    Api::<K>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &object)
        .await
        .unwrap()
}

/// Waits until every pod labelled `app=<app>` in `ns` runs (at least `count` of them).
pub async fn wait_running(client: &Client, ns: &str, app: &str, count: usize) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    wait_for(&format!("{count} running pods of {app}"), E2E_LIMIT, || async {
        let l = pods
            .list(&ListParams::default().labels(&format!("app={app}")))
            .await?;
        let running: Vec<Pod> = l
            .items
            .into_iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .collect();
        Ok::<_, kube::Error>((running.len() >= count).then_some(running))
    })
    .await
    .unwrap()
}

/// Creates namespace `name`.
pub async fn namespace(client: &Client, name: &str) {
    let ns: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap();
    Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

/// The Secret `s3-credentials` (keys `username`, `password`) with the S3 server's keys, in `ns`.
pub async fn create_s3_credentials(client: &Client, ns: &str, weed: &Seaweed) {
    create::<Secret>(
        client,
        ns,
        json!({
            "metadata": { "name": "s3-credentials" },
            "stringData": { "username": weed.access_key, "password": weed.secret_key },
        }),
    )
    .await;
}

/// An `s3` backend or restore target on `bucket` of the server, with the `s3-credentials` Secret.
pub fn s3_spec(weed: &Seaweed, bucket: &str) -> serde_json::Value {
    json!({
        "endpoint": weed.endpoint,
        "bucket": bucket,
        "accessKeyIDSecretRef": { "name": "s3-credentials", "key": "username" },
        "secretAccessKeySecretRef": { "name": "s3-credentials", "key": "password" },
    })
}

/// The files of a restore/archive `.tar.gz` (entries `data/<pvc>/...`), extracted with `tar
/// --strip-components=2` as K8up's checker pod does.
pub fn untar_pvc_archive(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("archive.tar.gz"), archive).unwrap();
    std::fs::create_dir(work.path().join("out")).unwrap();
    let untar = Command::new("tar")
        .current_dir(work.path())
        .args(["-xzf", "archive.tar.gz", "--strip-components=2", "-C", "out"])
        .status()
        .unwrap();
    assert!(untar.success(), "tar failed");
    files(&work.path().join("out"))
}

/// The Snapshot resources of `ns`.
pub async fn snapshot_resources(client: &Client, ns: &str) -> Vec<k8up::crd::Snapshot> {
    Api::<k8up::crd::Snapshot>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

/// Fails when any of `secrets` (repository password, S3 keys) appears in what a person or a log shipper
/// sees: the logs of every pod (the operator's when it runs as a pod, and every Job's), every Event's note,
/// and the status of every k8up object and Job, in all namespaces.
pub async fn assert_no_secrets(client: &Client, secrets: &[&str]) {
    let mut seen: Vec<(String, String)> = Vec::new();
    let pods: Api<Pod> = Api::all(client.clone());
    for pod in pods.list(&ListParams::default()).await.unwrap().items {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let log = api.logs(&name, &LogParams::default()).await.unwrap_or_default();
        seen.push((format!("log of pod {ns}/{name}"), log));
    }
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::all(client.clone());
    for e in events.list(&ListParams::default()).await.unwrap().items {
        let what = format!("Event {}", e.metadata.name.clone().unwrap_or_default());
        seen.push((what, serde_json::to_string(&(&e.note, &e.reason)).unwrap()));
    }
    for (kind, plural) in [
        ("Backup", "backups"),
        ("Restore", "restores"),
        ("Archive", "archives"),
        ("Check", "checks"),
        ("Prune", "prunes"),
        ("Schedule", "schedules"),
        ("Snapshot", "snapshots"),
    ] {
        let resource = kube::api::ApiResource {
            group: "k8up.io".into(),
            version: "v1".into(),
            api_version: "k8up.io/v1".into(),
            kind: kind.into(),
            plural: plural.into(),
        };
        let api: Api<kube::api::DynamicObject> = Api::all_with(client.clone(), &resource);
        for o in api.list(&ListParams::default()).await.unwrap().items {
            let what = format!("status of {kind} {}", o.metadata.name.clone().unwrap_or_default());
            seen.push((what, o.data["status"].to_string()));
        }
    }
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::all(client.clone());
    for j in jobs.list(&ListParams::default()).await.unwrap().items {
        let what = format!("status of Job {}", j.metadata.name.clone().unwrap_or_default());
        seen.push((what, serde_json::to_string(&j.status).unwrap()));
    }
    assert!(seen.len() > 1, "nothing to look at");
    let leaks: Vec<String> = seen
        .iter()
        .flat_map(|(what, text)| {
            secrets
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.is_empty() && text.contains(**s))
                .map(move |(i, _)| format!("secret #{i} in the {what}"))
        })
        .collect();
    assert!(leaks.is_empty(), "secrets leaked: {leaks:#?}");
}
