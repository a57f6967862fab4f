//! The validated operator configuration: what the controllers read, with every value parsed and checked once
//! (the checks live in `validate.rs`).

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::{Secret, parse};

/// One setting that failed validation, named by its flag and env var.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--{flag} ({env}): {reason}")]
pub struct InvalidSetting {
    /// The long flag, without dashes.
    pub flag: String,
    /// The environment variable.
    pub env: String,
    /// What is wrong; never contains a secret value.
    pub reason: String,
}

/// Why [`OperatorSettings::from_args`] refused a configuration.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// One or more settings are invalid; all of them are listed so that one restart fixes everything.
    #[error("invalid operator configuration:{}", list(.0))]
    Invalid(Vec<InvalidSetting>),
}

fn list(problems: &[InvalidSetting]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}

impl SettingsError {
    /// The individual problems.
    pub fn problems(&self) -> &[InvalidSetting] {
        match self {
            Self::Invalid(problems) => problems,
        }
    }
}

/// A URL whose path, query or user info may carry a token: `Debug` shows only scheme and host.
#[derive(Clone, PartialEq, Eq)]
pub struct RedactedUrl(pub(super) url::Url);

impl RedactedUrl {
    /// The full URL; call this only where it leaves the process on purpose (a Job's environment).
    pub fn expose(&self) -> &url::Url {
        &self.0
    }
}

impl fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&parse::redact_url(&self.0))
    }
}

/// The validated configuration of `k8up operator`.
#[derive(Debug, Clone)]
pub struct OperatorSettings {
    /// Namespace the operator runs in (Leases, default plugin namespace).
    pub operator_namespace: String,
    /// Annotation names and the PVC opt-in mode.
    pub annotations: Annotations,
    /// Defaults of every Job.
    pub jobs: JobDefaults,
    /// The repository used by resources without a `backend`.
    pub repository: GlobalRepository,
    /// The S3 target of Restores and Archives without one.
    pub restore_target: RestoreTarget,
    /// How many finished objects are kept.
    pub history: HistoryLimits,
    /// Per-repository concurrency limits.
    pub concurrency: ConcurrencyLimits,
    /// How many objects each controller reconciles at once (at least 1).
    pub reconciles: u16,
    /// Default container resources of Jobs.
    pub resources: JobResources,
    /// Scheduling options.
    pub scheduling: Scheduling,
    /// Metrics, health and statistics endpoints.
    pub metrics: Metrics,
    /// Leader election.
    pub leader_election: LeaderElection,
    /// Planning plugins.
    pub plugins: PluginSettings,
}

/// Annotation keys, checked against the API server's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotations {
    /// PVC opt-in/out annotation (`k8up.io/backup`).
    pub backup: String,
    /// Pod backup-command annotation (`k8up.io/backupcommand`).
    pub backup_command: String,
    /// Pod file-extension annotation (`k8up.io/file-extension`).
    pub file_extension: String,
    /// Extra restic arguments annotation (`k8up.io/backup-restic-args`).
    pub restic_args: String,
    /// Only PVCs annotated `"true"` are backed up.
    pub skip_pvcs_without_annotation: bool,
}

/// Restart policy of Job pods (Jobs allow only these two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Restart the container in the same pod.
    OnFailure,
    /// Start a new pod (counts against `backoffLimit`).
    Never,
}

impl RestartPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnFailure => "OnFailure",
            Self::Never => "Never",
        }
    }
}

/// Defaults of every Job the operator creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDefaults {
    /// Container image.
    pub image: String,
    /// Image pull Secret name.
    pub image_pull_secret: Option<String>,
    /// Container command (never empty).
    pub command: Vec<String>,
    /// `key=value` restic options.
    pub restic_options: Vec<String>,
    /// Absolute mount root of PVCs in backup Jobs.
    pub data_path: String,
    /// Pod restart policy.
    pub restart_policy: RestartPolicy,
    /// Pod filter label selector (accepted for compatibility, unused).
    pub pod_filter: String,
    /// ServiceAccount of backup Jobs.
    pub pod_exec_account_name: String,
    /// RoleBinding name (prefix) for pod exec.
    pub pod_exec_role_name: String,
    /// `backoffLimit` of backup Jobs.
    pub backoff_limit: i32,
    /// Whether Jobs skip the Snapshot sync.
    pub skip_snapshot_sync: bool,
    /// Whether exec may fall back to SPDY.
    pub allow_podexec_spdy_fallback: bool,
    /// Absolute scratch directory of the Job container.
    pub var_dir: String,
}

