//! Restore mode: choose a snapshot, restore it into a folder (trimming `/data/<pvc>`) or upload it to S3 as
//! `.tar.gz`; dumps are verified against their recorded size and sha256, and restic's exit status is checked.

use std::io::Write as _;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::command::{RestoreOptions, SnapshotFilter};
use super::config::RestoreTarget;
use super::json::{LsNode, Snapshot, parse_ls};
use super::report::{DUMP_PENDING_TAG, ReportRestore, ResticReport, dump_tags};
use super::s3::{S3Client, Upload};
use super::{Ctx, Error, startup};

/// How the snapshot is chosen.
#[derive(Debug, Clone, Default)]
pub struct Selection<'a> {
    /// ID or ID prefix.
    pub snapshot: Option<&'a str>,
    /// Prefix of the Go time string.
    pub time_filter: Option<&'a str>,
    /// Path whose newest snapshot is preferred.
    pub prefer_path: Option<&'a str>,
}

/// Picks the snapshot: by ID prefix (must be unambiguous); else the newest whose time starts with the time
/// filter (falling back to the latest, like K8up); else the newest of `prefer_path` (falling back to the
/// latest, K8up #1062); else the latest.
pub fn choose<'a>(snaps: &'a [Snapshot], sel: &Selection<'_>) -> Result<&'a Snapshot, String> {
    let latest = |it: &mut dyn Iterator<Item = &'a Snapshot>| it.max_by_key(|s| s.time);
    if let Some(prefix) = sel.snapshot {
        let matches: Vec<&Snapshot> = snaps.iter().filter(|s| s.id.starts_with(prefix)).collect();
        return match matches.as_slice() {
            [one] => Ok(one),
            [] => Err(format!("no snapshot with ID {prefix:?}")),
            many => Err(format!(
                "snapshot ID prefix {prefix:?} is ambiguous ({} matches)",
                many.len()
            )),
        };
    }
    if let Some(f) = sel.time_filter {
        if let Some(s) = latest(&mut snaps.iter().filter(|s| s.go_time_string().starts_with(f))) {
            return Ok(s);
        }
        tracing::warn!(
            filter = f,
            "no snapshot matches the time filter; using the latest"
        );
    }
    if let Some(p) = sel.prefer_path {
        if let Some(s) = latest(&mut snaps.iter().filter(|s| s.paths.iter().any(|x| x == p))) {
            return Ok(s);
        }
        tracing::info!(path = p, "no snapshot of the preferred path; using the latest");
    }
    latest(&mut snaps.iter()).ok_or_else(|| "the repository has no matching snapshot".to_owned())
}

/// The filter for choosing a restore snapshot: the namespace's hosts unless an ID or paths are given (they
/// select across hosts, like K8up) and no `--hostnameFilter` was set.
pub fn restore_filter(ctx: &Ctx) -> SnapshotFilter {
    let mut f = ctx.cfg.filter(true);
    let cross_host = ctx.cfg.restore_snap.is_some() || !ctx.cfg.paths.is_empty();
    if cross_host && !ctx.cfg.hosts_explicit {
        f.hosts.clear();
    }
    f
}

/// Runs the restore mode.
pub async fn run(ctx: &Ctx, report: &mut ResticReport) -> Result<(), Error> {
    let snaps = startup::list_snapshots(ctx, &restore_filter(ctx)).await?;
    let sel = Selection {
        snapshot: ctx.cfg.restore_snap.as_deref(),
        time_filter: ctx.cfg.restore_time_filter.as_deref(),
        prefer_path: ctx.cfg.prefer_path.as_deref(),
    };
    let snap = choose(&snaps, &sel).map_err(Error::NoSnapshot)?.clone();
    tracing::info!(snapshot = %snap.short_id(), paths = ?snap.paths, host = %snap.hostname, "restoring");
    refuse_unfinished_dump(&snap)?;
    match &ctx.cfg.restore_target {
        Some(RestoreTarget::Folder(dir)) => {
            let r = restore_folder(ctx, &snap, dir).await?;
            ctx.notifier
                .restore(
                    &ctx.cfg,
                    &r.location,
                    &snap.id,
                    vec!["not supported for folder restores".into()],
                )
                .await;
            report.restored.push(r);
        }
        Some(RestoreTarget::S3) => {
            let client = s3_client(ctx)?;
            client.ensure_bucket().await.map_err(|e| Error::Upload {
                snapshot: snap.id.clone(),
                message: e.to_string(),
            })?;
            let (r, files) = upload_snapshot(ctx, &client, &snap).await?;
            ctx.notifier.restore(&ctx.cfg, &r.location, &snap.id, files).await;
            report.restored.push(r);
        }
        None => return Err(Error::InvalidConfig("no restore target".into())),
    }
    Ok(())
}

