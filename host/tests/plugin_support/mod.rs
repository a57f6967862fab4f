//! Shared by the plugin tests: builds the fixture plugins for wasm32-wasip2 once per test
//! binary, and makes plan requests.

// Helpers outside `#[test]` functions fail the calling test by panicking, like assertions do.
// Not every test binary uses every helper.
#![allow(clippy::expect_used, clippy::panic, dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use k8up::plugin::types::{
    Action, Backend, EnvVar, KeyRef, KeyValue, ObjectRef, PlanRequest, Pvc, Settings, ValueSource,
};

/// Every fixture crate under `plugins/hostile/`.
pub const FIXTURES: &[&str] = &[
    "well-behaved",
    "endless-loop",
    "memory-bomb",
    "panic",
    "foreign-pvc",
    "foreign-secret",
    "huge-plan",
    "wrong-version",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The directory the plugin builds land in.
pub fn plugin_out_dir() -> PathBuf {
    workspace_root().join("target/plugins/wasm32-wasip2/plugin")
}

/// Builds all fixtures (one cargo call, cached by cargo) and returns where they are.
fn build_fixtures() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace_root())
            .args(["build", "--target", "wasm32-wasip2", "--profile", "plugin"])
            .arg("--target-dir")
            .arg(workspace_root().join("target/plugins"));
        for f in FIXTURES {
            cmd.args(["-p", &format!("k8up-hostile-{f}")]);
        }
        // The outer cargo's flags would leak into the inner build and change its fingerprints.
        cmd.env_remove("RUSTFLAGS").env_remove("CARGO_ENCODED_RUSTFLAGS");
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "building the fixture plugins failed");
        plugin_out_dir()
    })
}

/// The component bytes of fixture `name` (e.g. `endless-loop`).
pub fn fixture(name: &str) -> Vec<u8> {
    let dir = build_fixtures();
    let file = dir.join(format!("k8up_hostile_{}.wasm", name.replace('-', "_")));
    std::fs::read(&file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()))
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: v.to_string(),
    }
}

/// The default operator settings, as the host would resolve them.
pub fn settings() -> Settings {
    Settings {
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
        prom_url: None,
        cluster_name: None,
        skip_snapshot_sync: false,
        extra: Vec::new(),
    }
}

/// A bound RWO PVC.
pub fn pvc(name: &str) -> Pvc {
    Pvc {
        name: name.to_string(),
        phase: "Bound".to_string(),
        access_modes: vec!["ReadWriteOnce".to_string()],
        labels: Vec::new(),
        annotations: Vec::new(),
        mounted_by: None,
        pv_node: None,
    }
}

fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: ValueSource::SecretKey(KeyRef {
            name: secret.to_string(),
            key: key.to_string(),
            optional: false,
        }),
    }
}

/// A backup request for Backup `default/nightly` offering `pvcs`, with an S3 backend whose
/// credentials live in Secret `backup-credentials` and password in `backup-repo`.
pub fn request(action: Action, pvcs: &[&str]) -> PlanRequest {
    PlanRequest {
        action,
        object: ObjectRef {
            namespace: "default".to_string(),
            name: "nightly".to_string(),
            uid: "3f0c2a52-96a4-4e86-9c5c-0d1f4fdc6b4a".to_string(),
            labels: vec![kv("app", "shop")],
            annotations: Vec::new(),
        },
        spec_json: r#"{"backend":{"s3":{"endpoint":"http://minio:9000","bucket":"backups"}}}"#.to_string(),
        backend: Backend {
            kind: "s3".to_string(),
            repository: "s3:http://minio:9000/backups".to_string(),
            env: vec![
                secret_env("RESTIC_PASSWORD", "backup-repo", "password"),
                secret_env("AWS_ACCESS_KEY_ID", "backup-credentials", "username"),
                secret_env("AWS_SECRET_ACCESS_KEY", "backup-credentials", "password"),
            ],
            env_from: Vec::new(),
            tls_args: Vec::new(),
            volume_mounts: Vec::new(),
        },
        settings: settings(),
        pvcs: pvcs.iter().map(|p| pvc(p)).collect(),
        pods: Vec::new(),
    }
}
