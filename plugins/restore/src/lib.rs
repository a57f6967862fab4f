//! Built-in restore planner: one exclusive Job that runs `k8up restic --restore` into a PVC or an S3 bucket.
//!
//! Folder method: the offered PVC `restoreMethod.folder.claimName` is mounted at [`RESTORE_DIR`]
//! (read-write unless `readOnly`). S3 method: the target of `restoreMethod.s3`, falling back to the
//! operator's global restore target ([`k8up_plugin_s3_target`]). The snapshot is chosen by the wrapper from
//! `snapshot`, `restoreTimeFilter`, `tags` and `paths`.
//! Fixes over K8up: when nothing narrows the choice, a folder restore prefers the newest snapshot of the
//! same PVC (`--preferPath <data-path>/<claimName>`, K8up #1062) instead of the newest snapshot of any PVC;
//! a missing PVC or restore method is an invalid spec; an RWO PVC in use by a pod is restored on that pod's
//! node, so the Job can mount it.

use k8up_plugin_s3_target::{FolderSpec, RestoreMethod, S3Target, tls_args, with_volume_mounts};
use k8up_plugin_sdk::{
    Action, Job, JobPlan, PlanRequest, Plugin, PluginError, PluginInfo, PvcExt, expect_action, invalid_spec,
    parse_spec, plugin_info,
};
use serde::Deserialize;

/// Where the target PVC of a folder restore is mounted (`RESTORE_DIR`).
pub const RESTORE_DIR: &str = "/restore";

/// The fields of a Restore spec this planner reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RestoreSpec {
    /// Where the snapshot goes: exactly one of `s3` and `folder`.
    pub restore_method: Option<RestoreMethod>,
    /// `--restoreFilter` (restic `restore --include`; folder restores).
    pub restore_filter: Option<String>,
    /// `--restoreTimeFilter`.
    pub restore_time_filter: Option<String>,
    /// `--restoreSnap`.
    pub snapshot: Option<String>,
    /// `--tag` each.
    pub tags: Option<Vec<String>>,
    /// `--path` each.
    pub paths: Option<Vec<String>>,
    /// `--delete` (folder restores).
    pub delete: Option<bool>,
}

/// The built-in restore plugin.
#[derive(Debug)]
pub struct RestorePlugin;

impl Plugin for RestorePlugin {
    fn info() -> PluginInfo {
        plugin_info(
            "k8up-restore",
            env!("CARGO_PKG_VERSION"),
            "restores a snapshot into a PVC or uploads it as a tarball to S3, exclusively",
            &[Action::Restore],
        )
    }

    fn plan(req: &PlanRequest) -> Result<JobPlan, PluginError> {
        expect_action(req, Action::Restore)?;
        let spec: RestoreSpec = parse_spec(req)?;
        let method = spec.restore_method.clone().ok_or_else(|| {
            invalid_spec(
                "restoreMethod is missing; set exactly one of restoreMethod.s3 or restoreMethod.folder",
            )
        })?;
        // `latest` (what `k8up cli restore` writes) is the wrapper's default, not a narrowing choice.
        let snapshot = spec
            .snapshot
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty() && *s != "latest");
        let tags = non_empty(spec.tags.as_deref());
        let paths = snapshot_paths(spec.paths.as_deref())?;
        let mut notes = Vec::new();
        let job = Job::for_backend(req, "")
            .with_arg("--restore")
            .with_flag_each("--tag", &tags)
            .with_flag_each("--path", &paths)
            .with_flag_opt("--restoreSnap", snapshot)
            .with_flag_opt("--restoreTimeFilter", spec.restore_time_filter.as_deref())
            .with_env_opt("STATS_URL", req.settings.stats_url.as_deref())
            .exclusive();
        let job = match (&method.s3, &method.folder) {
            (Some(_), Some(_)) => {
                return Err(invalid_spec(
                    "restoreMethod sets both s3 and folder; set exactly one of them",
                ));
            }
            (None, None) => {
                return Err(invalid_spec(
                    "restoreMethod sets neither s3 nor folder; set exactly one of them",
                ));
            }
            (None, Some(folder)) => {
                let narrowed = snapshot.is_some() || !tags.is_empty() || !paths.is_empty();
                if method.tls_options.is_some() {
                    notes.push("restoreMethod.tlsOptions has no effect on a folder restore".to_string());
                }
                folder_job(req, &spec, folder, narrowed, job, &mut notes)?
            }
            (Some(s3), None) => {
                let target = S3Target::resolve(req, Some(s3))?;
                if spec.restore_filter.as_deref().is_some_and(|f| !f.is_empty()) {
                    notes.push("restoreFilter has no effect on an S3 restore".to_string());
                }
                if spec.delete == Some(true) {
                    notes.push("delete has no effect on an S3 restore".to_string());
                }
                target
                    .apply(job)
                    .with_args(["--restoreType", "s3"])
                    .with_args(tls_args(method.tls_options.as_ref())?)
            }
        };
        let job = with_volume_mounts(job, &method)?;
        Ok(JobPlan {
            jobs: vec![job],
            message: (!notes.is_empty()).then(|| notes.join("; ")),
        })
    }
}

