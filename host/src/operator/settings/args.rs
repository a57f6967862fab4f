//! The clap model of `k8up operator`: one struct per help heading, K8up's flag and env var names and defaults.

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args};

use super::Secret;

/// Everything `k8up operator` can be told, grouped by topic (each group is one `--help` heading).
#[derive(Debug, Clone, Args)]
pub struct OperatorArgs {
    /// The namespace the operator runs in. Leases, and plugin ConfigMaps unless `--plugin-namespace` says
    /// otherwise, live here. Falls back to `POD_NAMESPACE` (set it with the Downward API), then `k8up-system`.
    /// (K8up required this flag but never used it.)
    #[arg(
        long = "operator-namespace",
        value_name = "NAMESPACE",
        env = "BACKUP_OPERATOR_NAMESPACE",
        help_heading = "Operator"
    )]
    pub operator_namespace: Option<String>,

    /// The pod's own namespace from the Downward API; only a fallback for `--operator-namespace`.
    #[arg(
        long = "pod-namespace",
        value_name = "NAMESPACE",
        env = "POD_NAMESPACE",
        hide = true,
        help_heading = "Operator"
    )]
    pub pod_namespace: Option<String>,

    /// Validate the configuration, print it (secrets as `***`) and exit instead of starting the controllers.
    #[arg(
        long = "check-config",
        env = "K8UP_CHECK_CONFIG",
        help_heading = "Operator",
        action = ArgAction::SetTrue,
        value_parser = BoolishValueParser::new()
    )]
    pub check_config: bool,

    /// Annotation names.
    #[command(flatten)]
    pub annotations: AnnotationArgs,
    /// Job defaults.
    #[command(flatten)]
    pub jobs: JobArgs,
    /// The global repository.
    #[command(flatten)]
    pub repository: GlobalRepositoryArgs,
    /// The global restore target.
    #[command(flatten)]
    pub restore: RestoreTargetArgs,
    /// History limits.
    #[command(flatten)]
    pub history: HistoryArgs,
    /// Concurrency limits per repository.
    #[command(flatten)]
    pub concurrency: ConcurrencyArgs,
    /// Default Job resources.
    #[command(flatten)]
    pub resources: ResourceArgs,
    /// Scheduling.
    #[command(flatten)]
    pub scheduling: SchedulingArgs,
    /// Metrics and statistics endpoints.
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// Leader election.
    #[command(flatten)]
    pub leader_election: LeaderElectionArgs,
    /// Planning plugins.
    #[command(flatten)]
    pub plugins: PluginArgs,
}

/// Annotation names the operator looks for on PVCs and pods.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Annotations")]
pub struct AnnotationArgs {
    /// Annotation on a PVC that opts it in (`"true"`) or out (`"false"`) of backups.
    #[arg(
        long = "annotation",
        value_name = "KEY",
        env = "BACKUP_ANNOTATION",
        default_value = "k8up.io/backup"
    )]
    pub backup_annotation: String,

    /// Annotation on a pod holding the command whose stdout is backed up (application-aware backups).
    #[arg(
        long = "backupcommandannotation",
        value_name = "KEY",
        env = "BACKUP_BACKUPCOMMANDANNOTATION",
        default_value = "k8up.io/backupcommand"
    )]
    pub backup_command_annotation: String,

    /// Annotation on a pod giving the file extension of the backup command's output (e.g. `.sql`).
    #[arg(
        long = "fileextensionannotation",
        value_name = "KEY",
        env = "BACKUP_FILEEXTENSIONANNOTATION",
        default_value = "k8up.io/file-extension"
    )]
    pub file_extension_annotation: String,

    /// Annotation on a PVC or pod with extra arguments for `restic backup`.
    #[arg(
        long = "backupresticargsannotation",
        value_name = "KEY",
        env = "BACKUP_RESTICARGSANNOTATION",
        default_value = "k8up.io/backup-restic-args"
    )]
    pub restic_args_annotation: String,

    /// Back up only PVCs annotated with `k8up.io/backup: "true"` (opt-in) instead of every RWO/RWX PVC
    /// not annotated `"false"` (opt-out).
    #[arg(
        long = "skip-pvcs-without-annotation",
        env = "BACKUP_SKIP_WITHOUT_ANNOTATION",
        default_value_t = false,
        num_args = 0..=1,
        value_name = "BOOL",
        require_equals = true,
        default_missing_value = "true",
        action = ArgAction::Set,
        value_parser = BoolishValueParser::new()
    )]
    pub skip_pvcs_without_annotation: bool,
}

