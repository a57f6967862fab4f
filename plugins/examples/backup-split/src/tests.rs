//! Plan-level tests of the example plugin.

use super::*;
use k8up_plugin_sdk::testing::{pod, pvc, request, toleration};
use k8up_plugin_sdk::{PvcMount, env_secret, kv};

fn plan(req: &PlanRequest) -> JobPlan {
    BackupSplit::plan(req).unwrap_or_else(|err| unreachable!("plan failed: {err:?}"))
}

fn suffixes(plan: &JobPlan) -> Vec<&str> {
    plan.jobs.iter().map(|job| job.name_suffix.as_str()).collect()
}

fn job<'a>(plan: &'a JobPlan, suffix: &str) -> &'a Job {
    plan.job(suffix)
        .unwrap_or_else(|| unreachable!("no job {suffix} in {:?}", suffixes(plan)))
}

#[test]
fn every_pvc_gets_its_own_job_even_on_the_same_node() {
    let req = request(Action::Backup).with_pvcs([
        pvc("web").mounted_by("web-0", "n1", vec![]),
        pvc("db").mounted_by("db-0", "n1", vec![]),
        pvc("shared").with_access_modes(&["ReadWriteMany"]),
    ]);
    let result = plan(&req);
    assert_eq!(suffixes(&result), ["pvc-db", "pvc-shared", "pvc-web"]);
    for (suffix, claim) in [("pvc-db", "db"), ("pvc-shared", "shared"), ("pvc-web", "web")] {
        assert_eq!(
            job(&result, suffix).pvc_mounts,
            [PvcMount {
                claim_name: claim.into(),
                mount_path: format!("/data/{claim}"),
                read_only: true
            }]
        );
    }
    assert_eq!(job(&result, "pvc-db").node(), Some("n1"));
    assert_eq!(job(&result, "pvc-web").node(), Some("n1"));
    assert_eq!(job(&result, "pvc-shared").node(), None);
    let sleeps: Vec<Option<&str>> = result
        .jobs
        .iter()
        .map(|job| job.env_literal_value("SLEEP_DURATION"))
        .collect();
    assert_eq!(sleeps, [None, Some("10s"), Some("20s")]);
    assert!(result.jobs.iter().all(|job| {
        !job.exclusive
            && job.env_literal_value("SKIP_PREBACKUP") == Some("true")
            && job
                .env
                .contains(&env_secret("RESTIC_PASSWORD", "backup-repo", "password"))
    }));
    assert_eq!(result.message, None);
}

#[test]
fn large_pvcs_leave_caches_out_and_small_ones_keep_everything() {
    // (pvc, large)
    let cases = [
        (pvc("declared-big").with_annotation(SIZE_KEY, "200Gi"), true),
        (pvc("at-threshold").with_annotation(SIZE_KEY, "100Gi"), true),
        (pvc("labelled-size").with_label(SIZE_KEY, "1Ti"), true),
        (pvc("declared-small").with_annotation(SIZE_KEY, "20Gi"), false),
        (pvc("undeclared"), false),
        (pvc("forced").with_label(LARGE_LABEL, "true"), true),
        (
            pvc("forced-small")
                .with_label(LARGE_LABEL, "false")
                .with_annotation(SIZE_KEY, "5Ti"),
            false,
        ),
    ];
    let result = plan(&request(Action::Backup).with_pvcs(cases.iter().map(|c| c.0.clone())));
    for (claim, large) in &cases {
        let job = job(&result, &format!("pvc-{}", claim.name));
        assert_eq!(job.has_arg("--excludeCaches"), *large, "{}", claim.name);
        let expected: &[&str] = if *large { &[".cache"] } else { &[] };
        assert_eq!(job.flag_values("--exclude"), expected, "{}", claim.name);
    }
}

