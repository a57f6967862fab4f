//! Job builder tests from YAML fixtures: whole Jobs as snapshots, the rules as sentences.

use super::*;
use crate::crd::{Backup, Check, Prune, Restore};
use crate::plugin::fixtures::{action, global_settings, settings};
use crate::plugin::types::{
    EnvFrom, EnvVar as PlanEnv, KeyRef, KeyValue, PvcMount, VolumeMount as PlanMount,
};

fn planned(suffix: &str) -> plan::Job {
    plan::Job {
        name_suffix: suffix.to_string(),
        args: Vec::new(),
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

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: value.to_string(),
    }
}

fn secret_env(name: &str, secret: &str, key: &str) -> PlanEnv {
    PlanEnv {
        name: name.to_string(),
        value: ValueSource::SecretKey(KeyRef {
            name: secret.to_string(),
            key: key.to_string(),
            optional: false,
        }),
    }
}

fn pod_spec(job: &Job) -> PodSpec {
    job.spec.clone().and_then(|s| s.template.spec).unwrap_or_default()
}

fn container(job: &Job) -> Container {
    pod_spec(job).containers.first().cloned().unwrap_or_default()
}

fn env_names(job: &Job) -> Vec<String> {
    container(job)
        .env
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.name)
        .collect()
}

const BACKUP: &str = r#"
apiVersion: k8up.io/v1
kind: Backup
metadata: {name: nightly}
spec:
  activeDeadlineSeconds: 3600
  resources: {requests: {cpu: 50m}}
  backend:
    repoPasswordSecretRef: {name: repo, key: password}
    rest: {url: 'https://rest:8000/shop', userSecretRef: {name: rest, key: user}, passwordSecretRef: {name: rest, key: pw}}
    envFrom: [{secretRef: {name: proxy}, prefix: PROXY_}]
    volumeMounts: [{name: ca, mountPath: /certs, readOnly: true}]
  volumes:
    - {name: ca, secret: {secretName: rest-ca}}
    - {name: unused}
"#;

fn backup_job() -> plan::Job {
    let mut j = planned("node-a");
    j.args = vec![
        "--tag".into(),
        "daily".into(),
        "--caCert".into(),
        "/certs/ca.crt".into(),
    ];
    j.env = vec![
        secret_env("RESTIC_PASSWORD", "repo", "password"),
        secret_env("USER", "rest", "user"),
        secret_env("PASSWORD", "rest", "pw"),
        PlanEnv {
            name: "BACKUP_DIR".into(),
            value: ValueSource::Literal("/data".into()),
        },
    ];
    j.env_from = vec![EnvFrom::Secret("proxy".into())];
    j.pvc_mounts = vec![
        PvcMount {
            claim_name: "db".into(),
            mount_path: "/data/db".into(),
            read_only: true,
        },
        PvcMount {
            claim_name: "uploads.v2".into(),
            mount_path: "/data/uploads.v2".into(),
            read_only: true,
        },
    ];
    j.volume_mounts = vec![PlanMount {
        name: "ca".into(),
        mount_path: "/certs".into(),
        read_only: true,
        sub_path: None,
    }];
    j.node_selector = vec![kv("kubernetes.io/hostname", "node-a")];
    j.tolerations = vec![crate::plugin::types::Toleration {
        key: Some("dedicated".into()),
        operator: Some("Equal".into()),
        value: Some("db".into()),
        effect: Some("NoSchedule".into()),
        toleration_seconds: None,
    }];
    j.labels = vec![kv("example.com/team", "shop")];
    j.annotations = vec![kv("example.com/planned-by", "k8up-backup")];
    j
}

#[test]
fn a_backup_job_has_everything_the_host_adds_around_the_plan() {
    let s = settings(&[
        "--image",
        "registry.example/k8up:v1",
        "--image-pull-secret",
        "pull",
        "--restic-options",
        "s3.storage-class=STANDARD_IA",
        "--global-memory-limit",
        "512Mi",
        "--global-cpu-request",
        "200m",
        "--globalrepopassword",
        "pw",
    ]);
    let a = action::<Backup>(BACKUP, &s);
    let job = build_job(&a, &backup_job(), None);
    insta::assert_yaml_snapshot!("backup_job", job);
}

