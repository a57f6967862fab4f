//! Example custom backup plugin, the code of the tutorial in this crate's `README.md`: every PVC gets its
//! own backup Job, and PVCs declared large leave caches out.
//!
//! Selection follows the built-in planner (Bound claims, the backup annotation as a Go bool, opt-in mode,
//! RWO/RWX unless annotated), and so does placement (the node of the pod using the claim, else the PV's node
//! for RWO, the hostname annotation over both). What differs:
//! * one Job per PVC, named `backup-<backup>-pvc-<pvc>`, so one slow or failing volume never holds up the rest;
//! * a PVC is *large* when its label [`LARGE_LABEL`] is `true`, or when the size it declares in the annotation
//!   or label [`SIZE_KEY`] reaches the Backup's threshold (annotation [`THRESHOLD_ANNOTATION`], default
//!   [`DEFAULT_THRESHOLD`]); a large PVC's Job passes `--excludeCaches` (directories with a `CACHEDIR.TAG`)
//!   and one `--exclude` per pattern of the Backup's annotation [`EXCLUDE_ANNOTATION`] (default `.cache`).
//!
//! The plan-request carries no PVC capacity (WIT 0.1.0), hence the declared size.
//! Pods with backup commands are left to the built-in planner: this plugin says so in the plan's message.

pub mod size;

use k8up_plugin_sdk::{
    Action, Job, JobPlan, Metadata, PlanRequest, Plugin, PluginError, PluginInfo, Pvc, PvcExt, expect_action,
    invalid_spec, parse_bool, parse_spec, plugin_info, stable_suffix,
};
use serde::Deserialize;

/// PVC label that marks a claim large (`true`) or small (`false`) whatever its declared size.
pub const LARGE_LABEL: &str = "split.k8up.io/large";
/// PVC annotation (or label) with the claim's size as a Kubernetes quantity, e.g. `200Gi`.
pub const SIZE_KEY: &str = "split.k8up.io/size";
/// Backup annotation with the size from which a PVC counts as large.
pub const THRESHOLD_ANNOTATION: &str = "split.k8up.io/large-threshold";
/// Backup annotation with the comma-separated `--exclude` patterns for large PVCs.
pub const EXCLUDE_ANNOTATION: &str = "split.k8up.io/exclude";
/// The threshold when the Backup names none.
pub const DEFAULT_THRESHOLD: &str = "100Gi";

/// The fields of a Backup spec this plugin reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SplitSpec {
    /// restic `--tag` for every snapshot.
    pub tags: Vec<String>,
    /// Pushgateway URL (`PROM_URL`).
    #[serde(rename = "promURL")]
    pub prom_url: Option<String>,
    /// Webhook URL (`STATS_URL`).
    #[serde(rename = "statsURL")]
    pub stats_url: Option<String>,
}

/// The example plugin.
#[derive(Debug)]
pub struct BackupSplit;

impl Plugin for BackupSplit {
    fn info() -> PluginInfo {
        plugin_info(
            "backup-split",
            env!("CARGO_PKG_VERSION"),
            "backs up every PVC in its own Job and leaves caches out of large PVCs",
            &[Action::Backup],
        )
    }

    fn plan(req: &PlanRequest) -> Result<JobPlan, PluginError> {
        expect_action(req, Action::Backup)?;
        let spec: SplitSpec = parse_spec(req)?;
        let threshold_text = req
            .object
            .annotation(THRESHOLD_ANNOTATION)
            .unwrap_or(DEFAULT_THRESHOLD);
        let threshold = size::bytes(threshold_text).ok_or_else(|| {
            invalid_spec(format!(
                "annotation {THRESHOLD_ANNOTATION}={threshold_text:?} is not a quantity such as 100Gi"
            ))
        })?;
        let excludes: Vec<&str> = req
            .object
            .annotation(EXCLUDE_ANNOTATION)
            .unwrap_or(".cache")
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        let mut notes = Vec::new();
        let mut pvcs: Vec<&Pvc> = req
            .pvcs
            .iter()
            .filter(|pvc| selected(req, pvc, &mut notes))
            .collect();
        pvcs.sort_by(|a, b| a.name.cmp(&b.name));
        let mut jobs = Vec::new();
        for (index, pvc) in pvcs.into_iter().enumerate() {
            let mut job = pvc_job(req, &spec, pvc);
            if is_large(pvc, threshold, &mut notes) {
                job = job
                    .with_arg("--excludeCaches")
                    .with_flag_each("--exclude", &excludes);
            }
            if index > 0 {
                // Staggered starts keep parallel Jobs from racing on `restic init` of a new repository.
                job = job.with_env_literal("SLEEP_DURATION", &format!("{}s", index * 10));
            }
            jobs.push(job);
        }
        let command = &req.settings.backup_command_annotation;
        if req.pods.iter().any(|pod| pod.annotation(command).is_some()) {
            notes.push("pods with backup commands are not backed up by backup-split".to_string());
        }
        let notes = (!notes.is_empty()).then(|| notes.join("; "));
        if jobs.is_empty() {
            let message = notes.map_or("nothing to back up".to_string(), |n| {
                format!("nothing to back up; {n}")
            });
            return Ok(JobPlan::nothing(&message));
        }
        Ok(JobPlan { jobs, message: notes })
    }
}