/// The global repository (resources without their own backend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalRepository {
    /// restic repository password.
    pub password: Option<Secret>,
    /// S3 access key ID.
    pub access_key_id: Option<Secret>,
    /// S3 secret access key.
    pub secret_access_key: Option<Secret>,
    /// S3 bucket.
    pub s3_bucket: Option<String>,
    /// S3 endpoint.
    pub s3_endpoint: Option<url::Url>,
}

/// The global S3 target of Restores and Archives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreTarget {
    /// Access key ID (flag, then `…ACCESSKEYID`, then K8up's misspelt `…ACCESKEYID`).
    pub access_key_id: Option<Secret>,
    /// Secret access key.
    pub secret_access_key: Option<Secret>,
    /// Bucket.
    pub bucket: Option<String>,
    /// Endpoint.
    pub endpoint: Option<url::Url>,
}

/// How many finished objects are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Deprecated fallback for both limits (`None` when `BACKUP_GLOBALKEEPJOBS` is -1).
    pub keep_jobs: Option<u32>,
    /// Failed objects kept.
    pub failed: u32,
    /// Successful objects kept.
    pub successful: u32,
}

/// Concurrent Jobs per repository and kind; `None` = unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConcurrencyLimits {
    /// Archive Jobs.
    pub archive: Option<NonZeroU32>,
    /// Backup Jobs.
    pub backup: Option<NonZeroU32>,
    /// Check Jobs.
    pub check: Option<NonZeroU32>,
    /// Prune Jobs.
    pub prune: Option<NonZeroU32>,
    /// Restore Jobs.
    pub restore: Option<NonZeroU32>,
}

/// Default container resources of Jobs, as validated Kubernetes quantities.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobResources {
    /// CPU request.
    pub cpu_request: Option<Quantity>,
    /// CPU limit.
    pub cpu_limit: Option<Quantity>,
    /// Memory request.
    pub memory_request: Option<Quantity>,
    /// Memory limit.
    pub memory_limit: Option<Quantity>,
}

/// Scheduling options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduling {
    /// Spread plain cron expressions like the `-random` macros.
    pub relaxed: bool,
    /// Time zone of every cron expression (`UTC` or an IANA name).
    pub timezone: String,
    /// Default check schedule (accepted for compatibility).
    pub check_schedule: String,
}

/// Metrics, health and statistics endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    /// `/metrics` listener; `None` when disabled with `0`.
    pub bind_address: Option<SocketAddr>,
    /// Separate `/healthz` + `/readyz` listener; `None` = beside `/metrics`.
    pub health_bind_address: Option<SocketAddr>,
    /// Pushgateway of Jobs; `None` when set to the empty string.
    pub push_gateway: Option<url::Url>,
    /// `cluster` grouping label of pushed metrics.
    pub cluster_name: String,
    /// Global statistics webhook.
    pub stats_url: Option<RedactedUrl>,
}

/// Leader election through a Lease in the operator namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderElection {
    /// Whether to elect a leader at all.
    pub enabled: bool,
    /// Lease name.
    pub lease_name: String,
    /// Lease validity.
    pub lease_duration: Duration,
    /// Renew deadline (< lease duration).
    pub renew_deadline: Duration,
    /// Retry period (< renew deadline).
    pub retry_period: Duration,
}

/// Planning plugin limits and overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSettings {
    /// Wall-clock budget of one call.
    pub timeout: Duration,
    /// Memory cap of one instance, in bytes.
    pub memory_limit_bytes: u64,
    /// Namespace of plugin ConfigMaps.
    pub namespace: String,
    /// Cluster-wide replacements of the built-in planners.
    pub overrides: PluginOverrides,
}

/// ConfigMap names replacing the built-in planner of one action; `None` keeps the built-in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PluginOverrides {
    /// Backup planner.
    pub backup: Option<String>,
    /// Prune planner.
    pub prune: Option<String>,
    /// Check planner.
    pub check: Option<String>,
    /// Archive planner.
    pub archive: Option<String>,
    /// Restore planner.
    pub restore: Option<String>,
}
