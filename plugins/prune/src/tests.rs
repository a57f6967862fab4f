//! Plan-level tests of the prune planner.

use super::*;
use k8up_plugin_sdk::env_secret;
use k8up_plugin_sdk::testing::request;

fn plan(spec: &str) -> JobPlan {
    PrunePlugin::plan(&request(Action::Prune).with_spec(spec))
        .unwrap_or_else(|err| unreachable!("plan of {spec} failed: {err:?}"))
}

fn only_job(plan: &JobPlan) -> &Job {
    match plan.jobs.as_slice() {
        [job] => job,
        jobs => unreachable!("expected one job, got {}", jobs.len()),
    }
}

fn refusal(spec: &str) -> String {
    match PrunePlugin::plan(&request(Action::Prune).with_spec(spec)) {
        Err(PluginError::InvalidSpec(message)) => message,
        other => unreachable!("expected invalid-spec for {spec}, got {other:?}"),
    }
}

const KEEP_VARS: [&str; 6] = [
    "KEEP_LAST",
    "KEEP_HOURLY",
    "KEEP_DAILY",
    "KEEP_WEEKLY",
    "KEEP_MONTHLY",
    "KEEP_YEARLY",
];

#[test]
fn a_prune_is_one_exclusive_job_with_the_prune_flag_and_the_backend_credentials() {
    let mut req = request(Action::Prune).with_spec(r#"{"retention":{"keepLast":3}}"#);
    req.backend.tls_args = vec!["--caCert".into(), "/certs/ca.crt".into()];
    let result = PrunePlugin::plan(&req).unwrap_or_else(|err| unreachable!("{err:?}"));
    let job = only_job(&result);
    assert_eq!(job.name_suffix, "");
    assert!(job.exclusive);
    assert_eq!(job.args, ["--caCert", "/certs/ca.crt", "--prune"]);
    assert!(
        job.env
            .contains(&env_secret("RESTIC_PASSWORD", "backup-repo", "password"))
    );
    assert!(job.pvc_mounts.is_empty() && job.node_selector.is_empty());
    assert_eq!(
        result,
        PrunePlugin::plan(&req).unwrap_or_else(|err| unreachable!("{err:?}"))
    );
}

#[test]
fn keep_counts_reach_the_wrapper_only_when_positive_and_keep_daily_defaults_to_14_without_any_rule() {
    // (retention, expected KEEP_* values in KEEP_VARS order, keepDaily defaulted)
    let cases: [(&str, [Option<&str>; 6], bool); 6] = [
        (r#"{}"#, [None, None, Some("14"), None, None, None], true),
        (
            r#"{"keepLast":5}"#,
            [Some("5"), None, None, None, None, None],
            false,
        ),
        (
            r#"{"keepDaily":0,"keepWeekly":0}"#,
            [None, None, Some("14"), None, None, None],
            true,
        ),
        (
            r#"{"keepDaily":7}"#,
            [None, None, Some("7"), None, None, None],
            false,
        ),
        (
            r#"{"keepLast":1,"keepHourly":2,"keepDaily":3,"keepWeekly":4,"keepMonthly":5,"keepYearly":6}"#,
            [Some("1"), Some("2"), Some("3"), Some("4"), Some("5"), Some("6")],
            false,
        ),
        (
            r#"{"keepLast":null,"keepMonthly":12}"#,
            [None, None, None, None, Some("12"), None],
            false,
        ),
    ];
    for (retention, expected, defaulted) in cases {
        let result = plan(&format!(r#"{{"retention":{retention}}}"#));
        let job = only_job(&result);
        let values: Vec<Option<&str>> = KEEP_VARS.iter().map(|var| job.env_literal_value(var)).collect();
        assert_eq!(values, expected, "{retention}");
        for var in KEEP_VARS {
            assert_eq!(
                job.has_env(var),
                job.env_literal_value(var).is_some(),
                "{var} in {retention}"
            );
        }
        assert_eq!(
            result.message.as_deref().is_some_and(|m| m.contains("14 daily")),
            defaulted,
            "{retention}: {:?}",
            result.message
        );
    }
}

#[test]
fn a_spec_without_retention_keeps_14_daily_snapshots_and_says_so() {
    for spec in ["{}", "", r#"{"retention":null}"#] {
        let result = plan(spec);
        assert_eq!(
            only_job(&result).env_literal_value("KEEP_DAILY"),
            Some("14"),
            "{spec}"
        );
        assert_eq!(
            result.message.as_deref(),
            Some("retention sets no keep rule: 14 daily snapshots are kept, as in K8up")
        );
    }
}

#[test]
fn negative_or_oversized_counts_are_refused_naming_the_field() {
    let message = refusal(r#"{"retention":{"keepWeekly":-1}}"#);
    assert!(
        message.contains("retention.keepWeekly") && message.contains("negative"),
        "{message}"
    );
    let message = refusal(r#"{"retention":{"keepDaily":-3}}"#);
    assert!(message.contains("retention.keepDaily"), "{message}");
    let message = refusal(r#"{"retention":{"keepLast":99999999999}}"#);
    assert!(
        message.contains("retention.keepLast") && message.contains("too large"),
        "{message}"
    );
    let message = refusal(r#"{"retention":{"keepLast":"three"}}"#);
    assert!(message.contains("failed to read the spec"), "{message}");
}

#[test]
fn keep_tags_are_one_comma_list_and_a_tag_with_a_comma_is_refused() {
    let job = plan(r#"{"retention":{"keepTags":["important"," release ",""]}}"#);
    assert_eq!(
        only_job(&job).env_literal_value("KEEP_TAGS"),
        Some("important,release")
    );
    let job = plan(r#"{"retention":{"keepTags":[]}}"#);
    assert!(!only_job(&job).has_env("KEEP_TAGS"));
    let message = refusal(r#"{"retention":{"keepTags":["a,b"]}}"#);
    assert!(
        message.contains("retention.keepTags") && message.contains("\"a,b\""),
        "{message}"
    );
}

#[test]
fn keep_within_durations_take_restic_units_and_a_bad_one_names_its_field() {
    let result = plan(
        r#"{"retention":{"keepWithin":"2y5m7d3h","keepWithinHourly":"48h","keepWithinDaily":"7d",
            "keepWithinWeekly":"1m","keepWithinMonthly":"1y","keepWithinYearly":"10y"}}"#,
    );
    let job = only_job(&result);
    let expected = [
        ("KEEP_WITHIN", "2y5m7d3h"),
        ("KEEP_WITHIN_HOURLY", "48h"),
        ("KEEP_WITHIN_DAILY", "7d"),
        ("KEEP_WITHIN_WEEKLY", "1m"),
        ("KEEP_WITHIN_MONTHLY", "1y"),
        ("KEEP_WITHIN_YEARLY", "10y"),
    ];
    for (name, value) in expected {
        assert_eq!(job.env_literal_value(name), Some(value), "{name}");
    }
    assert!(!only_job(&plan(r#"{"retention":{"keepWithin":""}}"#)).has_env("KEEP_WITHIN"));
    let cases = [
        ("keepWithin", "7days"),
        ("keepWithinHourly", "90"),
        ("keepWithinDaily", "0d"),
        ("keepWithinWeekly", "4w"),
        ("keepWithinMonthly", "-1m"),
        ("keepWithinYearly", "1.5y"),
    ];
    for (field, value) in cases {
        let message = refusal(&format!(r#"{{"retention":{{"{field}":"{value}"}}}}"#));
        assert!(
            message.starts_with(&format!("retention.{field}: ")) && message.contains(value),
            "{message}"
        );
    }
}

#[test]
fn retention_tags_filter_the_snapshots_with_one_tag_flag_each() {
    let result = plan(r#"{"retention":{"tags":["db","prod",""],"keepTags":["keep"]}}"#);
    let job = only_job(&result);
    assert_eq!(job.flag_values("--tag"), ["db", "prod"]);
    assert_eq!(job.env_literal_value("KEEP_TAGS"), Some("keep"));
    assert!(only_job(&plan("{}")).flag_values("--tag").is_empty());
}

#[test]
fn hostnames_filter_to_the_namespace_and_any_other_host_is_refused() {
    let result = plan(r#"{"retention":{"hostnames":["ns"," ns",""]}}"#);
    assert_eq!(only_job(&result).flag_values("--hostnameFilter"), ["ns"]);
    assert!(only_job(&plan("{}")).flag_values("--hostnameFilter").is_empty());
    let message = refusal(r#"{"retention":{"hostnames":["ns","other-team"]}}"#);
    assert!(
        message.starts_with("retention.hostnames: \"other-team\" is not this namespace's host"),
        "{message}"
    );
    assert!(message.contains("\"ns\""), "{message}");
}

#[test]
fn the_operator_metrics_webhook_and_snapshot_sync_settings_reach_the_job() {
    let plain = plan("{}");
    let job = only_job(&plain);
    for var in [
        "PROM_URL",
        "CLUSTER_NAME",
        "STATS_URL",
        "BACKUP_SKIP_SNAPSHOT_SYNC",
    ] {
        assert!(!job.has_env(var), "{var}");
    }
    let mut req = request(Action::Prune);
    req.settings.prom_url = Some("http://pushgateway:9091".into());
    req.settings.cluster_name = Some("prod-eu".into());
    req.settings.stats_url = Some("http://hooks/stats".into());
    req.settings.skip_snapshot_sync = true;
    let result = PrunePlugin::plan(&req).unwrap_or_else(|err| unreachable!("{err:?}"));
    let job = only_job(&result);
    let expected = [
        ("PROM_URL", "http://pushgateway:9091"),
        ("CLUSTER_NAME", "prod-eu"),
        ("STATS_URL", "http://hooks/stats"),
        ("BACKUP_SKIP_SNAPSHOT_SYNC", "true"),
    ];
    for (name, value) in expected {
        assert_eq!(job.env_literal_value(name), Some(value), "{name}");
    }
}

#[test]
fn other_actions_are_refused_and_the_plugin_names_itself() {
    assert_eq!(
        PrunePlugin::plan(&request(Action::Check)),
        Err(PluginError::UnsupportedAction(Action::Check))
    );
    let info = PrunePlugin::info();
    assert_eq!(info.name, "k8up-prune");
    assert_eq!(info.actions, [Action::Prune]);
}