#[test]
fn restic_repository_is_the_last_env_var_after_hostname_and_restic_options() {
    let s = settings(&[
        "--restic-options",
        "a=1",
        "--restic-options",
        "b=2",
        "--globalrepopassword",
        "pw",
    ]);
    let job = build_job(&action::<Backup>(BACKUP, &s), &backup_job(), None);
    let env = container(&job).env.unwrap_or_default();
    let names: Vec<&str> = env.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "RESTIC_PASSWORD",
            "USER",
            "PASSWORD",
            "BACKUP_DIR",
            "HOSTNAME",
            "RESTIC_OPTIONS",
            "RESTIC_REPOSITORY"
        ]
    );
    let value = |i: usize| env[i].value.clone().unwrap_or_default();
    assert_eq!(value(4), "shop");
    assert_eq!(value(5), "a=1,b=2");
    assert_eq!(value(6), "rest:https://$(USER):$(PASSWORD)@rest:8000/shop");
}

#[test]
fn args_start_with_the_var_dir() {
    let s = settings(&["--vardir", "/scratch", "--globalrepopassword", "pw"]);
    let job = build_job(&action::<Backup>(BACKUP, &s), &backup_job(), None);
    assert_eq!(
        container(&job).args.unwrap_or_default()[..4],
        ["--varDir", "/scratch", "--tag", "daily"]
    );
    let mounts = container(&job).volume_mounts.unwrap_or_default();
    assert!(
        mounts
            .iter()
            .any(|m| m.name == VAR_DIR_VOLUME && m.mount_path == "/scratch")
    );
}

#[test]
fn pods_run_as_non_root_unless_the_spec_says_otherwise() {
    let a = action::<Backup>(BACKUP, &global_settings());
    let job = build_job(&a, &planned(""), None);
    assert_eq!(pod_spec(&job).security_context, Some(pod_security_context()));
    assert_eq!(
        container(&job).security_context,
        Some(container_security_context())
    );

    let own = BACKUP.replace(
        "activeDeadlineSeconds: 3600",
        "podSecurityContext: {runAsUser: 0, fsGroup: 0}",
    );
    let job = build_job(&action::<Backup>(&own, &global_settings()), &planned(""), None);
    let context = pod_spec(&job).security_context.unwrap_or_default();
    assert_eq!(
        (context.run_as_user, context.fs_group, context.run_as_non_root),
        (Some(0), Some(0), None)
    );
    assert_eq!(
        container(&job).security_context,
        Some(container_security_context()),
        "the container still drops its capabilities"
    );
}

#[test]
fn backup_and_prune_run_as_the_executor_and_only_backups_get_the_backoff_limit() {
    let s = settings(&[
        "--globalrepopassword",
        "pw",
        "--globals3endpoint",
        "http://s3",
        "--globals3bucket",
        "b",
    ]);
    let spec = "spec: {}\n";
    let cases: Vec<(Job, Option<&str>, Option<i32>)> = vec![
        (
            build_job(
                &action::<Backup>(
                    &format!("kind: Backup\napiVersion: k8up.io/v1\nmetadata: {{name: x}}\n{spec}"),
                    &s,
                ),
                &planned(""),
                None,
            ),
            Some("pod-executor"),
            Some(6),
        ),
        (
            build_job(
                &action::<Prune>(
                    &format!("kind: Prune\napiVersion: k8up.io/v1\nmetadata: {{name: x}}\n{spec}"),
                    &s,
                ),
                &planned(""),
                None,
            ),
            Some("pod-executor"),
            None,
        ),
        (
            build_job(
                &action::<Check>(
                    &format!("kind: Check\napiVersion: k8up.io/v1\nmetadata: {{name: x}}\n{spec}"),
                    &s,
                ),
                &planned(""),
                None,
            ),
            None,
            None,
        ),
        (
            build_job(
                &action::<Restore>(
                    "kind: Restore\napiVersion: k8up.io/v1\nmetadata: {name: x}\nspec: {restoreMethod: {s3: {}}}\n",
                    &s,
                ),
                &planned(""),
                None,
            ),
            None,
            None,
        ),
    ];
    for (job, account, backoff) in cases {
        let name = job.metadata.name.clone().unwrap_or_default();
        assert_eq!(pod_spec(&job).service_account_name.as_deref(), account, "{name}");
        assert_eq!(job.spec.as_ref().and_then(|s| s.backoff_limit), backoff, "{name}");
        assert_eq!(
            pod_spec(&job).restart_policy.as_deref(),
            Some("OnFailure"),
            "{name}"
        );
    }
}