k8up_plugin_sdk::export_plugin!(RestorePlugin);

/// The folder-restore part of the Job: the PVC mount, `RESTORE_DIR`, the restic filters and the
/// preferred path; pinned to the node of the pod that uses an RWO claim.
fn folder_job(
    req: &PlanRequest,
    spec: &RestoreSpec,
    folder: &FolderSpec,
    narrowed: bool,
    job: Job,
    notes: &mut Vec<String>,
) -> Result<Job, PluginError> {
    let claim = folder.claim_name.trim();
    if claim.is_empty() {
        return Err(invalid_spec(
            "restoreMethod.folder.claimName is empty; name the PVC to restore into",
        ));
    }
    let Some(pvc) = req.pvcs.iter().find(|pvc| pvc.name == claim) else {
        return Err(invalid_spec(format!(
            "restoreMethod.folder.claimName: PVC {claim:?} does not exist in namespace {:?}; create it first",
            req.object.namespace
        )));
    };
    let read_only = folder.read_only.unwrap_or(false);
    if read_only {
        notes.push(format!(
            "PVC {claim} is mounted read-only (restoreMethod.folder.readOnly), so restic cannot write into it"
        ));
    }
    let mut job = job
        .with_args(["--restoreType", "folder"])
        .with_flag_opt("--restoreFilter", spec.restore_filter.as_deref())
        .with_env_literal("RESTORE_DIR", RESTORE_DIR)
        .with_pvc_mount(claim, RESTORE_DIR, read_only);
    if spec.delete == Some(true) {
        job = job.with_arg("--delete");
    }
    if !narrowed {
        job = job.with_flag_each("--preferPath", [format!("{}/{claim}", data_path(req))]);
    }
    // An RWO claim can only be attached to one node: follow the pod that has it.
    if let Some(pod) = pvc
        .mounted_by
        .as_ref()
        .filter(|pod| pvc.is_rwo() && !pod.node.is_empty())
    {
        job = job.on_node(&pod.node).with_tolerations(&pod.tolerations);
    }
    Ok(job)
}

/// The backup data path without a trailing slash (`/data` when unset): where backups mount PVCs, so
/// `<data-path>/<pvc>` is the snapshot path of a PVC.
pub fn data_path(req: &PlanRequest) -> String {
    let path = req.settings.data_path.trim_end_matches('/');
    if path.is_empty() {
        "/data".to_string()
    } else {
        path.to_string()
    }
}

/// The entries of an optional list that are not empty or blank.
fn non_empty(values: Option<&[String]>) -> Vec<&str> {
    values
        .unwrap_or_default()
        .iter()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .collect()
}

/// The `paths` filter; the wrapper splits `--path` at commas, so a path with a comma is refused.
fn snapshot_paths(paths: Option<&[String]>) -> Result<Vec<&str>, PluginError> {
    let paths = non_empty(paths);
    match paths.iter().find(|p| p.contains(',')) {
        Some(path) => Err(invalid_spec(format!(
            "paths: {path:?} contains a comma, which the restore Job cannot pass on; list each path as its own entry"
        ))),
        None => Ok(paths),
    }
}

#[cfg(test)]
mod tests;
