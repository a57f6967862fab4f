//! Side channels: K8up's webhook payloads (REFERENCE.md 4.9) and Pushgateway gauges (4.10), plus a check
//! result (payload `check_result`, gauges of job `restic_check`; K8up reported nothing for checks). Failures
//! are logged, never fatal.

use std::fmt::Write as _;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::config::Config;
use super::json::{BackupSummary, Snapshot};

/// Stats of one backed-up folder or dump.
#[derive(Debug, Clone)]
pub struct BackupStats {
    /// Snapshot path (`/data/<pvc>` or `/<ns>-<container><ext>`).
    pub folder: String,
    /// When this backup started.
    pub started: DateTime<Utc>,
    /// restic's summary.
    pub summary: BackupSummary,
    /// Sub-directories of `BACKUP_DIR`.
    pub mounted: Vec<String>,
    /// Files restic could not read.
    pub errors: u64,
}

/// K8up's per-snapshot webhook body (with `folder` in lower case and a real start time).
#[derive(Debug, Serialize)]
pub struct BackupStatsPayload<'a> {
    /// Namespace.
    pub name: &'a str,
    /// Basename of the repository.
    pub bucket_name: String,
    /// The metrics.
    pub backup_metrics: BackupMetrics<'a>,
}

/// Body of `backup_metrics`.
#[derive(Debug, Serialize)]
pub struct BackupMetrics<'a> {
    /// Unix seconds when the backup started.
    pub backup_start_timestamp: i64,
    /// Unix seconds when it ended.
    pub backup_end_timestamp: i64,
    /// Files restic could not read.
    pub errors: u64,
    /// New files.
    pub new_files: u64,
    /// Changed files.
    pub changed_files: u64,
    /// Unmodified files.
    pub unmodified_files: u64,
    /// New directories.
    pub new_dirs: u64,
    /// Changed directories.
    pub changed_dirs: u64,
    /// Unmodified directories.
    pub unmodified_dirs: u64,
    /// Bytes added to the repository.
    pub data_transferred: u64,
    /// Sub-directories of `BACKUP_DIR`.
    #[serde(rename = "mounted_PVCs")]
    pub mounted_pvcs: &'a [String],
    /// Snapshot path.
    pub folder: &'a str,
    /// Snapshot ID.
    pub id: &'a str,
}

/// K8up's snapshot-list webhook body.
#[derive(Debug, Serialize)]
pub struct SnapshotListPayload<'a> {
    /// Namespace.
    pub name: &'a str,
    /// Basename of the repository.
    pub bucket_name: String,
    /// The snapshots.
    pub snapshots: Vec<SnapshotEntry<'a>>,
}

/// A snapshot in the list webhook.
#[derive(Debug, Serialize)]
pub struct SnapshotEntry<'a> {
    /// ID.
    pub id: &'a str,
    /// Time.
    pub time: DateTime<Utc>,
    /// Tree.
    pub tree: &'a str,
    /// Paths.
    pub paths: &'a [String],
    /// Host.
    pub hostname: &'a str,
    /// User.
    pub username: &'a str,
    /// UID.
    pub uid: u32,
    /// GID.
    pub gid: u32,
    /// Tags.
    pub tags: &'a [String],
}

/// K8up's restore webhook body.
#[derive(Debug, Serialize)]
pub struct RestorePayload<'a> {
    /// Directory or URL of the restored data.
    pub restore_location: &'a str,
    /// Snapshot ID.
    #[serde(rename = "snapshot_ID")]
    pub snapshot_id: &'a str,
    /// Files restored (K8up sends a placeholder for folder restores).
    pub restored_files: Vec<String>,
}

/// The check webhook body (k8up-rs; K8up had none).
#[derive(Debug, Serialize)]
pub struct CheckPayload<'a> {
    /// Namespace.
    pub name: &'a str,
    /// Basename of the repository.
    pub bucket_name: String,
    /// The outcome.
    pub check_result: CheckResult<'a>,
}

