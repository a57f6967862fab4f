//! The Schedule controller against the sandbox, with short `@every` schedules: objects are created at the
//! ticks with the Schedule's defaults merged, a long-running object makes later ticks skipped rather than
//! queued, invalid expressions are reported, a restart creates no duplicate, and deleting a Schedule takes
//! its EffectiveSchedule with it.

// Helpers outside `#[test]` functions fail the calling test by panicking, like assertions do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod operator_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::coordination::v1::Lease;
use k8up::crd::{Backup, EffectiveSchedule, JobType, Prune, Schedule};
use k8up::operator::Controllers;
use k8up::operator::driver::{JobPlan, PlanError, PlanRequest, Planner};
use k8up::operator::leader::{Elector, lead_while_elected};
use k8up::operator::metrics::Metrics;
use k8up::operator::settings::OperatorSettings;
use k8up_tests::cluster::wait_for;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use operator_common::*;
use serde_json::json;
use tokio_util::sync::CancellationToken;

const NS: &str = "default";

async fn create_schedule(client: &Client, name: &str, spec: serde_json::Value) {
    let api: Api<Schedule> = Api::namespaced(client.clone(), NS);
    let schedule = serde_json::from_value(json!({ "metadata": { "name": name }, "spec": spec })).unwrap();
    api.create(&PostParams::default(), &schedule).await.unwrap();
}

async fn scheduled<K>(client: &Client, schedule: &str) -> Vec<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), NS);
    api.list(&ListParams::default().labels(&format!("k8up.io/schedule={schedule}")))
        .await
        .unwrap()
        .items
}

