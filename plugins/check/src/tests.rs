//! Plan-level tests of the check planner.

use super::*;
use k8up_plugin_sdk::env_secret;
use k8up_plugin_sdk::testing::request;

fn only_job(req: &PlanRequest) -> Job {
    match CheckPlugin::plan(req) {
        Ok(JobPlan {
            mut jobs,
            message: None,
        }) if jobs.len() == 1 => jobs.remove(0),
        other => unreachable!("expected one job and no message, got {other:?}"),
    }
}

#[test]
fn a_check_is_one_exclusive_job_with_the_check_flag_and_the_backend_credentials() {
    let mut req = request(Action::Check);
    req.backend.tls_args = vec!["--caCert".into(), "/certs/ca.crt".into()];
    let job = only_job(&req);
    assert_eq!(job.name_suffix, "");
    assert!(job.exclusive);
    assert_eq!(job.args, ["--caCert", "/certs/ca.crt", "--check"]);
    assert!(job.env.contains(&env_secret(
        "AWS_SECRET_ACCESS_KEY",
        "minio-credentials",
        "password"
    )));
    for var in ["PROM_URL", "CLUSTER_NAME", "STATS_URL"] {
        assert!(!job.has_env(var), "{var}");
    }
}

#[test]
fn the_specs_prom_url_and_cluster_name_win_over_the_operators() {
    let mut req = request(Action::Check);
    req.settings.prom_url = Some("http://global-prom:9091".into());
    req.settings.cluster_name = Some("global".into());
    req.settings.stats_url = Some("http://hooks".into());
    // (spec, expected PROM_URL, expected CLUSTER_NAME)
    let cases = [
        ("{}", "http://global-prom:9091", "global"),
        (
            r#"{"promURL":"","clusterName":""}"#,
            "http://global-prom:9091",
            "global",
        ),
        (
            r#"{"promURL":"http://own:9091","clusterName":"prod-eu"}"#,
            "http://own:9091",
            "prod-eu",
        ),
        (
            r#"{"clusterName":"prod-eu"}"#,
            "http://global-prom:9091",
            "prod-eu",
        ),
    ];
    for (spec, prom, cluster) in cases {
        let job = only_job(&req.clone().with_spec(spec));
        assert_eq!(job.env_literal_value("PROM_URL"), Some(prom), "{spec}");
        assert_eq!(job.env_literal_value("CLUSTER_NAME"), Some(cluster), "{spec}");
        assert_eq!(job.env_literal_value("STATS_URL"), Some("http://hooks"), "{spec}");
    }
}

#[test]
fn a_read_data_subset_is_passed_on_and_a_malformed_one_is_refused() {
    for subset in ["1/5", "5/5", "10%", "2.5%", "100%", "500M", "1G", "4096"] {
        let job = only_job(&request(Action::Check).with_spec(&format!(r#"{{"readDataSubset":"{subset}"}}"#)));
        assert_eq!(job.flag_values("--readDataSubset"), [subset]);
        assert_eq!(job.args.last().map(String::as_str), Some(subset));
    }
    let job = only_job(&request(Action::Check).with_spec(r#"{"readDataSubset":""}"#));
    assert!(!job.has_arg("--readDataSubset"));
    let bad = [
        ("0/5", "1 <= n <= m"),
        ("6/5", "1 <= n <= m"),
        ("1/", "not a valid subset"),
        ("0%", "above 0%"),
        ("101%", "at most 100%"),
        ("%", "not a valid subset"),
        ("1.%", "not a valid subset"),
        ("0M", "must be positive"),
        ("500MB", "not a valid subset"),
        ("5 M", "not a valid subset"),
        ("all", "not a valid subset"),
    ];
    for (subset, reason) in bad {
        let req = request(Action::Check).with_spec(&format!(r#"{{"readDataSubset":"{subset}"}}"#));
        match CheckPlugin::plan(&req) {
            Err(PluginError::InvalidSpec(message)) => assert!(
                message.starts_with("readDataSubset: ") && message.contains(reason),
                "{subset}: {message}"
            ),
            other => unreachable!("{subset:?} was not refused: {other:?}"),
        }
    }
}

#[test]
fn other_actions_and_malformed_specs_are_refused() {
    assert_eq!(
        CheckPlugin::plan(&request(Action::Prune)),
        Err(PluginError::UnsupportedAction(Action::Prune))
    );
    assert!(matches!(
        CheckPlugin::plan(&request(Action::Check).with_spec(r#"{"promURL":3}"#)),
        Err(PluginError::InvalidSpec(_))
    ));
    assert_eq!(CheckPlugin::info().name, "k8up-check");
    assert_eq!(CheckPlugin::info().actions, [Action::Check]);
}
