//! Which snapshot `k8up cli restore --snapshot` means, and how `k8up cli snapshots` shows them (pure: the
//! Snapshot resources are listed by the caller).

use super::Error;
use crate::crd::Snapshot;

/// The path a PVC's files have in the snapshots of a backup.
fn claim_path(claim: &str) -> String {
    format!("/data/{claim}")
}

/// Orders snapshots newest first by `spec.date` (undated ones last), then by id so the order is stable.
pub fn sort_newest_first(snapshots: &mut [Snapshot]) {
    snapshots.sort_by(newest_first);
}

fn newest_first(a: &Snapshot, b: &Snapshot) -> std::cmp::Ordering {
    b.spec
        .date
        .cmp(&a.spec.date)
        .then_with(|| a.spec.id.cmp(&b.spec.id))
}

/// The snapshot `wanted` names among the Snapshot resources of `namespace`: its full id and the resource.
///
/// `latest` is the newest by `spec.date`, among those with path `/data/<claim>` when `claim` is given; any
/// other value is an id prefix that must match exactly one snapshot id (several resources with the same id,
/// e.g. mirrored from two repositories, count as one).
pub fn resolve_snapshot<'a>(
    namespace: &str,
    snapshots: &'a [Snapshot],
    wanted: &str,
    claim: Option<&str>,
) -> Result<(&'a str, &'a Snapshot), Error> {
    let mut with_id: Vec<&Snapshot> = snapshots.iter().filter(|s| s.spec.id.is_some()).collect();
    with_id.sort_by(|a, b| newest_first(a, b));
    let id = |s: &'a Snapshot| s.spec.id.as_deref().unwrap_or_default();
    if wanted == "latest" {
        if with_id.is_empty() {
            return Err(Error::NoSnapshots {
                namespace: namespace.to_owned(),
            });
        }
        let Some(claim) = claim else {
            return Ok((id(with_id[0]), with_id[0]));
        };
        let path = claim_path(claim);
        let has_path = |s: &&Snapshot| s.spec.paths.as_ref().is_some_and(|p| p.contains(&path));
        return match with_id.iter().copied().find(has_path) {
            Some(s) => Ok((id(s), s)),
            None => Err(Error::NoSnapshotOfPath {
                namespace: namespace.to_owned(),
                path,
                candidates: candidates(&with_id),
            }),
        };
    }
    let mut matching: Vec<&Snapshot> = with_id
        .iter()
        .copied()
        .filter(|s| id(s).starts_with(wanted))
        .collect();
    let mut seen = std::collections::HashSet::new();
    matching.retain(|s| seen.insert(id(s)));
    match matching.len() {
        0 => Err(Error::NoMatchingSnapshot {
            namespace: namespace.to_owned(),
            prefix: wanted.to_owned(),
            candidates: candidates(&with_id),
        }),
        1 => Ok((id(matching[0]), matching[0])),
        count => Err(Error::AmbiguousSnapshot {
            namespace: namespace.to_owned(),
            prefix: wanted.to_owned(),
            count,
            candidates: candidates(&matching),
        }),
    }
}

/// A short list of snapshots for an error message, newest first: `<id> (<date>, <paths>)`.
fn candidates(snapshots: &[&Snapshot]) -> String {
    const SHOWN: usize = 10;
    if snapshots.is_empty() {
        return "none (the namespace has no Snapshot resources)".to_owned();
    }
    let mut text = snapshots
        .iter()
        .take(SHOWN)
        .map(|s| format!("{} ({})", s.spec.id.as_deref().unwrap_or_default(), describe(s)))
        .collect::<Vec<_>>()
        .join(", ");
    if snapshots.len() > SHOWN {
        text.push_str(&format!(" and {} more", snapshots.len() - SHOWN));
    }
    text
}

/// `<date>, <paths>` of a snapshot, for messages.
pub(super) fn describe(snapshot: &Snapshot) -> String {
    let date = snapshot
        .spec
        .date
        .as_ref()
        .map_or_else(|| "undated".to_owned(), |t| t.0.to_string());
    let paths = snapshot.spec.paths.as_deref().unwrap_or_default().join(" ");
    if paths.is_empty() {
        date
    } else {
        format!("{date}, {paths}")
    }
}

