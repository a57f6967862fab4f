//! Table tests of the request builder from small YAML fixtures.

use super::super::fixtures::{action, global_settings, observed, settings};
use super::super::types::{EnvFrom, EnvVar, KeyRef, Toleration, ValueSource, VolumeMount};
use super::*;
use crate::crd::{Archive, Backup, Check, Restore};
use crate::operator::driver::credentials::{
    KEY_ACCESS_KEY_ID, KEY_REPO_PASSWORD, KEY_SECRET_ACCESS_KEY, offered_keys,
};
use crate::operator::driver::observe::Observed;

fn secret(env: &str, name: &str, key: &str) -> EnvVar {
    EnvVar {
        name: env.to_string(),
        value: ValueSource::SecretKey(KeyRef {
            name: name.to_string(),
            key: key.to_string(),
            optional: false,
        }),
    }
}

fn env_names(env: &[EnvVar]) -> Vec<&str> {
    env.iter().map(|e| e.name.as_str()).collect()
}

const S3_BACKUP: &str = r#"
apiVersion: k8up.io/v1
kind: Backup
metadata: {name: nightly, labels: {team: shop}}
spec:
  tags: [daily]
  backend:
    repoPasswordSecretRef: {name: repo, key: password}
    s3:
      endpoint: http://minio:9000/
      bucket: shop
      accessKeyIDSecretRef: {name: s3, key: id}
      secretAccessKeySecretRef: {name: s3, key: secret, optional: true}
    envFrom:
      - secretRef: {name: extra-env}
      - configMapRef: {name: extra-config}
        prefix: X_
"#;

#[test]
fn an_s3_backend_references_the_secrets_the_spec_names_and_nothing_global() {
    let a = action::<Backup>(S3_BACKUP, &global_settings());
    let req = build_request(&a, &Observed::default());
    assert_eq!(req.action, Action::Backup);
    assert_eq!(
        (req.object.namespace.as_str(), req.object.name.as_str()),
        ("shop", "nightly")
    );
    assert_eq!(req.object.labels, vec![kv("team", "shop")]);
    assert_eq!(req.backend.kind, "s3");
    assert_eq!(req.backend.repository, "s3:http://minio:9000/shop");
    let mut optional = secret("AWS_SECRET_ACCESS_KEY", "s3", "secret");
    if let ValueSource::SecretKey(r) = &mut optional.value {
        r.optional = true;
    }
    assert_eq!(
        req.backend.env,
        vec![
            secret("RESTIC_PASSWORD", "repo", "password"),
            secret("AWS_ACCESS_KEY_ID", "s3", "id"),
            optional
        ]
    );
    assert_eq!(
        req.backend.env_from,
        vec![
            EnvFrom::Secret("extra-env".into()),
            EnvFrom::ConfigMap("extra-config".into())
        ]
    );
    assert!(offered_keys(&a).is_empty(), "the spec names every credential");
    let spec: serde_json::Value = serde_json::from_str(&req.spec_json).unwrap();
    assert_eq!(spec["tags"][0], "daily");
}

#[test]
fn global_credentials_are_referenced_in_the_mirrored_secret_never_as_values() {
    let a = action::<Backup>(
        "apiVersion: k8up.io/v1\nkind: Backup\nmetadata: {name: b}\nspec: {}\n",
        &global_settings(),
    );
    let req = build_request(&a, &Observed::default());
    assert_eq!(req.backend.repository, "s3:http://minio:9000/global");
    assert_eq!(
        req.backend.env,
        vec![
            secret("RESTIC_PASSWORD", GLOBAL_CREDENTIALS_SECRET, KEY_REPO_PASSWORD),
            secret("AWS_ACCESS_KEY_ID", GLOBAL_CREDENTIALS_SECRET, KEY_ACCESS_KEY_ID),
            secret(
                "AWS_SECRET_ACCESS_KEY",
                GLOBAL_CREDENTIALS_SECRET,
                KEY_SECRET_ACCESS_KEY
            ),
        ]
    );
    let everything = format!("{req:?}");
    for value in ["not-in-any-plan", "global-id", "global-secret"] {
        assert!(!everything.contains(value), "the request holds {value}");
    }
}

