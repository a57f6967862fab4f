//! Fixtures for native unit tests of plugins: a request with K8up's default settings, PVCs and pods.
//!
//! These build plain values (no host, no cluster), so a plugin's `plan` can be called directly.

use crate::env::env_secret;
use crate::meta::kv;
use crate::{Action, Backend, MountingPod, ObjectRef, PlanRequest, Pod, Pvc, Settings, Toleration};

/// The operator settings with K8up's default values.
pub fn default_settings() -> Settings {
    Settings {
        backup_annotation: "k8up.io/backup".into(),
        backup_command_annotation: "k8up.io/backupcommand".into(),
        file_extension_annotation: "k8up.io/file-extension".into(),
        container_annotation: "k8up.io/backupcommand-container".into(),
        restic_args_annotation: "k8up.io/backup-restic-args".into(),
        hostname_annotation: "k8up.io/hostname".into(),
        skip_without_annotation: false,
        relaxed_scheduling: false,
        data_path: "/data".into(),
        var_dir: "/k8up".into(),
        stats_url: None,
        prom_url: None,
        cluster_name: None,
        skip_snapshot_sync: false,
        extra: Vec::new(),
    }
}

/// An S3 backend with password and keys from Secrets.
pub fn s3_backend() -> Backend {
    Backend {
        kind: "s3".into(),
        repository: "s3:http://minio:9000/backups".into(),
        env: vec![
            env_secret("RESTIC_PASSWORD", "backup-repo", "password"),
            env_secret("AWS_ACCESS_KEY_ID", "minio-credentials", "username"),
            env_secret("AWS_SECRET_ACCESS_KEY", "minio-credentials", "password"),
        ],
        env_from: Vec::new(),
        tls_args: Vec::new(),
        volume_mounts: Vec::new(),
    }
}

/// A request for `action` on object `ns/obj` with spec `{}`, the S3 backend, default settings and
/// nothing observed.
pub fn request(action: Action) -> PlanRequest {
    PlanRequest {
        action,
        object: ObjectRef {
            namespace: "ns".into(),
            name: "obj".into(),
            uid: "00000000-0000-0000-0000-000000000001".into(),
            labels: Vec::new(),
            annotations: Vec::new(),
        },
        spec_json: "{}".into(),
        backend: s3_backend(),
        settings: default_settings(),
        pvcs: Vec::new(),
        pods: Vec::new(),
    }
}

impl PlanRequest {
    /// Replaces the spec (test fixture helper).
    pub fn with_spec(mut self, spec_json: &str) -> PlanRequest {
        self.spec_json = spec_json.to_string();
        self
    }

    /// Adds candidate PVCs (test fixture helper).
    pub fn with_pvcs(mut self, pvcs: impl IntoIterator<Item = Pvc>) -> PlanRequest {
        self.pvcs.extend(pvcs);
        self
    }

    /// Adds candidate pods (test fixture helper).
    pub fn with_pods(mut self, pods: impl IntoIterator<Item = Pod>) -> PlanRequest {
        self.pods.extend(pods);
        self
    }
}

/// A Bound, ReadWriteOnce PVC without labels, annotations, mounting pod or PV node.
pub fn pvc(name: &str) -> Pvc {
    Pvc {
        name: name.into(),
        phase: "Bound".into(),
        access_modes: vec!["ReadWriteOnce".into()],
        labels: Vec::new(),
        annotations: Vec::new(),
        mounted_by: None,
        pv_node: None,
    }
}

impl Pvc {
    /// Sets the access modes (test fixture helper).
    pub fn with_access_modes(mut self, modes: &[&str]) -> Pvc {
        self.access_modes = modes.iter().map(|m| m.to_string()).collect();
        self
    }

    /// Sets the phase (test fixture helper).
    pub fn with_phase(mut self, phase: &str) -> Pvc {
        self.phase = phase.into();
        self
    }

    /// Adds an annotation (test fixture helper).
    pub fn with_annotation(mut self, key: &str, value: &str) -> Pvc {
        self.annotations.push(kv(key, value));
        self
    }

    /// Adds a label (test fixture helper).
    pub fn with_label(mut self, key: &str, value: &str) -> Pvc {
        self.labels.push(kv(key, value));
        self
    }

    /// Marks the PVC as mounted by a running pod on `node` (test fixture helper).
    pub fn mounted_by(mut self, pod: &str, node: &str, tolerations: Vec<Toleration>) -> Pvc {
        self.mounted_by = Some(MountingPod {
            name: pod.into(),
            node: node.into(),
            tolerations,
        });
        self
    }

    /// Sets the node of the bound PV's node affinity (test fixture helper).
    pub fn with_pv_node(mut self, node: &str) -> Pvc {
        self.pv_node = Some(node.into());
        self
    }
}

/// A Running pod with one container `app`, no owner and no annotations.
pub fn pod(name: &str) -> Pod {
    Pod {
        name: name.into(),
        uid: format!("uid-{name}"),
        phase: "Running".into(),
        node: Some("node-1".into()),
        labels: Vec::new(),
        annotations: Vec::new(),
        containers: vec!["app".into()],
        owner_uid: None,
        pre_backup_pod: None,
    }
}

impl Pod {
    /// Adds an annotation (test fixture helper).
    pub fn with_annotation(mut self, key: &str, value: &str) -> Pod {
        self.annotations.push(kv(key, value));
        self
    }

    /// Sets the first owner reference's UID (test fixture helper).
    pub fn owned_by(mut self, owner_uid: &str) -> Pod {
        self.owner_uid = Some(owner_uid.into());
        self
    }

    /// Sets the phase (test fixture helper).
    pub fn with_phase(mut self, phase: &str) -> Pod {
        self.phase = phase.into();
        self
    }

    /// Sets the container names (test fixture helper).
    pub fn with_containers(mut self, containers: &[&str]) -> Pod {
        self.containers = containers.iter().map(|c| c.to_string()).collect();
        self
    }
}

/// A toleration `key=value:effect` with operator `Equal` (test fixture helper).
pub fn toleration(key: &str, value: &str, effect: &str) -> Toleration {
    Toleration {
        key: Some(key.into()),
        operator: Some("Equal".into()),
        value: Some(value.into()),
        effect: Some(effect.into()),
        toleration_seconds: None,
    }
}
