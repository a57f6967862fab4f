//! Backup mode: one snapshot per sub-directory of `BACKUP_DIR` (`--host <namespace>`), then one per annotated
//! pod's dump; stats to the webhook and Pushgateway; the snapshots made go into the report.

use std::path::Path;

use chrono::Utc;

use super::exec::{self, PodSelection};
use super::json::{BackupMessage, BackupSummary, Snapshot};
use super::notify::BackupStats;
use super::report::{ReportSnapshot, ResticReport};
use super::{Ctx, Error, startup};

/// The sub-directories of `dir` in name order (files are ignored). A missing `dir` yields none.
pub fn sub_directories(dir: &Path) -> Result<Vec<String>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Prepare {
                what: format!("listing {}", dir.display()),
                source,
            });
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// Runs the backup mode.
pub async fn run(ctx: &Ctx, report: &mut ResticReport) -> Result<(), Error> {
    let mounted = sub_directories(&ctx.cfg.backup_dir)?;
    // Folder snapshots are first recorded with restic's (possibly short) ID and resolved in one listing at
    // the end, also when a later step fails: snapshots that exist must be reported either way.
    let mut pending: Vec<(String, String, BackupSummary)> = Vec::new();
    let mut last_listing = None;
    let result = run_inner(ctx, report, &mounted, &mut pending, &mut last_listing).await;
    // One listing of this namespace's snapshots serves both the ID resolution and the snapshot list the
    // webhook and metrics get (each restic call re-opens the repository: ~1 s on a remote one): the one the
    // last dump made when it was the last thing stored, else a new one; a second one is made only when
    // `--hostnameFilter` widens the list beyond this namespace.
    let by_host = match last_listing {
        Some(listing) => Ok(listing),
        None => startup::list_snapshots(ctx, &host_filter(ctx)).await,
    };
    if !pending.is_empty() {
        resolve(ctx, report, &pending, by_host.as_deref().unwrap_or_default());
    }
    let listed = if ctx.cfg.hosts == [ctx.cfg.host.clone()] {
        by_host.map(|all| {
            all.into_iter()
                .filter(|s| tags_match(&ctx.cfg.tags, &s.tags))
                .collect()
        })
    } else {
        startup::list_snapshots(ctx, &ctx.cfg.filter(false)).await
    };
    if let Ok(all) = listed {
        ctx.notifier.snapshot_list(&ctx.cfg, &all).await;
        ctx.notifier.available_snapshots(all.len());
    }
    result
}

fn host_filter(ctx: &Ctx) -> super::command::SnapshotFilter {
    super::command::SnapshotFilter {
        hosts: vec![ctx.cfg.host.clone()],
        ..Default::default()
    }
}

/// restic's `--tag` filter, applied locally: a snapshot matches when some filter entry has all its
/// comma-separated tags (entries are alternatives, commas join); no entries match everything.
fn tags_match(filter: &[String], tags: &[String]) -> bool {
    filter.is_empty()
        || filter
            .iter()
            .any(|entry| entry.split(',').all(|t| tags.iter().any(|have| have == t)))
}

async fn run_inner(
    ctx: &Ctx,
    report: &mut ResticReport,
    mounted: &[String],
    pending: &mut Vec<(String, String, BackupSummary)>,
    last_listing: &mut Option<Vec<Snapshot>>,
) -> Result<(), Error> {
    for name in mounted {
        let path = ctx.cfg.backup_dir.join(name).display().to_string();
        let started = Utc::now();
        let (summary, errors) = backup_folder(ctx, report, &path).await?;
        if let Some(id) = &summary.snapshot_id {
            pending.push((id.clone(), path.clone(), summary.clone()));
        }
        let stats = BackupStats {
            folder: path,
            started,
            summary,
            mounted: mounted.to_vec(),
            errors,
        };
        ctx.notifier.backup_stats(&ctx.cfg, &stats).await;
    }

    if !ctx.cfg.pre_backup {
        return Ok(());
    }
    let Some(client) = &ctx.kube else {
        return Ok(());
    };
    let sel = PodSelection {
        namespace: &ctx.cfg.host,
        command_annotation: &ctx.cfg.command_annotation,
        extension_annotation: &ctx.cfg.extension_annotation,
        container_annotation: &ctx.cfg.container_annotation,
        target_pods: &ctx.cfg.target_pods,
    };
    for target in exec::discover(client, &sel).await? {
        tracing::info!(pod = %target.pod, container = %target.container, file = %target.filename, "backing up the output of the backup command");
        let started = Utc::now();
        let dump = exec::exec_pod_dump(
            client,
            &ctx.cfg.host,
            &target,
            &ctx.runner,
            &ctx.cfg.globals,
            &ctx.cfg.backup,
        )
        .await?;
        tracing::info!(snapshot = %dump.snapshot.short_id(), bytes = dump.bytes, sha256 = %dump.sha256, "dump stored");
        // Folder backups come first, so the listing after the last dump holds every snapshot of this run.
        *last_listing = Some(dump.host_snapshots.clone());
        report.created.push(ReportSnapshot::from_snapshot(&dump.snapshot));
        let mut summary = dump.summary.clone();
        summary.snapshot_id = Some(dump.snapshot.id.clone());
        let stats = BackupStats {
            folder: target.filename.clone(),
            started,
            summary,
            mounted: mounted.to_vec(),
            errors: 0,
        };
        ctx.notifier.backup_stats(&ctx.cfg, &stats).await;
    }
    Ok(())
}