#[test]
fn pods_that_never_restart_fail_the_job_at_once_on_a_permanent_wrapper_failure() {
    let base = [
        "--globalrepopassword",
        "pw",
        "--globals3endpoint",
        "http://s3",
        "--globals3bucket",
        "b",
    ];
    let on_failure = build_job(&action::<Backup>(BACKUP, &settings(&base)), &planned(""), None);
    assert_eq!(
        on_failure
            .spec
            .as_ref()
            .and_then(|s| s.pod_failure_policy.clone()),
        None,
        "Kubernetes refuses a podFailurePolicy with restartPolicy OnFailure"
    );

    let mut never = base.to_vec();
    never.extend(["--restartpolicy", "Never"]);
    let job = build_job(&action::<Backup>(BACKUP, &settings(&never)), &planned(""), None);
    let policy = job
        .spec
        .as_ref()
        .and_then(|s| s.pod_failure_policy.clone())
        .unwrap();
    let fail = &policy.rules[0];
    assert_eq!(fail.action, "FailJob");
    let codes = fail.on_exit_codes.as_ref().unwrap();
    assert_eq!(
        codes.container_name.as_deref(),
        Some(container(&job).name.as_str())
    );
    assert_eq!(
        (codes.operator.as_str(), codes.values.as_slice()),
        ("In", &[78][..])
    );
    assert_eq!(policy.rules[1].action, "Ignore");
    assert_eq!(
        policy.rules[1].on_pod_conditions.as_ref().unwrap()[0].type_,
        "DisruptionTarget"
    );
}

#[test]
fn exclusive_jobs_carry_the_exclusive_label_and_names_get_the_suffix() {
    let a = action::<Backup>(BACKUP, &global_settings());
    let mut j = planned("");
    j.exclusive = true;
    let job = build_job(&a, &j, None);
    assert_eq!(job.metadata.name.as_deref(), Some("backup-nightly"));
    let labels = job.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get(LABEL_EXCLUSIVE).map(String::as_str), Some("true"));
    assert_eq!(labels.get("k8up.io/repository-hash").map(String::len), Some(63));
    assert_eq!(job_name(&a, "prebackup"), "backup-nightly-prebackup");
    assert!(
        !build_job(&a, &planned("x"), None)
            .metadata
            .labels
            .unwrap_or_default()
            .contains_key(LABEL_EXCLUSIVE)
    );
}

#[test]
fn a_pvc_whose_name_is_no_dns_label_gets_a_hashed_volume_name_and_one_volume_per_claim() {
    let a = action::<Backup>(BACKUP, &global_settings());
    let mut j = backup_job();
    j.pvc_mounts.push(PvcMount {
        claim_name: "db".into(),
        mount_path: "/data/db-again".into(),
        read_only: false,
    });
    let job = build_job(&a, &j, None);
    let volumes = pod_spec(&job).volumes.unwrap_or_default();
    let claims: Vec<(String, String, Option<bool>)> = volumes
        .iter()
        .filter_map(|v| {
            let pvc = v.persistent_volume_claim.as_ref()?;
            Some((v.name.clone(), pvc.claim_name.clone(), pvc.read_only))
        })
        .collect();
    assert_eq!(claims.len(), 2, "{claims:?}");
    assert_eq!(
        claims[0],
        ("db".into(), "db".into(), None),
        "one read-write mount makes the volume read-write"
    );
    assert!(
        claims[1].0.starts_with("pvc-") && claims[1].0.len() == 20,
        "{claims:?}"
    );
    assert_eq!(claims[1].1, "uploads.v2");
}

#[test]
fn env_from_keeps_the_prefix_the_spec_gave_it() {
    let job = build_job(&action::<Backup>(BACKUP, &global_settings()), &backup_job(), None);
    let env_from = container(&job).env_from.unwrap_or_default();
    assert_eq!(env_from.len(), 1);
    assert_eq!(env_from[0].prefix.as_deref(), Some("PROXY_"));
}

const POD_CONFIG: &str = r#"
apiVersion: k8up.io/v1
kind: PodConfig
metadata:
  name: k8up-pod-config
  annotations:
    example.com/team: storage
    kubectl.kubernetes.io/last-applied-configuration: '{"huge": "json"}'
  labels: {example.com/cost-center: "42", k8upjob: "false"}
spec:
  template:
    spec:
      containers:
        - name: backup
          image: evil/image
          env: [{name: FOO, value: bar}]
          securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true}
          volumeMounts:
            - {name: cache, mountPath: /.cache}
            - {name: shadow, mountPath: /data/db}
        - name: sidecar
          image: busybox
      volumes:
        - {name: cache, emptyDir: {}}
        - {name: shadow, emptyDir: {}}
        - {name: ca, emptyDir: {}}
      tolerations: [{key: dedicated, operator: Equal, value: backup, effect: NoSchedule}]
      nodeSelector: {disk: ssd}
      priorityClassName: backups
