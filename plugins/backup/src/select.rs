//! PVC selection: which offered PVCs are backed up, and with which extra restic args.
//!
//! K8up's rules (REFERENCE 3.2 step 3): only Bound claims; RWO/RWX claims unless annotated;
//! the backup annotation is a Go bool (`false` or unparsable skips); opt-in mode skips claims
//! without it; `k8up.io/backup-restic-args` is a JSON string or array of strings.

use k8up_plugin_sdk::{Metadata, PlanRequest, Pvc, PvcExt};

/// A PVC that will be backed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected<'a> {
    /// The offered claim.
    pub pvc: &'a Pvc,
    /// Extra wrapper args from the restic-args annotation.
    pub args: Vec<String>,
}

/// Picks the PVCs to back up, in the order offered. Skips that a user would want to know
/// about (not Bound, bad annotation values) are explained in `notes`.
pub fn select_pvcs<'a>(req: &'a PlanRequest, notes: &mut Vec<String>) -> Vec<Selected<'a>> {
    let settings = &req.settings;
    let mut selected = Vec::new();
    for pvc in &req.pvcs {
        if !pvc.is_bound() {
            notes.push(format!("pvc {} skipped: not Bound ({})", pvc.name, pvc.phase));
            continue;
        }
        match pvc.annotation(&settings.backup_annotation) {
            Some(value) => match k8up_plugin_sdk::parse_bool(value) {
                Some(true) => {}
                Some(false) => continue,
                None => {
                    notes.push(format!(
                        "pvc {} skipped: annotation {}={value:?} is not a boolean",
                        pvc.name, settings.backup_annotation
                    ));
                    continue;
                }
            },
            None if settings.skip_without_annotation => continue,
            None if !pvc.has_access_mode("ReadWriteOnce") && !pvc.has_access_mode("ReadWriteMany") => {
                notes.push(format!(
                    "pvc {} skipped: access modes [{}] need the {}=true annotation",
                    pvc.name,
                    pvc.access_modes.join(","),
                    settings.backup_annotation
                ));
                continue;
            }
            None => {}
        }
        let args = match pvc.annotation(&settings.restic_args_annotation) {
            None => Vec::new(),
            Some(raw) => match parse_restic_args(raw) {
                Some(args) => args,
                None => {
                    notes.push(format!(
                        "pvc {} skipped: annotation {} is not a JSON string or array of strings",
                        pvc.name, settings.restic_args_annotation
                    ));
                    continue;
                }
            },
        };
        selected.push(Selected { pvc, args });
    }
    selected
}

/// Parses the restic-args annotation: a JSON string is one argument, a JSON array of strings is
/// a list of arguments. Anything else (invalid JSON, numbers, nested values) is `None`.
pub fn parse_restic_args(raw: &str) -> Option<Vec<String>> {
    match serde_json::from_str::<serde_json::Value>(raw).ok()? {
        serde_json::Value::String(arg) => Some(vec![arg]),
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(|item| item.as_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8up_plugin_sdk::testing::{pvc, request};
    use k8up_plugin_sdk::{Action, Pvc};

    const ANN: &str = "k8up.io/backup";

    fn names(req: &PlanRequest) -> (Vec<String>, Vec<String>) {
        let mut notes = Vec::new();
        let names = select_pvcs(req, &mut notes)
            .iter()
            .map(|s| s.pvc.name.clone())
            .collect();
        (names, notes)
    }

    #[test]
    fn pvcs_are_selected_by_phase_access_mode_and_annotation() {
        // (pvc, selected in default mode, selected in opt-in mode)
        let cases: Vec<(Pvc, bool, bool)> = vec![
            (pvc("rwo"), true, false),
            (pvc("rwx").with_access_modes(&["ReadWriteMany"]), true, false),
            (pvc("pending").with_phase("Pending"), false, false),
            (
                pvc("pending-true")
                    .with_phase("Pending")
                    .with_annotation(ANN, "true"),
                false,
                false,
            ),
            (pvc("rox").with_access_modes(&["ReadOnlyMany"]), false, false),
            (pvc("rwop").with_access_modes(&["ReadWriteOncePod"]), false, false),
            (
                pvc("rox-true")
                    .with_access_modes(&["ReadOnlyMany"])
                    .with_annotation(ANN, "true"),
                true,
                true,
            ),
            (pvc("true").with_annotation(ANN, "true"), true, true),
            (pvc("one").with_annotation(ANN, "1"), true, true),
            (pvc("false").with_annotation(ANN, "false"), false, false),
            (pvc("f").with_annotation(ANN, "F"), false, false),
            (pvc("yes").with_annotation(ANN, "yes"), false, false),
        ];
        for opt_in in [false, true] {
            let mut req = request(Action::Backup).with_pvcs(cases.iter().map(|c| c.0.clone()));
            req.settings.skip_without_annotation = opt_in;
            let (selected, _) = names(&req);
            let expected: Vec<String> = cases
                .iter()
                .filter(|c| if opt_in { c.2 } else { c.1 })
                .map(|c| c.0.name.clone())
                .collect();
            assert_eq!(selected, expected, "opt-in mode = {opt_in}");
        }
    }

    #[test]
    fn a_custom_annotation_name_is_honoured() {
        let mut req = request(Action::Backup).with_pvcs([
            pvc("a").with_annotation("example.com/backup", "false"),
            pvc("b").with_annotation(ANN, "false"),
        ]);
        req.settings.backup_annotation = "example.com/backup".into();
        assert_eq!(names(&req).0, ["b"]);
    }

    #[test]
    fn unusual_skips_are_explained_and_ordinary_ones_are_not() {
        let req = request(Action::Backup).with_pvcs([
            pvc("pending").with_phase("Pending"),
            pvc("yes").with_annotation(ANN, "yes"),
            pvc("off").with_annotation(ANN, "false"),
            pvc("args").with_annotation("k8up.io/backup-restic-args", "[--exclude"),
        ]);
        let (selected, notes) = names(&req);
        assert!(selected.is_empty());
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes[0].contains("pending") && notes[0].contains("not Bound"));
        assert!(notes[1].contains("\"yes\""));
        assert!(notes[2].contains("args") && notes[2].contains("backup-restic-args"));
    }

    #[test]
    fn restic_args_are_a_json_string_or_an_array_of_strings() {
        let cases: Vec<(&str, Option<Vec<&str>>)> = vec![
            (r#"["--exclude","*.db"]"#, Some(vec!["--exclude", "*.db"])),
            (r#""--one-file-system""#, Some(vec!["--one-file-system"])),
            (r#"[]"#, Some(vec![])),
            (r#"["--exclude", 3]"#, None),
            (r#"{"a":1}"#, None),
            (r#"42"#, None),
            (r#"--exclude"#, None),
            (r#""#, None),
        ];
        for (raw, expected) in cases {
            let expected = expected.map(|v| v.into_iter().map(str::to_string).collect::<Vec<_>>());
            assert_eq!(parse_restic_args(raw), expected, "{raw}");
        }
    }
}