/// The S3 client of the restore/archive target.
pub fn s3_client(ctx: &Ctx) -> Result<S3Client, Error> {
    let t = ctx
        .cfg
        .s3
        .as_ref()
        .ok_or_else(|| Error::InvalidConfig("no S3 target configured".into()))?;
    S3Client::new(t).map_err(|e| Error::InvalidConfig(e.to_string()))
}

fn refuse_unfinished_dump(s: &Snapshot) -> Result<(), Error> {
    if s.tags.iter().any(|t| t == DUMP_PENDING_TAG) {
        return Err(Error::Integrity {
            snapshot: s.id.clone(),
            message: "the dump of this snapshot never finished (tag k8up.io/dump-pending)".into(),
        });
    }
    Ok(())
}

async fn nodes(ctx: &Ctx, id: &str) -> Result<Vec<LsNode>, Error> {
    let out = ctx
        .runner
        .output(&ctx.cfg.globals.ls(id))
        .await
        .map_err(|e| Error::Restore {
            snapshot: id.to_owned(),
            message: e.to_string(),
        })?;
    Ok(parse_ls(&out.stdout))
}

/// The single file of a stdin snapshot (`None` for directory snapshots).
fn single_file(nodes: &[LsNode]) -> Option<&LsNode> {
    match nodes {
        [n] if n.node_type == "file" => Some(n),
        _ => None,
    }
}

fn verify(snap: &Snapshot, bytes: u64, sha256: &str) -> Result<bool, Error> {
    let (want_bytes, want_sha) = dump_tags(&snap.tags);
    if want_bytes.is_none() && want_sha.is_none() {
        return Ok(false);
    }
    if let Some(b) = want_bytes.filter(|b| *b != bytes) {
        return Err(Error::Integrity {
            snapshot: snap.id.clone(),
            message: format!("expected {b} bytes, restored {bytes}"),
        });
    }
    if let Some(h) = want_sha.filter(|h| h != sha256) {
        return Err(Error::Integrity {
            snapshot: snap.id.clone(),
            message: format!("expected sha256 {h}, restored {sha256}"),
        });
    }
    Ok(true)
}

/// Restores into `dir`: a stdin snapshot as its file (verified against its dump tags), a directory snapshot
/// as `<id>:<path>` when trimming (contents at the target root) or whole.
pub async fn restore_folder(ctx: &Ctx, snap: &Snapshot, dir: &Path) -> Result<ReportRestore, Error> {
    let nodes = nodes(ctx, &snap.id).await?;
    let single = single_file(&nodes).cloned();
    let spec = match (&single, ctx.cfg.trim_restore_path, snap.paths.first()) {
        (Some(_), _, _) | (None, false, _) | (None, true, None) => snap.id.clone(),
        (None, true, Some(p)) => format!("{}:{p}", snap.id),
    };
    let opts = RestoreOptions {
        snapshot: spec,
        target: dir.to_path_buf(),
        include: ctx.cfg.restore_filter.clone(),
        verify: ctx.cfg.verify_restore,
        delete: ctx.cfg.delete,
    };
    ctx.runner
        .output(&ctx.cfg.globals.restore(&opts))
        .await
        .map_err(|e| Error::Restore {
            snapshot: snap.id.clone(),
            message: e.to_string(),
        })?;
    let mut verified = false;
    if let Some(file) = single.filter(|_| ctx.cfg.restore_filter.is_none()) {
        let path = dir.join(file.path.trim_start_matches('/'));
        let (bytes, sha) = hash_file(&path).await.map_err(|e| Error::Restore {
            snapshot: snap.id.clone(),
            message: format!("reading the restored {}: {e}", path.display()),
        })?;
        verified = verify(snap, bytes, &sha)?;
    }
    Ok(ReportRestore {
        snapshot: snap.id.clone(),
        location: dir.display().to_string(),
        verified,
    })
}

async fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n_total = 0u64;
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        n_total += n as u64;
    }
    Ok((n_total, hex::encode(hasher.finalize())))
}

/// `backup-<host>-<basename of the last path>-<RFC3339 time>.tar.gz` (K8up's object name).
pub fn object_name(s: &Snapshot) -> String {
    let base = s
        .paths
        .last()
        .map(|p| {
            p.trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .unwrap_or_default();
    format!(
        "backup-{}-{}-{}.tar.gz",
        s.hostname,
        base,
        s.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

/// Streams `restic dump` of the snapshot, gzipped (with a synthesised tar header for a single-file snapshot),
/// into the bucket. The object is completed only when restic exited successfully and a dump matched its tags.
/// Returns the report entry and the restored file names.
pub async fn upload_snapshot(
    ctx: &Ctx,
    client: &S3Client,
    snap: &Snapshot,
) -> Result<(ReportRestore, Vec<String>), Error> {
    refuse_unfinished_dump(snap)?;
    let fail = |message: String| Error::Upload {
        snapshot: snap.id.clone(),
        message,
    };
    let nodes = nodes(ctx, &snap.id).await?;
    let single = single_file(&nodes).cloned();
    let key = object_name(snap);
    let dump_path = single
        .as_ref()
        .map(|n| n.path.clone())
        .unwrap_or_else(|| "/".to_owned());
    let mut running = ctx
        .runner
        .spawn(&ctx.cfg.globals.dump(&snap.id, &dump_path), false)
        .map_err(|e| fail(e.to_string()))?;
    let Some(mut stdout) = running.stdout.take() else {
        running.kill().await;
        return Err(fail("restic dump has no stdout".into()));
    };
    let deadline = running.deadline();
    let mut upload = Upload::new(client, &key);
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;

    let stream = async {
        if let Some(n) = &single {
            let mut header = tar::Header::new_gnu();
            header
                .set_path(n.path.trim_start_matches('/'))
                .map_err(|e| format!("tar header: {e}"))?;
            header.set_size(n.size);
            header.set_mode(if n.mode == 0 { 0o644 } else { n.mode & 0o7777 });
            header.set_mtime(n.mtime.map(|t| t.timestamp().max(0) as u64).unwrap_or(0));
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            gz.write_all(header.as_bytes()).map_err(|e| e.to_string())?;
        }
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = stdout
                .read(&mut buf)
                .await
                .map_err(|e| format!("reading restic dump: {e}"))?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
            if single.is_some() {
                hasher.update(&buf[..n]);
            }
            gz.write_all(&buf[..n]).map_err(|e| e.to_string())?;
            let out = std::mem::take(gz.get_mut());
            upload.write(&out).await.map_err(|e| e.to_string())?;
        }
        if let Some(n) = &single {
            if bytes != n.size {
                return Err(format!(
                    "restic dump returned {bytes} bytes, the snapshot lists {}",
                    n.size
                ));
            }
            // Pad the entry to a whole block, then the two zero blocks that end a tar archive.
            let pad = (512 - (bytes % 512) as usize) % 512;
            gz.write_all(&vec![0u8; pad + 1024]).map_err(|e| e.to_string())?;
        }
        Ok::<(), String>(())
    };
    let streamed = match tokio::time::timeout_at(deadline, stream).await {
        Ok(r) => r,
        Err(_) => Err("restic dump did not finish before its deadline".to_owned()),
    };
    if let Err(m) = streamed {
        running.kill().await;
        upload.abort().await;
        return Err(fail(m));
    }
    if let Err(e) = running.finish().await {
        upload.abort().await;
        return Err(fail(e.to_string()));
    }
    let verified = if single.is_some() {
        match verify(snap, bytes, &hex::encode(hasher.finalize())) {
            Ok(v) => v,
            Err(e) => {
                upload.abort().await;
                return Err(e);
            }
        }
    } else {
        false
    };
    let tail = match gz.finish() {
        Ok(t) => t,
        Err(e) => {
            upload.abort().await;
            return Err(fail(format!("gzip: {e}")));
        }
    };
    if let Err(e) = upload.write(&tail).await {
        upload.abort().await;
        return Err(fail(e.to_string()));
    }
    upload.finish().await.map_err(|e| fail(e.to_string()))?;
    let location = client.location(&key);
    tracing::info!(snapshot = %snap.short_id(), %location, bytes, "uploaded");
    let files = match &single {
        Some(n) => vec![n.path.trim_start_matches('/').to_owned()],
        None => nodes
            .iter()
            .filter(|n| n.node_type == "file")
            .map(|n| n.path.trim_start_matches('/').to_owned())
            .collect(),
    };
    Ok((
        ReportRestore {
            snapshot: snap.id.clone(),
            location,
            verified,
        },
        files,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn s(id: &str, secs: i64, paths: &[&str]) -> Snapshot {
        Snapshot {
            id: id.into(),
            time: chrono::Utc
                .timestamp_opt(1_700_000_000 + secs, 0)
                .single()
                .unwrap_or_default(),
            tree: String::new(),
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            hostname: "ns".into(),
            username: String::new(),
            uid: 0,
            gid: 0,
            tags: vec![],
            original: None,
            summary: None,
        }
    }

    fn pick(snaps: &[Snapshot], sel: Selection<'_>) -> String {
        choose(snaps, &sel)
            .map(|s| s.id.clone())
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn without_criteria_the_latest_snapshot_is_chosen() {
        let snaps = [
            s("aa", 0, &["/data/a"]),
            s("bb", 10, &["/data/b"]),
            s("cc", 5, &["/data/a"]),
        ];
        assert_eq!(pick(&snaps, Selection::default()), "bb");
    }

    #[test]
    fn an_id_prefix_must_match_exactly_one_snapshot() {
        let snaps = [s("abc1", 0, &[]), s("abc2", 1, &[]), s("def", 2, &[])];
        assert_eq!(
            pick(
                &snaps,
                Selection {
                    snapshot: Some("abc1"),
                    ..Default::default()
                }
            ),
            "abc1"
        );
        assert!(
            pick(
                &snaps,
                Selection {
                    snapshot: Some("abc"),
                    ..Default::default()
                }
            )
            .contains("ambiguous")
        );
        assert!(
            pick(
                &snaps,
                Selection {
                    snapshot: Some("zzz"),
                    ..Default::default()
                }
            )
            .starts_with("error")
        );
    }

    #[test]
    fn the_preferred_path_wins_over_newer_snapshots_of_other_pvcs() {
        let snaps = [
            s("aa", 0, &["/data/a"]),
            s("bb", 10, &["/data/b"]),
            s("cc", 5, &["/data/a"]),
        ];
        assert_eq!(
            pick(
                &snaps,
                Selection {
                    prefer_path: Some("/data/a"),
                    ..Default::default()
                }
            ),
            "cc"
        );
        assert_eq!(
            pick(
                &snaps,
                Selection {
                    prefer_path: Some("/data/zz"),
                    ..Default::default()
                }
            ),
            "bb"
        );
    }

    #[test]
    fn a_time_filter_picks_the_newest_matching_snapshot_or_falls_back_to_the_latest() {
        let snaps = [s("aa", 0, &[]), s("bb", 3600 * 24 * 3, &[])];
        let day0 = snaps[0].go_time_string()[..10].to_owned();
        assert_eq!(
            pick(
                &snaps,
                Selection {
                    time_filter: Some(&day0),
                    ..Default::default()
                }
            ),
            "aa"
        );
        assert_eq!(
            pick(
                &snaps,
                Selection {
                    time_filter: Some("1999-"),
                    ..Default::default()
                }
            ),
            "bb"
        );
    }

    #[test]
    fn object_names_follow_k8up() {
        let snap = Snapshot {
            hostname: "ns".into(),
            ..s("aa", 0, &["/data/pvc"])
        };
        assert_eq!(object_name(&snap), "backup-ns-pvc-2023-11-14T22:13:20Z.tar.gz");
    }
}