/// How the Jobs the operator creates look.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Job defaults")]
pub struct JobArgs {
    /// Container image of every Job (it runs `k8up restic`).
    #[arg(
        long = "image",
        value_name = "IMAGE",
        env = "BACKUP_IMAGE",
        default_value = "ghcr.io/k8up-io/k8up:latest"
    )]
    pub image: String,

    /// Name of an image pull Secret added to every Job's pod.
    #[arg(
        long = "image-pull-secret",
        value_name = "NAME",
        env = "BACKUP_IMAGE_PULL_SECRET"
    )]
    pub image_pull_secret: Option<String>,

    /// Command of the Job container, comma-separated.
    #[arg(
        long = "command-restic",
        value_name = "ARG,...",
        env = "BACKUP_COMMAND_RESTIC",
        value_delimiter = ',',
        default_value = "/usr/local/bin/k8up,restic"
    )]
    pub command_restic: Vec<String>,

    /// Extra restic options (`key=value`, comma-separated), passed to every restic call as `--option`.
    #[arg(
        long = "restic-options",
        value_name = "KEY=VALUE,...",
        env = "BACKUP_RESTIC_OPTIONS",
        value_delimiter = ','
    )]
    pub restic_options: Vec<String>,

    /// Where PVCs are mounted in backup Jobs. Unlike K8up, the wrapper is told too (`BACKUP_DIR`).
    #[arg(
        long = "datapath",
        value_name = "PATH",
        visible_alias = "mountpath",
        env = "BACKUP_DATAPATH",
        default_value = "/data"
    )]
    pub data_path: String,

    /// Restart policy of Job pods: `OnFailure` or `Never`. With `Never` a permanent failure (bad configuration,
    /// no matching snapshot, wrong password, integrity) fails the Job at once through a `podFailurePolicy`
    /// instead of being retried. (K8up ignored it and always used `OnFailure`.)
    #[arg(
        long = "restartpolicy",
        value_name = "POLICY",
        env = "BACKUP_RESTARTPOLICY",
        default_value = "OnFailure"
    )]
    pub restart_policy: String,

    /// Label selector (`key=value`) for pods. Accepted for compatibility; K8up never used it and neither do we yet.
    #[arg(
        long = "podfilter",
        value_name = "SELECTOR",
        env = "BACKUP_PODFILTER",
        default_value = "backupPod=true"
    )]
    pub pod_filter: String,

    /// ServiceAccount the backup Jobs run as; created in each namespace that has Backups.
    #[arg(
        long = "podexecaccountname",
        value_name = "NAME",
        visible_alias = "serviceaccount",
        env = "BACKUP_PODEXECACCOUNTNAME",
        default_value = "pod-executor"
    )]
    pub pod_exec_account_name: String,

    /// Name (prefix) of the RoleBinding that lets that ServiceAccount exec into pods.
    #[arg(
        long = "podexecrolename",
        value_name = "NAME",
        env = "BACKUP_PODEXECROLENAME",
        default_value = "pod-executor"
    )]
    pub pod_exec_role_name: String,

    /// `backoffLimit` of backup Jobs (how often a failed pod is retried).
    #[arg(
        long = "global-backoff-limit",
        value_name = "N",
        env = "BACKUP_GLOBAL_BACKOFF_LIMIT",
        default_value_t = 6,
        allow_negative_numbers = true
    )]
    pub backoff_limit: i32,

    /// Do not create Snapshot objects from backup and prune Jobs (sets `BACKUP_SKIP_SNAPSHOT_SYNC` on them).
    #[arg(
        long = "global-skip-snapshot-sync",
        env = "BACKUP_GLOBAL_SKIP_SNAPSHOT_SYNC",
        default_value_t = false,
        num_args = 0..=1,
        value_name = "BOOL",
        require_equals = true,
        default_missing_value = "true",
        action = ArgAction::Set,
        value_parser = BoolishValueParser::new()
    )]
    pub skip_snapshot_sync: bool,

    /// Let backup Jobs fall back to SPDY when exec over WebSockets fails (older API servers).
    #[arg(
        long = "insecure-allow-podexec-spdy-fallback",
        env = "INSECURE_ALLOW_PODEXEC_SPDY_FALLBACK",
        default_value_t = false,
        num_args = 0..=1,
        value_name = "BOOL",
        require_equals = true,
        default_missing_value = "true",
        action = ArgAction::Set,
        value_parser = BoolishValueParser::new()
    )]
    pub allow_podexec_spdy_fallback: bool,

    /// Scratch directory of the Job container (an emptyDir), passed to the wrapper as `--varDir`.
    #[arg(
        long = "vardir",
        value_name = "PATH",
        env = "VAR_DIR",
        default_value = "/k8up"
    )]
    pub var_dir: String,
}

