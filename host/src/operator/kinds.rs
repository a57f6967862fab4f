//! The five action kinds (Backup, Restore, Archive, Check, Prune) seen through one small trait, so that a
//! single generic driver reconciles all of them; only what truly differs per kind lives here.

use std::fmt::Debug;

use kube::Resource;
use kube::core::NamespaceResourceScope;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::crd::{
    Archive, Backup, Check, HistoryLimits, JobType, Prune, Restore, RunnableSpec, Status, ValidationError,
};

/// What the generic driver needs to know about one action kind.
pub trait ActionKind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The job type (`k8up.io/type` label, `k8up.io/owned-by` prefix, Job name prefix, metric label).
    const JOB_TYPE: JobType;
    /// Whether the plan needs the namespace's PVCs, PVs, pods and PreBackupPods (only Backup does).
    const OBSERVES_WORKLOADS: bool = false;
    /// Whether Jobs of this kind run as the executor ServiceAccount, which the driver ensures first.
    const NEEDS_EXECUTOR: bool = false;
    /// Whether finished Jobs report snapshots that are mirrored into `Snapshot` resources.
    const SYNCS_SNAPSHOTS: bool = false;

    /// The inlined `RunnableSpec`.
    fn runnable(&self) -> &RunnableSpec;
    /// The history limits as written in the spec.
    fn history(&self) -> &HistoryLimits;
    /// The status, if any.
    fn status(&self) -> Option<&Status>;
    /// Kind-specific checks of rules the CRD schema states (CEL) but a server may not have enforced.
    fn check_spec(&self) -> Vec<ValidationError> {
        Vec::new()
    }
    /// The spec as JSON (handed to the planner as its escape hatch).
    fn spec_json(&self) -> serde_json::Value;
}

macro_rules! action_kind {
    ($kind:ty, $job_type:expr, runnable: |$s:ident| $runnable:expr, history: |$h:ident| $history:expr) => {
        fn runnable(&self) -> &RunnableSpec {
            let $s = self;
            $runnable
        }
        fn history(&self) -> &HistoryLimits {
            let $h = self;
            $history
        }
        fn status(&self) -> Option<&Status> {
            self.status.as_ref()
        }
        fn spec_json(&self) -> serde_json::Value {
            serde_json::to_value(&self.spec).unwrap_or(serde_json::Value::Null)
        }
    };
}

impl ActionKind for Backup {
    const JOB_TYPE: JobType = JobType::Backup;
    const OBSERVES_WORKLOADS: bool = true;
    const NEEDS_EXECUTOR: bool = true;
    const SYNCS_SNAPSHOTS: bool = true;
    action_kind!(Backup, JobType::Backup, runnable: |s| &s.spec.runnable, history: |h| &h.spec.history);
}

impl ActionKind for Prune {
    const JOB_TYPE: JobType = JobType::Prune;
    // Prune Jobs run as `pod-executor` in K8up; we ensure the account here too (K8up only did so for
    // Backups, so a Prune in a namespace that never had a Backup failed).
    const NEEDS_EXECUTOR: bool = true;
    const SYNCS_SNAPSHOTS: bool = true;
    action_kind!(Prune, JobType::Prune, runnable: |s| &s.spec.runnable, history: |h| &h.spec.history);
}

impl ActionKind for Check {
    const JOB_TYPE: JobType = JobType::Check;
    action_kind!(Check, JobType::Check, runnable: |s| &s.spec.runnable, history: |h| &h.spec.history);
}

impl ActionKind for Restore {
    const JOB_TYPE: JobType = JobType::Restore;
    action_kind!(Restore, JobType::Restore, runnable: |s| &s.spec.runnable, history: |h| &h.spec.history);
    fn check_spec(&self) -> Vec<ValidationError> {
        match &self.spec.restore_method {
            None => vec![ValidationError::NoRestoreMethod],
            Some(method) => method.validate().err().into_iter().collect(),
        }
    }
}

impl ActionKind for Archive {
    const JOB_TYPE: JobType = JobType::Archive;
    action_kind!(
        Archive,
        JobType::Archive,
        runnable: |s| &s.spec.restore.runnable,
        history: |h| &h.spec.restore.history
    );
    fn check_spec(&self) -> Vec<ValidationError> {
        // An Archive always uploads to S3: `folder` has no effect, and `s3` may be empty (global target).
        Vec::new()
    }
}
