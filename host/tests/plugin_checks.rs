//! The whole host pipeline (request -> engine -> check -> build) with real components: the embedded
//! built-ins, and the hostile fixtures, whose plans the checks refuse before anything is built.

// Helpers outside `#[test]` functions fail the calling test by panicking, like assertions do.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

#[path = "plugin_support/mod.rs"]
mod support;

use std::sync::Arc;

use clap::Parser;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8up::crd::{Backup, Check};
use k8up::operator::driver::observe::Observed;
use k8up::operator::driver::validate::{ValidatedAction, validate};
use k8up::operator::driver::{PlanError, PlanRequest, Planner};
use k8up::operator::settings::{OperatorArgs, OperatorSettings};
use k8up::plugin::source::Fixed;
use k8up::plugin::{Builtins, Error, Limits, PluginEngine, PluginPlanner, plan_jobs};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: OperatorArgs,
}

fn settings(flags: &[&str]) -> Arc<OperatorSettings> {
    let mut argv = vec!["operator", "--globalrepopassword", "pw"];
    argv.extend_from_slice(flags);
    Arc::new(OperatorSettings::from_args(Cli::try_parse_from(argv).unwrap().args).unwrap())
}

fn backup(spec: &str, settings: &Arc<OperatorSettings>) -> ValidatedAction {
    let yaml = format!(
        "apiVersion: k8up.io/v1\nkind: Backup\nmetadata: {{name: nightly, namespace: shop, uid: 5e0a}}\nspec: {spec}\n"
    );
    validate(&serde_yaml::from_str::<Backup>(&yaml).unwrap(), settings).unwrap()
}

const SPEC: &str = "{backend: {s3: {endpoint: 'http://minio:9000', bucket: shop, accessKeyIDSecretRef: {name: s3, key: id}, secretAccessKeySecretRef: {name: s3, key: secret}}}}";

fn bound(name: &str) -> PersistentVolumeClaim {
    serde_yaml::from_str(&format!(
        "metadata: {{name: {name}, namespace: shop}}\nspec: {{accessModes: [ReadWriteMany]}}\nstatus: {{phase: Bound}}\n"
    ))
    .unwrap()
}

fn two_pvcs() -> Observed {
    Observed {
        pvcs: vec![bound("data"), bound("logs")],
        ..Observed::default()
    }
}

fn engine() -> PluginEngine {
    PluginEngine::new(Limits::default()).unwrap()
}

#[test]
fn the_embedded_backup_plugin_plans_two_bound_pvcs_into_checked_jobs() {
    let engine = engine();
    let builtins = Builtins::load(&engine).unwrap();
    let action = backup(SPEC, &settings(&[]));
    let plugin = builtins.choose(&action).unwrap();
    assert_eq!(plugin.name(), "k8up-backup");
    let plan = plan_jobs(&engine, &plugin, &action, &two_pvcs()).unwrap();
    assert_eq!(
        plan.jobs.len(),
        1,
        "classic mode: unpinned RWX claims share one Job"
    );
    let job = &plan.jobs[0];
    assert_eq!(job.metadata.name.as_deref(), Some("backup-nightly-shared"));
    let container = &job
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    let mounts: Vec<&str> = container
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| m.mount_path.as_str())
        .collect();
    assert_eq!(mounts, ["/k8up", "/tmp", "/.cache", "/data/data", "/data/logs"]);
    let env = container.env.clone().unwrap_or_default();
    assert_eq!(env.last().map(|e| e.name.as_str()), Some("RESTIC_REPOSITORY"));
    assert!(
        env.iter()
            .all(|e| e.name != "RESTIC_PASSWORD" || e.value.is_none()),
        "no literal password"
    );
}

fn refused_by(fixture: &str, action: &ValidatedAction) -> (&'static str, String) {
    let engine = engine();
    let plugin = engine
        .load(&format!("fixture:{fixture}"), &support::fixture(fixture))
        .unwrap();
    match plan_jobs(&engine, &plugin, action, &two_pvcs()) {
        Err(err @ Error::PlanRejected { rule, .. }) => (rule, err.to_string()),
        other => panic!("{fixture}: expected a rejection, got {other:?}"),
    }
}