#[test]
fn each_storage_type_brings_its_credential_variables() {
    // (backend YAML, repository, env var names after RESTIC_PASSWORD)
    let cases: Vec<(&str, &str, Vec<&str>)> = vec![
        (
            "gcs: {bucket: g, projectIDSecretRef: {name: c, key: p}, accessTokenSecretRef: {name: c, key: t}}",
            "gs:g:/",
            vec!["GOOGLE_PROJECT_ID", "GOOGLE_ACCESS_TOKEN"],
        ),
        (
            "azure: {container: c, accountNameSecretRef: {name: c, key: n}, accountKeySecretRef: {name: c, key: k}}",
            "azure:c:/",
            vec!["AZURE_ACCOUNT_NAME", "AZURE_ACCOUNT_KEY"],
        ),
        (
            "b2: {bucket: b, path: /p, accountIDSecretRef: {name: c, key: i}, accountKeySecretRef: {name: c, key: k}}",
            "b2:b:/p",
            vec!["B2_ACCOUNT_ID", "B2_ACCOUNT_KEY"],
        ),
        (
            "rest: {url: 'https://rest:8000/r', userSecretRef: {name: c, key: u}, passwordSecretReg: {name: c, key: p}}",
            "rest:https://$(USER):$(PASSWORD)@rest:8000/r",
            vec!["USER", "PASSWORD"],
        ),
        ("swift: {container: s, path: /x}", "swift:s:/x", vec![]),
        ("local: {mountPath: /repo}", "/repo", vec![]),
    ];
    for (backend, repository, names) in cases {
        let yaml = format!(
            "apiVersion: k8up.io/v1\nkind: Check\nmetadata: {{name: c}}\nspec:\n  backend:\n    \
             repoPasswordSecretRef: {{name: repo, key: pw}}\n    {backend}\n"
        );
        let a = action::<Check>(&yaml, &global_settings());
        let req = build_request(&a, &Observed::default());
        assert_eq!(req.backend.repository, repository, "{backend}");
        let mut expected = vec!["RESTIC_PASSWORD"];
        expected.extend(names);
        assert_eq!(env_names(&req.backend.env), expected, "{backend}");
        assert!(
            req.backend
                .env
                .iter()
                .all(|e| matches!(e.value, ValueSource::SecretKey(_))),
            "{backend}"
        );
        assert!(
            offered_keys(&a).is_empty(),
            "{backend}: no global S3 keys for other storage types"
        );
    }
}

#[test]
fn tls_options_and_backend_volume_mounts_reach_the_backend_record() {
    let yaml = r#"
apiVersion: k8up.io/v1
kind: Check
metadata: {name: c}
spec:
  backend:
    repoPasswordSecretRef: {name: repo, key: pw}
    rest: {url: 'https://rest/'}
    tlsOptions: {caCert: /certs/ca.crt, clientCert: /certs/tls.crt, clientKey: /certs/tls.key}
    volumeMounts:
      - {name: certs, mountPath: /certs, readOnly: true}
  volumes:
    - name: certs
      secret: {secretName: rest-tls}
"#;
    let req = build_request(&action::<Check>(yaml, &global_settings()), &Observed::default());
    assert_eq!(
        req.backend.tls_args,
        [
            "--caCert",
            "/certs/ca.crt",
            "--clientCert",
            "/certs/tls.crt",
            "--clientKey",
            "/certs/tls.key"
        ]
    );
    assert_eq!(
        req.backend.volume_mounts,
        vec![VolumeMount {
            name: "certs".into(),
            mount_path: "/certs".into(),
            read_only: true,
            sub_path: None
        }]
    );
    // A client certificate without its key is not passed on (K8up).
    let half = yaml.replace(", clientKey: /certs/tls.key", "");
    let req = build_request(&action::<Check>(&half, &global_settings()), &Observed::default());
    assert_eq!(req.backend.tls_args, ["--caCert", "/certs/ca.crt"]);
}

