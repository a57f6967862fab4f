//! Application dumps through `exec_dump` (a local process stands in for the pod exec) with size and sha256
//! tags verified on restore, and the lock rules of prune/check, against the real restic binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod restic_support;

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use k8up::restic::config::Config;
use k8up::restic::exec::exec_dump;
use k8up::restic::locks::{self, LockPolicy, PodLookup};
use k8up::restic::report::{DUMP_BYTES_TAG, DUMP_PENDING_TAG, DUMP_SHA256_TAG};
use pretty_assertions::assert_eq;
use restic_support::{Repo, restic_bin, sha256_hex};
use sha2::Digest;

/// Runs `script` with `sh -c` and streams its stdout through `exec_dump`.
async fn dump_from_shell(
    repo: &Repo,
    script: &str,
    filename: &str,
) -> Result<k8up::restic::exec::DumpResult, k8up::restic::Error> {
    let cfg = Config::from_args(&repo.args(&[])).unwrap();
    let runner = cfg.runner();
    let mut child = tokio::process::Command::new("sh")
        .args(["-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let completion = async move {
        let status = child.wait().await.map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("command exited with {status}"))
        }
    };
    exec_dump(
        &runner,
        &cfg.globals,
        &cfg.backup,
        filename,
        "local-shell",
        stdout,
        completion,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_is_stored_with_its_byte_count_and_sha256_as_tags_and_verified_on_restore() {
    let repo = Repo::new();
    repo.init();
    let content = b"CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n";

    let dump = dump_from_shell(
        &repo,
        &format!("printf '%s' '{}'", String::from_utf8_lossy(content)),
        "/ns-mysql.sql",
    )
    .await
    .unwrap();

    assert_eq!(dump.bytes, content.len() as u64);
    assert_eq!(dump.sha256, sha256_hex(content));
    let snaps = repo.snapshots();
    assert_eq!(snaps.len(), 1, "the re-tagged snapshot replaces the first one");
    let s = &snaps[0];
    assert_eq!(s.id, dump.snapshot.id);
    assert_eq!(s.paths, vec!["/ns-mysql.sql"]);
    assert_eq!(s.hostname, "ns");
    let mut tags = s.tags.clone();
    tags.sort();
    assert_eq!(
        tags,
        vec![
            format!("{DUMP_BYTES_TAG}{}", content.len()),
            format!("{DUMP_SHA256_TAG}{}", sha256_hex(content))
        ]
    );

    // Restored as its file and verified against the tags.
    let target = repo.path("restore");
    let report = repo
        .run(&[
            "--restore",
            "--restoreType",
            "folder",
            "--restoreDir",
            target.to_str().unwrap(),
        ])
        .await
        .unwrap();
    assert_eq!(std::fs::read(target.join("ns-mysql.sql")).unwrap(), content);
    assert!(report.restored[0].verified);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_command_that_fails_halfway_leaves_no_snapshot_and_the_next_run_is_not_blocked() {
    let repo = Repo::new();
    repo.init();

    let err = dump_from_shell(&repo, "printf 'half a dump'; exit 3", "/ns-db.sql")
        .await
        .unwrap_err();

    let msg = err.to_string();
    assert!(msg.contains("failed after 11 bytes"), "{msg}");
    assert!(
        repo.snapshots().is_empty(),
        "a failed dump must not leave a snapshot"
    );
    // The killed restic's lock is stale (dead pid on this host) and does not block prune.
    repo.run(&["--prune", "--keepLatest", "1", "--lockWait", "20s"])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_fails_when_the_dump_differs_from_its_recorded_digest() {
    let repo = Repo::new();
    repo.init();
    let dump = dump_from_shell(&repo, "printf 'original'", "/ns-app.dump")
        .await
        .unwrap();
    let forged = format!("{DUMP_SHA256_TAG}{}", "0".repeat(64));
    repo.restic_ok(&[
        "tag",
        "--remove",
        &format!("{DUMP_SHA256_TAG}{}", dump.sha256),
        "--add",
        &forged,
        &dump.snapshot.id,
    ]);

    let err = repo
        .run(&[
            "--restore",
            "--restoreType",
            "folder",
            "--restoreDir",
            repo.path("r").to_str().unwrap(),
        ])
        .await
        .unwrap_err();

    assert_eq!(err.reason(), "Integrity");
    assert!(err.to_string().contains(&dump.sha256), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_of_an_unfinished_dump_is_refused_on_restore() {
    let repo = Repo::new();
    repo.init();
    let mut child = repo
        .restic()
        .args([
            "backup",
            "--stdin",
            "--stdin-filename",
            "/ns-x.sql",
            "--host",
            "ns",
            "--tag",
            DUMP_PENDING_TAG,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"partial").unwrap();
    }
    assert!(child.wait().unwrap().success());

    let err = repo
        .run(&[
            "--restore",
            "--restoreType",
            "folder",
            "--restoreDir",
            repo.path("r").to_str().unwrap(),
        ])
        .await
        .unwrap_err();

    assert_eq!(err.reason(), "Integrity");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_gibibyte_dump_streams_through_with_the_right_size_and_digest() {
    let repo = Repo::new();
    repo.init();
    const GIB: u64 = 1 << 30;
    let mut hasher = sha2::Sha256::new();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        hasher.update(&zeros);
    }
    let expected = hex::encode(hasher.finalize());

    let dump = dump_from_shell(&repo, &format!("head -c {GIB} /dev/zero"), "/ns-big.bin")
        .await
        .unwrap();

    assert_eq!(dump.bytes, GIB);
    assert_eq!(dump.sha256, expected);
    assert_eq!(dump.summary.total_bytes_processed, GIB);
}

/// Holds a lock: `restic backup --stdin` waiting for input, optionally under another hostname (a UTS
/// namespace), as a pod on another node would.
fn hold_lock(repo: &Repo, hostname: Option<&str>) -> std::process::Child {
    let restic = restic_bin();
    let mut cmd = match hostname {
        Some(h) => {
            let env_source = repo.restic();
            let mut u = std::process::Command::new("unshare");
            u.args([
                "-u",
                "sh",
                "-c",
                &format!("hostname {h} && exec \"$0\" backup --stdin --stdin-filename /held --host ns"),
            ])
            .arg(&restic);
            for (k, v) in env_source.get_envs() {
                if let Some(v) = v {
                    u.env(k, v);
                }
            }
            u
        }
        None => {
            let mut c = repo.restic();
            c.args(["backup", "--stdin", "--stdin-filename", "/held", "--host", "ns"]);
            c
        }
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..120 {
        if !repo.restic_ok(&["list", "locks", "--no-lock"]).trim().is_empty() {
            return child;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the lock holder exited early ({status}); is `unshare -u` permitted here?");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let _ = child.kill();
    panic!("the lock holder never created a lock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_lock_is_respected_until_the_deadline_and_named_in_the_error_then_prune_proceeds() {
    let repo = Repo::new();
    repo.init();
    let mut holder = hold_lock(&repo, None);
    let pid = holder.id();

    let err = repo
        .run(&["--prune", "--keepLatest", "1", "--lockWait", "3s"])
        .await
        .unwrap_err();

    assert_eq!(err.reason(), "LockTimeout");
    let msg = err.to_string();
    assert!(msg.contains(&format!("pid {pid}")), "{msg}");
    assert!(
        !repo.restic_ok(&["list", "locks", "--no-lock"]).trim().is_empty(),
        "the live lock must survive"
    );

    // restic 0.18 exits 3 ("no data read") for an empty stdin: give the holder a byte to store.
    {
        use std::io::Write as _;
        let mut stdin = holder.stdin.take().unwrap();
        stdin.write_all(b"held\n").unwrap();
    }
    assert!(holder.wait().unwrap().success());
    repo.run(&["--prune", "--keepLatest", "1", "--lockWait", "30s"])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_lock_of_a_killed_backup_on_this_host_is_removed_before_check() {
    let repo = Repo::new();
    repo.init();
    let mut holder = hold_lock(&repo, None);
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(!repo.restic_ok(&["list", "locks", "--no-lock"]).trim().is_empty());

    repo.run(&["--check", "--lockWait", "30s"]).await.unwrap();
}

struct KnownPods(HashSet<String>);

impl PodLookup for KnownPods {
    fn pod_exists<'a>(&'a self, name: &'a str) -> futures::future::BoxFuture<'a, Option<bool>> {
        Box::pin(async move { Some(self.0.contains(name)) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_of_a_vanished_pod_is_removed_only_when_its_pod_is_gone() {
    let repo = Repo::new();
    repo.init();
    let mut holder = hold_lock(&repo, Some("backup-ns-ghost-abcde"));
    holder.kill().unwrap();
    holder.wait().unwrap();
    let cfg = Config::from_args(&repo.args(&[])).unwrap();
    let runner = cfg.runner();

    // Its pod still exists: the lock is kept, the wait times out naming it.
    let alive = KnownPods(["backup-ns-ghost-abcde".to_owned()].into());
    let policy = LockPolicy {
        wait: Duration::from_secs(2),
        orphan_after: Duration::ZERO,
        pods: Some(&alive),
    };
    let err = locks::wait_for_locks(&runner, &cfg.globals, &policy)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("backup-ns-ghost-abcde"), "{err}");

    // Too young to be orphaned, even though the pod is gone.
    let gone = KnownPods(HashSet::new());
    let policy = LockPolicy {
        wait: Duration::from_secs(2),
        orphan_after: Duration::from_secs(3600),
        pods: Some(&gone),
    };
    assert!(
        locks::wait_for_locks(&runner, &cfg.globals, &policy)
            .await
            .is_err()
    );

    // Old enough and the pod is gone: removed.
    let policy = LockPolicy {
        wait: Duration::from_secs(2),
        orphan_after: Duration::ZERO,
        pods: Some(&gone),
    };
    let removed = locks::wait_for_locks(&runner, &cfg.globals, &policy)
        .await
        .unwrap();
    assert_eq!(removed.len(), 1);
    assert!(removed[0].contains("backup-ns-ghost-abcde"));
    assert!(repo.restic_ok(&["list", "locks", "--no-lock"]).trim().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphaned_lock_is_not_removed_while_a_live_lock_exists_beside_it() {
    let repo = Repo::new();
    repo.init();
    let mut ghost = hold_lock(&repo, Some("backup-ns-ghost-fghij"));
    ghost.kill().unwrap();
    ghost.wait().unwrap();
    let mut live = hold_lock(&repo, Some("backup-ns-live-klmno"));
    let cfg = Config::from_args(&repo.args(&[])).unwrap();
    let runner = cfg.runner();
    // Only the ghost's pod is gone; the live one's pod exists.
    let pods = KnownPods(["backup-ns-live-klmno".to_owned()].into());
    let policy = LockPolicy {
        wait: Duration::from_secs(2),
        orphan_after: Duration::ZERO,
        pods: Some(&pods),
    };

    let err = locks::wait_for_locks(&runner, &cfg.globals, &policy)
        .await
        .unwrap_err();

    assert_eq!(err.reason(), "LockTimeout");
    let remaining = locks::list(&runner, &cfg.globals).await.unwrap();
    assert_eq!(remaining.len(), 2, "neither lock may be removed: {remaining:?}");
    drop(live.stdin.take());
    let _ = live.wait();
}
