//! One test per rule: a plan that breaks it is refused with the rule's name, its honest twin passes.

use super::super::fixtures::{action, global_settings, observed};
use super::super::request::build_request;
use super::super::types::{
    EnvFrom, EnvVar, Job, JobPlan, KeyRef, KeyValue, PlanRequest, PvcMount, ValueSource, VolumeMount,
};
use super::*;
use crate::crd::{Backup, Restore};

const BACKUP: &str = r#"
apiVersion: k8up.io/v1
kind: Backup
metadata: {name: nightly}
spec:
  backend:
    repoPasswordSecretRef: {name: repo, key: password}
    s3: {endpoint: 'http://minio:9000', bucket: b, accessKeyIDSecretRef: {name: s3, key: id}}
    envFrom: [{configMapRef: {name: proxy}}, {secretRef: {name: extra}}]
    volumeMounts: [{name: certs, mountPath: /certs/}]
  volumes:
    - {name: certs, secret: {secretName: tls}}
    - {name: nothing}
"#;

const STATE: &str = r#"
kind: PersistentVolumeClaim
apiVersion: v1
metadata: {name: data}
spec: {accessModes: [ReadWriteOnce]}
status: {phase: Bound}
"#;

fn setup() -> (Policy, PlanRequest) {
    let a = action::<Backup>(BACKUP, &global_settings());
    let request = build_request(&a, &observed(&a, STATE));
    (Policy::for_action(&a), request)
}

fn job(suffix: &str) -> Job {
    Job {
        name_suffix: suffix.to_string(),
        args: vec!["--backup".to_string()],
        env: Vec::new(),
        env_from: Vec::new(),
        pvc_mounts: Vec::new(),
        volume_mounts: Vec::new(),
        node_selector: Vec::new(),
        tolerations: Vec::new(),
        labels: Vec::new(),
        annotations: Vec::new(),
        exclusive: false,
    }
}

fn plan(jobs: Vec<Job>) -> JobPlan {
    JobPlan { jobs, message: None }
}

fn literal(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: ValueSource::Literal(value.to_string()),
    }
}

fn secret(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: ValueSource::SecretKey(KeyRef {
            name: secret.to_string(),
            key: key.to_string(),
            optional: false,
        }),
    }
}

fn pvc_mount(claim: &str, path: &str) -> PvcMount {
    PvcMount {
        claim_name: claim.to_string(),
        mount_path: path.to_string(),
        read_only: true,
    }
}

fn volume_mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.to_string(),
        mount_path: path.to_string(),
        read_only: true,
        sub_path: None,
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: value.to_string(),
    }
}

/// The rule a plan broke, or `None` when it passed.
fn verdict(plan: &JobPlan) -> Option<&'static str> {
    let (policy, request) = setup();
    let origin = Origin {
        plugin: "tester",
        version: "1.2.3",
    };
    match check_plan(origin, &policy, &request, plan) {
        Ok(()) => None,
        Err(Error::PlanRejected { rule, .. }) => Some(rule),
        Err(other) => unreachable!("unexpected error {other}"),
    }
}

fn with(change: impl FnOnce(&mut Job)) -> JobPlan {
    let mut j = job("");
    change(&mut j);
    plan(vec![j])
}

#[test]
fn the_policy_names_what_the_spec_names() {
    let (policy, _) = setup();
    assert_eq!(policy.job_prefix, "backup-nightly");
    assert_eq!(
        policy.secrets.iter().map(String::as_str).collect::<Vec<_>>(),
        ["extra", "repo", "s3", "tls"]
    );
    assert_eq!(
        policy.config_maps.iter().map(String::as_str).collect::<Vec<_>>(),
        ["proxy"]
    );
    assert_eq!(
        policy.volumes.iter().map(String::as_str).collect::<Vec<_>>(),
        ["certs"]
    );
    assert_eq!(policy.mount_roots, ["/certs", "/data", "/restore"]);
    assert_eq!(policy.scratch, ["/k8up", "/tmp", "/.cache"]);
    assert_eq!(
        policy.global_keys,
        ["secret-access-key"],
        "the spec names no secret key of its S3 bucket"
    );
}

