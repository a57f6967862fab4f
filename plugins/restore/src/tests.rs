//! Plan-level tests of the restore planner.

use super::*;
use k8up_plugin_s3_target::{
    EXTRA_ACCESS_KEY_ID_SECRET, EXTRA_BUCKET, EXTRA_ENDPOINT, EXTRA_SECRET_ACCESS_KEY_SECRET,
};
use k8up_plugin_sdk::testing::{pvc, request, toleration};
use k8up_plugin_sdk::{PvcMount, ValueSource, VolumeMount, env_secret, kv};

const FOLDER: &str = r#""restoreMethod":{"folder":{"claimName":"wordpress"}}"#;

fn folder_request(rest: &str) -> PlanRequest {
    let spec = if rest.is_empty() {
        format!("{{{FOLDER}}}")
    } else {
        format!("{{{FOLDER},{rest}}}")
    };
    request(Action::Restore)
        .with_spec(&spec)
        .with_pvcs([pvc("other"), pvc("wordpress")])
}

fn planned(req: &PlanRequest) -> JobPlan {
    RestorePlugin::plan(req).unwrap_or_else(|err| unreachable!("plan failed: {err:?}"))
}

fn only_job(plan: &JobPlan) -> &Job {
    match plan.jobs.as_slice() {
        [job] => job,
        jobs => unreachable!("expected one job, got {}", jobs.len()),
    }
}

fn refusal(req: &PlanRequest) -> String {
    match RestorePlugin::plan(req) {
        Err(PluginError::InvalidSpec(message)) => message,
        other => unreachable!("expected invalid-spec, got {other:?}"),
    }
}

#[test]
fn a_folder_restore_mounts_the_pvc_read_write_at_restore_and_runs_exclusively() {
    let mut req = folder_request("");
    req.backend.tls_args = vec!["--caCert".into(), "/certs/ca.crt".into()];
    req.settings.stats_url = Some("http://hooks/restore".into());
    let result = planned(&req);
    let job = only_job(&result);
    assert_eq!(job.name_suffix, "");
    assert!(job.exclusive);
    assert_eq!(
        job.args,
        [
            "--caCert",
            "/certs/ca.crt",
            "--restore",
            "--restoreType",
            "folder",
            "--preferPath",
            "/data/wordpress"
        ]
    );
    assert_eq!(
        job.pvc_mounts,
        [PvcMount {
            claim_name: "wordpress".into(),
            mount_path: "/restore".into(),
            read_only: false
        }]
    );
    assert_eq!(job.env_literal_value("RESTORE_DIR"), Some("/restore"));
    assert_eq!(job.env_literal_value("STATS_URL"), Some("http://hooks/restore"));
    assert!(
        job.env
            .contains(&env_secret("RESTIC_PASSWORD", "backup-repo", "password"))
    );
    assert!(!job.has_env("RESTORE_S3ENDPOINT"));
    assert_eq!(job.node(), None);
    assert_eq!(result.message, None);
}