/// `restic backup <path>`: streams the JSON lines (progress logged, per-file errors become warnings) and
/// returns the summary and the number of unreadable files. Exit code 3 (some files unreadable) is a success
/// with a warning.
pub async fn backup_folder(
    ctx: &Ctx,
    report: &mut ResticReport,
    path: &str,
) -> Result<(BackupSummary, u64), Error> {
    tracing::info!(path, "backing up folder");
    let cmd = ctx.cfg.globals.backup_folder(&ctx.cfg.backup, path);
    let mut summary = None;
    let mut errors: Vec<String> = Vec::new();
    let mut last_tenth = -1i64;
    let out = ctx
        .runner
        .stream(&cmd, |line| match serde_json::from_str::<BackupMessage>(line) {
            Ok(BackupMessage::Status(s)) => {
                let tenth = (s.percent_done * 10.0) as i64;
                if tenth != last_tenth {
                    last_tenth = tenth;
                    tracing::info!(
                        path,
                        percent = (s.percent_done * 100.0) as u32,
                        bytes = s.bytes_done,
                        "progress of backup"
                    );
                }
            }
            Ok(BackupMessage::Error(e)) => {
                let msg = e
                    .error
                    .get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned)
                    .unwrap_or_else(|| e.error.to_string());
                tracing::warn!(path, item = %e.item, "restic could not read: {msg}");
                errors.push(format!("{}: {msg}", e.item));
            }
            Ok(BackupMessage::Summary(s)) => summary = Some(s),
            Ok(BackupMessage::VerboseStatus(_)) | Err(_) => {}
        })
        .await
        .map_err(|source| Error::Backup {
            path: path.to_owned(),
            source,
        })?;
    if out.partial || !errors.is_empty() {
        let shown: Vec<&str> = errors.iter().take(3).map(String::as_str).collect();
        report.warnings.push(format!(
            "{path}: {} file(s) could not be read: {}",
            errors.len().max(1),
            shown.join("; ")
        ));
    }
    let n_errors = errors.len() as u64;
    summary.map(|s| (s, n_errors)).ok_or_else(|| Error::Backup {
        path: path.to_owned(),
        source: super::runner::ResticError::Failed {
            command: "backup".into(),
            code: Some(0),
            stderr: "restic printed no summary".into(),
        },
    })
}

fn resolve(
    ctx: &Ctx,
    report: &mut ResticReport,
    pending: &[(String, String, BackupSummary)],
    all: &[Snapshot],
) {
    let mut created = Vec::new();
    for (id, path, summary) in pending {
        match all.iter().find(|s| s.id.starts_with(id.as_str())) {
            Some(s) => {
                let mut r = ReportSnapshot::from_snapshot(s);
                r.bytes = Some(summary.total_bytes_processed);
                r.added = Some(summary.data_added);
                created.push(r);
            }
            None => created.push(ReportSnapshot {
                id: id.clone(),
                paths: vec![path.clone()],
                host: ctx.cfg.host.clone(),
                bytes: Some(summary.total_bytes_processed),
                added: Some(summary.data_added),
                ..Default::default()
            }),
        }
    }
    // Folder snapshots were made first; keep that order ahead of the dumps in the report.
    created.append(&mut report.created);
    report.created = created;
}

#[cfg(test)]
mod tests {
    use super::tags_match;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn the_local_tag_filter_reads_entries_as_alternatives_and_commas_as_all_of() {
        assert!(tags_match(&[], &[]));
        assert!(tags_match(&s(&["daily"]), &s(&["daily", "x"])));
        assert!(!tags_match(&s(&["daily"]), &s(&["weekly"])));
        assert!(tags_match(&s(&["weekly", "daily"]), &s(&["daily"])));
        assert!(tags_match(&s(&["a,b"]), &s(&["b", "a"])));
        assert!(!tags_match(&s(&["a,b"]), &s(&["a"])));
    }
}