#[test]
fn an_honest_plan_passes_every_rule() {
    let mut j = job("node-a");
    j.env = vec![
        secret("RESTIC_PASSWORD", "repo", "password"),
        secret(
            "AWS_SECRET_ACCESS_KEY",
            GLOBAL_CREDENTIALS_SECRET,
            "secret-access-key",
        ),
        literal("BACKUP_DIR", "/data"),
    ];
    j.env_from = vec![
        EnvFrom::ConfigMap("proxy".into()),
        EnvFrom::Secret("extra".into()),
    ];
    j.pvc_mounts = vec![pvc_mount("data", "/data/data")];
    j.volume_mounts = vec![volume_mount("certs", "/certs")];
    j.node_selector = vec![kv("kubernetes.io/hostname", "node-a")];
    j.labels = vec![kv("example.com/team", "shop")];
    j.annotations = vec![kv("example.com/note", "anything goes here")];
    assert_eq!(verdict(&plan(vec![j, job("prebackup")])), None);
}

#[test]
fn plan_size_bounds_jobs_lists_strings_and_messages() {
    let many = plan((0..=MAX_JOBS).map(|i| job(&format!("j{i}"))).collect());
    assert_eq!(verdict(&many), Some("plan-size"));
    assert_eq!(
        verdict(&with(|j| j.args = vec!["x".into(); MAX_ITEMS + 1])),
        Some("plan-size")
    );
    assert_eq!(
        verdict(&with(|j| j.args = vec!["x".repeat(MAX_STRING + 1)])),
        Some("plan-size")
    );
    let chatty = JobPlan {
        jobs: Vec::new(),
        message: Some("x".repeat(MAX_MESSAGE + 1)),
    };
    assert_eq!(verdict(&chatty), Some("plan-size"));
    let annotations = (0..20).map(|i| kv(&format!("a{i}"), &"v".repeat(4000))).collect();
    assert_eq!(verdict(&with(|j| j.annotations = annotations)), Some("plan-size"));
}

#[test]
fn job_names_are_valid_short_and_unique() {
    assert_eq!(verdict(&plan(vec![job("Upper")])), Some("job-name"));
    assert_eq!(verdict(&plan(vec![job("-x")])), Some("job-name"));
    assert_eq!(verdict(&plan(vec![job(&"x".repeat(49))])), Some("job-name"));
    assert_eq!(
        verdict(&plan(vec![job(&"x".repeat(48))])),
        None,
        "63 characters fit"
    );
    assert_eq!(verdict(&plan(vec![job("a"), job("a")])), Some("job-name"));
    assert_eq!(verdict(&plan(vec![job(""), job("")])), Some("job-name"));
}

#[test]
fn only_offered_pvcs_may_be_mounted() {
    assert_eq!(
        verdict(&with(
            |j| j.pvc_mounts = vec![pvc_mount("someone-elses", "/data/x")]
        )),
        Some("offered-pvc")
    );
}

#[test]
fn mount_paths_stay_under_the_allowed_roots_and_off_the_scratch_directories() {
    let cases = [
        ("/data/data", None),
        ("/restore", None),
        ("/certs/inner", None),
        ("/etc", Some("mount-path")),
        ("/database", Some("mount-path")),
        ("data", Some("mount-path")),
        ("/data/../etc", Some("mount-path")),
    ];
    for (path, expected) in cases {
        assert_eq!(
            verdict(&with(|j| j.pvc_mounts = vec![pvc_mount("data", path)])),
            expected,
            "{path}"
        );
    }
    let twice = with(|j| j.pvc_mounts = vec![pvc_mount("data", "/data/x"), pvc_mount("data", "/data/x/")]);
    assert_eq!(verdict(&twice), Some("mount-path"));
    let escape = with(|j| {
        j.volume_mounts = vec![VolumeMount {
            sub_path: Some("../../etc".into()),
            ..volume_mount("certs", "/certs")
        }]
    });
    assert_eq!(verdict(&escape), Some("mount-path"));
}