/// The table of `k8up cli snapshots`, in the order given: short id (8 characters), date, host, paths,
/// tags, repository; with a NAMESPACE column first when `with_namespace`.
pub fn snapshot_table(snapshots: &[Snapshot], with_namespace: bool) -> String {
    let joined = |v: &Option<Vec<String>>| v.as_deref().unwrap_or_default().join(",");
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(snapshots.len() + 1);
    let mut header = vec!["ID", "DATE", "HOST", "PATHS", "TAGS", "REPOSITORY"];
    if with_namespace {
        header.insert(0, "NAMESPACE");
    }
    rows.push(header.into_iter().map(str::to_owned).collect());
    for s in snapshots {
        let mut row = vec![
            s.spec.id.as_deref().unwrap_or_default().chars().take(8).collect(),
            s.spec.date.as_ref().map(|t| t.0.to_string()).unwrap_or_default(),
            s.spec.hostname.clone().unwrap_or_default(),
            joined(&s.spec.paths),
            joined(&s.spec.tags),
            s.spec.repository.clone().unwrap_or_default(),
        ];
        if with_namespace {
            row.insert(0, s.metadata.namespace.clone().unwrap_or_default());
        }
        // Like kubectl: an empty cell would shift what the eye reads as the next column.
        for cell in row.iter_mut().filter(|c| c.is_empty()) {
            *cell = "<none>".to_owned();
        }
        rows.push(row);
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(cells.join("   ").trim_end());
        text.push('\n');
    }
    text
}

