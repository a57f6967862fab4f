//! The generated CRDs in `crds/` match the code, the examples in `crds/examples/` survive a round trip through
//! our types, and the schemas are structural and documented.

// The helpers below (outside `#[test]` functions) fail the calling test by panicking, like assertions do.
#![allow(clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

const REGENERATE: &str =
    "cargo run -p k8up -- crds --dir crds  (or: K8UP_REGENERATE_CRDS=1 cargo test --workspace --test crds)";

fn crds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("crds")
}

#[test]
fn checked_in_crd_files_equal_the_generated_ones() {
    let dir = crds_dir();
    if std::env::var_os("K8UP_REGENERATE_CRDS").is_some() {
        k8up::crd::write_dir(&dir).expect("write crds/");
    }
    let mut stale = Vec::new();
    for crd in k8up::crd::all() {
        let path = dir.join(k8up::crd::file_name(&crd));
        let expected = k8up::crd::render_file(&crd).expect("render CRD");
        let actual = std::fs::read_to_string(&path).unwrap_or_default();
        if actual != expected {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "CRD files differ from the code: {stale:?}\nregenerate with: {REGENERATE}"
    );
}

#[test]
fn write_dir_writes_one_file_per_kind_and_leaves_examples_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let examples = dir.path().join("examples");
    std::fs::create_dir_all(&examples).expect("mkdir");
    std::fs::write(examples.join("backup.yaml"), "hand written\n").expect("write example");

    let written = k8up::crd::write_dir(dir.path()).expect("write_dir");

    let names: Vec<String> = written
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    assert_eq!(names.len(), 10, "{names:?}");
    assert!(names.contains(&"backups.k8up.io.yaml".to_owned()), "{names:?}");
    assert!(
        names.contains(&"effectiveschedules.k8up.io.yaml".to_owned()),
        "{names:?}"
    );
    assert!(names.iter().all(|n| n.ends_with(".k8up.io.yaml")), "{names:?}");
    let example = std::fs::read_to_string(examples.join("backup.yaml")).expect("read example");
    assert_eq!(example, "hand written\n");
}

#[test]
fn render_all_is_every_crd_file_joined_in_a_stable_order() {
    let all = k8up::crd::render_all().expect("render");
    assert_eq!(all, k8up::crd::render_all().expect("render again"));
    assert_eq!(
        all.lines().filter(|line| *line == "---").count(),
        10,
        "one document per kind"
    );
    let kinds: Vec<String> = k8up::crd::all().into_iter().map(|c| c.spec.names.kind).collect();
    assert_eq!(
        kinds,
        [
            "Schedule",
            "EffectiveSchedule",
            "Backup",
            "Restore",
            "Archive",
            "Check",
            "Prune",
            "PreBackupPod",
            "PodConfig",
            "Snapshot"
        ]
    );
    for crd in k8up::crd::all() {
        let body = k8up::crd::render_one(&crd).expect("render one");
        assert!(
            all.contains(&body),
            "{} missing from render_all",
            crd.spec.names.kind
        );
    }
}

/// Deserialise one manifest into the typed resource of its kind and serialise it back.
fn round_trip(manifest: &Value) -> Value {
    fn through<K: serde::de::DeserializeOwned + serde::Serialize>(manifest: &Value) -> Value {
        let typed: K = serde_json::from_value(manifest.clone()).expect("deserialise into our type");
        serde_json::to_value(&typed).expect("serialise")
    }
    use k8up::crd::*;
    match manifest["kind"].as_str() {
        Some("Schedule") => through::<Schedule>(manifest),
        Some("EffectiveSchedule") => through::<EffectiveSchedule>(manifest),
        Some("Backup") => through::<Backup>(manifest),
        Some("Restore") => through::<Restore>(manifest),
        Some("Archive") => through::<Archive>(manifest),
        Some("Check") => through::<Check>(manifest),
        Some("Prune") => through::<Prune>(manifest),
        Some("PreBackupPod") => through::<PreBackupPod>(manifest),
        Some("PodConfig") => through::<PodConfig>(manifest),
        Some("Snapshot") => through::<Snapshot>(manifest),
        other => panic!("example of unknown kind {other:?}"),
    }
}