"#;

#[test]
fn a_pod_config_is_merged_like_k8up_does_without_duplicate_mount_paths() {
    let pc: PodConfig = serde_yaml::from_str(POD_CONFIG).unwrap();
    let job = build_job(
        &action::<Backup>(BACKUP, &global_settings()),
        &backup_job(),
        Some(&pc),
    );
    let spec = pod_spec(&job);
    let c = container(&job);
    // K8up's e2e test 03: the PodConfig's annotation, env[0], allowPrivilegeEscalation, first mount, first volume.
    let template = job
        .spec
        .clone()
        .map(|s| s.template.metadata.unwrap_or_default())
        .unwrap_or_default();
    let annotations = template.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get("example.com/team").map(String::as_str),
        Some("storage")
    );
    assert!(!annotations.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
    let labels = template.labels.unwrap_or_default();
    assert_eq!(
        labels.get("example.com/cost-center").map(String::as_str),
        Some("42")
    );
    assert_eq!(
        labels.get("k8upjob").map(String::as_str),
        Some("true"),
        "identity labels win"
    );
    assert_eq!(env_names(&job)[0], "FOO");
    assert_eq!(
        env_names(&job).last().map(String::as_str),
        Some("RESTIC_REPOSITORY")
    );
    let security = c.security_context.clone().unwrap_or_default();
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    let mounts = c.volume_mounts.clone().unwrap_or_default();
    assert_eq!(mounts[0].mount_path, "/.cache");
    let volumes = spec.volumes.clone().unwrap_or_default();
    assert_eq!(volumes[0].name, "cache");

    // No two mounts at one path: the PodConfig's cache replaced k8up's, k8up's data mount beat the shadow.
    let mut paths: Vec<&str> = mounts.iter().map(|m| m.mount_path.as_str()).collect();
    let total = paths.len();
    paths.sort_unstable();
    paths.dedup();
    assert_eq!(paths.len(), total, "{paths:?}");
    assert!(!volumes.iter().any(|v| v.name == CACHE_VOLUME));
    assert!(
        mounts
            .iter()
            .any(|m| m.mount_path == "/data/db" && m.name == "db")
    );
    assert_eq!(
        volumes.iter().filter(|v| v.name == "ca").count(),
        1,
        "the spec's volume beats the PodConfig's of the same name"
    );
    assert!(volumes.iter().any(|v| v.name == "ca" && v.secret.is_some()));

    // Identity stays k8up's; other containers run beside it; lists are replaced, maps merged.
    assert_eq!(c.name, "backup");
    assert_eq!(c.image.as_deref(), Some("ghcr.io/k8up-io/k8up:latest"));
    assert_eq!(c.args.unwrap_or_default()[0], "--varDir");
    assert_eq!(
        c.resources.and_then(|r| r.requests).map(|r| r.len()),
        Some(1),
        "spec resources kept"
    );
    assert_eq!(spec.containers.len(), 2);
    let tolerations = spec.tolerations.unwrap_or_default();
    assert_eq!(tolerations.len(), 1);
    assert_eq!(tolerations[0].value.as_deref(), Some("backup"));
    let selector = spec.node_selector.unwrap_or_default();
    assert_eq!(selector.get("disk").map(String::as_str), Some("ssd"));
    assert_eq!(
        selector.get("kubernetes.io/hostname").map(String::as_str),
        Some("node-a")
    );
    assert_eq!(spec.priority_class_name.as_deref(), Some("backups"));
    assert_eq!(spec.security_context, Some(pod_security_context()));
}

#[test]
fn a_pod_config_may_set_its_own_service_account_and_security_context() {
    let pc: PodConfig = serde_yaml::from_str(
        "apiVersion: k8up.io/v1\nkind: PodConfig\nmetadata: {name: pc}\nspec:\n  template:\n    spec:\n      \
         serviceAccountName: custom\n      securityContext: {runAsUser: 1000}\n      containers: []\n",
    )
    .unwrap();
    let job = build_job(
        &action::<Backup>(BACKUP, &global_settings()),
        &planned(""),
        Some(&pc),
    );
    let spec = pod_spec(&job);
    assert_eq!(spec.service_account_name.as_deref(), Some("custom"));
    let context = spec.security_context.unwrap_or_default();
    assert_eq!(
        (context.run_as_user, context.run_as_non_root),
        (Some(1000), Some(true))
    );
}