/// Body of `check_result`.
#[derive(Debug, Serialize)]
pub struct CheckResult<'a> {
    /// Whether the repository passed.
    pub success: bool,
    /// `--read-data-subset`, when set.
    pub read_data_subset: Option<&'a str>,
    /// Unix time the check started.
    pub check_start_timestamp: i64,
    /// Unix time it ended.
    pub check_end_timestamp: i64,
    /// What failed (empty on success).
    pub errors: Vec<String>,
}

/// The outcome of one check, for [`Notifier::check_result`].
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    /// When the check started.
    pub started: DateTime<Utc>,
    /// `None` when the repository passed, else why not.
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
struct Gauges {
    pvc: String,
    errors: u64,
    summary: BackupSummary,
}

/// Sends webhooks and pushes gauges.
#[derive(Debug)]
pub struct Notifier {
    http: reqwest::Client,
    series: Mutex<Vec<Gauges>>,
    available: Mutex<Option<usize>>,
}

impl Notifier {
    /// A notifier for this configuration.
    pub fn new(_cfg: &Config) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            http,
            series: Mutex::new(Vec::new()),
            available: Mutex::new(None),
        }
    }

    async fn post_json<T: Serialize>(&self, url: &str, body: &T, what: &str) -> Result<(), String> {
        let resp = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(|e| format!("{e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{what}: HTTP {}", resp.status()));
        }
        Ok(())
    }

    /// Per-snapshot stats to the webhook and the Pushgateway.
    pub async fn backup_stats(&self, cfg: &Config, stats: &BackupStats) {
        if let Some(url) = &cfg.webhook_url {
            let s = &stats.summary;
            let body = BackupStatsPayload {
                name: &cfg.host,
                bucket_name: cfg.bucket_name(),
                backup_metrics: BackupMetrics {
                    backup_start_timestamp: stats.started.timestamp(),
                    backup_end_timestamp: Utc::now().timestamp(),
                    errors: stats.errors,
                    new_files: s.files_new,
                    changed_files: s.files_changed,
                    unmodified_files: s.files_unmodified,
                    new_dirs: s.dirs_new,
                    changed_dirs: s.dirs_changed,
                    unmodified_dirs: s.dirs_unmodified,
                    data_transferred: s.data_added,
                    mounted_pvcs: &stats.mounted,
                    folder: &stats.folder,
                    id: s.snapshot_id.as_deref().unwrap_or_default(),
                },
            };
            if let Err(e) = self.post_json(url, &body, "backup stats webhook").await {
                tracing::warn!(error = %cfg.redactor.redact(&e), "failed to send backup stats to the webhook");
            }
        }
        if let Ok(mut series) = self.series.lock() {
            series.retain(|g| g.pvc != stats.folder);
            series.push(Gauges {
                pvc: stats.folder.clone(),
                errors: stats.errors,
                summary: stats.summary.clone(),
            });
        }
        self.push(cfg).await;
    }

    /// Records the number of snapshots for the next push (pushed at once).
    pub fn available_snapshots(&self, n: usize) {
        if let Ok(mut a) = self.available.lock() {
            *a = Some(n);
        }
    }

    /// The snapshot list to the webhook.
    pub async fn snapshot_list(&self, cfg: &Config, snapshots: &[Snapshot]) {
        let Some(url) = &cfg.webhook_url else { return };
        let body = SnapshotListPayload {
            name: &cfg.host,
            bucket_name: cfg.bucket_name(),
            snapshots: snapshots
                .iter()
                .map(|s| SnapshotEntry {
                    id: &s.id,
                    time: s.time,
                    tree: &s.tree,
                    paths: &s.paths,
                    hostname: &s.hostname,
                    username: &s.username,
                    uid: s.uid,
                    gid: s.gid,
                    tags: &s.tags,
                })
                .collect(),
        };
        if let Err(e) = self.post_json(url, &body, "snapshot list webhook").await {
            tracing::warn!(error = %cfg.redactor.redact(&e), "failed to send the snapshot list to the webhook");
        }
    }

    /// A restore to the webhook.
    pub async fn restore(&self, cfg: &Config, location: &str, snapshot_id: &str, files: Vec<String>) {
        let Some(url) = &cfg.webhook_url else { return };
        let body = RestorePayload {
            restore_location: location,
            snapshot_id,
            restored_files: files,
        };
        if let Err(e) = self.post_json(url, &body, "restore webhook").await {
            tracing::warn!(error = %cfg.redactor.redact(&e), "failed to send the restore to the webhook");
        }
    }

    /// A check's outcome to the webhook and the Pushgateway (job `restic_check`).
    pub async fn check_result(&self, cfg: &Config, outcome: &CheckOutcome) {
        let ended = Utc::now();
        if let Some(url) = &cfg.webhook_url {
            let body = CheckPayload {
                name: &cfg.host,
                bucket_name: cfg.bucket_name(),
                check_result: CheckResult {
                    success: outcome.error.is_none(),
                    read_data_subset: cfg.read_data_subset.as_deref(),
                    check_start_timestamp: outcome.started.timestamp(),
                    check_end_timestamp: ended.timestamp(),
                    errors: outcome.error.iter().map(|e| cfg.redactor.redact(e)).collect(),
                },
            };
            if let Err(e) = self.post_json(url, &body, "check webhook").await {
                tracing::warn!(error = %cfg.redactor.redact(&e), "failed to send the check result to the webhook");
            }
        }
        if let Some(base) = &cfg.prom_url {
            let body = check_exposition(&cfg.host, outcome.error.is_none(), ended.timestamp());
            self.send_push(
                cfg,
                &pushgateway_url_for("restic_check", base, &cfg.host, &cfg.cluster_name),
                body,
            )
            .await;
        }
    }

    async fn push(&self, cfg: &Config) {
        let Some(base) = &cfg.prom_url else { return };
        let series = self.series.lock().map(|s| s.clone()).unwrap_or_default();
        let available = self.available.lock().ok().and_then(|a| *a);
        let body = exposition(&cfg.host, &series_view(&series), available);
        self.send_push(cfg, &pushgateway_url(base, &cfg.host, &cfg.cluster_name), body)
            .await;
    }

    async fn send_push(&self, cfg: &Config, url: &str, body: String) {
        let sent = self
            .http
            .post(url)
            .header("Content-Type", "text/plain; version=0.0.4")
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(status = %r.status(), "the Pushgateway rejected the metrics"),
            Err(e) => tracing::warn!(error = %cfg.redactor.redact(&e.to_string()), "failed to push metrics"),
        }
    }
}

