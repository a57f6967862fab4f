//! Operator figures against the sandbox cluster: Backup-to-Job throughput against bare Job creates, the
//! precision of Schedules firing together, and the RSS of the operator process idle and loaded. Prints a
//! table per part with the goal in brackets; nothing is asserted (timing goals live here, not in tests).
//!
//! Run: `cargo bench --workspace --bench operator [-- [throughput] [schedules] [memory] [--quick]]`
//! (every part when none is named; `--quick` or `K8UP_BENCH_QUICK=1` uses small sizes for development;
//! `RUST_LOG` turns on the bench's and the in-process operator's logs).
//!
//! - **throughput** [operator/bare ≤ 2×]: 1,000 Backups in a namespace with one bound PVC, created 64 at
//!   a time, until their 1,000 Jobs (`k8up.io/type=backup`) are seen by a watch, against 1,000 creates
//!   (64 in flight) of copies of one of those Jobs; and the same creates one at a time, since the operator
//!   creates Jobs under one operator-wide start lock (`driver::concurrency::Gate`). Each side gets a fresh
//!   sandbox, with a warm-up object in another namespace first; medians of 3 repeats. The sandbox has no
//!   nodes, so no pod ever runs: the Job controller still creates the pods, which stay Pending.
//! - **schedules** [p99 ≤ 2 s]: 1,000 Schedules whose backup is due at the same minute (`M * * * *`); per
//!   created Backup, the time its watch event arrived minus the due time (and, at 1 s resolution, its
//!   `creationTimestamp` minus the due time). Waits up to two minutes for that minute to come.
//! - **memory** [≤ 64 MiB; K8up's chart limits it to 256Mi]: the `k8up operator` process alone (a
//!   subprocess on the sandbox's HTTPS kubeconfig, leader election off): VmRSS 5 s after `/readyz` on an
//!   empty cluster; then in a fresh sandbox holding 10,000 Schedules (backup, check and prune, none due) and
//!   10,000 finished Backups created before it starts, VmRSS 5 s after it wrote every Schedule's status, and
//!   again after a restart on those objects (nothing left to write); with the anonymous part and the peak
//!   (VmHWM). The binary is `$K8UP_BINARY`, else `k8up` beside this bench's profile directory
//!   (`target/release/k8up`, which `cargo bench --workspace` builds in the bench profile, or
//!   `cargo build --workspace --profile bench --bin k8up`), else `target/debug/k8up`; the table names it.
//!
//! Parts 1 and 2 run the operator's controllers in-process (embedded built-in plugins), in the same
//! process and runtime as the sandbox's API server: on a small machine they share its cores.

// A benchmark binary: failing to set up is a crash with the reason, like a test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::fmt::Debug;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Datelike, Timelike, Utc};
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8up::crd::{Backup, EffectiveSchedule, JobType, Schedule};
use k8up::operator::Controllers;
use k8up::operator::metrics::Metrics;
use k8up::operator::settings::{OperatorArgs, OperatorSettings};
use k8up::plugin::PluginPlanner;
use k8up_tests::api::ApiConfig;
use k8up_tests::cluster::{Sandbox, SandboxConfig, wait_for};
use k8up_tests::operator_process::{BinarySource, Memory, OperatorProcess};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

const USAGE: &str = "usage: operator [throughput] [schedules] [memory] [--quick]";
/// Creates in flight at once, for the Backups and for the bare Jobs alike.
const IN_FLIGHT: usize = 64;
/// Upper bound of every wait: a deadline against hangs, not a speed goal.
const LIMIT: Duration = Duration::from_secs(900);
/// How long the operator runs after it is ready (or synced) before its RSS is read.
const SETTLE: Duration = Duration::from_secs(5);
const MIB: f64 = 1024.0 * 1024.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Throughput,
    Schedules,
    Memory,
}

/// How many objects each part uses.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    backups: usize,
    repeats: usize,
    schedules: usize,
    /// Schedules, and as many finished Backups, in the loaded memory figure.
    memory_objects: usize,
    /// Namespaces the memory objects are spread over.
    memory_namespaces: usize,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Sizes {
                backups: 100,
                repeats: 3,
                schedules: 100,
                memory_objects: 1_000,
                memory_namespaces: 10,
            }
        } else {
            Sizes {
                backups: 1_000,
                repeats: 3,
                schedules: 1_000,
                memory_objects: 10_000,
                memory_namespaces: 100,
            }
        }
    }
}