fn examples() -> BTreeMap<String, Value> {
    let dir = crds_dir().join("examples");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("crds/examples exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).expect("read example");
            let value: Value = serde_yaml::from_str(&text).expect("example is YAML");
            out.insert(
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                value,
            );
        }
    }
    out
}

#[test]
fn every_kind_has_an_example_in_the_k8up_io_v1_group() {
    let examples = examples();
    let mut kinds: Vec<&str> = examples.values().filter_map(|v| v["kind"].as_str()).collect();
    kinds.sort_unstable();
    let mut expected: Vec<String> = k8up::crd::all().into_iter().map(|c| c.spec.names.kind).collect();
    expected.sort_unstable();
    assert_eq!(kinds, expected);
    for (name, example) in &examples {
        assert_eq!(example["apiVersion"], "k8up.io/v1", "{name}");
    }
}

#[test]
fn every_example_survives_a_round_trip_through_our_types_without_losing_a_field() {
    for (name, example) in examples() {
        let back = round_trip(&example);
        pretty_assertions::assert_eq!(back, example, "{name} changed in the round trip");
    }
}

#[test]
fn k8ups_misspelt_rest_password_field_is_accepted_and_the_correct_name_wins() {
    let typo: k8up::crd::Restore = serde_yaml::from_str(
        "apiVersion: k8up.io/v1\nkind: Restore\nmetadata: {name: r}\nspec:\n  backend:\n    rest:\n      url: https://rest\n      passwordSecretReg: {name: typo, key: pw}\n",
    )
    .expect("K8up's field name parses");
    let rest = typo
        .spec
        .runnable
        .backend
        .and_then(|b| b.rest)
        .expect("rest backend");
    assert_eq!(rest.password_secret_ref().map(|s| s.name.as_str()), Some("typo"));

    let both: k8up::crd::RestServerSpec = serde_yaml::from_str(
        "url: https://rest\npasswordSecretRef: {name: right, key: pw}\npasswordSecretReg: {name: right, key: pw}\n",
    )
    .expect("both names parse");
    assert_eq!(both.password_secret_ref().map(|s| s.name.as_str()), Some("right"));
    assert_eq!(both.validate(), Ok(()));
}

#[test]
fn retention_keep_tags_is_a_list_in_the_types_and_the_schema() {
    let prune: k8up::crd::Prune = serde_yaml::from_str(
        "apiVersion: k8up.io/v1\nkind: Prune\nmetadata: {name: p}\nspec:\n  retention:\n    keepTags: [a, b]\n    keepWithinDaily: 30d\n",
    )
    .expect("prune parses");
    let retention = prune.spec.retention.expect("retention");
    assert_eq!(retention.keep_tags, Some(vec!["a".to_owned(), "b".to_owned()]));
    assert_eq!(retention.keep_within_daily.as_deref(), Some("30d"));

    let schema = schema_of("Prune");
    let keep_tags = &schema["properties"]["spec"]["properties"]["retention"]["properties"]["keepTags"];
    assert_eq!(keep_tags["type"], "array");
    assert_eq!(keep_tags["items"]["type"], "string");
}

/// The openAPIV3Schema of a kind's CRD, as JSON.
fn schema_of(kind: &str) -> Value {
    let crd = k8up::crd::all()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .expect("kind exists");
    let json = serde_json::to_value(&crd).expect("crd to json");
    json["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// Call `visit` on every schema node below `node` with its JSON path.
fn walk(node: &Value, path: &str, visit: &mut dyn FnMut(&str, &Value)) {
    visit(path, node);
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            walk(child, &format!("{path}.{name}"), visit);
        }
    }
    if let Some(items) = node.get("items") {
        walk(items, &format!("{path}[]"), visit);
    }
    if let Some(additional) = node.get("additionalProperties").filter(|a| a.is_object()) {
        walk(additional, &format!("{path}{{}}"), visit);
    }
    for combinator in ["allOf", "anyOf", "oneOf"] {
        if let Some(branches) = node.get(combinator).and_then(Value::as_array) {
            for (i, branch) in branches.iter().enumerate() {
                walk(branch, &format!("{path}/{combinator}[{i}]"), visit);
            }
        }
    }
}