/// The repository every resource without its own `backend` uses.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global repository")]
pub struct GlobalRepositoryArgs {
    /// Password of the global restic repository. Prefer the env var: flags show up in `ps`.
    #[arg(
        long = "globalrepopassword",
        value_name = "PASSWORD",
        env = "BACKUP_GLOBALREPOPASSWORD",
        hide_env_values = true
    )]
    pub repo_password: Option<Secret>,

    /// S3 access key ID of the global repository.
    #[arg(
        long = "globalaccesskeyid",
        value_name = "KEY_ID",
        env = "BACKUP_GLOBALACCESSKEYID",
        hide_env_values = true
    )]
    pub repo_access_key_id: Option<Secret>,

    /// S3 secret access key of the global repository. Prefer the env var: flags show up in `ps`.
    #[arg(
        long = "globalsecretaccesskey",
        value_name = "SECRET_KEY",
        env = "BACKUP_GLOBALSECRETACCESSKEY",
        hide_env_values = true
    )]
    pub repo_secret_access_key: Option<Secret>,

    /// S3 bucket of the global repository.
    #[arg(long = "globals3bucket", value_name = "BUCKET", env = "BACKUP_GLOBALS3BUCKET")]
    pub repo_s3_bucket: Option<String>,

    /// S3 endpoint of the global repository (`http://` or `https://`).
    #[arg(
        long = "globals3endpoint",
        value_name = "URL",
        env = "BACKUP_GLOBALS3ENDPOINT"
    )]
    pub repo_s3_endpoint: Option<String>,
}

/// Where Restores and Archives of type S3 write when their spec names no target.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Restore target")]
pub struct RestoreTargetArgs {
    /// S3 access key ID of the restore target. K8up's misspelt `BACKUP_GLOBALRESTORES3ACCESKEYID` is read
    /// too; the flag wins over `BACKUP_GLOBALRESTORES3ACCESSKEYID`, which wins over the misspelt one.
    #[arg(
        long = "globalrestores3accesskeyid",
        value_name = "KEY_ID",
        env = "BACKUP_GLOBALRESTORES3ACCESSKEYID",
        hide_env_values = true
    )]
    pub restore_access_key_id: Option<Secret>,

    /// K8up's misspelt env var for the restore target's access key ID (lowest precedence).
    #[arg(
        long = "globalrestores3acceskeyid",
        value_name = "KEY_ID",
        env = "BACKUP_GLOBALRESTORES3ACCESKEYID",
        hide = true,
        hide_env_values = true
    )]
    pub restore_access_key_id_misspelt: Option<Secret>,

    /// S3 secret access key of the restore target. Prefer the env var: flags show up in `ps`.
    #[arg(
        long = "globalrestores3secretaccesskey",
        value_name = "SECRET_KEY",
        env = "BACKUP_GLOBALRESTORES3SECRETACCESSKEY",
        hide_env_values = true
    )]
    pub restore_secret_access_key: Option<Secret>,

    /// S3 bucket of the restore target.
    #[arg(
        long = "globalrestores3bucket",
        value_name = "BUCKET",
        env = "BACKUP_GLOBALRESTORES3BUCKET"
    )]
    pub restore_bucket: Option<String>,

    /// S3 endpoint of the restore target (`http://` or `https://`).
    #[arg(
        long = "globalrestores3endpoint",
        value_name = "URL",
        env = "BACKUP_GLOBALRESTORES3ENDPOINT"
    )]
    pub restore_endpoint: Option<String>,
}