fn series_view(series: &[Gauges]) -> Vec<(String, u64, BackupSummary)> {
    series
        .iter()
        .map(|g| (g.pvc.clone(), g.errors, g.summary.clone()))
        .collect()
}

/// `<base>/metrics/job/restic_backup/instance/<ns>[/cluster/<cluster>]` (grouping key as in K8up).
pub fn pushgateway_url(base: &str, namespace: &str, cluster: &str) -> String {
    pushgateway_url_for("restic_backup", base, namespace, cluster)
}

/// `<base>/metrics/job/<job>/instance/<ns>[/cluster/<cluster>]`.
pub fn pushgateway_url_for(job: &str, base: &str, namespace: &str, cluster: &str) -> String {
    let enc = |s: &str| {
        url::form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    let mut u = format!(
        "{}/metrics/job/{job}/instance/{}",
        base.trim_end_matches('/'),
        enc(namespace)
    );
    if !cluster.is_empty() {
        let _ = write!(u, "/cluster/{}", enc(cluster));
    }
    u
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The Prometheus text exposition of K8up's backup gauges for every snapshot path backed up so far.
pub fn exposition(
    namespace: &str,
    series: &[(String, u64, BackupSummary)],
    available: Option<usize>,
) -> String {
    type Get = fn(u64, &BackupSummary) -> u64;
    let gauges: [(&str, &str, Get); 8] = [
        (
            "k8up_backup_restic_last_errors",
            "How many errors the backup or check had",
            |e, _| e,
        ),
        (
            "k8up_backup_restic_new_files_during_backup",
            "How many new files were backed up",
            |_, s| s.files_new,
        ),
        (
            "k8up_backup_restic_changed_files_during_backup",
            "How many changed files were backed up",
            |_, s| s.files_changed,
        ),
        (
            "k8up_backup_restic_unmodified_files_during_backup",
            "How many files were unmodified",
            |_, s| s.files_unmodified,
        ),
        (
            "k8up_backup_restic_new_directories_during_backup",
            "How many new directories were backed up",
            |_, s| s.dirs_new,
        ),
        (
            "k8up_backup_restic_changed_directories_during_backup",
            "How many directories changed",
            |_, s| s.dirs_changed,
        ),
        (
            "k8up_backup_restic_unmodified_directories_during_backup",
            "How many directories were unmodified",
            |_, s| s.dirs_unmodified,
        ),
        (
            "k8up_backup_restic_data_transferred_during_backup",
            "Amount of data transferred during the backup",
            |_, s| s.data_added,
        ),
    ];
    let mut out = String::new();
    for (name, help, get) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (pvc, errors, s) in series {
            let _ = writeln!(
                out,
                "{name}{{namespace=\"{}\",pvc=\"{}\"}} {}",
                esc(namespace),
                esc(pvc),
                get(*errors, s)
            );
        }
    }
    if let Some(n) = available {
        let name = "k8up_backup_restic_available_snapshots";
        let _ = writeln!(
            out,
            "# HELP {name} How many snapshots are available\n# TYPE {name} gauge\n{name} {n}"
        );
    }
    out
}

/// The gauges of a check: `k8up_check_restic_last_success` (1 or 0) and `k8up_check_restic_last_timestamp_seconds`.
pub fn check_exposition(namespace: &str, success: bool, ended: i64) -> String {
    let ns = esc(namespace);
    format!(
        "# HELP k8up_check_restic_last_success Whether the last check of the repository passed\n\
         # TYPE k8up_check_restic_last_success gauge\n\
         k8up_check_restic_last_success{{namespace=\"{ns}\"}} {}\n\
         # HELP k8up_check_restic_last_timestamp_seconds When the last check ended\n\
         # TYPE k8up_check_restic_last_timestamp_seconds gauge\n\
         k8up_check_restic_last_timestamp_seconds{{namespace=\"{ns}\"}} {ended}\n",
        u8::from(success)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_result_is_two_gauges_in_the_check_job_group() {
        let text = check_exposition("my \"ns\"", false, 1_700_000_000);
        assert!(
            text.contains("k8up_check_restic_last_success{namespace=\"my \\\"ns\\\"\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "k8up_check_restic_last_timestamp_seconds{namespace=\"my \\\"ns\\\"\"} 1700000000\n"
            )
        );
        assert_eq!(
            pushgateway_url_for("restic_check", "http://pg:9091/", "ns", "prod"),
            "http://pg:9091/metrics/job/restic_check/instance/ns/cluster/prod"
        );
    }

    #[test]
    fn the_pushgateway_url_carries_instance_and_cluster_grouping_labels() {
        assert_eq!(
            pushgateway_url("http://pg:9091/", "my ns", "prod"),
            "http://pg:9091/metrics/job/restic_backup/instance/my%20ns/cluster/prod"
        );
        assert_eq!(
            pushgateway_url("http://pg:9091", "ns", ""),
            "http://pg:9091/metrics/job/restic_backup/instance/ns"
        );
    }

    #[test]
    fn the_exposition_has_one_sample_per_gauge_and_path() {
        let s = BackupSummary {
            files_new: 3,
            data_added: 99,
            ..Default::default()
        };
        let text = exposition(
            "ns",
            &[("/data/a".into(), 0, s.clone()), ("/data/\"b\"".into(), 2, s)],
            Some(5),
        );
        assert!(
            text.contains("k8up_backup_restic_new_files_during_backup{namespace=\"ns\",pvc=\"/data/a\"} 3")
        );
        assert!(text.contains("k8up_backup_restic_last_errors{namespace=\"ns\",pvc=\"/data/\\\"b\\\"\"} 2"));
        assert!(text.contains(
            "k8up_backup_restic_data_transferred_during_backup{namespace=\"ns\",pvc=\"/data/a\"} 99"
        ));
        assert!(text.contains("k8up_backup_restic_available_snapshots 5"));
    }
}
