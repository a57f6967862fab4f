//! The operator with its production planner against the sandbox: Backups planned by the real embedded wasm
//! plugin, and a hostile plugin whose plan the host refuses, which the user sees as a condition and a
//! Warning Event while the operator keeps serving other objects.

// Helpers outside `#[test]` functions fail the calling test by panicking, like assertions do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod e2e_common;
mod operator_common;
#[path = "../../host/tests/plugin_support/mod.rs"]
mod plugin_support;

use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8up::crd::Backup;
use k8up::operator::Controllers;
use k8up::operator::driver::validate::ValidatedAction;
use k8up::operator::metrics::Metrics;
use k8up::operator::settings::OperatorSettings;
use k8up::plugin::planner::limits;
use k8up::plugin::{Builtins, Error, Plugin, PluginEngine, PluginPlanner, PluginSource};
use k8up_tests::cluster::wait_for;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use operator_common::*;
use serde_json::json;

/// Annotation choosing a fixture plugin for one object (the test's stand-in for `spec.plugin`).
const FIXTURE: &str = "test.k8up.io/plugin";

/// The built-ins, except for objects annotated with [`FIXTURE`]: those get the fixture it names.
struct BuiltinsOrFixture {
    builtins: Builtins,
    hostile: std::collections::BTreeMap<String, Arc<Plugin>>,
}

impl PluginSource for BuiltinsOrFixture {
    fn plugin_for<'a>(&'a self, action: &'a ValidatedAction) -> BoxFuture<'a, Result<Arc<Plugin>, Error>> {
        Box::pin(async move {
            match action.annotations.get(FIXTURE) {
                Some(name) => Ok(self.hostile[name].clone()),
                None => self.builtins.choose(action),
            }
        })
    }
}

fn start(client: &Client, settings: OperatorSettings, hostile: &[&str]) -> Controllers {
    let engine = PluginEngine::new(limits(&settings.plugins)).unwrap();
    let source = BuiltinsOrFixture {
        builtins: Builtins::load(&engine).unwrap(),
        hostile: hostile
            .iter()
            .map(|name| {
                let plugin = engine
                    .load(&format!("fixture:{name}"), &plugin_support::fixture(name))
                    .unwrap();
                (name.to_string(), plugin)
            })
            .collect(),
    };
    let planner = PluginPlanner::new(engine, Arc::new(source));
    Controllers::start(
        client.clone(),
        Arc::new(settings),
        Arc::new(planner),
        Arc::new(Metrics::new()),
    )
}

async fn create_backup(client: &Client, name: &str, annotations: serde_json::Value) {
    let api: Api<Backup> = Api::namespaced(client.clone(), "default");
    let backup: Backup = serde_json::from_value(json!({
        "apiVersion": "k8up.io/v1",
        "kind": "Backup",
        "metadata": { "name": name, "annotations": annotations },
        "spec": {},
    }))
    .unwrap();
    api.create(&PostParams::default(), &backup).await.unwrap();
}