fn options() -> (Vec<Part>, bool) {
    let mut parts = Vec::new();
    let mut quick = std::env::var("K8UP_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "throughput" => parts.push(Part::Throughput),
            "schedules" => parts.push(Part::Schedules),
            "memory" => parts.push(Part::Memory),
            "--quick" => quick = true,
            // Cargo passes `--bench` to every benchmark binary.
            "--bench" => {}
            other => panic!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if parts.is_empty() {
        parts = vec![Part::Throughput, Part::Schedules, Part::Memory];
    }
    (parts, quick)
}

#[tokio::main]
async fn main() {
    let (parts, quick) = options();
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let sizes = Sizes::new(quick);
    let started = Instant::now();
    let in_process = parts.iter().any(|p| *p != Part::Memory);
    let planner = if in_process {
        Some(Arc::new(
            PluginPlanner::with_builtins(&settings().plugins).await.unwrap(),
        ))
    } else {
        None
    };
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            println!();
        }
        match (part, &planner) {
            (Part::Throughput, Some(planner)) => throughput(planner, sizes).await,
            (Part::Schedules, Some(planner)) => schedules(planner, sizes).await,
            (Part::Memory, _) => memory(sizes).await,
            _ => unreachable!("the planner is built for every in-process part"),
        }
    }
    println!(
        "\n({}; {:.0} s in all)",
        if quick { "quick sizes" } else { "full sizes" },
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------------------
// The sandbox and the in-process operator

#[derive(Parser)]
struct Operator {
    #[command(flatten)]
    args: OperatorArgs,
}

/// The flags both the in-process and the subprocess operator run with: a global S3 repository and password,
/// so a Backup with an empty spec is valid.
const OPERATOR_FLAGS: [&str; 8] = [
    "--operator-namespace",
    "default",
    "--globals3endpoint",
    "http://s3.example:9000",
    "--globals3bucket",
    "backups",
    "--globalrepopassword",
    "bench-password",
];

fn settings() -> OperatorSettings {
    let argv = std::iter::once("operator").chain(OPERATOR_FLAGS);
    OperatorSettings::from_args(Operator::try_parse_from(argv).unwrap().args).unwrap()
}

fn start_operator(client: &Client, planner: &Arc<PluginPlanner>) -> Controllers {
    Controllers::start(
        client.clone(),
        Arc::new(settings()),
        planner.clone(),
        Arc::new(Metrics::new()),
    )
}

/// A sandbox without nodes (pods are created but never run) and with the k8up CRDs.
async fn sandbox(api: ApiConfig) -> Sandbox {
    let sb = Sandbox::start(SandboxConfig {
        nodes: Vec::new(),
        api,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(sb.client());
    for crd in k8up::crd::all() {
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(&name, &PatchParams::apply("bench").force(), &Patch::Apply(&crd))
            .await
            .unwrap();
    }
    sb
}

async fn create_namespace(client: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

/// A namespace with one RWX PVC `data`, waited for until Bound: each Backup in it plans one Job.
async fn namespace_with_pvc(client: &Client, ns: &str) {
    create_namespace(client, ns).await;
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let pvc = serde_json::from_value(json!({
        "metadata": { "name": "data" },
        "spec": { "accessModes": ["ReadWriteMany"], "resources": { "requests": { "storage": "1Gi" } } },
    }))
    .unwrap();
    api.create(&PostParams::default(), &pvc).await.unwrap();
    wait_for("pvc data to bind", LIMIT, || async {
        let p = api.get("data").await?;
        let bound = p.status.and_then(|s| s.phase).as_deref() == Some("Bound");
        Ok::<_, kube::Error>(bound.then_some(()))
    })
    .await
    .unwrap();
}

/// Like [`wait_for`], but once a second: for probes that list many objects, which would otherwise load the
/// API server (and so the figures) themselves.
async fn poll<T, F, Fut>(what: &str, mut probe: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, kube::Error>>,
{
    let deadline = Instant::now() + LIMIT;
    loop {
        let last = match probe().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => "not yet".to_string(),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "timed out after {LIMIT:?} waiting for {what}; last seen: {last}"
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs `f` on every item, [`IN_FLIGHT`] at a time.
async fn in_flight<I, F, Fut>(items: I, f: F)
where
    I: IntoIterator,
    F: Fn(I::Item) -> Fut,
    Fut: Future<Output = ()>,
{
    at_most(IN_FLIGHT, items, f).await;
}

/// Runs `f` on every item, `limit` at a time.
async fn at_most<I, F, Fut>(limit: usize, items: I, f: F)
where
    I: IntoIterator,
    F: Fn(I::Item) -> Fut,
    Fut: Future<Output = ()>,
{
    futures::stream::iter(items).for_each_concurrent(limit, f).await;
}

async fn create<K>(api: &Api<K>, value: Value) -> K
where
    K: Resource + Clone + DeserializeOwned + serde::Serialize + Debug,
{
    let object: K = serde_json::from_value(value).unwrap();
    api.create(&PostParams::default(), &object).await.unwrap()
}

/// An object as a watch first showed it.
#[derive(Debug)]
struct Arrival {
    at: SystemTime,
    /// `metadata.creationTimestamp` in Unix seconds.
    created: Option<i64>,
}

/// Watches `api` and returns once the watch has listed what exists, with a channel of the objects as
/// they first appear (by name; objects listed at the start are reported too).
async fn arrivals<K>(api: Api<K>, config: watcher::Config) -> mpsc::UnboundedReceiver<Arrival>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    K::DynamicType: Default,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = oneshot::channel();
    tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        let mut seen = HashSet::new();
        let mut events = watcher(api, config).boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                    let at = SystemTime::now();
                    if seen.insert(o.meta().name.clone().unwrap_or_default()) {
                        let created = o.meta().creation_timestamp.as_ref().map(|t| t.0.as_second());
                        if tx.send(Arrival { at, created }).is_err() {
                            return;
                        }
                    }
                }
                Ok(watcher::Event::InitDone) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "bench watch");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    ready_rx.await.unwrap();
    rx
}

/// The next `n` arrivals, or fewer when `deadline` passes first.
async fn collect(rx: &mut mpsc::UnboundedReceiver<Arrival>, n: usize, deadline: Instant) -> Vec<Arrival> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(a)) => out.push(a),
            Ok(None) | Err(_) => break,
        }
    }
    out
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// ---------------------------------------------------------------------------------------------------------
// Part 1: throughput

const JOB_SELECTOR: &str = "k8up.io/type=backup";

fn backup(name: &str) -> Value {
    json!({ "apiVersion": "k8up.io/v1", "kind": "Backup", "metadata": { "name": name }, "spec": {} })
}

async fn throughput(planner: &Arc<PluginPlanner>, sizes: Sizes) {
    let n = sizes.backups;
    println!(
        "throughput: {n} Backups -> {n} Jobs by the operator vs {n} bare Job creates ({IN_FLIGHT} in flight; \
         also one at a time, as the operator's start lock creates them), fresh sandbox per side, {} repeats",
        sizes.repeats
    );
    println!(
        "{:<8} {:>11} {:>11} {:>14} {:>18} {:>8} {:>10}",
        "repeat", "bare", "bare 1-by-1", "operator", "(Backups created)", "ratio", "ratio 1:1"
    );
    let mut walls: [Vec<f64>; 3] = Default::default();
    let mut ratios: [Vec<f64>; 2] = Default::default();
    for repeat in 1..=sizes.repeats {
        let (operator, created, template) = operator_side(planner, n).await;
        let bare = bare_side(&template, n, IN_FLIGHT).await;
        let serial = bare_side(&template, n, 1).await;
        println!(
            "{repeat:<8} {bare:>9.2} s {serial:>9.2} s {operator:>12.2} s {created:>16.2} s {:>7.2}x {:>9.2}x",
            operator / bare,
            operator / serial
        );
        for (all, v) in walls.iter_mut().zip([bare, serial, operator]) {
            all.push(v);
        }
        ratios[0].push(operator / bare);
        ratios[1].push(operator / serial);
    }
    let [bare, serial, operator] = walls.map(median);
    let [ratio, ratio_serial] = ratios.map(median);
    println!(
        "{:<8} {bare:>9.2} s {serial:>9.2} s {operator:>12.2} s {:>18} {ratio:>7.2}x {ratio_serial:>9.2}x   \
         [goal: ratio <= 2x]",
        "median", ""
    );
}

/// Wall time from the first Backup create until the watch saw all `n` Jobs, the time the creates took, and
/// one of the Jobs (from the warm-up) as the template of the bare side.
async fn operator_side(planner: &Arc<PluginPlanner>, n: usize) -> (f64, f64, Value) {
    let sb = sandbox(ApiConfig::default()).await;
    let client = sb.client();
    namespace_with_pvc(&client, "warmup").await;
    namespace_with_pvc(&client, "bench").await;
    let operator = start_operator(&client, planner);

    // Warm-up: the controllers' watches are established and the first plan is made.
    let warm_jobs: Api<Job> = Api::namespaced(client.clone(), "warmup");
    let mut warm = arrivals(warm_jobs.clone(), watcher::Config::default().labels(JOB_SELECTOR)).await;
    create::<Backup>(&Api::namespaced(client.clone(), "warmup"), backup("warmup")).await;
    let seen = collect(&mut warm, 1, Instant::now() + LIMIT).await;
    assert_eq!(seen.len(), 1, "the warm-up Backup got no Job");
    let template = warm_jobs
        .list(&ListParams::default().labels(JOB_SELECTOR))
        .await
        .unwrap()
        .items
        .remove(0);
    // The sandbox runs no Jobs: the warm-up Job is marked Complete by hand, so the operator knows the
    // shared repository exists (else its new-repository rule admits one Job at a time, each waiting for the
    // previous one to finish, which never happens here) and the warm-up Backup finishes.
    let complete = json!({ "status": {
        "succeeded": 1,
        "conditions": [
            { "type": "SuccessCriteriaMet", "status": "True" },
            { "type": "Complete", "status": "True" },
        ],
    }});
    warm_jobs
        .patch_status(
            template.metadata.name.as_deref().unwrap(),
            &PatchParams::default(),
            &Patch::Merge(&complete),
        )
        .await
        .unwrap();
    let warm_backups: Api<Backup> = Api::namespaced(client.clone(), "warmup");
    poll("the warm-up Backup to finish", || async {
        let b = warm_backups.get("warmup").await?;
        Ok::<_, kube::Error>(b.status.is_some_and(|s| s.finished).then_some(()))
    })
    .await
    .unwrap();

    let backups: Api<Backup> = Api::namespaced(client.clone(), "bench");
    let mut jobs = arrivals(
        Api::<Job>::namespaced(client.clone(), "bench"),
        watcher::Config::default().labels(JOB_SELECTOR),
    )
    .await;
    let start = Instant::now();
    in_flight(0..n, |i| {
        let backups = backups.clone();
        async move {
            create(&backups, backup(&format!("b-{i}"))).await;
        }
    })
    .await;
    let created = start.elapsed();
    let seen = collect(&mut jobs, n, start + LIMIT).await;
    let wall = start.elapsed();
    if seen.len() < n {
        println!(
            "  (operator side: only {} of {n} Jobs within {LIMIT:?})",
            seen.len()
        );
    }
    operator.shutdown().await;
    sb.shutdown().await;
    (secs(wall), secs(created), bare_template(&template))
}

/// The operator's Job as a create body: its labels, annotations and spec, without what the API server and
/// the Job controller added (uid, owner, selector, status).
fn bare_template(job: &Job) -> Value {
    let mut v = serde_json::to_value(job).unwrap();
    v["metadata"] = json!({
        "labels": v["metadata"]["labels"].clone(),
        "annotations": v["metadata"]["annotations"].clone(),
    });
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    if let Some(spec) = v["spec"].as_object_mut() {
        spec.remove("selector");
        spec.remove("manualSelector");
    }
    if let Some(labels) = v["spec"]["template"]["metadata"]["labels"].as_object_mut() {
        for generated in [
            "controller-uid",
            "job-name",
            "batch.kubernetes.io/controller-uid",
            "batch.kubernetes.io/job-name",
        ] {
            labels.remove(generated);
        }
    }
    v
}

/// Wall time from the first of `n` Job creates (copies of `template`, `limit` in flight) until the watch
/// saw them all.
async fn bare_side(template: &Value, n: usize, limit: usize) -> f64 {
    let sb = sandbox(ApiConfig::default()).await;
    let client = sb.client();
    namespace_with_pvc(&client, "warmup").await;
    namespace_with_pvc(&client, "bench").await;
    let copy = |name: String| {
        let mut v = template.clone();
        v["metadata"]["name"] = json!(name);
        v
    };
    create::<Job>(&Api::namespaced(client.clone(), "warmup"), copy("warmup".into())).await;

    let api: Api<Job> = Api::namespaced(client.clone(), "bench");
    let mut jobs = arrivals(api.clone(), watcher::Config::default().labels(JOB_SELECTOR)).await;
    let start = Instant::now();
    at_most(limit, 0..n, |i| {
        let (api, body) = (api.clone(), copy(format!("bare-{i}")));
        async move {
            create::<Job>(&api, body).await;
        }
    })
    .await;
    let seen = collect(&mut jobs, n, start + LIMIT).await;
    let wall = start.elapsed();
    if seen.len() < n {
        println!("  (bare side: only {} of {n} Jobs within {LIMIT:?})", seen.len());
    }
    sb.shutdown().await;
    secs(wall)
}

// ---------------------------------------------------------------------------------------------------------
// Part 2: schedule precision

async fn schedules(planner: &Arc<PluginPlanner>, sizes: Sizes) {
    let n = sizes.schedules;
    let sb = sandbox(ApiConfig::default()).await;
    let client = sb.client();
    create_namespace(&client, "bench").await;
    let operator = start_operator(&client, planner);

    // Far enough ahead for every Schedule to be created and reconciled before it is due.
    let margin = chrono::Duration::seconds(if n > 200 { 40 } else { 15 });
    let due = next_minute(Utc::now() + margin);
    let cron = format!("{} * * * *", due.minute());
    println!(
        "schedules: {n} Schedules `{cron}` due at {} UTC; lateness of each created Backup",
        due.format("%H:%M:%S")
    );

    let api: Api<Schedule> = Api::namespaced(client.clone(), "bench");
    let setup = Instant::now();
    in_flight(0..n, |i| {
        let (api, cron) = (api.clone(), cron.clone());
        async move {
            create(
                &api,
                json!({
                    "apiVersion": "k8up.io/v1",
                    "kind": "Schedule",
                    "metadata": { "name": format!("s-{i}") },
                    "spec": { "backup": { "schedule": cron } },
                }),
            )
            .await;
        }
    })
    .await;
    let effective: Api<EffectiveSchedule> = Api::namespaced(client.clone(), "bench");
    poll("every EffectiveSchedule to name the due time", || async {
        let list = effective.list(&ListParams::default()).await?;
        let ready = list
            .items
            .iter()
            .filter(|e| {
                e.spec.schedules.iter().any(|s| {
                    s.job_type == JobType::Backup
                        && s.next_run.as_ref().map(|t| t.0.as_second()) == Some(due.timestamp())
                })
            })
            .count();
        Ok::<_, kube::Error>((ready == n).then_some(()))
    })
    .await
    .unwrap();
    let ahead = (due - Utc::now()).num_milliseconds() as f64 / 1000.0;
    println!(
        "  (set up in {:.1} s, {ahead:.1} s before the due time{})",
        secs(setup.elapsed()),
        if ahead < 1.0 {
            "; too late: the figures include setup"
        } else {
            ""
        }
    );

    let mut backups = arrivals(
        Api::<Backup>::namespaced(client.clone(), "bench"),
        Default::default(),
    )
    .await;
    let wait = (due - Utc::now()).to_std().unwrap_or_default();
    let seen = collect(&mut backups, n, Instant::now() + wait + Duration::from_secs(120)).await;
    let due_at = SystemTime::from(due);
    let mut by_watch: Vec<f64> = seen
        .iter()
        .map(|a| match a.at.duration_since(due_at) {
            Ok(late) => late.as_secs_f64(),
            Err(early) => -early.duration().as_secs_f64(),
        })
        .collect();
    let mut by_created: Vec<f64> = seen
        .iter()
        .filter_map(|a| a.created)
        .map(|c| (c - due.timestamp()) as f64)
        .collect();
    by_watch.sort_by(f64::total_cmp);
    by_created.sort_by(f64::total_cmp);
    println!(
        "{:<34} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "lateness", "Backups", "min", "p50", "p99", "max"
    );
    for (what, values) in [
        ("watch event - due", &by_watch),
        ("creationTimestamp - due (1 s res.)", &by_created),
    ] {
        println!(
            "{what:<34} {:>9} {:>6.2} s {:>6.2} s {:>6.2} s {:>6.2} s",
            values.len(),
            values.first().copied().unwrap_or(f64::NAN),
            percentile(values, 50.0),
            percentile(values, 99.0),
            values.last().copied().unwrap_or(f64::NAN),
        );
    }
    println!("[goal: p99 <= 2 s; {} of {n} Backups seen]", seen.len());
    operator.shutdown().await;
    sb.shutdown().await;
}

/// The first whole minute at or after `t`.
fn next_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    let floor = DateTime::from_timestamp(t.timestamp() - t.timestamp().rem_euclid(60), 0).unwrap();
    if floor == t {
        floor
    } else {
        floor + chrono::Duration::minutes(1)
    }
}

