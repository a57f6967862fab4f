//! Operator configuration: every flag and environment variable of `k8up operator`, and its validated form.
//!
//! The flag and env var names, defaults and meanings are K8up's (REFERENCE.md section 5), so an existing K8up
//! deployment (Helm values, `BACKUP_*` env vars) configures this operator unchanged. Options K8up accepts but
//! ignores are kept, documented, and honoured where the feature is ours to build. Our own additions use the
//! `K8UP_` prefix. [`OperatorArgs`] is the raw clap model; [`OperatorSettings::from_args`] turns it into the
//! validated [`OperatorSettings`] the controllers use.

mod args;
mod parse;
mod secret;
mod validate;
mod validated;

pub use args::{
    AnnotationArgs, ConcurrencyArgs, GlobalRepositoryArgs, HistoryArgs, JobArgs, LeaderElectionArgs,
    MetricsArgs, OperatorArgs, PluginArgs, ResourceArgs, RestoreTargetArgs, SchedulingArgs,
};
pub use parse::{quantity, redact_url, redact_url_text};
pub use secret::{REDACTED, Secret};
pub use validated::{
    Annotations, ConcurrencyLimits, GlobalRepository, HistoryLimits, InvalidSetting, JobDefaults,
    JobResources, LeaderElection, Metrics, OperatorSettings, PluginOverrides, PluginSettings, RedactedUrl,
    RestartPolicy, RestoreTarget, Scheduling, SettingsError,
};

/// Default namespace of the operator when neither `BACKUP_OPERATOR_NAMESPACE` nor `POD_NAMESPACE` is set.
pub const DEFAULT_OPERATOR_NAMESPACE: &str = "k8up-system";
