//! Built-in archive planner: one Job that runs `k8up restic --archive`, uploading snapshots as `.tar.gz` to
//! an S3 bucket.
//!
//! The target is `restoreMethod.s3`, falling back to the operator's global restore target
//! ([`k8up_plugin_s3_target`]), with `restoreMethod.tlsOptions` and `restoreMethod.volumeMounts`. `tags` and
//! `paths` choose the snapshots; by default the wrapper archives the latest snapshot of each host and path,
//! with `allSnapshots: true` every one (`ARCHIVE_ALL_SNAPSHOTS`). Not exclusive: it only reads the
//! repository. Fixes over K8up: `paths` filters, and Restore fields that mean nothing here are named in the
//! plan's message instead of being silently ignored.

use k8up_plugin_s3_target::{RestoreMethod, S3Target, tls_args, with_volume_mounts};
use k8up_plugin_sdk::{
    Action, Job, JobPlan, PlanRequest, Plugin, PluginError, PluginInfo, expect_action, invalid_spec,
    parse_spec, plugin_info,
};
use serde::Deserialize;

/// The fields of an Archive spec this planner reads (the Archive inlines every Restore field).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ArchiveSpec {
    /// The S3 target (`s3`, `tlsOptions`, `volumeMounts`); `folder` has no effect.
    pub restore_method: Option<RestoreMethod>,
    /// `--tag` each.
    pub tags: Option<Vec<String>>,
    /// `--path` each.
    pub paths: Option<Vec<String>>,
    /// `ARCHIVE_ALL_SNAPSHOTS`.
    pub all_snapshots: Option<bool>,
    /// Read only to say that it has no effect.
    pub snapshot: Option<String>,
    /// Read only to say that it has no effect.
    pub restore_filter: Option<String>,
    /// Read only to say that it has no effect.
    pub restore_time_filter: Option<String>,
    /// Read only to say that it has no effect.
    pub delete: Option<bool>,
}

/// The built-in archive plugin.
#[derive(Debug)]
pub struct ArchivePlugin;

impl Plugin for ArchivePlugin {
    fn info() -> PluginInfo {
        plugin_info(
            "k8up-archive",
            env!("CARGO_PKG_VERSION"),
            "uploads the latest snapshot of each host and path (or all of them) as tarballs to S3",
            &[Action::Archive],
        )
    }

    fn plan(req: &PlanRequest) -> Result<JobPlan, PluginError> {
        expect_action(req, Action::Archive)?;
        let spec: ArchiveSpec = parse_spec(req)?;
        let method = spec.restore_method.clone().unwrap_or_default();
        let target = S3Target::resolve(req, method.s3.as_ref())?;
        let paths = non_empty(spec.paths.as_deref());
        if let Some(path) = paths.iter().find(|p| p.contains(',')) {
            return Err(invalid_spec(format!(
                "paths: {path:?} contains a comma, which the archive Job cannot pass on; list each path as its own entry"
            )));
        }
        let job = Job::for_backend(req, "")
            .with_args(["--archive", "--restoreType", "s3"])
            .with_flag_each("--tag", non_empty(spec.tags.as_deref()))
            .with_flag_each("--path", &paths)
            .with_args(tls_args(method.tls_options.as_ref())?)
            .with_env_opt("STATS_URL", req.settings.stats_url.as_deref());
        let mut job = with_volume_mounts(target.apply(job), &method)?;
        if spec.all_snapshots == Some(true) {
            job = job.with_env_literal("ARCHIVE_ALL_SNAPSHOTS", "true");
        }
        let ignored: Vec<&str> = [
            (
                "snapshot",
                spec.snapshot.as_deref().is_some_and(|s| !s.is_empty()),
            ),
            (
                "restoreFilter",
                spec.restore_filter.as_deref().is_some_and(|s| !s.is_empty()),
            ),
            (
                "restoreTimeFilter",
                spec.restore_time_filter.as_deref().is_some_and(|s| !s.is_empty()),
            ),
            ("delete", spec.delete == Some(true)),
            ("restoreMethod.folder", method.folder.is_some()),
        ]
        .into_iter()
        .filter_map(|(field, set)| set.then_some(field))
        .collect();
        let message = (!ignored.is_empty()).then(|| {
            format!(
                "{} {} no effect on an Archive",
                ignored.join(", "),
                if ignored.len() == 1 { "has" } else { "have" }
            )
        });
        Ok(JobPlan {
            jobs: vec![job],
            message,
        })
    }
}

k8up_plugin_sdk::export_plugin!(ArchivePlugin);

/// The entries of an optional list that are not empty or blank.
fn non_empty(values: Option<&[String]>) -> Vec<&str> {
    values
        .unwrap_or_default()
        .iter()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .collect()
}

#[cfg(test)]
mod tests;