k8up_plugin_sdk::export_plugin!(BackupSplit);

/// The built-in selection rules, in short.
fn selected(req: &PlanRequest, pvc: &Pvc, notes: &mut Vec<String>) -> bool {
    let settings = &req.settings;
    if !pvc.is_bound() {
        notes.push(format!("pvc {} skipped: not Bound ({})", pvc.name, pvc.phase));
        return false;
    }
    match pvc.annotation(&settings.backup_annotation).map(parse_bool) {
        Some(Some(wanted)) => wanted,
        Some(None) => {
            notes.push(format!(
                "pvc {} skipped: {} is not a boolean",
                pvc.name, settings.backup_annotation
            ));
            false
        }
        None => !settings.skip_without_annotation && (pvc.is_rwo() || pvc.is_rwx()),
    }
}

/// Whether a PVC gets the cache exclusions: the label decides, else the declared size.
fn is_large(pvc: &Pvc, threshold: f64, notes: &mut Vec<String>) -> bool {
    if let Some(forced) = pvc.label(LARGE_LABEL).and_then(parse_bool) {
        return forced;
    }
    let Some(declared) = pvc.annotation(SIZE_KEY).or_else(|| pvc.label(SIZE_KEY)) else {
        return false;
    };
    match size::bytes(declared) {
        Some(bytes) => bytes >= threshold,
        None => {
            notes.push(format!(
                "pvc {}: {SIZE_KEY}={declared:?} is not a quantity, treated as small",
                pvc.name
            ));
            false
        }
    }
}

/// One PVC's Job: mounted read-only under the data path, on the node that can mount it.
fn pvc_job(req: &PlanRequest, spec: &SplitSpec, pvc: &Pvc) -> Job {
    let settings = &req.settings;
    let root = settings.data_path.trim_end_matches('/');
    let root = if root.is_empty() { "/data" } else { root };
    let pick = |own: &Option<String>, global: &Option<String>| {
        own.clone().filter(|v| !v.is_empty()).or(global.clone())
    };
    let mut job = Job::for_backend(req, &stable_suffix(&format!("pvc-{}", pvc.name)))
        .with_flag_each("--tag", &spec.tags)
        .with_env_literal("BACKUP_DIR", root)
        .with_env_literal("SKIP_PREBACKUP", "true")
        .with_env_opt("STATS_URL", pick(&spec.stats_url, &settings.stats_url).as_deref())
        .with_env_opt("PROM_URL", pick(&spec.prom_url, &settings.prom_url).as_deref())
        .with_env_opt("CLUSTER_NAME", settings.cluster_name.as_deref())
        .with_pvc_mount(&pvc.name, &format!("{root}/{}", pvc.name), true);
    let pod = pvc.mounted_by.as_ref().filter(|pod| !pod.node.is_empty());
    if let Some(pod) = pod {
        job = job.with_tolerations(&pod.tolerations);
    }
    let node = pvc
        .annotation(&settings.hostname_annotation)
        .filter(|n| !n.is_empty())
        .or(pod.map(|pod| pod.node.as_str()))
        .or(pvc.pv_node.as_deref().filter(|_| pvc.is_rwo()));
    match node {
        Some(node) => job.on_node(node),
        None => job,
    }
}

#[cfg(test)]
mod tests;