/// How many finished Jobs (and their resources) are kept.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "History limits")]
pub struct HistoryArgs {
    /// Deprecated: how many finished objects to keep when neither a resource nor the two limits below say;
    /// -1 means no fallback. Kept for K8up compatibility.
    #[arg(
        long = "globalkeepjobs", value_name = "N",
        env = "BACKUP_GLOBALKEEPJOBS",
        default_value_t = -1,
        allow_negative_numbers = true
    )]
    pub keep_jobs: i32,

    /// How many failed objects of each kind to keep per Schedule or namespace.
    #[arg(
        long = "global-failed-jobs-history-limit",
        value_name = "N",
        env = "BACKUP_GLOBAL_FAILED_JOBS_HISTORY_LIMIT",
        default_value_t = 3,
        allow_negative_numbers = true
    )]
    pub failed_jobs_history_limit: i32,

    /// How many successful objects of each kind to keep per Schedule or namespace.
    #[arg(
        long = "global-successful-jobs-history-limit",
        value_name = "N",
        env = "BACKUP_GLOBAL_SUCCESSFUL_JOBS_HISTORY_LIMIT",
        default_value_t = 3,
        allow_negative_numbers = true
    )]
    pub successful_jobs_history_limit: i32,
}

/// How many Jobs of one kind may run at once against one repository (0 = unlimited).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Concurrency")]
pub struct ConcurrencyArgs {
    /// Concurrent archive Jobs per repository (0 = unlimited).
    #[arg(
        long = "global-concurrent-archive-jobs-limit",
        value_name = "N",
        env = "BACKUP_GLOBAL_CONCURRENT_ARCHIVE_JOBS_LIMIT",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub concurrent_archive: i32,

    /// Concurrent backup Jobs per repository (0 = unlimited).
    #[arg(
        long = "global-concurrent-backup-jobs-limit",
        value_name = "N",
        env = "BACKUP_GLOBAL_CONCURRENT_BACKUP_JOBS_LIMIT",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub concurrent_backup: i32,

    /// Concurrent check Jobs per repository (0 = unlimited). K8up ignored this limit; we honour it.
    #[arg(
        long = "global-concurrent-check-jobs-limit",
        value_name = "N",
        env = "BACKUP_GLOBAL_CONCURRENT_CHECK_JOBS_LIMIT",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub concurrent_check: i32,

    /// Concurrent prune Jobs per repository (0 = unlimited). K8up ignored this limit; we honour it.
    #[arg(
        long = "global-concurrent-prune-jobs-limit",
        value_name = "N",
        env = "BACKUP_GLOBAL_CONCURRENT_PRUNE_JOBS_LIMIT",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub concurrent_prune: i32,

    /// Concurrent restore Jobs per repository (0 = unlimited).
    #[arg(
        long = "global-concurrent-restore-jobs-limit",
        value_name = "N",
        env = "BACKUP_GLOBAL_CONCURRENT_RESTORE_JOBS_LIMIT",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub concurrent_restore: i32,

    /// How many objects each controller (one per kind, and the Schedule controller) reconciles at once.
    /// Bounds the operator's memory and API connections when thousands of objects need attention at once
    /// (a start-up, a mass change); the rest queue. Our addition.
    #[arg(
        long = "max-concurrent-reconciles",
        value_name = "N",
        env = "K8UP_MAX_CONCURRENT_RECONCILES",
        default_value_t = 16
    )]
    pub max_concurrent_reconciles: u16,
}

