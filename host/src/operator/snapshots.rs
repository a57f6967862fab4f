//! Snapshot sync: the report a backup or prune Job leaves in its termination message becomes `Snapshot`
//! resources (create what it made, delete what it removed) for the namespace and repository. K8up did this
//! from inside the Job; here the Job only reports and the operator writes.
//!
//! Parsing and diffing are pure. The report struct is deliberately tolerant (it accepts `created` or
//! `snapshots`, `host` or `hostname`, and ignores unknown fields) until `restic::ResticReport` is shared.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

use crate::crd::{Snapshot, SnapshotSpec};

/// Tag prefix of the dump size recorded by the wrapper.
const DUMP_BYTES_TAG: &str = "k8up.io/dump-bytes=";
/// Tag prefix of the dump sha256 recorded by the wrapper.
const DUMP_SHA256_TAG: &str = "k8up.io/dump-sha256=";

/// The part of a `k8up restic` report the operator uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobReport {
    /// Snapshots the run created.
    #[serde(default, alias = "snapshots")]
    pub created: Vec<ReportedSnapshot>,
    /// IDs of snapshots the run removed.
    #[serde(default)]
    pub removed: Vec<String>,
    /// False when the run failed.
    #[serde(default)]
    pub success: Option<bool>,
    /// Why the run failed.
    #[serde(default)]
    pub error: Option<ReportedError>,
}

/// The error of a failed run, as the wrapper reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ReportedError {
    /// The wrapper's error variant (`NoSnapshot`, `ListPods`, ...).
    #[serde(default)]
    pub reason: String,
    /// What went wrong, for a person.
    #[serde(default)]
    pub message: String,
}

/// The distinct errors of the failed runs in `reports` (job name, report), as `job: reason: message`.
pub fn failure_causes(reports: &[(String, String)]) -> Vec<String> {
    let mut causes: Vec<String> = Vec::new();
    for (job, message) in reports {
        let Some(error) = parse_report(message).and_then(|r| r.error) else {
            continue;
        };
        let cause = format!("{job}: {}: {}", error.reason, error.message);
        if !causes.contains(&cause) {
            causes.push(cause);
        }
    }
    causes
}

/// A snapshot in a report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportedSnapshot {
    /// Full snapshot ID.
    pub id: String,
    /// RFC 3339 time.
    #[serde(default)]
    pub time: Option<String>,
    /// Paths.
    #[serde(default)]
    pub paths: Vec<String>,
    /// restic `--host` (the namespace).
    #[serde(default, alias = "hostname")]
    pub host: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Size of an application dump.
    #[serde(default)]
    pub dump_bytes: Option<u64>,
    /// SHA-256 of an application dump.
    #[serde(default)]
    pub dump_sha256: Option<String>,
}

/// Parses one termination message; `None` when it is not a report (e.g. a plain error line).
pub fn parse_report(message: &str) -> Option<JobReport> {
    serde_json::from_str(message.trim()).ok()
}

/// What to change in the namespace.
#[derive(Debug, Clone, Default)]
pub struct SnapshotChanges {
    /// Snapshot resources to create.
    pub create: Vec<Snapshot>,
    /// Names of Snapshot resources to delete.
    pub delete: Vec<String>,
}

/// The Snapshot resource name of a snapshot ID: its first 8 characters (K8up's naming).
pub fn snapshot_name(id: &str) -> String {
    id.chars().take(8).collect()
}

/// Computes the changes for `reports` of Jobs in `namespace` on `repository`, given the `existing`
/// Snapshot resources of the namespace. Only snapshots of this namespace's host are mirrored, and only
/// resources of this repository are deleted.
pub fn diff(
    namespace: &str,
    repository: &str,
    reports: &[JobReport],
    existing: &[Snapshot],
) -> SnapshotChanges {
    let removed: BTreeSet<&str> = reports
        .iter()
        .flat_map(|r| r.removed.iter().map(String::as_str))
        .collect();
    let is_removed = |id: &str| removed.iter().any(|r| !r.is_empty() && id.starts_with(r));
    let existing_names: BTreeSet<&str> = existing
        .iter()
        .filter_map(|s| s.metadata.name.as_deref())
        .collect();
    let mut changes = SnapshotChanges::default();
    let mut planned = BTreeSet::new();
    for snap in reports.iter().flat_map(|r| &r.created) {
        let name = snapshot_name(&snap.id);
        let ours = snap.host.as_deref().is_none_or(|h| h == namespace);
        if !ours || snap.id.len() < 8 || is_removed(&snap.id) || existing_names.contains(name.as_str()) {
            continue;
        }
        if planned.insert(name.clone()) {
            changes.create.push(to_resource(namespace, repository, snap));
        }
    }
    for s in existing {
        let same_repo = s.spec.repository.as_deref() == Some(repository);
        let gone = s.spec.id.as_deref().is_some_and(is_removed);
        if same_repo && gone {
            changes.delete.extend(s.metadata.name.clone());
        }
    }
    changes
}

