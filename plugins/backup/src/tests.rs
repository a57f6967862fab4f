//! Plan-level tests of the backup planner.

use super::*;
use k8up_plugin_sdk::testing::{pod, pvc, request, toleration};
use k8up_plugin_sdk::{PvcMount, env_secret};

const ARGS: &str = "k8up.io/backup-restic-args";

fn plan(req: &PlanRequest) -> JobPlan {
    BackupPlugin::plan(req).unwrap_or_else(|err| unreachable!("plan failed: {err:?}"))
}

fn suffixes(plan: &JobPlan) -> Vec<&str> {
    plan.jobs.iter().map(|job| job.name_suffix.as_str()).collect()
}

fn mounts(job: &Job) -> Vec<(&str, &str, bool)> {
    job.pvc_mounts
        .iter()
        .map(|m: &PvcMount| (m.claim_name.as_str(), m.mount_path.as_str(), m.read_only))
        .collect()
}

#[test]
fn nothing_matching_gives_an_empty_plan_that_says_so() {
    let req = request(Action::Backup).with_pvcs([pvc("off").with_annotation("k8up.io/backup", "false")]);
    assert_eq!(plan(&req), JobPlan::nothing("nothing to back up"));
    let req = request(Action::Backup).with_pvcs([pvc("pending").with_phase("Pending")]);
    let result = plan(&req);
    assert!(result.jobs.is_empty());
    assert_eq!(
        result.message.as_deref(),
        Some("nothing to back up; pvc pending skipped: not Bound (Pending)")
    );
}