#[test]
fn no_mount_may_cover_a_scratch_directory_even_under_an_allowed_root() {
    let a = action::<Backup>(
        &BACKUP.replace("mountPath: /certs/", "mountPath: /"),
        &global_settings(),
    );
    let request = build_request(&a, &observed(&a, STATE));
    let policy = Policy::for_action(&a);
    let origin = Origin {
        plugin: "tester",
        version: "1",
    };
    let over = with(|j| j.volume_mounts = vec![volume_mount("certs", "/")]);
    let err = check_plan(origin, &policy, &request, &over)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("rule mount-path") && err.contains("covers the scratch directory /k8up"),
        "{err}"
    );
    let beside = with(|j| j.volume_mounts = vec![volume_mount("certs", "/opt/certs")]);
    assert!(check_plan(origin, &policy, &request, &beside).is_ok());
}

#[test]
fn only_volumes_the_spec_declares_with_a_source_may_be_mounted() {
    assert_eq!(
        verdict(&with(
            |j| j.volume_mounts = vec![volume_mount("host-root", "/data/x")]
        )),
        Some("declared-volume")
    );
    assert_eq!(
        verdict(&with(
            |j| j.volume_mounts = vec![volume_mount("nothing", "/data/x")]
        )),
        Some("declared-volume")
    );
}

#[test]
fn only_secrets_the_spec_or_the_operator_names_may_be_referenced() {
    let stolen = with(|j| j.env = vec![secret("STOLEN", "database-admin", "password")]);
    assert_eq!(verdict(&stolen), Some("secret-reference"));
    let env_from = with(|j| j.env_from = vec![EnvFrom::Secret("database-admin".into())]);
    assert_eq!(verdict(&env_from), Some("secret-reference"));
    let unoffered = with(|j| {
        j.env = vec![secret(
            "RESTIC_PASSWORD",
            GLOBAL_CREDENTIALS_SECRET,
            "repo-password",
        )]
    });
    assert_eq!(
        verdict(&unoffered),
        Some("secret-reference"),
        "the spec names its own password"
    );
    let whole = with(|j| j.env_from = vec![EnvFrom::Secret(GLOBAL_CREDENTIALS_SECRET.into())]);
    assert_eq!(verdict(&whole), Some("secret-reference"));
}

#[test]
fn only_config_maps_the_spec_names_may_be_referenced() {
    let env = EnvVar {
        name: "X".into(),
        value: ValueSource::ConfigMapKey(KeyRef {
            name: "kube-root-ca.crt".into(),
            key: "ca.crt".into(),
            optional: false,
        }),
    };
    assert_eq!(
        verdict(&with(|j| j.env = vec![env])),
        Some("config-map-reference")
    );
    assert_eq!(
        verdict(&with(|j| j.env_from = vec![EnvFrom::ConfigMap("other".into())])),
        Some("config-map-reference")
    );
}

#[test]
fn credentials_may_not_be_literals() {
    for name in [
        "RESTIC_PASSWORD",
        "AWS_SECRET_ACCESS_KEY",
        "restore_secretaccesskey",
        "MY_API_TOKEN",
        "DB_PASSWORD",
    ] {
        assert_eq!(
            verdict(&with(|j| j.env = vec![literal(name, "hunter2")])),
            Some("literal-credential"),
            "{name}"
        );
    }
    assert_eq!(
        verdict(&with(|j| j.env = vec![literal("KEEP_DAILY", "14")])),
        None
    );
}

#[test]
fn env_names_and_keys_must_be_valid() {
    assert_eq!(
        verdict(&with(|j| j.env = vec![literal("A=B", "x")])),
        Some("env-name")
    );
    assert_eq!(
        verdict(&with(|j| j.env = vec![secret("X", "repo", "bad key")])),
        Some("env-name")
    );
}

#[test]
fn the_hosts_env_vars_are_the_hosts() {
    for name in HOST_ENV {
        assert_eq!(
            verdict(&with(|j| j.env = vec![literal(name, "x")])),
            Some("host-env"),
            "{name}"
        );
    }
}