async fn effective(client: &Client, name: &str) -> Option<EffectiveSchedule> {
    Api::<EffectiveSchedule>::namespaced(client.clone(), NS)
        .get_opt(name)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_creates_its_actions_at_the_ticks_with_the_schedule_defaults_merged() {
    let sb = sandbox().await;
    let client = sb.client();
    let controllers = start_operator(&client, settings(&[]));
    create_schedule(
        &client,
        "nightly",
        json!({
            "backend": { "repoPasswordSecretRef": { "name": "repo", "key": "password" },
                         "rest": { "url": "http://rest.example:8000/nightly" } },
            "successfulJobsHistoryLimit": 5,
            "podConfigRef": { "name": "defaults" },
            "backup": { "schedule": "@every 2s", "tags": ["scheduled"] },
            "prune": { "schedule": "@every 3s", "retention": { "keepLast": 2 },
                       "backend": { "repoPasswordSecretRef": { "name": "other", "key": "pw" },
                                    "local": { "mountPath": "/repo" } } },
        }),
    )
    .await;

    let backups = wait_for("two scheduled Backups", LIMIT, || async {
        let b: Vec<Backup> = scheduled(&client, "nightly").await;
        Ok::<_, kube::Error>((b.len() >= 2).then_some(b))
    })
    .await
    .unwrap();
    let schedule = Api::<Schedule>::namespaced(client.clone(), NS)
        .get("nightly")
        .await
        .unwrap();
    for b in &backups {
        assert!(b.name_any().starts_with("nightly-backup-"), "{}", b.name_any());
        let owner = &b.owner_references()[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("Schedule", Some(true)));
        assert_eq!(Some(&owner.uid), schedule.metadata.uid.as_ref());
        let spec = serde_json::to_value(&b.spec).unwrap();
        assert_eq!(
            spec["backend"]["rest"]["url"], "http://rest.example:8000/nightly",
            "{spec}"
        );
        assert_eq!(spec["tags"], json!(["scheduled"]));
        assert_eq!(spec["successfulJobsHistoryLimit"], 5);
        assert_eq!(spec["podConfigRef"]["name"], "defaults");
    }
    let prunes = wait_for("a scheduled Prune", LIMIT, || async {
        let p: Vec<Prune> = scheduled(&client, "nightly").await;
        Ok::<_, kube::Error>((!p.is_empty()).then_some(p))
    })
    .await
    .unwrap();
    let spec = serde_json::to_value(&prunes[0].spec).unwrap();
    assert_eq!(
        spec["backend"]["local"]["mountPath"], "/repo",
        "the sub-spec's own backend wins: {spec}"
    );

    let es = effective(&client, "nightly").await.expect("an EffectiveSchedule");
    assert_eq!(es.spec.schedule_ref.name, "nightly");
    assert_eq!(es.owner_references()[0].kind, "Schedule");
    let entry = es.spec.entry(JobType::Backup).unwrap();
    assert_eq!(entry.schedule, "@every 2s");
    assert!(entry.next_run.is_some() && entry.last_run.is_some(), "{entry:?}");
    assert!(
        entry
            .last_object
            .as_deref()
            .unwrap()
            .starts_with("nightly-backup-")
    );
    let status = schedule.status.unwrap_or_default();
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True"),
        "{status:?}"
    );

    // The gauges: two scheduled actions in the namespace, the newest scheduled Backup succeeded (the test
    // planner's Jobs exit 0).
    let metrics = controllers.context().metrics.clone();
    let succeeded =
        r#"k8up_schedule_last_job_succeeded{namespace="default",schedule="nightly",jobType="backup"} 1"#;
    let text = wait_for("a finished scheduled Backup in the metrics", LIMIT, || async {
        let text = metrics.render().unwrap();
        Ok::<_, kube::Error>(text.contains(succeeded).then_some(text))
    })
    .await
    .unwrap();
    assert!(
        text.contains(r#"k8up_schedules_gauge{namespace="default"} 2"#),
        "{text}"
    );

    // Deleting the Schedule takes its EffectiveSchedule (and its objects) with it, and its gauges.
    Api::<Schedule>::namespaced(client.clone(), NS)
        .delete("nightly", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("the EffectiveSchedule to go", LIMIT, || async {
        Ok::<_, kube::Error>(effective(&client, "nightly").await.is_none().then_some(()))
    })
    .await
    .unwrap();
    wait_for("the Schedule gauges to go", LIMIT, || async {
        let text = metrics.render().unwrap();
        Ok::<_, kube::Error>(
            (!text.contains("k8up_schedules_gauge{") && !text.contains(succeeded)).then_some(()),
        )
    })
    .await
    .unwrap();
    controllers.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_running_backup_makes_later_ticks_skipped_not_queued_and_a_restart_duplicates_nothing() {
    let sb = sandbox().await;
    let client = sb.client();
    let planner = ScriptPlanner {
        default_script: Some("sleep 60".to_string()),
    };
    // A PVC to back up, so the Backup has a Job (which sleeps) instead of completing with nothing to do.
    bound_pvc(&client, NS, "data").await;
    let controllers = start_operator_with(&client, settings(&[]), planner);
    create_schedule(&client, "busy", json!({ "backup": { "schedule": "@every 1s" } })).await;
    let es = wait_for("three skipped ticks", LIMIT, || async {
        let es = effective(&client, "busy").await;
        let skipped = es
            .as_ref()
            .and_then(|e| e.spec.entry(JobType::Backup))
            .map_or(0, |e| e.skipped_ticks);
        Ok::<_, kube::Error>((skipped >= 3).then_some(es))
    })
    .await
    .unwrap()
    .unwrap();
    let backups: Vec<Backup> = scheduled(&client, "busy").await;
    assert_eq!(backups.len(), 1, "one run, the other ticks skipped: {es:?}");
    assert_eq!(
        es.spec.entry(JobType::Backup).unwrap().last_object.as_deref(),
        Some(backups[0].name_any().as_str())
    );

    // A restarted operator picks up where the EffectiveSchedule says and still creates no second Backup.
    controllers.shutdown().await;
    let planner = ScriptPlanner {
        default_script: Some("sleep 60".to_string()),
    };
    let controllers = start_operator_with(&client, settings(&[]), planner);
    let before = es.spec.entry(JobType::Backup).unwrap().skipped_ticks;
    wait_for("more skipped ticks after the restart", LIMIT, || async {
        let skipped = effective(&client, "busy")
            .await
            .and_then(|e| e.spec.entry(JobType::Backup).map(|e| e.skipped_ticks))
            .unwrap_or(0);
        Ok::<_, kube::Error>((skipped >= before + 2).then_some(()))
    })
    .await
    .unwrap();
    let backups: Vec<Backup> = scheduled(&client, "busy").await;
    assert_eq!(backups.len(), 1);
    controllers.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_expression_makes_the_schedule_not_ready_quoting_it_and_creates_nothing() {
    let sb = sandbox().await;
    let client = sb.client();
    let controllers = start_operator(&client, settings(&[]));
    create_schedule(
        &client,
        "broken",
        json!({ "backup": { "schedule": "61 * * * *" }, "check": { "schedule": "@every 1s" } }),
    )
    .await;
    let api: Api<Schedule> = Api::namespaced(client.clone(), NS);
    let ready = wait_for("Ready=False", LIMIT, || async {
        let s = api.get("broken").await?;
        let c = s
            .status
            .unwrap_or_default()
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready" && c.status == "False");
        Ok::<_, kube::Error>(c)
    })
    .await
    .unwrap();
    assert!(ready.message.contains("61 * * * *"), "{}", ready.message);
    assert_eq!(ready.reason, "InvalidSchedule");
    // The valid action still runs; the invalid one creates nothing.
    wait_for("a scheduled Check", LIMIT, || async {
        let c: Vec<k8up::crd::Check> = scheduled(&client, "broken").await;
        Ok::<_, kube::Error>((!c.is_empty()).then_some(()))
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let backups: Vec<Backup> = scheduled(&client, "broken").await;
    assert!(backups.is_empty());
    controllers.shutdown().await;
    sb.shutdown().await;
}

/// Counts the actions one operator planned, so a test can tell which replica reconciled.
struct Counting {
    inner: ScriptPlanner,
    planned: Arc<AtomicUsize>,
}

impl Planner for Counting {
    fn plan<'a>(&'a self, request: PlanRequest<'a>) -> BoxFuture<'a, Result<JobPlan, PlanError>> {
        self.planned.fetch_add(1, Ordering::SeqCst);
        self.inner.plan(request)
    }
}

struct Replica {
    planned: Arc<AtomicUsize>,
    token: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// One operator replica with leader election, as `k8up operator` runs it.
fn replica(client: &Client, identity: &str, settings: OperatorSettings) -> Replica {
    let planned = Arc::new(AtomicUsize::new(0));
    let planner: Arc<dyn Planner> = Arc::new(Counting {
        inner: ScriptPlanner::default(),
        planned: planned.clone(),
    });
    let settings = Arc::new(settings);
    let elector = Elector::new(
        client.clone(),
        &settings.operator_namespace,
        identity,
        settings.leader_election.clone(),
    );
    let token = CancellationToken::new();
    let client = client.clone();
    let task = tokio::spawn(lead_while_elected(elector, token.clone(), move || {
        Controllers::start(
            client.clone(),
            settings.clone(),
            planner.clone(),
            Arc::new(Metrics::new()),
        )
    }));
    Replica { planned, token, task }
}

async fn holder(client: &Client) -> Option<String> {
    Api::<Lease>::namespaced(client.clone(), NS)
        .get_opt("d2ab61da.syn.tools")
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

async fn wait_holder(client: &Client, identity: &str) {
    wait_for(&format!("{identity} to hold the Lease"), LIMIT, || async {
        Ok::<_, kube::Error>((holder(client).await.as_deref() == Some(identity)).then_some(()))
    })
    .await
    .unwrap();
}

async fn wait_planned(replica: &Replica, at_least: usize, what: &str) {
    wait_for(what, LIMIT, || async {
        Ok::<_, kube::Error>((replica.planned.load(Ordering::SeqCst) >= at_least).then_some(()))
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_replicas_one_leads_and_the_other_takes_over_when_the_leader_dies() {
    let sb = sandbox().await;
    let client = sb.client();
    let timing = [
        "--leader-election-lease-duration=3s",
        "--leader-election-renew-deadline=2s",
        "--leader-election-retry-period=250ms",
    ];
    let a = replica(&client, "replica-a", settings(&timing));
    wait_holder(&client, "replica-a").await;
    let b = replica(&client, "replica-b", settings(&timing));
    create_schedule(
        &client,
        "ha",
        json!({
            "backend": { "repoPasswordSecretRef": { "name": "repo", "key": "password" },
                         "rest": { "url": "http://rest.example:8000/ha" } },
            "backup": { "schedule": "@every 1s" },
        }),
    )
    .await;
    wait_planned(&a, 2, "the leader to plan two scheduled Backups").await;
    assert_eq!(b.planned.load(Ordering::SeqCst), 0, "the standby reconciled");
    assert_eq!(holder(&client).await.as_deref(), Some("replica-a"));

    // The leader dies without giving the Lease up: the standby waits for it to expire, then leads.
    a.task.abort();
    let _ = a.task.await;
    wait_holder(&client, "replica-b").await;
    let planned_by_a = a.planned.load(Ordering::SeqCst);
    wait_planned(&b, 2, "the new leader to plan scheduled Backups").await;
    assert_eq!(
        a.planned.load(Ordering::SeqCst),
        planned_by_a,
        "the dead leader still reconciled"
    );
    let lease = Api::<Lease>::namespaced(client.clone(), NS)
        .get("d2ab61da.syn.tools")
        .await
        .unwrap();
    assert_eq!(lease.spec.unwrap().lease_transitions, Some(1));

    // Ticks were fired once each: one Backup per tick name, none planned twice by the two replicas.
    let backups: Vec<Backup> = scheduled(&client, "ha").await;
    let names: std::collections::BTreeSet<String> = backups.iter().map(|b| b.name_any()).collect();
    assert_eq!(names.len(), backups.len());
    assert!(
        a.planned.load(Ordering::SeqCst) + b.planned.load(Ordering::SeqCst) <= backups.len() + 1,
        "planned {} + {} times for {} Backups",
        a.planned.load(Ordering::SeqCst),
        b.planned.load(Ordering::SeqCst),
        backups.len()
    );

    // A clean stop gives the Lease up at once.
    b.token.cancel();
    b.task.await.unwrap();
    assert_eq!(holder(&client).await, None);
    sb.shutdown().await;
}

// Ports of K8up's Schedule envtest integration tests (REFERENCE.md 7.2, operator/schedulecontroller).

async fn schedule_status(client: &Client, name: &str) -> k8up::crd::ScheduleStatus {
    Api::<Schedule>::namespaced(client.clone(), NS)
        .get(name)
        .await
        .unwrap()
        .status
        .unwrap_or_default()
}

async fn wait_generated(client: &Client, name: &str, what: &str, count: usize) -> Vec<(String, String)> {
    wait_for(what, LIMIT, || async {
        let generated: Vec<(String, String)> = schedule_status(client, name)
            .await
            .effective_schedules
            .iter()
            .map(|g| (g.job_type.as_str().to_string(), g.generated_schedule.clone()))
            .collect();
        Ok::<_, kube::Error>((generated.len() == count).then_some(generated))
    })
    .await
    .unwrap()
}

/// Test_GivenScheduleWithRandomSchedules_WhenReconcile_ThenUpdateEffectiveScheduleInStatus,
/// Test_GivenEffectiveScheduleWithRandomSchedules_WhenReconcile_ThenUpdateScheduleInStatus and
/// Test_GivenEffectiveScheduleWithRandomSchedules_WhenChangingToStandardSchedule_ThenCleanupEffectiveScheduleInStatus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k8up_random_schedules_are_generated_into_the_status_kept_stable_and_cleaned_up_when_made_standard() {
    let sb = sandbox().await;
    let client = sb.client();
    let controllers = start_operator(&client, settings(&[]));
    let backend = json!({ "repoPasswordSecretRef": { "name": "repo", "key": "password" },
                          "rest": { "url": "http://rest.example:8000/r" } });
    create_schedule(
        &client,
        "random",
        json!({
            "backend": backend,
            "backup": { "schedule": "@daily-random" },
            "check": { "schedule": "@hourly-random" },
            "prune": { "schedule": "0 3 * * *" },
        }),
    )
    .await;
    let generated = wait_generated(&client, "random", "generated schedules for backup and check", 2).await;
    let backup = generated.iter().find(|(t, _)| t == "backup").unwrap().1.clone();
    let check = generated.iter().find(|(t, _)| t == "check").unwrap().1.clone();
    // Concrete 5-field expressions: `M H * * *` and `M * * * *`.
    let fields: Vec<&str> = backup.split_whitespace().collect();
    assert_eq!(fields.len(), 5, "{backup}");
    assert_eq!(fields[2..], ["*", "*", "*"], "{backup}");
    assert_eq!(
        check.split_whitespace().skip(1).collect::<Vec<_>>(),
        ["*", "*", "*", "*"],
        "{check}"
    );
    let es = effective(&client, "random").await.unwrap();
    let entry = es.spec.entry(JobType::Backup).unwrap();
    assert_eq!(entry.schedule, "@daily-random");
    assert_eq!(entry.effective_schedule, backup, "the EffectiveSchedule agrees");
    let prune = es.spec.entry(JobType::Prune).unwrap();
    assert_eq!(prune.effective_schedule, "0 3 * * *");

    // Reconciling again (a change elsewhere in the spec) keeps the generated times.
    let api: Api<Schedule> = Api::namespaced(client.clone(), NS);
    api.patch(
        "random",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({ "spec": { "keepJobs": 3 } })),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let again = wait_generated(&client, "random", "the generated schedules after a reconcile", 2).await;
    assert_eq!(again, generated);

    // Making the backup schedule standard removes its generated entry and nothing else.
    api.patch(
        "random",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({ "spec": { "backup": { "schedule": "0 1 * * *" } } })),
    )
    .await
    .unwrap();
    let left = wait_generated(&client, "random", "only the check schedule generated", 1).await;
    assert_eq!(left, [("check".to_string(), check)]);
    wait_for("the EffectiveSchedule to follow", LIMIT, || async {
        let es = effective(&client, "random").await.unwrap();
        let backup = es
            .spec
            .entry(JobType::Backup)
            .map(|e| e.effective_schedule.clone());
        Ok::<_, kube::Error>((backup.as_deref() == Some("0 1 * * *")).then_some(()))
    })
    .await
    .unwrap();
    controllers.shutdown().await;
    sb.shutdown().await;
}

/// Test_ExecuteCronSchedule_PersistsControllerOwnerReferenceOnCreatedJob (K8up #1212).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k8up_an_object_created_by_a_schedule_has_the_schedule_as_its_controller_owner() {
    let sb = sandbox().await;
    let client = sb.client();
    let controllers = start_operator(&client, settings(&[]));
    create_schedule(
        &client,
        "owned",
        json!({
            "backend": { "repoPasswordSecretRef": { "name": "repo", "key": "password" },
                         "rest": { "url": "http://rest.example:8000/o" } },
            "check": { "schedule": "@every 1s" },
        }),
    )
    .await;
    let checks = wait_for("a scheduled Check", LIMIT, || async {
        let c: Vec<k8up::crd::Check> = scheduled(&client, "owned").await;
        Ok::<_, kube::Error>((!c.is_empty()).then_some(c))
    })
    .await
    .unwrap();
    let uid = Api::<Schedule>::namespaced(client.clone(), NS)
        .get("owned")
        .await
        .unwrap()
        .uid()
        .unwrap();
    let owner = &checks[0].owner_references()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Schedule", "owned"));
    assert_eq!(owner.uid, uid);
    assert_eq!(owner.controller, Some(true));
    assert_eq!(owner.api_version, "k8up.io/v1");
    controllers.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedules_history_limit_prunes_its_objects_and_edits_of_its_effective_schedule_are_reverted() {
    let sb = sandbox().await;
    let client = sb.client();
    let controllers = start_operator(&client, settings(&[]));
    create_schedule(
        &client,
        "short",
        json!({
            "backend": { "repoPasswordSecretRef": { "name": "repo", "key": "password" },
                         "rest": { "url": "http://rest.example:8000/s" } },
            "successfulJobsHistoryLimit": 1,
            "check": { "schedule": "@every 1s" },
        }),
    )
    .await;
    // Several ticks have fired (the EffectiveSchedule names ever newer objects) ...
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    wait_for("four scheduled Checks to have been created", LIMIT, || async {
        let last = effective(&client, "short")
            .await
            .and_then(|es| es.spec.entry(JobType::Check).and_then(|e| e.last_object.clone()));
        let mut seen = seen.lock().unwrap();
        seen.extend(last);
        Ok::<_, kube::Error>((seen.len() >= 4).then_some(()))
    })
    .await
    .unwrap();
    // ... but only the newest succeeded one is kept, plus the one running now.
    wait_for("the Schedule's history limit to apply", LIMIT, || async {
        let checks: Vec<k8up::crd::Check> = scheduled(&client, "short").await;
        let finished = checks
            .iter()
            .filter(|c| c.status.as_ref().is_some_and(|s| s.finished))
            .count();
        Ok::<_, kube::Error>((finished <= 1 && checks.len() <= 2).then_some(()))
    })
    .await
    .unwrap();

    // The EffectiveSchedule is the operator's: a user's edit is put back.
    let api: Api<EffectiveSchedule> = Api::namespaced(client.clone(), NS);
    api.patch(
        "short",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({ "spec": { "schedules": [] } })),
    )
    .await
    .unwrap();
    wait_for("the EffectiveSchedule to be restored", LIMIT, || async {
        let es = effective(&client, "short").await.unwrap();
        let entry = es
            .spec
            .entry(JobType::Check)
            .map(|e| e.effective_schedule.clone());
        Ok::<_, kube::Error>((entry.as_deref() == Some("@every 1s")).then_some(()))
    })
    .await
    .unwrap();
    controllers.shutdown().await;
    sb.shutdown().await;
}