#[test]
fn classic_mode_groups_pvcs_by_node_and_restic_args() {
    let taint = toleration("dedicated", "db", "NoSchedule");
    let req = request(Action::Backup).with_pvcs([
        pvc("b").mounted_by("db-0", "n1", vec![taint.clone()]),
        pvc("a").mounted_by("db-1", "n1", vec![]),
        pvc("c").mounted_by("web-0", "n2", vec![]),
        pvc("d").with_access_modes(&["ReadWriteMany"]),
        pvc("e")
            .with_access_modes(&["ReadWriteMany"])
            .with_annotation(ARGS, r#"["--exclude","*.tmp"]"#),
        pvc("f").with_access_modes(&["ReadWriteMany"]),
    ]);
    let result = plan(&req);
    let args_suffix = format!("shared-{}", short_hash("--exclude\0*.tmp"));
    assert_eq!(
        suffixes(&result),
        ["shared", args_suffix.as_str(), "node-n1", "node-n2"]
    );
    assert_eq!(result.message, None);

    let shared = &result.jobs[0];
    assert_eq!(mounts(shared), [("d", "/data/d", true), ("f", "/data/f", true)]);
    assert_eq!(shared.node(), None);
    assert!(!shared.has_env("TARGET_PODS"));

    let excluded = &result.jobs[1];
    assert_eq!(mounts(excluded), [("e", "/data/e", true)]);
    assert!(
        excluded
            .args
            .ends_with(&["--exclude".to_string(), "*.tmp".to_string()])
    );

    let n1 = &result.jobs[2];
    assert_eq!(mounts(n1), [("a", "/data/a", true), ("b", "/data/b", true)]);
    assert_eq!(n1.node(), Some("n1"));
    assert_eq!(n1.tolerations, [taint]);
    assert_eq!(n1.env_literal_value("TARGET_PODS"), Some("db-0,db-1"));
    assert_eq!(result.jobs[3].node(), Some("n2"));
    assert!(result.jobs.iter().all(|job| !job.exclusive));
}

#[test]
fn relaxed_mode_gives_every_pvc_its_own_job() {
    let mut req = request(Action::Backup).with_pvcs([
        pvc("rwo").mounted_by("db-0", "n1", vec![]),
        pvc("rwx")
            .with_access_modes(&["ReadWriteMany"])
            .mounted_by("web-0", "n2", vec![]),
        pvc("free"),
    ]);
    req.settings.relaxed_scheduling = true;
    let result = plan(&req);
    assert_eq!(suffixes(&result), ["pvc-free", "pvc-rwx", "pvc-rwo"]);
    assert_eq!(result.job("pvc-rwo").and_then(Job::node), Some("n1"));
    assert_eq!(result.job("pvc-rwx").and_then(Job::node), None);
    assert_eq!(result.job("pvc-free").map(|job| mounts(job).len()), Some(1));
}

#[test]
fn the_plan_does_not_depend_on_the_order_pvcs_are_offered() {
    let claims = [
        pvc("a").mounted_by("p", "n1", vec![]),
        pvc("b").with_pv_node("n2"),
        pvc("c").with_access_modes(&["ReadWriteMany"]),
    ];
    let forward = request(Action::Backup).with_pvcs(claims.clone());
    let backward = request(Action::Backup).with_pvcs(claims.into_iter().rev());
    assert_eq!(plan(&forward), plan(&backward));
    assert_eq!(plan(&forward), plan(&forward));
}

#[test]
fn every_pvc_job_gets_the_k8up_environment_and_args() {
    let mut req = request(Action::Backup)
        .with_spec(r#"{"tags":["daily","prod"],"promURL":"http://prom:9091","statsURL":"","unknownField":1}"#)
        .with_pvcs([pvc("data")]);
    req.settings.data_path = "/backup/".into();
    req.settings.stats_url = Some("http://hooks/stats".into());
    req.settings.prom_url = Some("http://global-prom".into());
    req.settings.cluster_name = Some("prod-eu".into());
    req.settings.skip_snapshot_sync = true;
    req.backend.tls_args = vec!["--caCert".into(), "/certs/ca.crt".into()];
    let result = plan(&req);
    let job = &result.jobs[0];
    let expected = [
        ("SKIP_PREBACKUP", "true"),
        ("BACKUP_DIR", "/backup"),
        ("STATS_URL", "http://hooks/stats"),
        ("PROM_URL", "http://prom:9091"),
        ("CLUSTER_NAME", "prod-eu"),
        ("BACKUPCOMMAND_ANNOTATION", "k8up.io/backupcommand"),
        ("FILEEXTENSION_ANNOTATION", "k8up.io/file-extension"),
        ("BACKUP_CONTAINERANNOTATION", "k8up.io/backupcommand-container"),
        ("BACKUP_SKIP_SNAPSHOT_SYNC", "true"),
    ];
    for (name, value) in expected {
        assert_eq!(job.env_literal_value(name), Some(value), "{name}");
    }
    assert!(
        job.env
            .contains(&env_secret("RESTIC_PASSWORD", "backup-repo", "password"))
    );
    assert_eq!(job.flag_values("--tag"), ["daily", "prod"]);
    assert_eq!(job.flag_values("--caCert"), ["/certs/ca.crt"]);
    assert_eq!(mounts(job), [("data", "/backup/data", true)]);
    assert!(!job.has_env("SLEEP_DURATION"));
}

#[test]
fn annotated_running_pods_get_one_prebackup_job_with_one_pod_per_owner() {
    let cmd = "k8up.io/backupcommand";
    let req = request(Action::Backup).with_pods([
        pod("mysql-1").with_annotation(cmd, "mysqldump").owned_by("rs-1"),
        pod("mysql-0").with_annotation(cmd, "mysqldump").owned_by("rs-1"),
        pod("pg-0").with_annotation(cmd, "pg_dumpall").owned_by("sts-1"),
        pod("lonely").with_annotation(cmd, "tar c /x"),
        pod("starting").with_annotation(cmd, "dump").with_phase("Pending"),
        pod("plain"),
        pod("blank").with_annotation(cmd, " "),
        pod("wrong-container")
            .with_annotation(cmd, "dump")
            .with_annotation("k8up.io/backupcommand-container", "db"),
        pod("right-container")
            .with_annotation(cmd, "dump")
            .with_annotation("k8up.io/backupcommand-container", "db")
            .with_containers(&["app", "db"]),
    ]);
    let result = plan(&req);
    assert_eq!(suffixes(&result), ["prebackup"]);
    let job = &result.jobs[0];
    assert_eq!(
        job.env_literal_value("TARGET_PODS"),
        Some("lonely,mysql-0,pg-0,right-container")
    );
    assert!(!job.has_env("SKIP_PREBACKUP"));
    assert!(job.pvc_mounts.is_empty() && job.node_selector.is_empty());
    assert!(
        result
            .message
            .as_deref()
            .is_some_and(|m| m.contains("wrong-container")),
        "{:?}",
        result.message
    );
}

#[test]
fn jobs_after_the_first_start_staggered() {
    let req = request(Action::Backup)
        .with_pvcs([
            pvc("a").mounted_by("p", "n1", vec![]),
            pvc("b").mounted_by("q", "n2", vec![]),
        ])
        .with_pods([pod("db").with_annotation("k8up.io/backupcommand", "dump")]);
    let result = plan(&req);
    let sleeps: Vec<Option<&str>> = result
        .jobs
        .iter()
        .map(|job| job.env_literal_value("SLEEP_DURATION"))
        .collect();
    assert_eq!(suffixes(&result), ["node-n1", "node-n2", "prebackup"]);
    assert_eq!(sleeps, [None, Some("10s"), Some("20s")]);
}

#[test]
fn other_actions_and_malformed_specs_are_refused() {
    assert_eq!(
        BackupPlugin::plan(&request(Action::Prune)),
        Err(PluginError::UnsupportedAction(Action::Prune))
    );
    let req = request(Action::Backup).with_spec(r#"{"tags":"daily"}"#);
    assert!(matches!(
        BackupPlugin::plan(&req),
        Err(PluginError::InvalidSpec(_))
    ));
    assert_eq!(BackupPlugin::info().actions, [Action::Backup]);
}