fn pod_spec(job: &Job) -> k8s_openapi::api::core::v1::PodSpec {
    job.spec.clone().unwrap().template.spec.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_two_bound_pvcs_is_planned_by_the_embedded_wasm_plugin() {
    let sb = sandbox().await;
    let c = sb.client();
    bound_pvc(&c, "default", "data-a").await;
    bound_pvc(&c, "default", "data-b").await;
    let operator = start(&c, settings(&["--enable-relaxed-scheduling"]), &["foreign-pvc"]);
    create_backup(&c, "nightly", json!({})).await;
    let api: Api<Backup> = Api::namespaced(c.clone(), "default");
    wait_status(&api, "nightly", "backup to start", |s| s.started).await;

    let mut jobs = owned_jobs(&c, "default", "backup_nightly").await;
    jobs.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let names: Vec<String> = jobs.iter().filter_map(|j| j.metadata.name.clone()).collect();
    // Relaxed mode: one Job per PVC, with the plugin's stable suffixes.
    assert_eq!(names, ["backup-nightly-pvc-data-a", "backup-nightly-pvc-data-b"]);
    for (job, pvc) in jobs.iter().zip(["data-a", "data-b"]) {
        let spec = pod_spec(job);
        let container = &spec.containers[0];
        assert_eq!(container.name, "backup");
        assert_eq!(container.image.as_deref(), Some("ghcr.io/k8up-io/k8up:latest"));
        assert_eq!(container.args.clone().unwrap()[..2], ["--varDir", "/k8up"]);
        let mounts: Vec<(String, Option<bool>)> = container
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| (m.mount_path.clone(), m.read_only))
            .collect();
        assert!(
            mounts.contains(&(format!("/data/{pvc}"), Some(true))),
            "{mounts:?}"
        );
        let env = container.env.clone().unwrap();
        let password = env.iter().find(|e| e.name == "RESTIC_PASSWORD").unwrap();
        assert_eq!(password.value, None, "never a literal");
        let reference = password.value_from.clone().unwrap().secret_key_ref.unwrap();
        assert_eq!(
            (reference.name.as_str(), reference.key.as_str()),
            ("k8up-global-credentials", "repo-password")
        );
        assert_eq!(env.last().unwrap().name, "RESTIC_REPOSITORY");
        assert_eq!(spec.service_account_name.as_deref(), Some("pod-executor"));
        assert_eq!(spec.security_context.and_then(|s| s.run_as_non_root), Some(true));
        let owner = &job.metadata.owner_references.clone().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Backup", "nightly"));
    }
    // The global password reached the namespace as the Secret the Jobs reference.
    let secrets: Api<Secret> = Api::namespaced(c.clone(), "default");
    let mirrored = secrets.get("k8up-global-credentials").await.unwrap();
    let data = mirrored.data.unwrap_or_default();
    assert_eq!(
        data.get("repo-password").map(|v| v.0.as_slice()),
        Some(&b"secret-password"[..])
    );
    operator.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_plugins_refused_plan_becomes_a_condition_and_a_warning_while_others_run() {
    let sb = sandbox().await;
    let c = sb.client();
    bound_pvc(&c, "default", "data").await;
    let operator = start(&c, settings(&[]), &["foreign-pvc"]);
    create_backup(&c, "evil", json!({ FIXTURE: "foreign-pvc" })).await;
    let api: Api<Backup> = Api::namespaced(c.clone(), "default");

    let status = wait_status(&api, "evil", "a CreationFailed condition", |s| {
        has(s, "Ready", "False", "CreationFailed")
    })
    .await;
    let message = status.condition("Ready").map(|c| c.message.clone()).unwrap();
    assert!(message.contains("PlanRejected"), "{message}");
    assert!(message.contains("plugin foreign-pvc 0.0.1"), "{message}");
    assert!(message.contains("rule offered-pvc"), "{message}");
    assert!(message.contains("someone-elses-data"), "{message}");
    assert!(!status.started);

    let events: Api<Event> = Api::namespaced(c.clone(), "default");
    let warning = wait_for("a Warning event for evil", LIMIT, || async {
        let list = events.list(&ListParams::default()).await?;
        Ok::<_, kube::Error>(list.items.into_iter().find(|e| {
            e.type_.as_deref() == Some("Warning")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("evil")
        }))
    })
    .await
    .unwrap();
    assert_eq!(warning.reason.as_deref(), Some("Plan"));
    let note = warning.note.unwrap_or_default();
    assert!(note.contains("rejected by rule offered-pvc"), "{note}");
    assert!(
        owned_jobs(&c, "default", "backup_evil").await.is_empty(),
        "nothing built from the plan"
    );

    // The operator keeps serving: the next Backup is planned by the built-in.
    create_backup(&c, "fine", json!({})).await;
    wait_status(&api, "fine", "the other backup to start", |s| s.started).await;
    let jobs = owned_jobs(&c, "default", "backup_fine").await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].metadata.name.as_deref(), Some("backup-fine-shared"));
    operator.shutdown().await;
    sb.shutdown().await;
}