#[test]
fn the_settings_record_carries_the_operator_settings_and_exactly_the_documented_extra_keys() {
    let s = settings(&[
        "--globals3endpoint",
        "http://minio:9000",
        "--globals3bucket",
        "b",
        "--globalrepopassword",
        "pw",
        "--globalrestores3endpoint",
        "https://archive.example:9000",
        "--globalrestores3bucket",
        "restores",
        "--globalrestores3accesskeyid",
        "rid",
        "--globalrestores3secretaccesskey",
        "rsecret",
        "--insecure-allow-podexec-spdy-fallback",
        "--datapath",
        "/volumes",
        "--annotation",
        "example.com/backup",
        "--skip-pvcs-without-annotation",
        "--enable-relaxed-scheduling",
    ]);
    let restore =
        "apiVersion: k8up.io/v1\nkind: Restore\nmetadata: {name: r}\nspec:\n  restoreMethod: {s3: {}}\n";
    let record = settings_record(&action::<Restore>(restore, &s));
    let extra: Vec<(&str, &str)> = record
        .extra
        .iter()
        .map(|p| (p.key.as_str(), p.value.as_str()))
        .collect();
    assert_eq!(
        extra,
        [
            ("restore-s3-endpoint", "https://archive.example:9000/"),
            ("restore-s3-bucket", "restores"),
            (
                "restore-s3-access-key-id-secret",
                "k8up-global-credentials/restore-access-key-id"
            ),
            (
                "restore-s3-secret-access-key-secret",
                "k8up-global-credentials/restore-secret-access-key"
            ),
            ("insecure-allow-podexec-spdy-fallback", "true"),
        ]
    );
    assert!(!format!("{record:?}").contains("rsecret"));
    assert_eq!(record.backup_annotation, "example.com/backup");
    assert_eq!(record.container_annotation, "k8up.io/backupcommand-container");
    assert_eq!(record.hostname_annotation, "k8up.io/hostname");
    assert_eq!(record.data_path, "/volumes");
    assert_eq!(record.var_dir, "/k8up");
    assert!(record.skip_without_annotation && record.relaxed_scheduling);
    assert_eq!(record.cluster_name.as_deref(), Some("default"));

    // A Backup is never offered the restore target's credentials.
    let backup = "apiVersion: k8up.io/v1\nkind: Backup\nmetadata: {name: b}\nspec: {}\n";
    let record = settings_record(&action::<Backup>(backup, &s));
    let keys: Vec<&str> = record.extra.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "restore-s3-endpoint",
            "restore-s3-bucket",
            "insecure-allow-podexec-spdy-fallback"
        ]
    );
}

const WORKLOADS: &str = r#"
kind: PersistentVolumeClaim
apiVersion: v1
metadata: {name: db, labels: {app: shop}, annotations: {k8up.io/backup: "true"}}
spec: {accessModes: [ReadWriteOnce], volumeName: pv-db}
status: {phase: Bound}
---
kind: PersistentVolumeClaim
apiVersion: v1
metadata: {name: cache, labels: {app: cache}}
spec: {accessModes: [ReadWriteMany]}
status: {phase: Bound}
---
kind: PersistentVolumeClaim
apiVersion: v1
metadata: {name: elsewhere, namespace: other}
spec: {accessModes: [ReadWriteOnce]}
status: {phase: Bound}
---
kind: PersistentVolumeClaim
apiVersion: v1
metadata: {name: fresh, labels: {app: shop}}
spec: {accessModes: [ReadWriteOnce], volumeName: pv-fresh}
---
kind: PersistentVolume
apiVersion: v1
metadata: {name: pv-fresh}
spec:
  nodeAffinity:
    required:
      nodeSelectorTerms:
        - matchExpressions:
            - {key: topology.kubernetes.io/zone, operator: In, values: [z1]}
            - {key: kubernetes.io/hostname, operator: In, values: [node-b, node-c]}
---
kind: Pod
apiVersion: v1
metadata:
  name: db-0
  uid: uid-db-0
  labels: {app: shop}
  annotations: {k8up.io/backupcommand: pg_dumpall}
  ownerReferences: [{apiVersion: apps/v1, kind: StatefulSet, name: db, uid: uid-sts, controller: true}]
spec:
  nodeName: node-a
  containers: [{name: postgres}, {name: exporter}]
  tolerations: [{key: dedicated, operator: Equal, value: db, effect: NoSchedule}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: db}}]
status: {phase: Running}
---
kind: Pod
apiVersion: v1
metadata: {name: db-old, labels: {app: shop}}
spec:
  nodeName: node-z
  containers: [{name: postgres}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: db}}]
status: {phase: Succeeded}
---
kind: Pod
apiVersion: v1
metadata: {name: backup-nightly-x, labels: {k8upjob: "true", app: shop}}
spec:
  nodeName: node-q
  containers: [{name: backup}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: cache}}]
status: {phase: Running}
---
kind: Pod
apiVersion: v1
metadata: {name: web-1, labels: {app: web}}
spec: {nodeName: node-a, containers: [{name: nginx}]}
status: {phase: Running}
---
kind: Pod
apiVersion: v1
metadata:
  name: dump-mine
  labels: {k8up.io/preBackupPod: mysqldump, k8up.io/ownerBackupUID: 0e6f7a1c-5b8e-4c55-9d62-6f3c6c1a1b2c}