#[test]
fn every_schema_property_has_a_description() {
    let mut missing = Vec::new();
    for crd in k8up::crd::all() {
        let kind = crd.spec.names.kind.clone();
        let schema = schema_of(&kind);
        walk(&schema, &kind, &mut |path, node| {
            if let Some(props) = node.get("properties").and_then(Value::as_object) {
                for (name, child) in props {
                    let described = child
                        .get("description")
                        .and_then(Value::as_str)
                        .is_some_and(|d| !d.trim().is_empty());
                    if !described {
                        missing.push(format!("{path}.{name}"));
                    }
                }
            }
        });
    }
    assert!(
        missing.is_empty(),
        "properties without a description: {missing:#?}"
    );
}

#[test]
fn every_schema_is_structural() {
    let mut problems = Vec::new();
    for crd in k8up::crd::all() {
        let kind = crd.spec.names.kind.clone();
        let schema = schema_of(&kind);
        walk(&schema, &kind, &mut |path, node| {
            let in_combinator =
                path.contains("/allOf[") || path.contains("/anyOf[") || path.contains("/oneOf[");
            let typed = node.get("type").is_some()
                || node.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
                || node.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
            if !in_combinator && !typed {
                problems.push(format!("{path}: no type"));
            }
            if in_combinator && (node.get("type").is_some() || node.get("description").is_some()) {
                problems.push(format!("{path}: combinator branch sets type or description"));
            }
            if node.get("properties").is_some() && node.get("additionalProperties").is_some() {
                problems.push(format!("{path}: both properties and additionalProperties"));
            }
            if node.get("$ref").is_some() {
                problems.push(format!("{path}: $ref"));
            }
            if node.get("properties").is_some() && node.get("type").and_then(Value::as_str) != Some("object")
            {
                problems.push(format!("{path}: properties without type object"));
            }
            if node.get("items").is_some() && node.get("type").and_then(Value::as_str) != Some("array") {
                problems.push(format!("{path}: items without type array"));
            }
        });
    }
    assert!(problems.is_empty(), "non-structural schema nodes: {problems:#?}");
}