#[test]
fn labels_annotations_and_node_selectors_use_valid_syntax() {
    assert_eq!(
        verdict(&with(|j| j.labels = vec![kv("a b", "x")])),
        Some("label-syntax")
    );
    assert_eq!(
        verdict(&with(|j| j.labels = vec![kv("a", "x y")])),
        Some("label-syntax")
    );
    assert_eq!(
        verdict(&with(
            |j| j.node_selector = vec![kv("kubernetes.io/hostname", &"n".repeat(64))]
        )),
        Some("label-syntax")
    );
    assert_eq!(
        verdict(&with(|j| j.annotations = vec![kv("/x", "y")])),
        Some("label-syntax")
    );
}

#[test]
fn the_hosts_identity_labels_cannot_be_set() {
    for key in [
        "k8upjob",
        "k8up.io/type",
        "k8up.io/owned-by",
        "k8up.io/repository-hash",
        "k8upjob/exclusive",
    ] {
        assert_eq!(
            verdict(&with(|j| j.labels = vec![kv(key, "x")])),
            Some("identity-label"),
            "{key}"
        );
    }
}

#[test]
fn tolerations_must_be_valid() {
    let t =
        |key: Option<&str>, operator: Option<&str>, value: Option<&str>, effect: Option<&str>, seconds| {
            super::super::types::Toleration {
                key: key.map(str::to_string),
                operator: operator.map(str::to_string),
                value: value.map(str::to_string),
                effect: effect.map(str::to_string),
                toleration_seconds: seconds,
            }
        };
    let cases = [
        (
            t(
                Some("dedicated"),
                Some("Equal"),
                Some("db"),
                Some("NoSchedule"),
                None,
            ),
            None,
        ),
        (t(None, Some("Exists"), None, None, None), None),
        (
            t(Some("k"), Some("Exists"), None, Some("NoExecute"), Some(30)),
            None,
        ),
        (
            t(Some("k"), Some("Sometimes"), None, None, None),
            Some("toleration"),
        ),
        (
            t(Some("k"), Some("Exists"), Some("v"), None, None),
            Some("toleration"),
        ),
        (t(None, Some("Equal"), Some("v"), None, None), Some("toleration")),
        (
            t(Some("k"), None, Some("v"), Some("NoSchedule"), Some(30)),
            Some("toleration"),
        ),
        (
            t(Some("k"), None, Some("v"), Some("Never"), None),
            Some("toleration"),
        ),
    ];
    for (toleration, expected) in cases {
        let description = format!("{toleration:?}");
        assert_eq!(
            verdict(&with(|j| j.tolerations = vec![toleration])),
            expected,
            "{description}"
        );
    }
}

#[test]
fn a_rejection_names_the_plugin_its_version_and_the_rule() {
    let (policy, request) = setup();
    let bad = with(|j| j.pvc_mounts = vec![pvc_mount("someone-elses", "/data/x")]);
    let origin = Origin {
        plugin: "tester",
        version: "1.2.3",
    };
    let message = check_plan(origin, &policy, &request, &bad)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        message,
        "plan of plugin tester 1.2.3 rejected by rule offered-pvc: job backup-nightly: mounts pvc \
         \"someone-elses\", which the host did not offer"
    );
}

#[test]
fn a_folder_restore_may_mount_its_pvc_at_restore() {
    let yaml = r#"
apiVersion: k8up.io/v1
kind: Restore
metadata: {name: r}
spec:
  restoreMethod: {folder: {claimName: data}}
"#;
    let a = action::<Restore>(yaml, &global_settings());
    let request = build_request(&a, &observed(&a, STATE));
    let origin = Origin {
        plugin: "tester",
        version: "1",
    };
    let ok = with(|j| j.pvc_mounts = vec![pvc_mount("data", "/restore")]);
    assert!(check_plan(origin, &Policy::for_action(&a), &request, &ok).is_ok());
    assert_eq!(
        Policy::for_action(&a).global_keys,
        ["repo-password", "access-key-id", "secret-access-key"]
    );
}

#[test]
fn every_rule_has_a_distinct_stable_name() {
    let mut names: Vec<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), Rule::ALL.len());
}
