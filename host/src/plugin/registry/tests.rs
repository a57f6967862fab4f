//! The registry's choices and its reload rules, with the embedded built-ins as the ConfigMaps' content.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ObjectMeta;

use super::*;
use crate::crd::{Backup, JobType, Prune};
use crate::plugin::builtin;
use crate::plugin::engine::Limits;
use crate::plugin::fixtures::{action, global_settings, settings};

fn registry() -> Registry {
    let engine = PluginEngine::new(Limits::default()).unwrap();
    let builtins = Builtins::load(&engine).unwrap();
    Registry::new(engine, builtins, "k8up")
}

fn bytes_of(job_type: JobType) -> Vec<u8> {
    builtin::for_action(job_type).unwrap().bytes.to_vec()
}

fn config_map(name: &str, plugin: &str, bytes: Vec<u8>) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some("k8up".to_string()),
            labels: Some(BTreeMap::from([(PLUGIN_LABEL.to_string(), plugin.to_string())])),
            ..ObjectMeta::default()
        },
        binary_data: Some(BTreeMap::from([(PLUGIN_KEY.to_string(), ByteString(bytes))])),
        ..ConfigMap::default()
    }
}

fn backup_naming(plugin: &str) -> ValidatedAction {
    action::<Backup>(
        &format!("metadata: {{name: b}}\nspec:\n  plugin: {{name: {plugin}}}\n"),
        &global_settings(),
    )
}

fn plain_backup(settings: &Arc<crate::operator::settings::OperatorSettings>) -> ValidatedAction {
    action::<Backup>("metadata: {name: b}\nspec: {}\n", settings)
}

#[test]
fn a_configmap_registers_the_name_its_label_gives_and_spec_plugin_picks_it() {
    let r = registry();
    let Applied::Loaded(loaded) = r.apply(&config_map("cm-a", "my-backup", bytes_of(JobType::Backup))) else {
        panic!("not loaded");
    };
    assert_eq!(loaded.source(), "configmap:k8up/cm-a");
    let chosen = r.choose(&backup_naming("my-backup")).unwrap();
    assert!(Arc::ptr_eq(&chosen, &loaded));
    // Without spec.plugin the built-in plans.
    let default = r.choose(&plain_backup(&global_settings())).unwrap();
    assert_eq!(default.source(), "builtin:backup");
    // Built-ins stay reachable by name.
    assert_eq!(
        r.choose(&backup_naming("backup")).unwrap().source(),
        "builtin:backup"
    );
}

#[test]
fn the_same_content_again_is_unchanged_and_a_broken_update_keeps_the_previous_version_serving() {
    let r = registry();
    let cm = config_map("cm-a", "my-backup", bytes_of(JobType::Backup));
    let Applied::Loaded(first) = r.apply(&cm) else {
        panic!("not loaded")
    };
    assert!(matches!(r.apply(&cm), Applied::Unchanged));

    let broken = config_map("cm-a", "my-backup", b"\0asm not really".to_vec());
    let Applied::Failed { error, serving } = r.apply(&broken) else {
        panic!("broken content loaded")
    };
    assert!(error.contains("configmap:k8up/cm-a"), "{error}");
    assert_eq!(
        serving.map(|p| p.digest().to_string()),
        Some(first.digest().to_string())
    );
    // Reported once, not on every resync.
    assert!(matches!(r.apply(&broken), Applied::Unchanged));
    assert_eq!(
        r.choose(&backup_naming("my-backup")).unwrap().digest(),
        first.digest()
    );

    // A good version replaces it.
    let Applied::Loaded(second) = r.apply(&config_map("cm-a", "my-backup", bytes_of(JobType::Prune))) else {
        panic!("not loaded")
    };
    assert_ne!(second.digest(), first.digest());
    assert_eq!(
        r.choose(&backup_naming("my-backup")).unwrap().digest(),
        second.digest()
    );
}

#[test]
fn a_plugin_that_never_loaded_is_unavailable_with_the_reason() {
    let r = registry();
    let mut cm = config_map("cm-a", "my-backup", Vec::new());
    cm.binary_data = None;
    cm.data = Some(BTreeMap::from([(PLUGIN_KEY.to_string(), "text".to_string())]));
    assert!(matches!(r.apply(&cm), Applied::Failed { serving: None, .. }));
    let err = r.choose(&backup_naming("my-backup")).unwrap_err();
    assert_eq!(err.reason(), "PluginUnavailable");
    let message = err.to_string();
    assert!(message.contains("ConfigMap k8up/cm-a"), "{message}");
    assert!(message.contains("put it under binaryData"), "{message}");
}

