//! The result of one `k8up restic` run, written compactly to the termination message (at most 4 KiB), from
//! which the operator keeps the Snapshot resources in step.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::json::Snapshot;

/// Kubernetes keeps at most 4096 bytes of a termination message.
pub const MAX_REPORT_BYTES: usize = 4096;

/// Snapshot tag recording the number of bytes of a dump (`k8up.io/dump-bytes=<n>`).
pub const DUMP_BYTES_TAG: &str = "k8up.io/dump-bytes=";
/// Snapshot tag recording the sha256 of a dump (`k8up.io/dump-sha256=<64 hex>`).
pub const DUMP_SHA256_TAG: &str = "k8up.io/dump-sha256=";
/// Snapshot tag of a dump whose integrity tags were not written yet (a dump that did not finish).
pub const DUMP_PENDING_TAG: &str = "k8up.io/dump-pending";

/// What a `k8up restic` run did. Serialised as compact camelCase JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResticReport {
    /// Format version of this document (1).
    pub version: u32,
    /// The modes run, in order (`backup`, `prune`, `check`, `restore`, `archive`).
    pub actions: Vec<String>,
    /// The namespace (restic `--host`).
    pub host: String,
    /// False when the run failed (see `error`).
    pub success: bool,
    /// The failure, when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ReportError>,
    /// Non-fatal problems (unreadable files, side channels that failed…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Snapshots this run created (most important first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub created: Vec<ReportSnapshot>,
    /// Entries of `created` left out to stay under 4 KiB.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub created_omitted: u32,
    /// IDs of snapshots this run removed (prune, or a failed dump withdrawn).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// Entries of `removed` left out to stay under 4 KiB.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub removed_omitted: u32,
    /// Where restores and archives went (`<endpoint>/<bucket>/<object>` or a directory), with the snapshot ID.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restored: Vec<ReportRestore>,
    /// Entries of `restored` left out to stay under 4 KiB.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restored_omitted: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A failure, classified for the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportError {
    /// The error variant (a stable name such as `Backup`, `LockTimeout`).
    pub reason: String,
    /// The whole error chain, redacted.
    pub message: String,
    /// True when retrying without a change cannot help.
    pub permanent: bool,
}

/// A snapshot in the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportSnapshot {
    /// Full snapshot ID.
    pub id: String,
    /// Snapshot time.
    pub time: Option<DateTime<Utc>>,
    /// Backed-up paths.
    pub paths: Vec<String>,
    /// restic `--host`.
    pub host: String,
    /// Tags other than the dump integrity tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Bytes read by the backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Bytes added to the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added: Option<u64>,
    /// Dump size (application dumps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump_bytes: Option<u64>,
    /// Dump sha256 (application dumps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump_sha256: Option<String>,
}

impl ReportSnapshot {
    /// From restic's snapshot, splitting the dump tags into their own fields.
    pub fn from_snapshot(s: &Snapshot) -> Self {
        let (dump_bytes, dump_sha256) = dump_tags(&s.tags);
        Self {
            id: s.id.clone(),
            time: Some(s.time),
            paths: s.paths.clone(),
            host: s.hostname.clone(),
            tags: s
                .tags
                .iter()
                .filter(|t| !t.starts_with(DUMP_BYTES_TAG) && !t.starts_with(DUMP_SHA256_TAG))
                .cloned()
                .collect(),
            bytes: s.summary.as_ref().map(|x| x.total_bytes_processed),
            added: s.summary.as_ref().map(|x| x.data_added),
            dump_bytes,
            dump_sha256,
        }
    }
}

/// The dump size and digest recorded in a snapshot's tags.
pub fn dump_tags(tags: &[String]) -> (Option<u64>, Option<String>) {
    let bytes = tags
        .iter()
        .find_map(|t| t.strip_prefix(DUMP_BYTES_TAG))
        .and_then(|v| v.parse().ok());
    let sha = tags
        .iter()
        .find_map(|t| t.strip_prefix(DUMP_SHA256_TAG))
        .map(str::to_owned);
    (bytes, sha)
}

/// A restore or archive upload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRestore {
    /// Snapshot ID.
    pub snapshot: String,
    /// Target (directory or URL of the object).
    pub location: String,
    /// True when the restored dump matched its recorded sha256.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub verified: bool,
}