/// Hostile plugins under load: Backups planned by an endless loop, a memory bomb and a trapping plugin
/// (three of each, retried with backoff all along) while real Backups planned by the built-in run restic:
/// each hostile one ends `CreationFailed` naming its plugin, with no Job, and every real one succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_planned_by_the_built_in_complete_while_hostile_plugins_loop_bomb_and_trap() {
    const HOSTILE: [&str; 3] = ["endless-loop", "memory-bomb", "panic"];
    let sb = sandbox().await;
    let c = sb.client();
    let rest = e2e_common::RestServer::start().await;
    e2e_common::create_repository_secret(&c).await;
    bound_pvc(&c, "default", "data").await;
    std::fs::write(e2e_common::pvc_dir(&c, "data").await.join("file"), b"payload\n").unwrap();
    // All finished Backups are kept (the default history limit 3 would delete the oldest real one).
    let operator = start(
        &c,
        settings(&[
            "--global-successful-jobs-history-limit",
            "10",
            "--global-failed-jobs-history-limit",
            "10",
            "--restartpolicy",
            "Never",
        ]),
        &HOSTILE,
    );

    let api: Api<Backup> = Api::namespaced(c.clone(), "default");
    let mut hostile = Vec::new();
    for fixture in HOSTILE {
        for i in 0..3 {
            let name = format!("{fixture}-{i}");
            create_backup(&c, &name, json!({ FIXTURE: fixture })).await;
            hostile.push((name, fixture));
        }
    }
    // All at once into a repository that does not exist yet: the operator lets one Job initialise it
    // before the others start (concurrent `restic init` runs would leave it with keys but no config).
    let normal: Vec<String> = (0..4).map(|i| format!("real-{i}")).collect();
    for name in &normal {
        e2e_common::create::<Backup>(
            &c,
            "default",
            json!({ "metadata": { "name": name }, "spec": {
                "backend": e2e_common::backend(&rest.repository("hostile-load")),
            } }),
        )
        .await;
    }
    for name in &normal {
        e2e_common::wait_succeeded::<Backup>(&c, name, &format!("backup_{name}")).await;
    }
    for (name, fixture) in &hostile {
        let status = wait_status(&api, name, "a CreationFailed condition", |s| {
            has(s, "Ready", "False", "CreationFailed")
        })
        .await;
        let message = status.condition("Ready").map(|c| c.message.clone()).unwrap();
        assert!(
            message.contains(&format!("plugin {fixture}")),
            "{name}: {message}"
        );
        assert!(
            owned_jobs(&c, "default", &format!("backup_{name}"))
                .await
                .is_empty()
        );
    }
    let snapshots = e2e_common::restic_snapshots(&rest.repository("hostile-load"));
    assert_eq!(snapshots.len(), normal.len(), "one snapshot per real Backup");
    operator.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k8up_plan_with_a_kubeconfig_reads_the_cluster_and_writes_nothing() {
    use k8up::plugin::dryrun::{Cluster, Resource, client_from_kubeconfig, plan_resource};
    let sb = sandbox().await;
    let c = sb.client();
    bound_pvc(&c, "default", "data").await;
    let client = client_from_kubeconfig(sb.kubeconfig_path()).await.unwrap();
    let resource =
        Resource::parse("apiVersion: k8up.io/v1\nkind: Backup\nmetadata: {name: dry}\nspec: {}\n").unwrap();
    let settings = Arc::new(settings(&[]));
    let planner = PluginPlanner::with_builtins(&settings.plugins).await.unwrap();
    let run = plan_resource(&planner, &resource, &settings, Cluster::Client(&client), false)
        .await
        .unwrap();
    let offered: Vec<&str> = run.request.pvcs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(offered, ["data"], "the PVC was observed through the kubeconfig");
    let names: Vec<String> = run.jobs.iter().filter_map(|j| j.metadata.name.clone()).collect();
    assert_eq!(names, ["backup-dry-shared"]);

    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    assert!(jobs.list(&ListParams::default()).await.unwrap().items.is_empty());
    let secrets: Api<Secret> = Api::namespaced(c.clone(), "default");
    assert!(
        secrets
            .get_opt("k8up-global-credentials")
            .await
            .unwrap()
            .is_none()
    );
    sb.shutdown().await;
}

/// Puts `bytes` under `binaryData.plugin.wasm` of the plugin ConfigMap `name` (created or replaced).
async fn put_plugin_config_map(client: &Client, name: &str, plugin: &str, bytes: Vec<u8>) {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Patch, PatchParams};
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": name, "labels": { "k8up.io/plugin": plugin } },
        "binaryData": { "plugin.wasm": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes) },
    });
    api.patch(name, &PatchParams::apply("test").force(), &Patch::Apply(&cm))
        .await
        .unwrap();
}

/// The Events about the ConfigMap `name` with `reason`.
async fn config_map_events(client: &Client, name: &str, reason: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let list = events.list(&ListParams::default()).await.unwrap();
    list.items
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some(reason)
                && e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("ConfigMap")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
        })
        .collect()
}

