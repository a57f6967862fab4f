//! Plan-level tests of the archive planner.

use super::*;
use k8up_plugin_s3_target::{
    EXTRA_ACCESS_KEY_ID_SECRET, EXTRA_BUCKET, EXTRA_ENDPOINT, EXTRA_SECRET_ACCESS_KEY_SECRET,
};
use k8up_plugin_sdk::testing::request;
use k8up_plugin_sdk::{ValueSource, VolumeMount, env_secret, kv};

const TARGET: &str = r#""restoreMethod":{"s3":{"endpoint":"http://archive-s3:9000","bucket":"archive",
    "accessKeyIDSecretRef":{"name":"archive-creds","key":"username"},
    "secretAccessKeySecretRef":{"name":"archive-creds","key":"password"}}}"#;

fn with_target(rest: &str) -> PlanRequest {
    let spec = if rest.is_empty() {
        format!("{{{TARGET}}}")
    } else {
        format!("{{{TARGET},{rest}}}")
    };
    request(Action::Archive).with_spec(&spec)
}

fn planned(req: &PlanRequest) -> JobPlan {
    ArchivePlugin::plan(req).unwrap_or_else(|err| unreachable!("plan failed: {err:?}"))
}

fn only_job(plan: &JobPlan) -> &Job {
    match plan.jobs.as_slice() {
        [job] => job,
        jobs => unreachable!("expected one job, got {}", jobs.len()),
    }
}

fn refusal(req: &PlanRequest) -> String {
    match ArchivePlugin::plan(req) {
        Err(PluginError::InvalidSpec(message)) => message,
        other => unreachable!("expected invalid-spec, got {other:?}"),
    }
}

#[test]
fn an_archive_is_one_shared_job_uploading_to_the_specs_s3_target() {
    let mut req = with_target("");
    req.backend.tls_args = vec!["--caCert".into(), "/certs/ca.crt".into()];
    req.settings.stats_url = Some("http://hooks/archive".into());
    let result = planned(&req);
    let job = only_job(&result);
    assert_eq!(job.name_suffix, "");
    assert!(!job.exclusive, "an archive only reads the repository");
    assert_eq!(
        job.args,
        ["--caCert", "/certs/ca.crt", "--archive", "--restoreType", "s3"]
    );
    assert_eq!(
        job.env_literal_value("RESTORE_S3ENDPOINT"),
        Some("http://archive-s3:9000/archive")
    );
    assert!(
        job.env
            .contains(&env_secret("RESTORE_ACCESSKEYID", "archive-creds", "username"))
    );
    assert!(job.env.contains(&env_secret(
        "RESTORE_SECRETACCESSKEY",
        "archive-creds",
        "password"
    )));
    assert!(
        job.env
            .contains(&env_secret("RESTIC_PASSWORD", "backup-repo", "password"))
    );
    assert_eq!(job.env_literal_value("STATS_URL"), Some("http://hooks/archive"));
    assert!(!job.has_env("ARCHIVE_ALL_SNAPSHOTS"));
    assert!(job.pvc_mounts.is_empty() && job.node_selector.is_empty());
    assert_eq!(result.message, None);
}