/// Default resource requests and limits of Job containers (Kubernetes quantities).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Resources")]
pub struct ResourceArgs {
    /// Default CPU request of Job containers (e.g. `250m`).
    #[arg(
        long = "global-cpu-request",
        value_name = "QUANTITY",
        env = "BACKUP_GLOBAL_CPU_REQUEST"
    )]
    pub cpu_request: Option<String>,

    /// Default CPU limit of Job containers (e.g. `1`).
    #[arg(
        long = "global-cpu-limit",
        value_name = "QUANTITY",
        env = "BACKUP_GLOBAL_CPU_LIMIT"
    )]
    pub cpu_limit: Option<String>,

    /// Default memory request of Job containers (e.g. `128Mi`).
    #[arg(
        long = "global-memory-request",
        value_name = "QUANTITY",
        env = "BACKUP_GLOBAL_MEMORY_REQUEST"
    )]
    pub memory_request: Option<String>,

    /// Default memory limit of Job containers (e.g. `1Gi`).
    #[arg(
        long = "global-memory-limit",
        value_name = "QUANTITY",
        env = "BACKUP_GLOBAL_MEMORY_LIMIT"
    )]
    pub memory_limit: Option<String>,
}

/// When scheduled actions run.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Scheduling")]
pub struct SchedulingArgs {
    /// Spread Schedules that use plain cron expressions over the period, like the `-random` macros do.
    #[arg(
        long = "enable-relaxed-scheduling",
        env = "BACKUP_ENABLE_RELAXED_SCHEDULING",
        default_value_t = false,
        num_args = 0..=1,
        value_name = "BOOL",
        require_equals = true,
        default_missing_value = "true",
        action = ArgAction::Set,
        value_parser = BoolishValueParser::new()
    )]
    pub relaxed_scheduling: bool,

    /// Time zone in which every Schedule's cron expression is read (`UTC` or an IANA name such as
    /// `Europe/Zurich`), independent of the operator's `TZ`.
    #[arg(
        long = "timezone",
        value_name = "ZONE",
        env = "K8UP_TIMEZONE",
        default_value = "UTC"
    )]
    pub timezone: String,

    /// Cron expression of the default check schedule. Accepted for compatibility (K8up never used it);
    /// validated so that a typo is reported.
    #[arg(
        long = "checkschedule",
        value_name = "CRON",
        env = "BACKUP_CHECKSCHEDULE",
        default_value = "0 0 * * 0"
    )]
    pub check_schedule: String,
}

/// Where the operator serves metrics and where Jobs report.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Metrics")]
pub struct MetricsArgs {
    /// Address of the `/metrics` endpoint (`:8080` listens on all interfaces, `0` disables it).
    #[arg(
        long = "metrics-bindaddress",
        value_name = "ADDR",
        env = "BACKUP_METRICS_BINDADDRESS",
        default_value = ":8080"
    )]
    pub metrics_bind_address: String,

    /// Address of the `/healthz` and `/readyz` endpoints; unset serves them beside `/metrics`.
    #[arg(
        long = "health-bindaddress",
        value_name = "ADDR",
        env = "K8UP_HEALTH_BINDADDRESS"
    )]
    pub health_bind_address: Option<String>,

    /// Prometheus Pushgateway Jobs push their metrics to (empty disables pushing).
    #[arg(
        long = "promurl",
        value_name = "URL",
        env = "BACKUP_PROMURL",
        default_value = "http://127.0.0.1/"
    )]
    pub prom_url: String,

    /// Cluster name, the `cluster` grouping label of pushed metrics.
    #[arg(
        long = "clusterName",
        value_name = "NAME",
        env = "CLUSTER_NAME",
        default_value = "default"
    )]
    pub cluster_name: String,

    /// Webhook URL that Jobs POST backup, snapshot and restore statistics to. Its path may hold a token,
    /// so it is never printed in full.
    #[arg(
        long = "globalstatsurl",
        value_name = "URL",
        env = "BACKUP_GLOBALSTATSURL",
        hide_env_values = true
    )]
    pub stats_url: Option<Secret>,
}

