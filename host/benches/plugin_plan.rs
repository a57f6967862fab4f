//! Plan time of each embedded built-in through the host (warm: compiled once, a fresh `Store` and instance
//! per call, request lowered and plan lifted) against the same planning code called natively, and the
//! ratio. Goal: at most 20x. Run: `cargo bench --workspace --bench plugin_plan` (prints a table; no
//! assertion, timing goals live here and not in tests).

// A benchmark binary: failing to set up is a crash with the reason, like a test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use k8up::crd::JobType;
use k8up::plugin::types as host;
use k8up::plugin::{Builtins, Limits, PluginEngine};
use k8up_plugin_sdk as sdk;

/// One row: the built-in's action, its native planning function, and a realistic request.
struct Case {
    job_type: JobType,
    native: fn(&sdk::PlanRequest) -> Result<sdk::JobPlan, sdk::PluginError>,
    request: fn() -> host::PlanRequest,
}

/// Add a row per embedded built-in.
const CASES: &[Case] = &[
    Case {
        job_type: JobType::Backup,
        native: <k8up_plugin_backup::BackupPlugin as sdk::Plugin>::plan,
        request: backup_request,
    },
    Case {
        job_type: JobType::Prune,
        native: <k8up_plugin_prune::PrunePlugin as sdk::Plugin>::plan,
        request: prune_request,
    },
    Case {
        job_type: JobType::Check,
        native: <k8up_plugin_check::CheckPlugin as sdk::Plugin>::plan,
        request: check_request,
    },
    Case {
        job_type: JobType::Archive,
        native: <k8up_plugin_archive::ArchivePlugin as sdk::Plugin>::plan,
        request: archive_request,
    },
    Case {
        job_type: JobType::Restore,
        native: <k8up_plugin_restore::RestorePlugin as sdk::Plugin>::plan,
        request: restore_request,
    },
];

const WARMUP: usize = 200;
const SAMPLES: usize = 2000;

fn main() {
    let engine = PluginEngine::new(Limits::default()).unwrap();
    let builtins = Builtins::load(&engine).unwrap();
    println!(
        "{:<10} {:>6} {:>6} {:>14} {:>14} {:>8}",
        "built-in", "pvcs", "jobs", "wasm median", "native median", "ratio"
    );
    for case in CASES {
        let plugin = builtins
            .get(case.job_type)
            .unwrap_or_else(|| panic!("no built-in for {}", case.job_type));
        let request = (case.request)();
        let native_request = to_sdk(&request);
        let wasm_plan = engine.plan(plugin, &request).unwrap();
        let native_plan = (case.native)(&native_request).unwrap();
        assert_eq!(
            wasm_plan.jobs.len(),
            native_plan.jobs.len(),
            "the component and the native code disagree"
        );
        let wasm = median(|| {
            black_box(engine.plan(plugin, black_box(&request)).unwrap());
        });
        let native = median(|| {
            black_box((case.native)(black_box(&native_request)).unwrap());
        });
        println!(
            "{:<10} {:>6} {:>6} {:>11.1} µs {:>11.1} µs {:>7.1}x",
            case.job_type.as_str(),
            request.pvcs.len(),
            wasm_plan.jobs.len(),
            micros(wasm),
            micros(native),
            wasm.as_secs_f64() / native.as_secs_f64().max(1e-12)
        );
    }
    println!(
        "(goal: wasm/native <= 20x; {SAMPLES} samples after {WARMUP} warm-up calls, fresh Store per call)"
    );
}