#[test]
fn backend_and_restore_method_carry_their_cel_rules() {
    let restore = schema_of("Restore");
    let spec = &restore["properties"]["spec"]["properties"];
    let backend_rule = spec["backend"]["x-kubernetes-validations"][0]["rule"]
        .as_str()
        .unwrap_or_default();
    assert!(
        backend_rule.contains("has(self.s3)") && backend_rule.ends_with("<= 1"),
        "{backend_rule}"
    );
    let method_rule = spec["restoreMethod"]["x-kubernetes-validations"][0]["rule"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(method_rule, "has(self.s3) != has(self.folder)");
    let schedule = schema_of("Schedule");
    let nested = &schedule["properties"]["spec"]["properties"]["backup"]["properties"]["backend"];
    assert!(
        nested["x-kubernetes-validations"].is_array(),
        "schedule sub-spec backends are validated too"
    );
}

#[test]
fn keep_counts_and_history_limits_have_a_minimum_of_zero() {
    let prune = schema_of("Prune");
    let spec = &prune["properties"]["spec"]["properties"];
    for field in ["keepJobs", "failedJobsHistoryLimit", "successfulJobsHistoryLimit"] {
        assert_eq!(spec[field]["minimum"].as_f64(), Some(0.0), "{field}");
    }
    for field in [
        "keepLast",
        "keepHourly",
        "keepDaily",
        "keepWeekly",
        "keepMonthly",
        "keepYearly",
    ] {
        assert_eq!(
            spec["retention"]["properties"][field]["minimum"].as_f64(),
            Some(0.0),
            "{field}"
        );
    }
}

#[test]
fn job_types_are_an_enum_in_the_schema() {
    let schema = schema_of("EffectiveSchedule");
    let job_type = &schema["properties"]["spec"]["properties"]["schedules"]["items"]["properties"]["jobType"];
    assert_eq!(job_type["type"], "string");
    assert_eq!(
        job_type["enum"],
        serde_json::json!(["backup", "check", "archive", "restore", "prune"])
    );
}

#[test]
fn names_scope_subresources_and_printer_columns_match_the_design() {
    let expected_short_names = [
        ("Schedule", "sched", true),
        ("EffectiveSchedule", "esched", true),
        ("Backup", "bk", true),
        ("Restore", "rst", true),
        ("Archive", "arc", true),
        ("Check", "chk", true),
        ("Prune", "prn", true),
        ("PreBackupPod", "pbp", false),
        ("PodConfig", "pc", false),
        ("Snapshot", "snap", false),
    ];
    for crd in k8up::crd::all() {
        let kind = crd.spec.names.kind.as_str();
        let (_, short, has_status) = expected_short_names
            .iter()
            .find(|(k, _, _)| *k == kind)
            .copied()
            .expect("known kind");
        assert_eq!(crd.spec.group, "k8up.io");
        assert_eq!(crd.spec.scope, "Namespaced", "{kind}");
        assert_eq!(crd.spec.names.short_names, Some(vec![short.to_owned()]), "{kind}");
        // `kubectl get k8up` lists every k8up object of a namespace.
        assert_eq!(crd.spec.names.categories, Some(vec!["k8up".to_owned()]), "{kind}");
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1");
        let status = version
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some();
        assert_eq!(status, has_status, "{kind} status subresource");
        let columns: Vec<&str> = version
            .additional_printer_columns
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        match kind {
            "Backup" => assert_eq!(columns, ["Schedule Ref", "Completion", "PreBackup", "Age"]),
            "Restore" | "Archive" | "Check" | "Prune" => {
                assert_eq!(columns, ["Schedule Ref", "Completion", "Age"])
            }
            "Snapshot" => assert_eq!(columns, ["Date taken", "Paths", "Repository"]),
            _ => assert!(!columns.is_empty(), "{kind} has printer columns"),
        }
    }
}

#[test]
fn embedded_pod_templates_keep_unknown_fields_instead_of_a_full_schema() {
    let pbp = schema_of("PreBackupPod");
    let pod = &pbp["properties"]["spec"]["properties"]["pod"];
    assert_eq!(pod["type"], "object");
    assert_eq!(pod["x-kubernetes-preserve-unknown-fields"], true);
    assert!(pod.get("properties").is_none());
    let pc = schema_of("PodConfig");
    assert_eq!(
        pc["properties"]["spec"]["properties"]["template"]["x-kubernetes-preserve-unknown-fields"],
        true
    );
}

/// Evaluate the CEL rules (`x-kubernetes-validations`) of a kind's CRD against an object, as the API server
/// would; returns the failures as `(kind of failure, message)`.
fn cel_failures(kind: &str, object: &Value) -> Vec<(String, String)> {
    match kube_cel::Validator::new().validate(&schema_of(kind), object, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .into_iter()
            .map(|e| (format!("{:?}", e.kind), e.message))
            .collect(),
    }
}

#[test]
fn cel_rules_compile_and_accept_every_example() {
    for (name, example) in examples() {
        let kind = example["kind"].as_str().unwrap_or_default().to_owned();
        assert_eq!(cel_failures(&kind, &example), Vec::new(), "{name}");
    }
}

#[test]
fn cel_and_backend_validate_agree_on_every_combination_of_storage_types() {
    let storage = ["azure", "b2", "gcs", "local", "rest", "s3", "swift"];
    // Every subset of up to two storage types (plus none) covers "zero", "one" and "more than one".
    let mut subsets: Vec<Vec<&str>> = vec![vec![]];
    for (i, a) in storage.iter().enumerate() {
        subsets.push(vec![a]);
        for b in &storage[i + 1..] {
            subsets.push(vec![a, b]);
        }
    }
    subsets.push(storage.to_vec());
    for subset in subsets {
        let mut backend = serde_json::Map::new();
        for kind in &subset {
            backend.insert((*kind).to_owned(), serde_json::json!({}));
        }
        let backup = serde_json::json!({
            "apiVersion": "k8up.io/v1", "kind": "Backup", "metadata": {"name": "b"},
            "spec": {"backend": backend},
        });
        let typed: k8up::crd::Backup = serde_json::from_value(backup.clone()).expect("backup parses");
        let rust = typed.spec.runnable.backend.unwrap_or_default().validate();
        let cel = cel_failures("Backup", &backup);
        assert_eq!(
            rust.is_ok(),
            cel.is_empty(),
            "{subset:?}: rust {rust:?}, cel {cel:?}"
        );
        assert_eq!(rust.is_ok(), subset.len() <= 1, "{subset:?}");
        if let Some((kind, message)) = cel.first() {
            assert_eq!(kind, "ValidationFailure");
            assert!(message.contains("at most one storage type"), "{message}");
        }
    }
}

#[test]
fn cel_and_restore_method_validate_agree_that_exactly_one_target_is_needed() {
    let cases = [
        (serde_json::json!({}), false),
        (serde_json::json!({"folder": {"claimName": "data"}}), true),
        (serde_json::json!({"s3": {"bucket": "out"}}), true),
        (
            serde_json::json!({"s3": {}, "folder": {"claimName": "data"}}),
            false,
        ),
        (serde_json::json!({"tlsOptions": {"caCert": "/ca.crt"}}), false),
    ];
    for (method, valid) in cases {
        let restore = serde_json::json!({
            "apiVersion": "k8up.io/v1", "kind": "Restore", "metadata": {"name": "r"},
            "spec": {"restoreMethod": method},
        });
        let typed: k8up::crd::Restore = serde_json::from_value(restore.clone()).expect("restore parses");
        let rust = typed.spec.restore_method.unwrap_or_default().validate();
        let cel = cel_failures("Restore", &restore);
        assert_eq!(rust.is_ok(), valid, "{method}: {rust:?}");
        assert_eq!(cel.is_empty(), valid, "{method}: {cel:?}");
    }
}

#[test]
fn cel_rejects_different_rest_password_fields_inside_a_schedule_sub_spec() {
    let schedule = |typo: &str| {
        serde_json::json!({
            "apiVersion": "k8up.io/v1", "kind": "Schedule", "metadata": {"name": "s"},
            "spec": {"backup": {"schedule": "@daily", "backend": {"rest": {
                "url": "https://rest",
                "passwordSecretRef": {"name": "right", "key": "pw"},
                "passwordSecretReg": {"name": typo, "key": "pw"},
            }}}},
        })
    };
    assert_eq!(cel_failures("Schedule", &schedule("right")), Vec::new());
    let failures = cel_failures("Schedule", &schedule("other"));
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].1.contains("passwordSecretReg"), "{failures:?}");
}

