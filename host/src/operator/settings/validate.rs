//! `OperatorSettings::from_args`: every check of the operator configuration, reporting all problems at once.

use std::num::NonZeroU32;
use std::time::Duration;

use clap::{Args, Command};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::validated::{
    Annotations, ConcurrencyLimits, GlobalRepository, HistoryLimits, InvalidSetting, JobDefaults,
    JobResources, LeaderElection, Metrics, OperatorSettings, PluginOverrides, PluginSettings, RedactedUrl,
    RestartPolicy, RestoreTarget, Scheduling, SettingsError,
};
use super::{DEFAULT_OPERATOR_NAMESPACE, OperatorArgs, Secret, parse};

/// Largest plugin call budget accepted: a plan that takes a minute is a bug, not a configuration.
const MAX_PLUGIN_TIMEOUT_MS: u64 = 60_000;
/// Largest plugin memory cap accepted, in MiB.
const MAX_PLUGIN_MEMORY_MIB: u64 = 4096;

/// Collects problems, naming each by the flag and env var clap knows for the argument id.
struct Problems {
    command: Command,
    found: Vec<InvalidSetting>,
}

impl Problems {
    fn new() -> Self {
        Self {
            command: OperatorArgs::augment_args(Command::new("operator")),
            found: Vec::new(),
        }
    }