#[test]
fn a_plugin_mounting_a_pvc_it_was_not_offered_is_refused() {
    let (rule, message) = refused_by("foreign-pvc", &backup(SPEC, &settings(&[])));
    assert_eq!(rule, "offered-pvc");
    assert!(
        message.contains("foreign-pvc 0.0.1") && message.contains("someone-elses-data"),
        "{message}"
    );
}

#[test]
fn a_plugin_reading_a_secret_the_spec_does_not_name_is_refused() {
    let (rule, message) = refused_by("foreign-secret", &backup(SPEC, &settings(&[])));
    assert_eq!(rule, "secret-reference");
    assert!(message.contains("database-admin-credentials"), "{message}");
}

#[test]
fn a_huge_plan_is_refused_by_its_size() {
    let (rule, message) = refused_by("huge-plan", &backup(SPEC, &settings(&[])));
    assert_eq!(rule, "plan-size");
    assert!(message.contains("2000 jobs, at most 100"), "{message}");
}

#[test]
fn the_well_behaved_fixture_passes_the_checks() {
    let engine = engine();
    let plugin = engine
        .load("fixture:well-behaved", &support::fixture("well-behaved"))
        .unwrap();
    let plan = plan_jobs(&engine, &plugin, &backup(SPEC, &settings(&[])), &two_pvcs()).unwrap();
    assert_eq!(plan.jobs.len(), 1);
    assert_eq!(plan.message.as_deref(), Some("2 pvcs"));
}

#[tokio::test]
async fn the_planner_reports_a_trapping_plugin_as_a_failure_naming_it() {
    let engine = engine();
    let fixed = Fixed(engine.load("fixture:panic", &support::fixture("panic")).unwrap());
    let planner = PluginPlanner::new(engine, Arc::new(fixed));
    let action = backup(SPEC, &settings(&[]));
    let observed = two_pvcs();
    let err = planner
        .plan(PlanRequest {
            action: &action,
            observed: &observed,
        })
        .await
        .unwrap_err();
    match err {
        PlanError::Failed { planner, message } => {
            assert_eq!(planner, "plugin panic 0.0.1");
            assert!(message.starts_with("PluginTrap: "), "{message}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn the_built_ins_honour_spec_plugin_names_and_pins_and_refuse_what_only_a_registry_serves() {
    let engine = engine();
    let builtins = Builtins::load(&engine).unwrap();
    let s = settings(&[]);
    for name in ["backup", "k8up-backup"] {
        let action = backup(&format!("{{plugin: {{name: {name}}}, {}", &SPEC[1..]), &s);
        assert_eq!(builtins.choose(&action).unwrap().name(), "k8up-backup", "{name}");
    }
    let digest = builtins.choose(&backup(SPEC, &s)).unwrap().digest().to_string();
    let pinned = backup(
        &format!("{{plugin: {{name: backup, sha256: '{digest}'}}, {}", &SPEC[1..]),
        &s,
    );
    assert!(builtins.choose(&pinned).is_ok());
    let wrong = "0".repeat(64);
    let pinned = backup(
        &format!("{{plugin: {{name: backup, sha256: '{wrong}'}}, {}", &SPEC[1..]),
        &s,
    );
    let err = builtins.choose(&pinned).unwrap_err();
    assert!(matches!(err, Error::PluginPinMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&digest), "{err}");

    let unknown = backup(&format!("{{plugin: {{name: my-planner}}, {}", &SPEC[1..]), &s);
    let err = builtins.choose(&unknown).unwrap_err().to_string();
    assert!(
        err.contains("plugin my-planner is not registered") && err.contains("k8up-backup"),
        "{err}"
    );

    let overridden = backup(SPEC, &settings(&["--plugin-backup", "my-backup-planner"]));
    let err = builtins.choose(&overridden).unwrap_err().to_string();
    assert!(
        err.contains("my-backup-planner") && err.contains("K8UP_PLUGIN_BACKUP"),
        "{err}"
    );

    let check: Check = serde_yaml::from_str(
        "apiVersion: k8up.io/v1\nkind: Check\nmetadata: {name: c, namespace: shop, uid: c1}\nspec: {}\n",
    )
    .unwrap();
    let check = validate(
        &check,
        &settings(&["--globals3endpoint", "http://minio:9000", "--globals3bucket", "b"]),
    )
    .unwrap();
    if builtins.get(k8up::crd::JobType::Check).is_none() {
        let err = builtins.choose(&check).unwrap_err().to_string();
        assert!(err.contains("no planner for action check"), "{err}");
    }
}