// ---------------------------------------------------------------------------------------------------------
// Part 3: memory of the operator process

/// The `k8up` binary to measure, and where it was found.
fn operator_binary() -> (PathBuf, &'static str) {
    match k8up_tests::operator_process::operator_binary() {
        Some((p, BinarySource::Env)) => (p, "$K8UP_BINARY"),
        Some((p, BinarySource::ProfileDir)) => (p, "the bench's profile directory (bench/release profile)"),
        Some((p, BinarySource::Debug)) => (
            p,
            "target/debug: a DEBUG build, not representative (build the bench profile: \
             `cargo build --workspace --profile bench --bin k8up`)",
        ),
        None => panic!(
            "no k8up binary: set K8UP_BINARY or run `cargo build --workspace --profile bench --bin k8up`"
        ),
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB
}

async fn memory(sizes: Sizes) {
    let (binary, found) = operator_binary();
    let n = sizes.memory_objects;
    let logs = tempfile::Builder::new()
        .prefix("k8up-bench-operator-")
        .tempdir()
        .unwrap();
    let built = std::fs::metadata(&binary)
        .and_then(|m| m.modified())
        .map(|t| DateTime::<Utc>::from(t).format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|e| format!("unknown: {e}"));
    println!(
        "memory: RSS of the `k8up operator` process\n  binary: {} (from {found}; built {built})",
        binary.display()
    );
    println!(
        "{:<52} {:>10} {:>10} {:>10} {:>9}",
        "state", "VmRSS", "RssAnon", "VmHWM", "sync"
    );
    let row = |state: &str, m: Memory, sync: Duration| {
        println!(
            "{state:<52} {:>6.1} MiB {:>6.1} MiB {:>6.1} MiB {:>7.1} s",
            mib(m.rss),
            mib(m.anon),
            mib(m.hwm),
            secs(sync)
        );
    };

    // Idle: an empty cluster with the CRDs.
    let sb = sandbox(ApiConfig::default()).await;
    let start = Instant::now();
    let operator = OperatorProcess::start(
        &binary,
        sb.kubeconfig_path(),
        &OPERATOR_FLAGS,
        logs.path().join("idle.log"),
    )
    .await;
    let ready = start.elapsed();
    tokio::time::sleep(SETTLE).await;
    row("idle (empty cluster)", operator.memory(), ready);
    operator.stop().await;
    sb.shutdown().await;

    // Loaded: everything exists before the operator starts, so its initial lists see it all. A long watch
    // history, so that no watch of the operator falls behind the writes of its first sync and relists.
    let sb = sandbox(ApiConfig {
        watch_history: 1_000_000,
        ..ApiConfig::default()
    })
    .await;
    let client = sb.client();
    let load = Instant::now();
    populate(&client, n, sizes.memory_namespaces).await;
    let populated = load.elapsed();

    // First start: it writes every Schedule's EffectiveSchedule and status.
    let start = Instant::now();
    let operator = OperatorProcess::start(
        &binary,
        sb.kubeconfig_path(),
        &OPERATOR_FLAGS,
        logs.path().join("loaded.log"),
    )
    .await;
    let schedules: Api<Schedule> = Api::all(client.clone());
    let synced = poll("every Schedule to be Ready", || async {
        let list = schedules.list(&ListParams::default()).await?;
        let ready = list
            .items
            .iter()
            .filter(|s| {
                s.status.as_ref().is_some_and(|st| {
                    st.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                })
            })
            .count();
        Ok::<_, kube::Error>((ready == n).then_some(()))
    })
    .await;
    let sync = start.elapsed();
    if let Err(e) = synced {
        println!("  ({e})");
    }
    tokio::time::sleep(SETTLE).await;
    row(
        &format!("{n} Schedules + {n} finished Backups, first start"),
        operator.memory(),
        sync,
    );
    operator.stop().await;

    // Restart on the same objects, all written already: it only reads. Synced when its Schedule cache
    // counts every scheduled action (three per Schedule).
    let start = Instant::now();
    let operator = OperatorProcess::start(
        &binary,
        sb.kubeconfig_path(),
        &OPERATOR_FLAGS,
        logs.path().join("restart.log"),
    )
    .await;
    let synced = poll("the Schedule cache to hold every Schedule", || async {
        Ok((operator.scheduled_actions().await == Some(3 * n)).then_some(()))
    })
    .await;
    let sync = start.elapsed();
    if let Err(e) = synced {
        println!("  ({e})");
    }
    tokio::time::sleep(SETTLE).await;
    row(
        "  the same, restarted (nothing to write)",
        operator.memory(),
        sync,
    );
    operator.stop().await;
    sb.shutdown().await;
    println!(
        "[goal: VmRSS <= 64 MiB; K8up's chart limits it to 256Mi. VmRSS {} s after ready (idle) or after the \
         sync (every Schedule Ready; restart: all in its cache), VmHWM the peak; objects in {} namespaces, \
         created in {:.0} s]",
        SETTLE.as_secs(),
        sizes.memory_namespaces,
        secs(populated)
    );
}

/// A cron expression for this time two days ago: its next tick is a year away.
fn far_cron(minute_offset: u32) -> String {
    let t = Utc::now() - chrono::Duration::days(2);
    format!(
        "{} {} {} {} *",
        (t.minute() + minute_offset) % 60,
        t.hour(),
        t.day(),
        t.month()
    )
}

/// `n` Schedules (backup, check and prune, none due) and `n` finished, already cleaned-up Backups, spread
/// over `namespaces` namespaces.
async fn populate(client: &Client, n: usize, namespaces: usize) {
    let names: Vec<String> = (0..namespaces).map(|i| format!("app-{i}")).collect();
    in_flight(names.iter(), |ns| create_namespace(client, ns)).await;
    let backend = json!({
        "repoPasswordSecretRef": { "name": "backup-repo", "key": "password" },
        "s3": {
            "endpoint": "http://minio.storage:9000",
            "bucket": "backups",
            "accessKeyIDSecretRef": { "name": "backup-credentials", "key": "username" },
            "secretAccessKeySecretRef": { "name": "backup-credentials", "key": "password" },
        },
    });
    let (backup_cron, check_cron, prune_cron) = (far_cron(0), far_cron(20), far_cron(40));
    let finished_at = (Utc::now() - chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let condition = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({
            "type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": finished_at, "observedGeneration": 1,
        })
    };
    let status = json!({ "status": {
        "started": true,
        "finished": true,
        "conditions": [
            condition("PreBackupPodReady", "True", "NoPreBackupPodsFound", "no PreBackupPods found"),
            condition("Ready", "True", "Ready", "the jobs were started"),
            condition("Progressing", "False", "Finished", "the jobs finished"),
            condition("Completed", "True", "Succeeded", "the jobs succeeded"),
            condition("Scrubbed", "True", "Succeeded", "Deleted 0 resources"),
        ],
    }});
    in_flight(0..n, |i| {
        let ns = &names[i % namespaces];
        let schedules: Api<Schedule> = Api::namespaced(client.clone(), ns);
        let backups: Api<Backup> = Api::namespaced(client.clone(), ns);
        let body = json!({
            "apiVersion": "k8up.io/v1",
            "kind": "Schedule",
            "metadata": { "name": format!("schedule-{i}") },
            "spec": {
                "backend": backend,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 2,
                "backup": { "schedule": backup_cron, "tags": ["nightly"] },
                "check": { "schedule": check_cron },
                "prune": { "schedule": prune_cron, "retention": { "keepLast": 5, "keepDaily": 14 } },
            },
        });
        let backup = json!({
            "apiVersion": "k8up.io/v1",
            "kind": "Backup",
            "metadata": { "name": format!("backup-{i}"), "labels": { "k8up.io/schedule": format!("schedule-{i}") } },
            "spec": { "backend": backend, "tags": ["nightly"] },
        });
        let status = &status;
        async move {
            create(&schedules, body).await;
            let name = format!("backup-{i}");
            create(&backups, backup).await;
            backups
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
                .await
                .unwrap();
        }
    })
    .await;
}
