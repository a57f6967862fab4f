//! Operator metrics with K8up's names (REFERENCE 5.1), in one prometheus-client registry.
//!
//! prometheus-client appends `_total` to every counter it encodes, which would rename K8up's
//! `k8up_jobs_successful_counter` and `k8up_jobs_failed_counter`. Those two use [`PlainCounter`], a counter
//! encoded under its exact name (OpenMetrics type `unknown`), so existing dashboards and alerts keep working.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use kube::ResourceExt;
use kube::runtime::reflector::Store;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::crd::{JobType, Schedule};

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
    schedules: Family<JobLabels, Gauge>,
    last_job_succeeded: Family<JobLabels, Gauge>,
    /// The Schedule controller's cache while it runs (the leader's), read at every render.
    schedule_store: Mutex<Option<Store<Schedule>>>,
    /// Outcome of the newest finished object per (namespace, schedule, jobType).
    last_jobs: Mutex<BTreeMap<(String, String, JobType), bool>>,
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
        let schedules = Family::<JobLabels, Gauge>::default();
        registry.register(
            "k8up_schedules_gauge",
            "Number of scheduled actions (Schedule x action with a schedule expression) per namespace",
            schedules.clone(),
        );
        let last_job_succeeded = Family::<JobLabels, Gauge>::default();
        registry.register(
            "k8up_schedule_last_job_succeeded",
            "1 if the newest finished object a Schedule created for the action succeeded, 0 if it failed",
            last_job_succeeded.clone(),
        );
        Metrics {
            registry,
            plugin_loads,
            schedules,
            last_job_succeeded,
            schedule_store: Mutex::new(None),
            last_jobs: Mutex::new(BTreeMap::new()),
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

    /// Counts the Schedules in `store` from now on (`None` when the Schedule controller stops, e.g. on a
    /// replica that lost the leader Lease: only the leader reports Schedules).
    pub fn watch_schedules(&self, store: Option<Store<Schedule>>) {
        *lock(&self.schedule_store) = store;
    }

    /// Records how the newest object a Schedule created for `job_type` finished.
    pub fn schedule_job_finished(&self, namespace: &str, schedule: &str, job_type: JobType, succeeded: bool) {
        lock(&self.last_jobs).insert((namespace.to_string(), schedule.to_string(), job_type), succeeded);
    }

    /// Recomputes the Schedule gauges from the Schedule cache: a deleted Schedule (or action) leaves them.
    fn refresh_schedules(&self) {
        let store = lock(&self.schedule_store).clone();
        let Some(store) = store else {
            self.schedules.clear();
            self.last_job_succeeded.clear();
            return;
        };
        let mut per_namespace: BTreeMap<String, i64> = BTreeMap::new();
        let mut live = std::collections::BTreeSet::new();
        for schedule in store.state() {
            if schedule.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let ns = schedule.namespace().unwrap_or_default();
            let actions = schedule.spec.actions();
            let scheduled = actions.iter().filter(|a| a.common.schedule.is_some());
            for action in scheduled {
                *per_namespace.entry(ns.clone()).or_default() += 1;
                live.insert((ns.clone(), schedule.name_any(), action.job_type));
            }
        }
        self.schedules.clear();
        for (ns, count) in per_namespace {
            self.schedules
                .get_or_create(&vec![("namespace".to_string(), ns)])
                .set(count);
        }
        let mut last_jobs = lock(&self.last_jobs);
        last_jobs.retain(|key, _| live.contains(key));
        self.last_job_succeeded.clear();
        for ((ns, schedule, job_type), succeeded) in last_jobs.iter() {
            let labels = vec![
                ("namespace".to_string(), ns.clone()),
                ("schedule".to_string(), schedule.clone()),
                ("jobType".to_string(), job_type.as_str().to_string()),
            ];
            self.last_job_succeeded
                .get_or_create(&labels)
                .set(i64::from(*succeeded));
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        self.refresh_schedules();
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
