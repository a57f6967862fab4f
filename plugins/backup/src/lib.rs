//! Built-in backup planner: K8up's job-building rules for `Backup` objects, with its bugs fixed.
//!
//! Steps: select PVCs ([`select`]), place each ([`placement`]), group them into Jobs (one per
//! node and restic args in classic mode, one per PVC in relaxed mode), and add the pre-backup
//! Job when running pods carry a backup command ([`prebackup`]).
//! Fixes over K8up: `BACKUP_DIR` follows the data path, job suffixes are stable names (not
//! list indexes), and the spec's `promURL`/`statsURL`/`clusterName` reach every Job.

pub mod placement;
pub mod prebackup;
pub mod select;

use k8up_plugin_sdk::{
    Action, Job, JobPlan, PlanRequest, Plugin, PluginError, PluginInfo, Toleration, env_literal,
    expect_action, parse_spec, plugin_info, short_hash, stable_suffix,
};
use serde::Deserialize;
use std::collections::BTreeMap;

use placement::place;
use select::{Selected, select_pvcs};

/// The message of a plan with no jobs.
pub const NOTHING_TO_BACK_UP: &str = "nothing to back up";

/// The fields of a Backup spec this planner reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// restic `--tag` for every snapshot.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Pushgateway URL (`PROM_URL`).
    #[serde(default, rename = "promURL")]
    pub prom_url: Option<String>,
    /// Webhook URL (`STATS_URL`).
    #[serde(default, rename = "statsURL")]
    pub stats_url: Option<String>,
    /// Pushgateway grouping key (`CLUSTER_NAME`).
    #[serde(default)]
    pub cluster_name: Option<String>,
}

/// The built-in backup plugin.
#[derive(Debug)]
pub struct BackupPlugin;

impl Plugin for BackupPlugin {
    fn info() -> PluginInfo {
        plugin_info(
            "k8up-backup",
            env!("CARGO_PKG_VERSION"),
            "backs up PVCs and backup-command pods the way K8up does",
            &[Action::Backup],
        )
    }

    fn plan(req: &PlanRequest) -> Result<JobPlan, PluginError> {
        expect_action(req, Action::Backup)?;
        let spec: BackupSpec = parse_spec(req)?;
        let mut notes = Vec::new();
        let selected = select_pvcs(req, &mut notes);
        let mut jobs: Vec<Job> = group(req, &selected)
            .into_iter()
            .map(|group| pvc_job(req, &spec, &group))
            .collect();
        if let Some(targets) = prebackup::target_pods(req, &mut notes) {
            jobs.push(
                common_job(req, &spec, prebackup::SUFFIX).with_env_literal("TARGET_PODS", &targets.join(",")),
            );
        }
        // Staggered starts keep parallel jobs from racing on `restic init` of a new repository.
        for (index, job) in jobs.iter_mut().enumerate().skip(1) {
            job.env
                .push(env_literal("SLEEP_DURATION", &format!("{}s", index * 10)));
        }
        let notes = (!notes.is_empty()).then(|| notes.join("; "));
        if jobs.is_empty() {
            let message = match notes {
                Some(notes) => format!("{NOTHING_TO_BACK_UP}; {notes}"),
                None => NOTHING_TO_BACK_UP.to_string(),
            };
            return Ok(JobPlan::nothing(&message));
        }
        Ok(JobPlan { jobs, message: notes })
    }
}

k8up_plugin_sdk::export_plugin!(BackupPlugin);

/// PVCs that share one Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group<'a> {
    /// Job name suffix.
    pub suffix: String,
    /// Node to pin to.
    pub node: Option<String>,
    /// Union of the mounting pods' tolerations.
    pub tolerations: Vec<Toleration>,
    /// Extra restic args shared by the group.
    pub args: Vec<String>,
    /// The PVCs, sorted by name.
    pub pvcs: Vec<&'a str>,
    /// Names of the pods that mount them.
    pub pods: Vec<&'a str>,
}

