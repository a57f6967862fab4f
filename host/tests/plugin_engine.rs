//! The sandboxed engine with real compiled components: limits, version check, error naming.

// Helpers outside `#[test]` functions fail the calling test by panicking, like assertions do.
#![allow(clippy::expect_used, clippy::panic)]

#[path = "plugin_support/mod.rs"]
mod support;

use std::time::Duration;

use k8up::plugin::types::Action;
use k8up::plugin::{Error, Limits, PluginEngine};
use support::{fixture, request};

fn engine() -> PluginEngine {
    PluginEngine::new(Limits {
        timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .expect("engine")
}

#[test]
fn a_well_behaved_plugin_describes_itself_and_plans() {
    let engine = engine();
    let plugin = engine
        .load("fixture:well-behaved", &fixture("well-behaved"))
        .expect("load");
    assert_eq!(plugin.name(), "well-behaved");
    assert_eq!(plugin.wit_version(), "0.1.0");
    assert_eq!(plugin.digest().len(), 64);
    let plan = engine
        .plan(&plugin, &request(Action::Backup, &["data", "logs"]))
        .expect("plan");
    assert_eq!(plan.jobs.len(), 1);
    let mounts: Vec<_> = plan.jobs[0]
        .pvc_mounts
        .iter()
        .map(|m| m.mount_path.as_str())
        .collect();
    assert_eq!(mounts, ["/data/data", "/data/logs"]);
    assert_eq!(plan.message.as_deref(), Some("2 pvcs"));
}

#[test]
fn an_endless_loop_is_stopped_by_the_deadline_and_the_engine_keeps_serving() {
    let engine = engine();
    let looping = engine
        .load("fixture:endless-loop", &fixture("endless-loop"))
        .expect("load");
    let err = engine
        .plan(&looping, &request(Action::Backup, &["data"]))
        .unwrap_err();
    assert!(matches!(err, Error::PluginTimeout { .. }), "{err}");
    assert!(err.to_string().contains("endless-loop"), "{err}");
    assert!(err.to_string().contains("0.0.1"), "{err}");

    let good = engine
        .load("fixture:well-behaved", &fixture("well-behaved"))
        .expect("load");
    assert!(engine.plan(&good, &request(Action::Backup, &["data"])).is_ok());
}

#[test]
fn a_memory_bomb_hits_the_memory_cap_and_the_engine_keeps_serving() {
    let engine = engine();
    let bomb = engine
        .load("fixture:memory-bomb", &fixture("memory-bomb"))
        .expect("load");
    let err = engine
        .plan(&bomb, &request(Action::Backup, &["data"]))
        .unwrap_err();
    assert!(matches!(err, Error::PluginMemory { .. }), "{err}");
    assert!(err.to_string().contains("memory-bomb"), "{err}");

    let good = engine
        .load("fixture:well-behaved", &fixture("well-behaved"))
        .expect("load");
    assert!(engine.plan(&good, &request(Action::Backup, &["data"])).is_ok());
}

#[test]
fn a_panicking_plugin_is_reported_as_a_trap_with_its_panic_message() {
    let engine = engine();
    let plugin = engine.load("fixture:panic", &fixture("panic")).expect("load");
    let err = engine.plan(&plugin, &request(Action::Backup, &[])).unwrap_err();
    assert!(matches!(err, Error::PluginTrap { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("plugin panic 0.0.1"), "{msg}");
    assert!(msg.contains("hostile fixture gave up on nightly"), "{msg}");
    assert!(!msg.contains("stack backtrace"), "{msg}");

    // The failure did not poison the plugin itself: a second call runs in a fresh store.
    let again = engine.plan(&plugin, &request(Action::Backup, &[])).unwrap_err();
    assert!(matches!(again, Error::PluginTrap { .. }), "{again}");
}

#[test]
fn a_component_built_against_an_unknown_wit_version_is_refused_before_instantiation() {
    let engine = engine();
    let err = engine
        .load("fixture:wrong-version", &fixture("wrong-version"))
        .unwrap_err();
    assert!(matches!(err, Error::UnsupportedWitVersion { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("fixture:wrong-version"), "{msg}");
    assert!(msg.contains("k8up:plugin@0.9.0"), "{msg}");
    assert!(msg.contains("supports k8up:plugin@0.1.0"), "{msg}");
}

#[test]
fn bytes_that_are_not_a_component_fail_to_compile_with_the_source_named() {
    let engine = engine();
    let err = engine
        .load("configmap:k8up/broken", b"\0asm but not really")
        .unwrap_err();
    assert!(matches!(err, Error::CompilePlugin { .. }), "{err}");
    assert!(err.to_string().contains("configmap:k8up/broken"), "{err}");
}

#[test]
fn loading_the_same_bytes_twice_reuses_the_compiled_component() {
    let engine = engine();
    let bytes = fixture("well-behaved");
    let a = engine.load("a", &bytes).expect("load");
    let b = engine.load("b", &bytes).expect("load");
    assert_eq!(a.digest(), b.digest());
    assert_eq!(b.source(), "b");
}