#[test]
fn tags_and_paths_choose_the_snapshots_and_all_snapshots_archives_every_one() {
    let result = planned(&with_target(
        r#""tags":["prod",""],"paths":["/data/db","/data/web"],"allSnapshots":true"#,
    ));
    let job = only_job(&result);
    assert_eq!(job.flag_values("--tag"), ["prod"]);
    assert_eq!(job.flag_values("--path"), ["/data/db", "/data/web"]);
    assert_eq!(job.env_literal_value("ARCHIVE_ALL_SNAPSHOTS"), Some("true"));
    let latest_only = planned(&with_target(r#""allSnapshots":false"#));
    assert!(!only_job(&latest_only).has_env("ARCHIVE_ALL_SNAPSHOTS"));
    let message = refusal(&with_target(r#""paths":["/data/a,b"]"#));
    assert!(message.contains("contains a comma"), "{message}");
}

#[test]
fn without_a_restore_method_the_operators_global_target_is_used() {
    let mut req = request(Action::Archive);
    req.settings.extra = vec![
        kv(EXTRA_ENDPOINT, "https://global-s3.example.com"),
        kv(EXTRA_BUCKET, "k8up-archive"),
        kv(EXTRA_ACCESS_KEY_ID_SECRET, "k8up-global-restore/id"),
        kv(EXTRA_SECRET_ACCESS_KEY_SECRET, "k8up-global-restore/secret"),
    ];
    let result = planned(&req);
    let job = only_job(&result);
    assert_eq!(
        job.env_literal_value("RESTORE_S3ENDPOINT"),
        Some("https://global-s3.example.com/k8up-archive")
    );
    assert!(job.env.contains(&env_secret(
        "RESTORE_SECRETACCESSKEY",
        "k8up-global-restore",
        "secret"
    )));
    for var in &job.env {
        if let ValueSource::Literal(_) = var.value {
            assert!(var.name == "RESTORE_S3ENDPOINT", "{} is a literal", var.name);
        }
    }
    // A bucket of the spec still wins over the global one.
    let req = req.with_spec(r#"{"restoreMethod":{"s3":{"bucket":"own"}}}"#);
    assert_eq!(
        only_job(&planned(&req)).env_literal_value("RESTORE_S3ENDPOINT"),
        Some("https://global-s3.example.com/own")
    );
}

#[test]
fn an_archive_without_any_target_is_an_invalid_spec() {
    let message = refusal(&request(Action::Archive));
    assert!(
        message.starts_with("restoreMethod.s3.endpoint is not set"),
        "{message}"
    );
}

#[test]
fn tls_options_and_volume_mounts_of_the_target_reach_the_job() {
    let req = request(Action::Archive).with_spec(
        r#"{"restoreMethod":{"s3":{"endpoint":"https://s3:9000","bucket":"b",
              "accessKeyIDSecretRef":{"name":"c","key":"id"},"secretAccessKeySecretRef":{"name":"c","key":"s"}},
            "tlsOptions":{"caCert":"/mnt/ca/ca.crt","clientCert":"/mnt/tls/tls.crt","clientKey":"/mnt/tls/tls.key"},
            "volumeMounts":[{"name":"archive-tls","mountPath":"/mnt/tls","subPath":"client"}]}}"#,
    );
    let result = planned(&req);
    let job = only_job(&result);
    assert_eq!(job.flag_values("--restoreCaCert"), ["/mnt/ca/ca.crt"]);
    assert_eq!(job.flag_values("--restoreClientCert"), ["/mnt/tls/tls.crt"]);
    assert_eq!(job.flag_values("--restoreClientKey"), ["/mnt/tls/tls.key"]);
    assert_eq!(
        job.volume_mounts,
        [VolumeMount {
            name: "archive-tls".into(),
            mount_path: "/mnt/tls".into(),
            read_only: false,
            sub_path: Some("client".into())
        }]
    );
}

#[test]
fn restore_fields_without_meaning_for_an_archive_are_named_in_the_message() {
    let result = planned(&with_target(
        r#""snapshot":"abc","restoreFilter":"/x","restoreTimeFilter":"2024","delete":true"#,
    ));
    assert_eq!(
        result.message.as_deref(),
        Some("snapshot, restoreFilter, restoreTimeFilter, delete have no effect on an Archive")
    );
    let req = request(Action::Archive).with_spec(
        r#"{"restoreMethod":{"folder":{"claimName":"x"},"s3":{"endpoint":"http://s3:1","bucket":"b",
            "accessKeyIDSecretRef":{"name":"c","key":"i"},"secretAccessKeySecretRef":{"name":"c","key":"s"}}}}"#,
    );
    assert_eq!(
        planned(&req).message.as_deref(),
        Some("restoreMethod.folder has no effect on an Archive")
    );
    let job = only_job(&planned(&req)).clone();
    assert!(job.pvc_mounts.is_empty() && !job.has_arg("--restoreSnap"));
}

#[test]
fn other_actions_and_malformed_specs_are_refused() {
    assert_eq!(
        ArchivePlugin::plan(&request(Action::Restore)),
        Err(PluginError::UnsupportedAction(Action::Restore))
    );
    assert!(
        refusal(&request(Action::Archive).with_spec(r#"{"allSnapshots":"yes"}"#)).contains("failed to read")
    );
    assert_eq!(ArchivePlugin::info().name, "k8up-archive");
    assert_eq!(ArchivePlugin::info().actions, [Action::Archive]);
}
