//! Operator metrics with K8up's names (REFERENCE 5.1), in one prometheus-client registry.
//!
//! prometheus-client appends `_total` to every counter it encodes, which would rename K8up's
//! `k8up_jobs_successful_counter` and `k8up_jobs_failed_counter`. Those two use [`PlainCounter`], a counter
//! encoded under its exact name (OpenMetrics type `unknown`), so existing dashboards and alerts keep working.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::crd::JobType;

/// Labels `namespace` and `jobType`.
type JobLabels = Vec<(String, String)>;

/// A monotonically increasing counter encoded without the `_total` suffix.
#[derive(Debug, Default)]
pub struct PlainCounter(AtomicU64);

impl PlainCounter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl TypedMetric for PlainCounter {
    const TYPE: MetricType = MetricType::Unknown;
}

impl EncodeMetric for PlainCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&self.get())
    }
    fn metric_type(&self) -> MetricType {
        MetricType::Unknown
    }
}

fn labels(namespace: &str, job_type: JobType) -> JobLabels {
    vec![
        ("namespace".to_string(), namespace.to_string()),
        ("jobType".to_string(), job_type.as_str().to_string()),
    ]
}

/// The operator's metrics and the registry that serves them.
#[derive(Debug)]
pub struct Metrics {
    /// The registry rendered on `/metrics`.
    pub registry: Registry,
    jobs_total: Family<JobLabels, Counter>,
    successful: Family<JobLabels, PlainCounter>,
    failed: Family<JobLabels, PlainCounter>,
    skipped_ticks: Family<JobLabels, Counter>,
    missed_ticks: Family<JobLabels, Counter>,
    plugin_loads: Family<JobLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let jobs_total = Family::<JobLabels, Counter>::default();
        let successful = Family::<JobLabels, PlainCounter>::default();
        let failed = Family::<JobLabels, PlainCounter>::default();
        // Registered as `k8up_jobs`; the encoder adds `_total`.
        registry.register(
            "k8up_jobs",
            "Number of finished k8up jobs (succeeded or failed)",
            jobs_total.clone(),
        );
        registry.register(
            "k8up_jobs_successful_counter",
            "Number of successful k8up jobs",
            successful.clone(),
        );
        registry.register(
            "k8up_jobs_failed_counter",
            "Number of failed k8up jobs",
            failed.clone(),
        );
        let skipped_ticks = Family::<JobLabels, Counter>::default();
        let missed_ticks = Family::<JobLabels, Counter>::default();
        registry.register(
            "k8up_schedule_skipped_ticks",
            "Schedule ticks skipped because the previous run of the action was still active",
            skipped_ticks.clone(),
        );
        registry.register(
            "k8up_schedule_missed_ticks",
            "Schedule ticks that came due while the operator was not running (at most one run is made for them)",
            missed_ticks.clone(),
        );
        let plugin_loads = Family::<JobLabels, Counter>::default();
        registry.register(
            "k8up_plugin_loads",
            "Versions of ConfigMap plugins the registry tried to load, by ConfigMap and result (loaded or failed; \
             a failed update keeps the previous version serving)",
            plugin_loads.clone(),
        );
        Metrics {
            registry,
            plugin_loads,
            jobs_total,
            successful,
            failed,
            skipped_ticks,
            missed_ticks,
        }
    }

    /// Counts an action that just finished.
    pub fn finished(&self, namespace: &str, job_type: JobType, succeeded: bool) {
        let labels = labels(namespace, job_type);
        self.jobs_total.get_or_create(&labels).inc();
        if succeeded {
            self.successful.get_or_create(&labels).inc();
        } else {
            self.failed.get_or_create(&labels).inc();
        }
    }

    /// Counts a Schedule tick skipped because the previous run was still active.
    pub fn schedule_skipped_tick(&self, namespace: &str, job_type: JobType) {
        self.skipped_ticks
            .get_or_create(&labels(namespace, job_type))
            .inc();
    }

    /// Counts Schedule ticks missed while the operator was down.
    pub fn schedule_missed_ticks(&self, namespace: &str, job_type: JobType, count: u64) {
        self.missed_ticks
            .get_or_create(&labels(namespace, job_type))
            .inc_by(count);
    }

    /// Counts one attempt of the plugin registry to load a new version of a plugin ConfigMap.
    pub fn plugin_load(&self, namespace: &str, config_map: &str, loaded: bool) {
        let labels = vec![
            ("namespace".to_string(), namespace.to_string()),
            ("configmap".to_string(), config_map.to_string()),
            (
                "result".to_string(),
                if loaded { "loaded" } else { "failed" }.to_string(),
            ),
        ];
        self.plugin_loads.get_or_create(&labels).inc();
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_actions_are_counted_under_k8up_metric_names_and_labels() {
        let m = Metrics::new();
        m.finished("ns1", JobType::Backup, true);
        m.finished("ns1", JobType::Backup, false);
        m.finished("ns2", JobType::Prune, true);
        let text = m.render().unwrap_or_default();
        assert!(
            text.contains(r#"k8up_jobs_total{namespace="ns1",jobType="backup"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"k8up_jobs_successful_counter{namespace="ns1",jobType="backup"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"k8up_jobs_failed_counter{namespace="ns1",jobType="backup"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"k8up_jobs_successful_counter{namespace="ns2",jobType="prune"} 1"#),
            "{text}"
        );
        assert!(!text.contains("k8up_jobs_failed_counter_total"), "{text}");
    }
}
