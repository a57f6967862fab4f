//! Typed `--json` output of restic 0.14 (Debian bookworm) and 0.18 (trixie); unknown fields are ignored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One snapshot of `restic snapshots --json` (also embedded in `forget --json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Full snapshot ID (64 hex).
    pub id: String,
    /// When the backup started.
    pub time: DateTime<Utc>,
    /// Root tree ID.
    #[serde(default)]
    pub tree: String,
    /// Backed-up paths.
    #[serde(default)]
    pub paths: Vec<String>,
    /// `--host` of the backup.
    #[serde(default)]
    pub hostname: String,
    /// User that ran the backup.
    #[serde(default)]
    pub username: String,
    /// UID of that user.
    #[serde(default)]
    pub uid: u32,
    /// GID of that user.
    #[serde(default)]
    pub gid: u32,
    /// Tags (restic writes `null` for none).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub tags: Vec<String>,
    /// The snapshot this one replaced (set by `restic tag`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<String>,
    /// Backup statistics (restic 0.17+ only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<SnapshotSummary>,
}

/// The statistics restic 0.17+ stores inside each snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSummary {
    /// Bytes read from the source.
    #[serde(default)]
    pub total_bytes_processed: u64,
    /// New bytes added to the repository (before compression).
    #[serde(default)]
    pub data_added: u64,
}

impl Snapshot {
    /// The first 8 characters of the ID (restic's short ID, K8up's Snapshot resource name).
    pub fn short_id(&self) -> &str {
        self.id.get(..8).unwrap_or(&self.id)
    }

    /// The time as Go prints it (`2006-01-02 15:04:05.999999999 +0000 UTC`), which `--restoreTimeFilter`
    /// prefixes match against (K8up compatibility).
    pub fn go_time_string(&self) -> String {
        self.time.format("%Y-%m-%d %H:%M:%S%.f +0000 UTC").to_string()
    }
}

fn null_as_empty<'de, D>(d: D) -> Result<Vec<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// A line of `restic backup --json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "message_type", rename_all = "snake_case")]
pub enum BackupMessage {
    /// Progress.
    Status(BackupStatus),
    /// A file that could not be read (the backup goes on, exit code 3).
    Error(BackupError),
    /// The final statistics.
    Summary(BackupSummary),
    /// Per-file verbose messages (unused).
    VerboseStatus(serde_json::Value),
}

/// Progress of a running backup.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BackupStatus {
    /// 0.0 ..= 1.0.
    #[serde(default)]
    pub percent_done: f64,
    /// Bytes read so far.
    #[serde(default)]
    pub bytes_done: u64,
    /// Total bytes (when known).
    #[serde(default)]
    pub total_bytes: u64,
}

/// A per-file error of a backup.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BackupError {
    /// What failed (an object `{"message": …}` in restic 0.14-0.18).
    #[serde(default)]
    pub error: serde_json::Value,
    /// restic's stage (`archival`, `scan`…).
    #[serde(default)]
    pub during: String,
    /// The path concerned.
    #[serde(default)]
    pub item: String,
}

/// The final `summary` line of a backup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSummary {
    /// New files.
    #[serde(default)]
    pub files_new: u64,
    /// Changed files.
    #[serde(default)]
    pub files_changed: u64,
    /// Unmodified files.
    #[serde(default)]
    pub files_unmodified: u64,
    /// New directories.
    #[serde(default)]
    pub dirs_new: u64,
    /// Changed directories.
    #[serde(default)]
    pub dirs_changed: u64,
    /// Unmodified directories.
    #[serde(default)]
    pub dirs_unmodified: u64,
    /// Bytes added to the repository.
    #[serde(default)]
    pub data_added: u64,
    /// Files read.
    #[serde(default)]
    pub total_files_processed: u64,
    /// Bytes read.
    #[serde(default)]
    pub total_bytes_processed: u64,
    /// The snapshot created; restic 0.14 prints the short (8 hex) ID, 0.18 the full one. Absent with
    /// `--dry-run` or when restic 0.17+ skipped an unchanged backup.
    #[serde(default)]
    pub snapshot_id: Option<String>,
}

