//! Built-in prune planner: one exclusive Job that runs `k8up restic --prune` with the Prune's retention policy.
//!
//! The policy becomes the wrapper's `KEEP_*` environment ([`retention`]); `retention.tags` become `--tag`
//! filters and `retention.hostnames` a `--hostnameFilter`. Fixes over K8up: `keepTags` and `keepWithin*`
//! really reach restic, `hostnames` filters instead of being ignored (but only the namespace's own host is
//! accepted, so a Prune never forgets another namespace's snapshots in a shared repository), and a bad
//! duration or count is an invalid spec naming the field.

pub mod retention;

use k8up_plugin_sdk::{
    Action, Job, JobPlan, PlanRequest, Plugin, PluginError, PluginInfo, expect_action, parse_spec,
    plugin_info,
};
use serde::Deserialize;

use retention::{DEFAULT_KEEP_DAILY, Retention};

/// The fields of a Prune spec this planner reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneSpec {
    /// Which snapshots to keep.
    #[serde(default)]
    pub retention: Option<Retention>,
}

/// The built-in prune plugin.
#[derive(Debug)]
pub struct PrunePlugin;

impl Plugin for PrunePlugin {
    fn info() -> PluginInfo {
        plugin_info(
            "k8up-prune",
            env!("CARGO_PKG_VERSION"),
            "forgets snapshots outside the retention policy and prunes the repository, exclusively",
            &[Action::Prune],
        )
    }

    fn plan(req: &PlanRequest) -> Result<JobPlan, PluginError> {
        expect_action(req, Action::Prune)?;
        let spec: PruneSpec = parse_spec(req)?;
        let retention = spec.retention.unwrap_or_default();
        let keep = retention.keep_env()?;
        let hosts = retention.host_filter(&req.object.namespace)?;
        let settings = &req.settings;
        let mut job = Job::for_backend(req, "")
            .with_arg("--prune")
            .with_flag_each("--tag", retention.tag_filter())
            .with_flag_each("--hostnameFilter", &hosts)
            .exclusive();
        for (name, value) in &keep.vars {
            job = job.with_env_literal(name, value);
        }
        job = job
            .with_env_opt("PROM_URL", settings.prom_url.as_deref())
            .with_env_opt("CLUSTER_NAME", settings.cluster_name.as_deref())
            .with_env_opt("STATS_URL", settings.stats_url.as_deref());
        if settings.skip_snapshot_sync {
            job = job.with_env_literal("BACKUP_SKIP_SNAPSHOT_SYNC", "true");
        }
        let message = keep.daily_defaulted.then(|| {
            format!("retention sets no keep rule: {DEFAULT_KEEP_DAILY} daily snapshots are kept, as in K8up")
        });
        Ok(JobPlan {
            jobs: vec![job],
            message,
        })
    }
}

k8up_plugin_sdk::export_plugin!(PrunePlugin);

#[cfg(test)]
mod tests;
