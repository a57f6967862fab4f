//! Archive mode: upload snapshots to the S3 target as `.tar.gz`, by default the latest per (host, path set),
//! with `--allSnapshots` every matching one (K8up's behaviour).

use std::collections::BTreeMap;

use super::json::Snapshot;
use super::report::ResticReport;
use super::{Ctx, Error, restore, startup};

/// The newest snapshot of each (host, paths) group, in (host, paths) order.
pub fn latest_per_host_and_path(snaps: &[Snapshot]) -> Vec<&Snapshot> {
    let mut groups: BTreeMap<(String, Vec<String>), &Snapshot> = BTreeMap::new();
    for s in snaps {
        let mut paths = s.paths.clone();
        paths.sort();
        let key = (s.hostname.clone(), paths);
        match groups.get(&key) {
            Some(existing) if existing.time >= s.time => {}
            _ => {
                groups.insert(key, s);
            }
        }
    }
    groups.into_values().collect()
}

/// Runs the archive mode. No matching snapshot is not an error (nothing to archive).
pub async fn run(ctx: &Ctx, report: &mut ResticReport) -> Result<(), Error> {
    let snaps = startup::list_snapshots(ctx, &ctx.cfg.filter(true)).await?;
    let chosen: Vec<&Snapshot> = if ctx.cfg.all_snapshots {
        snaps.iter().collect()
    } else {
        latest_per_host_and_path(&snaps)
    };
    if chosen.is_empty() {
        tracing::info!("no snapshot to archive");
        return Ok(());
    }
    let client = restore::s3_client(ctx)?;
    client.ensure_bucket().await.map_err(|e| Error::Upload {
        snapshot: String::new(),
        message: e.to_string(),
    })?;
    for s in chosen {
        if s.tags.iter().any(|t| t == super::report::DUMP_PENDING_TAG) {
            report
                .warnings
                .push(format!("skipped unfinished dump snapshot {}", s.short_id()));
            continue;
        }
        let (r, files) = restore::upload_snapshot(ctx, &client, s).await?;
        ctx.notifier.restore(&ctx.cfg, &r.location, &s.id, files).await;
        report.restored.push(r);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn s(id: &str, host: &str, secs: i64, paths: &[&str]) -> Snapshot {
        Snapshot {
            id: id.into(),
            time: chrono::Utc
                .timestamp_opt(1_700_000_000 + secs, 0)
                .single()
                .unwrap_or_default(),
            tree: String::new(),
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            hostname: host.into(),
            username: String::new(),
            uid: 0,
            gid: 0,
            tags: vec![],
            original: None,
            summary: None,
        }
    }

    #[test]
    fn the_archive_keeps_the_newest_snapshot_of_each_host_and_path() {
        let snaps = [
            s("a1", "ns", 0, &["/data/a"]),
            s("a2", "ns", 10, &["/data/a"]),
            s("b1", "ns", 5, &["/data/b"]),
            s("x1", "other", 1, &["/data/a"]),
            s("x2", "other", 0, &["/data/a"]),
        ];
        let ids: Vec<&str> = latest_per_host_and_path(&snaps)
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(ids, vec!["a2", "b1", "x1"]);
    }
}