/// One group of `restic forget --json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ForgetGroup {
    /// Host of the group.
    #[serde(default)]
    pub host: String,
    /// Paths of the group.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub paths: Vec<String>,
    /// Snapshots kept.
    #[serde(default, deserialize_with = "null_snapshots")]
    pub keep: Vec<Snapshot>,
    /// Snapshots removed.
    #[serde(default, deserialize_with = "null_snapshots")]
    pub remove: Vec<Snapshot>,
}

fn null_snapshots<'de, D>(d: D) -> Result<Vec<Snapshot>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<Vec<Snapshot>>::deserialize(d)?.unwrap_or_default())
}

/// A line of `restic ls --json`: the snapshot header (0.14: no `message_type`/`struct_type` "snapshot")
/// or a node.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LsNode {
    /// Base name.
    #[serde(default)]
    pub name: String,
    /// `file`, `dir`, `symlink`…
    #[serde(default, rename = "type")]
    pub node_type: String,
    /// Absolute path inside the snapshot.
    #[serde(default)]
    pub path: String,
    /// Size in bytes (files).
    #[serde(default)]
    pub size: u64,
    /// Permission bits.
    #[serde(default)]
    pub mode: u32,
    /// Modification time.
    #[serde(default)]
    pub mtime: Option<DateTime<Utc>>,
    /// `node` for nodes, `snapshot` for the header.
    #[serde(default)]
    pub struct_type: String,
}

/// The nodes of `restic ls --json` output (header lines skipped).
pub fn parse_ls(stdout: &str) -> Vec<LsNode> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<LsNode>(l).ok())
        .filter(|n| n.struct_type == "node" || (n.struct_type.is_empty() && !n.node_type.is_empty()))
        .collect()
}

/// A lock as printed by `restic cat lock`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Lock {
    /// Creation or last refresh time.
    pub time: DateTime<Utc>,
    /// Exclusive (prune, check) or shared (backup, restore).
    #[serde(default)]
    pub exclusive: bool,
    /// Host of the locking process (the pod name when run in a pod).
    #[serde(default)]
    pub hostname: String,
    /// User of the locking process.
    #[serde(default)]
    pub username: String,
    /// PID of the locking process.
    #[serde(default)]
    pub pid: i64,
}