#[test]
fn an_unknown_name_a_duplicate_name_and_an_empty_label_are_refused_with_what_is_known() {
    let r = registry();
    r.apply(&config_map("cm-a", "my-backup", bytes_of(JobType::Backup)));
    let err = r.choose(&backup_naming("other")).unwrap_err();
    assert_eq!(err.reason(), "PluginNotFound");
    let message = err.to_string();
    assert!(message.contains("labelled k8up.io/plugin=other"), "{message}");
    assert!(message.contains("my-backup (ConfigMap cm-a)"), "{message}");
    assert!(message.contains("k8up-backup"), "{message}");

    r.apply(&config_map("cm-b", "my-backup", bytes_of(JobType::Backup)));
    let err = r.choose(&backup_naming("my-backup")).unwrap_err();
    assert_eq!(err.reason(), "PluginUnavailable");
    assert!(err.to_string().contains("cm-a, cm-b"), "{err}");

    let Applied::Failed { error, .. } = r.apply(&config_map("cm-c", " ", bytes_of(JobType::Backup))) else {
        panic!("an empty label registered a plugin")
    };
    assert!(error.contains("has no value"), "{error}");
}

#[test]
fn a_pin_must_match_the_registered_content() {
    let r = registry();
    let Applied::Loaded(loaded) = r.apply(&config_map("cm-a", "my-backup", bytes_of(JobType::Backup))) else {
        panic!("not loaded")
    };
    let pinned = |digest: &str| {
        action::<Backup>(
            &format!("metadata: {{name: b}}\nspec:\n  plugin: {{name: my-backup, sha256: '{digest}'}}\n"),
            &global_settings(),
        )
    };
    assert!(r.choose(&pinned(loaded.digest())).is_ok());
    let err = r.choose(&pinned(&"0".repeat(64))).unwrap_err();
    assert_eq!(err.reason(), "PluginPinMismatch");
}

#[test]
fn an_operator_override_names_a_configmap_and_replaces_the_builtin_of_that_action_only() {
    let r = registry();
    let settings = settings(&[
        "--globals3endpoint",
        "http://minio:9000",
        "--globals3bucket",
        "global",
        "--globalrepopassword",
        "pw",
        "--plugin-backup",
        "custom-backup",
    ]);
    let err = r.choose(&plain_backup(&settings)).unwrap_err();
    assert_eq!(err.reason(), "PluginNotFound");
    assert!(
        err.to_string()
            .contains("K8UP_PLUGIN_BACKUP names ConfigMap custom-backup"),
        "{err}"
    );

    r.apply(&config_map(
        "custom-backup",
        "anything",
        bytes_of(JobType::Backup),
    ));
    assert_eq!(
        r.choose(&plain_backup(&settings)).unwrap().source(),
        "configmap:k8up/custom-backup"
    );
    let prune = action::<Prune>("metadata: {name: p}\nspec: {}\n", &settings);
    assert_eq!(r.choose(&prune).unwrap().source(), "builtin:prune");

    assert!(r.remove("custom-backup"));
    assert_eq!(
        r.choose(&plain_backup(&settings)).unwrap_err().reason(),
        "PluginNotFound"
    );
}

#[test]
fn a_sha256_annotation_that_does_not_match_the_content_is_refused() {
    let r = registry();
    let mut cm = config_map("cm-a", "my-backup", bytes_of(JobType::Backup));
    cm.metadata.annotations = Some(BTreeMap::from([(
        PLUGIN_SHA256_ANNOTATION.to_string(),
        "0".repeat(64),
    )]));
    let Applied::Failed { error, .. } = r.apply(&cm) else {
        panic!("loaded despite the annotation")
    };
    assert!(error.contains("truncated"), "{error}");
    let digest = sha256_hex(&bytes_of(JobType::Backup));
    cm.metadata.annotations = Some(BTreeMap::from([(PLUGIN_SHA256_ANNOTATION.to_string(), digest)]));
    assert!(matches!(r.apply(&cm), Applied::Loaded(_)));
}
