//! `k8up restic` against the real restic binary and a local repository: folder backup, restore, prune, check,
//! webhooks and the termination report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod restic_support;

use pretty_assertions::assert_eq;
use restic_support::{PASSWORD, Repo, Webhook, write};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_backup_makes_one_snapshot_per_sub_directory_with_the_namespace_as_host() {
    let repo = Repo::new();
    write(&repo.data().join("pvc-a/file.txt"), b"alpha");
    write(&repo.data().join("pvc-b/nested/other.txt"), b"beta");
    write(&repo.data().join("not-a-dir.txt"), b"ignored");
    let hook = Webhook::start().await;

    let report = repo
        .run(&["--tag", "daily", "--webhookURL", &hook.url])
        .await
        .unwrap();

    let snaps = repo.snapshots();
    let mut paths: Vec<String> = snaps.iter().flat_map(|s| s.paths.clone()).collect();
    paths.sort();
    let a = repo.data().join("pvc-a").display().to_string();
    let b = repo.data().join("pvc-b").display().to_string();
    assert_eq!(paths, vec![a.clone(), b.clone()]);
    assert!(
        snaps
            .iter()
            .all(|s| s.hostname == "ns" && s.tags == vec!["daily".to_owned()])
    );

    // The report names both snapshots with full IDs, in folder order.
    assert!(report.success);
    assert_eq!(report.actions, vec!["backup"]);
    let reported: Vec<(String, Vec<String>)> = report
        .created
        .iter()
        .map(|s| (s.id.clone(), s.paths.clone()))
        .collect();
    let expected: Vec<(String, Vec<String>)> = [&a, &b]
        .iter()
        .map(|p| {
            (
                snaps.iter().find(|s| &s.paths[0] == *p).unwrap().id.clone(),
                vec![(*p).clone()],
            )
        })
        .collect();
    assert_eq!(reported, expected);
    assert_eq!(repo.report(), report);

    // Webhooks: one stats payload per snapshot (lower-case `folder`, real start time), then the snapshot list.
    let bodies = hook.received();
    let stats: Vec<&serde_json::Value> = bodies
        .iter()
        .filter(|b| b.get("backup_metrics").is_some())
        .collect();
    assert_eq!(stats.len(), 2, "{bodies:?}");
    let m = &stats[0]["backup_metrics"];
    assert_eq!(stats[0]["name"], "ns");
    assert_eq!(m["folder"], a.as_str());
    assert!(m.get("Folder").is_none());
    assert_eq!(m["mounted_PVCs"], serde_json::json!(["pvc-a", "pvc-b"]));
    assert_eq!(m["new_files"], 1);
    let start = m["backup_start_timestamp"].as_i64().unwrap();
    let end = m["backup_end_timestamp"].as_i64().unwrap();
    assert!(start > 1_600_000_000 && start <= end, "start {start} end {end}");
    let lists: Vec<&serde_json::Value> = bodies.iter().filter(|b| b.get("snapshots").is_some()).collect();
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0]["snapshots"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_restore_trims_the_pvc_prefix_by_default() {
    let repo = Repo::new();
    write(&repo.data().join("pvc/dir/file.txt"), b"restore me");
    repo.run(&[]).await.unwrap();
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

    assert_eq!(std::fs::read(target.join("dir/file.txt")).unwrap(), b"restore me");
    assert_eq!(report.restored.len(), 1);
    assert_eq!(report.restored[0].snapshot, repo.snapshots()[0].id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_restore_keeps_the_full_path_when_trimming_is_off() {
    let repo = Repo::new();
    write(&repo.data().join("PVC2/test.txt"), b"full path");
    repo.run(&[]).await.unwrap();
    let target = repo.path("restore");

    repo.run(&[
        "--restore",
        "--restoreType",
        "folder",
        "--restoreDir",
        target.to_str().unwrap(),
        "--trimRestorePath",
        "false",
    ])
    .await
    .unwrap();

    let restored = target.join(repo.data().join("PVC2/test.txt").strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(restored).unwrap(), b"full path");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_without_snapshot_id_prefers_the_newest_snapshot_of_the_given_path() {
    let repo = Repo::new();
    repo.init();
    write(&repo.path("src/a/f"), b"old a");
    let dir_a = repo.path("src/a");
    let dir_b = repo.path("src/b");
    repo.backup_direct(&dir_a, "ns", &[]);
    write(&repo.path("src/a/f"), b"new a");
    let newest_a = repo.backup_direct(&dir_a, "ns", &[]);
    write(&repo.path("src/b/g"), b"b is newest overall");
    repo.backup_direct(&dir_b, "ns", &[]);
    let target = repo.path("restore");

    let report = repo
        .run(&[
            "--restore",
            "--restoreType",
            "folder",
            "--restoreDir",
            target.to_str().unwrap(),
            "--preferPath",
            dir_a.to_str().unwrap(),
        ])
        .await
        .unwrap();

    assert_eq!(report.restored[0].snapshot, newest_a);
    assert_eq!(std::fs::read(target.join("f")).unwrap(), b"new a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_of_a_missing_snapshot_fails_with_a_permanent_no_snapshot_error() {
    let repo = Repo::new();
    write(&repo.data().join("pvc/f"), b"x");
    repo.run(&[]).await.unwrap();

    let err = repo
        .run(&[
            "--restore",
            "--restoreType",
            "folder",
            "--restoreDir",
            repo.path("r").to_str().unwrap(),
            "--restoreSnap",
            "deadbeef",
        ])
        .await
        .unwrap_err();

    assert_eq!(err.reason(), "NoSnapshot");
    let report = repo.report();
    let e = report.error.unwrap();
    assert_eq!(e.reason, "NoSnapshot");
    assert!(e.permanent);
    assert!(e.message.contains("deadbeef"), "{}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_with_keep_last_and_a_tag_filter_removes_exactly_the_older_tagged_snapshots_of_the_namespace() {
    let repo = Repo::new();
    repo.init();
    write(&repo.path("src/f"), b"1");
    let dir = repo.path("src");
    let daily1 = repo.backup_direct(&dir, "ns", &["daily"]);
    let daily2 = repo.backup_direct(&dir, "ns", &["daily"]);
    let daily3 = repo.backup_direct(&dir, "ns", &["daily"]);
    let weekly = repo.backup_direct(&dir, "ns", &["weekly"]);
    let foreign = repo.backup_direct(&dir, "other-ns", &["daily"]);

    let report = repo
        .run(&["--prune", "--keepLatest", "1", "--tag", "daily"])
        .await
        .unwrap();

    let mut removed = report.removed.clone();
    removed.sort();
    let mut expected = vec![daily1, daily2];
    expected.sort();
    assert_eq!(removed, expected);
    let mut left: Vec<String> = repo.snapshots().into_iter().map(|s| s.id).collect();
    left.sort();
    let mut want = vec![daily3, weekly, foreign];
    want.sort();
    assert_eq!(left, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_with_a_hostname_filter_touches_only_those_hosts_and_keep_tags_protect_snapshots() {
    let repo = Repo::new();
    repo.init();
    write(&repo.path("src/f"), b"1");
    let dir = repo.path("src");
    let ns1 = repo.backup_direct(&dir, "ns", &[]);
    let ns2 = repo.backup_direct(&dir, "ns", &[]);
    let other_gold = repo.backup_direct(&dir, "other", &["gold"]);
    let other1 = repo.backup_direct(&dir, "other", &[]);
    let other2 = repo.backup_direct(&dir, "other", &[]);

    let report = repo
        .run(&[
            "--prune",
            "--keepLatest",
            "1",
            "--keepTags",
            "gold,silver",
            "--hostnameFilter",
            "other",
        ])
        .await
        .unwrap();

    assert_eq!(report.removed, vec![other1]);
    let mut left: Vec<String> = repo.snapshots().into_iter().map(|s| s.id).collect();
    left.sort();
    let mut want = vec![ns1, ns2, other_gold, other2];
    want.sort();
    assert_eq!(left, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_on_a_healthy_repository_also_when_reading_a_data_subset() {
    let repo = Repo::new();
    write(&repo.data().join("pvc/f"), b"check me");
    repo.run(&[]).await.unwrap();

    let plain = repo.run(&["--check"]).await.unwrap();
    let subset = repo.run(&["--check", "--readDataSubset", "50%"]).await.unwrap();

    assert!(plain.success && subset.success);
    assert_eq!(subset.actions, vec!["check"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_reports_its_outcome_to_the_webhook_and_the_pushgateway() {
    let repo = Repo::new();
    write(&repo.data().join("pvc/f"), &vec![3u8; 64 * 1024]);
    repo.run(&[]).await.unwrap();
    let hook = Webhook::start().await;
    let flags = ["--check", "--webhookURL", &hook.url, "--promURL", &hook.base];
    repo.run(&flags).await.unwrap();

    // A pack goes missing: the next check fails and says so on both channels.
    let pack = walk(&repo.repo().join("data")).into_iter().next().unwrap();
    std::fs::remove_file(&pack).unwrap();
    assert!(repo.run(&flags).await.is_err());

    let results: Vec<serde_json::Value> = hook
        .received()
        .into_iter()
        .filter_map(|b| b.get("check_result").cloned())
        .collect();
    assert_eq!(results.len(), 2, "{:?}", hook.received());
    assert_eq!(results[0]["success"], true);
    assert_eq!(results[0]["errors"], serde_json::json!([]));
    assert_eq!(results[1]["success"], false);
    let error = results[1]["errors"][0].as_str().unwrap();
    assert!(error.contains("repository check failed"), "{error}");
    assert!(!error.contains(PASSWORD), "{error}");

    let pushes = hook.pushed();
    let checks: Vec<&String> = pushes
        .iter()
        .filter(|(path, _)| path == "/metrics/job/restic_check/instance/ns")
        .map(|(_, body)| body)
        .collect();
    assert_eq!(checks.len(), 2, "{pushes:?}");
    assert!(
        checks[0].contains("k8up_check_restic_last_success{namespace=\"ns\"} 1"),
        "{}",
        checks[0]
    );
    assert!(
        checks[1].contains("k8up_check_restic_last_success{namespace=\"ns\"} 0"),
        "{}",
        checks[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_fails_when_pack_files_are_damaged() {
    let repo = Repo::new();
    write(&repo.data().join("pvc/f"), &vec![7u8; 64 * 1024]);
    repo.run(&[]).await.unwrap();
    // Flip bytes in every data pack.
    for entry in walk(&repo.repo().join("data")) {
        let mut bytes = std::fs::read(&entry).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        std::fs::write(&entry, bytes).unwrap();
    }

    let err = repo
        .run(&["--check", "--readDataSubset", "100%"])
        .await
        .unwrap_err();

    assert_eq!(err.reason(), "Check");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_termination_report_stays_under_four_kib_with_many_snapshots_and_counts_the_rest() {
    let repo = Repo::new();
    let n = 24;
    for i in 0..n {
        write(
            &repo
                .data()
                .join(format!("persistent-volume-claim-with-a-long-name-{i:02}/f")),
            format!("{i}").as_bytes(),
        );
    }

    let report = repo.run(&[]).await.unwrap();

    let written = std::fs::read_to_string(repo.report_file()).unwrap();
    assert!(written.len() <= 4096, "{} bytes", written.len());
    let parsed: k8up::restic::ResticReport = serde_json::from_str(&written).unwrap();
    assert_eq!(parsed.created.len() as u32 + parsed.created_omitted, n);
    assert!(
        parsed.created_omitted > 0,
        "the test must overflow the limit to prove truncation"
    );
    // The full list is returned to the caller.
    assert_eq!(report.created.len() as u32, n);
    assert_eq!(parsed.created[0], report.created[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_permanently_without_leaking_it() {
    let repo = Repo::new();
    repo.init();
    let mut args = repo.args(&[]);
    args.restic_password = Some("not-the-password-xyz".into());

    let err = k8up::restic::run(args).await.unwrap_err();

    assert!(err.is_permanent(), "{err}");
    let written = std::fs::read_to_string(repo.report_file()).unwrap();
    assert!(!written.contains("not-the-password-xyz"));
    assert!(written.contains("wrong"), "{written}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_told_to_await_the_repository_waits_for_its_init_instead_of_initialising_it() {
    let repo = Repo::new();
    write(&repo.data().join("pvc-a/file.txt"), b"alpha");

    // Nobody initialises it: the wait ends with a clear error, and no repository was created.
    let err = repo.run(&["--awaitRepository", "3s"]).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("not initialised by another job within 3s"),
        "{message}"
    );
    assert!(!repo.repo().join("config").exists(), "it must not init");

    // Another Job initialises it while this one waits: this one then backs up into it.
    let waiting = {
        let args = repo.args(&["--awaitRepository", "60s"]);
        tokio::spawn(k8up::restic::run(args))
    };
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(!waiting.is_finished(), "it waits while the repository is missing");
    repo.init();
    let report = waiting.await.unwrap().unwrap();
    assert!(report.success);
    assert_eq!(repo.snapshots().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_backup_calls_restic_four_times() {
    use std::os::unix::fs::PermissionsExt;
    let repo = Repo::new();
    write(&repo.data().join("pvc-a/file.txt"), b"alpha");
    // A restic that logs its subcommand (the first argument not starting with `-`) and runs the real one.
    let log = repo.path("calls.log");
    let shim = repo.path("restic-shim");
    std::fs::write(
        &shim,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in -*) ;; *) echo \"$a\" >> '{}'; break;; esac; done\nexec '{}' \"$@\"\n",
            log.display(),
            restic_support::restic_bin().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    let calls = || -> Vec<String> {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        std::fs::remove_file(&log).ok();
        text.lines().map(str::to_owned).collect()
    };
    let run = |extra: &[&str]| {
        let mut args = repo.args(extra);
        args.restic_bin = shim.clone();
        k8up::restic::run(args)
    };

    // Each call that opens the repository costs about a second on a remote one: a backup makes `unlock`
    // before its own and one listing after (ID resolution and the snapshot list share it); `init` stops at
    // the config check of an existing repository.
    let first = run(&[]).await.unwrap();
    assert!(first.success);
    assert_eq!(
        calls(),
        ["init", "unlock", "backup", "snapshots"],
        "new repository"
    );
    let second = run(&["--tag", "daily"]).await.unwrap();
    assert!(second.success);
    assert_eq!(
        calls(),
        ["init", "unlock", "backup", "snapshots"],
        "existing repository: init stops at its config check"
    );
    assert_eq!(
        second.created.len(),
        1,
        "the snapshot ID is resolved from that listing"
    );
    assert_eq!(second.created[0].id.len(), 64);
    assert_eq!(repo.snapshots().len(), 2);
}