fn median(mut f: impl FnMut()) -> Duration {
    for _ in 0..WARMUP {
        f();
    }
    let mut samples: Vec<Duration> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    samples.sort_unstable();
    samples[SAMPLES / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn kv(key: &str, value: &str) -> host::KeyValue {
    host::KeyValue {
        key: key.to_string(),
        value: value.to_string(),
    }
}

fn secret(name: &str, secret: &str, key: &str) -> host::EnvVar {
    host::EnvVar {
        name: name.to_string(),
        value: host::ValueSource::SecretKey(host::KeyRef {
            name: secret.to_string(),
            key: key.to_string(),
            optional: false,
        }),
    }
}

/// A namespace with 20 PVCs (a third mounted by running pods on three nodes, some with restic args) and
/// 10 pods, two of them with a backup command: the kind of request a Backup of a real app gets.
fn backup_request() -> host::PlanRequest {
    let pvcs = (0..20)
        .map(|i| host::Pvc {
            name: format!("data-{i}"),
            phase: "Bound".to_string(),
            access_modes: vec![
                if i % 4 == 0 {
                    "ReadWriteMany"
                } else {
                    "ReadWriteOnce"
                }
                .to_string(),
            ],
            labels: vec![kv("app", "shop")],
            annotations: if i % 5 == 0 {
                vec![kv("k8up.io/backup-restic-args", r#"["--exclude","*.tmp"]"#)]
            } else {
                Vec::new()
            },
            mounted_by: (i % 3 == 0).then(|| host::MountingPod {
                name: format!("app-{i}"),
                node: format!("node-{}", i % 3),
                tolerations: Vec::new(),
            }),
            pv_node: Some(format!("node-{}", i % 3)),
        })
        .collect();
    let pods = (0..10)
        .map(|i| host::Pod {
            name: format!("app-{i}"),
            uid: format!("uid-{i}"),
            phase: "Running".to_string(),
            node: Some(format!("node-{}", i % 3)),
            labels: vec![kv("app", "shop")],
            annotations: if i < 2 {
                vec![kv("k8up.io/backupcommand", "pg_dumpall")]
            } else {
                Vec::new()
            },
            containers: vec!["app".to_string()],
            owner_uid: Some(format!("owner-{i}")),
            pre_backup_pod: None,
        })
        .collect();
    host::PlanRequest {
        action: host::Action::Backup,
        object: host::ObjectRef {
            namespace: "shop".to_string(),
            name: "nightly".to_string(),
            uid: "5e0a".to_string(),
            labels: Vec::new(),
            annotations: Vec::new(),
        },
        spec_json: r#"{"tags":["daily"],"backend":{"s3":{"endpoint":"http://minio:9000","bucket":"shop"}}}"#
            .to_string(),
        backend: host::Backend {
            kind: "s3".to_string(),
            repository: "s3:http://minio:9000/shop".to_string(),
            env: vec![
                secret("RESTIC_PASSWORD", "repo", "password"),
                secret("AWS_ACCESS_KEY_ID", "s3", "id"),
                secret("AWS_SECRET_ACCESS_KEY", "s3", "secret"),
            ],
            env_from: Vec::new(),
            tls_args: Vec::new(),
            volume_mounts: Vec::new(),
        },
        settings: host::Settings {
            backup_annotation: "k8up.io/backup".to_string(),
            backup_command_annotation: "k8up.io/backupcommand".to_string(),
            file_extension_annotation: "k8up.io/file-extension".to_string(),
            container_annotation: "k8up.io/backupcommand-container".to_string(),
            restic_args_annotation: "k8up.io/backup-restic-args".to_string(),
            hostname_annotation: "k8up.io/hostname".to_string(),
            skip_without_annotation: false,
            relaxed_scheduling: false,
            data_path: "/data".to_string(),
            var_dir: "/k8up".to_string(),
            stats_url: None,
            prom_url: Some("http://pushgateway:9091/".to_string()),
            cluster_name: Some("default".to_string()),
            skip_snapshot_sync: false,
            extra: vec![kv("insecure-allow-podexec-spdy-fallback", "false")],
        },
        pvcs,
        pods,
    }
}

// The same request in the SDK's (guest-side) types, for the native call.

fn to_sdk(r: &host::PlanRequest) -> sdk::PlanRequest {
    sdk::PlanRequest {
        action: action(r.action),
        object: sdk::ObjectRef {
            namespace: r.object.namespace.clone(),
            name: r.object.name.clone(),
            uid: r.object.uid.clone(),
            labels: kvs(&r.object.labels),
            annotations: kvs(&r.object.annotations),
        },
        spec_json: r.spec_json.clone(),
        backend: sdk::Backend {
            kind: r.backend.kind.clone(),
            repository: r.backend.repository.clone(),
            env: r.backend.env.iter().map(env).collect(),
            env_from: r
                .backend
                .env_from
                .iter()
                .map(|e| match e {
                    host::EnvFrom::Secret(n) => sdk::EnvFrom::Secret(n.clone()),
                    host::EnvFrom::ConfigMap(n) => sdk::EnvFrom::ConfigMap(n.clone()),
                })
                .collect(),
            tls_args: r.backend.tls_args.clone(),
            volume_mounts: r
                .backend
                .volume_mounts
                .iter()
                .map(|m| sdk::VolumeMount {
                    name: m.name.clone(),
                    mount_path: m.mount_path.clone(),
                    read_only: m.read_only,
                    sub_path: m.sub_path.clone(),
                })
                .collect(),
        },
        settings: {
            let s = &r.settings;
            sdk::Settings {
                backup_annotation: s.backup_annotation.clone(),
                backup_command_annotation: s.backup_command_annotation.clone(),
                file_extension_annotation: s.file_extension_annotation.clone(),
                container_annotation: s.container_annotation.clone(),
                restic_args_annotation: s.restic_args_annotation.clone(),
                hostname_annotation: s.hostname_annotation.clone(),
                skip_without_annotation: s.skip_without_annotation,
                relaxed_scheduling: s.relaxed_scheduling,
                data_path: s.data_path.clone(),
                var_dir: s.var_dir.clone(),
                stats_url: s.stats_url.clone(),
                prom_url: s.prom_url.clone(),
                cluster_name: s.cluster_name.clone(),
                skip_snapshot_sync: s.skip_snapshot_sync,
                extra: kvs(&s.extra),
            }
        },
        pvcs: r
            .pvcs
            .iter()
            .map(|p| sdk::Pvc {
                name: p.name.clone(),
                phase: p.phase.clone(),
                access_modes: p.access_modes.clone(),
                labels: kvs(&p.labels),
                annotations: kvs(&p.annotations),
                mounted_by: p.mounted_by.as_ref().map(|m| sdk::MountingPod {
                    name: m.name.clone(),
                    node: m.node.clone(),
                    tolerations: m.tolerations.iter().map(toleration).collect(),
                }),
                pv_node: p.pv_node.clone(),
            })
            .collect(),
        pods: r
            .pods
            .iter()
            .map(|p| sdk::Pod {
                name: p.name.clone(),
                uid: p.uid.clone(),
                phase: p.phase.clone(),
                node: p.node.clone(),
                labels: kvs(&p.labels),
                annotations: kvs(&p.annotations),
                containers: p.containers.clone(),
                owner_uid: p.owner_uid.clone(),
                pre_backup_pod: p.pre_backup_pod.clone(),
            })
            .collect(),
    }
}

fn action(a: host::Action) -> sdk::Action {
    match a {
        host::Action::Backup => sdk::Action::Backup,
        host::Action::Prune => sdk::Action::Prune,
        host::Action::Check => sdk::Action::Check,
        host::Action::Archive => sdk::Action::Archive,
        host::Action::Restore => sdk::Action::Restore,
    }
}

fn kvs(pairs: &[host::KeyValue]) -> Vec<sdk::KeyValue> {
    pairs.iter().map(|p| sdk::kv(&p.key, &p.value)).collect()
}

fn key_ref(r: &host::KeyRef) -> sdk::KeyRef {
    sdk::KeyRef {
        name: r.name.clone(),
        key: r.key.clone(),
        optional: r.optional,
    }
}

fn env(e: &host::EnvVar) -> sdk::EnvVar {
    sdk::EnvVar {
        name: e.name.clone(),
        value: match &e.value {
            host::ValueSource::Literal(v) => sdk::ValueSource::Literal(v.clone()),
            host::ValueSource::SecretKey(r) => sdk::ValueSource::SecretKey(key_ref(r)),
            host::ValueSource::ConfigMapKey(r) => sdk::ValueSource::ConfigMapKey(key_ref(r)),
        },
    }
}

fn toleration(t: &host::Toleration) -> sdk::Toleration {
    sdk::Toleration {
        key: t.key.clone(),
        operator: t.operator.clone(),
        value: t.value.clone(),
        effect: t.effect.clone(),
        toleration_seconds: t.toleration_seconds,
    }
}

/// The backup request's object, backend and settings, for another action with its own spec and PVCs.
fn action_request(action: host::Action, spec_json: &str, pvcs: Vec<host::Pvc>) -> host::PlanRequest {
    host::PlanRequest {
        action,
        spec_json: spec_json.to_string(),
        pvcs,
        pods: Vec::new(),
        ..backup_request()
    }
}

fn prune_request() -> host::PlanRequest {
    action_request(
        host::Action::Prune,
        r#"{"retention":{"keepLast":5,"keepDaily":14,"keepWithin":"2y5m7d3h","keepTags":["keep"],"tags":["daily"]}}"#,
        Vec::new(),
    )
}

fn check_request() -> host::PlanRequest {
    action_request(
        host::Action::Check,
        r#"{"promURL":"http://pushgateway:9091/","clusterName":"prod"}"#,
        Vec::new(),
    )
}

fn archive_request() -> host::PlanRequest {
    action_request(
        host::Action::Archive,
        r#"{"tags":["daily"],"restoreMethod":{"s3":{"endpoint":"http://minio:9000","bucket":"archive","accessKeyIDSecretRef":{"name":"s3","key":"id"},"secretAccessKeySecretRef":{"name":"s3","key":"secret"}}}}"#,
        Vec::new(),
    )
}

fn restore_request() -> host::PlanRequest {
    let target = backup_request().pvcs.remove(1);
    action_request(
        host::Action::Restore,
        &format!(
            r#"{{"restoreMethod":{{"folder":{{"claimName":"{}"}}}},"restoreTimeFilter":"2026-11"}}"#,
            target.name
        ),
        vec![target],
    )
}
