//! The `k8up` command line as users meet it: the built binary's `--help`, env vars, secrets, subcommands,
//! and the generated configuration reference.

use std::path::{Path, PathBuf};
use std::process::{Command as Process, Output};

use clap::CommandFactory;
use k8up::cli::{Cli, Command};

/// Run the built binary with exactly the given k8up env vars: every env var the CLI model knows is removed
/// first, so that the caller's environment cannot change the outcome.
#[allow(clippy::unwrap_used)] // A test helper: failing to start the binary fails the test.
fn k8up(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut process = Process::new(env!("CARGO_BIN_EXE_k8up"));
    process.args(args).env_remove("RUST_LOG").env("NO_COLOR", "1");
    for (_, name, _) in all_args_with_env() {
        process.env_remove(name);
    }
    for (name, value) in env {
        process.env(name, value);
    }
    process.output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every (subcommand path, env var, hidden) the clap model declares, nested subcommands included
/// (`plugin inspect`); the path is empty for global flags.
fn all_args_with_env() -> Vec<(String, String, bool)> {
    fn collect(command: &clap::Command, path: &str, found: &mut Vec<(String, String, bool)>) {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                found.push((
                    path.to_owned(),
                    env.to_string_lossy().into_owned(),
                    arg.is_hide_set(),
                ));
            }
        }
        for sub in command.get_subcommands() {
            let child = if path.is_empty() {
                sub.get_name().to_owned()
            } else {
                format!("{path} {}", sub.get_name())
            };
            collect(sub, &child, found);
        }
    }
    let mut found = Vec::new();
    collect(&Cli::command(), "", &mut found);
    found
}

/// Every subcommand path (`operator`, `plugin`, `plugin inspect`, ...).
fn all_subcommands() -> Vec<String> {
    fn collect(command: &clap::Command, path: &str, found: &mut Vec<String>) {
        for sub in command.get_subcommands() {
            let child = if path.is_empty() {
                sub.get_name().to_owned()
            } else {
                format!("{path} {}", sub.get_name())
            };
            found.push(child.clone());
            collect(sub, &child, found);
        }
    }
    let mut found = Vec::new();
    collect(&Cli::command(), "", &mut found);
    found
}

#[test]
fn the_command_model_passes_clap_debug_assertions() {
    Cli::command().debug_assert();
}

#[test]
fn every_help_screen_lists_the_env_var_of_each_visible_flag() {
    let all = all_args_with_env();
    let globals: Vec<&str> = all
        .iter()
        .filter(|(sub, ..)| sub.is_empty())
        .map(|(_, e, _)| e.as_str())
        .collect();
    assert_eq!(globals, ["K8UP_DEBUG", "K8UP_LOG_FORMAT"]);

    let top = k8up(&["--help"], &[]);
    assert!(top.status.success(), "{}", stderr(&top));
    for env in &globals {
        assert!(
            stdout(&top).contains(&format!("[env: {env}")),
            "`k8up --help` lacks {env}"
        );
    }

    let mut checked = 0;
    for sub in all_subcommands() {
        let mut argv: Vec<&str> = sub.split(' ').collect();
        argv.push("--help");
        let help = k8up(&argv, &[]);
        assert!(help.status.success(), "{}", stderr(&help));
        let text = stdout(&help);
        let visible = all.iter().filter(|(s, _, hidden)| *s == sub && !hidden);
        for (_, env, _) in visible {
            assert!(
                text.contains(&format!("[env: {env}")),
                "`k8up {sub} --help` lacks {env}"
            );
            checked += 1;
        }
        for env in &globals {
            assert!(text.contains(env), "`k8up {sub} --help` lacks the global {env}");
        }
    }
    // The operator alone has more than 50 settings; a broken model would check next to nothing.
    assert!(checked > 50, "only {checked} env vars checked");
}

#[test]
fn operator_help_shows_k8ups_env_var_names_under_topic_headings() {
    let help = stdout(&k8up(&["operator", "--help"], &[]));
    for env in [
        "BACKUP_ANNOTATION",
        "BACKUP_GLOBAL_CONCURRENT_PRUNE_JOBS_LIMIT",
        "BACKUP_GLOBALRESTORES3ACCESSKEYID",
        "BACKUP_GLOBALRESTORES3ACCESKEYID",
        "BACKUP_SKIP_WITHOUT_ANNOTATION",
        "CLUSTER_NAME",
        "K8UP_PLUGIN_TIMEOUT_MS",
        "K8UP_PLUGIN_RESTORE",
    ] {
        assert!(help.contains(env), "operator --help lacks {env}");
    }
    for heading in [
        "Annotations:",
        "Job defaults:",
        "Global repository:",
        "Restore target:",
        "History limits:",
        "Concurrency:",
        "Resources:",
        "Scheduling:",
        "Metrics:",
        "Leader election:",
        "Plugins:",
    ] {
        assert!(
            help.lines().any(|l| l == heading),
            "operator --help lacks the heading {heading}"
        );
    }
}

