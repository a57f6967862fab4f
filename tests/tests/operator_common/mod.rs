//! Shared harness of the operator suites: a sandbox with the k8up CRDs, operator settings parsed from
//! flags like `k8up operator` does, and a test planner.
//!
//! The test planner stands in for the plugin engine (not merged into this branch yet): it plans like a
//! relaxed-mode backup (one Job per Bound PVC not annotated `k8up.io/backup=false`; one Job for the other
//! kinds) but its Jobs run a shell script taken from the object's `test.k8up.io/script` annotation, so a
//! test decides whether a Job succeeds, fails, runs long, or leaves a restic report.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8up::crd::{JobType, Status};
use k8up::operator::Controllers;
use k8up::operator::driver::{JobPlan, PlanError, PlanRequest, Planner};
use k8up::operator::metrics::Metrics;
use k8up::operator::settings::{OperatorArgs, OperatorSettings};
use k8up_tests::cluster::{Sandbox, SandboxConfig, wait_for};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde_json::json;

/// Upper bound of every wait (a deadline, not a speed assertion).
pub const LIMIT: Duration = Duration::from_secs(60);
/// Annotation carrying the script of the test Jobs.
pub const SCRIPT: &str = "test.k8up.io/script";

#[derive(Parser)]
struct Operator {
    #[command(flatten)]
    args: OperatorArgs,
}

/// Settings as `k8up operator <flags>` would validate them, with a global S3 repository and password.
pub fn settings(extra: &[&str]) -> OperatorSettings {
    let mut argv = vec![
        "operator",
        "--operator-namespace",
        "default",
        "--globals3endpoint",
        "http://s3.example:9000",
        "--globals3bucket",
        "backups",
        "--globalrepopassword",
        "secret-password",
    ];
    argv.extend_from_slice(extra);
    let args = Operator::try_parse_from(argv).unwrap().args;
    OperatorSettings::from_args(args).unwrap()
}

/// Settings without a global repository password (specs must name one).
pub fn settings_without_password() -> OperatorSettings {
    let args = Operator::try_parse_from([
        "operator",
        "--operator-namespace",
        "default",
        "--globals3endpoint",
        "http://s3.example:9000",
        "--globals3bucket",
        "backups",
    ])
    .unwrap()
    .args;
    OperatorSettings::from_args(args).unwrap()
}

/// A sandbox with every k8up CRD installed.
pub async fn sandbox() -> Sandbox {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(sb.client());
    for crd in k8up::crd::all() {
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(&name, &PatchParams::apply("test").force(), &Patch::Apply(&crd))
            .await
            .unwrap();
    }
    sb
}

/// The planner used by the operator suites (see the module docs).
/// Objects without the script annotation (e.g. those a Schedule creates) run `default_script`, else `exit 0`.
#[derive(Debug, Default)]
pub struct ScriptPlanner {
    pub default_script: Option<String>,
}

fn script_job(name: &str, script: &str) -> Job {
    serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "backoffLimit": 0,
            "template": { "spec": {
                "restartPolicy": "Never",
                "containers": [{ "name": "main", "image": "busybox", "command": ["sh", "-c", script] }],
            }},
        },
    }))
    .unwrap()
}

impl Planner for ScriptPlanner {
    fn plan<'a>(&'a self, request: PlanRequest<'a>) -> BoxFuture<'a, Result<JobPlan, PlanError>> {
        Box::pin(async move {
            let action = request.action;
            let script = action
                .annotations
                .get(SCRIPT)
                .cloned()
                .or_else(|| self.default_script.clone())
                .unwrap_or_else(|| "exit 0".to_string());
            let prefix = format!("{}-{}", action.job_type, action.name);
            if action.job_type != JobType::Backup {
                return Ok(JobPlan {
                    jobs: vec![script_job(&prefix, &script)],
                    message: None,
                });
            }
            let mut jobs = Vec::new();
            let annotation = &action.settings.annotations.backup;
            for (index, pvc) in request.observed.pvcs.iter().enumerate() {
                let bound = pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
                let opted_out = pvc
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(annotation))
                    .is_some_and(|v| v == "false");
                if bound && !opted_out {
                    jobs.push(script_job(&format!("{prefix}-{index}"), &script));
                }
            }
            Ok(JobPlan { jobs, message: None })
        })
    }
}