#[test]
fn a_read_only_folder_is_mounted_read_only_and_the_plan_says_so() {
    let req = request(Action::Restore)
        .with_spec(r#"{"restoreMethod":{"folder":{"claimName":"wordpress","readOnly":true}}}"#)
        .with_pvcs([pvc("wordpress")]);
    let result = planned(&req);
    assert!(only_job(&result).pvc_mounts.iter().all(|m| m.read_only));
    assert!(
        result.message.as_deref().is_some_and(|m| m.contains("read-only")),
        "{:?}",
        result.message
    );
}

#[test]
fn target_tls_options_on_a_folder_restore_are_left_out_and_named_in_the_message() {
    let req = request(Action::Restore)
        .with_spec(r#"{"restoreMethod":{"folder":{"claimName":"wordpress"},"tlsOptions":{"caCert":"/ca"}}}"#)
        .with_pvcs([pvc("wordpress")]);
    let with_tls = planned(&req);
    assert!(!only_job(&with_tls).has_arg("--restoreCaCert"));
    assert_eq!(
        with_tls.message.as_deref(),
        Some("restoreMethod.tlsOptions has no effect on a folder restore")
    );
}

#[test]
fn a_folder_restore_into_a_pvc_that_does_not_exist_is_an_invalid_spec() {
    let req = request(Action::Restore)
        .with_spec(&format!("{{{FOLDER}}}"))
        .with_pvcs([pvc("other")]);
    assert_eq!(
        refusal(&req),
        "restoreMethod.folder.claimName: PVC \"wordpress\" does not exist in namespace \"ns\"; create it first"
    );
    let req = request(Action::Restore).with_spec(r#"{"restoreMethod":{"folder":{"claimName":""}}}"#);
    assert!(refusal(&req).contains("claimName is empty"));
}

#[test]
fn without_snapshot_paths_or_tags_a_folder_restore_prefers_the_newest_snapshot_of_its_pvc() {
    // (extra spec fields, expected --preferPath)
    let cases = [
        ("", Some("/data/wordpress")),
        (r#""snapshot":"","tags":[],"paths":[""]"#, Some("/data/wordpress")),
        (r#""restoreTimeFilter":"2024-05-01""#, Some("/data/wordpress")),
        (r#""snapshot":"latest""#, Some("/data/wordpress")),
        (r#""snapshot":"3ab2c0f1""#, None),
        (r#""tags":["nightly"]"#, None),
        (r#""paths":["/data/old-wordpress"]"#, None),
    ];
    for (rest, expected) in cases {
        let result = planned(&folder_request(rest));
        let job = only_job(&result);
        assert_eq!(
            job.flag_values("--preferPath"),
            expected.into_iter().collect::<Vec<_>>(),
            "{rest}"
        );
        assert_eq!(job.has_arg("--restoreSnap"), rest.contains("3ab2c0f1"), "{rest}");
    }
    let mut req = folder_request("");
    req.settings.data_path = "/backup/".into();
    assert_eq!(
        only_job(&planned(&req)).flag_values("--preferPath"),
        ["/backup/wordpress"]
    );
}

#[test]
fn the_snapshot_choice_and_restic_options_reach_the_wrapper() {
    let req = folder_request(
        r#""snapshot":"3ab2c0f1","restoreTimeFilter":"2024-05-01 10","restoreFilter":"/wp-content",
           "tags":["nightly","","prod"],"paths":["/data/wordpress"],"delete":true"#,
    );
    let result = planned(&req);
    let job = only_job(&result);
    assert_eq!(job.flag_values("--restoreSnap"), ["3ab2c0f1"]);
    assert_eq!(job.flag_values("--restoreTimeFilter"), ["2024-05-01 10"]);
    assert_eq!(job.flag_values("--restoreFilter"), ["/wp-content"]);
    assert_eq!(job.flag_values("--tag"), ["nightly", "prod"]);
    assert_eq!(job.flag_values("--path"), ["/data/wordpress"]);
    assert!(job.has_arg("--delete"));
    let plain = planned(&folder_request(r#""delete":false,"restoreFilter":"""#));
    let job = only_job(&plain);
    assert!(!job.has_arg("--delete") && !job.has_arg("--restoreFilter") && !job.has_arg("--restoreSnap"));
}

#[test]
fn a_path_with_a_comma_is_refused() {
    let message = refusal(&folder_request(r#""paths":["/data/a,b"]"#));
    assert!(
        message.starts_with("paths: \"/data/a,b\" contains a comma"),
        "{message}"
    );
}

#[test]
fn an_s3_restore_uploads_to_the_specs_target_with_secret_references_and_tls() {
    let req = request(Action::Restore).with_spec(
        r#"{"restoreMethod":{
            "s3":{"endpoint":"https://s3.example.com/","bucket":"restores",
                  "accessKeyIDSecretRef":{"name":"restore-creds","key":"id"},
                  "secretAccessKeySecretRef":{"name":"restore-creds","key":"secret"}},
            "tlsOptions":{"caCert":"/certs/ca.crt"},
            "volumeMounts":[{"name":"restore-ca","mountPath":"/certs","readOnly":true}]},
           "restoreFilter":"/x","delete":true}"#,
    );
    let result = planned(&req);
    let job = only_job(&result);
    assert!(job.exclusive);
    assert_eq!(
        job.args,
        [
            "--restore",
            "--restoreType",
            "s3",
            "--restoreCaCert",
            "/certs/ca.crt"
        ]
    );
    assert_eq!(
        job.env_literal_value("RESTORE_S3ENDPOINT"),
        Some("https://s3.example.com/restores")
    );
    assert!(
        job.env
            .contains(&env_secret("RESTORE_ACCESSKEYID", "restore-creds", "id"))
    );
    assert!(
        job.env
            .contains(&env_secret("RESTORE_SECRETACCESSKEY", "restore-creds", "secret"))
    );
    assert!(job.pvc_mounts.is_empty() && !job.has_env("RESTORE_DIR"));
    assert_eq!(
        job.volume_mounts,
        [VolumeMount {
            name: "restore-ca".into(),
            mount_path: "/certs".into(),
            read_only: true,
            sub_path: None
        }]
    );
    assert_eq!(
        result.message.as_deref(),
        Some("restoreFilter has no effect on an S3 restore; delete has no effect on an S3 restore")
    );
}

#[test]
fn an_s3_restore_without_its_own_target_uses_the_operators_global_one() {
    let mut req = request(Action::Restore).with_spec(r#"{"restoreMethod":{"s3":{}}}"#);
    req.settings.extra = vec![
        kv(EXTRA_ENDPOINT, "http://seaweed:8333"),
        kv(EXTRA_BUCKET, "global-restores"),
        kv(EXTRA_ACCESS_KEY_ID_SECRET, "k8up-restore-global/id"),
        kv(EXTRA_SECRET_ACCESS_KEY_SECRET, "k8up-restore-global/secret"),
    ];
    let result = planned(&req);
    let job = only_job(&result);
    assert_eq!(
        job.env_literal_value("RESTORE_S3ENDPOINT"),
        Some("http://seaweed:8333/global-restores")
    );
    assert!(
        job.env
            .contains(&env_secret("RESTORE_ACCESSKEYID", "k8up-restore-global", "id"))
    );
    // Credentials only ever travel as Secret references.
    for var in &job.env {
        if let ValueSource::Literal(_) = var.value {
            assert!(
                ["RESTORE_S3ENDPOINT", "STATS_URL"].contains(&var.name.as_str()),
                "{} is a literal",
                var.name
            );
        }
    }
    let bare = request(Action::Restore).with_spec(r#"{"restoreMethod":{"s3":{}}}"#);
    assert!(refusal(&bare).starts_with("restoreMethod.s3.endpoint is not set"));
}

#[test]
fn the_restore_method_must_name_exactly_one_target() {
    let cases = [
        ("{}", "restoreMethod is missing"),
        (r#"{"restoreMethod":{}}"#, "sets neither s3 nor folder"),
        (
            r#"{"restoreMethod":{"s3":{},"folder":{"claimName":"wordpress"}}}"#,
            "sets both s3 and folder",
        ),
    ];
    for (spec, reason) in cases {
        let req = request(Action::Restore)
            .with_spec(spec)
            .with_pvcs([pvc("wordpress")]);
        let message = refusal(&req);
        assert!(message.contains(reason), "{spec}: {message}");
    }
}

#[test]
fn an_rwo_pvc_in_use_is_restored_on_the_node_of_its_pod() {
    let taint = toleration("dedicated", "db", "NoSchedule");
    let req = request(Action::Restore)
        .with_spec(&format!("{{{FOLDER}}}"))
        .with_pvcs([pvc("wordpress").mounted_by("wordpress-0", "n2", vec![taint.clone()])]);
    let result = planned(&req);
    let job = only_job(&result);
    assert_eq!(job.node(), Some("n2"));
    assert_eq!(job.tolerations, [taint]);
    let req = request(Action::Restore)
        .with_spec(&format!("{{{FOLDER}}}"))
        .with_pvcs(
            [pvc("wordpress")
                .with_access_modes(&["ReadWriteMany"])
                .mounted_by("wordpress-0", "n2", vec![])],
        );
    assert_eq!(only_job(&planned(&req)).node(), None);
}

#[test]
fn other_actions_and_malformed_specs_are_refused() {
    assert_eq!(
        RestorePlugin::plan(&request(Action::Archive)),
        Err(PluginError::UnsupportedAction(Action::Archive))
    );
    let req = request(Action::Restore).with_spec(r#"{"restoreMethod":{"folder":{"claimName":1}}}"#);
    assert!(refusal(&req).contains("failed to read the spec"));
    assert_eq!(RestorePlugin::info().name, "k8up-restore");
    assert_eq!(RestorePlugin::info().actions, [Action::Restore]);
}