async fn job_names(client: &Client, backup: &str) -> Vec<String> {
    let api: Api<Backup> = Api::namespaced(client.clone(), "default");
    wait_status(&api, backup, "the backup to start", |s| s.started).await;
    let mut names: Vec<String> = owned_jobs(client, "default", &format!("backup_{backup}"))
        .await
        .iter()
        .filter_map(|j| j.metadata.name.clone())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_plugin_replaces_the_builtin_without_a_restart_and_a_broken_update_keeps_it_serving() {
    use k8up::crd::JobType;
    use k8up::plugin::Registry;
    let sb = sandbox().await;
    let c = sb.client();
    bound_pvc(&c, "default", "data").await;
    let settings = settings(&["--plugin-backup", "custom-backup"]);
    let engine = PluginEngine::new(limits(&settings.plugins)).unwrap();
    let builtins = Builtins::load(&engine).unwrap();
    let registry = Arc::new(Registry::new(engine.clone(), builtins, "default"));
    let metrics = Arc::new(Metrics::new());
    let watch = registry.watch(c.clone(), metrics.clone());
    let operator = Controllers::start(
        c.clone(),
        Arc::new(settings),
        Arc::new(PluginPlanner::new(engine, registry)),
        metrics.clone(),
    );
    let api: Api<Backup> = Api::namespaced(c.clone(), "default");

    // The operator names a ConfigMap nobody created yet: the Backup says so and waits.
    create_backup(&c, "b1", json!({})).await;
    let status = wait_status(&api, "b1", "a CreationFailed condition", |s| {
        has(s, "Ready", "False", "CreationFailed")
    })
    .await;
    let message = status.condition("Ready").map(|c| c.message.clone()).unwrap();
    assert!(message.contains("PluginNotFound"), "{message}");
    assert!(
        message.contains("K8UP_PLUGIN_BACKUP names ConfigMap custom-backup"),
        "{message}"
    );

    // The ConfigMap appears: the same Backup is planned by it, no restart.
    put_plugin_config_map(
        &c,
        "custom-backup",
        "well-behaved",
        plugin_support::fixture("well-behaved"),
    )
    .await;
    assert_eq!(job_names(&c, "b1").await, ["backup-b1"]);
    let loaded = wait_for("a PluginLoaded event", LIMIT, || async {
        Ok::<_, kube::Error>(config_map_events(&c, "custom-backup", "PluginLoaded").await.pop())
    })
    .await
    .unwrap();
    let note = loaded.note.unwrap_or_default();
    assert!(note.contains("well-behaved 0.0.1"), "{note}");

    // A broken update: reported on the ConfigMap and in the metrics, the previous version keeps serving.
    put_plugin_config_map(
        &c,
        "custom-backup",
        "well-behaved",
        b"\0asm, but truncated".to_vec(),
    )
    .await;
    let failed = wait_for("a PluginLoadFailed event", LIMIT, || async {
        Ok::<_, kube::Error>(
            config_map_events(&c, "custom-backup", "PluginLoadFailed")
                .await
                .pop(),
        )
    })
    .await
    .unwrap();
    assert_eq!(failed.type_.as_deref(), Some("Warning"));
    let note = failed.note.unwrap_or_default();
    assert!(
        note.contains("failed to compile plugin configmap:default/custom-backup"),
        "{note}"
    );
    assert!(note.contains("keeps serving"), "{note}");
    let text = metrics.render().unwrap();
    assert!(
        text.contains(
            r#"k8up_plugin_loads_total{namespace="default",configmap="custom-backup",result="failed"} 1"#
        ),
        "{text}"
    );
    create_backup(&c, "b2", json!({})).await;
    assert_eq!(job_names(&c, "b2").await, ["backup-b2"]);

    // A good update swaps it: here the built-in's own component, which names its Job differently.
    let builtin = k8up::plugin::builtin::for_action(JobType::Backup).unwrap();
    put_plugin_config_map(&c, "custom-backup", "well-behaved", builtin.bytes.to_vec()).await;
    wait_for("the second PluginLoaded event", LIMIT, || async {
        let n = config_map_events(&c, "custom-backup", "PluginLoaded").await.len();
        Ok::<_, kube::Error>((n >= 2).then_some(()))
    })
    .await
    .unwrap();
    create_backup(&c, "b3", json!({})).await;
    assert_eq!(job_names(&c, "b3").await, ["backup-b3-shared"]);

    operator.shutdown().await;
    watch.abort();
    sb.shutdown().await;
}
