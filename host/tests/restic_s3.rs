//! Restore to S3 and Archive against a real SeaweedFS S3 server (`weed mini`) and the real restic binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod restic_support;

use pretty_assertions::assert_eq;
use restic_support::{Repo, Seaweed, untar_gz, write};

fn s3_flags<'a>(weed: &'a Seaweed, endpoint: &'a str) -> Vec<&'a str> {
    vec![
        "--restoreS3Endpoint",
        endpoint,
        "--restoreS3AccessKey",
        weed.access_key.as_str(),
        "--restoreS3SecretKey",
        weed.secret_key.as_str(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_to_s3_uploads_a_tar_gz_of_the_snapshot_and_a_dump_as_its_file() {
    let weed = Seaweed::start().await;
    let repo = Repo::new();
    write(&repo.data().join("pvc/dir/a.txt"), b"file a");
    write(&repo.data().join("pvc/b.bin"), &vec![42u8; 3 * 1024 * 1024]);
    repo.run(&[]).await.unwrap();
    let snap = repo.snapshots().remove(0);
    let endpoint = format!("{}/restores", weed.endpoint);

    let mut flags = vec!["--restore", "--restoreType", "s3"];
    flags.extend(s3_flags(&weed, &endpoint));
    let report = repo.run(&flags).await.unwrap();

    let key = format!(
        "backup-ns-pvc-{}.tar.gz",
        snap.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    assert_eq!(report.restored[0].location, format!("{endpoint}/{key}"));
    let client = weed.client("restores");
    assert_eq!(client.list().await.unwrap(), vec![key.clone()]);
    let entries = untar_gz(&client.get(&key).await.unwrap());
    let prefix = repo
        .data()
        .join("pvc")
        .display()
        .to_string()
        .trim_start_matches('/')
        .to_owned();
    let mut got: Vec<(String, usize)> = entries.iter().map(|(p, d)| (p.clone(), d.len())).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (format!("{prefix}/b.bin"), 3 * 1024 * 1024),
            (format!("{prefix}/dir/a.txt"), 6)
        ]
    );
    assert_eq!(
        entries.iter().find(|(p, _)| p.ends_with("a.txt")).unwrap().1,
        b"file a"
    );

    // A single-file (stdin) snapshot becomes a tar.gz holding that file, verified against its digest.
    let mut child = repo
        .restic()
        .args([
            "backup",
            "--stdin",
            "--stdin-filename",
            "/ns-app.sql",
            "--host",
            "ns",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"SELECT 1;\n").unwrap();
    }
    assert!(child.wait().unwrap().success());
    let mut flags = vec!["--restore", "--restoreType", "s3", "--path", "/ns-app.sql"];
    flags.extend(s3_flags(&weed, &endpoint));
    let report = repo.run(&flags).await.unwrap();
    let key = report.restored[0].location.rsplit('/').next().unwrap().to_owned();
    assert!(key.starts_with("backup-ns-ns-app.sql-"), "{key}");
    let entries = untar_gz(&client.get(&key).await.unwrap());
    assert_eq!(entries, vec![("ns-app.sql".to_owned(), b"SELECT 1;\n".to_vec())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_uploads_the_latest_snapshot_per_host_and_path_by_default_and_every_snapshot_on_request() {
    let weed = Seaweed::start().await;
    let repo = Repo::new();
    write(&repo.data().join("pvc-a/f"), b"a1");
    write(&repo.data().join("pvc-b/f"), b"b1");
    repo.run(&[]).await.unwrap();
    // Snapshot times have second resolution in object names: keep them apart.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    write(&repo.data().join("pvc-a/f"), b"a2");
    repo.run(&[]).await.unwrap();
    let snaps = repo.snapshots();
    assert_eq!(snaps.len(), 4);

    let endpoint = format!("{}/archive-latest", weed.endpoint);
    let mut flags = vec!["--archive"];
    flags.extend(s3_flags(&weed, &endpoint));
    let report = repo.run(&flags).await.unwrap();

    assert_eq!(report.restored.len(), 2, "{report:?}");
    let keys = weed.client("archive-latest").list().await.unwrap();
    assert_eq!(keys.len(), 2);
    let newest_a = snaps
        .iter()
        .filter(|s| s.paths[0].ends_with("pvc-a"))
        .max_by_key(|s| s.time)
        .unwrap();
    let key_a = keys.iter().find(|k| k.contains("-pvc-a-")).unwrap();
    assert!(key_a.contains(&newest_a.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)));
    let entries = untar_gz(&weed.client("archive-latest").get(key_a).await.unwrap());
    assert_eq!(entries[0].1, b"a2");

    let endpoint = format!("{}/archive-all", weed.endpoint);
    let mut flags = vec!["--archive", "--allSnapshots"];
    flags.extend(s3_flags(&weed, &endpoint));
    let report = repo.run(&flags).await.unwrap();
    assert_eq!(report.restored.len(), 4);
    assert_eq!(weed.client("archive-all").list().await.unwrap().len(), 4);
}