/// The Snapshot resources as a `kind: List` (like `kubectl get -o yaml`), without managed fields.
pub(super) fn snapshot_list(mut items: Vec<Snapshot>) -> serde_json::Value {
    for item in &mut items {
        item.metadata.managed_fields = None;
    }
    serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": items })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;
    use rstest::rstest;

    use super::*;
    use crate::crd::SnapshotSpec;

    const OLD: &str = "1111aaaa00000000000000000000000000000000000000000000000000000000";
    const NEW: &str = "2222bbbb00000000000000000000000000000000000000000000000000000000";
    const NEWEST_OTHER: &str = "2222cccc00000000000000000000000000000000000000000000000000000000";

    fn snap(id: &str, at: i64, path: &str) -> Snapshot {
        let mut s = Snapshot::new(
            &id[..8],
            SnapshotSpec {
                id: Some(id.to_owned()),
                date: Some(Time(Timestamp::from_second(at).unwrap())),
                paths: Some(vec![path.to_owned()]),
                repository: Some("s3:http://minio:9000/backups".to_owned()),
                hostname: Some("prod".to_owned()),
                tags: Some(vec!["daily".to_owned()]),
                ..SnapshotSpec::default()
            },
        );
        s.metadata.namespace = Some("prod".to_owned());
        s
    }

    /// Three snapshots in no particular order: `/data/app` old and new, `/data/db` newest of all.
    fn fixture() -> Vec<Snapshot> {
        vec![
            snap(NEW, 2_000, "/data/app"),
            snap(NEWEST_OTHER, 3_000, "/data/db"),
            snap(OLD, 1_000, "/data/app"),
        ]
    }

    #[rstest]
    #[case::latest_is_the_newest_of_all("latest", None, NEWEST_OTHER)]
    #[case::latest_with_a_claim_is_the_newest_of_its_path("latest", Some("app"), NEW)]
    #[case::a_unique_prefix_gives_the_full_id("1111", None, OLD)]
    #[case::an_id_prefix_ignores_the_claim("2222c", Some("app"), NEWEST_OTHER)]
    #[case::a_full_id_matches_itself(NEW, None, NEW)]
    fn the_snapshot_resolves_to_a_full_id(
        #[case] wanted: &str,
        #[case] claim: Option<&str>,
        #[case] expected: &str,
    ) {
        let snapshots = fixture();
        let (id, snapshot) = resolve_snapshot("prod", &snapshots, wanted, claim).unwrap();
        assert_eq!(id, expected);
        assert_eq!(snapshot.spec.id.as_deref(), Some(expected));
    }

    #[test]
    fn an_ambiguous_prefix_fails_listing_the_matching_snapshots() {
        let err = resolve_snapshot("prod", &fixture(), "2222", None).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, Error::AmbiguousSnapshot { count: 2, .. }),
            "{err:?}"
        );
        assert!(
            text.starts_with("id prefix 2222 matches 2 snapshots in namespace prod"),
            "{text}"
        );
        assert!(text.contains(NEW) && text.contains(NEWEST_OTHER), "{text}");
        assert!(!text.contains(OLD), "{text}");
    }

    #[test]
    fn an_unknown_prefix_fails_listing_every_snapshot_newest_first() {
        let text = resolve_snapshot("prod", &fixture(), "dead", None)
            .unwrap_err()
            .to_string();
        assert!(
            text.starts_with("no snapshot in namespace prod matches id prefix dead; candidates: "),
            "{text}"
        );
        let (newest, newer, old) = (
            text.find(NEWEST_OTHER).unwrap(),
            text.find(NEW).unwrap(),
            text.find(OLD).unwrap(),
        );
        assert!(newest < newer && newer < old, "{text}");
        assert!(text.contains("1970-01-01T00:50:00Z, /data/db"), "{text}");
    }

    #[test]
    fn latest_fails_when_the_namespace_or_the_claim_has_no_snapshot() {
        let err = resolve_snapshot("empty", &[], "latest", None).unwrap_err();
        assert!(matches!(err, Error::NoSnapshots { .. }), "{err:?}");
        assert!(err.to_string().contains("namespace empty"), "{err}");

        let text = resolve_snapshot("prod", &fixture(), "latest", Some("web"))
            .unwrap_err()
            .to_string();
        assert!(
            text.starts_with("no snapshot of /data/web in namespace prod"),
            "{text}"
        );
    }

    #[test]
    fn one_id_in_several_resources_is_not_ambiguous_and_undated_snapshots_are_never_latest() {
        let mut copy = snap(OLD, 1_000, "/data/app");
        copy.metadata.name = Some("copy".to_owned());
        let mut undated = snap(NEW, 0, "/data/app");
        undated.spec.date = None;
        let snapshots = vec![undated, snap(OLD, 1_000, "/data/app"), copy];
        assert_eq!(resolve_snapshot("prod", &snapshots, "1111", None).unwrap().0, OLD);
        assert_eq!(
            resolve_snapshot("prod", &snapshots, "latest", None).unwrap().0,
            OLD
        );
    }

    #[test]
    fn the_table_lists_short_ids_newest_first_with_aligned_columns() {
        let mut snapshots = fixture();
        sort_newest_first(&mut snapshots);
        let table = snapshot_table(&snapshots, false);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[0].starts_with("ID         DATE"), "{table}");
        assert!(lines[0].ends_with("REPOSITORY"), "{table}");
        assert!(
            lines[1].starts_with("2222cccc   1970-01-01T00:50:00Z   prod   /data/db"),
            "{table}"
        );
        assert!(lines[2].starts_with("2222bbbb"), "{table}");
        assert!(lines[3].starts_with("1111aaaa"), "{table}");
        assert!(
            lines[3].contains("   daily   s3:http://minio:9000/backups"),
            "{table}"
        );

        let table = snapshot_table(&snapshots, true);
        assert!(table.starts_with("NAMESPACE   ID"), "{table}");
        assert!(
            table.lines().nth(1).unwrap().starts_with("prod        2222cccc"),
            "{table}"
        );
    }

    #[test]
    fn missing_fields_show_as_none_so_the_columns_stay_readable() {
        let mut bare = snap(OLD, 1_000, "/data/app");
        bare.spec.tags = None;
        bare.spec.hostname = None;
        let table = snapshot_table(&[bare], false);
        let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(row[2..5], ["<none>", "/data/app", "<none>"], "{table}");
    }
}