impl ResticReport {
    /// The JSON, shortened until it fits in `MAX_REPORT_BYTES`: lists lose their last entries (counted in the
    /// `*Omitted` fields), then warnings, then the error message is cut.
    pub fn to_compact_json(&self) -> String {
        let mut r = self.clone();
        loop {
            let json = serde_json::to_string(&r).unwrap_or_else(|e| format!("{{\"version\":1,\"success\":false,\"error\":{{\"reason\":\"Report\",\"message\":\"{e}\"}}}}"));
            if json.len() <= MAX_REPORT_BYTES {
                return json;
            }
            // Least important first: warnings, restores, removals, then creations; the error last.
            if r.warnings.len() > 1 {
                r.warnings.truncate(r.warnings.len() / 2);
            } else if !r.restored.is_empty() {
                r.restored.pop();
                r.restored_omitted += 1;
            } else if !r.removed.is_empty() {
                r.removed.pop();
                r.removed_omitted += 1;
            } else if !r.created.is_empty() {
                r.created.pop();
                r.created_omitted += 1;
            } else if !r.warnings.is_empty() {
                r.warnings.clear();
            } else if let Some(e) = r.error.as_mut().filter(|e| e.message.len() > 64) {
                let keep = e.message.len() - (json.len() - MAX_REPORT_BYTES).min(e.message.len() - 64) - 3;
                let keep = (0..=keep)
                    .rev()
                    .find(|i| e.message.is_char_boundary(*i))
                    .unwrap_or(0);
                e.message.truncate(keep);
                e.message.push_str("...");
            } else {
                return json;
            }
        }
    }

    /// Writes the compact JSON to the termination-message file (best effort) and returns it.
    pub fn write_termination_message(&self, path: &Path) -> String {
        let json = self.to_compact_json();
        if let Err(e) = std::fs::write(path, &json) {
            tracing::warn!(path = %path.display(), error = %e, "failed to write the termination message");
        }
        json
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(i: usize) -> ReportSnapshot {
        ReportSnapshot {
            id: format!("{i:064x}"),
            time: Some(Utc::now()),
            paths: vec![format!("/data/pvc-{i}")],
            host: "ns".into(),
            tags: vec!["daily".into()],
            bytes: Some(123_456),
            added: Some(1_000),
            dump_bytes: None,
            dump_sha256: None,
        }
    }

    #[test]
    fn a_large_report_is_truncated_below_four_kib_and_counts_what_it_dropped() {
        let report = ResticReport {
            version: 1,
            actions: vec!["backup".into(), "prune".into()],
            host: "ns".into(),
            success: true,
            created: (0..40).map(snap).collect(),
            removed: (0..200).map(|i| format!("{i:064x}")).collect(),
            warnings: (0..50).map(|i| format!("warning number {i}")).collect(),
            ..Default::default()
        };
        let json = report.to_compact_json();
        assert!(json.len() <= MAX_REPORT_BYTES, "{} bytes", json.len());
        let back: ResticReport = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back.created.len() as u32 + back.created_omitted, 40);
        assert_eq!(back.removed.len() as u32 + back.removed_omitted, 200);
        assert!(!back.created.is_empty(), "creations are kept before removals");
        assert_eq!(back.created[0], report.created[0]);
    }

    #[test]
    fn a_huge_error_message_is_cut_but_the_reason_survives() {
        let report = ResticReport {
            version: 1,
            success: false,
            error: Some(ReportError {
                reason: "Backup".into(),
                message: "é".repeat(5000),
                permanent: false,
            }),
            ..Default::default()
        };
        let json = report.to_compact_json();
        assert!(json.len() <= MAX_REPORT_BYTES);
        let back: ResticReport = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back.error.map(|e| e.reason), Some("Backup".to_owned()));
    }

    #[test]
    fn dump_tags_are_split_out_of_the_tag_list() {
        let tags = vec![
            "daily".to_owned(),
            format!("{DUMP_BYTES_TAG}42"),
            format!("{DUMP_SHA256_TAG}{}", "ab".repeat(32)),
        ];
        assert_eq!(dump_tags(&tags), (Some(42), Some("ab".repeat(32))));
    }
}