/// Creates the Job the test planner would make for `backup`'s first PVC (`backup-<name>-0`, running
/// `script`), labelled and owned like the operator's: what an operator that died before writing `started`
/// leaves behind.
pub async fn precreate_backup_job(client: &Client, backup: &k8up::crd::Backup, script: &str) -> Job {
    let name = backup.metadata.name.clone().unwrap_or_default();
    let mut job = script_job(&format!("backup-{name}-0"), script);
    job.metadata.labels = Some(
        [
            ("k8upjob", "true".to_string()),
            ("k8up.io/type", "backup".to_string()),
            ("k8up.io/owned-by", format!("backup_{name}")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    );
    job.metadata.owner_references = backup.controller_owner_ref(&()).map(|o| vec![o]);
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    jobs.create(&Default::default(), &job).await.unwrap()
}

/// Starts the operator's controllers in-process with the test planner.
pub fn start_operator(client: &Client, settings: OperatorSettings) -> Controllers {
    start_operator_with(client, settings, ScriptPlanner::default())
}

/// Starts the operator's controllers in-process with the given test planner.
pub fn start_operator_with(
    client: &Client,
    settings: OperatorSettings,
    planner: ScriptPlanner,
) -> Controllers {
    Controllers::start(
        client.clone(),
        Arc::new(settings),
        Arc::new(planner),
        Arc::new(Metrics::new()),
    )
}

/// Creates a RWX PVC and waits until it is Bound.
pub async fn bound_pvc(client: &Client, ns: &str, name: &str) {
    let api: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let pvc = serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "resources": { "requests": { "storage": "1Gi" } },
        },
    }))
    .unwrap();
    api.create(&Default::default(), &pvc).await.unwrap();
    wait_for(&format!("pvc {name} to bind"), LIMIT, || async {
        let p = api.get(name).await?;
        let bound = p.status.and_then(|s| s.phase).as_deref() == Some("Bound");
        Ok::<_, kube::Error>(bound.then_some(()))
    })
    .await
    .unwrap();
}

/// The Jobs labelled as owned by `<type>_<name>`.
pub async fn owned_jobs(client: &Client, ns: &str, owned_by: &str) -> Vec<Job> {
    let api: Api<Job> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default().labels(&format!("k8up.io/owned-by={owned_by}")))
        .await
        .unwrap()
        .items
}

/// Waits until `get` yields a status satisfying `pred`, returning it.
pub async fn wait_status<K, F>(api: &Api<K>, name: &str, what: &str, pred: F) -> Status
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + HasStatus,
    F: Fn(&Status) -> bool,
{
    wait_for(what, LIMIT, || async {
        let o = api.get(name).await?;
        let s = o.status_of().cloned().unwrap_or_default();
        Ok::<_, kube::Error>(pred(&s).then_some(s))
    })
    .await
    .unwrap()
}

/// Access to the common status of the action kinds.
pub trait HasStatus {
    fn status_of(&self) -> Option<&Status>;
}

macro_rules! has_status {
    ($($t:ty),*) => { $(impl HasStatus for $t { fn status_of(&self) -> Option<&Status> { self.status.as_ref() } })* };
}
has_status!(
    k8up::crd::Backup,
    k8up::crd::Restore,
    k8up::crd::Archive,
    k8up::crd::Check,
    k8up::crd::Prune
);

/// (type, status, reason) of every condition, sorted.
pub fn conditions(s: &Status) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = s
        .conditions
        .iter()
        .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
        .collect();
    v.sort();
    v
}

/// Whether the condition `type_` has the given status and reason.
pub fn has(s: &Status, type_: &str, status: &str, reason: &str) -> bool {
    s.condition(type_)
        .is_some_and(|c| c.status == status && c.reason == reason)
}

/// A tuple for [`conditions`] comparisons.
pub fn cond(t: &str, s: &str, r: &str) -> (String, String, String) {
    (t.to_string(), s.to_string(), r.to_string())
}
