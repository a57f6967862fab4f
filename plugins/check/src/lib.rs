//! Built-in check planner: one exclusive Job that runs `k8up restic --check`.
//!
//! Fixes over K8up: the spec's `promURL` and `clusterName` are honoured (K8up always used the operator's),
//! and `readDataSubset` (a k8up-rs extension) makes restic also read part of the pack data
//! (`check --read-data-subset`), validated here so a typo is an invalid spec and not a failed Job.

use k8up_plugin_sdk::{
    Action, Job, JobPlan, PlanRequest, Plugin, PluginError, PluginInfo, expect_action, invalid_spec,
    parse_spec, plugin_info,
};
use serde::Deserialize;

/// The fields of a Check spec this planner reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckSpec {
    /// Pushgateway URL (`PROM_URL`); the operator's when unset.
    #[serde(default, rename = "promURL")]
    pub prom_url: Option<String>,
    /// Pushgateway grouping key (`CLUSTER_NAME`); the operator's when unset.
    #[serde(default)]
    pub cluster_name: Option<String>,
    /// restic `check --read-data-subset` (`n/m`, `x%` or a size such as `500M`).
    #[serde(default)]
    pub read_data_subset: Option<String>,
}

/// The built-in check plugin.
#[derive(Debug)]
pub struct CheckPlugin;

impl Plugin for CheckPlugin {
    fn info() -> PluginInfo {
        plugin_info(
            "k8up-check",
            env!("CARGO_PKG_VERSION"),
            "checks the integrity of the repository, exclusively, optionally reading a part of the data",
            &[Action::Check],
        )
    }

    fn plan(req: &PlanRequest) -> Result<JobPlan, PluginError> {
        expect_action(req, Action::Check)?;
        let spec: CheckSpec = parse_spec(req)?;
        let subset = spec.read_data_subset.as_deref().filter(|s| !s.is_empty());
        if let Some(subset) = subset {
            validate_read_data_subset(subset)
                .map_err(|why| invalid_spec(format!("readDataSubset: {why}")))?;
        }
        let settings = &req.settings;
        let pick = |own: &Option<String>, global: &Option<String>| {
            own.clone().filter(|v| !v.is_empty()).or(global.clone())
        };
        let job = Job::for_backend(req, "")
            .with_arg("--check")
            .with_flag_opt("--readDataSubset", subset)
            .with_env_opt("PROM_URL", pick(&spec.prom_url, &settings.prom_url).as_deref())
            .with_env_opt(
                "CLUSTER_NAME",
                pick(&spec.cluster_name, &settings.cluster_name).as_deref(),
            )
            .with_env_opt("STATS_URL", settings.stats_url.as_deref())
            .exclusive();
        Ok(JobPlan::with_jobs(vec![job]))
    }
}

k8up_plugin_sdk::export_plugin!(CheckPlugin);

/// What restic's `--read-data-subset` accepts: `n/m` (the n-th of m parts, 1 ≤ n ≤ m), a percentage
/// `x%` with 0 < x ≤ 100, or a positive size with an optional `K`, `M`, `G` or `T` suffix.
pub fn validate_read_data_subset(value: &str) -> Result<(), String> {
    let hint = "write n/m (e.g. 1/5), a percentage (e.g. 10%) or a size (e.g. 500M)";
    let number = |text: &str| -> Option<u64> {
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse().ok())
            .flatten()
    };
    if let Some((n, m)) = value.split_once('/') {
        return match (number(n), number(m)) {
            (Some(n), Some(m)) if n >= 1 && n <= m => Ok(()),
            (Some(_), Some(_)) => Err(format!("{value:?}: n/m needs 1 <= n <= m")),
            _ => Err(format!("{value:?} is not a valid subset; {hint}")),
        };
    }
    if let Some(percent) = value.strip_suffix('%') {
        let (whole, fraction) = percent.split_once('.').unwrap_or((percent, "0"));
        return match (number(whole), number(fraction)) {
            (Some(_), Some(_)) => match percent.parse::<f64>() {
                Ok(p) if p > 0.0 && p <= 100.0 => Ok(()),
                _ => Err(format!(
                    "{value:?}: a percentage must be above 0% and at most 100%"
                )),
            },
            _ => Err(format!("{value:?} is not a valid subset; {hint}")),
        };
    }
    let digits = value.trim_end_matches(['K', 'M', 'G', 'T']);
    let suffixes = value.len() - digits.len();
    match number(digits) {
        Some(size) if suffixes <= 1 && size > 0 => Ok(()),
        Some(0) if suffixes <= 1 => Err(format!("{value:?}: a size must be positive")),
        _ => Err(format!("{value:?} is not a valid subset; {hint}")),
    }
}

#[cfg(test)]
mod tests;
