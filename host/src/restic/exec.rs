//! Application dumps: choose the annotated pods, exec their backup command (kube WebSocket exec) and stream its
//! stdout into `restic backup --stdin` while counting bytes and hashing, so a truncated dump never passes.
//!
//! The streaming logic works on any `AsyncRead` plus a completion future (the command's exit status), so it is
//! tested with local processes; the kube exec is a thin adapter.

use std::collections::HashSet;
use std::future::Future;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, ListParams};

/// Buffer between the exec WebSocket and the dump reader.
const EXEC_BUFFER: usize = 256 * 1024;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};

use super::Error;
use super::command::{BackupOptions, Globals};
use super::json::{BackupMessage, BackupSummary, Snapshot};
use super::report::{DUMP_BYTES_TAG, DUMP_PENDING_TAG, DUMP_SHA256_TAG};
use super::runner::Runner;

/// Copy buffer: memory stays bounded whatever the dump size.
const CHUNK: usize = 256 * 1024;

/// One pod whose backup command is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecTarget {
    /// Pod name.
    pub pod: String,
    /// Container to exec in.
    pub container: String,
    /// Command argv (split shell-style from the annotation).
    pub command: Vec<String>,
    /// `--stdin-filename`: `/<namespace>-<container><ext>`.
    pub filename: String,
}

/// Annotations and filters used to choose the pods.
#[derive(Debug, Clone)]
pub struct PodSelection<'a> {
    /// The namespace.
    pub namespace: &'a str,
    /// Annotation with the command.
    pub command_annotation: &'a str,
    /// Annotation with the file extension.
    pub extension_annotation: &'a str,
    /// Annotation with the container name.
    pub container_annotation: &'a str,
    /// Only these pods (empty = all).
    pub target_pods: &'a [String],
}

/// Running pods with the command annotation, filtered by `TARGET_PODS`, one per owner (first ownerReference
/// UID, or the pod's own UID), in name order. A command that cannot be split is an error.
pub fn select_pods(pods: &[Pod], sel: &PodSelection<'_>) -> Result<Vec<ExecTarget>, Error> {
    let mut sorted: Vec<&Pod> = pods.iter().collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut owners = HashSet::new();
    let mut out = Vec::new();
    for pod in sorted {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let annotations = pod.metadata.annotations.clone().unwrap_or_default();
        let Some(command) = annotations
            .get(sel.command_annotation)
            .filter(|c| !c.trim().is_empty())
        else {
            continue;
        };
        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        if !running || (!sel.target_pods.is_empty() && !sel.target_pods.contains(&name)) {
            continue;
        }
        let owner = pod
            .metadata
            .owner_references
            .as_ref()
            .and_then(|o| o.first())
            .map(|o| o.uid.clone())
            .or_else(|| pod.metadata.uid.clone())
            .unwrap_or_else(|| name.clone());
        if !owners.insert(owner) {
            continue;
        }
        let containers = pod
            .spec
            .as_ref()
            .map(|s| s.containers.clone())
            .unwrap_or_default();
        let container = annotations
            .get(sel.container_annotation)
            .filter(|c| !c.is_empty())
            .cloned()
            .or_else(|| containers.first().map(|c| c.name.clone()))
            .unwrap_or_default();
        let argv = shlex::split(command)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::Dump {
                target: format!("{name}/{container}"),
                message: format!("cannot split the backup command {command:?} (unbalanced quotes?)"),
            })?;
        let ext = annotations
            .get(sel.extension_annotation)
            .cloned()
            .unwrap_or_default();
        out.push(ExecTarget {
            filename: format!("/{}-{container}{ext}", sel.namespace),
            pod: name,
            container,
            command: argv,
        });
    }
    Ok(out)
}

