//! Request builder (pure): a validated action plus what the observe step read become the contract's
//! `plan-request`, the only thing a plugin learns about the cluster.
//!
//! What a plugin gets: the object's identity and spec JSON, the resolved backend with every credential as a
//! Secret *reference* ([`backend`]), the operator settings that shape Jobs, and the candidate PVCs and pods
//! with the facts the planning rules need ([`candidates`]). What it never gets: Secret values (the global
//! credentials are referenced through the mirrored `k8up-global-credentials` Secret), other namespaces, or
//! objects it could not mount anyway.

pub mod backend;
pub mod candidates;

use std::collections::BTreeMap;

use super::types::{Action, KeyValue, ObjectRef, PlanRequest, Settings};
use crate::crd::JobType;
use crate::operator::driver::credentials::{
    GLOBAL_CREDENTIALS_SECRET, KEY_RESTORE_ACCESS_KEY_ID, KEY_RESTORE_SECRET_ACCESS_KEY, offered_keys,
};
use crate::operator::driver::observe::Observed;
use crate::operator::driver::validate::ValidatedAction;
use crate::operator::settings::OperatorSettings;

/// The pod annotation naming the container a backup command runs in (not configurable on the operator).
pub const CONTAINER_ANNOTATION: &str = "k8up.io/backupcommand-container";
/// The PVC annotation that forces the node of its backup Job.
pub const HOSTNAME_ANNOTATION: &str = "k8up.io/hostname";

/// Keys of `settings.extra`: operator settings the 0.1.0 record does not model.
pub mod extra {
    /// Endpoint of the global restore/archive S3 target (`BACKUP_GLOBALRESTORES3ENDPOINT`).
    pub const RESTORE_S3_ENDPOINT: &str = "restore-s3-endpoint";
    /// Bucket of the global restore/archive S3 target (`BACKUP_GLOBALRESTORES3BUCKET`).
    pub const RESTORE_S3_BUCKET: &str = "restore-s3-bucket";
    /// `<secret-name>/<key>` holding the global restore target's access key id.
    pub const RESTORE_S3_ACCESS_KEY_ID_SECRET: &str = "restore-s3-access-key-id-secret";
    /// `<secret-name>/<key>` holding the global restore target's secret access key.
    pub const RESTORE_S3_SECRET_ACCESS_KEY_SECRET: &str = "restore-s3-secret-access-key-secret";
    /// `true` when backup Jobs may fall back to SPDY for pod exec (`INSECURE_ALLOW_PODEXEC_SPDY_FALLBACK`).
    pub const INSECURE_ALLOW_PODEXEC_SPDY_FALLBACK: &str = "insecure-allow-podexec-spdy-fallback";
}

/// The contract's action for a job type.
pub fn action_of(job_type: JobType) -> Action {
    match job_type {
        JobType::Backup => Action::Backup,
        JobType::Check => Action::Check,
        JobType::Archive => Action::Archive,
        JobType::Restore => Action::Restore,
        JobType::Prune => Action::Prune,
    }
}

/// Builds the plan request of `action` from what was observed. Pure and deterministic: candidates are
/// sorted by name, so planning the same state twice hands the plugin the same request.
pub fn build_request(action: &ValidatedAction, observed: &Observed) -> PlanRequest {
    PlanRequest {
        action: action_of(action.job_type),
        object: ObjectRef {
            namespace: action.namespace.clone(),
            name: action.name.clone(),
            uid: action.uid.clone(),
            labels: key_values(&action.labels),
            annotations: key_values(&action.annotations),
        },
        spec_json: action.spec.to_string(),
        backend: backend::backend_record(action),
        settings: settings_record(action),
        pvcs: candidates::candidate_pvcs(action, observed),
        pods: candidates::candidate_pods(action, observed),
    }
}

/// The settings record of `action`: the operator settings that shape Jobs, plus `extra` (see [`extra`]).
/// The restore target's credentials appear only as `<secret>/<key>` references into the mirrored Secret.
pub fn settings_record(action: &ValidatedAction) -> Settings {
    let settings: &OperatorSettings = &action.settings;
    let offered = offered_keys(action);
    let mut extra_pairs = Vec::new();
    let target = &settings.restore_target;
    if let Some(endpoint) = &target.endpoint {
        extra_pairs.push(kv(extra::RESTORE_S3_ENDPOINT, endpoint.as_str()));
    }
    if let Some(bucket) = &target.bucket {
        extra_pairs.push(kv(extra::RESTORE_S3_BUCKET, bucket));
    }
    for (name, key) in [
        (extra::RESTORE_S3_ACCESS_KEY_ID_SECRET, KEY_RESTORE_ACCESS_KEY_ID),
        (
            extra::RESTORE_S3_SECRET_ACCESS_KEY_SECRET,
            KEY_RESTORE_SECRET_ACCESS_KEY,
        ),
    ] {
        if offered.contains(&key) {
            extra_pairs.push(kv(name, &format!("{GLOBAL_CREDENTIALS_SECRET}/{key}")));
        }
    }
    extra_pairs.push(kv(
        extra::INSECURE_ALLOW_PODEXEC_SPDY_FALLBACK,
        if settings.jobs.allow_podexec_spdy_fallback {
            "true"
        } else {
            "false"
        },
    ));
    let metrics = &settings.metrics;
    Settings {
        backup_annotation: settings.annotations.backup.clone(),
        backup_command_annotation: settings.annotations.backup_command.clone(),
        file_extension_annotation: settings.annotations.file_extension.clone(),
        container_annotation: CONTAINER_ANNOTATION.to_string(),
        restic_args_annotation: settings.annotations.restic_args.clone(),
        hostname_annotation: HOSTNAME_ANNOTATION.to_string(),
        skip_without_annotation: settings.annotations.skip_pvcs_without_annotation,
        relaxed_scheduling: settings.scheduling.relaxed,
        data_path: settings.jobs.data_path.clone(),
        var_dir: settings.jobs.var_dir.clone(),
        stats_url: metrics.stats_url.as_ref().map(|u| u.expose().to_string()),
        prom_url: metrics.push_gateway.as_ref().map(|u| u.to_string()),
        cluster_name: Some(metrics.cluster_name.clone()).filter(|c| !c.is_empty()),
        skip_snapshot_sync: settings.jobs.skip_snapshot_sync,
        extra: extra_pairs,
    }
}

/// A key/value pair of the contract.
pub(crate) fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: value.to_string(),
    }
}

/// A map as the contract's sorted list of pairs.
pub(crate) fn key_values(map: &BTreeMap<String, String>) -> Vec<KeyValue> {
    map.iter().map(|(k, v)| kv(k, v)).collect()
}

#[cfg(test)]
mod tests;