/// Only one operator replica acts at a time.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Leader election")]
pub struct LeaderElectionArgs {
    /// Elect a leader through a Lease, so that several replicas can run.
    #[arg(
        long = "enable-leader-election",
        env = "BACKUP_ENABLE_LEADER_ELECTION",
        default_value_t = true,
        num_args = 0..=1,
        value_name = "BOOL",
        require_equals = true,
        default_missing_value = "true",
        action = ArgAction::Set,
        value_parser = BoolishValueParser::new()
    )]
    pub enable_leader_election: bool,

    /// Name of the Lease in the operator namespace (K8up's, so both never lead at once).
    #[arg(
        long = "leader-election-id",
        value_name = "NAME",
        env = "K8UP_LEADER_ELECTION_ID",
        default_value = "d2ab61da.syn.tools"
    )]
    pub leader_election_id: String,

    /// How long a leader's Lease is valid without renewal.
    #[arg(
        long = "leader-election-lease-duration",
        value_name = "DURATION",
        env = "K8UP_LEADER_ELECTION_LEASE_DURATION",
        default_value = "15s"
    )]
    pub leader_election_lease_duration: String,

    /// How long the leader keeps trying to renew before it gives up leading (shorter than the lease).
    #[arg(
        long = "leader-election-renew-deadline",
        value_name = "DURATION",
        env = "K8UP_LEADER_ELECTION_RENEW_DEADLINE",
        default_value = "10s"
    )]
    pub leader_election_renew_deadline: String,

    /// How often candidates try to acquire or renew the Lease.
    #[arg(
        long = "leader-election-retry-period",
        value_name = "DURATION",
        env = "K8UP_LEADER_ELECTION_RETRY_PERIOD",
        default_value = "2s"
    )]
    pub leader_election_retry_period: String,
}

/// The WASM plugins that plan each action's Jobs.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Plugins")]
pub struct PluginArgs {
    /// Wall-clock budget of one plugin call, in milliseconds.
    #[arg(
        long = "plugin-timeout-ms",
        value_name = "MS",
        env = "K8UP_PLUGIN_TIMEOUT_MS",
        default_value_t = 1000
    )]
    pub plugin_timeout_ms: u64,

    /// Memory cap of one plugin instance, in MiB.
    #[arg(
        long = "plugin-memory-mib",
        value_name = "MIB",
        env = "K8UP_PLUGIN_MEMORY_MIB",
        default_value_t = 64
    )]
    pub plugin_memory_mib: u64,

    /// Namespace where plugin ConfigMaps are looked up (default: the operator namespace).
    #[arg(
        long = "plugin-namespace",
        value_name = "NAMESPACE",
        env = "K8UP_PLUGIN_NAMESPACE"
    )]
    pub plugin_namespace: Option<String>,

    /// Name of a plugin ConfigMap that replaces the built-in backup planner cluster-wide.
    #[arg(long = "plugin-backup", value_name = "CONFIGMAP", env = "K8UP_PLUGIN_BACKUP")]
    pub plugin_backup: Option<String>,

    /// Name of a plugin ConfigMap that replaces the built-in prune planner cluster-wide.
    #[arg(long = "plugin-prune", value_name = "CONFIGMAP", env = "K8UP_PLUGIN_PRUNE")]
    pub plugin_prune: Option<String>,

    /// Name of a plugin ConfigMap that replaces the built-in check planner cluster-wide.
    #[arg(long = "plugin-check", value_name = "CONFIGMAP", env = "K8UP_PLUGIN_CHECK")]
    pub plugin_check: Option<String>,

    /// Name of a plugin ConfigMap that replaces the built-in archive planner cluster-wide.
    #[arg(
        long = "plugin-archive",
        value_name = "CONFIGMAP",
        env = "K8UP_PLUGIN_ARCHIVE"
    )]
    pub plugin_archive: Option<String>,

    /// Name of a plugin ConfigMap that replaces the built-in restore planner cluster-wide.
    #[arg(
        long = "plugin-restore",
        value_name = "CONFIGMAP",
        env = "K8UP_PLUGIN_RESTORE"
    )]
    pub plugin_restore: Option<String>,
}