/// A dump stored in the repository.
#[derive(Debug, Clone)]
pub struct DumpResult {
    /// The snapshot (with its final integrity tags).
    pub snapshot: Snapshot,
    /// Bytes streamed.
    pub bytes: u64,
    /// sha256 of the stream (hex).
    pub sha256: String,
    /// restic's summary.
    pub summary: BackupSummary,
    /// Every snapshot of the host, listed after the re-tag (to find the re-tagged one): the caller's
    /// snapshot list when nothing was stored after this dump, which saves a listing (each re-opens the
    /// repository).
    pub host_snapshots: Vec<Snapshot>,
}

/// Streams `source` into `restic backup --stdin`, counting and hashing. The snapshot is committed only when
/// `completion` (the producer's exit status) reports success and restic read exactly the bytes sent; otherwise
/// restic is killed before it can commit, or the snapshot it made is forgotten. On success the snapshot is
/// re-tagged `k8up.io/dump-bytes=<n>` and `k8up.io/dump-sha256=<hex>` (it is created with
/// `k8up.io/dump-pending`, so a run killed halfway leaves a snapshot that restore refuses).
pub async fn exec_dump<R, F>(
    runner: &Runner,
    globals: &Globals,
    opts: &BackupOptions,
    filename: &str,
    target: &str,
    mut source: R,
    completion: F,
) -> Result<DumpResult, Error>
where
    R: AsyncRead + Unpin,
    F: Future<Output = Result<(), String>>,
{
    let fail = |message: String| Error::Dump {
        target: target.to_owned(),
        message,
    };
    let mut opts = opts.clone();
    opts.tags.push(DUMP_PENDING_TAG.to_owned());
    let cmd = globals.backup_stdin(&opts, filename);
    let mut running = runner.spawn(&cmd, true).map_err(|e| fail(e.to_string()))?;
    let deadline = running.deadline();
    let stdout = running.stdout.take();
    let summary_task = tokio::spawn(async move {
        let mut summary = None;
        if let Some(out) = stdout {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(BackupMessage::Summary(s)) = serde_json::from_str::<BackupMessage>(&line) {
                    summary = Some(s);
                }
            }
        }
        summary
    });
    let Some(mut stdin) = running.stdin.take() else {
        running.kill().await;
        return Err(fail("restic has no stdin".into()));
    };

    let mut hasher = Sha256::new();
    let mut bytes: u64 = 0;
    let mut buf = vec![0u8; CHUNK];
    let copy = async {
        loop {
            let n = source
                .read(&mut buf)
                .await
                .map_err(|e| format!("reading the dump failed after {bytes} bytes: {e}"))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            bytes += n as u64;
            stdin
                .write_all(&buf[..n])
                .await
                .map_err(|e| format!("restic stopped reading after {bytes} bytes: {e}"))?;
        }
        // EOF of the stream alone proves nothing: only the producer's exit status does.
        completion
            .await
            .map_err(|e| format!("the backup command failed after {bytes} bytes: {e}"))
    };
    let timed = tokio::time::timeout_at(deadline, copy).await;
    let copied = match timed {
        Ok(r) => r,
        Err(_) => Err(format!(
            "the dump did not finish before the restic deadline ({bytes} bytes sent)"
        )),
    };
    if let Err(message) = copied {
        // stdin is still open, so restic has not committed a snapshot: killing it leaves none behind (only a
        // stale lock of a dead pid on this host, which the next `restic unlock` removes).
        drop(stdin);
        running.kill().await;
        summary_task.abort();
        return Err(fail(message));
    }
    drop(stdin);
    let finished = running.finish().await;
    let summary = summary_task.await.ok().flatten();
    let sha256 = hex::encode(hasher.finalize());
    let snapshot_id = summary.as_ref().and_then(|s| s.snapshot_id.clone());
    let problem = match (&finished, &summary) {
        (Err(e), _) => Some(e.to_string()),
        (Ok(_), None) => Some("restic printed no summary".to_owned()),
        (Ok(_), Some(s)) if s.total_bytes_processed != bytes => Some(format!(
            "short read: sent {bytes} bytes but restic stored {}",
            s.total_bytes_processed
        )),
        (Ok(_), Some(_)) => None,
    };
    // restic's ID (possibly short) is enough for `tag` and `forget`, which take prefixes; the one listing
    // after the re-tag finds the full snapshot (each restic call re-opens the repository).
    if let Some(message) = problem {
        if let Some(id) = &snapshot_id {
            withdraw(runner, globals, id).await;
        }
        return Err(fail(message));
    }
    let Some(id) = snapshot_id else {
        return Err(fail("restic reported no snapshot ID".to_owned()));
    };
    let add = vec![
        format!("{DUMP_BYTES_TAG}{bytes}"),
        format!("{DUMP_SHA256_TAG}{sha256}"),
    ];
    if let Err(e) = runner
        .output(&globals.tag(&id, &add, &[DUMP_PENDING_TAG.to_owned()]))
        .await
    {
        withdraw(runner, globals, &id).await;
        return Err(fail(format!("failed to record the dump digest: {e}")));
    }
    let host_snapshots = list(runner, globals, &opts.host).await;
    let retagged = host_snapshots
        .iter()
        .find(|s| {
            s.original.as_deref().is_some_and(|o| o.starts_with(&id)) && s.paths.iter().any(|p| p == filename)
        })
        .cloned();
    let Some(snapshot) = retagged else {
        return Err(fail(format!(
            "the re-tagged snapshot replacing {} was not found",
            &id[..id.len().min(8)]
        )));
    };
    let summary = summary.unwrap_or_default();
    Ok(DumpResult {
        snapshot,
        bytes,
        sha256,
        summary,
        host_snapshots,
    })
}