    fn add(&mut self, id: &str, reason: impl Into<String>) {
        let arg = self.command.get_arguments().find(|a| a.get_id() == id);
        let flag = arg.and_then(|a| a.get_long()).unwrap_or(id).to_owned();
        let env = arg
            .and_then(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.found.push(InvalidSetting {
            flag,
            env,
            reason: reason.into(),
        });
    }

    /// Record the error of `result` (if any) under `id` and pass the value on.
    fn check<T>(&mut self, id: &str, result: Result<T, String>) -> Option<T> {
        result.map_err(|reason| self.add(id, reason)).ok()
    }
}

/// `None` for unset and empty values: Helm charts and Kustomize often set env vars to `""`.
fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn non_empty_secret(value: Option<Secret>) -> Option<Secret> {
    value.filter(|v| !v.expose().trim().is_empty())
}

fn absolute_path(s: &str) -> Result<(), String> {
    if s.starts_with('/') {
        Ok(())
    } else {
        Err(format!("{s:?} must be an absolute path"))
    }
}

fn count(value: i32, what: &str) -> Result<u32, String> {
    u32::try_from(value).map_err(|_| format!("{value} is negative; {what}"))
}

impl OperatorSettings {
    /// Validate `args`, reporting every invalid setting at once.
    pub fn from_args(args: OperatorArgs) -> Result<Self, SettingsError> {
        let mut p = Problems::new();

        let operator_namespace = non_empty(args.operator_namespace.clone())
            .or_else(|| non_empty(args.pod_namespace.clone()))
            .unwrap_or_else(|| DEFAULT_OPERATOR_NAMESPACE.to_owned());
        p.check("operator_namespace", parse::dns_label(&operator_namespace));

        let a = args.annotations;
        for (id, key) in [
            ("backup_annotation", &a.backup_annotation),
            ("backup_command_annotation", &a.backup_command_annotation),
            ("file_extension_annotation", &a.file_extension_annotation),
            ("restic_args_annotation", &a.restic_args_annotation),
        ] {
            p.check(id, parse::annotation_key(key));
        }
        let annotations = Annotations {
            backup: a.backup_annotation,
            backup_command: a.backup_command_annotation,
            file_extension: a.file_extension_annotation,
            restic_args: a.restic_args_annotation,
            skip_pvcs_without_annotation: a.skip_pvcs_without_annotation,
        };

        let jobs = validate_jobs(args.jobs, &mut p);
        let r = args.repository;
        let repository = GlobalRepository {
            password: non_empty_secret(r.repo_password),
            access_key_id: non_empty_secret(r.repo_access_key_id),
            secret_access_key: non_empty_secret(r.repo_secret_access_key),
            s3_bucket: non_empty(r.repo_s3_bucket),
            s3_endpoint: non_empty(r.repo_s3_endpoint)
                .and_then(|e| p.check("repo_s3_endpoint", parse::http_url(&e))),
        };
        let t = args.restore;
        let restore_target = RestoreTarget {
            // Precedence: flag > BACKUP_GLOBALRESTORES3ACCESSKEYID > K8up's misspelt env var.
            access_key_id: non_empty_secret(t.restore_access_key_id)
                .or_else(|| non_empty_secret(t.restore_access_key_id_misspelt)),
            secret_access_key: non_empty_secret(t.restore_secret_access_key),
            bucket: non_empty(t.restore_bucket),
            endpoint: non_empty(t.restore_endpoint)
                .and_then(|e| p.check("restore_endpoint", parse::http_url(&e))),
        };

        let h = args.history;
        let history = HistoryLimits {
            keep_jobs: match h.keep_jobs {
                -1 => None,
                n => p.check("keep_jobs", count(n, "use -1 to disable the fallback")),
            },
            failed: p
                .check(
                    "failed_jobs_history_limit",
                    count(h.failed_jobs_history_limit, "use 0 to keep none"),
                )
                .unwrap_or(0),
            successful: p
                .check(
                    "successful_jobs_history_limit",
                    count(h.successful_jobs_history_limit, "use 0 to keep none"),
                )
                .unwrap_or(0),
        };

        let c = args.concurrency;
        let mut limit = |id: &str, value: i32| {
            p.check(id, count(value, "use 0 for unlimited"))
                .and_then(NonZeroU32::new)
        };
        let concurrency = ConcurrencyLimits {
            archive: limit("concurrent_archive", c.concurrent_archive),
            backup: limit("concurrent_backup", c.concurrent_backup),
            check: limit("concurrent_check", c.concurrent_check),
            prune: limit("concurrent_prune", c.concurrent_prune),
            restore: limit("concurrent_restore", c.concurrent_restore),
        };

        let reconciles = p.check(
            "max_concurrent_reconciles",
            match c.max_concurrent_reconciles {
                0 => Err("0 would reconcile nothing; use at least 1".to_string()),
                n => Ok(n),
            },
        );

        let resources = validate_resources(args.resources, &mut p);

        let s = args.scheduling;
        p.check("timezone", parse::timezone(s.timezone.trim()));
        p.check("check_schedule", parse::cron_shape(&s.check_schedule));
        let scheduling = Scheduling {
            relaxed: s.relaxed_scheduling,
            timezone: s.timezone.trim().to_owned(),
            check_schedule: s.check_schedule.trim().to_owned(),
        };

        let m = args.metrics;
        let metrics = Metrics {
            bind_address: p
                .check(
                    "metrics_bind_address",
                    parse::bind_address(&m.metrics_bind_address),
                )
                .flatten(),
            health_bind_address: non_empty(m.health_bind_address)
                .and_then(|a| p.check("health_bind_address", parse::bind_address(&a)))
                .flatten(),
            push_gateway: non_empty(Some(m.prom_url)).and_then(|u| p.check("prom_url", parse::http_url(&u))),
            cluster_name: m.cluster_name,
            stats_url: non_empty_secret(m.stats_url)
                .and_then(|u| p.check("stats_url", parse::http_url(u.expose())))
                .map(RedactedUrl),
        };

        let leader_election = validate_leader_election(args.leader_election, &mut p);
        let plugins = validate_plugins(args.plugins, &operator_namespace, &mut p);

        if !p.found.is_empty() {
            return Err(SettingsError::Invalid(p.found));
        }
        Ok(Self {
            operator_namespace,
            annotations,
            jobs,
            repository,
            restore_target,
            history,
            concurrency,
            reconciles: reconciles.unwrap_or(1),
            resources,
            scheduling,
            metrics,
            leader_election,
            plugins,
        })
    }
}

fn validate_jobs(j: super::JobArgs, p: &mut Problems) -> JobDefaults {
    if j.image.trim().is_empty() || j.image.contains(char::is_whitespace) {
        p.add("image", format!("{:?} is not an image reference", j.image));
    }
    let image_pull_secret = non_empty(j.image_pull_secret);
    if let Some(name) = &image_pull_secret {
        p.check("image_pull_secret", parse::dns_subdomain(name));
    }
    let command: Vec<String> = j
        .command_restic
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if command.is_empty() {
        p.add("command_restic", "the Job command must not be empty");
    }
    let restic_options: Vec<String> = j
        .restic_options
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    for option in &restic_options {
        if !option.contains('=') {
            p.add(
                "restic_options",
                format!("{option:?} is not of the form key=value"),
            );
        }
    }
    p.check("data_path", absolute_path(&j.data_path));
    p.check("var_dir", absolute_path(&j.var_dir));
    let restart_policy = match j.restart_policy.trim() {
        "OnFailure" => RestartPolicy::OnFailure,
        "Never" => RestartPolicy::Never,
        other => {
            p.add(
                "restart_policy",
                format!("{other:?} is not a Job restart policy (use OnFailure or Never)"),
            );
            RestartPolicy::OnFailure
        }
    };
    if !j.pod_filter.is_empty() && !j.pod_filter.contains('=') {
        p.add(
            "pod_filter",
            format!("{:?} is not a key=value label selector", j.pod_filter),
        );
    }
    p.check(
        "pod_exec_account_name",
        parse::dns_subdomain(&j.pod_exec_account_name),
    );
    p.check("pod_exec_role_name", parse::dns_subdomain(&j.pod_exec_role_name));
    if j.backoff_limit < 0 {
        p.add("backoff_limit", format!("{} is negative", j.backoff_limit));
    }
    JobDefaults {
        image: j.image.trim().to_owned(),
        image_pull_secret,
        command,
        restic_options,
        data_path: j.data_path,
        restart_policy,
        pod_filter: j.pod_filter,
        pod_exec_account_name: j.pod_exec_account_name,
        pod_exec_role_name: j.pod_exec_role_name,
        backoff_limit: j.backoff_limit.max(0),
        skip_snapshot_sync: j.skip_snapshot_sync,
        allow_podexec_spdy_fallback: j.allow_podexec_spdy_fallback,
        var_dir: j.var_dir,
    }
}

fn validate_resources(r: super::ResourceArgs, p: &mut Problems) -> JobResources {
    let mut quantity = |id: &str, value: Option<String>| {
        non_empty(value).and_then(|v| p.check(id, parse::quantity(&v)).map(|n| (Quantity(v), n)))
    };
    let cpu_request = quantity("cpu_request", r.cpu_request);
    let cpu_limit = quantity("cpu_limit", r.cpu_limit);
    let memory_request = quantity("memory_request", r.memory_request);
    let memory_limit = quantity("memory_limit", r.memory_limit);
    // The API server would reject every Job built from such a pair; say so at start-up instead.
    for (id, request, limit) in [
        ("cpu_request", &cpu_request, &cpu_limit),
        ("memory_request", &memory_request, &memory_limit),
    ] {
        if let (Some((rq, r)), Some((lq, l))) = (request, limit)
            && r > l
        {
            p.add(id, format!("request {:?} exceeds the limit {:?}", rq.0, lq.0));
        }
    }
    JobResources {
        cpu_request: cpu_request.map(|(q, _)| q),
        cpu_limit: cpu_limit.map(|(q, _)| q),
        memory_request: memory_request.map(|(q, _)| q),
        memory_limit: memory_limit.map(|(q, _)| q),
    }
}

fn validate_leader_election(l: super::LeaderElectionArgs, p: &mut Problems) -> LeaderElection {
    p.check("leader_election_id", parse::dns_subdomain(&l.leader_election_id));
    let mut duration = |id: &str, value: &str| {
        p.check(
            id,
            parse::duration(value).and_then(|d| {
                if d.is_zero() {
                    Err(format!("{value:?} must be longer than zero"))
                } else {
                    Ok(d)
                }
            }),
        )
    };
    let lease = duration(
        "leader_election_lease_duration",
        &l.leader_election_lease_duration,
    );
    let renew = duration(
        "leader_election_renew_deadline",
        &l.leader_election_renew_deadline,
    );
    let retry = duration("leader_election_retry_period", &l.leader_election_retry_period);
    if let (Some(lease), Some(renew)) = (lease, renew)
        && renew >= lease
    {
        p.add(
            "leader_election_renew_deadline",
            format!("{renew:?} must be shorter than the lease duration {lease:?}"),
        );
    }
    if let (Some(renew), Some(retry)) = (renew, retry)
        && retry >= renew
    {
        p.add(
            "leader_election_retry_period",
            format!("{retry:?} must be shorter than the renew deadline {renew:?}"),
        );
    }
    LeaderElection {
        enabled: l.enable_leader_election,
        lease_name: l.leader_election_id,
        lease_duration: lease.unwrap_or_default(),
        renew_deadline: renew.unwrap_or_default(),
        retry_period: retry.unwrap_or_default(),
    }
}

fn validate_plugins(a: super::PluginArgs, operator_namespace: &str, p: &mut Problems) -> PluginSettings {
    if !(1..=MAX_PLUGIN_TIMEOUT_MS).contains(&a.plugin_timeout_ms) {
        p.add(
            "plugin_timeout_ms",
            format!("{} is outside 1..={MAX_PLUGIN_TIMEOUT_MS}", a.plugin_timeout_ms),
        );
    }
    if !(1..=MAX_PLUGIN_MEMORY_MIB).contains(&a.plugin_memory_mib) {
        p.add(
            "plugin_memory_mib",
            format!("{} is outside 1..={MAX_PLUGIN_MEMORY_MIB}", a.plugin_memory_mib),
        );
    }
    let namespace = non_empty(a.plugin_namespace).unwrap_or_else(|| operator_namespace.to_owned());
    p.check("plugin_namespace", parse::dns_label(&namespace));
    let mut name = |id: &str, value: Option<String>| {
        non_empty(value).and_then(|n| p.check(id, parse::dns_subdomain(&n)).map(|()| n))
    };
    let overrides = PluginOverrides {
        backup: name("plugin_backup", a.plugin_backup),
        prune: name("plugin_prune", a.plugin_prune),
        check: name("plugin_check", a.plugin_check),
        archive: name("plugin_archive", a.plugin_archive),
        restore: name("plugin_restore", a.plugin_restore),
    };
    PluginSettings {
        timeout: Duration::from_millis(a.plugin_timeout_ms),
        memory_limit_bytes: a.plugin_memory_mib * 1024 * 1024,
        namespace,
        overrides,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Operator {
        #[command(flatten)]
        args: OperatorArgs,
    }

    fn args(flags: &[&str]) -> OperatorArgs {
        let argv = std::iter::once("operator").chain(flags.iter().copied());
        Operator::try_parse_from(argv).unwrap().args
    }

    fn settings(flags: &[&str]) -> OperatorSettings {
        OperatorSettings::from_args(args(flags)).unwrap()
    }

    fn problems(flags: &[&str]) -> Vec<InvalidSetting> {
        OperatorSettings::from_args(args(flags))
            .unwrap_err()
            .problems()
            .to_vec()
    }

    #[test]
    fn k8up_defaults_validate_into_the_documented_values() {
        let s = settings(&["--operator-namespace", "k8up"]);
        assert_eq!(s.operator_namespace, "k8up");
        assert_eq!(s.plugins.namespace, "k8up");
        assert_eq!(s.annotations.backup, "k8up.io/backup");
        assert_eq!(s.jobs.command, ["/usr/local/bin/k8up", "restic"]);
        assert_eq!(s.jobs.restart_policy, RestartPolicy::OnFailure);
        assert_eq!(s.jobs.backoff_limit, 6);
        assert_eq!(
            s.history,
            HistoryLimits {
                keep_jobs: None,
                failed: 3,
                successful: 3
            }
        );
        assert_eq!(s.concurrency.backup, None);
        assert_eq!(s.metrics.bind_address, Some("0.0.0.0:8080".parse().unwrap()));
        assert_eq!(
            s.metrics.push_gateway.as_ref().map(url::Url::as_str),
            Some("http://127.0.0.1/")
        );
        assert!(s.leader_election.enabled);
        assert_eq!(s.leader_election.lease_name, "d2ab61da.syn.tools");
        assert_eq!(s.leader_election.lease_duration, Duration::from_secs(15));
        assert_eq!(s.plugins.timeout, Duration::from_millis(1000));
        assert_eq!(s.plugins.memory_limit_bytes, 64 * 1024 * 1024);
        assert_eq!(s.scheduling.timezone, "UTC");
    }

    #[test]
    fn the_pod_namespace_is_the_fallback_for_the_operator_namespace() {
        assert_eq!(
            settings(&["--pod-namespace", "from-pod"]).operator_namespace,
            "from-pod"
        );
        let both = settings(&["--pod-namespace", "from-pod", "--operator-namespace", "explicit"]);
        assert_eq!(both.operator_namespace, "explicit");
        assert_eq!(
            settings(&["--operator-namespace", "", "--pod-namespace", "p"]).operator_namespace,
            "p"
        );
    }

    #[test]
    fn the_correct_restore_access_key_spelling_wins_over_k8ups_misspelt_one() {
        let s = settings(&[
            "--globalrestores3acceskeyid",
            "old",
            "--globalrestores3accesskeyid",
            "new",
        ]);
        assert_eq!(s.restore_target.access_key_id.unwrap().expose(), "new");
        let s = settings(&["--globalrestores3acceskeyid", "old"]);
        assert_eq!(s.restore_target.access_key_id.unwrap().expose(), "old");
        let s = settings(&[
            "--globalrestores3acceskeyid",
            "old",
            "--globalrestores3accesskeyid",
            "",
        ]);
        assert_eq!(s.restore_target.access_key_id.unwrap().expose(), "old");
    }

    #[test]
    fn empty_values_count_as_unset() {
        let s = settings(&[
            "--globals3endpoint",
            "",
            "--promurl",
            "",
            "--global-cpu-limit",
            " ",
        ]);
        assert_eq!(s.repository.s3_endpoint, None);
        assert_eq!(s.metrics.push_gateway, None);
        assert_eq!(s.resources.cpu_limit, None);
    }

    #[test]
    fn boolean_flags_take_an_optional_value_like_k8ups() {
        assert!(
            !settings(&["--enable-leader-election=false"])
                .leader_election
                .enabled
        );
        assert!(
            settings(&["--skip-pvcs-without-annotation"])
                .annotations
                .skip_pvcs_without_annotation
        );
        assert!(
            settings(&["--global-skip-snapshot-sync=yes"])
                .jobs
                .skip_snapshot_sync
        );
    }

    #[test]
    fn every_invalid_setting_is_reported_at_once_with_its_flag_and_env_var() {
        let found = problems(&[
            "--global-memory-request",
            "2Gi",
            "--global-memory-limit",
            "1Gi",
            "--global-cpu-request",
            "lots",
            "--globalrestores3endpoint",
            "minio:9000",
            "--global-concurrent-prune-jobs-limit",
            "-1",
            "--restartpolicy",
            "Always",
            "--leader-election-renew-deadline",
            "20s",
            "--plugin-timeout-ms",
            "0",
        ]);
        let flags: Vec<&str> = found.iter().map(|p| p.flag.as_str()).collect();
        assert_eq!(
            flags,
            [
                "restartpolicy",
                "globalrestores3endpoint",
                "global-concurrent-prune-jobs-limit",
                "global-cpu-request",
                "global-memory-request",
                "leader-election-renew-deadline",
                "plugin-timeout-ms",
            ]
        );
        let memory = &found[4];
        assert_eq!(memory.env, "BACKUP_GLOBAL_MEMORY_REQUEST");
        assert!(
            memory.reason.contains("exceeds the limit \"1Gi\""),
            "{}",
            memory.reason
        );
        let message = SettingsError::Invalid(found).to_string();
        assert!(
            message.contains("--global-cpu-request (BACKUP_GLOBAL_CPU_REQUEST): \"lots\""),
            "{message}"
        );
        assert!(
            message.contains("must start with http:// or https://"),
            "{message}"
        );
    }

    #[test]
    fn names_and_annotation_keys_are_checked_against_kubernetes_rules() {
        let found = problems(&[
            "--annotation",
            "not a key",
            "--operator-namespace",
            "Bad_NS",
            "--plugin-backup",
            "My Plugin",
            "--podexecaccountname",
            "",
        ]);
        let flags: Vec<&str> = found.iter().map(|p| p.flag.as_str()).collect();
        assert_eq!(
            flags,
            [
                "operator-namespace",
                "annotation",
                "podexecaccountname",
                "plugin-namespace",
                "plugin-backup"
            ]
        );
    }

    #[test]
    fn debug_output_of_settings_hides_every_secret_and_webhook_token() {
        let s = settings(&[
            "--globalrepopassword",
            "repo-pw-123",
            "--globalaccesskeyid",
            "AKIA-ID-456",
            "--globalsecretaccesskey",
            "s3-secret-789",
            "--globalrestores3secretaccesskey",
            "restore-secret-000",
            "--globalstatsurl",
            "https://hooks.example.com/services/T0/B0/tok3n",
        ]);
        let dump = format!("{s:?}");
        for secret in [
            "repo-pw-123",
            "AKIA-ID-456",
            "s3-secret-789",
            "restore-secret-000",
            "tok3n",
        ] {
            assert!(!dump.contains(secret), "{secret} leaked: {dump}");
        }
        assert!(dump.contains("https://hooks.example.com/***"), "{dump}");
        assert_eq!(s.repository.password.unwrap().expose(), "repo-pw-123");
    }
}