/// Groups selected PVCs into Jobs, in a deterministic order.
pub fn group<'a>(req: &PlanRequest, selected: &[Selected<'a>]) -> Vec<Group<'a>> {
    let relaxed = req.settings.relaxed_scheduling;
    let mut groups: BTreeMap<(Option<String>, Vec<String>, &str), Group<'a>> = BTreeMap::new();
    for item in selected {
        let placement = place(item.pvc, &req.settings);
        // Classic mode shares a Job per node and args; relaxed mode gives every PVC its own.
        let own = if relaxed { item.pvc.name.as_str() } else { "" };
        let key = (placement.node.clone(), item.args.clone(), own);
        let entry = groups.entry(key).or_insert_with(|| Group {
            suffix: suffix(relaxed, item, placement.node.as_deref()),
            node: placement.node.clone(),
            tolerations: Vec::new(),
            args: item.args.clone(),
            pvcs: Vec::new(),
            pods: Vec::new(),
        });
        entry.pvcs.push(&item.pvc.name);
        if let Some(pod) = &item.pvc.mounted_by
            && !entry.pods.contains(&pod.name.as_str())
        {
            entry.pods.push(&pod.name);
        }
        for toleration in &placement.tolerations {
            if !entry.tolerations.contains(toleration) {
                entry.tolerations.push(toleration.clone());
            }
        }
    }
    groups
        .into_values()
        .map(|mut group| {
            group.pvcs.sort_unstable();
            group
        })
        .collect()
}

/// A stable suffix: `pvc-<name>` in relaxed mode, `node-<node>` or `shared` in classic mode,
/// plus a hash of the restic args when there are any (they split a node's PVCs into Jobs).
fn suffix(relaxed: bool, item: &Selected<'_>, node: Option<&str>) -> String {
    if relaxed {
        return stable_suffix(&format!("pvc-{}", item.pvc.name));
    }
    let base = node.map_or_else(|| "shared".to_string(), |node| format!("node-{node}"));
    if item.args.is_empty() {
        stable_suffix(&base)
    } else {
        stable_suffix(&format!("{base}-{}", short_hash(&item.args.join("\0"))))
    }
}

/// The data path without a trailing slash (`/data` when unset).
pub fn data_path(req: &PlanRequest) -> String {
    let path = req.settings.data_path.trim_end_matches('/');
    if path.is_empty() {
        "/data".to_string()
    } else {
        path.to_string()
    }
}

/// Env and args every backup Job shares (PVC Jobs and the pre-backup Job).
fn common_job(req: &PlanRequest, spec: &BackupSpec, suffix: &str) -> Job {
    let settings = &req.settings;
    let pick = |own: &Option<String>, global: &Option<String>| {
        own.clone().filter(|v| !v.is_empty()).or(global.clone())
    };
    let mut job = Job::for_backend(req, suffix)
        .with_flag_each("--tag", &spec.tags)
        .with_env_literal("BACKUP_DIR", &data_path(req))
        .with_env_opt("STATS_URL", pick(&spec.stats_url, &settings.stats_url).as_deref())
        .with_env_opt("PROM_URL", pick(&spec.prom_url, &settings.prom_url).as_deref())
        .with_env_opt(
            "CLUSTER_NAME",
            pick(&spec.cluster_name, &settings.cluster_name).as_deref(),
        )
        .with_env_opt(
            "BACKUPCOMMAND_ANNOTATION",
            Some(&settings.backup_command_annotation),
        )
        .with_env_opt(
            "FILEEXTENSION_ANNOTATION",
            Some(&settings.file_extension_annotation),
        )
        .with_env_opt("BACKUP_CONTAINERANNOTATION", Some(&settings.container_annotation));
    if settings.skip_snapshot_sync {
        job = job.with_env_literal("BACKUP_SKIP_SNAPSHOT_SYNC", "true");
    }
    if k8up_plugin_sdk::lookup(&settings.extra, "insecure-allow-podexec-spdy-fallback")
        .and_then(k8up_plugin_sdk::parse_bool)
        .unwrap_or(false)
    {
        job = job.with_env_literal("INSECURE_ALLOW_PODEXEC_SPDY_FALLBACK", "true");
    }
    job
}

/// The Job backing up one group of PVCs: read-only mounts under the data path, no exec.
fn pvc_job(req: &PlanRequest, spec: &BackupSpec, group: &Group<'_>) -> Job {
    let root = data_path(req);
    let mut job = common_job(req, spec, &group.suffix)
        .with_env_literal("SKIP_PREBACKUP", "true")
        .with_env_opt("TARGET_PODS", Some(&group.pods.join(",")))
        .with_args(&group.args)
        .with_tolerations(&group.tolerations);
    for pvc in &group.pvcs {
        job = job.with_pvc_mount(pvc, &format!("{root}/{pvc}"), true);
    }
    match &group.node {
        Some(node) => job.on_node(node),
        None => job,
    }
}

#[cfg(test)]
mod tests;