/// Every snapshot of `host`.
async fn list(runner: &Runner, globals: &Globals, host: &str) -> Vec<Snapshot> {
    let filter = super::command::SnapshotFilter {
        hosts: vec![host.to_owned()],
        ..Default::default()
    };
    match runner.output(&globals.snapshots(&filter)).await {
        Ok(out) => serde_json::from_str(out.stdout.trim()).unwrap_or_default(),
        Err(e) => {
            tracing::warn!(error = %e, "failed to list snapshots");
            Vec::new()
        }
    }
}

async fn withdraw(runner: &Runner, globals: &Globals, id: &str) {
    tracing::warn!(snapshot = id, "forgetting the snapshot of a failed dump");
    if let Err(e) = runner.output(&globals.forget_ids(&[id.to_owned()])).await {
        tracing::error!(snapshot = id, error = %e, "failed to forget the snapshot of a failed dump");
    }
}

/// Lists the pods of the namespace and chooses the targets (read-only).
pub async fn discover(client: &kube::Client, sel: &PodSelection<'_>) -> Result<Vec<ExecTarget>, Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), sel.namespace);
    let pods = api
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::ListPods {
            namespace: sel.namespace.to_owned(),
            message: super::kube_message(&e),
        })?;
    select_pods(&pods.items, sel)
}