/// The JSON document in a command's stdout: the first line that parses as `T` (restic may print human text
/// around it, e.g. `forget --prune` on 0.14).
pub fn first_json_line<T: serde::de::DeserializeOwned>(stdout: &str) -> Option<T> {
    if let Ok(v) = serde_json::from_str::<T>(stdout.trim()) {
        return Some(v);
    }
    stdout.lines().find_map(|l| {
        let l = l.trim();
        if l.starts_with('[') || l.starts_with('{') {
            serde_json::from_str::<T>(l).ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from restic 0.14.0 (bookworm).
    const SNAPSHOTS_014: &str = r#"[{"time":"2026-11-25T10:07:57.433183472Z","tree":"5621","paths":["/data/a"],"hostname":"ns","username":"root","uid":0,"gid":0,"tags":["x=y"],"id":"0d8f75d67e0438ab45cc3e392bd4306b5125921dc93831e090beb10827df3f9a","short_id":"0d8f75d6"},{"time":"2026-11-25T10:07:58.13504Z","tree":"00d2","paths":["/data/b"],"hostname":"ns","username":"root","id":"b8842ec651fcfd996794e4490acbed3581a2fee396b17d36d248360cdfdea603","short_id":"b8842ec6"}]"#;
    // restic 0.18 adds program_version and summary.
    const SNAPSHOTS_018: &str = r#"[{"time":"2026-11-25T10:07:57.433183472Z","tree":"5621","paths":["/data/a"],"hostname":"ns","username":"root","tags":null,"program_version":"restic 0.18.0","summary":{"backup_start":"2026-11-25T10:07:57.433183472Z","backup_end":"2026-11-25T10:07:58.120495693Z","files_new":1,"data_added":1059,"total_files_processed":1,"total_bytes_processed":3},"id":"0d8f75d67e0438ab45cc3e392bd4306b5125921dc93831e090beb10827df3f9a","short_id":"0d8f75d6"}]"#;

    #[test]
    fn snapshot_lists_of_restic_0_14_and_0_18_parse() {
        let a: Vec<Snapshot> = serde_json::from_str(SNAPSHOTS_014).unwrap_or_default();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].tags, vec!["x=y"]);
        assert!(a[1].tags.is_empty());
        assert_eq!(a[0].short_id(), "0d8f75d6");
        let b: Vec<Snapshot> = serde_json::from_str(SNAPSHOTS_018).unwrap_or_default();
        assert_eq!(b.len(), 1);
        assert!(b[0].tags.is_empty());
        assert_eq!(b[0].summary.as_ref().map(|s| s.total_bytes_processed), Some(3));
    }

    #[test]
    fn backup_lines_parse_into_status_error_and_summary() {
        let status: BackupMessage = serde_json::from_str(
            r#"{"message_type":"status","percent_done":0.5,"total_files":2,"bytes_done":5}"#,
        )
        .unwrap_or(BackupMessage::VerboseStatus(serde_json::Value::Null));
        assert!(matches!(
            status,
            BackupMessage::Status(BackupStatus { bytes_done: 5, .. })
        ));
        let summary: BackupMessage = serde_json::from_str(
            r#"{"message_type":"summary","files_new":1,"data_added":1059,"total_bytes_processed":3,"snapshot_id":"0d8f75d6"}"#,
        )
        .unwrap_or(BackupMessage::VerboseStatus(serde_json::Value::Null));
        match summary {
            BackupMessage::Summary(s) => {
                assert_eq!(s.snapshot_id.as_deref(), Some("0d8f75d6"));
                assert_eq!(s.total_bytes_processed, 3);
            }
            other => panic!("{other:?}"),
        }
        let err: BackupMessage = serde_json::from_str(
            r#"{"message_type":"error","error":{"message":"open /x: permission denied"},"during":"archival","item":"/x"}"#,
        )
        .unwrap_or(BackupMessage::VerboseStatus(serde_json::Value::Null));
        assert!(matches!(err, BackupMessage::Error(BackupError { ref item, .. }) if item == "/x"));
    }

    #[test]
    fn the_forget_document_is_found_among_prune_text() {
        let out = "[{\"host\":\"ns\",\"paths\":[\"/a\"],\"keep\":null,\"remove\":[{\"time\":\"2026-11-25T10:07:57Z\",\"id\":\"ab\",\"paths\":[\"/a\"],\"hostname\":\"ns\"}],\"reasons\":[]}]\nloading indexes...\nremoving 1 snapshots\n";
        let groups: Vec<ForgetGroup> = first_json_line(out).unwrap_or_default();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].remove.len(), 1);
        assert!(groups[0].keep.is_empty());
    }

    #[test]
    fn ls_output_yields_only_nodes() {
        let out = r#"{"time":"2026-11-25T10:07:57Z","paths":["/ns-db.sql"],"hostname":"ns","id":"ab","short_id":"ab","struct_type":"snapshot"}
{"name":"ns-db.sql","type":"file","path":"/ns-db.sql","uid":0,"gid":0,"size":12,"mode":420,"mtime":"2026-11-25T10:07:57Z","struct_type":"node"}"#;
        let nodes = parse_ls(out);
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].size, 12);
        assert_eq!(nodes[0].node_type, "file");
    }

    #[test]
    fn go_time_strings_match_k8up_time_filters() {
        let a: Vec<Snapshot> = serde_json::from_str(SNAPSHOTS_014).unwrap_or_default();
        assert!(a[0].go_time_string().starts_with("2026-11-25 10:07:57"));
    }
}
