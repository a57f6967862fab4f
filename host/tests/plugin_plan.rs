//! `k8up plan` and `k8up plugin inspect|run` as users run them: the built binary with the real embedded
//! plugins, the example resources of `crds/examples/`, state files, no cluster.

use std::path::{Path, PathBuf};
use std::process::{Command as Process, Output};

use clap::CommandFactory;
use k8up::cli::Cli;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every env var the CLI model knows (removed from the child, so the caller's environment cannot matter).
fn known_env() -> Vec<String> {
    fn collect(command: &clap::Command, found: &mut Vec<String>) {
        found.extend(
            command
                .get_arguments()
                .filter_map(|a| a.get_env())
                .map(|e| e.to_string_lossy().into_owned()),
        );
        for sub in command.get_subcommands() {
            collect(sub, found);
        }
    }
    let mut found = Vec::new();
    collect(&Cli::command(), &mut found);
    found
}

#[allow(clippy::unwrap_used)] // A test helper: failing to start the binary fails the test.
fn k8up(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut process = Process::new(env!("CARGO_BIN_EXE_k8up"));
    process
        .current_dir(workspace())
        .args(args)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1");
    for name in known_env() {
        process.env_remove(name);
    }
    process.envs(env.iter().copied());
    process.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One row: an example resource, the state it is planned against, operator settings (env), and the
/// snapshot of the Jobs. Add a row when a kind's built-in plugin is embedded.
struct Case {
    example: &'static str,
    state: &'static str,
    env: &'static [(&'static str, &'static str)],
    snapshot: &'static str,
}

const CASES: &[Case] = &[
    Case {
        example: "crds/examples/backup.yaml",
        state: "host/tests/fixtures/plan/backup-state.yaml",
        env: &[],
        snapshot: "backup_example",
    },
    Case {
        example: "crds/examples/backup.yaml",
        state: "host/tests/fixtures/plan/backup-state.yaml",
        env: &[
            ("BACKUP_ENABLE_RELAXED_SCHEDULING", "true"),
            ("BACKUP_DATAPATH", "/volumes"),
            ("BACKUP_IMAGE", "registry.example/k8up:v2"),
        ],
        snapshot: "backup_example_relaxed",
    },
    Case {
        example: "crds/examples/prune.yaml",
        state: "host/tests/fixtures/plan/empty-state.yaml",
        env: &[],
        snapshot: "prune_example",
    },
    Case {
        example: "crds/examples/check.yaml",
        state: "host/tests/fixtures/plan/empty-state.yaml",
        env: &[],
        snapshot: "check_example",
    },
    Case {
        example: "crds/examples/archive.yaml",
        state: "host/tests/fixtures/plan/empty-state.yaml",
        env: &[],
        snapshot: "archive_example",
    },
    Case {
        example: "crds/examples/restore.yaml",
        state: "host/tests/fixtures/plan/backup-state.yaml",
        env: &[],
        snapshot: "restore_example",
    },
];

#[test]
fn plan_turns_each_example_resource_into_the_expected_jobs() {
    for case in CASES {
        let out = k8up(&["plan", "-f", case.example, "--state", case.state], case.env);
        assert!(out.status.success(), "{}: {}", case.example, text(&out.stderr));
        let yaml = text(&out.stdout);
        insta::assert_snapshot!(case.snapshot, yaml);
        // The output is what the API server would get: Jobs, each parseable.
        for doc in yaml.split("\n---\n") {
            let job: k8s_openapi::api::batch::v1::Job = serde_yaml::from_str(doc).unwrap();
            assert!(job.metadata.owner_references.is_some(), "{}", case.snapshot);
        }
    }
}

#[test]
fn plan_of_an_empty_namespace_prints_no_jobs_and_says_why() {
    let out = k8up(
        &[
            "plan",
            "-f",
            "crds/examples/backup.yaml",
            "--state",
            "host/tests/fixtures/plan/empty-state.yaml",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    let notes = text(&out.stderr);
    assert!(notes.contains("default/backup-test: no Jobs"), "{notes}");
    assert!(notes.contains("nothing to back up"), "{notes}");
}

#[test]
fn plan_refuses_an_invalid_resource_with_the_operators_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.yaml");
    std::fs::write(
        &file,
        "apiVersion: k8up.io/v1\nkind: Backup\nmetadata: {name: b}\nspec: {backend: {s3: {bucket: x}}}\n",
    )
    .unwrap();
    let out = k8up(&["plan", "-f", file.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("the resource is invalid"), "{err}");
    assert!(
        err.contains("BACKUP_GLOBALS3ENDPOINT") && err.contains("repository password"),
        "{err}"
    );
}

#[test]
fn plan_refuses_what_is_not_an_action() {
    let out = k8up(&["plan", "-f", "crds/examples/podconfig.yaml"], &[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("\"PodConfig\""),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn every_action_has_an_embedded_built_in_plugin_that_describes_itself() {
    let engine = k8up::plugin::PluginEngine::new(k8up::plugin::Limits::default()).unwrap();
    for job_type in k8up::crd::JobType::ALL {
        let builtin = k8up::plugin::builtin::for_action(job_type)
            .unwrap_or_else(|| panic!("no embedded built-in for {job_type}"));
        assert_eq!(builtin.crate_name, format!("k8up-plugin-{job_type}"));
        let plugin = engine.load(&builtin.source(), builtin.bytes).unwrap();
        assert_eq!(plugin.name(), format!("k8up-{job_type}"));
        assert_eq!(plugin.info().actions.len(), 1, "{job_type}");
    }
}

fn builtin_wasm() -> PathBuf {
    workspace().join("target/plugins/wasm32-wasip2/plugin/k8up_plugin_backup.wasm")
}

#[test]
fn plugin_inspect_describes_the_built_in_backup_component() {
    let wasm = builtin_wasm();
    let out = k8up(&["plugin", "inspect", wasm.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info = text(&out.stdout);
    let bytes = std::fs::read(&wasm).unwrap();
    for line in [
        "name: k8up-backup".to_string(),
        format!("version: {}", env!("CARGO_PKG_VERSION")),
        "wit: k8up:plugin@0.1.0".to_string(),
        "actions: backup".to_string(),
        format!("size: {}", bytes.len()),
        format!("sha256: {}", k8up::plugin::sha256_hex(&bytes)),
    ] {
        assert!(info.lines().any(|l| l == line), "missing {line:?} in\n{info}");
    }
}

#[test]
fn plan_request_only_feeds_plugin_run_which_prints_the_raw_plan() {
    let request = k8up(
        &[
            "plan",
            "-f",
            "crds/examples/backup.yaml",
            "--state",
            "host/tests/fixtures/plan/backup-state.yaml",
            "--request-only",
        ],
        &[],
    );
    assert!(request.status.success(), "{}", text(&request.stderr));
    let json: serde_json::Value = serde_json::from_slice(&request.stdout).unwrap();
    assert_eq!(json["action"], "Backup");
    let offered: Vec<&str> = json["pvcs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        offered,
        ["mariadb-pvc", "wordpress-pvc"],
        "the label selector left cache-pvc out"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("request.json");
    std::fs::write(&file, &request.stdout).unwrap();
    let wasm = builtin_wasm();
    let out = k8up(
        &[
            "plugin",
            "run",
            wasm.to_str().unwrap(),
            "--request",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let suffixes: Vec<&str> = plan["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|j| j["name_suffix"].as_str())
        .collect();
    assert_eq!(suffixes.len(), 3, "{plan}");
    assert!(suffixes.contains(&"prebackup"), "{suffixes:?}");
}

#[test]
fn plugin_run_reports_a_malformed_request_with_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("request.json");
    std::fs::write(&file, "{\"action\": \"Backup\"}").unwrap();
    let wasm = builtin_wasm();
    let out = k8up(
        &[
            "plugin",
            "run",
            wasm.to_str().unwrap(),
            "--request",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("failed to parse the plan request") && err.contains("request.json"),
        "{err}"
    );
}