#[test]
fn the_backup_annotations_set_the_threshold_and_the_patterns() {
    let mut req = request(Action::Backup).with_pvcs([
        pvc("media").with_annotation(SIZE_KEY, "600Mi"),
        pvc("tiny").with_annotation(SIZE_KEY, "100Mi"),
    ]);
    req.object.annotations = vec![
        kv(THRESHOLD_ANNOTATION, "500Mi"),
        kv(EXCLUDE_ANNOTATION, "thumbnails, .cache,,tmp"),
    ];
    let result = plan(&req);
    assert_eq!(
        job(&result, "pvc-media").flag_values("--exclude"),
        ["thumbnails", ".cache", "tmp"]
    );
    assert!(!job(&result, "pvc-tiny").has_arg("--excludeCaches"));
    req.object.annotations = vec![kv(THRESHOLD_ANNOTATION, "a lot")];
    match BackupSplit::plan(&req) {
        Err(PluginError::InvalidSpec(message)) => {
            assert!(message.contains(THRESHOLD_ANNOTATION), "{message}")
        }
        other => unreachable!("a bad threshold was accepted: {other:?}"),
    }
}

#[test]
fn selection_and_placement_follow_the_built_in_rules() {
    let taint = toleration("dedicated", "db", "NoSchedule");
    let mut req = request(Action::Backup)
        .with_spec(r#"{"tags":["split"],"promURL":"http://prom:9091"}"#)
        .with_pvcs([
            pvc("pending").with_phase("Pending"),
            pvc("off").with_annotation("k8up.io/backup", "false"),
            pvc("maybe").with_annotation("k8up.io/backup", "perhaps"),
            pvc("rox").with_access_modes(&["ReadOnlyMany"]),
            pvc("rox-on")
                .with_access_modes(&["ReadOnlyMany"])
                .with_annotation("k8up.io/backup", "true"),
            pvc("pinned").with_pv_node("n3"),
            pvc("forced")
                .mounted_by("app-0", "n1", vec![taint.clone()])
                .with_annotation("k8up.io/hostname", "n9"),
            pvc("odd-size").with_annotation(SIZE_KEY, "big"),
        ]);
    req.settings.data_path = "/backup/".into();
    let result = plan(&req);
    assert_eq!(
        suffixes(&result),
        ["pvc-forced", "pvc-odd-size", "pvc-pinned", "pvc-rox-on"]
    );
    assert_eq!(job(&result, "pvc-pinned").node(), Some("n3"));
    let forced = job(&result, "pvc-forced");
    assert_eq!(forced.node(), Some("n9"));
    assert_eq!(forced.tolerations, [taint]);
    assert_eq!(forced.flag_values("--tag"), ["split"]);
    assert_eq!(forced.env_literal_value("PROM_URL"), Some("http://prom:9091"));
    assert_eq!(forced.env_literal_value("BACKUP_DIR"), Some("/backup"));
    assert_eq!(forced.pvc_mounts[0].mount_path, "/backup/forced");
    let message = result.message.unwrap_or_default();
    assert!(message.contains("pvc pending skipped: not Bound"), "{message}");
    assert!(message.contains("pvc maybe skipped"), "{message}");
    assert!(
        message.contains("odd-size") && message.contains("treated as small"),
        "{message}"
    );

    req.settings.skip_without_annotation = true;
    assert_eq!(suffixes(&plan(&req)), ["pvc-rox-on"]);
}

#[test]
fn nothing_to_back_up_is_an_empty_plan_that_mentions_backup_command_pods() {
    let req = request(Action::Backup)
        .with_pods([pod("mysql-0").with_annotation("k8up.io/backupcommand", "mysqldump")]);
    assert_eq!(
        plan(&req),
        JobPlan::nothing("nothing to back up; pods with backup commands are not backed up by backup-split")
    );
    assert_eq!(
        plan(&request(Action::Backup)),
        JobPlan::nothing("nothing to back up")
    );
}

#[test]
fn other_actions_are_refused() {
    assert_eq!(
        BackupSplit::plan(&request(Action::Restore)),
        Err(PluginError::UnsupportedAction(Action::Restore))
    );
    assert_eq!(BackupSplit::info().actions, [Action::Backup]);
}