fn to_resource(namespace: &str, repository: &str, snap: &ReportedSnapshot) -> Snapshot {
    let tag_value = |prefix: &str| {
        snap.tags
            .iter()
            .find_map(|t| t.strip_prefix(prefix).map(str::to_string))
    };
    let dump_bytes = snap
        .dump_bytes
        .or_else(|| tag_value(DUMP_BYTES_TAG).and_then(|v| v.parse().ok()))
        .and_then(|b| i64::try_from(b).ok());
    let dump_sha256 = snap.dump_sha256.clone().or_else(|| tag_value(DUMP_SHA256_TAG));
    let tags: Vec<String> = snap
        .tags
        .iter()
        .filter(|t| !t.starts_with(DUMP_BYTES_TAG) && !t.starts_with(DUMP_SHA256_TAG))
        .cloned()
        .collect();
    Snapshot {
        metadata: ObjectMeta {
            name: Some(snapshot_name(&snap.id)),
            namespace: Some(namespace.to_string()),
            ..ObjectMeta::default()
        },
        spec: SnapshotSpec {
            id: Some(snap.id.clone()),
            date: snap
                .time
                .as_deref()
                .and_then(|t| t.parse::<Timestamp>().ok())
                .map(Time),
            paths: Some(snap.paths.clone()),
            repository: Some(repository.to_string()),
            hostname: snap.host.clone(),
            tags: (!tags.is_empty()).then_some(tags),
            dump_bytes,
            dump_sha256,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID_A: &str = "aaaaaaaa11111111111111111111111111111111111111111111111111111111";
    const ID_B: &str = "bbbbbbbb22222222222222222222222222222222222222222222222222222222";

    fn existing(id: &str, repo: &str) -> Snapshot {
        let mut s = Snapshot::new(
            &snapshot_name(id),
            SnapshotSpec {
                id: Some(id.into()),
                repository: Some(repo.into()),
                ..Default::default()
            },
        );
        s.metadata.namespace = Some("ns".into());
        s
    }

    #[test]
    fn a_restic_branch_style_report_parses_with_dump_fields_and_unknown_keys() {
        let msg = format!(
            r#"{{"version":1,"actions":["backup"],"host":"ns","success":true,"created":[{{"id":"{ID_A}","time":"2026-01-02T03:04:05.123456789+01:00","paths":["/ns-db.sql"],"host":"ns","tags":["daily"],"dumpBytes":42,"dumpSha256":"{}"}}]}}"#,
            "0".repeat(64)
        );
        let report = parse_report(&msg);
        let created = report.as_ref().map(|r| r.created.clone()).unwrap_or_default();
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].dump_bytes, Some(42));
        let changes = diff(
            "ns",
            "s3:http://x/b",
            &report.into_iter().collect::<Vec<_>>(),
            &[],
        );
        let spec = &changes.create[0].spec;
        assert_eq!(changes.create[0].metadata.name.as_deref(), Some("aaaaaaaa"));
        assert_eq!(spec.dump_bytes, Some(42));
        assert_eq!(spec.tags, Some(vec!["daily".to_string()]));
        assert!(
            spec.date.is_some(),
            "restic's nanosecond RFC 3339 time must parse"
        );
    }

    #[test]
    fn the_brief_style_report_with_snapshots_and_hostname_parses_too() {
        let msg = format!(
            r#"{{"snapshots":[{{"id":"{ID_A}","hostname":"ns","paths":["/data/pvc"]}}],"removed":[]}}"#
        );
        let report = parse_report(&msg);
        assert_eq!(report.map(|r| r.created.len()), Some(1));
        assert_eq!(parse_report("restic failed: exit status 1"), None);
    }

    #[test]
    fn failure_causes_are_the_distinct_errors_of_the_failed_reports() {
        let failed = r#"{"version":1,"success":false,"error":{"reason":"NoSnapshot","message":"no snapshot matches: id deadbeef"}}"#;
        let reports = vec![
            ("restore-r".to_string(), failed.to_string()),
            ("restore-r".to_string(), failed.to_string()),
            (
                "restore-r".to_string(),
                r#"{"version":1,"success":true}"#.to_string(),
            ),
            ("restore-r".to_string(), "not json".to_string()),
        ];
        assert_eq!(
            failure_causes(&reports),
            ["restore-r: NoSnapshot: no snapshot matches: id deadbeef"]
        );
    }

    #[test]
    fn existing_snapshots_are_not_recreated_and_removed_ones_of_this_repository_are_deleted() {
        let report = JobReport {
            created: vec![
                ReportedSnapshot {
                    id: ID_A.into(),
                    host: Some("ns".into()),
                    ..Default::default()
                },
                ReportedSnapshot {
                    id: ID_B.into(),
                    host: Some("other-namespace".into()),
                    ..Default::default()
                },
            ],
            removed: vec!["cccccccc".into()],
            success: Some(true),
            error: None,
        };
        let id_c = "cccccccc33333333333333333333333333333333333333333333333333333333";
        let present = vec![
            existing(ID_A, "repo"),
            existing(id_c, "repo"),
            existing(id_c, "other-repo"),
        ];
        let changes = diff("ns", "repo", &[report], &present);
        assert!(
            changes.create.is_empty(),
            "A exists, B belongs to another namespace"
        );
        assert_eq!(changes.delete, vec!["cccccccc".to_string()]);
    }
}