/// Execs the target's command over WebSocket and streams its stdout through [`exec_dump`]; stderr is logged.
pub async fn exec_pod_dump(
    client: &kube::Client,
    namespace: &str,
    target: &ExecTarget,
    runner: &Runner,
    globals: &Globals,
    opts: &BackupOptions,
) -> Result<DumpResult, Error> {
    let label = format!("{}/{}", target.pod, target.container);
    let fail = |message: String| Error::Dump {
        target: label.clone(),
        message,
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    // kube hands exec output over in 1 KiB pieces by default, which made a 1 GiB dump 4x slower than a local
    // pipe (docs/performance.md); 256 KiB lets restic, not the copy, set the pace.
    let params = AttachParams::default()
        .container(target.container.clone())
        .stdin(false)
        .stdout(true)
        .stderr(true)
        .max_stdout_buf_size(EXEC_BUFFER)
        .max_stderr_buf_size(EXEC_BUFFER);
    let mut attached = api
        .exec(&target.pod, target.command.clone(), &params)
        .await
        .map_err(|e| fail(format!("exec failed: {e}")))?;
    let stdout = attached
        .stdout()
        .ok_or_else(|| fail("exec has no stdout".into()))?;
    if let Some(stderr) = attached.stderr() {
        let pod = label.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(pod = %pod, "backup command: {line}");
            }
        });
    }
    let status = attached
        .take_status()
        .ok_or_else(|| fail("exec has no status channel".into()))?;
    let completion = async move {
        match status.await {
            Some(s) if s.status.as_deref() == Some("Success") => Ok(()),
            Some(s) => Err(s.message.unwrap_or_else(|| format!("{:?}", s.reason))),
            None => Err("the exec stream ended without an exit status".to_owned()),
        }
    };
    let result = exec_dump(
        runner,
        globals,
        opts,
        &target.filename,
        &label,
        stdout,
        completion,
    )
    .await;
    if let Err(e) = attached.join().await {
        tracing::debug!(error = %e, "exec session ended with an error");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    fn pod(name: &str, phase: &str, ann: &[(&str, &str)], owner: Option<&str>, containers: &[&str]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(format!("uid-{name}")),
                annotations: Some(
                    ann.iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                owner_references: owner.map(|o| {
                    vec![OwnerReference {
                        uid: o.into(),
                        name: o.into(),
                        kind: "ReplicaSet".into(),
                        api_version: "apps/v1".into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            },
            spec: Some(k8s_openapi::api::core::v1::PodSpec {
                containers: containers
                    .iter()
                    .map(|c| k8s_openapi::api::core::v1::Container {
                        name: (*c).into(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            status: Some(k8s_openapi::api::core::v1::PodStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
        }
    }

    const CMD: &str = "k8up.io/backupcommand";
    fn sel(targets: &[String]) -> PodSelection<'_> {
        PodSelection {
            namespace: "ns",
            command_annotation: CMD,
            extension_annotation: "k8up.io/file-extension",
            container_annotation: "k8up.io/backupcommand-container",
            target_pods: targets,
        }
    }

    #[test]
    fn running_annotated_pods_are_chosen_once_per_owner_with_their_container_and_extension() {
        let pods = vec![
            pod(
                "db-0",
                "Running",
                &[
                    (CMD, "sh -c 'mysqldump --all-databases'"),
                    ("k8up.io/file-extension", ".sql"),
                ],
                Some("rs1"),
                &["mysql", "sidecar"],
            ),
            pod("db-1", "Running", &[(CMD, "mysqldump")], Some("rs1"), &["mysql"]),
            pod(
                "pg-0",
                "Running",
                &[
                    (CMD, "pg_dumpall"),
                    ("k8up.io/backupcommand-container", "postgres"),
                ],
                None,
                &["exporter", "postgres"],
            ),
            pod("pending", "Pending", &[(CMD, "x")], None, &["c"]),
            pod("plain", "Running", &[], None, &["c"]),
        ];
        let got = select_pods(&pods, &sel(&[])).unwrap_or_default();
        assert_eq!(
            got,
            vec![
                ExecTarget {
                    pod: "db-0".into(),
                    container: "mysql".into(),
                    command: vec!["sh".into(), "-c".into(), "mysqldump --all-databases".into()],
                    filename: "/ns-mysql.sql".into(),
                },
                ExecTarget {
                    pod: "pg-0".into(),
                    container: "postgres".into(),
                    command: vec!["pg_dumpall".into()],
                    filename: "/ns-postgres".into()
                },
            ]
        );
    }

    #[test]
    fn target_pods_restrict_the_choice() {
        let pods = vec![
            pod("a", "Running", &[(CMD, "x")], None, &["c"]),
            pod("b", "Running", &[(CMD, "y")], None, &["c"]),
        ];
        let targets = vec!["b".to_owned()];
        let got = select_pods(&pods, &sel(&targets)).unwrap_or_default();
        assert_eq!(got.iter().map(|t| t.pod.as_str()).collect::<Vec<_>>(), vec!["b"]);
    }

    #[test]
    fn an_unsplittable_command_is_an_error_naming_the_pod() {
        let pods = vec![pod("a", "Running", &[(CMD, "sh -c 'unterminated")], None, &["c"])];
        let err = select_pods(&pods, &sel(&[]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("a/c"), "{err}");
    }
}