spec: {containers: [{name: mysqldump}]}
status: {phase: Running}
---
kind: Pod
apiVersion: v1
metadata:
  name: dump-theirs
  labels: {k8up.io/preBackupPod: mysqldump, k8up.io/ownerBackupUID: someone-else}
spec: {containers: [{name: mysqldump}]}
status: {phase: Running}
"#;

#[test]
fn backup_candidates_carry_mounting_pod_pv_node_and_pre_backup_pod_facts() {
    let a = action::<Backup>(
        "apiVersion: k8up.io/v1\nkind: Backup\nmetadata: {name: b}\nspec: {}\n",
        &global_settings(),
    );
    let req = build_request(&a, &observed(&a, WORKLOADS));
    let names: Vec<&str> = req.pvcs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["cache", "db", "fresh"],
        "sorted; other namespaces left out"
    );
    let db = &req.pvcs[1];
    assert_eq!(db.phase, "Bound");
    assert_eq!(db.access_modes, ["ReadWriteOnce"]);
    assert_eq!(db.annotations, vec![kv("k8up.io/backup", "true")]);
    let mount = db.mounted_by.clone().unwrap();
    assert_eq!((mount.name.as_str(), mount.node.as_str()), ("db-0", "node-a"));
    assert_eq!(
        mount.tolerations,
        vec![Toleration {
            key: Some("dedicated".into()),
            operator: Some("Equal".into()),
            value: Some("db".into()),
            effect: Some("NoSchedule".into()),
            toleration_seconds: None
        }]
    );
    assert_eq!(
        req.pvcs[0].mounted_by, None,
        "a k8up job pod does not count as mounting"
    );
    assert_eq!(req.pvcs[2].phase, "Pending", "no status yet");
    assert_eq!(req.pvcs[2].pv_node.as_deref(), Some("node-b"));
    assert_eq!(db.pv_node, None, "its PV is not known");

    let pods: Vec<&str> = req.pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(pods, ["db-0", "db-old", "dump-mine", "web-1"]);
    let db0 = &req.pods[0];
    assert_eq!(db0.containers, ["postgres", "exporter"]);
    assert_eq!(db0.owner_uid.as_deref(), Some("uid-sts"));
    assert_eq!(db0.node.as_deref(), Some("node-a"));
    assert_eq!(db0.phase, "Running");
    assert_eq!(req.pods[2].pre_backup_pod.as_deref(), Some("mysqldump"));
}

#[test]
fn label_selectors_narrow_pvcs_and_pods_but_keep_this_backups_pre_backup_pods() {
    let yaml = r#"
apiVersion: k8up.io/v1
kind: Backup
metadata: {name: b}
spec:
  labelSelectors:
    - matchLabels: {app: shop}
    - matchExpressions: [{key: app, operator: In, values: [web]}]
"#;
    let a = action::<Backup>(yaml, &global_settings());
    let req = build_request(&a, &observed(&a, WORKLOADS));
    let pvcs: Vec<&str> = req.pvcs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(pvcs, ["db", "fresh"]);
    let pods: Vec<&str> = req.pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(pods, ["db-0", "db-old", "dump-mine", "web-1"]);
}

#[test]
fn a_folder_restore_is_offered_only_its_target_pvc_and_other_kinds_nothing() {
    let restore = r#"
apiVersion: k8up.io/v1
kind: Restore
metadata: {name: r}
spec:
  restoreMethod: {folder: {claimName: cache}}
"#;
    let a = action::<Restore>(restore, &global_settings());
    let req = build_request(&a, &observed(&a, WORKLOADS));
    let pvcs: Vec<&str> = req.pvcs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(pvcs, ["cache"]);
    assert!(req.pods.is_empty());
    assert_eq!(req.action, Action::Restore);

    let archive = "apiVersion: k8up.io/v1\nkind: Archive\nmetadata: {name: a}\nspec: {}\n";
    let a = action::<Archive>(archive, &global_settings());
    let req = build_request(&a, &observed(&a, WORKLOADS));
    assert!(req.pvcs.is_empty() && req.pods.is_empty());
}

#[test]
fn the_same_state_in_another_order_gives_the_same_request() {
    let a = action::<Backup>(
        "apiVersion: k8up.io/v1\nkind: Backup\nmetadata: {name: b}\nspec: {}\n",
        &global_settings(),
    );
    let forward = observed(&a, WORKLOADS);
    let mut backward = forward.clone();
    backward.pvcs.reverse();
    backward.pods.reverse();
    assert_eq!(build_request(&a, &forward), build_request(&a, &backward));
}