#[test]
fn env_vars_reach_the_validated_settings() {
    let out = k8up(
        &["operator", "--check-config"],
        &[
            ("BACKUP_OPERATOR_NAMESPACE", "backup-ops"),
            ("BACKUP_GLOBAL_CONCURRENT_BACKUP_JOBS_LIMIT", "4"),
            ("BACKUP_GLOBAL_MEMORY_LIMIT", "512Mi"),
            ("BACKUP_ENABLE_LEADER_ELECTION", "false"),
            ("BACKUP_GLOBALRESTORES3ACCESKEYID", "misspelt-id"),
            ("K8UP_PLUGIN_MEMORY_MIB", "32"),
            ("K8UP_TIMEZONE", "Europe/Zurich"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let dump = stdout(&out);
    assert!(dump.contains("operator_namespace: \"backup-ops\""), "{dump}");
    assert!(
        dump.contains("backup: Some(\n            4,\n        )"),
        "{dump}"
    );
    assert!(dump.contains("\"512Mi\""), "{dump}");
    assert!(dump.contains("enabled: false"), "{dump}");
    assert!(dump.contains("memory_limit_bytes: 33554432"), "{dump}");
    assert!(dump.contains("timezone: \"Europe/Zurich\""), "{dump}");
    assert!(
        dump.contains("namespace: \"backup-ops\""),
        "the plugin namespace follows the operator's: {dump}"
    );
    // The access key arrived (as a secret) through K8up's misspelt variable.
    assert!(dump.contains("access_key_id: Some(\n            ***,"), "{dump}");
    assert!(!dump.contains("misspelt-id"), "{dump}");
}

#[test]
fn empty_env_vars_count_as_unset_like_in_k8up() {
    let out = k8up(
        &["operator", "--check-config"],
        &[
            ("BACKUP_GLOBAL_BACKOFF_LIMIT", ""),
            ("BACKUP_ENABLE_LEADER_ELECTION", ""),
            ("K8UP_LOG_FORMAT", ""),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let dump = stdout(&out);
    assert!(dump.contains("backoff_limit: 6,"), "{dump}");
    assert!(dump.contains("enabled: true,"), "{dump}");
}

#[test]
fn invalid_env_values_fail_with_the_flag_env_var_and_reason() {
    let out = k8up(
        &["operator", "--check-config"],
        &[
            ("BACKUP_GLOBAL_CPU_LIMIT", "two cores"),
            ("BACKUP_METRICS_BINDADDRESS", "8080"),
        ],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("--global-cpu-limit (BACKUP_GLOBAL_CPU_LIMIT): \"two cores\""),
        "{err}"
    );
    assert!(
        err.contains("--metrics-bindaddress (BACKUP_METRICS_BINDADDRESS)"),
        "{err}"
    );
}

const SECRETS: &[(&str, &str)] = &[
    ("BACKUP_GLOBALREPOPASSWORD", "repo-password-x1"),
    ("BACKUP_GLOBALACCESSKEYID", "access-key-x2"),
    ("BACKUP_GLOBALSECRETACCESSKEY", "secret-key-x3"),
    ("BACKUP_GLOBALRESTORES3ACCESSKEYID", "restore-id-x4"),
    ("BACKUP_GLOBALRESTORES3ACCESKEYID", "restore-id-x5"),
    ("BACKUP_GLOBALRESTORES3SECRETACCESSKEY", "restore-secret-x6"),
    ("BACKUP_GLOBALSTATSURL", "https://hooks.example.com/hook-token-x7"),
];

/// The part of a secret value that must not show up (for the webhook URL: its token path).
fn needle(value: &str) -> &str {
    value.rsplit('/').next().unwrap_or(value)
}

#[test]
fn secret_values_never_appear_in_help_or_the_printed_settings() {
    for args in [
        &["operator", "--help"][..],
        &["operator", "-h"],
        &["operator", "--check-config"],
    ] {
        let out = k8up(args, SECRETS);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let text = format!("{}{}", stdout(&out), stderr(&out));
        for (env, value) in SECRETS {
            assert!(
                !text.contains(needle(value)),
                "{args:?} printed the value of {env}"
            );
        }
    }
}

#[test]
fn secret_values_never_appear_in_the_debug_output_of_the_parsed_cli() {
    let matches = Cli::command()
        .try_get_matches_from([
            "k8up",
            "operator",
            "--globalrepopassword",
            "hunter2-repo",
            "--globalsecretaccesskey",
            "hunter2-s3",
            "--globalstatsurl",
            "https://hooks.example.com/hunter2-token",
        ])
        .unwrap();
    let cli = <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap();
    let dump = format!("{cli:?}");
    assert!(!dump.contains("hunter2"), "{dump}");
    assert!(dump.contains("***"), "{dump}");
    let Command::Operator(args) = cli.command else {
        panic!("parsed {:?}", cli.command)
    };
    assert_eq!(args.repository.repo_password.unwrap().expose(), "hunter2-repo");
}

#[test]
fn the_debug_flag_enables_debug_logs_without_leaking_secrets() {
    let out = k8up(&["--debug", "operator", "--check-config"], SECRETS);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("DEBUG") && err.contains("validated operator settings"),
        "{err}"
    );
    for (env, value) in SECRETS {
        assert!(!err.contains(needle(value)), "the debug log printed {env}: {err}");
    }
}

#[test]
fn json_log_format_writes_one_json_object_per_line() {
    let out = k8up(
        &["operator", "--check-config"],
        &[("K8UP_LOG_FORMAT", "json"), ("K8UP_DEBUG", "yes")],
    );
    let err = stderr(&out);
    let log_lines: Vec<&str> = err.lines().filter(|l| l.starts_with('{')).collect();
    assert!(!log_lines.is_empty(), "{err}");
    for line in log_lines {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(value["level"], "DEBUG", "{line}");
        assert_eq!(value["message"], "validated operator settings", "{line}");
    }
}

#[test]
fn version_prints_the_crate_version_commit_target_and_plugin_interfaces() {
    let out = k8up(&["version"], &[]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("k8up {}\n", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.contains("commit: "), "{text}");
    let target = format!("target: {}-{}", std::env::consts::ARCH, std::env::consts::OS);
    assert!(text.contains(&target), "{text}");
    assert!(text.contains("plugin interfaces: k8up:plugin@0.1.0"), "{text}");
}

#[test]
fn crds_prints_what_the_library_renders_and_exits_zero() {
    let out = k8up(&["crds"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), k8up::crd::render_all().unwrap());
}

#[test]
fn crds_with_dir_writes_the_same_files_as_the_library() {
    let by_cli = tempfile::tempdir().unwrap();
    let by_library = tempfile::tempdir().unwrap();
    let out = k8up(&["crds", "--dir", by_cli.path().to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = k8up::crd::write_dir(by_library.path()).unwrap();
    for path in &expected {
        let name = path.file_name().unwrap();
        let ours = std::fs::read_to_string(by_cli.path().join(name)).unwrap();
        assert_eq!(ours, std::fs::read_to_string(path).unwrap(), "{name:?}");
    }
    let written: Vec<PathBuf> = std::fs::read_dir(by_cli.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(written.len(), expected.len(), "{}", stdout(&out));
}

#[test]
fn restic_without_a_repository_fails_with_a_report_naming_the_missing_setting() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("termination-log");
    let out = k8up(
        &["restic"],
        &[
            ("K8UP_TERMINATION_LOG", log.to_str().unwrap()),
            ("HOSTNAME", "ns1"),
        ],
    );
    // A configuration error is permanent: the status the Jobs' podFailurePolicy fails at once on.
    assert_eq!(
        out.status.code(),
        Some(i32::from(k8up::restic::PERMANENT_FAILURE_EXIT_CODE)),
        "{}",
        stderr(&out)
    );
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&log).unwrap()).unwrap();
    assert_eq!(report["success"], false, "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.contains("RESTIC_REPOSITORY"), "{message}");
    assert!(stderr(&out).contains("RESTIC_REPOSITORY"), "{}", stderr(&out));
}

#[test]
fn docs_configuration_md_matches_the_clap_model() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    let expected = k8up::cli::config_reference_markdown();
    if std::env::var_os("K8UP_REGENERATE_DOCS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &expected).unwrap();
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/configuration.md differs from the CLI model; regenerate it with `{}`",
        k8up::cli::REGENERATE_DOCS_COMMAND
    );
}

#[test]
fn the_configuration_reference_documents_every_env_var_including_hidden_ones() {
    let doc = k8up::cli::config_reference_markdown();
    for (_, env, _) in all_args_with_env() {
        assert!(doc.contains(&format!("`{env}`")), "the reference lacks {env}");
    }
    for heading in [
        "## Global flags",
        "## `k8up operator`",
        "### Leader election",
        "## `k8up crds`",
        "## `k8up plan`",
        "## `k8up plugin inspect`",
        "## `k8up plugin run`",
    ] {
        assert!(doc.contains(heading), "the reference lacks {heading}");
    }
}