#[test]
fn every_crd_fits_in_the_annotation_that_client_side_kubectl_apply_writes() {
    // `kubectl apply` without `--server-side` stores the whole object as compact JSON in the
    // `kubectl.kubernetes.io/last-applied-configuration` annotation, and annotations are limited to 256 KiB.
    const ANNOTATION_LIMIT: usize = 262_144;
    for crd in k8up::crd::all() {
        let size = serde_json::to_vec(&crd).expect("crd to json").len();
        assert!(
            size < ANNOTATION_LIMIT * 9 / 10,
            "{} is {size} bytes of JSON",
            crd.spec.names.kind
        );
    }
}

#[test]
fn condition_lists_are_map_lists_keyed_by_type_for_server_side_apply() {
    let mut checked = 0;
    for crd in k8up::crd::all() {
        let kind = crd.spec.names.kind.clone();
        let schema = schema_of(&kind);
        walk(&schema, &kind, &mut |path, node| {
            if path.ends_with(".status.conditions") {
                assert_eq!(node["x-kubernetes-list-type"], "map", "{path}");
                assert_eq!(
                    node["x-kubernetes-list-map-keys"],
                    serde_json::json!(["type"]),
                    "{path}"
                );
                let required = node["items"]["required"].as_array().cloned().unwrap_or_default();
                assert!(
                    required.contains(&Value::from("type")),
                    "{path}: map key must be required"
                );
                checked += 1;
            }
        });
    }
    assert_eq!(checked, 7, "every kind with a status has conditions");
    let esched = schema_of("EffectiveSchedule");
    let entries = &esched["properties"]["spec"]["properties"]["schedules"];
    assert_eq!(
        entries["x-kubernetes-list-map-keys"],
        serde_json::json!(["jobType"])
    );
    let required = entries["items"]["required"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(required.contains(&Value::from("jobType")));
}
